"""Keysight E4980A-like SCPI LCR meter simulator (raw socket), from ``scpi-lcr.md``.

Framing: program messages end with LF (a CR before it is ignored); units are joined with ``;``;
a leading ``:`` restarts at the root, otherwise a unit after a compound command continues at
that command's parent node (SCPI path rule; common ``*`` commands do not move the path).
Keywords are case-insensitive in short or long form (``FREQ``/``FREQUENCY``), optional nodes may
be omitted (``[:CW]``). The replies of all queries of one message are joined with ``;`` and end
with LF.

Implemented commands:
    ``*IDN? *RST *CLS *OPC *OPC? *ESR? *ESE[?] *SRE[?] *STB? *TRG *WAI *TST? *OPT?``;
    ``:FREQ[:CW]`` (20 Hz-2 MHz, suffixes HZ/KHZ/MHZ, MIN/MAX), ``:VOLT[:LEV]`` (0-2 V),
    ``:CURR[:LEV]`` (0-20 mA), ``:FUNC:IMP[:TYPE]`` (CPD CPQ CPG CPRP CSD CSQ CSRS LPD LPQ LPG
    LPRP LPRD LSD LSQ LSRS LSRD RX ZTD ZTR GB YTD YTR VDID), ``:FUNC:IMP:RANG[:AUTO]``,
    ``:APER``, ``:TRIG:SOUR INT|EXT|BUS|HOLD``, ``:TRIG[:IMM]``, ``:INIT[:IMM]``,
    ``:INIT:CONT``, ``:ABOR``, ``:FETC[:IMP][:FORM]?``, ``:FETC:IMP:CORR?``, ``:FORM[:DATA]``,
    ``:FORM:ASC:LONG``, ``:SYST:ERR[:NEXT]?``, ``:BIAS:STAT``, ``:BIAS:VOLT[:LEV]``,
    ``:CORR:OPEN[:STAT]``, ``:CORR:SHOR[:STAT]``.

Refused as a SCPI instrument does (error queued, command not executed, a failing query sends no
reply): unknown header ``-113``; out-of-range value ``-222`` (setting unchanged); unknown
mnemonic ``-141``; non-numeric where a number is expected ``-104``; bad unit suffix ``-131``;
missing parameter ``-109``; extra parameter ``-108``; ``*TRG``/``:TRIG`` while not waiting for a
trigger ``-211``; ``:INIT`` while already initiated ``-213``; ``:FORM REAL`` ``-221`` (ASCII only).
Error classes set ESR bits (-1xx CME, -2xx EXE, -3xx DDE, -4xx QYE); the queue holds 10 and
then replaces its last entry with ``-350``. The list sweep (``:LIST``), ``:DISP`` and the
comparator are not implemented (``-113``).

Quirks and decisions where the sheet is silent:
    * Power-on state = ``*RST`` state: 1 kHz, 1 V, ``CPD``, ``:TRIG:SOUR INT``, ``:INIT:CONT
      OFF``, no data (``:FETC?`` → ``+9.90000E+37,+9.90000E+37,-1``). PON (ESR bit 7) is set
      at power-on. ``*RST`` keeps the error queue and status registers.
    * Trigger model: ``:INIT`` arms once, ``:INIT:CONT ON`` keeps re-arming. With ``INT`` an
      armed meter measures at once (and, continuous, again at every ``:FETC?``, which returns a
      fresh result); ``:TRIG[:IMM]`` triggers an armed meter from any source; ``*TRG`` only
      with ``BUS``. ``*TRG`` does not put data in the output buffer unless
      ``trg_returns_data=True`` (the HP 4284A behaviour).
    * Measurements are instantaneous; ``*OPC?`` answers ``1``. Each measurement calls
      :meth:`SimulatedWorld.impedance` at the test frequency (which marks the sample measured).
    * ``D``/``Q``: ``D = -R/X`` (series C), ``G/B`` (parallel C), ``R/X`` (series L), ``-G/B``
      (parallel L); ``Q = 1/D``. ``Rdc`` of ``LSRD``/``LPRD`` is the DC resistance; ``VDID``
      reads 0 V, 0 A (no DC bias source).
    * A new TCP connection starts with an empty input buffer; several connections share one
      instrument.
"""

from __future__ import annotations

import cmath
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from simulators._base import DeviceSim
from simulators.faults import Disconnect, FaultConfig, FaultInjector
from simulators.world import SimulatedWorld

IDN = "Keysight Technologies,E4980A,MY12345678,A.02.10"
FREQ_RANGE_HZ = (20.0, 2e6)
VOLT_RANGE_V = (0.0, 2.0)
CURR_RANGE_A = (0.0, 0.02)
IMPEDANCE_RANGES_OHM = (1.0, 10.0, 100.0, 300.0, 1e3, 3e3, 1e4, 3e4, 1e5)
NO_DATA = 9.9e37
MAX_ERRORS = 10
FUNCTIONS = (
    *("CPD", "CPQ", "CPG", "CPRP", "CSD", "CSQ", "CSRS"),
    *("LPD", "LPQ", "LPG", "LPRP", "LPRD", "LSD", "LSQ", "LSRS", "LSRD"),
    *("RX", "ZTD", "ZTR", "GB", "YTD", "YTR", "VDID"),
)

ERROR_MESSAGES = {
    0: "No error",
    -100: "Command error",
    -102: "Syntax error",
    -104: "Data type error",
    -108: "Parameter not allowed",
    -109: "Missing parameter",
    -113: "Undefined header",
    -131: "Invalid suffix",
    -141: "Invalid character data",
    -200: "Execution error",
    -211: "Trigger ignored",
    -213: "Init ignored",
    -221: "Settings conflict",
    -222: "Data out of range",
    -224: "Illegal parameter value",
    -350: "Queue overflow",
}

_SUFFIXES = {
    "HZ": {"HZ": 1.0, "KHZ": 1e3, "MHZ": 1e6, "MAHZ": 1e6},
    "V": {"V": 1.0, "MV": 1e-3, "UV": 1e-6},
    "A": {"A": 1.0, "MA": 1e-3, "UA": 1e-6},
    "OHM": {"OHM": 1.0, "KOHM": 1e3, "MOHM": 1e6},
}
_NUMBER = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z]*)")


class ScpiError(Exception):
    """A SCPI error to queue: ``code`` from :data:`ERROR_MESSAGES`."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def nr3(value: float, long: bool = False) -> str:
    """SCPI NR3 text of fixed length: ``+1.00112E+03`` (12 chars) or 16 chars when ``long``."""
    value = max(min(value, NO_DATA), -NO_DATA)
    return f"{value:+.{9 if long else 5}E}"


def _parse_number(text: str, unit: str, limits: tuple[float, float] | None = None) -> float:
    word = text.strip().upper()
    if limits is not None and word in ("MIN", "MINIMUM"):
        return limits[0]
    if limits is not None and word in ("MAX", "MAXIMUM"):
        return limits[1]
    m = _NUMBER.fullmatch(text.strip())
    if m is None:
        raise ScpiError(-104)
    value = float(m.group(1))
    suffix = m.group(2).upper()
    if suffix:
        scale = _SUFFIXES[unit].get(suffix)
        if scale is None:
            raise ScpiError(-131)
        value *= scale
    return value


def _parse_bool(text: str) -> bool:
    word = text.strip().upper()
    if word in ("ON", "OFF"):
        return word == "ON"
    m = _NUMBER.fullmatch(word)
    if m is None or m.group(2):
        raise ScpiError(-141)
    return round(float(m.group(1))) != 0


def _bool(value: bool) -> str:
    return "1" if value else "0"


def _keyword(word: str) -> tuple[str, str]:
    """(short, long) forms of a keyword written as ``FREQuency``."""
    short = "".join(c for c in word if c.isupper() or c.isdigit())
    return short, word.upper()


@dataclass(frozen=True)
class _Node:
    short: str
    long: str
    optional: bool

    def matches(self, word: str) -> bool:
        return word in (self.short, self.long)


def _compile(pattern: str) -> tuple[_Node, ...]:
    """``"FREQuency[:CW]"`` → nodes; ``[...]`` marks an optional node."""
    nodes = []
    for optional, word in re.findall(r"(\[?):?([A-Za-z0-9]+)\]?", pattern):
        short, long = _keyword(word)
        nodes.append(_Node(short, long, bool(optional)))
    return tuple(nodes)


def _match(nodes: tuple[_Node, ...], words: list[str]) -> bool:
    if not nodes:
        return not words
    head, rest = nodes[0], nodes[1:]
    if words and head.matches(words[0]) and _match(rest, words[1:]):
        return True
    return head.optional and _match(rest, words)


@dataclass(frozen=True)
class _Command:
    nodes: tuple[_Node, ...]
    setter: Callable[[list[str]], None] | None
    query: Callable[[list[str]], str] | None


class ScpiLcrSim(DeviceSim):
    """Simulated E4980A-like LCR meter.

    Args:
        world: Shared simulated world.
        faults: Fault settings or injector.
        seed: Seed of the meter's own generator (unused by the physics; kept for symmetry).
        trg_returns_data: Whether ``*TRG`` also returns the measurement like ``:FETC?``.
        idn: The ``*IDN?`` reply.
        station: Deck station of the probes (None: it measures the sample wherever it is;
            elsewhere it measures an open circuit).
    """

    def __init__(
        self,
        world: SimulatedWorld,
        *,
        faults: FaultConfig | FaultInjector | None = None,
        seed: int | None = None,
        trg_returns_data: bool = False,
        idn: str = IDN,
        station: str | None = None,
    ) -> None:
        super().__init__(world, faults=faults, seed=seed, seed_parts=("lcr",), station=station)
        self.trg_returns_data = trg_returns_data
        self.idn = idn
        self._buffer = bytearray()
        self.errors: list[int] = []
        self.esr = 0x80  # PON
        self.ese = 0
        self.sre = 0
        self._commands = self._build_table()
        self._reset()

    # -- state ----------------------------------------------------------------------------
    def _reset(self) -> None:
        self.frequency_hz = 1e3
        self.voltage_v = 1.0
        self.current_a = 0.01
        self.drive = "VOLT"
        self.function = "CPD"
        self.range_ohm = 1e5
        self.range_auto = True
        self.aperture = ("MED", 1)
        self.trigger_source = "INT"
        self.continuous = False
        self.armed = False
        self.long_format = False
        self.bias_on = False
        self.bias_v = 0.0
        self.open_correction = False
        self.short_correction = False
        self.data: tuple[float, float, int] | None = None
        self.last_z: complex | None = None

    def _error(self, code: int) -> None:
        if code <= -400:
            self.esr |= 0x04
        elif code <= -300:
            self.esr |= 0x08
        elif code <= -200:
            self.esr |= 0x10
        elif code <= -100:
            self.esr |= 0x20
        if len(self.errors) >= MAX_ERRORS:
            self.errors[-1] = -350
        else:
            self.errors.append(code)

    # -- measurement ------------------------------------------------------------------------
    def _measure(self) -> None:
        z = self.world.impedance(self.frequency_hz, station=self.station) * (
            1.0 + self.faults.drift
        )
        self.last_z = z
        a, b = self._compute(z)
        self.data = (a, b, 0)

    def _compute(self, z: complex) -> tuple[float, float]:
        omega = 2 * math.pi * self.frequency_hz
        r, x = z.real, z.imag
        y = 1 / z
        g, b = y.real, y.imag
        fn = self.function
        if fn in ("ZTD", "ZTR"):
            theta = cmath.phase(z)
            return abs(z), math.degrees(theta) if fn == "ZTD" else theta
        if fn in ("YTD", "YTR"):
            theta = cmath.phase(y)
            return abs(y), math.degrees(theta) if fn == "YTD" else theta
        if fn == "RX":
            return r, x
        if fn == "GB":
            return g, b
        if fn == "VDID":
            return 0.0, 0.0
        kind, circuit, second = fn[0], fn[1], fn[2:]
        if kind == "C":
            primary = b / omega if circuit == "P" else -1 / (omega * x)
            d = g / b if circuit == "P" else -r / x
        else:
            primary = -1 / (omega * b) if circuit == "P" else x / omega
            d = -g / b if circuit == "P" else r / x
        if second == "D":
            return primary, d
        if second == "Q":
            return primary, 1 / d
        if second == "G":
            return primary, g
        if second == "RP":
            return primary, 1 / g
        if second == "RS":
            return primary, r
        if second == "RD":
            return primary, self.world.impedance(0.0, station=self.station).real
        raise AssertionError(fn)

    def _fetch(self) -> str:
        if self.armed and self.continuous and self.trigger_source == "INT":
            self._measure()
        if self.data is None:
            a, b, status = NO_DATA, NO_DATA, -1
        else:
            a, b, status = self.data
        return f"{nr3(a, self.long_format)},{nr3(b, self.long_format)},{status:+d}"

    def _trigger(self) -> None:
        if not self.armed:
            raise ScpiError(-211)
        self._measure()
        if not self.continuous:
            self.armed = False

    # -- byte stream ------------------------------------------------------------------------
    def on_connect(self) -> bytes:
        """A new connection starts with an empty input buffer."""
        with self.world.lock:
            self._buffer.clear()
        return b""

    def feed(self, data: bytes) -> bytes | Disconnect | None:
        """Consume bytes from the host; return the replies (LF-terminated)."""
        out = bytearray()
        with self.world.lock:
            self._buffer += data
            while (nl := self._buffer.find(b"\n")) >= 0:
                line = bytes(self._buffer[:nl]).rstrip(b"\r")
                del self._buffer[: nl + 1]
                result = self._message(line.decode("ascii", errors="replace"))
                if isinstance(result, Disconnect):
                    self._buffer.clear()
                    return Disconnect(result.seconds, bytes(out) + result.before)
                if result:
                    out += result
        return bytes(out)

    def _message(self, line: str) -> bytes | Disconnect | None:
        if not line.strip():
            return b""
        self.world.sync()
        kind = self.faults.draw()
        if kind == "busy":
            self._error(-200)
            return self.faults.transform(kind, b"")
        replies = []
        path: list[str] = []
        for unit in line.split(";"):
            try:
                reply, path = self._unit(unit.strip(), path)
            except ScpiError as err:
                self._error(err.code)
                path = []
                continue
            if reply is not None:
                replies.append(reply)
        out = (";".join(replies) + "\n").encode("ascii") if replies else b""
        return self.faults.transform(kind, out)

    def _unit(self, unit: str, path: list[str]) -> tuple[str | None, list[str]]:
        """Execute one message unit; return its reply (None for none) and the new path."""
        if not unit:
            return None, path
        header, _, params_text = unit.partition(" ")
        if "\t" in header:
            header, _, rest = header.partition("\t")
            params_text = rest + " " + params_text
        params = [p.strip() for p in params_text.split(",")] if params_text.strip() else []
        query = header.endswith("?")
        header = header.rstrip("?").upper()
        if header.startswith("*"):
            return self._common(header, query, params), path
        absolute = header.startswith(":")
        words = [w for w in header.lstrip(":").split(":")]
        if not all(words):
            raise ScpiError(-102)
        full = words if absolute else path + words
        for command in self._commands:
            if _match(command.nodes, full):
                handler = command.query if query else command.setter
                if handler is None:
                    raise ScpiError(-113)
                reply = handler(params)
                return (reply if query else None), full[:-1]
        raise ScpiError(-113)

    def _common(self, header: str, query: bool, params: list[str]) -> str | None:
        name = header + ("?" if query else "")
        no_params = name not in ("*ESE", "*SRE")
        if no_params and params:
            raise ScpiError(-108)
        if name == "*IDN?":
            return self.idn
        if name == "*RST":
            self._reset()
            return None
        if name == "*CLS":
            self.errors.clear()
            self.esr = 0
            return None
        if name == "*OPC?":
            return "1"
        if name == "*OPC":
            self.esr |= 0x01
            return None
        if name == "*ESR?":
            value, self.esr = self.esr, 0
            return str(value)
        if name in ("*ESE", "*SRE"):
            if len(params) != 1:
                raise ScpiError(-109 if not params else -108)
            value = round(_parse_number(params[0], "V"))
            if not 0 <= value <= 255:
                raise ScpiError(-222)
            setattr(self, name[1:].lower(), value)
            return None
        if name == "*ESE?":
            return str(self.ese)
        if name == "*SRE?":
            return str(self.sre)
        if name == "*STB?":
            esb = 0x20 if self.esr & self.ese else 0
            eav = 0x04 if self.errors else 0
            stb = esb | eav
            return str(stb | (0x40 if stb & self.sre else 0))
        if name == "*TRG":
            if self.trigger_source != "BUS":
                raise ScpiError(-211)
            self._trigger()
            return self._fetch() if self.trg_returns_data else None
        if name == "*WAI":
            return None
        if name == "*TST?":
            return "0"
        if name == "*OPT?":
            return "0"
        raise ScpiError(-113)

    # -- command table -------------------------------------------------------------------------
    def _build_table(self) -> list[_Command]:
        def one(params: list[str]) -> str:
            if not params:
                raise ScpiError(-109)
            if len(params) > 1:
                raise ScpiError(-108)
            return params[0]

        def none(params: list[str]) -> None:
            if params:
                raise ScpiError(-108)

        def ranged(text: str, unit: str, limits: tuple[float, float]) -> float:
            value = _parse_number(text, unit, limits)
            if not limits[0] <= value <= limits[1]:
                raise ScpiError(-222)
            return value

        def set_freq(p: list[str]) -> None:
            self.frequency_hz = ranged(one(p), "HZ", FREQ_RANGE_HZ)

        def set_volt(p: list[str]) -> None:
            self.voltage_v = ranged(one(p), "V", VOLT_RANGE_V)
            self.drive = "VOLT"

        def set_curr(p: list[str]) -> None:
            self.current_a = ranged(one(p), "A", CURR_RANGE_A)
            self.drive = "CURR"

        def set_function(p: list[str]) -> None:
            word = one(p).upper()
            if word not in FUNCTIONS:
                raise ScpiError(-141)
            self.function = word

        def set_range(p: list[str]) -> None:
            value = ranged(one(p), "OHM", (0.0, IMPEDANCE_RANGES_OHM[-1]))
            self.range_ohm = next(r for r in IMPEDANCE_RANGES_OHM if r >= value)
            self.range_auto = False

        def set_range_auto(p: list[str]) -> None:
            self.range_auto = _parse_bool(one(p))

        def set_aperture(p: list[str]) -> None:
            if not p:
                raise ScpiError(-109)
            if len(p) > 2:
                raise ScpiError(-108)
            word = p[0].upper()
            speed = {"SHOR": "SHOR", "SHORT": "SHOR", "MED": "MED", "MEDIUM": "MED"}.get(
                word, "LONG" if word == "LONG" else None
            )
            if speed is None:
                raise ScpiError(-141)
            average = self.aperture[1]
            if len(p) == 2:
                average = round(_parse_number(p[1], "V"))
                if not 1 <= average <= 256:
                    raise ScpiError(-222)
            self.aperture = (speed, average)

        def set_source(p: list[str]) -> None:
            word = one(p).upper()
            source = {
                "INT": "INT",
                "INTERNAL": "INT",
                "EXT": "EXT",
                "EXTERNAL": "EXT",
                "BUS": "BUS",
                "HOLD": "HOLD",
            }.get(word)
            if source is None:
                raise ScpiError(-141)
            self.trigger_source = source

        def trigger(p: list[str]) -> None:
            none(p)
            self._trigger()

        def initiate(p: list[str]) -> None:
            none(p)
            if self.armed:
                raise ScpiError(-213)
            self.armed = True
            if self.trigger_source == "INT":
                self._trigger()

        def set_continuous(p: list[str]) -> None:
            self.continuous = _parse_bool(one(p))
            if self.continuous and not self.armed:
                self.armed = True
                if self.trigger_source == "INT":
                    self._measure()

        def abort(p: list[str]) -> None:
            none(p)
            self.armed = False

        def fetch(p: list[str]) -> str:
            none(p)
            return self._fetch()

        def fetch_corrected(p: list[str]) -> str:
            none(p)
            if self.armed and self.continuous and self.trigger_source == "INT":
                self._measure()
            if self.last_z is None:
                return f"{nr3(NO_DATA)},{nr3(NO_DATA)}"
            z = self.last_z
            return f"{nr3(z.real, self.long_format)},{nr3(z.imag, self.long_format)}"

        def set_format(p: list[str]) -> None:
            word = one(p).upper()
            if word in ("REAL", "REAL64"):
                raise ScpiError(-221)
            if word not in ("ASC", "ASCII"):
                raise ScpiError(-141)

        def set_long(p: list[str]) -> None:
            self.long_format = _parse_bool(one(p))

        def set_bias_state(p: list[str]) -> None:
            self.bias_on = _parse_bool(one(p))

        def set_bias_volt(p: list[str]) -> None:
            value = _parse_number(one(p), "V")
            if value not in (0.0, 1.5, 2.0):
                raise ScpiError(-222)
            self.bias_v = value

        def correction(p: list[str]) -> None:
            none(p)

        def set_open(p: list[str]) -> None:
            self.open_correction = _parse_bool(one(p))

        def set_short(p: list[str]) -> None:
            self.short_correction = _parse_bool(one(p))

        def next_error(p: list[str]) -> str:
            none(p)
            code = self.errors.pop(0) if self.errors else 0
            return f'{code},"{ERROR_MESSAGES.get(code, "Error")}"'

        def q(getter: Callable[[], str]) -> Callable[[list[str]], str]:
            def query(p: list[str]) -> str:
                none(p)
                return getter()

            return query

        table: list[
            tuple[str, Callable[[list[str]], None] | None, Callable[[list[str]], str] | None]
        ] = [
            ("FREQuency[:CW]", set_freq, q(lambda: nr3(self.frequency_hz))),
            ("VOLTage[:LEVel]", set_volt, q(lambda: nr3(self.voltage_v))),
            ("CURRent[:LEVel]", set_curr, q(lambda: nr3(self.current_a))),
            ("FUNCtion:IMPedance[:TYPE]", set_function, q(lambda: self.function)),
            ("FUNCtion:IMPedance:RANGe", set_range, q(lambda: nr3(self.range_ohm))),
            (
                "FUNCtion:IMPedance:RANGe:AUTO",
                set_range_auto,
                q(lambda: _bool(self.range_auto)),
            ),
            ("APERture", set_aperture, q(lambda: f"{self.aperture[0]},{self.aperture[1]}")),
            ("TRIGger:SOURce", set_source, q(lambda: self.trigger_source)),
            ("TRIGger[:IMMediate]", trigger, None),
            ("INITiate[:IMMediate]", initiate, None),
            ("INITiate:CONTinuous", set_continuous, q(lambda: _bool(self.continuous))),
            ("ABORt", abort, None),
            ("FETCh[:IMPedance][:FORMatted]", None, fetch),
            ("FETCh:IMPedance:CORRected", None, fetch_corrected),
            ("FORMat[:DATA]", set_format, q(lambda: "ASC")),
            ("FORMat:ASCii:LONG", set_long, q(lambda: _bool(self.long_format))),
            ("SYSTem:ERRor[:NEXT]", None, next_error),
            ("BIAS:STATe", set_bias_state, q(lambda: _bool(self.bias_on))),
            ("BIAS:VOLTage[:LEVel]", set_bias_volt, q(lambda: nr3(self.bias_v))),
            ("CORRection:OPEN[:EXECute]", correction, None),
            ("CORRection:OPEN:STATe", set_open, q(lambda: _bool(self.open_correction))),
            ("CORRection:SHORt[:EXECute]", correction, None),
            ("CORRection:SHORt:STATe", set_short, q(lambda: _bool(self.short_correction))),
        ]
        return [_Command(_compile(pattern), setter, query) for pattern, setter, query in table]
