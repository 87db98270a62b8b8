"""Alembic environment: the SQLModel tables of ``lab.store`` are the target metadata."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from lab.store import _models  # noqa: F401  (registers the tables)

config = context.config
target_metadata = SQLModel.metadata


def run_migrations() -> None:
    """Run migrations on the connection handed over by :func:`lab.store.migrate`."""
    connection = config.attributes.get("connection")
    if connection is None:
        from lab.store._engine import make_engine

        engine = make_engine(config.get_main_option("sqlalchemy.url"), create=False)
        with engine.connect() as conn:
            context.configure(
                connection=conn, target_metadata=target_metadata, render_as_batch=True
            )
            with context.begin_transaction():
                context.run_migrations()
        return
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
