"""Stations: the gantry carries the sample, instruments act only on a sample at their station."""

from __future__ import annotations

import cmath
import inspect
import math
import time
from pathlib import Path

import pytest
import yaml

from simulators.grbl import GrblSim
from simulators.ika_namur import IkaNamurSim
from simulators.mt_sics import MtSicsSim
from simulators.ne1000 import NE1000Sim
from simulators.scpi_lcr import ScpiLcrSim
from simulators.workcell import FULL_DEVICES, SIMULATORS, SimulatedWorkcell, simulator_class
from simulators.world import (
    OPEN_CIRCUIT_F,
    OPEN_CIRCUIT_OHM,
    STATION_TOLERANCE_MM,
    SimulatedWorld,
)

STATIONS: dict[str, tuple[float, float, float]] = {
    "dispense": (-60.0, -40.0, 0.0),
    "hotplate": (-110.0, -40.0, 0.0),
    "balance": (-150.0, -40.0, 0.0),
    "lcr": (-180.0, -40.0, 0.0),
}


def deck(world: SimulatedWorld, at: str | None) -> SimulatedWorld:
    """Define the stations and park the gantry (with the sample) at ``at`` (None: moving)."""
    world.define_stations(STATIONS)
    world.gantry_moved(None if at is None else STATIONS[at])
    return world


def status(sim: GrblSim) -> tuple[str, tuple[float, ...]]:
    fields = sim.feed(b"?").decode().strip().strip("<>").split("|")
    return fields[0], tuple(float(v) for v in fields[1].split(":")[1].split(","))


def wait_idle(sim: GrblSim, timeout: float = 5.0) -> tuple[float, ...]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state, pos = status(sim)
        if state == "Idle":
            return pos
        time.sleep(0.005)
    raise AssertionError("gantry not idle")


# -- world --------------------------------------------------------------------------------------
def test_location_checks_off_without_stations(world: SimulatedWorld) -> None:
    assert not world.location_checks and world.stations == {}
    sample = world.current_sample()
    assert sample.location is None
    assert world.sample_at("dispense") is sample and world.sample_at(None) is sample
    world.gantry_moved((-60.0, -40.0, 0.0))  # a gantry position alone turns nothing on
    world.dispense("precursor", 10.0, 100.0, station="dispense")
    world.anneal(120.0, 60.0, station="hotplate")
    assert world.mass_on_balance_g(station="balance") > 1.0
    assert abs(world.impedance(1e3, station="lcr")) < 1e6
    assert sample.params["precursor_volume_ul"] == pytest.approx(10.0)
    assert sample.params["anneal_time_min"] == pytest.approx(1.0)
    assert sample.measured and sample.location is None and world.misplaced == []


def test_sample_moves_with_the_gantry(world: SimulatedWorld) -> None:
    world.define_stations(STATIONS)
    assert world.location_checks
    sample = world.current_sample()
    assert sample.location is None  # no gantry position reported yet
    near = STATION_TOLERANCE_MM * 0.9
    world.gantry_moved((-60.0 + near, -40.0 - near, near))
    assert sample.location == "dispense" and world.sample_at("dispense") is sample
    assert world.sample_at("hotplate") is None and world.sample_at(None) is sample
    world.gantry_moved(None)
    assert sample.location is None and world.sample_at("dispense") is None
    world.gantry_moved((-60.0 + 2 * STATION_TOLERANCE_MM, -40.0, 0.0))  # just off the station
    assert sample.location is None
    world.gantry_moved(STATIONS["hotplate"])
    assert sample.location == "hotplate"
    texts = [text for _, text in sample.events]
    assert texts[-3:] == [
        "at station 'dispense'",
        "left station 'dispense'",
        "at station 'hotplate'",
    ]
    fresh = world.new_sample()  # a new substrate starts where the gantry is
    assert fresh.location == "hotplate" and sample.location == "hotplate"
    world.gantry_moved(STATIONS["lcr"])
    assert fresh.location == "lcr" and sample.location == "hotplate"  # only the carried one moves


def test_define_stations_validates_and_relocates(world: SimulatedWorld) -> None:
    world.gantry_moved((-60.0, -40.0, 0.0))
    assert world.current_sample().location is None
    world.define_stations({"dispense": [-60, -40, 0]})
    assert world.stations == {"dispense": (-60.0, -40.0, 0.0)}
    assert world.current_sample().location == "dispense"
    with pytest.raises(ValueError, match="station"):
        world.define_stations({"bad": (1.0, 2.0)})
    with pytest.raises(ValueError, match="station"):
        world.define_stations({"": (1.0, 2.0, 3.0)})
    with pytest.raises(ValueError, match="station"):
        world.define_stations({"nan": (1.0, float("nan"), 3.0)})


def test_dispense_away_from_the_sample_lands_on_the_deck(world: SimulatedWorld) -> None:
    deck(world, "hotplate")
    sample = world.current_sample()
    world.dispense("precursor", 10.0, 100.0, station="dispense")
    world.dispense("precursor", 5.0, 100.0, station="dispense")  # same episode: one entry
    assert sample.params == {} and len(world.samples) == 1
    assert len(world.misplaced) == 1
    t, station, text = world.misplaced[0]
    assert station == "dispense" and t <= world.sim_time()
    assert text == (
        "pump at station 'dispense' dispensed 15 uL of precursor but the sample is at 'hotplate'"
    )
    world.gantry_moved(None)  # the sample moves: a new episode
    world.dispense("solvent", 2.0, 100.0, station="dispense")
    assert world.misplaced[-1][2].endswith("2 uL of solvent but the sample is in transit")
    world.gantry_moved(STATIONS["dispense"])
    world.dispense("precursor", 10.0, 100.0, station="dispense")
    assert sample.params["precursor_volume_ul"] == pytest.approx(10.0)
    assert len(world.misplaced) == 2


def test_dispense_on_a_measured_sample_elsewhere_starts_no_new_one(world: SimulatedWorld) -> None:
    deck(world, "lcr")
    world.impedance(1e3, station="lcr")
    world.dispense("precursor", 10.0, 100.0, station="dispense")
    assert len(world.samples) == 1 and world.current_sample().params == {}


def test_anneal_away_from_the_sample_heats_nothing(world: SimulatedWorld) -> None:
    deck(world, "dispense")
    sample = world.current_sample()
    world.anneal(150.0, 30.0, station="hotplate")
    world.anneal(150.0, 12.0, station="hotplate")
    assert "anneal_time_min" not in sample.params
    assert [(s, text) for _, s, text in world.misplaced] == [
        (
            "hotplate",
            "hotplate at station 'hotplate' was above 30 C for 42 s but the sample is at "
            "'dispense'",
        )
    ]
    world.gantry_moved(STATIONS["hotplate"])
    world.anneal(150.0, 60.0, station="hotplate")
    assert sample.params["anneal_time_min"] == pytest.approx(1.0)


def test_impedance_away_from_the_sample_is_an_open_circuit(world: SimulatedWorld) -> None:
    deck(world, "balance")
    sample = world.current_sample()
    f = 1e3
    z = world.impedance(f, station="lcr")
    omega_rc = 2 * math.pi * f * OPEN_CIRCUIT_OHM * OPEN_CIRCUIT_F
    assert abs(z) == pytest.approx(OPEN_CIRCUIT_OHM / math.hypot(1.0, omega_rc), rel=0.03)
    assert math.degrees(cmath.phase(z)) == pytest.approx(-math.degrees(math.atan(omega_rc)), abs=2)
    assert abs(z) > 1e8 and z.imag < 0 and abs(z.imag) > 5 * z.real  # mostly capacitive
    assert world.impedance(0.0, station="lcr").real == pytest.approx(OPEN_CIRCUIT_OHM, rel=0.03)
    assert not sample.measured and "measured" not in [text for _, text in sample.events]
    assert world.misplaced[-1][1:] == (
        "lcr",
        "impedance meter at station 'lcr' measured an open circuit 2 time(s): the sample is at "
        "'balance'",
    )
    world.gantry_moved(STATIONS["lcr"])
    assert abs(world.impedance(f, station="lcr")) < 1e6 and sample.measured


def test_balance_away_from_the_sample_weighs_an_empty_pan(world: SimulatedWorld) -> None:
    deck(world, "dispense")
    sample = world.current_sample()
    world.dispense("precursor", 20.0, 100.0, station="dispense")
    assert world.mass_on_balance_g(station="balance") == 0.0
    assert world.misplaced[-1][1:] == (
        "balance",
        "balance at station 'balance' weighed an empty pan 1 time(s): the sample is at 'dispense'",
    )
    before = world.last_mass_change(station="balance")
    world.gantry_moved(STATIONS["balance"])  # the sample lands on the pan: it settles again
    assert world.last_mass_change(station="balance") > before
    assert world.mass_on_balance_g(station="balance") == pytest.approx(
        sample.substrate_mass_g + 0.020
    )
    assert world.mass_on_balance_g() == world.mass_on_balance_g(station="balance")
    assert sample.params["precursor_volume_ul"] == pytest.approx(20.0)


def test_undefined_station_is_named_in_the_log(world: SimulatedWorld) -> None:
    deck(world, "dispense")
    world.dispense("precursor", 1.0, 100.0, station="dispnese")
    assert world.current_sample().params == {}
    assert "no station 'dispnese' is defined" in world.misplaced[-1][2]


# -- instruments --------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(SIMULATORS))
def test_every_simulator_takes_a_station(kind: str, world: SimulatedWorld) -> None:
    cls = simulator_class(kind)
    assert "station" in inspect.signature(cls).parameters
    sim = cls(world, station="lcr")
    try:
        assert sim.station == "lcr"
    finally:
        sim.close()


def test_simulators_pass_their_station(world: SimulatedWorld) -> None:
    deck(world, "hotplate")
    pump = NE1000Sim(world, station="dispense")
    plate = IkaNamurSim(world, station="hotplate")
    balance = MtSicsSim(world, station="balance")
    lcr = ScpiLcrSim(world, station="lcr")
    try:
        sample = world.current_sample()
        lcr._measure()
        assert lcr.last_z is not None and abs(lcr.last_z) > 1e8 and not sample.measured
        assert balance._gross() < 1e-3  # empty pan
        plate.probe_c = 150.0
        plate._step(10.0)  # the sample is on the plate: it anneals
        assert sample.params["anneal_time_min"] > 0.0
        world.gantry_moved(STATIONS["balance"])
        assert balance._unstable_for() > 2.0  # the sample just landed on the pan: settling
        assert balance._gross() == pytest.approx(sample.substrate_mass_g, abs=0.02)
        # The plate, still hot after the sample left, now heats nothing.
        assert {s for _, s, _ in world.misplaced} == {"lcr", "balance", "hotplate"}
        assert pump.station == "dispense"
    finally:
        for sim in (pump, plate, balance, lcr):
            sim.close()


# -- the gantry ------------------------------------------------------------------------------------
def test_gantry_defines_its_stations_and_starts_at_the_origin() -> None:
    world = SimulatedWorld(time_scale=100.0)
    sim = GrblSim(world, stations={"home": [0.0, 0.0, 0.0], "dispense": [-60.0, -40.0, 0.0]})
    assert world.stations == {"home": (0.0, 0.0, 0.0), "dispense": (-60.0, -40.0, 0.0)}
    assert world.gantry_position == (0.0, 0.0, 0.0)
    assert world.current_sample().location == "home"
    sim.close()
    plain = SimulatedWorld()
    GrblSim(plain).close()
    assert not plain.location_checks and plain.gantry_position == (0.0, 0.0, 0.0)


def test_a_move_puts_the_sample_at_the_station_on_simulated_time() -> None:
    world = SimulatedWorld(time_scale=100.0)
    sim = GrblSim(world, stations={k: list(v) for k, v in STATIONS.items()})
    sim.on_connect()
    sample = world.current_sample()
    t0 = world.sim_time()
    assert sim.feed(b"G0 X-60 Y-40\n") == b"ok\r\n"  # rapid: 60 mm at 500 mm/min = 7.2 s sim
    arrival = sim.next_event()
    assert arrival is not None and arrival - t0 == pytest.approx(7.2, abs=0.5)
    assert world.gantry_position is None and sample.location is None
    assert world.sample_at("dispense") is None
    time.sleep(0.2)  # 20 s sim: well past the arrival; nobody looked in between
    assert world.sample_at("dispense") is sample and sample.location == "dispense"
    assert world.gantry_position == (-60.0, -40.0, 0.0)
    (t_at,) = [t for t, text in sample.events if text == "at station 'dispense'"]
    assert t_at == pytest.approx(arrival)  # stamped at the arrival, not when it was noticed
    assert wait_idle(sim) == (-60.0, -40.0, 0.0)
    sim.feed(b"G0 X-110\n")
    assert sample.location is None
    assert wait_idle(sim) == (-110.0, -40.0, 0.0)
    assert sample.location == "hotplate"
    sim.close()


class TimedDispense:
    """A stand-in pump: dispenses 10 µL at the dispense station at simulated time ``at``."""

    def __init__(self, world: SimulatedWorld, at: float) -> None:
        self.world, self.at, self.done = world, at, False
        world.attach(self.advance)

    def advance(self, now: float) -> None:
        if not self.done and now >= self.at:
            self.done = True
            self.world.dispense("precursor", 10.0, 100.0, station="dispense")


@pytest.mark.parametrize("offset_s", [-1.0, 1.0])
def test_a_pump_sees_the_sample_where_it_was_at_that_instant(offset_s: float) -> None:
    # The pump is attached before the gantry and nobody syncs until both events are past: the
    # world steps to the gantry's arrival first, so a pump finishing before it misses the sample
    # and one finishing after hits it.
    world = SimulatedWorld(time_scale=100.0)
    world.define_stations(STATIONS)
    sim = GrblSim(world)
    sim.on_connect()
    sim.feed(b"G0 X-60 Y-40\n")
    arrival = sim.next_event()
    assert arrival is not None
    world.detach(sim.advance)  # re-attach the gantry after the pump
    TimedDispense(world, arrival + offset_s)
    world.attach(sim.advance, sim.next_event)
    time.sleep(0.25)
    sample = world.current_sample()
    assert sample.location == "dispense"
    if offset_s < 0:
        assert sample.params == {} and "in transit" in world.misplaced[-1][2]
    else:
        assert sample.params["precursor_volume_ul"] == pytest.approx(10.0)
        assert world.misplaced == []
    sim.close()


def test_feed_hold_resume_and_reset_report_where_the_gantry_stopped() -> None:
    world = SimulatedWorld(time_scale=10.0)
    sim = GrblSim(world, stations={k: list(v) for k, v in STATIONS.items()})
    sim.on_connect()
    sim.feed(b"G1 X-60 F600\n")  # 6 s sim = 0.6 s real
    assert world.gantry_position is None
    time.sleep(0.05)
    sim.feed(b"!")
    state, held = status(sim)
    assert state == "Hold:0" and world.gantry_position == pytest.approx(held, abs=1e-3)
    assert -60.0 < held[0] < 0.0 and world.current_sample().location is None
    sim.feed(b"~")
    assert world.gantry_position is None
    time.sleep(0.05)
    out = sim.feed(b"\x18")  # reset while moving: stops where it is
    assert out.startswith(b"ALARM:3")
    _, stopped = status(sim)
    assert world.gantry_position == pytest.approx(stopped, abs=1e-3) and stopped[0] < held[0]
    sim.close()


# -- the workcell --------------------------------------------------------------------------------
def test_full_workcell_instruments_at_the_gantry_stations(tmp_path: Path) -> None:
    stations = FULL_DEVICES["gantry"]["stations"]
    assert set(stations) == {"rack", "dispense", "hotplate", "balance", "lcr"}
    expected = {
        "pump_precursor": "dispense",
        "pump_solvent": "dispense",
        "hotplate": "hotplate",
        "balance": "balance",
        "lcr": "lcr",
    }
    assert {n: e["station"] for n, e in FULL_DEVICES.items() if "station" in e} == expected
    world = SimulatedWorld(time_scale=1000.0)
    with SimulatedWorkcell(FULL_DEVICES, world=world) as cell:
        assert {n: cell.sims[n].station for n in expected} == expected
        assert set(world.stations) == set(stations)
        assert world.current_sample().location is None  # the gantry starts at the origin
        written = yaml.safe_load(cell.write_workcell(tmp_path / "cell.yaml").read_text())
    for name, station in expected.items():
        assert written["devices"][name]["station"] == station
    assert written["devices"]["gantry"]["stations"] == stations


def test_workcell_refuses_a_device_at_an_undefined_station() -> None:
    devices = {
        "gantry": {"kind": "grbl", "stations": {"dispense": [-60.0, -40.0, 0.0]}},
        "lcr": {"kind": "scpi_lcr", "station": "lrc"},
    }
    with pytest.raises(ValueError, match="undefined stations"):
        SimulatedWorkcell(devices, world=SimulatedWorld()).start()
