"""NE-1000 syringe pump driver: byte-exact exchanges, errors, alarms, limits, a pty round trip."""

from __future__ import annotations

import time

import pytest
from fakedev import PtyDevice, split_on
from scripted import ScriptedPort, expected_protocol

from drivers.errors import DriverTimeout, GarbledReply, SafetyLimitError
from drivers.ne1000 import NE1000, PumpAlarm, PumpCommandError, PumpLimits, format_pump_number


def frame(body: str) -> bytes:
    """Frame a reply body as the pump does."""
    return b"\x02" + body.encode() + b"\x03"


def pump(port: ScriptedPort, **kw: object) -> NE1000:
    kw.setdefault("timeout", 0.05)
    return NE1000(port=port, **kw)  # type: ignore[arg-type]


OK = frame("00S")


# ---------------------------------------------------------------- commands and replies


def test_identify() -> None:
    with expected_protocol([(b"0VER\r", frame("00SNE1000V3.928"))]) as port:
        assert pump(port).identify() == "NE1000V3.928"


@pytest.mark.parametrize("status", list("IWSPTUX"))
def test_status(status: str) -> None:
    with expected_protocol([(b"0\r", frame("00" + status))]) as port:
        p = pump(port)
        assert p.status() == status


def test_is_running() -> None:
    with expected_protocol([(b"0\r", frame("00I")), (b"0\r", frame("00P"))]) as port:
        p = pump(port)
        assert p.is_running() is True
        assert p.is_running() is False


def test_two_digit_address() -> None:
    with expected_protocol([(b"12DIA\r", frame("12S26.59"))]) as port:
        assert pump(port, address=12).diameter() == 26.59


def test_diameter() -> None:
    with expected_protocol([(b"0DIA26.59\r", OK), (b"0DIA\r", frame("00S26.59"))]) as port:
        p = pump(port)
        p.set_diameter(26.59)
        assert p.diameter() == 26.59


def test_rate() -> None:
    with expected_protocol([(b"0RAT5MM\r", OK), (b"0RAT\r", frame("00S5.000MM"))]) as port:
        p = pump(port)
        p.set_rate(5.0, "MM")
        assert p.rate() == (5.0, "MM")


def test_volume_sends_units_then_value() -> None:
    pairs = [(b"0VOLML\r", OK), (b"0VOL1\r", OK), (b"0VOL\r", frame("00S1.000ML"))]
    with expected_protocol(pairs) as port:
        p = pump(port)
        p.set_volume(1.0, "ml")
        assert p.volume() == (1.0, "ML")


def test_direction() -> None:
    pairs = [(b"0DIRWDR\r", OK), (b"0DIR\r", frame("00SWDR")), (b"0DIRINF\r", OK)]
    with expected_protocol(pairs) as port:
        p = pump(port)
        p.set_direction("wdr")
        assert p.direction() == "WDR"
        p.set_direction("INF")


def test_run() -> None:
    with expected_protocol([(b"0RUN\r", frame("00I"))]) as port:
        assert pump(port).run() == "I"


def test_stop_pauses_then_stops() -> None:
    with expected_protocol([(b"0STP\r", frame("00P")), (b"0STP\r", frame("00S"))]) as port:
        assert pump(port).stop() == "S"


def test_stop_when_already_stopped() -> None:
    with expected_protocol([(b"0STP\r", frame("00S"))]) as port:
        assert pump(port).stop() == "S"


def test_dispensed_and_clear() -> None:
    pairs = [(b"0DIS\r", frame("00II0.125W0.000ML")), (b"0CLDINF\r", OK), (b"0CLDWDR\r", OK)]
    with expected_protocol(pairs) as port:
        p = pump(port)
        assert p.dispensed() == (0.125, 0.0, "ML")
        p.clear_dispensed("INF")
        p.clear_dispensed("WDR")


def test_dispense_sequence() -> None:
    pairs = [
        (b"0VOLUL\r", OK),
        (b"0VOL100\r", OK),
        (b"0RAT50UM\r", OK),
        (b"0DIRINF\r", OK),
        (b"0RUN\r", frame("00I")),
    ]
    with expected_protocol(pairs) as port:
        assert pump(port).dispense(100, 50) == "I"


def test_dispense_picks_units_that_fit() -> None:
    pairs = [
        (b"0VOLML\r", OK),
        (b"0VOL12.35\r", OK),
        (b"0RAT20MM\r", OK),
        (b"0DIRWDR\r", OK),
        (b"0RUN\r", frame("00W")),
    ]
    with expected_protocol(pairs) as port:
        assert pump(port).dispense(12345, 20000, direction="WDR") == "W"


def test_dispense_slow_rate_uses_per_hour() -> None:
    pairs = [
        (b"0VOLUL\r", OK),
        (b"0VOL0.5\r", OK),
        (b"0RAT0.072UH\r", OK),
        (b"0DIRINF\r", OK),
        (b"0RUN\r", frame("00I")),
    ]
    with expected_protocol(pairs) as port:
        pump(port).dispense(0.5, 0.0012)


def test_wait_until_stopped() -> None:
    pairs = [(b"0\r", frame("00I")), (b"0\r", frame("00I")), (b"0\r", frame("00S"))]
    with expected_protocol(pairs) as port:
        assert pump(port).wait_until_stopped(5.0, poll_s=0.0) == "S"


def test_wait_until_stopped_times_out() -> None:
    pairs = [(b"0\r", frame("00I"))]
    with expected_protocol(pairs) as port, pytest.raises(DriverTimeout, match="still infusing"):
        pump(port).wait_until_stopped(0.0)


def test_wait_until_stopped_reports_stall_without_retry() -> None:
    pairs = [(b"0\r", frame("00I")), (b"0\r", frame("00A?S"))]
    with expected_protocol(pairs) as port, pytest.raises(PumpAlarm) as info:
        pump(port).wait_until_stopped(5.0, poll_s=0.0)
    assert info.value.code == "A?S"
    assert info.value.alarm == "S"


# ---------------------------------------------------------------- number format


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.125, "0.125"),
        (26.59, "26.59"),
        (1500, "1500"),
        (5.0, "5"),
        (1.0, "1"),
        (0.0125, "0.013"),
        (123.456, "123.5"),
        (9999.4, "9999"),
        (9.9996, "10"),
        (0, "0"),
        (1234.5, "1235"),
    ],
)
def test_format_pump_number(value: float, text: str) -> None:
    assert format_pump_number(value) == text


@pytest.mark.parametrize("value", [-1, 9999.5, 12345, 0.0004, float("nan"), float("inf")])
def test_format_pump_number_refuses(value: float) -> None:
    with pytest.raises(ValueError):
        format_pump_number(value)


# ---------------------------------------------------------------- device errors


@pytest.mark.parametrize("code", ["?", "?NA", "?OOR", "?COM", "?IGN"])
def test_command_errors_are_typed_and_not_retried(code: str) -> None:
    pairs = [(b"0RAT9999MM\r", frame("00S" + code))]
    with expected_protocol(pairs) as port, pytest.raises(PumpCommandError) as info:
        pump(port).set_rate(9999, "MM")
    assert info.value.code == code
    assert info.value.status == "S"
    assert info.value.device == "ne1000"


def test_unknown_command_reply_on_query() -> None:
    pairs = [(b"0VER\r", frame("00I?"))]
    with expected_protocol(pairs) as port, pytest.raises(PumpCommandError, match="not recognised"):
        pump(port).identify()


@pytest.mark.parametrize("alarm", list("RSTEO"))
def test_alarm_on_query_is_retried_once(alarm: str) -> None:
    pairs = [(b"0DIA\r", frame("00A?" + alarm)), (b"0DIA\r", frame("00S26.59"))]
    with expected_protocol(pairs) as port:
        p = pump(port)
        assert p.diameter() == 26.59
        assert p.last_alarm == "A?" + alarm


def test_alarm_on_set_is_retried_once() -> None:
    with expected_protocol([(b"0RAT5UM\r", frame("00A?R")), (b"0RAT5UM\r", OK)]) as port:
        pump(port).set_rate(5)


def test_alarm_twice_raises() -> None:
    with (
        expected_protocol([(b"0DIRINF\r", frame("00A?R")), (b"0DIRINF\r", frame("00A?S"))]) as port,
        pytest.raises(PumpAlarm, match="motor stalled"),
    ):
        pump(port).set_direction("INF")


def test_alarm_on_run_is_not_retried() -> None:
    with expected_protocol([(b"0RUN\r", frame("00A?R"))]) as port:
        p = pump(port)
        with pytest.raises(PumpAlarm, match="not executed") as info:
            p.run()
    assert info.value.code == "A?R"
    assert p.last_alarm == "A?R"


def test_alarm_on_status_is_not_retried() -> None:
    pairs = [(b"0\r", frame("00A?T"))]
    with expected_protocol(pairs) as port, pytest.raises(PumpAlarm, match="time-out"):
        pump(port).status()


def test_alarm_on_stop_is_retried() -> None:
    with expected_protocol([(b"0STP\r", frame("00A?S")), (b"0STP\r", frame("00S"))]) as port:
        assert pump(port).stop() == "S"


# ---------------------------------------------------------------- garbled and lost replies


def test_noise_before_stx_is_discarded() -> None:
    with expected_protocol([(b"0DIA\r", b"\xff\x00junk" + frame("00S26.59"))]) as port:
        assert pump(port).diameter() == 26.59


@pytest.mark.parametrize(
    "reply",
    [
        b"00S26.59\x03",  # no STX
        frame("01S26.59"),  # another address
        frame("0XS"),  # address not digits
        frame("00"),  # too short
        frame("00Q26.59"),  # unknown status
        frame("00A?"),  # alarm without type
        frame("00S26.5x"),  # data does not parse
        b"\x02\x8000S\x03",  # not ASCII
    ],
)
def test_garbled_query_is_retried_then_raises(reply: bytes) -> None:
    pairs = [(b"0DIA\r", reply), (b"0DIA\r", reply)]
    with expected_protocol(pairs) as port, pytest.raises(GarbledReply):
        pump(port).diameter()


def test_garbled_then_good_reply() -> None:
    with expected_protocol([(b"0DIA\r", b"\x0200S2"), (b"0DIA\r", frame("00S26.59"))]) as port:
        assert pump(port).diameter() == 26.59


@pytest.mark.parametrize(
    ("call", "command", "data"),
    [
        ("rate", b"0RAT\r", "5.000XX"),
        ("volume", b"0VOL\r", "1.0MM"),
        ("direction", b"0DIR\r", "REV"),
        ("dispensed", b"0DIS\r", "I0.1W0.2"),
    ],
)
def test_unparseable_query_data(call: str, command: bytes, data: str) -> None:
    pairs = [(command, frame("00S" + data))] * 2
    with expected_protocol(pairs) as port, pytest.raises(GarbledReply):
        getattr(pump(port), call)()


def test_set_with_echoed_data_is_garbled() -> None:
    pairs = [(b"0DIA10\r", frame("00S10"))] * 2
    with expected_protocol(pairs) as port, pytest.raises(GarbledReply):
        pump(port).set_diameter(10)


def test_truncated_reply() -> None:
    pairs = [(b"0VER\r", b"\x0200SNE10"), (b"0VER\r", b"\x0200SNE10")]
    with expected_protocol(pairs) as port, pytest.raises(GarbledReply, match="truncated"):
        pump(port, timeout=0.02).identify()


def test_query_timeout_retries_once_within_time() -> None:
    with expected_protocol([(b"0DIA\r", b""), (b"0DIA\r", b"")]) as port:
        start = time.monotonic()
        with pytest.raises(DriverTimeout):
            pump(port, timeout=0.05).diameter()
        assert time.monotonic() - start < 0.3


def test_run_timeout_is_not_retried() -> None:
    with expected_protocol([(b"0RUN\r", b"")]) as port:
        start = time.monotonic()
        with pytest.raises(DriverTimeout):
            pump(port, timeout=0.05).run()
        assert time.monotonic() - start < 0.2


# ---------------------------------------------------------------- safety limits


@pytest.mark.parametrize(
    ("limits", "call"),
    [
        (PumpLimits(), lambda p: p.set_diameter(0.05)),
        (PumpLimits(), lambda p: p.set_diameter(81)),
        (PumpLimits(max_rate_ul_min=100), lambda p: p.set_rate(101)),
        (PumpLimits(max_rate_ul_min=100), lambda p: p.set_rate(0.2, "MM")),
        (PumpLimits(max_rate_ul_min=100), lambda p: p.set_rate(6.1, "MH")),
        (PumpLimits(), lambda p: p.set_rate(0)),
        (PumpLimits(), lambda p: p.set_rate(-1)),
        (PumpLimits(), lambda p: p.set_rate(10000, "UM")),
        (PumpLimits(max_volume_ul=500), lambda p: p.set_volume(0.6, "ML")),
        (PumpLimits(), lambda p: p.set_volume(-1)),
        (PumpLimits(), lambda p: p.set_volume(0)),
        (PumpLimits(max_rate_ul_min=100), lambda p: p.dispense(10, 200)),
        (PumpLimits(max_volume_ul=500), lambda p: p.dispense(501, 10)),
        (PumpLimits(), lambda p: p.dispense(0, 10)),
        (PumpLimits(), lambda p: p.dispense(10, 0)),
    ],
)
def test_limits_refuse_before_any_byte(limits: PumpLimits, call: object) -> None:
    port = ScriptedPort([])
    with pytest.raises(SafetyLimitError):
        call(pump(port, limits=limits))  # type: ignore[operator]
    assert port.written == b""


def test_continuous_volume_when_allowed() -> None:
    with expected_protocol([(b"0VOLUL\r", OK), (b"0VOL0\r", OK)]) as port:
        pump(port, limits=PumpLimits(allow_continuous=True)).set_volume(0)


@pytest.mark.parametrize(
    "call",
    [
        lambda p: p.set_rate(1, "XX"),
        lambda p: p.set_volume(1, "GAL"),
        lambda p: p.set_direction("REV"),
        lambda p: p.clear_dispensed("BOTH"),
        lambda p: p.dispense(1, 1, direction="UP"),
    ],
)
def test_bad_arguments_send_nothing(call: object) -> None:
    port = ScriptedPort([])
    with pytest.raises(ValueError):
        call(pump(port))  # type: ignore[operator]
    assert port.written == b""


def test_bad_address() -> None:
    with pytest.raises(ValueError):
        NE1000(port=ScriptedPort([]), address=100)


# ---------------------------------------------------------------- real pty


class _FakePump:
    """Just enough NE-1000 to dispense: volume, rate, direction, run, status, DIS."""

    def __init__(self) -> None:
        self.polls = 0
        self.running = False

    def __call__(self, msg: bytes) -> bytes:
        cmd = msg.decode().strip()[1:]
        status = "I" if self.running else "S"
        data = ""
        if cmd == "RUN":
            self.running, status = True, "I"
        elif cmd == "":
            self.polls += 1
            if self.polls >= 3:
                self.running, status = False, "S"
        elif cmd == "DIS":
            data = "I0.050W0.000ML" if not self.running else "I0.020W0.000ML"
        elif cmd == "VER":
            data = "NE1000V3.928"
        return b"\x02" + f"00{status}{data}".encode() + b"\x03"


def test_over_a_real_pty() -> None:
    fake = _FakePump()
    with PtyDevice(split_on(b"\r"), fake) as dev, NE1000(dev.path, timeout=1.0) as p:
        assert p.identify() == "NE1000V3.928"
        assert p.dispense(50, 500) == "I"
        assert p.wait_until_stopped(5.0, poll_s=0.001) == "S"
        assert p.dispensed() == (0.05, 0.0, "ML")
    assert dev.received[:5] == [b"0VER\r", b"0VOLUL\r", b"0VOL50\r", b"0RAT500UM\r", b"0DIRINF\r"]
