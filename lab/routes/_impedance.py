"""Shared pieces of the impedance routes: the AC level option and reading the columns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lab.errors import AnalysisError
from lab.routes._base import RouteKind
from lab.steps._base import Arg

AC_VOLTAGE = Arg(
    "ac_voltage", "V", "AC test level (rms)", default=0.01, above=0.0, limit="max_ac_voltage_v"
)
"""The impedance meter's AC level, an option of every impedance route."""


def impedance_columns(readings: list[dict[str, Any]]) -> tuple[np.ndarray, ...]:
    """``(frequency Hz, Re Z ohm, Im Z ohm)`` arrays from a run's readings.

    Raises:
        AnalysisError: If there are no readings or a column is missing.
    """
    if not readings:
        raise AnalysisError("the run produced no readings")

    def column(suffix: str) -> np.ndarray:
        try:
            key = next(k for k in readings[0] if k.endswith(suffix))
            return np.array([r[key] for r in readings], dtype=float)
        except (StopIteration, KeyError, TypeError, ValueError):
            raise AnalysisError(f"readings lack a finite '*{suffix}' value") from None

    return column("_frequency"), column("_z_real"), column("_z_imag")


class ImpedanceRoute(RouteKind):
    """What the impedance routes share: the meter kind and the AC level applied on staging."""

    instruments = ("scpi_lcr",)

    def configure(self, device: Any, values: Mapping[str, Any]) -> None:
        """The AC level is set when the meter is staged."""
        device.ac_voltage_v = float(values["ac_voltage"])
