"""IKA hotplates (NAMUR protocol): heat to a set point and hold (``anneal`` steps)."""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, Any

from ophyd import Component as Cpt
from ophyd import Device
from ophyd.status import DeviceStatus

from drivers import IkaHotplate, IkaLimits
from lab.errors import WorkcellError
from lab.instruments._base import DeviceContext, DriverSignal, InstrumentKind, wait_for

if TYPE_CHECKING:
    from lab.spec import SafetyLimits
    from lab.workcell import DeviceEntry


class Hotplate(Device):
    """An IKA hotplate. ``set(temp_c)`` heats and finishes when the sample is at temperature.

    ``bps.mv(hotplate.setpoint, T)`` only writes (and reads back) the set point; ``bps.mv(
    hotplate, T)`` also starts heating and waits until the measured temperature is within
    ``tolerance_c`` of the set point.

    Args:
        driver: The connected driver.
        tolerance_c: Band around the set point counted as "at temperature", degC.
        timeout_s: Longest wait to reach the set point, s (of the workcell's clock).
        time_scale: Workcell seconds per real second (simulated workcells run faster).
    """

    temperature = Cpt(DriverSignal, getter="_get_temperature", units="degC", kind="hinted")
    setpoint = Cpt(
        DriverSignal, getter="_get_setpoint", setter="_set_setpoint", units="degC", kind="config"
    )
    heating = Cpt(DriverSignal, setter="_set_heating", kind="omitted")

    def __init__(
        self,
        driver: Any,
        *,
        name: str,
        tolerance_c: float = 2.0,
        timeout_s: float = 3600.0,
        time_scale: float = 1.0,
        **kwargs: Any,
    ) -> None:
        self._driver = driver
        self.tolerance_c = tolerance_c
        self.timeout_s = timeout_s
        self.time_scale = time_scale
        super().__init__(name=name, **kwargs)

    def _get_temperature(self) -> float:
        return self._driver.temperature()

    def _get_setpoint(self) -> float:
        return self._driver.temperature_setpoint()

    def _set_setpoint(self, value: float) -> float:
        self._driver.set_temperature(float(value), verify=True)
        return self._get_setpoint()

    def _set_heating(self, on: float) -> float:
        if on:
            self._driver.start_heating()
        else:
            self._driver.stop_heating()
        return 1.0 if on else 0.0

    def set(self, temp_c: float) -> DeviceStatus:  # type: ignore[override]
        """Write the set point, start heating, finish when at temperature."""
        status = DeviceStatus(self)

        def work() -> None:
            try:
                self.setpoint.put(float(temp_c))
                self._driver.start_heating()
                ok = wait_for(
                    lambda: abs(self._driver.temperature() - temp_c) <= self.tolerance_c,
                    self.timeout_s / self.time_scale,
                    poll_s=0.05,
                )
                if not ok:
                    raise WorkcellError(
                        f"{self.name}: did not reach {temp_c} degC within {self.timeout_s:.0f} s"
                    )
                status.set_finished()
            except Exception as exc:  # noqa: BLE001 - reported through the status
                status.set_exception(exc)

        threading.Thread(target=work, name=f"{self.name}-heat", daemon=True).start()
        return status

    def heat_off(self) -> None:
        """Stop heating (idempotent)."""
        self._driver.stop_heating()

    def stop(self, *, success: bool = False) -> None:
        """Stop heating when a plan is aborted."""
        with contextlib.suppress(Exception):
            self._driver.stop_heating()


class IkaNamurKind(InstrumentKind):
    """IKA hotplate/stirrer (serial, 7E1)."""

    name = "ika_namur"
    doc = "hotplate"
    limits_type = IkaLimits
    simulator = "simulators.ika_namur:IkaNamurSim"

    def open(self, entry: DeviceEntry, limits: Any | None, **kw: Any) -> Any:
        """An :class:`drivers.IkaHotplate`."""
        return IkaHotplate(entry.url, limits=limits, **kw)

    def limits_from_safety(self, safety: SafetyLimits) -> Any | None:
        """Temperature cap."""
        return IkaLimits(max_temp_c=safety.max_temperature_c)

    def device(self, driver: Any, name: str, entry: DeviceEntry, ctx: DeviceContext) -> Any:
        """A :class:`Hotplate` on the workcell's clock."""
        return Hotplate(driver, name=name, time_scale=ctx.time_scale)

    def check(self, driver: Any, entry: DeviceEntry) -> str:
        """Identify, read the temperature, write and verify a 25 degC set point (no heating)."""
        return _check_hotplate(driver)


def _check_hotplate(d: IkaHotplate) -> str:
    ident = d.identify()
    temp = d.temperature()
    setpoint = 25.0
    d.set_temperature(setpoint, verify=True)
    return f"{ident}; {temp:.1f} degC, set point {d.temperature_setpoint():g} degC (not heating)"
