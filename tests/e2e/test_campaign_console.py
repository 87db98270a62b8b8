"""Console contracts of campaigns: launch, list, status, pause, resume, abort, approve."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import lab, lab_env, small_campaign, status

STATES = {"proposed", "approved", "running", "measured", "analysed", "failed", "abandoned"}


@pytest.mark.timeout(900)
def test_launch_list_status(tmp_path: Path) -> None:
    env = lab_env(tmp_path)
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
    cid = int(re.search(r"campaign id (\d+)", out.stdout).group(1))
    listing = json.loads(lab(["campaign", "list", "--db", db, "--json"], env).stdout)
    assert listing == [{"id": cid, "name": "demo-interlayer", "state": "completed"}]
    st = status(db, cid, env)
    assert set(st) == {"state", "budget", "spent", "experiments"}
    assert st["state"] == "completed" and st["budget"] == 3 and st["spent"] == 3
    assert len(st["experiments"]) == 3
    for e in st["experiments"]:
        assert set(e) == {"key", "status", "fidelity", "params", "value", "edited_by", "samples"}
        assert e["status"] == "analysed" and math.isfinite(e["value"])
    # a completed campaign cannot be resumed; the error is one line, exit 2
    again = lab(["campaign", "resume", str(cid), "--db", db], env)
    assert again.returncode == 2 and "completed" in again.stderr and "Traceback" not in again.stderr


@pytest.mark.timeout(900)
def test_pause_then_resume_then_abort(tmp_path: Path, sim_workcell: Path) -> None:
    env = lab_env(tmp_path)
    db = f"sqlite:///{tmp_path / 'lab.db'}"
    campaign = small_campaign(tmp_path, budget=6, initial_design=3)
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
    cid = None
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        listing = lab(["campaign", "list", "--db", db, "--json"], env)
        if listing.returncode == 0 and listing.stdout.strip() not in ("", "[]"):
            cid = json.loads(listing.stdout)[0]["id"]
            if any(e["status"] == "analysed" for e in status(db, cid, env)["experiments"]):
                break
        time.sleep(0.3)
    assert cid is not None
    assert lab(["campaign", "pause", str(cid), "--db", db], env).returncode == 0
    assert proc.wait(timeout=120) == 0
    st = status(db, cid, env)
    assert st["state"] == "paused"
    assert 1 <= st["spent"] < 6
    assert all(e["status"] in STATES for e in st["experiments"])
    assert all(e["status"] in ("analysed", "proposed") for e in st["experiments"])

    out = lab(["campaign", "resume", str(cid), "--db", db, "--workcell", str(sim_workcell)], env)
    assert out.returncode == 0, out.stdout + out.stderr
    st = status(db, cid, env)
    assert st["state"] == "completed" and st["spent"] == 6
    keys = [e["key"] for e in st["experiments"]]
    assert len(keys) == len(set(keys)) == 6
    assert all(e["status"] == "analysed" for e in st["experiments"])

    done = lab(["campaign", "abort", str(cid), "--db", db], env)
    assert done.returncode == 2 and "completed" in done.stderr


@pytest.mark.timeout(900)
def test_batch_approval(tmp_path: Path, sim_workcell: Path) -> None:
    env = lab_env(tmp_path)
    db = f"sqlite:///{tmp_path / 'lab.db'}"
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
    cid = None
    while time.monotonic() < deadline:
        listing = lab(["campaign", "list", "--db", db, "--json"], env)
        if listing.returncode == 0 and '"awaiting_approval"' in listing.stdout:
            cid = json.loads(listing.stdout)[0]["id"]
            break
        time.sleep(0.3)
    assert cid is not None, "campaign never waited for approval"
    st = status(db, cid, env)
    assert [e["status"] for e in st["experiments"]] == ["proposed", "proposed"]
    assert st["spent"] == 0  # nothing reached the bench before approval
    ok = lab(["campaign", "approve", str(cid), "--db", db], env)
    assert ok.returncode == 0 and "approved 2" in ok.stdout
    assert proc.wait(timeout=120) == 0, proc.stdout.read()
    st = status(db, cid, env)
    assert st["state"] == "completed"
    assert [e["status"] for e in st["experiments"]] == ["analysed", "analysed"]
