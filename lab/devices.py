"""Ophyd devices over the instrument drivers.

Signals call the driver on ``get``/``put``; ``set()`` returns a Status that finishes only when
the instrument confirms (a pump has stopped and its counter shows the volume, a meter has
returned its reading). Readings carry units in ``describe()``. The same devices drive real
hardware or the simulated workcell: only the URL in the workcell file differs.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from ophyd import Component as Cpt
from ophyd import Device, Signal
from ophyd.status import DeviceStatus, Status
from ophyd.utils import ReadOnlyError

from drivers import NE1000, IkaLimits, LcrLimits, PumpLimits, ScpiLcr
from lab.errors import SafetyError, WorkcellError
from lab.instruments import open_driver
from lab.spec import SafetyLimits
from lab.workcell import Workcell

__all__ = ["DriverSignal", "ImpedanceMeter", "SyringePump", "connect_workcell"]


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


class ImpedanceMeter(Device):
    """An SCPI LCR meter measuring complex impedance at one frequency per trigger.

    Args:
        driver: The connected driver.
        ac_voltage_v: AC test level in Vrms, set on ``stage()``.
    """

    frequency = Cpt(DriverSignal, getter="_get_freq", setter="_set_freq", units="Hz", kind="hinted")
    z_real = Cpt(Signal, value=0.0, kind="hinted")
    z_imag = Cpt(Signal, value=0.0, kind="hinted")

    def __init__(self, driver: ScpiLcr, *, ac_voltage_v: float, name: str, **kwargs: Any) -> None:
        self._driver = driver
        self.ac_voltage_v = ac_voltage_v
        super().__init__(name=name, **kwargs)

    def _get_freq(self) -> float:
        return self._driver.frequency()

    def _set_freq(self, hz: float) -> float:
        self._driver.set_frequency(float(hz))
        return self._driver.frequency()

    def identify(self) -> dict[str, str]:
        """Manufacturer, model, serial and firmware."""
        return self._driver.identify()

    def stage(self) -> list[object]:
        """Configure R-X readout, the AC level and armed bus triggering."""
        self._driver.clear()
        self._driver.set_function("RX")
        self._driver.set_voltage(self.ac_voltage_v)
        self._driver.set_trigger_source("BUS")
        self._driver.set_continuous(True)  # arm: each bus trigger then measures once
        return super().stage()

    def trigger(self) -> Status:
        """Trigger one measurement; the status finishes when the reading is fetched."""
        status = DeviceStatus(self)

        def work() -> None:
            try:
                self._driver.trigger()
                self._driver.opc()
                r = self._driver.fetch()
                self.z_real.put(float(r.a))
                self.z_imag.put(float(r.b))
                status.set_finished()
            except Exception as exc:  # noqa: BLE001 - reported, never dropped
                status.set_exception(exc)

        threading.Thread(target=work, name=f"{self.name}-trigger", daemon=True).start()
        return status

    def describe(self) -> dict[str, dict[str, Any]]:
        """Describe with units on the impedance readings."""
        d = super().describe()
        for sig in (self.z_real, self.z_imag):
            d[sig.name]["units"] = "ohm"
        return d


class Instruments:
    """The connected devices of a workcell; closes every driver on exit."""

    def __init__(self) -> None:
        self.pumps: dict[str, SyringePump] = {}
        self.lcr: ImpedanceMeter | None = None
        self._drivers: list[Any] = []

    def pump_for_role(self, role: str) -> SyringePump:
        """The pump that dispenses ``role``.

        Raises:
            WorkcellError: If no connected pump has that role.
        """
        for p in self.pumps.values():
            if p.role == role:
                return p
        raise WorkcellError(
            f"no syringe pump with role '{role}' in the workcell (roles: "
            f"{sorted(p.role for p in self.pumps.values())}): add one with 'role: {role}'"
        )

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


def campaign_limits(kind: str, safety: SafetyLimits) -> Any | None:
    """Driver limits of a device kind derived from a campaign's safety limits."""
    if kind == "ne1000":
        return PumpLimits(
            max_rate_ul_min=safety.max_pump_rate_ul_min, max_volume_ul=safety.max_dispense_volume_ul
        )
    if kind == "scpi_lcr":
        return LcrLimits(
            min_frequency_hz=safety.min_frequency_hz,
            max_frequency_hz=safety.max_frequency_hz,
            max_voltage_vrms=safety.max_ac_voltage_v,
        )
    if kind == "ika_namur":
        return IkaLimits(max_temp_c=safety.max_temperature_c)
    return None


def connect_workcell(
    workcell: Workcell,
    safety: SafetyLimits,
    *,
    diameter_mm: float = 4.61,
    ac_voltage_v: float = 0.01,
    kinds: tuple[str, ...] = ("ne1000", "scpi_lcr"),
) -> Instruments:
    """Open drivers and build devices for the devices of ``kinds`` in a workcell.

    Args:
        workcell: The workcell file.
        safety: Campaign safety limits, enforced again by each driver.
        diameter_mm: Syringe inside diameter in mm.
        ac_voltage_v: Impedance meter AC level in Vrms.
        kinds: Which device kinds to connect.

    Raises:
        WorkcellError: If a device cannot be opened (names the device and URL).
        SafetyError: If a configured level is above the safety limits.
    """
    if ac_voltage_v > safety.max_ac_voltage_v:
        raise SafetyError(f"AC level {ac_voltage_v} V exceeds max_ac_voltage_v")
    inst = Instruments()
    try:
        for name, entry in workcell.devices.items():
            if entry.kind not in kinds:
                continue
            driver = open_driver(name, entry, campaign_limits(entry.kind, safety))
            inst._drivers.append(driver)
            if entry.kind == "ne1000":
                inst.pumps[name] = SyringePump(
                    driver, role=entry.role or name, diameter_mm=diameter_mm, name=name
                )
            elif entry.kind == "scpi_lcr":
                inst.lcr = ImpedanceMeter(driver, ac_voltage_v=ac_voltage_v, name=name)
        return inst
    except BaseException:
        inst.close()
        raise


def wait_for(predicate: Callable[[], bool], timeout_s: float, poll_s: float = 0.02) -> bool:
    """Poll ``predicate`` until true or ``timeout_s`` elapses."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(poll_s)
    return predicate()
