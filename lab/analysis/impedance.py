"""Impedance analysis: equivalent-circuit fit of a sweep to the interfacial resistance.

The circuit is a series resistance (electrolyte bulk and contacts) followed by a ZARC element
(the interface: a resistance in parallel with a constant-phase element)::

    Z(f) = R_s + R_int / (1 + (j 2 pi f tau)^alpha),   tau = R_int * C

with ``R_s, R_int`` in ohm, ``C`` in farad (the pseudo-capacitance at alpha = 1) and
``0.5 <= alpha <= 1``. The fit minimises residuals relative to |Z| over real and imaginary
parts, in log-parameter space so every parameter stays positive.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import least_squares

from lab.errors import AnalysisError


def zarc_impedance(
    freq_hz: np.ndarray, r_s: float, r_int: float, c: float, alpha: float
) -> np.ndarray:
    """Impedance of ``R_s + (R_int || CPE)``.

    Args:
        freq_hz: ``n`` frequencies in Hz.
        r_s: Series resistance in ohm.
        r_int: Interfacial resistance in ohm.
        c: Pseudo-capacitance in F.
        alpha: CPE exponent (1 = ideal capacitor).

    Returns:
        ``n`` complex impedances in ohm.
    """
    w = 2 * np.pi * np.asarray(freq_hz, dtype=float)
    return r_s + r_int / (1 + (1j * w * r_int * c) ** alpha)


@dataclass(frozen=True)
class CircuitFit:
    """Result of an equivalent-circuit fit.

    Attributes:
        r_s: Series resistance in ohm.
        r_int: Interfacial resistance in ohm.
        c: Pseudo-capacitance in F.
        alpha: CPE exponent.
        rel_rmse: Root-mean-square residual relative to |Z| (0.01 = 1 %).
    """

    r_s: float
    r_int: float
    c: float
    alpha: float
    rel_rmse: float

    def to_dict(self) -> dict[str, float]:
        """Plain dict of the fitted values."""
        return asdict(self)


def fit_rc_zarc(freq_hz: np.ndarray, z: np.ndarray, *, max_rel_rmse: float = 0.1) -> CircuitFit:
    """Fit ``R_s + ZARC`` to a sweep.

    Args:
        freq_hz: ``n`` frequencies in Hz (n >= 5).
        z: ``n`` complex impedances in ohm.
        max_rel_rmse: Largest acceptable relative RMS residual.

    Returns:
        The fitted circuit.

    Raises:
        AnalysisError: On too few or non-finite points, or a fit that does not describe the data.
    """
    f = np.asarray(freq_hz, dtype=float)
    z = np.asarray(z, dtype=complex)
    if f.shape != z.shape or f.ndim != 1 or len(f) < 5:
        raise AnalysisError(f"need at least 5 (frequency, impedance) pairs, got {len(f)}")
    if not (np.all(np.isfinite(f)) and np.all(np.isfinite(z.real)) and np.all(np.isfinite(z.imag))):
        raise AnalysisError("the sweep contains non-finite values (overload or missing data)")
    order = np.argsort(f)
    f, z = f[order], z[order]
    mag = np.abs(z)
    r_s0 = max(float(z.real[-1]), 1e-3)
    r_int0 = max(float(z.real[0]) - r_s0, 1e-3)
    f_peak = float(f[int(np.argmax(-z.imag))])
    c0 = 1.0 / (2 * np.pi * f_peak * r_int0)

    def resid(p: np.ndarray) -> np.ndarray:
        r_s, r_int, c = np.exp(p[:3])
        model = zarc_impedance(f, r_s, r_int, c, p[3])
        d = (model - z) / mag
        return np.concatenate([d.real, d.imag])

    x0 = np.array([np.log(r_s0), np.log(r_int0), np.log(c0), 0.9])
    lo = np.array([np.log(1e-6), np.log(1e-6), np.log(1e-15), 0.5])
    hi = np.array([np.log(1e9), np.log(1e9), np.log(1.0), 1.0])
    sol = least_squares(resid, np.clip(x0, lo + 1e-9, hi - 1e-9), bounds=(lo, hi), method="trf")
    rmse = float(np.sqrt(np.mean(sol.fun**2)))
    r_s, r_int, c = (float(v) for v in np.exp(sol.x[:3]))
    if not sol.success or not np.isfinite(rmse) or rmse > max_rel_rmse:
        raise AnalysisError(
            f"equivalent-circuit fit failed (relative RMS residual {rmse:.3g}, limit "
            f"{max_rel_rmse}): check the sweep range covers the interface arc"
        )
    return CircuitFit(r_s=r_s, r_int=r_int, c=c, alpha=float(sol.x[3]), rel_rmse=rmse)


def interfacial_resistance(fit: CircuitFit, electrode_area_cm2: float) -> float:
    """Area-specific interfacial resistance in ohm*cm^2 from a fit and the electrode area."""
    return fit.r_int * electrode_area_cm2
