"""SCPI LCR meter driver: byte-exact exchanges, error queue, fetch statuses, limits, real TCP."""

from __future__ import annotations

import time

import pytest
from fakedev import PtyDevice, TcpDevice, split_on
from scripted import ScriptedPort, expected_protocol

from drivers.errors import DeviceReportedError, DriverTimeout, GarbledReply, SafetyLimitError
from drivers.scpi_lcr import LcrLimits, LcrMeasurementError, LcrReading, ScpiLcr

NO_ERROR = b'+0,"No error"\n'


def lcr(port: ScriptedPort, **kw: object) -> ScpiLcr:
    kw.setdefault("timeout", 0.05)
    return ScpiLcr(port=port, **kw)  # type: ignore[arg-type]


def test_identify() -> None:
    pairs = [(b"*IDN?\n", b"Keysight Technologies,E4980A,MY12345678,A.02.10\n")]
    with expected_protocol(pairs) as port:
        assert lcr(port).identify() == {
            "manufacturer": "Keysight Technologies",
            "model": "E4980A",
            "serial": "MY12345678",
            "firmware": "A.02.10",
        }


def test_identify_garbled_is_retried() -> None:
    pairs = [(b"*IDN?\n", b"Keysight,E4980A\n"), (b"*IDN?\n", b"Keysight,E4980A\n")]
    with expected_protocol(pairs) as port, pytest.raises(GarbledReply):
        lcr(port).identify()


def test_set_commands_are_written_without_reading() -> None:
    pairs = [
        (b"*RST\n", b""),
        (b"*CLS\n", b""),
        (b":FUNC:IMP ZTD\n", b""),
        (b":FREQ 1000\n", b""),
        (b":FREQ 2000000\n", b""),
        (b":FREQ 20\n", b""),
        (b":FREQ 1234.5\n", b""),
        (b":VOLT 0.5\n", b""),
        (b":TRIG:SOUR BUS\n", b""),
        (b":INIT:CONT OFF\n", b""),
        (b":TRIG\n", b""),
    ]
    with expected_protocol(pairs) as port:
        m = lcr(port)
        m.reset()
        m.clear()
        m.set_function("ztd")
        m.set_frequency(1e3)
        m.set_frequency(2e6)
        m.set_frequency(20)
        m.set_frequency(1234.5)
        m.set_voltage(0.5)
        m.set_trigger_source("bus")
        m.set_continuous(False)
        m.trigger()


def test_setting_queries() -> None:
    pairs = [
        (b":FUNC:IMP?\n", b"RX\n"),
        (b":FREQ?\n", b"+1.00000E+03\n"),
        (b":VOLT?\n", b"+1.00000E+00\n"),
        (b":TRIG:SOUR?\n", b"BUS\n"),
    ]
    with expected_protocol(pairs) as port:
        m = lcr(port)
        assert m.function() == "RX"
        assert m.frequency() == 1000.0
        assert m.voltage() == 1.0
        assert m.trigger_source() == "BUS"


@pytest.mark.parametrize(("reply", "done"), [(b"1\n", True), (b"+1\n", True), (b"0\n", False)])
def test_opc(reply: bytes, done: bool) -> None:
    with expected_protocol([(b"*OPC?\n", reply)]) as port:
        assert lcr(port).opc() is done


def test_opc_garbled() -> None:
    with expected_protocol([(b"*OPC?\n", b"yes\n")]) as port, pytest.raises(GarbledReply):
        lcr(port).opc()


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (b'0,"No error"\n', (0, "No error")),
        (b'+0,"No error"\n', (0, "No error")),
        (b'-222,"Data out of range"\n', (-222, "Data out of range")),
        (b'-113,"Undefined header"\r\n', (-113, "Undefined header")),
    ],
)
def test_next_error(reply: bytes, expected: tuple[int, str]) -> None:
    with expected_protocol([(b":SYST:ERR?\n", reply)]) as port:
        assert lcr(port).next_error() == expected


def test_next_error_garbled_is_not_retried() -> None:
    with expected_protocol([(b":SYST:ERR?\n", b"oops\n")]) as port, pytest.raises(GarbledReply):
        lcr(port).next_error()


def test_check_errors_clean() -> None:
    with expected_protocol([(b":SYST:ERR?\n", b'0,"No error"\n')]) as port:
        lcr(port).check_errors()


def test_check_errors_drains_and_raises() -> None:
    pairs = [
        (b":SYST:ERR?\n", b'-222,"Data out of range"\n'),
        (b":SYST:ERR?\n", b'-113,"Undefined header"\n'),
        (b":SYST:ERR?\n", NO_ERROR),
    ]
    with expected_protocol(pairs) as port, pytest.raises(DeviceReportedError) as info:
        lcr(port).check_errors()
    assert info.value.code == "-222"
    assert "-113" in str(info.value)


def test_fetch_normal_and_with_bin() -> None:
    pairs = [
        (b":FETC?\n", b"+1.00112E+03,-1.23450E-02,+0\n"),
        (b":FETC?\n", b"+1.00000E+03,-4.50000E+01,+0,+3\n"),
    ]
    with expected_protocol(pairs) as port:
        m = lcr(port)
        assert m.fetch() == LcrReading(1001.12, -0.012345, 0, None)
        reading = m.fetch()
        assert reading.bin == 3 and reading.ok


@pytest.mark.parametrize("status", [b"-1", b"+1"])
def test_fetch_invalid_status_raises(status: bytes) -> None:
    pairs = [(b":FETC?\n", b"+9.90000E+37,+9.90000E+37," + status + b"\n")]
    with expected_protocol(pairs) as port, pytest.raises(LcrMeasurementError) as info:
        lcr(port).fetch()
    assert info.value.status == int(status)
    assert info.value.code == status.decode()


def test_fetch_without_check_returns_invalid_status() -> None:
    with expected_protocol([(b":FETC?\n", b"+9.9E37,+9.9E37,-1\n")]) as port:
        assert lcr(port).fetch(check=False).status == -1


@pytest.mark.parametrize("status", [b"+3", b"+4"])
def test_fetch_warning_status_returns_data(status: bytes) -> None:
    with expected_protocol([(b":FETC?\n", b"+1.0E+02,+2.0E+00," + status + b"\n")]) as port:
        reading = lcr(port).fetch()
    assert (reading.a, reading.b, reading.ok) == (100.0, 2.0, False)


@pytest.mark.parametrize("reply", [b"1.0,2.0\n", b"a,b,+0\n", b"1,2,x\n", b"1,2,3,4,5\n"])
def test_fetch_garbled(reply: bytes) -> None:
    with expected_protocol([(b":FETC?\n", reply)] * 2) as port, pytest.raises(GarbledReply):
        lcr(port).fetch()


def test_query_error_gets_no_reply_and_reads_the_queue() -> None:
    pairs = [(b":FUNC:IMP?\n", b""), (b":SYST:ERR?\n", b'-113,"Undefined header"\n')]
    with expected_protocol(pairs) as port, pytest.raises(DeviceReportedError) as info:
        lcr(port).query(":FUNC:IMP?")
    assert info.value.code == "-113"
    assert isinstance(info.value.__cause__, DriverTimeout)


def test_query_timeout_with_empty_queue() -> None:
    pairs = [(b"*IDN?\n", b""), (b":SYST:ERR?\n", NO_ERROR)] * 2
    with expected_protocol(pairs) as port, pytest.raises(DriverTimeout):
        start = time.monotonic()
        lcr(port).identify()
    assert time.monotonic() - start < 0.4


def test_query_timeout_dead_meter() -> None:
    pairs = [(b"*OPC?\n", b""), (b":SYST:ERR?\n", b"")]
    with expected_protocol(pairs) as port, pytest.raises(DriverTimeout):
        lcr(port).opc()


def test_non_ascii_reply() -> None:
    with expected_protocol([(b"*OPC?\n", b"\xff1\n")]) as port, pytest.raises(GarbledReply):
        lcr(port).opc()


def test_measure_sequence() -> None:
    pairs = [
        (b":FUNC:IMP RX\n", b""),
        (b":TRIG:SOUR BUS\n", b""),
        (b":INIT:CONT ON\n", b""),
        (b":FREQ 1000\n", b""),
        (b":TRIG\n", b""),
        (b"*OPC?\n", b"1\n"),
        (b":FETC?\n", b"+1.00000E+03,-4.50000E+01,+0\n"),
        (b":SYST:ERR?\n", b'0,"No error"\n'),
    ]
    with expected_protocol(pairs) as port:
        assert lcr(port).measure(1000) == complex(1000, -45)


def test_measure_reports_queued_error() -> None:
    pairs = [
        (b":FUNC:IMP RX\n", b""),
        (b":TRIG:SOUR BUS\n", b""),
        (b":INIT:CONT ON\n", b""),
        (b":FREQ 1000\n", b""),
        (b":TRIG\n", b""),
        (b"*OPC?\n", b"1\n"),
        (b":FETC?\n", b"+1.0E+03,-4.5E+01,+0\n"),
        (b":SYST:ERR?\n", b'-211,"Trigger ignored"\n'),
        (b":SYST:ERR?\n", NO_ERROR),
    ]
    with expected_protocol(pairs) as port, pytest.raises(DeviceReportedError, match="-211"):
        lcr(port).measure(1000)


def test_measure_overload() -> None:
    pairs = [
        (b":FUNC:IMP RX\n", b""),
        (b":TRIG:SOUR BUS\n", b""),
        (b":INIT:CONT ON\n", b""),
        (b":FREQ 1000\n", b""),
        (b":TRIG\n", b""),
        (b"*OPC?\n", b"1\n"),
        (b":FETC?\n", b"+9.9E+37,+9.9E+37,+1\n"),
    ]
    with expected_protocol(pairs) as port, pytest.raises(LcrMeasurementError, match="overload"):
        lcr(port).measure(1000)


def test_sweep_configures_once() -> None:
    pairs = [(b":FUNC:IMP RX\n", b""), (b":TRIG:SOUR BUS\n", b""), (b":INIT:CONT ON\n", b"")]
    for f, z in ((b"100", b"+1.0E+01,-1.0E+02"), (b"10000", b"+2.0E+01,-3.0E+00")):
        pairs += [
            (b":FREQ " + f + b"\n", b""),
            (b":TRIG\n", b""),
            (b"*OPC?\n", b"1\n"),
            (b":FETC?\n", z + b",+0\n"),
            (b":SYST:ERR?\n", NO_ERROR),
        ]
    with expected_protocol(pairs) as port:
        assert lcr(port).sweep([100, 1e4]) == [complex(10, -100), complex(20, -3)]


@pytest.mark.parametrize(
    ("limits", "call"),
    [
        (LcrLimits(), lambda m: m.set_frequency(19.9)),
        (LcrLimits(), lambda m: m.set_frequency(2.1e6)),
        (LcrLimits(), lambda m: m.set_frequency(float("nan"))),
        (LcrLimits(max_frequency_hz=3e5), lambda m: m.set_frequency(5e5)),
        (LcrLimits(), lambda m: m.set_voltage(2.5)),
        (LcrLimits(), lambda m: m.set_voltage(-0.1)),
        (LcrLimits(), lambda m: m.measure(5e6)),
        (LcrLimits(), lambda m: m.sweep([100, 1e3, 5e6])),
    ],
)
def test_limits_refuse_before_any_byte(limits: LcrLimits, call: object) -> None:
    port = ScriptedPort([])
    with pytest.raises(SafetyLimitError):
        call(lcr(port, limits=limits))  # type: ignore[operator]
    assert port.written == b""


@pytest.mark.parametrize(
    "call", [lambda m: m.set_function("XYZ"), lambda m: m.set_trigger_source("NOW")]
)
def test_bad_arguments_send_nothing(call: object) -> None:
    port = ScriptedPort([])
    with pytest.raises(ValueError):
        call(lcr(port))  # type: ignore[operator]
    assert port.written == b""


class _FakeMeter:
    """Just enough SCPI: *IDN?, BUS-triggered RX measurement, an error queue."""

    def __init__(self) -> None:
        self.freq = 1000.0
        self.errors: list[str] = []

    def __call__(self, msg: bytes) -> bytes:
        cmd = msg.decode().strip()
        if cmd == "*IDN?":
            return b"Keysight Technologies,E4980A,MY1,A.02.10\n"
        if cmd.startswith(":FREQ "):
            value = float(cmd.split()[1])
            if value > 2e6:
                self.errors.append('-222,"Data out of range"')
            else:
                self.freq = value
            return b""
        if cmd == "*OPC?":
            return b"+1\n"
        if cmd == ":FETC?":
            return f"+5.00000E+01,{-1e6 / self.freq:+.5E},+0\n".encode()
        if cmd == ":SYST:ERR?":
            return (self.errors.pop(0) if self.errors else '+0,"No error"').encode() + b"\n"
        if cmd.endswith("?"):
            self.errors.append('-113,"Undefined header"')
        return b""


def test_over_a_real_tcp_socket() -> None:
    with TcpDevice(split_on(b"\n"), _FakeMeter()) as dev, ScpiLcr(dev.url, timeout=0.5) as m:
        assert m.identify()["model"] == "E4980A"
        assert m.measure(1000) == complex(50, -1000)
        assert m.sweep([100, 1e4]) == [complex(50, -1e4), complex(50, -100)]
        with pytest.raises(DeviceReportedError) as info:
            m.query(":BOGUS?", timeout=0.05)
        assert info.value.code == "-113"
    assert b":FUNC:IMP RX\n" in dev.received


def test_over_a_real_pty() -> None:
    with PtyDevice(split_on(b"\n"), _FakeMeter()) as dev, ScpiLcr(dev.path, timeout=0.5) as m:
        assert m.measure(2000) == complex(50, -500)
        m.set_frequency(2e6)
        m.check_errors()
