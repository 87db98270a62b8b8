"""Bluesky plans: generators of messages built from standard stubs.

Each plan checks every set point against the campaign's safety limits *before* it yields a
single message, so an unsafe proposal never reaches a device (the drivers check again).
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from typing import Any

import numpy as np
from bluesky import plan_stubs as bps
from bluesky import preprocessors as bpp
from bluesky.utils import Msg

from lab.errors import SafetyError
from lab.spec import SafetyLimits

__all__ = ["characterize", "measure_screening", "sweep_frequencies", "synthesize"]

Plan = Generator[Msg, Any, Any]


def _check_recipe(recipe: Mapping[str, tuple[float, float]], safety: SafetyLimits) -> None:
    for role, (volume, rate) in recipe.items():
        if not (0.0 <= volume <= safety.max_dispense_volume_ul):
            raise SafetyError(
                f"{role}: volume {volume} uL outside 0-{safety.max_dispense_volume_ul} uL"
            )
        if volume > 0 and not (0.0 < rate <= safety.max_pump_rate_ul_min):
            raise SafetyError(
                f"{role}: rate {rate} uL/min outside (0, {safety.max_pump_rate_ul_min}] uL/min"
            )


def synthesize(
    pumps: Mapping[str, Any],
    recipe: Mapping[str, tuple[float, float]],
    safety: SafetyLimits,
    md: dict[str, Any] | None = None,
    *,
    anneal: tuple[float, float] | None = None,
    hotplate: Any | None = None,
    gantry: Any | None = None,
    time_scale: float = 1.0,
) -> Plan:
    """Make one sample: (move to the dispense station,) dispense, (anneal,) (move to the meter).

    Args:
        pumps: Role to pump device (``set(volume)`` dispenses, ``rate`` is settable).
        recipe: Role to ``(volume_ul, rate_ul_min)``; zero volumes are skipped.
        safety: Campaign safety limits, checked before any message.
        md: Extra run metadata.
        anneal: ``(temperature_c, minutes)`` to hold the sample at, or ``None``.
        hotplate: Hotplate device (needed with ``anneal``): ``set(T)`` heats until at
            temperature, ``heating`` turns it off.
        gantry: Gantry device with ``station(name)`` coordinates (``dispense``, ``hotplate``,
            ``lcr``), or ``None`` when samples stay in place.
        time_scale: Workcell seconds per real second; the anneal hold sleeps
            ``minutes * 60 / time_scale`` real seconds.

    Raises:
        SafetyError: Before any message, if a volume, rate or temperature is unsafe or a
            device or station is missing.
    """
    _check_recipe(recipe, safety)
    missing = [r for r, (v, _) in recipe.items() if v > 0 and r not in pumps]
    if missing:
        raise SafetyError(f"no pump for role(s) {missing}")
    if anneal is not None:
        temp_c, minutes = anneal
        if not (0.0 < temp_c <= safety.max_temperature_c):
            raise SafetyError(
                f"anneal temperature {temp_c} degC outside (0, {safety.max_temperature_c}] degC"
            )
        if minutes < 0:
            raise SafetyError(f"anneal time {minutes} min is negative")
        if hotplate is None:
            raise SafetyError("the recipe anneals but the workcell has no hotplate")
    route: dict[str, tuple[float, float, float]] = {}
    if gantry is not None:
        for station in ("dispense", "lcr", *(("hotplate",) if anneal else ())):
            route[station] = gantry.station(station)
    used = [pumps[r] for r, (v, _) in recipe.items() if v > 0]
    used += [d for d in (hotplate if anneal else None, gantry) if d is not None]
    meta = {"plan_name": "synthesize", "recipe": {k: list(v) for k, v in recipe.items()}}
    if anneal is not None:
        meta["anneal"] = list(anneal)
    meta.update(md or {})

    @bpp.stage_decorator(used)
    @bpp.run_decorator(md=meta)
    def inner() -> Plan:
        if gantry is not None:
            yield from bps.mv(gantry, route["dispense"])
        for role, (volume, rate) in recipe.items():
            if volume <= 0:
                continue
            pump = pumps[role]
            yield from bps.mv(pump.rate, rate)
            yield from bps.mv(pump, volume)
            yield from bps.trigger_and_read([pump], name=f"dispense_{role}")
        if anneal is not None:
            temp_c, minutes = anneal
            if gantry is not None:
                yield from bps.mv(gantry, route["hotplate"])
            yield from bps.mv(hotplate, temp_c)
            yield from bps.trigger_and_read([hotplate], name="anneal_start")
            yield from bps.sleep(minutes * 60.0 / time_scale)
            yield from bps.trigger_and_read([hotplate], name="anneal_end")
            yield from bps.mv(hotplate.heating, 0)
        if gantry is not None:
            yield from bps.mv(gantry, route["lcr"])

    return (yield from inner())


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
