"""Plans are data: checked as message lists, and refused before any message when unsafe."""

from __future__ import annotations

from typing import ClassVar

import pytest
from ophyd import Component as Cpt
from ophyd import Device, Signal

from lab.errors import SafetyError
from lab.plans import characterize, measure_screening, synthesize
from lab.spec import SafetyLimits


class FakePump(Device):
    rate = Cpt(Signal, value=0.0)


class FakeLcr(Device):
    frequency = Cpt(Signal, value=1000.0)
    z_real = Cpt(Signal, value=0.0)


SAFETY = SafetyLimits(max_pump_rate_ul_min=500, max_dispense_volume_ul=100)


def test_synthesize_messages() -> None:
    a, b = FakePump(name="pa"), FakePump(name="pb")
    msgs = list(
        synthesize(
            {"precursor": a, "solvent": b},
            {"precursor": (10.0, 50.0), "solvent": (0.0, 50.0)},
            SAFETY,
        )
    )
    cmds = [m.command for m in msgs]
    assert cmds[0] == "stage" and cmds[1] == "open_run" and cmds[-1] == "unstage"
    sets = [(m.obj.name, m.args[0]) for m in msgs if m.command == "set"]
    # the solvent pump is skipped: zero volume
    assert sets == [("pa_rate", 50.0), ("pa", 10.0)]
    assert cmds.count("save") == 1
    assert next(m for m in msgs if m.command == "create").kwargs["name"] == "dispense_precursor"
    assert msgs[1].kwargs["plan_name"] == "synthesize"


@pytest.mark.parametrize(
    ("recipe", "match"),
    [
        ({"precursor": (150.0, 50.0)}, "volume 150.0 uL"),
        ({"precursor": (10.0, 900.0)}, "rate 900.0 uL/min"),
        ({"precursor": (-1.0, 50.0)}, "volume -1.0"),
        ({"precursor": (10.0, 0.0)}, "rate 0.0"),
    ],
)
def test_unsafe_recipe_yields_no_message(recipe: dict, match: str) -> None:
    plan = synthesize({"precursor": FakePump(name="p")}, recipe, SAFETY)
    with pytest.raises(SafetyError, match=match):
        next(plan)


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


class FakeHotplate(Device):
    setpoint = Cpt(Signal, value=25.0)
    heating = Cpt(Signal, value=0)


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


def test_synthesize_with_gantry_and_anneal_messages() -> None:
    pump, hp, gantry = FakePump(name="pa"), FakeHotplate(name="hp"), FakeGantry(name="g")
    msgs = list(
        synthesize(
            {"precursor": pump},
            {"precursor": (5.0, 50.0)},
            SAFETY,
            anneal=(150.0, 30.0),
            hotplate=hp,
            gantry=gantry,
            time_scale=60.0,
        )
    )
    sets = [(m.obj.name, m.args[0]) for m in msgs if m.command == "set"]
    assert sets == [
        ("g", (-1.0, -1.0, 0.0)),
        ("pa_rate", 50.0),
        ("pa", 5.0),
        ("g", (-2.0, -1.0, 0.0)),
        ("hp", 150.0),
        ("hp_heating", 0),
        ("g", (-3.0, -1.0, 0.0)),
    ]
    sleeps = [m.args[0] for m in msgs if m.command == "sleep"]
    assert sleeps == [30.0]  # 30 min at a clock 60x faster than real time


def test_anneal_needs_a_safe_temperature_and_a_hotplate() -> None:
    with pytest.raises(SafetyError, match="anneal temperature 900.0"):
        next(synthesize({}, {}, SAFETY, anneal=(900.0, 1.0), hotplate=FakeHotplate(name="hp")))
    with pytest.raises(SafetyError, match="no hotplate"):
        next(synthesize({}, {}, SAFETY, anneal=(100.0, 1.0)))
    gantry = FakeGantry(name="g")
    gantry.stations = {"dispense": (0.0, 0.0, 0.0)}
    with pytest.raises(SafetyError, match="no station 'lcr'"):
        next(synthesize({}, {}, SAFETY, gantry=gantry))
