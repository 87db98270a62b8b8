"""Element and composition descriptors from pymatgen's offline element data (no torch)."""

from __future__ import annotations

import functools

import numpy as np
from pymatgen.core import Composition, Element

N_ELEMENT_FEATURES = 8


@functools.cache
def element_features(z: int) -> tuple[float, ...]:
    """Eight scaled element properties.

    ``(χ_Pauling/4, r_atomic/2 Å, row/7, group/18, mass/200 u, is_metal, is_alkali,
    Mendeleev number/100)``; missing values become 0.

    Args:
        z: Atomic number.
    """
    el = Element.from_Z(z)
    chi = el.X if el.X == el.X else 0.0  # NaN for noble gases
    radius = float(el.atomic_radius or 0.0)
    return (
        float(chi) / 4.0,
        radius / 2.0,
        el.row / 7.0,
        el.group / 18.0,
        float(el.atomic_mass) / 200.0,
        float(el.is_metal),
        float(el.is_alkali),
        float(el.mendeleev_no or 0.0) / 100.0,
    )


def composition_descriptor(formula: str) -> np.ndarray:
    """Composition-only descriptor of a formula (no structure).

    The atomic-fraction-weighted mean and standard deviation of :func:`element_features`,
    plus the Li fraction: 17 numbers.

    Args:
        formula: Chemical formula, e.g. ``"Li7La3Zr2O12"``.

    Returns:
        ``17`` floats.
    """
    comp = Composition(formula).fractional_composition
    fractions = np.array([comp[el] for el in comp.elements])
    feats = np.array([element_features(el.Z) for el in comp.elements])
    mean = fractions @ feats
    std = np.sqrt(np.maximum(fractions @ (feats - mean) ** 2, 0.0))
    return np.concatenate([mean, std, [comp["Li"]]])
