"""The simulated world: samples, what was really done to them, and the ground truth.

One :class:`SimulatedWorld` is shared by every simulated instrument of a workcell. The
instruments tell it what they physically did (a pump dispensed 10.3 µL, the hotplate held the
sample at 148 °C for 12 s) and ask it what a sensor would see (the impedance of the sample at
1 kHz, the mass on the balance pan). The world never sees commands or bytes.

Time:
    Simulated time runs ``time_scale`` times faster than real (monotonic) time:
    ``sim_time() == (time.monotonic() - t0) * time_scale``. Physical processes (pumping, heating,
    settling, motion) run on simulated time; communication watchdogs run on real time because the
    host keeps them alive in real time.

Sample lifecycle:
    * The sample at the work position is :meth:`SimulatedWorld.current_sample`. The world starts
      with one fresh sample (a bare substrate).
    * When material is dispensed onto a sample that has already been measured, a new sample (a
      fresh substrate) is started automatically and receives the material: one experiment is
      "dispense, (anneal), measure", the next dispense belongs to the next experiment.
    * :meth:`SimulatedWorld.new_sample` starts a fresh sample explicitly (a gantry moving
      substrates will use it); every sample ever started stays in :attr:`SimulatedWorld.samples`.
    * Annealing a measured sample does not start a new one (measure, anneal, measure again is a
      valid experiment); it only invalidates the cached interfacial resistance.

Impedance model (electrode area 1 cm², so ohm·cm² ≡ ohm):
    ``Z(f) = R_s + R_int / (1 + (j·2πf·R_int·C)^0.9)``, a series resistance and a ZARC element
    (a resistor in parallel with a constant-phase element of exponent 0.9, written with the
    parallel resistance as the time constant's scale). ``R_int`` is the truth function's
    area-specific interfacial resistance for the sample's params (fidelity ``"full"``), computed
    once per sample state and cached; ``R_s`` (20 ohm ± 2 %) and ``C`` (1 µF ± 10 %) are drawn
    uniformly per sample (as is the substrate mass, 1.5 g ± 1 %); every call multiplies Z by
    ``1 + 0.005 (n1 + j n2)`` with standard normal ``n1, n2`` (0.5 % relative complex noise).
    All randomness comes from the world's seeded :class:`numpy.random.Generator`.

Thread safety:
    One re-entrant lock, :attr:`SimulatedWorld.lock`, guards the world. Device simulators take the
    same lock for their own state, so there is a single lock in the whole simulated workcell and
    no lock-ordering deadlock is possible. Nobody sleeps while holding it.

Devices whose physical state evolves with time (a running pump, a heating plate) register an
``advance(now_sim_s)`` callback with :meth:`SimulatedWorld.attach`. The world calls every
callback before it reads or changes sample state, so the effects of elapsed time are applied in
the right order even when nobody polls the instrument (e.g. a pump that finished while the host
was busy is credited before the impedance meter measures).
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

TruthFn = Callable[[dict[str, float], str, np.random.Generator], float]
"""Ground truth: ``truth(params, fidelity, rng) -> value`` (ohm·cm² for the demo)."""

ELECTRODE_AREA_CM2 = 1.0
"""Electrode area in cm²: ohm·cm² of the truth equals ohm of the impedance model."""

CPE_EXPONENT = 0.9
"""Exponent of the constant-phase element of the ZARC."""

ANNEAL_THRESHOLD_C = 30.0
"""Temperatures above this (°C) count as annealing."""

LIQUID_DENSITY_G_PER_UL = 1e-3
"""Density of every dispensed liquid, g/µL (1 g/mL)."""


def load_truth(spec: str) -> TruthFn:
    """Import a truth function named as ``"module:function"``.

    Args:
        spec: ``"package.module:function"``.

    Returns:
        The callable.

    Raises:
        ValueError: If ``spec`` is not ``module:function`` or the attribute is not callable.
        ImportError: If the module cannot be imported.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"truth must be given as 'module:function', got {spec!r}")
    module = importlib.import_module(module_name)
    try:
        fn = getattr(module, attr)
    except AttributeError:
        raise ValueError(f"module {module_name!r} has no attribute {attr!r}") from None
    if not callable(fn):
        raise ValueError(f"{spec!r} is not callable")
    return fn


@dataclass
class Sample:
    """One substrate and everything really done to it.

    Attributes:
        id: Sequential sample number, from 0.
        params: What was really done: ``<role>_volume_ul`` (µL), ``<role>_rate_ul_min``
            (µL/min, volume-weighted mean), ``anneal_temperature_c`` (°C, time-weighted mean
            above 30 °C), ``anneal_time_min`` (min above 30 °C).
        events: Log of ``(sim_time_s, text)``.
        measured: True once an impedance was measured on it.
        substrate_mass_g: Mass of the bare substrate, g.
        series_resistance_ohm: ``R_s`` of the impedance model, ohm.
        capacitance_f: ``C`` of the impedance model, F.
    """

    id: int
    params: dict[str, float] = field(default_factory=dict)
    events: list[tuple[float, str]] = field(default_factory=list)
    measured: bool = False
    substrate_mass_g: float = 1.5
    series_resistance_ohm: float = 20.0
    capacitance_f: float = 1e-6
    _r_int_cache: tuple[tuple[tuple[str, float], ...], float] | None = field(
        default=None, repr=False, compare=False
    )

    def dispensed_volume_ul(self) -> float:
        """Total volume dispensed onto this sample, µL."""
        return sum(v for k, v in self.params.items() if k.endswith("_volume_ul"))


class SimulatedWorld:
    """Samples, ground truth and simulated time shared by the simulated instruments.

    Args:
        truth: Truth callable or ``"module:function"`` name.
        time_scale: Simulated seconds per real second (> 0).
        seed: Seed of the world's random generator.
    """

    def __init__(
        self,
        truth: TruthFn | str = "simulators.truths:demo_interface",
        *,
        time_scale: float = 1.0,
        seed: int = 0,
    ) -> None:
        if not time_scale > 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale}")
        self.truth: TruthFn = load_truth(truth) if isinstance(truth, str) else truth
        self.time_scale = float(time_scale)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.lock = threading.RLock()
        self.samples: list[Sample] = []
        self._t0 = time.monotonic()
        self._listeners: list[Callable[[float], None]] = []
        self._advancing = False
        self._last_mass_change = 0.0
        self._start_sample()

    # -- time ------------------------------------------------------------------------------
    def sim_time(self) -> float:
        """Simulated seconds since the world was created."""
        return (time.monotonic() - self._t0) * self.time_scale

    def real_seconds(self, sim_seconds: float) -> float:
        """Real seconds that ``sim_seconds`` of simulated time take."""
        return sim_seconds / self.time_scale

    def sleep(self, sim_seconds: float) -> None:
        """Sleep ``sim_seconds`` of simulated time (``sim_seconds / time_scale`` real seconds).

        Never call this while holding :attr:`lock`.
        """
        if sim_seconds > 0:
            time.sleep(sim_seconds / self.time_scale)

    # -- time-dependent devices -------------------------------------------------------------
    def attach(self, advance: Callable[[float], None]) -> None:
        """Register ``advance(now_sim_s)``, called before sample state is read or changed."""
        with self.lock:
            self._listeners.append(advance)

    def detach(self, advance: Callable[[float], None]) -> None:
        """Unregister a callback given to :meth:`attach` (no error if absent)."""
        with self.lock:
            if advance in self._listeners:
                self._listeners.remove(advance)

    def sync(self) -> float:
        """Bring every attached device up to the current simulated time.

        Returns:
            The simulated time used, s.
        """
        with self.lock:
            now = self.sim_time()
            if self._advancing:
                return now
            self._advancing = True
            try:
                for advance in list(self._listeners):
                    advance(now)
            finally:
                self._advancing = False
            return now

    # -- samples --------------------------------------------------------------------------
    def _start_sample(self) -> Sample:
        sample = Sample(
            id=len(self.samples),
            substrate_mass_g=float(1.5 * self.rng.uniform(0.99, 1.01)),
            series_resistance_ohm=float(20.0 * self.rng.uniform(0.98, 1.02)),
            capacitance_f=float(1e-6 * self.rng.uniform(0.90, 1.10)),
        )
        sample.events.append((self.sim_time(), "new substrate"))
        self.samples.append(sample)
        self._last_mass_change = self.sim_time()
        return sample

    def current_sample(self) -> Sample:
        """The sample at the work position."""
        with self.lock:
            self.sync()
            return self.samples[-1]

    def new_sample(self) -> Sample:
        """Start a fresh sample (bare substrate) at the work position and return it."""
        with self.lock:
            self.sync()
            return self._start_sample()

    def dispense(self, role: str, volume_ul: float, rate_ul_min: float) -> None:
        """Record material really dispensed onto the current sample.

        Starts a new sample first when the current one was already measured.

        Args:
            role: Liquid role (``precursor``, ``solvent``...): the params keys are
                ``<role>_volume_ul`` and ``<role>_rate_ul_min``.
            volume_ul: Volume that really left the syringe, µL (ignored if <= 0).
            rate_ul_min: Flow rate it was dispensed at, µL/min.
        """
        if volume_ul <= 0:
            return
        with self.lock:
            self.sync()
            sample = self.samples[-1]
            if sample.measured:
                sample = self._start_sample()
            vkey, rkey = f"{role}_volume_ul", f"{role}_rate_ul_min"
            v_old = sample.params.get(vkey, 0.0)
            r_old = sample.params.get(rkey, 0.0)
            v_new = v_old + volume_ul
            sample.params[vkey] = v_new
            sample.params[rkey] = (v_old * r_old + volume_ul * rate_ul_min) / v_new
            now = self.sim_time()
            sample.events.append(
                (now, f"dispense {role} {volume_ul:.4f} uL at {rate_ul_min:.3f} uL/min")
            )
            self._last_mass_change = now

    def anneal(self, temperature_c: float, seconds: float) -> None:
        """Record that the current sample spent ``seconds`` at ``temperature_c``.

        Only time above 30 °C counts; ``anneal_temperature_c`` is the time-weighted mean
        temperature of that time and ``anneal_time_min`` its total in minutes.

        Args:
            temperature_c: Sample temperature over the interval, °C.
            seconds: Length of the interval, simulated s.
        """
        if temperature_c <= ANNEAL_THRESHOLD_C or seconds <= 0:
            return
        with self.lock:
            self.sync()
            sample = self.samples[-1]
            t_old = sample.params.get("anneal_time_min", 0.0)
            temp_old = sample.params.get("anneal_temperature_c", 0.0)
            minutes = seconds / 60.0
            t_new = t_old + minutes
            sample.params["anneal_time_min"] = t_new
            sample.params["anneal_temperature_c"] = (
                t_old * temp_old + minutes * temperature_c
            ) / t_new
            if t_old == 0.0:
                sample.events.append((self.sim_time(), "anneal started"))

    # -- sensors ------------------------------------------------------------------------------
    def interfacial_resistance(self, sample: Sample | None = None) -> float:
        """Area-specific interfacial resistance of a sample, ohm·cm² (full-fidelity truth).

        Computed once per sample state and cached.

        Args:
            sample: The sample; the current one when None.
        """
        with self.lock:
            self.sync()
            return self._r_int(self.samples[-1] if sample is None else sample)

    def _r_int(self, sample: Sample) -> float:
        key = tuple(sorted(sample.params.items()))
        if sample._r_int_cache is None or sample._r_int_cache[0] != key:
            value = float(self.truth(dict(sample.params), "full", self.rng))
            sample._r_int_cache = (key, value)
        return sample._r_int_cache[1]

    def impedance(self, freq_hz: float) -> complex:
        """Measure the complex impedance of the current sample and mark it measured.

        Args:
            freq_hz: Test frequency, Hz (>= 0; 0 gives the DC resistance).

        Returns:
            Z in ohm (with 0.5 % relative complex noise).
        """
        with self.lock:
            self.sync()
            sample = self.samples[-1]
            r_int = self._r_int(sample) / ELECTRODE_AREA_CM2
            omega = 2 * np.pi * freq_hz
            zarc = r_int / (1 + (1j * omega * r_int * sample.capacitance_f) ** CPE_EXPONENT)
            z = sample.series_resistance_ohm + zarc
            noise = 0.005 * complex(self.rng.standard_normal(), self.rng.standard_normal())
            if not sample.measured:
                sample.events.append((self.sim_time(), "measured"))
            sample.measured = True
            return complex(z * (1 + noise))

    def mass_on_balance_g(self) -> float:
        """Mass on the balance pan, g: the current substrate plus its liquid (1 g/mL)."""
        with self.lock:
            self.sync()
            sample = self.samples[-1]
            return sample.substrate_mass_g + sample.dispensed_volume_ul() * LIQUID_DENSITY_G_PER_UL

    def last_mass_change(self) -> float:
        """Simulated time of the last change of the mass on the balance, s."""
        with self.lock:
            self.sync()
            return self._last_mass_change
