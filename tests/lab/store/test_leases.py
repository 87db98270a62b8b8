"""Instrument leases: exclusive, all-or-nothing, renewed by heartbeat, expiring after a crash."""

from __future__ import annotations

import threading
import time

from lab.store import Store


def test_exclusive_and_all_or_nothing(store: Store) -> None:
    assert store.acquire_leases(["pump", "lcr"], "A", ttl_s=30)
    assert not store.acquire_leases(["lcr"], "B", ttl_s=30)
    # B asks for a free and a held one: gets neither
    assert not store.acquire_leases(["hotplate", "pump"], "B", ttl_s=30)
    assert {lease.resource for lease in store.leases()} == {"pump", "lcr"}
    # re-entrant for the holder
    assert store.acquire_leases(["pump"], "A", ttl_s=30)
    store.release_leases(["pump", "lcr"], "A")
    assert store.acquire_leases(["lcr", "hotplate"], "B", ttl_s=30)


def test_expired_lease_is_taken_over_and_renewal_detects_loss(store: Store) -> None:
    assert store.acquire_leases(["gantry"], "crashed", ttl_s=0.2)
    assert not store.acquire_leases(["gantry"], "B", ttl_s=30)
    time.sleep(0.3)
    assert store.acquire_leases(["gantry"], "B", ttl_s=30)
    assert not store.renew_leases(["gantry"], "crashed", ttl_s=30)
    assert store.renew_leases(["gantry"], "B", ttl_s=30)


def test_racing_holders_never_share(db_url: str) -> None:
    winners: list[str] = []
    Store(db_url).engine.dispose()  # tables exist before the race
    barrier = threading.Barrier(6, timeout=30)

    def contend(name: str) -> None:
        s = Store(db_url)
        barrier.wait()
        if s.acquire_leases(["balance", "lcr"], name, ttl_s=30):
            winners.append(name)
        s.engine.dispose()

    threads = [threading.Thread(target=contend, args=(f"h{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
