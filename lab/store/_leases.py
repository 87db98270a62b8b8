"""Holding instrument leases for the length of a block, with a heartbeat thread."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence

from lab.errors import LabError
from lab.store._store import Store


class LeaseTimeout(LabError):
    """The instruments stayed busy (leased by another campaign) for too long."""


@contextlib.contextmanager
def hold_leases(
    store: Store,
    resources: Sequence[str],
    owner: str,
    *,
    ttl_s: float = 30.0,
    wait_s: float = 600.0,
    poll_s: float = 0.2,
    cancelled: Callable[[], bool] = lambda: False,
) -> Iterator[str]:
    """Hold every lease of ``resources`` while the block runs.

    Waits (polling) until all are free, renews them every ``ttl_s / 3`` from a heartbeat
    thread, and releases them on exit. A holder that dies stops renewing, so its leases
    expire after ``ttl_s`` and another campaign can take the instruments.

    Args:
        store: The store holding the lease table.
        resources: Instrument identifiers (their transport URLs).
        owner: Human-readable owner, e.g. ``campaign-3/experiment-12``.
        ttl_s: Lease lifetime without a heartbeat, s (campaigns pass the workcell's
            :meth:`~lab.workcell.Workcell.lease_ttl`: ``lease_ttl_s`` or ``$LAB_LEASE_TTL_S``).
        wait_s: Longest wait for busy instruments, s.
        poll_s: Polling period while waiting, s.
        cancelled: Returns ``True`` to stop waiting (campaign paused or aborted).

    Yields:
        The unique holder id written in the lease table.

    Raises:
        LeaseTimeout: If the instruments stay busy for ``wait_s`` or waiting is cancelled.
    """
    holder = f"{owner}/{uuid.uuid4().hex[:8]}"
    deadline = time.monotonic() + wait_s
    while not store.acquire_leases(resources, holder, ttl_s):
        if cancelled() or time.monotonic() > deadline:
            raise LeaseTimeout(
                f"instruments {sorted(resources)} stayed leased by another campaign for "
                f"{wait_s:.0f} s; see `lab campaign list` or wait for the lease to expire"
            )
        time.sleep(poll_s)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(ttl_s / 3):
            with contextlib.suppress(Exception):
                store.renew_leases(resources, holder, ttl_s)

    thread = threading.Thread(target=beat, name=f"lease-{holder}", daemon=True)
    thread.start()
    try:
        yield holder
    finally:
        stop.set()
        thread.join(timeout=5)
        with contextlib.suppress(Exception):
            store.release_leases(resources, holder)
