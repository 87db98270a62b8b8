"""Schema migrations with Alembic (scripts in ``lab/store/migrations``)."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(engine: Engine) -> Config:
    """An Alembic config bound to ``engine``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


@contextlib.contextmanager
def schema_lock(engine: Engine) -> Iterator[None]:
    """Serialise schema creation and upgrades between processes.

    SQLite: an exclusive ``flock`` on ``<database>.lock``; PostgreSQL: a session advisory
    lock. Without it, two processes opening a new database at once could both create the
    schema and both stamp its revision.
    """
    if engine.dialect.name == "sqlite":
        db = engine.url.database
        if not db or db == ":memory:":
            yield
            return
        with open(f"{db}.lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
    elif engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(727001)"))
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(727001)"))
                conn.commit()
    else:
        yield


def migrate(engine: Engine) -> str:
    """Bring the schema to the newest revision.

    A new database gets every table and is stamped with the newest revision; an existing one
    is upgraded by the migration scripts.

    Returns:
        ``"created"``, ``"upgraded"`` or ``"current"`` (nothing to do).
    """
    from sqlmodel import SQLModel

    from lab.store import _models  # noqa: F401  (registers the tables)

    cfg = alembic_config(engine)
    head = ScriptDirectory.from_config(cfg).get_current_head()
    if _at(engine, head):
        return "current"
    with schema_lock(engine), engine.begin() as conn:
        tables = set(inspect(conn).get_table_names())
        if (
            "alembic_version" in tables
            and MigrationContext.configure(conn).get_current_revision() == head
        ):
            return "current"
        cfg.attributes["connection"] = conn
        if "alembic_version" not in tables:
            SQLModel.metadata.create_all(conn)
            command.stamp(cfg, "head")
            return "created"
        command.upgrade(cfg, "head")
        return "upgraded"


def _at(engine: Engine, head: str | None) -> bool:
    """Whether the database is already at revision ``head`` (cheap, read-only)."""
    if "alembic_version" not in set(inspect(engine).get_table_names()):
        return False
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision() == head
