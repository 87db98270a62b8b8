"""Transport: terminators, timeouts, truncation, connection loss, locking, retry."""

from __future__ import annotations

import threading
import time

import pytest
import serial
from fakedev import PtyDevice, TcpDevice, split_on
from scripted import ProtocolMismatch, ScriptedPort, expected_protocol

from drivers.errors import ConnectionLost, DeviceReportedError, DriverTimeout, GarbledReply
from drivers.transport import Transport, retry_idempotent


def test_query_reads_to_terminator_and_keeps_the_rest() -> None:
    with expected_protocol([(b"A\n", b"one\ntwo\n")]) as port:
        t = Transport(port=port)
        assert t.query(b"A\n", b"\n") == b"one\n"
        assert t.read_until(b"\n") == b"two\n"


def test_query_flushes_stale_input() -> None:
    with expected_protocol([(b"", b"stale\n"), (b"A\n", b"fresh\n")]) as port:
        t = Transport(port=port)
        assert t.query(b"A\n", b"\n") == b"fresh\n"
        assert port.resets == 1


def test_timeout_with_nothing_returns_within_timeout() -> None:
    with expected_protocol([(b"A\n", b"")]) as port:
        t = Transport(port=port, timeout=0.05)
        start = time.monotonic()
        with pytest.raises(DriverTimeout) as info:
            t.query(b"A\n", b"\n")
        assert time.monotonic() - start < 0.15
        assert "no reply" in str(info.value)


def test_truncated_reply_is_garbled() -> None:
    with expected_protocol([(b"A\n", b"half")]) as port:
        t = Transport(port=port, name="dev")
        with pytest.raises(GarbledReply) as info:
            t.query(b"A\n", b"\n", timeout=0.03)
        assert info.value.reply == b"half"
        assert info.value.device == "dev"


def test_multibyte_terminator_split_across_reads() -> None:
    with expected_protocol([(b"Q", b"abc\r\n")]) as port:
        t = Transport(port=port)
        assert t.query(b"Q", b"\r\n", timeout=0.05) == b"abc\r\n"


@pytest.mark.parametrize("exc", [serial.SerialException("socket disconnected"), OSError(5, "EIO")])
def test_read_failure_is_connection_lost(exc: BaseException) -> None:
    with expected_protocol([(b"A\n", exc)]) as port:
        t = Transport(port=port)
        with pytest.raises(ConnectionLost):
            t.query(b"A\n", b"\n", timeout=0.05)


def test_write_failure_is_connection_lost() -> None:
    port = ScriptedPort([])
    port.closed = True
    t = Transport(port=port)
    with pytest.raises(ConnectionLost):
        t.write(b"x")


def test_closed_transport_refuses() -> None:
    port = ScriptedPort([])
    with Transport(port=port) as t:
        pass
    assert port.closed and t.closed
    t.close()  # idempotent
    with pytest.raises(ConnectionLost):
        t.query(b"A\n", b"\n")


def test_mismatch_surfaces() -> None:
    port = ScriptedPort([(b"A\n", b"x\n")])
    t = Transport(port=port)
    with pytest.raises(ProtocolMismatch):
        t.write(b"B\n")


def test_constructor_arguments() -> None:
    with pytest.raises(ValueError):
        Transport()
    with pytest.raises(ValueError):
        Transport("loop://", port=ScriptedPort([]))
    blocking = ScriptedPort([])
    blocking.timeout = None
    with pytest.raises(ValueError):
        Transport(port=blocking)


def test_open_failure_is_connection_lost() -> None:
    with pytest.raises(ConnectionLost):
        Transport("/dev/does-not-exist-xyz", name="ghost")


def test_loop_url() -> None:
    with Transport("loop://", baudrate=115200, timeout=0.05) as t:
        assert t.query(b"echo\n", b"\n") == b"echo\n"


def test_lock_serialises_queries_over_pty() -> None:
    def respond(msg: bytes) -> bytes:
        time.sleep(0.002)
        return b"R" + msg

    results: list[bytes] = []
    with PtyDevice(split_on(b"\n"), respond) as dev, Transport(dev.path, timeout=1.0) as t:

        def worker(i: int) -> None:
            for j in range(5):
                msg = f"{i}-{j}\n".encode()
                assert t.query(msg, b"\n") == b"R" + msg
                results.append(msg)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    assert len(results) == 15


def test_socket_close_is_connection_lost() -> None:
    with TcpDevice(split_on(b"\n"), lambda m: b"") as dev, Transport(dev.url, timeout=0.5) as t:
        t.write(b"hi\n")
        dev.stop()  # closes the server side
        time.sleep(0.05)
        with pytest.raises(ConnectionLost):
            t.read_until(b"\n", timeout=0.2)


def test_retry_idempotent() -> None:
    calls = []

    def flaky() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise DriverTimeout("t")
        return 7

    assert retry_idempotent(flaky) == 7
    assert len(calls) == 2


def test_retry_gives_up_and_skips_other_errors() -> None:
    calls = []

    def always(exc: BaseException) -> None:
        calls.append(1)
        raise exc

    with pytest.raises(GarbledReply):
        retry_idempotent(lambda: always(GarbledReply("g")), retries=1)
    assert len(calls) == 2
    calls.clear()
    with pytest.raises(DeviceReportedError):
        retry_idempotent(lambda: always(DeviceReportedError("e", code="x")))
    assert len(calls) == 1
    calls.clear()
    with pytest.raises(ConnectionLost):
        retry_idempotent(lambda: always(ConnectionLost("c")), retry_on=(Exception,))
    assert len(calls) == 1


def test_pty_hangup_is_connection_lost() -> None:
    dev = PtyDevice(split_on(b"\n"), lambda m: b"").start()
    with Transport(dev.path, timeout=0.5) as t:
        dev.stop()  # closes both fds the test held; the host's fd sees a hangup
        with pytest.raises(ConnectionLost):
            t.read_until(b"\n", timeout=0.1)


def test_reopen_after_connection_lost_uses_the_same_url_and_settings() -> None:
    first = TcpDevice(split_on(b"\n"), lambda m: m).start()
    url = first.url
    with Transport(url, timeout=0.5, name="meter") as t:
        assert t.query(b"one\n", b"\n") == b"one\n"
        first.stop()  # the peer drops the connection
        time.sleep(0.05)
        with pytest.raises(ConnectionLost):
            t.query(b"two\n", b"\n", timeout=0.2)
        with pytest.raises(ConnectionLost):  # a dead connection stays dead
            t.query(b"two\n", b"\n", timeout=0.2)
        port = int(url.rsplit(":", 1)[1])
        with TcpDevice(split_on(b"\n"), lambda m: m, port=port):
            t.reopen()
            assert not t.closed and t.url == url
            assert t.query(b"three\n", b"\n") == b"three\n"


def test_reopen_after_close_and_when_unreachable() -> None:
    with Transport("loop://", baudrate=115200, parity="E", timeout=0.05) as t:
        old = t.port
        t.close()
        t.reopen()
        assert t.port is not old
        assert (t.port.baudrate, t.port.parity, t.port.timeout) == (115200, "E", 0.01)
        assert t.query(b"echo\n", b"\n") == b"echo\n"
    ghost = Transport("loop://", timeout=0.05, name="ghost")
    ghost.url = "/dev/does-not-exist-xyz"  # the device has gone away
    t0 = time.monotonic()
    with pytest.raises(ConnectionLost, match="cannot open"):
        ghost.reopen(timeout=0.2)
    assert 0.15 < time.monotonic() - t0 < 1.0  # kept trying for the time allowed
    assert ghost.closed  # still closed, and says how to recover
    with pytest.raises(ConnectionLost, match="reconnect"):
        ghost.write(b"x")


def test_reopen_needs_a_url() -> None:
    t = Transport(port=ScriptedPort([]))
    with pytest.raises(ValueError, match="url="):
        t.reopen()
