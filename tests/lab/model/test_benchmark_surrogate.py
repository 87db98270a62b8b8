"""The surrogate benchmark runs end to end in its quick mode (so it cannot rot)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tests.benchmark_runner import import_benchmark, run_benchmark


def test_quick_benchmark(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {"LAB_CACHE_DIR": str(tmp_path / "cache")}
    proc = run_benchmark("surrogate.py", "--quick", "--out", str(out), timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    kinds = {
        "descriptor_gp",
        "bulk_gnn",
        "interface_gnn",
        "bulk_gnn_nopretrain",
        "interface_gnn_nopretrain",
    }
    assert set(summary) == {"rmse", "nlpd", "coverage90"}
    for metric, values in summary.items():
        assert set(values) == kinds, metric
        assert all(isinstance(v, float) for v in values.values())
    assert all(0.0 <= v <= 1.0 for v in summary["coverage90"].values())
    with open(out / "folds.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["split"] for r in rows} == {"lomo", "lopo"}
    assert {r["kind"] for r in rows} == kinds
    assert (out / "parity.png").stat().st_size > 1000
    details = json.loads((out / "details.json").read_text())
    assert "ratios_vs_targets" in details and details["lomo"] == summary
    assert details["base_fit_seconds"]["count"] == 5 * 2  # warm start: two groups per kind


def test_oracle_reference_and_kinds_option(tmp_path: Path) -> None:
    bench = import_benchmark("surrogate")
    table = bench.oracle_table(["Au", "LiF", "Cu"], ["LLZO", "Li6PS5Cl"])
    assert table.shape[:2] == (3, 2) and table.shape[2] > 20
    assert bool(table.isfinite().all())
    flat = table.reshape(6, -1)
    assert len({tuple(r.tolist()) for r in flat}) == 6  # every pair distinct
    bad = ("--out", str(tmp_path), "--kinds", "interface_gnn,nonsense")
    proc = run_benchmark("surrogate.py", *bad, timeout=60)
    assert proc.returncode == 2 and "nonsense" in proc.stderr
