"""Impedance analysis."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lab.analysis import fit_rc_zarc, interfacial_resistance, zarc_impedance
from lab.errors import AnalysisError
from lab.plans import sweep_frequencies


@pytest.mark.parametrize("r_int", [3.0, 40.0, 250.0])
def test_fit_recovers_the_interfacial_resistance(r_int: float) -> None:
    rng = np.random.default_rng(1)
    f = np.array(sweep_frequencies(20, 1e6, 15))
    z = zarc_impedance(f, 20.0, r_int, 1e-6, 0.9)
    z = z * (1 + 0.005 * (rng.standard_normal(15) + 1j * rng.standard_normal(15)))
    fit = fit_rc_zarc(f, z)
    assert fit.r_int == pytest.approx(r_int, rel=0.05)
    assert fit.r_s == pytest.approx(20.0, rel=0.05)
    assert fit.rel_rmse < 0.02
    assert interfacial_resistance(fit, 0.5) == pytest.approx(fit.r_int * 0.5)


def test_fit_rejects_bad_data() -> None:
    f = np.array(sweep_frequencies(20, 1e6, 15))
    with pytest.raises(AnalysisError, match="at least 5"):
        fit_rc_zarc(f[:3], zarc_impedance(f[:3], 1, 1, 1e-6, 1))
    z = zarc_impedance(f, 20.0, 50.0, 1e-6, 0.9)
    z[3] = np.nan
    with pytest.raises(AnalysisError, match="non-finite"):
        fit_rc_zarc(f, z)
    with pytest.raises(AnalysisError, match="fit failed"):
        fit_rc_zarc(f, np.random.default_rng(0).uniform(1, 100, 15) * (1 - 2j))


def test_sweep_frequencies_are_log_spaced_high_to_low() -> None:
    f = sweep_frequencies(20, 1e6, 5)
    assert f[0] == 1e6 and f[-1] == 20
    assert all(a > b for a, b in itertools.pairwise(f))
