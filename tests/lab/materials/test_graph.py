"""Interface-aware graphs: regions, signed distances, crossing edges, the bulk baseline."""

from __future__ import annotations

import numpy as np
import torch

from lab.materials import REGIONS, build_interface, bulk_structure
from lab.materials.graph import N_ELEMENT_FEATURES, bulk_graph, element_features, interface_graph


def test_interface_graph_fields() -> None:
    iface = build_interface("ZnO", "LLZO")
    g = interface_graph(iface, cutoff=4.0)
    n, e = g.num_nodes, g.edge_index.shape[1]
    assert n == len(iface.structure)
    assert g.x.shape == (n, N_ELEMENT_FEATURES) and g.x.dtype == torch.float32
    assert g.z.shape == (n,) and g.region.shape == (n,) and g.phase.shape == (n,)
    assert g.dist.shape == (n, 2) and g.strain.shape == (n, 2)
    assert g.edge_dist.shape == (e,) and g.edge_cross.shape == (e,)
    assert g.edge_dist.min() > 0 and g.edge_dist.max() <= 4.0 + 1e-5
    assert set(g.region.tolist()) <= set(range(5))
    # periodic neighbour lists are symmetric: every edge has its reverse
    pairs = set(map(tuple, g.edge_index.T.tolist()))
    assert all((j, i) in pairs for i, j in pairs)


def test_signed_distances_and_crossing_edges() -> None:
    iface = build_interface("Au", "Li6PS5Cl")
    g = interface_graph(iface)
    phase = g.phase.numpy()
    # below the first plane the distance to it is negative, above positive
    assert (g.dist[phase == 0, 0] < 0).all() and (g.dist[phase == 1, 0] > 0).all()
    assert (g.dist[phase == 1, 1] < 0).all() and (g.dist[phase == 2, 1] > 0).all()
    src, dst = g.edge_index
    cross = g.edge_cross.bool()
    assert cross.any() and (~cross).any()
    assert (g.phase[src][cross] != g.phase[dst][cross]).all()
    assert (g.phase[src][~cross] == g.phase[dst][~cross]).all()
    # crossing edges join atoms near an interface plane, tagged as interface or modifier
    near = g.dist.abs().min(dim=1).values
    assert near[src[cross]].max() < 4.0
    assert set(g.region[src[cross]].tolist()) <= {1, 2, 3}
    # the strain feature is the phase's recorded strain
    assert np.allclose(g.strain[phase == 1][0].numpy(), iface.strain["modifier"], atol=1e-6)


def test_bulk_graph_is_one_region_without_interfaces() -> None:
    g = bulk_graph(bulk_structure("Al2O3"))
    assert set(g.region.tolist()) == {REGIONS.index("bulk")}
    assert float(g.edge_cross.sum()) == 0.0
    assert float(g.dist.abs().sum()) == 0.0 and float(g.strain.abs().sum()) == 0.0
    assert g.edge_index.shape[1] > 0


def test_element_features() -> None:
    li, o, au = (element_features(z) for z in (3, 8, 79))
    assert len(li) == N_ELEMENT_FEATURES
    assert li[6] == 1.0 and o[6] == 0.0  # alkali flag
    assert au[5] == 1.0 and o[5] == 0.0  # metal flag
    assert o[0] > li[0]  # electronegativity
