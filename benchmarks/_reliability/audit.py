"""The store audit: lost and duplicated measurements of a campaign, and silently corrupted
sweeps (stale or off-frequency readings)."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime
from typing import Any

MEASUREMENT_PLANS = ("characterize", "measure_screening")
SYNTHESIS_PLANS = ("make_sample",)
FINAL_STATES = ("analysed", "failed", "abandoned")


def utc_to_monotonic(at: datetime | None, offset: float) -> float | None:
    if at is None:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.timestamp() - offset


def _check_sweep(store: Any, run: Any, seq: int, out: dict[str, Any]) -> None:
    """Count readings of a sweep that repeat the previous one or sit off the asked frequency.

    The simulated meter adds fresh noise to every measurement, so two consecutive readings
    with identical values were one measurement fetched twice (a stale reading).
    """
    asked = list(run.start_doc.get("frequencies_hz") or [])
    rows = [r.data for r in store.readings(run.uid)]

    def value(row: dict[str, Any], suffix: str) -> Any:
        return next((v for k, v in row.items() if k.endswith(suffix)), None)

    for i, row in enumerate(rows):
        z = (value(row, "_z_real"), value(row, "_z_imag"))
        if i and z == (value(rows[i - 1], "_z_real"), value(rows[i - 1], "_z_imag")):
            out["stale_readings"] += 1
            out["corrupted_detail"].append({"seq": seq, "point": i, "problem": "stale", "z": z})
        f = value(row, "_frequency")
        if i < len(asked) and f is not None and not math.isclose(f, asked[i], rel_tol=1e-6):
            out["off_frequency_readings"] += 1
            out["corrupted_detail"].append(
                {"seq": seq, "point": i, "problem": "off frequency", "asked": asked[i], "got": f}
            )


def audit_campaign(db_url: str, campaign_id: int) -> dict[str, Any]:
    """Lost and duplicated measurements of a campaign, from the store (see
    ``benchmarks/reliability.py``)."""
    from lab.store import Store

    store = Store(db_url)
    row = store.campaign(campaign_id)
    exps = store.experiments(campaign_id)
    measurements = store.measurements(campaign_id)
    by_exp: dict[int, list[Any]] = {}
    for m in measurements:
        by_exp.setdefault(m.experiment_id, []).append(m)
    keys = Counter(e.idempotency_key for e in exps)
    out: dict[str, Any] = {
        "status": row.status,
        "budget": row.budget,
        "spent": store.spent(campaign_id),
        "experiments": len(exps),
        "states": dict(Counter(e.state for e in exps)),
        "lost": 0,
        "analysis_failed": 0,
        "inconsistent": 0,
        "duplicate_keys": sum(c - 1 for c in keys.values() if c > 1),
        "duplicate_measurements": sum(len(v) - 1 for v in by_exp.values() if len(v) > 1),
        "duplicate_measurement_runs": 0,
        "duplicate_syntheses": 0,
        "unexplained_abandoned": 0,
        "stale_readings": 0,
        "off_frequency_readings": 0,
        "lost_detail": [],
        "corrupted_detail": [],
    }
    for e in exps:
        runs = store.runs(int(e.id))
        ok = [r for r in runs if r.plan_name in MEASUREMENT_PLANS and r.exit_status == "success"]
        synth = [r for r in runs if r.plan_name in SYNTHESIS_PLANS]
        out["duplicate_measurement_runs"] += max(0, len(ok) - 1)
        out["duplicate_syntheses"] += max(0, len(synth) - 1)
        rows = by_exp.get(int(e.id), [])
        if e.state == "abandoned" and not e.failure_reason:
            out["unexplained_abandoned"] += 1
        if not ok:
            if rows:
                out["inconsistent"] += 1
            continue
        uids = {r.uid: r for r in ok}
        if e.state == "analysed":
            for run in ok:
                _check_sweep(store, run, e.seq, out)
        complete = False
        if e.state == "analysed" and rows:
            complete = True
            for m in rows:
                run = uids.get(m.run_uid or "")
                if run is None:
                    complete = False
                    continue
                n_read = len(store.readings(run.uid))
                expected = len(run.start_doc.get("frequencies_hz") or []) or n_read
                n_raw = len((m.raw or {}).get("frequency_hz") or [])
                if not (n_read == expected == n_raw and n_read > 0):
                    complete = False
        if complete:
            continue
        if e.state == "failed" and (e.failure_reason or "").startswith("analysis:"):
            out["analysis_failed"] += 1
            continue
        out["lost"] += 1
        out["lost_detail"].append(
            {"seq": e.seq, "state": e.state, "reason": e.failure_reason, "rows": len(rows)}
        )
    out["duplicated"] = (
        out["duplicate_keys"]
        + out["duplicate_measurements"]
        + out["duplicate_measurement_runs"]
        + out["duplicate_syntheses"]
    )
    out["all_final"] = all(e.state in FINAL_STATES for e in exps)
    return out
