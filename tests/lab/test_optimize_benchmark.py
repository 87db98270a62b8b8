"""The optimiser benchmark runs end to end (``--quick``), so it cannot rot."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tests.benchmark_runner import import_benchmark, run_benchmark


def test_quick_benchmark_writes_summary_steps_and_plots(tmp_path: Path) -> None:
    proc = run_benchmark("optimizer.py", "--quick", "--out", str(tmp_path), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary) == {"branin", "interface"}
    for problem, strategies in summary.items():
        assert {"random", "sf_qlognei", "mf_gp"} <= set(strategies), problem
        for row in strategies.values():
            assert set(row) == {"cost_to_target", "reached", "final_regret"}
            assert 0.0 <= row["reached"] <= 1.0 and row["final_regret"] >= 0.0
    # the interface surrogate runs only where there is an interlayer to choose
    assert "mf_surrogate" in summary["interface"] and "mf_surrogate" not in summary["branin"]
    report = json.loads((tmp_path / "report.json").read_text())
    assert any("mf_surrogate: not run on branin" in n for n in report["notes"])
    with (tmp_path / "steps.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    sur = [r for r in rows if r["strategy"] == "mf_surrogate"]
    # it pays for its pretraining labels (one calculation per modifier), then chooses
    assert [r["how"] for r in sur[:5]] == ["pretraining"] * 5
    assert {r["how"] for r in sur[5:]} - {"pretraining"}
    assert max(float(r["cumulative_cost"]) for r in sur) <= 3.0 + 1e-9
    mf = [r for r in rows if r["strategy"] == "mf_gp"]
    assert mf and {r["fidelity"] for r in mf} > {"full"}
    assert max(float(r["cumulative_cost"]) for r in mf) <= 3.0 + 1e-9
    for problem in summary:
        assert (tmp_path / f"convergence_{problem}.png").stat().st_size > 1000
    # the report rebuilt from the run's own files (--merge) is the same
    merged = tmp_path / "merged"
    proc = run_benchmark(
        "optimizer.py", "--merge", str(tmp_path), "--out", str(merged), timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((merged / "summary.json").read_text()) == summary
    # the same run twice is refused (a seed would count twice)
    twice = ("--merge", str(tmp_path), str(merged), "--out", str(tmp_path / "twice"))
    proc = run_benchmark("optimizer.py", *twice, timeout=300)
    assert proc.returncode != 0 and "is in both" in proc.stderr


def test_ratio_cells_say_which_way_a_censored_median_bounds_them() -> None:
    bench = import_benchmark("optimizer")
    assert bench._ratio_bound(False, False) == ""
    assert bench._ratio_bound(True, False) == ">="  # the reference's cost is a lower bound
    assert bench._ratio_bound(False, True) == "<="  # ours is
    assert bench._ratio_bound(True, True) == "n/a"
    assert bench._ratio_text(31.2, "<=") == "<=31.20x"
    assert bench._ratio_text(2.0, ">=", invert=True) == "<=0.50x"
    assert bench._ratio_text(2.0, "n/a").startswith("n/a")
    assert bench._ratio_text(None, "") == ""


def test_proposal_time_mode_writes_its_figures(tmp_path: Path) -> None:
    args = [
        "--quick",
        "--proposal-time",
        "20",
        "--problems",
        "branin",
        "--strategies",
        "mf_gp,mf[acq=mf_mes]",
        "--out",
        str(tmp_path),
    ]
    proc = run_benchmark("optimizer.py", *args, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((tmp_path / "proposal_time.json").read_text())
    for variant in ("mf_gp", "mf[acq=mf_mes]"):
        row = res["branin"][variant]
        assert row["observations"] == 20 and row["fidelities"] == 3
        assert row["wall_s"] > 0 and row["cpu_s"] > 0


def test_measured_cost_to_target_waits_for_a_measurement_at_the_target() -> None:
    """The recommendation may reach the target on a design nobody measured at the target;
    the stricter figure counts only target measurements."""
    bench = import_benchmark("optimizer")
    problem = bench.Problem(
        "p",
        {"objective": {"direction": "minimize"}, "target_fidelity": "full"},
        truth=lambda *a: 0.0,
        true_value=lambda p: 0.0,
        budget=10.0,
        f_star=1.0,
        f_ref=2.0,
    )
    run = bench.Run("p", "s", 0, 10.0)
    for i, (fid, cost, value, regret) in enumerate(
        [("cheap", 0.1, 1.0, 0.0), ("full", 1.0, 1.5, 0.0), ("full", 1.0, 1.02, 0.0)]
    ):
        spent = sum(s.cost for s in run.steps) + cost
        run.steps.append(bench.Step("p", "s", 0, i, fid, cost, spent, value, regret, 0.0, 0.0))
    assert bench.cost_to_target(run, 10.0) == (0.1, True)  # the recommendation's regret
    assert bench.measured_cost_to_target(run, problem, 10.0) == (2.1, True)
    assert bench.measured_cost_to_target(bench.Run("p", "s", 0, 10.0), problem, 10.0) == (
        10.0,
        False,
    )


def test_a_median_with_half_the_seeds_censored_is_a_bound() -> None:
    """With exactly half the seeds at the target, the median averages in a censored cost."""
    bench = import_benchmark("optimizer")
    campaign = {"objective": {"direction": "minimize"}, "target_fidelity": "full"}
    problem = bench.Problem(
        "p", campaign, lambda *a: 0.0, lambda p: 0.0, budget=10.0, f_star=0.0, f_ref=1.0
    )
    runs = []
    for strategy, reached_at in (("sf_qlognei", [2.0, None]), ("mf_gp", [1.0, 2.0])):
        for seed, cost in enumerate(reached_at):
            run = bench.Run("p", strategy, seed, 10.0)
            regret = 0.0 if cost is not None else 0.5
            run.steps.append(
                bench.Step("p", strategy, seed, 0, "full", 1.0, cost or 10.0, 0.0, regret, 0, 0)
            )
            runs.append(run)
    _, report = bench.summarise({"p": problem}, runs)
    row = report["p"]["strategies"]["mf_gp"]
    assert row["vs_sf_qlognei_censored"] and row["vs_sf_qlognei_bound"] == ">="
