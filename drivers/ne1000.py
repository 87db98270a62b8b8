"""New Era NE-1000 syringe pump, RS-232 basic mode (protocol sheet ``ne1000.md``).

Wire format (8N1, 19200 baud by default)::

    host → pump   f"{address}{command}\\r"             e.g. b"0RAT5MM\\r"
    pump → host   STX, 2-digit address, status, [data], ETX   e.g. b"\\x0200S5.000MM\\x03"

Status characters: ``I`` infusing, ``W`` withdrawing, ``S`` stopped, ``P`` paused, ``T`` timed
pause, ``U`` user wait, ``X`` purging, ``A`` alarm (``A?R`` reset, ``A?S`` stall, ``A?T`` safe-mode
time-out, ``A?E`` program error, ``A?O`` phase out of range). A rejected command carries ``?``,
``?NA``, ``?OOR``, ``?COM`` or ``?IGN`` after the status.

Errors: a ``?…`` reply raises :class:`PumpCommandError`, an ``A?x`` reply raises
:class:`PumpAlarm` (both :class:`~drivers.errors.DeviceReportedError`; ``code`` is the reply text
after the status, e.g. ``"?OOR"`` or ``"A?R"``). The alarm reply replaces the normal reply and
the command is not executed, so queries and set commands, which are idempotent, are sent once
more after an alarm (it was acknowledged by the reply), as are :meth:`NE1000.stop` (stopping is
the safe direction) and replies lost to a time-out or garbling. ``RUN`` is never repeated, and
the status poll (:meth:`NE1000.status`) always raises the alarm, so a stall during a dispense
reaches :meth:`NE1000.wait_until_stopped`. The last alarm seen is kept in
:attr:`NE1000.last_alarm`.

Numbers are sent with at most 4 digits and at most 3 decimals (sheet §3), rounded half up and
without trailing zeros (``5`` not ``5.000``); a value that does not fit (≥ 9999.5, or non-zero
but rounding to 0) is refused before sending.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TypeVar

from drivers._base import Instrument
from drivers.errors import DeviceReportedError, DriverTimeout, GarbledReply, SafetyLimitError
from drivers.transport import PortLike, retry_idempotent

__all__ = ["NE1000", "PumpAlarm", "PumpCommandError", "PumpLimits", "format_pump_number"]

_log = logging.getLogger(__name__)

T = TypeVar("T")

STX = b"\x02"
ETX = b"\x03"

RATE_UNITS: dict[str, float] = {"UM": 1.0, "MM": 1000.0, "UH": 1.0 / 60.0, "MH": 1000.0 / 60.0}
"""Rate unit → factor to µL/min."""
VOLUME_UNITS: dict[str, float] = {"UL": 1.0, "ML": 1000.0}
"""Volume unit → factor to µL."""
DIRECTIONS = ("INF", "WDR")

STATUS_TEXT = {
    "I": "infusing",
    "W": "withdrawing",
    "S": "stopped",
    "P": "paused",
    "T": "timed pause phase",
    "U": "waiting for a user trigger",
    "X": "purging",
}
RUNNING_STATUSES = frozenset("IWXTU")
"""Statuses in which a pumping program is active (not stopped or paused)."""

ALARM_TEXT = {
    "R": "pump was reset (power interrupted)",
    "S": "motor stalled",
    "T": "safe-mode communications time-out",
    "E": "pumping program error",
    "O": "pumping program phase out of range",
}
ERROR_TEXT = {
    "?": "command not recognised",
    "?NA": "command not applicable now (e.g. the pump is running, or units change while pumping)",
    "?OOR": "value out of range (rate limits depend on the syringe diameter); setting unchanged",
    "?COM": "invalid communications packet",
    "?IGN": "command ignored because a new phase started at the same time; send it again",
}

_NUM = r"(\d+(?:\.\d*)?|\.\d+)"
_NUMBER_RE = re.compile(rf"^{_NUM}$")
_DIRECTION_RE = re.compile(r"^(INF|WDR)$")
_RATE_RE = re.compile(rf"^{_NUM}(UM|MM|UH|MH)$")
_VOLUME_RE = re.compile(rf"^{_NUM}(UL|ML)$")
_DIS_RE = re.compile(rf"^I{_NUM}W{_NUM}(UL|ML)$")


class PumpCommandError(DeviceReportedError):
    """The pump rejected a command (``?``, ``?NA``, ``?OOR``, ``?COM``, ``?IGN``).

    Attributes:
        code: The reply text after the status character, e.g. ``"?OOR"``.
        status: The status character that preceded it.
    """

    def __init__(
        self, message: str = "", *, device: str | None = None, code: str = "", status: str = ""
    ) -> None:
        super().__init__(message, device=device, code=code)
        self.status = status


class PumpAlarm(DeviceReportedError):
    """The pump answered with an alarm (``A?R``, ``A?S``, ``A?T``, ``A?E``, ``A?O``).

    The command that got this reply was not executed; the reply acknowledged the alarm.

    Attributes:
        code: ``"A?"`` plus the alarm type, e.g. ``"A?S"``.
        alarm: The alarm type letter, e.g. ``"S"``.
    """

    def __init__(
        self, message: str = "", *, device: str | None = None, code: str = "", alarm: str = ""
    ) -> None:
        super().__init__(message, device=device, code=code)
        self.alarm = alarm


@dataclass(frozen=True)
class PumpLimits:
    """Host-side limits checked before any byte is sent.

    Attributes:
        max_rate_ul_min: Highest pumping rate, µL/min.
        max_volume_ul: Largest volume to dispense, µL.
        min_diameter_mm: Smallest syringe inside diameter, mm.
        max_diameter_mm: Largest syringe inside diameter, mm.
        allow_continuous: Allow ``VOL 0`` (pump continuously until stopped).
    """

    max_rate_ul_min: float = math.inf
    max_volume_ul: float = math.inf
    min_diameter_mm: float = 0.1
    max_diameter_mm: float = 80.0
    allow_continuous: bool = False


def format_pump_number(value: float) -> str:
    """Format a non-negative number as the pump's ``<float>`` (≤ 4 digits, ≤ 3 decimals).

    Args:
        value: The number.

    Returns:
        Text such as ``"0.125"``, ``"26.59"``, ``"1500"``, ``"5"``.

    Raises:
        ValueError: Negative, not finite, ≥ 9999.5, or non-zero but rounding to 0.
    """
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{value!r} is not a finite non-negative number")
    try:
        exact = Decimal(repr(float(value)))
    except InvalidOperation as exc:  # pragma: no cover - repr of a finite float always parses
        raise ValueError(f"{value!r} is not a number") from exc
    for decimals in (3, 2, 1, 0):
        text = f"{exact.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP):f}"
        if sum(ch.isdigit() for ch in text) <= 4:
            break
    else:
        raise ValueError(f"{value:g} has more than 4 digits before the decimal point")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if value > 0 and Decimal(text) == 0:
        raise ValueError(f"{value:g} rounds to 0 with 3 decimals")
    return text


def _rounding_error(value: float, unit_factor: float) -> float | None:
    """Relative rounding error of ``value`` (base units) sent in a unit, or None if it won't fit."""
    try:
        text = format_pump_number(value / unit_factor)
    except ValueError:
        return None
    return abs(float(text) * unit_factor - value) / value if value else 0.0


def _best_unit(value: float, units: dict[str, float]) -> str | None:
    """The unit that represents ``value`` (base units) most exactly; earlier units win ties."""
    best: tuple[float, str] | None = None
    for unit, factor in units.items():
        err = _rounding_error(value, factor)
        if err is not None and (best is None or err < best[0] - 1e-12):
            best = (err, unit)
    return None if best is None else best[1]


class NE1000(Instrument):
    """Driver for a New Era NE-1000 syringe pump in basic mode.

    Args:
        url: Port URL (device path, pty path, ``socket://host:port``); None if ``port`` is given.
        address: Pump network address, 0–99.
        baudrate: Baud rate, bit/s (factory default 19200).
        timeout: Reply timeout, s.
        limits: Host-side safety limits; :class:`PumpLimits` defaults if None.
        port: Already-open port-like object (tests) instead of ``url``.
        name: Device name used in errors and logs.

    Attributes:
        address: Pump address.
        limits: The safety limits in force.
        last_alarm: The last alarm reply seen (e.g. ``"A?R"``), or None.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        address: int = 0,
        baudrate: int = 19200,
        timeout: float = 1.0,
        limits: PumpLimits | None = None,
        port: PortLike | None = None,
        name: str = "ne1000",
    ) -> None:
        if not 0 <= int(address) <= 99:
            raise ValueError(f"{name}: pump address must be 0–99, got {address}")
        self.address = int(address)
        self.limits = limits or PumpLimits()
        self.last_alarm: str | None = None
        super().__init__(url, port=port, name=name, baudrate=baudrate, timeout=timeout)

    def __repr__(self) -> str:
        return f"NE1000(name={self.name!r}, address={self.address})"

    # ------------------------------------------------------------------ reply parsing

    def _parse(self, reply: bytes, command: str) -> tuple[str, str]:
        """Split a framed reply into (status, data); raise on errors and alarms."""
        start = reply.rfind(STX)
        if start < 0 or not reply.endswith(ETX):
            raise GarbledReply(
                f"reply to {command!r} has no STX…ETX frame: {reply!r}; check the baud rate",
                device=self.name,
                reply=reply,
            )
        try:
            body = reply[start + 1 : -1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise GarbledReply(
                f"non-ASCII reply to {command!r}: {reply!r}; check the baud rate",
                device=self.name,
                reply=reply,
            ) from exc
        if len(body) < 3 or not body[:2].isdigit():
            raise GarbledReply(
                f"malformed reply to {command!r}: {reply!r}", device=self.name, reply=reply
            )
        if int(body[:2]) != self.address:
            raise GarbledReply(
                f"reply to {command!r} came from address {body[:2]}, expected "
                f"{self.address:02d}: {reply!r}; two pumps may share an address",
                device=self.name,
                reply=reply,
            )
        status, data = body[2], body[3:]
        if status == "A":
            if not data.startswith("?") or len(data) != 2:
                raise GarbledReply(
                    f"malformed alarm reply to {command!r}: {reply!r}",
                    device=self.name,
                    reply=reply,
                )
            alarm = data[1]
            self.last_alarm = "A" + data
            text = ALARM_TEXT.get(alarm, "unknown alarm")
            raise PumpAlarm(
                f"alarm A{data} ({text}) in reply to {command!r}; the command was not executed "
                "and the alarm is now acknowledged: check the pump, then repeat the command",
                device=self.name,
                code="A" + data,
                alarm=alarm,
            )
        if status not in STATUS_TEXT:
            raise GarbledReply(
                f"unknown status {status!r} in reply to {command!r}: {reply!r}",
                device=self.name,
                reply=reply,
            )
        if data.startswith("?"):
            text = ERROR_TEXT.get(data, "unknown error")
            raise PumpCommandError(
                f"pump rejected {command!r} with {data} ({text})",
                device=self.name,
                code=data,
                status=status,
            )
        return status, data

    def _exchange(
        self,
        command: str,
        parse: Callable[[str, str], T],
        *,
        repeatable: bool,
        retry_alarm: bool = True,
    ) -> T:
        """Send one command, parse the reply, return ``parse(status, data)``.

        Args:
            command: Command text without address and CR, e.g. ``"RAT5MM"``.
            parse: Turns (status, data) into the result; raises GarbledReply if it cannot.
            repeatable: The command is idempotent and may be sent again once after a time-out,
                a garbled reply or (if ``retry_alarm``) an alarm reply.
            retry_alarm: Also repeat after an alarm reply.
        """
        frame = f"{self.address}{command}\r".encode("ascii")

        def once() -> T:
            return parse(*self._parse(self.transport.query(frame, ETX), command))

        if not repeatable:
            return once()
        retry_on: tuple[type[BaseException], ...] = (DriverTimeout, GarbledReply)
        if retry_alarm:
            retry_on += (PumpAlarm,)
        return retry_idempotent(
            once, retries=1, retry_on=retry_on, what=command, logger=_log, on_retry=self._retried
        )

    def _no_data(self, command: str) -> Callable[[str, str], str]:
        def parse(status: str, data: str) -> str:
            if data:
                raise self._garbled(command, data)
            return status

        return parse

    def _set(self, command: str) -> str:
        return self._exchange(command, self._no_data(command), repeatable=True)

    def _query(self, command: str, pattern: re.Pattern[str] | None = None) -> tuple[str, ...]:
        """Query; return the data, or the groups of ``pattern`` matched against it."""

        def parse(status: str, data: str) -> tuple[str, ...]:
            if pattern is None:
                return (data,)
            if not (m := pattern.match(data)):
                raise self._garbled(command, data)
            return m.groups()

        return self._exchange(command, parse, repeatable=True)

    def _garbled(self, command: str, data: str) -> GarbledReply:
        return GarbledReply(
            f"unexpected reply data {data!r} to {command!r}",
            device=self.name,
            reply=data.encode(),
        )

    # ------------------------------------------------------------------ value checks

    def _number(self, what: str, value: float) -> str:
        try:
            return format_pump_number(value)
        except ValueError as exc:
            raise SafetyLimitError(
                f"{what}: {exc}; the pump accepts at most 4 digits and 3 decimals, so use "
                "another unit; nothing was sent",
                device=self.name,
            ) from exc

    def _rate_command(self, value: float, unit: str) -> str:
        unit = unit.upper()
        if unit not in RATE_UNITS:
            raise ValueError(f"{self.name}: rate unit must be one of {sorted(RATE_UNITS)}")
        ul_min = float(value) * RATE_UNITS[unit]
        if math.isfinite(ul_min) and ul_min > 0:
            # The limit applies to the number the pump will receive, after its rounding.
            ul_min = max(ul_min, float(self._number("rate", value)) * RATE_UNITS[unit])
        if not math.isfinite(ul_min) or ul_min <= 0 or ul_min > self.limits.max_rate_ul_min:
            raise SafetyLimitError(
                f"rate {value:g} {unit} ({ul_min:g} µL/min) is outside (0, "
                f"{self.limits.max_rate_ul_min:g}] µL/min; nothing was sent",
                device=self.name,
            )
        return f"RAT{self._number('rate', value)}{unit}"

    def _volume_commands(self, value: float, unit: str) -> tuple[str, str]:
        unit = unit.upper()
        if unit not in VOLUME_UNITS:
            raise ValueError(f"{self.name}: volume unit must be one of {sorted(VOLUME_UNITS)}")
        ul = float(value) * VOLUME_UNITS[unit]
        if math.isfinite(ul) and ul > 0:
            # The limit applies to the number the pump will receive, after its rounding.
            ul = max(ul, float(self._number("volume", value)) * VOLUME_UNITS[unit])
        if not math.isfinite(ul) or ul < 0 or ul > self.limits.max_volume_ul:
            raise SafetyLimitError(
                f"volume {value:g} {unit} ({ul:g} µL) is outside [0, "
                f"{self.limits.max_volume_ul:g}] µL; nothing was sent",
                device=self.name,
            )
        if ul == 0 and not self.limits.allow_continuous:
            raise SafetyLimitError(
                "volume 0 makes the pump run until stopped; set PumpLimits(allow_continuous=True) "
                "to allow it; nothing was sent",
                device=self.name,
            )
        return f"VOL{unit}", f"VOL{self._number('volume', value)}"

    @staticmethod
    def _direction(direction: str) -> str:
        direction = direction.upper()
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be 'INF' or 'WDR', got {direction!r}")
        return direction

    # ------------------------------------------------------------------ public API

    def identify(self) -> str:
        """Firmware identification (``VER``), e.g. ``"NE1000V3.928"``."""
        return self._query("VER")[0]

    def status(self) -> str:
        """Poll the status character (empty command); see ``STATUS_TEXT``.

        Raises:
            PumpAlarm: The pump reports an alarm (never swallowed here).
        """
        return self._exchange("", self._no_data("status poll"), repeatable=True, retry_alarm=False)

    def is_running(self) -> bool:
        """True while a pumping program is active (status I, W, X, T or U)."""
        return self.status() in RUNNING_STATUSES

    def set_diameter(self, mm: float) -> None:
        """Set the syringe inside diameter (``DIA``).

        Args:
            mm: Inside diameter, mm; checked against the limits.
        """
        lim = self.limits
        mm = self._check_range("diameter", mm, lim.min_diameter_mm, lim.max_diameter_mm, "mm")
        self._set(f"DIA{self._number('diameter', mm)}")

    def diameter(self) -> float:
        """Syringe inside diameter, mm."""
        return float(self._query("DIA", _NUMBER_RE)[0])

    def set_rate(self, value: float, unit: str = "UM") -> None:
        """Set the pumping rate (``RAT``); allowed while pumping (takes effect at once).

        Args:
            value: Rate in ``unit``; checked against ``limits.max_rate_ul_min``.
            unit: ``"UM"`` µL/min, ``"MM"`` mL/min, ``"UH"`` µL/h or ``"MH"`` mL/h.
        """
        self._set(self._rate_command(value, unit))

    def rate(self) -> tuple[float, str]:
        """Pumping rate as (value, unit), e.g. ``(5.0, "MM")``."""
        value, unit = self._query("RAT", _RATE_RE)
        return float(value), unit

    def set_volume(self, value: float, unit: str = "UL") -> None:
        """Set the volume to dispense: sends ``VOLUL``/``VOLML`` then ``VOL<n>``.

        Args:
            value: Volume in ``unit``; checked against ``limits.max_volume_ul``. 0 (pump until
                stopped) needs ``limits.allow_continuous``.
            unit: ``"UL"`` or ``"ML"``.
        """
        for command in self._volume_commands(value, unit):
            self._set(command)

    def volume(self) -> tuple[float, str]:
        """Volume to dispense as (value, unit), e.g. ``(1.0, "ML")``."""
        value, unit = self._query("VOL", _VOLUME_RE)
        return float(value), unit

    def set_direction(self, direction: str) -> None:
        """Set the pumping direction (``DIR``).

        Args:
            direction: ``"INF"`` (infuse) or ``"WDR"`` (withdraw).
        """
        self._set(f"DIR{self._direction(direction)}")

    def direction(self) -> str:
        """Pumping direction, ``"INF"`` or ``"WDR"``."""
        return self._query("DIR", _DIRECTION_RE)[0]

    def run(self) -> str:
        """Start the pumping program (``RUN``). Never repeated automatically.

        Returns:
            The status character of the reply (``I`` or ``W`` when pumping started).

        Raises:
            PumpAlarm: An alarm reply: the pump did not start; check it and call again.
        """
        return self._exchange("RUN", self._no_data("RUN"), repeatable=False)

    def stop(self) -> str:
        """Stop pumping (``STP``); a second ``STP`` is sent if the first only paused.

        The NE family pauses on the first ``STP`` (status ``P``) and stops on the second (``S``);
        a paused program would resume its remaining volume on the next ``RUN``.

        Returns:
            The final status character (``S`` normally).
        """
        status = self._set("STP")
        if status == "P":
            status = self._set("STP")
        return status

    def dispensed(self) -> tuple[float, float, str]:
        """Volumes dispensed since last cleared (``DIS``).

        Returns:
            (infused, withdrawn, unit), e.g. ``(0.125, 0.0, "ML")``.
        """
        infused, withdrawn, unit = self._query("DIS", _DIS_RE)
        return float(infused), float(withdrawn), unit

    def clear_dispensed(self, direction: str) -> None:
        """Clear the infused (``"INF"``) or withdrawn (``"WDR"``) counter (``CLD``)."""
        self._set(f"CLD{self._direction(direction)}")

    def dispense(self, volume_ul: float, rate_ul_min: float, *, direction: str = "INF") -> str:
        """Set volume, rate and direction, then start pumping; returns without waiting.

        Units are chosen to represent the numbers most exactly in 4 digits (µL and µL/min unless
        those lose precision). All limits are checked before the first byte is sent.

        Args:
            volume_ul: Volume to dispense, µL (> 0).
            rate_ul_min: Rate, µL/min (> 0).
            direction: ``"INF"`` or ``"WDR"``.

        Returns:
            The status character of the ``RUN`` reply.
        """
        direction = self._direction(direction)
        if volume_ul <= 0 or not math.isfinite(volume_ul):
            raise SafetyLimitError(
                f"dispense volume must be > 0 µL, got {volume_ul:g}; nothing was sent",
                device=self.name,
            )
        vunit = _best_unit(float(volume_ul), VOLUME_UNITS) or "UL"
        runit = _best_unit(float(rate_ul_min), RATE_UNITS) if rate_ul_min > 0 else None
        commands = [
            *self._volume_commands(volume_ul / VOLUME_UNITS[vunit], vunit),
            self._rate_command(rate_ul_min / RATE_UNITS[runit or "UM"], runit or "UM"),
            f"DIR{direction}",
        ]
        with self.transport.lock:
            for command in commands:
                self._set(command)
            return self.run()

    def wait_until_stopped(self, timeout_s: float, poll_s: float = 0.05) -> str:
        """Poll the status until the pump is stopped or paused.

        Args:
            timeout_s: Longest wait, s.
            poll_s: Polling period, s.

        Returns:
            The final status character (``S`` or ``P``).

        Raises:
            DriverTimeout: Still running after ``timeout_s`` (the pump is left running).
            PumpAlarm: The pump raised an alarm (e.g. ``A?S`` motor stall).
        """
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.status()
            if status not in RUNNING_STATUSES:
                return status
            if time.monotonic() >= deadline:
                raise DriverTimeout(
                    f"pump still {STATUS_TEXT[status]} after {timeout_s:g} s; call stop() if it "
                    "should not be",
                    device=self.name,
                )
            time.sleep(max(0.0, min(poll_s, deadline - time.monotonic())))
