"""The cheap-fidelity calculator: rigid-cleavage work of adhesion, caching, progress, fan-out."""

from __future__ import annotations

import importlib.util
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from pymatgen.core import Structure

from lab.materials import JsonCache, build_interface
from lab.materials.calculator import (
    adhesion_labels,
    calculate_library,
    contact_asr_estimate,
    work_of_adhesion,
)


class PairEnergy:
    """A bonding pair potential, -1 eV per pair closer than 3.2 Å (stands in for CHGNet)."""

    name = "pair-test"

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, structure: Structure) -> float:
        self.calls += 1
        _, _, _, dist = structure.get_neighbor_list(3.2)
        return -0.5 * float(np.sum(dist > 1e-6))


def test_work_of_adhesion_counts_the_bonds_cut() -> None:
    iface = build_interface("Au", "LLZO")
    w_sub, w_par, e_all = work_of_adhesion(iface, PairEnergy(), gap_shifts=(0.0,))
    assert e_all < 0
    assert w_sub > 0 and w_par > 0  # pulling a bonded stack apart costs energy
    s = iface.structure
    phase = np.asarray(s.site_properties["phase"])
    centers, neighbors, _, dist = s.get_neighbor_list(3.2)
    cut = np.sum((phase[centers] == 0) & (phase[neighbors] >= 1) & (dist > 1e-6))
    area = s.lattice.a * s.lattice.b
    assert w_sub == pytest.approx(cut / area * 16.021766, rel=1e-6)


def test_gap_scan_finds_the_bonded_separation() -> None:
    iface = build_interface("Au", "LLZO")
    rigid = work_of_adhesion(iface, PairEnergy(), gap_shifts=(0.0,))
    scanned = work_of_adhesion(iface, PairEnergy(), gap_shifts=(-0.3, 0.0, 0.3))
    assert scanned[0] >= rigid[0] and scanned[1] >= rigid[1]
    assert scanned[2] == rigid[2]


def test_contact_estimate_is_lower_for_better_adhesion() -> None:
    assert contact_asr_estimate(1.0, 1.0, 5.0) < contact_asr_estimate(0.2, 1.0, 5.0)
    assert contact_asr_estimate(1.0, 1.0, 5.0) < contact_asr_estimate(1.0, 0.1, 5.0)
    assert contact_asr_estimate(1.0, 1.0, 50.0) > contact_asr_estimate(1.0, 1.0, 5.0)


def test_library_calculation_is_cached_with_progress_and_fan_out(tmp_path) -> None:
    cache = JsonCache(tmp_path, "adhesion")
    pairs = [("Au", "LLZO"), ("LiF", "LLZO"), ("MgO", "LLTO")]
    energy = PairEnergy()
    seen: list[tuple[int, int, float]] = []
    with ThreadPoolExecutor(2) as pool:
        first = calculate_library(
            pairs, energy, cache=cache, executor=pool, progress=lambda *a: seen.append(a)
        )
    assert [r.modifier for r in first] == ["Au", "LiF", "MgO"]
    assert [d for d, _, _ in seen] == [1, 2, 3] and seen[-1][2] == 0.0
    assert energy.calls == 3 * (5 + 2 * 4)  # stack, four parts, four shifts per interface
    again = calculate_library(pairs, energy, cache=cache)
    assert energy.calls == 39  # all from the cache
    assert [r.w_partner for r in again] == pytest.approx([r.w_partner for r in first])
    labels = adhesion_labels(again, [1.0, 10.0])
    assert len(labels) == 6 and all(v > 0 for *_, v in labels)


@pytest.mark.skipif(importlib.util.find_spec("chgnet") is None, reason="chgnet not installed")
def test_chgnet_energy_offline() -> None:  # pragma: no cover - optional extra
    from lab.materials.calculator import CHGNetEnergy

    iface = build_interface("Au", "Li6PS5Cl")
    w_sub, w_par, _ = work_of_adhesion(iface, CHGNetEnergy())
    assert -5.0 < w_sub < 10.0 and -5.0 < w_par < 10.0
