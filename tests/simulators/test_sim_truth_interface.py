"""Shape and physics sanity of the interlayer ground truth (Li | modifier | electrolyte)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulators.truths_interface import (
    ELECTROLYTES,
    MODIFIERS,
    interface_terms,
    interlayer_asr,
    misfit,
)


def asr(modifier: str, partner: str = "LLZO", h: float = 5.0, temp: float = 25.0, t: float = 0.0):
    params = {
        "modifier": modifier,
        "partner": partner,
        "thickness_nm": h,
        "anneal_temperature_c": temp,
        "anneal_time_min": t,
    }
    return interface_terms(params)["asr"]


def random_design(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    mods, parts = list(MODIFIERS), list(ELECTROLYTES)
    return [
        {
            "modifier": mods[rng.integers(len(mods))],
            "partner": parts[rng.integers(len(parts))],
            "thickness_nm": float(10 ** rng.uniform(math.log10(0.5), math.log10(50))),
            "anneal_temperature_c": float(rng.uniform(25, 400)),
            "anneal_time_min": float(rng.uniform(0, 120)),
        }
        for _ in range(n)
    ]


def test_values_positive_finite_and_span_decades() -> None:
    rng = np.random.default_rng(1)
    values = [
        interlayer_asr(p, f, rng)
        for p in random_design(300)
        for f in ("full", "screening", "calculation")
    ]
    assert all(math.isfinite(v) and v > 0 for v in values)
    full = [interlayer_asr(p, "full", rng) for p in random_design(300)]
    assert min(full) < 20 and max(full) > 1000  # good and blocking interlayers both exist


def test_bare_contact_and_lithiophilic_coatings() -> None:
    bare = interface_terms({"modifier": "none", "partner": "LLZO"})["asr"]
    assert 200 < bare < 1000  # poorly wetted, carbonate-covered garnet: hundreds of ohm·cm²
    for good in ("Al2O3", "ZnO", "Au", "Al", "Mg"):  # lithiophilic coatings lower it tenfold
        assert asr(good) < bare / 10, good
    assert asr("none", h=0.0) == pytest.approx(bare)


def test_thickness_coverage_and_transport() -> None:
    # too thin: incomplete coverage; too thick: transport through the layer
    assert asr("Al2O3", h=0.5) > 2 * asr("Al2O3", h=5.0)
    for blocking in ("LiF", "MgO", "AlN"):
        values = [asr(blocking, h=h) for h in (2, 5, 10, 20, 50)]
        assert values == sorted(values), blocking
        assert values[-1] / values[-2] == pytest.approx(2.5, rel=0.1)  # ohmic: R ∝ h
    assert (
        interface_terms({"modifier": "Au", "partner": "LLZO", "thickness_nm": 0.5})["coverage"]
        < interface_terms({"modifier": "Au", "partner": "LLZO", "thickness_nm": 5})["coverage"]
    )


def test_large_volume_change_alloys_delaminate_when_thick() -> None:
    si = interface_terms({"modifier": "Si", "partner": "LLZO", "thickness_nm": 50})
    lial = interface_terms({"modifier": "LiAl", "partner": "LLZO", "thickness_nm": 50})
    assert si["delam"] > 0.5 > lial["delam"]
    assert asr("Si", h=50) > 10 * asr("LiAl", h=50)


def test_pairing_matters() -> None:
    # Electron-conducting layers let Li reduce LLTO; an insulating Li-conductor protects it.
    assert asr("Au", "LLTO") > 10 * asr("Au", "LLZO")
    assert asr("Al2O3", "LLTO", h=10) < asr("Au", "LLTO", h=10) / 10
    # The ranking of modifiers differs between partners.
    names = list(MODIFIERS)
    ranks = {p: np.argsort(np.argsort([asr(m, p, h=5) for m in names])) for p in ELECTROLYTES}
    rho = np.corrcoef(ranks["LLZO"], ranks["LLTO"])[0, 1]
    assert rho < 0.8


def test_misfit_against_both_neighbours() -> None:
    assert misfit(4.0, 4.0) == pytest.approx(0.0)
    assert misfit(3.0, 6.0) == pytest.approx(0.004)  # 2:1 coincidence
    assert misfit(3.51, 4.078) > 0.1
    terms = interface_terms({"modifier": "ZnO", "partner": "LLZO", "thickness_nm": 5})
    assert terms["misfit_partner"] < 0.02 < 0.05 < terms["misfit_li"]


def test_anneal_reaction_grows_with_temperature_and_time() -> None:
    def x_r(temp: float, t: float, partner: str = "LLZO") -> float:
        p = {"modifier": "Li3N", "partner": partner, "thickness_nm": 5.0}
        return interface_terms({**p, "anneal_temperature_c": temp, "anneal_time_min": t})["x_r"]

    assert x_r(25, 0) == 0.0
    assert x_r(200, 30) < x_r(300, 30) < x_r(400, 30)
    assert x_r(300, 10) < x_r(300, 60)
    assert x_r(300, 40) == pytest.approx(2 * x_r(300, 10))  # parabolic growth
    assert x_r(300, 30, "LLTO") > 3 * x_r(300, 30, "LLZO")  # window gap drives the reaction
    # hot and long hurts; a moderate anneal of a low-melting metal helps
    assert asr("Li3N", "LLTO", t=120, temp=400) > 10 * asr("Li3N", "LLTO")
    assert asr("Al", temp=200, t=30) < 0.8 * asr("Al")
    assert asr("In", temp=250, t=30) > 2 * asr("In", temp=100, t=30)  # molten In dewets


def test_fidelities() -> None:
    p = {"modifier": "ZnO", "partner": "LLZO", "thickness_nm": 5.0}
    rng = np.random.default_rng(0)
    full = [interlayer_asr(p, "full", rng) for _ in range(400)]
    truth = interface_terms(p)["asr"]
    assert np.std(np.log(full)) == pytest.approx(0.05, rel=0.15)
    assert np.exp(np.mean(np.log(full))) == pytest.approx(truth, rel=0.02)
    screening = [interlayer_asr(p, "screening", rng) for _ in range(400)]
    assert np.std(np.log(screening)) == pytest.approx(0.15, rel=0.15)
    calc = interlayer_asr(p, "calculation", np.random.default_rng(5))
    assert calc == interlayer_asr(p, "calculation", np.random.default_rng(6))
    annealed = {**p, "anneal_temperature_c": 400.0, "anneal_time_min": 120.0}
    assert interlayer_asr(annealed, "calculation", rng) == calc  # no kinetics
    with pytest.raises(ValueError, match="fidelity"):
        interlayer_asr(p, "bogus", rng)
    with pytest.raises(ValueError, match="modifier"):
        interlayer_asr({**p, "modifier": "Kryptonite"}, "full", rng)
    with pytest.raises(ValueError, match="partner"):
        interlayer_asr({**p, "partner": "NASICON"}, "full", rng)


def test_cheap_fidelities_are_partly_informative() -> None:
    rng = np.random.default_rng(3)
    design = random_design(400, seed=3)
    full = np.log([interface_terms(p)["asr"] for p in design])
    calc = np.log([interlayer_asr(p, "calculation", rng) for p in design])
    scr = np.log([interlayer_asr(p, "screening", rng) for p in design])
    r_calc = np.corrcoef(full, calc)[0, 1]
    r_scr = np.corrcoef(full, scr)[0, 1]
    assert 0.3 < r_calc < 0.95
    assert 0.3 < r_scr < 0.95
    assert np.mean(calc) < np.mean(full)  # the ideal interface is optimistic


def test_screening_saturates_for_resistive_interfaces() -> None:
    rng = np.random.default_rng(0)
    p = {"modifier": "AlN", "partner": "LLZO", "thickness_nm": 50.0}
    values = [interlayer_asr(p, "screening", rng) for _ in range(50)]
    assert np.median(values) < 0.2 * interface_terms(p)["asr"]
