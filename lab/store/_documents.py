"""A Bluesky document callback that writes runs and readings to the store.

It takes plain document dicts, so the store needs no Bluesky import: subscribe it with
``RE.subscribe(DocumentWriter(store, experiment_id))``.
"""

from __future__ import annotations

import math
from typing import Any

from lab.store._store import Store


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if hasattr(v, "tolist"):
        return v.tolist()
    return v


class DocumentWriter:
    """Writes start/descriptor/event/stop documents for one experiment.

    Args:
        store: The store.
        experiment_id: The experiment these runs belong to.
    """

    def __init__(self, store: Store, experiment_id: int | None) -> None:
        self.store = store
        self.experiment_id = experiment_id
        self._descriptors: dict[str, tuple[str, str, dict[str, str]]] = {}
        self.run_uids: list[str] = []

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        """Handle one document."""
        handler = getattr(self, f"_{name}", None)
        if handler is not None:
            handler(doc)

    def _start(self, doc: dict[str, Any]) -> None:
        clean = {
            k: _jsonable(v)
            for k, v in doc.items()
            if isinstance(v, str | int | float | bool | list | dict | type(None))
        }
        self.store.add_run(doc["uid"], self.experiment_id, clean)
        self.run_uids.append(doc["uid"])

    def _descriptor(self, doc: dict[str, Any]) -> None:
        units = {k: v.get("units") or "" for k, v in doc.get("data_keys", {}).items()}
        self._descriptors[doc["uid"]] = (doc["run_start"], doc.get("name", "primary"), units)

    def _event(self, doc: dict[str, Any]) -> None:
        run_uid, stream, units = self._descriptors[doc["descriptor"]]
        data = {k: _jsonable(v) for k, v in doc["data"].items()}
        self.store.add_reading(
            run_uid, stream, int(doc["seq_num"]), data, units, float(doc["time"])
        )

    def _stop(self, doc: dict[str, Any]) -> None:
        self.store.close_run(
            doc["run_start"], doc.get("exit_status", "unknown"), doc.get("reason") or None
        )
