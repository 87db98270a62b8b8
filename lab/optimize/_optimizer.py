"""The ask/tell optimiser: a space-filling start, then a surrogate with a registered acquisition.

Values are modelled in a maximisation frame: ``y = sign * f(value)`` where ``f`` is ``log`` when
the campaign asks for a log transform and ``sign`` is -1 for minimisation.

Single-fidelity campaigns fit a ``SingleTaskGP`` on the target fidelity and maximise ``qLogNEI``
(unchanged since the foundation). Multi-fidelity campaigns (more than one fidelity) fit one
model on every observation with the fidelity as a last input column (``mf_mt``: a multi-task
GP over the discrete fidelities, by default) and choose design *and* fidelity with a
cost-aware acquisition (``mf_gibbon``: information about the target maximum per unit cost,
by default); see ``docs/decisions/0003-multi-fidelity-acquisition.md`` for the measurements
behind these defaults.

Proposals asked but not yet told are pending: passed to the acquisition as ``X_pending``, or,
for acquisitions that do not model pending points (GIBBON), the model is conditioned on them
at their posterior mean ("kriging believer"), so asynchronous batches do not collide. Failed
experiments become infeasibility data (see :mod:`lab.optimize._feasibility`). Safety limits
are hard bounds of the search box.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from lab.errors import LabError
from lab.optimize._acquisition import AcquisitionContext, get_acquisition
from lab.optimize._feasibility import Feasibility, FeasibilityWeighted
from lab.optimize._models import FIT_MAXITER, fit_model, get_model, loo_log_density, plain_gp
from lab.optimize._optim import optimize_mixed
from lab.optimize._space import DesignSpace, FidelitySet, initial_plan
from lab.spec import Campaign

INITIAL = "initial_design"
DEFAULT_SF_ACQUISITION = "qlognei"
DEFAULT_MF_ACQUISITION = "mf_gibbon"
DEFAULT_MF_MODEL = "mf_ltk"
SURROGATE_MODEL = "mf_surrogate"
RECOMMENDATION = "recommendation"
VERIFY = "verify_best"
"""Strategy of a proposal that measures the model's best design at the target fidelity."""
VERIFY_AFTER = 1.0
"""Default of ``verify_after``: while the model predicts its checks well, at most about half
of the budget goes to verifications."""
VERIFY_SURPRISE = 0.25
"""A check that misses its prediction by more than this (in standard deviations of the
target observations, model frame) makes the next verification due at once."""
GATED = "qlognei"
"""Acquisition at the target while the fidelity gate is closed."""
GATE_MIN_TARGET = 3
"""Target observations needed before the fidelity gate can close."""
COLD_REFIT_EVERY = 16
"""A warm-started fit is compared with a fresh one every this many observations (the better
marginal likelihood wins), so an early poor optimum does not stick."""
N_CANDIDATES = 500
"""Random target-fidelity designs used to sample the maximum (max-value entropy, GIBBON)."""
N_COMPLETIONS = 128
"""Random values tried for the ignored parameters of a design seen only by a blind fidelity."""


@dataclass
class Proposal:
    """One experiment the optimiser asks for.

    Attributes:
        params: Parameter name to value, in the campaign's units.
        fidelity: Name of the fidelity to evaluate at.
        cost: Cost of that evaluation in budget units.
        model_version: Hash of the model (its training data) that chose it, or
            ``"initial_design"``.
        acquisition_value: Acquisition value at the proposal (``None`` in the initial design).
        strategy: ``initial_design``, the acquisition's registered name, ``verify_best``
            (the model's best design, so far seen only at cheaper fidelities, measured at the
            target; its ``acquisition_value`` is the predicted value, model frame) or
            ``recommendation`` (from :meth:`Optimizer.recommend`, not measured).
        key: Unique id; also the experiment's idempotency key in the store.
    """

    params: dict[str, Any]
    fidelity: str
    cost: float
    model_version: str
    acquisition_value: float | None = None
    strategy: str = INITIAL
    key: str = field(default_factory=lambda: uuid.uuid4().hex)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict of the proposal."""
        return asdict(self)


@dataclass
class _Obs:
    proposal: Proposal
    value: float


@dataclass
class _Fit:
    model: Any
    X: torch.Tensor
    Y: torch.Tensor
    version: str
    obs: list[_Obs]


def _load_hyperparameters(model: Any, values: dict[str, Any]) -> None:
    """Set a model's parameters from :meth:`Optimizer.state_dict` values (same shapes only)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            v = values.get(name)
            if v is not None:
                t = torch.as_tensor(v, dtype=p.dtype)
                if t.shape == p.shape:
                    p.copy_(t)


def _mll(model: Any) -> float:
    """Marginal log likelihood of a fitted model on its training data."""
    from gpytorch.mlls import ExactMarginalLogLikelihood

    model = getattr(model, "exact_gp", model)  # a wrapper: the exact GP inside
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    model.train()
    try:
        with torch.no_grad():
            X = model.train_inputs
            out = mll(model(*X), model.train_targets, *X)
            return float(out)
    except Exception:  # noqa: BLE001 - a model that cannot be scored loses
        return -math.inf
    finally:
        model.eval()


def _one_shot(acqf: Any) -> bool:
    from botorch.acquisition.acquisition import OneShotAcquisitionFunction

    return isinstance(acqf, OneShotAcquisitionFunction)


class _Held(torch.nn.Module):
    """An acquisition function that evaluates candidates at a fidelity blind to some
    parameters with those parameters at their held values (so it neither gains nor loses by
    moving them: their gradient there is zero).

    Args:
        acqf: The acquisition function; inputs ``batch x q x (d + 1)``, fidelity last.
        held: ``(fidelity column value, {column: held value})`` per blind fidelity.
    """

    def __init__(self, acqf: Any, held: list[tuple[float, dict[int, float]]]) -> None:
        super().__init__()
        self.acqf = acqf
        self.held = held
        self.model = getattr(acqf, "model", None)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        X = X.clone()
        for value, cols in self.held:
            rows = (X[..., -1] - value).abs() < 1e-6
            for j, v in cols.items():
                X[..., j] = torch.where(rows, torch.full_like(X[..., j], v), X[..., j])
        return self.acqf(X)


class Optimizer:
    """Ask/tell Bayesian optimiser over a campaign's design space and fidelities.

    Args:
        spec: The validated campaign.
        seed: Seed for the initial design, the model fits and the acquisition optimiser.
        acquisition: Registered acquisition name (default ``qlognei`` for one fidelity,
            ``mf_gibbon`` for several).
        model: Registered model kind (default ``gp`` for one fidelity, ``mf_mt`` for
            several). A single-fidelity kind on a multi-fidelity campaign uses the target only.
        num_restarts: Restarts of the acquisition optimiser.
        raw_samples: Raw samples used to pick the restarts.
        fit_maxiter: L-BFGS iterations of a multi-fidelity model fit.
        fidelity_gate: Use the cheaper fidelities only while they help: before each proposal,
            the multi-fidelity model must predict the target observations better
            (leave-one-out) than a GP on the target observations alone; when it does not,
            the optimiser proposes at the target with that GP and qLogNEI (see
            :attr:`gate`).
        verify_best: With several fidelities, when the observed design with the best
            posterior mean at the target (the recommendation) has not been measured there,
            measure it at the target (strategy ``verify_best``) before asking the acquisition,
            so a recommendation that only cheap fidelities support gets checked.
        verify_after: While the last verification matched its prediction, the next one waits
            until the cost spent at cheaper fidelities since the last target measurement
            reaches this many target costs (see :meth:`_verification_due`).
        surrogate: A prepared :class:`lab.model.Surrogate` for ``model="mf_surrogate"`` (the
            project's interface surrogate; build it with
            :func:`lab.optimize.surrogate_for`). Not part of :meth:`state_dict`: pass it
            again to :meth:`from_state_dict`.
        gate_model: The model behind target-only proposals while the fidelity gate is
            closed: ``"mf"`` (default), the multi-fidelity model (what the cheap fidelities
            said still ranks the designs, e.g. which library materials are worth measuring; no
            cheap experiment is bought), or ``"target"``, a GP on the target observations
            alone.
        cover_choices: Let the initial design measure every categorical choice once at the
            cheapest fidelity when that costs at most a tenth of the budget (see
            :func:`lab.optimize._space.initial_plan`); off when such data exists already
            (e.g. the labels a surrogate was pretrained on, told before the first ask).
    """

    def __init__(
        self,
        spec: Campaign,
        seed: int = 0,
        *,
        acquisition: str | None = None,
        model: str | None = None,
        num_restarts: int = 8,
        raw_samples: int = 256,
        fit_maxiter: int = FIT_MAXITER,
        fidelity_gate: bool = True,
        verify_best: bool = True,
        verify_after: float = VERIFY_AFTER,
        surrogate: Any | None = None,
        gate_model: str = "mf",
        cover_choices: bool = True,
    ) -> None:
        self.spec = spec
        self.seed = seed
        self.fids = FidelitySet(spec)
        self.model_name = model or (DEFAULT_MF_MODEL if self.fids.multi else "gp")
        self._kind = get_model(self.model_name)
        self.multi_fidelity = self.fids.multi and self._kind.multi_fidelity
        self.acquisition = acquisition or (
            DEFAULT_MF_ACQUISITION if self.multi_fidelity else DEFAULT_SF_ACQUISITION
        )
        self._entry = get_acquisition(self.acquisition)
        self._encoded = None
        if surrogate is not None or self.model_name == SURROGATE_MODEL:
            if surrogate is None:
                raise LabError(
                    f"model '{SURROGATE_MODEL}' needs the prepared surrogate: Optimizer(spec, "
                    f"model='{SURROGATE_MODEL}', surrogate=surrogate_for(spec, ...))"
                )
            if self.model_name != SURROGATE_MODEL:
                raise LabError(
                    f"a surrogate goes with model='{SURROGATE_MODEL}' (got '{self.model_name}')"
                )
            from lab.optimize._surrogate_model import EncodedSurrogate

            self._encoded = EncodedSurrogate(spec, surrogate)
        if self._entry.multi_fidelity and not self.multi_fidelity:
            raise LabError(
                f"acquisition '{self.acquisition}' chooses fidelities but the campaign has one "
                f"fidelity or model '{self.model_name}' is single-fidelity: use 'qlognei'"
            )
        self.num_restarts = num_restarts
        self.raw_samples = raw_samples
        self.fit_maxiter = fit_maxiter
        self.space = DesignSpace(spec)
        self._plan = (
            initial_plan(
                spec.initial_design,
                self.fids,
                n_cover=max((b - a for a, b in self.space.categorical_slices), default=0)
                if cover_choices
                else 0,
                budget=spec.budget,
            )
            if self.multi_fidelity
            else [(i, self.fids.target_index) for i in range(spec.initial_design)]
        )
        self._plan_points = max((i + 1 for i, _ in self._plan), default=0)
        # fidelities blind to some parameters: those are held at the middle of their (safe)
        # range in their proposals and in the model's inputs
        # (fidelity name -> {encoded column: value})
        self._held = {
            self.fids.names[i]: {j: 0.5 * float(self.space.upper[j]) for j in cols}
            for i, cols in self.fids.blind.items()
        }
        self._obs: list[_Obs] = []
        self._failed: list[tuple[Proposal, str]] = []
        self._pending: dict[str, Proposal] = {}
        self._n_initial_drawn = 0
        self.fidelity_gate = fidelity_gate
        if gate_model not in ("target", "mf"):
            raise LabError(f"gate_model must be 'target' or 'mf' (got '{gate_model}')")
        self.gate_model = gate_model
        self.verify_best = verify_best
        self.verify_after = verify_after
        self.gate: dict[str, Any] = {}
        self._cache: _Fit | None = None
        self._sf_cache: _Fit | None = None
        self._warm: dict[str, Any] | None = None

    # ------------------------------------------------------------------ tell
    def tell(self, proposal: Proposal, value: float) -> None:
        """Record the objective value of a proposal (campaign units).

        Raises:
            LabError: If the value is not finite, not positive under a log transform, or the
                fidelity is not one of the campaign's.
        """
        value = float(value)
        if not math.isfinite(value):
            raise LabError(f"objective value {value} is not finite; use tell_failed instead")
        if self.spec.objective.log_transform and value <= 0:
            raise LabError(
                f"objective value {value} is not positive but the campaign models its log: "
                "set objective.log_transform: false"
            )
        if proposal.fidelity not in self.fids.names:
            raise LabError(
                f"proposal fidelity '{proposal.fidelity}' is not one of the campaign's "
                f"fidelities {self.fids.names}"
            )
        self._forget_pending(proposal)
        self._obs.append(_Obs(proposal, value))

    def tell_failed(self, proposal: Proposal, reason: str) -> None:
        """Record that a proposal could not be evaluated.

        The failure is kept as infeasibility data: the acquisition is weighted by a
        probability of success that drops near failed designs (never re-proposed verbatim).
        """
        self._forget_pending(proposal)
        self._failed.append((proposal, reason))

    def _forget_pending(self, proposal: Proposal) -> None:
        # A proposal asked by an earlier optimiser (a resumed campaign) still used up a point
        # of the initial design.
        if self._pending.pop(proposal.key, None) is None and proposal.strategy == INITIAL:
            self._n_initial_drawn += 1

    def mark_pending(self, proposal: Proposal) -> None:
        """Declare a proposal as in flight (used when resuming from a store)."""
        self._pending[proposal.key] = proposal
        if proposal.strategy == INITIAL:
            self._n_initial_drawn += 1

    # ------------------------------------------------------------------ ask
    @property
    def n_observations(self) -> int:
        """Number of told (successful) observations."""
        return len(self._obs)

    @property
    def spent(self) -> float:
        """Cost of every told or failed experiment, in budget units."""
        return sum(o.proposal.cost for o in self._obs) + sum(p.cost for p, _ in self._failed)

    def ask(self, n: int = 1) -> list[Proposal]:
        """Propose ``n`` experiments.

        The first proposals follow the space-filling initial design (for several fidelities:
        the same Sobol designs at every cheaper fidelity and half of them at the target);
        then the model and the acquisition choose design and fidelity.
        """
        if n < 1:
            raise LabError("ask(n) needs n >= 1")
        n_init_left = max(0, len(self._plan) - self._n_initial_drawn)
        k = min(n, n_init_left)
        if k == 0 and len(self._target_obs()) < 2:
            k = n  # too little data to fit a model: keep filling the space at the target
        out: list[Proposal] = []
        for j in range(k):
            idx = self._n_initial_drawn + j
            if idx < len(self._plan):
                sobol_i, f = self._plan[idx]
            else:  # past the plan: continue the Sobol sequence at the target
                sobol_i = self._plan_points + idx - len(self._plan)
                f = self.fids.target_index
            (params,) = self.space.sobol(1, self.seed, skip=sobol_i)
            params = self._hold(params, self.fids.names[f])
            out.append(Proposal(params, self.fids.names[f], self.fids.costs[f], INITIAL))
        self._n_initial_drawn += k
        if len(out) < n:
            if not self.multi_fidelity and not self._failed:
                out.extend(self._ask_single(n - len(out), extra_pending=out))
            else:
                out.extend(self._ask_general(n - len(out), extra_pending=out))
        for p in out:
            self.spec.check_params(p.params)
            self._pending[p.key] = p
        return out

    def _target_obs(self) -> list[_Obs]:
        t = self.fids.target
        return [o for o in self._obs if o.proposal.fidelity == t]

    def _model_frame(self, values: list[float]) -> torch.Tensor:
        y = torch.tensor(values, dtype=torch.double)
        if self.spec.objective.log_transform:
            y = torch.log(y)
        if self.spec.objective.direction == "minimize":
            y = -y
        return y.unsqueeze(-1)

    def _train_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        obs = self._target_obs()
        X = torch.stack([self.space.encode(o.proposal.params) for o in obs])
        return X, self._model_frame([o.value for o in obs])

    def _model_version(self, X: torch.Tensor, Y: torch.Tensor, tag: bytes = b"gp-v2") -> str:
        h = hashlib.sha256(tag)
        h.update(X.numpy().tobytes())
        h.update(Y.numpy().tobytes())
        return h.hexdigest()[:12]

    def _fit(self) -> tuple[Any, torch.Tensor, torch.Tensor, str]:
        """Single-fidelity fit on the target observations (cached by training data)."""
        from botorch.fit import fit_gpytorch_mll
        from gpytorch.mlls import ExactMarginalLogLikelihood

        X, Y = self._train_data()
        version = self._model_version(X, Y)
        if self._sf_cache is not None and self._sf_cache.version == version:
            c = self._sf_cache
            return c.model, c.X, c.Y, c.version
        torch.manual_seed(self.seed + len(X))
        model = plain_gp(X, Y)
        if self.fids.multi:
            # the fidelity gate's target-only GP: one capped L-BFGS-B run, like the MF model
            # (BoTorch's restarting fit took 40 s at 100 target points here)
            model = fit_model(model, self.fit_maxiter)
        else:  # single-fidelity campaigns keep the foundation's fit (same proposals)
            mll = ExactMarginalLogLikelihood(model.likelihood, model)
            with contextlib.suppress(Exception):
                fit_gpytorch_mll(mll)
        self._sf_cache = _Fit(model, X, Y, version, self._target_obs())
        return model, X, Y, version

    def _ask_single(self, n: int, extra_pending: list[Proposal]) -> list[Proposal]:
        """The foundation's single-fidelity path (used while no experiment has failed)."""
        from botorch.optim import optimize_acqf, optimize_acqf_mixed

        model, X, Y, version = self._fit()
        pending = list(self._pending.values()) + extra_pending
        X_pending = torch.stack([self.space.encode(p.params) for p in pending]) if pending else None
        acqf = self._entry.builder(
            AcquisitionContext(
                model=model, train_X=X, train_Y=Y, best_f=Y.max(), X_pending=X_pending
            )
        )
        bounds = self.space.bounds()
        torch.manual_seed(self.seed + 7919 * len(X) + len(pending))
        options = {"batch_limit": 8, "maxiter": 200}
        fixed = self.space.categorical_patterns() if self.space.categorical_slices else None
        if fixed:
            cand, _ = optimize_acqf_mixed(
                acqf,
                bounds=bounds,
                q=n,
                num_restarts=self.num_restarts,
                raw_samples=self.raw_samples,
                fixed_features_list=fixed,
                options=options,
            )
        else:
            cand, _ = optimize_acqf(
                acqf,
                bounds=bounds,
                q=n,
                num_restarts=self.num_restarts,
                raw_samples=self.raw_samples,
                options=options,
                sequential=n > 1,
            )
        out = []
        target = self.spec.target
        with torch.no_grad():
            for i in range(n):
                x = cand[i : i + 1]
                val = float(acqf(x.unsqueeze(0)).item()) if X_pending is None or n == 1 else None
                out.append(
                    Proposal(
                        params=self.space.decode(cand[i]),
                        fidelity=target.name,
                        cost=target.cost,
                        model_version=version,
                        acquisition_value=val,
                        strategy=self.acquisition,
                    )
                )
        return out

    # ------------------------------------------------------------ multi-fidelity
    def _fid_value(self, name: str) -> float:
        return self._kind.fidelity_value(self.fids, self.fids.index(name))

    def _hold_x(self, x: torch.Tensor, fidelity: str) -> torch.Tensor:
        """Encoded design ``x`` (``d`` or more columns; modified in place) with the columns
        ``fidelity`` ignores set to their held values."""
        for j, v in self._held.get(fidelity, {}).items():
            x[j] = v
        return x

    def _hold(self, params: dict[str, Any], fidelity: str) -> dict[str, Any]:
        """``params`` with the parameters ``fidelity`` ignores set to their held values."""
        if fidelity not in self._held:
            return params
        decoded = self.space.decode(self._hold_x(self.space.encode(params), fidelity))
        names = set(self.spec.fidelities[self.fids.index(fidelity)].ignores)
        return {k: (decoded[k] if k in names else v) for k, v in params.items()}

    def _held_rows(self) -> list[tuple[float, dict[int, float]]]:
        """``(fidelity column value, {column: held value})`` of every fidelity that ignores
        parameters (for :class:`_Held`)."""
        return [(self._fid_value(f), cols) for f, cols in self._held.items()]

    def _inputs(self, proposals: list[Proposal], mf: bool | None = None) -> torch.Tensor:
        """Model inputs of proposals: encoded design (+ fidelity column when multi-fidelity).

        With several fidelities, the parameters a fidelity ignores are set to their held
        values, whatever its proposal said (the fidelity cannot tell them apart).
        """
        mf = self.multi_fidelity if mf is None else mf
        rows = []
        for p in proposals:
            x = self.space.encode(p.params)
            if mf:
                x = self._hold_x(x, p.fidelity)
                x = torch.cat([x, torch.tensor([self._fid_value(p.fidelity)], dtype=torch.double)])
            rows.append(x)
        return torch.stack(rows)

    def _build(self, X: torch.Tensor, Y: torch.Tensor) -> Any:
        """An unfitted model of the chosen kind on model inputs and targets."""
        if self._encoded is not None:
            return self._encoded.build(X, Y)
        return self._kind.build(X, Y, self.fids)

    def _fit_general(self, mf: bool | None = None) -> _Fit:
        """Fit the model on the observations it uses (cached by training data)."""
        if not (self.multi_fidelity if mf is None else mf):
            model, X, Y, version = self._fit()
            return _Fit(model, X, Y, version, self._target_obs())
        obs = list(self._obs)
        X = self._inputs([o.proposal for o in obs])
        Y = self._model_frame([o.value for o in obs])
        version = self._model_version(X, Y, b"mf-v1:" + self.model_name.encode())
        if self._cache is not None and self._cache.version == version:
            return self._cache
        torch.manual_seed(self.seed + len(X))
        model = self._build(X, Y)
        warm = self._warm
        if warm is not None and warm.get("model") == self.model_name:
            _load_hyperparameters(model, warm["values"])
            if warm.get("version") != version:
                model = fit_model(model, self.fit_maxiter)
                if len(X) % COLD_REFIT_EVERY == 0:
                    torch.manual_seed(self.seed + len(X))
                    cold = fit_model(self._build(X, Y), self.fit_maxiter)
                    if _mll(cold) > _mll(model):
                        model = cold
        else:
            model = fit_model(model, self.fit_maxiter)
        model.eval()
        self._warm = {
            "model": self.model_name,
            "version": version,
            "values": {k: v.detach().tolist() for k, v in model.named_parameters()},
        }
        self._cache = _Fit(model, X, Y, version, obs)
        return self._cache

    def _use_cheap_fidelities(self) -> bool:
        """The fidelity gate: whether the cheaper fidelities currently help (see ``__init__``).

        Leave-one-out log predictive density (closed form, hyperparameters fixed) of every
        target observation, in the model frame, under the multi-fidelity model (all data) and
        under a GP on the target observations alone. The result is kept in :attr:`gate`.
        """
        if not (self.multi_fidelity and self.fidelity_gate):
            return self.multi_fidelity
        obs = self._target_obs()
        if len(obs) < GATE_MIN_TARGET:
            self.gate = {"open": True, "reason": f"fewer than {GATE_MIN_TARGET} target points"}
            return True
        fit = self._fit_general(mf=True)
        sf = self._fit_general(mf=False)
        rows = torch.tensor([o.proposal.fidelity == self.fids.target for o in fit.obs])
        try:
            lpd_mf = float(loo_log_density(fit.model)[rows].mean())
            lpd_sf = float(loo_log_density(sf.model).mean())
        except Exception as exc:  # noqa: BLE001 - a model without closed-form LOO: keep MF
            self.gate = {"open": True, "reason": f"no leave-one-out ({type(exc).__name__})"}
            return True
        is_open = lpd_mf > lpd_sf
        self.gate = {"open": is_open, "loo_mf": lpd_mf, "loo_target_only": lpd_sf}
        return is_open

    def _feasibility(self) -> Feasibility | None:
        if not self._failed:
            return None
        ok = [self.space.encode(o.proposal.params) for o in self._obs]
        bad = [self.space.encode(p.params) for p, _ in self._failed]
        X_ok = torch.stack(ok) if ok else torch.zeros(0, self.space.dim, dtype=torch.double)
        return Feasibility(X_ok, torch.stack(bad))

    def _project(self, X: torch.Tensor) -> torch.Tensor:
        if not self.multi_fidelity:
            return X
        X = X.clone()
        X[..., self.space.dim] = self._fid_value(self.fids.target)
        return X

    def _cost_model(self) -> Any:
        from botorch.models.deterministic import GenericDeterministicModel

        d = self.space.dim
        vals = torch.tensor([self._fid_value(n) for n in self.fids.names], dtype=torch.double)
        costs = torch.tensor(self.fids.costs, dtype=torch.double)

        def cost(X: torch.Tensor) -> torch.Tensor:
            i = torch.argmin((X[..., d : d + 1] - vals).abs(), dim=-1)
            return costs[i].unsqueeze(-1)

        return GenericDeterministicModel(cost, num_outputs=1)

    def _believe(self, model: Any, X_pending: torch.Tensor) -> Any:
        """The model conditioned on pending points at their posterior mean."""
        with torch.no_grad():
            mean = model.posterior(X_pending).mean
        return model.condition_on_observations(X_pending, mean)

    def _ask_general(self, n: int, extra_pending: list[Proposal]) -> list[Proposal]:
        """Greedy sequential batch: each pick is pending for the next one."""
        mf = self._use_cheap_fidelities()
        # With the gate closed, proposals stay at the target; the model is either a GP on the
        # target observations alone or the multi-fidelity model (``gate_model``).
        mf_model = mf or (self.multi_fidelity and self.gate_model == "mf")
        fit = self._fit_general(mf_model)
        entry = self._entry if mf or not self.multi_fidelity else get_acquisition(GATED)
        d = self.space.dim
        pending = list(self._pending.values()) + extra_pending
        if not mf:  # pending proposals at other fidelities do not compete at the target
            pending = [p for p in pending if p.fidelity == self.fids.target]
        gen = torch.Generator().manual_seed(self.seed + 7919 * len(fit.X) + len(pending))
        feas = self._feasibility()
        target = self.fids.target
        tmask = torch.tensor([o.proposal.fidelity == target for o in fit.obs])
        best_f = fit.Y[tmask].max() if bool(tmask.any()) else fit.Y.max()

        cat_patterns = self.space.categorical_patterns()
        if mf_model:
            choices = self.fids.names if mf and entry.multi_fidelity else [target]
            patterns = [{d: self._fid_value(f), **c} for f in choices for c in cat_patterns]
            fvals = [self._fid_value(f) for f in self.fids.names]
            bounds = torch.cat(
                [
                    self.space.bounds(),
                    torch.tensor([[min(fvals)], [max(fvals)]], dtype=torch.double),
                ],
                dim=-1,
            )
            designs = torch.cat([self.space.random(N_CANDIDATES, gen), fit.X[:, :d]])
            tcol = torch.full((len(designs), 1), self._fid_value(target), dtype=torch.double)
            candidate_set = torch.cat([designs, tcol], dim=-1)
            cost_model = self._cost_model()
        else:
            patterns = cat_patterns
            bounds = self.space.bounds()
            candidate_set = torch.cat([self.space.random(N_CANDIDATES, gen), fit.X])
            cost_model = None
        with torch.no_grad():
            current_value = fit.model.posterior(candidate_set).mean.max()

        out: list[Proposal] = []
        if mf and self.verify_best and entry.multi_fidelity and self._verification_due(pending):
            best = self._unverified_best(fit, pending)
            if best is not None:
                x_t = self._inputs([best], mf=True)
                x_t[..., d] = self._fid_value(target)
                with torch.no_grad():
                    predicted = float(fit.model.posterior(x_t).mean)
                out.append(
                    Proposal(
                        params=dict(best.params),
                        fidelity=target,
                        cost=self.fids.cost_of(target),
                        model_version=fit.version,
                        acquisition_value=predicted,
                        strategy=VERIFY,
                    )
                )
        for i in range(len(out), n):
            in_flight = pending + out
            X_pending = self._inputs(in_flight, mf_model) if in_flight else None
            model = fit.model
            if X_pending is not None and entry.pending == "believer":
                model = self._believe(model, X_pending)
            torch.manual_seed(self.seed + 7919 * len(fit.X) + len(in_flight) + i)
            ctx = AcquisitionContext(
                model=model,
                train_X=fit.X,
                train_Y=fit.Y,
                best_f=best_f,
                X_pending=X_pending if entry.pending == "native" else None,
                multi_fidelity=mf_model,
                fidelity_column=d if mf_model else None,
                target_value=self._fid_value(target) if mf_model else 1.0,
                cost_model=cost_model,
                project=self._project,
                candidate_set=candidate_set,
                current_value=current_value,
            )
            acqf = entry.builder(ctx)
            if mf_model and self._held and not _one_shot(acqf):
                acqf = _Held(acqf, self._held_rows())
            x, val = self._maximize(acqf, bounds, patterns, gen, feas, entry.log_scale)
            if mf_model:
                fvals = torch.tensor([self._fid_value(f) for f in self.fids.names])
                fi = int(torch.argmin((fvals - float(x[d])).abs()))
                x = self._hold_x(x.clone(), self.fids.names[fi])
            else:
                fi = self.fids.target_index
            out.append(
                Proposal(
                    params=self.space.decode(x[:d]),
                    fidelity=self.fids.names[fi],
                    cost=self.fids.costs[fi],
                    model_version=fit.version,
                    acquisition_value=val,
                    strategy=entry.name,
                )
            )
        return out

    def _maximize(
        self,
        acqf: Any,
        bounds: torch.Tensor,
        patterns: list[dict[int, float]],
        gen: torch.Generator,
        feas: Feasibility | None,
        log_scale: bool,
    ) -> tuple[torch.Tensor, float]:
        from botorch.acquisition.acquisition import OneShotAcquisitionFunction

        if isinstance(acqf, OneShotAcquisitionFunction):
            # Knowledge gradient optimises its fantasy solutions jointly: BoTorch's own loop.
            from botorch.optim import optimize_acqf_mixed

            cand, val = optimize_acqf_mixed(
                acqf,
                bounds=bounds,
                q=1,
                num_restarts=max(2, self.num_restarts // 2),
                raw_samples=max(32, self.raw_samples // 4),
                fixed_features_list=patterns or [{}],
                options={"batch_limit": 4, "maxiter": 100},
            )
            return cand[0].detach(), float(val)
        if feas is not None:
            acqf = FeasibilityWeighted(acqf, feas, self.space.dim, log_scale)
        return optimize_mixed(
            acqf,
            bounds,
            patterns,
            num_restarts=self.num_restarts,
            raw_samples=self.raw_samples,
            generator=gen,
        )

    # ------------------------------------------------------------------ recommend
    def recommend(self) -> Proposal:
        """The design with the best posterior mean at the target fidelity.

        Single fidelity (or while the fidelity gate is closed): among the designs measured at
        the target. Several fidelities: among every observed design (at any fidelity), scored
        by the model's posterior mean at the target; the proposal that measured it at the
        target is returned when there is one, else a new target proposal with strategy
        ``recommendation`` (the optimiser measures such a design at the target at its next
        ask: ``verify_best``). With fewer than two target observations, the first one.

        Raises:
            LabError: If nothing has been observed at the target fidelity.
        """
        obs = self._target_obs()
        if not obs:
            raise LabError("nothing observed at the target fidelity yet")
        if len(obs) < 2:
            return obs[0].proposal
        if not self._use_cheap_fidelities():
            model, X, _, _ = self._fit()
            with torch.no_grad():
                mean = model.posterior(X).mean.squeeze(-1)
            return obs[int(torch.argmax(mean))].proposal
        fit = self._fit_general()
        best = self._best_design(fit)
        x = self.space.encode(best.params)
        for o in obs:
            if torch.equal(self.space.encode(o.proposal.params), x):
                return o.proposal
        target = self.spec.target
        return Proposal(
            params=dict(best.params),
            fidelity=target.name,
            cost=target.cost,
            model_version=fit.version,
            strategy=RECOMMENDATION,
        )

    def _best_design(self, fit: _Fit) -> Proposal:
        """The observed design (any fidelity) with the best posterior mean at the target.

        A design observed only at a fidelity that ignores some parameters says nothing about
        them (its proposal held them at mid-range): it competes with those parameters set to
        the values with the best target posterior mean (see :meth:`_complete`), and is
        returned that way.
        """
        X = self._project(fit.X)
        blind = [r for r, o in enumerate(fit.obs) if o.proposal.fidelity in self._held]
        if blind:
            X = self._complete(fit, X, blind)
        with torch.no_grad():
            mean = fit.model.posterior(X).mean.squeeze(-1)
        best = int(torch.argmax(mean))
        proposal = fit.obs[best].proposal
        if best in blind:
            proposal = Proposal(
                params=self.space.decode(X[best, : self.space.dim]),
                fidelity=self.fids.target,
                cost=self.fids.cost_of(self.fids.target),
                model_version=fit.version,
                strategy=RECOMMENDATION,
            )
        return proposal

    def _complete(self, fit: _Fit, X: torch.Tensor, rows: list[int]) -> torch.Tensor:
        """``X`` (target inputs) with the ignored columns of ``rows`` set to the values, among
        those measured at the target and :data:`N_COMPLETIONS` random ones, with the best
        target posterior mean for each row's other columns."""
        gen = torch.Generator().manual_seed(self.seed + len(fit.X))
        seen = [r for r, o in enumerate(fit.obs) if o.proposal.fidelity not in self._held]
        designs = torch.cat([self.space.random(N_COMPLETIONS, gen), X[seen][:, : self.space.dim]])
        X = X.clone()
        with torch.no_grad():
            for r in rows:
                cols = sorted(self._held[fit.obs[r].proposal.fidelity])  # what it did not see
                trial = X[r].repeat(len(designs), 1)
                trial[:, cols] = designs[:, cols]
                mean = fit.model.posterior(trial).mean.squeeze(-1)
                X[r, cols] = designs[int(torch.argmax(mean)), cols]
        return X

    def _verification_due(self, pending: list[Proposal]) -> bool:
        """Whether a verification is due.

        Right away while the model has not yet been checked, or when its last check was a
        surprise (the measured target value missed the prediction by more than
        :data:`VERIFY_SURPRISE` standard deviations of the target observations): the cheap
        fidelities mislead it. Otherwise once ``verify_after`` target costs have been spent at
        cheaper fidelities since the last target measurement.
        """
        target = self.fids.target
        if any(p.fidelity == target for p in pending):
            return False
        spent = 0.0
        for p in reversed([o.proposal for o in self._obs]):
            if p.fidelity == target:
                break
            spent += p.cost
        if spent <= 0.0:
            return False
        checks = [o for o in self._obs if o.proposal.strategy == VERIFY]
        if not checks or checks[-1].proposal.acquisition_value is None:
            return True
        y_t = self._model_frame([o.value for o in self._target_obs()]).squeeze(-1)
        scale = float(y_t.std()) if len(y_t) > 1 else 1.0
        y_last = float(self._model_frame([checks[-1].value]))
        miss = abs(y_last - checks[-1].proposal.acquisition_value) / max(scale, 1e-9)
        if miss > VERIFY_SURPRISE:
            return True
        return spent >= self.verify_after * self.fids.cost_of(target) - 1e-9

    def _unverified_best(self, fit: _Fit, pending: list[Proposal]) -> Proposal | None:
        """The observed design with the best target posterior mean, if not yet measured there."""
        best = self._best_design(fit)
        x = self.space.encode(best.params)
        target = self.fids.target
        for p in [o.proposal for o in self._target_obs()] + pending:
            if p.fidelity == target and torch.equal(self.space.encode(p.params), x):
                return None
        return best

    def best_observed(self) -> tuple[Proposal, float]:
        """The best observed value at the target fidelity and its proposal."""
        obs = self._target_obs()
        if not obs:
            raise LabError("nothing observed at the target fidelity yet")
        sign = 1 if self.spec.objective.direction == "maximize" else -1
        best = max(obs, key=lambda o: sign * o.value)
        return best.proposal, best.value

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """JSON-friendly state, enough to resume with :meth:`from_state_dict`."""
        return {
            "seed": self.seed,
            "acquisition": self.acquisition,
            "model": self.model_name,
            "n_initial_drawn": self._n_initial_drawn,
            "observations": [
                {"proposal": o.proposal.to_dict(), "value": o.value} for o in self._obs
            ],
            "failed": [{"proposal": p.to_dict(), "reason": r} for p, r in self._failed],
            "pending": [p.to_dict() for p in self._pending.values()],
            "hyperparameters": self._warm,
        }

    @classmethod
    def from_state_dict(cls, spec: Campaign, state: dict[str, Any], **kwargs: Any) -> Optimizer:
        """Rebuild an optimiser from :meth:`state_dict` output.

        Args:
            spec: The campaign.
            state: Output of :meth:`state_dict`.
            **kwargs: Further constructor arguments (``num_restarts``, ...).
        """
        opt = cls(
            spec,
            seed=state["seed"],
            acquisition=state.get("acquisition"),
            model=state.get("model"),
            **kwargs,
        )
        opt._n_initial_drawn = state["n_initial_drawn"]
        opt._obs = [_Obs(Proposal(**o["proposal"]), o["value"]) for o in state["observations"]]
        opt._failed = [(Proposal(**f["proposal"]), f["reason"]) for f in state["failed"]]
        opt._pending = {p["key"]: Proposal(**p) for p in state["pending"]}
        opt._warm = state.get("hyperparameters")
        return opt
