"""MT-SICS balance driver: byte-exact exchanges, every status and error reply, a pty round trip."""

from __future__ import annotations

import time

import pytest
from fakedev import PtyDevice, split_on
from scripted import ScriptedPort, expected_protocol

from drivers.errors import DeviceReportedError, DriverTimeout, GarbledReply
from drivers.mt_sics import MtSicsBalance


def bal(port: ScriptedPort, **kw: object) -> MtSicsBalance:
    kw.setdefault("timeout", 0.05)
    kw.setdefault("stable_timeout", 0.05)
    return MtSicsBalance(port=port, **kw)  # type: ignore[arg-type]


def test_identify_and_serial() -> None:
    pairs = [
        (b"I2\r\n", b'I2 A "XS204 Excellence 220.0090 g"\r\n'),
        (b"I4\r\n", b'I4 A "1126493049"\r\n'),
    ]
    with expected_protocol(pairs) as port:
        b = bal(port)
        assert b.identify() == "XS204 Excellence 220.0090 g"
        assert b.serial_number() == "1126493049"


def test_weight_stable() -> None:
    with expected_protocol([(b"S\r\n", b"S S     100.00 g\r\n")]) as port:
        assert bal(port).weight_stable() == (100.0, "g")


@pytest.mark.parametrize(
    ("reply", "value"),
    [
        (b"S S      99.98 g\r\n", (99.98, "g")),
        (b"S D      99.98 g\r\n", (99.98, "g")),
        (b"S D     -0.12 mg\r\n", (-0.12, "mg")),
    ],
)
def test_weight_immediate(reply: bytes, value: tuple[float, str]) -> None:
    with expected_protocol([(b"SI\r\n", reply)]) as port:
        assert bal(port).weight_immediate() == value


def test_zero_and_zero_immediately() -> None:
    pairs = [(b"Z\r\n", b"Z A\r\n"), (b"ZI\r\n", b"ZI D\r\n"), (b"ZI\r\n", b"ZI S\r\n")]
    with expected_protocol(pairs) as port:
        b = bal(port)
        b.zero()
        assert b.zero_immediately() is False
        assert b.zero_immediately() is True


def test_tare() -> None:
    with expected_protocol([(b"T\r\n", b"T S      12.34 g\r\n")]) as port:
        assert bal(port).tare() == (12.34, "g")


def test_reset_answers_with_i4() -> None:
    with expected_protocol([(b"@\r\n", b'I4 A "1126493049"\r\n')]) as port:
        assert bal(port).reset() == "1126493049"


@pytest.mark.parametrize(
    ("method", "command", "reply", "code"),
    [
        ("weight_stable", b"S\r\n", b"S I\r\n", "I"),
        ("weight_stable", b"S\r\n", b"S +\r\n", "+"),
        ("weight_stable", b"S\r\n", b"S -\r\n", "-"),
        ("weight_immediate", b"SI\r\n", b"S I\r\n", "I"),
        ("weight_immediate", b"SI\r\n", b"S +\r\n", "+"),
        ("weight_immediate", b"SI\r\n", b"S -\r\n", "-"),
        ("zero", b"Z\r\n", b"Z I\r\n", "I"),
        ("zero", b"Z\r\n", b"Z +\r\n", "+"),
        ("zero", b"Z\r\n", b"Z -\r\n", "-"),
        ("zero_immediately", b"ZI\r\n", b"ZI I\r\n", "I"),
        ("zero_immediately", b"ZI\r\n", b"ZI +\r\n", "+"),
        ("zero_immediately", b"ZI\r\n", b"ZI -\r\n", "-"),
        ("tare", b"T\r\n", b"T I\r\n", "I"),
        ("tare", b"T\r\n", b"T +\r\n", "+"),
        ("tare", b"T\r\n", b"T -\r\n", "-"),
        ("serial_number", b"I4\r\n", b"I4 I\r\n", "I"),
        ("identify", b"I2\r\n", b"I2 I\r\n", "I"),
        ("identify", b"I2\r\n", b"I2 L\r\n", "L"),
        ("weight_stable", b"S\r\n", b"ES\r\n", "ES"),
        ("weight_stable", b"S\r\n", b"ET\r\n", "ET"),
        ("zero", b"Z\r\n", b"EL\r\n", "EL"),
        ("weight_stable", b"S\r\n", b"S S Error 15e\r\n", "Error 15e"),
        ("weight_immediate", b"SI\r\n", b"S S Error 1t\r\n", "Error 1t"),
    ],
)
def test_failure_replies_are_typed_and_not_retried(
    method: str, command: bytes, reply: bytes, code: str
) -> None:
    with expected_protocol([(command, reply)]) as port, pytest.raises(DeviceReportedError) as info:
        getattr(bal(port), method)()
    assert info.value.code == code
    assert info.value.device == "balance"


def test_unsolicited_i4_line_is_skipped() -> None:
    pairs = [(b"S\r\n", b'I4 A "1126493049"\r\nS S 1.00 g\r\n')]
    with expected_protocol(pairs) as port:
        assert bal(port).weight_stable() == (1.0, "g")


def test_unsolicited_i4_then_silence_times_out() -> None:
    pairs = [(b"SI\r\n", b'I4 A "1"\r\n')] * 2
    with expected_protocol(pairs) as port, pytest.raises(DriverTimeout):
        bal(port).weight_immediate()


@pytest.mark.parametrize(
    ("method", "command", "reply"),
    [
        ("weight_stable", b"S\r\n", b"S S 100.00\r\n"),  # no unit
        ("weight_stable", b"S\r\n", b"S S abc g\r\n"),
        ("weight_stable", b"S\r\n", b"S D 1.0 g\r\n"),  # S never answers dynamic
        ("weight_stable", b"S\r\n", b"T S 1.0 g\r\n"),  # wrong ID
        ("weight_stable", b"S\r\n", b"S\r\n"),  # no status
        ("weight_stable", b"S\r\n", b"S S 1.0"),  # truncated
        ("weight_immediate", b"SI\r\n", b"SI S 1.0 g\r\n"),  # SI answers with ID S
        ("identify", b"I2\r\n", b"I2 A XS204\r\n"),  # not quoted
        ("serial_number", b"I4\r\n", b'I4 B "1"\r\n'),
        ("serial_number", b"I4\r\n", b'\xffI4 A "1"\r\n'),
    ],
)
def test_garbled_queries_retried_then_raise(method: str, command: bytes, reply: bytes) -> None:
    with expected_protocol([(command, reply)] * 2) as port, pytest.raises(GarbledReply):
        getattr(bal(port), method)()


@pytest.mark.parametrize(
    ("method", "command", "reply"),
    [
        ("zero", b"Z\r\n", b"Z S\r\n"),
        ("zero_immediately", b"ZI\r\n", b"ZI A extra\r\n"),
        ("tare", b"T\r\n", b"T S\r\n"),
        ("reset", b"@\r\n", b"@ A\r\n"),
    ],
)
def test_garbled_actions_are_not_retried(method: str, command: bytes, reply: bytes) -> None:
    with expected_protocol([(command, reply)]) as port, pytest.raises(GarbledReply):
        getattr(bal(port), method)()


def test_query_timeout_retried_once_within_time() -> None:
    with expected_protocol([(b"SI\r\n", b"")] * 2) as port, pytest.raises(DriverTimeout):
        start = time.monotonic()
        bal(port).weight_immediate()
    assert time.monotonic() - start < 0.3


def test_action_timeout_not_retried() -> None:
    with expected_protocol([(b"T\r\n", b"")]) as port, pytest.raises(DriverTimeout):
        bal(port).tare()


def test_stable_timeout_used_for_s() -> None:
    with expected_protocol([(b"S\r\n", b"")] * 2) as port, pytest.raises(DriverTimeout):
        start = time.monotonic()
        bal(port, stable_timeout=0.01).weight_stable()
    assert time.monotonic() - start < 0.1


class _FakeBalance:
    def __init__(self) -> None:
        self.tare = 0.0
        self.gross = 12.5

    def __call__(self, msg: bytes) -> bytes:
        cmd = msg.decode().strip()
        if cmd == "S":
            return f"S S {self.gross - self.tare:10.2f} g\r\n".encode()
        if cmd == "T":
            self.tare = self.gross
            return f"T S {self.tare:10.2f} g\r\n".encode()
        if cmd == "I4":
            return b'I4 A "B123"\r\n'
        return b"ES\r\n"


def test_over_a_real_pty() -> None:
    with PtyDevice(split_on(b"\r\n"), _FakeBalance()) as dev, MtSicsBalance(dev.path) as b:
        assert b.serial_number() == "B123"
        assert b.weight_stable() == (12.5, "g")
        assert b.tare() == (12.5, "g")
        assert b.weight_stable() == (0.0, "g")
        with pytest.raises(DeviceReportedError) as info:
            b.zero()
        assert info.value.code == "ES"
