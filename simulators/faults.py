"""Seeded fault injection for the simulated instruments.

Every simulated device owns one :class:`FaultInjector`. For each command exchange the device asks
the injector whether a fault happens (:meth:`FaultInjector.draw`) and passes its reply through
:meth:`FaultInjector.transform`; :meth:`FaultInjector.apply` does both for a generic reply. The
decision comes from the injector's own :class:`numpy.random.Generator`, so the same seed and the
same sequence of exchanges give the same faults. Every injected fault is logged in
:attr:`FaultInjector.log` as ``(time, kind, detail)``.

Kinds:
    ``no_reply``: the command is executed, its reply is dropped (the host times out).
    ``garbled``: 1-3 bytes of the reply are replaced by other printable bytes.
    ``truncated``: the reply is cut short (possibly to nothing).
    ``busy``: protocol-specific: the device answers with its busy/alarm frame instead of
        carrying out the command (NE-1000 ``A?S`` stall, MT-SICS ``<ID> I``, GRBL ``ALARM:1``,
        SCPI error-queue entry, IKA silence).
    ``disconnect``: the link drops: a TCP connection is closed; a serial port goes deaf and mute
        for :attr:`FaultConfig.disconnect_s` real seconds, as with a pulled RS-232 cable.
    ``drift``: the reply is unchanged but a slow offset on the device's readings grows by
        :attr:`FaultConfig.drift_step` (relative; the balance reads it as grams), always in the
        same direction (drawn once per injector).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

FAULT_KINDS: tuple[str, ...] = ("no_reply", "garbled", "truncated", "busy", "disconnect", "drift")


@dataclass(frozen=True)
class FaultConfig:
    """Fault-injection settings of one device.

    Attributes:
        rate: Probability of a fault per command exchange, 0-1.
        kinds: Fault kinds to draw from (uniformly).
        seed: Seed of the injector's generator.
        disconnect_s: How long a serial link stays down after a ``disconnect``, real s.
        drift_step: Growth of the reading offset per ``drift`` fault (relative).
    """

    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    seed: int = 0
    disconnect_s: float = 0.5
    drift_step: float = 0.002

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate must be in [0, 1], got {self.rate}")
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {FAULT_KINDS}")
        if self.rate > 0 and not self.kinds:
            raise ValueError("a positive fault rate needs at least one fault kind")
        object.__setattr__(self, "kinds", tuple(self.kinds))


@dataclass(frozen=True)
class Disconnect:
    """Returned by a handler instead of reply bytes: drop the link.

    Attributes:
        seconds: How long a serial link stays deaf and mute, real s (TCP: the connection is
            closed, the server keeps listening).
        before: Bytes to send before the link drops.
    """

    seconds: float = 0.5
    before: bytes = b""


Reply = bytes | None | Disconnect


class FaultInjector:
    """Decides and applies faults for one device.

    Args:
        config: Settings; no faults when None.
        clock: Time source for the log (a device passes its world's ``sim_time``).
        busy_frame: Reply used for ``busy`` by :meth:`apply` (devices usually build their own
            busy frame and call :meth:`transform`).
    """

    def __init__(
        self,
        config: FaultConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        busy_frame: bytes = b"",
    ) -> None:
        self.config = config or FaultConfig()
        self.clock = clock
        self.busy_frame = busy_frame
        self.rng = np.random.default_rng(self.config.seed)
        self._drift_sign = 1.0 if self.rng.random() < 0.5 else -1.0
        self.drift = 0.0
        self.log: list[tuple[float, str, str]] = []

    @property
    def active(self) -> bool:
        """Whether any fault can be injected."""
        return self.config.rate > 0

    def draw(self) -> str | None:
        """Decide whether this exchange gets a fault.

        Returns:
            The fault kind, or None.
        """
        if not self.active:
            return None
        if self.rng.random() >= self.config.rate:
            return None
        return self.config.kinds[int(self.rng.integers(len(self.config.kinds)))]

    def record(self, kind: str, detail: str = "") -> None:
        """Append an entry to the fault log."""
        self.log.append((self.clock(), kind, detail))

    def transform(self, kind: str | None, reply: bytes) -> Reply:
        """Apply a drawn fault to a reply and log it.

        ``busy`` is logged with the reply as detail (the device already put its busy frame in
        ``reply``).

        Args:
            kind: Fault kind from :meth:`draw`, or None for no fault.
            reply: The reply the device would send.

        Returns:
            The bytes to send, None for no reply, or a :class:`Disconnect`.
        """
        if kind is None:
            return reply
        if kind == "no_reply":
            self.record(kind, f"dropped {reply!r}")
            return None
        if kind == "garbled":
            if not reply:
                self.record(kind, "empty reply")
                return reply
            data = bytearray(reply)
            n = int(self.rng.integers(1, min(3, len(data)) + 1))
            positions = self.rng.choice(len(data), size=n, replace=False)
            for pos in positions:
                new = int(self.rng.integers(0x21, 0x7F))
                data[pos] = new if new != data[pos] else (new % 0x5D) + 0x22
            self.record(kind, f"{reply!r} -> {bytes(data)!r}")
            return bytes(data)
        if kind == "truncated":
            cut = int(self.rng.integers(0, len(reply))) if reply else 0
            self.record(kind, f"{reply!r} -> {reply[:cut]!r}")
            return reply[:cut]
        if kind == "busy":
            self.record(kind, repr(reply))
            return reply
        if kind == "disconnect":
            self.record(kind, f"link down {self.config.disconnect_s} s")
            return Disconnect(self.config.disconnect_s)
        if kind == "drift":
            self.drift += self._drift_sign * self.config.drift_step
            self.record(kind, f"offset now {self.drift:+.4f}")
            return reply
        raise ValueError(f"unknown fault kind {kind!r}")

    def apply(self, reply: bytes) -> Reply:
        """Draw a fault for this exchange and apply it to ``reply``.

        Args:
            reply: The reply the device would send.

        Returns:
            The bytes to send (:attr:`busy_frame` for ``busy``), None, or a :class:`Disconnect`.
        """
        kind = self.draw()
        return self.transform(kind, self.busy_frame if kind == "busy" else reply)


def make_injector(
    faults: FaultConfig | FaultInjector | None, clock: Callable[[], float]
) -> FaultInjector:
    """Injector for a device: the given one, one built from a config, or a fault-free one."""
    if isinstance(faults, FaultInjector):
        return faults
    return FaultInjector(faults, clock=clock)
