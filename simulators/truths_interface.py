r"""Reference ground truth of the interlayer campaign: Li | modifier | solid electrolyte.

The campaign coats a solid electrolyte (the *partner*: LLZO, LLTO or Li6PS5Cl) with a thin
interlayer (the *modifier*, one of the materials library's candidates), optionally anneals the
coated electrolyte, then presses lithium metal onto it, and measures the area-specific
interfacial resistance (ASR, ohm·cm², lower is better).

:func:`interlayer_asr` is the truth callable ``truth(params, fidelity, rng) -> float``. It was
written from the physics below, before any surrogate existed, and is not tuned to favour one:
the surrogate benchmark is also run on other truths. The simulated world must not import
``lab``, so this module carries its own small table of material properties
(:data:`MODIFIERS`, :data:`ELECTROLYTES`): literature-typical room-temperature values, rounded,
good to a factor of about two for conductivities and 20 % for surface energies. They make a
physically plausible world, not a database.

Parameters (``params``):
    ``modifier``: interlayer name (a key of :data:`MODIFIERS`, or ``"none"`` for bare contact).
    ``partner``: electrolyte name (a key of :data:`ELECTROLYTES`; default ``"LLZO"``).
    ``thickness_nm``: interlayer thickness, nm (0.5-100 in the campaign; 0 means bare).
    ``anneal_temperature_c``: anneal temperature of the coated electrolyte, °C (25-400).
    ``anneal_time_min``: anneal time, min (0-120; 0 or absent: no anneal).

The model, term by term (``h`` thickness, ``T`` anneal temperature in K, ``t`` time):

1. **Anneal: reaction layer** between modifier and partner (parabolic growth),
   ``x_r = sqrt(k t)``, ``k = k0 · g · exp(-Ea / kB T)`` with ``k0 = 1e6 nm²/s``,
   ``Ea = 1.0 eV``; ``g`` is the pair's reaction driving force: the gap between their
   electrochemical stability windows (a phase stable only below ``v_ox`` meets one that is
   reduced below ``v_red``), plus 0.3 for oxide/nitride against sulfide (anion exchange), plus
   the modifier's sulfide affinity against a sulfide, plus 0.02 for any pair (cation
   interdiffusion). Half of ``x_r`` consumes the interlayer, ``h_eff = h - x_r/2``; the layer
   conducts Li+ at 1e-8 S/cm, ``R_rxn = x_r / σ_r``.
2. **Anneal: sintering** of the film, ``S = (1 - exp(-t/10 min)) · σ((T/T_m - 0.45)/0.04)``
   (Tammann: diffusion sets in near half the melting point): densifies and smooths the film,
   halving the modifier|partner transfer resistance at ``S = 1``, closing gaps (item 3) and
   raising the Li contact fraction (item 5) by half of what is missing. Above its
   melting point a film that does not wet the partner dewets into droplets, losing up to 70 %
   of its coverage.
3. **Coverage** (growth mode). Spreading ``Φ = W(M,P) - 2 γ_M``: a film that wets the partner
   (``Φ >= 0``, Frank-van der Merwe) closes at a monolayer, an island-forming one (Volmer-Weber)
   needs more material: ``θ = 1 - exp(-h_eff / h0)``, ``h0 = 0.4 nm · (1 + 5·max(0, -Φ)/2γ_M)
   · (1 - S/2)``.
4. **Work of adhesion** (Girifalco-Good with misfit and reaction): ``W(A,B) = 2 φ sqrt(γ_A γ_B)
   (1 - p(δ)) + W_react``; ``φ`` = 1 between like bonding (metal-metal, ionic-ionic), 0.85
   oxide/ionic pairs of one anion, 0.7 mixed anions, 0.55 metal-ionic; the lattice misfit
   ``δ`` (best coincidence ``n·a_A ≈ m·a_B``, n <= 6, m <= 3, with a small penalty for large
   coincidence cells) costs up to 35 % of the adhesion, ``p = 0.35 min(δ/0.08, 1)``
   (semicoherent interfaces store misfit-dislocation energy); a modifier that Li lithiates
   (alloying, conversion, insertion) bonds chemically to Li, ``W_react = min(0.6 J/m²/V ·
   v_red, 1 J/m²)``.
5. **Li contact** (Young-Dupré). Lithium pressed onto the film wets it as
   ``cos θ_c = W(Li,M)/γ_Li - 1``; the true contact fraction ``f = ((1 + cos θ_c)/2)³``
   (a lithiophobic surface touches at asperities only); the transfer resistance is
   ``R_Li|M = r_ct / f``, with ``r_ct`` = 0.3 ohm·cm² into an electron-conducting (alloy)
   layer, 1.5 into an ionic one.
6. **Lithiation strain**: a layer that swells by ``ΔV`` on lithiation stores
   ``G = Y · ΔV · h_eff`` (``Y = 5e7 J/m³``, plastic-flow-limited) and delaminates over the
   fraction ``G²/(G² + W(M,P)²)``, which removes contact at both faces.
7. **Transport** through the layer: ``R_layer = h_eff / σ_M`` with the Li+ conductivity of the
   lithiated layer (grows linearly with thickness).
8. **Modifier|partner transfer**: ``R_M|P = 2 ohm·cm² · (1 + 4 p(δ_MP)/0.35) · (1 + anion
   mismatch) · (1 - S/2)`` (disordered, strained interfaces block ion hops).
9. **Partner reduction**: Li reduces electrolytes above 0 V vs Li (LLTO's Ti4+, the
   argyrodite). Where the lithiated layer conducts electrons (``χ_e``) or is thin enough to
   tunnel through (``exp(-h_eff/1 nm)``), the partner grows an interphase with resistance
   ``κ_P`` (small for kinetically stable LLZO, medium for the passivating sulfide SEI, large
   for LLTO's mixed-conducting, non-passivating one).
10. **Bare contact** where the film is absent: ``R_bare = 1.5/f_bare + r_surface + κ_P``
    (as-received surface layers such as Li2CO3 on LLZO; coating removes them under the film).
11. **Parallel paths** with current constriction around islands:
    ``1/R = θ^1.5 / R_coated + (1 - θ) / R_bare``,
    ``R_coated = R_Li|M + R_layer + R_M|P + R_rxn + κ_P·exposure``.

Fidelities:
    ``"full"``: impedance sweep fitted to an equivalent circuit: the model times
    ``exp(0.05·N(0,1))`` (sample-to-sample scatter and fit error; the world draws it once per
    sample).
    ``"screening"``: one-frequency impedance magnitude at 100 Hz,
    ``|R_s + R/(1 + jωRC)| · exp(0.15·N(0,1))`` with the electrolyte's bulk resistance
    ``R_s = 100 µm / σ_P`` and the layer capacitance (geometric ``ε0 εr / h`` for insulating
    layers, 10 µF/cm² double layer for conducting ones, 5 µF/cm² bare): it saturates near
    ``1/ωC`` for resistive interfaces and carries the electrolyte's resistance, so it is noisy
    and only partly informative.
    ``"calculation"``: a cheap computed estimate of an ideal interface, deterministic and
    biased: items 4, 5, 7 and 8 with computed surface energies 20 % low (semilocal DFT
    underbinds), a defect-free conductivity three times the real one, full coverage, and no
    anneal, delamination, reduction or surface contamination (no kinetics): it depends on
    the modifier, the partner and the thickness only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FIDELITIES = ("full", "screening", "calculation")

GAMMA_LI = 0.52
"""Surface energy of lithium, J/m²."""
A_LI = 3.51
"""Lattice parameter of bcc lithium, Å."""
KB_EV = 8.617333e-5
"""Boltzmann constant, eV/K."""
EPS0_F_CM = 8.854e-14
"""Vacuum permittivity, F/cm."""

K0_NM2_S = 1.0e6
"""Prefactor of the parabolic reaction-layer growth, nm²/s (per unit driving force)."""
EA_REACTION_EV = 1.0
"""Activation energy of interdiffusion/reaction, eV."""
SIGMA_REACTION = 1.0e-8
"""Li+ conductivity of the reaction layer, S/cm."""
Y_STRAIN = 5.0e7
"""Plastic-flow-limited strain energy density of a lithiating layer per unit ΔV, J/m³."""
SCREENING_FREQ_HZ = 100.0
"""Frequency of the screening measurement, Hz."""
ELECTROLYTE_THICKNESS_CM = 0.01
"""Thickness of the electrolyte separator between the electrodes, cm."""


@dataclass(frozen=True)
class Modifier:
    """Interlayer properties used by the truth.

    Attributes:
        a: Lattice parameter (characteristic in-plane repeat), Å.
        gamma: Surface energy, J/m².
        bonding: ``"metal"``, ``"ionic"``, ``"covalent"``.
        anion: Anion (``"O"``, ``"N"``, ``"F"``, ``"S"``, ``"Cl"``) or None.
        v_red: Potential vs Li/Li+ below which Li lithiates/reduces the layer, V (0: stable).
        v_ox: Potential vs Li/Li+ above which the layer is oxidised, V.
        sigma: Li+ conductivity of the lithiated layer at 25 °C, S/cm.
        chi_e: Electronic conduction of the lithiated layer, 0 (insulator) to 1 (metal).
        dv: Volume expansion on lithiation, fraction.
        t_melt: Melting point, K.
        chalco: Affinity for sulfur (forms sulfides with a sulfide electrolyte), 0-1.
        eps_r: Relative permittivity (insulating layers).
    """

    a: float
    gamma: float
    bonding: str
    anion: str | None
    v_red: float
    v_ox: float
    sigma: float
    chi_e: float
    dv: float
    t_melt: float
    chalco: float
    eps_r: float = 10.0


@dataclass(frozen=True)
class Electrolyte:
    """Solid-electrolyte properties used by the truth.

    Attributes:
        a: Lattice parameter, Å.
        gamma: Surface energy of the as-received surface, J/m².
        anion: Main anion.
        v_red: Reduction limit vs Li/Li+, V.
        v_ox: Oxidation limit vs Li/Li+, V.
        sigma: Total Li+ conductivity at 25 °C, S/cm.
        kappa_red: Resistance of the interphase Li grows on it at full exposure, ohm·cm².
        r_surface: Resistance of the as-received surface layer, ohm·cm².
    """

    a: float
    gamma: float
    anion: str
    v_red: float
    v_ox: float
    sigma: float
    kappa_red: float
    r_surface: float


# Stability windows: Richards et al., Chem. Mater. 28, 266 (2016); Zhu, He, Mo, ACS Appl. Mater.
# Interfaces 7, 23685 (2015). Conversion/alloying potentials from formation free energies and
# voltage curves; metals' v_ox from standard electrode potentials shifted by Li's (-3.04 V).
# Conductivities: typical thin-film/lithiated-phase values. Surface energies: experimental
# (metals) or computed low-index values (ionic solids), rounded.
MODIFIERS: dict[str, Modifier] = {
    "LiF": Modifier(4.027, 0.34, "ionic", "F", 0.0, 6.4, 3e-10, 0.0, 0.0, 1118, 0.0, 9.0),
    "Li2O": Modifier(4.611, 0.55, "ionic", "O", 0.0, 2.9, 5e-10, 0.0, 0.0, 1711, 0.0, 8.0),
    "Li3N": Modifier(3.648, 0.60, "ionic", "N", 0.0, 0.44, 5e-4, 0.0, 0.0, 1086, 0.0, 10.0),
    "Li2S": Modifier(5.716, 0.40, "ionic", "S", 0.0, 2.0, 1e-10, 0.0, 0.0, 1645, 0.0, 5.0),
    "LiCl": Modifier(5.130, 0.21, "ionic", "Cl", 0.0, 4.2, 1e-9, 0.0, 0.0, 878, 0.0, 11.0),
    "MgO": Modifier(4.211, 1.10, "ionic", "O", 0.0, 5.0, 1e-10, 0.0, 0.0, 3125, 0.0, 9.8),
    "Al2O3": Modifier(4.759, 1.50, "ionic", "O", 0.17, 5.0, 1e-6, 0.0, 0.1, 2345, 0.0, 9.5),
    "ZnO": Modifier(3.250, 1.20, "ionic", "O", 1.25, 4.0, 1e-7, 1.0, 0.6, 2248, 0.3, 8.5),
    "AlN": Modifier(3.111, 1.40, "ionic", "N", 0.0, 4.0, 1e-11, 0.0, 0.0, 3273, 0.0, 8.5),
    "TiO2": Modifier(4.594, 0.90, "ionic", "O", 1.6, 4.5, 1e-6, 1.0, 0.04, 2116, 0.0, 80.0),
    "SnO2": Modifier(4.737, 1.20, "ionic", "O", 1.57, 4.5, 1e-6, 1.0, 2.0, 1903, 0.2, 10.0),
    "SiO2": Modifier(4.913, 0.45, "ionic", "O", 0.69, 5.0, 1e-8, 0.0, 0.5, 1986, 0.0, 3.9),
    "LiNbO3": Modifier(5.148, 0.80, "ionic", "O", 1.4, 3.6, 1e-6, 0.5, 0.05, 1530, 0.0, 30.0),
    "C": Modifier(2.464, 0.15, "covalent", None, 0.15, 5.0, 1e-4, 1.0, 0.1, 3900, 0.0),
    "Au": Modifier(4.078, 1.50, "metal", None, 0.2, 4.54, 1e-5, 1.0, 1.0, 1337, 0.1),
    "Ag": Modifier(4.086, 1.25, "metal", None, 0.1, 3.84, 1e-4, 1.0, 0.5, 1235, 0.8),
    "Al": Modifier(4.050, 1.14, "metal", None, 0.35, 1.38, 5e-5, 1.0, 0.97, 933, 0.2),
    "Cu": Modifier(3.615, 1.83, "metal", None, 0.0, 3.38, 1e-12, 1.0, 0.0, 1358, 0.9),
    "Mg": Modifier(3.209, 0.76, "metal", None, 0.05, 0.67, 1e-4, 1.0, 0.2, 923, 0.3),
    "Zn": Modifier(2.665, 0.99, "metal", None, 0.2, 2.28, 1e-5, 1.0, 0.6, 693, 0.5),
    "In": Modifier(3.252, 0.68, "metal", None, 0.6, 2.70, 1e-5, 1.0, 0.5, 430, 0.5),
    "Si": Modifier(5.431, 1.24, "covalent", None, 0.4, 2.2, 1e-7, 1.0, 2.8, 1687, 0.1),
    "Ge": Modifier(5.658, 1.06, "covalent", None, 0.45, 2.9, 1e-6, 1.0, 2.7, 1211, 0.2),
    "Sn": Modifier(5.832, 0.67, "metal", None, 0.6, 2.90, 1e-6, 1.0, 2.6, 505, 0.4),
    "LiAl": Modifier(6.370, 1.00, "metal", None, 0.05, 1.0, 1e-4, 1.0, 0.05, 973, 0.2),
}
"""Interlayer candidates (same names as the lab's materials library)."""

ELECTROLYTES: dict[str, Electrolyte] = {
    # Garnet: stable against Li (kinetically), Li2CO3/LiOH on air-exposed surfaces.
    "LLZO": Electrolyte(12.968, 0.35, "O", 0.05, 2.91, 4e-4, 1.0, 400.0),
    # Perovskite: Ti4+ reduced by Li into a mixed conductor that keeps growing.
    "LLTO": Electrolyte(3.871, 1.00, "O", 1.75, 3.71, 3e-5, 600.0, 50.0),
    # Argyrodite: decomposes into a passivating Li2S/Li3P/LiCl SEI.
    "Li6PS5Cl": Electrolyte(9.860, 0.30, "S", 1.71, 2.01, 2e-3, 40.0, 20.0),
}
"""Partner solid electrolytes."""


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(x, 60.0), -60.0)))


def misfit(a: float, b: float) -> float:
    """Lattice misfit of two repeats at their best coincidence, fraction.

    ``min over n <= 6, m <= 3 of |n a - m b| / mean(n a, m b) + 0.004 (n m - 1)``: the second
    term prefers small coincidence cells.

    Args:
        a: First repeat, Å.
        b: Second repeat, Å.
    """
    best = math.inf
    for n in range(1, 7):
        for m in range(1, 4):
            la, lb = n * a, m * b
            best = min(best, abs(la - lb) / (0.5 * (la + lb)) + 0.004 * (n * m - 1))
    return best


def misfit_penalty(delta: float) -> float:
    """Fraction of adhesion lost to misfit dislocations (0 coherent, 0.35 incoherent)."""
    return 0.35 * min(delta / 0.08, 1.0)


def _phi(bond_a: str, anion_a: str | None, bond_b: str, anion_b: str | None) -> float:
    """Girifalco-Good interaction parameter of two bonding types."""
    metallic = {"metal", "covalent"}
    if (bond_a in metallic) and (bond_b in metallic):
        return 1.0
    if (bond_a in metallic) != (bond_b in metallic):
        return 0.55
    return 0.85 if anion_a == anion_b else 0.7


def _anion_mismatch(anion_m: str | None, anion_p: str) -> float:
    """Extra ion-transfer barrier across an anion change (oxide/nitride against sulfide)."""
    if anion_m in ("O", "N") and anion_p == "S":
        return 1.0
    if anion_m == "S" and anion_p == "O":
        return 1.0
    return 0.0


def reaction_driving_force(mod: Modifier, el: Electrolyte) -> float:
    """Driving force ``g`` of the modifier/partner reaction on annealing (dimensionless, ~V)."""
    gap = max(0.0, el.v_red - mod.v_ox) + max(0.0, mod.v_red - el.v_ox)
    anion = 0.3 if (mod.anion in ("O", "N") and el.anion == "S") else 0.0
    chalco = mod.chalco if el.anion == "S" else 0.0
    return gap + anion + chalco + 0.02


def _contact_fraction(w_ad: float, gamma_liquidlike: float) -> float:
    """Young-Dupré contact fraction ``((1 + cos θ)/2)³`` of a soft phase on a surface."""
    cos_t = min(max(w_ad / gamma_liquidlike - 1.0, -1.0), 1.0)
    return max(((1.0 + cos_t) / 2.0) ** 3, 1e-3)


def _lookup(params: dict) -> tuple[Modifier | None, Electrolyte]:
    partner = params.get("partner", "LLZO")
    if partner not in ELECTROLYTES:
        raise ValueError(f"unknown partner {partner!r}; expected one of {sorted(ELECTROLYTES)}")
    name = params.get("modifier", "none")
    if name in (None, "none"):
        return None, ELECTROLYTES[partner]
    if name not in MODIFIERS:
        raise ValueError(f"unknown modifier {name!r}; expected one of {sorted(MODIFIERS)}")
    return MODIFIERS[name], ELECTROLYTES[partner]


def _bare(el: Electrolyte, *, with_kinetics: bool) -> float:
    w_bare = 2 * _phi("metal", None, "ionic", el.anion) * math.sqrt(GAMMA_LI * el.gamma)
    w_bare *= 1 - misfit_penalty(misfit(A_LI, el.a))
    r = 1.5 / _contact_fraction(w_bare, GAMMA_LI)
    if with_kinetics:
        r += el.r_surface + el.kappa_red
    return r


def interface_terms(params: dict) -> dict[str, float]:
    """Every intermediate quantity of the full-fidelity model (see the module docstring).

    Args:
        params: Campaign parameters (``modifier``, ``partner``, ``thickness_nm``,
            ``anneal_temperature_c``, ``anneal_time_min``).

    Returns:
        Named terms: ``x_r`` (nm), ``h_eff`` (nm), ``sinter``, ``coverage``, ``w_li``,
        ``w_mp`` (J/m²), ``f_li``, ``delam``, resistances ``r_li``, ``r_layer``, ``r_mp``,
        ``r_rxn``, ``r_red``, ``r_coated``, ``r_bare`` and the total ``asr`` (ohm·cm²).

    Raises:
        ValueError: For an unknown modifier or partner, or a negative thickness or time.
    """
    mod, el = _lookup(params)
    h = float(params.get("thickness_nm", 0.0))
    t_min = float(params.get("anneal_time_min", 0.0) or 0.0)
    temp_c = params.get("anneal_temperature_c")
    temp_k = (25.0 if temp_c is None else float(temp_c)) + 273.15
    if h < 0 or t_min < 0:
        raise ValueError("thickness_nm and anneal_time_min must be >= 0")
    r_bare = _bare(el, with_kinetics=True)
    if mod is None or h == 0.0:
        return {"coverage": 0.0, "r_bare": r_bare, "asr": r_bare}

    # 1. reaction layer (parabolic growth, Arrhenius)
    g = reaction_driving_force(mod, el)
    k = K0_NM2_S * g * math.exp(-EA_REACTION_EV / (KB_EV * temp_k))
    x_r = math.sqrt(k * t_min * 60.0)
    h_eff = max(h - 0.5 * x_r, 0.0)
    # 2. sintering (Tammann) and melting
    sinter = (1 - math.exp(-t_min / 10.0)) * _sigmoid((temp_k / mod.t_melt - 0.45) / 0.04)
    melted = (1 - math.exp(-t_min / 2.0)) * _sigmoid((temp_k - mod.t_melt) / 10.0)
    # 4. adhesion
    d_li = misfit(A_LI, mod.a)
    d_mp = misfit(mod.a, el.a)
    w_react = min(0.6 * mod.v_red, 1.0)
    phi_li = _phi("metal", None, mod.bonding, mod.anion)
    w_li = 2 * phi_li * math.sqrt(GAMMA_LI * mod.gamma) * (1 - misfit_penalty(d_li)) + w_react
    phi_mp = _phi(mod.bonding, mod.anion, "ionic", el.anion)
    w_mp = 2 * phi_mp * math.sqrt(mod.gamma * el.gamma) * (1 - misfit_penalty(d_mp))
    # 3. coverage
    spread = w_mp - 2 * mod.gamma
    h0 = 0.4 * (1 + 5 * max(0.0, -spread) / (2 * mod.gamma)) * (1 - 0.5 * sinter)
    dewet = 0.7 * melted if spread < 0 else 0.0
    coverage = (1 - math.exp(-h_eff / h0)) * (1 - dewet)
    # 6. lithiation strain
    g_strain = Y_STRAIN * mod.dv * h_eff * 1e-9 if mod.v_red > 0 else 0.0
    delam = g_strain**2 / (g_strain**2 + w_mp**2)
    # 5. Li contact
    f_li = _contact_fraction(w_li, GAMMA_LI)
    f_li = (f_li + (1 - f_li) * 0.5 * sinter) * (1 - delam)
    r_ct = 0.3 if mod.chi_e > 0.5 else 1.5
    r_li = r_ct / max(f_li, 1e-3)
    # 7. transport
    r_layer = h_eff * 1e-7 / mod.sigma
    # 8. modifier | partner transfer
    r_mp = 2.0 * (1 + 4 * misfit_penalty(d_mp) / 0.35) * (1 + _anion_mismatch(mod.anion, el.anion))
    r_mp *= (1 - 0.5 * sinter) / max(1 - delam, 1e-3)
    r_rxn = x_r * 1e-7 / SIGMA_REACTION
    # 9. partner reduction behind the layer
    exposure = mod.chi_e + (1 - mod.chi_e) * math.exp(-h_eff / 1.0)
    r_red = el.kappa_red * exposure
    r_coated = r_li + r_layer + r_mp + r_rxn + r_red
    # 11. parallel paths with constriction
    conductance = coverage**1.5 / r_coated + (1 - coverage) / r_bare
    return {
        "x_r": x_r,
        "h_eff": h_eff,
        "sinter": sinter,
        "melted": melted,
        "coverage": coverage,
        "misfit_li": d_li,
        "misfit_partner": d_mp,
        "w_li": w_li,
        "w_mp": w_mp,
        "f_li": f_li,
        "delam": delam,
        "r_li": r_li,
        "r_layer": r_layer,
        "r_mp": r_mp,
        "r_rxn": r_rxn,
        "r_red": r_red,
        "r_coated": r_coated,
        "r_bare": r_bare,
        "asr": 1.0 / conductance,
    }


def _calculation(params: dict) -> float:
    """Ideal-interface estimate (see the module docstring, ``"calculation"``)."""
    mod, el = _lookup(params)
    h = float(params.get("thickness_nm", 0.0))
    if mod is None or h <= 0.0:
        return _bare(el, with_kinetics=False)
    bias = 0.8  # semilocal DFT surface energies
    g_li, g_m, g_p = bias * GAMMA_LI, bias * mod.gamma, bias * el.gamma
    d_li, d_mp = misfit(A_LI, mod.a), misfit(mod.a, el.a)
    w_li = 2 * _phi("metal", None, mod.bonding, mod.anion) * math.sqrt(g_li * g_m)
    w_li = w_li * (1 - misfit_penalty(d_li)) + min(0.6 * mod.v_red, 1.0)
    r_li = (0.3 if mod.chi_e > 0.5 else 1.5) / _contact_fraction(w_li, g_li)
    r_layer = h * 1e-7 / (3.0 * mod.sigma)
    r_mp = 2.0 * (1 + 4 * misfit_penalty(d_mp) / 0.35) * (1 + _anion_mismatch(mod.anion, el.anion))
    del g_p  # the ideal interface is fully covered: the partner's wetting does not enter
    return r_li + r_layer + r_mp


def _screening(params: dict, asr: float) -> float:
    """|Z| at the screening frequency for a sample of interfacial resistance ``asr``."""
    mod, el = _lookup(params)
    terms = interface_terms(params)
    coverage = terms["coverage"]
    if mod is None or coverage == 0.0:
        c_layer = 5e-6
    elif mod.chi_e > 0.5:
        c_layer = 1e-5
    else:
        c_layer = min(EPS0_F_CM * mod.eps_r / max(terms["h_eff"] * 1e-7, 1e-8), 2e-5)
    c = coverage * c_layer + (1 - coverage) * 5e-6
    omega = 2 * math.pi * SCREENING_FREQ_HZ
    r_s = ELECTROLYTE_THICKNESS_CM / el.sigma
    return abs(r_s + asr / (1 + 1j * omega * asr * c))


def interlayer_asr(params: dict, fidelity: str, rng: np.random.Generator) -> float:
    """Area-specific resistance of Li | modifier | partner, ohm·cm² (lower is better).

    See the module docstring for the model and the fidelities.

    Args:
        params: ``modifier``, ``partner``, ``thickness_nm``, ``anneal_temperature_c``,
            ``anneal_time_min``.
        fidelity: ``"full"``, ``"screening"`` or ``"calculation"``.
        rng: Random generator (``"full"`` and ``"screening"`` draw from it).

    Returns:
        The fidelity's value, ohm·cm².

    Raises:
        ValueError: For an unknown fidelity, modifier or partner.
    """
    if fidelity == "calculation":
        return _calculation(params)
    if fidelity == "full":
        return interface_terms(params)["asr"] * math.exp(0.05 * rng.standard_normal())
    if fidelity == "screening":
        asr = interface_terms(params)["asr"]
        return _screening(params, asr) * math.exp(0.15 * rng.standard_normal())
    raise ValueError(f"unknown fidelity {fidelity!r}; expected one of {FIDELITIES}")
