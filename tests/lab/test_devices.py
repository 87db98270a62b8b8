"""Ophyd devices and Bluesky plans against the full simulated workcell, over real ptys/TCP (HIL)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from bluesky import RunEngine
from bluesky import plan_stubs as bps
from bluesky import plans as bp

from lab.devices import connect_workcell
from lab.errors import ProcessError, SafetyError, WorkcellError
from lab.plans import make_sample
from lab.spec import SafetyLimits
from lab.steps import STEPS, StepContext
from lab.workcell import load_workcell
from simulators.workcell import FULL_DEVICES, SimulatedWorkcell
from simulators.world import SimulatedWorld

KINDS = ("ne1000", "ika_namur", "mt_sics", "grbl", "scpi_lcr")
SAFETY = SafetyLimits(max_pump_rate_ul_min=500, max_dispense_volume_ul=100, max_temperature_c=250)


@pytest.fixture
def bench(tmp_path: Path):
    world = SimulatedWorld(time_scale=2000.0, seed=4)
    with SimulatedWorkcell(FULL_DEVICES, world=world, seed=4) as cell:
        path = cell.write_workcell(tmp_path / "workcell.yaml")
        workcell = load_workcell(path)
        assert workcell.time_scale == 2000.0
        with connect_workcell(workcell, SAFETY, kinds=KINDS) as inst:
            yield inst, world, workcell


def collect(RE: RunEngine) -> list[tuple[str, dict]]:
    docs: list[tuple[str, dict]] = []
    RE.subscribe(lambda name, doc: docs.append((name, doc)))
    return docs


def test_count_on_the_balance(bench) -> None:
    inst, world, _ = bench
    RE = RunEngine({}, context_managers=[])
    docs = collect(RE)
    RE(bps.mv(inst.gantry, inst.gantry.station("balance")))  # the gantry carries the sample
    RE(bp.count([inst.balance], num=2))
    events = [d for n, d in docs if n == "event"]
    assert len(events) == 2
    assert events[0]["data"]["balance_weight"] == pytest.approx(world.mass_on_balance_g(), abs=1e-3)
    desc = next(d for n, d in docs if n == "descriptor")
    assert desc["data_keys"]["balance_weight"]["units"] == "g"


def test_mv_on_the_hotplate_setpoint_and_heat(bench) -> None:
    inst, _, _ = bench
    RE = RunEngine({}, context_managers=[])
    RE(bps.mv(inst.hotplate.setpoint, 80.0))
    assert inst.hotplate.setpoint.get() == pytest.approx(80.0)
    RE(bps.mv(inst.hotplate, 60.0))
    assert abs(inst.hotplate.temperature.get() - 60.0) <= inst.hotplate.tolerance_c
    RE(bps.mv(inst.hotplate.heating, 0))


def test_gantry_moves_to_stations(bench) -> None:
    inst, _, _ = bench
    RE = RunEngine({}, context_managers=[])
    target = inst.gantry.station("hotplate")
    RE(bps.mv(inst.gantry, target))
    assert (inst.gantry.x.get(), inst.gantry.y.get(), inst.gantry.z.get()) == pytest.approx(target)
    with pytest.raises(Exception, match="no station 'oven'"):
        inst.gantry.station("oven")


def _process(inst, *steps):
    """``(where, kind, device, values)`` tuples for make_sample from (kind, device, values)."""
    return [
        (f"process[{i}] ({k})", STEPS.get(k), inst.device(d), v)
        for i, (k, d, v) in enumerate(steps)
    ]


def _ctx(workcell) -> StepContext:
    stations = {n: e.station for n, e in workcell.devices.items() if e.station}
    return StepContext(
        safety=SAFETY, time_scale=workcell.time_scale, stations=stations, tracked=True
    )


def test_process_with_gantry_and_anneal(bench) -> None:
    inst, world, workcell = bench
    RE = RunEngine({}, context_managers=[])
    docs = collect(RE)
    steps = _process(
        inst,
        ("move", "gantry", {"station": "dispense"}),
        ("dispense", "precursor", {"volume": 12.0, "rate": 100.0}),
        ("dispense", "solvent", {"volume": 12.0, "rate": 100.0}),
        ("move", "gantry", {"station": "hotplate"}),
        ("anneal", "hotplate", {"temperature": 120.0, "time": 20.0}),
        ("move", "gantry", {"station": "lcr"}),
    )
    RE(make_sample(steps, _ctx(workcell)))
    sample = world.current_sample()
    assert sample.params["precursor_volume_ul"] == pytest.approx(12.0, rel=0.05)
    assert sample.params["solvent_volume_ul"] == pytest.approx(12.0, rel=0.05)
    assert sample.params["anneal_temperature_c"] == pytest.approx(120.0, abs=10.0)
    assert sample.params["anneal_time_min"] >= 15.0
    assert sample.location == "lcr"
    streams = {d["name"] for n, d in docs if n == "descriptor"}
    assert streams == {"step2_dispense", "step3_dispense", "step5_anneal_start", "step5_anneal_end"}
    assert (inst.gantry.x.get(), inst.gantry.y.get()) == pytest.approx(
        inst.gantry.station("lcr")[:2]
    )
    assert next(d for n, d in docs if n == "stop")["exit_status"] == "success"


def test_a_step_where_the_sample_is_not_runs_nothing(bench) -> None:
    inst, world, workcell = bench
    before = len(world.samples), dict(world.current_sample().params)
    steps = _process(inst, ("dispense", "precursor", {"volume": 12.0, "rate": 100.0}))
    with pytest.raises(ProcessError, match="station 'dispense'"):
        RunEngine({}, context_managers=[])(make_sample(steps, _ctx(workcell)))
    assert (len(world.samples), dict(world.current_sample().params)) == before


def test_unsafe_anneal_never_reaches_the_hotplate(bench) -> None:
    inst, _, workcell = bench
    before = inst.hotplate.setpoint.get()
    steps = _process(
        inst,
        ("move", "gantry", {"station": "hotplate"}),
        ("anneal", "hotplate", {"temperature": 400.0, "time": 5.0}),
    )
    with pytest.raises(SafetyError, match="temperature=400 degC exceeds safety.max_temperature_c"):
        RunEngine({}, context_managers=[])(make_sample(steps, _ctx(workcell)))
    assert inst.hotplate.setpoint.get() == before


def test_gantry_stop_then_move_on_the_same_connection(bench) -> None:
    inst, _, _ = bench
    gantry = inst.gantry
    gantry.feed_mm_min = 2.0  # 184 mm to the lcr station: 2.8 s real at the bench's time scale
    moving = gantry.set(gantry.station("lcr"))
    time.sleep(0.05)
    gantry.stop()  # what the RunEngine does when a plan is stopped or aborted
    with pytest.raises(WorkcellError, match="was stopped at"):
        moving.wait(timeout=5.0)
    x, y = gantry.x.get(), gantry.y.get()
    assert -180.0 < x < 0.0 and -40.0 < y < 0.0  # stopped on the way, position known
    gantry.feed_mm_min = 3000.0
    RunEngine({}, context_managers=[])(bps.mv(gantry, gantry.station("hotplate")))
    assert (gantry.x.get(), gantry.y.get(), gantry.z.get()) == pytest.approx(
        gantry.station("hotplate")
    )
    assert inst.gantry._driver.status().state == "Idle"  # stop() after the run: nothing sent
