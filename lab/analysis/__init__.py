"""Raw readings to objectives (pure computation, no I/O)."""

from lab.analysis.impedance import CircuitFit, fit_rc_zarc, interfacial_resistance, zarc_impedance

__all__ = ["CircuitFit", "fit_rc_zarc", "interfacial_resistance", "zarc_impedance"]
