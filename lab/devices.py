"""Ophyd devices over the instrument drivers, and the connected devices of a workcell.

Signals call the driver on ``get``/``put``; ``set()`` returns a Status that finishes only when
the instrument confirms (a pump has stopped and its counter shows the volume, a meter has
returned its reading). Readings carry units in ``describe()``. The same devices drive real
hardware or the simulated workcell: only the URL in the workcell file differs. Each device
class lives with its instrument kind in :mod:`lab.instruments`; :func:`connect_workcell`
opens a workcell's drivers with the limits in force and builds their devices.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lab.errors import WorkcellError
from lab.instruments import INSTRUMENTS, DeviceContext, limits_for, open_driver
from lab.instruments._base import DriverSignal, wait_for
from lab.instruments.grbl import Gantry
from lab.instruments.ika_namur import Hotplate
from lab.instruments.mt_sics import Balance
from lab.instruments.ne1000 import SyringePump
from lab.instruments.scpi_lcr import ImpedanceMeter
from lab.workcell import Workcell

if TYPE_CHECKING:
    from lab.spec import Campaign, SafetyLimits

__all__ = [
    "Balance",
    "DriverSignal",
    "Gantry",
    "Hotplate",
    "ImpedanceMeter",
    "Instruments",
    "SyringePump",
    "connect_workcell",
    "wait_for",
]


class Instruments:
    """The connected devices of a workcell, by name; closes every driver on exit."""

    def __init__(self) -> None:
        self.devices: dict[str, Any] = {}
        self.kinds: dict[str, str] = {}
        self.roles: dict[str, str] = {}
        self._drivers: list[Any] = []

    def _of_kind(self, kind: str) -> list[Any]:
        return [d for n, d in self.devices.items() if self.kinds[n] == kind]

    @property
    def pumps(self) -> dict[str, SyringePump]:
        """Connected syringe pumps by name."""
        return {n: d for n, d in self.devices.items() if self.kinds[n] == "ne1000"}

    @property
    def lcr(self) -> ImpedanceMeter | None:
        """The (first) impedance meter."""
        return next(iter(self._of_kind("scpi_lcr")), None)

    @property
    def hotplate(self) -> Hotplate | None:
        """The (first) hotplate."""
        return next(iter(self._of_kind("ika_namur")), None)

    @property
    def balance(self) -> Balance | None:
        """The (first) balance."""
        return next(iter(self._of_kind("mt_sics")), None)

    @property
    def gantry(self) -> Gantry | None:
        """The (first) gantry."""
        return next(iter(self._of_kind("grbl")), None)

    def device(self, role: str) -> Any:
        """The device a process step names: by device name, else by its ``role``.

        Raises:
            WorkcellError: If no connected device has that name or role.
        """
        if role in self.devices:
            return self.devices[role]
        for name, r in self.roles.items():
            if r == role:
                return self.devices[name]
        raise WorkcellError(
            f"no connected device named or with role '{role}' (devices: "
            f"{', '.join(f'{n} ({self.kinds[n]})' for n in self.devices)})"
        )

    @property
    def names(self) -> list[str]:
        """Names of the connected devices, in workcell-file order."""
        return [d.name for d in self._drivers]

    def driver(self, name: str) -> Any:
        """The driver of the device called ``name`` in the workcell file.

        Raises:
            WorkcellError: If no connected device has that name.
        """
        for d in self._drivers:
            if d.name == name:
                return d
        raise WorkcellError(f"no connected device '{name}' (devices: {sorted(self.names)})")

    def add_retry_listener(self, listener: Callable[[Any], None]) -> None:
        """Call ``listener`` with a :class:`drivers.DriverRetry` for every repeated exchange of
        every connected driver (see :meth:`drivers.Instrument.add_retry_listener`)."""
        for d in self._drivers:
            d.add_retry_listener(listener)

    def reconnect(self, name: str) -> None:
        """Close and reopen the port of device ``name`` with the same URL and settings.

        The device objects keep their driver, so the next plan stages the instrument again
        over the new connection.

        Raises:
            WorkcellError: If no connected device has that name.
            drivers.ConnectionLost: If the port still cannot be opened.
        """
        self.driver(name).reconnect()

    def close(self) -> None:
        """Close every driver."""
        for d in self._drivers:
            with contextlib.suppress(Exception):
                d.close()
        self._drivers.clear()

    def __enter__(self) -> Instruments:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect_workcell(
    workcell: Workcell,
    safety: SafetyLimits | None,
    *,
    spec: Campaign | None = None,
    names: list[str] | None = None,
    kinds: tuple[str, ...] | None = None,
) -> Instruments:
    """Open drivers and build devices for devices of a workcell.

    Each driver enforces the intersection of its workcell ``limits:`` and the campaign's
    safety limits (:func:`lab.instruments.limits_for`).

    Args:
        workcell: The workcell file.
        safety: Campaign safety limits (``None``: only the workcell's).
        spec: The campaign, for device settings (syringe diameter).
        names: Which devices to connect (default: all, or those of ``kinds``).
        kinds: Which device kinds to connect (default: all).

    Raises:
        SpecError: For a device of an unknown kind.
        WorkcellError: If a device cannot be opened (names the device and URL).
    """
    inst = Instruments()
    ctx = DeviceContext(time_scale=workcell.time_scale, spec=spec)
    try:
        for name, entry in workcell.devices.items():
            if names is not None and name not in names:
                continue
            if kinds is not None and entry.kind not in kinds:
                continue
            kind = INSTRUMENTS.get(entry.kind)
            driver = open_driver(name, entry, limits_for(name, entry, safety))
            inst._drivers.append(driver)
            inst.devices[name] = kind.device(driver, name, entry, ctx)
            inst.kinds[name] = entry.kind
            if entry.role:
                inst.roles[name] = entry.role
        return inst
    except BaseException:
        inst.close()
        raise
