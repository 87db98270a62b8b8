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
from sqlalchemy.engine import Connection, Engine

from lab.errors import LabError

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
    is upgraded by the migration scripts. A database whose tables lack columns of the models
    (one made before the store had migrations) is refused, never stamped or altered.

    Returns:
        ``"created"``, ``"upgraded"`` or ``"current"`` (nothing to do).

    Raises:
        SchemaMismatch: the database lacks columns the models need; nothing was changed.
    """
    from sqlmodel import SQLModel

    from lab.store import _models  # noqa: F401  (registers the tables)

    cfg = alembic_config(engine)
    head = ScriptDirectory.from_config(cfg).get_current_head()
    if _at(engine, head):
        with engine.connect() as conn:
            _check_columns(conn, engine, stamped=True)
        return "current"
    with schema_lock(engine), engine.begin() as conn:
        tables = set(inspect(conn).get_table_names())
        if (
            "alembic_version" in tables
            and MigrationContext.configure(conn).get_current_revision() == head
        ):
            _check_columns(conn, engine, stamped=True)
            return "current"
        cfg.attributes["connection"] = conn
        if "alembic_version" not in tables:
            _check_columns(conn, engine, stamped=False)
            SQLModel.metadata.create_all(conn)
            command.stamp(cfg, "head")
            return "created"
        command.upgrade(cfg, "head")
        return "upgraded"


class SchemaMismatch(LabError):
    """A database whose tables lack columns of the lab's models (made before migrations)."""


def _check_columns(conn: Connection, engine: Engine, *, stamped: bool) -> None:
    """Refuse a database whose existing tables lack columns the models need.

    A database made before the store had migrations has tables but no ``alembic_version``.
    ``create_all`` adds missing tables only, never missing columns, so stamping such a
    database as current would break its first query with a raw SQL error. Versions before
    this check did stamp such databases; ``stamped=True`` catches those (and missing tables).

    Args:
        conn: An open connection to the database.
        engine: Its engine (for the name in the message).
        stamped: The database carries the newest revision, so every table must exist.

    Raises:
        SchemaMismatch: naming the database, the missing columns and the fix.
    """
    from sqlmodel import SQLModel

    inspector = inspect(conn)
    tables = set(inspector.get_table_names())
    missing: list[str] = []
    for name, table in SQLModel.metadata.tables.items():
        if name not in tables:
            if stamped:
                missing.append(f"{name} (table)")
            continue
        have = {c["name"] for c in inspector.get_columns(name)}
        missing += [f"{name}.{c.name}" for c in table.columns if c.name not in have]
    if not missing:
        return
    if engine.dialect.name == "sqlite":
        where = str(engine.url.database)
        fix = (
            f"Move it aside (e.g. `mv {where} {where}.old`; the old file keeps its campaigns) "
            "and run again"
        )
    else:
        where = engine.url.render_as_string(hide_password=True)
        fix = "Upgrade it by hand or start from an empty database"
    shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
    raise SchemaMismatch(
        f"database {where} was made by an older version of the lab, before schema migrations, "
        f"and lacks columns {shown}. Nothing was changed. {fix}, or use another database "
        "with --db or $LAB_DATABASE_URL."
    )


def _at(engine: Engine, head: str | None) -> bool:
    """Whether the database is already at revision ``head`` (cheap, read-only)."""
    if "alembic_version" not in set(inspect(engine).get_table_names()):
        return False
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision() == head
