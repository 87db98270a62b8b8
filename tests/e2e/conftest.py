"""Helpers for end-to-end tests that run the console in subprocesses."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lab_env(tmp_path: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "COLUMNS": "200",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    env.pop("LAB_DATABASE_URL", None)
    env.pop("PREFECT_API_URL", None)
    return env


def lab(args: list[str], env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lab.console", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def small_campaign(tmp_path: Path, **changes: object) -> Path:
    data = yaml.safe_load((ROOT / "campaigns" / "demo.yaml").read_text())
    data.update(changes)
    data["fidelities"][0]["options"]["points"] = 9
    path = tmp_path / f"campaign-{len(list(tmp_path.glob('campaign-*')))}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def status(db: str, cid: int, env: dict[str, str]) -> dict:
    out = lab(["campaign", "status", str(cid), "--db", db, "--json"], env)
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout)


@pytest.fixture
def sim_workcell(tmp_path: Path):
    """`lab sim up` (demo devices) as a separate long-running process."""
    out = tmp_path / "workcell.yaml"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lab.console",
            "sim",
            "up",
            "--workcell-out",
            str(out),
            "--time-scale",
            "3000",
            "--demo-only",
            "--seed",
            "5",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=lab_env(tmp_path),
    )
    deadline = time.monotonic() + 120
    while not out.exists():
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline
        time.sleep(0.1)
    yield out
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
