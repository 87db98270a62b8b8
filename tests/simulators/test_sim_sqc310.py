"""INFICON SQC-310 simulator conformance against sqc-310.md, and the world's deposit record."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import serial
import yaml

from simulators.faults import Disconnect, FaultConfig
from simulators.sqc310 import (
    SAUERBREY_HZ_CM2_PER_G,
    Sqc310Sim,
    command_packet,
    crc14,
    crc_bytes,
    parse_reply,
    reply_packet,
)
from simulators.transport import PtyServer
from simulators.workcell import SIMULATORS, TCP_KINDS, SimulatedWorkcell
from simulators.world import SimulatedWorld


class ClockWorld(SimulatedWorld):
    """A world whose simulated time is set by the test (``world.now``)."""

    def __init__(self, **kwargs: object) -> None:
        self.now = 0.0
        super().__init__(**kwargs)  # type: ignore[arg-type]

    def sim_time(self) -> float:
        return self.now


def ask(sim: Sqc310Sim, msg: str) -> tuple[str, str]:
    """Send one command packet, parse the one reply packet."""
    return parse_reply(sim.feed(command_packet(msg)))


def powered(sim: Sqc310Sim) -> Sqc310Sim:
    """Consume the power-up ``B`` status."""
    assert ask(sim, "@")[0] == "B"
    return sim


def run_until(world: ClockWorld, sim: Sqc310Sim, end: float, step: float = 0.5) -> list[int]:
    """Advance the clock to ``end`` in steps, polling ``V``; the distinct phases seen."""
    seen: list[int] = []
    while world.now < end:
        world.now = min(end, world.now + step)
        phase = int(ask(sim, "V")[1].split()[0])
        if not seen or seen[-1] != phase:
            seen.append(phase)
    return seen


@pytest.fixture
def clock() -> ClockWorld:
    return ClockWorld(seed=1)


@pytest.fixture
def qcm(clock: ClockWorld) -> Sqc310Sim:
    return powered(Sqc310Sim(clock, films={1: "LiF", 2: "Li3N"}))


# -- framing ---------------------------------------------------------------------------------
def test_golden_packets() -> None:
    assert command_packet("M1") == b"!$M1\\q"
    assert command_packet("N1") == b"!$N1]Q"
    assert command_packet("O1") == b"!$O1" + bytes([103, 146])
    assert reply_packet("A", "0.00") == b"!)A 0.00" + bytes([87, 100])
    assert reply_packet("A", "0.000") == b"!*A 0.000" + bytes([90, 92])
    assert crc_bytes(b"$M1") == b"\\q"
    assert 0 <= crc14(b"anything") <= 0x3FFF
    assert parse_reply(b"!)A 0.00" + bytes([87, 100])) == ("A", "0.00")
    with pytest.raises(ValueError):
        parse_reply(b"!)A 0.01" + bytes([87, 100]))


def test_sim_answers_golden_replies(qcm: Sqc310Sim) -> None:
    assert qcm.feed(b"!$M1\\q") == b"!)A 0.00" + bytes([87, 100])
    assert qcm.feed(b"!$N1]Q") == b"!*A 0.000" + bytes([90, 92])
    assert qcm.feed(b"!$O1" + bytes([103, 146])) == b"!*A 0.000" + bytes([90, 92])
    # An empty answer is the status alone (the manual's ``S`` set example: ``!$A`` 53 151).
    assert qcm.feed(command_packet("U1")) == reply_packet("A") == b"!$A" + bytes([53, 151])


def test_first_reply_is_b_until_a_good_answer(clock: ClockWorld) -> None:
    sim = Sqc310Sim(clock)
    assert ask(sim, "X") == ("C", "")  # a refusal keeps the reset pending
    assert ask(sim, "@") == ("B", "SQC-310 Ver 6.01")
    assert ask(sim, "@") == ("A", "SQC-310 Ver 6.01")
    sim.power_cycle()
    assert ask(sim, "V")[0] == "B"
    assert ask(sim, "V")[0] == "A"


def test_nul_crc_is_not_checked(qcm: Sqc310Sim) -> None:
    assert parse_reply(qcm.feed(command_packet("V", crc=False))) == ("A", "0 0 1 1")


def test_wrong_crc_gets_no_reply(qcm: Sqc310Sim) -> None:
    bad = bytearray(command_packet("U0"))
    bad[-1] ^= 0x01
    assert qcm.feed(bytes(bad)) == b""
    assert qcm.crc_errors == 1
    assert qcm.phase == 0  # not carried out
    assert ask(qcm, "V") == ("A", "0 0 1 1")


def test_chunks_stray_bytes_and_resync(qcm: Sqc310Sim) -> None:
    packet = command_packet("@")
    out = b"".join(qcm.feed(bytes([b])) for b in b"\r\nxx" + packet)
    assert parse_reply(out) == ("A", "SQC-310 Ver 6.01")
    # A truncated command is dropped by the next sync character; the next one is answered.
    truncated = command_packet("D1 2,50")[:5]
    assert parse_reply(qcm.feed(truncated + command_packet("V"))) == ("A", "0 0 1 1")
    assert ask(qcm, "D1? 2") == ("A", "2,0")
    two = qcm.feed(command_packet("@") + command_packet("C1? 1"))
    first_len = two[1] - 35 + 4
    assert parse_reply(two[:first_len]) == ("A", "SQC-310 Ver 6.01")
    assert parse_reply(two[first_len:]) == ("A", "Interlayer")


# -- commands --------------------------------------------------------------------------------
def test_film_and_process_queries(qcm: Sqc310Sim) -> None:
    assert ask(qcm, "A1 1?") == ("A", "LiF")
    assert ask(qcm, "A1 2?") == ("A", "Li3N")
    assert ask(qcm, "A2 1? 4 6") == ("A", "4,12 6,100")
    assert ask(qcm, "A2 2? 6") == ("A", "6,100")
    assert ask(qcm, "A2 2? 6 4") == ("A", "6,100 4,11")
    assert ask(qcm, "C1? 1") == ("A", "Interlayer")
    for refused, status in [
        ("A1 3?", "D"),  # film not set up
        ("A1 100?", "D"),
        ("A2 1? 5", "D"),  # parameter not simulated
        ("A2 1?", "D"),  # no parameter asked
        ("A1 1", "D"),  # set form
        ("A3 1?", "C"),
        ("C2? 1", "D"),
        ("C1? 2", "D"),
        ("C1?", "D"),
    ]:
        assert ask(qcm, refused) == (status, ""), refused


def test_layer_get_and_set(qcm: Sqc310Sim) -> None:
    assert ask(qcm, "D1? 2 7") == ("A", "2,0 7,1")
    assert ask(qcm, "D1 2,50") == ("A", "")
    assert ask(qcm, "D 1? 7 2") == ("A", "7,1 2,50")
    assert ask(qcm, "D1 7,2") == ("A", "")
    assert ask(qcm, "D1? 7") == ("A", "7,2")
    assert ask(qcm, "D 1 2,120 7,1") == ("A", "")
    assert ask(qcm, "D1? 2 7") == ("A", "2,120 7,1")
    for refused in [
        "D1 2,-1",
        "D1 2,1000000",
        "D1 2,1.5",
        "D1 2,abc",
        "D1 7,3",  # film not set up
        "D1 9,1",
        "D2? 2",  # one layer only
        "D2 2,10",
        "D1? 3",
        "D1?",
        "D1 2,10 7,9",  # all or nothing
    ]:
        assert ask(qcm, refused) == ("D", ""), refused
    assert ask(qcm, "D1? 2 7") == ("A", "2,120 7,1")
    assert ask(qcm, "D1 2,999999") == ("A", "")


def test_unknown_and_malformed(qcm: Sqc310Sim) -> None:
    for msg, status in [
        ("X", "C"),
        ("u0", "C"),
        ("U7", "C"),
        ("T1", "C"),
        ("V 1", "D"),
        ("@1", "D"),
        ("L", "D"),
        ("L5", "D"),
        ("M0", "D"),
        ("Px", "D"),
        ("U0 1", "D"),
    ]:
        assert ask(qcm, msg) == (status, ""), msg
    assert parse_reply(qcm.feed(command_packet(b"\xffV"))) == ("C", "")
    assert parse_reply(qcm.feed(command_packet(b""))) == ("C", "")
    assert ask(qcm, "L 1") == ("A", "0.00")
    assert ask(qcm, "L2") == ("A", "0.00")
    assert ask(qcm, "N4") == ("A", "0.000")
    assert ask(qcm, "P2") == ("A", "0.00")
    assert 5.99e6 < float(ask(qcm, "P1")[1]) < 6.0e6


def test_power_get_and_set(qcm: Sqc310Sim) -> None:
    assert ask(qcm, "S1?") == ("A", "0")
    assert ask(qcm, "S1 500") == ("A", "")
    assert ask(qcm, "S1?") == ("A", "500")
    assert ask(qcm, "S? 1") == ("A", "500")
    assert ask(qcm, "S2?") == ("A", "0")  # put in manual at its current power
    assert qcm.manual_power[2] == 0.0
    assert ask(qcm, "S0") == ("A", "")
    assert qcm.manual_power == dict.fromkeys(range(1, 5))
    for refused in ["S1 1001", "S1 -1", "S5?", "S0?", "S1 x", "S"]:
        assert ask(qcm, refused) == ("D", ""), refused


# -- runs ------------------------------------------------------------------------------------
def test_full_deposit_run(clock: ClockWorld, qcm: Sqc310Sim) -> None:
    assert ask(qcm, "D1 2,50") == ("A", "")
    assert ask(qcm, "U0") == ("A", "")
    assert ask(qcm, "U0") == ("E", "")
    assert ask(qcm, "D1 2,60") == ("E", "")
    assert ask(qcm, "D1 7,2") == ("E", "")
    phases = run_until(clock, qcm, 40.0)
    assert phases == [1, 2, 7, 8, 9, 10, 12, 13]
    assert 0.85 < float(ask(qcm, "L1")[1]) < 1.15
    assert float(ask(qcm, "M1")[1]) == float(ask(qcm, "L1")[1])
    assert 0.013 <= float(ask(qcm, "N1")[1]) <= 0.019
    assert int(ask(qcm, "S1?")[1]) > 300
    assert ask(qcm, "V")[1].split()[1:] == ["16", "1", "1"]
    phases = run_until(clock, qcm, 90.0)
    assert phases == [13, 22, 0]
    log = dict((phase, t) for t, phase in qcm.phase_log)
    assert log[7] == 2.0 and log[12] == 22.0 and log[13] == 24.0
    assert 72.0 < log[22] < 76.0 and log[0] == pytest.approx(log[22] + 2.0)
    assert ask(qcm, "N1") == ("A", "0.050")
    assert ask(qcm, "O1") == ("A", "0.050")
    assert ask(qcm, "L1") == ("A", "0.00")
    assert ask(qcm, "S1?") == ("A", "0")
    sample = clock.current_sample()
    assert sample.layers == [("LiF", pytest.approx(5.0))]
    assert sample.params["modifier"] == "LiF"
    assert sample.params["thickness_nm"] == pytest.approx(5.0)
    assert ask(qcm, "U5") == ("E", "")  # nothing running
    assert ask(qcm, "U32") == ("A", "")
    assert ask(qcm, "N1") == ("A", "0.000")


def test_tooling_error_lands_on_the_sample(clock: ClockWorld) -> None:
    sim = powered(Sqc310Sim(clock, films={1: "LiF", 2: "Li3N"}, tooling_error={"LiF": 0.2}))
    ask(sim, "D1 2,50")
    ask(sim, "U0")
    run_until(clock, sim, 90.0, step=5.0)
    assert ask(sim, "N1") == ("A", "0.050")  # the read-back looks right
    assert ask(sim, "A2 1? 6") == ("A", "6,100")
    assert clock.current_sample().params["thickness_nm"] == pytest.approx(6.0)
    ask(sim, "D1 7,2")  # Li3N has no tooling error
    ask(sim, "U0")
    run_until(clock, sim, 180.0, step=5.0)
    assert clock.current_sample().params["contact_thickness_nm"] == pytest.approx(5.0)


def test_set_tooling_scales_reading_and_substrate_alike(clock: ClockWorld) -> None:
    sim = powered(Sqc310Sim(clock, tooling_pct={1: 50}, rates_a_s={"LiF": 2.0}))
    assert ask(sim, "A2 1? 6 4") == ("A", "6,50 4,12")
    ask(sim, "D1 2,100")
    ask(sim, "U0")
    run_until(clock, sim, 90.0, step=5.0)
    assert clock.current_sample().params["thickness_nm"] == pytest.approx(10.0)
    assert sim.crystal_used_a == pytest.approx(200.0)  # the crystal sees twice the substrate
    deposit = next(t for t, p in sim.phase_log if p == 22) - 24.0
    assert deposit == pytest.approx(50.0, abs=2.0)


def test_frequency_drops_with_mass(clock: ClockWorld) -> None:
    sim = powered(Sqc310Sim(clock, films={1: "Au"}))
    f0 = float(ask(sim, "P1")[1])
    ask(sim, "D1 2,1000")
    ask(sim, "U0")
    run_until(clock, sim, 1100.0, step=50.0)
    drop = f0 - float(ask(sim, "P1")[1])
    assert drop == pytest.approx(SAUERBREY_HZ_CM2_PER_G * 19.3 * 1000e-8, rel=1e-6)


def test_u1_stops_mid_layer_and_records_partial(clock: ClockWorld, qcm: Sqc310Sim) -> None:
    ask(qcm, "D1 2,50")
    ask(qcm, "U0")
    run_until(clock, qcm, 44.0)
    assert ask(qcm, "U1") == ("A", "")
    assert ask(qcm, "V") == ("A", "0 0 1 1")
    assert ask(qcm, "L1") == ("A", "0.00")
    partial = clock.current_sample().params["thickness_nm"]
    assert 1.7 < partial < 2.3
    assert float(ask(qcm, "N1")[1]) * 100 == pytest.approx(partial, abs=0.06)
    run_until(clock, qcm, 60.0)
    assert clock.current_sample().params["thickness_nm"] == partial  # shutter stayed closed
    assert ask(qcm, "U1") == ("A", "")  # any time


def test_u5_forces_final_thickness(clock: ClockWorld, qcm: Sqc310Sim) -> None:
    ask(qcm, "D1 2,50")
    ask(qcm, "U0")
    run_until(clock, qcm, 34.0)
    assert ask(qcm, "U5") == ("A", "")
    assert ask(qcm, "V")[1].split()[0] == "22"
    assert run_until(clock, qcm, 40.0) == [22, 0]
    assert 0.7 < clock.current_sample().params["thickness_nm"] < 1.3


def test_u5_during_conditioning_deposits_nothing(clock: ClockWorld, qcm: Sqc310Sim) -> None:
    ask(qcm, "D1 2,50")
    ask(qcm, "U0")
    run_until(clock, qcm, 10.0)
    assert ask(qcm, "U5") == ("A", "")
    run_until(clock, qcm, 20.0)
    assert clock.current_sample().layers == []


def test_two_layers_interlayer_then_contact(clock: ClockWorld) -> None:
    sim = powered(Sqc310Sim(clock, films={1: "LiF", 2: "Au"}, layers=2))
    assert ask(sim, "D2? 7") == ("A", "7,2")
    ask(sim, "D1 2,30")
    ask(sim, "D2 2,200")
    ask(sim, "U0")
    run_until(clock, sim, 80.0, step=5.0)
    assert ask(sim, "V")[1].split()[-1] == "2"
    ask(sim, "U0")
    run_until(clock, sim, 400.0, step=5.0)
    assert ask(sim, "V")[1].split()[-1] == "1"  # wraps to the first layer
    params = clock.current_sample().params
    assert params["modifier"] == "LiF" and params["thickness_nm"] == pytest.approx(3.0)
    assert params["contact"] == "Au" and params["contact_thickness_nm"] == pytest.approx(20.0)


def test_zero_thickness_layer(clock: ClockWorld, qcm: Sqc310Sim) -> None:
    ask(qcm, "U0")
    assert run_until(clock, qcm, 40.0)[-3:] == [12, 22, 0]  # 13 ends as it starts
    assert [p for _, p in qcm.phase_log][-3:] == [13, 22, 0]
    assert clock.current_sample().layers == []


# -- faults ----------------------------------------------------------------------------------
def test_injected_crystal_fail_mid_layer(clock: ClockWorld) -> None:
    sim = powered(Sqc310Sim(clock, crystal_fail_at_a=20.0))
    ask(sim, "D1 2,50")
    ask(sim, "U0")
    assert run_until(clock, sim, 60.0) == [1, 2, 7, 8, 9, 10, 12, 13, 24, 33]
    assert ask(sim, "N1") == ("A", "0.020")
    assert ask(sim, "P1") == ("A", "0.00")
    assert ask(sim, "U5") == ("E", "")
    assert clock.current_sample().params["thickness_nm"] == pytest.approx(2.0)
    assert [kind for _, kind, _ in sim.faults.log] == ["crystal_fail"]
    assert ask(sim, "U1") == ("A", "")
    assert float(ask(sim, "P1")[1]) > 5.9e6  # an intermittent crystal: it oscillates again
    ask(sim, "U0")  # injected once: this layer completes
    assert run_until(clock, sim, 150.0)[-2:] == [22, 0]
    assert ask(sim, "N1") == ("A", "0.050")


def test_crystal_fail_phase_refuses_start(clock: ClockWorld) -> None:
    sim = powered(Sqc310Sim(clock, crystal_fail_at_a=10.0))
    ask(sim, "D1 2,50")
    ask(sim, "U0")
    clock.now = 34.0 + 0.5
    assert ask(sim, "V")[1].split()[0] == "24"
    assert ask(sim, "U0") == ("E", "")
    assert ask(sim, "D1 2,10") == ("E", "")
    clock.now = 40.0
    assert ask(sim, "V")[1].split()[0] == "33"
    assert ask(sim, "D1 2,10") == ("A", "")  # halted, not running
    assert ask(sim, "U0") == ("A", "")  # restarts the same layer


def test_crystal_life_runs_out(clock: ClockWorld) -> None:
    sim = powered(Sqc310Sim(clock, crystal_life_a=30.0))
    ask(sim, "D1 2,50")
    ask(sim, "U0")
    assert run_until(clock, sim, 60.0)[-3:] == [13, 24, 33]
    assert clock.current_sample().params["thickness_nm"] == pytest.approx(3.0)
    assert sim.crystal_dead
    ask(sim, "U1")
    assert ask(sim, "P1") == ("A", "0.00")
    ask(sim, "U0")
    assert run_until(clock, sim, 70.0) == [1, 24, 33]  # fails its verify
    assert clock.current_sample().params["thickness_nm"] == pytest.approx(3.0)
    sim.replace_crystal()
    ask(sim, "U1")
    ask(sim, "D1 2,20")
    ask(sim, "U0")
    assert run_until(clock, sim, 130.0)[-2:] == [22, 0]
    assert clock.current_sample().params["thickness_nm"] == pytest.approx(5.0)


def test_source_feedback_timeout(clock: ClockWorld) -> None:
    sim = powered(Sqc310Sim(clock, source_timeout_prob=1.0))
    ask(sim, "D1 2,50")
    ask(sim, "U0")
    phases = run_until(clock, sim, 100.0)
    assert phases[-2:] == [13, 28]
    halted = next(t for t, p in sim.phase_log if p == 28)
    assert halted < 24.0 + 0.8 * 50 / 0.85 + 5.0 + 1.0
    thickness = clock.current_sample().params["thickness_nm"]
    assert 0.9 < thickness < 4.1
    assert ask(sim, "L1") == ("A", "0.00")
    assert [kind for _, kind, _ in sim.faults.log] == ["source_timeout"]
    assert ask(sim, "U1") == ("A", "")
    assert ask(sim, "V") == ("A", "0 0 1 1")


def test_crystal_fail_probability_is_seeded(clock: ClockWorld) -> None:
    def fails(seed: int) -> list[bool]:
        world = ClockWorld(seed=seed)
        sim = powered(Sqc310Sim(world, crystal_fail_prob=0.5))
        ask(sim, "D1 2,10")
        out = []
        for i in range(6):
            ask(sim, "U1")
            ask(sim, "U0")
            run_until(world, sim, 40.0 * (i + 1), step=2.0)
            out.append(sim.phase == 33)
        return out

    assert fails(3) == fails(3)
    assert any(fails(3)) and not all(fails(3))


@pytest.mark.parametrize("kind", ["no_reply", "garbled", "truncated", "busy", "disconnect"])
def test_link_faults(clock: ClockWorld, kind: str) -> None:
    sim = Sqc310Sim(clock, faults=FaultConfig(rate=1.0, kinds=(kind,), seed=4))
    good = reply_packet("B")
    out = sim.feed(command_packet("D1 2,50"))
    if kind == "no_reply":
        assert out == b""
    elif kind == "garbled":
        assert isinstance(out, bytes) and len(out) == len(good) and out != good
    elif kind == "truncated":
        assert isinstance(out, bytes) and len(out) < len(good)
    elif kind == "busy":
        assert isinstance(out, bytes) and parse_reply(out) in [("C", ""), ("D", "")]
    else:
        assert isinstance(out, Disconnect)
    applied = sim.layers[0].thickness_a == 50
    assert applied == (kind != "busy")
    assert [k for _, k, _ in sim.faults.log] == [kind]


def test_drift_moves_the_end_point(clock: ClockWorld) -> None:
    sim = Sqc310Sim(clock, faults=FaultConfig(rate=1.0, kinds=("drift",), seed=4))
    for _ in range(25):
        sim.feed(command_packet("V"))
    drift = sim.faults.drift
    assert abs(drift) == pytest.approx(0.05)
    sim.faults.config = FaultConfig()  # no more faults
    sim.feed(command_packet("D1 2,50"))
    sim.feed(command_packet("U0"))
    run_until(clock, sim, 100.0, step=5.0)
    assert parse_reply(sim.feed(command_packet("N1"))) == ("A", "0.050")
    assert clock.current_sample().params["thickness_nm"] == pytest.approx(5.0 / (1 + drift))


def test_constructor_validation(clock: ClockWorld) -> None:
    sim = Sqc310Sim(clock, films={"1": "LiF", "2": "Li3N"}, rates_a_s={"2": 0.5, "LiF": 2})
    assert sim.films[1].rate_a_s == 2.0 and sim.films[2].rate_a_s == 0.5
    for bad in [
        {"films": {0: "LiF"}},
        {"films": {100: "LiF"}},
        {"films": {}},
        {"rates_a_s": {"Au": 1.0}},
        {"rates_a_s": {3: 1.0}},
        {"rates_a_s": {1: 0.0}},
        {"tooling_pct": {1: 5}},
        {"tooling_error": -1.0},
        {"crystal_life_a": 0.0},
        {"layers": 0},
        {"source_timeout_prob": 2.0},
        {"conditioning_s": -1.0},
    ]:
        with pytest.raises(ValueError):
            Sqc310Sim(clock, **bad)  # type: ignore[arg-type]


# -- transport and workcell ------------------------------------------------------------------
def read_packet(port: serial.Serial, timeout: float = 2.0) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data += port.read(port.in_waiting or 1)
        if len(data) >= 2 and len(data) >= data[1] - 35 + 4:
            break
    return data


def test_over_a_pty_with_pyserial() -> None:
    world = SimulatedWorld(time_scale=1000.0, seed=2)
    sim = Sqc310Sim(world, films={1: "LiF"})
    try:
        with PtyServer(sim, connect_delay_s=0.01) as server:
            assert server.path is not None
            with serial.Serial(server.path, 19200, timeout=0.1) as port:
                port.write(command_packet("@"))
                assert parse_reply(read_packet(port)) == ("B", "SQC-310 Ver 6.01")
                port.write(b"!$M1\\q")
                assert read_packet(port) == b"!)A 0.00" + bytes([87, 100])
                packet = command_packet("D1 2,50")
                port.write(packet[:4])
                port.flush()
                time.sleep(0.05)
                port.write(packet[4:])
                assert parse_reply(read_packet(port)) == ("A", "")
                port.write(command_packet("U0"))
                assert parse_reply(read_packet(port)) == ("A", "")
                deadline = time.monotonic() + 5.0
                state = ""
                while time.monotonic() < deadline:
                    port.write(command_packet("V"))
                    state = parse_reply(read_packet(port))[1]
                    if state.startswith("0 "):
                        break
                    time.sleep(0.01)
                assert state.startswith("0 ")
                port.write(command_packet("N1"))
                assert parse_reply(read_packet(port)) == ("A", "0.050")
    finally:
        sim.close()
    assert world.current_sample().params["thickness_nm"] == pytest.approx(5.0)


def test_workcell_entry(tmp_path: Path) -> None:
    assert SIMULATORS["sqc310"] == ("simulators.sqc310", "Sqc310Sim")
    assert "sqc310" not in TCP_KINDS
    entry = {"kind": "sqc310", "films": {1: "LiF", 2: "Li3N"}, "tooling_error": 0.05}
    world = SimulatedWorld(time_scale=1000.0)
    with SimulatedWorkcell({"qcm": entry}, world=world) as cell:
        sim = cell.sims["qcm"]
        assert isinstance(sim, Sqc310Sim)
        assert {n: f.material for n, f in sim.films.items()} == {1: "LiF", 2: "Li3N"}
        assert sim.films[1].true_tooling_pct == pytest.approx(105.0)
        url = cell.devices["qcm"]["url"]
        assert url.startswith("/dev/pts/")
        with serial.Serial(url, 19200, timeout=0.1) as port:
            port.write(command_packet("A1 2?"))
            assert parse_reply(read_packet(port)) == ("B", "Li3N")
        written = yaml.safe_load(cell.write_workcell(tmp_path / "cell.yaml").read_text())
    assert written["devices"]["qcm"] == {
        "kind": "sqc310",
        "url": url,
        "films": {1: "LiF", 2: "Li3N"},
        "tooling_error": 0.05,
    }


def test_python_m_simulators_sqc310() -> None:
    encoded = subprocess.run(
        [sys.executable, "-m", "simulators.sqc310", "--encode", "M1"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert encoded.stdout.strip() == repr(b"!$M1\\q")
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulators.sqc310", "--films", "1=LiF,2=Li3N"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        path = proc.stdout.readline().split()[1]
        assert path.startswith("/dev/pts/")
        with serial.Serial(path, 19200, timeout=0.1) as port:
            port.write(command_packet("A1 2?"))
            assert parse_reply(read_packet(port, timeout=5.0)) == ("B", "Li3N")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- world.deposit ---------------------------------------------------------------------------
def test_deposit_interlayer_then_contact(world: SimulatedWorld) -> None:
    world.deposit("LiF", 3.0, 1.0)
    world.deposit("LiF", 2.0, 1.0)  # more of the same thickens the interlayer
    sample = world.current_sample()
    assert sample.params == {"modifier": "LiF", "thickness_nm": pytest.approx(5.0)}
    world.deposit("Au", 50.0, 2.0, station=None)
    world.deposit("Au", 10.0, 2.0)
    world.deposit("Li3N", 1.0, 1.0)  # above the contact: not at the interface
    assert sample.layers == [("LiF", 3.0), ("LiF", 2.0), ("Au", 50.0), ("Au", 10.0), ("Li3N", 1.0)]
    assert sample.params["contact"] == "Au"
    assert sample.params["contact_thickness_nm"] == pytest.approx(60.0)
    assert sample.params["modifier"] == "LiF"
    assert sample.params["thickness_nm"] == pytest.approx(5.0)
    assert any("deposit Li3N" in text and "above the contact" in text for _, text in sample.events)
    world.deposit("LiF", 0.0, 1.0)
    world.deposit("LiF", -1.0, 1.0)
    assert len(sample.layers) == 5
    assert sample.dispensed_volume_ul() == 0.0
    assert world.mass_on_balance_g() == pytest.approx(sample.substrate_mass_g)


def test_deposit_after_measurement_starts_new_sample(world: SimulatedWorld) -> None:
    world.deposit("LiF", 5.0, 1.0)
    first = world.current_sample()
    world.impedance(1e3)
    world.deposit("Li3N", 2.0, 1.0)
    second = world.current_sample()
    assert second is not first and second.id == 1
    assert second.params == {"modifier": "Li3N", "thickness_nm": pytest.approx(2.0)}
    assert first.params["modifier"] == "LiF" and first.layers == [("LiF", 5.0)]


def test_string_params_reach_the_truth_and_cache() -> None:
    world = SimulatedWorld("simulators.truths_interface:interlayer_asr", seed=3)
    world.deposit("LiF", 5.0, 1.0)
    r1 = world.interfacial_resistance()
    assert r1 > 0 and world.interfacial_resistance() == r1  # cached
    world.deposit("LiF", 5.0, 1.0)
    assert world.interfacial_resistance() != r1  # thicker: recomputed
    world.dispense("precursor", 2.0, 100.0)
    assert world.current_sample().dispensed_volume_ul() == pytest.approx(2.0)


def test_deposit_away_from_station_is_misplaced(world: SimulatedWorld) -> None:
    world.define_stations({"chamber": (0.0, 0.0, 0.0), "rack": (10.0, 0.0, 0.0)})
    world.gantry_moved((10.0, 0.0, 0.0))
    world.deposit("LiF", 5.0, 1.0, station="chamber")
    assert world.current_sample().layers == []
    assert world.misplaced and "chamber" in world.misplaced[-1][2]
    world.gantry_moved((0.0, 0.0, 0.0))
    world.deposit("LiF", 5.0, 1.0, station="chamber")
    assert world.current_sample().params["thickness_nm"] == pytest.approx(5.0)
