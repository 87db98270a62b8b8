"""Helpers of the hardware-in-the-loop tests.

* :func:`running_cell` starts a :class:`~simulators.workcell.SimulatedWorkcell` (real ptys and a
  TCP socket) over a fast world and always stops it.
* :func:`open_driver` opens the host driver of one simulated device at its real URL.
* :class:`WireLog` records every byte a simulator's handler received (the simulators keep no
  log of their own), by wrapping its ``feed``; nothing is added to the simulators.
* :class:`ScriptedFaults` is a :class:`~simulators.faults.FaultInjector` whose *decisions* are
  scripted (fault the next exchange, then none), while the faults themselves (garbling,
  truncation, busy frames, link drops) are the injector's own.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from drivers import NE1000, Grbl, IkaHotplate, MtSicsBalance, ScpiLcr, Sqc310
from simulators.faults import FaultConfig, FaultInjector
from simulators.workcell import SimulatedWorkcell
from simulators.world import SimulatedWorld

TIME_SCALE = 2000.0
"""Simulated seconds per real second in these tests."""

FAST_TIMEOUT = 0.2
"""Reply time-out of the drivers in the fault tests, s."""

MARGIN = 0.35
"""Allowance for scheduling on a loaded machine when bounding a failing call's time, s."""

DRIVERS: dict[str, type] = {
    "ne1000": NE1000,
    "ika_namur": IkaHotplate,
    "mt_sics": MtSicsBalance,
    "grbl": Grbl,
    "scpi_lcr": ScpiLcr,
    "sqc310": Sqc310,
}


@contextmanager
def running_cell(
    devices: dict[str, dict[str, Any]], *, time_scale: float = TIME_SCALE, seed: int = 0
) -> Iterator[SimulatedWorkcell]:
    """A started simulated workcell over a fresh world; stopped on exit."""
    world = SimulatedWorld(time_scale=time_scale, seed=seed)
    with SimulatedWorkcell(devices, world=world, seed=seed) as cell:
        yield cell


def open_driver(cell: SimulatedWorkcell, name: str, **kwargs: Any) -> Any:
    """Open the driver of device ``name`` of a running workcell at its real URL."""
    entry = cell.devices[name]
    cls = DRIVERS[entry["kind"]]
    if entry["kind"] == "ne1000":
        kwargs.setdefault("address", entry.get("address", 0))
    return cls(entry["url"], name=name, **kwargs)


class WireLog:
    """Everything a simulator's handler was fed by the host, in order.

    Bytes that arrive while a pty link is down (a ``disconnect`` fault) never reach the handler
    and are not recorded: the log is what the instrument *heard*.

    Args:
        sim: The simulator (``cell.sims[name]``); its ``feed`` is wrapped.
    """

    def __init__(self, sim: Any) -> None:
        self._chunks: list[bytes] = []
        self._lock = threading.Lock()
        inner: Callable[[bytes], Any] = sim.feed

        def feed(data: bytes) -> Any:
            with self._lock:
                self._chunks.append(bytes(data))
            return inner(data)

        sim.feed = feed

    @property
    def data(self) -> bytes:
        """All bytes received so far."""
        with self._lock:
            return b"".join(self._chunks)

    def lines(self, terminator: bytes = b"\n", *, drop: bytes = b"") -> list[bytes]:
        """Received lines split at ``terminator``, CR/LF stripped, empty ones left out.

        Args:
            terminator: The host's line end.
            drop: Bytes removed from the stream first (GRBL's real-time ``?``).
        """
        data = self.data.translate(None, drop) if drop else self.data
        parts = (part.strip(b"\r\n") for part in data.split(terminator))
        return [part for part in parts if part]

    def count(self, line: bytes, terminator: bytes = b"\n", *, drop: bytes = b"") -> int:
        """How many received lines equal ``line``."""
        return sum(1 for got in self.lines(terminator, drop=drop) if got == line)

    def count_matching(
        self, pattern: bytes, terminator: bytes = b"\n", *, drop: bytes = b""
    ) -> int:
        """How many received lines match the regular expression ``pattern`` entirely."""
        regex = re.compile(pattern)
        return sum(1 for got in self.lines(terminator, drop=drop) if regex.fullmatch(got))

    def clear(self) -> None:
        """Forget what was received so far."""
        with self._lock:
            self._chunks.clear()


class ScriptedFaults(FaultInjector):
    """Fault the next exchanges as scripted (``None`` = clean), then no more faults.

    The decision is scripted; the fault is applied by :class:`FaultInjector` itself, seeded
    with ``seed`` (which bytes get garbled, where a reply is cut).
    """

    def __init__(
        self,
        *script: str | None,
        seed: int = 0,
        disconnect_s: float = 0.1,
        drift_step: float = 0.002,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        kinds = tuple(sorted({k for k in script if k is not None})) or ("no_reply",)
        config = FaultConfig(
            rate=1.0, kinds=kinds, seed=seed, disconnect_s=disconnect_s, drift_step=drift_step
        )
        super().__init__(config, clock=clock)
        self.script: deque[str | None] = deque(script)

    def draw(self) -> str | None:
        """The next scripted decision, or None once the script is used up."""
        return self.script.popleft() if self.script else None


def script_faults(
    cell: SimulatedWorkcell, name: str, *script: str | None, **kwargs: Any
) -> ScriptedFaults:
    """Install a :class:`ScriptedFaults` on device ``name`` of a running workcell."""
    injector = ScriptedFaults(*script, clock=cell.world.sim_time, **kwargs)
    cell.sims[name].faults = injector
    return injector


def fault_kinds(cell: SimulatedWorkcell, name: str) -> list[str]:
    """Kinds of the faults injected so far on device ``name``."""
    return [kind for dev, _, kind, _ in cell.fault_log() if dev == name]


class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.elapsed`` (s), even if the body raised."""

    elapsed: float = 0.0

    def __enter__(self) -> Stopwatch:
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.elapsed = time.perf_counter() - self._t0


def model_impedance(world: SimulatedWorld, freq_hz: float) -> complex:
    """The world's noise-free impedance model of the current sample at ``freq_hz``, ohm.

    ``Z = R_s + R_int / (1 + (j·2πf·R_int·C)^0.9)`` (see :mod:`simulators.world`).
    """
    sample = world.current_sample()
    r_int = world.interfacial_resistance(sample)
    omega = 2 * math.pi * freq_hz
    cpe = (1j * omega * r_int * sample.capacitance_f) ** 0.9
    return sample.series_resistance_ohm + r_int / (1 + cpe)


def wait_for(condition: Callable[[], bool], timeout: float = 5.0, poll: float = 0.01) -> None:
    """Poll ``condition`` until true; fail the test after ``timeout`` real seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(poll)
