"""Bluesky plans: generators of messages built from standard stubs.

Each plan checks every set point against the safety limits in force *before* it yields a
single message, so an unsafe proposal never reaches a device (the drivers check again).
:func:`make_sample` runs a campaign's process steps (:mod:`lab.steps`); the measurement
plans are built by the routes (:mod:`lab.routes`).
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from typing import Any

import numpy as np
from bluesky import plan_stubs as bps
from bluesky import preprocessors as bpp
from bluesky.utils import Msg

from lab.errors import ProcessError, SafetyError
from lab.spec import SafetyLimits
from lab.steps import StepContext

__all__ = ["characterize", "make_sample", "measure_screening", "sweep_frequencies"]

Plan = Generator[Msg, Any, Any]


def make_sample(
    steps: Sequence[tuple[str, Any, Any, Mapping[str, Any]]],
    ctx: StepContext,
    md: dict[str, Any] | None = None,
) -> Plan:
    """Make one sample: the campaign's process steps, in order, as one Bluesky run.

    Every step's values are checked against physics and the safety limits, and (with a
    gantry carrying the sample) every step's station against where the moves before it
    leave the sample, *before* the first message: an unsafe or impossible process never
    reaches a device.

    Args:
        steps: ``(where, step kind, device, values)`` per step: ``where`` names the step in
            messages, ``values`` are in the step's argument units.
        ctx: Safety limits, clock, stations of the devices (by device name).
        md: Extra run metadata.

    Raises:
        SafetyError: Before any message, if a value is unsafe.
        ProcessError: Before any message, if a step would run where the sample is not.
    """
    location = ctx.location
    todo = []
    for i, (where, kind, device, values) in enumerate(steps, start=1):
        kind.check_values(values, ctx, where)
        if kind.moves_sample:
            location = str(values["station"])
        elif ctx.tracked:
            station = ctx.stations.get(device.name)
            if station and station != location:
                raise ProcessError(
                    f"{where}: the sample is {'at ' + repr(location) if location else 'at no station'}"
                    f", not at {device.name}'s station '{station}'; nothing was run"
                )
        if not kind.skip(values):
            todo.append((i, kind, device, values))
    used = list({id(d): d for _, _, d, _ in todo}.values())
    meta: dict[str, Any] = {
        "plan_name": "make_sample",
        "steps": [
            {
                "index": i,
                "step": k.name,
                "device": d.name,
                "args": {n: _plain(v) for n, v in vals.items()},
            }
            for i, k, d, vals in todo
        ],
    }
    meta.update(md or {})

    @bpp.stage_decorator(used)
    @bpp.run_decorator(md=meta)
    def inner() -> Plan:
        for i, kind, device, values in todo:
            ctx.index = i
            yield from kind.plan(device, values, ctx)

    return (yield from inner())


def _plain(v: Any) -> Any:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v


def sweep_frequencies(f_min_hz: float, f_max_hz: float, points: int) -> list[float]:
    """Log-spaced sweep from high to low frequency (Hz), rounded to 4 significant digits."""
    f = np.logspace(np.log10(f_max_hz), np.log10(f_min_hz), points)
    return [float(f"{v:.4g}") for v in f]


def _check_freqs(freqs: Sequence[float], safety: SafetyLimits) -> None:
    for f in freqs:
        if not (safety.min_frequency_hz <= f <= safety.max_frequency_hz):
            raise SafetyError(
                f"frequency {f} Hz outside {safety.min_frequency_hz}-{safety.max_frequency_hz} Hz"
            )


def characterize(
    lcr: Any, freqs_hz: Sequence[float], safety: SafetyLimits, md: dict[str, Any] | None = None
) -> Plan:
    """Impedance sweep: one event per frequency with the frequency and Z = z_real + j z_imag.

    Args:
        lcr: Impedance meter device (``frequency`` settable, triggerable, readable).
        freqs_hz: Frequencies in Hz.
        safety: Limits checked before any message.
        md: Extra run metadata.
    """
    _check_freqs(freqs_hz, safety)
    meta = {"plan_name": "characterize", "frequencies_hz": list(freqs_hz)}
    meta.update(md or {})

    @bpp.stage_decorator([lcr])
    @bpp.run_decorator(md=meta)
    def inner() -> Plan:
        for f in freqs_hz:
            yield from bps.mv(lcr.frequency, f)
            yield from bps.trigger_and_read([lcr])

    return (yield from inner())


def measure_screening(
    lcr: Any, frequency_hz: float, safety: SafetyLimits, md: dict[str, Any] | None = None
) -> Plan:
    """Single-frequency screening measurement (one event)."""
    meta = {"plan_name": "measure_screening"}
    meta.update(md or {})
    return (yield from characterize(lcr, [frequency_hz], safety, md=meta))
