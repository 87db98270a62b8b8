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
