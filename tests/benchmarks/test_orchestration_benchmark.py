"""The orchestration benchmark runs (quick mode) and writes its figures."""

from __future__ import annotations

import json
from pathlib import Path

from tests.benchmark_runner import run_benchmark


def test_quick_orchestration_benchmark(tmp_path: Path) -> None:
    proc = run_benchmark("orchestration.py", "--out", str(tmp_path), "--quick", timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["experiments"] == 2
    assert summary["median_s_per_experiment_with_prefect"] > 0
    assert summary["campaign_overhead_ratio"] > 0
    assert (tmp_path / "orchestration.csv").read_text().count("\n") == 5
