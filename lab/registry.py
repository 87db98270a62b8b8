"""One kind of registry: named entries that refuse duplicates.

Models, acquisition functions, process steps, measurement routes and instrument kinds each
live in one :class:`Registry`. An entry registers under a name once; a second registration
under the same name is a programming error and is refused, and looking up an unknown name
raises a :class:`~lab.errors.SpecError` that lists the names that exist.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from lab.errors import LabError, SpecError

T = TypeVar("T")

__all__ = ["DuplicateEntry", "Registry", "discover"]


class DuplicateEntry(LabError, ValueError):
    """A name was registered twice in one registry."""


class Registry(Generic[T]):
    """Entries of one kind by name.

    Args:
        what: What the entries are, for messages (``"step kind"``, ``"route"``...).
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        """Register ``entry`` under ``name`` and return it.

        Raises:
            DuplicateEntry: If ``name`` is already registered.
        """
        if name in self._entries:
            raise DuplicateEntry(f"{self.what} '{name}' is already registered")
        self._entries[name] = entry
        return entry

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""

        def deco(entry: T) -> T:
            return self.add(name, entry)

        return deco

    def get(self, name: str) -> T:
        """The entry called ``name``.

        Raises:
            SpecError: If there is none; the message lists the registered names.
        """
        try:
            return self._entries[name]
        except KeyError:
            raise SpecError(
                f"unknown {self.what} '{name}'; registered: {', '.join(self.names()) or 'none'}"
            ) from None

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)


def discover(registry: Registry[Any], package: str, base: type) -> None:
    """Register one instance of every concrete ``base`` subclass defined in ``package``'s modules.

    Modules whose name starts with ``_`` are skipped (shared code); each class registers
    under its ``name`` attribute. Adding an entry is then one module in the package.
    """
    import importlib
    import inspect
    import pkgutil

    pkg = importlib.import_module(package)
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and issubclass(cls, base) and cls is not base:
                entry = cls()
                registry.add(entry.name, entry)
