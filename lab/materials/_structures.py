"""pymatgen ``Structure``s built from library entries, offline, cached by content hash."""

from __future__ import annotations

import numpy as np
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.groups import SpaceGroup

from lab.materials._cache import JsonCache, content_hash
from lab.materials._library import Material, MaterialsError, get_material

BULK_BUILDER_VERSION = 1
"""Bumped whenever :func:`bulk_structure` would build a different structure from the same entry."""


def _lattice(material: Material) -> Lattice:
    p = material.lattice
    a = p["a"]
    if material.spacegroup == "P1":
        return Lattice.from_parameters(
            a,
            p.get("b", a),
            p.get("c", a),
            p.get("alpha", 90.0),
            p.get("beta", 90.0),
            p.get("gamma", 90.0),
        )
    system = SpaceGroup(material.spacegroup).crystal_system
    if system == "cubic":
        return Lattice.cubic(a)
    if system == "tetragonal":
        return Lattice.tetragonal(a, p["c"])
    if system in ("hexagonal", "trigonal"):
        return Lattice.hexagonal(a, p["c"])
    if system == "orthorhombic":
        return Lattice.orthorhombic(a, p["b"], p["c"])
    return Lattice.from_parameters(
        a, p["b"], p["c"], p.get("alpha", 90.0), p.get("beta", 90.0), p.get("gamma", 90.0)
    )


def _build(material: Material) -> Structure:
    species = [el for el, _ in material.sites]
    coords = [list(xyz) for _, xyz in material.sites]
    lattice = _lattice(material)
    if material.spacegroup == "P1":
        return Structure(lattice, species, coords)
    structure = Structure.from_spacegroup(material.spacegroup, lattice, species, coords)
    # Coordinates such as 0.66666667 for 2/3 can leave symmetry copies 1e-8 apart: merge them.
    structure.merge_sites(tol=0.3, mode="delete")
    return structure


def bulk_structure(
    material: str | Material, *, cache: JsonCache | None = None, use_cache: bool = True
) -> Structure:
    """The conventional cell of a library material, built with no network access.

    Wyckoff sites are expanded with the space group's operations
    (``Structure.from_spacegroup``); ``P1`` stand-ins are built from their explicit sites.

    Args:
        material: Library name or entry.
        cache: Cache to use (default: the ``"bulk"`` namespace of the default cache directory).
        use_cache: Read and write the cache (off: always build).

    Returns:
        The structure (conventional cell, Å).

    Raises:
        MaterialsError: When the built cell's composition does not reduce to the entry's
            formula (for stand-ins: when it has overlapping atoms).
    """
    m = get_material(material) if isinstance(material, str) else material
    cache = cache or JsonCache(namespace="bulk")
    key = content_hash({"v": BULK_BUILDER_VERSION, "entry": m.content_hash})
    if use_cache and (doc := cache.get(key)) is not None:
        return Structure.from_dict(doc)
    structure = _build(m)
    dist = structure.distance_matrix + np.eye(len(structure)) * 1e9
    if len(structure) > 1 and dist.min() < 0.8:
        raise MaterialsError(f"{m.name}: atoms closer than 0.8 Å ({dist.min():.2f} Å)")
    if structure.composition.reduced_formula != _reduced(m.formula) and m.simplified is None:
        raise MaterialsError(
            f"{m.name}: built {structure.composition.reduced_formula}, expected {m.formula}"
        )
    if use_cache:
        cache.put(key, structure.as_dict())
    return structure


def _reduced(formula: str) -> str:
    from pymatgen.core import Composition

    return Composition(formula).reduced_formula


def orthogonal_cell(structure: Structure, tol_deg: float = 1e-3) -> Structure:
    """The same crystal in a cell with ``a ⟂ b ⟂ c`` (for stacking along ``c``).

    Cells that are already orthogonal are returned as a copy; hexagonal cells (γ = 120°,
    also rhombohedral phases in the hexagonal setting) become orthohexagonal with
    ``b' = a + 2b`` (|b'| = √3·a).

    Raises:
        MaterialsError: For a cell that is neither (monoclinic, triclinic).
    """
    alpha, beta, gamma = structure.lattice.angles
    if max(abs(alpha - 90), abs(beta - 90)) > tol_deg:
        raise MaterialsError(f"cannot orthogonalise a cell with angles {structure.lattice.angles}")
    if abs(gamma - 90) <= tol_deg:
        return structure.copy()
    if abs(gamma - 120) <= tol_deg or abs(gamma - 60) <= tol_deg:
        sign = 1 if abs(gamma - 120) <= tol_deg else -1
        out = structure.copy()
        out.make_supercell([[1, 0, 0], [sign, 2, 0], [0, 0, 1]])
        angles = out.lattice.angles
        if max(abs(x - 90) for x in angles) > 1e-2:
            raise MaterialsError(f"orthohexagonal transform failed: angles {angles}")
        # Rebuild with an exactly orthogonal lattice (removes round-off in the angles).
        a, b, c = out.lattice.abc
        return Structure(
            Lattice.orthorhombic(a, b, c), out.species, out.frac_coords % 1.0, to_unit_cell=True
        )
    raise MaterialsError(f"cannot orthogonalise a cell with γ = {gamma:.3f}°")
