"""The cheap fidelity as a real calculation: work of adhesion from a universal potential.

For a stack substrate | modifier | partner (:func:`~lab.materials.build_interface`) the work of
adhesion of each interface is the energy it costs to pull the stack apart there::

    W(sub|mod) = (E[sub] + E[mod + partner] - E[stack]) / A
    W(mod|par) = (E[sub + mod] + E[partner] - E[stack]) / A

(``A`` the in-plane area; each part keeps its atoms where they are, with vacuum around it;
``E[stack]`` at the best of a few rigid separations of that interface). About a dozen
single-point energies per stack and no atomic relaxation: a cheap estimate that carries the
chemistry and the strain of the coherent stack. :func:`contact_asr_estimate` turns the two
adhesion energies into an estimate of the interfacial resistance (Young-Dupré contact of
lithium on the film plus transfer across the film | partner interface), the objective's unit,
so the estimate can serve as the campaign's ``calculation`` fidelity.

The default energy model is CHGNet (``pip install interface-lab[chgnet]``), whose pretrained
weights ship inside its wheel and load offline. Any callable ``energy(structure) -> eV`` can
stand in (tests use a pair potential), named on the command line as ``module:attribute``
(:func:`energy_model`). :func:`calculate_library` caches every result on disk
by the hash of the stack and the energy model, reports progress with a time estimate, and maps
over an executor when given one (a ``concurrent.futures`` pool, a Dask client, or Prefect tasks:
``lab.flows.calculation_flow`` maps through its task runner, prefect-dask's for a Dask cluster).
"""

from __future__ import annotations

import importlib
import math
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from pymatgen.core import Structure

from lab.materials._cache import JsonCache, content_hash
from lab.materials._interfaces import InterfaceStructure, build_interface

EV_PER_A2_TO_J_PER_M2 = 16.021766
"""1 eV/Å² in J/m²."""

GAMMA_LI = 0.52
"""Surface energy of lithium, J/m² (the scale of the Young-Dupré contact estimate)."""

EnergyFn = Callable[[Structure], float]
"""Total energy of a structure, eV."""


class CHGNetEnergy:
    """Total energy with CHGNet's pretrained universal potential (offline, weights in the wheel).

    Args:
        model: A loaded ``chgnet.model.CHGNet`` (default: ``CHGNet.load()``).

    Raises:
        ImportError: When chgnet is not installed (``pip install interface-lab[chgnet]``).
    """

    def __init__(self, model: Any | None = None) -> None:
        if model is None:
            try:
                from chgnet.model import CHGNet
            except ImportError as exc:  # pragma: no cover - depends on the optional extra
                raise ImportError(
                    "CHGNet is an optional dependency: pip install 'interface-lab[chgnet]'"
                ) from exc
            model = CHGNet.load(verbose=False)
        self.model = model
        self.name = f"chgnet-{getattr(model, 'version', None) or 'default'}"

    def __call__(self, structure: Structure) -> float:
        """Total energy, eV (CHGNet predicts eV/atom)."""
        out = self.model.predict_structure(structure, task="e")
        return float(out["e"]) * len(structure)


def energy_model(spec: str = "chgnet") -> EnergyFn:
    """The energy model named by ``spec``.

    Args:
        spec: ``"chgnet"`` (:class:`CHGNetEnergy`), or ``"module:attribute"`` naming a callable
            ``structure -> eV``; a class there is instantiated without arguments.

    Raises:
        ValueError: When ``spec`` names nothing importable or callable.
        ImportError: For ``"chgnet"`` without the optional extra.
    """
    if spec == "chgnet":
        return CHGNetEnergy()
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise ValueError(f"energy model {spec!r}: give 'chgnet' or 'module:attribute'")
    try:
        obj: Any = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"energy model {spec!r}: {exc}") from exc
    if isinstance(obj, type):
        obj = obj()
    if not callable(obj):
        raise ValueError(f"energy model {spec!r} is not callable")
    return obj


@dataclass(frozen=True)
class AdhesionResult:
    """Works of adhesion of a stack.

    Attributes:
        modifier: Modifier name.
        partner: Partner name.
        w_substrate: Work of adhesion of the substrate|modifier interface, J/m².
        w_partner: Work of adhesion of the modifier|partner interface, J/m².
        energy_ev: Total energy of the stack, eV.
        seconds: Wall time of the calculation (0 when read from the cache).
    """

    modifier: str
    partner: str
    w_substrate: float
    w_partner: float
    energy_ev: float
    seconds: float


def _part(structure: Structure, phases: set[int]) -> Structure:
    keep = [i for i, p in enumerate(structure.site_properties["phase"]) if p in phases]
    return Structure.from_sites([structure[i] for i in keep])


def _shifted(structure: Structure, plane: float, shift: float) -> Structure:
    coords = structure.cart_coords.copy()
    coords[coords[:, 2] > plane, 2] += shift
    return Structure(
        structure.lattice,
        structure.species,
        coords,
        coords_are_cartesian=True,
        site_properties=structure.site_properties,
    )


def work_of_adhesion(
    iface: InterfaceStructure,
    energy: EnergyFn,
    gap_shifts: Sequence[float] = (-0.3, 0.0, 0.3, 0.6, 1.0),
) -> tuple[float, float, float]:
    """Works of adhesion of both interfaces of a stack by cleavage.

    Each interface's separation is scanned rigidly (everything above the plane moved by each of
    ``gap_shifts``, Å) and the lowest energy is the bonded state: the stack's gap is a guess
    (the mean of the bulk nearest-neighbour distances), and a rigid single point at a wrong gap
    can even make pulling apart look favourable. Atoms are not relaxed otherwise.

    Args:
        iface: The stack.
        energy: Energy model, ``structure -> eV``.
        gap_shifts: Rigid separation changes to scan, Å (``(0.0,)``: no scan).

    Returns:
        ``(W_substrate|modifier, W_modifier|partner, E_stack)`` in J/m², J/m², eV
        (``E_stack`` at the built geometry).
    """
    s = iface.structure
    area = s.lattice.a * s.lattice.b * math.sin(math.radians(s.lattice.gamma))
    e_all = energy(s)
    e_bound = []
    for plane in iface.planes:
        e_bound.append(
            min(e_all if d == 0.0 else energy(_shifted(s, plane, d)) for d in gap_shifts)
        )
    e_sub, e_modpar = energy(_part(s, {0})), energy(_part(s, {1, 2}))
    e_submod, e_par = energy(_part(s, {0, 1})), energy(_part(s, {2}))
    w_sub = (e_sub + e_modpar - e_bound[0]) / area * EV_PER_A2_TO_J_PER_M2
    w_par = (e_submod + e_par - e_bound[1]) / area * EV_PER_A2_TO_J_PER_M2
    return w_sub, w_par, e_all


def contact_asr_estimate(w_substrate: float, w_partner: float, thickness_nm: float) -> float:
    """Interfacial resistance estimate from computed adhesion, ohm·cm².

    Lithium contacts the film over the Young-Dupré fraction
    ``f = ((1 + cos θ)/2)³``, ``cos θ = W/γ_Li - 1``, at 1.5 ohm·cm² for full contact;
    the film | partner transfer costs ``2 ohm·cm² / f(W_partner)`` on the same scale; the film
    adds ``h / 1e-7 S/cm`` (a generic Li+ conductivity of a thin interlayer).

    Args:
        w_substrate: Work of adhesion Li|film, J/m².
        w_partner: Work of adhesion film|partner, J/m².
        thickness_nm: Film thickness, nm.
    """

    def fraction(w: float) -> float:
        cos_t = min(max(w / GAMMA_LI - 1.0, -1.0), 1.0)
        return max(((1.0 + cos_t) / 2.0) ** 3, 1e-3)

    film = thickness_nm * 1e-7 / 1e-7  # h (cm) / σ (S/cm)
    return 1.5 / fraction(w_substrate) + 2.0 / fraction(w_partner) + film


def text_progress(done: int, total: int, eta_seconds: float) -> None:
    """A one-line progress bar with a time estimate on stderr (a ``progress`` callback)."""
    width = 30
    filled = int(width * done / max(total, 1))
    eta = "?" if math.isnan(eta_seconds) else f"{eta_seconds:.0f} s"
    end = "\n" if done >= total else ""
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}, ~{eta} left{end}")
    sys.stderr.flush()


def _one(args: tuple[str, str, EnergyFn, str]) -> AdhesionResult:
    modifier, partner, energy, substrate = args
    iface = build_interface(modifier, partner, substrate)
    t0 = time.perf_counter()
    w_sub, w_par, e_all = work_of_adhesion(iface, energy)
    return AdhesionResult(modifier, partner, w_sub, w_par, e_all, time.perf_counter() - t0)


def calculate_library(
    pairs: Iterable[tuple[str, str]],
    energy: EnergyFn | None = None,
    *,
    substrate: str = "Li",
    cache: JsonCache | None = None,
    executor: Executor | Any | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> list[AdhesionResult]:
    """Works of adhesion of many stacks, cached, with progress and optional fan-out.

    Args:
        pairs: ``(modifier, partner)`` names.
        energy: Energy model (default :class:`CHGNetEnergy`); its ``name`` attribute (or
            its type name) enters the cache key.
        substrate: Electrode below the interlayer.
        cache: Result cache (default: the ``"adhesion"`` namespace of the default cache).
        executor: Anything with ``map(fn, iterable)`` (a ``concurrent.futures`` executor, a
            Dask client's executor) to compute uncached stacks in parallel; ``None`` runs
            them here.
        progress: Called as ``progress(done, total, eta_seconds)`` after each stack.

    Returns:
        One result per pair, in order.
    """
    pairs = list(pairs)
    energy = energy or CHGNetEnergy()
    name = getattr(energy, "name", type(energy).__name__)
    cache = cache or JsonCache(namespace="adhesion")
    keys = [
        content_hash({"pair": [m, p], "substrate": substrate, "energy": name}) for m, p in pairs
    ]
    results: dict[int, AdhesionResult] = {}
    todo: list[int] = []
    for i, key in enumerate(keys):
        doc = cache.get(key)
        if doc is not None:
            results[i] = AdhesionResult(**{**doc, "seconds": 0.0})
        else:
            todo.append(i)
    total, done, t0 = len(pairs), len(results), time.perf_counter()
    if progress is not None and done:
        progress(done, total, 0.0 if not todo else math.nan)
    jobs = [(pairs[i][0], pairs[i][1], energy, substrate) for i in todo]
    mapper = executor.map if executor is not None else map
    for n, (i, result) in enumerate(zip(todo, mapper(_one, jobs), strict=True), start=1):
        results[i] = result
        cache.put(keys[i], result.__dict__)
        done += 1
        if progress is not None:
            elapsed = time.perf_counter() - t0
            progress(done, total, elapsed / n * (len(todo) - n))
    return [results[i] for i in range(total)]


def adhesion_labels(
    results: Sequence[AdhesionResult], thicknesses_nm: Sequence[float]
) -> list[tuple[str, str, float, float]]:
    """Cheap-fidelity labels for encoder pretraining from computed adhesion.

    Returns:
        ``(modifier, partner, thickness_nm, ASR estimate)`` for every result and thickness.
    """
    return [
        (r.modifier, r.partner, h, contact_asr_estimate(r.w_substrate, r.w_partner, h))
        for r in results
        for h in thicknesses_nm
    ]
