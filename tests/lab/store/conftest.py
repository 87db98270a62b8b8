"""Store tests run on SQLite and, when ``LAB_TEST_POSTGRES_URL`` is set, on PostgreSQL too.

CI (``.ci/run``) installs and starts a PostgreSQL server and sets the variable.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import text

from lab.store import Store, make_engine

PG_URL = os.environ.get("LAB_TEST_POSTGRES_URL")
BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql", marks=pytest.mark.skipif(not PG_URL, reason="LAB_TEST_POSTGRES_URL not set")
    ),
]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lab.db'}"
    engine = make_engine(PG_URL, create=False)
    with engine.begin() as conn:  # a fresh, empty schema for every test
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return PG_URL  # type: ignore[return-value]


@pytest.fixture
def store(db_url: str) -> Store:
    s = Store(db_url)
    yield s
    s.engine.dispose()
