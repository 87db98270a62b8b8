"""Materials tests build structures into a per-session cache directory."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _session_cache_dir(tmp_path_factory: pytest.TempPathFactory):
    mp = pytest.MonkeyPatch()
    mp.setenv("LAB_CACHE_DIR", str(tmp_path_factory.mktemp("lab-cache")))
    yield
    mp.undo()
