"""Shape of the demo ground truth."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from simulators.truths import demo_interface

BOX = {
    "precursor_volume_ul": (2.0, 40.0),
    "solvent_volume_ul": (0.0, 40.0),
    "precursor_rate_ul_min": (20.0, 400.0),
}


def r(p: float, s: float, rate: float, fidelity: str = "full", **extra: float) -> float:
    params = {"precursor_volume_ul": p, "solvent_volume_ul": s, "precursor_rate_ul_min": rate}
    return demo_interface({**params, **extra}, fidelity, np.random.default_rng(0))


def grid_minimum() -> tuple[float, tuple[float, float, float]]:
    axes = [np.linspace(lo, hi, 39) for lo, hi in BOX.values()]
    return min((r(*x), tuple(x)) for x in itertools.product(*axes))


def test_optimum_inside_box_not_at_corner() -> None:
    value, x = grid_minimum()
    for xi, (lo, hi) in zip(x, BOX.values(), strict=True):
        assert lo < xi < hi, x
    corners = [r(*c) for c in itertools.product(*BOX.values())]
    assert value < 0.6 * min(corners)
    assert 10.0 < value < 25.0
    assert r(12.05, 12.06, 100.0) == pytest.approx(16.60, abs=0.01)


def test_range_and_smoothness() -> None:
    values = [
        r(p, s, rate)
        for p in np.linspace(2, 40, 9)
        for s in np.linspace(0, 40, 9)
        for rate in np.linspace(20, 400, 5)
    ]
    assert min(values) > 5.0
    assert max(values) < 300.0
    base = r(12.0, 12.0, 100.0)
    assert abs(r(12.01, 12.0, 100.0) - base) < 0.01


def test_physics_trends() -> None:
    assert r(2.0, 12.0, 100.0) > r(12.0, 12.0, 100.0)  # too thin: incomplete coverage
    assert r(40.0, 12.0, 100.0) > r(12.0, 12.0, 100.0)  # too thick: transport
    assert r(12.0, 0.0, 100.0) > r(12.0, 12.0, 100.0)  # undiluted: poor wetting
    assert r(12.0, 40.0, 100.0) > r(12.0, 12.0, 100.0)  # over-diluted: islands
    assert r(12.0, 12.0, 400.0) > r(12.0, 12.0, 100.0)  # fast dispensing
    assert r(12.0, 12.0, 400.0) < 1.3 * r(12.0, 12.0, 100.0)  # ... a mild penalty
    assert demo_interface({}, "full", np.random.default_rng(0)) == pytest.approx(200.0)


def test_anneal_helps_moderately_hurts_when_hot() -> None:
    plain = r(12.0, 12.0, 100.0)
    assert r(12.0, 12.0, 100.0, anneal_temperature_c=120.0, anneal_time_min=20.0) < plain
    assert r(12.0, 12.0, 100.0, anneal_temperature_c=250.0, anneal_time_min=60.0) > 2 * plain


def test_fidelities() -> None:
    assert r(12.0, 12.0, 100.0) == r(12.0, 12.0, 100.0)
    screening = [
        demo_interface(
            {"precursor_volume_ul": 12.0, "solvent_volume_ul": 12.0},
            "screening",
            np.random.default_rng(i),
        )
        for i in range(200)
    ]
    rel = np.std(np.log(screening))
    assert 0.07 < rel < 0.13
    calc = r(12.0, 12.0, 400.0, "calculation")
    assert calc == r(12.0, 12.0, 20.0, "calculation")  # ignores the rate
    assert calc != pytest.approx(r(12.0, 12.0, 400.0), rel=0.01)
    with pytest.raises(ValueError):
        r(12.0, 12.0, 100.0, "bogus")
