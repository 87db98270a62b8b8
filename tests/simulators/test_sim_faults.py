"""Seeded fault injection."""

from __future__ import annotations

import pytest

from simulators.faults import FAULT_KINDS, Disconnect, FaultConfig, FaultInjector


def run(seed: int, n: int = 200) -> list[object]:
    injector = FaultInjector(FaultConfig(rate=0.3, seed=seed), busy_frame=b"BUSY")
    return [injector.apply(b"reply %d\r\n" % i) for i in range(n)]


def test_reproducible_by_seed() -> None:
    assert run(4) == run(4)
    assert run(4) != run(5)


def test_rate_and_log() -> None:
    injector = FaultInjector(FaultConfig(rate=0.25, seed=1), clock=lambda: 42.0)
    replies = [injector.apply(b"abcdef") for _ in range(2000)]
    assert 400 < len(injector.log) < 600
    assert {kind for _, kind, _ in injector.log} == set(FAULT_KINDS)
    assert all(t == 42.0 for t, _, _ in injector.log)
    assert sum(r == b"abcdef" for r in replies) >= 1400


def test_no_faults_by_default() -> None:
    injector = FaultInjector()
    assert not injector.active
    assert all(injector.apply(b"x") == b"x" for _ in range(100))
    assert injector.log == []


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_each_kind(kind: str) -> None:
    injector = FaultInjector(FaultConfig(rate=1.0, kinds=(kind,), seed=3), busy_frame=b"BUSY")
    reply = b"S S      1.2345 g\r\n"
    out = injector.apply(reply)
    if kind == "no_reply":
        assert out is None
    elif kind == "garbled":
        assert isinstance(out, bytes) and len(out) == len(reply) and out != reply
    elif kind == "truncated":
        assert isinstance(out, bytes) and reply.startswith(out) and len(out) < len(reply)
    elif kind == "busy":
        assert out == b"BUSY"
    elif kind == "disconnect":
        assert isinstance(out, Disconnect)
    else:
        assert out == reply and abs(injector.drift) == pytest.approx(0.002)
    assert [k for _, k, _ in injector.log] == [kind]


def test_drift_is_monotonic() -> None:
    injector = FaultInjector(FaultConfig(rate=1.0, kinds=("drift",), seed=9))
    levels = []
    for _ in range(5):
        injector.apply(b"x")
        levels.append(abs(injector.drift))
    assert levels == sorted(levels) and levels[-1] == pytest.approx(0.01)


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        FaultConfig(rate=1.5)
    with pytest.raises(ValueError):
        FaultConfig(rate=0.1, kinds=("meteor",))


def test_device_faults_reproducible_by_seed() -> None:
    from simulators.ne1000 import NE1000Sim
    from simulators.world import SimulatedWorld

    def replies(seed: int) -> list[object]:
        config = FaultConfig(rate=0.5, seed=seed, kinds=("no_reply", "garbled", "truncated"))
        pump = NE1000Sim(SimulatedWorld(), faults=config)
        return [pump.feed(b"0VER\r") for _ in range(40)]

    assert replies(3) == replies(3)
    assert replies(3) != replies(4)
