"""What every part of the benchmark shares: the repository root, the entry script
(its child processes run it again), the run settings and the progress log."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "reliability.py"
"""The entry script; the faults and kills parts start it again as their children."""


@dataclass
class Settings:
    """What one benchmark run does (``--quick``, default, ``--full``)."""

    seed: int = 0
    fault_rate: float = 0.10
    lower_fault_rate: float | None = 0.01
    time_scale: float = 2000.0
    faults_budget: int = 8
    kills: int = 10
    kills_budget: int = 16
    kill_span: int = 40
    lease_ttl_s: float | None = None
    fuzz_examples: int = 1000
    unsafe_proposals: int = 600
    child_timeout_s: float = 900.0
    parallel: bool = False


PRESETS: dict[str, dict[str, Any]] = {
    "quick": {
        "lower_fault_rate": None,
        "faults_budget": 2,
        "kills": 1,
        "kills_budget": 2,
        "kill_span": 25,
        "lease_ttl_s": 3.0,
        "fuzz_examples": 25,
        "unsafe_proposals": 30,
        "child_timeout_s": 240.0,
        "parallel": True,
    },
    "default": {},
    "full": {
        "faults_budget": 20,
        "kills": 20,
        "kills_budget": 26,
        "fuzz_examples": 5000,
        "unsafe_proposals": 3000,
        "child_timeout_s": 2400.0,
    },
}


def log(msg: str) -> None:
    """Progress line on stderr."""
    print(f"[reliability {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
