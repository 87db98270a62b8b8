"""Shared plumbing of the device simulators: world, fault injector, seeded generator."""

from __future__ import annotations

import zlib

import numpy as np

from simulators.faults import FaultConfig, FaultInjector, make_injector
from simulators.world import SimulatedWorld


def derive_seed(world: SimulatedWorld, *parts: object) -> list[int]:
    """A seed sequence entropy for a device: the world's seed plus stable hashes of ``parts``."""
    return [world.seed, *(zlib.crc32(str(p).encode()) for p in parts)]


class DeviceSim:
    """Base of a simulated instrument.

    Subclasses implement ``feed(data) -> bytes | Disconnect | None`` and take
    :attr:`world`'s lock around every access to their own state (one lock for the whole
    workcell). A subclass with time-dependent physics overrides :meth:`advance`, which the world
    calls before any sample state is read or changed, and, when its changes must be seen by the
    other devices at the instant they happen (a gantry arriving), :meth:`next_event`.

    Every subclass accepts ``station`` as a keyword and passes it on: the workcell gives a
    simulator only the keywords its own signature names.

    Args:
        world: The shared simulated world.
        faults: Fault settings or a ready injector; None for no faults.
        seed: Seed of the device's own generator (instrument errors, noise); derived from the
            world's seed and ``seed_parts`` when None.
        seed_parts: Values that make the derived seed unique per device.
        station: Deck station the instrument works at (it acts only on a sample there once
            the world has stations); None acts wherever the sample is.
    """

    def __init__(
        self,
        world: SimulatedWorld,
        *,
        faults: FaultConfig | FaultInjector | None,
        seed: int | None,
        seed_parts: tuple[object, ...],
        station: str | None = None,
    ) -> None:
        self.world = world
        self.station = station
        self.faults = make_injector(faults, world.sim_time)
        entropy = seed if seed is not None else derive_seed(world, type(self).__name__, *seed_parts)
        self.rng = np.random.default_rng(entropy)
        self._attached = False

    def _attach(self) -> None:
        if not self._attached:
            timed = type(self).next_event is not DeviceSim.next_event
            self.world.attach(self.advance, self.next_event if timed else None)
            self._attached = True

    def advance(self, now: float) -> None:
        """Apply the physics up to simulated time ``now`` (s). Called under the world lock."""

    def next_event(self) -> float | None:
        """Simulated time of the next change the other devices must see in order, or None.

        The world steps every device to it before going on (see
        :meth:`SimulatedWorld.attach`). Called under the world lock.
        """
        return None

    def close(self) -> None:
        """Detach from the world."""
        if self._attached:
            self.world.detach(self.advance)
            self._attached = False
