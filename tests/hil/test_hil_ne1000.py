"""NE-1000 driver against its simulator over a real pty: every public method, checked against
what the simulated pump and world did."""

from __future__ import annotations

import time

import pytest

from drivers import PumpAlarm
from tests.hil.helpers import open_driver, running_cell

PUMP = {"pump": {"kind": "ne1000", "role": "precursor", "address": 0}}


def pump_tolerance(volume_ul: float) -> float:
    """Five standard deviations of the simulated pump's per-run noise, µL."""
    return 5 * (0.002 * volume_ul + 0.01)


def test_power_up_alarm_identity_and_settings_read_back() -> None:
    with running_cell(PUMP) as cell, open_driver(cell, "pump") as pump:
        sim = cell.sims["pump"]
        # The first command after power-up is answered A?R (not executed); the status poll never
        # swallows an alarm, so it surfaces here; the next poll is clean.
        with pytest.raises(PumpAlarm) as info:
            pump.status()
        assert info.value.code == "A?R" and pump.last_alarm == "A?R"
        assert pump.status() == "S"
        assert pump.is_running() is False
        assert pump.identify() == "NE1000V3.928"
        assert pump.address == 0

        pump.set_diameter(4.61)
        assert pump.diameter() == 4.61 == sim.diameter_mm
        pump.set_rate(50.0, "UM")
        assert pump.rate() == (50.0, "UM")
        assert sim.rate_ul_min == 50.0
        pump.set_rate(0.5, "MH")
        assert pump.rate() == (0.5, "MH")
        assert sim.rate_ul_min == pytest.approx(500.0 / 60.0)
        pump.set_volume(12.5, "UL")
        assert pump.volume() == (12.5, "UL")
        assert (sim.volume_value, sim.volume_units) == (12.5, "UL")
        pump.set_direction("WDR")
        assert pump.direction() == "WDR" == sim.direction
        pump.set_direction("INF")
        assert pump.direction() == "INF" == sim.direction
        assert cell.world.current_sample().params == {}  # setting up moves no liquid


def test_dispense_puts_the_volume_on_the_sample_within_the_pump_error() -> None:
    with running_cell(PUMP, seed=3) as cell, open_driver(cell, "pump") as pump:
        sim, world = cell.sims["pump"], cell.world
        pump.identify()
        pump.set_diameter(4.61)
        pump.clear_dispensed("INF")
        assert pump.dispense(20.0, 200.0) == "I"  # 6 s simulated
        assert pump.wait_until_stopped(timeout_s=5.0) == "S"
        assert pump.dispensed() == (20.0, 0.0, "UL")  # the pump counts what it was told
        params = world.current_sample().params
        # What really left the syringe: the pump's own gain error plus per-run noise.
        assert params["precursor_volume_ul"] == pytest.approx(
            20.0 * sim.gain, abs=pump_tolerance(20)
        )
        assert abs(params["precursor_volume_ul"] / 20.0 - 1) < 0.05
        assert params["precursor_rate_ul_min"] == pytest.approx(200.0)
        pump.clear_dispensed("INF")
        assert pump.dispensed() == (0.0, 0.0, "UL")


def test_withdraw_moves_no_liquid_to_the_sample() -> None:
    with running_cell(PUMP) as cell, open_driver(cell, "pump") as pump:
        pump.identify()
        pump.set_diameter(4.61)
        pump.set_volume(5.0, "UL")
        pump.set_rate(100.0, "UM")
        pump.set_direction("WDR")
        assert pump.run() == "W"
        assert pump.wait_until_stopped(timeout_s=5.0) == "S"
        assert pump.dispensed() == (0.0, 5.0, "UL")
        pump.clear_dispensed("WDR")
        assert pump.dispensed() == (0.0, 0.0, "UL")
        assert "precursor_volume_ul" not in cell.world.current_sample().params


def test_stop_ends_a_run_midway_and_the_world_gets_what_was_pumped() -> None:
    with running_cell(PUMP) as cell, open_driver(cell, "pump") as pump:
        sim, world = cell.sims["pump"], cell.world
        pump.identify()
        pump.set_diameter(4.61)
        pump.dispense(500.0, 10.0)  # 50 simulated minutes: 1.5 s real
        time.sleep(0.05)
        assert pump.is_running() is True
        with pytest.raises(Exception, match="still infusing"):
            pump.wait_until_stopped(timeout_s=0.05)
        assert pump.stop() == "S"  # STP pauses, the second STP stops
        assert sim.phase == "S"
        infused, _, unit = pump.dispensed()
        assert unit == "UL" and 0.0 < infused < 500.0
        time.sleep(0.05)
        assert pump.dispensed()[0] == infused  # stopped for good
        delivered = world.current_sample().params["precursor_volume_ul"]
        assert delivered == pytest.approx(infused * sim.gain, abs=pump_tolerance(infused) + 0.001)


def test_two_pumps_dispense_onto_the_same_sample() -> None:
    devices = {
        "pump_precursor": {"kind": "ne1000", "role": "precursor", "address": 0},
        "pump_solvent": {"kind": "ne1000", "role": "solvent", "address": 0},
    }
    with running_cell(devices, seed=4) as cell:
        with (
            open_driver(cell, "pump_precursor") as precursor,
            open_driver(cell, "pump_solvent") as solvent,
        ):
            for pump, volume in ((precursor, 12.0), (solvent, 6.0)):
                pump.identify()
                pump.set_diameter(4.61)
                pump.dispense(volume, 300.0)
            assert precursor.wait_until_stopped(timeout_s=5.0) == "S"
            assert solvent.wait_until_stopped(timeout_s=5.0) == "S"
        params = cell.world.current_sample().params
        gains = {role: cell.sims[f"pump_{role}"].gain for role in ("precursor", "solvent")}
        for role, volume in (("precursor", 12.0), ("solvent", 6.0)):
            assert params[f"{role}_volume_ul"] == pytest.approx(
                volume * gains[role], abs=pump_tolerance(volume)
            )
