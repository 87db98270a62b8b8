"""Registries: one entry per name, and unknown names answered with the names that exist."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from lab.errors import LabError, SpecError
from lab.registry import DuplicateEntry, Registry, discover
from lab.routes import ROUTES, RouteKind
from lab.steps import STEPS, StepKind


def test_registry_add_get_and_listing() -> None:
    reg: Registry[int] = Registry("widget")
    assert reg.add("b", 2) == 2

    @reg.register("a")
    def a() -> int:
        return 1

    assert reg.get("a") is a and reg.get("b") == 2
    assert reg.names() == ["a", "b"] and list(reg) == ["a", "b"]
    assert "a" in reg and "c" not in reg and len(reg) == 2


def test_registry_refuses_a_duplicate() -> None:
    reg: Registry[int] = Registry("widget")
    reg.add("a", 1)
    with pytest.raises(DuplicateEntry, match="widget 'a' is already registered"):
        reg.add("a", 2)
    with pytest.raises(DuplicateEntry):
        reg.register("a")(3)
    # the first entry stays
    assert reg.get("a") == 1 and len(reg) == 1
    assert issubclass(DuplicateEntry, LabError) and issubclass(DuplicateEntry, ValueError)


def test_unknown_name_lists_the_registered_ones() -> None:
    reg: Registry[int] = Registry("widget")
    with pytest.raises(SpecError, match="unknown widget 'x'; registered: none"):
        reg.get("x")
    reg.add("zeta", 1)
    reg.add("alpha", 2)
    with pytest.raises(SpecError, match="unknown widget 'x'; registered: alpha, zeta$"):
        reg.get("x")


def _package(root: Path, name: str, modules: dict[str, str]) -> None:
    pkg = root / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "_base.py").write_text("class Base:\n    name = ''\n")
    for mod, body in modules.items():
        (pkg / f"{mod}.py").write_text(textwrap.dedent(body))


def test_discover_registers_each_concrete_subclass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _package(
        tmp_path,
        "fake_kinds",
        {
            "_shared": "from fake_kinds._base import Base\nclass Hidden(Base):\n    name = 'hidden'\n",
            "one": """
                from fake_kinds._base import Base
                class One(Base):
                    name = 'one'
                class NotAKind:
                    name = 'nope'
            """,
            "two": """
                from fake_kinds._base import Base
                from fake_kinds.one import One  # imported, not defined here: not re-registered
                class Two(Base):
                    name = 'two'
            """,
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    from fake_kinds._base import Base  # type: ignore[import-not-found]

    reg: Registry[Base] = Registry("kind")
    discover(reg, "fake_kinds", Base)
    # modules starting with _ are skipped; each class registers once, as an instance
    assert reg.names() == ["one", "two"]
    assert type(reg.get("two")).__name__ == "Two" and isinstance(reg.get("one"), Base)
    for mod in [m for m in sys.modules if m.startswith("fake_kinds")]:
        monkeypatch.delitem(sys.modules, mod)


def test_discover_refuses_two_kinds_of_one_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = "from dup_kinds._base import Base\nclass K{n}(Base):\n    name = 'same'\n"
    _package(tmp_path, "dup_kinds", {"a": body.format(n=1), "b": body.format(n=2)})
    monkeypatch.syspath_prepend(str(tmp_path))
    from dup_kinds._base import Base  # type: ignore[import-not-found]

    with pytest.raises(DuplicateEntry, match="kind 'same'"):
        discover(Registry("kind"), "dup_kinds", Base)
    for mod in [m for m in sys.modules if m.startswith("dup_kinds")]:
        monkeypatch.delitem(sys.modules, mod)


def test_steps_and_routes_are_registered() -> None:
    assert STEPS.names() == ["anneal", "deposit", "dispense", "move"]
    assert ROUTES.names() == ["calculation", "impedance_single", "impedance_sweep"]
    for name in STEPS:
        kind = STEPS.get(name)
        assert isinstance(kind, StepKind) and kind.name == name and kind.instruments
    for name in ROUTES:
        route = ROUTES.get(name)
        assert isinstance(route, RouteKind) and route.name == name
        assert bool(route.instruments) == route.bench
    assert STEPS.get("move").moves_sample and not STEPS.get("deposit").moves_sample
    assert not ROUTES.get("calculation").bench
    assert ROUTES.get("impedance_sweep").plan_name == "characterize"
    assert ROUTES.get("impedance_single").plan_name == "measure_screening"
    with pytest.raises(SpecError, match="unknown step kind 'spin'; registered: anneal, deposit"):
        STEPS.get("spin")
    with pytest.raises(SpecError, match="unknown route 'xrd'; registered: calculation"):
        ROUTES.get("xrd")


def test_optimiser_registries_refuse_unknown_names() -> None:
    from lab.optimize._acquisition import (
        acquisition_names,
        get_acquisition,
        register_acquisition,
    )
    from lab.optimize._models import get_model, model_names

    assert model_names() and acquisition_names()
    first = model_names()[0]
    assert get_model(first).name == first
    with pytest.raises(LabError, match="unknown model 'no_such_model'") as exc:
        get_model("no_such_model")
    assert first in str(exc.value)
    name = acquisition_names()[0]
    assert get_acquisition(name).name == name
    with pytest.raises(LabError, match="unknown acquisition 'no_such_acq'") as exc:
        get_acquisition("no_such_acq")
    assert name in str(exc.value)
    with pytest.raises(DuplicateEntry, match=f"acquisition '{name}' is already registered"):
        register_acquisition(name)(lambda ctx: None)
