"""Registry of acquisition strategies, by name; a duplicate name is an error.

A builder is called with one :class:`AcquisitionContext` and returns a BoTorch
``AcquisitionFunction`` to be maximised over the model's input space (the encoded design
space, plus the fidelity column for a multi-fidelity model).

Registered here:

``qlognei``, ``qlogei``
    Single-fidelity improvement (Monte Carlo, log space); with a multi-fidelity model they only
    propose the target fidelity.
``mf_gibbon``
    Multi-fidelity GIBBON (``qMultiFidelityLowerBoundMaxValueEntropy``): information gained
    about the maximum at the target fidelity per unit cost (inverse-cost utility).
``mf_mes``
    Multi-fidelity max-value entropy search (``qMultiFidelityMaxValueEntropy``), same utility.
``mf_kg``
    Multi-fidelity knowledge gradient (``qMultiFidelityKnowledgeGradient``), same utility.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch

from lab.registry import Registry


@dataclass
class AcquisitionContext:
    """Everything a builder may need.

    Attributes:
        model: The fitted model (conditioned on believed pending points when the strategy
            asked for that).
        train_X: Model inputs of the observations (fidelity column last when multi-fidelity).
        train_Y: Observations in the model frame (maximised).
        best_f: Best observation at the target fidelity, model frame.
        X_pending: Model inputs of the proposals in flight (``None`` when there are none, or
            when the optimiser already conditioned the model on them).
        multi_fidelity: Whether the model has a fidelity column.
        fidelity_column: Index of the fidelity column (``None`` for single fidelity).
        target_value: Value of the fidelity column at the target fidelity.
        cost_model: A deterministic BoTorch model of the cost of an input (multi-fidelity).
        project: Maps inputs to the target fidelity (identity for single fidelity).
        candidate_set: Random design points at the target fidelity (for max-value sampling).
        current_value: Best posterior mean at the target fidelity (for knowledge gradient).
    """

    model: Any
    train_X: torch.Tensor
    train_Y: torch.Tensor
    best_f: torch.Tensor
    X_pending: torch.Tensor | None = None
    multi_fidelity: bool = False
    fidelity_column: int | None = None
    target_value: float = 1.0
    cost_model: Any = None
    project: Callable[[torch.Tensor], torch.Tensor] = lambda X: X
    candidate_set: torch.Tensor | None = None
    current_value: torch.Tensor | None = None


AcquisitionBuilder = Callable[[AcquisitionContext], Any]


@dataclass(frozen=True)
class AcquisitionEntry:
    """A registered acquisition.

    Attributes:
        name: Registered name.
        builder: ``builder(ctx) -> AcquisitionFunction``.
        multi_fidelity: Whether it chooses the fidelity (else it proposes the target only).
        log_scale: Whether its values are logarithms (matters when weighting by feasibility).
        pending: ``"native"`` (it takes ``X_pending``) or ``"believer"`` (the optimiser
            conditions the model on pending points at their posterior mean instead).
    """

    name: str
    builder: AcquisitionBuilder
    multi_fidelity: bool = False
    log_scale: bool = False
    pending: Literal["native", "believer"] = "native"


_REGISTRY: Registry[AcquisitionEntry] = Registry("acquisition")


def register_acquisition(
    name: str,
    *,
    multi_fidelity: bool = False,
    log_scale: bool = False,
    pending: Literal["native", "believer"] = "native",
) -> Callable[[AcquisitionBuilder], AcquisitionBuilder]:
    """Register an acquisition builder under ``name`` (see :class:`AcquisitionEntry`).

    Raises:
        LabError: If ``name`` is already registered.
    """

    def deco(fn: AcquisitionBuilder) -> AcquisitionBuilder:
        _REGISTRY.add(name, AcquisitionEntry(name, fn, multi_fidelity, log_scale, pending))
        return fn

    return deco


def get_acquisition(name: str) -> AcquisitionEntry:
    """Return the acquisition registered under ``name``.

    Raises:
        LabError: If no acquisition has that name.
    """
    return _REGISTRY.get(name)


def acquisition_names() -> list[str]:
    """Names of every registered acquisition."""
    return _REGISTRY.names()


@register_acquisition("qlognei", log_scale=True)
def _qlognei(ctx: AcquisitionContext) -> Any:
    from botorch.acquisition.logei import qLogNoisyExpectedImprovement

    if ctx.multi_fidelity:
        # Improvement at the target fidelity; baseline = every observed design, projected.
        X_base = ctx.project(ctx.train_X).unique(dim=0)
        return qLogNoisyExpectedImprovement(
            model=ctx.model, X_baseline=X_base, X_pending=ctx.X_pending, prune_baseline=True
        )
    return qLogNoisyExpectedImprovement(
        model=ctx.model, X_baseline=ctx.train_X, X_pending=ctx.X_pending, prune_baseline=True
    )


@register_acquisition("qlogei", log_scale=True)
def _qlogei(ctx: AcquisitionContext) -> Any:
    from botorch.acquisition.logei import qLogExpectedImprovement

    return qLogExpectedImprovement(model=ctx.model, best_f=ctx.best_f, X_pending=ctx.X_pending)


def _inverse_cost(ctx: AcquisitionContext) -> Any:
    from botorch.acquisition.cost_aware import InverseCostWeightedUtility

    return InverseCostWeightedUtility(cost_model=ctx.cost_model)


@register_acquisition("mf_gibbon", multi_fidelity=True, pending="believer")
def _mf_gibbon(ctx: AcquisitionContext) -> Any:
    from botorch.acquisition.max_value_entropy_search import (
        qMultiFidelityLowerBoundMaxValueEntropy,
    )

    return qMultiFidelityLowerBoundMaxValueEntropy(
        ctx.model,
        candidate_set=ctx.candidate_set,
        cost_aware_utility=_inverse_cost(ctx),
        project=ctx.project,
    )


@register_acquisition("mf_mes", multi_fidelity=True, pending="believer")
def _mf_mes(ctx: AcquisitionContext) -> Any:
    from botorch.acquisition.max_value_entropy_search import qMultiFidelityMaxValueEntropy

    return qMultiFidelityMaxValueEntropy(
        ctx.model,
        candidate_set=ctx.candidate_set,
        cost_aware_utility=_inverse_cost(ctx),
        project=ctx.project,
    )


@register_acquisition("mf_kg", multi_fidelity=True)
def _mf_kg(ctx: AcquisitionContext) -> Any:
    from botorch.acquisition.knowledge_gradient import qMultiFidelityKnowledgeGradient

    return qMultiFidelityKnowledgeGradient(
        ctx.model,
        num_fantasies=16,
        current_value=ctx.current_value,
        cost_aware_utility=_inverse_cost(ctx),
        project=ctx.project,
        X_pending=ctx.X_pending,
    )
