"""What an instrument kind is, and what every kind shares.

One module per instrument kind in this package holds everything the lab knows about that
kind: how to open its driver from a workcell entry, its limits type and how a campaign's
safety limits map onto it, its Ophyd device, the short safe routine of ``lab instruments
check``, and the simulator that stands in for it. Each module defines one
:class:`InstrumentKind` subclass, registered by name in :data:`lab.instruments.INSTRUMENTS`.

Limits in force on a driver are the intersection of the workcell file's ``limits:`` for that
device and those derived from the campaign's safety section (:func:`intersect_limits`): the
stricter of the two wins for every field.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ophyd import Signal
from ophyd.status import Status
from ophyd.utils import ReadOnlyError

from lab.errors import SpecError

if TYPE_CHECKING:
    from lab.spec import Campaign, SafetyLimits
    from lab.workcell import DeviceEntry

__all__ = [
    "DeviceContext",
    "DriverSignal",
    "InstrumentKind",
    "intersect_limits",
    "wait_for",
]


@dataclass(frozen=True)
class DeviceContext:
    """What building an Ophyd device needs besides its driver and workcell entry.

    Attributes:
        time_scale: Workcell seconds per real second.
        spec: The campaign (device settings such as the syringe diameter), or ``None``.
    """

    time_scale: float = 1.0
    spec: Campaign | None = None


class InstrumentKind:
    """A registered instrument kind. Subclasses set the attributes and methods.

    Attributes:
        name: The workcell file's ``kind:``.
        doc: One line on what it is.
        limits_type: The driver's limits dataclass (``None``: it takes none).
        simulator: ``module:Class`` of the simulator that speaks its protocol.
        simulator_transport: ``pty`` or ``tcp``: how the simulated workcell serves it.
        default_timeout_s: Smallest reply time-out used for it, s.
    """

    def simulated_devices(self) -> dict[str, dict[str, Any]]:
        """Device entries this kind adds to the simulated bench beyond the simulators' own
        set (``simulators.workcell.FULL_DEVICES``), by device name."""
        return {}

    def simulated_stations(self) -> dict[str, list[float]]:
        """Deck stations (machine coordinates, mm) this kind's simulated devices sit at, added
        to the simulated gantry's ``stations:``."""
        return {}

    name: str = ""
    doc: str = ""
    limits_type: type | None = None
    simulator: str = ""
    simulator_transport: str = "pty"
    default_timeout_s: float = 0.0

    def open(self, entry: DeviceEntry, limits: Any | None, **kw: Any) -> Any:
        """Open the driver (``kw``: ``name``, ``timeout``, optionally ``baudrate``)."""
        raise NotImplementedError

    def limits_from_safety(self, safety: SafetyLimits) -> Any | None:
        """Driver limits that a campaign's safety limits impose (``None``: none)."""
        return None

    def device(self, driver: Any, name: str, entry: DeviceEntry, ctx: DeviceContext) -> Any:
        """The Ophyd device over a connected driver."""
        raise NotImplementedError

    def check(self, driver: Any, entry: DeviceEntry) -> str:
        """Identify the instrument and run a short safe routine; returns what was found.

        Raises:
            Exception: Any driver or workcell error (reported by ``lab instruments check``).
        """
        raise NotImplementedError

    def limits_from_entry(self, name: str, entry: DeviceEntry) -> Any | None:
        """The limits object of a workcell entry's ``limits:`` mapping (or ``None``).

        Raises:
            SpecError: If ``limits`` has keys the kind does not know, or it takes none.
        """
        raw = (entry.model_extra or {}).get("limits")
        if raw is None:
            return None
        cls = self.limits_type
        if cls is None or not isinstance(raw, dict):
            raise SpecError(f"devices.{name}.limits: a {entry.kind} takes no limits mapping")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise SpecError(
                f"devices.{name}.limits: unknown keys {unknown}; a {entry.kind} knows "
                f"{sorted(known)}"
            )
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})


def intersect_limits(a: Any | None, b: Any | None) -> Any | None:
    """The stricter of two limits objects of one dataclass type, field by field.

    ``max_*`` fields take the smaller value, ``min_*`` the larger, ``(low, high)`` ranges
    their overlap; ``None`` (no limit) yields to a value; other fields keep ``a``'s.

    Raises:
        SpecError: If two ranges do not overlap (no safe value is left).
    """
    if a is None or b is None:
        return b if a is None else a
    values = {}
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if x is None or y is None:
            values[f.name] = y if x is None else x
        elif f.name.startswith("max_"):
            values[f.name] = min(x, y)
        elif f.name.startswith("min_"):
            values[f.name] = max(x, y)
        elif isinstance(x, tuple) and len(x) == 2:
            lo, hi = max(x[0], y[0]), min(x[1], y[1])
            if lo > hi:
                raise SpecError(f"limits.{f.name}: the ranges {x} and {y} do not overlap")
            values[f.name] = (lo, hi)
        else:
            values[f.name] = x
    return type(a)(**values)


class DriverSignal(Signal):
    """A signal whose value lives in an instrument.

    Args:
        getter: Name of the parent device's method that reads the value from the driver.
        setter: Name of the parent's method that writes it (``None``: read-only).
        units: Engineering units reported by ``describe()``.
    """

    def __init__(
        self,
        *,
        getter: str | None = None,
        setter: str | None = None,
        units: str = "",
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("value", 0.0)
        super().__init__(**kwargs)
        self._getter_name = getter
        self._setter_name = setter
        self._units = units

    def _method(self, name: str) -> Callable[..., Any]:
        return getattr(self.parent, name)

    def get(self, **kwargs: Any) -> Any:
        """Read the value from the instrument (when it has a getter)."""
        if self._getter_name is not None:
            value = self._method(self._getter_name)()
            super().put(value, force=True)
        return super().get(**kwargs)

    def put(self, value: Any, **kwargs: Any) -> None:
        """Write the value to the instrument; the readback updates after it confirms."""
        if self._setter_name is None:
            raise ReadOnlyError(f"{self.name} is read-only")
        confirmed = self._method(self._setter_name)(value)
        super().put(value if confirmed is None else confirmed, **kwargs)

    def set(self, value: Any, **kwargs: Any) -> Status:  # type: ignore[override]
        """Write the value; the status finishes when the instrument has confirmed it.

        The instrument may round the value (an NE-1000 keeps 4 significant digits), so the
        confirmation is the instrument's read-back, not an equality test against ``value``.
        """
        status = Status(obj=self)

        def work() -> None:
            try:
                self.put(value)
                status.set_finished()
            except Exception as exc:  # noqa: BLE001 - reported through the status
                status.set_exception(exc)

        threading.Thread(target=work, name=f"{self.name}-set", daemon=True).start()
        return status

    def describe(self) -> dict[str, dict[str, Any]]:
        """Describe with units."""
        d = super().describe()
        d[self.name]["units"] = self._units
        return d


def wait_for(predicate: Callable[[], bool], timeout_s: float, poll_s: float = 0.02) -> bool:
    """Poll ``predicate`` until true or ``timeout_s`` elapses."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(poll_s)
    return predicate()
