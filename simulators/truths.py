"""Ground-truth response surfaces for the simulated world.

A truth is any callable ``truth(params, fidelity, rng) -> float`` (see
:data:`simulators.world.TruthFn`), named in configuration as ``"module:function"``.

:func:`demo_interface` models the area-specific resistance of a solution-coated interlayer
between a lithium-metal anode and a garnet solid electrolyte, the system of the demo campaign.
The reference truth of the interlayer campaign (a categorical modifier from the materials
library against a choice of electrolyte, with thickness and anneal) is
:func:`simulators.truths_interface.interlayer_asr`.
"""

from __future__ import annotations

import math

import numpy as np

THICKNESS_NM_PER_UL = 0.5
"""Dry interlayer thickness per µL of precursor solution spread over the 1 cm² electrode, nm."""

R_CHARGE_TRANSFER = 8.0
"""Charge-transfer resistance of a fully covered, unannealed interface, ohm·cm²."""

R_BARE = 200.0
"""Resistance of the bare (uncoated) Li | garnet contact, ohm·cm²."""

RHO_LAYER = 1.0
"""Ionic transport resistance of the interlayer per thickness, ohm·cm²/nm."""

COVERAGE_THICKNESS_NM = 3.0
"""Thickness scale of film closure, nm."""

RATE_OPT_UL_MIN = 100.0
"""Dispense rate giving the most uniform film, µL/min."""

FIDELITIES = ("full", "screening", "calculation")


def _coverage(precursor_ul: float, solvent_ul: float) -> tuple[float, float]:
    """Dry thickness (nm) and covered area fraction of the interlayer."""
    thickness = THICKNESS_NM_PER_UL * max(precursor_ul, 0.0)
    total = max(precursor_ul, 0.0) + max(solvent_ul, 0.0)
    phi = max(solvent_ul, 0.0) / total if total > 0 else 0.0
    wetting = 0.3 + 0.7 * (1.0 - math.exp(-phi / 0.35))
    islands = 1.0 / (1.0 + math.exp((phi - 0.7) / 0.06))
    coverage = 1.0 - math.exp(-thickness * wetting * islands / COVERAGE_THICKNESS_NM)
    return thickness, coverage


def _anneal_terms(params: dict[str, float]) -> tuple[float, float]:
    """Densification fraction (0-1) and interdiffusion resistance (ohm·cm²) of an anneal."""
    temp = params.get("anneal_temperature_c")
    minutes = params.get("anneal_time_min", 0.0)
    if temp is None or minutes <= 0:
        return 0.0, 0.0
    activation = 1.0 / (1.0 + math.exp(-(temp - 90.0) / 20.0))
    densification = activation * (1.0 - math.exp(-minutes / 10.0))
    interdiffusion = 20.0 * minutes / 30.0 * math.exp((temp - 200.0) / 25.0)
    return densification, interdiffusion


def _rate_penalty(rate_ul_min: float) -> float:
    """Multiplicative non-uniformity penalty of the dispense rate (1 at the optimum)."""
    rate = max(rate_ul_min, 1e-3)
    return 1.0 + 0.08 * math.log(rate / RATE_OPT_UL_MIN) ** 2


def _resistance(params: dict[str, float], *, with_rate: bool) -> float:
    precursor = params.get("precursor_volume_ul", 0.0)
    solvent = params.get("solvent_volume_ul", 0.0)
    thickness, coverage = _coverage(precursor, solvent)
    densification, interdiffusion = _anneal_terms(params)
    r_ct = R_CHARGE_TRANSFER * (1.0 - 0.35 * densification)
    r_covered = r_ct / coverage**1.5 if coverage > 0 else math.inf
    r_contact = 1.0 / (1.0 / r_covered + 1.0 / R_BARE)
    r = r_contact + RHO_LAYER * thickness + interdiffusion
    if with_rate:
        r *= _rate_penalty(params.get("precursor_rate_ul_min", RATE_OPT_UL_MIN))
    return r


def demo_interface(params: dict[str, float], fidelity: str, rng: np.random.Generator) -> float:
    """Area-specific interfacial resistance of a solution-coated interlayer, ohm·cm² (lower is better).

    Inputs (missing keys default to "nothing done"): ``precursor_volume_ul`` (µL),
    ``solvent_volume_ul`` (µL), ``precursor_rate_ul_min`` (µL/min; default 100, the neutral
    value), ``anneal_temperature_c`` (°C) and ``anneal_time_min`` (min; no anneal when absent).

    The model, term by term (electrode area 1 cm²):

    1. **Thickness.** The precursor carries the solids: the dry interlayer is
       ``h = 0.5 nm/µL · V_precursor`` thick (1-20 nm over 2-40 µL).
    2. **Coverage.** A film closes as it thickens: covered fraction
       ``θ = 1 - exp(-h · w(φ) / 3 nm)``, with the solvent fraction
       ``φ = V_solvent / (V_precursor + V_solvent)`` and the spreading efficiency
       ``w(φ) = [0.3 + 0.7 (1 - exp(-φ/0.35))] · 1/(1 + exp((φ - 0.7)/0.06))``: dilution lowers
       viscosity and contact angle so the same solids wet the whole electrode (first factor),
       but an over-diluted film dewets into islands while drying (second factor, onset near
       70 % solvent).
    3. **Contact.** The covered area conducts through the interlayer's charge-transfer resistance
       ``R_ct = 8 ohm·cm²`` with current constriction around the gaps, ``R_ct / θ^1.5``, in
       parallel with the poorly wetted bare Li | garnet contact, ``R_bare = 200 ohm·cm²``.
    4. **Transport.** Li⁺ must cross the layer: ``+ 1 ohm·cm²/nm · h`` (too thick is bad,
       linearly).
    5. **Anneal** (only when ``anneal_time_min`` > 0): densification reduces ``R_ct`` by up to
       35 %, ``R_ct · (1 - 0.35 · D)``, with ``D = σ((T - 90 °C)/20 °C) · (1 - exp(-t/10 min))``;
       interdiffusion grows a resistive reaction layer, ``+ 20 ohm·cm² · (t/30 min) ·
       exp((T - 200 °C)/25 °C)``. A moderate anneal (≈ 100-150 °C, 10-30 min) helps; hot or
       long ones hurt.
    6. **Dispense rate.** The whole resistance is multiplied by
       ``1 + 0.08 · ln²(rate / 100 µL/min)``: fast dispensing splashes and leaves a non-uniform
       film, very slow dispensing lets the solvent dry at the contact line (coffee ring). Mild:
       +21 % at 20 µL/min, +15 % at 400 µL/min.

    Over precursor 2-40 µL, solvent 0-40 µL, rate 20-400 µL/min, values span about 16.6-241
    ohm·cm² (200 for a bare substrate); the unique optimum without anneal is at precursor
    12.05 µL, solvent 12.06 µL, rate 100 µL/min, 16.60 ohm·cm², inside the box. An anneal at
    120 °C for 20 min lowers it to about 14.6 ohm·cm².

    Fidelities:
        ``"full"``: the model above, deterministic.
        ``"screening"``: the model times ``exp(0.1 · N(0, 1))`` (≈ 10 % multiplicative noise)
        drawn from ``rng``.
        ``"calculation"``: deterministic but biased, as a cheap computed estimate: it ignores the
        rate term and tilts with thickness, ``× (1 + 0.02 · (h - 5 nm)/nm)``.

    Args:
        params: Process parameters actually applied to the sample.
        fidelity: ``"full"``, ``"screening"`` or ``"calculation"``.
        rng: Random generator (used by ``"screening"`` only).

    Returns:
        Interfacial resistance, ohm·cm².

    Raises:
        ValueError: For an unknown fidelity.
    """
    if fidelity == "full":
        return _resistance(params, with_rate=True)
    if fidelity == "screening":
        return _resistance(params, with_rate=True) * math.exp(0.1 * rng.standard_normal())
    if fidelity == "calculation":
        thickness = THICKNESS_NM_PER_UL * max(params.get("precursor_volume_ul", 0.0), 0.0)
        return _resistance(params, with_rate=False) * (1.0 + 0.02 * (thickness - 5.0))
    raise ValueError(f"unknown fidelity {fidelity!r}; expected one of {FIDELITIES}")
