"""MT-SICS balance driver against its simulator over a real pty: every public method, checked
against the mass the world puts on the pan."""

from __future__ import annotations

import pytest

from tests.hil.helpers import open_driver, running_cell

BALANCE = {"balance": {"kind": "mt_sics"}}
GRAMS = 2e-4  # 0.1 mg readability plus 0.03 mg noise, with room


def test_identity_and_weights_equal_the_world_mass() -> None:
    with running_cell(BALANCE) as cell, open_driver(cell, "balance") as balance:
        world = cell.world
        assert balance.identify() == "XS204 Excellence 220.0090 g"
        assert balance.serial_number() == "1126493049"
        value, unit = balance.weight_stable()
        assert unit == "g"
        assert value == pytest.approx(world.mass_on_balance_g(), abs=GRAMS)
        assert value == pytest.approx(world.current_sample().substrate_mass_g, abs=GRAMS)
        assert balance.weight_immediate() == pytest.approx(
            (world.mass_on_balance_g(), "g"), abs=GRAMS
        )


def test_tare_reset_and_zero() -> None:
    with running_cell(BALANCE) as cell, open_driver(cell, "balance") as balance:
        sim, mass = cell.sims["balance"], cell.world.mass_on_balance_g()
        tare, unit = balance.tare()
        assert unit == "g" and tare == pytest.approx(mass, abs=GRAMS)
        assert sim.tare_g == pytest.approx(tare, abs=1e-4)
        assert balance.weight_stable()[0] == pytest.approx(0.0, abs=GRAMS)
        assert balance.reset() == "1126493049"  # @ clears the tare, keeps the zero
        assert sim.tare_g == 0.0
        assert balance.weight_stable()[0] == pytest.approx(mass, abs=GRAMS)
        balance.zero()
        assert sim.zero_g == pytest.approx(mass, abs=GRAMS)
        assert balance.weight_stable()[0] == pytest.approx(0.0, abs=GRAMS)
        assert balance.zero_immediately() is True  # stable: zeroed under stable conditions
        assert balance.weight_immediate()[0] == pytest.approx(0.0, abs=GRAMS)


def test_dispensed_liquid_shows_on_the_balance() -> None:
    devices = {**BALANCE, "pump": {"kind": "ne1000", "role": "precursor", "address": 0}}
    with running_cell(devices, seed=2) as cell:
        with open_driver(cell, "balance") as balance, open_driver(cell, "pump") as pump:
            balance.zero()
            pump.identify()
            pump.set_diameter(4.61)
            pump.dispense(50.0, 500.0)
            assert pump.wait_until_stopped(timeout_s=5.0) == "S"
            # S waits for the reading to settle after the load change (3 simulated s).
            value, _ = balance.weight_stable()
        delivered = cell.world.current_sample().params["precursor_volume_ul"]
        assert value == pytest.approx(delivered * 1e-3, abs=GRAMS)  # 1 g/mL
