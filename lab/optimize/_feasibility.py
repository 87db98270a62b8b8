"""Failed experiments as infeasibility data.

A failed experiment says "this recipe may not work". The optimiser keeps a probability of
success over the encoded design space and weights the acquisition by it, instead of imputing
a made-up objective value at the failure (a penalty would drag the model wherever a transient
fault happened to strike).

The estimate is a kernel-smoothed success rate (a Nadaraya-Watson classifier with a Beta
prior at the campaign's overall success rate):

    p(x) = (a r + sum_ok w_i(x)) / (a + sum_all w_i(x)),   w_i(x) = exp(-|x - x_i|^2 / (2 l^2))

with ``r`` the overall success rate, ``a`` = :data:`PRIOR_WEIGHT` pseudo-observations and
``l`` = :data:`LENGTHSCALE` in unit-cube coordinates. At a design that failed once, with no
success nearby, ``p = a r / (a + 1)``, about 0.1.
Failures that strike at random (an instrument fault) lower ``p`` evenly, which leaves the
argmax of the acquisition unchanged; failures clustered in a region (a recipe that does not
form a film) drive ``p`` towards 0 there; a failed recipe itself is never re-proposed
verbatim unless successes surround it.
"""

from __future__ import annotations

from typing import Any

import torch

LENGTHSCALE = 0.1
"""Length scale of the success-rate kernel, in unit-cube coordinates of the encoded space."""

PRIOR_WEIGHT = 0.2
"""Strength of the prior (the overall success rate), in pseudo-observations."""

P_MIN = 1e-3
"""Floor of the probability of success (keeps log-acquisitions finite)."""


class Feasibility:
    """Probability that an experiment at an encoded design succeeds.

    Args:
        X_ok: ``n x d`` encoded designs that were measured.
        X_failed: ``m x d`` encoded designs that failed (``m >= 1``).
        lengthscale: Kernel length scale.
    """

    def __init__(
        self, X_ok: torch.Tensor, X_failed: torch.Tensor, lengthscale: float = LENGTHSCALE
    ) -> None:
        self.X = torch.cat([X_ok, X_failed])
        self.ok = torch.cat(
            [torch.ones(len(X_ok), dtype=torch.double), torch.zeros(len(X_failed))]
        ).double()
        self.rate = float(self.ok.mean())
        self.lengthscale = lengthscale

    def prob(self, X: torch.Tensor) -> torch.Tensor:
        """Probability of success at ``... x d`` designs."""
        d2 = ((X.unsqueeze(-2) - self.X) ** 2).sum(-1)
        w = torch.exp(-0.5 * d2 / self.lengthscale**2)
        a = PRIOR_WEIGHT
        p = (a * self.rate + (w * self.ok).sum(-1)) / (a + w.sum(-1))
        return p.clamp(P_MIN, 1.0)


class FeasibilityWeighted(torch.nn.Module):
    """An acquisition function weighted by the probability that its q points all succeed.

    Args:
        acqf: The acquisition function (``b x q x D`` -> ``b``).
        feasibility: The success model over the first ``d`` columns.
        d: Number of design columns (the fidelity column, if any, is ignored).
        log_scale: Whether ``acqf`` returns logarithms (then ``log p`` is added).
    """

    def __init__(self, acqf: Any, feasibility: Feasibility, d: int, log_scale: bool) -> None:
        super().__init__()
        self.acqf = acqf
        self.feasibility = feasibility
        self.d = d
        self.log_scale = log_scale
        self.model = getattr(acqf, "model", None)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        a = self.acqf(X)
        p = self.feasibility.prob(X[..., : self.d]).prod(-1)
        if self.log_scale:
            return a + torch.log(p)
        return torch.where(a > 0, a * p, a / p)
