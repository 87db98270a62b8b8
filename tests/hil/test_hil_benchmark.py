"""The round-trip benchmark runs end to end (a few repetitions), so it cannot rot."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from simulators.workcell import FULL_DEVICES
from tests.benchmark_runner import run_benchmark


def test_roundtrip_benchmark_writes_table_csv_and_summary(tmp_path: Path) -> None:
    proc = run_benchmark("hil_roundtrip.py", "--out", str(tmp_path), "--n", "3", timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "median ms" in proc.stdout and "measure(1 kHz)" in proc.stdout
    assert proc.stderr == ""  # no stray warnings or tracebacks

    with (tmp_path / "roundtrip.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert {row["device"] for row in rows} == set(FULL_DEVICES)
    assert {row["transport"] for row in rows if row["device"] == "lcr"} == {"tcp"}
    assert {row["transport"] for row in rows if row["device"] != "lcr"} == {"pty"}
    for row in rows:
        assert row["n"] == "3"
        assert 0 < float(row["min_ms"]) <= float(row["median_ms"]) <= float(row["p90_ms"])
        assert float(row["p90_ms"]) <= float(row["max_ms"])

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["n"] == 3 and summary["wall_s"] > 0
    assert set(summary["devices"]) == set(FULL_DEVICES)
    commands = summary["devices"]["pump_precursor"]["commands"]
    assert {"status()", "run()", "dispense(1 uL, 500 uL/min)"} <= set(commands)
    assert sum(len(d["commands"]) for d in summary["devices"].values()) == len(rows)
