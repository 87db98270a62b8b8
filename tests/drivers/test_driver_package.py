"""Checks over the whole drivers package: public API, layering, common driver behaviour."""

from __future__ import annotations

import ast
import inspect
import sys
from pathlib import Path

import pytest
from scripted import ScriptedPort

import drivers
from drivers._base import Instrument

DRIVER_CLASSES = [
    drivers.NE1000,
    drivers.ScpiLcr,
    drivers.IkaHotplate,
    drivers.MtSicsBalance,
    drivers.Grbl,
    drivers.Sqc310,
]
PACKAGE_DIR = Path(drivers.__file__).resolve().parent


def test_all_is_importable() -> None:
    for name in drivers.__all__:
        assert hasattr(drivers, name), name
    assert len(set(drivers.__all__)) == len(drivers.__all__)


@pytest.mark.parametrize("path", sorted(PACKAGE_DIR.glob("*.py")), ids=lambda p: p.name)
def test_imports_only_stdlib_pyserial_and_drivers(path: Path) -> None:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            assert top in sys.stdlib_module_names or top in ("serial", "drivers"), (path, name)


@pytest.mark.parametrize("cls", DRIVER_CLASSES, ids=lambda c: c.__name__)
def test_driver_common_contract(cls: type[Instrument]) -> None:
    assert issubclass(cls, Instrument)
    params = inspect.signature(cls).parameters
    assert next(iter(params)) == "url"
    for kw in ("port", "name", "timeout"):
        assert params[kw].kind is inspect.Parameter.KEYWORD_ONLY, kw
    port = ScriptedPort([])
    with cls(port=port, name="unit") as dev:  # type: ignore[call-arg]
        assert dev.name == "unit"
        assert "unit" in repr(dev)
    assert port.closed
    for name, member in inspect.getmembers(cls, inspect.isfunction):
        if not name.startswith("_"):
            assert member.__doc__, f"{cls.__name__}.{name} has no docstring"


def test_retry_listeners_see_every_repeat_whatever_the_logging() -> None:
    import logging

    garbled = b"Keysight,E4980A\n"
    pairs = [(b"*IDN?\n", garbled)] * 4
    seen: list[drivers.DriverRetry] = []

    def broken(_: drivers.DriverRetry) -> None:
        raise RuntimeError("a listener bug")

    log = logging.getLogger("drivers")
    level = log.level
    log.setLevel(logging.CRITICAL)  # an application that shows no driver warnings
    try:
        port = ScriptedPort(pairs)
        with drivers.ScpiLcr(port=port, name="meter", timeout=0.05) as lcr:
            lcr.add_retry_listener(broken)  # its error is logged, the exchange goes on
            lcr.add_retry_listener(seen.append)
            with pytest.raises(drivers.GarbledReply):
                lcr.identify()
            lcr.remove_retry_listener(seen.append)
            lcr.remove_retry_listener(seen.append)  # no error the second time
            with pytest.raises(drivers.GarbledReply):
                lcr.identify()  # repeated again, unseen
    finally:
        log.setLevel(level)
    assert [(r.device, r.what, r.attempt, type(r.error)) for r in seen] == [
        ("meter", "*IDN?", 1, drivers.GarbledReply)
    ]
