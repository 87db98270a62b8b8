"""Pure ask/tell optimisation over a campaign's design space and fidelities (no I/O).

Example:
    >>> opt = Optimizer(spec, seed=0)
    >>> batch = opt.ask(2)
    >>> opt.tell(batch[0], 12.3)
    >>> best = opt.recommend()
"""

from typing import Any

from lab.optimize._acquisition import (
    AcquisitionContext,
    acquisition_names,
    get_acquisition,
    register_acquisition,
)
from lab.optimize._models import get_model, model_names, register_model
from lab.optimize._optimizer import Optimizer, Proposal


def surrogate_for(*args: Any, **kwargs: Any) -> Any:
    """A prepared interface surrogate for ``model="mf_surrogate"`` (lazy import).

    See :func:`lab.optimize._surrogate_model.surrogate_for`.
    """
    from lab.optimize._surrogate_model import surrogate_for as build

    return build(*args, **kwargs)


__all__ = [
    "AcquisitionContext",
    "Optimizer",
    "Proposal",
    "acquisition_names",
    "get_acquisition",
    "get_model",
    "model_names",
    "register_acquisition",
    "register_model",
    "surrogate_for",
]
