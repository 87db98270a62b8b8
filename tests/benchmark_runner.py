"""How tests run the benchmark scripts: one subprocess recipe and one import recipe."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"


def run_benchmark(
    script: str, *args: str, timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``benchmarks/<script>`` with ``args`` from the repository root.

    Args:
        script: File name in ``benchmarks/``.
        *args: Command-line arguments.
        timeout: Seconds before the run is killed (a failed test, not a hang).
        env: Extra environment variables; torch and MKL get one thread each.

    Returns:
        The finished process, output captured as text.
    """
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def import_benchmark(name: str) -> ModuleType:
    """Import ``benchmarks/<name>.py`` as a module (the folder is not a package)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCHMARKS))
