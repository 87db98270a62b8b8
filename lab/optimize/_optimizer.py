"""The ask/tell optimiser: a space-filling start, then a GP with a registered acquisition.

Values are modelled in a maximisation frame: ``y = sign * f(value)`` where ``f`` is ``log`` when
the campaign asks for a log transform and ``sign`` is -1 for minimisation. Proposals that were
asked but not yet told are passed to the acquisition as ``X_pending``, so asynchronous batches
do not collide. Failed experiments are remembered and never proposed again verbatim.
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
from lab.optimize._acquisition import get_acquisition
from lab.optimize._space import DesignSpace
from lab.spec import Campaign

INITIAL = "initial_design"


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
        strategy: ``initial_design`` or the acquisition's registered name.
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


class Optimizer:
    """Ask/tell Bayesian optimiser over a campaign's design space.

    Args:
        spec: The validated campaign.
        seed: Seed for the initial design and the acquisition optimiser.
        acquisition: Registered acquisition name.
        num_restarts: Restarts of the acquisition optimiser.
        raw_samples: Raw samples used to pick the restarts.
    """

    def __init__(
        self,
        spec: Campaign,
        seed: int = 0,
        *,
        acquisition: str = "qlognei",
        num_restarts: int = 8,
        raw_samples: int = 256,
    ) -> None:
        self.spec = spec
        self.seed = seed
        self.acquisition = acquisition
        get_acquisition(acquisition)
        self.num_restarts = num_restarts
        self.raw_samples = raw_samples
        self.space = DesignSpace(spec)
        self._obs: list[_Obs] = []
        self._failed: list[tuple[Proposal, str]] = []
        self._pending: dict[str, Proposal] = {}
        self._n_initial_drawn = 0

    # ------------------------------------------------------------------ tell
    def tell(self, proposal: Proposal, value: float) -> None:
        """Record the objective value of a proposal (campaign units).

        Raises:
            LabError: If the value is not finite, or not positive under a log transform.
        """
        value = float(value)
        if not math.isfinite(value):
            raise LabError(f"objective value {value} is not finite; use tell_failed instead")
        if self.spec.objective.log_transform and value <= 0:
            raise LabError(
                f"objective value {value} is not positive but the campaign models its log: "
                "set objective.log_transform: false"
            )
        self._forget_pending(proposal)
        self._obs.append(_Obs(proposal, value))

    def tell_failed(self, proposal: Proposal, reason: str) -> None:
        """Record that a proposal could not be evaluated (kept, never re-proposed verbatim)."""
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

    def ask(self, n: int = 1) -> list[Proposal]:
        """Propose ``n`` experiments at the target fidelity.

        Returns:
            ``n`` proposals; the first ``initial_design`` of a campaign are space-filling.
        """
        if n < 1:
            raise LabError("ask(n) needs n >= 1")
        target = self.spec.target
        n_init_left = max(0, self.spec.initial_design - self._n_initial_drawn)
        k = min(n, n_init_left)
        if k == 0 and len(self._target_obs()) < 2:
            k = n  # too little data to fit a model: keep filling the space
        out: list[Proposal] = [
            Proposal(params, target.name, target.cost, INITIAL)
            for params in self.space.sobol(k, self.seed, skip=self._n_initial_drawn)
        ]
        self._n_initial_drawn += k
        if len(out) < n:
            out.extend(self._ask_model(n - len(out), extra_pending=out))
        for p in out:
            self._pending[p.key] = p
        return out

    def _target_obs(self) -> list[_Obs]:
        t = self.spec.target.name
        return [o for o in self._obs if o.proposal.fidelity == t]

    def _train_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        obs = self._target_obs()
        X = torch.stack([self.space.encode(o.proposal.params) for o in obs])
        y = torch.tensor([o.value for o in obs], dtype=torch.double)
        if self.spec.objective.log_transform:
            y = torch.log(y)
        if self.spec.objective.direction == "minimize":
            y = -y
        return X, y.unsqueeze(-1)

    def _model_version(self, X: torch.Tensor, Y: torch.Tensor) -> str:
        h = hashlib.sha256(b"gp-v1")
        h.update(X.numpy().tobytes())
        h.update(Y.numpy().tobytes())
        return h.hexdigest()[:12]

    def _fit(self) -> tuple[Any, torch.Tensor, torch.Tensor, str]:
        from botorch.fit import fit_gpytorch_mll
        from botorch.models import SingleTaskGP
        from botorch.models.transforms import Standardize
        from gpytorch.mlls import ExactMarginalLogLikelihood

        X, Y = self._train_data()
        torch.manual_seed(self.seed + len(X))
        model = SingleTaskGP(X, Y, outcome_transform=Standardize(m=1))
        mll = ExactMarginalLogLikelihood(model.likelihood, model)
        with contextlib.suppress(Exception):
            fit_gpytorch_mll(mll)
        return model, X, Y, self._model_version(X, Y)

    def _ask_model(self, n: int, extra_pending: list[Proposal]) -> list[Proposal]:
        from botorch.optim import optimize_acqf, optimize_acqf_mixed

        model, X, Y, version = self._fit()
        pending = list(self._pending.values()) + extra_pending
        X_pending = torch.stack([self.space.encode(p.params) for p in pending]) if pending else None
        acqf = get_acquisition(self.acquisition)(model, X, Y.max(), X_pending)
        bounds = torch.stack(
            [torch.zeros(self.space.dim, dtype=torch.double), torch.ones(self.space.dim)]
        ).double()
        torch.manual_seed(self.seed + 7919 * len(X) + len(pending))
        options = {"batch_limit": 8, "maxiter": 200}
        slices = self.space.categorical_slices
        if slices:
            fixed: list[dict[int, float]] = [{}]
            for a, b in slices:
                fixed = [
                    {**f, **{j: float(j == k) for j in range(a, b)}}
                    for f in fixed
                    for k in range(a, b)
                ]
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

    # ------------------------------------------------------------------ recommend
    def recommend(self) -> Proposal:
        """Best observed point by posterior mean at the target fidelity.

        With fewer than two observations the best observed value is returned.

        Raises:
            LabError: If nothing has been observed at the target fidelity.
        """
        obs = self._target_obs()
        if not obs:
            raise LabError("nothing observed at the target fidelity yet")
        if len(obs) < 2:
            return obs[0].proposal
        model, X, _, _ = self._fit()
        with torch.no_grad():
            mean = model.posterior(X).mean.squeeze(-1)
        return obs[int(torch.argmax(mean))].proposal

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
            "n_initial_drawn": self._n_initial_drawn,
            "observations": [
                {"proposal": o.proposal.to_dict(), "value": o.value} for o in self._obs
            ],
            "failed": [{"proposal": p.to_dict(), "reason": r} for p, r in self._failed],
            "pending": [p.to_dict() for p in self._pending.values()],
        }

    @classmethod
    def from_state_dict(cls, spec: Campaign, state: dict[str, Any]) -> Optimizer:
        """Rebuild an optimiser from :meth:`state_dict` output."""
        opt = cls(spec, seed=state["seed"], acquisition=state.get("acquisition", "qlognei"))
        opt._n_initial_drawn = state["n_initial_drawn"]
        opt._obs = [_Obs(Proposal(**o["proposal"]), o["value"]) for o in state["observations"]]
        opt._failed = [(Proposal(**f["proposal"]), f["reason"]) for f in state["failed"]]
        opt._pending = {p["key"]: Proposal(**p) for p in state["pending"]}
        return opt
