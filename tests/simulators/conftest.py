"""Fixtures of the simulator tests: a fast world and a check that no server thread leaks."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from simulators.world import SimulatedWorld


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves a simulator thread running."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 2.0
    while True:
        leaked = [t for t in threading.enumerate() if t not in before and t.name.startswith("sim-")]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert not leaked, f"threads left running: {leaked}"


@pytest.fixture
def world() -> SimulatedWorld:
    """A world whose simulated time runs 1000x faster than real time."""
    return SimulatedWorld(time_scale=1000.0, seed=1)


@pytest.fixture
def slow_world() -> SimulatedWorld:
    """A world in real time (for exchanges that must not be affected by elapsed time)."""
    return SimulatedWorld(time_scale=1.0, seed=1)
