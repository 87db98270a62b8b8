"""GRBL 1.1h simulator conformance against grbl.md."""

from __future__ import annotations

import time

import pytest

from simulators.faults import FaultConfig
from simulators.grbl import BANNER, GrblSim
from simulators.world import SimulatedWorld

UNLOCK = b"[MSG:'$H'|'$X' to unlock]\r\n"


@pytest.fixture
def grbl(world: SimulatedWorld) -> GrblSim:
    sim = GrblSim(world)
    assert sim.on_connect() == BANNER.encode()
    return sim


def wait_idle(sim: GrblSim, timeout: float = 5.0) -> bytes:
    deadline = time.monotonic() + timeout
    report = b""
    while time.monotonic() < deadline:
        report = sim.feed(b"?")
        if report.startswith(b"<Idle"):
            return report
        time.sleep(0.005)
    raise AssertionError(f"not idle: {report!r}")


def test_banner_and_first_status(grbl: GrblSim) -> None:
    assert BANNER == "\r\nGrbl 1.1h ['$' for help]\r\n"
    assert grbl.feed(b"?") == b"<Idle|MPos:0.000,0.000,0.000|FS:0,0|WCO:0.000,0.000,0.000>\r\n"


def test_move_takes_simulated_time() -> None:
    world = SimulatedWorld(time_scale=100.0)
    sim = GrblSim(world)
    sim.on_connect()
    t0 = time.monotonic()
    assert sim.feed(b"G91 G1 X10 F500\n") == b"ok\r\n"  # 1.2 s sim = 12 ms real
    report = sim.feed(b"?")
    assert report.startswith(b"<Run|MPos:") and b"|FS:500,0" in report
    wait_idle(sim)
    assert 0.011 < time.monotonic() - t0 < 3.0
    assert sim.feed(b"?").startswith(b"<Idle|MPos:10.000,0.000,0.000|FS:0,0")


def test_feed_hold_and_resume(slow_world: SimulatedWorld) -> None:
    sim = GrblSim(slow_world)
    sim.on_connect()
    sim.feed(b"G1 X-10 F600\n")
    assert sim.feed(b"!") == b""
    held = sim.feed(b"?")
    assert held.startswith(b"<Hold:0|")
    time.sleep(0.02)
    assert sim.feed(b"?").split(b"|")[1] == held.split(b"|")[1]  # not moving
    sim.feed(b"~")
    assert sim.feed(b"?").startswith(b"<Run|")


def test_dwell_ok_after_motion() -> None:
    # A slow clock (2.4 s of simulated motion = 0.24 s real) keeps the "still moving" check
    # true even when the machine is busy.
    sim = GrblSim(SimulatedWorld(time_scale=10.0))
    sim.on_connect()
    assert sim.feed(b"G0 X-20\nG4 P0.01\nG0 X0\n") == b"ok\r\n"  # 2.4 s sim
    assert sim.poll() == b""
    time.sleep(0.01)
    out = b""
    deadline = time.monotonic() + 5
    while out.count(b"ok") < 2 and time.monotonic() < deadline:
        out += sim.poll()
        time.sleep(0.002)
    assert out == b"ok\r\nok\r\n"


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        (b"G1 X5\n", b"error:22\r\n"),
        (b"$H\n", b"error:5\r\n"),
        (b"\r\n", b"ok\r\nok\r\n"),
        (b"G59.1\n", b"error:29\r\n"),
        (b"G0 G1 X1\n", b"error:21\r\n"),
        (b"X1 X2\n", b"error:25\r\n"),
        (b"1\n", b"error:1\r\n"),
        (b"XA\n", b"error:2\r\n"),
        (b"G4\n", b"error:28\r\n"),
        (b"Q1\n", b"error:20\r\n"),
        (b"G2 X1 Y1 I1\n", b"error:20\r\n"),
        (b"$20=1\n", b"error:10\r\n"),
        (b"$10=-1\n", b"error:4\r\n"),
        (b"$999=1\n", b"error:3\r\n"),
        (b"$Q\n", b"error:3\r\n"),
        (b"$J G91 X1 F10\n", b"error:16\r\n"),
        (b"$J=G91 G1 X1 F10\n", b"error:16\r\n"),
        (b"G0 X1 P1\n", b"error:36\r\n"),
        (b"G92\n", b"error:26\r\n"),
        (b"X" + b"1" * 90 + b"\n", b"error:11\r\n"),
        (b"g0 x-1 (comment) ; more\n", b"ok\r\n"),
        (b"$X\n", b"ok\r\n"),
        (
            b"$\n",
            b"[HLP:$$ $# $G $I $N $x=val $Nx=line $J=line $SLP $C $X $H ~ ! ? ctrl-x]\r\nok\r\n",
        ),
        (b"$G\n", b"[GC:G0 G54 G17 G21 G90 G94 M5 M9 T0 F0 S0]\r\nok\r\n"),
        (b"$I\n", b"[VER:1.1h.20190830:]\r\n[OPT:VL,15,128]\r\nok\r\n"),
    ],
)
def test_responses(grbl: GrblSim, line: bytes, reply: bytes) -> None:
    assert grbl.feed(line) == reply


def test_settings_dump(grbl: GrblSim) -> None:
    out = grbl.feed(b"$$\n").decode()
    lines = out.split("\r\n")
    assert lines[0] == "$0=10" and "$11=0.010" in lines and "$132=200.000" in lines
    assert out.endswith("$132=200.000\r\nok\r\n")
    assert grbl.feed(b"$110=1000\n") == b"ok\r\n"
    assert "$110=1000.000" in grbl.feed(b"$$\n").decode()


def test_soft_limit_alarm_sequence(world: SimulatedWorld) -> None:
    sim = GrblSim(world, settings={22: 1})
    assert sim.on_connect() == BANNER.encode() + UNLOCK
    assert sim.feed(b"G0 X-1\n") == b"error:9\r\n"
    assert sim.feed(b"$20=1\n") == b"ok\r\n"
    assert sim.feed(b"$H\n") == b"ok\r\n"  # already at machine zero
    assert sim.feed(b"G0 X9999\n") == b"ALARM:2\r\n[MSG:Reset to continue]\r\n"
    assert sim.feed(b"?") == b""  # ignored until Ctrl-X
    assert sim.feed(b"G0 X0\n") == b""
    assert sim.feed(b"\x18") == BANNER.encode() + UNLOCK
    assert sim.feed(b"G0 X0\n") == b"error:9\r\n"
    assert sim.feed(b"$X\n") == b"[MSG:Caution: Unlocked]\r\nok\r\n"
    assert sim.feed(b"$J=G91 X5 F100\n") == b"error:15\r\n"  # positive space: past travel
    assert sim.feed(b"G0 X-5\n") == b"ok\r\n"
    assert sim.feed(b"?").startswith(b"<Run|")


def test_homing_takes_time(world: SimulatedWorld) -> None:
    sim = GrblSim(world, settings={22: 1})
    sim.on_connect()
    sim.feed(b"$X\n")
    sim.feed(b"G0 X-100\n")
    wait_idle(sim)
    assert sim.feed(b"$H\n") == b""
    assert sim.feed(b"?") == b""  # status ignored while homing
    deadline = time.monotonic() + 2
    out = b""
    while not out and time.monotonic() < deadline:
        out = sim.poll()
    assert out == b"ok\r\n"
    assert sim.feed(b"?").startswith(b"<Idle|MPos:0.000,0.000,0.000")


def test_reset_during_motion_raises_alarm3(slow_world: SimulatedWorld) -> None:
    sim = GrblSim(slow_world)
    sim.on_connect()
    sim.feed(b"G0 X-50\n")
    assert sim.feed(b"\x18") == b"ALARM:3\r\n" + BANNER.encode() + UNLOCK


def test_feed_hold_then_reset_abandons_the_move_and_keeps_the_position(
    slow_world: SimulatedWorld,
) -> None:
    """The sheet's way to abandon a move: ``!``, then once held (``Hold:0``, not moving) Ctrl-X:
    no ALARM:3, the position kept, Idle and ready for the next line."""
    sim = GrblSim(slow_world)
    sim.on_connect()
    assert sim.feed(b"G1 X-50 F600\nG1 X-60\n") == b"ok\r\nok\r\n"  # 6 s in real time
    time.sleep(0.02)
    assert sim.feed(b"!") == b""
    held = sim.feed(b"?")
    assert held.startswith(b"<Hold:0|MPos:-")
    assert sim.feed(b"\x18") == BANNER.encode()  # no alarm, no unlock message
    idle = sim.feed(b"?")
    assert idle.startswith(b"<Idle|") and idle.split(b"|")[1] == held.split(b"|")[1]
    assert sim.feed(b"G1 X-1 F6000\n") == b"ok\r\n"  # both queued moves were dropped
    assert sim.feed(b"?").startswith(b"<Run|")
    wait_idle(sim)
    assert sim.feed(b"?").startswith(b"<Idle|MPos:-1.000,0.000,0.000|")


def test_work_coordinates(world: SimulatedWorld) -> None:
    sim = GrblSim(world)
    sim.on_connect()
    assert sim.feed(b"G10 L2 P1 X-10 Y-20\n") == b"ok\r\n"
    assert sim.feed(b"G0 X1 Y1\n") == b"ok\r\n"
    wait_idle(sim)
    assert b"MPos:-9.000,-19.000,0.000" in sim.feed(b"?")
    assert b"[G54:-10.000,-20.000,0.000]" in sim.feed(b"$#\n")
    sim.feed(b"$10=0\n")
    assert b"WPos:1.000,1.000,0.000" in sim.feed(b"?")


def test_check_mode(grbl: GrblSim) -> None:
    assert grbl.feed(b"$C\n") == b"[MSG:Enabled]\r\nok\r\n"
    assert grbl.feed(b"G0 X-10\n") == b"ok\r\n"
    assert grbl.feed(b"?").startswith(b"<Check|MPos:0.000,0.000,0.000")
    assert grbl.feed(b"$C\n") == b"[MSG:Disabled]\r\nok\r\n" + BANNER.encode()


def test_jog_and_cancel(slow_world: SimulatedWorld) -> None:
    sim = GrblSim(slow_world)
    sim.on_connect()
    assert sim.feed(b"$J=G91 X-10 F60\n") == b"ok\r\n"
    assert sim.feed(b"?").startswith(b"<Jog|")
    assert sim.feed(b"G0 X0\n") == b"error:9\r\n"
    sim.feed(b"\x85")
    assert sim.feed(b"?").startswith(b"<Idle|")


def test_sleep(grbl: GrblSim) -> None:
    assert grbl.feed(b"$SLP\n") == b"ok\r\n[MSG:Sleeping]\r\n"
    assert grbl.feed(b"G0 X1\n") == b""
    assert grbl.feed(b"\x18") == BANNER.encode() + UNLOCK


def test_busy_fault_is_hard_limit(world: SimulatedWorld) -> None:
    sim = GrblSim(world, faults=FaultConfig(rate=1.0, kinds=("busy",)))
    sim.on_connect()
    assert sim.feed(b"G0 X-1\n") == b"ALARM:1\r\n[MSG:Reset to continue]\r\n"
