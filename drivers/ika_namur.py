"""IKA hotplate stirrer (RCT digital, C-MAG HS 7), NAMUR protocol (sheet ``ika-namur.md``).

Serial 9600 baud **7E1**, set when the port is opened. The host sends ``COMMAND[ value]\\r\\n``
and reads replies up to LF, stripping whitespace. Read commands answer ``<value> <channel>``
(``IN_PV_2`` → ``25.3 2``); set and start/stop commands get **no reply**, and the device defines
no error reply (an unknown command is met with silence). So set points are verified by reading
them back (``verify=True``), and a missing reply is the failure signal
(:class:`~drivers.errors.DriverTimeout`).

Temperatures are °C, speeds rpm.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import serial

from drivers._base import Instrument
from drivers.errors import DeviceReportedError, GarbledReply
from drivers.transport import PortLike, retry_idempotent

__all__ = ["IkaHotplate", "IkaLimits"]

_log = logging.getLogger(__name__)

T = TypeVar("T")

CRLF = b"\r\n"
LF = b"\n"


@dataclass(frozen=True)
class IkaLimits:
    """Host-side limits checked before any byte is sent (defaults: RCT digital ranges).

    Attributes:
        max_temp_c: Highest temperature set point, °C.
        max_speed_rpm: Highest stirring speed set point, rpm.
        setpoint_tolerance_c: Largest read-back difference accepted by ``verify``, °C.
    """

    max_temp_c: float = 310.0
    max_speed_rpm: float = 1500.0
    setpoint_tolerance_c: float = 0.5


def _fmt(value: float, decimals: int) -> str:
    """Plain decimal text without trailing zeros: 60 → ``"60"``, 60.25 → ``"60.2"`` (1 dp)."""
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


class IkaHotplate(Instrument):
    """Driver for an IKA hotplate stirrer speaking NAMUR.

    Args:
        url: Port URL (device path, pty path, ``socket://``); None if ``port`` is given.
        baudrate: Baud rate, bit/s.
        timeout: Reply timeout, s.
        limits: Host-side limits; :class:`IkaLimits` defaults if None.
        port: Already-open port-like object (tests) instead of ``url``.
        name: Device name used in errors and logs.

    Attributes:
        limits: The limits in force.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        baudrate: int = 9600,
        timeout: float = 1.0,
        limits: IkaLimits | None = None,
        port: PortLike | None = None,
        name: str = "ika",
    ) -> None:
        self.limits = limits or IkaLimits()
        super().__init__(
            url,
            port=port,
            name=name,
            baudrate=baudrate,
            bytesize=serial.SEVENBITS,
            parity=serial.PARITY_EVEN,
            stopbits=serial.STOPBITS_ONE,
            timeout=timeout,
        )

    # ------------------------------------------------------------------ wire level

    def _send(self, command: str) -> None:
        self.transport.write(command.encode("ascii") + CRLF)

    def _query(self, command: str, parse: Callable[[str], T]) -> T:
        payload = command.encode("ascii") + CRLF

        def once() -> T:
            raw = self.transport.query(payload, LF)
            try:
                line = raw.decode("ascii").strip()
            except UnicodeDecodeError as exc:
                raise GarbledReply(
                    f"non-ASCII reply to {command!r}: {raw!r}; check 9600 7E1",
                    device=self.name,
                    reply=raw,
                ) from exc
            if line.startswith("IN_"):
                raise GarbledReply(
                    f"the device sent the command {line!r} instead of a reply; it is probably "
                    "set up to drive an overhead stirrer (EUROSTAR): change that in its menu",
                    device=self.name,
                    reply=raw,
                )
            try:
                return parse(line)
            except ValueError as exc:
                raise GarbledReply(
                    f"cannot parse reply {line!r} to {command!r} ({exc})",
                    device=self.name,
                    reply=raw,
                ) from exc

        return retry_idempotent(once, retries=1, what=command, logger=_log, on_retry=self._retried)

    def _read_value(self, command: str) -> float:
        """Query ``IN_PV_x``/``IN_SP_x``; the reply must be ``<value> <x>``."""
        channel = command[-1]

        def parse(line: str) -> float:
            parts = line.split()
            if len(parts) != 2 or parts[1] != channel:
                raise ValueError(f"expected '<value> {channel}'")
            return float(parts[0])

        return self._query(command, parse)

    # ------------------------------------------------------------------ public API

    def identify(self) -> str:
        """Device name (``IN_NAME``), e.g. ``"RCT digital"``."""
        return self._query("IN_NAME", lambda line: line)

    def temperature(self) -> float:
        """Actual temperature of the external sensor (PT1000 / ETS-D), °C (``IN_PV_1``)."""
        return self._read_value("IN_PV_1")

    def plate_temperature(self) -> float:
        """Actual hotplate surface temperature, °C (``IN_PV_2``)."""
        return self._read_value("IN_PV_2")

    def temperature_setpoint(self) -> float:
        """Temperature set point, °C (``IN_SP_1``)."""
        return self._read_value("IN_SP_1")

    def safety_temperature(self) -> float:
        """Hardware safety-circuit temperature limit, °C (``IN_SP_3``)."""
        return self._read_value("IN_SP_3")

    def speed(self) -> float:
        """Actual stirring speed, rpm (``IN_PV_4``)."""
        return self._read_value("IN_PV_4")

    def speed_setpoint(self) -> float:
        """Stirring speed set point, rpm (``IN_SP_4``)."""
        return self._read_value("IN_SP_4")

    def viscosity_trend(self) -> float:
        """Viscosity trend value, arbitrary units (``IN_PV_5``)."""
        return self._read_value("IN_PV_5")

    def set_temperature(self, temp_c: float, *, verify: bool = True) -> None:
        """Set the temperature set point (``OUT_SP_1 x``), °C, 1 decimal.

        Args:
            temp_c: Set point, °C; refused outside 0–``limits.max_temp_c`` before sending.
            verify: Read ``IN_SP_1`` back and raise if the device did not take the value.

        Raises:
            SafetyLimitError: Outside the limits (nothing sent).
            DeviceReportedError: ``verify`` and the read-back differs (code ``"IN_SP_1"``).
        """
        temp_c = self._check_range(
            "temperature set point", temp_c, 0.0, self.limits.max_temp_c, "°C"
        )
        # The limit applies to the value on the wire, after rounding to 1 decimal.
        self._check_range(
            "temperature set point", float(_fmt(temp_c, 1)), 0.0, self.limits.max_temp_c, "°C"
        )
        with self.transport.lock:
            self._send(f"OUT_SP_1 {_fmt(temp_c, 1)}")
            if verify:
                self._verify("IN_SP_1", round(temp_c, 1), self.limits.setpoint_tolerance_c, "°C")

    def set_speed(self, rpm: float, *, verify: bool = True) -> None:
        """Set the stirring speed set point (``OUT_SP_4 n``), rpm, whole numbers.

        Args:
            rpm: Set point, rpm; refused outside 0–``limits.max_speed_rpm`` before sending.
            verify: Read ``IN_SP_4`` back and raise if the device did not take the value.
        """
        rpm = self._check_range("speed set point", rpm, 0.0, self.limits.max_speed_rpm, "rpm")
        with self.transport.lock:
            self._send(f"OUT_SP_4 {round(rpm)}")
            if verify:
                self._verify("IN_SP_4", round(rpm), 0.5, "rpm")

    def _verify(self, command: str, expected: float, tolerance: float, unit: str) -> None:
        actual = self._read_value(command)
        if abs(actual - expected) > tolerance:
            raise DeviceReportedError(
                f"set point not applied: {command} reads {actual:g} {unit}, sent {expected:g} "
                f"{unit}; the device may clamp it (check IN_SP_3, the safety limit) or be in a "
                "mode that ignores remote set points",
                device=self.name,
                code=command,
            )

    def start_heating(self) -> None:
        """Switch the heater on (``START_1``).

        Some units reset the temperature set point when heating starts: set it afterwards.
        """
        self._send("START_1")

    def stop_heating(self) -> None:
        """Switch the heater off (``STOP_1``)."""
        self._send("STOP_1")

    def start_stirring(self) -> None:
        """Switch the stirrer motor on (``START_4``)."""
        self._send("START_4")

    def stop_stirring(self) -> None:
        """Switch the stirrer motor off (``STOP_4``)."""
        self._send("STOP_4")
