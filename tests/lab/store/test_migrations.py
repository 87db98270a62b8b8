"""Alembic migrations: a new database is stamped at head; the scripts build the models' schema."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

from lab.store import Store, make_engine
from lab.store._migrate import alembic_config, migrate


def test_new_database_is_at_head(store: Store) -> None:
    head = ScriptDirectory.from_config(alembic_config(store.engine)).get_current_head()
    with store.engine.connect() as c:
        assert c.execute(text("SELECT version_num FROM alembic_version")).scalar() == head
    assert {"campaign", "experiment", "measurement", "instrument_lease", "model_snapshot"} <= set(
        inspect(store.engine).get_table_names()
    )
    assert migrate(store.engine) == "current"  # idempotent


def test_migration_scripts_match_the_models(db_url: str) -> None:
    engine = make_engine(db_url, create=False)
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    engine.dispose()
    assert diff == []


def test_upgrade_from_the_first_revision_keeps_data(db_url: str) -> None:
    engine = make_engine(db_url, create=False)
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.execute(
            text(
                "INSERT INTO campaign (name, spec, seed, budget, status, created_at) "
                "VALUES ('old', '{}', 0, 3.0, 'completed', '2026-01-01 00:00:00')"
            )
        )
    assert migrate(engine) == "upgraded"
    store = Store(engine)
    (row,) = store.campaigns()
    assert row.name == "old" and row.flow_run_id is None
    engine.dispose()


def test_concurrent_creation_stamps_once(tmp_path) -> None:
    import threading

    url = f"sqlite:///{tmp_path / 'race.db'}"
    barrier = threading.Barrier(4, timeout=30)
    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            barrier.wait()
            Store(url).engine.dispose()
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    engine = make_engine(url, create=False)
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    engine.dispose()
