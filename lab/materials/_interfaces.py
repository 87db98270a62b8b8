"""Interface supercells substrate | modifier | partner by coherent stacking, cached by hash.

The three phases are stacked along ``z`` in one in-plane cell. Each phase is brought to an
orthogonal cell (:func:`~lab.materials.orthogonal_cell`); the common in-plane cell is a
multiple of the partner's (the thick electrolyte keeps its lattice) and the substrate and
modifier take the integer multiples of their own cell, in either in-plane orientation, that
strain them least. This is the coincidence-lattice (ZSL) idea restricted to rectangular
supercells, which keeps a three-phase stack consistent and bounded: the search visits at most
a few dozen candidates and never enumerates general supercell vectors (see
``docs/decisions/0004-interface-surrogate.md``). The strain each phase takes is recorded: it is
the lattice mismatch against its neighbours, which the graph exposes to the model.

Slabs are cut from repeated cells by height (terminations as the cell origin gives them), the
gap between two slabs is the mean of their bulk nearest-neighbour distances, and vacuum above
and below makes ``z`` non-periodic for any neighbour cutoff below it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
from pymatgen.core import Lattice, Structure

from lab.materials._cache import JsonCache, content_hash
from lab.materials._library import Material, MaterialsError, get_material
from lab.materials._structures import bulk_structure, orthogonal_cell

INTERFACE_BUILDER_VERSION = 1
"""Bumped whenever :func:`build_interface` would build a different stack from the same inputs."""

REGIONS: tuple[str, ...] = (
    "substrate_bulk",
    "substrate_interface",
    "modifier",
    "partner_interface",
    "partner_bulk",
    "bulk",
)
"""Region tags of graph nodes; ``"bulk"`` is the single region of a crystal featurised alone."""

PHASES: tuple[str, ...] = ("substrate", "modifier", "partner")


@dataclass(frozen=True)
class StackSettings:
    """Geometry of an interface stack.

    Attributes:
        substrate_thickness: Height of the substrate slab, Å.
        modifier_thickness: Height of the modifier slab, Å (a model of the interlayer, not the
            campaign's process thickness, which enters the surrogate as a parameter).
        partner_thickness: Height of the partner slab, Å.
        interface_width: Atoms within this distance of an interface plane are tagged as the
            interface region of their phase, Å.
        vacuum: Vacuum below and above the stack, Å.
        min_length: Shortest in-plane cell edge to aim for, Å.
        max_length: Longest in-plane cell edge allowed, Å.
        max_area: Largest in-plane cell area allowed, Å².
    """

    substrate_thickness: float = 5.0
    modifier_thickness: float = 6.0
    partner_thickness: float = 7.0
    interface_width: float = 3.0
    vacuum: float = 8.0
    min_length: float = 7.0
    max_length: float = 16.0
    max_area: float = 200.0


@dataclass
class InterfaceStructure:
    """A substrate | modifier | partner stack.

    Attributes:
        structure: The supercell; site properties ``region`` (index into :data:`REGIONS`)
            and ``phase`` (index into :data:`PHASES`).
        planes: Heights of the substrate|modifier and modifier|partner planes, Å.
        strain: In-plane strain applied to each phase, ``(ε_x, ε_y)`` (fractions).
        supercells: In-plane multiples and orientation of each phase's orthogonal cell,
            ``(n_x, n_y, swapped)``.
        names: Names of the substrate, modifier and partner.
        key: Content hash (the cache key).
    """

    structure: Structure
    planes: tuple[float, float]
    strain: dict[str, tuple[float, float]]
    supercells: dict[str, tuple[int, int, bool]]
    names: tuple[str, str, str]
    key: str = field(default="")

    def to_dict(self) -> dict:
        """JSON-friendly form (as cached)."""
        return {
            "structure": self.structure.as_dict(),
            "planes": list(self.planes),
            "strain": {k: list(v) for k, v in self.strain.items()},
            "supercells": {k: list(v) for k, v in self.supercells.items()},
            "names": list(self.names),
            "key": self.key,
        }

    @classmethod
    def from_dict(cls, doc: dict) -> InterfaceStructure:
        """Inverse of :meth:`to_dict`."""
        return cls(
            structure=Structure.from_dict(doc["structure"]),
            planes=(float(doc["planes"][0]), float(doc["planes"][1])),
            strain={k: (float(v[0]), float(v[1])) for k, v in doc["strain"].items()},
            supercells={
                k: (int(v[0]), int(v[1]), bool(v[2])) for k, v in doc["supercells"].items()
            },
            names=tuple(doc["names"]),  # type: ignore[arg-type]
            key=doc["key"],
        )

    @property
    def max_strain(self) -> float:
        """Largest absolute in-plane strain of any phase (fraction)."""
        return max(abs(e) for pair in self.strain.values() for e in pair)


def _fit(length: float, repeat: float) -> tuple[int, float]:
    n = max(1, round(length / repeat))
    return n, length / (n * repeat) - 1.0


def match_cells(
    partner_ab: tuple[float, float],
    others: list[tuple[float, float]],
    settings: StackSettings,
) -> tuple[tuple[int, int], list[tuple[int, int, bool, float, float]]]:
    """Common rectangular in-plane cell of a partner and the phases stacked on it.

    Args:
        partner_ab: In-plane edges of the partner's orthogonal cell, Å.
        others: In-plane edges of every other phase's orthogonal cell, Å.
        settings: Size limits of the common cell.

    Returns:
        ``((i, j), [(n_x, n_y, swapped, ε_x, ε_y), ...])``: the partner's multiples and, for
        each other phase, its multiples, whether its ``a``/``b`` were swapped and its strain.
    """
    ap, bp = partner_ab
    best: tuple[float, tuple[int, int], list] | None = None
    i_max = max(1, int(settings.max_length // ap))
    j_max = max(1, int(settings.max_length // bp))
    for i, j in itertools.product(range(1, i_max + 1), range(1, j_max + 1)):
        lx, ly = i * ap, j * bp
        if lx * ly > settings.max_area and (i, j) != (1, 1):
            continue
        short = max(0.0, settings.min_length - min(lx, ly))
        fits = []
        for a, b in others:
            options = []
            for swapped, (ra, rb) in ((False, (a, b)), (True, (b, a))):
                nx, ex = _fit(lx, ra)
                ny, ey = _fit(ly, rb)
                options.append((max(abs(ex), abs(ey)), (nx, ny, swapped, ex, ey)))
            fits.append(min(options)[1])
        worst = max(max(abs(f[3]), abs(f[4])) for f in fits)
        cost = worst + 0.0001 * lx * ly + 0.05 * short
        if best is None or cost < best[0]:
            best = (cost, (i, j), fits)
    assert best is not None
    return best[1], best[2]


def _slab(
    ortho: Structure, nx: int, ny: int, swapped: bool, height: float
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Species, in-plane fractional coordinates (of the common cell) and heights of a slab."""
    frac = ortho.frac_coords % 1.0
    if swapped:
        frac = frac[:, [1, 0, 2]]
    c = ortho.lattice.c
    layers = math.ceil(height / c) + 1
    species, xy, z = [], [], []
    for ix, iy, iz in itertools.product(range(nx), range(ny), range(layers)):
        for site, f in zip(ortho, frac, strict=True):
            species.append(site.specie.symbol)
            xy.append(((f[0] + ix) / nx, (f[1] + iy) / ny))
            z.append((f[2] + iz) * c)
    z_arr = np.asarray(z)
    z_arr -= z_arr.min()
    keep = z_arr < height - 1e-6
    if not keep.any():
        keep = z_arr <= 1e-6
    return [s for s, k in zip(species, keep, strict=True) if k], np.asarray(xy)[keep], z_arr[keep]


def _nn_distance(structure: Structure) -> float:
    _, _, _, dist = structure.get_neighbor_list(5.0)
    dist = dist[dist > 1e-6]
    return float(dist.min()) if len(dist) else 2.5


def build_interface(
    modifier: str | Material,
    partner: str | Material,
    substrate: str | Material = "Li",
    *,
    settings: StackSettings | None = None,
    cache: JsonCache | None = None,
    use_cache: bool = True,
) -> InterfaceStructure:
    """Build (or load from the cache) the stack substrate | modifier | partner.

    Args:
        modifier: Interlayer (library name or entry).
        partner: Electrolyte on the other side.
        substrate: Electrode below the interlayer (default lithium).
        settings: Stack geometry.
        cache: Cache to use (default: the ``"interface"`` namespace of the default cache).
        use_cache: Read and write the cache.

    Returns:
        The interface structure (Å).

    Raises:
        MaterialsError: For an unknown material or a phase that cannot be orthogonalised.
    """
    settings = settings or StackSettings()
    mats = [get_material(m) if isinstance(m, str) else m for m in (substrate, modifier, partner)]
    cache = cache or JsonCache(namespace="interface")
    key = content_hash(
        {
            "v": INTERFACE_BUILDER_VERSION,
            "phases": [m.content_hash for m in mats],
            "settings": settings.__dict__,
        }
    )
    if use_cache and (doc := cache.get(key)) is not None:
        return InterfaceStructure.from_dict(doc)

    bulks = [bulk_structure(m) for m in mats]
    orthos = [orthogonal_cell(s) for s in bulks]
    ab = [(o.lattice.a, o.lattice.b) for o in orthos]
    (pi, pj), fits = match_cells(ab[2], ab[:2], settings)
    lx, ly = pi * ab[2][0], pj * ab[2][1]
    cells = [*fits, (pi, pj, False, 0.0, 0.0)]
    heights = (
        settings.substrate_thickness,
        settings.modifier_thickness,
        settings.partner_thickness,
    )
    nn = [_nn_distance(s) for s in bulks]
    species: list[str] = []
    coords: list[np.ndarray] = []
    phase_idx: list[int] = []
    tops, bottoms = [], []
    z0 = settings.vacuum / 2
    for k, (ortho, cell, height) in enumerate(zip(orthos, cells, heights, strict=True)):
        sp, xy, z = _slab(ortho, cell[0], cell[1], cell[2], height)
        if k > 0:
            z0 = tops[-1] + 0.5 * (nn[k - 1] + nn[k])
        z = z + z0
        bottoms.append(float(z.min()))
        tops.append(float(z.max()))
        species += sp
        coords.append(np.column_stack([xy, z]))
        phase_idx += [k] * len(sp)
    c_total = tops[-1] + settings.vacuum / 2
    cart = np.vstack(coords)
    frac = np.column_stack([cart[:, 0] % 1.0, cart[:, 1] % 1.0, cart[:, 2] / c_total])
    planes = (0.5 * (tops[0] + bottoms[1]), 0.5 * (tops[1] + bottoms[2]))
    w = settings.interface_width
    regions = []
    for p, zc in zip(phase_idx, cart[:, 2], strict=True):
        if p == 0:
            regions.append(1 if zc > planes[0] - w else 0)
        elif p == 1:
            regions.append(2)
        else:
            regions.append(3 if zc < planes[1] + w else 4)
    structure = Structure(
        Lattice.orthorhombic(lx, ly, c_total),
        species,
        frac,
        site_properties={"region": regions, "phase": phase_idx},
    )
    if len(structure) > 1:
        dist = structure.distance_matrix + np.eye(len(structure)) * 1e9
        if dist.min() < 0.5:
            raise MaterialsError(f"stack {[m.name for m in mats]} has overlapping atoms")
    iface = InterfaceStructure(
        structure=structure,
        planes=planes,
        strain={PHASES[k]: (cells[k][3], cells[k][4]) for k in range(3)},
        supercells={PHASES[k]: (cells[k][0], cells[k][1], cells[k][2]) for k in range(3)},
        names=(mats[0].name, mats[1].name, mats[2].name),
        key=key,
    )
    if use_cache:
        cache.put(key, iface.to_dict())
    return iface
