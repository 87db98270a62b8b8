"""New Era NE-1000 syringe pump simulator (RS-232 basic and safe mode), from ``ne1000.md``.

Framing (sheet §2):
    Basic mode: host lines ``[addr]<command><CR>``; spaces and control characters are stripped
    and the text upper-cased before parsing (so LF after CR is harmless). Replies are
    ``STX <2-digit address> <status> [data] ETX`` with no CR/LF. Safe mode: both directions use
    ``STX <len> <data> <CRC-hi> <CRC-lo> ETX`` with ``len = len(data) + 4`` and
    ``CRC = binascii.crc_hqx(data, 0)``; a bad length, CRC or end byte gets ``?COM``.

Implemented commands:
    status poll (empty command), ``DIA``, ``RAT`` (``UM MM UH MH``), ``VOL`` (``UL``/``ML``
    selects units), ``DIR`` (``INF WDR REV STK``), ``RUN`` (optionally ``RUN1``), ``PUR``,
    ``STP``, ``DIS``, ``CLD INF|WDR``, ``VER``, ``SAF``, system ``*ADR [n [B baud]]`` and
    ``*RESET``, network bursts ``<n><cmd>*<n><cmd>…``.

Refused, as the sheet says the pump does:
    unknown command → ``?``; value out of range → ``?OOR`` (setting unchanged); command not
    applicable in the current state → ``?NA`` (``DIA``/``VOL``/``PUR`` while pumping, rate units
    change while pumping, direction change while pumping a finite volume, ``DIR STK`` unless
    stopped, set form of ``VER``, ``RUN <phase>`` other than 1); bad safe packet → ``?COM``.
    Other commands of the real pump (``PHN``, ``FUN``, ``TRG``, ``BUZ``…) answer ``?``.

Quirks reproduced:
    * Power-up alarm: the first command addressed to the pump gets ``A?R`` instead of its reply;
      it is not carried out and the alarm is cleared (sheet §2.4). Any pending alarm behaves the
      same (``A?S`` after a stall fault, ``A?T`` after a safe-mode time-out).
    * ``STP`` while pumping pauses (``P``, ``RUN`` resumes the rest of the volume); ``STP`` while
      paused stops (``S``) and forgets the rest.
    * Numbers are truncated to 4 digits with at most 3 decimals (``26.594`` → ``26.59``) and
      printed the same way (``5.000``, ``26.59``, ``1500``).
    * Setting the diameter selects the default volume units (≤ 14.00 mm: µL, else mL) and
      clamps the rate into the new limits.
    * The reply to ``SAF`` uses the framing of the mode in force after the command (enabling
      answers safe-framed, ``SAF0`` answers basic-framed); safe packets are accepted in basic
      mode too; basic text is ignored in safe mode.
    * In safe mode, no valid packet for ``t`` real seconds stops pumping and raises ``A?T``,
      sent once unsolicited (which does not clear it).

Decisions where the sheet is silent:
    * A command without an address is answered (each simulated pump has its own port).
    * Rate limits from the syringe's cross-section and the drive's linear speed range:
      ``max = π d²/4 · 51 mm/min`` and ``min = π d²/4 · 0.0007 mm/min`` (µL/min with d in mm),
      which reproduces the NE-1000's published 1699 mL/h maximum for a 60 mL (26.59 mm) syringe.
      Diameter limits 0.1-80.0 mm (nesp-lib's).
    * ``VOL UL``/``VOL ML`` only change the unit label; the number is kept.
    * Malformed data (e.g. ``RAT abc``) answers ``?``, like an unknown command.
    * Statuses ``T`` and ``U`` and the ``?IGN`` refusal never occur (no multi-phase
      programs); ``X`` during ``PUR``.
    * Power-on settings: diameter 26.59 mm, rate 1.000 MM, volume 1.000 ML, direction INF.
    * Withdrawing refills the syringe from a reservoir: it moves the ``W`` counter but puts
      nothing on the sample. Infusing and purging put liquid on the sample.
    * The baud rate of ``*ADR n B baud`` is validated and stored but has no effect on a pty.

Physics:
    Pumping runs in simulated time. Whenever delivery stops (completion, pause, stop, stall,
    rate or direction change while pumping) the infused volume of that stretch goes to
    :meth:`SimulatedWorld.dispense` with the pump's real error: a gain fixed per pump,
    ``1 + volume_error · N(0, 1)``, and 0.2 % + 0.01 µL of noise per stretch. ``DIS`` reports
    the *commanded* displacement, as the pump counts it.
"""

from __future__ import annotations

import binascii
import contextlib
import math
import re
import time
from decimal import ROUND_DOWN, Decimal, InvalidOperation

from simulators._base import DeviceSim
from simulators.faults import Disconnect, FaultConfig, FaultInjector
from simulators.world import SimulatedWorld

STX, ETX, CR = 0x02, 0x03, 0x0D

VERSION = "NE1000V3.928"
BAUD_RATES = (300, 1200, 2400, 9600, 19200)
DIAMETER_RANGE_MM = (0.1, 80.0)
MAX_LINEAR_SPEED_MM_MIN = 51.0
MIN_LINEAR_SPEED_MM_MIN = 0.0007
RATE_UNITS_UL_MIN = {"UM": 1.0, "MM": 1000.0, "UH": 1.0 / 60.0, "MH": 1000.0 / 60.0}
VOLUME_UNITS_UL = {"UL": 1.0, "ML": 1000.0}

_RUNNING = ("I", "W", "X")


class _Refused(Exception):
    """A command refusal: the data after the status character (``?``, ``?NA``…)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def format_number(value: float) -> str:
    """Format like the pump: at most 4 digits and at most 3 decimals (``5.000``, ``26.59``).

    Args:
        value: Non-negative number.
    """
    for decimals in (3, 2, 1, 0):
        text = f"{value:.{decimals}f}"
        if sum(c.isdigit() for c in text) <= 4:
            return text
    return f"{value:.0f}"


def parse_number(text: str) -> float:
    """Parse a pump number, truncating to 4 digits and 3 decimals as the pump does.

    Raises:
        _Refused: ``?`` when not a number, ``?OOR`` when it needs more than 4 integer digits.
    """
    if not re.fullmatch(r"\d+\.?\d*|\.\d+", text):
        raise _Refused("?")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise _Refused("?") from None
    int_digits = max(1, len(str(int(number))))
    if int_digits > 4:
        raise _Refused("?OOR")
    decimals = min(3, 4 - int_digits)
    return float(number.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_DOWN))


def safe_frame(data: bytes) -> bytes:
    """Wrap ``data`` in a safe-mode packet: ``STX len data CRC-hi CRC-lo ETX``."""
    crc = binascii.crc_hqx(data, 0)
    return bytes([STX, len(data) + 4]) + data + bytes([crc >> 8, crc & 0xFF, ETX])


class NE1000Sim(DeviceSim):
    """Simulated NE-1000 syringe pump.

    Args:
        world: Shared simulated world.
        role: Liquid this pump dispenses (``precursor``, ``solvent``...), the world's params key.
        address: Pump address 0-99.
        volume_error: Relative standard deviation of the pump's fixed volume gain error.
        faults: Fault settings or injector.
        seed: Seed of the pump's own errors; derived from the world's seed, role and address
            when None.
        diameter_mm: Power-on syringe diameter, mm.
        station: Deck station the pump dispenses at (None: wherever the sample is).
    """

    def __init__(
        self,
        world: SimulatedWorld,
        *,
        role: str = "precursor",
        address: int = 0,
        volume_error: float = 0.01,
        faults: FaultConfig | FaultInjector | None = None,
        seed: int | None = None,
        diameter_mm: float = 26.59,
        station: str | None = None,
    ) -> None:
        super().__init__(
            world, faults=faults, seed=seed, seed_parts=(role, address), station=station
        )
        if not 0 <= address <= 99:
            raise ValueError(f"pump address must be 0-99, got {address}")
        self.role = role
        self.gain = 1.0 + volume_error * float(self.rng.standard_normal())
        self._power_on_address = address
        self.diameter_mm = diameter_mm
        self._buffer = bytearray()
        self._power_on(address)
        self._attach()

    # -- state ------------------------------------------------------------------------------
    def _power_on(self, address: int) -> None:
        self.address = address
        self.alarm: str | None = "R"
        self.baud = 19200
        self.safe_timeout_s = 0
        self._reset_program()
        self._infused_ul = 0.0
        self._withdrawn_ul = 0.0
        self._last_packet = time.monotonic()

    def _reset_program(self) -> None:
        self.rate_value, self.rate_units = 1.0, "MM"
        self.volume_value = 1.0
        self.volume_units = "UL" if self.diameter_mm <= 14.0 else "ML"
        self.direction = "INF"
        self.phase = "S"
        self._remaining_ul: float | None = None
        self._seg_start = 0.0
        self._seg_rate = 0.0

    @property
    def rate_ul_min(self) -> float:
        """Programmed rate, µL/min."""
        return self.rate_value * RATE_UNITS_UL_MIN[self.rate_units]

    def rate_limits_ul_min(self, diameter_mm: float | None = None) -> tuple[float, float]:
        """(min, max) rate in µL/min for a syringe diameter (the current one by default)."""
        d = self.diameter_mm if diameter_mm is None else diameter_mm
        area_mm2 = math.pi * d * d / 4.0
        return area_mm2 * MIN_LINEAR_SPEED_MM_MIN, area_mm2 * MAX_LINEAR_SPEED_MM_MIN

    # -- physics ------------------------------------------------------------------------------
    def _segment_volume(self, now: float) -> float:
        """Commanded volume displaced in the running stretch up to ``now``, µL."""
        if self.phase not in _RUNNING:
            return 0.0
        volume = self._seg_rate * max(0.0, now - self._seg_start) / 60.0
        if self._remaining_ul is not None:
            volume = min(volume, self._remaining_ul)
        return volume

    def _end_segment(self, now: float, next_phase: str) -> None:
        """Close the running stretch at ``now``: count it, deliver it, enter ``next_phase``."""
        volume = self._segment_volume(now)
        infusing = self.phase in ("I", "X")
        if infusing:
            self._infused_ul += volume
        else:
            self._withdrawn_ul += volume
        if self._remaining_ul is not None:
            self._remaining_ul -= volume
        if infusing and volume > 0:
            noise = float(self.rng.standard_normal()) * (0.002 * volume + 0.01)
            self.world.dispense(
                self.role,
                max(0.0, volume * self.gain + noise),
                self._seg_rate,
                station=self.station,
            )
        self.phase = next_phase
        self._seg_start = now
        if next_phase == "S":
            self._remaining_ul = None

    def _start_segment(self, now: float, phase: str, rate_ul_min: float) -> None:
        self.phase = phase
        self._seg_start = now
        self._seg_rate = rate_ul_min

    def advance(self, now: float) -> None:
        """Finish a run whose volume has been delivered by simulated time ``now``."""
        if self.phase in _RUNNING and self._remaining_ul is not None and self._seg_rate > 0:
            end = self._seg_start + self._remaining_ul / self._seg_rate * 60.0
            if now >= end:
                self._end_segment(end, "S")

    # -- byte stream ------------------------------------------------------------------------------
    def feed(self, data: bytes) -> bytes | Disconnect | None:
        """Consume bytes from the host; return the pump's replies."""
        out = bytearray()
        with self.world.lock:
            self._buffer += data
            while True:
                frame = self._next_frame()
                if frame is None:
                    break
                result = self._handle_frame(*frame)
                if isinstance(result, Disconnect):
                    self._buffer.clear()
                    return Disconnect(result.seconds, bytes(out) + result.before)
                if result:
                    out += result
        return bytes(out)

    def _next_frame(self) -> tuple[bytes | None, bool] | None:
        """Next complete frame as ``(payload, safe)``; payload None for a bad safe packet."""
        buf = self._buffer
        stx = buf.find(STX)
        cr = -1 if self.safe_timeout_s else buf.find(CR)
        if stx >= 0 and (cr < 0 or stx < cr):
            del buf[:stx]  # stray bytes before a packet
            if len(buf) < 2:
                return None
            length = buf[1]
            if length < 4:
                del buf[:2]
                return None, True
            if len(buf) < 1 + length:
                return None
            packet = bytes(buf[: 1 + length])
            del buf[: 1 + length]
            body, crc = packet[2:-3], packet[-3:-1]
            if packet[-1] != ETX or binascii.crc_hqx(body, 0) != int.from_bytes(crc, "big"):
                return None, True
            return body, True
        if cr >= 0:
            line = bytes(buf[:cr])
            del buf[: cr + 1]
            return line, False
        if self.safe_timeout_s or len(buf) > 256:
            buf.clear()  # basic text is ignored in safe mode; runaway lines are dropped
        return None

    def _frame(self, status: str, data: str = "", safe: bool | None = None) -> bytes:
        payload = f"{self.address:02d}{status}{data}".encode("ascii")
        if safe if safe is not None else bool(self.safe_timeout_s):
            return safe_frame(payload)
        return bytes([STX]) + payload + bytes([ETX])

    def _handle_frame(self, payload: bytes | None, safe: bool) -> bytes | Disconnect | None:
        now = self.world.sync()
        if payload is None:
            return self._frame(self.phase, "?COM")
        if safe:
            self._last_packet = time.monotonic()
        text = "".join(chr(b) for b in payload if 0x20 < b < 0x7F).upper()
        if text.startswith("*"):
            return self._execute(text[1:], now, system=True)
        if "*" in text:
            replies = bytearray()
            for part in text.split("*"):
                m = re.fullmatch(r"(\d)(.*)", part)
                if m and int(m.group(1)) == self.address:
                    reply = self._execute(m.group(2), now, system=False)
                    if isinstance(reply, bytes):
                        replies += reply
            return bytes(replies)
        m = re.fullmatch(r"(\d{1,2})?(.*)", text)
        assert m is not None
        if m.group(1) is not None and int(m.group(1)) != self.address:
            return None
        return self._execute(m.group(2), now, system=False)

    def _execute(self, command: str, now: float, *, system: bool) -> bytes | Disconnect | None:
        kind = self.faults.draw()
        if kind == "busy":
            if self.phase in _RUNNING:
                self._end_segment(now, "S")
            self.phase = "S"
            self._remaining_ul = None
            self.alarm = "S"
        if self.alarm is not None:
            reply = self._frame("A", f"?{self.alarm}")
            self.alarm = None
            return self.faults.transform(kind, reply)
        try:
            data = self._dispatch(command, now, system=system)
            reply = self._frame(self.phase, data)
        except _Refused as refused:
            reply = self._frame(self.phase, refused.code)
        return self.faults.transform(kind, reply)

    def poll(self) -> bytes:
        """Safe-mode watchdog: raise ``A?T`` (sent once, unsolicited) after ``t`` s of silence."""
        with self.world.lock:
            if not self.safe_timeout_s or self.alarm == "T":
                return b""
            if time.monotonic() - self._last_packet <= self.safe_timeout_s:
                return b""
            now = self.world.sync()
            if self.phase in _RUNNING:
                self._end_segment(now, "S")
            self.phase, self._remaining_ul = "S", None
            self.alarm = "T"
            return self._frame("A", "?T", safe=True)

    # -- commands -------------------------------------------------------------------------------
    def _dispatch(self, command: str, now: float, *, system: bool) -> str:
        if system:
            if command.startswith("ADR"):
                return self._cmd_adr(command[3:])
            if command == "RESET":
                if self.phase in _RUNNING:
                    self._end_segment(now, "S")
                self._reset_program()
                self.address, self.safe_timeout_s = 0, 0
                return ""
            raise _Refused("?")
        if command == "":
            return ""
        name, arg = command[:3], command[3:]
        handler = {
            "DIA": self._cmd_dia,
            "RAT": self._cmd_rat,
            "VOL": self._cmd_vol,
            "DIR": self._cmd_dir,
            "RUN": self._cmd_run,
            "PUR": self._cmd_pur,
            "STP": self._cmd_stp,
            "DIS": self._cmd_dis,
            "CLD": self._cmd_cld,
            "VER": self._cmd_ver,
            "SAF": self._cmd_saf,
        }.get(name)
        if handler is None:
            raise _Refused("?")
        return handler(arg, now)

    def _cmd_dia(self, arg: str, now: float) -> str:
        if not arg:
            return format_number(self.diameter_mm)
        if self.phase in _RUNNING:
            raise _Refused("?NA")
        value = parse_number(arg)
        if not DIAMETER_RANGE_MM[0] <= value <= DIAMETER_RANGE_MM[1]:
            raise _Refused("?OOR")
        self.diameter_mm = value
        self.volume_units = "UL" if value <= 14.0 else "ML"
        low, high = self.rate_limits_ul_min()
        rate = min(max(self.rate_ul_min, low), high)
        if rate != self.rate_ul_min:
            with contextlib.suppress(_Refused):
                self.rate_value = parse_number(
                    format_number(rate / RATE_UNITS_UL_MIN[self.rate_units])
                )
        return ""

    def _cmd_rat(self, arg: str, now: float) -> str:
        if not arg:
            return format_number(self.rate_value) + self.rate_units
        m = re.fullmatch(r"([0-9.]+)(UM|MM|UH|MH)?", arg)
        if m is None:
            raise _Refused("?")
        value = parse_number(m.group(1))
        units = m.group(2) or self.rate_units
        if self.phase in _RUNNING and units != self.rate_units:
            raise _Refused("?NA")
        low, high = self.rate_limits_ul_min()
        if not low <= value * RATE_UNITS_UL_MIN[units] <= high:
            raise _Refused("?OOR")
        running = self.phase if self.phase in ("I", "W") else None
        if running:
            self._end_segment(now, running)
        self.rate_value, self.rate_units = value, units
        if running:
            self._start_segment(now, running, self.rate_ul_min)
        return ""

    def _cmd_vol(self, arg: str, now: float) -> str:
        if not arg:
            return format_number(self.volume_value) + self.volume_units
        if self.phase in _RUNNING:
            raise _Refused("?NA")
        if arg in VOLUME_UNITS_UL:
            self.volume_units = arg
            return ""
        self.volume_value = parse_number(arg)
        return ""

    def _cmd_dir(self, arg: str, now: float) -> str:
        if not arg:
            return self.direction
        if arg == "STK":
            if self.phase != "S":
                raise _Refused("?NA")
            return ""
        if arg not in ("INF", "WDR", "REV"):
            raise _Refused("?")
        new = arg if arg != "REV" else ("WDR" if self.direction == "INF" else "INF")
        if self.phase in ("I", "W"):
            if self._remaining_ul is not None:
                raise _Refused("?NA")
            self._end_segment(now, self.phase)
            self._start_segment(now, "I" if new == "INF" else "W", self.rate_ul_min)
        elif self.phase == "X":
            raise _Refused("?NA")
        self.direction = new
        return ""

    def _cmd_run(self, arg: str, now: float) -> str:
        if arg:
            if not arg.isdigit():
                raise _Refused("?")
            if not 1 <= int(arg) <= 41:
                raise _Refused("?OOR")
            if int(arg) != 1:
                raise _Refused("?NA")
        if self.phase in _RUNNING:
            return ""
        if self.phase == "S":
            target = self.volume_value * VOLUME_UNITS_UL[self.volume_units]
            self._remaining_ul = target if target > 0 else None
        if self._remaining_ul is not None and self._remaining_ul <= 0:
            self.phase, self._remaining_ul = "S", None
            return ""
        self._start_segment(now, "I" if self.direction == "INF" else "W", self.rate_ul_min)
        self.advance(now)
        return ""

    def _cmd_pur(self, arg: str, now: float) -> str:
        if arg:
            raise _Refused("?")
        if self.phase in _RUNNING:
            raise _Refused("?NA")
        self._remaining_ul = None
        self._start_segment(now, "X", self.rate_limits_ul_min()[1])
        return ""

    def _cmd_stp(self, arg: str, now: float) -> str:
        if arg:
            raise _Refused("?")
        if self.phase in ("I", "W"):
            self._end_segment(now, "P")
        elif self.phase in ("X", "P"):
            if self.phase == "X":
                self._end_segment(now, "S")
            self.phase, self._remaining_ul = "S", None
        return ""

    def _counters_ul(self, now: float) -> tuple[float, float]:
        live = self._segment_volume(now)
        if self.phase in ("I", "X"):
            return self._infused_ul + live, self._withdrawn_ul
        return self._infused_ul, self._withdrawn_ul + live

    def _cmd_dis(self, arg: str, now: float) -> str:
        if arg:
            raise _Refused("?")
        infused, withdrawn = (max(0.0, v) for v in self._counters_ul(now))
        scale = VOLUME_UNITS_UL[self.volume_units]
        return (
            f"I{format_number(infused / scale)}W{format_number(withdrawn / scale)}"
            f"{self.volume_units}"
        )

    def _cmd_cld(self, arg: str, now: float) -> str:
        live = self._segment_volume(now)
        if arg == "INF":
            self._infused_ul = -live if self.phase in ("I", "X") else 0.0
        elif arg == "WDR":
            self._withdrawn_ul = -live if self.phase == "W" else 0.0
        else:
            raise _Refused("?")
        return ""

    def _cmd_ver(self, arg: str, now: float) -> str:
        if arg:
            raise _Refused("?NA")
        return VERSION

    def _cmd_saf(self, arg: str, now: float) -> str:
        if not arg:
            return str(self.safe_timeout_s)
        if not arg.isdigit():
            raise _Refused("?")
        value = int(arg)
        if value > 255:
            raise _Refused("?OOR")
        self.safe_timeout_s = value
        self._last_packet = time.monotonic()
        return ""

    def _cmd_adr(self, arg: str) -> str:
        if not arg:
            return str(self.address)
        m = re.fullmatch(r"(\d+)(?:B(\d+))?", arg)
        if m is None:
            raise _Refused("?")
        address = int(m.group(1))
        baud = int(m.group(2)) if m.group(2) else self.baud
        if address > 99 or baud not in BAUD_RATES:
            raise _Refused("?OOR")
        self.address, self.baud = address, baud
        return ""
