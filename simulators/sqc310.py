"""INFICON SQC-310 deposition controller simulator (quartz-crystal monitor), from ``sqc-310.md``.

Framing (sheet §2):
    Command ``'!' LEN MSG CRC1 CRC2`` with ``LEN = len(MSG) + 34``; reply ``'!' LEN STATUS MSG
    CRC1 CRC2`` with ``LEN = len(STATUS + MSG) + 35``. The 14-bit CRC (:func:`crc14`) covers
    ``LEN`` and ``MSG`` (``LEN``, ``STATUS``, ``MSG`` in a reply), not ``'!'``; two NUL bytes in
    place of the CRC skip the check. A reply with an answer puts one space between status and
    answer (``A 0.00``, as the sheet's examples); a reply without one is the status alone
    (``!$A`` 53 151, as in the manual's example of a set). Bytes arrive in arbitrary chunks
    (:meth:`Sqc310Sim.feed` keeps a buffer and answers every complete packet). Bytes before a
    ``'!'`` are discarded, and a ``'!'`` anywhere in a packet restarts the packet there (the
    manual: any sync character resets the packet; ``LEN`` and the CRC bytes are >= 34, so
    ``'!'`` only occurs as sync), so a truncated command never swallows the next one.

Decisions where the sheet is silent:
    * A command whose CRC does not match is discarded without a reply (the unit cannot trust
      any of its bytes, so it cannot say what it refused; the host times out and may resend).
      :attr:`Sqc310Sim.crc_errors` counts them.
    * Power-up: the first successful reply carries status ``B`` instead of ``A``; a refusal
      (``C``/``D``/``E``) keeps the reset pending, so the host learns of it with its first
      good answer. :meth:`Sqc310Sim.power_cycle` resets the unit again.
    * ``C1? 1`` is read as process 1, parameter 1 (its name): the only process is 1 (named
      ``process_name``), with ``layers`` layers (1 by default).
    * Only the films of ``films`` are set up: another film number (1-99) answers ``D``.
    * ``V`` is ``phase elapsed_s process layer``: whole seconds in the current phase, process
      1, the active layer (the running one, else the next to run).
    * ``S`` takes the sheet's get form ``S o?`` and the manual's ``S? o``; power travels as an
      integer, % x 10 (0-1000), both ways. ``S o v`` puts output ``o`` in manual mode at
      ``v``/10 % (and, as the manual says, the other outputs in manual at their current
      power); ``S0`` puts every output back under PID control.
    * Sensors and outputs are numbered 1-4: sensor 1 is the monitor crystal and every film's
      source is on output 1 (a multi-pocket source); sensors and outputs 2-4 read 0.
    * Numbers that are not in range or not integers answer ``D``, as do wrong parameter
      counts and forms the simulator does not have (set forms of ``A`` and ``C``).

Implemented commands:
    ``@`` (``model``); ``A1 f?`` (film name); ``A2 f? p ...`` (param 4 material number, 6
    tooling %, integer; answered ``p,v`` pairs separated by a space, in the order asked);
    ``C1? 1`` (process name); ``D l? p ...`` (2 final thickness, integer Å = kÅ x 1000; 7 film)
    and ``D l p,v ...`` (one or more pairs; all checked before any is applied; ``D1? 2 7`` and
    ``D 1? 2 7`` both work); ``U0`` start the active layer, ``U1`` stop (shutter closes at once,
    back to layer 1), ``U5`` force final thickness (the layer ends now and counts as done),
    ``U32`` zero the thickness reading; ``V``; ``L s``/``M o`` rate Å/s (``1.00``);
    ``N s``/``O o`` thickness kÅ (``0.050``); ``P s`` crystal frequency Hz (``5987654.32``);
    ``S o?``, ``S? o``, ``S o v``, ``S0``. The space between letter and number is optional
    (``M1`` as in the golden packets, ``L 1`` as in the sheet's table).

Refused, as the sheet says the unit does:
    ``C`` unknown command letter or sub-command (``A3``, ``U7``, lower case...) and non-ASCII
    text; ``D`` bad data (out of range, not an integer, unknown parameter, unknown layer or
    film, wrong count); ``E`` ``U0`` and ``D l p,v`` while a layer runs (phases 1-13, and the
    idle ramp 22 and crystal fail 24 that end it), ``U5`` when none runs (stopped, idle ramp,
    halted on a fault).

Run state and physics (simulated time; the world calls :meth:`Sqc310Sim.advance`):
    ``U0`` runs the active layer: 1 crystal verify (1 s), 2 initialise layer (1 s; zeroes the
    thickness reading), 7/8/9/10 ramp 1, soak 1, ramp 2, soak 2 (``conditioning_s`` in all,
    a quarter each), 12 shutter delay (``shutter_delay_s``), 13 deposit with the shutter open
    until the reading reaches the final thickness, 22 idle ramp (``idle_ramp_s``; the shutter
    is closed), 0 stopped; the next layer (wrapping to 1 after the last) becomes active. At
    defaults a 5 nm layer at 1 Å/s is 1 + 1 + 20 + 2 = 24 s of preparation, ~50 s of deposit
    and 2 s of idle ramp: the shutter closes at ~74 s and phase 0 comes at ~76 s.

    Deposit: the PID holds the measured rate at the film's set point (``rates_a_s``, 1 Å/s by
    default) with ``rate_noise`` (3 %) relative noise, a new value every simulated second. The
    reading (``N``/``O``) is the crystal's thickness scaled by the film's set tooling, as on
    the real controller; the substrate gets the crystal's thickness times the *true* tooling,
    ``tooling x (1 + tooling_error)``: with a tooling error the reading shows the final
    thickness while the sample gets ``final x (1 + tooling_error)``. ``tooling_error`` is one
    relative error for every film (a float) or per film (a mapping by number or material);
    it is fixed, not drawn. When the shutter closes (layer done, ``U1``, ``U5``, a fault,
    :meth:`Sqc310Sim.power_cycle`) whatever landed goes to :meth:`SimulatedWorld.deposit`
    (material of the film's source, nm on the substrate, mean substrate rate, ``station``).
    In manual power mode the deposit rate scales with the output power relative to the PID's
    deposit power (``30 % + 10 % per Å/s`` of set rate).

    Crystal: a fresh crystal oscillates near 6 MHz; ``P`` drops with the areal mass loaded
    (Sauerbrey, film densities from :data:`MATERIALS`). Every Å on the crystal uses up
    ``crystal_life_a`` (100 kÅ); when it is used up mid-layer the layer ends in 24 crystal
    fail (1 s, shutter closed) then 33 crystal fail, halted. The crystal stays dead (``P``
    reads 0.00, every ``U0`` goes 1 → 24 → 33) until :meth:`Sqc310Sim.replace_crystal`.

Injected faults:
    Every :mod:`simulators.faults` kind applies to the reply packets: ``no_reply`` (the
    command is carried out, its reply dropped), ``garbled`` (1-3 bytes replaced: a CRC error
    for the host), ``truncated`` (packet cut short), ``busy`` (status ``C`` or ``D``, even odds,
    instead of carrying out the command), ``disconnect`` (the pty goes deaf and mute), ``drift``
    (the crystal's calibration drifts: readings and the end point scale by ``1 + drift`` while
    the substrate gets the true thickness). Device faults, each logged in the fault log when it
    happens:
    * ``crystal_fail_at_a``: once, the first layer whose reading reaches this many Å fails
      there (24 → 33); the crystal comes back at the next ``U0``/``U1`` (an intermittent
      crystal). ``crystal_fail_prob``: the same for each layer with this probability, at a
      uniform 20-80 % of the final thickness. Logged as ``crystal_fail`` (as is a crystal
      whose life runs out).
    * ``source_timeout_prob``: per layer, the source stops evaporating at a uniform 20-80 % of
      the final thickness; after 5 s without rate the layer halts in 28 source feedback
      time-out (shutter closed). Logged as ``source_timeout``.
    Phases 24, 28 and 33 leave the layer short of its thickness; ``V`` shows them until the
    next ``U0`` or ``U1``. Phases 14, 25, 27, 29 and 30 never occur.

``python -m simulators.sqc310`` serves one unit on a new pty (``--films 1=LiF,2=Li3N``) until
Ctrl-C; ``--encode MSG`` prints the command packet for ``MSG`` and exits.
"""

from __future__ import annotations

import argparse
import re
import signal
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import FrameType

import numpy as np

from simulators._base import DeviceSim
from simulators.faults import Disconnect, FaultConfig, FaultInjector
from simulators.transport import PtyServer
from simulators.world import SimulatedWorld

SYNC = 0x21
"""``'!'``, the sync character."""

COMMAND_LEN_OFFSET = 34
REPLY_LEN_OFFSET = 35
NO_CRC = b"\x00\x00"
"""Two NULs in place of the CRC: the unit does not check it."""

MAX_FILMS = 99
MAX_THICKNESS_A = 999_999
"""Largest final thickness, Å (999.999 kÅ)."""
CHANNELS = range(1, 5)
"""Sensor and output numbers."""
TOOLING_RANGE_PCT = (10.0, 399.0)

STOPPED, VERIFY, INIT, RAMP1, SOAK1, RAMP2, SOAK2 = 0, 1, 2, 7, 8, 9, 10
SHUTTER_DELAY, DEPOSIT, IDLE_RAMP = 12, 13, 22
CRYSTAL_FAIL, SOURCE_TIMEOUT, CRYSTAL_HALTED = 24, 28, 33
RUNNING = frozenset({VERIFY, INIT, RAMP1, SOAK1, RAMP2, SOAK2, SHUTTER_DELAY, DEPOSIT, 14})
"""Phases in which a layer runs (``U5`` can end it)."""
BUSY = RUNNING | {IDLE_RAMP, CRYSTAL_FAIL}
"""Phases in which ``U0`` and layer changes answer ``E`` (a layer runs or is winding down)."""
NEXT_PHASE = {
    VERIFY: INIT,
    INIT: RAMP1,
    RAMP1: SOAK1,
    SOAK1: RAMP2,
    RAMP2: SOAK2,
    SOAK2: SHUTTER_DELAY,
    SHUTTER_DELAY: DEPOSIT,
    IDLE_RAMP: STOPPED,
    CRYSTAL_FAIL: CRYSTAL_HALTED,
}

CRYSTAL_VERIFY_S = 1.0
INIT_LAYER_S = 1.0
CRYSTAL_FAIL_S = 1.0
SOURCE_TIMEOUT_S = 5.0
"""Time without rate before a source feedback time-out, simulated s."""
RATE_STEP_S = 1.0
"""The deposit rate's noise takes a new value every this many simulated s."""

CRYSTAL_F0_HZ = 6.0e6
QUARTZ_ACOUSTIC_IMPEDANCE = 8.834e5
"""sqrt(density x shear modulus) of AT-cut quartz, g/(cm² s)."""
SAUERBREY_HZ_CM2_PER_G = 2 * CRYSTAL_F0_HZ**2 / QUARTZ_ACOUSTIC_IMPEDANCE

MATERIALS: dict[str, tuple[int, float]] = {
    "Ag": (1, 10.50),
    "Al": (2, 2.70),
    "Al2O3": (3, 3.97),
    "Au": (4, 19.30),
    "Cr": (5, 7.20),
    "Cu": (6, 8.93),
    "Ge": (7, 5.35),
    "In": (8, 7.30),
    "Li": (9, 0.534),
    "Li2O": (10, 2.01),
    "Li3N": (11, 1.27),
    "LiF": (12, 2.64),
    "Li3PO4": (13, 2.54),
    "LiPON": (14, 2.50),
    "MgO": (15, 3.58),
    "Ni": (16, 8.91),
    "Pt": (17, 21.45),
    "Si": (18, 2.32),
    "SiO2": (19, 2.65),
    "Ti": (20, 4.50),
    "ZnO": (21, 5.61),
    "ZrO2": (22, 5.68),
    "Sn": (23, 7.30),
    "Mg": (24, 1.74),
    "Li2CO3": (25, 2.11),
    "AlF3": (26, 3.10),
    "Li2S": (27, 1.66),
    "LiCl": (28, 2.07),
    "AlN": (29, 3.26),
    "TiO2": (30, 4.23),
    "SnO2": (31, 6.95),
    "LiNbO3": (32, 4.64),
    "C": (33, 2.25),
    "Zn": (34, 7.14),
    "LiAl": (35, 1.74),
}
"""The simulated unit's material table: name → (material number, density g/cm³)."""

USER_MATERIAL = (99, 2.5)
"""Material number and density of a material missing from :data:`MATERIALS`."""


# -- packets ---------------------------------------------------------------------------------
def crc14(data: bytes) -> int:
    """The sheet's 14-bit CRC of ``data`` (``LEN`` and ``MSG``, or ``LEN STATUS MSG``)."""
    crc = 0x3FFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            carry = crc & 1
            crc >>= 1
            if carry:
                crc ^= 0x2001
    return crc & 0x3FFF


def crc_bytes(data: bytes) -> bytes:
    """``CRC1 CRC2`` of ``data``: two 7-bit halves, each plus 34."""
    crc = crc14(data)
    return bytes([(crc & 0x7F) + 34, ((crc >> 7) & 0x7F) + 34])


def command_packet(msg: str | bytes, *, crc: bool = True) -> bytes:
    """A host command packet for ``msg`` (``crc=False``: NUL NUL, unchecked)."""
    body = msg.encode("ascii") if isinstance(msg, str) else msg
    head = bytes([len(body) + COMMAND_LEN_OFFSET]) + body
    return bytes([SYNC]) + head + (crc_bytes(head) if crc else NO_CRC)


def reply_packet(status: str, text: str = "") -> bytes:
    """A reply packet: ``status``, then a space and ``text`` when there is an answer."""
    msg = (status + (" " + text if text else "")).encode("ascii")
    head = bytes([len(msg) + REPLY_LEN_OFFSET]) + msg
    return bytes([SYNC]) + head + crc_bytes(head)


def parse_reply(packet: bytes) -> tuple[str, str]:
    """``(status, answer)`` of one complete reply packet (answer stripped).

    Raises:
        ValueError: For a bad sync, length or CRC.
    """
    if len(packet) < 5 or packet[0] != SYNC:
        raise ValueError(f"not a reply packet: {packet!r}")
    n = packet[1] - REPLY_LEN_OFFSET
    if n < 1 or len(packet) != n + 4:
        raise ValueError(f"bad reply length: {packet!r}")
    if crc_bytes(packet[1:-2]) != packet[-2:]:
        raise ValueError(f"bad reply CRC: {packet!r}")
    msg = packet[2:-2].decode("ascii")
    return msg[0], msg[1:].strip()


class _Refused(Exception):
    """A refusal: the reply status ``C``, ``D`` or ``E``."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


@dataclass
class Film:
    """One film set up on the controller.

    Attributes:
        number: Film number, 1-99.
        name: The film's name (``A1``): the material, as set up.
        material: What is really loaded in the film's source.
        material_number: Number in :data:`MATERIALS` (``A2`` param 4).
        density_g_cm3: Density of the material, g/cm³.
        tooling_pct: Tooling the controller applies, % (``A2`` param 6).
        true_tooling_pct: Real ratio of substrate to crystal thickness, %.
        rate_a_s: Rate set point, Å/s.
    """

    number: int
    name: str
    material: str
    material_number: int
    density_g_cm3: float
    tooling_pct: int
    true_tooling_pct: float
    rate_a_s: float

    @property
    def deposit_power_pct(self) -> float:
        """Output power the PID settles at for the set rate, %."""
        return min(90.0, 30.0 + 10.0 * self.rate_a_s)


@dataclass
class Layer:
    """One layer of the process: final thickness (Å) and film."""

    thickness_a: int
    film: int


def _films_for(key: int | str, films: Mapping[int, Film | str]) -> list[int]:
    """Film numbers a settings key names: a number (int or digits) or a material name."""
    if isinstance(key, int) or (isinstance(key, str) and key.strip().isdigit()):
        number = int(key)
        if number not in films:
            raise ValueError(f"no film {number} is set up (films: {sorted(films)})")
        return [number]
    matches = [
        n for n, f in films.items() if (f.material if isinstance(f, Film) else f) == str(key)
    ]
    if not matches:
        raise ValueError(f"no film holds {key!r} (films: {dict(films)})")
    return matches


def _per_film(
    name: str, values: float | Mapping[int | str, float] | None, films: Mapping[int, str]
) -> dict[int, float]:
    """Per-film values from one number for all films, or a mapping by number or material."""
    if values is None:
        return {}
    if isinstance(values, Mapping):
        out: dict[int, float] = {}
        for key, value in values.items():
            for number in _films_for(key, films):
                out[number] = float(value)
        return out
    if isinstance(values, int | float):
        return dict.fromkeys(films, float(values))
    raise ValueError(f"{name} must be a number or a mapping, got {values!r}")


class Sqc310Sim(DeviceSim):
    """Simulated INFICON SQC-310 deposition controller with its sources and monitor crystal.

    Args:
        world: Shared simulated world.
        faults: Fault settings or injector (applied to reply packets).
        seed: Seed of the unit's own generator (rate noise, crystal); derived from the
            world's seed and the films when None.
        films: Film number (1-99; int or digit-string keys) → material loaded in its source
            and set up as the film's name; ``{1: "LiF"}`` when None.
        rates_a_s: Rate set points, Å/s, by film number or material (default 1.0).
        tooling_pct: Tooling the controller applies, %, by film number or material (default
            100; 10-399).
        tooling_error: Relative error of the set tooling against the real geometry (the
            substrate gets ``1 + tooling_error`` times what the reading shows): one number for
            every film or a mapping by film number or material.
        crystal_life_a: Å of film a crystal takes before it fails.
        conditioning_s: Ramps and soaks before the shutter opens, simulated s (in all).
        shutter_delay_s: Shutter delay (phase 12), simulated s.
        idle_ramp_s: Idle ramp after the layer (phase 22), simulated s.
        rate_noise: Relative standard deviation of the deposit rate about its set point.
        layers: Number of layers of process 1.
        model: ``@`` reply.
        process_name: Name of process 1 (``C1? 1``).
        crystal_fail_at_a: Inject one crystal failure when a layer's reading reaches this, Å.
        crystal_fail_prob: Probability per layer of a crystal failure mid-layer.
        source_timeout_prob: Probability per layer of a source feedback time-out mid-layer.
        station: Deck station of the deposition chamber (None: it coats the sample wherever
            it is).
    """

    def __init__(
        self,
        world: SimulatedWorld,
        *,
        faults: FaultConfig | FaultInjector | None = None,
        seed: int | None = None,
        films: Mapping[int | str, str] | None = None,
        rates_a_s: Mapping[int | str, float] | None = None,
        tooling_pct: Mapping[int | str, float] | None = None,
        tooling_error: float | Mapping[int | str, float] = 0.0,
        crystal_life_a: float = 100_000.0,
        conditioning_s: float = 20.0,
        shutter_delay_s: float = 2.0,
        idle_ramp_s: float = 2.0,
        rate_noise: float = 0.03,
        layers: int = 1,
        model: str = "SQC-310 Ver 6.01",
        process_name: str = "Interlayer",
        crystal_fail_at_a: float | None = None,
        crystal_fail_prob: float = 0.0,
        source_timeout_prob: float = 0.0,
        station: str | None = None,
    ) -> None:
        loaded: dict[int, str] = {}
        for key, material in (films if films is not None else {1: "LiF"}).items():
            number = int(key)
            if not 1 <= number <= MAX_FILMS:
                raise ValueError(f"film numbers are 1-{MAX_FILMS}, got {key!r}")
            if not str(material).strip():
                raise ValueError(f"film {number} needs a material name")
            loaded[number] = str(material).strip()
        if not loaded:
            raise ValueError("at least one film must be set up")
        super().__init__(
            world,
            faults=faults,
            seed=seed,
            seed_parts=(model, *sorted(loaded.items())),
            station=station,
        )
        for name, value in (
            ("conditioning_s", conditioning_s),
            ("shutter_delay_s", shutter_delay_s),
            ("idle_ramp_s", idle_ramp_s),
            ("rate_noise", rate_noise),
        ):
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if not crystal_life_a > 0:
            raise ValueError(f"crystal_life_a must be > 0, got {crystal_life_a}")
        if not 1 <= layers <= 999:
            raise ValueError(f"layers must be 1-999, got {layers}")
        for name, value in (
            ("crystal_fail_prob", crystal_fail_prob),
            ("source_timeout_prob", source_timeout_prob),
        ):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        rates = _per_film("rates_a_s", rates_a_s, loaded)
        toolings = _per_film("tooling_pct", tooling_pct, loaded)
        errors = _per_film("tooling_error", tooling_error, loaded)
        self.films: dict[int, Film] = {}
        for number, material in sorted(loaded.items()):
            mat_number, density = MATERIALS.get(material, USER_MATERIAL)
            rate = rates.get(number, 1.0)
            tooling = toolings.get(number, 100.0)
            if not rate > 0:
                raise ValueError(f"film {number}: rate must be > 0 A/s, got {rate}")
            if not TOOLING_RANGE_PCT[0] <= tooling <= TOOLING_RANGE_PCT[1]:
                raise ValueError(f"film {number}: tooling must be 10-399 %, got {tooling}")
            error = errors.get(number, 0.0)
            if not error > -1.0:
                raise ValueError(f"film {number}: tooling_error must be > -1, got {error}")
            self.films[number] = Film(
                number=number,
                name=material,
                material=material,
                material_number=mat_number,
                density_g_cm3=density,
                tooling_pct=round(tooling),
                true_tooling_pct=round(tooling) * (1.0 + error),
                rate_a_s=rate,
            )
        numbers = sorted(self.films)
        self.layers = [Layer(0, numbers[i % len(numbers)]) for i in range(layers)]
        self.model = model
        self.process_name = process_name
        self.crystal_life_a = float(crystal_life_a)
        self.rate_noise = float(rate_noise)
        self.crystal_fail_at_a = crystal_fail_at_a
        self.crystal_fail_prob = float(crystal_fail_prob)
        self.source_timeout_prob = float(source_timeout_prob)
        quarter = conditioning_s / 4.0
        self.durations: dict[int, float] = {
            VERIFY: CRYSTAL_VERIFY_S,
            INIT: INIT_LAYER_S,
            RAMP1: quarter,
            SOAK1: quarter,
            RAMP2: quarter,
            SOAK2: quarter,
            SHUTTER_DELAY: float(shutter_delay_s),
            IDLE_RAMP: float(idle_ramp_s),
            CRYSTAL_FAIL: CRYSTAL_FAIL_S,
        }
        # Fault decisions have their own generator, so they leave the rate noise unchanged.
        self._fault_rng = np.random.default_rng(int(self.rng.integers(2**63)))
        self._crystal_fail_pending = crystal_fail_at_a is not None
        self._buffer = bytearray()
        self.crc_errors = 0
        """Command packets discarded for a wrong CRC."""
        self.phase_log: list[tuple[float, int]] = []
        """``(sim_time_s, phase)`` of every phase entered."""
        self.deposits: list[tuple[float, str, float]] = []
        """``(sim_time_s, material, nm on the substrate)`` of every stretch with the shutter
        open that put material on the sample."""
        self._in_advance = False
        self.replace_crystal()
        self._power_on(world.sim_time())
        self._attach()

    # -- state ------------------------------------------------------------------------------
    def _power_on(self, now: float) -> None:
        self.phase = STOPPED
        self._phase_start = now
        self._t = now
        self.active_layer = 1
        self._reading_a = 0.0
        self._shutter_open = False
        self._landed_a = 0.0
        self._deposit_s = 0.0
        self._step_end = now
        self._step_gain = 1.0
        self._thresholds: dict[str, float] = {}
        self._source_dead_at: float | None = None
        self._crystal_failed = False
        self.manual_power: dict[int, float | None] = dict.fromkeys(CHANNELS)
        self._reset_pending = True

    def replace_crystal(self) -> None:
        """Put in a fresh crystal (an operator's job: there is no command for it)."""
        with self.world.lock:
            self.crystal_used_a = 0.0
            self._crystal_mass_g_cm2 = 0.0
            self._crystal_failed = False
            self.crystal_f0_hz = CRYSTAL_F0_HZ - float(self.rng.uniform(2e3, 8e3))

    def power_cycle(self) -> None:
        """Switch the unit off and on: a running layer stops (what landed is recorded), the
        settings are kept, and the next good reply carries status ``B``."""
        with self.world.lock:
            now = self.world.sync()
            self._enter(STOPPED, now)
            self._buffer.clear()
            self._power_on(now)

    @property
    def crystal_dead(self) -> bool:
        """True once the crystal's life is used up."""
        return self.crystal_used_a >= self.crystal_life_a

    def _film(self) -> Film:
        return self.films[self.layers[self.active_layer - 1].film]

    # -- physics ----------------------------------------------------------------------------
    def advance(self, now: float) -> None:
        """Run the layer up to simulated time ``now`` (s)."""
        if self._in_advance:
            return
        self._in_advance = True
        try:
            while True:
                if self.phase == DEPOSIT:
                    if not self._deposit_until(now):
                        break
                    continue
                duration = self.durations.get(self.phase)
                if duration is None or self._phase_start + duration > now:
                    break
                self._next_phase(self._phase_start + duration)
            self._t = max(self._t, now)
        finally:
            self._in_advance = False

    def _next_phase(self, t: float) -> None:
        if self.phase == VERIFY and (self.crystal_dead or self._crystal_failed):
            self.faults.record("crystal_fail", f"layer {self.active_layer}: crystal verify failed")
            self._enter(CRYSTAL_FAIL, t)
            return
        if self.phase == IDLE_RAMP:
            self.active_layer = self.active_layer % len(self.layers) + 1
        self._enter(NEXT_PHASE[self.phase], t)

    def _enter(self, phase: int, t: float) -> None:
        """Enter ``phase`` at ``t``; leaving the deposit closes the shutter."""
        self.phase = phase
        self._phase_start = t
        self.phase_log.append((t, phase))
        if phase == INIT:
            self._reading_a = 0.0
        if phase == DEPOSIT:
            self._t = self._step_end = t
            self._shutter_open = True
            self._landed_a = self._deposit_s = 0.0
        elif self._shutter_open:
            self._close_shutter(t)

    def _close_shutter(self, t: float) -> None:
        self._shutter_open = False
        self._source_dead_at = None
        landed, seconds = self._landed_a, self._deposit_s
        self._landed_a = self._deposit_s = 0.0
        if landed <= 0:
            return
        material = self._film().material
        self.deposits.append((t, material, landed / 10.0))
        rate = landed / seconds if seconds > 0 else 0.0
        self.world.deposit(material, landed / 10.0, rate, station=self.station)

    def _measured_rate(self) -> float:
        """Rate the crystal reads now, Å/s (0 unless depositing)."""
        if self.phase != DEPOSIT or self._source_dead_at is not None:
            return 0.0
        film = self._film()
        rate = film.rate_a_s * self._step_gain
        manual = self.manual_power[1]
        if manual is not None:
            rate *= manual / film.deposit_power_pct
        return rate

    def _deposit_until(self, now: float) -> bool:
        """Deposit up to ``now``; True when the deposit ended (at a time <= ``now``)."""
        while self._t < now:
            if self._source_dead_at is not None:
                end = self._source_dead_at + SOURCE_TIMEOUT_S
                if end > now:
                    self._t = now
                    return False
                self._t = end
                self.faults.record(
                    "source_timeout",
                    f"layer {self.active_layer}: no rate for {SOURCE_TIMEOUT_S:.0f} s at "
                    f"{self._reading_a:.1f} A",
                )
                self._enter(SOURCE_TIMEOUT, end)
                return True
            if self._t >= self._step_end:
                gain = 1.0 + self.rate_noise * float(self.rng.standard_normal())
                self._step_gain = max(0.0, gain)
                self._step_end += RATE_STEP_S
            rate = self._measured_rate()
            stop = min(now, self._step_end)
            hit = self._next_threshold()
            if rate > 0 and hit is not None:
                kind, level = hit
                t_hit = self._t + max(0.0, level - self._reading_a) / rate
                if t_hit <= stop:
                    self._integrate(t_hit - self._t, rate)
                    self._t = t_hit
                    if self._threshold(kind, t_hit):
                        return True
                    continue
            self._integrate(stop - self._t, rate)
            self._t = stop
        # A layer of zero thickness ends as soon as the shutter opens.
        hit = self._next_threshold()
        if hit is not None and hit[1] <= self._reading_a:
            return self._threshold(hit[0], self._t)
        return False

    def _next_threshold(self) -> tuple[str, float] | None:
        """The first reading (Å) at which something happens: ``(kind, reading)``."""
        drift = 1.0 + self.faults.drift
        film = self._film()
        life_left = max(0.0, self.crystal_life_a - self.crystal_used_a)
        levels = dict(self._thresholds)
        levels["final"] = float(self.layers[self.active_layer - 1].thickness_a)
        levels["life"] = self._reading_a + life_left * film.tooling_pct / 100.0 * drift
        return min(levels.items(), key=lambda item: item[1])

    def _threshold(self, kind: str, t: float) -> bool:
        """Handle the reading reaching a threshold at ``t``; True when the deposit ended."""
        if kind == "source":
            del self._thresholds["source"]
            self._source_dead_at = t
            return False
        if kind == "final":
            self._enter(IDLE_RAMP, t)
            return True
        if kind in ("crystal", "crystal_once"):
            self._crystal_failed = True
            self._crystal_fail_pending = self._crystal_fail_pending and kind != "crystal_once"
            detail = "injected"
        else:
            detail = f"crystal life of {self.crystal_life_a:.0f} A used up"
        self.faults.record(
            "crystal_fail", f"layer {self.active_layer} at {self._reading_a:.1f} A: {detail}"
        )
        self._enter(CRYSTAL_FAIL, t)
        return True

    def _integrate(self, dt: float, rate: float) -> None:
        if dt <= 0:
            return
        film = self._film()
        measured = rate * dt
        self._reading_a += measured
        crystal = measured / (1.0 + self.faults.drift) * 100.0 / film.tooling_pct
        self.crystal_used_a += crystal
        self._crystal_mass_g_cm2 += crystal * 1e-8 * film.density_g_cm3
        self._landed_a += crystal * film.true_tooling_pct / 100.0
        self._deposit_s += dt

    def _power_pct(self, output: int, now: float) -> float:
        """Power of ``output`` now, %."""
        manual = self.manual_power[output]
        if manual is not None:
            return manual
        if output != 1:
            return 0.0
        film = self._film()
        deposit = film.deposit_power_pct
        soak1, soak2 = 0.4 * deposit, 0.9 * deposit
        duration = self.durations.get(self.phase, 0.0)
        frac = min(1.0, (now - self._phase_start) / duration) if duration > 0 else 1.0
        return {
            RAMP1: soak1 * frac,
            SOAK1: soak1,
            RAMP2: soak1 + (soak2 - soak1) * frac,
            SOAK2: soak2,
            SHUTTER_DELAY: deposit,
            DEPOSIT: deposit * (self._step_gain if self._source_dead_at is None else 1.0),
            IDLE_RAMP: deposit * (1.0 - frac),
        }.get(self.phase, 0.0)

    def _frequency_hz(self) -> float:
        if self.crystal_dead or self._crystal_failed:
            return 0.0
        return self.crystal_f0_hz - SAUERBREY_HZ_CM2_PER_G * self._crystal_mass_g_cm2

    def poll(self) -> bytes:
        """Physics tick; the unit never talks unprompted."""
        with self.world.lock:
            self.world.sync()
        return b""

    # -- byte stream ------------------------------------------------------------------------
    def feed(self, data: bytes) -> bytes | Disconnect | None:
        """Consume bytes from the host; return the reply packets of every complete command."""
        out = bytearray()
        with self.world.lock:
            self._buffer += data
            while (packet := self._next_packet()) is not None:
                msg, crc_ok = packet
                if not crc_ok:
                    self.crc_errors += 1
                    continue
                result = self._exchange(msg)
                if isinstance(result, Disconnect):
                    self._buffer.clear()
                    return Disconnect(result.seconds, bytes(out) + result.before)
                if result:
                    out += result
        return bytes(out)

    def _next_packet(self) -> tuple[bytes, bool] | None:
        """Next complete command as ``(MSG, crc_ok)``, or None until more bytes come."""
        buf = self._buffer
        while True:
            start = buf.find(SYNC)
            if start < 0:
                buf.clear()
                return None
            del buf[:start]
            if len(buf) < 2:
                return None
            if buf[1] < COMMAND_LEN_OFFSET:  # not a length (a second '!' included)
                del buf[:1]
                continue
            total = buf[1] - COMMAND_LEN_OFFSET + 4
            restart = buf.find(SYNC, 1, total)
            if restart > 0:  # a sync character resets the packet
                del buf[:restart]
                continue
            if len(buf) < total:
                return None
            packet = bytes(buf[:total])
            del buf[:total]
            head, crc = packet[1:-2], packet[-2:]
            return packet[2:-2], crc == NO_CRC or crc == crc_bytes(head)

    def _exchange(self, msg: bytes) -> bytes | Disconnect | None:
        now = self.world.sync()
        kind = self.faults.draw()
        if kind == "busy":
            status = "C" if self.faults.rng.random() < 0.5 else "D"
            return self.faults.transform(kind, reply_packet(status))
        try:
            text = self._execute(msg.decode("ascii").strip(), now)
        except UnicodeDecodeError:
            status, text = "C", ""
        except _Refused as refused:
            status, text = refused.status, ""
        else:
            status = "B" if self._reset_pending else "A"
            self._reset_pending = False
        return self.faults.transform(kind, reply_packet(status, text))

    # -- commands ---------------------------------------------------------------------------
    def _execute(self, msg: str, now: float) -> str:
        if not msg:
            raise _Refused("C")
        handler = {
            "@": self._cmd_model,
            "A": self._cmd_film,
            "C": self._cmd_process,
            "D": self._cmd_layer,
            "U": self._cmd_run,
            "V": self._cmd_state,
            "L": self._cmd_reading,
            "M": self._cmd_reading,
            "N": self._cmd_reading,
            "O": self._cmd_reading,
            "P": self._cmd_reading,
            "S": self._cmd_power,
        }.get(msg[0])
        if handler is None:
            raise _Refused("C")
        return handler(msg, now)

    def _cmd_model(self, msg: str, now: float) -> str:
        if msg != "@":
            raise _Refused("D")
        return self.model

    def _film_number(self, text: str) -> Film:
        number = int(text)
        if number not in self.films:
            raise _Refused("D")
        return self.films[number]

    def _cmd_film(self, msg: str, now: float) -> str:
        m = re.fullmatch(r"A(\d+)(.*)", msg)
        if m is None:
            raise _Refused("C")
        sub, rest = int(m.group(1)), m.group(2).strip()
        if sub not in (1, 2):
            raise _Refused("C")
        q = re.fullmatch(r"(\d+)\?((?:\s+\d+)*)", rest)
        if q is None:
            raise _Refused("D")
        film = self._film_number(q.group(1))
        params = [int(p) for p in q.group(2).split()]
        if sub == 1:
            if params:
                raise _Refused("D")
            return film.name
        values = {4: film.material_number, 6: film.tooling_pct}
        if not params or any(p not in values for p in params):
            raise _Refused("D")
        return " ".join(f"{p},{values[p]}" for p in params)

    def _cmd_process(self, msg: str, now: float) -> str:
        m = re.fullmatch(r"C(\d+)\?\s*(\d+)", msg)
        if m is None:
            raise _Refused("D")
        if (int(m.group(1)), int(m.group(2))) != (1, 1):
            raise _Refused("D")
        return self.process_name

    def _layer(self, text: str) -> Layer:
        number = int(text)
        if not 1 <= number <= len(self.layers):
            raise _Refused("D")
        return self.layers[number - 1]

    def _cmd_layer(self, msg: str, now: float) -> str:
        if q := re.fullmatch(r"D\s*(\d+)\?((?:\s+\d+)+)", msg):
            layer = self._layer(q.group(1))
            values = {2: layer.thickness_a, 7: layer.film}
            params = [int(p) for p in q.group(2).split()]
            if any(p not in values for p in params):
                raise _Refused("D")
            return " ".join(f"{p},{values[p]}" for p in params)
        s = re.fullmatch(r"D\s*(\d+)((?:\s+\d+,\S+)+)", msg)
        if s is None:
            raise _Refused("D")
        if self.phase in BUSY:
            raise _Refused("E")
        layer = self._layer(s.group(1))
        changes: dict[int, int] = {}
        for pair in s.group(2).split():
            param, _, value = pair.partition(",")
            if not re.fullmatch(r"-?\d+", value):
                raise _Refused("D")
            number = int(value)
            if int(param) == 2 and 0 <= number <= MAX_THICKNESS_A:
                changes[2] = number
            elif int(param) == 7 and number in self.films:
                changes[7] = number
            else:
                raise _Refused("D")
        layer.thickness_a = changes.get(2, layer.thickness_a)
        layer.film = changes.get(7, layer.film)
        return ""

    def _cmd_run(self, msg: str, now: float) -> str:
        m = re.fullmatch(r"U(\d+)(.*)", msg)
        if m is None:
            raise _Refused("C")
        sub = int(m.group(1))
        if sub not in (0, 1, 5, 32):
            raise _Refused("C")
        if m.group(2).strip():
            raise _Refused("D")
        if sub == 0:
            if self.phase in BUSY:
                raise _Refused("E")
            self._start_layer(now)
        elif sub == 1:
            if self.phase != STOPPED:
                self._enter(STOPPED, now)
            self.active_layer = 1
            self._crystal_failed = False
            self._thresholds.clear()
        elif sub == 5:
            if self.phase not in RUNNING:
                raise _Refused("E")
            self._enter(IDLE_RAMP, now)
        else:
            self._reading_a = 0.0
        return ""

    def _start_layer(self, now: float) -> None:
        self._crystal_failed = False
        self._source_dead_at = None
        final = float(self.layers[self.active_layer - 1].thickness_a)
        self._thresholds = {}
        if self._crystal_fail_pending and self.crystal_fail_at_a is not None:
            self._thresholds["crystal_once"] = float(self.crystal_fail_at_a)
        if self.crystal_fail_prob and self._fault_rng.random() < self.crystal_fail_prob:
            self._thresholds["crystal"] = final * float(self._fault_rng.uniform(0.2, 0.8))
        if self.source_timeout_prob and self._fault_rng.random() < self.source_timeout_prob:
            self._thresholds["source"] = final * float(self._fault_rng.uniform(0.2, 0.8))
        self._enter(VERIFY, now)

    def _cmd_state(self, msg: str, now: float) -> str:
        if msg != "V":
            raise _Refused("D")
        elapsed = int(max(0.0, now - self._phase_start))
        return f"{self.phase} {elapsed} 1 {self.active_layer}"

    def _cmd_reading(self, msg: str, now: float) -> str:
        m = re.fullmatch(r"[LMNOP]\s*(\d+)", msg)
        if m is None or int(m.group(1)) not in CHANNELS:
            raise _Refused("D")
        if int(m.group(1)) != 1:
            return "0.000" if msg[0] in "NO" else "0.00"
        if msg[0] in "LM":
            return f"{self._measured_rate():.2f}"
        if msg[0] in "NO":
            return f"{self._reading_a / 1000.0:.3f}"
        return f"{self._frequency_hz():.2f}"

    def _cmd_power(self, msg: str, now: float) -> str:
        if m := re.fullmatch(r"S\s*(\d+)\s*\?|S\s*\?\s*(\d+)", msg):
            output = int(m.group(1) or m.group(2))
            if output not in CHANNELS:
                raise _Refused("D")
            return f"{round(self._power_pct(output, now) * 10)}"
        if re.fullmatch(r"S\s*0", msg):
            self.manual_power = dict.fromkeys(CHANNELS)
            return ""
        m = re.fullmatch(r"S\s*(\d+)\s+(-?\d+)", msg)
        if m is None:
            raise _Refused("D")
        output, value = int(m.group(1)), int(m.group(2))
        if output not in CHANNELS or not 0 <= value <= 1000:
            raise _Refused("D")
        for other in CHANNELS:
            if self.manual_power[other] is None:
                self.manual_power[other] = self._power_pct(other, now)
        self.manual_power[output] = value / 10.0
        return ""


def main(argv: list[str] | None = None) -> int:
    """Serve one simulated SQC-310 on a new pty until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m simulators.sqc310", description=__doc__)
    parser.add_argument("--films", default="1=LiF", help="film=material,... (1=LiF,2=Li3N)")
    parser.add_argument("--time-scale", type=float, default=1.0, help="sim s per real s")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--faults-rate", type=float, default=0.0, help="fault probability")
    parser.add_argument("--encode", metavar="MSG", help="print the command packet and exit")
    args = parser.parse_args(argv)
    if args.encode is not None:
        print(repr(command_packet(args.encode)))
        return 0
    films: dict[int | str, str] = {}
    for item in args.films.split(","):
        number, _, material = item.partition("=")
        films[int(number)] = material
    world = SimulatedWorld(time_scale=args.time_scale, seed=args.seed)
    faults = FaultConfig(rate=args.faults_rate, seed=args.seed) if args.faults_rate else None
    sim = Sqc310Sim(world, films=films, faults=faults)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        with PtyServer(sim, name="sqc310") as server:
            print(f"sqc310 {server.path}", flush=True)
            print("simulated SQC-310 running; Ctrl-C to stop", flush=True)
            while not stop.wait(0.5):
                pass
    finally:
        sim.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
