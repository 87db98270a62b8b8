"""The kills part: ``lab campaign launch`` SIGKILLed at random database writes, then
``lab campaign resume``, and the store audited for lost and duplicated measurements."""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .audit import audit_campaign
from .campaigns import write_campaign
from .common import SCRIPT, Settings
from .processes import child_env, kill_group


def _progress(db_path: Path) -> int:
    """Audit events, readings and closed runs so far (0 before the database exists)."""
    if not db_path.exists():
        return 0
    try:
        with contextlib.closing(
            sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=2.0)
        ) as con:
            row = con.execute(
                "SELECT (SELECT count(*) FROM audit_event) + (SELECT count(*) FROM reading)"
                " + (SELECT count(*) FROM run WHERE exit_status IS NOT NULL)"
            ).fetchone()
            return int(row[0])
    except sqlite3.Error:
        return 0


def child_console(args: argparse.Namespace, console_args: list[str]) -> int:
    """Child: the ``lab`` console, with the instrument leases' time-to-live set."""
    from lab.console import main as console_main

    if args.lease_ttl is not None:
        os.environ["LAB_LEASE_TTL_S"] = str(args.lease_ttl)
    sys.argv = ["lab", *console_args]
    console_main()
    return 0


def run_kills(tmp: Path, cfg: Settings, api_url: str, logs: Path) -> dict[str, Any]:
    """The kills part (see ``benchmarks/reliability.py``)."""
    import numpy as np

    from simulators.workcell import DEMO_DEVICES, SimulatedWorkcell
    from simulators.world import SimulatedWorld

    work = tmp / "kills"
    work.mkdir()
    campaign = write_campaign(work / "campaign.yaml", budget=cfg.kills_budget, anneal=False)
    db_path = work / "lab.db"
    db = f"sqlite:///{db_path}"
    rng = np.random.default_rng(cfg.seed + 1)
    kills: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    final_rc: int | None = None
    t_start = time.monotonic()
    world = SimulatedWorld(time_scale=cfg.time_scale, seed=cfg.seed + 1)
    with SimulatedWorkcell(DEMO_DEVICES, world=world, seed=cfg.seed + 1) as cell:
        workcell = cell.write_workcell(work / "workcell.yaml")

        def start(i: int) -> subprocess.Popen:
            if i == 0:
                args = ["campaign", "launch", str(campaign), "--db", db, "--seed", str(cfg.seed)]
            else:
                args = ["campaign", "resume", "1", "--db", db]
            args += ["--workcell", str(workcell)]
            if cfg.lease_ttl_s is None:
                cmd = [sys.executable, "-m", "lab.console", *args]
            else:
                cmd = [
                    sys.executable,
                    str(SCRIPT),
                    "--child",
                    "console",
                    "--lease-ttl",
                    str(cfg.lease_ttl_s),
                    "--",
                    *args,
                ]
            out = (logs / f"kills-{i:02d}.log").open("w")
            proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=child_env(work, api_url),
                start_new_session=True,
            )
            out.close()
            return proc

        i = 0
        while len(kills) < cfg.kills:
            before = _progress(db_path)
            target = before + int(rng.integers(1, cfg.kill_span + 1))
            t_run = time.monotonic()
            proc = start(i)
            deadline = t_run + cfg.child_timeout_s
            killed = False
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    break
                if _progress(db_path) >= target:
                    kill_group(proc)
                    proc.wait()
                    killed = True
                    break
                time.sleep(0.005)
            else:
                kill_group(proc)
                proc.wait()
                runs.append({"run": i, "timeout": True})
                break
            at = _progress(db_path)
            states = _states(db_path)
            runs.append(
                {
                    "run": i,
                    "killed": killed,
                    "exit_code": None if killed else proc.returncode,
                    "wall_s": round(time.monotonic() - t_run, 2),
                }
            )
            i += 1
            if not killed:
                final_rc = proc.returncode
                break  # the campaign ended (or failed) before the kill point
            kills.append(
                {"kill": len(kills) + 1, "rows_before": before, "target": target, "at": at}
                | {"states": states}
            )
        if final_rc is None and not (runs and runs[-1].get("timeout")):
            proc = start(i)
            try:
                final_rc = proc.wait(timeout=cfg.child_timeout_s)
            except subprocess.TimeoutExpired:
                kill_group(proc)
                proc.wait()
            runs.append({"run": i, "killed": False, "exit_code": final_rc})
    audit = audit_campaign(db, 1) if db_path.exists() else None
    result: dict[str, Any] = {
        "runs": len(kills),
        "lost": audit["lost"] if audit else 0,
        "duplicated": audit["duplicated"] if audit else 0,
        "completed": bool(
            final_rc == 0 and audit and audit["status"] == "completed" and audit["all_final"]
        ),
        "final_exit_code": final_rc,
        "lease_ttl_s": cfg.lease_ttl_s if cfg.lease_ttl_s is not None else 30.0,
        "wall_s": round(time.monotonic() - t_start, 1),
    }
    if audit:
        result.update(
            experiments=audit["experiments"],
            states=audit["states"],
            analysis_failed=audit["analysis_failed"],
            budget=audit["budget"],
            spent=audit["spent"],
            spent_once=abs(audit["spent"] - audit["budget"]) < 1e-9,
            unexplained_abandoned=audit["unexplained_abandoned"],
            stale_readings=audit["stale_readings"],
            off_frequency_readings=audit["off_frequency_readings"],
            reconciled=_reconciled(db),
            duplicate_breakdown={
                k: audit[k]
                for k in (
                    "duplicate_keys",
                    "duplicate_measurements",
                    "duplicate_measurement_runs",
                    "duplicate_syntheses",
                )
            },
        )
    result["_details"] = {
        "kills": kills,
        "runs": runs,
        "lost": audit["lost_detail"] if audit else [],
    }
    return result


def _reconciled(db_url: str) -> dict[str, int]:
    """What the resumes' reconciliation did: experiments analysed or abandoned on resume."""
    from sqlmodel import Session, select

    from lab.store import AuditEvent, Store

    with Session(Store(db_url).engine) as s:
        notes = [
            str(ev.detail.get("detail", ""))
            for ev in s.exec(select(AuditEvent).where(AuditEvent.kind == "reconciled"))
        ]
    return {
        "analysed_on_resume": sum("analysed" in n for n in notes),
        "abandoned_on_resume": sum("abandoned" in n for n in notes),
    }


def _states(db_path: Path) -> dict[str, int]:
    try:
        with contextlib.closing(
            sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=2.0)
        ) as con:
            return dict(con.execute("SELECT state, count(*) FROM experiment GROUP BY state"))
    except sqlite3.Error:
        return {}
