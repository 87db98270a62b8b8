"""The surrogate: a pair representation under the multi-fidelity GP, with snapshots.

Kinds (:data:`KINDS`) differ only in how a (modifier, partner) pair is represented:

* ``descriptor_gp``: composition descriptors of both phases (no structure), reduced by PCA.
* ``bulk_gnn``: GNN embedding of the two bulk crystals featurised alone, pretrained on the
  cheap fidelity for the whole library.
* ``interface_gnn``: GNN embedding of the interface stack Li | modifier | partner, pretrained
  likewise, plus the in-plane strain each phase takes in the stack (its lattice mismatch).
* ``bulk_gnn_nopretrain``, ``interface_gnn_nopretrain``: the same encoders left at their
  seeded random initialisation.

Everything downstream (features, prior mean, kernel, fitting) is shared, so the benchmark
compares representations and nothing else. Targets are ``log10`` of the objective.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lab.materials import build_interface, composition_descriptor, get_material
from lab.model._encoder import EncoderConfig
from lab.model._gp import RAW_COLUMNS, InterfaceGP, PairFeatures
from lab.model._pretrain import Label, PretrainConfig, build_pair_table

KINDS: tuple[str, ...] = (
    "descriptor_gp",
    "bulk_gnn",
    "interface_gnn",
    "bulk_gnn_nopretrain",
    "interface_gnn_nopretrain",
)
FIDELITIES: tuple[str, ...] = ("calculation", "screening", "full")
"""Default fidelities, cheapest first; the last is the target."""

SNAPSHOT_VERSION = 1


@dataclass(frozen=True)
class SurrogateConfig:
    """Settings of a :class:`Surrogate`.

    Attributes:
        kind: One of :data:`KINDS`.
        encoder: GNN settings (its ``mode`` is set from ``kind``).
        pretrain: Pretraining settings.
        descriptor_dim: PCA components kept of the composition descriptors.
        physics_mean: Use the physics-informed prior mean.
        seed: Seed of the encoder initialisation and pretraining.
    """

    kind: str = "interface_gnn"
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    descriptor_dim: int = 8
    physics_mean: bool = True
    seed: int = 0

    def to_dict(self) -> dict:
        """JSON-friendly dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> SurrogateConfig:
        """Inverse of :meth:`to_dict`."""
        return cls(
            kind=doc["kind"],
            encoder=EncoderConfig(**doc["encoder"]),
            pretrain=PretrainConfig(**doc["pretrain"]),
            descriptor_dim=doc["descriptor_dim"],
            physics_mean=doc["physics_mean"],
            seed=doc["seed"],
        )


def descriptor_table(modifiers: Sequence[str], partners: Sequence[str], dim: int) -> torch.Tensor:
    """Composition descriptors of every pair, standardised and reduced by PCA.

    Args:
        modifiers: Modifier names.
        partners: Partner names.
        dim: Components kept.

    Returns:
        ``n_modifiers x n_partners x dim`` (float64).
    """
    desc = {n: composition_descriptor(get_material(n).formula) for n in [*modifiers, *partners]}
    rows = np.array([np.concatenate([desc[m], desc[p]]) for m in modifiers for p in partners])
    rows = (rows - rows.mean(0)) / np.maximum(rows.std(0), 1e-9)
    _, _, vt = np.linalg.svd(rows, full_matrices=False)
    reduced = rows @ vt[: min(dim, vt.shape[0])].T
    return torch.tensor(reduced, dtype=torch.float64).view(len(modifiers), len(partners), -1)


def mismatch_table(modifiers: Sequence[str], partners: Sequence[str]) -> torch.Tensor:
    """Largest in-plane strain of the substrate and of the modifier in each interface stack.

    Returns:
        ``n_modifiers x n_partners x 2`` (fractions, float64).
    """
    out = torch.zeros(len(modifiers), len(partners), 2, dtype=torch.float64)
    for i, m in enumerate(modifiers):
        for j, p in enumerate(partners):
            strain = build_interface(m, p).strain
            out[i, j, 0] = max(abs(e) for e in strain["substrate"])
            out[i, j, 1] = max(abs(e) for e in strain["modifier"])
    return out


class Surrogate:
    """A pair representation under the multi-fidelity GP.

    Args:
        config: Kind and settings.
        modifiers: Modifier names (the categorical choices, in index order).
        partners: Partner names.
        fidelities: Fidelity names, cheapest first; the last is the target.
        cache_dir: Cache root for structures and encoders (default: the materials cache).

    Example:
        >>> s = Surrogate(SurrogateConfig("interface_gnn"), ["Au", "LiF"], ["LLZO"])
        >>> s.prepare(labels)                    # pretrain on cheap labels (cached)
        >>> s.fit(observations)                  # dicts: params + fidelity + value
        >>> mean, std = s.predict([{"modifier": "Au", "partner": "LLZO", "thickness_nm": 5}])
    """

    def __init__(
        self,
        config: SurrogateConfig,
        modifiers: Sequence[str],
        partners: Sequence[str],
        fidelities: Sequence[str] = FIDELITIES,
        *,
        cache_dir: str | Path | None = None,
    ) -> None:
        if config.kind not in KINDS:
            raise ValueError(f"unknown surrogate kind {config.kind!r}; expected one of {KINDS}")
        self.config = config
        self.modifiers = list(modifiers)
        self.partners = list(partners)
        self.fidelities = list(fidelities)
        self.cache_dir = cache_dir
        self.table: torch.Tensor | None = None
        self.table_info: dict = {}
        self.model: InterfaceGP | None = None
        self._m = {n: i for i, n in enumerate(self.modifiers)}
        self._p = {n: i for i, n in enumerate(self.partners)}
        self._f = {n: i for i, n in enumerate(self.fidelities)}

    # -- representation -------------------------------------------------------------------
    @property
    def needs_labels(self) -> bool:
        """Whether :meth:`prepare` needs cheap-fidelity labels (pretrained GNN kinds)."""
        return self.config.kind in ("bulk_gnn", "interface_gnn")

    def prepare(
        self,
        labels: Sequence[Label] | None = None,
        progress: Callable[[int, int, float], None] | None = None,
    ) -> Surrogate:
        """Build the pair representation table (pretraining the encoder when the kind asks).

        Args:
            labels: Cheap-fidelity labels ``(modifier, partner, thickness_nm, value)`` for the
                library; required by ``bulk_gnn`` and ``interface_gnn``.
            progress: Pretraining progress callback ``(epoch, epochs, loss)``.

        Returns:
            ``self``.
        """
        kind = self.config.kind
        if kind == "descriptor_gp":
            self.table = descriptor_table(self.modifiers, self.partners, self.config.descriptor_dim)
            self.table_info = {"kind": kind}
            return self
        if self.needs_labels and not labels:
            raise ValueError(f"{kind} is pretrained: pass cheap-fidelity labels to prepare()")
        mode = "interface" if kind.startswith("interface") else "bulk"
        encoder = replace(self.config.encoder, mode=mode)
        table = build_pair_table(
            encoder,
            self.modifiers,
            self.partners,
            labels if self.needs_labels else None,
            pretrain=self.config.pretrain,
            seed=self.config.seed,
            cache_dir=self.cache_dir,
            progress=progress,
        )
        emb = table.embeddings
        if mode == "interface":
            emb = torch.cat([emb, mismatch_table(self.modifiers, self.partners)], dim=-1)
        self.table, self.table_info = emb, table.info
        return self

    # -- data -----------------------------------------------------------------------------
    def encode(
        self, params: Sequence[Mapping[str, Any]], fidelity: str | Sequence[str] | None = None
    ) -> torch.Tensor:
        """Raw model inputs (:data:`~lab.model.RAW_COLUMNS`) of parameter sets.

        Args:
            params: Dicts with ``modifier``, ``partner``, ``thickness_nm`` and optionally
                ``anneal_temperature_c`` (default 25 °C) and ``anneal_time_min`` (default 0).
            fidelity: One fidelity for all, one per row, or None to read each row's
                ``"fidelity"`` key (default: the target fidelity).

        Returns:
            ``n x 6`` float64 tensor.

        Raises:
            KeyError: For a modifier, partner or fidelity the surrogate does not know.
        """
        rows = []
        for i, p in enumerate(params):
            if fidelity is None:
                fid = p.get("fidelity", self.fidelities[-1])
            elif isinstance(fidelity, str):
                fid = fidelity
            else:
                fid = fidelity[i]
            temp = p.get("anneal_temperature_c")
            rows.append(
                [
                    self._m[p["modifier"]],
                    self._p[p["partner"]],
                    float(p["thickness_nm"]),
                    25.0 if temp is None else float(temp),
                    float(p.get("anneal_time_min") or 0.0),
                    self._f[fid],
                ]
            )
        return torch.tensor(rows, dtype=torch.float64).reshape(-1, len(RAW_COLUMNS))

    def fit(
        self,
        observations: Sequence[Mapping[str, Any]],
        *,
        warm_start: Surrogate | Mapping[str, torch.Tensor] | None = None,
        maxiter: int = 100,
    ) -> Surrogate:
        """Fit the GP to observations.

        Args:
            observations: Dicts of parameters plus ``fidelity`` and ``value`` (objective
                units, > 0; modelled as ``log10``).
            warm_start: A fitted surrogate of the same kind and library (or its
                ``model.hyperparameters()``) whose hyperparameters start the fit.
            maxiter: Iteration cap of the hyperparameter fit (:meth:`InterfaceGP.fit`).

        Returns:
            ``self``.
        """
        if isinstance(warm_start, Surrogate):
            if warm_start.model is None:
                raise RuntimeError("warm_start: fit() that surrogate first")
            warm_start = warm_start.model.hyperparameters()
        if self.table is None:
            self.prepare()
        X = self.encode(observations)
        y = torch.tensor([math.log10(o["value"]) for o in observations], dtype=torch.float64)
        features = PairFeatures(self.table)
        self.model = InterfaceGP(
            features,
            X,
            y[:, None],
            len(self.fidelities),
            physics_mean=self.config.physics_mean,
        ).fit(maxiter, warm_start=warm_start)
        return self

    def predict(
        self,
        params: Sequence[Mapping[str, Any]],
        fidelity: str | None = None,
        *,
        observation_noise: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Predictive mean and standard deviation of ``log10`` of the objective.

        Args:
            params: Parameter dicts.
            fidelity: Fidelity to predict (default: the target, the last).
            observation_noise: Include the fidelity's noise (a prediction of a new
                measurement) rather than the latent function only.

        Returns:
            ``(mean, std)``, each of length ``len(params)``.
        """
        if self.model is None:
            raise RuntimeError("fit() the surrogate before predicting")
        X = self.encode(params, fidelity or self.fidelities[-1])
        with torch.no_grad():
            post = self.model.posterior(X, observation_noise=observation_noise)
        mean = post.mean.squeeze(-1).numpy()
        std = post.variance.clamp_min(0).sqrt().squeeze(-1).numpy()
        return mean, std

    # -- snapshots ------------------------------------------------------------------------
    def _state(self) -> dict:
        if self.model is None or self.table is None:
            raise RuntimeError("fit() the surrogate before saving it")
        return {
            "snapshot_version": SNAPSHOT_VERSION,
            "config": self.config.to_dict(),
            "modifiers": self.modifiers,
            "partners": self.partners,
            "fidelities": self.fidelities,
            "table": self.table,
            "table_info": self.table_info,
            "train_X": self.model.raw_train_X,
            "train_Y": self.model.raw_train_Y,
            "gp_state": {k: v.detach().clone() for k, v in self.model.gp.state_dict().items()},
        }

    @property
    def version(self) -> str:
        """Content hash (16 hex) of the fitted model: representation, data and hyperparameters."""
        state = self._state()
        h = hashlib.sha256()
        h.update(json.dumps([state["config"], state["modifiers"], state["partners"]]).encode())
        for name in ("table", "train_X", "train_Y"):
            h.update(state[name].detach().cpu().numpy().tobytes())
        for key in sorted(state["gp_state"]):
            h.update(key.encode())
            h.update(state["gp_state"][key].cpu().numpy().tobytes())
        return h.hexdigest()[:16]

    def save(self, directory: str | Path) -> str:
        """Save a snapshot to ``directory/surrogate-<version>.pt``.

        Returns:
            The version hash.
        """
        version = self.version
        path = Path(directory) / f"surrogate-{version}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({**self._state(), "version": version}, path)
        return version

    @classmethod
    def load(cls, path: str | Path) -> Surrogate:
        """Load a snapshot written by :meth:`save` (its version is checked).

        Raises:
            ValueError: When the file's content does not match its recorded version.
        """
        doc = torch.load(path, weights_only=False)
        s = cls(
            SurrogateConfig.from_dict(doc["config"]),
            doc["modifiers"],
            doc["partners"],
            doc["fidelities"],
        )
        s.table, s.table_info = doc["table"], doc["table_info"]
        s.model = InterfaceGP(
            PairFeatures(s.table),
            doc["train_X"],
            doc["train_Y"],
            len(s.fidelities),
            physics_mean=s.config.physics_mean,
        )
        s.model.gp.load_state_dict(doc["gp_state"])
        s.model.eval()
        if s.version != doc["version"]:
            raise ValueError(f"snapshot {path} does not match its version {doc['version']}")
        return s
