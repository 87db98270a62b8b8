"""The project's interface surrogate (:mod:`lab.model`) as an optimiser model kind.

``mf_surrogate`` runs :class:`lab.model.InterfaceGP` — a multi-task GP over the fidelities on
a learned (modifier, partner) representation (a pretrained interface-GNN embedding by default)
joined with the process parameters, with a physics-informed prior mean — behind the
optimiser's encoded inputs. :class:`EncodedSurrogate` maps those inputs (unit cube, one-hot
categories, fidelity rank last) to the surrogate's raw columns (:data:`lab.model.RAW_COLUMNS`)
and back, so acquisition functions, pending points and the fidelity gate work unchanged.

The surrogate's raw columns are found through the campaign's process, not parameter names:
the modifier is the categorical parameter bound to a ``deposit`` step's ``material`` (its
choices must be materials the surrogate knows), the thickness the one bound to its
``thickness``, the anneal the parameters bound to an ``anneal`` step's ``temperature`` and
``time`` (otherwise 25 °C and no anneal); values are converted from the parameters' units
to nm, °C and min. The partner phase is the campaign's ``other_phase``. Build it with :func:`surrogate_for` and pass it as
``Optimizer(spec, model="mf_surrogate", surrogate=...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from botorch.models.model import Model

from lab.errors import LabError
from lab.optimize._space import DesignSpace, FidelitySet

if TYPE_CHECKING:
    from lab.model import Surrogate
    from lab.spec import Campaign

NAME = "mf_surrogate"
RAW_DEFAULTS = {"anneal_temperature_c": 25.0, "anneal_time_min": 0.0}
"""Raw values of process columns the campaign does not vary (room temperature, no anneal)."""
RAW_ROLES: dict[str, tuple[str, str, str | None]] = {
    "modifier": ("deposit", "material", None),
    "thickness_nm": ("deposit", "thickness", "nm"),
    "anneal_temperature_c": ("anneal", "temperature", "degC"),
    "anneal_time_min": ("anneal", "time", "min"),
}
"""Raw column to the (step kind, argument) whose bound parameter fills it, and its unit."""


def raw_roles(spec: Campaign) -> dict[str, str]:
    """Campaign parameter name to the raw surrogate column it fills."""
    out = {}
    for column, (step, arg, _) in RAW_ROLES.items():
        name = spec.bound_parameter(step, arg)
        if name is not None:
            out[name] = column
    return out


def surrogate_for(
    spec: Campaign,
    kind: str = "interface_gnn",
    labels: Sequence[tuple[str, str, float, float]] | None = None,
    *,
    seed: int = 0,
    epochs: int | None = None,
    cache_dir: str | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> Surrogate:
    """A prepared (representation built, encoder pretrained) surrogate for a campaign.

    Args:
        spec: The campaign (see the module docstring for the parameters it needs).
        kind: A :data:`lab.model.KINDS` representation.
        labels: Cheap-fidelity labels ``(modifier, partner, thickness_nm, value)`` for the
            pretrained kinds (value in objective units, > 0).
        seed: Seed of the encoder initialisation and pretraining.
        epochs: Pretraining epochs (default: :class:`lab.model.PretrainConfig`'s).
        cache_dir: Cache root for structures and encoders.
        progress: Pretraining progress callback ``(epoch, epochs, loss)``.

    Raises:
        LabError: If the campaign has no ``modifier`` choice or names unknown materials.
    """
    from lab.model import KINDS, PretrainConfig, Surrogate, SurrogateConfig

    if kind not in KINDS:
        raise LabError(f"unknown surrogate kind '{kind}'; expected one of {list(KINDS)}")
    modifiers, partners = _materials(spec)
    fids = FidelitySet(spec)
    names = [fids.names[i] for i in fids.by_cost()]
    config = SurrogateConfig(kind, seed=seed)
    if epochs is not None:
        config = SurrogateConfig(kind, pretrain=PretrainConfig(epochs=epochs), seed=seed)
    s = Surrogate(config, modifiers, partners, names, cache_dir=cache_dir)
    try:
        s.prepare(labels, progress=progress)
    except (KeyError, ValueError) as exc:
        raise LabError(f"cannot build surrogate '{kind}' for this campaign: {exc}") from exc
    return s


def _materials(spec: Campaign) -> tuple[list[str], list[str]]:
    name = spec.bound_parameter("deposit", "material")
    mod = None if name is None else spec.parameter(name)
    if mod is None or not hasattr(mod, "choices"):
        raise LabError(
            "model 'mf_surrogate' needs a categorical parameter bound to a deposit step's "
            "material (the interlayer); use model 'mf_ltk' for other campaigns"
        )
    return list(mod.choices), [spec.interface.other_phase]


class EncodedSurrogate:
    """Builds :class:`lab.model.InterfaceGP` models on the optimiser's encoded inputs.

    Args:
        spec: The campaign.
        surrogate: A prepared :class:`lab.model.Surrogate` whose modifiers/partners cover the
            campaign's choices and whose fidelities are the campaign's, cheapest first.

    Raises:
        LabError: If the surrogate does not match the campaign.
    """

    def __init__(self, spec: Campaign, surrogate: Surrogate) -> None:
        if surrogate.table is None:
            raise LabError("the surrogate is not prepared: call surrogate.prepare(labels)")
        self.surrogate = surrogate
        self.space = DesignSpace(spec)
        fids = FidelitySet(spec)
        by_cost = [fids.names[i] for i in fids.by_cost()]
        if list(surrogate.fidelities) != by_cost:
            raise LabError(
                f"surrogate fidelities {surrogate.fidelities} differ from the campaign's "
                f"(cheapest first) {by_cost}"
            )
        modifiers, partners = _materials(spec)
        unknown = [m for m in modifiers if m not in surrogate.modifiers]
        unknown += [p for p in partners if p not in surrogate.partners]
        if unknown:
            raise LabError(f"the surrogate does not know {unknown}: rebuild it for this campaign")
        # column plan: raw column -> ("cat", start, stop, index map) | ("cont", col, parameter)
        self._plan: dict[str, tuple] = {}
        from lab.units import convert

        roles = raw_roles(spec)
        col = 0
        for p in self.space.params:
            column = roles.get(p.name)
            if hasattr(p, "choices"):
                k = len(p.choices)
                if column == "modifier":
                    idx = torch.tensor([float(surrogate.modifiers.index(c)) for c in p.choices])
                    self._plan[column] = ("cat", col, col + k, idx.double())
                col += k
            else:
                if column is not None:
                    unit = RAW_ROLES[column][2]
                    b = convert(0.0, p.unit, unit, p.name)  # raw = a * value + b
                    a = convert(1.0, p.unit, unit, p.name) - b
                    self._plan[column] = ("cont", col, p, a, b)
                col += 1
        self._partner = float(surrogate.partners.index(partners[0]))
        if "thickness_nm" not in self._plan:
            raise LabError(
                "model 'mf_surrogate' needs a continuous parameter bound to a deposit step's "
                "thickness"
            )
        self.dim = col

    def to_raw(self, X: torch.Tensor) -> torch.Tensor:
        """Encoded inputs ``... x (d + 1)`` to raw surrogate inputs ``... x 6``."""
        names = ("modifier", "partner", "thickness_nm", "anneal_temperature_c", "anneal_time_min")
        cols = [self._column(X, name) for name in names]
        return torch.stack([*cols, X[..., self.dim]], dim=-1)

    def _column(self, X: torch.Tensor, name: str) -> torch.Tensor:
        plan = self._plan.get(name)
        if plan is None:
            value = self._partner if name == "partner" else RAW_DEFAULTS[name]
            return torch.full(X.shape[:-1], value, dtype=X.dtype)
        if plan[0] == "cat":
            _, a, b, idx = plan
            return idx.to(X)[torch.argmax(X[..., a:b], dim=-1)]
        _, c, p, a, b = plan
        return a * p.from_unit(X[..., c]) + b  # elementwise on tensors as on floats

    def build(self, X: torch.Tensor, Y: torch.Tensor) -> SurrogateModel:
        """An unfitted model on encoded training inputs ``n x (d + 1)`` and targets ``n x 1``."""
        from lab.model import InterfaceGP, PairFeatures

        gp = InterfaceGP(
            PairFeatures(self.surrogate.table),
            self.to_raw(X),
            Y,
            len(self.surrogate.fidelities),
            physics_mean=self.surrogate.config.physics_mean,
        )
        return SurrogateModel(gp, self.to_raw)


class SurrogateModel(Model):
    """A BoTorch ``Model`` on encoded inputs wrapping :class:`lab.model.InterfaceGP`.

    Args:
        gp: The wrapped model (raw inputs).
        to_raw: Encoded-to-raw input map.
    """

    _is_ensemble = False

    def __init__(self, gp: Any, to_raw: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.gp = gp
        self.to_raw = to_raw

    @property
    def num_outputs(self) -> int:
        """One output."""
        return 1

    @property
    def batch_shape(self) -> torch.Size:
        """Batch shape of the wrapped GP."""
        return self.gp.batch_shape

    @property
    def likelihood(self) -> Any:
        """The wrapped GP's likelihood."""
        return self.gp.likelihood

    def posterior(self, X: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        """Posterior at encoded inputs ``batch x q x (d + 1)`` (fidelity rank last)."""
        return self.gp.posterior(self.to_raw(X), *args, **kwargs)

    def condition_on_observations(
        self, X: torch.Tensor, Y: torch.Tensor, **kwargs: Any
    ) -> SurrogateModel:
        """The model conditioned on extra encoded observations (kriging believer, fantasies)."""
        return SurrogateModel(self.gp.condition_on_observations(self.to_raw(X), Y), self.to_raw)

    def fit_hyperparameters(self, maxiter: int) -> SurrogateModel:
        """Fit by marginal likelihood (L-BFGS-B capped at ``maxiter`` iterations)."""
        start = {k: v.detach().clone() for k, v in self.state_dict().items()}
        try:
            self.gp.fit(maxiter=maxiter)
        except Exception:  # noqa: BLE001 - ill-conditioned data: keep the starting point
            self.load_state_dict(start)
        return self

    @property
    def exact_gp(self) -> Any:
        """The exact GP inside (encoded inputs already mapped to its features).

        The optimiser's marginal likelihood and closed-form leave-one-out (the fidelity gate)
        run on it; each training point's noise is its fidelity's inferred noise level.
        """
        return self.gp.gp
