"""The `lab` console: user mistakes give one clear message and exit 2; the sim service and
the instrument check work together over real ptys and TCP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from lab.console import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for cmd in ("demo", "campaign", "instruments", "sim"):
        assert cmd in result.output


def test_console_import_stays_light() -> None:
    """``lab --help`` needs Typer and Rich only: nothing heavy is imported with the console, and
    its annotations are objects (Typer would otherwise parse every annotation string again)."""
    code = "import sys, lab.console; print(' '.join(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    loaded = set(proc.stdout.split())
    heavy = {"prefect", "bluesky", "ophyd", "torch", "numpy", "sqlalchemy", "sqlmodel", "pydantic"}
    heavy |= {"yaml", "serial", "lab.spec", "lab.store", "lab.flows", "drivers", "simulators"}
    heavy |= {"logging", "tempfile", "importlib.resources"}
    assert not heavy & loaded, sorted(heavy & loaded)
    from lab.console.campaigns import campaign_validate

    assert not any(isinstance(a, str) for a in campaign_validate.__annotations__.values())


@pytest.mark.parametrize(
    "command",
    [[], ["campaign"], ["campaign", "launch"], ["instruments", "check"], ["sim", "up"]],
    ids=lambda c: " ".join(c) or "lab",
)
def test_help_of_commands(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_validate_good_campaign() -> None:
    result = runner.invoke(app, ["campaign", "validate", str(ROOT / "campaigns" / "demo.yaml")])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output


def test_validate_bad_campaign_names_field_without_traceback(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "campaigns" / "demo.yaml").read_text())
    data["parameters"][0]["low"] = 99.0
    data["budgett"] = 1
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    result = runner.invoke(app, ["campaign", "validate", str(bad)])
    assert result.exit_code == 2
    out = result.output
    assert "parameters[0]: bounds are inverted" in out
    assert "budgett: unknown key" in out
    assert "Traceback" not in out


def test_validate_missing_file() -> None:
    result = runner.invoke(app, ["campaign", "validate", "/nonexistent/c.yaml"])
    assert result.exit_code == 2
    assert "no such campaign file" in result.output


def test_demo_refuses_bad_budget() -> None:
    result = runner.invoke(app, ["demo", "--budget", "-1"])
    assert result.exit_code == 2
    assert "--budget must be positive" in result.output


@pytest.mark.parametrize("with_workcell", [True, False])
def test_launch_refuses_a_bad_lease_ttl_before_starting(
    tmp_path: Path, with_workcell: bool
) -> None:
    workcell = tmp_path / "w.yaml"
    workcell.write_text("devices: {lcr: {kind: scpi_lcr, url: 'socket://127.0.0.1:9'}}\n")
    args = ["campaign", "launch", str(ROOT / "campaigns" / "demo.yaml")]
    args += ["--db", f"sqlite:///{tmp_path / 'lab.db'}"]
    args += ["--workcell", str(workcell)] if with_workcell else []
    result = runner.invoke(app, args, env={"LAB_LEASE_TTL_S": "soon"})
    assert result.exit_code == 2, result.output
    assert "LAB_LEASE_TTL_S='soon': give the instrument lease lifetime in seconds" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "lab.db").exists()  # nothing started


def test_instruments_check_reports_unreachable_device(tmp_path: Path) -> None:
    wc = tmp_path / "w.yaml"
    wc.write_text(
        yaml.safe_dump({"devices": {"pump": {"kind": "ne1000", "url": "/dev/does-not-exist"}}})
    )
    result = runner.invoke(app, ["instruments", "check", "--workcell", str(wc), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["pump"]["ok"] is False
    assert "cannot open device 'pump'" in report["pump"]["message"]


def test_instruments_check_bad_workcell_file(tmp_path: Path) -> None:
    wc = tmp_path / "w.yaml"
    wc.write_text("devices:\n  x: {kind: toaster, url: loop://}\n")
    result = runner.invoke(app, ["instruments", "check", "--workcell", str(wc)])
    assert result.exit_code == 2
    assert "devices.x.kind" in result.output


def test_sim_up_rejects_bad_truth(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["sim", "up", "--truth", "nowhere", "--workcell-out", str(tmp_path / "w.yaml")]
    )
    assert result.exit_code == 2
    assert "--truth nowhere" in result.output


@pytest.fixture
def sim_service(tmp_path: Path):
    """`lab sim up` as a real long-running process; yields the workcell file path."""
    out = tmp_path / "workcell.yaml"
    env = {**os.environ, "COLUMNS": "200"}
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
            "100",
            "--seed",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 60
    while not out.exists():
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, "workcell file never written"
        time.sleep(0.1)
    yield out, proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_sim_up_then_instruments_check(sim_service) -> None:
    workcell, proc = sim_service
    devices = yaml.safe_load(workcell.read_text())["devices"]
    assert {d["kind"] for d in devices.values()} == {
        "sqc310",
        "ne1000",
        "ika_namur",
        "mt_sics",
        "grbl",
        "scpi_lcr",
    }
    env = {**os.environ, "COLUMNS": "200"}
    for _ in range(2):  # twice: every device must accept a second session
        check = subprocess.run(
            [
                sys.executable,
                "-m",
                "lab.console",
                "instruments",
                "check",
                "--workcell",
                str(workcell),
                "--json",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert check.returncode == 0, check.stdout + check.stderr
        report = json.loads(check.stdout)
        assert set(report) == set(devices)
        assert all(r["ok"] for r in report.values()), report
    assert "E4980A" in report["lcr"]["message"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    assert "stopped" in proc.stdout.read()
