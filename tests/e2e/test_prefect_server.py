"""Against a real local Prefect server: the campaign's flow runs and UI artifacts are there."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import free_port, lab, lab_env, small_campaign


@pytest.fixture
def prefect_server(tmp_path: Path):
    port = free_port()
    env = lab_env(tmp_path)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    api = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 180
    while True:
        try:
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "Prefect server did not start"
        time.sleep(0.5)
    yield api, env
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.mark.timeout(900)
def test_campaign_runs_and_artifacts_on_a_real_server(prefect_server, tmp_path: Path) -> None:
    api, env = prefect_server
    env = {**env, "PREFECT_API_URL": api}
    db = f"sqlite:///{tmp_path / 'lab.db'}"
    out = lab(
        [
            "campaign",
            "launch",
            str(small_campaign(tmp_path, budget=3, initial_design=2)),
            "--db",
            db,
        ],
        env,
    )
    assert out.returncode == 0, out.stdout + out.stderr

    runs = httpx.post(f"{api}/flow_runs/filter", json={}, timeout=10).json()
    flows = {
        f["id"]: f["name"] for f in httpx.post(f"{api}/flows/filter", json={}, timeout=10).json()
    }
    names = sorted(flows[r["flow_id"]] for r in runs)
    assert names.count("interface-campaign") == 1
    assert names.count("experiment") == 3
    assert all(r["state_type"] == "COMPLETED" for r in runs)

    arts = httpx.post(f"{api}/artifacts/latest/filter", json={}, timeout=10).json()
    by_key = {a["key"]: a for a in arts}
    assert {"campaign-1-progress", "campaign-1-proposals", "campaign-1-best"} <= set(by_key)
    assert by_key["campaign-1-progress"]["data"] == pytest.approx(100.0)
    table = by_key["campaign-1-proposals"]["data"]
    assert "space-filling initial design" in str(table)
    assert "interfacial_resistance" in by_key["campaign-1-best"]["data"]


@pytest.mark.timeout(900)
def test_deployment_runs_on_a_process_worker(
    prefect_server, tmp_path: Path, sim_workcell: Path
) -> None:
    api, env = prefect_server
    env = {**env, "PREFECT_API_URL": api}
    out = lab(["server", "deploy", "--pool", "lab-test"], env)
    assert out.returncode == 0, out.stdout + out.stderr
    deps = httpx.post(f"{api}/deployments/filter", json={}, timeout=10).json()
    (dep,) = [d for d in deps if d["name"] == "campaign"]
    assert dep["work_pool_name"] == "lab-test"
    db = f"sqlite:///{tmp_path / 'worker.db'}"
    params = {
        "campaign_path": str(small_campaign(tmp_path, budget=2, initial_design=2)),
        "workcell_path": str(sim_workcell),
        "db_url": db,
    }
    run = httpx.post(
        f"{api}/deployments/{dep['id']}/create_flow_run", json={"parameters": params}, timeout=10
    ).json()
    worker = subprocess.run(
        [sys.executable, "-m", "lab.console", "worker", "up", "--pool", "lab-test", "--run-once"],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert worker.returncode == 0, worker.stdout[-2000:] + worker.stderr[-2000:]
    state = httpx.get(f"{api}/flow_runs/{run['id']}", timeout=10).json()["state_type"]
    assert state == "COMPLETED"
    from lab.store import Store

    exps = Store(db).experiments(1)
    assert [e.state for e in exps] == ["analysed", "analysed"]


@pytest.mark.timeout(900)
def test_batch_approval_with_the_ui_form(
    prefect_server, tmp_path: Path, sim_workcell: Path
) -> None:
    """The run pauses with a form; submitting it (as the UI does) edits and approves the batch."""
    api, env = prefect_server
    env = {**env, "PREFECT_API_URL": api}
    db = f"sqlite:///{tmp_path / 'ui.db'}"
    campaign = small_campaign(tmp_path, budget=2, initial_design=2, batch_size=2, approval="batch")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lab.console",
            "campaign",
            "launch",
            str(campaign),
            "--db",
            db,
            "--workcell",
            str(sim_workcell),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 240
    paused = None
    while paused is None:
        assert time.monotonic() < deadline and proc.poll() is None, "the run never paused"
        runs = httpx.post(f"{api}/flow_runs/filter", json={}, timeout=10).json()
        paused = next((r for r in runs if r["state_type"] == "PAUSED"), None)
        time.sleep(0.5)
    from lab.store import Store

    store = Store(db)
    assert [e.state for e in store.experiments(1)] == ["proposed", "proposed"]
    edit = {"precursor_volume_ul": 7.5}
    resp = httpx.post(
        f"{api}/flow_runs/{paused['id']}/resume",
        json={"run_input": {"approve": True, "notes": "thinner first", "edits": {"2": edit}}},
        timeout=10,
    )
    assert resp.status_code < 300, resp.text
    assert proc.wait(timeout=180) == 0, proc.stdout.read()[-3000:]
    exps = store.experiments(1)
    assert [e.state for e in exps] == ["analysed", "analysed"]
    assert exps[1].params["precursor_volume_ul"] == 7.5
    assert exps[1].edited_by == "Prefect UI" and exps[1].strategy != "edited"
