"""The interlayer campaign on the simulated bench, and the process layer's refusals, through
the console: a real Prefect flow, real bytes to the simulated SQC-310, hotplate, gantry and
impedance meter, a real SQLite database."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import ROOT, lab, lab_env, small_campaign, status

INTERLAYER = ROOT / "campaigns" / "interlayer.yaml"


@pytest.mark.timeout(900)
def test_interlayer_campaign_makes_every_interlayer_it_measures(tmp_path: Path) -> None:
    env = lab_env(tmp_path)
    db = f"sqlite:///{tmp_path / 'x.db'}"
    args = ["campaign", "launch", str(INTERLAYER), "--db", db, "--budget", "6"]
    out = lab([*args, "--time-scale", "10000"], env, 800)
    assert out.returncode == 0, out.stdout + out.stderr
    cid = int(re.search(r"campaign id (\d+)", out.stdout).group(1))
    st = status(db, cid, env)
    assert st["state"] == "completed"
    exps = st["experiments"]
    assert {"params", "fidelity", "status", "value"} <= set(exps[0])
    assert all({"modifier", "thickness_nm"} <= set(e["params"]) for e in exps)
    assert len({e["params"]["modifier"] for e in exps}) >= 3
    assert {e["fidelity"] for e in exps} <= {"screening", "full"}
    measured = [e for e in exps if e["status"] == "analysed"]
    assert measured and any(e["fidelity"] == "full" for e in measured)
    for e in measured:
        assert math.isfinite(e["value"]) and e["value"] > 0
        (sample,) = e["samples"]
        steps = sample["realised"]["steps"]
        deposits = [s for s in steps if s["step"] == "deposit"]
        # the interlayer, then the Li contact: what the controller says it deposited
        assert [d["read"]["deposition_material"] for d in deposits] == [
            e["params"]["modifier"],
            "Li",
        ]
        assert deposits[0]["read"]["deposition_thickness"] == pytest.approx(
            e["params"]["thickness_nm"], rel=0.05, abs=0.1
        )
        assert [s["step"] for s in steps][:4] == ["move", "deposit", "move", "anneal"]


@pytest.mark.timeout(600)
def test_a_campaign_whose_every_experiment_fails_stops_failed(tmp_path: Path) -> None:
    """The instruments cannot be reached: the guard rail stops the campaign after 3."""
    env = lab_env(tmp_path)
    db = f"sqlite:///{tmp_path / 'x.db'}"
    workcell = tmp_path / "workcell.yaml"
    dead = "/dev/does-not-exist"
    workcell.write_text(
        yaml.safe_dump(
            {
                "devices": {
                    "pump_precursor": {"kind": "ne1000", "url": dead, "role": "precursor"},
                    "pump_solvent": {"kind": "ne1000", "url": dead + "-2", "role": "solvent"},
                    "lcr": {"kind": "scpi_lcr", "url": "socket://127.0.0.1:9"},
                }
            }
        )
    )
    campaign = small_campaign(tmp_path, budget=20, max_consecutive_failures=3)
    out = lab(["campaign", "launch", str(campaign), "--db", db, "--workcell", str(workcell)], env)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "3 consecutive experiments failed or were abandoned" in out.stdout
    cid = int(re.search(r"campaign id (\d+)", out.stdout).group(1))
    st = status(db, cid, env)
    assert st["state"] == "failed"
    assert len(st["experiments"]) == 3
    assert all(e["status"] in ("failed", "abandoned") for e in st["experiments"])


def test_a_parameter_nothing_consumes_is_refused_by_name(tmp_path: Path) -> None:
    env = lab_env(tmp_path)
    data = yaml.safe_load(INTERLAYER.read_text())
    data["parameters"].append(
        {"name": "stir_rpm", "type": "continuous", "low": 0, "high": 300, "unit": "1/min"}
    )
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    out = lab(["campaign", "validate", str(path)], env)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "stir_rpm" in out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr


def test_a_workcell_without_the_material_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    env = lab_env(tmp_path)
    db_file = tmp_path / "x.db"
    workcell = tmp_path / "workcell.yaml"
    films = {1: "LiF", 2: "Li3N", 3: "Li"}  # no Au
    workcell.write_text(
        yaml.safe_dump(
            {
                "devices": {
                    "deposition": {
                        "kind": "sqc310",
                        "url": "/dev/ttyUSB0",
                        "station": "deposition",
                        "films": films,
                    },
                    "hotplate": {"kind": "ika_namur", "url": "/dev/ttyUSB1", "station": "hotplate"},
                    "gantry": {
                        "kind": "grbl",
                        "url": "/dev/ttyACM0",
                        "stations": {
                            "deposition": [-85, -40, 0],
                            "hotplate": [-110, -40, 0],
                            "lcr": [-180, -40, 0],
                        },
                    },
                    "lcr": {"kind": "scpi_lcr", "url": "socket://127.0.0.1:9", "station": "lcr"},
                }
            }
        )
    )
    data = yaml.safe_load(INTERLAYER.read_text())
    data["parameters"][0]["choices"] = ["LiF", "Au", "Li3N"]
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    out = lab(
        [
            "campaign",
            "launch",
            str(path),
            "--db",
            f"sqlite:///{db_file}",
            "--workcell",
            str(workcell),
        ],
        env,
    )
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Au" in out.stdout + out.stderr and "film" in out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    assert not db_file.exists()
