"""GRBL driver: byte-exact exchanges, push messages, errors, alarms, limits, a pty round trip."""

from __future__ import annotations

import time

import pytest
from fakedev import PtyDevice
from scripted import ScriptedPort, expected_protocol

from drivers.errors import DriverError, DriverTimeout, GarbledReply, SafetyLimitError
from drivers.grbl import Grbl, GrblAlarm, GrblError, GrblStatus, TravelLimits

BANNER = b"\r\nGrbl 1.1h ['$' for help]\r\n"
OK = b"ok\r\n"
IDLE0 = b"<Idle|MPos:0.000,0.000,0.000|FS:0,0|WCO:0.000,0.000,0.000>\r\n"


def grbl(port: ScriptedPort, **kw: object) -> Grbl:
    kw.setdefault("timeout", 0.05)
    return Grbl(port=port, **kw)  # type: ignore[arg-type]


def report(state: str, pos: str = "0.000,0.000,0.000", extra: str = "") -> bytes:
    return f"<{state}|MPos:{pos}{extra}>\r\n".encode()


# ---------------------------------------------------------------- lines and push messages


def test_banner_is_skipped_and_kept() -> None:
    with expected_protocol([(b"", BANNER), (b"G90 G1 X10 F500\n", OK)]) as port:
        g = grbl(port)
        g.move_to(x=10, feed=500)
        assert g.banner == "Grbl 1.1h ['$' for help]"


def test_move_to_all_axes() -> None:
    with expected_protocol([(b"G90 G1 X1.5 Y-2 Z0.001 F1200.5\n", OK)]) as port:
        grbl(port).move_to(1.5, -2, 0.001, feed=1200.5)


def test_unlock_returns_feedback() -> None:
    with expected_protocol([(b"$X\n", b"[MSG:Caution: Unlocked]\r\nok\r\n")]) as port:
        g = grbl(port)
        assert g.unlock() == ["[MSG:Caution: Unlocked]"]
        assert g.messages == ["[MSG:Caution: Unlocked]"]


def test_send_line_collects_data_lines() -> None:
    reply = b"$0=10\r\n$1=25\r\n>G54:ok\r\n<Idle|MPos:0,0,0>\r\nok\r\n"
    with expected_protocol([(b"$$\n", reply)]) as port:
        assert grbl(port).send_line("$$") == ["$0=10", "$1=25"]


def test_home() -> None:
    with expected_protocol([(b"$H\n", OK)]) as port:
        grbl(port).home()


@pytest.mark.parametrize("n", [5, 9, 13, 22, 99])
def test_error_replies(n: int) -> None:
    pairs = [(b"$H\n", f"error:{n}\r\n".encode())]
    with expected_protocol(pairs) as port, pytest.raises(GrblError) as info:
        grbl(port).home()
    assert (info.value.code, info.value.error) == (str(n), n)


@pytest.mark.parametrize("n", [6, 7, 8, 9])
def test_homing_alarm(n: int) -> None:
    pairs = [(b"$H\n", f"ALARM:{n}\r\n".encode())]
    with expected_protocol(pairs) as port, pytest.raises(GrblAlarm, match="homing fail") as info:
        grbl(port).home()
    assert info.value.alarm == n and info.value.code == f"ALARM:{n}"


def test_alarm_during_move_is_raised_and_not_retried() -> None:
    pairs = [(b"G90 G1 X150 F500\n", b"ALARM:2\r\n[MSG:Reset to continue]\r\n")]
    with expected_protocol(pairs) as port:
        g = grbl(port)
        with pytest.raises(GrblAlarm, match="soft limit"):
            g.move_to(x=150, feed=500)
        assert g.last_alarm == 2


def test_malformed_error_and_alarm() -> None:
    pairs = [(b"$X\n", b"error:x\r\n"), (b"$X\n", b"ALARM:y\r\n")]
    with expected_protocol(pairs) as port:
        g = grbl(port)
        with pytest.raises(GarbledReply):
            g.unlock()
        with pytest.raises(GrblAlarm):
            g.unlock()


def test_non_ascii_line() -> None:
    with expected_protocol([(b"$X\n", b"\xffok\r\n")]) as port, pytest.raises(GarbledReply):
        grbl(port).unlock()


def test_line_timeout_not_retried_and_resyncs() -> None:
    pairs = [(b"G90 G1 X1 F100\n", b""), (b"$X\n", OK)]
    with expected_protocol(pairs) as port:
        g = grbl(port)
        start = time.monotonic()
        with pytest.raises(DriverTimeout):
            g.move_to(x=1, feed=100)
        assert time.monotonic() - start < 0.2
        g.unlock()
        assert port.resets == 1


def test_truncated_line() -> None:
    with expected_protocol([(b"$X\n", b"o")]) as port, pytest.raises(GarbledReply):
        grbl(port).unlock()


@pytest.mark.parametrize("line", ["G0 X1?", "G0\nX1", "G0 X1!", "~", "\x18", "G1" + "0" * 79, "é"])
def test_send_line_refuses_bad_lines(line: str) -> None:
    port = ScriptedPort([])
    with pytest.raises(ValueError):
        grbl(port).send_line(line)
    assert port.written == b""


# ---------------------------------------------------------------- status


def test_status_idle() -> None:
    with expected_protocol([(b"?", IDLE0)]) as port:
        st = grbl(port).status()
    assert st == GrblStatus(
        "Idle",
        None,
        (0.0, 0.0, 0.0),
        (0.0, 0.0, 0.0),
        0.0,
        0.0,
        {"MPos": "0.000,0.000,0.000", "FS": "0,0", "WCO": "0.000,0.000,0.000"},
        IDLE0.decode().strip(),
    )


def test_status_fields() -> None:
    pairs = [
        (b"?", b"<Hold:1|MPos:1.000,2.000,3.000|F:500|Bf:15,128|Pn:XZ>\r\n"),
        (b"?", b"<Run|MPos:12.000,2.000,0.000|FS:500,0|WCO:10.000,0.000,0.000>\r\n"),
        (b"?", b"<Door:2|WPos:1.000,1.000,1.000|FS:0,0>\r\n"),
    ]
    with expected_protocol(pairs) as port:
        g = grbl(port)
        st = g.status()
        assert (st.state, st.substate, st.mpos, st.feed, st.spindle) == (
            "Hold",
            1,
            (1.0, 2.0, 3.0),
            500.0,
            None,
        )
        assert st.fields["Pn"] == "XZ"
        st = g.status()
        assert st.wpos == (2.0, 2.0, 0.0)
        st = g.status()  # WPos only: MPos from the last WCO
        assert (st.state, st.substate, st.mpos) == ("Door", 2, (11.0, 1.0, 1.0))


def test_status_skips_push_messages() -> None:
    pairs = [(b"?", b"[MSG:Caution: Unlocked]\r\nok\r\nstray\r\n" + IDLE0)]
    with expected_protocol(pairs) as port:
        assert grbl(port).status().state == "Idle"


@pytest.mark.parametrize(
    "reply",
    [
        b"<Foo|MPos:0,0,0>\r\n",
        b"<Idle|MPos:1,2>\r\n",
        b"<Idle>\r\n",
        b"<Idle|MPos:0,0,0|FS:1>\r\n",
        b"<Idle|MPos:0,0,0|junk>\r\n",
        b"<Idle|MPos:a,0,0>\r\n",
        b"<Idle|MPos:0,0,0\r\n",
    ],
)
def test_status_garbled_is_retried_then_raises(reply: bytes) -> None:
    with expected_protocol([(b"?", reply)] * 2) as port, pytest.raises(GarbledReply):
        grbl(port).status()


def test_status_timeout_retried_within_time() -> None:
    with expected_protocol([(b"?", b"")] * 2) as port, pytest.raises(DriverTimeout):
        start = time.monotonic()
        grbl(port).status()
    assert time.monotonic() - start < 0.3


def test_status_in_critical_alarm() -> None:
    pairs = [(b"?", b"ALARM:1\r\n[MSG:Reset to continue]\r\n")]
    with expected_protocol(pairs) as port, pytest.raises(GrblAlarm, match="hard limit"):
        grbl(port).status()


def test_wait_idle() -> None:
    pairs = [(b"?", report("Run")), (b"?", report("Hold:0")), (b"?", IDLE0)]
    with expected_protocol(pairs) as port:
        assert grbl(port).wait_idle(5.0, poll_s=0.0).state == "Idle"


def test_wait_idle_alarm() -> None:
    with expected_protocol([(b"?", report("Alarm"))]) as port, pytest.raises(GrblAlarm):
        grbl(port).wait_idle(5.0)


def test_wait_idle_times_out() -> None:
    with expected_protocol([(b"?", report("Run"))]) as port, pytest.raises(DriverTimeout):
        grbl(port).wait_idle(0.0)


# ---------------------------------------------------------------- motion and limits


def test_move_by() -> None:
    pairs = [(b"?", report("Idle", "10.000,0.000,0.000")), (b"G91 G1 X5 Y-2.5 F300\n", OK)]
    with expected_protocol(pairs) as port:
        grbl(port).move_by(5, -2.5, feed=300)


def test_move_by_nothing() -> None:
    with expected_protocol([]) as port:
        grbl(port).move_by(feed=100)


def test_move_by_beyond_travel_sends_no_move() -> None:
    with expected_protocol([(b"?", report("Idle", "195.000,0.000,0.000"))]) as port:
        with pytest.raises(SafetyLimitError):
            grbl(port).move_by(dx=10, feed=100)
        assert port.written == b"?"


def test_move_by_needs_idle() -> None:
    with expected_protocol([(b"?", report("Run"))]) as port, pytest.raises(DriverError):
        grbl(port).move_by(dx=1, feed=100)


def test_move_to_uses_last_wco() -> None:
    pairs = [(b"?", b"<Idle|MPos:10.000,0.000,0.000|WCO:10.000,0.000,0.000>\r\n")]
    with expected_protocol(pairs) as port:
        g = grbl(port)
        g.status()
        with pytest.raises(SafetyLimitError):
            g.move_to(x=195, feed=100)
        assert port.written == b"?"


@pytest.mark.parametrize(
    ("limits", "call"),
    [
        (TravelLimits(), lambda g: g.move_to(x=201, feed=100)),
        (TravelLimits(), lambda g: g.move_to(y=-200.1, feed=100)),
        (TravelLimits(z=(-50, 0)), lambda g: g.move_to(0, 0, 1, feed=100)),
        (TravelLimits(), lambda g: g.move_to(x=float("nan"), feed=100)),
        (TravelLimits(), lambda g: g.move_to(x=1, feed=0)),
        (TravelLimits(), lambda g: g.move_to(x=1, feed=-5)),
        (TravelLimits(max_feed_mm_min=1000), lambda g: g.move_to(x=1, feed=1001)),
        (TravelLimits(max_feed_mm_min=1000), lambda g: g.move_by(dx=1, feed=2000)),
        (TravelLimits(), lambda g: g.move_by(dx=float("inf"), feed=10)),
    ],
)
def test_limits_refuse_before_any_byte(limits: TravelLimits, call: object) -> None:
    port = ScriptedPort([])
    with pytest.raises(SafetyLimitError):
        call(grbl(port, limits=limits))  # type: ignore[operator]
    assert port.written == b""


def test_move_to_needs_an_axis() -> None:
    with pytest.raises(ValueError):
        grbl(ScriptedPort([])).move_to(feed=100)


# ---------------------------------------------------------------- real-time commands


def test_feed_hold_resume_soft_reset() -> None:
    pairs = [
        (b"!", b""),
        (b"~", b""),
        (b"\x18", b"ALARM:3\r\n" + BANNER + b"[MSG:'$H'|'$X' to unlock]\r\n"),
    ]
    with expected_protocol(pairs) as port:
        g = grbl(port)
        g.feed_hold()
        g.resume()
        assert g.soft_reset() == "Grbl 1.1h ['$' for help]"
        assert g.last_alarm == 3


def test_cancel_motion_holds_waits_for_the_hold_then_resets() -> None:
    pairs = [
        (b"!", b""),
        (b"?", report("Run", "-5.000,0.000,0.000")),
        (b"?", report("Hold:1", "-6.000,0.000,0.000")),  # decelerating
        (b"?", report("Hold:0", "-6.500,0.000,0.000")),  # stopped: now the reset is safe
        (b"\x18", BANNER),
        (b"?", report("Idle", "-6.500,0.000,0.000")),
    ]
    with expected_protocol(pairs) as port:
        st = grbl(port).cancel_motion(poll_s=0.001)
    assert (st.state, st.mpos) == ("Idle", (-6.5, 0.0, 0.0))


@pytest.mark.parametrize("state", ["Idle", "Alarm"])
def test_cancel_motion_sends_no_reset_when_nothing_moves(state: str) -> None:
    """A jog cancelled by the hold is Idle; nothing moves in Alarm, which stays locked."""
    pairs = [(b"!", b""), (b"?", report(state))]
    with expected_protocol(pairs) as port:
        if state == "Alarm":
            with pytest.raises(GrblAlarm, match="unlock"):
                grbl(port).cancel_motion()
        else:
            assert grbl(port).cancel_motion().state == "Idle"


def test_cancel_motion_reports_an_alarm_raised_by_the_reset() -> None:
    pairs = [
        (b"!", b""),
        (b"?", report("Run")),  # the hold never completes (a stuck axis, a wrong report)
        (b"\x18", b"ALARM:3\r\n" + BANNER + b"[MSG:'$H'|'$X' to unlock]\r\n"),
        (b"?", report("Alarm")),
    ]
    with expected_protocol(pairs) as port, pytest.raises(GrblAlarm, match="ALARM:3") as info:
        grbl(port).cancel_motion(timeout=0.0)
    assert info.value.alarm == 3


def test_soft_reset_without_banner() -> None:
    with expected_protocol([(b"\x18", b"")]) as port, pytest.raises(DriverTimeout):
        grbl(port).soft_reset(timeout=0.05)


# ---------------------------------------------------------------- real pty


def _grbl_split(buf: bytearray) -> list[bytes]:
    out = []
    while buf:
        if buf[0:1] in (b"?", b"!", b"~", b"\x18"):
            out.append(bytes(buf[0:1]))
            del buf[0:1]
        elif (idx := buf.find(b"\n")) >= 0:
            out.append(bytes(buf[: idx + 1]))
            del buf[: idx + 1]
        else:
            break
    return out


class _FakeGrbl:
    """Banner on reset, $X, G90/G91 G1 moves that finish after two status polls."""

    def __init__(self) -> None:
        self.pos = [0.0, 0.0, 0.0]
        self.polls_left = 0
        self.state = "Alarm"

    def __call__(self, msg: bytes) -> bytes:
        if msg == b"\x18":
            return BANNER + b"[MSG:'$H'|'$X' to unlock]\r\n"
        if msg == b"?":
            if self.polls_left:
                self.polls_left -= 1
                state = "Run"
            else:
                state = self.state
            pos = ",".join(f"{p:.3f}" for p in self.pos)
            return f"<{state}|MPos:{pos}|FS:0,0>\r\n".encode()
        line = msg.decode().strip()
        if line == "$X":
            self.state = "Idle"
            return b"[MSG:Caution: Unlocked]\r\nok\r\n"
        words = line.split()
        if words[:2] in (["G90", "G1"], ["G91", "G1"]):
            for w in words[2:]:
                if w[0] in "XYZ":
                    i = "XYZ".index(w[0])
                    self.pos[i] = float(w[1:]) + (self.pos[i] if words[0] == "G91" else 0.0)
            self.polls_left = 2
            return OK
        return b"error:20\r\n"


def test_over_a_real_pty() -> None:
    fake = _FakeGrbl()
    with PtyDevice(_grbl_split, fake) as dev, Grbl(dev.path, timeout=0.5) as g:
        assert g.soft_reset().startswith("Grbl 1.1")
        assert g.status().state == "Alarm"
        g.unlock()
        g.move_to(10, 20, -5, feed=1000)
        assert g.wait_idle(5.0, poll_s=0.001).mpos == (10.0, 20.0, -5.0)
        g.move_by(dx=-2.5, feed=1000)
        assert g.wait_idle(5.0, poll_s=0.001).mpos == (7.5, 20.0, -5.0)
        with pytest.raises(GrblError):
            g.send_line("G59.1")
    assert b"G90 G1 X10 Y20 Z-5 F1000\n" in dev.received
