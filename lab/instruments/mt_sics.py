"""Mettler Toledo MT-SICS balances: a stable weight per trigger."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from ophyd import Component as Cpt
from ophyd import Device, Signal
from ophyd.status import DeviceStatus, Status

from drivers import MtSicsBalance
from lab.instruments._base import DeviceContext, InstrumentKind

if TYPE_CHECKING:
    from lab.workcell import DeviceEntry


class Balance(Device):
    """An MT-SICS balance: each trigger takes one stable weight (``bp.count([balance])``)."""

    weight = Cpt(Signal, value=0.0, kind="hinted")

    def __init__(self, driver: Any, *, name: str, **kwargs: Any) -> None:
        self._driver = driver
        self.unit = "g"
        super().__init__(name=name, **kwargs)

    def trigger(self) -> Status:
        """Read one stable weight; the status finishes when the balance reports it."""
        status = DeviceStatus(self)

        def work() -> None:
            try:
                value, unit = self._driver.weight_stable()
                self.unit = unit
                self.weight.put(float(value))
                status.set_finished()
            except Exception as exc:  # noqa: BLE001 - reported through the status
                status.set_exception(exc)

        threading.Thread(target=work, name=f"{self.name}-weigh", daemon=True).start()
        return status

    def describe(self) -> dict[str, dict[str, Any]]:
        """Describe with the balance's unit."""
        d = super().describe()
        d[self.weight.name]["units"] = self.unit
        return d


class MtSicsKind(InstrumentKind):
    """MT-SICS balance (serial)."""

    name = "mt_sics"
    doc = "balance"
    simulator = "simulators.mt_sics:MtSicsSim"

    def open(self, entry: DeviceEntry, limits: Any | None, **kw: Any) -> Any:
        """An :class:`drivers.MtSicsBalance`."""
        return MtSicsBalance(entry.url, **kw)

    def device(self, driver: Any, name: str, entry: DeviceEntry, ctx: DeviceContext) -> Any:
        """A :class:`Balance`."""
        return Balance(driver, name=name)

    def check(self, driver: Any, entry: DeviceEntry) -> str:
        """Identify and take one stable weight."""
        return _check_balance(driver)


def _check_balance(d: MtSicsBalance) -> str:
    ident = d.identify()
    value, unit = d.weight_stable()
    return f"{ident}; stable weight {value:g} {unit}"
