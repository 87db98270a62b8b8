"""Tiny in-test fake devices over a real pty pair or a real TCP socket.

Each fake runs a thread that reads what the host writes, splits it into messages and answers each
with ``respond(message) -> bytes``. They exist to exercise the drivers' real pyserial paths
(``serial_for_url`` on a pty path and on ``socket://``), not to emulate instruments.
"""

from __future__ import annotations

import os
import select
import socket
import threading
import tty
from collections.abc import Callable
from types import TracebackType

Splitter = Callable[[bytearray], list[bytes]]
Responder = Callable[[bytes], bytes]


def split_on(terminator: bytes) -> Splitter:
    """Return a splitter that cuts complete ``terminator``-ended messages off a buffer."""

    def split(buf: bytearray) -> list[bytes]:
        out = []
        while (idx := buf.find(terminator)) >= 0:
            out.append(bytes(buf[: idx + len(terminator)]))
            del buf[: idx + len(terminator)]
        return out

    return split


class _FakeBase:
    def __init__(self, split: Splitter, respond: Responder, greeting: bytes = b"") -> None:
        self.split = split
        self.respond = respond
        self.greeting = greeting
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _serve(self, read: Callable[[], bytes], send: Callable[[bytes], None], fd: object) -> None:
        buf = bytearray()
        if self.greeting:
            send(self.greeting)
        while not self._stop.is_set():
            ready, _, _ = select.select([fd], [], [], 0.01)
            if not ready:
                continue
            try:
                data = read()
            except OSError:
                return
            if not data:
                return
            buf += data
            for msg in self.split(buf):
                self.received.append(msg)
                answer = self.respond(msg)
                if answer:
                    send(answer)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)


class PtyDevice(_FakeBase):
    """A fake device on the master side of a raw pty; the host opens :attr:`path`."""

    def __init__(self, split: Splitter, respond: Responder, greeting: bytes = b"") -> None:
        super().__init__(split, respond, greeting)
        self.master, self.slave = os.openpty()
        tty.setraw(self.master)
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)

    def start(self) -> PtyDevice:
        self._thread.start()
        return self

    def _run(self) -> None:
        self._serve(
            lambda: os.read(self.master, 4096),
            lambda b: os.write(self.master, b),
            self.master,
        )

    def stop(self) -> None:
        super().stop()
        os.close(self.master)
        os.close(self.slave)

    def __enter__(self) -> PtyDevice:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class TcpDevice(_FakeBase):
    """A fake device behind a listening TCP socket on 127.0.0.1; it serves one connection.

    ``port`` 0 picks a free port; a given port (one a stopped fake used) is bound with
    ``SO_REUSEADDR``, as an instrument that comes back at the same address.
    """

    def __init__(
        self, split: Splitter, respond: Responder, greeting: bytes = b"", port: int = 0
    ) -> None:
        super().__init__(split, respond, greeting)
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", port))
        self.server.listen(1)
        self.url = f"socket://127.0.0.1:{self.server.getsockname()[1]}"

    def start(self) -> TcpDevice:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.server], [], [], 0.01)
            if ready:
                break
        else:
            return
        conn, _ = self.server.accept()
        with conn:
            self._serve(lambda: conn.recv(4096), conn.sendall, conn)

    def stop(self) -> None:
        super().stop()
        self.server.close()

    def __enter__(self) -> TcpDevice:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
