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
    * When material is dispensed or deposited onto a sample that has already been measured, a
      new sample (a fresh substrate) is started automatically and receives the material: one
      experiment is "dispense, (anneal), measure", the next dispense belongs to the next
      experiment.
    * Deposited thin films (:meth:`SimulatedWorld.deposit`) stack in :attr:`Sample.layers`:
      the first material is the interlayer (``modifier``, ``thickness_nm``), the next different
      one the top contact (``contact``, ``contact_thickness_nm``).
    * :meth:`SimulatedWorld.new_sample` starts a fresh sample explicitly (a gantry moving
      substrates will use it); every sample ever started stays in :attr:`SimulatedWorld.samples`.
    * Annealing a measured sample does not start a new one (measure, anneal, measure again is a
      valid experiment); it only invalidates the cached interfacial resistance.

Locations (stations):
    * A gantry defines named stations (:meth:`SimulatedWorld.define_stations`, machine
      coordinates in mm) and reports its position (:meth:`SimulatedWorld.gantry_moved`, None
      while moving). Its carrier holds the current sample, so the sample's
      :attr:`Sample.location` is the station within :data:`STATION_TOLERANCE_MM` of the gantry
      on every axis, else None (in transit, or parked between stations). A new sample starts
      where the gantry is; a replaced sample keeps the location it was replaced at.
    * An instrument constructed with ``station=`` acts only on a sample at that station
      (:meth:`SimulatedWorld.sample_at`): otherwise a dispense lands on the empty deck, an anneal
      heats nothing, the impedance meter measures an open circuit (:data:`OPEN_CIRCUIT_OHM` in
      parallel with :data:`OPEN_CIRCUIT_F`) and the balance weighs an empty pan, no sample
      changes, and the world logs it in :attr:`SimulatedWorld.misplaced`.
    * Until stations are defined (a workcell without a gantry, such as the demo) location checks
      are off and every instrument acts on the current sample, whatever its ``station``.
    * Moving the sample onto or off a station, or dispensing onto it there, changes the load at
      that station: a balance there settles again (:meth:`SimulatedWorld.last_mass_change`).

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
was busy is credited before the impedance meter measures). A device whose state changes at known
instants (a gantry arriving at a station) also gives ``next_event() -> sim_s | None``: a sync
first steps every device to each such instant in turn (the device of the event last), so a pump
that finished before the gantry arrived is credited where the sample was, and one that finished
after, where it arrived.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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

STATION_TOLERANCE_MM = 0.5
"""The gantry is at a station when within this distance of it on every axis, mm."""

OPEN_CIRCUIT_OHM = 1e9
"""Leakage resistance between the impedance meter's probes with no sample, ohm."""

OPEN_CIRCUIT_F = 1e-12
"""Stray capacitance between the impedance meter's probes with no sample, F."""

Position = tuple[float, float, float]
"""Machine coordinates ``(x, y, z)``, mm."""


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
            above 30 °C), ``anneal_time_min`` (min above 30 °C); from deposited layers (see
            :meth:`SimulatedWorld.deposit`) ``modifier`` (str, the interlayer material),
            ``thickness_nm`` (its thickness on the substrate), ``contact`` (str, the top
            contact material) and ``contact_thickness_nm``. Values are floats or strings.
        events: Log of ``(sim_time_s, text)``.
        measured: True once an impedance was measured on it.
        substrate_mass_g: Mass of the bare substrate, g.
        series_resistance_ohm: ``R_s`` of the impedance model, ohm.
        capacitance_f: ``C`` of the impedance model, F.
        location: Station the sample is at (None: in transit, between stations, or no
            stations defined); see :meth:`SimulatedWorld.gantry_moved`.
        layers: Thin films deposited on it, bottom first, as ``(material, nm on the
            substrate)``; one entry per deposit (see :meth:`SimulatedWorld.deposit`).
    """

    id: int
    params: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[float, str]] = field(default_factory=list)
    measured: bool = False
    substrate_mass_g: float = 1.5
    series_resistance_ohm: float = 20.0
    capacitance_f: float = 1e-6
    location: str | None = None
    layers: list[tuple[str, float]] = field(default_factory=list)
    _r_int_cache: tuple[tuple[tuple[str, Any], ...], float] | None = field(
        default=None, repr=False, compare=False
    )

    def dispensed_volume_ul(self) -> float:
        """Total volume dispensed onto this sample, µL."""
        return sum(
            v
            for k, v in self.params.items()
            if k.endswith("_volume_ul") and isinstance(v, int | float)
        )


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
        self._next_events: list[tuple[Callable[[float], None], Callable[[], float | None]]] = []
        self._advancing = False
        self._step_time: float | None = None
        self._last_sync = 0.0
        self._last_mass_change = 0.0
        self.stations: dict[str, Position] = {}
        """Station name → machine coordinates, mm (empty: location checks off)."""
        self.gantry_position: Position | None = None
        """Last position the gantry reported, mm (None: moving, or no gantry)."""
        self.misplaced: list[tuple[float, str, str]] = []
        """``(sim_time_s, station, text)`` of every action on a station without the sample: an
        episode (one kind of action at one station until the sample moves) is one entry, its
        text updated in place with the running total."""
        self._misplaced_open: dict[tuple[str, str], tuple[int, float]] = {}
        self._load_changed: dict[str, float] = {}
        self._gantry_reports = 0
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
    def attach(
        self,
        advance: Callable[[float], None],
        next_event: Callable[[], float | None] | None = None,
    ) -> None:
        """Register ``advance(now_sim_s)``, called before sample state is read or changed.

        Args:
            advance: Applies the device's physics up to the given simulated time.
            next_event: Simulated time of the device's next change that other devices must
                see in order (a gantry's arrival), or None; :meth:`sync` steps every device to
                it first. ``advance`` at that time must move the device past it.
        """
        with self.lock:
            self._listeners.append(advance)
            if next_event is not None:
                self._next_events.append((advance, next_event))

    def detach(self, advance: Callable[[float], None]) -> None:
        """Unregister a callback given to :meth:`attach` (no error if absent)."""
        with self.lock:
            if advance in self._listeners:
                self._listeners.remove(advance)
            self._next_events = [(a, e) for a, e in self._next_events if a != advance]

    def sync(self) -> float:
        """Bring every attached device up to the current simulated time.

        Every device is first stepped to each pending ``next_event`` up to now, in time order,
        the device whose event it is last (see :meth:`attach`), then to now.

        Returns:
            The simulated time used, s.
        """
        with self.lock:
            now = self.sim_time()
            if self._advancing:
                return now if self._step_time is None else self._step_time
            self._advancing = True
            try:
                done = self._last_sync
                while True:
                    pending = [(t, a) for a, ev in self._next_events if (t := ev()) is not None]
                    pending = [(t, a) for t, a in pending if done < t <= now]
                    if not pending:
                        break
                    step = min(t for t, _ in pending)
                    owners = [a for t, a in pending if t == step]
                    self._step_time = step
                    for advance in [a for a in self._listeners if a not in owners] + owners:
                        advance(step)
                    done = step
                self._step_time = now
                for advance in list(self._listeners):
                    advance(now)
                self._last_sync = max(self._last_sync, now)
            finally:
                self._advancing = False
                self._step_time = None
            return now

    def _now(self) -> float:
        """Time stamp of a change: the instant a sync is stepping to, else the current time."""
        return self.sim_time() if self._step_time is None else self._step_time

    # -- stations ---------------------------------------------------------------------------
    @property
    def location_checks(self) -> bool:
        """True once stations are defined: instruments then act only at their station."""
        return bool(self.stations)

    def define_stations(self, stations: dict[str, tuple[float, float, float]]) -> None:
        """Add (or redefine) named stations; the current sample's location is recomputed.

        Args:
            stations: Station name → ``(x, y, z)`` machine coordinates, mm.

        Raises:
            ValueError: For an empty name or coordinates that are not three finite numbers.
        """
        parsed: dict[str, Position] = {}
        for name, xyz in stations.items():
            values = tuple(float(v) for v in xyz)
            if not name or len(values) != 3 or not all(np.isfinite(values)):
                raise ValueError(f"station {name!r} needs a name and (x, y, z) in mm, got {xyz!r}")
            parsed[str(name)] = (values[0], values[1], values[2])
        with self.lock:
            self.sync()
            self.stations.update(parsed)
            self._relocate()

    def station_of(self, position: tuple[float, float, float] | None) -> str | None:
        """The station at ``position`` (within :data:`STATION_TOLERANCE_MM` per axis), or None."""
        if position is None:
            return None
        for name, xyz in self.stations.items():
            if all(abs(p - s) <= STATION_TOLERANCE_MM for p, s in zip(position, xyz, strict=True)):
                return name
        return None

    def gantry_moved(self, position: tuple[float, float, float] | None) -> None:
        """The gantry (holding the current sample) stopped at ``position`` (mm), or started
        moving (None). Devices are brought up to now first, so what happened before the move
        happened where the sample was."""
        with self.lock:
            self._gantry_reports += 1
            report = self._gantry_reports
            self.sync()
            if self._gantry_reports != report:
                return  # the gantry reported again while the sync stepped it: that is newer
            if position is None:
                self.gantry_position = None
            else:
                x, y, z = (float(v) for v in position)
                self.gantry_position = (x, y, z)
            self._relocate()

    def _relocate(self) -> None:
        """Put the current sample where the gantry is. Under the lock."""
        sample = self.samples[-1]
        location = self.station_of(self.gantry_position) if self.stations else None
        if location == sample.location:
            return
        now = self._now()
        if sample.location is not None:
            sample.events.append((now, f"left station {sample.location!r}"))
            self._load_change(sample.location, now)
        if location is not None:
            sample.events.append((now, f"at station {location!r}"))
            self._load_change(location, now)
        sample.location = location
        self._misplaced_open.clear()

    def _load_change(self, location: str | None, now: float) -> None:
        """The load at ``location`` changed at ``now`` (a balance there has to settle)."""
        self._last_mass_change = now
        if location is not None:
            self._load_changed[location] = now

    def _sample_at(self, station: str | None) -> Sample | None:
        sample = self.samples[-1]
        if station is None or not self.stations or sample.location == station:
            return sample
        return None

    def sample_at(self, station: str | None) -> Sample | None:
        """The current sample if it is at ``station``, else None.

        Always the current sample when ``station`` is None or no stations are defined
        (location checks off).
        """
        with self.lock:
            self.sync()
            return self._sample_at(station)

    def _where(self) -> str:
        """Where the current sample is, for a message. Under the lock."""
        location = self.samples[-1].location
        if location is not None:
            return f"at {location!r}"
        return "in transit" if self.gantry_position is None else "at no station"

    def _sample_for_action(
        self, station: str | None, *, action: str, amount: float, text: str
    ) -> Sample | None:
        """The sample an instrument at ``station`` acts on, or None after logging the miss.

        For every world method that changes or reads a sample at an instrument's station
        (``world.deposit`` follows the same rule), e.g.::

            sample = self._sample_for_action(
                station, action=f"deposit {material}", amount=thickness_nm,
                text="deposition source at station {station!r} deposited {total:.3g} nm of "
                + material + " but the sample is {where}",
            )
            if sample is None:
                return

        Args:
            station: The instrument's station (None: acts wherever the sample is).
            action: Kind of action: repeated misses of one kind at one station, until the
                sample moves, are one :attr:`misplaced` entry whose total grows.
            amount: What this call would have done (volume, seconds, 1 for a reading...).
            text: Format of the entry with ``{station}``, ``{total}`` and ``{where}``.

        Under the lock, after :meth:`sync`.
        """
        sample = self._sample_at(station)
        if sample is not None:
            return sample
        assert station is not None
        key = (action, station)
        index, total = self._misplaced_open.get(key, (len(self.misplaced), 0.0))
        total += amount
        entry_text = text.format(station=station, total=total, where=self._where())
        if station not in self.stations:
            entry_text += f" (no station {station!r} is defined: {sorted(self.stations)})"
        if index == len(self.misplaced):
            self.misplaced.append((self._now(), station, entry_text))
        else:
            self.misplaced[index] = (self.misplaced[index][0], station, entry_text)
        self._misplaced_open[key] = (index, total)
        return None

    # -- samples --------------------------------------------------------------------------
    def _start_sample(self) -> Sample:
        location = self.station_of(self.gantry_position) if self.stations else None
        sample = Sample(
            id=len(self.samples),
            substrate_mass_g=float(1.5 * self.rng.uniform(0.99, 1.01)),
            series_resistance_ohm=float(20.0 * self.rng.uniform(0.98, 1.02)),
            capacitance_f=float(1e-6 * self.rng.uniform(0.90, 1.10)),
            location=location,
        )
        now = self._now()
        sample.events.append((now, "new substrate" + (f" at {location!r}" if location else "")))
        self.samples.append(sample)
        self._load_change(location, now)
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

    def dispense(
        self, role: str, volume_ul: float, rate_ul_min: float, *, station: str | None = None
    ) -> None:
        """Record material really dispensed onto the current sample.

        Starts a new sample first when the current one was already measured. When the sample
        is not at ``station`` the liquid lands on the empty deck: no sample changes and the
        volume is logged in :attr:`misplaced`.

        Args:
            role: Liquid role (``precursor``, ``solvent``...): the params keys are
                ``<role>_volume_ul`` and ``<role>_rate_ul_min``.
            volume_ul: Volume that really left the syringe, µL (ignored if <= 0).
            rate_ul_min: Flow rate it was dispensed at, µL/min.
            station: The pump's station (None: wherever the sample is).
        """
        if volume_ul <= 0:
            return
        with self.lock:
            self.sync()
            found = self._sample_for_action(
                station,
                action=f"dispense {role}",
                amount=volume_ul,
                text="pump at station {station!r} dispensed {total:.4g} uL of "
                + role
                + " but the sample is {where}",
            )
            if found is None:
                return
            sample = found
            if sample.measured:
                sample = self._start_sample()
            vkey, rkey = f"{role}_volume_ul", f"{role}_rate_ul_min"
            v_old = sample.params.get(vkey, 0.0)
            r_old = sample.params.get(rkey, 0.0)
            v_new = v_old + volume_ul
            sample.params[vkey] = v_new
            sample.params[rkey] = (v_old * r_old + volume_ul * rate_ul_min) / v_new
            now = self._now()
            sample.events.append(
                (now, f"dispense {role} {volume_ul:.4f} uL at {rate_ul_min:.3f} uL/min")
            )
            self._load_change(sample.location, now)

    def anneal(self, temperature_c: float, seconds: float, *, station: str | None = None) -> None:
        """Record that the current sample spent ``seconds`` at ``temperature_c``.

        Only time above 30 °C counts; ``anneal_temperature_c`` is the time-weighted mean
        temperature of that time and ``anneal_time_min`` its total in minutes. When the sample
        is not at ``station`` the plate heats nothing (logged in :attr:`misplaced`).

        Args:
            temperature_c: Sample temperature over the interval, °C.
            seconds: Length of the interval, simulated s.
            station: The hotplate's station (None: wherever the sample is).
        """
        if temperature_c <= ANNEAL_THRESHOLD_C or seconds <= 0:
            return
        with self.lock:
            self.sync()
            sample = self._sample_for_action(
                station,
                action="anneal",
                amount=seconds,
                text="hotplate at station {station!r} was above 30 C for {total:.4g} s"
                " but the sample is {where}",
            )
            if sample is None:
                return
            t_old = sample.params.get("anneal_time_min", 0.0)
            temp_old = sample.params.get("anneal_temperature_c", 0.0)
            minutes = seconds / 60.0
            t_new = t_old + minutes
            sample.params["anneal_time_min"] = t_new
            sample.params["anneal_temperature_c"] = (
                t_old * temp_old + minutes * temperature_c
            ) / t_new
            if t_old == 0.0:
                sample.events.append((self._now(), "anneal started"))

    def deposit(
        self, material: str, thickness_nm: float, rate_a_s: float, station: str | None = None
    ) -> None:
        """Record a thin film really deposited onto the current sample.

        Appends ``(material, thickness_nm)`` to :attr:`Sample.layers` and sets the truth
        inputs from the stack, merging consecutive layers of one material: the first material
        is the interlayer (``params["modifier"]``, ``params["thickness_nm"]``, nm), the next
        different one the top contact electrode (``params["contact"]``,
        ``params["contact_thickness_nm"]``). Layers above the contact are recorded but do not
        touch the interface, so they change no params. Starts a new sample first when the
        current one was already measured. When the sample is not at ``station`` the film goes
        onto the empty holder: no sample changes and it is logged in :attr:`misplaced`.

        Args:
            material: What landed (the source's material, e.g. ``"LiF"``).
            thickness_nm: Thickness really on the substrate, nm (ignored if <= 0).
            rate_a_s: Mean deposition rate on the substrate, Å/s (logged only).
            station: The deposition source's station (None: wherever the sample is).
        """
        if thickness_nm <= 0:
            return
        with self.lock:
            self.sync()
            found = self._sample_for_action(
                station,
                action=f"deposit {material}",
                amount=thickness_nm,
                text="deposition source at station {station!r} deposited {total:.3g} nm of "
                + material
                + " but the sample is {where}",
            )
            if found is None:
                return
            sample = found
            if sample.measured:
                sample = self._start_sample()
            sample.layers.append((material, float(thickness_nm)))
            stack: list[list[Any]] = []
            for name, nm in sample.layers:
                if stack and stack[-1][0] == name:
                    stack[-1][1] += nm
                else:
                    stack.append([name, nm])
            sample.params["modifier"], sample.params["thickness_nm"] = stack[0]
            if len(stack) > 1:
                sample.params["contact"], sample.params["contact_thickness_nm"] = stack[1]
            where = " (above the contact)" if len(stack) > 2 else ""
            sample.events.append(
                (
                    self._now(),
                    f"deposit {material} {thickness_nm:.3f} nm at {rate_a_s:.3f} A/s{where}",
                )
            )

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

    def impedance(self, freq_hz: float, *, station: str | None = None) -> complex:
        """Measure the complex impedance of the current sample and mark it measured.

        When the sample is not at ``station`` the probes see an open circuit
        (:data:`OPEN_CIRCUIT_OHM` in parallel with :data:`OPEN_CIRCUIT_F`), no sample is
        marked measured and the reading is logged in :attr:`misplaced`.

        Args:
            freq_hz: Test frequency, Hz (>= 0; 0 gives the DC resistance).
            station: The meter's station (None: wherever the sample is).

        Returns:
            Z in ohm (with 0.5 % relative complex noise).
        """
        with self.lock:
            self.sync()
            omega = 2 * np.pi * freq_hz
            found = self._sample_for_action(
                station,
                action="impedance",
                amount=1.0,
                text="impedance meter at station {station!r} measured an open circuit"
                " {total:.0f} time(s): the sample is {where}",
            )
            if found is None:
                z_open = OPEN_CIRCUIT_OHM / (1 + 1j * omega * OPEN_CIRCUIT_OHM * OPEN_CIRCUIT_F)
                noise = 0.005 * complex(self.rng.standard_normal(), self.rng.standard_normal())
                return complex(z_open * (1 + noise))
            sample = found
            r_int = self._r_int(sample) / ELECTRODE_AREA_CM2
            zarc = r_int / (1 + (1j * omega * r_int * sample.capacitance_f) ** CPE_EXPONENT)
            z = sample.series_resistance_ohm + zarc
            noise = 0.005 * complex(self.rng.standard_normal(), self.rng.standard_normal())
            if not sample.measured:
                sample.events.append((self._now(), "measured"))
            sample.measured = True
            return complex(z * (1 + noise))

    def mass_on_balance_g(self, *, station: str | None = None) -> float:
        """Mass on the balance pan, g: the current substrate plus its liquid (1 g/mL).

        Args:
            station: The balance's station (None: wherever the sample is). When the sample is
                not there the pan is empty: 0 g (the balance adds its own noise), logged in
                :attr:`misplaced`.
        """
        with self.lock:
            self.sync()
            sample = self._sample_for_action(
                station,
                action="mass",
                amount=1.0,
                text="balance at station {station!r} weighed an empty pan {total:.0f} time(s):"
                " the sample is {where}",
            )
            if sample is None:
                return 0.0
            return sample.substrate_mass_g + sample.dispensed_volume_ul() * LIQUID_DENSITY_G_PER_UL

    def last_mass_change(self, *, station: str | None = None) -> float:
        """Simulated time of the last change of the mass on the balance, s.

        Args:
            station: The balance's station: the last time the sample arrived there, left it
                or received liquid there (None, or no stations defined: the last change
                anywhere).
        """
        with self.lock:
            self.sync()
            if station is None or not self.stations:
                return self._last_mass_change
            return self._load_changed.get(station, 0.0)
