"""Ophyd devices over the instrument drivers.

Signals call the driver on ``get``/``put``; ``set()`` returns a Status that finishes only when
the instrument confirms (a pump has stopped and its counter shows the volume, a meter has
returned its reading). Readings carry units in ``describe()``. The same devices drive real
hardware or the simulated workcell: only the URL in the workcell file differs.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ophyd import Component as Cpt
from ophyd import Device, Signal
from ophyd.status import DeviceStatus, Status
from ophyd.utils import ReadOnlyError

from drivers import NE1000, DeviceReportedError, IkaLimits, LcrLimits, PumpLimits, ScpiLcr
from lab.errors import SafetyError, WorkcellError
from lab.instruments import open_driver
from lab.spec import SafetyLimits
from lab.workcell import Workcell

_log = logging.getLogger(__name__)

__all__ = [
    "Balance",
    "DriverSignal",
    "Gantry",
    "Hotplate",
    "ImpedanceMeter",
    "Instruments",
    "SyringePump",
    "connect_workcell",
]


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


class Gantry(Device):
    """A GRBL gantry. ``set((x, y, z))`` moves (mm, machine coordinates) and finishes when idle.

    Args:
        driver: The connected driver.
        stations: Station name to ``(x, y, z)`` in mm (``dispense``, ``hotplate``, ``lcr``...).
        feed_mm_min: Feed rate of moves, mm/min.
        time_scale: Workcell seconds per real second.
    """

    x = Cpt(Signal, value=0.0, kind="hinted")
    y = Cpt(Signal, value=0.0, kind="hinted")
    z = Cpt(Signal, value=0.0, kind="hinted")

    def __init__(
        self,
        driver: Any,
        *,
        name: str,
        stations: dict[str, tuple[float, float, float]] | None = None,
        feed_mm_min: float = 3000.0,
        time_scale: float = 1.0,
        **kwargs: Any,
    ) -> None:
        self._driver = driver
        self._stopped = threading.Event()
        self._moving = threading.Event()
        self.stations = dict(stations or {})
        self.feed_mm_min = feed_mm_min
        self.time_scale = time_scale
        super().__init__(name=name, **kwargs)

    def station(self, name: str) -> tuple[float, float, float]:
        """Coordinates of a named station.

        Raises:
            WorkcellError: If the workcell defines no such station.
        """
        try:
            return self.stations[name]
        except KeyError:
            raise WorkcellError(
                f"{self.name}: no station '{name}' (stations: {sorted(self.stations)}); add it "
                f"under the gantry's 'stations:' in the workcell file"
            ) from None

    def _update(self, pos: Any) -> None:
        if pos is not None:
            for sig, v in zip((self.x, self.y, self.z), pos, strict=True):
                sig.put(float(v))

    def set(self, target: tuple[float, float, float]) -> DeviceStatus:  # type: ignore[override]
        """Move to ``(x, y, z)`` mm; the status finishes when GRBL reports Idle there.

        A move cut short by :meth:`stop` fails its status (the gantry is not at the target).
        """
        status = DeviceStatus(self)
        x, y, z = (float(v) for v in target)
        self._stopped.clear()
        self._moving.set()

        def work() -> None:
            try:
                self._driver.move_to(x, y, z, feed=self.feed_mm_min)
                travel = 60.0 * 400.0 / self.feed_mm_min / self.time_scale + 10.0
                st = self._driver.wait_idle(timeout=travel)
                self._update(st.mpos)
                if self._stopped.is_set():
                    raise WorkcellError(
                        f"{self.name}: the move to {(x, y, z)} was stopped at {st.mpos}"
                    )
                status.set_finished()
            except Exception as exc:  # noqa: BLE001 - reported through the status
                status.set_exception(exc)
            finally:
                self._moving.clear()

        threading.Thread(target=work, name=f"{self.name}-move", daemon=True).start()
        return status

    def stop(self, *, success: bool = False) -> None:
        """Abandon the current move when a plan is stopped or aborted.

        Feed hold, then (once the axes have stopped) a soft reset, as the GRBL sheet says to
        abandon a move: the position is kept and the controller is left ``Idle``, so the next
        move on the same connection runs (a feed hold alone would leave it in ``Hold`` with
        the old move queued). The RunEngine calls this at the end of every run, also after
        a successful one: without a move in progress nothing is sent. Errors are logged, not
        raised: the RunEngine is stopping.
        """
        if not self._moving.is_set():
            return
        self._stopped.set()
        try:
            st = self._driver.cancel_motion()
            self._update(st.mpos)
        except Exception as exc:  # noqa: BLE001 - the RunEngine is already stopping
            _log.warning("%s: stopping the gantry: %s", self.name, exc)


class Instruments:
    """The connected devices of a workcell; closes every driver on exit."""

    def __init__(self) -> None:
        self.pumps: dict[str, SyringePump] = {}
        self.lcr: ImpedanceMeter | None = None
        self.hotplate: Hotplate | None = None
        self.balance: Balance | None = None
        self.gantry: Gantry | None = None
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
    kinds: tuple[str, ...] = ("ne1000", "scpi_lcr", "ika_namur", "mt_sics", "grbl"),
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
            elif entry.kind == "ika_namur":
                inst.hotplate = Hotplate(driver, name=name, time_scale=workcell.time_scale)
            elif entry.kind == "mt_sics":
                inst.balance = Balance(driver, name=name)
            elif entry.kind == "grbl":
                stations = (entry.model_extra or {}).get("stations") or {}
                inst.gantry = Gantry(
                    driver,
                    name=name,
                    stations={k: tuple(map(float, v)) for k, v in stations.items()},
                    time_scale=workcell.time_scale,
                )
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
