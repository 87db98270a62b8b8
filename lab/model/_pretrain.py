"""Pair embeddings for the whole library: GNN pretraining on cheap-fidelity labels.

The cheap fidelity (a calculation) is affordable for every (modifier, partner) pair of the
library, so the encoder is pretrained on it before any experiment: a regression of
``log10(value)`` on the pair embedding and the interlayer thickness. The trained encoder is
then frozen and its embedding of every pair is tabulated for the GP. Without pretraining the
same encoder keeps its (seeded) random initialisation: the ablation of the benchmark.

Results are cached on disk by the hash of everything they depend on (library content, graph
cutoff, encoder settings, labels, training settings, seed).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Batch

from lab.materials import build_interface, bulk_structure, library_hash
from lab.materials._cache import content_hash, default_cache_dir
from lab.materials.graph import bulk_graph, interface_graph
from lab.model._encoder import EncoderConfig, PairEncoder, PretrainHead

Label = tuple[str, str, float, float]
"""A cheap-fidelity label: (modifier, partner, thickness in nm, value)."""

PRETRAIN_VERSION = 1


@dataclass(frozen=True)
class PretrainConfig:
    """Settings of encoder pretraining.

    Attributes:
        epochs: Full-batch Adam steps.
        lr: Learning rate.
        weight_decay: L2 penalty.
    """

    epochs: int = 300
    lr: float = 3e-3
    weight_decay: float = 1e-4


@dataclass
class PairTable:
    """Embeddings of every (modifier, partner) pair.

    Attributes:
        modifiers: Modifier names (row order).
        partners: Partner names (column order).
        embeddings: ``n_modifiers x n_partners x d`` tensor (float64).
        info: Provenance: ``key`` (content hash), ``pretrained``, ``train_rmse``, ``seconds``.
    """

    modifiers: list[str]
    partners: list[str]
    embeddings: torch.Tensor
    info: dict


def pair_graphs(
    mode: str, modifiers: Sequence[str], partners: Sequence[str], cutoff: float
) -> dict[str, Batch]:
    """Batched graphs of the library for an encoder mode.

    Args:
        mode: ``"interface"`` (one stack per pair, row-major over modifiers then partners) or
            ``"bulk"`` (one crystal per modifier and one per partner).
        modifiers: Modifier names.
        partners: Partner names.
        cutoff: Neighbour cutoff, Å.

    Returns:
        ``{"interface": Batch}`` or ``{"modifier": Batch, "partner": Batch}``.
    """
    if mode == "interface":
        graphs = [
            interface_graph(build_interface(m, p), cutoff) for m in modifiers for p in partners
        ]
        return {"interface": Batch.from_data_list(graphs)}
    return {
        "modifier": Batch.from_data_list(
            [bulk_graph(bulk_structure(m), cutoff) for m in modifiers]
        ),
        "partner": Batch.from_data_list([bulk_graph(bulk_structure(p), cutoff) for p in partners]),
    }


def _pair_index(n_mod: int, n_part: int) -> torch.Tensor:
    mi, pi = torch.meshgrid(torch.arange(n_mod), torch.arange(n_part), indexing="ij")
    return torch.stack([mi.flatten() * n_part + pi.flatten(), mi.flatten(), pi.flatten()], dim=1)


def thickness_feature(thickness_nm: torch.Tensor) -> torch.Tensor:
    """``log10(h / 1 nm)`` scaled to about [-1, 1] over 0.1-100 nm."""
    return torch.log10(thickness_nm.clamp_min(1e-3)) / 1.5


def build_pair_table(
    config: EncoderConfig,
    modifiers: Sequence[str],
    partners: Sequence[str],
    labels: Sequence[Label] | None,
    *,
    pretrain: PretrainConfig | None = None,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> PairTable:
    """Tabulate pair embeddings, pretraining the encoder on ``labels`` when given.

    Args:
        config: Encoder settings.
        modifiers: Modifier names (table rows).
        partners: Partner names (table columns).
        labels: Cheap-fidelity labels ``(modifier, partner, thickness_nm, value)``; ``None``
            keeps the seeded random initialisation (no pretraining).
        pretrain: Training settings.
        seed: Seed of the initialisation and training.
        cache_dir: Cache root (default :func:`~lab.materials.default_cache_dir`).
        progress: Called as ``progress(epoch, epochs, loss)`` during training.

    Returns:
        The table (its ``info["key"]`` is the content hash the cache uses).
    """
    pretrain = pretrain or PretrainConfig()
    modifiers, partners = list(modifiers), list(partners)
    key = content_hash(
        {
            "v": PRETRAIN_VERSION,
            "library": library_hash(),
            "config": config.to_dict(),
            "modifiers": modifiers,
            "partners": partners,
            "labels": None
            if labels is None
            else [(m, p, round(h, 6), float(f"{v:.8g}")) for m, p, h, v in labels],
            "pretrain": pretrain.__dict__ if labels is not None else None,
            "seed": seed,
        }
    )[:20]
    path = Path(cache_dir or default_cache_dir()) / "encoder" / f"{key}.pt"
    if path.exists():
        doc = torch.load(path, weights_only=False)
        return PairTable(modifiers, partners, doc["embeddings"], doc["info"])

    t0 = time.perf_counter()
    torch.manual_seed(seed)
    encoder = PairEncoder(config)
    graphs = pair_graphs(config.mode, modifiers, partners, config.cutoff)
    for batch in graphs.values():  # the bond-length expansion is the same in every epoch
        batch.edge_rbf = encoder.graph.rbf(batch.edge_dist)
    pairs = _pair_index(len(modifiers), len(partners))
    info: dict = {"key": key, "pretrained": labels is not None, "train_rmse": None}
    if labels is not None:
        info["train_rmse"] = _train(
            encoder, graphs, pairs, modifiers, partners, labels, pretrain, progress
        )
    encoder.eval()
    with torch.no_grad():
        emb = encoder(graphs, pairs).double()
    table = emb.view(len(modifiers), len(partners), -1)
    info["seconds"] = time.perf_counter() - t0
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"embeddings": table, "info": info, "state": encoder.state_dict()}, tmp)
    tmp.replace(path)
    return PairTable(modifiers, partners, table, info)


def _train(
    encoder: PairEncoder,
    graphs: dict[str, Batch],
    pairs: torch.Tensor,
    modifiers: list[str],
    partners: list[str],
    labels: Sequence[Label],
    settings: PretrainConfig,
    progress: Callable[[int, int, float], None] | None,
) -> float:
    m_idx = {m: i for i, m in enumerate(modifiers)}
    p_idx = {p: i for i, p in enumerate(partners)}
    rows = [(m_idx[m] * len(partners) + p_idx[p], h, v) for m, p, h, v in labels]
    pair_of = torch.tensor([r[0] for r in rows])
    h = thickness_feature(torch.tensor([r[1] for r in rows], dtype=torch.float32))[:, None]
    y = torch.log10(torch.tensor([r[2] for r in rows], dtype=torch.float32))
    y_mean, y_std = y.mean(), y.std().clamp_min(1e-6)
    y_n = (y - y_mean) / y_std
    head = PretrainHead(encoder.config.embedding_dim, 1)
    params = list(encoder.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=settings.lr, weight_decay=settings.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, settings.epochs)
    encoder.train()
    loss = torch.tensor(math.nan)
    for epoch in range(settings.epochs):
        opt.zero_grad()
        emb = encoder(graphs, pairs)
        loss = torch.mean((head(emb[pair_of], h) - y_n) ** 2)
        loss.backward()
        opt.step()
        sched.step()
        if progress is not None:
            progress(epoch + 1, settings.epochs, float(loss.detach()))
    return float(np.sqrt(float(loss.detach())) * float(y_std))
