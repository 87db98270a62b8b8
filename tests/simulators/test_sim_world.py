"""The simulated world: time, sample lifecycle, impedance model, truth loading."""

from __future__ import annotations

import numpy as np
import pytest

from simulators.world import SimulatedWorld, load_truth


def flat_truth(params: dict[str, float], fidelity: str, rng: np.random.Generator) -> float:
    return 50.0


def test_load_truth_by_name() -> None:
    fn = load_truth("simulators.truths:demo_interface")
    assert callable(fn)
    with pytest.raises(ValueError):
        load_truth("simulators.truths")
    with pytest.raises(ValueError):
        load_truth("simulators.truths:nope")


def test_time_scale_and_sleep() -> None:
    world = SimulatedWorld(time_scale=500.0)
    t0 = world.sim_time()
    world.sleep(10.0)  # 20 ms real
    assert world.sim_time() - t0 >= 10.0
    with pytest.raises(ValueError):
        SimulatedWorld(time_scale=0)


def test_dispense_accumulates_with_weighted_rate(world: SimulatedWorld) -> None:
    world.dispense("precursor", 10.0, 100.0)
    world.dispense("precursor", 30.0, 200.0)
    world.dispense("solvent", 5.0, 50.0)
    params = world.current_sample().params
    assert params["precursor_volume_ul"] == pytest.approx(40.0)
    assert params["precursor_rate_ul_min"] == pytest.approx(175.0)
    assert params["solvent_volume_ul"] == pytest.approx(5.0)
    assert len(world.samples) == 1


def test_new_sample_after_measurement(world: SimulatedWorld) -> None:
    world.dispense("precursor", 10.0, 100.0)
    first = world.current_sample()
    world.impedance(1e3)
    assert first.measured
    world.dispense("precursor", 5.0, 100.0)
    second = world.current_sample()
    assert second is not first and second.id == 1
    assert second.params["precursor_volume_ul"] == pytest.approx(5.0)
    assert first.params["precursor_volume_ul"] == pytest.approx(10.0)
    third = world.new_sample()
    assert third.id == 2 and third.params == {} and world.samples[-1] is third


def test_anneal_time_weighted_above_30c(world: SimulatedWorld) -> None:
    world.anneal(25.0, 600)  # below threshold: ignored
    world.anneal(100.0, 60)
    world.anneal(200.0, 180)
    params = world.current_sample().params
    assert params["anneal_time_min"] == pytest.approx(4.0)
    assert params["anneal_temperature_c"] == pytest.approx(175.0)


def test_impedance_model_limits() -> None:
    world = SimulatedWorld(flat_truth, seed=3)
    sample = world.current_sample()
    z_dc = world.impedance(0.0)
    assert z_dc.real == pytest.approx(sample.series_resistance_ohm + 50.0, rel=0.03)
    z_hf = world.impedance(1e7)
    assert z_hf.real == pytest.approx(sample.series_resistance_ohm, rel=0.05)
    z_mid = world.impedance(1 / (2 * np.pi * 50.0 * sample.capacitance_f))
    assert z_mid.imag < -5.0
    assert 19.6 <= sample.series_resistance_ohm <= 20.4
    assert 0.9e-6 <= sample.capacitance_f <= 1.1e-6


def test_impedance_reproducible_by_seed() -> None:
    def run() -> list[complex]:
        world = SimulatedWorld(seed=7)
        world.dispense("precursor", 12.0, 100.0)
        return [world.impedance(f) for f in (20.0, 1e3, 1e6)]

    assert run() == run()


def test_truth_computed_once_per_sample_state() -> None:
    calls = []

    def counting(params: dict[str, float], fidelity: str, rng: np.random.Generator) -> float:
        calls.append(dict(params))
        return 30.0

    world = SimulatedWorld(counting)
    world.dispense("precursor", 10.0, 100.0)
    for _ in range(5):
        world.impedance(1e3)
    assert len(calls) == 1 and calls[0]["precursor_volume_ul"] == 10.0
    world.anneal(150.0, 60)  # changes the sample: recomputed
    world.impedance(1e3)
    assert len(calls) == 2


def test_mass_on_balance(world: SimulatedWorld) -> None:
    m0 = world.mass_on_balance_g()
    assert 1.4 < m0 < 1.6
    world.dispense("precursor", 20.0, 100.0)
    assert world.mass_on_balance_g() - m0 == pytest.approx(0.020)


def test_attached_devices_advance_before_reads(world: SimulatedWorld) -> None:
    seen: list[float] = []
    world.attach(seen.append)
    world.impedance(1e3)
    assert len(seen) == 1
    world.detach(seen.append)
    world.impedance(1e3)
    assert len(seen) == 1
