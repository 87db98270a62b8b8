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


def test_unversioned_database_missing_columns_is_refused_untouched(db_url: str) -> None:
    """A database from before migrations (tables, no revision stamp, fewer columns) is never
    stamped as current: the error names the database, the missing column and the fix."""
    import pytest

    from lab.store import SchemaMismatch

    engine = make_engine(db_url, create=False)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE campaign (id INTEGER PRIMARY KEY, name VARCHAR)"))
        conn.execute(text("INSERT INTO campaign (id, name) VALUES (1, 'kept')"))
    engine.dispose()
    with pytest.raises(SchemaMismatch) as err:
        make_engine(db_url)
    message = str(err.value)
    assert "campaign.workcell" in message and "--db" in message
    if db_url.startswith("sqlite"):
        assert db_url.removeprefix("sqlite:///") in message and "mv " in message
    engine = make_engine(db_url, create=False)
    assert set(inspect(engine).get_table_names()) == {"campaign"}  # nothing created, no stamp
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM campaign")).scalar() == "kept"
    engine.dispose()


def test_unversioned_database_with_the_models_columns_is_stamped(db_url: str) -> None:
    engine = make_engine(db_url, create=False)
    SQLModel.metadata.create_all(engine)
    assert migrate(engine) == "created"
    assert migrate(engine) == "current"
    engine.dispose()


def test_console_reports_an_old_database_without_a_traceback(tmp_path) -> None:
    import sqlite3

    from typer.testing import CliRunner

    from lab.console import app

    old = tmp_path / "old.db"
    with sqlite3.connect(old) as conn:
        conn.execute("CREATE TABLE campaign (id INTEGER PRIMARY KEY, name VARCHAR)")
    result = CliRunner().invoke(app, ["campaign", "list", "--db", f"sqlite:///{old}"])
    assert result.exit_code == 2, result.output
    assert "older version of the lab" in result.output and "Traceback" not in result.output


def test_stamped_database_missing_columns_is_refused(db_url: str) -> None:
    """Earlier versions stamped a pre-migration database at head without its new columns; such
    a database is refused with the fix rather than failing later on a raw SQL error."""
    import pytest

    from lab.store import SchemaMismatch

    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE campaign DROP COLUMN workcell"))
    engine.dispose()
    with pytest.raises(SchemaMismatch, match=r"campaign\.workcell"):
        make_engine(db_url)
