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
    calls before any sample state is read or changed.

    Args:
        world: The shared simulated world.
        faults: Fault settings or a ready injector; None for no faults.
        seed: Seed of the device's own generator (instrument errors, noise); derived from the
            world's seed and ``seed_parts`` when None.
        seed_parts: Values that make the derived seed unique per device.
    """

    def __init__(
        self,
        world: SimulatedWorld,
        *,
        faults: FaultConfig | FaultInjector | None,
        seed: int | None,
        seed_parts: tuple[object, ...],
    ) -> None:
        self.world = world
        self.faults = make_injector(faults, world.sim_time)
        entropy = seed if seed is not None else derive_seed(world, type(self).__name__, *seed_parts)
        self.rng = np.random.default_rng(entropy)
        self._attached = False

    def _attach(self) -> None:
        if not self._attached:
            self.world.attach(self.advance)
            self._attached = True

    def advance(self, now: float) -> None:
        """Apply the physics up to simulated time ``now`` (s). Called under the world lock."""

    def close(self) -> None:
        """Detach from the world."""
        if self._attached:
            self.world.detach(self.advance)
            self._attached = False
