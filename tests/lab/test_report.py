"""Campaign reports and exports on real campaign databases.

One small closed-loop campaign runs for real (Prefect flow -> Bluesky plans -> simulated
workcell -> SQLite); a second database is written through the store's own API to cover what
a short demo run lacks: several fidelities, a categorical parameter, failed, abandoned and
waiting experiments, and hostile text that must be escaped.
"""

from __future__ import annotations

import csv
import html
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from lab.errors import LabError
from lab.report import (
    PLOTS,
    export_campaign,
    load_campaign_data,
    report_artifacts,
    surrogate_check,
    write_report,
)
from lab.store import ExperimentState, Store

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = "<script>alert('x')</script> & \"quotes\""
N_FULL = 8  # experiments analysed at the target fidelity in the multi-fidelity database
N_ROWS = 6 + N_FULL + 4  # 6 screening, N_FULL full, then failed, abandoned, proposed, running
FAILED, PROPOSED = 6 + N_FULL, 6 + N_FULL + 2  # row indices


# --------------------------------------------------------------------------- databases


@pytest.fixture(scope="module")
def real_campaign(prefect_harness, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, int]:
    """A real 6-experiment campaign (4 initial design + 2 model-chosen) on the simulators."""
    from lab.flows import campaign_flow
    from simulators.workcell import DEMO_DEVICES, SimulatedWorkcell
    from simulators.world import SimulatedWorld

    tmp = tmp_path_factory.mktemp("real")
    data = yaml.safe_load((ROOT / "campaigns" / "demo.yaml").read_text())
    data.update(budget=6, initial_design=4)
    data["fidelities"][0]["options"]["points"] = 9
    spec_path = tmp / "campaign.yaml"
    spec_path.write_text(yaml.safe_dump(data))
    db_url = f"sqlite:///{tmp / 'lab.db'}"
    world = SimulatedWorld(time_scale=5000.0, seed=11)
    with SimulatedWorkcell(DEMO_DEVICES, world=world, seed=11) as cell:
        wc = tmp / "workcell.yaml"
        cell.write_workcell(wc)
        cid = campaign_flow(str(spec_path), str(wc), db_url, seed=0)
    return db_url, cid


def _multi_fidelity_spec() -> dict:
    data = yaml.safe_load((ROOT / "campaigns" / "demo.yaml").read_text())
    data["name"] = "mf-report"
    data["description"] = f"escaping check: {HOSTILE}"
    data["parameters"].append(
        {"name": "interlayer", "type": "categorical", "choices": ["LiF", "Al2O3", HOSTILE]}
    )
    data["process"].append(
        {
            "step": "deposit",
            "device": "deposition",
            "args": {"material": "$interlayer", "thickness": 5},
        }
    )
    data["fidelities"] = [
        {
            "name": "screening",
            "cost": 0.25,
            "route": "impedance_single",
            "options": {"frequency": 100},
        },
        {"name": "full", "cost": 1.0, "route": "impedance_sweep", "options": {"points": 9}},
    ]
    data["target_fidelity"] = "full"
    data["budget"] = 14
    return data


def _truth(p: dict) -> float:
    """A smooth positive objective with a categorical offset (ohm*cm^2)."""
    v = p["precursor_volume_ul"] / 40
    s = p["solvent_volume_ul"] / 40
    r = p["precursor_rate_ul_min"] / 400
    offset = {"LiF": 0.0, "Al2O3": 0.3}.get(p["interlayer"], 0.6)
    return float(np.exp(2.5 + (v - 0.4) ** 2 * 3 + (s - 0.6) ** 2 * 2 + 0.5 * r + offset))


def write_multi_fidelity_db(db_url: str, *, analysed_full: int = N_FULL) -> int:
    """A campaign stored through the store's API: two fidelities, every final state."""
    from lab.spec import parse_campaign

    spec = parse_campaign(_multi_fidelity_spec())
    store = Store(db_url)
    cid = store.create_campaign(spec.name, spec.model_dump(mode="json"), 3, spec.budget)
    rng = np.random.default_rng(5)
    choices = ["LiF", "Al2O3", HOSTILE]
    plan = ["screening"] * 6 + ["full"] * analysed_full + ["full", "screening", "full", "full"]
    fates = ["analysed"] * (6 + analysed_full) + ["failed", "abandoned", "proposed", "running"]
    for i, (fid, fate) in enumerate(zip(plan, fates, strict=True)):
        params = {
            "precursor_volume_ul": round(float(rng.uniform(2, 40)), 4),
            "solvent_volume_ul": round(float(rng.uniform(0, 40)), 4),
            "precursor_rate_ul_min": round(float(rng.uniform(20, 400)), 4),
            "interlayer": choices[i % 3],
        }
        initial = i < 8
        (exp,) = store.add_experiments(
            cid,
            [
                {
                    "key": f"mf-{i}",
                    "params": params,
                    "fidelity": fid,
                    "cost": spec.fidelity(fid).cost,
                    "model_version": "initial_design" if initial else f"v{i:04d}",
                    "acquisition_value": None if initial else -1.0 - i / 10,
                    "strategy": "initial_design" if initial else "mf_gibbon",
                }
            ],
        )
        eid = int(exp.id)
        if fate == "proposed":
            continue
        if fate == "abandoned":
            store.transition(eid, ExperimentState.ABANDONED, failure_reason=f"stopped {HOSTILE}")
            continue
        store.transition(eid, ExperimentState.RUNNING)
        if fate == "running":
            continue
        if fate == "failed":
            store.fail(eid, f"synthesis: DriverError: pump stalled {HOSTILE}")
            continue
        value = _truth(params) * (1.15 if fid == "screening" else 1.0)
        value *= float(np.exp(rng.normal(0, 0.03)))
        store.record_measurement(
            eid,
            name=spec.objective.name,
            value=value,
            unit=spec.objective.unit,
            fidelity=fid,
            instrument="lcr",
            method="synthetic",
            run_uid=None,
            raw={},
        )
    store.set_campaign_status(cid, "running")
    store.engine.dispose()
    return cid


@pytest.fixture(scope="module")
def mf_campaign(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, int]:
    db_url = f"sqlite:///{tmp_path_factory.mktemp('mf') / 'lab.db'}"
    return db_url, write_multi_fidelity_db(db_url)


# --------------------------------------------------------------------------- helpers


def assert_plot(path: Path) -> None:
    """A real plot: a PNG of reasonable size with many colours, not a blank canvas."""
    assert path.is_file() and path.stat().st_size > 5_000, path
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.width >= 400 and im.height >= 300
        px = np.asarray(im.convert("RGB")).reshape(-1, 3)
    colours = np.unique(px, axis=0)
    assert len(colours) > 50, f"{path.name}: {len(colours)} colours"
    non_white = np.any(px < 200, axis=1).mean()
    assert 0.01 < non_white < 0.6, f"{path.name}: {non_white:.3f} of the pixels are drawn"


def img_sources(page: str) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', page)


# --------------------------------------------------------------------------- tests


def test_report_of_a_real_campaign(real_campaign: tuple[str, int], tmp_path: Path) -> None:
    db_url, cid = real_campaign
    index = write_report(db_url, cid, tmp_path / "report")
    assert index == tmp_path / "report" / "index.html"
    page = index.read_text(encoding="utf-8")
    assert sorted(img_sources(page)) == sorted(PLOTS)  # every PNG, by a relative link
    for name in PLOTS:
        assert_plot(index.parent / name)
    assert "<script" not in page and "http" not in page  # self-contained: no scripts, no URLs
    data = load_campaign_data(db_url, cid)
    assert len(data.experiments) == 6
    # one table row per experiment, with why it was chosen
    assert page.count("<tr class=") == 6
    assert page.count("space-filling initial design") == 4
    assert page.count("noisy expected improvement") == 2
    for e in data.experiments[4:]:
        assert e.model_version in page
    # held-out surrogate check ran on the 6 analysed points (leave-one-out)
    summary = json.loads((index.parent / "report.json").read_text())
    check = summary["surrogate"]
    assert check["points"] == 6 and check["folds"] == 6 and check["domain"] == "log"
    held = check["held_out"]
    assert sorted(h["number"] for h in held) == list(range(1, 7))
    assert all(math.isfinite(h["mean"]) and h["std"] > 0 for h in held)
    assert 0.0 <= check["coverage90"] <= 1.0 and f"{check['coverage90']:.0%} inside" in page
    inside = [abs(h["measured"] - h["mean"]) <= 1.6449 * h["std"] for h in held]
    assert math.isclose(check["coverage90"], sum(inside) / len(inside))
    assert check["rmse"] < 1.0  # within a factor e in the log domain: the fit is sane
    assert summary["experiments"] == 6 and summary["states"] == {"analysed": 6}
    best = min(data.experiments, key=lambda e: e.objective)
    assert summary["best"]["number"] == best.seq + 1


def test_csv_export_of_a_real_campaign(real_campaign: tuple[str, int], tmp_path: Path) -> None:
    db_url, cid = real_campaign
    out = export_campaign(db_url, cid, "csv", tmp_path / "x.csv")
    with out.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    data = load_campaign_data(db_url, cid)
    assert len(rows) == len(data.experiments) == 6
    assert [int(r["number"]) for r in rows] == list(range(1, 7))
    assert {r["key"] for r in rows} == {e.idempotency_key for e in data.experiments}
    for r, e in zip(rows, data.experiments, strict=True):
        assert r["state"] == "analysed" and r["fidelity"] == "full" and r["unit"] == "ohm*cm^2"
        assert math.isclose(float(r["objective"]), e.objective)
        for k, v in e.params.items():
            assert math.isclose(float(r[k]), v)
        assert r["strategy"] == e.strategy and r["why"] and r["started_at"]
    assert [float(r["cumulative_cost"]) for r in rows] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    # a folder as --out gets campaign-<id>.csv
    assert export_campaign(db_url, cid, "csv", tmp_path).name == f"campaign-{cid}.csv"


def test_report_of_a_multi_fidelity_campaign(mf_campaign: tuple[str, int], tmp_path: Path) -> None:
    db_url, cid = mf_campaign
    index = write_report(db_url, cid, tmp_path)
    page = index.read_text(encoding="utf-8")
    for name in PLOTS:
        assert_plot(tmp_path / name)
    assert sorted(img_sources(page)) == sorted(PLOTS)
    # hostile text from the campaign file and failure reasons is escaped everywhere
    assert HOSTILE not in page and "<script>" not in page
    assert html.escape(HOSTILE, quote=True) in page
    assert page.count("<tr class=") == N_ROWS
    assert page.count('<tr class="failed">') == 1 and page.count('<tr class="abandoned">') == 1
    assert "pump stalled" in page and "multi-fidelity GIBBON" in page
    # the best shown is the best at the target fidelity, never a cheaper screening value
    data = load_campaign_data(db_url, cid)
    best = data.best()
    assert best is not None and best.fidelity == "full"
    assert f"{best.objective:.4g}" in page
    check = json.loads((tmp_path / "report.json").read_text())["surrogate"]
    assert check["points"] == check["folds"] == N_FULL  # only those analysed at 'full'
    # spent: analysed + failed + running reached the bench; proposed/abandoned did not
    started = [e for e in data.experiments if e.started_at is not None]
    assert math.isclose(data.spent, sum(e.cost for e in started))
    assert math.isclose(data.spent, 6 * 0.25 + N_FULL + 1 + 1)


def test_parquet_export_or_clear_error(mf_campaign: tuple[str, int], tmp_path: Path) -> None:
    db_url, cid = mf_campaign
    try:
        import pyarrow.parquet as pq
    except ImportError:
        with pytest.raises(LabError, match="pip install pyarrow"):
            export_campaign(db_url, cid, "parquet", tmp_path / "x.parquet")
        assert list(tmp_path.iterdir()) == []
        return
    out = export_campaign(db_url, cid, "parquet", tmp_path / "x.parquet")
    table = pq.read_table(out)
    assert table.num_rows == N_ROWS
    rows = table.to_pylist()
    assert [r["number"] for r in rows] == list(range(1, N_ROWS + 1))
    assert {r["interlayer"] for r in rows} == {"LiF", "Al2O3", HOSTILE}
    assert sum(r["state"] == "analysed" for r in rows) == 6 + N_FULL
    assert str(table.schema.field("started_at").type) == "timestamp[us, tz=UTC]"
    assert rows[PROPOSED]["objective"] is None and rows[PROPOSED]["started_at"] is None


def test_csv_export_multi_fidelity(mf_campaign: tuple[str, int], tmp_path: Path) -> None:
    db_url, cid = mf_campaign
    out = export_campaign(db_url, cid, "csv", tmp_path / "mf.csv")
    with out.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == N_ROWS
    assert [r["fidelity"] for r in rows].count("screening") == 7
    assert rows[FAILED]["state"] == "failed"
    assert "pump stalled" in rows[FAILED]["failure_reason"]
    assert rows[PROPOSED]["state"] == "proposed" and rows[PROPOSED]["started_at"] == ""
    assert rows[PROPOSED]["cumulative_cost"] == ""
    assert {r["interlayer"] for r in rows} == {"LiF", "Al2O3", HOSTILE}


def test_few_points_skip_the_surrogate_check_with_a_note(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'lab.db'}"
    cid = write_multi_fidelity_db(db_url, analysed_full=3)
    index = write_report(db_url, cid, tmp_path / "r")
    page = index.read_text(encoding="utf-8")
    assert "Surrogate parity and calibration skipped: 3 experiment(s) analysed" in page
    assert "at least 5 are needed" in page
    summary = json.loads((tmp_path / "r" / "report.json").read_text())
    assert "3 experiment(s)" in summary["surrogate"]["skipped"]
    for name in PLOTS:  # the skipped plots still exist and say why
        assert (tmp_path / "r" / name).stat().st_size > 2_000


def test_empty_campaign_report(tmp_path: Path) -> None:
    from lab.spec import parse_campaign

    db_url = f"sqlite:///{tmp_path / 'lab.db'}"
    spec = parse_campaign(yaml.safe_load((ROOT / "campaigns" / "demo.yaml").read_text()))
    store = Store(db_url)
    cid = store.create_campaign(spec.name, spec.model_dump(mode="json"), 0, spec.budget)
    store.engine.dispose()
    page = write_report(db_url, cid, tmp_path / "r").read_text(encoding="utf-8")
    assert "No experiments yet" in page and sorted(img_sources(page)) == sorted(PLOTS)
    out = export_campaign(db_url, cid, "csv", tmp_path / "e.csv")
    assert len(out.read_text().splitlines()) == 1  # the header only
    art = report_artifacts(db_url, cid)
    assert art["experiments"] == [] and "no experiment analysed" in art["convergence"].lower()


def test_report_artifacts(mf_campaign: tuple[str, int]) -> None:
    db_url, cid = mf_campaign
    art = report_artifacts(db_url, cid)
    assert set(art) == {"summary", "convergence", "experiments"}
    assert len(art["experiments"]) == N_ROWS
    row = art["experiments"][10]
    assert row["number"] == 11 and row["strategy"] == "mf_gibbon" and "why" in row
    for r in art["experiments"]:
        assert all(v is None or isinstance(v, str | int | float) for v in r.values())
    data = load_campaign_data(db_url, cid)
    curve = data.best_curve()
    table_lines = [
        ln for ln in art["convergence"].splitlines() if ln.startswith("| ") and ln[2].isdigit()
    ]
    assert len(table_lines) == len(curve) > 0
    assert "mf-report" in art["summary"] and "11.5 of 14 cost units" in art["summary"]
    assert "<script>" not in art["summary"]
    store = Store(db_url)  # the flow passes its own open store
    assert report_artifacts(store, cid) == art
    store.engine.dispose()


def test_user_errors_write_nothing(mf_campaign: tuple[str, int], tmp_path: Path) -> None:
    db_url, _ = mf_campaign
    missing = f"sqlite:///{tmp_path / 'nope.db'}"
    with pytest.raises(LabError, match="no database"):
        write_report(missing, 1, tmp_path / "r")
    with pytest.raises(LabError, match="no campaign with id 999"):
        write_report(db_url, 999, tmp_path / "r")
    with pytest.raises(LabError, match="unknown export format 'xlsx'"):
        export_campaign(db_url, 1, "xlsx", tmp_path / "x")  # type: ignore[arg-type]
    with pytest.raises(LabError, match="no such folder"):
        export_campaign(db_url, 1, "csv", tmp_path / "a" / "b.csv")
    assert list(tmp_path.iterdir()) == []


def test_surrogate_k_fold_holds_each_point_out_once(mf_campaign: tuple[str, int]) -> None:
    db_url, cid = mf_campaign
    data = load_campaign_data(db_url, cid)
    check = surrogate_check(data, max_folds=3)
    assert not isinstance(check, str)
    full = [e.seq + 1 for e in data.analysed("full")]
    assert check.folds == 3 and sorted(check.numbers) == full and len(full) == N_FULL
    assert np.all(np.isfinite(check.mean)) and np.all(check.std > 0)
    assert check.rmse < 1.0  # held-out log errors under a factor e: the fit is sane
