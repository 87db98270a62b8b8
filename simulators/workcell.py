"""A simulated workcell: several simulated instruments over one world, each on its own port.

Serial instruments (``ne1000``, ``ika_namur``, ``mt_sics``, ``grbl``, ``sqc310``) are served on new
pseudo-terminals (``/dev/pts/N``), the LCR meter (``scpi_lcr``) on ``127.0.0.1`` with an ephemeral
TCP port (``socket://127.0.0.1:PORT``). The device entries use the workcell-file format::

    {kind: ne1000, role: precursor, address: 0, faults: {rate: 0.05, seed: 3}}

``url`` in the input is ignored and replaced by the real one. Keys that match a keyword of the
simulator's constructor (``role``, ``address``, ``station``, the gantry's ``stations``,
``volume_error``, ``trg_returns_data``...) are passed to it (and kept in the file written); ``faults`` (a mapping of :class:`~simulators.faults.FaultConfig` fields) overrides
the workcell-wide ``faults_rate`` for that device; ``simulator`` (``module:Class``) and
``transport`` (``pty`` or ``tcp``) choose a simulator that :data:`SIMULATORS` does not list
and how it is served; other keys are kept and written back.
"""

from __future__ import annotations

import importlib
import inspect
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from simulators._base import DeviceSim, derive_seed
from simulators.faults import FaultConfig
from simulators.transport import PtyServer, TcpServer
from simulators.world import SimulatedWorld

SIMULATORS: dict[str, tuple[str, str]] = {
    "ne1000": ("simulators.ne1000", "NE1000Sim"),
    "scpi_lcr": ("simulators.scpi_lcr", "ScpiLcrSim"),
    "ika_namur": ("simulators.ika_namur", "IkaNamurSim"),
    "mt_sics": ("simulators.mt_sics", "MtSicsSim"),
    "grbl": ("simulators.grbl", "GrblSim"),
    "sqc310": ("simulators.sqc310", "Sqc310Sim"),
}
"""Device kind → (module, class) of its simulator."""

TCP_KINDS = frozenset({"scpi_lcr"})
"""Kinds served over TCP; the others are served on a pty."""

DEMO_DEVICES: dict[str, dict[str, Any]] = {
    "pump_precursor": {"kind": "ne1000", "role": "precursor", "address": 0},
    "pump_solvent": {"kind": "ne1000", "role": "solvent", "address": 0},
    "lcr": {"kind": "scpi_lcr"},
}
"""The demo campaign's instruments: two pumps and the impedance meter."""

FULL_DEVICES: dict[str, dict[str, Any]] = {
    "pump_precursor": {"kind": "ne1000", "role": "precursor", "address": 0, "station": "dispense"},
    "pump_solvent": {"kind": "ne1000", "role": "solvent", "address": 0, "station": "dispense"},
    "hotplate": {"kind": "ika_namur", "station": "hotplate"},
    "balance": {"kind": "mt_sics", "station": "balance"},
    "gantry": {
        "kind": "grbl",
        # Deck stations in machine coordinates (GRBL's machine space is negative), mm.
        "stations": {
            "rack": [-20.0, -20.0, 0.0],
            "dispense": [-60.0, -40.0, 0.0],
            "hotplate": [-110.0, -40.0, 0.0],
            "balance": [-150.0, -40.0, 0.0],
            "lcr": [-180.0, -40.0, 0.0],
        },
    },
    "lcr": {"kind": "scpi_lcr", "station": "lcr"},
}
"""Every kind of instrument of the simulated workcell. The gantry carries the sample between
the stations; each instrument acts only on a sample at its ``station`` (see
:mod:`simulators.world`)."""


def simulator_class(kind: str, name: str | None = None) -> type[DeviceSim]:
    """The simulator class of a device kind, or the one ``name`` gives (``module:Class``).

    Raises:
        ValueError: For an unknown kind without a name, or a malformed name.
    """
    if name is not None:
        module_name, sep, class_name = name.partition(":")
        if not sep or not module_name or not class_name:
            raise ValueError(f"simulator must be given as 'module:Class', got {name!r}")
    else:
        try:
            module_name, class_name = SIMULATORS[kind]
        except KeyError:
            raise ValueError(f"unknown device kind {kind!r}; known: {sorted(SIMULATORS)}") from None
    return getattr(importlib.import_module(module_name), class_name)


class SimulatedWorkcell:
    """Start, describe and stop a set of simulated instruments.

    Args:
        devices: Device name → workcell entry (``kind`` required).
        world: Shared world; a new one seeded with ``seed`` when None.
        seed: Seed for the per-device fault injectors.
        faults_rate: Fault probability per exchange for every device without its own ``faults``.
    """

    def __init__(
        self,
        devices: dict[str, dict[str, Any]],
        *,
        world: SimulatedWorld | None = None,
        seed: int = 0,
        faults_rate: float = 0.0,
    ) -> None:
        self.world = world if world is not None else SimulatedWorld(seed=seed)
        self.seed = seed
        self.faults_rate = faults_rate
        self.entries: dict[str, dict[str, Any]] = {}
        self.sims: dict[str, DeviceSim] = {}
        self.servers: dict[str, PtyServer | TcpServer] = {}
        for name, entry in devices.items():
            if "kind" not in entry:
                raise ValueError(f"device {name!r} has no 'kind'")
            self.entries[name] = {k: v for k, v in entry.items() if k != "url"}
        self._started = False

    def _fault_config(self, name: str, entry: dict[str, Any]) -> FaultConfig | None:
        spec = entry.get("faults")
        entropy = derive_seed(self.world, self.seed, name)
        seed = int(np.random.SeedSequence(entropy).generate_state(1)[0])
        if isinstance(spec, dict):
            fields = {"seed": seed, **spec}
            if "kinds" in fields:
                fields["kinds"] = tuple(fields["kinds"])
            return FaultConfig(**fields)
        if self.faults_rate > 0:
            return FaultConfig(rate=self.faults_rate, seed=seed)
        return None

    def _make_sim(self, name: str, entry: dict[str, Any]) -> DeviceSim:
        cls = simulator_class(entry["kind"], entry.get("simulator"))
        accepted = set(inspect.signature(cls).parameters) - {"world", "faults"}
        options = {k: v for k, v in entry.items() if k in accepted}
        return cls(self.world, faults=self._fault_config(name, entry), **options)

    def start(self) -> dict[str, dict[str, Any]]:
        """Start every device.

        Returns:
            Device name → entry with the real ``url`` filled in.
        """
        if self._started:
            raise RuntimeError("workcell already started")
        self._started = True
        try:
            for name, entry in self.entries.items():
                sim = self._make_sim(name, entry)
                self.sims[name] = sim
                if entry.get("transport", "tcp" if entry["kind"] in TCP_KINDS else "pty") == "tcp":
                    server: PtyServer | TcpServer = TcpServer(sim, name=name)
                    host, port = server.start()
                    entry["url"] = f"socket://{host}:{port}"
                else:
                    server = PtyServer(sim, name=name)
                    entry["url"] = server.start()
                self.servers[name] = server
            stations = self.world.stations
            unknown = {n: s.station for n, s in self.sims.items() if s.station is not None}
            unknown = {n: s for n, s in unknown.items() if stations and s not in stations}
            if unknown:
                raise ValueError(f"devices at undefined stations {unknown}; {sorted(stations)}")
        except BaseException:
            self.stop()
            raise
        return self.devices

    @property
    def devices(self) -> dict[str, dict[str, Any]]:
        """Device name → workcell entry (with ``url`` once started)."""
        return {name: dict(entry) for name, entry in self.entries.items()}

    def stop(self) -> None:
        """Stop every server and detach every simulator from the world."""
        for server in self.servers.values():
            server.stop()
        for sim in self.sims.values():
            sim.close()
        self.servers.clear()
        self.sims.clear()
        self._started = False

    def __enter__(self) -> SimulatedWorkcell:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def write_workcell(self, path: str | Path) -> Path:
        """Write the workcell file ``devices: {name: {kind, url, ...}}`` (atomically).

        Returns:
            The path written.
        """
        devices = {}
        for name, entry in self.entries.items():
            ordered = {"kind": entry["kind"], "url": entry.get("url")}
            ordered.update({k: v for k, v in entry.items() if k not in ordered and v is not None})
            devices[name] = ordered
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            # A simulated clock runs faster than real time: hosts scale their waits by it.
            doc = {"time_scale": float(self.world.time_scale), "devices": devices}
            yaml.safe_dump(doc, fh, sort_keys=False)
        os.replace(tmp, target)
        return target

    def fault_log(self) -> list[tuple[str, float, str, str]]:
        """Every injected fault so far as ``(device, sim_time_s, kind, detail)``, by time."""
        rows = [
            (name, t, kind, detail)
            for name, sim in self.sims.items()
            for t, kind, detail in sim.faults.log
        ]
        return sorted(rows, key=lambda row: row[1])
