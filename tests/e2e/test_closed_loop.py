"""End to end: the real Prefect flow drives the simulated workcell over ptys and TCP.

Proposals go through Bluesky plans on Ophyd devices over the pyserial drivers to the
simulators; documents land in SQLite; analysis fits the sweeps; the model refits.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lab.store import ExperimentState, Store
from lab.store._models import FINAL_STATES
from simulators.workcell import DEMO_DEVICES, SimulatedWorkcell
from simulators.world import SimulatedWorld

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def small_campaign(tmp_path: Path) -> Path:
    data = yaml.safe_load((ROOT / "campaigns" / "demo.yaml").read_text())
    data.update(budget=5, initial_design=3)
    data["fidelities"][0]["options"]["points"] = 11
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def workcell(tmp_path: Path):
    world = SimulatedWorld(time_scale=5000.0, seed=7)
    with SimulatedWorkcell(DEMO_DEVICES, world=world, seed=7) as cell:
        path = tmp_path / "workcell.yaml"
        cell.write_workcell(path)
        yield path, world


def test_campaign_flow_end_to_end(
    prefect_harness, small_campaign: Path, workcell, tmp_path: Path
) -> None:
    from lab.flows import campaign_flow, progress_listener

    workcell_path, world = workcell
    db_url = f"sqlite:///{tmp_path / 'lab.db'}"
    events: list[dict] = []
    with progress_listener(events.append):
        cid = campaign_flow(str(small_campaign), str(workcell_path), db_url, seed=3)

    store = Store(db_url)
    exps = store.experiments(cid)
    assert len(exps) == 5
    assert all(ExperimentState(e.state) in FINAL_STATES for e in exps)
    assert [e.state for e in exps] == ["analysed"] * 5
    assert [e.strategy for e in exps] == ["initial_design"] * 3 + ["qlognei"] * 2
    assert all(e.model_version != "initial_design" for e in exps[3:])
    from sqlmodel import Session, select

    from lab.store import ModelSnapshot

    with Session(store.engine) as s:
        snaps = s.exec(select(ModelSnapshot).where(ModelSnapshot.campaign_id == cid)).all()
    assert {s.version for s in snaps} == {e.model_version for e in exps[3:]}
    assert sorted(s.n_observations for s in snaps) == [3, 4]

    # exactly one measurement per experiment, finite, with provenance
    ms = store.measurements(cid)
    assert sorted(m.experiment_id for m in ms) == sorted(e.id for e in exps)
    for m in ms:
        assert math.isfinite(m.value) and m.value > 0
        assert m.unit == "ohm*cm^2" and m.fidelity == "full" and m.instrument == "lcr"
        assert len(m.raw["frequency_hz"]) == 11

    # each experiment has its synthesis and characterisation runs, with raw readings
    for e in exps:
        runs = store.runs(e.id)
        assert [r.plan_name for r in runs] == ["make_sample", "characterize"]
        assert all(r.exit_status == "success" for r in runs)
        assert len(store.readings(runs[1].uid)) == 11

    # the measured objective tracks the simulated truth of what was really done
    measured = [s for s in world.samples if s.measured]
    assert len(measured) == 5
    for e, sample in zip(exps, measured, strict=True):
        truth = world.interfacial_resistance(sample)
        assert e.objective == pytest.approx(truth, rel=0.1)
        assert sample.params["precursor_volume_ul"] == pytest.approx(
            e.params["precursor_volume_ul"], rel=0.05
        )

    kinds = [ev["kind"] for ev in events]
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert kinds.count("finished") == 5


def test_lab_demo_command(tmp_path: Path) -> None:
    """The console's `lab demo` runs a whole (small) campaign in a fresh process."""
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "COLUMNS": "200",
    }
    env.pop("LAB_DATABASE_URL", None)
    proc = subprocess.run(
        [sys.executable, "-m", "lab.console", "demo", "--budget", "3", "--seed", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "best" in out and "interfacial_resistance" in out
    db = tmp_path / "data" / "interface-lab" / "lab.db"
    assert str(db) in out.replace("\n", "")
    store = Store(f"sqlite:///{db}")
    exps = store.experiments(1)
    assert len(exps) == 3 and all(e.state == "analysed" for e in exps)
