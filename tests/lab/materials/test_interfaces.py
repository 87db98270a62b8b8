"""Interface stacks substrate | modifier | partner: geometry, strain bookkeeping and caching."""

from __future__ import annotations

import numpy as np
import pytest

from lab.materials import (
    PHASES,
    REGIONS,
    InterfaceStructure,
    JsonCache,
    StackSettings,
    build_interface,
    bulk_structure,
    match_cells,
    modifiers,
    orthogonal_cell,
)


def test_match_cells_finds_coincidences() -> None:
    settings = StackSettings(min_length=7.0, max_length=16.0, max_area=200.0)
    (i, j), fits = match_cells((8.0, 8.0), [(4.0, 4.0), (2.0, 8.0)], settings)
    assert (i, j) == (1, 1)
    assert fits[0][:2] == (2, 2) and fits[0][3:] == (0.0, 0.0)
    assert fits[1][3:] == (0.0, 0.0)
    # an anisotropic cell is rotated when that fits better
    (_, _), fits = match_cells((12.0, 4.0), [(4.0, 12.0)], StackSettings(max_length=12.0))
    assert fits[0][2] is True


@pytest.mark.parametrize(
    ("modifier", "partner"), [("Au", "LLZO"), ("Al2O3", "Li6PS5Cl"), ("ZnO", "LLTO")]
)
def test_stack_geometry(modifier: str, partner: str) -> None:
    iface = build_interface(modifier, partner)
    s = iface.structure
    phase = np.asarray(s.site_properties["phase"])
    region = np.asarray(s.site_properties["region"])
    z = s.cart_coords[:, 2]
    assert set(phase) == {0, 1, 2}
    assert set(region) == {0, 1, 2, 3, 4} or set(region) == {1, 2, 3, 4}
    assert REGIONS[2] == "modifier" and set(region[phase == 1]) == {2}
    za, zb = iface.planes
    assert z[phase == 0].max() < za < z[phase == 1].min()
    assert z[phase == 1].max() < zb < z[phase == 2].min()
    dist = s.distance_matrix + np.eye(len(s)) * 100
    assert dist.min() > 1.2
    assert len(s) <= 400
    # strain bookkeeping: n · a_phase · (1 + ε) equals the common cell edge
    for k, name in enumerate(PHASES):
        mat = iface.names[k]
        ortho = orthogonal_cell(bulk_structure(mat))
        nx, ny, swapped = iface.supercells[name]
        a, b = (ortho.lattice.b, ortho.lattice.a) if swapped else (ortho.lattice.a, ortho.lattice.b)
        ex, ey = iface.strain[name]
        assert nx * a * (1 + ex) == pytest.approx(s.lattice.a, rel=1e-9)
        assert ny * b * (1 + ey) == pytest.approx(s.lattice.b, rel=1e-9)
    assert iface.strain["partner"] == (0.0, 0.0)
    assert iface.max_strain < 0.3


def test_every_modifier_stacks(tmp_path) -> None:
    cache = JsonCache(tmp_path, "interface")
    for m in modifiers():
        iface = build_interface(m, "Li6PS5Cl", cache=cache)
        assert iface.names == ("Li", m, "Li6PS5Cl")
    assert len(list((tmp_path / "interface").glob("*.json"))) == len(modifiers())


def test_cache_round_trip(tmp_path) -> None:
    cache = JsonCache(tmp_path, "interface")
    built = build_interface("LiF", "LLZO", cache=cache)
    loaded = build_interface("LiF", "LLZO", cache=cache)
    assert loaded.key == built.key
    assert loaded.structure == built.structure
    assert loaded.structure.site_properties["region"] == built.structure.site_properties["region"]
    for name in PHASES:
        assert loaded.strain[name] == pytest.approx(built.strain[name])
    again = InterfaceStructure.from_dict(built.to_dict())
    assert again.planes == built.planes
    other = build_interface("LiF", "LLZO", cache=cache, settings=StackSettings(vacuum=10.0))
    assert other.key != built.key
