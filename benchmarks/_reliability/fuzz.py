"""The fuzz part: every driver's reply parsing fuzzed with hypothesis through a fake port
whose simulator replies are mutated; only typed errors, no hang."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .common import log

FUZZ_TIMEOUT = 0.03
"""Reply time-out of the fuzzed drivers, s."""
PORT_READ_S = 0.002
"""Read time-out of the fake port (an empty read sleeps this long, like pyserial)."""
HANG_CAP_S = 10.0
"""A case still running after this long is a hang, whatever its bound."""

PLAUSIBLE: dict[str, list[bytes]] = {
    "ne1000": [
        b"\x0200S\x03",
        b"\x0200I\x03",
        b"\x0200P\x03",
        b"\x0200W\x03",
        b"\x0200X\x03",
        b"\x0200S?\x03",
        b"\x0200S?OOR\x03",
        b"\x0200S?NA\x03",
        b"\x0200S?COM\x03",
        b"\x0200A?R\x03",
        b"\x0200A?S\x03",
        b"\x0200A?Z\x03",
        b"\x0200A?\x03",
        b"\x0201S\x03",
        b"\x0200SNE1000V3.928\x03",
        b"\x0200S4.610\x03",
        b"\x0200S100.0UM\x03",
        b"\x0200S1.000ML\x03",
        b"\x0200SI0.125W0.000ML\x03",
        b"\x0200SINF\x03",
        b"\x02\x03",
        b"\x0200",
        b"\x02\x0b00S1.0\x12\x34\x03",
    ],
    "scpi_lcr": [
        b"1\n",
        b"0\n",
        b'+0,"No error"\n',
        b'-200,"Execution error"\n',
        b'-113,"Undefined header"\n',
        b"+1.00000E+03\n",
        b"+1.98000E+01,-4.03000E-01,+0\n",
        b"+9.90000E+37,+9.90000E+37,-1\n",
        b"+1.0E+01,+2.0E+00,+1\n",
        b"+1.0E+01,+2.0E+00,+3,+1\n",
        b"RX\n",
        b"BUS\n",
        b"KEYSIGHT,E4980A,MY123,A.02.20\n",
        b"nan,inf,0\n",
        b",,\n",
        b"\n",
    ],
    "ika_namur": [
        b"25.0 1\r\n",
        b"25.0 2\r\n",
        b"300 4\r\n",
        b"360 3\r\n",
        b"RCT digital\r\n",
        b"IN_PV_1\r\n",
        b"1e999 1\r\n",
        b"nan 1\r\n",
        b"25.0\r\n",
        b"\r\n",
    ],
    "mt_sics": [
        b"S S     100.0000 g\r\n",
        b"S D      99.9000 g\r\n",
        b"S I\r\n",
        b"S +\r\n",
        b"S -\r\n",
        b"S S Error 15e\r\n",
        b"Z A\r\n",
        b"ZI S\r\n",
        b"T S       1.5000 g\r\n",
        b'I2 A "XS204 Excellence 220.0090 g"\r\n',
        b'I4 A "1126493049"\r\n',
        b"ES\r\n",
        b"ET\r\n",
        b"EL\r\n",
        b"S S\r\n",
        b"S S x g\r\n",
    ],
    "grbl": [
        b"ok\r\n",
        b"error:9\r\n",
        b"error:x\r\n",
        b"ALARM:1\r\n",
        b"ALARM:\r\n",
        b"<Idle|MPos:0.000,0.000,0.000|FS:0,0>\r\n",
        b"<Run|MPos:-1.000,0.000,0.000|FS:500,0|WCO:0.000,0.000,0.000>\r\n",
        b"<Alarm|MPos:0.000,0.000,0.000>\r\n",
        b"<Hold:0|WPos:1,2,3|F:100>\r\n",
        b"<Idle|MPos:1,2>\r\n",
        b"<Idle>\r\n",
        b"<Bogus|MPos:0,0,0>\r\n",
        b"Grbl 1.1h ['$' for help]\r\n",
        b"[MSG:Caution: Unlocked]\r\n",
        b">G54:ok\r\n",
    ],
}
"""Well-formed and nearly well-formed frames of each protocol (random replacements)."""

FRAME_BYTES = b'0123456789.+-E,:;<>|?! \r\n\x02\x03SAIWPXDLZTok"er'


@dataclass(frozen=True)
class Mutation:
    """What happens to one reply: ``kind`` and its parameters (fractions place positions)."""

    kind: str = "clean"
    data: bytes = b""
    where: float = 0.0
    amount: int = 1


CLEAN = Mutation()


def mutation_strategy(device_kind: str) -> Any:
    from hypothesis import strategies as st

    frac = st.floats(0.0, 1.0, allow_nan=False, exclude_max=True)
    junk = st.one_of(
        st.binary(max_size=24),
        st.lists(st.sampled_from(list(FRAME_BYTES)), max_size=24).map(bytes),
        st.sampled_from(PLAUSIBLE[device_kind]),
    )
    kinds = [
        "clean",
        "clean",
        "clean",
        "drop",
        "random",
        "frame",
        "flip",
        "replace",
        "insert",
        "delete",
        "truncate",
        "duplicate",
        "prefix",
        "suffix",
        "late",
        "read_error",
        "write_error",
    ]

    def build(kind: str) -> Any:
        if kind == "frame":
            return st.builds(Mutation, st.just(kind), st.sampled_from(PLAUSIBLE[device_kind]))
        return st.builds(Mutation, st.just(kind), junk, frac, st.integers(1, 255))

    return st.sampled_from(kinds).flatmap(build)


class FuzzPort:
    """A fake port: the simulator answers each write; the answer is then mutated.

    Satisfies :class:`drivers.transport.PortLike`. Mutations are used one per write, in order,
    then replies are clean.
    """

    def __init__(self, sim: Any, mutations: Sequence[Mutation], late_s: float) -> None:
        self.timeout: float | None = PORT_READ_S
        self._sim = sim
        self._mutations = deque(mutations)
        self._late_s = late_s
        self._rx = bytearray()
        self._later: list[tuple[float, bytes]] = []
        self._read_error = False
        self.writes = 0
        self.closed = False
        hello = getattr(sim, "on_connect", None)
        if callable(hello):
            greeting = hello()
            if isinstance(greeting, bytes):
                self._rx += greeting

    def _release(self) -> None:
        now = time.monotonic()
        due = [d for t, d in self._later if t <= now]
        self._later = [(t, d) for t, d in self._later if t > now]
        for d in due:
            self._rx += d

    @property
    def in_waiting(self) -> int:
        self._release()
        return len(self._rx)

    def write(self, data: bytes, /) -> int:
        import serial

        if self.closed:
            raise serial.SerialException("port closed")
        self.writes += 1
        m = self._mutations.popleft() if self._mutations else CLEAN
        if m.kind == "write_error":
            raise serial.SerialException("write failed (fuzz)")
        reply = self._sim.feed(bytes(data))
        if not isinstance(reply, bytes):  # None or a Disconnect: nothing (or its prefix) sent
            reply = getattr(reply, "before", b"") or b""
        self._deliver(self._mutate(reply, m), m)
        return len(data)

    def _mutate(self, reply: bytes, m: Mutation) -> bytes:
        b = bytearray(reply)
        i = int(m.where * (len(b) + 1))
        if m.kind in ("drop", "read_error"):
            return b""
        if m.kind == "random":
            return m.data
        if m.kind == "frame":
            return m.data
        if m.kind == "flip" and b:
            j = min(i, len(b) - 1)
            b[j] ^= m.amount
        elif m.kind == "replace" and b:
            j = min(i, len(b) - 1)
            b[j] = m.amount
        elif m.kind == "insert":
            b[i:i] = m.data
        elif m.kind == "delete":
            del b[i : i + max(1, m.amount % 8)]
        elif m.kind == "truncate":
            del b[min(i, len(b)) :]
        elif m.kind == "duplicate":
            b += reply
        elif m.kind == "prefix":
            b[0:0] = m.data
        elif m.kind == "suffix":
            b += m.data
        return bytes(b)

    def _deliver(self, reply: bytes, m: Mutation) -> None:
        if m.kind == "read_error":
            self._read_error = True
        elif m.kind == "late":
            self._later.append((time.monotonic() + self._late_s * (0.5 + m.where), reply))
        else:
            self._rx += reply

    def read(self, size: int = 1, /) -> bytes:
        import serial

        if self.closed:
            raise serial.SerialException("port closed")
        if self._read_error:
            self._read_error = False
            raise OSError(5, "Input/output error (fuzz)")
        self._release()
        if not self._rx:
            poll = getattr(self._sim, "poll", None)
            extra = poll() if callable(poll) else b""
            if isinstance(extra, bytes):
                self._rx += extra
        if not self._rx:
            time.sleep(self.timeout or 0.0)
            self._release()
            if not self._rx:
                return b""
        out = bytes(self._rx[:size])
        del self._rx[:size]
        return out

    def read_until(self, expected: bytes = b"\n", size: int | None = None) -> bytes:
        out = bytearray()
        deadline = time.monotonic() + (self.timeout or 0.0)
        while not out.endswith(expected) and time.monotonic() < deadline:
            out += self.read(1)
        return bytes(out)

    def reset_input_buffer(self) -> None:
        self._release()
        self._rx.clear()

    def close(self) -> None:
        self.closed = True


@dataclass(frozen=True)
class Op:
    """One driver call of a fuzz case: the call and the extra seconds it may wait."""

    name: str
    call: Callable[[Any], Any]
    extra_s: float = 0.0


T = FUZZ_TIMEOUT
FUZZ_OPS: dict[str, list[Op]] = {
    "ne1000": [
        Op("identify", lambda d: d.identify()),
        Op("status", lambda d: d.status()),
        Op("is_running", lambda d: d.is_running()),
        Op("set_diameter", lambda d: d.set_diameter(4.61)),
        Op("diameter", lambda d: d.diameter()),
        Op("set_rate", lambda d: d.set_rate(50.0, "UM")),
        Op("rate", lambda d: d.rate()),
        Op("set_volume", lambda d: d.set_volume(10.0, "UL")),
        Op("volume", lambda d: d.volume()),
        Op("set_direction", lambda d: d.set_direction("INF")),
        Op("direction", lambda d: d.direction()),
        Op("run", lambda d: d.run()),
        Op("stop", lambda d: d.stop()),
        Op("dispensed", lambda d: d.dispensed()),
        Op("clear_dispensed", lambda d: d.clear_dispensed("INF")),
        Op("dispense", lambda d: d.dispense(5.0, 100.0)),
        Op("wait_until_stopped", lambda d: d.wait_until_stopped(0.1, poll_s=0.01), 0.1),
    ],
    "scpi_lcr": [
        Op("identify", lambda d: d.identify()),
        Op("opc", lambda d: d.opc()),
        Op("next_error", lambda d: d.next_error()),
        Op("check_errors", lambda d: d.check_errors(max_reads=4)),
        Op("function", lambda d: d.function()),
        Op("frequency", lambda d: d.frequency()),
        Op("voltage", lambda d: d.voltage()),
        Op("trigger_source", lambda d: d.trigger_source()),
        Op("fetch", lambda d: d.fetch()),
        Op("measure", lambda d: d.measure(1000.0)),
        Op("sweep", lambda d: d.sweep([1e4, 1e2])),
        Op("set_frequency", lambda d: d.set_frequency(500.0)),
        Op("set_voltage", lambda d: d.set_voltage(0.01)),
        Op("clear", lambda d: d.clear()),
    ],
    "ika_namur": [
        Op("identify", lambda d: d.identify()),
        Op("temperature", lambda d: d.temperature()),
        Op("plate_temperature", lambda d: d.plate_temperature()),
        Op("temperature_setpoint", lambda d: d.temperature_setpoint()),
        Op("safety_temperature", lambda d: d.safety_temperature()),
        Op("speed", lambda d: d.speed()),
        Op("speed_setpoint", lambda d: d.speed_setpoint()),
        Op("viscosity_trend", lambda d: d.viscosity_trend()),
        Op("set_temperature", lambda d: d.set_temperature(50.0)),
        Op("set_speed", lambda d: d.set_speed(300)),
        Op("start_heating", lambda d: d.start_heating()),
        Op("stop_heating", lambda d: d.stop_heating()),
    ],
    "mt_sics": [
        Op("identify", lambda d: d.identify()),
        Op("serial_number", lambda d: d.serial_number()),
        Op("weight_stable", lambda d: d.weight_stable()),
        Op("weight_immediate", lambda d: d.weight_immediate()),
        Op("zero", lambda d: d.zero()),
        Op("zero_immediately", lambda d: d.zero_immediately()),
        Op("tare", lambda d: d.tare()),
        Op("reset", lambda d: d.reset()),
    ],
    "grbl": [
        Op("status", lambda d: d.status()),
        Op("wait_idle", lambda d: d.wait_idle(0.1, poll_s=0.01), 0.1),
        Op("send_line", lambda d: d.send_line("G4 P0")),
        Op("unlock", lambda d: d.unlock()),
        Op("home", lambda d: d.home(timeout=T)),
        Op("move_to", lambda d: d.move_to(x=-5.0, y=-5.0, feed=500.0)),
        Op("move_by", lambda d: d.move_by(dx=-1.0, feed=500.0)),
        Op("soft_reset", lambda d: d.soft_reset(timeout=T)),
        Op("feed_hold", lambda d: d.feed_hold()),
        Op("resume", lambda d: d.resume()),
    ],
}
"""Every public driver call that reads a reply (and the set commands that only write)."""


def make_fuzz_driver(kind: str, port: FuzzPort) -> Any:
    from drivers import NE1000, Grbl, IkaHotplate, MtSicsBalance, ScpiLcr

    if kind == "ne1000":
        return NE1000(port=port, timeout=T, name="pump")
    if kind == "scpi_lcr":
        return ScpiLcr(port=port, timeout=T, name="lcr")
    if kind == "ika_namur":
        return IkaHotplate(port=port, timeout=T, name="hotplate")
    if kind == "mt_sics":
        return MtSicsBalance(port=port, timeout=T, stable_timeout=T, name="balance")
    if kind == "grbl":
        return Grbl(port=port, timeout=T, name="gantry")
    raise ValueError(kind)


def make_fuzz_sim(kind: str, seed: int) -> Any:
    from simulators.workcell import simulator_class
    from simulators.world import SimulatedWorld

    world = SimulatedWorld(time_scale=1e6, seed=seed)
    return simulator_class(kind)(world)


@dataclass
class FuzzStats:
    """Outcome counts of one driver's fuzzing."""

    cases: int = 0
    calls: int = 0
    returned: int = 0
    typed_errors: int = 0
    untyped_errors: int = 0
    hangs: int = 0
    errors_by_type: Counter[str] = field(default_factory=Counter)
    untyped_examples: list[dict[str, Any]] = field(default_factory=list)
    hang_examples: list[dict[str, Any]] = field(default_factory=list)
    max_overrun_s: float = 0.0


def run_fuzz_case(
    kind: str, op_ids: Sequence[int], mutations: Sequence[Mutation], stats: FuzzStats, seed: int
) -> None:
    """One case: a fresh simulator, port and driver; the calls run in a worker thread."""
    from drivers import DriverError

    ops = [FUZZ_OPS[kind][i] for i in op_ids]
    port = FuzzPort(make_fuzz_sim(kind, seed), mutations, late_s=2 * T)
    outcomes: list[tuple[str, BaseException | None, float, float]] = []

    def work() -> None:
        driver = make_fuzz_driver(kind, port)
        for op in ops:
            writes = port.writes
            t0 = time.monotonic()
            try:
                op.call(driver)
                exc: BaseException | None = None
            except Exception as e:  # noqa: BLE001 - classified below
                exc = e
            elapsed = time.monotonic() - t0
            bound = 1.5 * ((port.writes - writes + 2) * (T + 0.01) + op.extra_s) + 1.0
            outcomes.append((op.name, exc, elapsed, bound))

    thread = threading.Thread(target=work, name=f"fuzz-{kind}", daemon=True)
    thread.start()
    thread.join(HANG_CAP_S)
    stats.cases += 1
    sample = {
        "driver": kind,
        "calls": [op.name for op in ops],
        "mutations": [repr(m) for m in mutations[:12]],
    }
    if thread.is_alive():
        port.close()  # the driver's next read raises and ends the thread
        stats.hangs += 1
        if len(stats.hang_examples) < 20:
            stats.hang_examples.append({**sample, "reason": f"still running after {HANG_CAP_S} s"})
        return
    for name, exc, elapsed, bound in outcomes:
        stats.calls += 1
        stats.max_overrun_s = max(stats.max_overrun_s, elapsed - bound)
        if elapsed > bound:
            stats.hangs += 1
            if len(stats.hang_examples) < 20:
                stats.hang_examples.append(
                    {**sample, "call": name, "elapsed_s": elapsed, "bound_s": bound}
                )
        if exc is None:
            stats.returned += 1
        elif isinstance(exc, DriverError):
            stats.typed_errors += 1
            stats.errors_by_type[type(exc).__name__] += 1
        else:
            stats.untyped_errors += 1
            stats.errors_by_type[f"UNTYPED {type(exc).__name__}"] += 1
            if len(stats.untyped_examples) < 20:
                stats.untyped_examples.append(
                    {**sample, "call": name, "error": f"{type(exc).__name__}: {exc}"[:300]}
                )


def fuzz_driver(kind: str, examples: int, seed: int = 0) -> FuzzStats:
    """Fuzz one driver's reply parsing with ``examples`` hypothesis cases."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st

    stats = FuzzStats()
    n_ops = len(FUZZ_OPS[kind])

    @hypothesis_seed(seed)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(
        op_ids=st.lists(st.integers(0, n_ops - 1), min_size=1, max_size=3),
        mutations=st.lists(mutation_strategy(kind), max_size=16),
        sim_seed=st.integers(0, 2**16),
    )
    def case(op_ids: list[int], mutations: list[Mutation], sim_seed: int) -> None:
        run_fuzz_case(kind, op_ids, mutations, stats, sim_seed)

    logging.getLogger("drivers").setLevel(logging.CRITICAL)  # retries log warnings; not wanted
    try:
        case()
    finally:
        logging.getLogger("drivers").setLevel(logging.NOTSET)
    return stats


def run_fuzz(examples: int, seed: int) -> dict[str, Any]:
    """The fuzz part: every driver, ``examples`` cases each."""
    per: dict[str, FuzzStats] = {}
    t0 = time.monotonic()
    for i, kind in enumerate(FUZZ_OPS):
        per[kind] = fuzz_driver(kind, examples, seed + i)
        s = per[kind]
        log(
            f"fuzz {kind}: {s.cases} cases, {s.calls} calls, {s.untyped_errors} untyped, "
            f"{s.hangs} hangs"
        )
    return {
        "cases": sum(s.cases for s in per.values()),
        "untyped_errors": sum(s.untyped_errors for s in per.values()),
        "hangs": sum(s.hangs for s in per.values()),
        "calls": sum(s.calls for s in per.values()),
        "typed_errors": sum(s.typed_errors for s in per.values()),
        "returned": sum(s.returned for s in per.values()),
        "by_driver": {
            k: {
                "cases": s.cases,
                "calls": s.calls,
                "returned": s.returned,
                "typed_errors": s.typed_errors,
                "untyped_errors": s.untyped_errors,
                "hangs": s.hangs,
                "errors_by_type": dict(s.errors_by_type),
            }
            for k, s in per.items()
        },
        "reply_timeout_s": T,
        "wall_s": round(time.monotonic() - t0, 1),
        "_details": {
            "untyped": [x for s in per.values() for x in s.untyped_examples],
            "hangs": [x for s in per.values() for x in s.hang_examples],
        },
    }
