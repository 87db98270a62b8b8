"""IKA NAMUR hotplate driver: byte-exact exchanges, silence, garbling, limits, a 7E1 pty."""

from __future__ import annotations

import time

import pytest
from fakedev import PtyDevice, split_on
from scripted import ScriptedPort, expected_protocol

from drivers.errors import DeviceReportedError, DriverTimeout, GarbledReply, SafetyLimitError
from drivers.ika_namur import IkaHotplate, IkaLimits


def ika(port: ScriptedPort, **kw: object) -> IkaHotplate:
    kw.setdefault("timeout", 0.05)
    return IkaHotplate(port=port, **kw)  # type: ignore[arg-type]


def test_identify() -> None:
    with expected_protocol([(b"IN_NAME\r\n", b"RCT digital\r\n")]) as port:
        assert ika(port).identify() == "RCT digital"


@pytest.mark.parametrize(
    ("method", "command", "reply", "value"),
    [
        ("temperature", b"IN_PV_1\r\n", b"24.6 1\r\n", 24.6),
        ("plate_temperature", b"IN_PV_2\r\n", b"25.3 2\r\n", 25.3),
        ("temperature_setpoint", b"IN_SP_1\r\n", b"60.0 1\r\n", 60.0),
        ("safety_temperature", b"IN_SP_3\r\n", b"360 3\r\n", 360.0),
        ("speed", b"IN_PV_4\r\n", b"398 4\r\n", 398.0),
        ("speed_setpoint", b"IN_SP_4\r\n", b"500 4\r\n", 500.0),
        ("viscosity_trend", b"IN_PV_5\r\n", b"-12 5\r\n", -12.0),
        ("temperature", b"IN_PV_1\r\n", b" 24.6 1 \r \n", 24.6),  # liberal on whitespace
        ("temperature", b"IN_PV_1\r\n", b"24.6 1\n", 24.6),  # bare LF
    ],
)
def test_reads(method: str, command: bytes, reply: bytes, value: float) -> None:
    with expected_protocol([(command, reply)]) as port:
        assert getattr(ika(port), method)() == value


def test_set_temperature_verified() -> None:
    pairs = [(b"OUT_SP_1 60\r\n", b""), (b"IN_SP_1\r\n", b"60.0 1\r\n")]
    with expected_protocol(pairs) as port:
        ika(port).set_temperature(60)


def test_set_temperature_decimal_unverified() -> None:
    with expected_protocol([(b"OUT_SP_1 37.5\r\n", b"")]) as port:
        ika(port).set_temperature(37.5, verify=False)


def test_set_temperature_not_applied() -> None:
    pairs = [(b"OUT_SP_1 300\r\n", b""), (b"IN_SP_1\r\n", b"250 1\r\n")]
    with expected_protocol(pairs) as port, pytest.raises(DeviceReportedError) as info:
        ika(port).set_temperature(300)
    assert info.value.code == "IN_SP_1"


def test_set_speed_verified() -> None:
    pairs = [(b"OUT_SP_4 400\r\n", b""), (b"IN_SP_4\r\n", b"400 4\r\n")]
    with expected_protocol(pairs) as port:
        ika(port).set_speed(400.2)


def test_start_stop() -> None:
    pairs = [
        (b"START_1\r\n", b""),
        (b"STOP_1\r\n", b""),
        (b"START_4\r\n", b""),
        (b"STOP_4\r\n", b""),
    ]
    with expected_protocol(pairs) as port:
        dev = ika(port)
        dev.start_heating()
        dev.stop_heating()
        dev.start_stirring()
        dev.stop_stirring()


def test_silence_is_a_timeout_within_time() -> None:
    pairs = [(b"IN_PV_2\r\n", b"")] * 2  # retried once: a read is idempotent
    with expected_protocol(pairs) as port, pytest.raises(DriverTimeout):
        start = time.monotonic()
        ika(port).plate_temperature()
    assert time.monotonic() - start < 0.3


@pytest.mark.parametrize(
    "reply",
    [
        b"25.3 1\r\n",  # wrong channel
        b"25.3\r\n",  # no channel
        b"abc 2\r\n",  # not a number
        b"25.3 2 extra\r\n",
        b"IN_PV_4\r\n",  # EUROSTAR quirk
        b"\xff\xfe 2\r\n",
        b"25.3 2",  # truncated
    ],
)
def test_garbled_reads_retried_then_raise(reply: bytes) -> None:
    with expected_protocol([(b"IN_PV_2\r\n", reply)] * 2) as port, pytest.raises(GarbledReply):
        ika(port, timeout=0.02).plate_temperature()


def test_eurostar_quirk_message() -> None:
    pairs = [(b"IN_SP_4\r\n", b"IN_PV_4\r\n")] * 2
    with expected_protocol(pairs) as port, pytest.raises(GarbledReply, match="EUROSTAR"):
        ika(port).speed_setpoint()


def test_garbled_then_good() -> None:
    pairs = [(b"IN_PV_1\r\n", b"24.\r\n"), (b"IN_PV_1\r\n", b"24.6 1\r\n")]
    with expected_protocol(pairs) as port:
        assert ika(port).temperature() == 24.6


@pytest.mark.parametrize(
    ("limits", "call"),
    [
        (IkaLimits(), lambda d: d.set_temperature(311)),
        (IkaLimits(), lambda d: d.set_temperature(-1)),
        (IkaLimits(max_temp_c=80), lambda d: d.set_temperature(80.1)),
        (IkaLimits(), lambda d: d.set_temperature(float("nan"))),
        (IkaLimits(), lambda d: d.set_speed(1501)),
        (IkaLimits(max_speed_rpm=600), lambda d: d.set_speed(700)),
        (IkaLimits(), lambda d: d.set_speed(-5)),
    ],
)
def test_limits_refuse_before_any_byte(limits: IkaLimits, call: object) -> None:
    port = ScriptedPort([])
    with pytest.raises(SafetyLimitError):
        call(ika(port, limits=limits))  # type: ignore[operator]
    assert port.written == b""


class _FakePlate:
    """Just enough NAMUR: name, set point write/read, start/stop; silent on unknown commands."""

    def __init__(self) -> None:
        self.sp = 0.0
        self.heating = False

    def __call__(self, msg: bytes) -> bytes:
        parts = msg.decode("ascii").split()
        if parts == ["IN_NAME"]:
            return b"C-MAG HS7\r\n"
        if parts[0] == "OUT_SP_1":
            self.sp = float(parts[1])
        elif parts == ["IN_SP_1"]:
            return f"{self.sp:.1f} 1\r\n".encode()
        elif parts == ["IN_PV_2"]:
            return f"{80.0 if self.heating else 21.5} 2\r\n".encode()
        elif parts == ["START_1"]:
            self.heating = True
        return b""


def test_over_a_real_pty_at_7e1() -> None:
    with PtyDevice(split_on(b"\n"), _FakePlate()) as dev, IkaHotplate(dev.path, timeout=0.5) as hp:
        assert hp.transport.port.bytesize == 7  # type: ignore[attr-defined]
        assert hp.transport.port.parity == "E"  # type: ignore[attr-defined]
        assert hp.identify() == "C-MAG HS7"
        hp.start_heating()
        hp.set_temperature(80)
        assert hp.plate_temperature() == 80.0
        with pytest.raises(DriverTimeout):
            hp.transport.query(b"BOGUS\r\n", b"\n", timeout=0.05)
    assert dev.received[1:3] == [b"START_1\r\n", b"OUT_SP_1 80\r\n"]
