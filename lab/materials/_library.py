"""The shipped materials library: interlayer candidates, electrolytes and the substrate, as data.

The library lives in ``lab/materials/data/library.yaml`` (package data): one entry per material
with its formula, prototype, space group, lattice parameters, Wyckoff sites and the literature
source. :func:`load_library` reads and validates it once; everything else derives from it.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

import yaml

from lab.errors import LabError

Role = Literal["substrate", "modifier", "electrolyte"]
ROLES: tuple[str, ...] = ("substrate", "modifier", "electrolyte")
_LATTICE_KEYS = {"a", "b", "c", "alpha", "beta", "gamma"}


class MaterialsError(LabError, ValueError):
    """A material is unknown, or the library or a structure request is invalid."""


@dataclass(frozen=True)
class Material:
    """One library entry.

    Attributes:
        name: Identifier, the value of the campaign's categorical ``modifier``/``partner``.
        role: ``"substrate"``, ``"modifier"`` or ``"electrolyte"``.
        formula: Chemical formula of the real phase.
        prototype: Structure prototype in words.
        spacegroup: Hermann-Mauguin symbol as pymatgen spells it (``"P1"``: sites listed in full).
        lattice: Lattice parameters, Å and degrees (``a`` always; ``b``, ``c``, angles as needed).
        sites: Wyckoff representative sites, ``(element, (x, y, z))`` in fractional coordinates.
        source: Literature source of the lattice parameters and positions.
        simplified: What a simplified stand-in changes with respect to the real phase, or None.
    """

    name: str
    role: str
    formula: str
    prototype: str
    spacegroup: str
    lattice: dict[str, float] = field(hash=False)
    sites: tuple[tuple[str, tuple[float, float, float]], ...]
    source: str
    simplified: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict of the entry (the form hashed for caching)."""
        return {
            "name": self.name,
            "role": self.role,
            "formula": self.formula,
            "prototype": self.prototype,
            "spacegroup": self.spacegroup,
            "lattice": dict(sorted(self.lattice.items())),
            "sites": [[el, list(xyz)] for el, xyz in self.sites],
            "source": self.source,
            "simplified": self.simplified,
        }

    @property
    def content_hash(self) -> str:
        """SHA-256 (hex, 16 characters) of the entry's structural content."""
        payload = {k: v for k, v in self.to_dict().items() if k not in ("source", "prototype")}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _parse_entry(raw: dict[str, Any], index: int) -> Material:
    where = f"library entry {index} ({raw.get('name', '?')})"
    missing = {"name", "role", "formula", "prototype", "spacegroup", "lattice", "sites", "source"}
    missing -= raw.keys()
    if missing:
        raise MaterialsError(f"{where}: missing fields {sorted(missing)}")
    if raw["role"] not in ROLES:
        raise MaterialsError(f"{where}: role must be one of {ROLES}, got {raw['role']!r}")
    lattice = {str(k): float(v) for k, v in raw["lattice"].items()}
    if "a" not in lattice or set(lattice) - _LATTICE_KEYS:
        raise MaterialsError(f"{where}: lattice needs 'a' and only keys {sorted(_LATTICE_KEYS)}")
    if any(v <= 0 for v in lattice.values()):
        raise MaterialsError(f"{where}: lattice parameters must be positive")
    sites = []
    for site in raw["sites"]:
        element, coords = site
        if len(coords) != 3:
            raise MaterialsError(f"{where}: site {site!r} needs three fractional coordinates")
        sites.append((str(element), tuple(float(c) for c in coords)))
    return Material(
        name=str(raw["name"]),
        role=str(raw["role"]),
        formula=str(raw["formula"]),
        prototype=str(raw["prototype"]),
        spacegroup=str(raw["spacegroup"]),
        lattice=lattice,
        sites=tuple(sites),
        source=str(raw["source"]),
        simplified=raw.get("simplified"),
    )


def parse_library(text: str) -> dict[str, Material]:
    """Parse and validate a library YAML document.

    Args:
        text: YAML text with ``entries: [...]``.

    Returns:
        Name to :class:`Material`, in file order.

    Raises:
        MaterialsError: On a missing field, a bad value or a duplicate name.
    """
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        raise MaterialsError("library file must be a mapping with an 'entries' list")
    out: dict[str, Material] = {}
    for i, raw in enumerate(data["entries"]):
        material = _parse_entry(raw, i)
        if material.name in out:
            raise MaterialsError(f"duplicate material name {material.name!r}")
        out[material.name] = material
    return out


@functools.cache
def load_library() -> dict[str, Material]:
    """The shipped library (read once per process).

    Returns:
        Name to :class:`Material`, in file order.
    """
    text = resources.files("lab.materials").joinpath("data/library.yaml").read_text("utf-8")
    return parse_library(text)


def get_material(name: str) -> Material:
    """Look a material up by name.

    Raises:
        MaterialsError: When the library has no such material (the message lists the names).
    """
    library = load_library()
    try:
        return library[name]
    except KeyError:
        raise MaterialsError(
            f"unknown material {name!r}; the library has {sorted(library)}"
        ) from None


def names(role: str) -> list[str]:
    """Names of the library's materials of one role, in file order."""
    if role not in ROLES:
        raise MaterialsError(f"role must be one of {ROLES}, got {role!r}")
    return [m.name for m in load_library().values() if m.role == role]


def modifiers() -> list[str]:
    """Names of the interlayer/modifier candidates."""
    return names("modifier")


def electrolytes() -> list[str]:
    """Names of the partner solid electrolytes."""
    return names("electrolyte")


def library_hash() -> str:
    """SHA-256 (hex, 16 characters) of the whole library's structural content."""
    joined = ",".join(f"{n}:{m.content_hash}" for n, m in load_library().items())
    return hashlib.sha256(joined.encode()).hexdigest()[:16]
