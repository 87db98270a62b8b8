"""IKA NAMUR hotplate simulator conformance against ika-namur.md."""

from __future__ import annotations

import pytest

from simulators.faults import FaultConfig
from simulators.ika_namur import IkaNamurSim
from simulators.world import SimulatedWorld


@pytest.fixture
def plate(slow_world: SimulatedWorld) -> IkaNamurSim:
    return IkaNamurSim(slow_world)


def test_sheet_examples(plate: IkaNamurSim) -> None:
    assert plate.feed(b"IN_NAME\r\n") == b"RCT digital\r\n"
    assert plate.feed(b"IN_PV_2\r\n") == b"25.0 2\r\n"
    assert plate.feed(b"OUT_SP_1 60\r\n") == b""
    assert plate.feed(b"START_1\r\n") == b""
    assert plate.feed(b"IN_SP_1\r\n") == b"60.0 1\r\n"
    assert plate.feed(b"OUT_SP_4 400\r\n") == b""
    assert plate.feed(b"START_4\r\n") == b""
    assert plate.feed(b"IN_SP_4\r\n") == b"400 4\r\n"
    assert plate.feed(b"IN_SP_3\r\n") == b"360 3\r\n"
    assert plate.feed(b"OUT_WD1@60\r\n") == b"60\r\n"


@pytest.mark.parametrize("terminator", [b"\r\n", b"\n", b"\r", b" \r\n", b" \r \n"])
def test_liberal_terminators(plate: IkaNamurSim, terminator: bytes) -> None:
    assert plate.feed(b"IN_NAME" + terminator) == b"RCT digital\r\n"


def test_seven_bit_input(plate: IkaNamurSim) -> None:
    assert plate.feed(bytes(b | 0x80 for b in b"IN_NAME") + b"\r\n") == b"RCT digital\r\n"


@pytest.mark.parametrize("line", [b"in_name", b"IN_PV_9", b"FOO 1", b"IN_NAME 3", b"X" * 90])
def test_unknown_is_silent(plate: IkaNamurSim, line: bytes) -> None:
    assert plate.feed(line + b"\r\n") == b""


def test_unknown_reply_option(slow_world: SimulatedWorld) -> None:
    sim = IkaNamurSim(slow_world, unknown_reply=b"?\r\n")
    assert sim.feed(b"FOO\r\n") == b"?\r\n"
    assert sim.feed(b"STOP_1\r\n") == b""


def test_out_of_range_set_point(plate: IkaNamurSim, slow_world: SimulatedWorld) -> None:
    plate.feed(b"OUT_SP_1 100\r\n")
    plate.feed(b"OUT_SP_1 400\r\n")
    assert plate.feed(b"IN_SP_1\r\n") == b"100.0 1\r\n"
    clamp = IkaNamurSim(slow_world, out_of_range="clamp")
    clamp.feed(b"OUT_SP_1 400\r\n")
    assert clamp.feed(b"IN_SP_1\r\n") == b"310.0 1\r\n"


def test_heating_dynamics_and_anneal() -> None:
    world = SimulatedWorld(time_scale=1.0)
    plate = IkaNamurSim(world)
    plate.feed(b"OUT_SP_1 150\r\n")
    plate.feed(b"START_1\r\n")
    plate.advance(60.0)
    t60 = plate.plate_c
    assert t60 == pytest.approx(25.0 + 0.5 * 60, abs=1.0)  # rate-limited at first
    plate.advance(1800.0)
    assert plate.plate_c == pytest.approx(150.0, abs=0.5)
    assert plate.probe_c == pytest.approx(150.0, abs=0.5)
    params = world.samples[-1].params
    assert params["anneal_time_min"] == pytest.approx(29.6, abs=0.3)  # probe lags
    assert 120.0 < params["anneal_temperature_c"] < 150.0
    plate.feed(b"STOP_1\r\n")
    plate.advance(1800.0 + 120.0)
    assert 25.0 < plate.plate_c < 25.0 + 125.0 * 0.4  # cools with the time constant


def test_readings_follow_physics() -> None:
    world = SimulatedWorld(time_scale=20000.0)
    plate = IkaNamurSim(world)
    plate.feed(b"OUT_SP_1 80\r\nSTART_1\r\nOUT_SP_4 500\r\nSTART_4\r\n")
    world.sleep(1200.0)
    temp, channel = plate.feed(b"IN_PV_2\r\n").split()
    assert float(temp) == pytest.approx(80.0, abs=1.0) and channel == b"2"
    assert plate.feed(b"IN_PV_4\r\n") == b"500 4\r\n"
    assert world.current_sample().params["anneal_time_min"] > 10.0


def test_watchdog_1_switches_off(plate: IkaNamurSim) -> None:
    plate.feed(b"OUT_SP_1 80\r\nSTART_1\r\nSTART_4\r\n")
    assert plate.feed(b"OUT_WD1@20\r\n") == b"20\r\n"
    plate._last_command -= 25.0
    plate.poll()
    assert not plate.heater_on and not plate.motor_on


def test_watchdog_2_safety_set_points(plate: IkaNamurSim) -> None:
    assert plate.feed(b"OUT_SP_12@40\r\n") == b"40\r\n"
    assert plate.feed(b"OUT_SP_42@100\r\n") == b"100\r\n"
    plate.feed(b"OUT_SP_1 80\r\nOUT_SP_4 300\r\n")
    assert plate.feed(b"OUT_WD2@30\r\n") == b"30\r\n"
    plate._last_command -= 31.0
    plate.poll()
    assert plate.feed(b"IN_SP_1\r\nIN_SP_4\r\n") == b"40.0 1\r\n100 4\r\n"
    assert plate.feed(b"OUT_WD2@0\r\n") == b"0\r\n"
    assert plate.feed(b"OUT_WD1@5\r\n") == b""  # out of range 20-1500: ignored


def test_start_resets_setpoint_quirk(slow_world: SimulatedWorld) -> None:
    sim = IkaNamurSim(slow_world, start_resets_setpoint=True)
    sim.feed(b"OUT_SP_1 60\r\nSTART_1\r\n")
    assert sim.feed(b"IN_SP_1\r\n") == b"0.0 1\r\n"


def test_drift_offsets_temperature(slow_world: SimulatedWorld) -> None:
    sim = IkaNamurSim(slow_world, faults=FaultConfig(rate=1.0, kinds=("drift",), seed=1))
    readings = [float(sim.feed(b"IN_PV_2\r\n").split()[0]) for _ in range(20)]
    assert abs(readings[-1] - 25.0) > 0.5
