"""Crash safety: SIGKILL the orchestrator at several points, resume, lose and repeat nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lab.store import Store
from tests.e2e.conftest import lab, lab_env, small_campaign


def _launch(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "lab.console", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )


def _kill_when(proc: subprocess.Popen, condition: Callable[[], bool], timeout: float = 180) -> bool:
    """SIGKILL the orchestrator's whole process group once ``condition`` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            hit = condition()
        except Exception:  # noqa: BLE001 - the database may not exist yet
            hit = False
        if hit:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.02)
    raise AssertionError("kill condition never met")


@pytest.mark.timeout(900)
def test_sigkill_at_several_points_then_resume(tmp_path: Path, sim_workcell: Path) -> None:
    env = lab_env(tmp_path)
    env["LAB_LEASE_TTL_S"] = "3"  # a resume waits for the killed run's leases: 3 s, not 30 s
    db = f"sqlite:///{tmp_path / 'lab.db'}"
    budget = 6
    campaign = small_campaign(tmp_path, budget=budget, initial_design=3)
    store = Store(db)

    def states() -> list[str]:
        return [e.state for e in store.experiments(1)]

    kill_points: list[tuple[str, Callable[[], bool]]] = [
        ("while the first experiment runs", lambda: "running" in states()),
        ("right after a measurement was stored", lambda: states().count("analysed") >= 2),
        (
            "with a fresh proposal waiting",
            lambda: states()[-1:] == ["proposed"] and len(states()) >= 4,
        ),
        ("mid-run again", lambda: "running" in states() and len(states()) >= 5),
    ]
    proc = _launch(
        ["campaign", "launch", str(campaign), "--db", db, "--workcell", str(sim_workcell)], env
    )
    killed = []
    for what, cond in kill_points:
        if _kill_when(proc, cond):
            killed.append(what)
        proc = _launch(
            ["campaign", "resume", "1", "--db", db, "--workcell", str(sim_workcell)], env
        )
    assert proc.wait(timeout=300) == 0
    assert len(killed) >= 3, killed

    exps = store.experiments(1)
    ms = store.measurements(1)
    analysed = [e for e in exps if e.state == "analysed"]
    # nothing duplicated: one measurement per analysed experiment, unique idempotency keys
    assert sorted(m.experiment_id for m in ms) == sorted(e.id for e in analysed)
    assert len({e.idempotency_key for e in exps}) == len(exps)
    # nothing lost: every experiment with a completed measurement run has its measurement
    for e in exps:
        runs = store.runs(e.id)
        if any(r.plan_name == "characterize" and r.exit_status == "success" for r in runs):
            assert e.state == "analysed", (e.seq, e.state)
        assert e.state in ("analysed", "abandoned", "failed"), (e.seq, e.state)
    # every abandoned experiment says why; the budget is spent exactly once
    assert all(e.failure_reason for e in exps if e.state == "abandoned")
    assert store.spent(1) == budget
    assert store.campaign(1).status == "completed"
    assert len(analysed) >= budget - len(killed)
    status = lab(["campaign", "status", "1", "--db", db, "--json"], env)
    assert '"state": "completed"' in status.stdout
