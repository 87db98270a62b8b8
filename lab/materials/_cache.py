"""On-disk cache of computed objects, keyed by the SHA-256 of their inputs.

Structures and interfaces are pure functions of library entries and builder settings, so the
key is the hash of a JSON payload of those inputs (plus a builder version); a changed entry
or setting gives a new key and the stale file is simply never read again. Files are written
atomically (temporary file, then rename), so concurrent builders never read half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

ENV_CACHE_DIR = "LAB_CACHE_DIR"
"""Environment variable naming the cache directory (default ``~/.cache/interface-lab``)."""


def default_cache_dir() -> Path:
    """The cache root: ``$LAB_CACHE_DIR`` or ``~/.cache/interface-lab``."""
    env = os.environ.get(ENV_CACHE_DIR)
    return Path(env) if env else Path.home() / ".cache" / "interface-lab"


def content_hash(payload: Any) -> str:
    """SHA-256 (hex) of a JSON-serialisable payload with sorted keys."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


class JsonCache:
    """A directory of JSON documents named by content hash.

    Args:
        root: Cache directory (created on first write); ``None`` for :func:`default_cache_dir`.
        namespace: Sub-directory separating kinds of objects (``"bulk"``, ``"interface"``).
    """

    def __init__(self, root: str | Path | None = None, namespace: str = "misc") -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.dir = self.root / namespace

    def path(self, key: str) -> Path:
        """File that holds (or would hold) ``key``."""
        return self.dir / f"{key}.json"

    def get(self, key: str) -> Any | None:
        """The document stored under ``key``, or ``None`` (also for an unreadable file)."""
        try:
            return json.loads(self.path(key).read_text("utf-8"))
        except (OSError, ValueError):
            return None

    def put(self, key: str, document: Any) -> None:
        """Store ``document`` under ``key`` atomically."""
        self.dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.dir, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(document, f)
            os.replace(tmp, self.path(key))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
