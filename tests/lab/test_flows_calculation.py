"""The cheap-fidelity calculation as a Prefect flow: serial, threads, and Dask via prefect-dask.

A pair potential stands in for CHGNet (an optional extra), named as ``module:attribute`` like
any user-supplied energy model; it records the process it ran in, so the tests can see that
the Dask path really computes in the cluster's worker processes.
"""

from __future__ import annotations

import csv
import importlib.util
import os
from pathlib import Path

import pytest
from pymatgen.core import Structure
from typer.testing import CliRunner

from lab.console import app
from lab.materials import JsonCache
from lab.materials.calculator import calculate_library
from tests.lab.materials.test_calculator import PairEnergy

ENERGY = "tests.lab.test_flows_calculation:RecordingPairEnergy"
PAIRS = [("Au", "LLZO"), ("LiF", "LLZO"), ("MgO", "LLTO"), ("Al", "Li6PS5Cl")]
PID_DIR = "LAB_TEST_PID_DIR"


class RecordingPairEnergy(PairEnergy):
    """:class:`PairEnergy` that leaves a file named by its process id in ``$LAB_TEST_PID_DIR``."""

    def __call__(self, structure: Structure) -> float:
        where = os.environ.get(PID_DIR)
        if where:
            Path(where, str(os.getpid())).touch()
        return super().__call__(structure)


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ``$LAB_CACHE_DIR`` (inherited by the worker processes) and a pid directory."""
    monkeypatch.setenv("LAB_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "pids").mkdir()
    monkeypatch.setenv(PID_DIR, str(tmp_path / "pids"))
    return tmp_path / "cache"


@pytest.mark.skipif(importlib.util.find_spec("prefect_dask") is None, reason="no dask extra")
@pytest.mark.timeout(180)
def test_dask_fan_out_equals_serial_and_reuses_the_cache(
    prefect_harness, cache_dir: Path, tmp_path: Path
) -> None:
    from lab.flows import calculate, progress_listener

    serial = calculate_library(
        PAIRS, PairEnergy(), cache=JsonCache(tmp_path / "serial", "adhesion")
    )

    events: list[dict] = []
    with progress_listener(events.append):
        fanned = calculate(PAIRS, ENERGY, executor="dask", workers=2)
    assert [(r.modifier, r.partner) for r in fanned] == PAIRS
    for a, b in zip(fanned, serial, strict=True):
        assert (a.w_substrate, a.w_partner, a.energy_ev) == pytest.approx(
            (b.w_substrate, b.w_partner, b.energy_ev), rel=1e-12
        )
    assert all(r.seconds > 0.0 for r in fanned)
    assert [(e["done"], e["total"]) for e in events] == [(n, 4) for n in range(1, 5)]
    assert events[-1]["eta_s"] == 0.0
    pids = {int(p.name) for p in (tmp_path / "pids").iterdir()}
    assert pids and os.getpid() not in pids  # computed in the cluster's worker processes
    assert len(list((cache_dir / "adhesion").glob("*.json"))) == 4

    for p in (tmp_path / "pids").iterdir():
        p.unlink()
    events.clear()
    with progress_listener(events.append):
        again = calculate(PAIRS, ENERGY, executor="dask", workers=2)
    assert [(e["done"], e["total"], e["eta_s"]) for e in events] == [(4, 4, 0.0)]
    assert all(r.seconds == 0.0 for r in again)  # read back, nothing recomputed
    assert not list((tmp_path / "pids").iterdir())
    assert [r.w_partner for r in again] == [r.w_partner for r in fanned]


def test_console_calculate_with_threads_writes_csv_and_reuses_the_cache(
    prefect_harness, cache_dir: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    out = tmp_path / "adhesion.csv"
    args = ["calculate", "-m", "Au", "-m", "LiF", "-p", "LLZO", "--energy", ENERGY]
    first = runner.invoke(
        app, [*args, "--executor", "threads", "--workers", "2", "--out", str(out)]
    )
    assert first.exit_code == 0, first.output
    assert "2 stacks (0 from the cache)" in first.output
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [(r["modifier"], r["partner"]) for r in rows] == [("Au", "LLZO"), ("LiF", "LLZO")]
    serial = calculate_library(
        [("Au", "LLZO"), ("LiF", "LLZO")],
        PairEnergy(),
        cache=JsonCache(tmp_path / "serial", "adhesion"),
    )
    assert [float(r["w_substrate_j_m2"]) for r in rows] == pytest.approx(
        [r.w_substrate for r in serial], rel=1e-12
    )
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "2 stacks (2 from the cache)" in again.output


def test_console_calculate_refuses_unknown_names_and_models(prefect_harness) -> None:
    runner = CliRunner()
    bad = runner.invoke(app, ["calculate", "-m", "Unobtainium", "--energy", ENERGY])
    assert bad.exit_code == 2 and "Unobtainium" in bad.output
    model = runner.invoke(app, ["calculate", "-m", "Au", "-p", "LLZO", "--energy", "nope:Nothing"])
    assert model.exit_code == 2 and "nope:Nothing" in model.output
    addr = runner.invoke(app, ["calculate", "--dask-address", "tcp://127.0.0.1:1"])
    assert addr.exit_code == 2 and "--executor dask" in addr.output
