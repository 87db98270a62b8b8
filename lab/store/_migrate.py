"""Schema migrations with Alembic (scripts in ``lab/store/migrations``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(engine: Engine) -> Config:
    """An Alembic config bound to ``engine``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


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
    tables = set(inspect(engine).get_table_names())
    if "alembic_version" in tables:
        head = ScriptDirectory.from_config(cfg).get_current_head()
        with engine.connect() as conn:
            if MigrationContext.configure(conn).get_current_revision() == head:
                return "current"
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        if "alembic_version" not in tables:
            SQLModel.metadata.create_all(conn)
            command.stamp(cfg, "head")
            return "created"
        command.upgrade(cfg, "head")
        return "upgraded"
