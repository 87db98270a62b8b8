"""Registry of acquisition strategies, by name; a duplicate name is an error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lab.errors import LabError

AcquisitionBuilder = Callable[..., Any]
_REGISTRY: dict[str, AcquisitionBuilder] = {}


def register_acquisition(
    name: str,
) -> Callable[[AcquisitionBuilder], AcquisitionBuilder]:
    """Register an acquisition builder under ``name``.

    The builder is called as ``builder(model, train_X, best_f, X_pending)`` and returns a
    BoTorch ``AcquisitionFunction`` to be maximised over the unit cube.

    Raises:
        LabError: If ``name`` is already registered.
    """

    def deco(fn: AcquisitionBuilder) -> AcquisitionBuilder:
        if name in _REGISTRY:
            raise LabError(f"acquisition '{name}' is already registered; choose another name")
        _REGISTRY[name] = fn
        return fn

    return deco


def get_acquisition(name: str) -> AcquisitionBuilder:
    """Return the builder registered under ``name``.

    Raises:
        LabError: If no acquisition has that name.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise LabError(
            f"unknown acquisition '{name}'; registered: {', '.join(sorted(_REGISTRY))}"
        ) from None


def acquisition_names() -> list[str]:
    """Names of every registered acquisition."""
    return sorted(_REGISTRY)


@register_acquisition("qlognei")
def _qlognei(model: Any, train_X: Any, best_f: Any, X_pending: Any) -> Any:
    from botorch.acquisition.logei import qLogNoisyExpectedImprovement

    return qLogNoisyExpectedImprovement(
        model=model, X_baseline=train_X, X_pending=X_pending, prune_baseline=True
    )


@register_acquisition("qlogei")
def _qlogei(model: Any, train_X: Any, best_f: Any, X_pending: Any) -> Any:
    from botorch.acquisition.logei import qLogExpectedImprovement

    return qLogExpectedImprovement(model=model, best_f=best_f, X_pending=X_pending)
