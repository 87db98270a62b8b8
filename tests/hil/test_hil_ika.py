"""IKA NAMUR hotplate driver against its simulator over a real pty (9600 7E1): every public
method, checked against the simulated plate and the world's anneal record."""

from __future__ import annotations

import pytest

from tests.hil.helpers import open_driver, running_cell, wait_for

HOTPLATE = {"hotplate": {"kind": "ika_namur"}}


def test_readings_and_set_points_read_back() -> None:
    with running_cell(HOTPLATE) as cell, open_driver(cell, "hotplate") as plate:
        sim = cell.sims["hotplate"]
        assert plate.identify() == "RCT digital"
        assert plate.temperature() == 25.0 == sim.probe_c
        assert plate.plate_temperature() == 25.0 == sim.plate_c
        assert plate.temperature_setpoint() == 0.0
        assert plate.safety_temperature() == 360.0 == sim.safety_temp_c
        assert plate.speed() == 0.0
        assert plate.speed_setpoint() == 0.0
        assert plate.viscosity_trend() == 0.0

        plate.set_temperature(62.5)  # verified by reading IN_SP_1 back
        assert plate.temperature_setpoint() == 62.5 == sim.set_temp_c
        plate.set_temperature(70.0, verify=False)
        assert plate.temperature_setpoint() == 70.0 == sim.set_temp_c
        plate.set_speed(400)
        assert plate.speed_setpoint() == 400.0 == sim.set_speed_rpm
        # Set points alone neither heat nor stir.
        assert not sim.heater_on and not sim.motor_on
        assert plate.plate_temperature() == 25.0


def test_stirring_starts_and_stops() -> None:
    with running_cell(HOTPLATE) as cell, open_driver(cell, "hotplate") as plate:
        sim = cell.sims["hotplate"]
        plate.set_speed(600)
        plate.start_stirring()
        wait_for(lambda: plate.speed() == 600.0)
        assert sim.motor_on
        plate.stop_stirring()
        wait_for(lambda: plate.speed() == 0.0)
        assert not sim.motor_on


def test_heating_follows_the_set_point_and_anneals_the_sample() -> None:
    with running_cell(HOTPLATE) as cell, open_driver(cell, "hotplate") as plate:
        sim, world = cell.sims["hotplate"], cell.world
        plate.set_temperature(80.0)
        plate.start_heating()  # no reply: a query after it has been handled confirms it
        assert plate.temperature_setpoint() == 80.0
        assert sim.heater_on
        wait_for(lambda: plate.temperature() >= 79.5)  # ~10 simulated minutes
        plate_c, probe_c = plate.plate_temperature(), plate.temperature()
        assert plate_c == pytest.approx(sim.plate_c, abs=0.1)
        assert probe_c == pytest.approx(sim.probe_c, abs=0.1)
        assert 79.5 <= probe_c <= plate_c <= 80.0
        plate.stop_heating()
        assert plate.temperature_setpoint() == 80.0
        assert not sim.heater_on
        wait_for(lambda: plate.plate_temperature() < 60.0)
        params = world.current_sample().params
        assert params["anneal_time_min"] > 5.0
        assert 30.0 < params["anneal_temperature_c"] < 80.0
