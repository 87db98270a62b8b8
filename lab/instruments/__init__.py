"""Instrument kinds: opening drivers from a workcell file, devices, and ``lab instruments check``.

Every module here (not starting with ``_``) defines one :class:`InstrumentKind`, registered
by its workcell ``kind:`` in :data:`INSTRUMENTS`: adding an instrument is a driver in
``drivers/``, a simulator in ``simulators/`` and one module here.

Per-device ``limits`` in the workcell file are that driver's own safety limits, e.g.::

    pump_a:  {kind: ne1000, url: /dev/ttyUSB0, limits: {max_rate_ul_min: 500}}
    gantry:  {kind: grbl, url: /dev/ttyACM0, limits: {x: [0, 300], y: [0, 200], z: [-50, 0]}}

During a campaign the driver enforces the intersection of these and the campaign's safety
limits (:func:`limits_for`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from drivers import DriverError
from lab.errors import WorkcellError
from lab.instruments._base import DeviceContext, InstrumentKind, intersect_limits
from lab.registry import Registry, discover

if TYPE_CHECKING:
    from lab.spec import Campaign, SafetyLimits
    from lab.workcell import DeviceEntry, Workcell

INSTRUMENTS: Registry[InstrumentKind] = Registry("instrument kind")
"""Every instrument kind by its workcell ``kind:``."""

discover(INSTRUMENTS, __name__, InstrumentKind)

__all__ = [
    "INSTRUMENTS",
    "CheckResult",
    "DeviceContext",
    "InstrumentKind",
    "check_device",
    "check_kinds",
    "check_limits",
    "check_workcell",
    "device_limits",
    "limits_for",
    "open_driver",
]


def device_limits(name: str, entry: DeviceEntry) -> Any | None:
    """The driver limits object from a workcell entry's ``limits`` mapping (or ``None``).

    Raises:
        SpecError: If the kind is unknown or ``limits`` has keys the kind does not know.
    """
    return INSTRUMENTS.get(entry.kind).limits_from_entry(name, entry)


def limits_for(name: str, entry: DeviceEntry, safety: SafetyLimits | None) -> Any | None:
    """Limits in force on a device: the instrument's own range (its driver's default limits),
    its workcell ``limits:`` and the campaign's safety limits, intersected.

    Raises:
        SpecError: If the two leave no safe range.
    """
    kind = INSTRUMENTS.get(entry.kind)
    campaign = None if safety is None else kind.limits_from_safety(safety)
    own = None if kind.limits_type is None else kind.limits_type()  # what the instrument can do
    return intersect_limits(intersect_limits(own, kind.limits_from_entry(name, entry)), campaign)


def open_driver(name: str, entry: DeviceEntry, limits: Any | None = None) -> Any:
    """Open the driver of one workcell device.

    Args:
        name: Device name (used in every error message).
        entry: Its workcell entry.
        limits: Limits to enforce (default: the workcell entry's).

    Raises:
        SpecError: For an unknown kind.
        WorkcellError: If the port cannot be opened.
    """
    kind = INSTRUMENTS.get(entry.kind)
    limits = limits if limits is not None else kind.limits_from_entry(name, entry)
    kw: dict[str, Any] = {"name": name, "timeout": max(entry.timeout, kind.default_timeout_s)}
    if entry.baudrate:
        kw["baudrate"] = entry.baudrate
    try:
        return kind.open(entry, limits, **kw)
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


def check_device(name: str, entry: DeviceEntry) -> CheckResult:
    """Connect to one device, identify it and run its short safe routine."""
    t0 = time.perf_counter()
    try:
        kind = INSTRUMENTS.get(entry.kind)
        driver = open_driver(name, entry)
        try:
            message = kind.check(driver, entry)
        finally:
            driver.close()
        return CheckResult(True, message, time.perf_counter() - t0)
    except Exception as exc:  # noqa: BLE001 - reported, never dropped
        return CheckResult(False, f"{type(exc).__name__}: {exc}", time.perf_counter() - t0)


def check_workcell(workcell: Workcell) -> dict[str, CheckResult]:
    """Check every device of a workcell, in file order."""
    return {name: check_device(name, entry) for name, entry in workcell.devices.items()}


def check_kinds(workcell: Workcell, source: str = "workcell") -> None:
    """Refuse a workcell file naming a device kind no instrument module registers.

    Raises:
        SpecError: Naming ``devices.<name>.kind`` and the registered kinds.
    """
    from lab.errors import SpecError

    for name, entry in workcell.devices.items():
        if entry.kind not in INSTRUMENTS:
            raise SpecError(
                f"{source}: devices.{name}.kind: unknown instrument kind '{entry.kind}'; "
                f"registered: {', '.join(INSTRUMENTS.names())}"
            )


def check_limits(spec: Campaign, workcell: Workcell, source: str = "workcell") -> None:
    """Refuse, at launch, a process step whose values can exceed the limits in force on its
    device (:func:`limits_for`), naming the step, the device and the limit.

    Raises:
        SpecError: For the first such step argument.
    """
    from lab.errors import SpecError

    for step, (where, kind, bindings) in zip(spec.process, spec.bound_steps(), strict=True):
        name = workcell.resolve(step.device)
        if name is None:
            continue  # check_campaign names the missing device
        limits = limits_for(name, workcell.devices[name], spec.safety)
        for a in kind.args:
            if a.device_limit is None or limits is None or not a.numeric:
                continue
            cap = getattr(limits, a.device_limit, None)
            _, hi = bindings[a.name].domain(spec)
            if cap is not None and hi > cap + 1e-9 * max(1.0, abs(cap)):
                raise SpecError(
                    f"{where}.{a.name}: can reach {hi:g} {a.unit}, above what '{name}' allows "
                    f"({workcell.devices[name].kind} limit {a.device_limit}={cap:g} {a.unit}, the "
                    f"instrument's range and {source}'s limits): lower the parameter's bound"
                )
