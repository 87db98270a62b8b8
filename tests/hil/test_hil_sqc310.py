"""SQC-310 deposition controller: the host driver and the Ophyd device against the independent
simulator over a real pty, checked against what the simulated world says landed on the sample."""

from __future__ import annotations

import pytest

from drivers import DepositionFault, DepositionLimits, SafetyLimitError
from lab.errors import WorkcellError
from lab.instruments import check_device
from lab.instruments.sqc310 import DepositionController
from lab.workcell import parse_workcell
from tests.hil.helpers import open_driver, running_cell

FILMS = {1: "LiF", 2: "Li3N", 3: "Li"}


def cell_with(**options):
    return running_cell({"deposition": {"kind": "sqc310", "films": FILMS, **options}})


def test_identify_films_and_a_deposit_that_lands_on_the_sample() -> None:
    with cell_with(tooling_error=0.04) as cell, open_driver(cell, "deposition") as dep:
        assert "SQC-310" in dep.identify()
        assert [dep.film_name(n) for n in FILMS] == ["LiF", "Li3N", "Li"]
        assert dep.run_state().stopped
        got = dep.deposit(1, 2, 5.0, poll_s=0.01, timeout_s=30.0)
        assert got == pytest.approx(5.0, abs=0.2)  # the crystal reads the set thickness
        assert dep.layer(1) == (5.0, 2)
        sample = cell.world.current_sample()
        # ...while the mis-set tooling puts 4 % more on the substrate
        assert sample.layers[0][0] == "Li3N"
        assert sample.layers[0][1] == pytest.approx(5.2, rel=0.04)
        assert sample.params["modifier"] == "Li3N"


def test_unsafe_thickness_never_reaches_the_controller() -> None:
    with cell_with() as cell:
        with open_driver(cell, "deposition", limits=DepositionLimits(max_thickness_nm=50)) as dep:
            before = dep.layer(1)
            with pytest.raises(SafetyLimitError):
                dep.set_layer_thickness(1, 80.0)
            assert dep.layer(1) == before
        assert cell.world.current_sample().layers == []


def test_a_crystal_failure_mid_layer_fails_the_deposit() -> None:
    with cell_with(crystal_fail_at_a=20.0) as cell, open_driver(cell, "deposition") as dep:
        with pytest.raises(DepositionFault):
            dep.deposit(1, 1, 5.0, poll_s=0.01, timeout_s=30.0)
        assert dep.run_state().stopped or dep.run_state().fault


def test_the_device_refuses_a_film_whose_name_does_not_match_before_any_deposit() -> None:
    with cell_with() as cell, open_driver(cell, "deposition") as driver:
        wrong = DepositionController(driver, name="deposition", films={1: "LiF", 2: "Au"})
        with pytest.raises(WorkcellError, match="film 2 is named 'Li3N'.*says it holds Au"):
            wrong.stage()
        assert cell.world.current_sample().layers == []
        right = DepositionController(driver, name="deposition", films=FILMS)
        right.stage()
        right.set(("LiF", 2.0)).wait(timeout=30)
        assert right.material.get() == "LiF"
        assert right.thickness.get() == pytest.approx(2.0, abs=0.2)
        right.unstage()


def test_instruments_check_identifies_it_and_checks_every_film() -> None:
    with cell_with() as cell:
        entry = parse_workcell({"devices": {"deposition": cell.devices["deposition"]}})
        ok = check_device("deposition", entry.devices["deposition"])
        assert ok.ok, ok.message
        assert "SQC-310" in ok.message and "3 film(s) match" in ok.message
        bad = dict(cell.devices["deposition"], films={1: "LiF", 2: "Au"})
        entry = parse_workcell({"devices": {"deposition": bad}})
        result = check_device("deposition", entry.devices["deposition"])
        assert not result.ok and "says it holds Au" in result.message
