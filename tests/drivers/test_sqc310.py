"""INFICON SQC-310 driver: golden packets, byte-exact exchanges, status errors, start and deposit."""

from __future__ import annotations

import inspect
import logging
import pickle
import time
from collections.abc import Callable

import pytest
from fakedev import PtyDevice
from scripted import Pair, ScriptedPort, expected_protocol

import drivers
from drivers._base import Instrument
from drivers.errors import (
    DeviceReportedError,
    DriverError,
    DriverTimeout,
    GarbledReply,
    SafetyLimitError,
)
from drivers.sqc310 import (
    DepositionFault,
    DepositionLimits,
    RunState,
    Sqc310,
    Sqc310Error,
    crc14,
    frame_command,
    parse_reply,
)

# ---------------------------------------------------------------------------------- reference codec
# Written apart from the driver's (table-driven, not bit-by-bit per byte) so that a typo in one
# does not hide in the other; the golden packets below pin both to the manual.


def _table() -> list[int]:
    table = []
    for n in range(256):
        crc = n
        for _ in range(8):
            crc = (crc >> 1) ^ 0x2001 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _table()


def _ref_crc(data: bytes) -> bytes:
    crc = 0x3FFF
    for b in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ b) & 0xFF]
    crc &= 0x3FFF
    return bytes([34 + (crc & 0x7F), 34 + (crc >> 7)])


def cmd(msg: str) -> bytes:
    """The command packet the host must send for ``msg``."""
    body = bytes([len(msg) + 34]) + msg.encode()
    return b"!" + body + _ref_crc(body)


def reply(text: str) -> bytes:
    """A reply packet for ``text`` = STATUS + MSG, e.g. ``"A 0.050"``."""
    body = bytes([len(text) + 35]) + text.encode()
    return b"!" + body + _ref_crc(body)


def ok(answer: str = "") -> bytes:
    """Status A reply with the manual's space before a non-empty answer."""
    return reply(f"A {answer}" if answer else "A")


def v(phase: int, elapsed: int = 0, process: int = 1, layer: int = 1) -> Pair:
    return cmd("V"), ok(f"{phase} {elapsed} {process} {layer}")


def sqc(port: ScriptedPort, **kw: object) -> Sqc310:
    kw.setdefault("timeout", 0.05)
    return Sqc310(port=port, **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------- golden packets


@pytest.mark.parametrize(
    ("msg", "packet"),
    [
        ("M1", b"!$M1\\q"),
        ("N1", b"!$N1]Q"),
        ("O1", b"!$O1" + bytes([103, 146])),
        ("L1", b"!$L1" + bytes([102, 50])),  # manual P1C §4.3.12.1
        ("J", b"!#J" + bytes([79, 56])),  # manual P1C §4.3.10.1
    ],
)
def test_golden_commands(msg: str, packet: bytes) -> None:
    assert frame_command(msg) == packet
    assert cmd(msg) == packet  # the test's own codec agrees


@pytest.mark.parametrize(
    ("packet", "status", "answer"),
    [
        (b"!)A 0.00" + bytes([87, 100]), "A", "0.00"),
        (b"!*A 0.000" + bytes([90, 92]), "A", "0.000"),
        (b"!%A4" + bytes([119, 61]), "A", "4"),  # manual P1C §4.3.10.1
    ],
)
def test_golden_replies(packet: bytes, status: str, answer: str) -> None:
    assert parse_reply(packet) == (status, answer)
    assert reply(status + packet[3:-2].decode()) == packet


def test_crc14_of_golden_packets() -> None:
    assert crc14(b"$M1") == (92, 113)
    assert crc14(b"$N1") == (93, 81)
    assert crc14(b")A 0.00") == (87, 100)
    assert crc14(b"*A 0.000") == (90, 92)


def test_golden_exchange_on_the_wire() -> None:
    pairs = [(b"!$N1]Q", b"!*A 0.000" + bytes([90, 92]))]
    with expected_protocol(pairs) as port:
        assert sqc(port).thickness_nm() == 0.0


@pytest.mark.parametrize("msg", ["", "x" * 222, "N1\r", "Ä1"])
def test_frame_command_refuses_bad_messages(msg: str) -> None:
    with pytest.raises(ValueError):
        frame_command(msg)


def test_frame_command_longest_message() -> None:
    assert frame_command("x" * 221)[1] == 255


@pytest.mark.parametrize(
    ("packet", "why"),
    [
        (b"*A 0.000" + bytes([90, 92]), "sync"),
        (b"!*A 0.000" + bytes([90, 93]), "CRC"),
        (b"!*A 0.001" + bytes([90, 92]), "CRC"),
        (b"!+A 0.000" + bytes([90, 92]), "LEN"),
        (b"!)A 0.000" + bytes([90, 92]), "LEN"),
        (b"!*A", "short"),
        (reply("F 0.000"), "status"),
        (reply("a 0.000"), "status"),
    ],
)
def test_parse_reply_rejects(packet: bytes, why: str) -> None:
    with pytest.raises(GarbledReply, match=why) as info:
        parse_reply(packet, device="unit")
    assert info.value.reply == packet
    assert info.value.device == "unit"


def test_parse_reply_rejects_non_ascii() -> None:
    body = bytes([37]) + b"A\xb5"
    with pytest.raises(GarbledReply, match="ASCII"):
        parse_reply(b"!" + body + bytes(crc14(body)))


# ---------------------------------------------------------------------------------- every command's bytes


@pytest.mark.parametrize(
    ("call", "msg", "answer", "value"),
    [
        (lambda d: d.identify(), "@", "SQC-310 Ver 6.01", "SQC-310 Ver 6.01"),
        (lambda d: d.film_name(1), "A1 1?", "LiF", "LiF"),
        (lambda d: d.film_name(99), "A1 99?", "MoO3", "MoO3"),
        (lambda d: d.film_parameters(3), "A2 3? 4 6", "4,12 6,100", {4: 12, 6: 100}),
        (lambda d: d.film_parameters(3), "A2 3? 4 6", "6,95 4,7", {4: 7, 6: 95}),  # any order
        (lambda d: d.film_tooling(2), "A2 2? 4 6", "4,12 6,87", 87),
        (lambda d: d.process_name(), "C1? 1", "Interlayer", "Interlayer"),
        (lambda d: d.process_name(2), "C2? 1", "HTL", "HTL"),
        (lambda d: d.layer(), "D1? 2 7", "2,50 7,3", (5.0, 3)),
        (lambda d: d.layer(12), "D12? 2 7", "7,1 2,1234", (123.4, 1)),
        (lambda d: d.run_state(), "V", "13 15 1 2", RunState(13, 15.0, 1, 2)),
        (lambda d: d.rate(), "L1", "1.00", 1.0),
        (lambda d: d.rate(2), "L2", "-0.03", -0.03),
        (lambda d: d.output_rate(1), "M1", "0.00", 0.0),
        (lambda d: d.thickness_nm(), "N1", "0.050", 5.0),
        (lambda d: d.thickness_nm(3), "N3", "0.070", 7.0),  # exact: not 7.000000000000001
        (lambda d: d.output_thickness_nm(), "O1", "1.000", 100.0),
        (lambda d: d.output_thickness_nm(4), "O4", "0.123", 12.3),
        (lambda d: d.frequency(), "P1", "5543210.00", 5543210.0),
    ],
)
def test_queries(call: Callable[[Sqc310], object], msg: str, answer: str, value: object) -> None:
    with expected_protocol([(cmd(msg), ok(answer))]) as port:
        assert call(sqc(port)) == value


def test_answer_without_the_space_after_the_status() -> None:
    with expected_protocol([(cmd("V"), reply("A0 0 1 1"))]) as port:
        assert sqc(port).run_state() == RunState(0, 0.0, 1, 1)


@pytest.mark.parametrize(
    ("call", "msg"),
    [
        (lambda d: d.set_layer_thickness(1, 5.0), "D1 2,50"),
        (lambda d: d.set_layer_thickness(2, 5.25), "D2 2,53"),  # rounded half up to whole Å
        (lambda d: d.set_layer_thickness(1, 0.05), "D1 2,1"),
        (lambda d: d.set_layer_thickness(1, 1000), "D1 2,10000"),
        (lambda d: d.set_layer_film(1, 3), "D1 7,3"),
        (lambda d: d.set_layer_film(7, 99), "D7 7,99"),
        (lambda d: d.start(), "U0"),
        (lambda d: d.stop(), "U1"),
        (lambda d: d.force_final(), "U5"),
        (lambda d: d.zero_thickness(), "U32"),
    ],
)
def test_commands(call: Callable[[Sqc310], None], msg: str) -> None:
    with expected_protocol([(cmd(msg), ok())]) as port:
        assert call(sqc(port)) is None
    assert port.resets == 1  # input flushed before sending


def test_unexpected_answer_to_a_set_is_garbled() -> None:
    with expected_protocol([(cmd("U1"), ok("1"))] * 3) as port, pytest.raises(GarbledReply):
        sqc(port).stop()


# ---------------------------------------------------------------------------------- status replies


@pytest.mark.parametrize(
    ("status", "text"), [("C", "invalid command"), ("D", "data"), ("E", "current mode")]
)
def test_status_errors_are_not_retried(status: str, text: str) -> None:
    pairs = [(cmd("D1 7,3"), reply(status))]
    with expected_protocol(pairs) as port, pytest.raises(Sqc310Error, match=text) as info:
        sqc(port, name="evap").set_layer_film(1, 3)
    err = info.value
    assert isinstance(err, DeviceReportedError)
    assert (err.code, err.command, err.device) == (status, "D1 7,3", "evap")


def test_status_e_on_start_is_not_checked_with_v() -> None:
    with expected_protocol([(cmd("U0"), reply("E"))]) as port, pytest.raises(Sqc310Error) as info:
        sqc(port).start()
    assert info.value.code == "E"


def test_from_status_is_the_one_mapping() -> None:
    for status, ctor in [
        ("C", Sqc310Error.invalid_command),
        ("D", Sqc310Error.invalid_data),
        ("E", Sqc310Error.wrong_mode),
    ]:
        a = Sqc310Error.from_status(status, "V", device="x")
        b = ctor("V", device="x")
        assert (a.code, a.command, str(a)) == (b.code, b.command, str(b)) == (status, "V", str(a))
    with pytest.raises(KeyError):
        Sqc310Error.from_status("A", "V")


def test_errors_survive_pickling() -> None:
    err = pickle.loads(pickle.dumps(Sqc310Error.wrong_mode("U0", device="evap")))
    assert (err.code, err.command, err.device) == ("E", "U0", "evap")
    fault = DepositionFault.from_state(RunState(24, 3.0, 1, 1), device="evap")
    fault = pickle.loads(pickle.dumps(fault))
    assert fault.state == RunState(24, 3.0, 1, 1)
    assert fault.code == "24"


def test_status_b_is_done_and_remembered(caplog: pytest.LogCaptureFixture) -> None:
    pairs = [(cmd("N1"), reply("B 0.050")), (cmd("N1"), ok("0.060"))]
    with expected_protocol(pairs) as port, caplog.at_level(logging.INFO, "drivers.sqc310"):
        dev = sqc(port)
        assert not dev.was_reset
        assert dev.thickness_nm() == 5.0
        assert dev.was_reset
        assert dev.resets_seen == 1
        dev.clear_reset()
        assert dev.thickness_nm() == 6.0
        assert not dev.was_reset
        assert dev.resets_seen == 1
    records = [r for r in caplog.records if "status B" in r.getMessage()]
    assert [r.levelno for r in records] == [logging.INFO]


# ---------------------------------------------------------------------------------- garbled, truncated, silent


def _bad_crc(packet: bytes) -> bytes:
    return packet[:-1] + bytes([packet[-1] ^ 1])


def test_bad_crc_is_retried_then_raises() -> None:
    pairs = [(cmd("N1"), _bad_crc(ok("0.050")))] * 3  # 1 + retries=2
    with expected_protocol(pairs) as port, pytest.raises(GarbledReply, match="CRC"):
        sqc(port).thickness_nm()


def test_bad_crc_then_good() -> None:
    pairs = [(cmd("N1"), _bad_crc(ok("0.050"))), (cmd("N1"), ok("0.050"))]
    with expected_protocol(pairs) as port:
        assert sqc(port).thickness_nm() == 5.0


def test_retries_setting() -> None:
    with expected_protocol([(cmd("V"), b"")]) as port, pytest.raises(DriverTimeout):
        sqc(port, retries=0).run_state()
    with pytest.raises(ValueError):
        sqc(ScriptedPort([]), retries=-1)


@pytest.mark.parametrize(
    "answer",
    [
        ok("0.050")[:-1],  # last CRC byte missing
        ok("0.050")[:5],
        b"!",
        b"!" + bytes([60]) + b"A 0.050" + bytes(crc14(bytes([60]) + b"A 0.050")),  # LEN too big
    ],
)
def test_truncated_reply_is_garbled(answer: bytes) -> None:
    with expected_protocol([(cmd("N1"), answer)] * 3) as port, pytest.raises(GarbledReply) as info:
        sqc(port).thickness_nm()
    assert info.value.reply == answer
    assert "truncated" in str(info.value)


@pytest.mark.parametrize(
    "answer",
    [
        b"?" + ok("0.050"),  # no sync first
        b"!" + bytes([35]) + b"A" + bytes([40, 40]),  # LEN leaves no room for a status
        b"!" + bytes([40]) + b"A 0.050" + bytes(crc14(bytes([40]) + b"A 0.050")),  # LEN too small
    ],
)
def test_malformed_reply_is_garbled(answer: bytes) -> None:
    with expected_protocol([(cmd("N1"), answer)] * 3) as port, pytest.raises(GarbledReply):
        sqc(port).thickness_nm()


@pytest.mark.parametrize("answer", ["abc", "nan", "", "1.0 2.0"])
def test_unparsable_answer_is_garbled(answer: str) -> None:
    with expected_protocol([(cmd("L1"), ok(answer))] * 3) as port, pytest.raises(GarbledReply):
        sqc(port).rate()


@pytest.mark.parametrize("answer", ["4,12", "4,12 6,100 5,1", "4,12 6,x", "4 6", "4,1 4,2"])
def test_unparsable_pairs_are_garbled(answer: str) -> None:
    pairs = [(cmd("A2 1? 4 6"), ok(answer))] * 3
    with expected_protocol(pairs) as port, pytest.raises(GarbledReply):
        sqc(port).film_parameters(1)


@pytest.mark.parametrize("answer", ["13 15 1", "13 15 1 2 3", "x 15 1 2", "13 15 1 2.5"])
def test_unparsable_run_state_is_garbled(answer: str) -> None:
    with expected_protocol([(cmd("V"), ok(answer))] * 3) as port, pytest.raises(GarbledReply):
        sqc(port).run_state()


def test_silence_is_a_timeout_within_time() -> None:
    with expected_protocol([(cmd("V"), b"")] * 3) as port, pytest.raises(DriverTimeout):
        start = time.monotonic()
        sqc(port).run_state()
    assert time.monotonic() - start < 0.5


def test_leftover_bytes_after_a_packet_are_flushed() -> None:
    pairs = [(cmd("N1"), ok("0.050") + b"junk"), (cmd("L1"), ok("1.00"))]
    with expected_protocol(pairs) as port:
        dev = sqc(port)
        assert dev.thickness_nm() == 5.0
        assert dev.rate() == 1.0


def test_retry_listener_sees_repeats() -> None:
    seen: list[drivers.DriverRetry] = []
    pairs = [(cmd("V"), b""), (cmd("V"), _bad_crc(ok("0 0 1 1"))), v(0)]
    with expected_protocol(pairs) as port:
        dev = sqc(port, name="evap")
        dev.add_retry_listener(seen.append)
        assert dev.run_state().stopped
    assert [(r.device, r.what, r.attempt, type(r.error)) for r in seen] == [
        ("evap", "V", 1, DriverTimeout),
        ("evap", "V", 2, GarbledReply),
    ]


# ---------------------------------------------------------------------------------- limits and arguments


@pytest.mark.parametrize(
    ("limits", "thickness"),
    [
        (DepositionLimits(), 0.0),
        (DepositionLimits(), -1.0),
        (DepositionLimits(), float("nan")),
        (DepositionLimits(), float("inf")),
        (DepositionLimits(), 1000.01),
        (DepositionLimits(), 0.04),  # rounds to 0 Å
        (DepositionLimits(max_thickness_nm=20), 20.1),
        (DepositionLimits(max_thickness_nm=5.06), 5.06),  # sent as 51 Å = 5.1 nm > 5.06
    ],
)
def test_thickness_limit_refused_before_any_byte(
    limits: DepositionLimits, thickness: float
) -> None:
    port = ScriptedPort([])
    dev = sqc(port, limits=limits, name="evap")
    with pytest.raises(SafetyLimitError) as info:
        dev.set_layer_thickness(1, thickness)
    assert info.value.device == "evap"
    with pytest.raises(SafetyLimitError):
        dev.deposit(1, 3, thickness, timeout_s=10)
    assert port.written == b""


def test_limit_error_names_value_and_limit() -> None:
    port = ScriptedPort([])
    with pytest.raises(SafetyLimitError, match=r"20\.5 nm.*0–20 nm") as info:
        sqc(port, limits=DepositionLimits(max_thickness_nm=20), name="evap").set_layer_thickness(
            1, 20.5
        )
    assert str(info.value).startswith("evap: ")
    assert port.written == b""


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_limits_must_be_positive(bad: float) -> None:
    with pytest.raises(ValueError):
        DepositionLimits(max_thickness_nm=bad)


@pytest.mark.parametrize(
    "call",
    [
        lambda d: d.set_layer_film(1, 0),
        lambda d: d.set_layer_film(1, 100),
        lambda d: d.set_layer_film(0, 1),
        lambda d: d.set_layer_film(1, 2.0),
        lambda d: d.set_layer_film(1, True),
        lambda d: d.film_name(100),
        lambda d: d.film_parameters(0),
        lambda d: d.layer(0),
        lambda d: d.process_name(51),
        lambda d: d.rate(5),
        lambda d: d.thickness_nm(0),
        lambda d: d.output_thickness_nm(5),
        lambda d: d.frequency(-1),
        lambda d: d.deposit(1, 100, 5.0, timeout_s=10),
        lambda d: d.deposit(1, 1, 5.0, timeout_s=0),
        lambda d: d.deposit(1, 1, 5.0, timeout_s=10, poll_s=-1),
    ],
)
def test_bad_arguments_refused_before_any_byte(call: Callable[[Sqc310], object]) -> None:
    port = ScriptedPort([])
    with pytest.raises(ValueError):
        call(sqc(port))
    assert port.written == b""


# ---------------------------------------------------------------------------------- start()


def test_start_is_never_retried_and_confirmed_running_after_a_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pairs = [(cmd("U0"), b""), v(1, 0, 1, 1)]
    with expected_protocol(pairs) as port, caplog.at_level(logging.WARNING, "drivers.sqc310"):
        assert sqc(port).start() is None
    assert "started" in caplog.text


def test_start_after_a_garbled_reply_confirmed_running() -> None:
    pairs = [(cmd("U0"), _bad_crc(ok())), v(13, 4)]
    with expected_protocol(pairs) as port:
        sqc(port).start()


def test_start_timeout_and_stopped_raises_did_not_start() -> None:
    pairs = [(cmd("U0"), b""), v(0)]
    with expected_protocol(pairs) as port, pytest.raises(DriverTimeout) as info:
        sqc(port).start()
    assert "did not start" in str(info.value)
    assert "not confirmed" in str(info.value)


def test_start_garbled_and_stopped_raises_garbled() -> None:
    answer = ok()[:3]  # truncated
    pairs = [(cmd("U0"), answer), v(0)]
    with expected_protocol(pairs) as port, pytest.raises(GarbledReply) as info:
        sqc(port).start()
    assert "did not start" in str(info.value)
    assert info.value.reply == answer


def test_start_timeout_and_fault_phase() -> None:
    pairs = [(cmd("U0"), b""), v(24, 2)]
    with expected_protocol(pairs) as port, pytest.raises(DepositionFault, match="crystal fail"):
        sqc(port).start()


def test_start_timeout_and_no_run_state_may_be_running() -> None:
    pairs = [(cmd("U0"), b"")] + [(cmd("V"), b"")] * 3  # V retried, U0 never
    with expected_protocol(pairs) as port, pytest.raises(DriverTimeout, match="MAY be running"):
        sqc(port).start()


def test_start_status_b_counts_as_started() -> None:
    with expected_protocol([(cmd("U0"), reply("B"))]) as port:
        dev = sqc(port)
        dev.start()
    assert dev.was_reset


def test_force_final_is_not_retried() -> None:
    with expected_protocol([(cmd("U5"), b"")]) as port, pytest.raises(DriverTimeout):
        sqc(port).force_final()


# ---------------------------------------------------------------------------------- RunState


@pytest.mark.parametrize(
    ("phase", "running", "fault", "stopped", "description"),
    [
        (0, False, False, True, "stopped"),
        (1, True, False, False, "crystal verify"),
        (13, True, False, False, "deposit"),
        (22, True, False, False, "idle ramp"),
        (25, True, False, False, "stop layer"),
        (24, False, True, False, "crystal fail"),
        (27, False, True, False, "sensor feedback time-out"),
        (28, False, True, False, "source feedback time-out"),
        (29, False, True, False, "invalid crystal position"),
        (30, False, True, False, "invalid pocket position"),
        (33, False, True, False, "crystal fail, halted"),
        (99, True, False, False, "unknown phase 99"),
    ],
)
def test_run_state_properties(
    phase: int, running: bool, fault: bool, stopped: bool, description: str
) -> None:
    state = RunState(phase, 1.0, 1, 1)
    assert (state.running, state.fault, state.stopped) == (running, fault, stopped)
    assert state.description == description


# ---------------------------------------------------------------------------------- deposit()


def _setup(layer: int = 1, film: int = 3, angstrom: int = 50) -> list[Pair]:
    return [
        v(0),
        (cmd("U32"), ok()),
        (cmd(f"D{layer} 7,{film}"), ok()),
        (cmd(f"D{layer} 2,{angstrom}"), ok()),
        (cmd("U0"), ok()),
    ]


def test_deposit_happy_path() -> None:
    pairs = [
        *_setup(),
        v(1, 0),
        v(7, 1),
        v(13, 20),
        v(22, 60),
        v(0, 61),
        (cmd("N1"), ok("0.051")),
    ]
    sleeps: list[float] = []
    with expected_protocol(pairs) as port:
        result = sqc(port).deposit(1, 3, 5.0, timeout_s=600, poll_s=0.5, sleep=sleeps.append)
    assert result == pytest.approx(5.1)
    assert sleeps == [0.5] * 4


def test_deposit_other_layer_and_rounding() -> None:
    pairs = [*_setup(layer=2, film=12, angstrom=123), v(13), v(0), (cmd("N1"), ok("0.012"))]
    with expected_protocol(pairs) as port:
        assert sqc(port).deposit(2, 12, 12.34, timeout_s=60, sleep=lambda s: None) == 1.2


@pytest.mark.parametrize("phase", [24, 27, 28, 29, 30, 33])
def test_deposit_fault_phase_stops_and_raises(phase: int) -> None:
    pairs = [*_setup(), v(13, 5), v(phase, 9, 1, 1), (cmd("U1"), ok())]
    with expected_protocol(pairs) as port, pytest.raises(DepositionFault) as info:
        sqc(port, name="evap").deposit(1, 3, 5.0, timeout_s=60, sleep=lambda s: None)
    err = info.value
    assert err.code == str(phase)
    assert err.state == RunState(phase, 9.0, 1, 1)
    assert err.state.description in str(err)
    assert "did not reach its thickness" in str(err)


def test_deposit_fault_still_raises_when_stop_fails() -> None:
    pairs = [*_setup(), v(24), *[(cmd("U1"), b"")] * 3]
    with expected_protocol(pairs) as port, pytest.raises(DepositionFault) as info:
        sqc(port).deposit(1, 3, 5.0, timeout_s=60, sleep=lambda s: None)
    assert isinstance(info.value.__cause__, DriverTimeout)


def test_deposit_should_stop() -> None:
    asks = iter([False, True])
    pairs = [*_setup(), v(7), v(13), (cmd("U1"), ok())]
    with expected_protocol(pairs) as port, pytest.raises(DriverError, match="stopped") as info:
        sqc(port).deposit(
            1, 3, 5.0, timeout_s=60, sleep=lambda s: None, should_stop=lambda: next(asks)
        )
    assert type(info.value) is DriverError


def test_deposit_timeout_stops_and_raises() -> None:
    pairs = [*_setup(), v(13), (cmd("U1"), ok())]
    with expected_protocol(pairs) as port, pytest.raises(DriverTimeout, match="still running") as e:
        sqc(port).deposit(1, 3, 5.0, timeout_s=1e-9, sleep=lambda s: None)
    assert "process was stopped" in str(e.value)


def test_deposit_timeout_and_stop_fails() -> None:
    pairs = [*_setup(), v(13), *[(cmd("U1"), b"")] * 3]
    with expected_protocol(pairs) as port, pytest.raises(DriverTimeout, match="MAY still run"):
        sqc(port).deposit(1, 3, 5.0, timeout_s=1e-9, sleep=lambda s: None)


def test_deposit_refused_while_running() -> None:
    with expected_protocol([v(13, 5, 1, 2)]) as port, pytest.raises(Sqc310Error) as info:
        sqc(port).deposit(1, 3, 5.0, timeout_s=60)
    assert info.value.code == "E"
    assert "not stopped" in str(info.value)


def test_deposit_reset_during_run_stops_and_raises() -> None:
    pairs = [*_setup(), v(13), (cmd("V"), reply("B 0 0 1 1")), (cmd("U1"), ok())]
    with expected_protocol(pairs) as port, pytest.raises(Sqc310Error) as info:
        sqc(port).deposit(1, 3, 5.0, timeout_s=60, sleep=lambda s: None)
    assert info.value.code == "B"


def test_deposit_reset_before_it_is_not_a_failure() -> None:
    setup = _setup()
    setup[0] = (cmd("V"), reply("B 0 0 1 1"))
    pairs = [*setup, v(13), v(0), (cmd("N1"), ok("0.050"))]
    with expected_protocol(pairs) as port:
        assert sqc(port).deposit(1, 3, 5.0, timeout_s=60, sleep=lambda s: None) == 5.0


def test_deposit_refused_layer_change_sends_no_start() -> None:
    pairs = [v(0), (cmd("U32"), ok()), (cmd("D1 7,3"), reply("E"))]
    with expected_protocol(pairs) as port, pytest.raises(Sqc310Error) as info:
        sqc(port).deposit(1, 3, 5.0, timeout_s=60)
    assert info.value.code == "E"


# ---------------------------------------------------------------------------------- package contract, pty


def test_driver_common_contract() -> None:
    assert issubclass(Sqc310, Instrument)
    params = inspect.signature(Sqc310).parameters
    assert next(iter(params)) == "url"
    for kw in ("port", "name", "timeout", "baudrate", "limits", "retries"):
        assert params[kw].kind is inspect.Parameter.KEYWORD_ONLY, kw
    port = ScriptedPort([])
    with Sqc310(port=port, name="unit") as dev:
        assert dev.name == "unit"
        assert "unit" in repr(dev)
    assert port.closed
    for name, member in inspect.getmembers(Sqc310, inspect.isfunction):
        if not name.startswith("_"):
            assert member.__doc__, f"Sqc310.{name} has no docstring"
    for name in ("Sqc310", "Sqc310Error", "DepositionFault", "DepositionLimits", "RunState"):
        assert name in drivers.__all__
        assert getattr(drivers, name) is globals()[name]


def _split_packets(buf: bytearray) -> list[bytes]:
    out = []
    while len(buf) >= 2 and len(buf) >= buf[1] - 34 + 4:
        size = buf[1] - 34 + 4
        out.append(bytes(buf[:size]))
        del buf[:size]
    return out


class _FakeController:
    """Just enough SQC-310: V, U0/U1, N1; checks every command's CRC like the unit."""

    def __init__(self) -> None:
        self.phase = 0

    def __call__(self, packet: bytes) -> bytes:
        if packet[-2:] != _ref_crc(packet[1:-2]):
            return b""  # a bad CRC gets no answer here
        msg = packet[2:-2].decode()
        if msg == "V":
            return ok(f"{self.phase} 3 1 1")
        if msg == "U0":
            self.phase = 13
            return ok()
        if msg == "U1":
            self.phase = 0
            return ok()
        if msg == "N1":
            return ok("0.050")
        return reply("C")


def test_over_a_real_pty() -> None:
    fake = _FakeController()
    with PtyDevice(_split_packets, fake) as dev, Sqc310(dev.path, timeout=0.5) as unit:
        assert unit.transport.port.baudrate == 19200  # type: ignore[attr-defined]
        assert unit.run_state().stopped
        unit.start()
        assert unit.run_state() == RunState(13, 3.0, 1, 1)
        unit.stop()
        assert unit.thickness_nm() == 5.0
        with pytest.raises(Sqc310Error) as info:
            unit.identify()
        assert info.value.code == "C"
    assert dev.received[:2] == [cmd("V"), cmd("U0")]
