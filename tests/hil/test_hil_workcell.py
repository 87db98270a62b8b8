"""The whole simulated workcell over its real ports: one experiment through every driver, and the
``lab instruments check`` routine on the workcell file the simulators write."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.instruments import check_workcell
from lab.workcell import load_workcell
from simulators.workcell import FULL_DEVICES
from tests.hil.helpers import model_impedance, open_driver, running_cell, wait_for


def test_one_experiment_through_every_driver() -> None:
    with running_cell(FULL_DEVICES, seed=11) as cell:
        world = cell.world
        with (
            open_driver(cell, "pump_precursor") as precursor,
            open_driver(cell, "pump_solvent") as solvent,
            open_driver(cell, "hotplate") as hotplate,
            open_driver(cell, "balance") as balance,
            open_driver(cell, "gantry") as gantry,
            open_driver(cell, "lcr") as lcr,
        ):
            stations = FULL_DEVICES["gantry"]["stations"]

            def go(station: str) -> None:  # the gantry carries the sample to a station
                x, y, z = stations[station]
                gantry.move_to(x=x, y=y, z=z, feed=3000.0)
                assert gantry.wait_idle(timeout=5.0).mpos == (x, y, z)
                assert world.current_sample().location == station

            go("balance")
            balance.zero()  # with the bare substrate on the pan
            go("dispense")
            for pump, volume in ((precursor, 30.0), (solvent, 10.0)):
                pump.identify()
                pump.set_diameter(4.61)
                pump.dispense(volume, 400.0)
                assert pump.wait_until_stopped(timeout_s=5.0) == "S"
            go("balance")
            liquid_g, _ = balance.weight_stable()
            go("hotplate")
            hotplate.set_temperature(120.0)
            hotplate.start_heating()
            wait_for(lambda: hotplate.temperature() >= 100.0)
            hotplate.stop_heating()
            go("lcr")
            expected = model_impedance(world, 1000.0)
            z = lcr.measure(1000.0)
        sample = world.current_sample()
        # Every instrument found the sample at its station (the hotplate cooling down after the
        # sample left it heats nothing, which the world notes).
        assert [m for m in world.misplaced if m[1] != "hotplate"] == []
        params = sample.params
        volume = params["precursor_volume_ul"] + params["solvent_volume_ul"]
        assert liquid_g == pytest.approx(volume * 1e-3, abs=2e-4)
        assert params["anneal_temperature_c"] > 30.0 and params["anneal_time_min"] > 0.0
        assert sample.measured
        # The impedance reflects the ground truth of what was really done to this sample.
        assert abs(z / expected - 1) < 0.025
        assert cell.fault_log() == []


def test_instruments_check_passes_on_the_simulated_workcell(tmp_path: Path) -> None:
    with running_cell(FULL_DEVICES, seed=12) as cell:
        path = cell.write_workcell(tmp_path / "workcell.yaml")
        results = check_workcell(load_workcell(path))
    assert set(results) == set(FULL_DEVICES)
    failed = {name: r.message for name, r in results.items() if not r.ok}
    assert not failed
