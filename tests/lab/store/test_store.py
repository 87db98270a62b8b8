"""The store: state machine, idempotency, atomic measurements, Bluesky documents."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from lab.store import DocumentWriter, ExperimentState, Store
from lab.store._store import StoreError


def proposal(key: str) -> dict:
    return {
        "key": key,
        "params": {"v": 1.0},
        "fidelity": "full",
        "cost": 1.0,
        "model_version": "initial_design",
        "acquisition_value": None,
        "strategy": "initial_design",
    }


def test_sqlite_uses_wal_and_foreign_keys(store: Store) -> None:
    if store.engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    with store.engine.connect() as c:
        assert c.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert c.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_experiments_are_idempotent_by_key(store: Store) -> None:
    cid = store.create_campaign("c", {}, seed=0, budget=3)
    a = store.add_experiments(cid, [proposal("k1"), proposal("k2")])
    b = store.add_experiments(cid, [proposal("k1")])
    assert [e.seq for e in a] == [0, 1]
    assert b[0].id == a[0].id
    assert len(store.experiments(cid)) == 2


def test_state_machine(store: Store) -> None:
    cid = store.create_campaign("c", {}, seed=0, budget=3)
    (e,) = store.add_experiments(cid, [proposal("k")])
    with pytest.raises(StoreError, match="cannot go from proposed to analysed"):
        store.transition(e.id, ExperimentState.ANALYSED)
    store.transition(e.id, ExperimentState.RUNNING)
    assert store.spent(cid) == 1.0
    store.fail(e.id, "pump stalled")
    assert store.experiment(e.id).failure_reason == "pump stalled"
    with pytest.raises(StoreError):
        store.transition(e.id, ExperimentState.RUNNING)
    assert store.unfinished(cid) == []


def test_measurement_and_analysed_state_are_atomic(store: Store) -> None:
    cid = store.create_campaign("c", {}, seed=0, budget=3)
    (e,) = store.add_experiments(cid, [proposal("k")])
    store.transition(e.id, ExperimentState.RUNNING)
    kwargs = dict(
        name="r",
        value=12.5,
        unit="ohm",
        fidelity="full",
        instrument="lcr",
        method="fit",
        run_uid=None,
        raw={},
    )
    store.record_measurement(e.id, **kwargs)
    assert store.experiment(e.id).state == "analysed"
    assert store.experiment(e.id).objective == 12.5
    # a second measurement for the same experiment is refused and changes nothing
    with pytest.raises(StoreError):
        store.record_measurement(e.id, **{**kwargs, "value": 99.0})
    assert [m.value for m in store.measurements(cid)] == [12.5]


def test_failed_measurement_write_leaves_no_trace(store: Store) -> None:
    cid = store.create_campaign("c", {}, seed=0, budget=3)
    (e,) = store.add_experiments(cid, [proposal("k")])
    store.transition(e.id, ExperimentState.RUNNING)
    with pytest.raises(Exception):  # noqa: B017 - the foreign key on run_uid
        store.record_measurement(
            e.id,
            name="r",
            value=1.0,
            unit="ohm",
            fidelity="full",
            instrument="lcr",
            method="fit",
            run_uid="no-such-run",
            raw={},
        )
    assert store.experiment(e.id).state == "running"
    assert store.measurements(cid) == []


def test_document_writer_records_runs_and_readings(store: Store) -> None:
    cid = store.create_campaign("c", {}, seed=0, budget=3)
    (e,) = store.add_experiments(cid, [proposal("k")])
    w = DocumentWriter(store, e.id)
    w("start", {"uid": "r1", "time": 0.0, "plan_name": "characterize", "scan_id": 1})
    w(
        "descriptor",
        {
            "uid": "d1",
            "run_start": "r1",
            "name": "primary",
            "data_keys": {
                "lcr_z_real": {"units": "ohm", "dtype": "number", "shape": [], "source": "x"}
            },
        },
    )
    for i in (1, 2):
        w(
            "event",
            {
                "descriptor": "d1",
                "seq_num": i,
                "data": {"lcr_z_real": 10.0 * i},
                "time": float(i),
                "uid": f"e{i}",
            },
        )
    w("stop", {"run_start": "r1", "exit_status": "success", "uid": "s1"})
    assert w.run_uids == ["r1"]
    (run,) = store.runs(e.id)
    assert run.exit_status == "success" and run.plan_name == "characterize"
    readings = store.readings("r1")
    assert [r.data["lcr_z_real"] for r in readings] == [10.0, 20.0]
    assert readings[0].units == {"lcr_z_real": "ohm"}


def test_documents_are_validated_against_event_model() -> None:
    import jsonschema

    from lab.flows import validated

    seen: list[str] = []
    cb = validated(lambda name, doc: seen.append(name))
    cb("start", {"uid": "u1", "time": 1.0})
    with pytest.raises(jsonschema.ValidationError):
        cb("start", {"time": 1.0})  # no uid
    with pytest.raises(jsonschema.ValidationError):
        cb("stop", {"uid": "s", "run_start": "u1", "time": 2.0, "exit_status": "maybe"})
    assert seen == ["start"]
