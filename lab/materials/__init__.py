"""Materials: the shipped library, bulk structures, interface supercells and their graphs.

Pure computation (no Prefect, Bluesky, Ophyd or SQL). Structures are cached on disk by the
hash of their inputs (``$LAB_CACHE_DIR``, default ``~/.cache/interface-lab``). The graph
featurisation (PyTorch Geometric) is the submodule :mod:`lab.materials.graph`, imported on
demand because torch is slow to import.
"""

from lab.materials._cache import JsonCache, default_cache_dir
from lab.materials._elements import composition_descriptor, element_features
from lab.materials._interfaces import (
    PHASES,
    REGIONS,
    InterfaceStructure,
    StackSettings,
    build_interface,
    match_cells,
)
from lab.materials._library import (
    Material,
    MaterialsError,
    electrolytes,
    get_material,
    library_hash,
    load_library,
    modifiers,
    names,
    parse_library,
)
from lab.materials._structures import bulk_structure, orthogonal_cell

__all__ = [
    "PHASES",
    "REGIONS",
    "InterfaceStructure",
    "JsonCache",
    "Material",
    "MaterialsError",
    "StackSettings",
    "build_interface",
    "bulk_structure",
    "composition_descriptor",
    "default_cache_dir",
    "electrolytes",
    "element_features",
    "get_material",
    "library_hash",
    "load_library",
    "match_cells",
    "modifiers",
    "names",
    "orthogonal_cell",
    "parse_library",
]
