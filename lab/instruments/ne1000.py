"""New Era NE-1000 syringe pumps: dispense a volume at a rate (``dispense`` steps)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from ophyd import Component as Cpt
from ophyd import Device
from ophyd.status import DeviceStatus

from drivers import NE1000, PumpLimits
from lab.errors import WorkcellError
from lab.instruments._base import DeviceContext, DriverSignal, InstrumentKind

if TYPE_CHECKING:
    from lab.spec import SafetyLimits
    from lab.workcell import DeviceEntry


class SyringePump(Device):
    """An NE-1000 syringe pump. ``set(volume_ul)`` dispenses and finishes when confirmed.

    Args:
        driver: The connected driver.
        role: What it dispenses (``precursor``, ``solvent``...).
        diameter_mm: Inside diameter of the syringe, set on ``stage()``.
    """

    rate = Cpt(DriverSignal, getter="_get_rate", setter="_set_rate", units="uL/min", kind="config")
    dispensed = Cpt(DriverSignal, getter="_get_dispensed", units="uL", kind="hinted")

    def __init__(
        self, driver: NE1000, *, role: str, diameter_mm: float, name: str, **kwargs: Any
    ) -> None:
        self._driver = driver
        self.role = role
        self.diameter_mm = diameter_mm
        super().__init__(name=name, **kwargs)

    # -- driver access used by the signals
    def _get_rate(self) -> float:
        value, unit = self._driver.rate()
        return _to_ul_min(value, unit)

    def _set_rate(self, value: float) -> float:
        self._driver.set_rate(float(value), "UM")
        return self._get_rate()

    def _get_dispensed(self) -> float:
        infused, _withdrawn, unit = self._driver.dispensed()
        return infused * (1000.0 if unit.upper() == "ML" else 1.0)

    def stage(self) -> list[object]:
        """Set the syringe diameter before a plan uses the pump."""
        self._driver.set_diameter(self.diameter_mm)
        return super().stage()

    def set(self, volume_ul: float) -> DeviceStatus:  # type: ignore[override]
        """Dispense ``volume_ul`` at the current rate.

        Returns:
            A status that finishes when the pump has stopped and its counter shows the volume,
            or fails with the driver's error.
        """
        status = DeviceStatus(self)
        volume_ul = float(volume_ul)

        def work() -> None:
            try:
                rate = self._get_rate()
                self._driver.clear_dispensed("INF")
                self._driver.dispense(volume_ul, rate, direction="INF")
                expected_s = volume_ul / rate * 60.0
                self._driver.wait_until_stopped(timeout_s=2.0 * expected_s + 10.0)
                got = self._get_dispensed()
                self.dispensed.get()
                if abs(got - volume_ul) > max(0.01 * volume_ul, 0.01):
                    raise WorkcellError(
                        f"{self.name}: dispensed {got:.3f} uL of {volume_ul:.3f} uL requested"
                    )
                status.set_finished()
            except Exception as exc:  # noqa: BLE001 - reported, never dropped
                status.set_exception(exc)

        threading.Thread(target=work, name=f"{self.name}-dispense", daemon=True).start()
        return status

    def stop(self, *, success: bool = False) -> None:
        """Stop pumping (called by the RunEngine on abort)."""
        try:
            if self._driver.is_running():
                self._driver.stop()
        except Exception:  # noqa: BLE001 - reported, never dropped
            pass


def _to_ul_min(value: float, unit: str) -> float:
    return value * {"UM": 1.0, "MM": 1000.0, "UH": 1 / 60.0, "MH": 1000.0 / 60.0}[unit.upper()]


class Ne1000Kind(InstrumentKind):
    """NE-1000 syringe pump (serial; several on one bus by ``address``)."""

    name = "ne1000"
    doc = "syringe pump"
    limits_type = PumpLimits
    simulator = "simulators.ne1000:NE1000Sim"

    def open(self, entry: DeviceEntry, limits: Any | None, **kw: Any) -> Any:
        """An :class:`drivers.NE1000` at the entry's bus address."""
        return NE1000(entry.url, address=entry.address, limits=limits, **kw)

    def limits_from_safety(self, safety: SafetyLimits) -> Any | None:
        """Rate and volume caps."""
        return PumpLimits(
            max_rate_ul_min=safety.max_pump_rate_ul_min,
            max_volume_ul=safety.max_dispense_volume_ul,
        )

    def device(self, driver: Any, name: str, entry: DeviceEntry, ctx: DeviceContext) -> Any:
        """A :class:`SyringePump` with the campaign's syringe diameter."""
        diameter = ctx.spec.syringe_diameter_mm if ctx.spec is not None else 4.61
        return SyringePump(driver, role=entry.role or name, diameter_mm=diameter, name=name)

    def check(self, driver: Any, entry: DeviceEntry) -> str:
        """Set and read back diameter, rate and volume (nothing is pumped)."""
        return _check_pump(driver)


def _check_pump(d: NE1000) -> str:
    ident = d.identify()
    d.set_diameter(4.61)
    d.set_rate(50.0, "UM")
    d.set_volume(10.0, "UL")
    dia, (rate, ru), (vol, vu) = d.diameter(), d.rate(), d.volume()
    if abs(dia - 4.61) > 0.01 or abs(rate - 50.0) > 0.05 or abs(vol - 10.0) > 0.01:
        raise WorkcellError(f"read back {dia} mm, {rate} {ru}, {vol} {vu}; expected 4.61, 50, 10")
    return f"{ident}; diameter {dia} mm, rate {rate:g} {ru}, volume {vol:g} {vu}"
