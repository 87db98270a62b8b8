"""Fixtures of the hardware-in-the-loop tests: a fail-on-leaked-threads guard.

The tests run every driver against its simulator over a real pseudo-terminal or TCP socket, so
each test starts simulator server threads (named ``sim-*``); a test that forgets to stop them,
or a driver that starts a thread of its own and never ends it, fails here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves threads running (simulator servers, driver helpers, ...)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 2.0
    while True:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert not leaked, f"threads left running: {leaked}"
