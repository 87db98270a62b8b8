"""Orchestration overhead per experiment, and resume time.

    python benchmarks/orchestration.py --out DIR [--n 8]

Runs the demo campaign against the simulated workcell with an effectively instant clock
(time scale 1e6: pumping, heating and settling take no time), so what remains per experiment
is orchestration: Prefect flow/task bookkeeping, the RunEngine, driver round trips over
ptys/TCP, database writes and the analysis. The same experiments are also run without Prefect
(calling the task functions directly) as the baseline of the same run, so the ratio isolates
Prefect's share. Then a campaign is killed with SIGKILL mid-run and resumed; the resume time is
from starting `lab campaign resume` to the next experiment reaching the bench.
Writes DIR/summary.json and DIR/orchestration.csv.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

import yaml

ROOT = Path(__file__).resolve().parents[1]


def campaign_file(tmp: Path, budget: int) -> Path:
    data = yaml.safe_load((ROOT / "campaigns" / "demo.yaml").read_text())
    data.update(budget=budget, initial_design=3)
    path = tmp / "campaign.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def per_experiment_seconds(db: str) -> list[float]:
    from lab.store import Store

    return [
        (e.updated_at - e.started_at).total_seconds()
        for e in Store(db).experiments(1)
        if e.started_at is not None and e.state == "analysed"
    ]


def run_with_prefect(tmp: Path, workcell: Path, n: int) -> tuple[list[float], float]:
    from prefect import flow

    from lab.flows import campaign_flow

    flow(lambda: None, name="warm-up")()  # start the temporary server outside the timing
    db = f"sqlite:///{tmp / 'prefect.db'}"
    t0 = time.perf_counter()
    campaign_flow(str(campaign_file(tmp, n)), str(workcell), db, seed=0)
    return per_experiment_seconds(db), time.perf_counter() - t0


def run_without_prefect(tmp: Path, workcell: Path, n: int) -> tuple[list[float], float]:
    """The same loop with the task bodies called directly (no Prefect bookkeeping)."""
    from lab.flows import analyse, propose, run_experiment
    from lab.spec import load_campaign
    from lab.store import Store

    spec = load_campaign(campaign_file(tmp, n))
    store = Store(f"sqlite:///{tmp / 'plain.db'}")
    cid = store.create_campaign(spec.name, spec.model_dump(mode="json"), 0, n)
    out = []
    t_start = time.perf_counter()
    for _ in range(n):
        (exp_id,) = propose.fn(store, cid, spec, 0, 1)
        t0 = time.perf_counter()
        uid = run_experiment.fn(store, exp_id, spec, str(workcell))
        analyse.fn(store, exp_id, uid, spec, "lcr")
        out.append(time.perf_counter() - t0)
    return out, time.perf_counter() - t_start


def resume_time(tmp: Path, workcell: Path) -> float:
    from lab.store import Store

    db = f"sqlite:///{tmp / 'resume.db'}"
    env = {**os.environ, "PREFECT_HOME": str(tmp / "prefect-home")}
    cmd = [sys.executable, "-m", "lab.console", "campaign"]
    proc = subprocess.Popen(
        [*cmd, "launch", str(campaign_file(tmp, 6)), "--db", db, "--workcell", str(workcell)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    while True:
        try:
            if len([e for e in Store(db).experiments(1) if e.state == "analysed"]) >= 2:
                break
        except Exception:  # noqa: BLE001 - not created yet
            pass
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    started = {e.id for e in Store(db).experiments(1) if e.started_at is not None}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [*cmd, "resume", "1", "--db", db, "--workcell", str(workcell)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    while not any(
        e.started_at is not None and e.id not in started for e in Store(db).experiments(1)
    ):
        time.sleep(0.02)
    elapsed = time.perf_counter() - t0
    proc.wait(timeout=300)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--n", type=int, default=8, help="experiments per campaign")
    parser.add_argument("--quick", action="store_true", help="2 experiments, no resume (tests)")
    args = parser.parse_args()
    if args.quick:
        args.n = 2
    args.out.mkdir(parents=True, exist_ok=True)

    from simulators.workcell import DEMO_DEVICES, SimulatedWorkcell
    from simulators.world import SimulatedWorld

    with (
        tempfile.TemporaryDirectory() as d,
        SimulatedWorkcell(
            DEMO_DEVICES, world=SimulatedWorld(time_scale=1e6, seed=0), seed=0
        ) as cell,
    ):
        tmp = Path(d)
        os.environ["PREFECT_HOME"] = str(tmp / "prefect-home")
        workcell = cell.write_workcell(tmp / "workcell.yaml")
        plain, plain_total = run_without_prefect(tmp, workcell, args.n)
        with_prefect, total = run_with_prefect(tmp, workcell, args.n)
        resume = None if args.quick else resume_time(tmp, workcell)
    rows = [("without_prefect", i, s) for i, s in enumerate(plain)]
    rows += [("with_prefect", i, s) for i, s in enumerate(with_prefect)]
    with (args.out / "orchestration.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["mode", "experiment", "seconds"])
        w.writerows(rows)
    summary = {
        "experiments": args.n,
        "median_s_per_experiment_without_prefect": statistics.median(plain),
        "median_s_per_experiment_with_prefect": statistics.median(with_prefect),
        "prefect_overhead_ratio": statistics.median(with_prefect) / statistics.median(plain),
        "campaign_wall_s_without_prefect": plain_total,
        "campaign_wall_s_with_prefect": total,
        "campaign_overhead_ratio": total / plain_total,
        "prefect_overhead_s_per_experiment": (total - plain_total) / args.n,
        "resume_to_next_experiment_s": resume,
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    for k, v in summary.items():
        print(f"{k:42s} {v:.3f}" if isinstance(v, float) else f"{k:42s} {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
