"""INFICON SQC-310 thin-film deposition controller, serial protocol (sheet ``sqc-310.md``).

A quartz-crystal-monitor controller: it runs a *process* of *layers*; each layer deposits one
*film* (name, material, tooling set up on the controller) to a final thickness and closes the
shutter when it is reached. The host selects film and thickness, starts the process, polls the
run state and reads back the thickness the crystal measured.

Link: RS-232, 19200 baud 8N1 by default, no handshake; one command packet, one reply packet.

Framing (sheet §2)::

    command   '!'  LEN  MSG  CRC1  CRC2            LEN = len(MSG) + 34
    reply     '!'  LEN  STATUS  MSG  CRC1  CRC2    LEN = len(STATUS + MSG) + 35

The 14-bit CRC covers ``LEN`` and what follows it up to the CRC (not the ``'!'``), and travels
as two printable bytes (:func:`crc14`). The driver always sends the CRC (never the two-NUL "do
not check" form) and checks it on every reply: a bad CRC, a wrong ``LEN``, a missing ``'!'`` or a
truncated packet raise :class:`~drivers.errors.GarbledReply`; no reply at all raises
:class:`~drivers.errors.DriverTimeout`.

Reply status: ``A`` done; ``B`` done, and the controller was reset or power-cycled since the
last command (kept in :attr:`Sqc310.was_reset`, logged at INFO); ``C`` invalid command, ``D`` bad
data, ``E`` not allowed now (e.g. a layer changed while the process runs) raise
:class:`Sqc310Error` with that letter as ``code``. The answer text is ``MSG.strip()`` (the
controller puts a space after the status).

Retries: queries and parameter sets are idempotent and are sent again after a time-out or a
garbled reply (``retries`` times); so are ``U1`` (stop, the safe direction) and ``U32`` (zero).
``U0`` (start) is **never** sent twice: after a lost reply the driver reads the run state
(``V``) to learn whether the process started (:meth:`Sqc310.start`). ``U5`` (force final
thickness) is not repeated either: a second one would end the *next* layer of the process.
Status ``C``/``D``/``E`` replies are not retried.

Units: film and layer parameters are integers scaled by the decimals the front panel shows; a
layer's final thickness travels in Å (displayed kÅ × 1000; 1 nm = 10 Å). Thickness read-backs
(``N``, ``O``) are decimal kÅ (1 kÅ = 100 nm). The driver's API uses nm for thickness, Å/s for
rate, Hz for frequency and s for time.
"""

from __future__ import annotations

import logging
import math
import operator
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TypeVar

from drivers._base import Instrument
from drivers.errors import (
    DeviceReportedError,
    DriverError,
    DriverTimeout,
    GarbledReply,
    SafetyLimitError,
)
from drivers.transport import PortLike, retry_idempotent

__all__ = [
    "DepositionFault",
    "DepositionLimits",
    "RunState",
    "Sqc310",
    "Sqc310Error",
    "crc14",
    "frame_command",
    "parse_reply",
]

_log = logging.getLogger(__name__)

T = TypeVar("T")

SYNC = b"!"
COMMAND_LEN_OFFSET = 34
"""Command ``LEN`` = ``len(MSG)`` + this."""
REPLY_LEN_OFFSET = 35
"""Reply ``LEN`` = ``len(STATUS + MSG)`` + this."""
MAX_MESSAGE = 255 - COMMAND_LEN_OFFSET
"""Longest command ``MSG`` that fits the one-byte ``LEN``, characters."""

STATUS_TEXT = {
    "A": "command understood and done",
    "B": "done; the controller was reset or power-cycled since the last command",
    "C": "invalid command",
    "D": "problem with the data of the command (out of range, wrong count)",
    "E": "not allowed in the current mode (e.g. a layer changed while the process runs)",
}

PHASE_TEXT = {
    0: "stopped",
    1: "crystal verify",
    2: "initialise layer",
    7: "ramp 1",
    8: "soak 1",
    9: "ramp 2",
    10: "soak 2",
    12: "shutter delay",
    13: "deposit",
    14: "rate ramp",
    22: "idle ramp",
    24: "crystal fail",
    25: "stop layer",
    27: "sensor feedback time-out",
    28: "source feedback time-out",
    29: "invalid crystal position",
    30: "invalid pocket position",
    33: "crystal fail, halted",
}
"""Run-state phase (first number of ``V``) → meaning (sheet §3)."""
FAULT_PHASES = frozenset({24, 27, 28, 29, 30, 33})
"""Phases in which the shutter closed before the layer reached its thickness."""

FILM_PARAM_MATERIAL = 4
"""``A2`` parameter: material number in the controller's material table."""
FILM_PARAM_TOOLING = 6
"""``A2`` parameter: tooling, % (integer)."""
LAYER_PARAM_THICKNESS = 2
"""``D`` parameter: final thickness, Å (integer; displayed kÅ × 1000)."""
LAYER_PARAM_FILM = 7
"""``D`` parameter: the film the layer deposits (sheet: assumed parameter number)."""

RUN_START = 0
RUN_STOP = 1
RUN_FORCE_FINAL = 5
RUN_ZERO_THICKNESS = 32

MAX_FILM = 99
"""Highest film number (sheet: assumed range 1–99)."""
MAX_LAYER = 999
"""Highest layer number the driver sends (not given by the sheet; a sanity bound)."""
MAX_PROCESS = 50
"""Highest process number (manual: 1–50)."""
MAX_CHANNEL = 4
"""Highest sensor or output number (manual: 1–4)."""

NM_PER_KA = 100
"""1 kÅ = 100 nm."""
ANGSTROM_PER_NM = 10
"""1 nm = 10 Å."""


# ---------------------------------------------------------------------------------- errors


class Sqc310Error(DeviceReportedError):
    """The controller answered with status ``C``, ``D`` or ``E``, or reported a fault.

    Build it with :meth:`from_status` (the one place that maps a status letter to an error) or
    one of the named constructors.

    Attributes:
        code: ``"C"`` invalid command, ``"D"`` bad data, ``"E"`` not allowed in the current
            mode; ``"B"`` for :meth:`reset_during`; the phase number for
            :class:`DepositionFault`.
        command: The command ``MSG`` that got the reply, e.g. ``"D1 2,50"`` (empty if none).
    """

    def __init__(
        self, message: str = "", *, device: str | None = None, code: str = "", command: str = ""
    ) -> None:
        super().__init__(message, device=device, code=code)
        self.command = command

    @classmethod
    def from_status(cls, status: str, command: str, *, device: str | None = None) -> Sqc310Error:
        """The error for a ``C``, ``D`` or ``E`` reply to ``command``.

        Raises:
            KeyError: ``status`` is not ``C``, ``D`` or ``E``.
        """
        return _STATUS_ERRORS[status](command, device=device)

    @classmethod
    def invalid_command(cls, command: str, *, device: str | None = None) -> Sqc310Error:
        """Status ``C``: the controller does not know ``command``."""
        return cls(
            f"{command!r} was refused as an invalid command (status C); the controller's "
            "firmware may not support it: check the command against its manual",
            device=device,
            code="C",
            command=command,
        )

    @classmethod
    def invalid_data(cls, command: str, *, device: str | None = None) -> Sqc310Error:
        """Status ``D``: a value in ``command`` is out of range, or the count is wrong."""
        return cls(
            f"{command!r} was refused for its data (status D: out of range or wrong count); "
            "nothing was changed: check the film, layer or parameter number and the value",
            device=device,
            code="D",
            command=command,
        )

    @classmethod
    def wrong_mode(cls, command: str, *, device: str | None = None) -> Sqc310Error:
        """Status ``E``: ``command`` is not allowed now (e.g. while the process runs)."""
        return cls(
            f"{command!r} is not allowed in the current mode (status E: e.g. a layer changed "
            "or a start sent while the process runs); read run_state(), stop the process if "
            "it should not run, then send it again",
            device=device,
            code="E",
            command=command,
        )

    @classmethod
    def reset_during(cls, command: str, *, device: str | None = None) -> Sqc310Error:
        """Status ``B`` in the middle of a deposit: the controller was reset or power-cycled."""
        return cls(
            f"the controller reported a reset or power cycle (status B, reply to {command!r}) "
            "during the deposit; the layer is not verified and the sample is not usable: check "
            "the controller and its process set-up before depositing again",
            device=device,
            code="B",
            command=command,
        )


_STATUS_ERRORS: dict[str, Callable[..., Sqc310Error]] = {
    "C": Sqc310Error.invalid_command,
    "D": Sqc310Error.invalid_data,
    "E": Sqc310Error.wrong_mode,
}
"""Error status letter → named constructor of :class:`Sqc310Error` (the only mapping)."""


class DepositionFault(Sqc310Error):
    """The process entered a fault phase (crystal fail, feedback time-out, bad position).

    The shutter closed before the layer reached its final thickness; the sample is not usable.

    Attributes:
        code: The phase number as text, e.g. ``"24"``.
        state: The run state that showed the fault.
    """

    def __init__(
        self,
        message: str = "",
        *,
        device: str | None = None,
        code: str = "",
        command: str = "V",
        state: RunState | None = None,
    ) -> None:
        super().__init__(message, device=device, code=code, command=command)
        self.state = state

    @classmethod
    def from_state(cls, state: RunState, *, device: str | None = None) -> DepositionFault:
        """The fault shown by ``state`` (a :class:`RunState` with ``fault`` true)."""
        return cls(
            f"deposit fault in process {state.process} layer {state.layer}: phase "
            f"{state.phase} ({state.description}) after {state.elapsed_s:g} s; the shutter closed, "
            "the layer did not reach its thickness and the sample is not usable: check the "
            "crystal and the source, then start again on a new sample",
            device=device,
            code=str(state.phase),
            state=state,
        )


# ---------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class DepositionLimits:
    """Host-side limits checked before any byte is sent.

    Attributes:
        max_thickness_nm: Largest layer final thickness, nm (the campaign's or workcell's
            limit, whichever is smaller).
    """

    max_thickness_nm: float = 1000.0

    def __post_init__(self) -> None:
        if not math.isfinite(self.max_thickness_nm) or self.max_thickness_nm <= 0:
            raise ValueError(
                f"max_thickness_nm must be a positive number of nm, got {self.max_thickness_nm!r}"
            )


@dataclass(frozen=True)
class RunState:
    """The controller's run state (``V``).

    Attributes:
        phase: Phase number (see ``PHASE_TEXT``); 0 is stopped.
        elapsed_s: Process elapsed time as displayed, s.
        process: Active process number.
        layer: Active layer number.
    """

    phase: int
    elapsed_s: float
    process: int
    layer: int

    @property
    def fault(self) -> bool:
        """True in a fault phase (24, 27–30, 33): the layer did not reach its thickness."""
        return self.phase in FAULT_PHASES

    @property
    def stopped(self) -> bool:
        """True when the process is stopped (phase 0)."""
        return self.phase == 0

    @property
    def running(self) -> bool:
        """True while the process runs (any phase other than 0 and the fault phases)."""
        return not self.stopped and not self.fault

    @property
    def description(self) -> str:
        """The phase's meaning from the sheet's table, e.g. ``"deposit"``."""
        return PHASE_TEXT.get(self.phase, f"unknown phase {self.phase}")


# ---------------------------------------------------------------------------------- framing / CRC


def crc14(data: bytes) -> tuple[int, int]:
    """The SQC-310's 14-bit CRC of ``data`` as its two printable bytes.

    Args:
        data: The bytes covered: ``LEN`` and ``MSG`` (reply: ``LEN``, ``STATUS``, ``MSG``).

    Returns:
        ``(CRC1, CRC2)``: the low and the high 7 bits, each plus 34.
    """
    crc = 0x3FFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            carry = crc & 1
            crc >>= 1
            if carry:
                crc ^= 0x2001
    crc &= 0x3FFF
    return (crc & 0x7F) + 34, ((crc >> 7) & 0x7F) + 34


def frame_command(msg: str) -> bytes:
    """Frame a command ``MSG`` as a packet with ``LEN`` and CRC.

    Args:
        msg: Printable ASCII, 1–221 characters, e.g. ``"N1"`` or ``"D1 2,50"``.

    Returns:
        The packet, e.g. ``b"!$N1]Q"`` for ``"N1"``.

    Raises:
        ValueError: ``msg`` is empty, too long, or not printable ASCII.
    """
    if not msg or len(msg) > MAX_MESSAGE:
        raise ValueError(f"command must be 1–{MAX_MESSAGE} characters, got {len(msg)}")
    if not (msg.isascii() and msg.isprintable()):
        raise ValueError(f"command must be printable ASCII, got {msg!r}")
    body = bytes([len(msg) + COMMAND_LEN_OFFSET]) + msg.encode("ascii")
    return SYNC + body + bytes(crc14(body))


def parse_reply(packet: bytes, *, device: str | None = None) -> tuple[str, str]:
    """Check a reply packet and split it into (status, answer).

    Args:
        packet: One whole reply, ``'!'`` to the second CRC byte.
        device: Device name for the error, if any.

    Returns:
        The status letter (``"A"``–``"E"``) and the answer, ``MSG.strip()``.

    Raises:
        GarbledReply: No ``'!'``, too short, ``LEN`` not matching the packet, bad CRC, non-ASCII
            text or an unknown status letter.
    """

    def garbled(why: str) -> GarbledReply:
        return GarbledReply(
            f"garbled reply {packet!r}: {why}; check the cable and the baud rate (19200 8N1 "
            "unless changed on the front panel)",
            device=device,
            reply=packet,
        )

    if not packet.startswith(SYNC):
        raise garbled("it does not start with the sync character '!'")
    if len(packet) < 5:
        raise garbled("too short for '!', LEN, a status and two CRC bytes")
    if packet[1] - REPLY_LEN_OFFSET != len(packet) - 4:
        raise garbled(
            f"LEN {packet[1]} announces {packet[1] - REPLY_LEN_OFFSET} status and answer "
            f"characters, the packet holds {len(packet) - 4}"
        )
    expected = crc14(packet[1:-2])
    if tuple(packet[-2:]) != expected:
        raise garbled(f"CRC bytes {tuple(packet[-2:])} do not match the computed {expected}")
    try:
        text = packet[2:-2].decode("ascii")
    except UnicodeDecodeError:
        raise garbled("the status and answer are not ASCII") from None
    status = text[0]
    if status not in STATUS_TEXT:
        raise garbled(f"unknown status {status!r}")
    return status, text[1:].strip()


# ---------------------------------------------------------------------------------- response parsing


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("not a finite number")
    return value


def _ka_to_nm(text: str) -> float:
    """Decimal kÅ text → nm, converted exactly (``"0.070"`` → 7.0, not 7.000000000000001)."""
    _parse_float(text)  # rejects what Decimal would take but float should not (nan, inf)
    try:
        return float(Decimal(text) * NM_PER_KA)
    except InvalidOperation as exc:  # pragma: no cover - float() accepted it above
        raise ValueError(f"{text!r} is not a number") from exc


def _parse_pairs(text: str, params: tuple[int, ...]) -> dict[int, int]:
    """``"4,12 6,100"`` → ``{4: 12, 6: 100}``; exactly ``params`` must be present."""
    values: dict[int, int] = {}
    for token in text.split():
        param, sep, value = token.partition(",")
        if not sep:
            raise ValueError(f"{token!r} is not 'parameter,value'")
        key = int(param)
        if key in values:
            raise ValueError(f"parameter {key} appears twice")
        values[key] = int(value)
    if sorted(values) != sorted(params):
        raise ValueError(f"expected parameters {list(params)}, got {list(values)}")
    return values


def _parse_run_state(text: str) -> RunState:
    """``"13 15 1 2"`` → RunState(phase=13, elapsed_s=15.0, process=1, layer=2)."""
    parts = text.split()
    if len(parts) != 4:
        raise ValueError("expected 'phase elapsed_s process layer'")
    return RunState(int(parts[0]), _parse_float(parts[1]), int(parts[2]), int(parts[3]))


def _angstrom(thickness_nm: float) -> int:
    """nm → whole Å, rounded half up (5.25 nm → 53 Å)."""
    scaled = Decimal(repr(float(thickness_nm))) * ANGSTROM_PER_NM
    return int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_UP))


# ---------------------------------------------------------------------------------- driver


class Sqc310(Instrument):
    """Driver for an INFICON SQC-310 deposition controller.

    Args:
        url: Port URL (device path, pty path, ``socket://``); None if ``port`` is given.
        port: Already-open port-like object (tests) instead of ``url``.
        name: Device name used in errors and logs.
        timeout: Reply timeout per packet, s (the manual gives no reply time; ≥ 1 s).
        baudrate: Baud rate, bit/s (19200 default; 9600 selectable on the front panel).
        limits: Host-side limits; :class:`DepositionLimits` defaults if None.
        retries: Extra attempts of an idempotent exchange after a time-out or garbled reply.

    Attributes:
        limits: The limits in force.
        retries: Extra attempts of idempotent exchanges.
        was_reset: True once a reply had status ``B`` (the controller was reset or
            power-cycled); cleared by :meth:`clear_reset`.
        resets_seen: How many ``B`` replies arrived since the driver was created.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        port: PortLike | None = None,
        name: str = "sqc310",
        timeout: float = 1.0,
        baudrate: int = 19200,
        limits: DepositionLimits | None = None,
        retries: int = 2,
    ) -> None:
        if retries < 0:
            raise ValueError(f"{name}: retries must be ≥ 0, got {retries}")
        self.limits = limits or DepositionLimits()
        self.retries = int(retries)
        self.was_reset = False
        self.resets_seen = 0
        super().__init__(url, port=port, name=name, baudrate=baudrate, timeout=timeout)

    # ------------------------------------------------------------------ packet reading

    def _read_bytes(self, count: int, deadline: float, got: bytes) -> bytes:
        """Read exactly ``count`` more bytes of a reply of which ``got`` has arrived.

        The transport reads up to a terminator only and this protocol has none (the packet
        ends after the CRC that ``LEN`` locates), so this reads through the transport's receive
        buffer the way :meth:`~drivers.transport.Transport.read_until` does; bytes after the
        packet stay buffered until the next command flushes them.

        Raises:
            DriverTimeout: Nothing of the reply arrived before ``deadline``.
            GarbledReply: Part of the reply arrived (a truncated packet).
        """
        t = self.transport
        with t.lock:
            t._check_open()
            while len(t._rx) < count and time.monotonic() < deadline:
                t._rx += t._read_some()
            if len(t._rx) >= count:
                out = bytes(t._rx[:count])
                del t._rx[:count]
                return out
            partial = got + bytes(t._rx)
            t._rx.clear()
        if not partial:
            raise DriverTimeout(
                f"no reply within {t.timeout:g} s; check that the controller is on and connected "
                "and that its baud rate (front panel) matches",
                device=self.name,
            )
        raise GarbledReply(
            f"truncated reply {partial!r}: the packet did not complete within {t.timeout:g} s; "
            "check the cable and the baud rate, or raise the timeout",
            device=self.name,
            reply=partial,
        )

    def _read_packet(self) -> bytes:
        """Read one reply packet: ``'!'``, ``LEN``, then ``LEN - 35`` characters and 2 CRC bytes."""
        deadline = time.monotonic() + self.transport.timeout
        sync = self._read_bytes(1, deadline, b"")
        if sync != SYNC:
            with self.transport.lock:
                junk = sync + bytes(self.transport._rx)
                self.transport._rx.clear()
            raise GarbledReply(
                f"reply {junk!r} does not start with the sync character '!'; check the baud rate",
                device=self.name,
                reply=junk,
            )
        length = self._read_bytes(1, deadline, sync)
        body = length[0] - REPLY_LEN_OFFSET
        if body < 1:
            raise GarbledReply(
                f"reply LEN {length[0]} is too small to hold a status (at least "
                f"{REPLY_LEN_OFFSET + 1}); check the baud rate",
                device=self.name,
                reply=sync + length,
            )
        return sync + length + self._read_bytes(body + 2, deadline, sync + length)

    # ------------------------------------------------------------------ command layer

    def _exchange(self, msg: str, *, retry: bool = True) -> str:
        """Send ``msg``, read and check the reply, return the answer text.

        Args:
            msg: The command ``MSG``, e.g. ``"N1"``.
            retry: The command is idempotent: send it again after a time-out or garbled reply.

        Raises:
            Sqc310Error: Status ``C``, ``D`` or ``E``.
            DriverTimeout, GarbledReply: No (valid) reply, after the retries.
        """
        frame = frame_command(msg)

        def once() -> str:
            with self.transport.lock:
                self.transport.reset_input_buffer()
                self.transport.write(frame)
                packet = self._read_packet()
            status, answer = parse_reply(packet, device=self.name)
            if status == "B":
                self._note_reset(msg)
            elif status != "A":
                raise Sqc310Error.from_status(status, msg, device=self.name)
            return answer

        if not retry:
            return once()
        return retry_idempotent(
            once, retries=self.retries, what=msg, logger=_log, on_retry=self._retried
        )

    def _query(self, msg: str, parse: Callable[[str], T]) -> T:
        """Exchange ``msg`` (retried) and parse its answer; an unparsable one is garbled."""

        def once() -> T:
            answer = self._exchange(msg, retry=False)
            try:
                return parse(answer)
            except ValueError as exc:
                raise GarbledReply(
                    f"cannot parse the answer {answer!r} to {msg!r} ({exc})",
                    device=self.name,
                    reply=answer.encode("ascii"),
                ) from exc

        return retry_idempotent(
            once, retries=self.retries, what=msg, logger=_log, on_retry=self._retried
        )

    def _set(self, msg: str, *, retry: bool = True) -> None:
        """Send a command whose answer is empty; a non-empty answer is garbled."""

        def empty(answer: str) -> None:
            if answer:
                raise ValueError("expected no answer")

        if retry:
            self._query(msg, empty)
        else:
            answer = self._exchange(msg, retry=False)
            if answer:
                raise GarbledReply(
                    f"unexpected answer {answer!r} to {msg!r}",
                    device=self.name,
                    reply=answer.encode("ascii"),
                )

    def _note_reset(self, msg: str) -> None:
        self.was_reset = True
        self.resets_seen += 1
        _log.info(
            "%s: the controller reports a reset or power cycle since the last command "
            "(status B, reply to %r); check its state",
            self.name,
            msg,
        )

    # ------------------------------------------------------------------ argument checks

    def _index(self, what: str, value: int, high: int) -> int:
        """Return ``value`` if it is an integer in 1–``high``, else raise ValueError."""
        try:
            number = operator.index(value)
        except TypeError:
            raise ValueError(f"{self.name}: {what} must be an integer, got {value!r}") from None
        if isinstance(value, bool) or not 1 <= number <= high:
            raise ValueError(
                f"{self.name}: {what} must be 1–{high}, got {value!r}; nothing was sent"
            )
        return number

    def _thickness_angstrom(self, thickness_nm: float) -> int:
        """Check a final thickness against the limits; return it in whole Å."""
        limit = self.limits.max_thickness_nm
        value = self._check_range("final thickness", thickness_nm, 0.0, limit, "nm")
        angstrom = _angstrom(value)
        if angstrom <= 0:
            raise SafetyLimitError(
                f"final thickness {value:g} nm rounds to {angstrom} Å; it must be > 0 (at least "
                "0.05 nm, sent as 1 Å); nothing was sent",
                device=self.name,
            )
        # The limit applies to what goes on the wire, after rounding to whole Å.
        self._check_range("final thickness", angstrom / ANGSTROM_PER_NM, 0.0, limit, "nm")
        return angstrom

    # ------------------------------------------------------------------ public API: identity, set-up

    def identify(self) -> str:
        """Model and software version (``@``), e.g. ``"SQC-310 Ver 6.01"``."""
        return self._query("@", lambda answer: answer)

    def clear_reset(self) -> None:
        """Forget that a reset was reported (:attr:`was_reset` becomes False)."""
        self.was_reset = False

    def film_name(self, film: int) -> str:
        """Name of film ``film`` (``A1 f?``), e.g. ``"LiF"``.

        Args:
            film: Film number, 1–99.
        """
        film = self._index("film", film, MAX_FILM)
        return self._query(f"A1 {film}?", lambda answer: answer)

    def film_parameters(self, film: int) -> dict[int, int]:
        """Material number and tooling of film ``film`` (``A2 f? 4 6``).

        Args:
            film: Film number, 1–99.

        Returns:
            ``{4: material_number, 6: tooling_percent}`` (integers as the controller sends
            them), e.g. ``{4: 12, 6: 100}``.
        """
        film = self._index("film", film, MAX_FILM)
        params = (FILM_PARAM_MATERIAL, FILM_PARAM_TOOLING)
        return self._query(
            f"A2 {film}? {FILM_PARAM_MATERIAL} {FILM_PARAM_TOOLING}",
            lambda answer: _parse_pairs(answer, params),
        )

    def film_tooling(self, film: int) -> int:
        """Tooling of film ``film``, % (``A2 f? 4 6``, parameter 6).

        Substrate thickness = crystal thickness × tooling / 100: a mis-set tooling gives a
        systematic error on the sample that the read-back does not show.
        """
        return self.film_parameters(film)[FILM_PARAM_TOOLING]

    def process_name(self, process: int = 1) -> str:
        """Name of process ``process`` (``C<p>? 1``; ``C1? 1`` for process 1), e.g. ``"Interlayer"``.

        Args:
            process: Process number, 1–50.
        """
        process = self._index("process", process, MAX_PROCESS)
        return self._query(f"C{process}? 1", lambda answer: answer)

    def layer(self, layer: int = 1) -> tuple[float, int]:
        """Final thickness and film of layer ``layer`` (``D<l>? 2 7``).

        Args:
            layer: Layer number, ≥ 1.

        Returns:
            (final thickness, nm; film number), e.g. ``(5.0, 3)`` for the answer ``2,50 7,3``.
        """
        layer = self._index("layer", layer, MAX_LAYER)
        params = (LAYER_PARAM_THICKNESS, LAYER_PARAM_FILM)
        values = self._query(
            f"D{layer}? {LAYER_PARAM_THICKNESS} {LAYER_PARAM_FILM}",
            lambda answer: _parse_pairs(answer, params),
        )
        return values[LAYER_PARAM_THICKNESS] / ANGSTROM_PER_NM, values[LAYER_PARAM_FILM]

    def set_layer_thickness(self, layer: int, thickness_nm: float) -> None:
        """Set layer ``layer``'s final thickness (``D<l> 2,<Å>``); retried (idempotent).

        Args:
            layer: Layer number, ≥ 1.
            thickness_nm: Final thickness, nm; sent as whole Å (rounded half up), so 5 nm goes
                as ``2,50``. Refused unless 0 < thickness ≤ ``limits.max_thickness_nm``
                (after rounding) before any byte is sent.

        Raises:
            SafetyLimitError: Outside the limits (nothing sent).
            Sqc310Error: Status ``E`` (the process is running) or ``D``.
        """
        layer = self._index("layer", layer, MAX_LAYER)
        angstrom = self._thickness_angstrom(thickness_nm)
        self._set(f"D{layer} {LAYER_PARAM_THICKNESS},{angstrom}")

    def set_layer_film(self, layer: int, film: int) -> None:
        """Set the film layer ``layer`` deposits (``D<l> 7,<f>``); retried (idempotent).

        Args:
            layer: Layer number, ≥ 1.
            film: Film number, 1–99.

        Raises:
            Sqc310Error: Status ``E`` (the process is running) or ``D``.
        """
        layer = self._index("layer", layer, MAX_LAYER)
        film = self._index("film", film, MAX_FILM)
        self._set(f"D{layer} {LAYER_PARAM_FILM},{film}")

    # ------------------------------------------------------------------ public API: run control

    def start(self) -> None:
        """Start the active process (``U0``). Never sent twice.

        If the reply is lost (time-out) or garbled, the driver reads the run state (``V``)
        before deciding: a running process means the start was taken and this returns
        normally (logged as a warning); a stopped one means it was not, and the error is raised
        with a message saying the deposit did not start. Nothing is ever re-sent, so a start
        can never deposit twice; the caller may call :meth:`start` again after a raise.

        Raises:
            Sqc310Error: Status ``E`` (already running) or another refusal.
            DepositionFault: After a lost reply, the run state shows a fault phase.
            DriverTimeout, GarbledReply: The reply was lost or garbled and the process is
                stopped (not started), or the run state could not be read either (then the
                process *may* be running: check the controller before starting again).
        """
        msg = f"U{RUN_START}"
        try:
            self._set(msg, retry=False)
        except (DriverTimeout, GarbledReply) as exc:
            self._confirm_start(exc)

    def _confirm_start(self, exc: DriverTimeout | GarbledReply) -> None:
        """After a lost ``U0`` reply: return if the process runs, else raise."""
        what = "no reply" if isinstance(exc, DriverTimeout) else "a garbled reply"
        try:
            state = self.run_state()
        except DriverError as check:
            message = (
                f"start (U0) got {what} ({exc.message}) and the run state could not be read "
                f"({check}); the process MAY be running: check the controller before starting "
                "again"
            )
        else:
            if state.running:
                _log.warning(
                    "%s: start (U0) got %s, but the process runs (phase %d, %s): started",
                    self.name,
                    what,
                    state.phase,
                    state.description,
                )
                return
            if state.fault:
                raise DepositionFault.from_state(state, device=self.name) from exc
            message = (
                f"start (U0) got {what} ({exc.message}) and the process is stopped: the start "
                "was not confirmed and the deposit did not start; start again when ready"
            )
        if isinstance(exc, DriverTimeout):
            raise DriverTimeout(message, device=self.name, partial=exc.partial) from exc
        raise GarbledReply(message, device=self.name, reply=exc.reply) from exc

    def stop(self) -> None:
        """Stop the process; the shutter closes at once (``U1``). Retried (safe)."""
        self._set(f"U{RUN_STOP}")

    def force_final(self) -> None:
        """Force the final thickness: end the layer now (``U5``).

        Not retried: if the reply was lost, a second ``U5`` could end the next layer too.
        """
        self._set(f"U{RUN_FORCE_FINAL}", retry=False)

    def zero_thickness(self) -> None:
        """Zero the thickness reading (``U32``). Retried (zeroing twice is the same)."""
        self._set(f"U{RUN_ZERO_THICKNESS}")

    def run_state(self) -> RunState:
        """The run state (``V``): phase, elapsed time, process and layer."""
        return self._query("V", _parse_run_state)

    # ------------------------------------------------------------------ public API: readings

    def rate(self, sensor: int = 1) -> float:
        """Deposition rate measured by sensor ``sensor``, Å/s (``L<s>``).

        Args:
            sensor: Sensor number, 1–4.
        """
        sensor = self._index("sensor", sensor, MAX_CHANNEL)
        return self._query(f"L{sensor}", _parse_float)

    def output_rate(self, output: int = 1) -> float:
        """Average rate of the sensors of output ``output``, Å/s (``M<o>``).

        Args:
            output: Output number, 1–4.
        """
        output = self._index("output", output, MAX_CHANNEL)
        return self._query(f"M{output}", _parse_float)

    def thickness_nm(self, sensor: int = 1) -> float:
        """Thickness measured by sensor ``sensor``, nm (``N<s>`` answers kÅ; 1 kÅ = 100 nm).

        Args:
            sensor: Sensor number, 1–4.
        """
        sensor = self._index("sensor", sensor, MAX_CHANNEL)
        return self._query(f"N{sensor}", _ka_to_nm)

    def output_thickness_nm(self, output: int = 1) -> float:
        """Average thickness of the sensors of output ``output``, nm (``O<o>``, kÅ on the wire).

        Args:
            output: Output number, 1–4.
        """
        output = self._index("output", output, MAX_CHANNEL)
        return self._query(f"O{output}", _ka_to_nm)

    def frequency(self, sensor: int = 1) -> float:
        """Crystal frequency of sensor ``sensor``, Hz (``P<s>``).

        Args:
            sensor: Sensor number, 1–4.
        """
        sensor = self._index("sensor", sensor, MAX_CHANNEL)
        return self._query(f"P{sensor}", _parse_float)

    # ------------------------------------------------------------------ public API: a deposit

    def deposit(
        self,
        layer: int,
        film: int,
        thickness_nm: float,
        *,
        poll_s: float = 0.2,
        timeout_s: float,
        sleep: Callable[[float], object] = time.sleep,
        should_stop: Callable[[], bool] | None = None,
    ) -> float:
        """Deposit one layer and wait for it: zero, set film and thickness, start, poll ``V``.

        All arguments are checked before the first byte is sent. The run state is read first:
        a process that is not stopped is refused (zeroing the reading of a running layer would
        make it deposit again). Then ``U32``, ``D<l> 7,<f>``, ``D<l> 2,<Å>``, ``U0``
        (:meth:`start`), and ``V`` every ``poll_s`` until the process stops (phase 0).

        The controller runs the layer on its own; if polling fails (a driver error), the error
        is raised and the process is left to finish. Compare the returned thickness with the
        target: phase 0 is also what a process stopped from the front panel shows.

        Args:
            layer: Layer number, ≥ 1 (the active process should run this layer).
            film: Film number, 1–99.
            thickness_nm: Final thickness, nm (checked against ``limits.max_thickness_nm``).
            poll_s: Pause between run-state polls, s.
            timeout_s: Longest wait for the process to stop after the start, s (source
                conditioning comes before the deposit: allow for it).
            sleep: Called with the pause, s (tests pass a fake).
            should_stop: Polled after each run-state read; when it returns True the process
                is stopped (``U1``) and :class:`~drivers.errors.DriverError` is raised.

        Returns:
            The thickness sensor 1 measured at the end (``N1``), nm.

        Raises:
            SafetyLimitError: Thickness outside the limits (nothing sent).
            Sqc310Error: The process was not stopped at the outset (code ``E``), a command
                was refused, or the controller reported a reset during the deposit (code
                ``B``; the process is then stopped).
            DepositionFault: A fault phase: the layer did not reach its thickness (the process
                is then stopped with ``U1``).
            DriverTimeout: Still running after ``timeout_s``; the process is then stopped.
            DriverError: ``should_stop`` returned True; the process is then stopped.
        """
        layer = self._index("layer", layer, MAX_LAYER)
        film = self._index("film", film, MAX_FILM)
        self._thickness_angstrom(thickness_nm)
        if not (math.isfinite(timeout_s) and timeout_s > 0):
            raise ValueError(f"{self.name}: timeout_s must be a positive number of s")
        if not (math.isfinite(poll_s) and poll_s >= 0):
            raise ValueError(f"{self.name}: poll_s must be a non-negative number of s")

        with self.transport.lock:
            state = self.run_state()
            if not state.stopped:
                raise Sqc310Error(
                    f"cannot deposit: the process is not stopped (phase {state.phase}, "
                    f"{state.description}, process {state.process} layer {state.layer}); "
                    "stop it first",
                    device=self.name,
                    code="E",
                    command="V",
                )
            resets = self.resets_seen  # a reset reported up to here predates this deposit
            self.zero_thickness()
            self.set_layer_film(layer, film)
            self.set_layer_thickness(layer, thickness_nm)
            self._check_no_reset(resets, "D")
            self.start()
        deadline = time.monotonic() + timeout_s
        seen_running = False
        while True:
            state = self.run_state()
            self._check_no_reset(resets, "V")
            if state.fault:
                note = self._stop_after("the fault")
                raise DepositionFault.from_state(state, device=self.name) from note
            if state.stopped:
                if not seen_running:
                    _log.warning(
                        "%s: layer %d stopped before a running phase was seen (poll_s %g s); "
                        "check the thickness read back",
                        self.name,
                        layer,
                        poll_s,
                    )
                return self.thickness_nm(1)
            seen_running = True
            if should_stop is not None and should_stop():
                note = self._stop_after("the stop request")
                raise DriverError(
                    f"deposit of layer {layer} stopped on request in phase {state.phase} "
                    f"({state.description}); {self._stop_text(note)}; the layer is incomplete",
                    device=self.name,
                ) from note
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                note = self._stop_after("the time-out")
                raise DriverTimeout(
                    f"layer {layer} still running after {timeout_s:g} s (phase {state.phase}, "
                    f"{state.description}); {self._stop_text(note)}; the layer is incomplete: "
                    "raise timeout_s if the deposit needs longer",
                    device=self.name,
                ) from note
            sleep(min(poll_s, remaining))

    @staticmethod
    def _stop_text(note: DriverError | None) -> str:
        if note is None:
            return "the process was stopped (U1, shutter closed)"
        return f"stop (U1) failed ({note}): the process MAY still run, stop it on the front panel"

    def _check_no_reset(self, resets: int, msg: str) -> None:
        """Raise if a reset was reported since ``resets`` was read (stopping the process)."""
        if self.resets_seen != resets:
            note = self._stop_after("the reset")
            raise Sqc310Error.reset_during(msg, device=self.name) from note

    def _stop_after(self, what: str) -> DriverError | None:
        """Send ``U1`` after ``what``; return its error instead of raising (None if it worked)."""
        try:
            self.stop()
        except DriverError as exc:
            _log.error("%s: stop (U1) after %s failed: %s", self.name, what, exc)
            return exc
        return None
