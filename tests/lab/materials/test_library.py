"""The shipped library: content, validation, offline structures and the cache."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Composition

from lab.materials import (
    JsonCache,
    MaterialsError,
    bulk_structure,
    electrolytes,
    get_material,
    library_hash,
    load_library,
    modifiers,
    orthogonal_cell,
    parse_library,
)

REQUIRED_MODIFIERS = {
    "LiF",
    "Li2O",
    "Li3N",
    "Al2O3",
    "ZnO",
    "MgO",
    "Au",
    "Ag",
    "Al",
    "Si",
    "Ge",
    "Sn",
}


def test_library_content() -> None:
    lib = load_library()
    assert len(modifiers()) >= 20
    assert set(modifiers()) >= REQUIRED_MODIFIERS
    assert {"LLZO", "LLTO", "Li6PS5Cl"} <= set(electrolytes())
    assert lib["Li"].role == "substrate"
    for m in lib.values():
        assert m.source and m.prototype and m.formula
        assert "a" in m.lattice
        Composition(m.formula)  # parses


@pytest.mark.parametrize("name", list(load_library()))
def test_every_entry_builds_offline(name: str) -> None:
    m = get_material(name)
    s = bulk_structure(name)
    assert len(s) <= 64
    if m.simplified is None or name == "Li6PS5Cl":
        assert s.composition.reduced_formula == Composition(m.formula).reduced_formula
    dist = s.distance_matrix + np.eye(len(s)) * 100
    assert dist.min() > 1.3  # no overlapping atoms (shortest real bond here: C-C 1.42 Å)
    o = orthogonal_cell(s)
    assert np.allclose(o.lattice.angles, 90.0, atol=1e-3)
    assert o.composition.reduced_formula == s.composition.reduced_formula
    assert o.volume == pytest.approx(s.volume * len(o) / len(s), rel=1e-6)


def test_lattice_parameters_match_the_data() -> None:
    for name in ("Au", "ZnO", "LLZO", "Li"):
        m = get_material(name)
        s = bulk_structure(name)
        assert s.lattice.a == pytest.approx(m.lattice["a"], rel=1e-9)
    assert bulk_structure("Si").lattice.volume == pytest.approx(5.431**3, rel=1e-6)


def test_cache_round_trip(tmp_path) -> None:
    cache = JsonCache(tmp_path, "bulk")
    first = bulk_structure("Al2O3", cache=cache)
    files = list((tmp_path / "bulk").glob("*.json"))
    assert len(files) == 1
    again = bulk_structure("Al2O3", cache=cache)
    assert again == first
    assert len(list((tmp_path / "bulk").glob("*.json"))) == 1


def test_hashes_are_stable_and_content_based() -> None:
    assert library_hash() == library_hash()
    au, ag = get_material("Au"), get_material("Ag")
    assert au.content_hash != ag.content_hash


def test_unknown_and_invalid() -> None:
    with pytest.raises(MaterialsError, match="unknown material"):
        get_material("Unobtainium")
    with pytest.raises(MaterialsError, match="missing fields"):
        parse_library("entries:\n  - {name: X, role: modifier}\n")
    with pytest.raises(MaterialsError, match="role"):
        parse_library(
            "entries:\n  - {name: X, role: anode, formula: X, prototype: p, spacegroup: P1,"
            " lattice: {a: 1}, sites: [], source: s}\n"
        )
    dup = (
        "  - {name: X, role: modifier, formula: Li, prototype: p, spacegroup: P1,"
        " lattice: {a: 3}, sites: [[Li, [0, 0, 0]]], source: s}\n"
    )
    with pytest.raises(MaterialsError, match="duplicate"):
        parse_library("entries:\n" + dup + dup)


def test_simulated_truth_knows_every_library_material() -> None:
    from simulators.truths_interface import ELECTROLYTES, MODIFIERS

    assert set(MODIFIERS) == set(modifiers())
    assert set(ELECTROLYTES) == set(electrolytes())
    for name, props in MODIFIERS.items():  # the truth's own copy agrees with the library
        assert props.a == pytest.approx(get_material(name).lattice["a"], rel=0.01), name
