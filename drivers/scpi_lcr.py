"""Keysight E4980A-style SCPI LCR meter over a raw socket (protocol sheet ``scpi-lcr.md``).

Every command and every reply ends with LF. Set commands get no reply. Per IEEE 488.2, a query
that causes an error gets **no** reply: when a query times out, the driver reads ``:SYST:ERR?``
and raises :class:`~drivers.errors.DeviceReportedError` with the SCPI code (e.g. ``"-113"``) if
the queue holds one, else :class:`~drivers.errors.DriverTimeout`. Errors of set commands stay in
the queue until :meth:`ScpiLcr.check_errors` (which :meth:`ScpiLcr.measure` calls at the end).

Typical URL: ``socket://127.0.0.1:5025``. A serial URL works too (the same LF framing).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from drivers._base import Instrument
from drivers.errors import DeviceReportedError, DriverTimeout, GarbledReply
from drivers.transport import PortLike, retry_idempotent

__all__ = ["LcrLimits", "LcrMeasurementError", "LcrReading", "ScpiLcr"]

_log = logging.getLogger(__name__)

T = TypeVar("T")

LF = b"\n"

FUNCTIONS = frozenset(
    [
        "CPD",
        "CPQ",
        "CPG",
        "CPRP",
        "CSD",
        "CSQ",
        "CSRS",
        "LPD",
        "LPQ",
        "LPG",
        "LPRP",
        "LSD",
        "LSQ",
        "LSRS",
        "RX",
        "ZTD",
        "ZTR",
        "GB",
        "YTD",
        "YTR",
        "LSRD",
        "VDID",
    ]
)
"""``:FUNC:IMP`` mnemonics (sheet §3)."""
TRIGGER_SOURCES = frozenset({"INT", "EXT", "BUS", "HOLD"})

FETCH_STATUS_TEXT = {
    -1: "no data in the data buffer (no measurement was triggered)",
    0: "normal",
    1: "overload (change the impedance range or enable auto-range)",
    3: "signal source overloaded",
    4: "ALC unable to regulate",
}

_ERR_RE = re.compile(r'^\s*([+-]?\d+)\s*,\s*"?(.*?)"?\s*$')


class LcrMeasurementError(DeviceReportedError):
    """``:FETC?`` returned a status without valid data (``-1`` no data, ``+1`` overload).

    Attributes:
        code: The status as text, e.g. ``"+1"``.
        status: The status as int.
    """

    def __init__(
        self, message: str = "", *, device: str | None = None, code: str = "", status: int = 0
    ) -> None:
        super().__init__(message, device=device, code=code)
        self.status = status


@dataclass(frozen=True)
class LcrLimits:
    """Host-side limits checked before any byte is sent.

    Attributes:
        min_frequency_hz: Lowest test frequency, Hz (E4980A: 20 Hz).
        max_frequency_hz: Highest test frequency, Hz (E4980A: 2 MHz; E4980AL: lower by option).
        max_voltage_vrms: Highest test signal level, Vrms (2 V standard, 20 V with option 001).
    """

    min_frequency_hz: float = 20.0
    max_frequency_hz: float = 2e6
    max_voltage_vrms: float = 2.0


@dataclass(frozen=True)
class LcrReading:
    """One ``:FETC?`` result.

    Attributes:
        a: Primary parameter (e.g. R in Ω for RX, \\|Z\\| in Ω for ZTD).
        b: Secondary parameter (e.g. X in Ω for RX, θ in degrees for ZTD).
        status: Measurement status: 0 normal, -1 no data, 1 overload, 3 source overload, 4 ALC.
        bin: Comparator bin number, or None when the comparator is off.
    """

    a: float
    b: float
    status: int
    bin: int | None = None

    @property
    def ok(self) -> bool:
        """True when the status is 0 (normal)."""
        return self.status == 0


def _num(value: float) -> str:
    """SCPI numeric text, e.g. ``1000``, ``0.5``, ``1.5E+06``."""
    return f"{value:.10g}".upper()


class ScpiLcr(Instrument):
    """Driver for an E4980A-style LCR meter speaking SCPI with LF terminators.

    Args:
        url: Port URL, typically ``socket://host:5025``; None if ``port`` is given.
        timeout: Reply timeout, s.
        limits: Host-side limits; :class:`LcrLimits` (E4980A ranges) if None.
        port: Already-open port-like object (tests) instead of ``url``.
        name: Device name used in errors and logs.

    Attributes:
        limits: The limits in force.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        timeout: float = 2.0,
        limits: LcrLimits | None = None,
        port: PortLike | None = None,
        name: str = "lcr",
    ) -> None:
        self.limits = limits or LcrLimits()
        super().__init__(url, port=port, name=name, timeout=timeout)

    # ------------------------------------------------------------------ wire level

    def write(self, command: str) -> None:
        """Send one command line (LF appended). No reply is read."""
        self.transport.write(command.encode("ascii") + LF)

    def query(
        self, command: str, *, timeout: float | None = None, read_queue_on_timeout: bool = True
    ) -> str:
        """Send a query and return its reply line without the terminator.

        Args:
            command: The query, without terminator, e.g. ``":FREQ?"``.
            timeout: Reply timeout, s; the driver default if None.
            read_queue_on_timeout: On a time-out, read ``:SYST:ERR?`` to explain it.

        Raises:
            DeviceReportedError: No reply, and the error queue names the reason.
            DriverTimeout: No reply and no queued error.
            GarbledReply: A truncated or non-ASCII reply.
        """
        with self.transport.lock:
            try:
                raw = self.transport.query(command.encode("ascii") + LF, LF, timeout)
            except DriverTimeout as exc:
                if not read_queue_on_timeout:
                    raise
                error = self._error_after_timeout()
                if error is None or error[0] == 0:
                    raise
                code, message = error
                raise DeviceReportedError(
                    f"{command!r} got no reply; the meter reports {code},{message!r}; fix the "
                    "command or its parameters",
                    device=self.name,
                    code=str(code),
                ) from exc
        try:
            return raw.decode("ascii").strip()
        except UnicodeDecodeError as exc:
            raise GarbledReply(
                f"non-ASCII reply to {command!r}: {raw!r}", device=self.name, reply=raw
            ) from exc

    def _error_after_timeout(self) -> tuple[int, str] | None:
        try:
            return self.next_error()
        except (DriverTimeout, GarbledReply):
            return None

    def _query_parsed(
        self,
        command: str,
        parse: Callable[[str], T],
        *,
        retry: bool = True,
        read_queue_on_timeout: bool = True,
    ) -> T:
        def once() -> T:
            reply = self.query(command, read_queue_on_timeout=read_queue_on_timeout)
            try:
                return parse(reply)
            except (ValueError, IndexError) as exc:
                raise GarbledReply(
                    f"cannot parse reply {reply!r} to {command!r}",
                    device=self.name,
                    reply=reply.encode(),
                ) from exc

        if not retry:
            return once()
        return retry_idempotent(once, retries=1, what=command, logger=_log, on_retry=self._retried)

    # ------------------------------------------------------------------ checks

    def _check_frequency(self, hz: float) -> float:
        lim = self.limits
        return self._check_range("frequency", hz, lim.min_frequency_hz, lim.max_frequency_hz, "Hz")

    def _check_function(self, function: str) -> str:
        function = function.upper()
        if function not in FUNCTIONS:
            raise ValueError(f"{self.name}: unknown impedance function {function!r}")
        return function

    # ------------------------------------------------------------------ common commands

    def identify(self) -> dict[str, str]:
        """Parse ``*IDN?``.

        Returns:
            ``{"manufacturer", "model", "serial", "firmware"}``.
        """

        def parse(reply: str) -> dict[str, str]:
            fields = [f.strip() for f in reply.split(",", 3)]
            if len(fields) != 4:
                raise ValueError("expected 4 comma-separated fields")
            return dict(zip(("manufacturer", "model", "serial", "firmware"), fields, strict=True))

        return self._query_parsed("*IDN?", parse)

    def reset(self) -> None:
        """Reset the setup to defaults (``*RST``); the error queue is not cleared."""
        self.write("*RST")

    def clear(self) -> None:
        """Clear status registers and the error queue (``*CLS``)."""
        self.write("*CLS")

    def opc(self, *, timeout: float | None = None) -> bool:
        """``*OPC?``: wait for pending operations; True when the meter answers 1.

        Args:
            timeout: Reply timeout, s; the driver default if None.
        """
        reply = self.query("*OPC?", timeout=timeout)
        try:
            return int(reply) == 1
        except ValueError:
            raise GarbledReply(
                f"cannot parse reply {reply!r} to '*OPC?'", device=self.name, reply=reply.encode()
            ) from None

    def next_error(self) -> tuple[int, str]:
        """Pop the oldest entry of the error queue (``:SYST:ERR?``); ``(0, "No error")`` if empty."""

        def parse(reply: str) -> tuple[int, str]:
            if not (m := _ERR_RE.match(reply)):
                raise ValueError('not <code>,"<message>"')
            return int(m[1]), m[2]

        # Not repeated: each read removes an entry.
        return self._query_parsed(":SYST:ERR?", parse, retry=False, read_queue_on_timeout=False)

    def check_errors(self, *, max_reads: int = 32) -> None:
        """Drain the error queue and raise if it held anything.

        Raises:
            DeviceReportedError: ``code`` is the oldest error's number; the message lists all.
        """
        errors: list[tuple[int, str]] = []
        for _ in range(max_reads):
            code, message = self.next_error()
            if code == 0:
                break
            errors.append((code, message))
        if errors:
            listed = "; ".join(f"{c},{m!r}" for c, m in errors)
            raise DeviceReportedError(
                f"the meter reported {listed}; the offending commands were not executed",
                device=self.name,
                code=str(errors[0][0]),
            )

    # ------------------------------------------------------------------ settings

    def set_function(self, function: str) -> None:
        """Select the measured parameter pair (``:FUNC:IMP``), e.g. ``"RX"`` or ``"ZTD"``."""
        self.write(f":FUNC:IMP {self._check_function(function)}")

    def function(self) -> str:
        """Selected measured parameter pair, e.g. ``"RX"``."""
        return self._query_parsed(":FUNC:IMP?", lambda r: self._check_function(r))

    def set_frequency(self, hz: float) -> None:
        """Set the test frequency (``:FREQ``), Hz; refused outside the limits before sending."""
        self.write(f":FREQ {_num(self._check_frequency(hz))}")

    def frequency(self) -> float:
        """Test frequency, Hz."""
        return self._query_parsed(":FREQ?", float)

    def set_voltage(self, vrms: float) -> None:
        """Set the test signal level (``:VOLT``), Vrms; refused above ``limits.max_voltage_vrms``."""
        vrms = self._check_range("voltage", vrms, 0.0, self.limits.max_voltage_vrms, "Vrms")
        self.write(f":VOLT {_num(vrms)}")

    def voltage(self) -> float:
        """Test signal level, Vrms."""
        return self._query_parsed(":VOLT?", float)

    def set_trigger_source(self, source: str) -> None:
        """Select the trigger source (``:TRIG:SOUR``): ``"INT"``, ``"EXT"``, ``"BUS"``, ``"HOLD"``."""
        source = source.upper()
        if source not in TRIGGER_SOURCES:
            raise ValueError(
                f"{self.name}: trigger source must be one of {sorted(TRIGGER_SOURCES)}"
            )
        self.write(f":TRIG:SOUR {source}")

    def trigger_source(self) -> str:
        """Selected trigger source, e.g. ``"BUS"``."""
        return self._query_parsed(":TRIG:SOUR?", str.upper)

    def set_continuous(self, on: bool) -> None:
        """Re-arm the trigger system after each measurement (``:INIT:CONT ON|OFF``)."""
        self.write(f":INIT:CONT {'ON' if on else 'OFF'}")

    def trigger(self) -> None:
        """Trigger one measurement (``:TRIG``); needs the BUS source and an armed trigger."""
        self.write(":TRIG")

    # ------------------------------------------------------------------ measuring

    def fetch(self, *, check: bool = True) -> LcrReading:
        """Read the last result (``:FETC?``).

        Args:
            check: Raise on status -1 (no data) and +1 (overload), whose values are invalid
                (9.9E37). Statuses 3 and 4 carry real data and only log a warning.

        Raises:
            LcrMeasurementError: ``check`` and the status is -1 or +1.
        """

        def parse(reply: str) -> LcrReading:
            fields = [f.strip() for f in reply.split(",")]
            if len(fields) not in (3, 4):
                raise ValueError("expected A,B,status[,bin]")
            a, b = float(fields[0]), float(fields[1])
            return LcrReading(a, b, int(fields[2]), int(fields[3]) if len(fields) == 4 else None)

        reading = self._query_parsed(":FETC?", parse)
        text = FETCH_STATUS_TEXT.get(reading.status, "unknown status")
        if check and reading.status in (-1, 1):
            raise LcrMeasurementError(
                f"measurement status {reading.status:+d}: {text}",
                device=self.name,
                code=f"{reading.status:+d}",
                status=reading.status,
            )
        if reading.status != 0:
            _log.warning("%s: measurement status %+d: %s", self.name, reading.status, text)
        return reading

    def _configure_bus_rx(self) -> None:
        self.set_function("RX")
        self.set_trigger_source("BUS")
        self.set_continuous(True)

    def _measure_point(self, hz: float) -> complex:
        self.set_frequency(hz)
        self.trigger()
        if not self.opc():
            raise GarbledReply("*OPC? did not return 1", device=self.name)
        reading = self.fetch()
        self.check_errors()
        return complex(reading.a, reading.b)

    def measure(self, freq_hz: float) -> complex:
        """Measure the complex impedance at one frequency.

        Sends ``:FUNC:IMP RX``, ``:TRIG:SOUR BUS``, ``:INIT:CONT ON`` (arms the trigger, sheet §6),
        ``:FREQ f``, ``:TRIG``, ``*OPC?``, ``:FETC?`` and ``:SYST:ERR?``. RX is used because it
        gives R and X in Ω directly, so Z = R + jX needs no angle-unit convention.

        Args:
            freq_hz: Test frequency, Hz.

        Returns:
            Z in Ω.

        Raises:
            SafetyLimitError: Frequency outside the limits (nothing sent).
            LcrMeasurementError: No data or overload.
            DeviceReportedError: The error queue was not empty (it may hold errors of earlier
                commands: call ``clear()`` first to discard them).
        """
        hz = self._check_frequency(freq_hz)
        with self.transport.lock:
            self._configure_bus_rx()
            return self._measure_point(hz)

    def sweep(self, freqs_hz: Iterable[float]) -> list[complex]:
        """Measure Z (Ω) at each frequency (Hz), configuring once; all are checked first."""
        freqs = [self._check_frequency(f) for f in freqs_hz]
        with self.transport.lock:
            if freqs:
                self._configure_bus_rx()
            return [self._measure_point(hz) for hz in freqs]
