"""GRBL 1.1 motion controller (protocol sheet ``grbl.md``).

Serial 115200 8N1. Lines go out ending in ``\\n`` only (``\\r\\n`` would earn a second ``ok``);
replies end in ``\\r\\n``. The driver streams send-response: one line, then wait for ``ok`` or
``error:<n>``. Push messages are not responses: the welcome banner (``Grbl 1.1h ['$' for help]``,
kept in :attr:`Grbl.banner`), ``[MSG:…]``/``[…]`` feedback, ``>…:ok`` start-up lines and status
reports are skipped, and ``ALARM:<n>`` raises :class:`GrblAlarm` at once (a critical alarm sends
no ``ok``; only :meth:`Grbl.soft_reset` clears it).

``ok`` means *queued*, not finished: :meth:`Grbl.wait_idle` polls the ``?`` status report until
the state is ``Idle``. Real-time bytes (``?``, ``!``, ``~``, Ctrl-X) are written without a line
end and are refused inside G-code lines.

Coordinates are mm (the driver never sends ``G20``). :meth:`Grbl.move_to` sends ``G90 G1`` in
work coordinates; the travel limits apply to machine coordinates, converted with the last
``WCO`` seen in a status report (zero until one is seen). :meth:`Grbl.move_by` sends ``G91 G1``
after reading the position. Targets are checked before the move is sent.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from drivers._base import Instrument
from drivers.errors import (
    DeviceReportedError,
    DriverError,
    DriverTimeout,
    GarbledReply,
    SafetyLimitError,
)
from drivers.transport import PortLike, retry_idempotent

__all__ = ["Grbl", "GrblAlarm", "GrblError", "GrblStatus", "TravelLimits"]

_log = logging.getLogger(__name__)

LF = b"\n"
STATUS_QUERY = b"?"
FEED_HOLD = b"!"
CYCLE_START = b"~"
SOFT_RESET = b"\x18"

STATES = frozenset({"Idle", "Run", "Hold", "Jog", "Alarm", "Door", "Check", "Home", "Sleep"})
_STILL = frozenset({"Idle", "Alarm", "Check", "Sleep"})
"""States in which nothing moves and no move is queued to run."""
MAX_LINE = 80
_REALTIME_CHARS = frozenset("?!~\x18")

ERROR_TEXT = {
    1: "expected command letter",
    2: "bad number format",
    3: "'$' command not recognised",
    4: "negative value",
    5: "homing not enabled ($22)",
    6: "step pulse < 3 µs",
    7: "EEPROM read failed; defaults restored",
    8: "'$' command needs the Idle state",
    9: "G-code locked out in Alarm or Jog state (home with $H or unlock with $X)",
    10: "soft limits need homing enabled",
    11: "line too long",
    12: "step rate over maximum",
    13: "safety door open",
    14: "line too long for EEPROM",
    15: "jog target exceeds machine travel",
    16: "invalid jog command",
    17: "laser mode needs PWM output",
    20: "unsupported or invalid G-code",
    21: "modal group violation",
    22: "feed rate undefined",
    23: "integer value required",
    24: "two axis-word commands in one block",
    25: "repeated word",
    26: "axis words missing",
    27: "bad line number",
    28: "missing P/L value word",
    29: "G59.x not supported",
    30: "G53 needs G0/G1",
    31: "unused axis words",
    32: "arc: no in-plane axis words",
    33: "invalid motion target",
    34: "arc radius error",
    35: "arc: missing IJK offset",
    36: "unused value words",
    37: "G43.1 on wrong axis",
    38: "tool number too large",
}
ALARM_TEXT = {
    1: "hard limit triggered; position likely lost: soft_reset() then re-home",
    2: "soft limit: target exceeds travel; position retained: soft_reset() then unlock()",
    3: "reset during motion; position likely lost: re-home",
    4: "probe not in the expected initial state",
    5: "probe did not contact within travel",
    6: "homing fail: cycle reset",
    7: "homing fail: door opened",
    8: "homing fail: pull-off did not clear the switch",
    9: "homing fail: switch not found within search distance",
    10: "homing fail: second dual-axis switch not found",
}

Vector = tuple[float, float, float]


class GrblError(DeviceReportedError):
    """GRBL answered ``error:<n>``; the line was not executed.

    Attributes:
        code: ``n`` as text, e.g. ``"9"``.
        error: ``n`` as int.
    """

    def __init__(
        self, message: str = "", *, device: str | None = None, code: str = "", error: int = 0
    ) -> None:
        super().__init__(message, device=device, code=code)
        self.error = error


class GrblAlarm(DeviceReportedError):
    """GRBL sent ``ALARM:<n>`` or reports the Alarm state.

    Attributes:
        code: ``"ALARM:<n>"``, or ``"Alarm"`` when only the state is known.
        alarm: ``n``, or None when only the state is known.
    """

    def __init__(
        self,
        message: str = "",
        *,
        device: str | None = None,
        code: str = "",
        alarm: int | None = None,
    ) -> None:
        super().__init__(message, device=device, code=code)
        self.alarm = alarm


@dataclass(frozen=True)
class TravelLimits:
    """Soft travel limits in machine coordinates, checked before any move is sent.

    The defaults allow ±200 mm per axis, GRBL's default ``$130``–``$132`` travel, in either
    direction (the machine's sign convention is unknown); set them for the real machine.

    Attributes:
        x: (min, max) X, mm.
        y: (min, max) Y, mm.
        z: (min, max) Z, mm.
        max_feed_mm_min: Highest feed rate, mm/min.
    """

    x: tuple[float, float] = (-200.0, 200.0)
    y: tuple[float, float] = (-200.0, 200.0)
    z: tuple[float, float] = (-200.0, 200.0)
    max_feed_mm_min: float = math.inf


@dataclass(frozen=True)
class GrblStatus:
    """A parsed ``<…>`` status report.

    Attributes:
        state: ``Idle``, ``Run``, ``Hold``, ``Jog``, ``Alarm``, ``Door``, ``Check``, ``Home`` or
            ``Sleep``.
        substate: The number after ``Hold:``/``Door:``, or None.
        mpos: Machine position (x, y, z), mm; ``WPos + WCO`` when only WPos is reported, with
            the last WCO seen (zero until one is seen).
        wpos: Work position, mm: reported, or ``MPos - WCO``.
        feed: Current feed rate, mm/min, if reported.
        spindle: Spindle speed, rpm, if reported.
        fields: Every field after the state, raw (e.g. ``{"Bf": "15,128"}``).
        raw: The report line.
    """

    state: str
    substate: int | None
    mpos: Vector | None
    wpos: Vector | None = None
    feed: float | None = None
    spindle: float | None = None
    fields: Mapping[str, str] = field(default_factory=dict)
    raw: str = ""


def _vector(text: str) -> Vector:
    parts = [float(p) for p in text.split(",")]
    if len(parts) != 3:
        raise ValueError(f"expected 3 coordinates in {text!r}")
    return parts[0], parts[1], parts[2]


def _fmt(value: float) -> str:
    """G-code number: 3 decimals, trailing zeros dropped (``10``, ``-2.5``, ``0.001``)."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


class Grbl(Instrument):
    """Driver for a GRBL 1.1 controller.

    Args:
        url: Port URL (device path, pty path, ``socket://``); None if ``port`` is given.
        baudrate: Baud rate, bit/s.
        timeout: Reply timeout for ordinary lines and status reports, s.
        limits: Soft travel limits; :class:`TravelLimits` defaults if None.
        port: Already-open port-like object (tests) instead of ``url``.
        name: Device name used in errors and logs.

    Attributes:
        limits: The limits in force.
        banner: The last welcome banner seen, e.g. ``"Grbl 1.1h ['$' for help]"``, or None.
        last_alarm: The last ``ALARM:<n>`` number seen, or None.
        messages: Feedback lines (``[MSG:…]`` …) seen while waiting, most recent last (≤ 20).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        baudrate: int = 115200,
        timeout: float = 1.0,
        limits: TravelLimits | None = None,
        port: PortLike | None = None,
        name: str = "grbl",
    ) -> None:
        self.limits = limits or TravelLimits()
        self.banner: str | None = None
        self.last_alarm: int | None = None
        self.messages: list[str] = []
        self._wco: Vector = (0.0, 0.0, 0.0)
        self._desynced = False
        super().__init__(url, port=port, name=name, baudrate=baudrate, timeout=timeout)

    def _after_reconnect(self) -> None:
        # Opening the port resets the controller (banner again); late replies died with the
        # old connection.
        self._desynced = False

    # ------------------------------------------------------------------ line reading

    def _readline(self, deadline: float, waiting_for: str) -> str:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DriverTimeout(f"no reply to {waiting_for} in time", device=self.name)
        raw = self.transport.read_until(LF, remaining)
        try:
            return raw.decode("ascii").strip()
        except UnicodeDecodeError as exc:
            raise GarbledReply(
                f"non-ASCII line {raw!r} while waiting for {waiting_for}; check the baud rate",
                device=self.name,
                reply=raw,
            ) from exc

    def _alarm(self, line: str) -> GrblAlarm:
        try:
            n = int(line.partition(":")[2])
        except ValueError:
            return GrblAlarm(f"malformed alarm {line!r}", device=self.name, code=line)
        self.last_alarm = n
        return GrblAlarm(
            f"{line}: {ALARM_TEXT.get(n, 'unknown alarm')}",
            device=self.name,
            code=f"ALARM:{n}",
            alarm=n,
        )

    def _push(self, line: str) -> bool:
        """Record a push message; True if ``line`` is one (banner, feedback, start-up line)."""
        if not line:
            return True
        if line.startswith("Grbl "):
            self.banner = line
            return True
        if line.startswith("[") or line.startswith(">"):
            self.messages = [*self.messages[-19:], line]
            return True
        return False

    def _sync(self) -> None:
        """After a time-out, drop late replies so they are not taken for the next one."""
        if self._desynced:
            self.transport.reset_input_buffer()
            self._desynced = False

    # ------------------------------------------------------------------ lines

    def send_line(self, line: str, *, timeout: float | None = None) -> list[str]:
        """Send one G-code or ``$`` line and wait for ``ok``.

        Args:
            line: The line without terminator (≤ 80 characters, no real-time characters).
            timeout: Seconds to wait for the response; the driver default if None.

        Returns:
            Feedback and data lines received before ``ok`` (e.g. ``["[MSG:Caution: Unlocked]"]``),
            without the banner.

        Raises:
            GrblError: ``error:<n>``.
            GrblAlarm: ``ALARM:<n>`` arrived while waiting.
            DriverTimeout: No response in time.
        """
        if "\n" in line or "\r" in line or _REALTIME_CHARS & set(line):
            raise ValueError(f"{self.name}: line {line!r} contains a line end or real-time byte")
        if len(line) > MAX_LINE or not line.isascii():
            raise ValueError(f"{self.name}: line must be ASCII and at most {MAX_LINE} characters")
        limit = self.transport.timeout if timeout is None else timeout
        info: list[str] = []
        with self.transport.lock:
            self._sync()
            self.transport.write(line.encode("ascii") + LF)
            deadline = time.monotonic() + limit
            try:
                while True:
                    reply = self._readline(deadline, repr(line))
                    if reply == "ok":
                        return info
                    if reply.startswith("error:"):
                        raise self._error(reply, line)
                    if reply.startswith("ALARM:"):
                        raise self._alarm(reply)
                    if reply.startswith("<"):
                        continue  # a status report from an earlier '?'
                    if not self._push(reply) or reply.startswith("["):
                        info.append(reply)  # feedback or data such as "$0=10"
            except DriverTimeout:
                self._desynced = True
                raise

    def _error(self, reply: str, line: str) -> GrblError | GarbledReply:
        try:
            n = int(reply.partition(":")[2])
        except ValueError:
            return GarbledReply(
                f"malformed error reply {reply!r} to {line!r}",
                device=self.name,
                reply=reply.encode(),
            )
        return GrblError(
            f"{line!r} answered error:{n} ({ERROR_TEXT.get(n, 'unknown error')}); the line was "
            "not executed",
            device=self.name,
            code=str(n),
            error=n,
        )

    # ------------------------------------------------------------------ status

    def _parse_status(self, line: str) -> GrblStatus:
        if not (line.startswith("<") and line.endswith(">")):
            raise ValueError("not a <…> report")
        parts = line[1:-1].split("|")
        state, _, sub = parts[0].partition(":")
        if state not in STATES:
            raise ValueError(f"unknown state {state!r}")
        substate = int(sub) if sub else None
        fields: dict[str, str] = {}
        for part in parts[1:]:
            key, sep, value = part.partition(":")
            if not sep:
                raise ValueError(f"field {part!r} has no ':'")
            fields[key] = value
        if "WCO" in fields:
            self._wco = _vector(fields["WCO"])
        if "MPos" in fields:
            mpos: Vector | None = _vector(fields["MPos"])
            assert mpos is not None
            wpos: Vector | None = (
                mpos[0] - self._wco[0],
                mpos[1] - self._wco[1],
                mpos[2] - self._wco[2],
            )
        elif "WPos" in fields:
            wpos = _vector(fields["WPos"])
            mpos = (wpos[0] + self._wco[0], wpos[1] + self._wco[1], wpos[2] + self._wco[2])
        else:
            raise ValueError("no MPos or WPos")
        feed = spindle = None
        if "FS" in fields:
            fs = [float(v) for v in fields["FS"].split(",")]
            if len(fs) != 2:
                raise ValueError("FS needs feed,spindle")
            feed, spindle = fs
        elif "F" in fields:
            feed = float(fields["F"])
        return GrblStatus(state, substate, mpos, wpos, feed, spindle, fields, line)

    def status(self) -> GrblStatus:
        """Request and parse a status report (real-time ``?``).

        Raises:
            GrblAlarm: An ``ALARM:<n>`` arrived and no report followed (a critical alarm makes
                GRBL ignore ``?``: call :meth:`soft_reset`).
            DriverTimeout: No report in time.
            GarbledReply: The report does not parse.
        """
        return retry_idempotent(
            self._status_once, retries=1, what="status", logger=_log, on_retry=self._retried
        )

    def _status_once(self) -> GrblStatus:
        alarm: GrblAlarm | None = None
        with self.transport.lock:
            self._sync()
            self.transport.write(STATUS_QUERY)
            deadline = time.monotonic() + self.transport.timeout
            try:
                while True:
                    line = self._readline(deadline, "status report")
                    if line.startswith("<"):
                        break
                    if line.startswith("ALARM:"):
                        alarm = self._alarm(line)
                    elif not self._push(line) and line != "ok":
                        _log.warning("%s: ignoring %r while waiting for a status", self.name, line)
            except DriverTimeout:
                self._desynced = True
                if alarm is not None:
                    raise alarm from None
                raise DriverTimeout(
                    "no status report; GRBL ignores '?' while homing and in a critical alarm "
                    "(call soft_reset())",
                    device=self.name,
                ) from None
        try:
            return self._parse_status(line)
        except ValueError as exc:
            raise GarbledReply(
                f"cannot parse status report {line!r} ({exc})",
                device=self.name,
                reply=line.encode(),
            ) from exc

    def wait_idle(self, timeout: float, poll_s: float = 0.05) -> GrblStatus:
        """Poll the status until the state is ``Idle``.

        Args:
            timeout: Longest wait, s.
            poll_s: Polling period, s.

        Returns:
            The ``Idle`` status.

        Raises:
            GrblAlarm: The controller is in the Alarm state.
            DriverTimeout: Not idle within ``timeout`` (motion is left as is).
        """
        deadline = time.monotonic() + timeout
        while True:
            st = self.status()
            if st.state == "Idle":
                return st
            if st.state == "Alarm":
                n = self.last_alarm
                text = f"ALARM:{n} ({ALARM_TEXT.get(n, 'unknown')})" if n else "an alarm"
                raise GrblAlarm(
                    f"controller is in the Alarm state after {text}; unlock() or home()",
                    device=self.name,
                    code=f"ALARM:{n}" if n else "Alarm",
                    alarm=n,
                )
            if time.monotonic() >= deadline:
                raise DriverTimeout(
                    f"still {st.state} after {timeout:g} s; feed_hold() or soft_reset() to stop",
                    device=self.name,
                )
            time.sleep(max(0.0, min(poll_s, deadline - time.monotonic())))

    # ------------------------------------------------------------------ $ commands

    def unlock(self) -> list[str]:
        """Clear the Alarm lock without homing (``$X``); returns the feedback lines."""
        return self.send_line("$X")

    def home(self, *, timeout: float = 60.0) -> None:
        """Run the homing cycle (``$H``); ``ok`` arrives when homing has finished.

        Args:
            timeout: Longest homing time, s.

        Raises:
            GrblError: ``error:5`` homing disabled, ``error:13`` door open.
            GrblAlarm: ``ALARM:6``–``ALARM:9`` homing failed.
        """
        self.send_line("$H", timeout=timeout)

    # ------------------------------------------------------------------ motion

    def _check_feed(self, feed: float) -> str:
        if not math.isfinite(feed) or not 0 < feed <= self.limits.max_feed_mm_min:
            raise SafetyLimitError(
                f"feed {feed:g} mm/min is outside (0, {self.limits.max_feed_mm_min:g}]; "
                "nothing was sent",
                device=self.name,
            )
        return _fmt(feed)

    def _check_target(self, machine: dict[str, float]) -> None:
        for axis, value in machine.items():
            low, high = getattr(self.limits, axis.lower())
            if not math.isfinite(value) or not low <= value <= high:
                raise SafetyLimitError(
                    f"{axis} target {value:g} mm (machine) is outside the travel {low:g}–{high:g} "
                    "mm; the move was not sent",
                    device=self.name,
                )

    def move_to(
        self,
        x: float | None = None,
        y: float | None = None,
        z: float | None = None,
        *,
        feed: float,
    ) -> None:
        """Queue a linear move to an absolute position (``G90 G1 … F…``); returns on ``ok``.

        Args:
            x: Target X in work coordinates, mm; None leaves X unchanged.
            y: Target Y, mm; None leaves Y unchanged.
            z: Target Z, mm; None leaves Z unchanged.
            feed: Feed rate, mm/min.

        Raises:
            SafetyLimitError: Target outside the travel limits or bad feed (nothing sent).
        """
        target = {k: float(v) for k, v in (("X", x), ("Y", y), ("Z", z)) if v is not None}
        if not target:
            raise ValueError(f"{self.name}: move_to needs at least one axis")
        offset = dict(zip("XYZ", self._wco, strict=True))
        self._check_target({k: v + offset[k] for k, v in target.items()})
        words = " ".join(f"{k}{_fmt(v)}" for k, v in target.items())
        self.send_line(f"G90 G1 {words} F{self._check_feed(feed)}")

    def move_by(self, dx: float = 0.0, dy: float = 0.0, dz: float = 0.0, *, feed: float) -> None:
        """Queue a relative linear move (``G91 G1 … F…``); returns on ``ok``.

        The target is checked against the travel limits from the position in a status report,
        so the controller must be ``Idle`` (no queued motion) when this is called.

        Args:
            dx: X distance, mm.
            dy: Y distance, mm.
            dz: Z distance, mm.
            feed: Feed rate, mm/min.

        Raises:
            SafetyLimitError: Target outside the travel limits or bad feed (no move sent).
            DriverError: Not Idle, or the position is unknown (no move sent).
        """
        delta = {k: float(v) for k, v in (("X", dx), ("Y", dy), ("Z", dz)) if v}
        feed_text = self._check_feed(feed)
        if not delta:
            return
        if not all(math.isfinite(v) for v in delta.values()):
            raise SafetyLimitError(f"non-finite distance in {delta}", device=self.name)
        with self.transport.lock:
            st = self.status()
            if st.state != "Idle" or st.mpos is None:
                raise DriverError(
                    f"move_by needs the Idle state and a known position (state {st.state}); "
                    "call wait_idle() first; the move was not sent",
                    device=self.name,
                )
            here = dict(zip("XYZ", st.mpos, strict=True))
            self._check_target({k: here[k] + v for k, v in delta.items()})
            words = " ".join(f"{k}{_fmt(v)}" for k, v in delta.items())
            self.send_line(f"G91 G1 {words} F{feed_text}")

    # ------------------------------------------------------------------ real-time commands

    def feed_hold(self) -> None:
        """Decelerate and hold (real-time ``!``); :meth:`resume` continues."""
        self.transport.write(FEED_HOLD)

    def resume(self) -> None:
        """Resume after a feed hold (real-time ``~``)."""
        self.transport.write(CYCLE_START)

    def cancel_motion(self, *, timeout: float = 5.0, poll_s: float = 0.02) -> GrblStatus:
        """Stop the current move and drop queued ones, keeping the position, ready for more.

        A feed hold alone (``!``) leaves the controller in ``Hold`` with the move still
        queued: the next line is queued behind it and never runs until a cycle start
        (``~``), which would finish the abandoned move first. The sheet's way to abandon a
        move: feed hold, wait until the hold is complete (``Hold:0``, the axes stopped), then
        soft-reset (Ctrl-X). A reset while not moving raises no alarm, so the position is
        kept and the controller comes back ``Idle`` (its G-code modes re-initialised: the
        driver's moves state the modes they need). A jog is cancelled by the feed hold
        itself (``Idle``); nothing moves in ``Alarm``, ``Check`` or ``Sleep``: no reset then.

        Args:
            timeout: Longest wait for the hold to complete, s (deceleration); the reset is
                sent anyway when it expires.
            poll_s: Status polling period, s.

        Returns:
            The status after the stop (``Idle``).

        Raises:
            GrblAlarm: The controller is in ``Alarm``: it already was, or the reset came
                during motion (``ALARM:3``, position possibly lost: home, or check the
                position and :meth:`unlock`). It is not unlocked automatically.
            DriverTimeout: No status report or banner in time.
        """
        with self.transport.lock:
            self.feed_hold()
            deadline = time.monotonic() + timeout
            while True:
                st = self.status()
                if st.state in _STILL or (st.state == "Hold" and st.substate == 0):
                    break
                if time.monotonic() >= deadline:
                    _log.warning("%s: hold not complete after %g s; resetting", self.name, timeout)
                    break
                time.sleep(poll_s)
            if st.state not in _STILL:
                self.soft_reset()
                st = self.status()
        if st.state == "Alarm":
            n = self.last_alarm
            text = f"ALARM:{n} ({ALARM_TEXT.get(n, 'unknown')})" if n else "an alarm"
            raise GrblAlarm(
                f"motion stopped, but the controller is in the Alarm state after {text}; home, "
                "or check the position and unlock()",
                device=self.name,
                code=f"ALARM:{n}" if n else "Alarm",
                alarm=n,
            )
        return st

    def soft_reset(self, *, timeout: float = 2.0) -> str:
        """Halt and re-initialise (Ctrl-X, 0x18) and wait for the welcome banner.

        Queued motion is discarded; a reset during motion raises ``ALARM:3`` (recorded in
        :attr:`last_alarm`, not raised).

        Args:
            timeout: Seconds to wait for the banner.

        Returns:
            The banner line, e.g. ``"Grbl 1.1h ['$' for help]"``.
        """
        with self.transport.lock:
            self.transport.reset_input_buffer()
            self._desynced = False
            self.transport.write(SOFT_RESET)
            deadline = time.monotonic() + timeout
            try:
                while True:
                    line = self._readline(deadline, "the banner after a soft reset")
                    if line.startswith("Grbl "):
                        self.banner = line
                        return line
                    if line.startswith("ALARM:"):
                        _log.warning("%s: %s during soft reset", self.name, self._alarm(line))
                    else:
                        self._push(line)
            except DriverTimeout:
                self._desynced = True
                raise
