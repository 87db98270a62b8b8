"""Engines: SQLite with WAL and foreign keys by default, PostgreSQL by URL."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel, create_engine

ENV_VAR = "LAB_DATABASE_URL"


def data_dir() -> Path:
    """The user's data folder for the lab (``$XDG_DATA_HOME/interface-lab``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "interface-lab"


def default_database_url() -> str:
    """``$LAB_DATABASE_URL`` if set, else a SQLite file in the user's data folder."""
    url = os.environ.get(ENV_VAR)
    if url:
        return url
    return f"sqlite:///{data_dir() / 'lab.db'}"


def make_engine(url: str | None = None, *, create: bool = True) -> Engine:
    """Create an engine and (by default) the tables.

    Args:
        url: SQLAlchemy URL; ``None`` means :func:`default_database_url`.
        create: Create missing tables.
    """
    url = url or default_database_url()
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url.removeprefix("sqlite:///")).expanduser().parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict = {}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

    if create:
        from lab.errors import LabError
        from lab.store._migrate import migrate

        for attempt in range(3):  # another process may be creating the schema right now
            try:
                migrate(engine)
                break
            except LabError:
                raise  # a database we must not touch: retrying cannot help
            except Exception:
                if attempt == 2:
                    raise
    return engine


def create_tables(engine: Engine, attempts: int = 3) -> None:
    """Create missing tables; tolerates another process creating them at the same moment."""
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    for i in range(attempts):
        try:
            SQLModel.metadata.create_all(engine)
            return
        except (OperationalError, ProgrammingError, IntegrityError):
            if i == attempts - 1:
                raise
