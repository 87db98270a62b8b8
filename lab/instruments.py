"""Opening drivers from a workcell file, and the safe routine of ``lab instruments check``.

Per-device ``limits`` in the workcell file become the driver's own safety limits, e.g.::

    pump_a:  {kind: ne1000, url: /dev/ttyUSB0, limits: {max_rate_ul_min: 500}}
    gantry:  {kind: grbl, url: /dev/ttyACM0, limits: {x: [0, 300], y: [0, 200], z: [-50, 0]}}
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drivers import (
    NE1000,
    DriverError,
    Grbl,
    IkaHotplate,
    IkaLimits,
    LcrLimits,
    MtSicsBalance,
    PumpLimits,
    ScpiLcr,
    TravelLimits,
)
from lab.errors import SpecError, WorkcellError
from lab.workcell import DeviceEntry, Workcell

_LIMIT_TYPES: dict[str, type] = {
    "ne1000": PumpLimits,
    "ika_namur": IkaLimits,
    "scpi_lcr": LcrLimits,
    "grbl": TravelLimits,
}


def device_limits(name: str, entry: DeviceEntry) -> Any | None:
    """The driver limits object from a workcell entry's ``limits`` mapping (or ``None``).

    Raises:
        SpecError: If ``limits`` has keys the device kind does not know.
    """
    raw = (entry.model_extra or {}).get("limits")
    if raw is None:
        return None
    cls = _LIMIT_TYPES.get(entry.kind)
    if cls is None or not isinstance(raw, dict):
        raise SpecError(f"devices.{name}.limits: a {entry.kind} takes no limits mapping")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise SpecError(
            f"devices.{name}.limits: unknown keys {unknown}; a {entry.kind} knows {sorted(known)}"
        )
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    return cls(**values)


def open_driver(name: str, entry: DeviceEntry, limits: Any | None = None) -> Any:
    """Open the driver of one workcell device.

    Args:
        name: Device name (used in every error message).
        entry: Its workcell entry.
        limits: Driver limits overriding those of the workcell entry.

    Raises:
        WorkcellError: If the port cannot be opened.
    """
    limits = limits if limits is not None else device_limits(name, entry)
    kw: dict[str, Any] = {"name": name, "timeout": entry.timeout}
    if entry.baudrate:
        kw["baudrate"] = entry.baudrate
    try:
        if entry.kind == "ne1000":
            return NE1000(entry.url, address=entry.address, limits=limits, **kw)
        if entry.kind == "ika_namur":
            return IkaHotplate(entry.url, limits=limits, **kw)
        if entry.kind == "mt_sics":
            return MtSicsBalance(entry.url, **kw)
        if entry.kind == "grbl":
            return Grbl(entry.url, limits=limits, **kw)
        kw["timeout"] = max(entry.timeout, 2.0)
        return ScpiLcr(entry.url, limits=limits, **kw)
    except (DriverError, OSError, ValueError) as exc:
        raise WorkcellError(
            f"cannot open device '{name}' ({entry.kind}) at {entry.url}: {exc}. "
            "Check the URL in the workcell file and that the instrument is on."
        ) from exc


@dataclass
class CheckResult:
    """Outcome of one device's check.

    Attributes:
        ok: Whether every step passed.
        message: What was found, or what failed and how to fix it.
        seconds: Wall time of the check.
    """

    ok: bool
    message: str
    seconds: float = 0.0


def _check_pump(d: NE1000) -> str:
    ident = d.identify()
    d.set_diameter(4.61)
    d.set_rate(50.0, "UM")
    d.set_volume(10.0, "UL")
    dia, (rate, ru), (vol, vu) = d.diameter(), d.rate(), d.volume()
    if abs(dia - 4.61) > 0.01 or abs(rate - 50.0) > 0.05 or abs(vol - 10.0) > 0.01:
        raise WorkcellError(f"read back {dia} mm, {rate} {ru}, {vol} {vu}; expected 4.61, 50, 10")
    return f"{ident}; diameter {dia} mm, rate {rate:g} {ru}, volume {vol:g} {vu}"


def _check_hotplate(d: IkaHotplate) -> str:
    ident = d.identify()
    temp = d.temperature()
    setpoint = 25.0
    d.set_temperature(setpoint, verify=True)
    return f"{ident}; {temp:.1f} degC, set point {d.temperature_setpoint():g} degC (not heating)"


def _check_balance(d: MtSicsBalance) -> str:
    ident = d.identify()
    value, unit = d.weight_stable()
    return f"{ident}; stable weight {value:g} {unit}"


def _check_gantry(d: Grbl) -> str:
    st = d.status()
    if st.state == "Alarm":
        d.unlock()
        st = d.status()
    before = st.mpos
    d.move_by(1.0, 0.0, 0.0, feed=300.0)
    d.wait_idle(timeout=10.0)
    d.move_by(-1.0, 0.0, 0.0, feed=300.0)
    after = d.wait_idle(timeout=10.0)
    return f"state {st.state}, moved X +1/-1 mm from {before} back to {after.mpos}"


def _check_lcr(d: ScpiLcr) -> str:
    ident = d.identify()
    d.clear()
    z = d.measure(1000.0)
    return (
        f"{ident.get('manufacturer', '?')} {ident.get('model', '?')}; "
        f"Z(1 kHz) = {z.real:.4g} {z.imag:+.4g}j ohm"
    )


_CHECKS: dict[str, Callable[[Any], str]] = {
    "ne1000": _check_pump,
    "ika_namur": _check_hotplate,
    "mt_sics": _check_balance,
    "grbl": _check_gantry,
    "scpi_lcr": _check_lcr,
}


def check_device(name: str, entry: DeviceEntry) -> CheckResult:
    """Connect to one device, identify it and run its short safe routine."""
    t0 = time.perf_counter()
    try:
        driver = open_driver(name, entry)
        try:
            message = _CHECKS[entry.kind](driver)
        finally:
            driver.close()
        return CheckResult(True, message, time.perf_counter() - t0)
    except Exception as exc:  # noqa: BLE001 - reported, never dropped
        return CheckResult(False, f"{type(exc).__name__}: {exc}", time.perf_counter() - t0)


def check_workcell(workcell: Workcell) -> dict[str, CheckResult]:
    """Check every device of a workcell, in file order."""
    return {name: check_device(name, entry) for name, entry in workcell.devices.items()}
