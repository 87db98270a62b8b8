"""Plans are data: checked as message lists, and refused before any message when unsafe."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from ophyd import Component as Cpt
from ophyd import Device, Signal

from lab.errors import ProcessError, SafetyError
from lab.plans import characterize, make_sample, measure_screening, sweep_frequencies
from lab.routes import ROUTES
from lab.spec import SafetyLimits
from lab.steps import STEPS, StepContext


class FakePump(Device):
    rate = Cpt(Signal, value=0.0)


class FakeLcr(Device):
    frequency = Cpt(Signal, value=1000.0)
    z_real = Cpt(Signal, value=0.0)


class FakeHotplate(Device):
    setpoint = Cpt(Signal, value=25.0)
    heating = Cpt(Signal, value=0)


class FakeDeposition(Device):
    thickness = Cpt(Signal, value=0.0)


class FakeGantry(Device):
    x = Cpt(Signal, value=0.0)

    stations: ClassVar[dict[str, tuple[float, float, float]]] = {
        "dispense": (-1.0, -1.0, 0.0),
        "hotplate": (-2.0, -1.0, 0.0),
        "lcr": (-3.0, -1.0, 0.0),
    }

    def station(self, name: str) -> tuple[float, float, float]:
        if name not in self.stations:
            raise SafetyError(f"no station '{name}'")
        return self.stations[name]


SAFETY = SafetyLimits(
    max_pump_rate_ul_min=500,
    max_dispense_volume_ul=100,
    max_temperature_c=250,
    max_deposit_thickness_nm=300,
)
DISPENSE, ANNEAL, DEPOSIT, MOVE = (STEPS.get(n) for n in ("dispense", "anneal", "deposit", "move"))


def ctx(**kw: Any) -> StepContext:
    return StepContext(safety=SAFETY, **kw)


def sets(msgs: list) -> list[tuple[str, Any]]:
    return [(m.obj.name, m.args[0]) for m in msgs if m.command == "set"]


def streams(msgs: list) -> list[str]:
    return [m.kwargs["name"] for m in msgs if m.command == "create"]


def test_make_sample_dispense_messages() -> None:
    a, b = FakePump(name="pa"), FakePump(name="pb")
    steps = [
        ("process[0] (dispense)", DISPENSE, a, {"volume": 10.0, "rate": 50.0}),
        ("process[1] (dispense)", DISPENSE, b, {"volume": 0.0, "rate": 50.0}),
    ]
    msgs = list(make_sample(steps, ctx(), md={"experiment_id": 7}))
    cmds = [m.command for m in msgs]
    assert cmds[0] == "stage" and cmds[1] == "open_run" and cmds[-1] == "unstage"
    # only the pump that dispenses is staged: the solvent step is skipped (zero volume)
    assert [m.obj.name for m in msgs if m.command == "stage"] == ["pa"]
    # the rate is set before the volume
    assert sets(msgs) == [("pa_rate", 50.0), ("pa", 10.0)]
    assert cmds.count("trigger") == 1 and cmds.count("save") == 1
    assert streams(msgs) == ["step1_dispense"]
    open_run = msgs[1]
    assert open_run.kwargs["plan_name"] == "make_sample"
    assert open_run.kwargs["experiment_id"] == 7
    assert open_run.kwargs["steps"] == [
        {"index": 1, "step": "dispense", "device": "pa", "args": {"volume": 10.0, "rate": 50.0}}
    ]


def test_make_sample_one_reading_per_step_named_by_its_index() -> None:
    a, b = FakePump(name="pa"), FakePump(name="pb")
    steps = [
        ("process[0] (dispense)", DISPENSE, a, {"volume": 0.0, "rate": 50.0}),
        ("process[1] (dispense)", DISPENSE, b, {"volume": 20.0, "rate": 80.0}),
        ("process[2] (dispense)", DISPENSE, a, {"volume": 5.0, "rate": 40}),
    ]
    msgs = list(make_sample(steps, ctx()))
    # the index is the step's position in the process, so a skipped step leaves a gap
    assert streams(msgs) == ["step2_dispense", "step3_dispense"]
    assert sets(msgs) == [("pb_rate", 80.0), ("pb", 20.0), ("pa_rate", 40.0), ("pa", 5.0)]
    # each device is staged once, however many steps use it
    assert sorted(m.obj.name for m in msgs if m.command == "stage") == ["pa", "pb"]
    meta = msgs[next(i for i, m in enumerate(msgs) if m.command == "open_run")].kwargs
    assert [s["index"] for s in meta["steps"]] == [2, 3]
    assert meta["steps"][1]["args"] == {"volume": 5.0, "rate": 40.0}
    assert isinstance(meta["steps"][1]["args"]["rate"], float)


def test_make_sample_anneal_messages() -> None:
    hp = FakeHotplate(name="hp")
    steps = [("process[0] (anneal)", ANNEAL, hp, {"temperature": 150.0, "time": 30.0})]
    msgs = list(make_sample(steps, ctx(time_scale=60.0)))
    body = [m.command for m in msgs if m.command in ("set", "save", "sleep")]
    assert body == ["set", "save", "sleep", "save", "set"]
    assert sets(msgs) == [("hp", 150.0), ("hp_heating", 0)]
    # 30 min at a clock 60x faster than real time
    assert [m.args[0] for m in msgs if m.command == "sleep"] == [30.0]
    assert streams(msgs) == ["step1_anneal_start", "step1_anneal_end"]


def test_make_sample_deposit_messages() -> None:
    dep = FakeDeposition(name="dep")
    steps = [("process[0] (deposit)", DEPOSIT, dep, {"material": "LiF", "thickness": 5})]
    msgs = list(make_sample(steps, ctx()))
    assert sets(msgs) == [("dep", ("LiF", 5.0))]
    cmds = [m.command for m in msgs]
    body = cmds[cmds.index("open_run") + 1 : cmds.index("close_run")]
    # deposit (finishes when the layer is done), then read what landed
    assert [c for c in body if c != "wait"] == ["set", "trigger", "create", "read", "save"]
    assert streams(msgs) == ["step1_deposit"]
    assert next(m for m in msgs if m.command == "read").obj is dep


def test_make_sample_move_messages() -> None:
    g, hp = FakeGantry(name="g"), FakeHotplate(name="hp")
    steps = [
        ("process[0] (move)", MOVE, g, {"station": "hotplate"}),
        ("process[1] (anneal)", ANNEAL, hp, {"temperature": 100.0, "time": 1.0}),
        ("process[2] (move)", MOVE, g, {"station": "lcr"}),
    ]
    msgs = list(make_sample(steps, ctx()))
    assert sets(msgs) == [
        ("g", (-2.0, -1.0, 0.0)),
        ("hp", 100.0),
        ("hp_heating", 0),
        ("g", (-3.0, -1.0, 0.0)),
    ]
    # a move reads nothing of its own
    assert streams(msgs) == ["step2_anneal_start", "step2_anneal_end"]
    assert [m.args[0] for m in msgs if m.command == "sleep"] == [60.0]


@pytest.mark.parametrize(
    ("step", "device", "values", "match"),
    [
        (DISPENSE, FakePump, {"volume": 150.0, "rate": 50.0}, "safety.max_dispense_volume_ul"),
        (DISPENSE, FakePump, {"volume": 10.0, "rate": 900.0}, "safety.max_pump_rate_ul_min"),
        (DISPENSE, FakePump, {"volume": 10.0, "rate": 0.0}, "rate=0 uL/min must be above 0"),
        (DISPENSE, FakePump, {"volume": -1.0, "rate": 50.0}, "volume=-1 uL is below 0"),
        (ANNEAL, FakeHotplate, {"temperature": 900.0, "time": 1.0}, "safety.max_temperature_c"),
        (ANNEAL, FakeHotplate, {"temperature": 100.0, "time": -1.0}, "time=-1 min is below 0"),
        (
            DEPOSIT,
            FakeDeposition,
            {"material": "Li", "thickness": 400.0},
            "safety.max_deposit_thickness_nm",
        ),
        (DEPOSIT, FakeDeposition, {"material": "Li", "thickness": 0.0}, "must be above 0"),
    ],
)
def test_unsafe_step_yields_no_message(step: Any, device: type, values: dict, match: str) -> None:
    # a safe step first: nothing of it may be sent either
    steps = [
        ("process[0] (dispense)", DISPENSE, FakePump(name="ok"), {"volume": 1.0, "rate": 10.0}),
        ("process[1] (bad)", step, device(name="bad"), values),
    ]
    plan = make_sample(steps, ctx())
    with pytest.raises(SafetyError, match=match) as exc:
        next(plan)
    assert "process[1] (bad)" in str(exc.value)


def test_tracked_sample_at_the_wrong_station_runs_nothing() -> None:
    hp = FakeHotplate(name="hotplate_dev")
    tracked = {"tracked": True, "stations": {"hotplate_dev": "hotplate"}}
    steps = [("process[0] (anneal)", ANNEAL, hp, {"temperature": 100.0, "time": 1.0})]
    with pytest.raises(ProcessError, match="at no station, not at hotplate_dev's station"):
        next(make_sample(steps, ctx(**tracked)))
    with pytest.raises(ProcessError, match="at 'dispense'"):
        next(make_sample(steps, ctx(location="dispense", **tracked)))
    # a move to the wrong station does not help; nothing of the move is sent either
    g = FakeGantry(name="g")
    wrong = [("process[0] (move)", MOVE, g, {"station": "lcr"}), *steps]
    with pytest.raises(ProcessError, match="at 'lcr'"):
        next(make_sample(wrong, ctx(**tracked)))
    # untracked (no gantry): the station is not checked
    assert sets(list(make_sample(steps, ctx(stations=tracked["stations"]))))[0] == (
        "hotplate_dev",
        100.0,
    )


def test_a_move_first_brings_the_sample_to_the_station() -> None:
    hp, g = FakeHotplate(name="hotplate_dev"), FakeGantry(name="g")
    steps = [
        ("process[0] (move)", MOVE, g, {"station": "hotplate"}),
        ("process[1] (anneal)", ANNEAL, hp, {"temperature": 100.0, "time": 1.0}),
    ]
    c = ctx(tracked=True, stations={"hotplate_dev": "hotplate"})
    msgs = list(make_sample(steps, c))
    assert sets(msgs)[:2] == [("g", (-2.0, -1.0, 0.0)), ("hotplate_dev", 100.0)]
    # already there: no move needed
    at = ctx(tracked=True, stations={"hotplate_dev": "hotplate"}, location="hotplate")
    assert sets(list(make_sample(steps[1:], at)))[0] == ("hotplate_dev", 100.0)


def test_characterize_one_event_per_frequency() -> None:
    lcr = FakeLcr(name="lcr")
    msgs = list(characterize(lcr, [1e5, 1e3, 20.0], SAFETY, md={"experiment_id": 3}))
    assert [m.args[0] for m in msgs if m.command == "set"] == [1e5, 1e3, 20.0]
    assert [m.command for m in msgs].count("trigger") == 3
    assert [m.command for m in msgs].count("save") == 3
    open_run = next(m for m in msgs if m.command == "open_run")
    assert open_run.kwargs["experiment_id"] == 3


def test_unsafe_frequency_refused_before_any_message() -> None:
    with pytest.raises(SafetyError, match="frequency 5000000.0 Hz"):
        next(characterize(FakeLcr(name="lcr"), [1e3, 5e6], SAFETY))


def test_screening_is_a_single_point() -> None:
    msgs = list(measure_screening(FakeLcr(name="lcr"), 100.0, SAFETY))
    assert [m.command for m in msgs].count("save") == 1
    assert (
        next(m for m in msgs if m.command == "open_run").kwargs["plan_name"] == "measure_screening"
    )


def test_sweep_frequencies_high_to_low() -> None:
    f = sweep_frequencies(20.0, 1e6, 5)
    assert f[0] == 1e6 and f[-1] == 20.0 and len(f) == 5
    assert f == sorted(f, reverse=True)


def test_impedance_sweep_route_plan() -> None:
    route = ROUTES.get("impedance_sweep")
    lcr = FakeLcr(name="lcr")
    values = {"freq_min": 20.0, "freq_max": 1e6, "points": 4, "ac_voltage": 0.02}
    route.check_values(values, ctx(), "fidelities.full")
    route.configure(lcr, values)
    assert lcr.ac_voltage_v == 0.02
    msgs = list(route.plan(lcr, values, ctx(), {"experiment_id": 5}))
    assert [m.args[0] for m in msgs if m.command == "set"] == sweep_frequencies(20.0, 1e6, 4)
    assert [m.command for m in msgs].count("save") == 4
    open_run = next(m for m in msgs if m.command == "open_run")
    assert open_run.kwargs["plan_name"] == route.plan_name == "characterize"
    assert open_run.kwargs["experiment_id"] == 5


def test_impedance_single_route_plan() -> None:
    route = ROUTES.get("impedance_single")
    values = {"frequency": 100.0, "ac_voltage": 0.01}
    msgs = list(route.plan(FakeLcr(name="lcr"), values, ctx(), {}))
    assert [m.args[0] for m in msgs if m.command == "set"] == [100.0]
    assert [m.command for m in msgs].count("save") == 1
    assert next(m for m in msgs if m.command == "open_run").kwargs["plan_name"] == route.plan_name


def test_unsafe_route_values_refused() -> None:
    sweep = ROUTES.get("impedance_sweep")
    values = {"freq_min": 20.0, "freq_max": 1e6, "points": 4, "ac_voltage": 5.0}
    with pytest.raises(SafetyError, match="safety.max_ac_voltage_v"):
        sweep.check_values(values, ctx(), "fidelities.full")
    single = ROUTES.get("impedance_single")
    with pytest.raises(SafetyError, match="safety.min_frequency_hz"):
        single.check_values({"frequency": 5.0, "ac_voltage": 0.01}, ctx(), "fidelities.s")
    # the plan itself refuses an unsafe frequency before any message
    with pytest.raises(SafetyError, match="frequency 5.0 Hz"):
        next(single.plan(FakeLcr(name="lcr"), {"frequency": 5.0, "ac_voltage": 0.01}, ctx(), {}))
