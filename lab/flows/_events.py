"""Progress events for the console, and one store per database URL in this process."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from lab.store import Store

ProgressListener = Callable[[dict[str, Any]], None]
_listeners: list[ProgressListener] = []


@contextlib.contextmanager
def progress_listener(fn: ProgressListener) -> Iterator[None]:
    """Receive progress events (dicts with a ``kind`` key) while the context is open."""
    _listeners.append(fn)
    try:
        yield
    finally:
        _listeners.remove(fn)


def _emit(**event: Any) -> None:
    for fn in list(_listeners):
        with contextlib.suppress(Exception):
            fn(event)


_STORES: dict[str, Store] = {}


def store_for(db_url: str) -> Store:
    """One store (engine and connection pool) per database URL in this process."""
    if db_url not in _STORES:
        _STORES[db_url] = Store(db_url)
    return _STORES[db_url]
