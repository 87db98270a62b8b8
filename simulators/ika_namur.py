"""IKA hotplate/stirrer simulator (RCT digital, NAMUR protocol), from ``ika-namur.md``.

Framing: upper-case ASCII commands, parameters after at least one space, lines ended by CR LF;
bare LF, bare CR, spaces before CR and a space between CR and LF are all accepted (sheet §7).
Replies end with CR LF. The 8th bit of every received byte is ignored (7E1 on a pty arrives as
8-bit bytes). Lines longer than 80 characters are ignored.

Implemented commands:
    ``IN_NAME``; ``IN_PV_1`` (sample probe °C), ``IN_PV_2`` (plate °C), ``IN_PV_4`` (rpm),
    ``IN_PV_5`` (viscosity trend); ``IN_SP_1``, ``IN_SP_3`` (safety limit), ``IN_SP_4``;
    ``OUT_SP_1 x`` (0-310 °C), ``OUT_SP_4 x`` (0-1500 rpm); ``START_1``/``STOP_1`` (heater),
    ``START_4``/``STOP_4`` (motor); ``RESET`` (heater and motor off, watchdog off);
    ``SET_MODE_A|B|D``; ``OUT_SP_12@n``, ``OUT_SP_42@n`` (watchdog safety limits, echoed);
    ``OUT_WD1@m``, ``OUT_WD2@m`` (watchdog, m = 20-1500 s, ``OUT_WD2@0`` stops it; echoed).
    Reads answer ``<value> <channel>``: temperatures with one decimal (``60.0 1``), speeds and
    the safety limit as integers (``398 4``, ``360 3``). Set and action commands are silent.

Refused, as the sheet describes the device:
    Unknown or malformed commands (lower case included) get no reply (``unknown_reply`` sets
    another answer); there is no error message on the interface. An out-of-range set point is
    ignored (``out_of_range="clamp"`` clamps it instead); set points above the safety limit
    minus 50 K are out of range. Third-party extras (``IN_TYPE``, ``STATUS_x``…) are unknown.

Quirks reproduced:
    * Watchdog 1: no command for ``m`` real seconds switches heater and motor off (the device
      would show Er 02; nothing is sent). Watchdog 2: set points drop to the ``OUT_SP_12@`` /
      ``OUT_SP_42@`` limits until ``OUT_WD2@0``. Watchdogs run on real time.
    * ``start_resets_setpoint=True`` reproduces the anecdotal ``START_1`` resetting the
      temperature set point to 0 °C (off by default: anecdotal in the sheet).
    * The echo of ``@`` commands is ``echo_format.format(value=..., channel=...)``, ``"{value}"``
      by default (the sheet leaves the text open).

Physics (simulated time):
    The plate follows its target (the set point while heating, else ambient 25 °C) as a
    first-order system with time constant 120 s, heating at most 0.5 K/s, cooling passively.
    The sample probe (``IN_PV_1``) lags the plate with a 20 s time constant; the sample's
    temperature goes to :meth:`SimulatedWorld.anneal` as time passes. The stirrer reaches its
    set speed with a 1 s time constant. A ``drift`` fault offsets the temperature readings.
    A ``busy`` fault makes the device ignore the command (silence).
"""

from __future__ import annotations

import math
import re
import time

from simulators._base import DeviceSim
from simulators.faults import Disconnect, FaultConfig, FaultInjector
from simulators.world import SimulatedWorld

MAX_SET_TEMP_C = 310.0
MAX_SPEED_RPM = 1500.0
WATCHDOG_RANGE_S = (20, 1500)
MAX_LINE = 80
PROBE_TIME_CONSTANT_S = 20.0
MOTOR_TIME_CONSTANT_S = 1.0
MAX_STEP_S = 1.0


class IkaNamurSim(DeviceSim):
    """Simulated IKA RCT digital hotplate/stirrer.

    Args:
        world: Shared simulated world.
        faults: Fault settings or injector.
        seed: Seed of the device's own generator (reading noise).
        name: ``IN_NAME`` reply.
        ambient_c: Room temperature, °C.
        time_constant_s: Plate time constant, simulated s.
        max_heat_rate_c_s: Fastest plate heating, K per simulated s.
        safety_temp_c: Safety circuit limit (``IN_SP_3``), °C.
        unknown_reply: Reply to unknown commands (None: silence).
        out_of_range: ``"ignore"`` or ``"clamp"`` out-of-range set points.
        echo_format: Format of the echo of ``@`` commands.
        start_resets_setpoint: Reproduce ``START_1`` resetting the set point to 0 °C.
        station: Deck station of the plate (None: it heats the sample wherever it is).
    """

    def __init__(
        self,
        world: SimulatedWorld,
        *,
        faults: FaultConfig | FaultInjector | None = None,
        seed: int | None = None,
        name: str = "RCT digital",
        ambient_c: float = 25.0,
        time_constant_s: float = 120.0,
        max_heat_rate_c_s: float = 0.5,
        safety_temp_c: float = 360.0,
        unknown_reply: bytes | None = None,
        out_of_range: str = "ignore",
        echo_format: str = "{value}",
        start_resets_setpoint: bool = False,
        station: str | None = None,
    ) -> None:
        super().__init__(world, faults=faults, seed=seed, seed_parts=(name,), station=station)
        if out_of_range not in ("ignore", "clamp"):
            raise ValueError("out_of_range must be 'ignore' or 'clamp'")
        self.name = name
        self.ambient_c = ambient_c
        self.time_constant_s = time_constant_s
        self.max_heat_rate_c_s = max_heat_rate_c_s
        self.safety_temp_c = safety_temp_c
        self.unknown_reply = unknown_reply
        self.out_of_range = out_of_range
        self.echo_format = echo_format
        self.start_resets_setpoint = start_resets_setpoint
        self._buffer = bytearray()
        self.set_temp_c = 0.0
        self.set_speed_rpm = 0.0
        self.heater_on = False
        self.motor_on = False
        self.mode = "A"
        self.plate_c = ambient_c
        self.probe_c = ambient_c
        self.speed_rpm = 0.0
        self.watchdog: tuple[int, float] | None = None  # (mode, timeout real s)
        self.watchdog_tripped = False
        self.wd_temp_c = 0.0
        self.wd_speed_rpm = 0.0
        self._last_command = time.monotonic()
        self._t = world.sim_time()
        self._attach()

    # -- physics ---------------------------------------------------------------------------
    def advance(self, now: float) -> None:
        """Integrate plate, probe and motor up to simulated time ``now`` (s)."""
        while self._t < now:
            dt = min(MAX_STEP_S, now - self._t)
            idle = (
                not self.heater_on
                and abs(self.plate_c - self.ambient_c) < 1e-3
                and abs(self.probe_c - self.ambient_c) < 1e-3
                and self.speed_rpm == (self.set_speed_rpm if self.motor_on else 0.0)
            )
            if idle:
                self._t = now
                return
            self._step(dt)
            self._t += dt

    def _step(self, dt: float) -> None:
        target = max(self.set_temp_c, self.ambient_c) if self.heater_on else self.ambient_c
        plate = target + (self.plate_c - target) * math.exp(-dt / self.time_constant_s)
        plate = min(plate, self.plate_c + self.max_heat_rate_c_s * dt)
        plate = min(plate, self.safety_temp_c) if self.heater_on else plate
        probe_start = self.probe_c
        mean_plate = 0.5 * (self.plate_c + plate)
        self.probe_c = mean_plate + (self.probe_c - mean_plate) * math.exp(
            -dt / PROBE_TIME_CONSTANT_S
        )
        self.plate_c = plate
        speed_target = self.set_speed_rpm if self.motor_on else 0.0
        self.speed_rpm = speed_target + (self.speed_rpm - speed_target) * math.exp(
            -dt / MOTOR_TIME_CONSTANT_S
        )
        if abs(self.speed_rpm - speed_target) < 0.5:
            self.speed_rpm = speed_target
        self.world.anneal(0.5 * (probe_start + self.probe_c), dt, station=self.station)

    def _check_watchdog(self) -> None:
        if self.watchdog is None or self.watchdog_tripped:
            return
        mode, timeout = self.watchdog
        if time.monotonic() - self._last_command <= timeout:
            return
        self.world.sync()
        self.watchdog_tripped = True
        if mode == 1:
            self.heater_on = self.motor_on = False
            self.watchdog = None
        else:
            self.set_temp_c, self.set_speed_rpm = self.wd_temp_c, self.wd_speed_rpm

    def poll(self) -> bytes:
        """Watchdog and physics tick; the device never talks unprompted."""
        with self.world.lock:
            self._check_watchdog()
            self.world.sync()
        return b""

    # -- byte stream -------------------------------------------------------------------------
    def feed(self, data: bytes) -> bytes | Disconnect | None:
        """Consume bytes from the host; return the replies (CR LF terminated)."""
        out = bytearray()
        with self.world.lock:
            self._buffer += bytes(b & 0x7F for b in data)
            while (end := next((i for i, b in enumerate(self._buffer) if b in b"\r\n"), -1)) >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                if not line.strip() or len(line) + 2 > MAX_LINE:
                    continue
                result = self._command(line.decode("ascii").strip())
                if isinstance(result, Disconnect):
                    self._buffer.clear()
                    return Disconnect(result.seconds, bytes(out) + result.before)
                if result:
                    out += result
            if len(self._buffer) > MAX_LINE:
                self._buffer.clear()
        return bytes(out)

    def _command(self, line: str) -> bytes | Disconnect | None:
        self._check_watchdog()
        self._last_command = time.monotonic()
        self.world.sync()
        kind = self.faults.draw()
        if kind == "busy":
            return self.faults.transform(kind, b"")
        text = self._execute(line)
        reply = (text.encode("ascii") + b"\r\n") if text is not None else b""
        if text is None and self.unknown_reply is not None and not self._known(line):
            reply = self.unknown_reply
        return self.faults.transform(kind, reply)

    # -- commands ---------------------------------------------------------------------------
    _KNOWN = re.compile(
        r"IN_NAME|IN_PV_[1245]|IN_SP_[134]|OUT_SP_[14] \S+|(START|STOP)_[14]|RESET|"
        r"SET_MODE_[ABD]|OUT_SP_(12|42)@\S+|OUT_WD[12]@\S+"
    )

    def _known(self, line: str) -> bool:
        return self._KNOWN.fullmatch(" ".join(line.split())) is not None

    def _reading(self, value: float, channel: int, decimals: int) -> str:
        return f"{value:.{decimals}f} {channel}"

    def _execute(self, line: str) -> str | None:
        words = line.split()
        command, args = words[0], words[1:]
        temp_offset = 1.0 + self.faults.drift
        reads = {
            "IN_PV_1": lambda: self._reading(self.probe_c * temp_offset, 1, 1),
            "IN_PV_2": lambda: self._reading(self.plate_c * temp_offset, 2, 1),
            "IN_PV_4": lambda: self._reading(self.speed_rpm, 4, 0),
            "IN_PV_5": lambda: self._reading(0.0, 5, 1),
            "IN_SP_1": lambda: self._reading(self.set_temp_c, 1, 1),
            "IN_SP_3": lambda: self._reading(self.safety_temp_c, 3, 0),
            "IN_SP_4": lambda: self._reading(self.set_speed_rpm, 4, 0),
            "IN_NAME": lambda: self.name,
        }
        if command in reads:
            return reads[command]() if not args else None
        if command in ("OUT_SP_1", "OUT_SP_4"):
            if len(args) == 1:
                self._set_point(command, args[0])
            return None
        if args:
            return None
        if command in ("START_1", "STOP_1", "START_4", "STOP_4"):
            on = command.startswith("START")
            if command.endswith("1"):
                self.heater_on = on
                if on and self.watchdog is None:
                    self.watchdog_tripped = False
                if on and self.start_resets_setpoint:
                    self.set_temp_c = 0.0
            else:
                self.motor_on = on
            return None
        if command == "RESET":
            self.heater_on = self.motor_on = False
            self.watchdog, self.watchdog_tripped = None, False
            return None
        if m := re.fullmatch(r"SET_MODE_([ABD])", command):
            self.mode = m.group(1)
            return None
        if m := re.fullmatch(r"OUT_SP_(12|42)@(\d+(?:\.\d+)?)", command):
            value = float(m.group(2))
            if m.group(1) == "12":
                self.wd_temp_c = value
            else:
                self.wd_speed_rpm = value
            return self.echo_format.format(value=m.group(2), channel=m.group(1))
        if m := re.fullmatch(r"OUT_WD([12])@(\d+)", command):
            mode, seconds = int(m.group(1)), int(m.group(2))
            if mode == 2 and seconds == 0:
                self.watchdog, self.watchdog_tripped = None, False
            elif WATCHDOG_RANGE_S[0] <= seconds <= WATCHDOG_RANGE_S[1]:
                self.watchdog, self.watchdog_tripped = (mode, float(seconds)), False
            else:
                return None
            return self.echo_format.format(value=m.group(2), channel=m.group(1))
        return None

    def _set_point(self, command: str, text: str) -> None:
        try:
            value = float(text)
        except ValueError:
            return
        if command == "OUT_SP_1":
            high = min(MAX_SET_TEMP_C, self.safety_temp_c - 50.0)
        else:
            high = MAX_SPEED_RPM
        if not (0.0 <= value <= high and math.isfinite(value)):
            if self.out_of_range == "ignore" or not math.isfinite(value):
                return
            value = min(max(value, 0.0), high)
        if command == "OUT_SP_1":
            self.set_temp_c = value
        else:
            self.set_speed_rpm = value
