"""GNN encoder of interface (or bulk) graphs, pooled per region into a pair embedding.

Message passing is GINE (edge-conditioned GIN) over Gaussian-expanded bond lengths and the
interface-crossing flag; node inputs are the element (learned embedding plus the 8 element
features), the region tag, the signed distances to the interface planes and the phase strain.
The readout averages node states per region, so the interface regions have their own block
of the embedding, and a linear bottleneck maps the blocks to a small pair embedding that the
GP consumes.

Two modes share every layer:

* ``"interface"``: one graph per (modifier, partner) pair, the stack Li | modifier | partner;
  the readout concatenates the five region means.
* ``"bulk"``: the modifier crystal and the partner crystal featurised alone (one region
  each); the readout concatenates their two means. The pair's interface is never seen.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data
from torch_geometric.nn import GINEConv
from torch_geometric.utils import scatter

from lab.materials import REGIONS
from lab.materials.graph import N_ELEMENT_FEATURES


@dataclass(frozen=True)
class EncoderConfig:
    """Hyperparameters of :class:`PairEncoder`.

    Attributes:
        mode: ``"interface"`` or ``"bulk"``.
        hidden: Width of node states.
        layers: Message-passing layers.
        rbf: Gaussians in the bond-length expansion.
        cutoff: Largest bond length, Å (the graphs' neighbour cutoff).
        embedding_dim: Size of the pair embedding handed to the GP.
    """

    mode: str = "interface"
    hidden: int = 32
    layers: int = 3
    rbf: int = 16
    cutoff: float = 3.5
    embedding_dim: int = 8

    def to_dict(self) -> dict:
        """JSON-friendly dict."""
        return asdict(self)


class GaussianRBF(nn.Module):
    """Expansion of distances on ``n`` Gaussians between 0 and ``cutoff``.

    Args:
        n: Number of Gaussians.
        cutoff: Largest distance, Å.
    """

    def __init__(self, n: int, cutoff: float) -> None:
        super().__init__()
        self.register_buffer("centers", torch.linspace(0.0, cutoff, n))
        self.gamma = (n / cutoff) ** 2

    def forward(self, d: Tensor) -> Tensor:
        """``E`` distances (Å) to an ``E x n`` expansion."""
        return torch.exp(-self.gamma * (d.unsqueeze(-1) - self.centers) ** 2)


class GraphEncoder(nn.Module):
    """Node states and per-region mean readout of a batch of graphs.

    Args:
        config: Encoder hyperparameters.
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        h = config.hidden
        self.n_regions = len(REGIONS)
        self.z_emb = nn.Embedding(100, h)
        self.x_lin = nn.Linear(N_ELEMENT_FEATURES + 4, h)
        self.region_emb = nn.Embedding(self.n_regions, h)
        self.rbf = GaussianRBF(config.rbf, config.cutoff)
        self.edge_lin = nn.Linear(config.rbf + 1, h)
        self.convs = nn.ModuleList(
            GINEConv(nn.Sequential(nn.Linear(h, h), nn.SiLU(), nn.Linear(h, h)))
            for _ in range(config.layers)
        )

    def forward(self, batch: Batch | Data) -> Tensor:
        """Per-region mean node state of every graph.

        Args:
            batch: Graphs from :mod:`lab.materials.graph` (a PyG ``Batch`` or one ``Data``),
                optionally with ``edge_rbf`` (``E x rbf``, the precomputed expansion of
                ``edge_dist``; it is the same in every epoch).

        Returns:
            ``B x n_regions x hidden`` region means (zero where a region is empty).
        """
        geo = torch.cat([torch.tanh(batch.dist / 5.0), 10.0 * batch.strain], dim=-1)
        h = self.z_emb(batch.z) + self.x_lin(torch.cat([batch.x, geo], dim=-1))
        h = h + self.region_emb(batch.region)
        rbf = batch.edge_rbf if "edge_rbf" in batch else self.rbf(batch.edge_dist)
        e = self.edge_lin(torch.cat([rbf, batch.edge_cross[:, None]], dim=-1))
        for conv in self.convs:
            h = h + torch.nn.functional.silu(conv(h, batch.edge_index, e))
        graph = getattr(batch, "batch", None)
        if graph is None:
            graph = torch.zeros(h.shape[0], dtype=torch.long)
        n_graphs = int(graph.max()) + 1 if h.shape[0] else 0
        index = graph * self.n_regions + batch.region
        pooled = scatter(h, index, dim=0, dim_size=n_graphs * self.n_regions, reduce="mean")
        return pooled.view(n_graphs, self.n_regions, -1)


class PairEncoder(nn.Module):
    """Pair embedding of (modifier, partner) from interface or bulk graphs.

    Args:
        config: Encoder hyperparameters (``config.mode`` picks interface or bulk).
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        if config.mode not in ("interface", "bulk"):
            raise ValueError(f"mode must be 'interface' or 'bulk', got {config.mode!r}")
        self.config = config
        self.graph = GraphEncoder(config)
        blocks = 5 if config.mode == "interface" else 2
        self.bottleneck = nn.Linear(blocks * config.hidden, config.embedding_dim)

    def forward(self, graphs: dict[str, Batch], pairs: Tensor) -> Tensor:
        """Embeddings of pairs.

        Args:
            graphs: ``{"interface": Batch}`` (one graph per pair index) in interface mode;
                ``{"modifier": Batch, "partner": Batch}`` (one graph per material index) in
                bulk mode.
            pairs: ``P x 3`` long tensor of (pair index, modifier index, partner index).

        Returns:
            ``P x embedding_dim`` embeddings.
        """
        if self.config.mode == "interface":
            regions = self.graph(graphs["interface"])[:, :5]  # drop the empty "bulk" block
            blocks = regions[pairs[:, 0]].flatten(1)
        else:
            bulk = len(REGIONS) - 1
            mods = self.graph(graphs["modifier"])[:, bulk]
            parts = self.graph(graphs["partner"])[:, bulk]
            blocks = torch.cat([mods[pairs[:, 1]], parts[pairs[:, 2]]], dim=-1)
        return self.bottleneck(blocks)


class PretrainHead(nn.Module):
    """Regression head on (pair embedding, process features) used during pretraining.

    Args:
        embedding_dim: Size of the pair embedding.
        n_process: Number of process features.
        hidden: Hidden width.
    """

    def __init__(self, embedding_dim: int, n_process: int, hidden: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(embedding_dim + n_process, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, 1),
        )

    def forward(self, embedding: Tensor, process: Tensor) -> Tensor:
        """``n x embedding_dim`` and ``n x n_process`` to ``n`` predictions."""
        return self.net(torch.cat([embedding, process], dim=-1)).squeeze(-1)
