"""GRBL 1.1h gantry controller simulator (serial line protocol), from ``grbl.md``.

Framing: host lines end with LF or CR (each counts: ``\\r\\n`` is two lines, the empty one
answered ``ok``); spaces and control characters are dropped, letters upper-cased, ``( … )`` and
``;`` comments stripped. Every output line ends with CR LF. Real-time bytes (``?`` ``!`` ``~``
0x18 and 0x80-0xFF) are acted on as they arrive, even inside a line, and never enter a line.

On connect (the host opening the port resets the controller, as an Arduino's DTR does) the
banner ``\\r\\nGrbl 1.1h ['$' for help]\\r\\n`` is sent, followed by
``[MSG:'$H'|'$X' to unlock]`` when homing is enabled (power-up in Alarm). Settings, coordinate
offsets and startup lines persist across connects; position does not.

Implemented:
    * Real-time: ``?`` status report, ``!`` feed hold (cancels a jog), ``~`` resume, 0x18 soft
      reset, 0x85 jog cancel. Other extended bytes (door, overrides, coolant toggles) are
      accepted and ignored.
    * ``$`` help, ``$$``, ``$x=val``, ``$#``, ``$G``, ``$I``, ``$N``/``$Nx=line`` (stored, not
      run), ``$C``, ``$X``, ``$H``, ``$J=``, ``$SLP``, ``$RST=$|#|*``.
    * G-code: ``G0 G1`` (linear moves), ``G4 P<s>``, ``G10 L2|L20 P0-6``, ``G17-19``, ``G20 G21``,
      ``G28 G30 G28.1 G30.1``, ``G53``, ``G54-G59``, ``G80``, ``G90 G91``, ``G92 G92.1``,
      ``G94``, ``M0 M1 M2 M30`` (program end resets modes and prints ``[MSG:Pgm End]``),
      ``M3 M4 M5``, ``M7 M8 M9`` (modes only; ``M0``/``M1`` do not pause), words ``F S T N P L X Y Z``.
    * Status report ``<State|MPos:x,y,z|FS:f,s[|Bf:15,128][|WCO:…][|Ov:100,100,100]>``;
      ``$10`` bit 0 selects MPos/WPos, bit 1 adds ``Bf``; ``WCO`` on the first report, on
      change and every 10th; ``Ov`` every 20th; ``$13=1`` reports inches.

Refused as GRBL does (error numbers from the sheet's table): bad word letter ``error:1``, bad
number ``error:2``, unknown ``$`` command ``error:3``, negative value ``error:4``, ``$H`` with
``$22=0`` ``error:5``, ``$`` command in the wrong state ``error:8``, G-code in Alarm/Jog
``error:9``, ``$20=1`` without homing ``error:10``, line over 80 characters ``error:11``, jog
past the travel ``error:15``, malformed jog (no ``=``, disallowed word) ``error:16``,
unsupported command ``error:20`` (arcs ``G2/G3``, probing ``G38.x``, ``G93``, ``G43.1`` are not
simulated and answer this too), modal group violation ``error:21``, no feed rate ``error:22``,
non-integer ``T``/``N``/``P`` ``error:23``, axis-command conflict ``error:24``, repeated word
``error:25``, missing axis words ``error:26``, bad line number ``error:27``, missing ``P``
``error:28``, ``G59.x`` ``error:29``, ``G53`` without ``G0/G1`` ``error:30``, unused axis words
``error:31``, unused value words ``error:36``, tool number over 255 ``error:38``.

Quirks reproduced:
    * ``ok`` means queued: moves run in simulated time (constant speed at the feed rate, capped
      per axis by ``$110-$112``; acceleration is ignored); the planner holds 15 blocks, beyond
      which the next line waits (its ``ok`` is late), as does every line after ``G4``, whose
      ``ok`` comes when the planner has emptied and the dwell is over. ``$H`` answers ``ok``
      when homing (moving to machine zero at ``$25``) is done.
    * Soft limits (``$20=1``, needs ``$22=1``): the travel is ``-$13x … 0`` per axis (machine
      space negative). A target outside stops motion and answers ``ALARM:2`` then
      ``[MSG:Reset to continue]`` instead of ``ok`` (also in check mode); everything but 0x18 is
      then ignored, ``?`` included. After the reset: banner, ``[MSG:'$H'|'$X' to unlock]``,
      Alarm state (G-code → ``error:9``) until ``$X``/``$H``. Jogs past the travel get
      ``error:15`` and no alarm.
    * 0x18 during motion raises ``ALARM:3`` (position may be lost) before the banner; in a
      completed feed hold (``Hold:0``, axes stopped) it does not: the queued moves are dropped,
      the position is kept and the state is ``Idle`` (how a host abandons a move).
    * ``$C`` off soft-resets (``[MSG:Disabled]``, ``ok``, banner). ``$SLP`` answers ``ok`` and
      ``[MSG:Sleeping]``; only a reset leaves sleep, into Alarm.
    * Feed hold decelerates instantly: the state is ``Hold:0`` at once.
    * A ``busy`` fault is a hard-limit trip: ``ALARM:1`` and ``[MSG:Reset to continue]``
      instead of the line's response.

World: the gantry's carrier holds the current sample. ``stations`` (name → machine
coordinates, mm) are given to the world at construction; the world hears
``gantry_moved(None)`` when motion starts (a move queued while idle, a resume) and
``gantry_moved(position)`` when it stops: the machine position at the simulated instant the last
block ends (the world steps the other devices to that instant first, see :meth:`next_event`),
where a feed hold or a reset stopped it, or the origin at power-on.
"""

from __future__ import annotations

import math
import re
from collections import deque
from dataclasses import dataclass

from simulators._base import DeviceSim
from simulators.faults import Disconnect, FaultConfig, FaultInjector
from simulators.world import SimulatedWorld

BANNER = "\r\nGrbl 1.1h ['$' for help]\r\n"
UNLOCK_MSG = "[MSG:'$H'|'$X' to unlock]\r\n"
RESET_TO_CONTINUE = "[MSG:Reset to continue]\r\n"
HELP = "[HLP:$$ $# $G $I $N $x=val $Nx=line $J=line $SLP $C $X $H ~ ! ? ctrl-x]\r\n"
LINE_BUFFER = 80
PLANNER_BLOCKS = 15
RX_BUFFER = 128
AXES = "XYZ"

DEFAULT_SETTINGS: dict[int, float] = {
    0: 10, 1: 25, 2: 0, 3: 0, 4: 0, 5: 0, 6: 0, 10: 1, 11: 0.010, 12: 0.002, 13: 0,
    20: 0, 21: 0, 22: 0, 23: 0, 24: 25.0, 25: 500.0, 26: 250, 27: 1.0, 30: 1000, 31: 0, 32: 0,
    100: 250.0, 101: 250.0, 102: 250.0, 110: 500.0, 111: 500.0, 112: 500.0,
    120: 10.0, 121: 10.0, 122: 10.0, 130: 200.0, 131: 200.0, 132: 200.0,
}  # fmt: skip
"""GRBL 1.1h default settings (defaults.h, generic build)."""

INTEGER_SETTINGS = frozenset({0, 1, 2, 3, 4, 5, 6, 10, 13, 20, 21, 22, 23, 26, 30, 31, 32})

_MODAL_GROUPS: dict[float, str] = {
    **dict.fromkeys((0.0, 1.0, 80.0), "motion"),
    **dict.fromkeys((4.0, 10.0, 28.0, 30.0, 28.1, 30.1, 53.0, 92.0, 92.1), "nonmodal"),
    **dict.fromkeys((17.0, 18.0, 19.0), "plane"),
    **dict.fromkeys((90.0, 91.0), "distance"),
    **dict.fromkeys((20.0, 21.0), "units"),
    **dict.fromkeys((54.0, 55.0, 56.0, 57.0, 58.0, 59.0), "coord"),
    94.0: "feedmode",
}
_M_GROUPS: dict[float, str] = {
    **dict.fromkeys((0.0, 1.0, 2.0, 30.0), "stopping"),
    **dict.fromkeys((3.0, 4.0, 5.0), "spindle"),
    **dict.fromkeys((7.0, 8.0, 9.0), "coolant"),
}


class _GrblError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class _Blocked(Exception):
    """The line must wait (planner full)."""


class _Critical(Exception):
    """A critical alarm was raised while executing the line."""


@dataclass
class _Block:
    target: tuple[float, float, float]
    duration: float
    feed: float
    jog: bool


@dataclass
class _Wait:
    """A line waiting to finish: ``dwell`` (``seconds`` after the planner empties), ``home``
    (homing done) or ``space`` (a planner block free)."""

    kind: str
    seconds: float
    created: float
    reply: str


def _fmt_setting(number: int, value: float) -> str:
    return f"${number}={int(value)}" if number in INTEGER_SETTINGS else f"${number}={value:.3f}"


class GrblSim(DeviceSim):
    """Simulated GRBL 1.1h 3-axis gantry.

    Args:
        world: Shared simulated world.
        faults: Fault settings or injector.
        seed: Seed of the device's own generator (unused by the physics).
        settings: Initial overrides of the ``$`` settings (e.g. ``{22: 1, 20: 1}``).
        stations: Deck stations, name → ``[x, y, z]`` machine coordinates in mm, defined in the
            world (instruments with a ``station`` then act only on a sample there).
        station: Unused by the gantry (every simulator accepts it).
    """

    def __init__(
        self,
        world: SimulatedWorld,
        *,
        faults: FaultConfig | FaultInjector | None = None,
        seed: int | None = None,
        settings: dict[int, float] | None = None,
        stations: dict[str, list[float]] | None = None,
        station: str | None = None,
    ) -> None:
        super().__init__(world, faults=faults, seed=seed, seed_parts=("grbl",), station=station)
        self.stations = {name: tuple(map(float, xyz)) for name, xyz in (stations or {}).items()}
        if stations is not None:
            world.define_stations(self.stations)
        self.settings = dict(DEFAULT_SETTINGS)
        self.settings.update({int(k): float(v) for k, v in (settings or {}).items()})
        self._restore_offsets()
        self.startup_lines = ["", ""]
        self.mpos = [0.0, 0.0, 0.0]
        self.homed = False
        self.alarm_locked = False
        self._power_on()
        self._attach()

    # -- state -----------------------------------------------------------------------------
    def _restore_offsets(self) -> None:
        self.coords = [[0.0, 0.0, 0.0] for _ in range(6)]
        self.g28 = [0.0, 0.0, 0.0]
        self.g30 = [0.0, 0.0, 0.0]

    def _power_on(self) -> None:
        self.mpos = [0.0, 0.0, 0.0]
        self.homed = False
        self.alarm_locked = bool(self.settings[22])
        self.sleeping = False
        self._reset_runtime()
        self._report(self.mpos)

    def _report(self, position: list[float] | None) -> None:
        """Tell the world where the gantry (and the sample it carries) stopped, or None."""
        self.world.gantry_moved(
            None if position is None else (position[0], position[1], position[2])
        )

    def _reset_runtime(self) -> None:
        """What a soft reset clears: motion, buffers, parser modes (position is kept)."""
        self.queue: list[_Block] = []
        self._seg_t0 = self.world.sim_time()
        self._idle_since = self._seg_t0
        self.held = False
        self.critical = False
        self.check_mode = False
        self.homing = False
        self._rx = bytearray()
        self._rx_overflow = False
        self._lines: deque[str] = deque()
        self._wait: _Wait | None = None
        self._reports = 0
        self._last_wco: tuple[float, ...] | None = None
        self._reset_modes()

    def _reset_modes(self) -> None:
        self.motion = 0.0
        self.absolute = True
        self.inches = False
        self.coord_index = 0
        self.plane = 17
        self.feed_rate = 0.0
        self.spindle = 5
        self.spindle_speed = 0.0
        self.coolant = 9
        self.tool = 0
        self.g92 = [0.0, 0.0, 0.0]
        self.parser_pos = list(self.mpos)

    def state(self) -> str:
        """The status-report state (``Idle``, ``Run``, ``Hold:0``, ``Alarm``…)."""
        if self.sleeping:
            return "Sleep"
        if self.critical or self.alarm_locked:
            return "Alarm"
        if self.homing:
            return "Home"
        if self.check_mode:
            return "Check"
        if self.held:
            return "Hold:0"
        if self.queue:
            return "Jog" if self.queue[0].jog else "Run"
        return "Idle"

    def wco(self) -> list[float]:
        """Work coordinate offset, mm: active G54-G59 offset plus G92."""
        return [c + g for c, g in zip(self.coords[self.coord_index], self.g92, strict=True)]

    # -- motion ------------------------------------------------------------------------------
    def advance(self, now: float) -> None:
        """Retire the blocks finished by simulated time ``now`` (s)."""
        if self.held:
            return
        while self.queue:
            block = self.queue[0]
            end = self._seg_t0 + block.duration
            if now < end:
                return
            self.mpos = list(block.target)
            self.queue.pop(0)
            self._seg_t0 = end
            if not self.queue:
                self._idle_since = end
                if self.homing:
                    self.homing = False
                    self.homed = True
                    self.alarm_locked = False
                self._report(self.mpos)

    def next_event(self) -> float | None:
        """End of the running block (the world steps every device to it), or None."""
        if self.held or not self.queue:
            return None
        return self._seg_t0 + self.queue[0].duration

    def position(self, now: float) -> list[float]:
        """Machine position at simulated time ``now``, mm."""
        self.advance(now)
        if not self.queue or self.held:
            return list(self.mpos)
        block = self.queue[0]
        frac = min(1.0, max(0.0, (now - self._seg_t0) / block.duration))
        return [a + (b - a) * frac for a, b in zip(self.mpos, block.target, strict=True)]

    def _stop_motion(self, now: float) -> None:
        """Stop at once where the gantry is; drop the planner."""
        self.mpos = self.position(now)
        self.queue.clear()
        self.held = False
        self.homing = False
        self._seg_t0 = self._idle_since = now
        self.parser_pos = list(self.mpos)
        self._report(self.mpos)

    def _duration(self, start: list[float], target: list[float], feed: float | None) -> float:
        """Seconds for a straight move; ``feed`` mm/min (None = rapid), axes capped by $11x."""
        deltas = [abs(b - a) for a, b in zip(start, target, strict=True)]
        axis_min = max(d / self.settings[110 + i] for i, d in enumerate(deltas))
        minutes = axis_min if feed is None else max(math.hypot(*deltas) / feed, axis_min)
        return minutes * 60.0

    def _queue_move(self, target: list[float], feed: float | None, now: float, jog: bool) -> None:
        duration = self._duration(self.parser_pos, target, feed)
        self.parser_pos = list(target)
        if self.check_mode or duration <= 0:
            return
        starting = not self.queue
        if starting:
            self._seg_t0 = now
        distance = math.dist(self.queue[-1].target if self.queue else self.mpos, target)
        end = (target[0], target[1], target[2])
        self.queue.append(_Block(end, duration, distance / duration * 60.0, jog))
        if starting and not self.held:
            self._report(None)

    def _within_travel(self, target: list[float]) -> bool:
        return all(-self.settings[130 + i] - 1e-6 <= v <= 1e-6 for i, v in enumerate(target))

    # -- byte stream -------------------------------------------------------------------------------
    def on_connect(self) -> bytes:
        """Power-on reset: banner (and the unlock message when homing is enabled)."""
        with self.world.lock:
            self._power_on()
            return (BANNER + (UNLOCK_MSG if self.alarm_locked else "")).encode()

    def feed(self, data: bytes) -> bytes | Disconnect | None:
        """Consume bytes from the host; return GRBL's output."""
        out = bytearray()
        with self.world.lock:
            now = self.world.sync()
            for byte in data:
                if byte in (0x3F, 0x21, 0x7E, 0x18) or byte >= 0x80:
                    result = self._realtime(byte, now)
                    if isinstance(result, Disconnect):
                        return Disconnect(result.seconds, bytes(out) + result.before)
                    out += result or b""
                    continue
                if byte in (0x0A, 0x0D):
                    self._lines.append(self._rx.decode("ascii", errors="replace"))
                    self._lines[-1] += "\x00" if self._rx_overflow else ""
                    self._rx.clear()
                    self._rx_overflow = False
                elif len(self._rx) < RX_BUFFER:
                    self._rx.append(byte)
                else:
                    self._rx_overflow = True
                result = self._process_lines(now)
                if isinstance(result, Disconnect):
                    return Disconnect(result.seconds, bytes(out) + result.before)
                out += result
        return bytes(out)

    def poll(self) -> bytes | Disconnect:
        """Release lines waiting on a dwell, homing or a full planner."""
        with self.world.lock:
            if self._wait is None and not self._lines:
                return b""
            return self._process_lines(self.world.sync())

    def _realtime(self, byte: int, now: float) -> bytes | Disconnect | None:
        if byte == 0x18:
            return self._soft_reset(now).encode()
        if self.critical or self.sleeping:
            return b""
        if byte == ord("?"):
            if self.homing:
                return b""
            kind = self.faults.draw()
            report = b"" if kind == "busy" else self._status_report(now).encode()
            return self.faults.transform(kind, report)
        if byte == ord("!"):
            if self.alarm_locked or self.check_mode:
                return b""
            if self.queue and self.queue[0].jog:
                self._stop_motion(now)
            elif not self.held:
                self.mpos = self.position(now)
                if self.queue:
                    block = self.queue[0]
                    remaining = self._duration(self.mpos, list(block.target), None)
                    full = self._duration(self.mpos, list(block.target), block.feed)
                    block.duration = max(remaining, full)
                self.held = True
                self._report(self.mpos)
            return b""
        if byte == ord("~"):
            if self.held:
                self.held = False
                self._seg_t0 = now
                if not self.queue:
                    self._idle_since = now
                else:
                    self._report(None)
            return b""
        if byte == 0x85 and self.queue and self.queue[0].jog:
            self._stop_motion(now)
        return b""

    def _soft_reset(self, now: float) -> str:
        out = ""
        if self.queue and not self.held and not self.critical:
            self.alarm_locked = True
            self.homed = False
            out += "ALARM:3\r\n"
        self._stop_motion(now)
        if self.sleeping or self.critical:
            self.alarm_locked = True
        self.sleeping = False
        self._reset_runtime()
        out += BANNER
        if self.alarm_locked:
            out += UNLOCK_MSG
        return out

    def _critical_alarm(self, code: int, now: float) -> str:
        self._stop_motion(now)
        self.critical = True
        self.alarm_locked = True
        self._lines.clear()
        self._wait = None
        return f"ALARM:{code}\r\n{RESET_TO_CONTINUE}"

    # -- lines -------------------------------------------------------------------------------
    def _process_lines(self, now: float) -> bytes | Disconnect:
        out = bytearray()
        while True:
            if self.critical or self.sleeping:
                self._lines.clear()
                break
            if self._wait is not None:
                if not self._wait_done(now):
                    break
                out += self._wait.reply.encode()
                self._wait = None
            if not self._lines:
                break
            line = self._lines.popleft()
            kind = self.faults.draw() if not self._line_waits(line) else None
            if kind == "busy":
                self.faults.transform(kind, b"ALARM:1")
                out += self._critical_alarm(1, now).encode()
                continue
            try:
                reply = self._line(line, now)
            except _Blocked:
                self._lines.appendleft(line)
                self._wait = _Wait("space", 0.0, now, "")
                break
            except _Critical as critical:
                reply = str(critical)
            result = self.faults.transform(kind, reply.encode())
            if isinstance(result, Disconnect):
                return Disconnect(result.seconds, bytes(out) + result.before)
            out += result or b""
        return bytes(out)

    def _line_waits(self, line: str) -> bool:
        return bool(self.queue) and len(self.queue) >= PLANNER_BLOCKS and not line.startswith("$")

    def _wait_done(self, now: float) -> bool:
        wait = self._wait
        assert wait is not None
        self.advance(now)
        if wait.kind == "space":
            return len(self.queue) < PLANNER_BLOCKS
        if wait.kind == "home":
            return not self.homing
        if self.queue or self.held:
            return False
        return now >= max(self._idle_since, wait.created) + wait.seconds

    def _line(self, raw: str, now: float) -> str:
        """Execute one line; return its response (``ok\\r\\n``, ``error:n\\r\\n``…)."""
        if raw.endswith("\x00"):
            return "error:11\r\n"
        line = re.sub(r"\([^)]*\)?|;.*", "", raw)
        line = "".join(c for c in line if " " < c < "\x7f").upper()
        if len(line) > LINE_BUFFER:
            return "error:11\r\n"
        if not line:
            return "ok\r\n"
        try:
            if line.startswith("$"):
                return self._system(line, now)
            if self.alarm_locked or self.state() == "Jog":
                raise _GrblError(9)
            if self._line_waits(line):
                raise _Blocked
            return self._gcode(line, now, jog=False)
        except _GrblError as err:
            return f"error:{err.code}\r\n"

    # -- $ commands ----------------------------------------------------------------------------
    def _system(self, line: str, now: float) -> str:
        state = self.state()
        idle_or_alarm = state in ("Idle", "Alarm")
        if line == "$":
            return HELP + "ok\r\n"
        if line.startswith("$J"):
            if state not in ("Idle", "Jog"):
                raise _GrblError(8)
            if not line.startswith("$J="):
                raise _GrblError(16)
            return self._gcode(line[3:], now, jog=True)
        if line[1] in "$GCX":
            if len(line) > 2:
                raise _GrblError(3)
            if line == "$$":
                if state in ("Run", "Hold:0", "Jog"):
                    raise _GrblError(8)
                return "".join(f"{_fmt_setting(n, v)}\r\n" for n, v in self.settings.items()) + (
                    "ok\r\n"
                )
            if line == "$G":
                return self._modes_report() + "ok\r\n"
            if line == "$C":
                if self.check_mode:
                    out = "[MSG:Disabled]\r\nok\r\n"
                    self._stop_motion(now)
                    self._reset_runtime()
                    return out + BANNER + (UNLOCK_MSG if self.alarm_locked else "")
                if state != "Idle":
                    raise _GrblError(8)
                self.check_mode = True
                return "[MSG:Enabled]\r\nok\r\n"
            if self.alarm_locked:
                self.alarm_locked = False
                return "[MSG:Caution: Unlocked]\r\nok\r\n"
            return "ok\r\n"
        if not idle_or_alarm:
            raise _GrblError(8)
        if line == "$#":
            return self._parameters_report() + "ok\r\n"
        if line == "$H":
            if not self.settings[22]:
                raise _GrblError(5)
            self.alarm_locked = False
            self.homing = True
            self.parser_pos = list(self.mpos)
            home = [0.0, 0.0, 0.0]
            if self.mpos == home:
                self.homing, self.homed = False, True
                return "ok\r\n"
            self._queue_move(home, self.settings[25], now, jog=False)
            self._wait = _Wait("home", 0.0, now, "ok\r\n")
            return ""
        if line == "$SLP":
            self._stop_motion(now)
            self.sleeping = True
            return "ok\r\n[MSG:Sleeping]\r\n"
        if line == "$I":
            return "[VER:1.1h.20190830:]\r\n[OPT:VL,15,128]\r\nok\r\n"
        if line == "$N":
            return "".join(f"$N{i}={s}\r\n" for i, s in enumerate(self.startup_lines)) + "ok\r\n"
        if m := re.fullmatch(r"\$N([01])=(.*)", line):
            self.startup_lines[int(m.group(1))] = m.group(2)
            return "ok\r\n"
        if m := re.fullmatch(r"\$RST=([$#*])", line):
            if m.group(1) in "$*":
                self.settings = dict(DEFAULT_SETTINGS)
            if m.group(1) in "#*":
                self._restore_offsets()
            if m.group(1) == "*":
                self.startup_lines = ["", ""]
            self._stop_motion(now)
            self._reset_runtime()
            return "[MSG:Restoring defaults]\r\nok\r\n" + BANNER
        m = re.fullmatch(r"\$([0-9.]*)(=?)(.*)", line)
        if m is None or not m.group(1):
            raise _GrblError(3)
        try:
            number = float(m.group(1))
        except ValueError:
            raise _GrblError(2) from None
        if m.group(2) != "=":
            raise _GrblError(3)
        try:
            value = float(m.group(3))
        except ValueError:
            raise _GrblError(2) from None
        return self._store_setting(number, value)

    def _store_setting(self, number: float, value: float) -> str:
        if value < 0:
            raise _GrblError(4)
        key = int(number)
        if key != number or key not in self.settings:
            raise _GrblError(3)
        if key in INTEGER_SETTINGS:
            value = float(int(value))
        if key == 20 and value and not self.settings[22]:
            raise _GrblError(10)
        self.settings[key] = value
        return "ok\r\n"

    def _modes_report(self) -> str:
        fmt = "{:.0f}" if not self.inches else "{:.1f}"
        words = [
            f"G{int(self.motion)}",
            f"G{54 + self.coord_index}",
            f"G{self.plane}",
            "G20" if self.inches else "G21",
            "G90" if self.absolute else "G91",
            "G94",
            f"M{self.spindle}",
            f"M{self.coolant}",
            f"T{self.tool}",
            "F" + fmt.format(self.feed_rate / 25.4 if self.inches else self.feed_rate),
            f"S{self.spindle_speed:.0f}",
        ]
        return f"[GC:{' '.join(words)}]\r\n"

    def _parameters_report(self) -> str:
        def xyz(values: list[float]) -> str:
            return ",".join(f"{v:.3f}" for v in values)

        rows = [f"[G{54 + i}:{xyz(c)}]" for i, c in enumerate(self.coords)]
        rows += [f"[G28:{xyz(self.g28)}]", f"[G30:{xyz(self.g30)}]", f"[G92:{xyz(self.g92)}]"]
        rows += ["[TLO:0.000]", "[PRB:0.000,0.000,0.000:0]"]
        return "".join(f"{r}\r\n" for r in rows)

    def _status_report(self, now: float) -> str:
        pos = self.position(now)
        wco = self.wco()
        if not int(self.settings[10]) & 1:
            pos = [p - w for p, w in zip(pos, wco, strict=True)]
            label = "WPos"
        else:
            label = "MPos"
        inches = bool(self.settings[13])
        scale, decimals = (1 / 25.4, 4) if inches else (1.0, 3)
        feed = 0.0
        if self.queue and not self.held:
            feed = self.queue[0].feed
        fields = [
            self.state(),
            f"{label}:" + ",".join(f"{p * scale:.{decimals}f}" for p in pos),
            f"FS:{feed * scale:.0f},{self.spindle_speed:.0f}",
        ]
        if int(self.settings[10]) & 2:
            free = PLANNER_BLOCKS - len(self.queue)
            fields.append(f"Bf:{free},{RX_BUFFER - len(self._rx)}")
        if self._reports % 10 == 0 or tuple(wco) != self._last_wco:
            fields.append("WCO:" + ",".join(f"{w * scale:.{decimals}f}" for w in wco))
            self._last_wco = tuple(wco)
        elif self._reports % 20 == 1:
            fields.append("Ov:100,100,100")
        self._reports += 1
        return "<" + "|".join(fields) + ">\r\n"

    # -- G-code --------------------------------------------------------------------------------
    def _gcode(self, line: str, now: float, *, jog: bool) -> str:
        gcodes: list[float] = []
        mcodes: list[float] = []
        words: dict[str, float] = {}
        for letter, number in self._tokens(line):
            if letter == "G":
                gcodes.append(number)
            elif letter == "M":
                mcodes.append(number)
            elif letter in "FIJKLNPRSTXYZ":
                if letter in words:
                    raise _GrblError(25)
                words[letter] = number
            else:
                raise _GrblError(20)
        groups: dict[str, float] = {}
        for g in gcodes:
            if g in (59.1, 59.2, 59.3):
                raise _GrblError(29)
            group = _MODAL_GROUPS.get(g)
            if group is None:
                raise _GrblError(20)
            if group in groups:
                raise _GrblError(21)
            groups[group] = g
        mgroups: dict[str, float] = {}
        for m in mcodes:
            group = _M_GROUPS.get(m)
            if group is None:
                raise _GrblError(20)
            if group in mgroups:
                raise _GrblError(21)
            mgroups[group] = m
        if jog:
            allowed = {"distance", "units"}
            if mcodes or set(groups) - allowed - {"nonmodal"} or set(words) - set("XYZFN"):
                raise _GrblError(16)
            if groups.get("nonmodal", 53.0) != 53.0:
                raise _GrblError(16)
        return self._execute_gcode(groups, mgroups, words, now, jog)

    @staticmethod
    def _tokens(line: str) -> list[tuple[str, float]]:
        tokens = []
        i = 0
        while i < len(line):
            letter = line[i]
            if not letter.isalpha():
                raise _GrblError(1)
            j = i + 1
            while j < len(line) and (line[j].isdigit() or line[j] in ".+-"):
                j += 1
            try:
                value = float(line[i + 1 : j])
            except ValueError:
                raise _GrblError(2) from None
            tokens.append((letter, value))
            i = j
        return tokens

    def _execute_gcode(
        self,
        groups: dict[str, float],
        mgroups: dict[str, float],
        words: dict[str, float],
        now: float,
        jog: bool,
    ) -> str:
        # Values and modes of this block (validated before anything changes).
        inches = groups.get("units", 20.0 if self.inches else 21.0) == 20.0
        absolute = groups.get("distance", 90.0 if self.absolute else 91.0) == 90.0
        scale = 25.4 if inches else 1.0
        nonmodal = groups.get("nonmodal")
        motion = groups.get("motion", self.motion)
        axis_words = {a: words[a] * scale for a in AXES if a in words}
        if "N" in words and (words["N"] != int(words["N"]) or not 0 <= words["N"] <= 9999999):
            raise _GrblError(27)
        for letter in ("F", "S"):
            if words.get(letter, 0.0) < 0:
                raise _GrblError(4)
        if "T" in words:
            if words["T"] != int(words["T"]):
                raise _GrblError(23)
            if words["T"] > 255:
                raise _GrblError(38)
        feed = words["F"] * scale if "F" in words else (self.feed_rate if not jog else 0.0)
        axis_command = nonmodal in (10.0, 28.0, 30.0, 92.0)
        if axis_words and axis_command and "motion" in groups:
            raise _GrblError(24)
        if "P" in words and nonmodal not in (4.0, 10.0):
            raise _GrblError(36)
        if "L" in words and nonmodal != 10.0:
            raise _GrblError(36)
        if any(k in words for k in "IJKR"):
            raise _GrblError(36)
        moving = bool(axis_words) and not axis_command
        if moving and motion == 80.0:
            raise _GrblError(31)
        if nonmodal == 53.0 and motion not in (0.0, 1.0):
            raise _GrblError(30)
        if ((moving and motion == 1.0) or jog) and feed <= 0:
            raise _GrblError(22)
        if jog and not axis_words:
            raise _GrblError(26)
        if nonmodal == 4.0:
            if "P" not in words:
                raise _GrblError(28)
            if words["P"] < 0:
                raise _GrblError(4)
        if nonmodal == 10.0:
            if "P" not in words or "L" not in words:
                raise _GrblError(28)
            if words["P"] != int(words["P"]) or words["L"] not in (2.0, 20.0):
                raise _GrblError(23 if words["P"] != int(words["P"]) else 20)
            if not 0 <= words["P"] <= 6:
                raise _GrblError(29)
            if not axis_words:
                raise _GrblError(26)
        if nonmodal == 92.0 and not axis_words:
            raise _GrblError(26)
        coord_index = int(groups["coord"]) - 54 if "coord" in groups else self.coord_index
        wco = [c + g for c, g in zip(self.coords[coord_index], self.g92, strict=True)]

        def target_of(base: list[float]) -> list[float]:
            target = list(base)
            for i, axis in enumerate(AXES):
                if axis in axis_words:
                    if nonmodal == 53.0:
                        target[i] = axis_words[axis]
                    elif absolute:
                        target[i] = axis_words[axis] + wco[i]
                    else:
                        target[i] = base[i] + axis_words[axis]
            return target

        if jog:
            target = target_of(self.parser_pos)
            if self.settings[20] and not self._within_travel(target):
                raise _GrblError(15)
            self._queue_move(target, feed, now, jog=True)
            return "ok\r\n"

        # Targets (soft limits are checked before anything changes).
        moves: list[tuple[list[float], float | None]] = []
        if moving:
            rate = None if motion == 0.0 else feed
            moves.append((target_of(self.parser_pos), rate))
        elif nonmodal in (28.0, 30.0):
            if axis_words:
                moves.append((target_of(self.parser_pos), None))
            moves.append((list(self.g28 if nonmodal == 28.0 else self.g30), None))
        if self.settings[20] and any(not self._within_travel(t) for t, _ in moves):
            raise _Critical(self._critical_alarm(2, now))

        # Apply, in GRBL's order of execution.
        if "F" in words:
            self.feed_rate = feed
        if "S" in words:
            self.spindle_speed = words["S"]
        if "T" in words:
            self.tool = int(words["T"])
        if "spindle" in mgroups:
            self.spindle = int(mgroups["spindle"])
        if "coolant" in mgroups:
            self.coolant = int(mgroups["coolant"])
        if "plane" in groups:
            self.plane = int(groups["plane"])
        self.inches, self.absolute, self.coord_index = inches, absolute, coord_index
        if "motion" in groups:
            self.motion = motion
        reply = "ok\r\n"
        if nonmodal == 4.0:
            self._wait = _Wait("dwell", words["P"], now, reply)
            reply = ""
        elif nonmodal == 10.0:
            index = int(words["P"]) - 1 if words["P"] else self.coord_index
            for i, axis in enumerate(AXES):
                if axis in axis_words:
                    if words["L"] == 2.0:
                        self.coords[index][i] = axis_words[axis]
                    else:
                        self.coords[index][i] = self.parser_pos[i] - self.g92[i] - axis_words[axis]
        elif nonmodal == 28.1:
            self.g28 = list(self.parser_pos)
        elif nonmodal == 30.1:
            self.g30 = list(self.parser_pos)
        elif nonmodal == 92.0:
            for i, axis in enumerate(AXES):
                if axis in axis_words:
                    self.g92[i] = (
                        self.parser_pos[i] - self.coords[coord_index][i] - axis_words[axis]
                    )
        elif nonmodal == 92.1:
            self.g92 = [0.0, 0.0, 0.0]
        for target, rate in moves:
            self._queue_move(target, rate, now, jog=False)
        if mgroups.get("stopping") in (2.0, 30.0):
            self._reset_program_modes()
            reply = "[MSG:Pgm End]\r\n" + reply
        return reply

    def _reset_program_modes(self) -> None:
        """M2/M30 program end: G1, G17, G90, G94, G54, M5, M9 (offsets are kept)."""
        self.motion = 1.0
        self.coord_index = 0
        self.plane = 17
        self.absolute = True
        self.spindle = 5
        self.coolant = 9
