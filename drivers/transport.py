"""Byte transport shared by all drivers: a pyserial port, a lock, and timeouts that raise.

A :class:`Transport` owns one port opened with :func:`serial.serial_for_url`, so a device path
(``/dev/ttyUSB0``), a pty path, ``socket://host:port`` and ``loop://`` all work unchanged. Every
serial setting, the read timeout included, is passed when the port is opened: changing a setting
of an open 7E1 port on a Linux pty can fail with ``termios.error 22``.

The port is opened with a short read timeout (``poll_interval``) and the transport loops until a
deadline, so each call can use its own timeout without reconfiguring the port. pyserial returns
short reads on timeout instead of raising; the transport checks for the terminator and raises
:class:`~drivers.errors.DriverTimeout` (nothing arrived) or :class:`~drivers.errors.GarbledReply`
(a truncated reply arrived). Serial and socket failures become
:class:`~drivers.errors.ConnectionLost`.

Tests may pass an already-open port-like object instead of a URL (see :class:`PortLike`).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Protocol, TypeVar, runtime_checkable

import serial
from serial.urlhandler import protocol_socket

from drivers.errors import ConnectionLost, DriverTimeout, GarbledReply

try:  # POSIX: re-opening a serial line can fail in termios itself
    import termios

    _OPEN_ERRORS: tuple[type[BaseException], ...] = (
        serial.SerialException,
        OSError,
        ValueError,
        termios.error,
    )
except ImportError:  # Windows
    _OPEN_ERRORS = (serial.SerialException, OSError, ValueError)

__all__ = ["PortLike", "Transport", "retry_idempotent"]

_log = logging.getLogger(__name__)

T = TypeVar("T")


@runtime_checkable
class PortLike(Protocol):
    """What a transport needs from a port; :class:`serial.Serial` satisfies it.

    ``read(n)`` must return at most ``n`` bytes and return (possibly empty) after at most
    ``timeout`` seconds; an ``in_waiting`` property is used when present.
    """

    timeout: float | None

    def write(self, data: bytes, /) -> int | None: ...

    def read(self, size: int = 1, /) -> bytes: ...

    def read_until(self, expected: bytes = b"\n", size: int | None = None) -> bytes: ...

    def reset_input_buffer(self) -> None: ...

    def close(self) -> None: ...


class Transport:
    """A locked, timeout-checked byte pipe to one instrument.

    Args:
        url: Anything :func:`serial.serial_for_url` accepts (device path, pty path,
            ``socket://host:port``, ``loop://``). Exactly one of ``url`` and ``port`` is required.
        port: An already-open port-like object (tests). The transport does not change its
            settings; its ``timeout`` must be a finite number of seconds.
        baudrate: Baud rate, bit/s.
        bytesize: Data bits (7 or 8).
        parity: ``"N"``, ``"E"``, ``"O"`` (pyserial parity constants).
        stopbits: Stop bits (1 or 2).
        timeout: Default reply timeout for :meth:`query` and :meth:`read_until`, s.
        poll_interval: Read timeout the port is opened with, s; bounds how far past a deadline a
            read may return.
        name: Device name used in error messages and logs.
        **serial_kwargs: Further keyword arguments for :func:`serial.serial_for_url`
            (``xonxoff``, ``rtscts``, ``write_timeout`` ...).

    Attributes:
        lock: Re-entrant lock guarding the port; hold it across multi-message exchanges.
        name: Device name.
        url: The URL the port was opened from (None when built from a port object).
        timeout: Default reply timeout, s.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        port: PortLike | None = None,
        baudrate: int = 9600,
        bytesize: int = serial.EIGHTBITS,
        parity: str = serial.PARITY_NONE,
        stopbits: float = serial.STOPBITS_ONE,
        timeout: float = 1.0,
        poll_interval: float = 0.01,
        name: str = "device",
        **serial_kwargs: object,
    ) -> None:
        if (url is None) == (port is None):
            raise ValueError(f"{name}: pass exactly one of url= and port=")
        if timeout <= 0 or poll_interval <= 0:
            raise ValueError(f"{name}: timeout and poll_interval must be positive seconds")
        self.name = name
        self.timeout = float(timeout)
        self.lock = threading.RLock()
        self.url = url
        self._rx = bytearray()
        self._closed = False
        self._open_settings: dict[str, object] = {
            "baudrate": baudrate,
            "bytesize": bytesize,
            "parity": parity,
            "stopbits": stopbits,
            "timeout": poll_interval,
            **serial_kwargs,
        }
        if port is None:
            assert url is not None
            port = self._open()
        elif getattr(port, "timeout", None) is None:
            raise ValueError(
                f"{name}: the port must be opened with a finite read timeout (got None); "
                "open it with timeout=0.01"
            )
        self.port: PortLike = port

    def _open(self) -> PortLike:
        """Open :attr:`url` with the settings given at construction."""
        assert self.url is not None
        try:
            port = serial.serial_for_url(self.url, **self._open_settings)
        except _OPEN_ERRORS as exc:
            raise ConnectionLost(
                f"cannot open {self.url!r} ({exc}); check the cable, the port name or URL, and "
                "that no other program holds the port",
                device=self.name,
            ) from exc
        _set_nodelay(port)
        return port

    # ------------------------------------------------------------------ lifecycle

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._closed

    def close(self) -> None:
        """Close the port. Safe to call twice."""
        with self.lock:
            if self._closed:
                return
            self._closed = True
            self._close_port()

    def _close_port(self) -> None:
        _close_socket_quietly(self.port)
        try:
            self.port.close()
        except (serial.SerialException, OSError) as exc:  # already gone: nothing to do
            _log.debug("%s: error while closing port: %s", self.name, exc)

    def reopen(self, *, timeout: float = 1.0, pause_s: float = 0.05) -> None:
        """Close the port (if open) and open the same URL again with the same settings.

        Use it after :class:`~drivers.errors.ConnectionLost`: a dropped socket or a serial port
        that failed stays dead, and every later exchange on it fails. Bytes buffered from the
        old connection are discarded. The transport is open again afterwards, even if it had
        been closed with :meth:`close`.

        A port that was just closed may refuse to open for a moment (a USB adapter being
        enumerated again, a pty whose device side has not yet seen the hang-up and still holds
        the last session's line settings), so opening is tried until ``timeout``.

        Args:
            timeout: How long to keep trying to open the port, s.
            pause_s: Pause between attempts, s.

        Raises:
            ConnectionLost: The port cannot be opened again (the device is still unreachable);
                the transport stays closed.
            ValueError: The transport was built around a port object (``port=``), which it
                cannot reopen.
        """
        if self.url is None:
            raise ValueError(
                f"{self.name}: a transport built from a port object cannot reopen it; "
                "pass url= to reconnect"
            )
        with self.lock:
            if not self._closed:
                self._close_port()
            self._closed = True
            self._rx.clear()
            deadline = time.monotonic() + timeout
            while True:
                try:
                    self.port = self._open()
                    break
                except ConnectionLost:
                    if time.monotonic() + pause_s > deadline:
                        raise
                    time.sleep(pause_s)
            self._closed = False
            _log.info("%s: reopened %s", self.name, self.url)

    def __enter__(self) -> Transport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ byte I/O

    def _check_open(self) -> None:
        if self._closed:
            raise ConnectionLost(
                "port is closed; reconnect() the driver (or create a new one)", device=self.name
            )

    def _lost(self, exc: BaseException, action: str) -> ConnectionLost:
        return ConnectionLost(
            f"connection lost while {action} ({exc}); check the cable or the device's power and "
            "reconnect",
            device=self.name,
        )

    def reset_input_buffer(self) -> None:
        """Discard everything received and not yet read."""
        with self.lock:
            self._check_open()
            self._rx.clear()
            try:
                self.port.reset_input_buffer()
            except (serial.SerialException, OSError) as exc:
                raise self._lost(exc, "flushing input") from exc

    def write(self, payload: bytes) -> None:
        """Write ``payload`` as is.

        Raises:
            ConnectionLost: The port failed or is closed.
            DriverTimeout: A write timeout configured on the port expired.
        """
        with self.lock:
            self._check_open()
            _log.debug("%s TX %r", self.name, payload)
            try:
                self.port.write(payload)
            except serial.SerialTimeoutException as exc:
                raise DriverTimeout(
                    f"write of {payload!r} timed out; the device is not accepting data "
                    "(flow control?)",
                    device=self.name,
                ) from exc
            except (serial.SerialException, OSError) as exc:
                raise self._lost(exc, f"writing {payload!r}") from exc

    def _read_some(self) -> bytes:
        try:
            waiting = getattr(self.port, "in_waiting", 0) or 0
            return bytes(self.port.read(max(1, int(waiting))))
        except (serial.SerialException, OSError) as exc:
            raise self._lost(exc, "reading") from exc

    def read_until(self, terminator: bytes, timeout: float | None = None) -> bytes:
        """Read up to and including ``terminator``; bytes after it stay buffered.

        Args:
            terminator: End-of-reply bytes (e.g. ``b"\\n"``, ``b"\\x03"``).
            timeout: Seconds to wait for the terminator; the transport default if None.

        Returns:
            The bytes read, ending with ``terminator``.

        Raises:
            DriverTimeout: Nothing arrived within the timeout.
            GarbledReply: Some bytes arrived but no terminator (truncated reply).
            ConnectionLost: The port failed or is closed.
        """
        if not terminator:
            raise ValueError("terminator must not be empty")
        limit = self.timeout if timeout is None else timeout
        with self.lock:
            self._check_open()
            deadline = time.monotonic() + limit
            scan_from = 0
            while True:
                idx = self._rx.find(terminator, scan_from)
                if idx >= 0:
                    end = idx + len(terminator)
                    reply = bytes(self._rx[:end])
                    del self._rx[:end]
                    _log.debug("%s RX %r", self.name, reply)
                    return reply
                scan_from = max(0, len(self._rx) - len(terminator) + 1)
                if time.monotonic() >= deadline:
                    break
                self._rx += self._read_some()
            partial = bytes(self._rx)
            self._rx.clear()
        if not partial:
            raise DriverTimeout(
                f"no reply within {limit:g} s; check that the device is on, connected, and set to "
                "the right address, baud rate and framing",
                device=self.name,
            )
        raise GarbledReply(
            f"truncated reply {partial!r}: no terminator {terminator!r} within {limit:g} s; "
            "check the baud rate and framing, or raise the timeout",
            device=self.name,
            reply=partial,
        )

    def query(self, payload: bytes, terminator: bytes, timeout: float | None = None) -> bytes:
        """Flush input, write ``payload`` and read the reply up to ``terminator``.

        Args:
            payload: Bytes to send, terminator included.
            terminator: End-of-reply bytes.
            timeout: Seconds to wait for the reply; the transport default if None.

        Returns:
            The reply, ending with ``terminator``.

        Raises:
            DriverTimeout, GarbledReply, ConnectionLost: See :meth:`read_until`.
        """
        with self.lock:
            self.reset_input_buffer()
            self.write(payload)
            return self.read_until(terminator, timeout)


def _set_nodelay(port: object) -> None:
    """Disable Nagle's algorithm on a pyserial ``socket://`` port.

    Set commands of a socket instrument (SCPI) get no reply, so a driver writes several in a
    row; with Nagle's algorithm each small write after the first waits for the peer's delayed
    ACK (40 ms on Linux), e.g. 44 ms instead of 0.6 ms per ``ScpiLcr.measure``.
    """
    if isinstance(port, protocol_socket.Serial) and port._socket is not None:
        with contextlib.suppress(OSError):
            port._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _close_socket_quietly(port: object) -> None:
    """Close the socket of a pyserial ``socket://`` port ourselves.

    pyserial 3.5's ``close()`` skips ``socket.close()`` when ``shutdown()`` fails (the peer has
    already gone), leaking the socket (a ResourceWarning), and then sleeps 0.3 s. Closing the
    socket first and marking the port closed avoids both.
    """
    if not isinstance(port, protocol_socket.Serial):
        return
    sock = port._socket
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
    port._socket = None
    port.is_open = False


def retry_idempotent(
    call: Callable[[], T],
    *,
    retries: int = 1,
    retry_on: tuple[type[BaseException], ...] = (DriverTimeout, GarbledReply),
    delay_s: float = 0.0,
    what: str = "command",
    logger: logging.Logger | None = None,
    on_retry: Callable[[str, BaseException, int], None] | None = None,
) -> T:
    """Call ``call`` and repeat it up to ``retries`` times if it raises one of ``retry_on``.

    Use it **only** for idempotent exchanges (queries, set points): never for commands that start
    motion or pumping (RUN, moves, start), which could then run twice. Connection loss and errors
    the device reported are not retried unless listed in ``retry_on``.

    Args:
        call: The exchange, without arguments.
        retries: Extra attempts after the first.
        retry_on: Exception types that trigger a retry.
        delay_s: Pause between attempts, s.
        what: Description used in the log message.
        logger: Logger for the retry warning; this module's logger if None.
        on_retry: Called as ``on_retry(what, error, attempt)`` before each repeat (``attempt``
            counts from 1), whatever the logging configuration; an error it raises is logged
            and does not stop the exchange.

    Returns:
        What ``call`` returned.
    """
    log = logger or _log
    attempt = 0
    while True:
        try:
            return call()
        except retry_on as exc:
            if attempt >= retries or isinstance(exc, ConnectionLost):
                raise
            attempt += 1
            log.warning("retrying %s after %s: %s", what, type(exc).__name__, exc)
            if on_retry is not None:
                try:
                    on_retry(what, exc, attempt)
                except Exception:  # a listener must not break the exchange
                    log.exception("retry listener failed for %s", what)
            if delay_s > 0:
                time.sleep(delay_s)
