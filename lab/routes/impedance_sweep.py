"""``impedance_sweep``: a log-spaced impedance sweep fitted to an equivalent circuit.

The objective is the area-specific interfacial resistance ``R_int`` of an
``R_s + ZARC`` fit (ohm cm², with the objective's ``electrode_area_cm2``).
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import TYPE_CHECKING, Any

from lab.analysis import fit_rc_zarc, interfacial_resistance
from lab.errors import SpecError
from lab.routes._impedance import AC_VOLTAGE, ImpedanceRoute, impedance_columns
from lab.steps._base import Arg, StepContext

if TYPE_CHECKING:
    from lab.spec import Objective


class ImpedanceSweep(ImpedanceRoute):
    """Sweep from ``freq_max`` down to ``freq_min`` in ``points`` log-spaced steps."""

    name = "impedance_sweep"
    doc = "impedance sweep fitted to R_s + ZARC: the interfacial resistance"
    plan_name = "characterize"
    options = (
        Arg(
            "freq_min",
            "Hz",
            "lowest frequency",
            default=20.0,
            above=0.0,
            floor="min_frequency_hz",
            limit="max_frequency_hz",
        ),
        Arg(
            "freq_max",
            "Hz",
            "highest frequency",
            default=1.0e6,
            above=0.0,
            floor="min_frequency_hz",
            limit="max_frequency_hz",
        ),
        Arg(
            "points", None, "number of log-spaced frequencies", default=15, at_least=3, integer=True
        ),
        AC_VOLTAGE,
    )

    def check_options(self, values: Mapping[str, Any], where: str) -> None:
        """The sweep's bounds are in order and it has at most 201 points."""
        if not float(values["freq_min"]) < float(values["freq_max"]):
            raise SpecError(
                f"{where}: freq_min={values['freq_min']:g} Hz is not below "
                f"freq_max={values['freq_max']:g} Hz: swap them"
            )
        if int(values["points"]) > 201:
            raise SpecError(f"{where}.points: at most 201 frequencies per sweep")

    def plan(
        self, device: Any, values: Mapping[str, Any], ctx: StepContext, md: dict[str, Any]
    ) -> Generator[Any, Any, Any]:
        """One event per frequency (see :func:`lab.plans.characterize`)."""
        from lab.plans import characterize, sweep_frequencies

        freqs = sweep_frequencies(
            float(values["freq_min"]), float(values["freq_max"]), int(values["points"])
        )
        return (yield from characterize(device, freqs, ctx.safety, md=md))

    def analyse(
        self, readings: list[dict[str, Any]], values: Mapping[str, Any], objective: Objective
    ) -> tuple[float, dict[str, Any], str]:
        """Fit the sweep; the objective is ``R_int`` times the electrode area."""
        f, zr, zi = impedance_columns(readings)
        raw: dict[str, Any] = {
            "frequency_hz": f.tolist(),
            "z_real_ohm": zr.tolist(),
            "z_imag_ohm": zi.tolist(),
        }
        fit = fit_rc_zarc(f, zr + 1j * zi)
        raw["fit"] = fit.to_dict()
        value = interfacial_resistance(fit, objective.electrode_area_cm2)
        return value, raw, "R_s + ZARC equivalent-circuit fit"
