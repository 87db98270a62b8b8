"""``impedance_single``: one impedance reading at one frequency, a cheap screening value.

The objective is ``Re Z`` at that frequency times the electrode area (ohm cm²): below the
interface's characteristic frequency it approaches ``R_s + R_int``.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from lab.errors import AnalysisError
from lab.routes._impedance import AC_VOLTAGE, ImpedanceRoute, impedance_columns
from lab.steps._base import Arg, StepContext

if TYPE_CHECKING:
    from lab.spec import Objective


class ImpedanceSingle(ImpedanceRoute):
    """One reading at ``frequency``."""

    name = "impedance_single"
    doc = "one impedance reading at one frequency (screening)"
    plan_name = "measure_screening"
    options = (
        Arg(
            "frequency",
            "Hz",
            "test frequency",
            default=100.0,
            above=0.0,
            floor="min_frequency_hz",
            limit="max_frequency_hz",
        ),
        AC_VOLTAGE,
    )

    def plan(
        self, device: Any, values: Mapping[str, Any], ctx: StepContext, md: dict[str, Any]
    ) -> Generator[Any, Any, Any]:
        """One event (see :func:`lab.plans.measure_screening`)."""
        from lab.plans import measure_screening

        return (yield from measure_screening(device, float(values["frequency"]), ctx.safety, md=md))

    def analyse(
        self, readings: list[dict[str, Any]], values: Mapping[str, Any], objective: Objective
    ) -> tuple[float, dict[str, Any], str]:
        """``Re Z`` times the electrode area."""
        f, zr, zi = impedance_columns(readings)
        raw = {"frequency_hz": f.tolist(), "z_real_ohm": zr.tolist(), "z_imag_ohm": zi.tolist()}
        if not (np.isfinite(zr[0]) and zr[0] > 0):
            raise AnalysisError(f"screening reading {zr[0]} ohm is not a positive resistance")
        return float(zr[0]) * objective.electrode_area_cm2, raw, f"Re Z at {f[0]:g} Hz (screening)"
