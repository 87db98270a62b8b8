"""The Docker setup is well-formed (it cannot be run without a Docker engine)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_compose_has_the_lab_services() -> None:
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    assert {"postgres", "prefect-server", "worker", "workcell"} <= set(compose["services"])
    env = compose["services"]["worker"]["environment"]
    assert env["LAB_DATABASE_URL"].startswith("postgresql")
    assert "PREFECT_API_URL" in env


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_compose_config_validates() -> None:
    proc = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker" / "compose.yaml"), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
