"""Plans are data: checked as message lists, and refused before any message when unsafe."""

from __future__ import annotations

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
