"""Mettler Toledo balance, MT-SICS level 0/1 (protocol sheet ``mt-sics.md``).

Serial 9600 8N1 by default. Commands end with CR LF; each reply line ends with CR LF and reads
``<ID> <status> [data…]`` (``SI`` answers with ID ``S``, ``@`` with ``I4``). Weight replies are
``<ID> <S|D> <value> <unit>``, parsed by whitespace because the padding varies.

Failure replies raise :class:`~drivers.errors.DeviceReportedError`, ``code`` being the status or
the whole error reply as sent:

=========  ====================================================================
``I``      not executable now: busy, or no stable weight within the balance's time-out
``L``      logical error: parameter not allowed
``+``      overload (weighing, zero or tare range exceeded)
``-``      underload (pan missing) or below the zero/tare range
``ES``     syntax error: command not recognised
``ET``     transmission error (parity, framing, break)
``EL``     logical error: command cannot be executed
``Error n``  device error inside a weight reply (``S S Error 15e``): code ``"Error 15e"``
=========  ====================================================================

An unsolicited ``I4 A "<SNR>"`` line (sent by some balances at power-up) is skipped.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import TypeVar

from drivers._base import Instrument
from drivers.errors import DeviceReportedError, DriverTimeout, GarbledReply
from drivers.transport import PortLike, retry_idempotent

__all__ = ["MtSicsBalance"]

_log = logging.getLogger(__name__)

T = TypeVar("T")

CRLF = b"\r\n"
LF = b"\n"

STATUS_TEXT = {
    "I": "not executable now (balance busy, or no stable weight within its time-out); try again "
    "when the load is steady",
    "L": "logical error (parameter not allowed)",
    "+": "overload (above the weighing, zero or tare range); remove load",
    "-": "underload (weighing pan missing?) or below the zero/tare range; check the pan",
}
GENERAL_ERRORS = {
    "ES": "syntax error: command not recognised or not allowed",
    "ET": "transmission error (parity/framing); check the serial settings",
    "EL": "logical error: command cannot be executed",
}
DEVICE_ERRORS = {
    "1": "boot error",
    "2": "brand error",
    "3": "checksum error",
    "9": "option fail",
    "10": "EEPROM error",
    "11": "device mismatch",
    "12": "hot plug out",
    "14": "weight module/electronics mismatch",
    "15": "adjustment needed",
}

_LINE_RE = re.compile(r"^(\S+)\s+(\S+)(?:\s+(.*?))?\s*$")
_QUOTED_RE = re.compile(r'^"(.*)"$')
_DEVICE_ERROR_RE = re.compile(r"^Error\s+(\d+)([te]?)$")


class MtSicsBalance(Instrument):
    """Driver for a balance or weigh module speaking MT-SICS.

    Args:
        url: Port URL (device path, pty path, ``socket://host:port``); None if ``port`` is given.
        baudrate: Baud rate, bit/s.
        timeout: Reply timeout for immediate commands, s.
        stable_timeout: Reply timeout for commands that wait for stability (``S``, ``Z``,
            ``T``), s; the balance itself answers ``… I`` when it gives up.
        port: Already-open port-like object (tests) instead of ``url``.
        name: Device name used in errors and logs.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        baudrate: int = 9600,
        timeout: float = 1.0,
        stable_timeout: float = 10.0,
        port: PortLike | None = None,
        name: str = "balance",
    ) -> None:
        self.stable_timeout = float(stable_timeout)
        super().__init__(url, port=port, name=name, baudrate=baudrate, timeout=timeout)

    # ------------------------------------------------------------------ reply parsing

    def _read_reply(self, command: str, reply_id: str, timeout: float) -> tuple[str, str]:
        """Send ``command``; return (status, data) of its reply line, skipping stray ``I4 A``."""
        deadline = time.monotonic() + timeout
        raw = self.transport.query(command.encode("ascii") + CRLF, LF, timeout)
        while True:
            try:
                line = raw.decode("ascii").strip()
            except UnicodeDecodeError as exc:
                raise GarbledReply(
                    f"non-ASCII reply to {command!r}: {raw!r}; check the baud rate and framing",
                    device=self.name,
                    reply=raw,
                ) from exc
            if line in GENERAL_ERRORS:
                raise DeviceReportedError(
                    f"{command!r} answered {line}: {GENERAL_ERRORS[line]}",
                    device=self.name,
                    code=line,
                )
            m = _LINE_RE.match(line)
            stray = m is not None and m[1] == "I4" and m[2] == "A" and reply_id != "I4"
            if line and not stray:
                break
            if stray:
                _log.info("%s: skipping unsolicited %r (balance restarted?)", self.name, line)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DriverTimeout(
                    f"no reply to {command!r} within {timeout:g} s", device=self.name
                )
            raw = self.transport.read_until(LF, remaining)
        if m is None or m[1] != reply_id:
            raise GarbledReply(
                f"unexpected reply {line!r} to {command!r} (expected ID {reply_id!r})",
                device=self.name,
                reply=raw,
            )
        status, data = m[2], m[3] or ""
        if status in STATUS_TEXT:
            raise DeviceReportedError(
                f"{command!r} answered {line!r}: {STATUS_TEXT[status]}",
                device=self.name,
                code=status,
            )
        return status, data

    def _exchange(
        self,
        command: str,
        parse: Callable[[str, str], T],
        *,
        reply_id: str | None = None,
        timeout: float | None = None,
        repeatable: bool,
    ) -> T:
        rid = reply_id or command
        limit = self.transport.timeout if timeout is None else timeout

        def once() -> T:
            status, data = self._read_reply(command, rid, limit)
            try:
                return parse(status, data)
            except ValueError as exc:
                raise GarbledReply(
                    f"cannot parse reply '{rid} {status} {data}' to {command!r} ({exc})",
                    device=self.name,
                    reply=f"{rid} {status} {data}".encode(),
                ) from exc

        if not repeatable:
            return once()
        return retry_idempotent(once, retries=1, what=command, logger=_log, on_retry=self._retried)

    def _weight(self, command: str, allowed: str) -> Callable[[str, str], tuple[float, str]]:
        def parse(status: str, data: str) -> tuple[float, str]:
            if status not in allowed:
                raise ValueError(f"status {status!r} not in {allowed!r}")
            if m := _DEVICE_ERROR_RE.match(data):
                code = f"Error {m[1]}{m[2]}"
                where = {"t": " (terminal)", "e": " (electronics)"}.get(m[2], "")
                raise DeviceReportedError(
                    f"{command!r}: device error {m[1]}{where}: "
                    f"{DEVICE_ERRORS.get(m[1], 'unknown error')}; service the balance",
                    device=self.name,
                    code=code,
                )
            parts = data.split()
            if len(parts) != 2:
                raise ValueError("expected '<value> <unit>'")
            return float(parts[0]), parts[1]

        return parse

    @staticmethod
    def _quoted(status: str, data: str) -> str:
        if status != "A" or not (m := _QUOTED_RE.match(data)):
            raise ValueError('expected A "<text>"')
        return m[1]

    @staticmethod
    def _status_only(allowed: str) -> Callable[[str, str], str]:
        def parse(status: str, data: str) -> str:
            if status not in allowed or data:
                raise ValueError(f"expected status {allowed!r} without data")
            return status

        return parse

    # ------------------------------------------------------------------ public API

    def identify(self) -> str:
        """Balance data (``I2``): type, capacity and unit, e.g. ``"XS204 Excellence 220.0090 g"``."""
        return self._exchange("I2", self._quoted, repeatable=True)

    def serial_number(self) -> str:
        """Serial number (``I4``), e.g. ``"1126493049"``."""
        return self._exchange("I4", self._quoted, repeatable=True)

    def weight_stable(self, *, timeout: float | None = None) -> tuple[float, str]:
        """Stable net weight (``S``).

        Args:
            timeout: Reply timeout, s; ``stable_timeout`` if None.

        Returns:
            (value, unit), e.g. ``(100.0, "g")``.

        Raises:
            DeviceReportedError: ``I`` (no stability), ``+`` overload, ``-`` underload, …
        """
        t = self.stable_timeout if timeout is None else timeout
        return self._exchange("S", self._weight("S", "S"), timeout=t, repeatable=True)

    def weight_immediate(self) -> tuple[float, str]:
        """Net weight now, stable or not (``SI``); (value, unit)."""
        return self._exchange("SI", self._weight("SI", "SD"), reply_id="S", repeatable=True)

    def zero(self, *, timeout: float | None = None) -> None:
        """Zero at the next stable weight (``Z`` → ``Z A``). Not repeated automatically.

        Args:
            timeout: Reply timeout, s; ``stable_timeout`` if None.
        """
        t = self.stable_timeout if timeout is None else timeout
        self._exchange("Z", self._status_only("A"), timeout=t, repeatable=False)

    def zero_immediately(self) -> bool:
        """Zero now (``ZI``); True if zeroed under stable conditions."""
        return self._exchange("ZI", self._status_only("SD"), repeatable=False) == "S"

    def tare(self, *, timeout: float | None = None) -> tuple[float, str]:
        """Tare at the next stable weight (``T``); returns the tare (value, unit).

        Args:
            timeout: Reply timeout, s; ``stable_timeout`` if None.
        """
        t = self.stable_timeout if timeout is None else timeout
        return self._exchange("T", self._weight("T", "S"), timeout=t, repeatable=False)

    def reset(self) -> str:
        """Cancel running commands and return to the power-on state without zeroing (``@``).

        Returns:
            The serial number from the ``I4 A "<SNR>"`` reply.
        """
        return self._exchange("@", self._quoted, reply_id="I4", repeatable=False)
