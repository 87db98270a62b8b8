"""Pty and TCP servers, exercised with raw os/socket I/O."""

from __future__ import annotations

import os
import select
import socket
import time
import tty

from simulators.faults import Disconnect
from simulators.transport import PtyServer, TcpServer


class Echo:
    """Upper-cases lines; ``BANNER`` on connect; ``drop`` disconnects for 0.5 s."""

    def __init__(self) -> None:
        self.buffer = b""
        self.connects = 0
        self.disconnects = 0
        self.polls = 0

    def on_connect(self) -> bytes:
        self.connects += 1
        return b"BANNER\n"

    def on_disconnect(self) -> None:
        self.disconnects += 1

    def poll(self) -> bytes:
        self.polls += 1
        return b""

    def feed(self, data: bytes) -> bytes | Disconnect:
        self.buffer += data
        out = b""
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            if line == b"drop":
                return Disconnect(0.5, before=out)
            out += line.upper() + b"\n"
        return out


def read_until(fd: int, terminator: bytes, timeout: float = 2.0) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(terminator) and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            data += os.read(fd, 1024)
    return data


def test_pty_round_trip_banner_after_open() -> None:
    handler = Echo()
    with PtyServer(handler, connect_delay_s=0.05) as server:
        assert server.path is not None and server.path.startswith("/dev/pts/")
        time.sleep(0.1)
        assert handler.connects == 0  # nobody has opened the port yet
        fd = os.open(server.path, os.O_RDWR | os.O_NOCTTY)
        try:
            tty.setraw(fd)
            assert read_until(fd, b"\n") == b"BANNER\n"
            os.write(fd, b"hello\nwor")
            os.write(fd, b"ld\n")
            assert read_until(fd, b"WORLD\n") == b"HELLO\nWORLD\n"
        finally:
            os.close(fd)
        deadline = time.monotonic() + 2
        while handler.disconnects == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert handler.disconnects == 1
        fd = os.open(server.path, os.O_RDWR | os.O_NOCTTY)
        try:
            assert read_until(fd, b"\n") == b"BANNER\n"  # every open is a new connection
        finally:
            os.close(fd)
        assert handler.polls > 0


def test_pty_banner_first_when_host_talks_at_once() -> None:
    handler = Echo()
    with PtyServer(handler, connect_delay_s=5.0) as server:
        assert server.path is not None
        fd = os.open(server.path, os.O_RDWR | os.O_NOCTTY)
        try:
            os.write(fd, b"x\n")
            assert read_until(fd, b"X\n") == b"BANNER\nX\n"
        finally:
            os.close(fd)


def test_pty_disconnect_goes_deaf() -> None:
    handler = Echo()
    with PtyServer(handler, connect_delay_s=0.0) as server:
        assert server.path is not None
        fd = os.open(server.path, os.O_RDWR | os.O_NOCTTY)
        try:
            assert read_until(fd, b"\n") == b"BANNER\n"
            os.write(fd, b"a\ndrop\n")
            assert read_until(fd, b"A\n") == b"A\n"
            os.write(fd, b"lost\n")
            assert read_until(fd, b"\n", timeout=0.1) == b""
            time.sleep(0.5)
            os.write(fd, b"back\n")
            assert read_until(fd, b"BACK\n") == b"BACK\n"
        finally:
            os.close(fd)


def test_tcp_round_trip_and_disconnect() -> None:
    handler = Echo()
    with TcpServer(handler) as server:
        assert server.url == f"socket://127.0.0.1:{server.port}"
        with socket.create_connection((server.host, server.port), timeout=2) as sock:
            assert sock.recv(100) == b"BANNER\n"
            sock.sendall(b"ping\n")
            assert sock.recv(100) == b"PING\n"
            sock.sendall(b"drop\n")
            assert sock.recv(100) == b""  # closed by the server
        with socket.create_connection((server.host, server.port), timeout=2) as sock:
            assert sock.recv(100) == b"BANNER\n"
            sock.sendall(b"again\n")
            assert sock.recv(100) == b"AGAIN\n"


def test_tcp_concurrent_clients_and_clean_stop() -> None:
    handler = Echo()
    server = TcpServer(handler)
    host, port = server.start()
    socks = [socket.create_connection((host, port), timeout=2) for _ in range(3)]
    try:
        for s in socks:
            assert s.recv(100) == b"BANNER\n"
    finally:
        server.stop()  # closes the open connections too
    for s in socks:
        assert s.recv(100) == b""
        s.close()
