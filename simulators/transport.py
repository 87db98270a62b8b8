"""Serve a byte-stream protocol handler on a pseudo-terminal or a TCP port.

A handler is any object with ``feed(data: bytes) -> bytes | Disconnect | None`` (bytes to send
back, possibly empty) and, optionally:

* ``on_connect() -> bytes``: called when a host opens the port (a TCP client connects, or the
  pty's slave side is opened); its bytes are sent at once (a GRBL banner).
* ``on_disconnect() -> None``: called when the host closes the port.
* ``poll() -> bytes``: called about every ``poll_interval_s`` while the server runs, for output
  that is not a direct reply (deferred ``ok`` after a GRBL dwell, NE-1000 safe-mode alarms) and
  for watchdogs.

The server serialises all calls into its handler with one lock.

Pty open detection (see STACK.md gotcha 14): the server closes its own copy of the slave fd, so
``poll()`` on the master reports ``POLLHUP`` while no process has the slave open. When the hangup
clears, a host has opened the port; the server waits ``connect_delay_s`` (pyserial flushes the
input buffer right after opening, so earlier bytes would be lost, as behind a controller that
resets on connect) and then sends ``on_connect()``'s bytes. If the host writes before the delay
is over, ``on_connect`` runs first. Both pty fds are put in raw mode; the settings persist while
the master is open.

A :class:`~simulators.faults.Disconnect` from the handler closes a TCP connection; on a pty the
port goes deaf and mute (input discarded, nothing sent) for ``Disconnect.seconds``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import socket
import termios
import threading
import time
import tty
from typing import Any, Protocol

from simulators.faults import Disconnect

log = logging.getLogger(__name__)


class Handler(Protocol):
    """A device-side protocol handler."""

    def feed(self, data: bytes) -> bytes | Disconnect | None:
        """Consume bytes from the host and return the bytes to send back."""
        ...


def _optional(handler: Any, name: str) -> Any:
    fn = getattr(handler, name, None)
    return fn() if callable(fn) else None


class PtyServer:
    """Serve a handler on a new pseudo-terminal.

    Args:
        handler: The protocol handler.
        connect_delay_s: Real seconds between the host opening the port and ``on_connect``.
        poll_interval_s: Real seconds between ``handler.poll()`` calls.
        name: Thread name, for debugging.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        connect_delay_s: float = 0.1,
        poll_interval_s: float = 0.02,
        name: str = "pty",
    ) -> None:
        self.handler = handler
        self.connect_delay_s = connect_delay_s
        self.poll_interval_s = poll_interval_s
        self.name = name
        self.path: str | None = None
        self.connected = False
        self._master: int | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def start(self) -> str:
        """Create the pty and start serving.

        Returns:
            The slave device path (``/dev/pts/N``) for the host to open.
        """
        if self._thread is not None:
            raise RuntimeError("server already started")
        master, slave = os.openpty()
        tty.setraw(master)
        tty.setraw(slave)
        # The pty's line settings outlive each host session (the master stays open), and
        # Linux refuses to re-apply 7E1 over the settings a previous 7E1 open left behind
        # (termios.error 22). A real UART starts every open from the port's defaults, so
        # the server restores these raw 8N1 settings whenever the host closes the port.
        self._fresh_termios = termios.tcgetattr(master)
        self.path = os.ttyname(slave)
        os.close(slave)
        os.set_blocking(master, False)
        self._master = master
        self._thread = threading.Thread(target=self._run, name=f"sim-{self.name}", daemon=True)
        self._thread.start()
        return self.path

    def stop(self) -> None:
        """Stop serving, join the thread and close the pty."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._master is not None:
            with contextlib.suppress(OSError):
                os.close(self._master)
            self._master = None

    def __enter__(self) -> PtyServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- thread -------------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        assert self._master is not None
        view = memoryview(data)
        deadline = time.monotonic() + 1.0
        while view:
            try:
                n = os.write(self._master, view)
                view = view[n:]
            except BlockingIOError:
                if time.monotonic() > deadline:
                    log.warning("%s: host not reading, %d bytes dropped", self.name, len(view))
                    return
                time.sleep(0.001)
            except OSError:
                return

    def _send(self, out: bytes | Disconnect | None, deaf_until: float) -> float:
        """Send a handler result; return the new deaf-until time."""
        if isinstance(out, Disconnect):
            if out.before:
                self._write(out.before)
            return time.monotonic() + out.seconds
        if out:
            self._write(out)
        return deaf_until

    def _run(self) -> None:
        assert self._master is not None
        poller = select.poll()
        poller.register(self._master, select.POLLIN)
        timeout_ms = max(1, int(self.poll_interval_s * 1000))
        connect_at: float | None = None
        deaf_until = 0.0
        next_poll = time.monotonic()
        while not self._stop.is_set():
            events = poller.poll(timeout_ms)
            now = time.monotonic()
            hup = any(ev & (select.POLLHUP | select.POLLERR) for _, ev in events)
            data = b""
            if any(ev & select.POLLIN for _, ev in events):
                try:
                    data = os.read(self._master, 4096)
                except OSError as err:
                    if err.errno not in (errno.EIO, errno.EAGAIN):
                        raise
                    hup = hup or err.errno == errno.EIO
            if hup and not data:
                # Nobody has the port open: keep the handler's clock running, discard output.
                if self.connected:
                    self.connected = False
                    connect_at = None
                    with contextlib.suppress(termios.error, OSError):
                        termios.tcsetattr(self._master, termios.TCSANOW, self._fresh_termios)
                    with self._lock:
                        _optional(self.handler, "on_disconnect")
                if now >= next_poll:
                    next_poll = now + self.poll_interval_s
                    with self._lock:
                        _optional(self.handler, "poll")
                time.sleep(self.poll_interval_s)
                continue
            if not self.connected:
                self.connected = True
                connect_at = now + self.connect_delay_s
            with self._lock:
                if now < deaf_until:
                    _optional(self.handler, "poll")
                    continue
                if connect_at is not None and (data or now >= connect_at):
                    connect_at = None
                    deaf_until = self._send(_optional(self.handler, "on_connect"), deaf_until)
                if data:
                    deaf_until = self._send(self.handler.feed(data), deaf_until)
                if now >= next_poll and time.monotonic() >= deaf_until:
                    next_poll = now + self.poll_interval_s
                    deaf_until = self._send(_optional(self.handler, "poll"), deaf_until)


class TcpServer:
    """Serve a handler on a TCP port; clients are served concurrently, sharing the handler.

    Args:
        handler: The protocol handler.
        host: Interface to bind.
        port: Port to bind; 0 picks a free one.
        poll_interval_s: Real seconds between ``handler.poll()`` calls per connection.
        name: Thread name prefix, for debugging.
    """

    def __init__(
        self,
        handler: Handler,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        poll_interval_s: float = 0.02,
        name: str = "tcp",
    ) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.poll_interval_s = poll_interval_s
        self.name = name
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._accept_thread: threading.Thread | None = None
        self._clients: list[tuple[socket.socket, threading.Thread]] = []
        self._clients_lock = threading.Lock()

    @property
    def url(self) -> str:
        """``socket://host:port`` of the running server."""
        return f"socket://{self.host}:{self.port}"

    def start(self) -> tuple[str, int]:
        """Bind, listen and start accepting.

        Returns:
            ``(host, port)`` actually bound.
        """
        if self._sock is not None:
            raise RuntimeError("server already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(8)
        sock.settimeout(self.poll_interval_s * 5)
        self._sock = sock
        self.host, self.port = sock.getsockname()[:2]
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"sim-{self.name}-accept", daemon=True
        )
        self._accept_thread.start()
        return self.host, self.port

    def stop(self) -> None:
        """Stop accepting, close every connection and join all threads."""
        self._stop.set()
        if self._accept_thread is not None:
            self._accept_thread.join(timeout=5)
            self._accept_thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        with self._clients_lock:
            clients = list(self._clients)
            self._clients.clear()
        for conn, thread in clients:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            thread.join(timeout=5)
            conn.close()

    def __enter__(self) -> TcpServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.settimeout(self.poll_interval_s)
            thread = threading.Thread(
                target=self._serve, args=(conn,), name=f"sim-{self.name}-conn", daemon=True
            )
            with self._clients_lock:
                self._clients = [(c, t) for c, t in self._clients if t.is_alive()]
                self._clients.append((conn, thread))
            thread.start()

    def _send(self, conn: socket.socket, out: bytes | Disconnect | None) -> bool:
        """Send a handler result; return False when the connection must close."""
        if isinstance(out, Disconnect):
            if out.before:
                conn.sendall(out.before)
            return False
        if out:
            conn.sendall(out)
        return True

    def _serve(self, conn: socket.socket) -> None:
        try:
            with self._lock:
                alive = self._send(conn, _optional(self.handler, "on_connect"))
            while alive and not self._stop.is_set():
                try:
                    data = conn.recv(4096)
                except TimeoutError:
                    data = None
                if data == b"":
                    break
                with self._lock:
                    if data:
                        alive = self._send(conn, self.handler.feed(data))
                    if alive:
                        alive = self._send(conn, _optional(self.handler, "poll"))
        except OSError:
            pass
        finally:
            with self._lock:
                _optional(self.handler, "on_disconnect")
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
