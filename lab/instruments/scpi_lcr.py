"""SCPI (E4980A-style) LCR meters: impedance at one frequency per trigger (impedance routes)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from ophyd import Component as Cpt
from ophyd import Device, Signal
from ophyd.status import DeviceStatus, Status

from drivers import DeviceReportedError, LcrLimits, ScpiLcr
from lab.instruments._base import DeviceContext, DriverSignal, InstrumentKind

if TYPE_CHECKING:
    from lab.spec import SafetyLimits
    from lab.workcell import DeviceEntry


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
        self._driver.check_errors()  # a refused set point leaves the old frequency in force
        got = self._driver.frequency()
        if abs(got - float(hz)) > max(1e-4 * float(hz), 0.01):
            raise DeviceReportedError(
                f"asked for {hz:g} Hz but the meter reads back {got:g} Hz; not measuring at the "
                "wrong frequency",
                device=self.name,
                code="FREQ",
            )
        return got

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
                # A trigger the meter refused (busy) leaves the previous result in the buffer.
                self._driver.check_errors()
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


class ScpiLcrKind(InstrumentKind):
    """SCPI impedance meter (usually over TCP)."""

    name = "scpi_lcr"
    doc = "impedance meter"
    limits_type = LcrLimits
    simulator = "simulators.scpi_lcr:ScpiLcrSim"
    simulator_transport = "tcp"
    default_timeout_s = 2.0

    def open(self, entry: DeviceEntry, limits: Any | None, **kw: Any) -> Any:
        """An :class:`drivers.ScpiLcr`."""
        return ScpiLcr(entry.url, limits=limits, **kw)

    def limits_from_safety(self, safety: SafetyLimits) -> Any | None:
        """Frequency range and AC level cap."""
        return LcrLimits(
            min_frequency_hz=safety.min_frequency_hz,
            max_frequency_hz=safety.max_frequency_hz,
            max_voltage_vrms=safety.max_ac_voltage_v,
        )

    def device(self, driver: Any, name: str, entry: DeviceEntry, ctx: DeviceContext) -> Any:
        """An :class:`ImpedanceMeter` (its AC level is set by the route)."""
        return ImpedanceMeter(driver, ac_voltage_v=0.01, name=name)

    def check(self, driver: Any, entry: DeviceEntry) -> str:
        """Identify and measure once at 1 kHz."""
        return _check_lcr(driver)


def _check_lcr(d: ScpiLcr) -> str:
    ident = d.identify()
    d.clear()
    z = d.measure(1000.0)
    return (
        f"{ident.get('manufacturer', '?')} {ident.get('model', '?')}; "
        f"Z(1 kHz) = {z.real:.4g} {z.imag:+.4g}j ohm"
    )
