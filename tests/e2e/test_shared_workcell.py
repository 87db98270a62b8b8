"""Two campaigns share one workcell: database leases keep their experiments apart."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import Session, select

from lab.store import AuditEvent, Store
from tests.e2e.conftest import lab_env, small_campaign


@pytest.mark.timeout(900)
def test_two_campaigns_never_use_the_instruments_at_once(
    tmp_path: Path, sim_workcell: Path
) -> None:
    env = lab_env(tmp_path)
    db = f"sqlite:///{tmp_path / 'lab.db'}"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lab.console",
                "campaign",
                "launch",
                str(small_campaign(tmp_path, budget=3, initial_design=3)),
                "--db",
                db,
                "--workcell",
                str(sim_workcell),
                "--seed",
                str(seed),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        for seed in (1, 2)
    ]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stdout.read()
    store = Store(db)
    assert sorted(c.status for c in store.campaigns()) == ["completed", "completed"]
    for c in store.campaigns():
        assert [e.state for e in store.experiments(int(c.id))] == ["analysed"] * 3
    with Session(store.engine) as s:
        events = s.exec(
            select(AuditEvent)
            .where(AuditEvent.kind.in_(["lease_acquired", "lease_released"]))  # type: ignore[attr-defined]
            .order_by(AuditEvent.id)
        ).all()
    intervals: dict[str, list] = {}
    for ev in events:
        intervals.setdefault(ev.detail["holder"], []).append(ev.at)
    assert len(intervals) == 6  # one lease per experiment
    spans = sorted((v[0], v[1]) for v in intervals.values())
    assert all(len(v) == 2 for v in intervals.values())
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert end <= start, "two experiments held the instruments at the same time"
    assert store.leases() == []  # every lease was given back
