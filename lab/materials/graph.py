"""Interface-aware graph featurisation (PyTorch Geometric ``Data``).

Nodes are atoms with element features, a *region* tag (bulk substrate, substrate interface,
modifier, partner interface, bulk partner; the idea of Open Catalyst's tags), the signed
distances to the two interface planes and the in-plane strain of their phase. Edges come from
pymatgen's periodic neighbour list and are flagged when they cross an interface (their two
atoms belong to different phases). A model reading these graphs can pool per region, so the
interface has its own embedding.

The bulk baseline featurises each crystal alone with :func:`bulk_graph`: the same fields, one
region (``"bulk"``), zero distances, zero strain and no crossing edges.

Fields of every graph (``N`` atoms, ``E`` directed edges):

==============  ==========  ================================================================
``z``           ``N``       atomic number (long)
``x``           ``N x 8``   element features (:func:`element_features`)
``region``      ``N``       index into :data:`~lab.materials.REGIONS` (long)
``phase``       ``N``       0 substrate, 1 modifier, 2 partner (long; 0 for a bulk crystal)
``dist``        ``N x 2``   signed distances to the substrate|modifier and modifier|partner
                            planes, Å (positive above the plane)
``strain``      ``N x 2``   in-plane strain of the atom's phase (fraction)
``edge_index``  ``2 x E``   source and target atom
``edge_dist``   ``E``       bond length, Å
``edge_cross``  ``E``       1.0 where the edge crosses an interface, else 0.0
==============  ==========  ================================================================
"""

from __future__ import annotations

import numpy as np
import torch
from pymatgen.core import Structure
from torch_geometric.data import Data

from lab.materials._elements import N_ELEMENT_FEATURES, element_features
from lab.materials._interfaces import REGIONS, InterfaceStructure

DEFAULT_CUTOFF = 4.0
"""Neighbour cutoff, Å."""

BULK_REGION = REGIONS.index("bulk")

__all__ = [
    "BULK_REGION",
    "DEFAULT_CUTOFF",
    "N_ELEMENT_FEATURES",
    "bulk_graph",
    "element_features",
    "interface_graph",
]


def _graph(
    structure: Structure,
    region: np.ndarray,
    phase: np.ndarray,
    dist: np.ndarray,
    strain: np.ndarray,
    cutoff: float,
) -> Data:
    centers, neighbors, _, distances = structure.get_neighbor_list(cutoff)
    keep = distances > 1e-6
    centers, neighbors, distances = centers[keep], neighbors[keep], distances[keep]
    z = np.array([site.specie.Z for site in structure], dtype=np.int64)
    x = np.array([element_features(int(zi)) for zi in z], dtype=np.float32)
    cross = (phase[centers] != phase[neighbors]).astype(np.float32)
    return Data(
        z=torch.from_numpy(z),
        x=torch.from_numpy(x),
        region=torch.from_numpy(region.astype(np.int64)),
        phase=torch.from_numpy(phase.astype(np.int64)),
        dist=torch.from_numpy(dist.astype(np.float32)),
        strain=torch.from_numpy(strain.astype(np.float32)),
        edge_index=torch.from_numpy(np.vstack([neighbors, centers]).astype(np.int64)),
        edge_dist=torch.from_numpy(distances.astype(np.float32)),
        edge_cross=torch.from_numpy(cross),
        num_nodes=len(structure),
    )


def interface_graph(iface: InterfaceStructure, cutoff: float = DEFAULT_CUTOFF) -> Data:
    """Graph of a substrate | modifier | partner stack.

    Args:
        iface: The stack (:func:`~lab.materials.build_interface`).
        cutoff: Neighbour cutoff, Å.

    Returns:
        A PyG ``Data`` with the fields of the module docstring.
    """
    s = iface.structure
    region = np.asarray(s.site_properties["region"])
    phase = np.asarray(s.site_properties["phase"])
    height = s.cart_coords[:, 2]
    dist = np.column_stack([height - iface.planes[0], height - iface.planes[1]])
    names = ("substrate", "modifier", "partner")
    strain = np.array([iface.strain[names[p]] for p in phase], dtype=float).reshape(-1, 2)
    return _graph(s, region, phase, dist, strain, cutoff)


def bulk_graph(structure: Structure, cutoff: float = DEFAULT_CUTOFF) -> Data:
    """Graph of a periodic crystal featurised alone (one region, no interface).

    Args:
        structure: The crystal (e.g. :func:`~lab.materials.bulk_structure`).
        cutoff: Neighbour cutoff, Å.

    Returns:
        A PyG ``Data`` with the fields of the module docstring.
    """
    n = len(structure)
    return _graph(
        structure,
        np.full(n, BULK_REGION),
        np.zeros(n, dtype=int),
        np.zeros((n, 2)),
        np.zeros((n, 2)),
        cutoff,
    )
