"""Instrument faults during an experiment (``lab.flows.run_experiment``) against the simulated
workcell, over real ptys and TCP: what is retried, how, and what is recorded; and how soon the
instruments of a killed run are free again."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.flows import run_experiment
from lab.spec import Campaign, load_campaign
from lab.store import ExperimentState, Store
from simulators.workcell import DEMO_DEVICES, SimulatedWorkcell
from simulators.world import SimulatedWorld
from tests.hil.helpers import fault_kinds, script_faults

DEMO = Path(__file__).resolve().parents[2] / "campaigns" / "demo.yaml"
PARAMS = {"precursor_volume_ul": 10.0, "solvent_volume_ul": 5.0, "precursor_rate_ul_min": 100.0}


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[tuple[SimulatedWorkcell, Path, Store, Campaign]]:
    world = SimulatedWorld(time_scale=2000.0, seed=3)
    with SimulatedWorkcell(DEMO_DEVICES, world=world, seed=3) as cell:
        workcell = cell.write_workcell(tmp_path / "workcell.yaml")
        yield cell, workcell, Store(f"sqlite:///{tmp_path / 'lab.db'}"), load_campaign(DEMO)


def _experiment(store: Store, spec: Campaign, key: str = "k-1") -> tuple[int, int]:
    cid = store.create_campaign(spec.name, spec.model_dump(mode="json"), 0, 1.0)
    (exp,) = store.add_experiments(
        cid,
        [
            {
                "key": key,
                "params": PARAMS,
                "fidelity": "full",
                "cost": 1.0,
                "model_version": "initial_design",
                "strategy": "initial_design",
            }
        ],
    )
    return cid, int(exp.id)  # type: ignore[arg-type]


def _details(store: Store, cid: int, kind: str) -> list[dict[str, Any]]:
    return [e.detail for e in store.audit_events(cid, [kind])]


def _names_connection_lost(detail: dict[str, Any]) -> bool:
    """The driver's error is in the record: as the error, or as the cause of a failed status."""
    return detail.get("cause", detail["error"]).startswith("ConnectionLost: lcr: ")


def test_measurement_reconnects_after_a_dropped_connection(bench) -> None:
    cell, workcell, store, spec = bench
    cid, exp_id = _experiment(store, spec)
    script_faults(cell, "lcr", "disconnect")  # the meter's first exchange drops the link
    uid = run_experiment.fn(store, exp_id, spec, str(workcell), backoff_s=0.01)
    assert uid is not None, store.experiment(exp_id).failure_reason
    assert store.experiment(exp_id).state == ExperimentState.RUNNING.value  # analysis is next
    assert fault_kinds(cell, "lcr") == ["disconnect"]
    faults = _details(store, cid, "measurement_fault")
    assert len(faults) == 1 and _names_connection_lost(faults[0]), faults
    assert _details(store, cid, "reconnected") == [{"device": "lcr"}]
    assert len(store.readings(uid)) == spec.fidelity("full").options["points"]


def test_a_connection_that_stays_lost_fails_the_experiment_with_the_record(bench) -> None:
    cell, workcell, store, spec = bench
    cid, exp_id = _experiment(store, spec)
    script_faults(cell, "lcr", *["disconnect"] * 3)  # every attempt loses the link
    assert run_experiment.fn(store, exp_id, spec, str(workcell), backoff_s=0.01) is None
    exp = store.experiment(exp_id)
    assert exp.state == ExperimentState.FAILED.value
    assert exp.failure_reason.startswith("measurement: ")
    assert "ConnectionLost: lcr: " in exp.failure_reason  # the driver's error, even when wrapped
    assert fault_kinds(cell, "lcr") == ["disconnect"] * 3
    faults = _details(store, cid, "measurement_fault")
    assert [f["attempt"] for f in faults] == [0, 1, 2]
    assert all(_names_connection_lost(f) for f in faults), faults
    assert len(_details(store, cid, "reconnected")) == 2  # before each retry


def test_every_driver_retry_is_recorded_even_with_the_console_quiet(bench) -> None:
    cell, workcell, store, spec = bench
    cid, exp_id = _experiment(store, spec)
    script_faults(cell, "pump_precursor", None, None, "no_reply")  # a lost reply to a set point
    script_faults(cell, "lcr", *[None] * 12, "garbled", seed=4)  # a damaged reply to a query
    drivers_log = logging.getLogger("drivers")
    level = drivers_log.level
    drivers_log.setLevel(logging.ERROR)  # as `lab campaign launch` does: no retry warnings
    try:
        uid = run_experiment.fn(store, exp_id, spec, str(workcell), backoff_s=0.01)
    finally:
        drivers_log.setLevel(level)
    assert uid is not None, store.experiment(exp_id).failure_reason
    retries = _details(store, cid, "driver_retry")
    seen = [(r["device"], r["error"].split(":")[0], r["attempt"]) for r in retries]
    # Simulated pumps power up with the reset alarm A?R: the first command is sent again.
    expected = [("pump_precursor", "PumpAlarm", 1), ("pump_solvent", "PumpAlarm", 1)]
    error_of = {"no_reply": "DriverTimeout", "garbled": "GarbledReply"}
    expected += [(dev, error_of[kind], 1) for dev, _, kind, _ in cell.fault_log()]
    assert sorted(seen) == sorted(expected), retries
    assert all(r["command"] and r["error"].split(": ")[1] == r["device"] for r in retries)
    assert not _details(store, cid, "measurement_fault")  # the drivers' retries absorbed both


def test_a_killed_runs_leases_expire_after_the_workcells_lease_ttl(bench, monkeypatch) -> None:
    cell, workcell, store, spec = bench
    monkeypatch.delenv("LAB_LEASE_TTL_S", raising=False)
    data = yaml.safe_load(workcell.read_text())
    workcell.write_text(yaml.safe_dump({**data, "lease_ttl_s": 1.0}))
    # A run killed mid-experiment never releases its leases: they stay until they expire.
    release = store.release_leases
    monkeypatch.setattr(store, "release_leases", lambda resources, holder: None)
    _, first = _experiment(store, spec, "k-1")
    t0 = time.monotonic()
    assert run_experiment.fn(store, first, spec, str(workcell)) is not None
    first_s = time.monotonic() - t0
    monkeypatch.setattr(store, "release_leases", release)
    left = store.leases()
    assert {lease.resource for lease in left} == {d["url"] for d in cell.devices.values()}
    assert all((lease.expires_at - lease.heartbeat_at).total_seconds() == 1.0 for lease in left)
    # The resume takes the instruments once those leases expire: about 1 s, not 30 s.
    cid, second = _experiment(store, spec, "k-2")
    t0 = time.monotonic()
    assert run_experiment.fn(store, second, spec, str(workcell)) is not None
    assert time.monotonic() - t0 < first_s + 6.0
    assert [e["ttl_s"] for e in _details(store, cid, "leases")] == [1.0]
    assert store.leases() == []
