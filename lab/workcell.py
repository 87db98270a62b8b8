"""Workcell files: which instrument sits at which port.

One format serves the simulators, the console and the devices::

    devices:
      pump_a:   {kind: ne1000,    url: /dev/pts/7, address: 0, role: precursor}
      lcr:      {kind: scpi_lcr,  url: socket://127.0.0.1:5025}

``url`` is anything ``serial.serial_for_url`` accepts: a device path, a pty path or
``socket://host:port``. Per-device extra keys (``role``, ``baudrate``, ``limits``,
``faults``, ``stations``...) are kept as given. A simulated workcell also writes its
``time_scale``.

``lease_ttl_s`` (optional) sets how long an instrument lease lives without a heartbeat: a
campaign killed mid-experiment blocks the instruments that long before a resume (or another
campaign) can take them. The environment variable ``LAB_LEASE_TTL_S`` overrides it; the
default is 30 s.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lab.errors import SpecError
from lab.spec import format_validation_error, read_yaml

DEFAULT_LEASE_TTL_S = 30.0
"""Instrument lease lifetime without a heartbeat when nothing else is configured, s."""
LEASE_TTL_ENV = "LAB_LEASE_TTL_S"
"""Environment variable that overrides the workcell file's ``lease_ttl_s``."""


class DeviceEntry(BaseModel):
    """One device of a workcell.

    Attributes:
        kind: Instrument kind (a registered kind of :data:`lab.instruments.INSTRUMENTS`:
            ``ne1000``, ``ika_namur``, ``mt_sics``, ``grbl``, ``scpi_lcr``, ``sqc310``...).
        url: Transport URL for ``serial.serial_for_url``.
        address: Bus address (NE-1000 pumps), 0-99.
        role: The role a campaign's process steps name it by (pumps: ``precursor``,
            ``solvent``...); a step may also name the device itself.
        station: Station of the deck it works at, when a gantry carries the samples (a key
            of the gantry's ``stations:`` map).
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    kind: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    url: str = Field(min_length=1)
    address: int = Field(default=0, ge=0, le=99)
    role: str | None = None
    station: str | None = None
    baudrate: int | None = Field(default=None, gt=0)
    timeout: float = Field(default=1.0, gt=0, le=60)


class Workcell(BaseModel):
    """A validated workcell file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    devices: dict[str, DeviceEntry] = Field(min_length=1)
    time_scale: float = Field(default=1.0, gt=0)
    """Seconds of the workcell's clock per real second: 1 for a bench; a simulated workcell
    that runs faster says so, and plans divide their waits (an anneal's hold) by it."""
    lease_ttl_s: float | None = Field(default=None, gt=0, le=86400)
    """Lifetime of an instrument lease without a heartbeat, s (renewed every third of it);
    ``$LAB_LEASE_TTL_S`` overrides it; neither set: 30 s. See :func:`lease_ttl`."""

    def lease_ttl(self) -> float:
        """The lease lifetime in force for this workcell, s (see :func:`lease_ttl`).

        Raises:
            SpecError: If ``$LAB_LEASE_TTL_S`` is not a positive number of seconds.
        """
        return lease_ttl(self.lease_ttl_s)

    def of_kind(self, kind: str) -> dict[str, DeviceEntry]:
        """Devices of one kind, by name."""
        return {n: d for n, d in self.devices.items() if d.kind == kind}

    def resolve(self, role: str) -> str | None:
        """Name of the device a step names: the device called ``role``, else the one whose
        ``role`` it is (``None`` when neither exists)."""
        if role in self.devices:
            return role
        return next((n for n, d in self.devices.items() if d.role == role), None)

    def pump_for_role(self, role: str) -> str:
        """Name of the syringe pump with ``role`` (or named ``role``/``pump_<role>``).

        Raises:
            SpecError: If no pump serves that role.
        """
        for name, d in self.of_kind("ne1000").items():
            if role in (d.role, name) or name == f"pump_{role}":
                return name
        raise SpecError(
            f"the workcell has no ne1000 pump with role '{role}': add one "
            f"(e.g. pump_{role}: {{kind: ne1000, url: ..., role: {role}}})"
        )


def lease_ttl(configured: float | None = None) -> float:
    """The instrument lease lifetime in force, s.

    ``$LAB_LEASE_TTL_S`` if set, else ``configured`` (a workcell file's ``lease_ttl_s``), else
    :data:`DEFAULT_LEASE_TTL_S`. A holder that dies (a killed campaign) stops renewing its
    leases, so they expire and a resume can take the instruments after at most this long;
    live holders renew every third of it (one database write each time).

    Args:
        configured: The workcell file's ``lease_ttl_s``, s, or None.

    Raises:
        SpecError: If ``$LAB_LEASE_TTL_S`` is not a positive number of seconds.
    """
    raw = os.environ.get(LEASE_TTL_ENV, "").strip()
    if not raw:
        return configured if configured is not None else DEFAULT_LEASE_TTL_S
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 86400:
        raise SpecError(
            f"{LEASE_TTL_ENV}={raw!r}: give the instrument lease lifetime in seconds, a number "
            "above 0 and at most 86400 (e.g. 5), or unset it"
        )
    return value


def parse_workcell(data: Any, source: str = "<workcell>") -> Workcell:
    """Validate a workcell mapping.

    Raises:
        SpecError: If the data is not a valid workcell.
    """
    if not isinstance(data, dict):
        raise SpecError(f"{source}: a workcell file must be a mapping with a 'devices' key")
    try:
        return Workcell.model_validate(data)
    except ValidationError as err:
        raise SpecError(format_validation_error(err, source)) from None


def load_workcell(path: str | Path) -> Workcell:
    """Load and validate a workcell file.

    Raises:
        SpecError: If the file is missing, not YAML, or invalid.
    """
    return parse_workcell(read_yaml(path, "workcell file"), str(path))


def dump_workcell(workcell: Workcell | dict[str, Any], path: str | Path) -> None:
    """Write a workcell file atomically."""
    import os
    import tempfile

    import yaml

    data = workcell.model_dump(exclude_none=True) if isinstance(workcell, Workcell) else workcell
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=p.name, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(data, fh, sort_keys=False)
    os.replace(tmp, p)


def check_campaign(spec: Any, workcell: Workcell, source: str = "workcell") -> None:
    """Check, before anything runs, that a workcell can make and measure a campaign's samples.

    Every process step names a device the workcell has, of a kind the step runs on, able to
    do everything the step may ask (e.g. a film loaded with each material a deposit may ask
    for); every bench fidelity has its measuring device; with a gantry carrying the samples,
    every step and measurement runs at the station where the sample is by then (moves are
    followed through the process). Calculation fidelities are refused: the campaign flow
    does not run them.

    Args:
        spec: The campaign (:class:`lab.spec.Campaign`).
        workcell: The workcell file.
        source: Names the workcell in messages.

    Raises:
        SpecError: Naming the step or fidelity, the device and the fix.
    """
    tracked = any(d.kind == "grbl" for d in workcell.devices.values()) and any(
        d.station for d in workcell.devices.values()
    )
    location: str | None = None

    def at_station(name: str, where: str) -> None:
        station = workcell.devices[name].station
        if tracked and station and station != location:
            raise SpecError(
                f"{where}: runs on '{name}' at station '{station}' but the sample is "
                f"{'at ' + repr(location) if location else 'not at any station'} by then: "
                f"add a move step (step: move, args: {{station: {station}}}) before it"
            )

    for step, (where, kind, bindings) in zip(spec.process, spec.bound_steps(), strict=True):
        name = workcell.resolve(step.device)
        if name is None:
            raise SpecError(
                f"{where}: {source} has no device named or with role '{step.device}': add one "
                f"of kind {' or '.join(kind.instruments)} (devices: {', '.join(workcell.devices)})"
            )
        entry = workcell.devices[name]
        if entry.kind not in kind.instruments:
            raise SpecError(
                f"{where}: device '{name}' is a {entry.kind}; a {kind.name} step runs on "
                f"{' or '.join(kind.instruments)}"
            )
        kind.check_device(entry, {a: b.domain(spec) for a, b in bindings.items()}, where)
        if kind.moves_sample:
            b = bindings.get("station")
            location = None if b is None or b.param else str(b.constant)
        else:
            at_station(name, where)
    for f in spec.fidelities:
        _, route, _ = spec.bound_route(f)
        where = f"fidelities.{f.name}"
        if not route.bench:
            raise SpecError(
                f"{where}: route '{f.route}' is a calculation, which the campaign flow does not "
                "run; remove the fidelity to launch on the bench"
            )
        name = measuring_device(spec, f, workcell, source)
        at_station(name, where)


def measuring_device(spec: Any, fidelity: Any, workcell: Workcell, source: str = "workcell") -> str:
    """Name of the device a bench fidelity's route measures with.

    The fidelity's ``device`` (a name or role), else the one device of a kind the route uses.

    Raises:
        SpecError: If there is none, or several and the fidelity does not say which.
    """
    from lab.routes import ROUTES

    route = ROUTES.get(fidelity.route)
    where = f"fidelities.{fidelity.name}"
    if fidelity.device is not None:
        name = workcell.resolve(fidelity.device)
        if name is None or workcell.devices[name].kind not in route.instruments:
            raise SpecError(
                f"{where}.device: {source} has no {' or '.join(route.instruments)} named or with "
                f"role '{fidelity.device}'"
            )
        return name
    names = [n for n, d in workcell.devices.items() if d.kind in route.instruments]
    if len(names) != 1:
        raise SpecError(
            f"{where}: route {route.name} measures with a {' or '.join(route.instruments)}; "
            f"{source} has {len(names)} ({', '.join(names) or 'none'}): "
            + ("add one" if not names else "name one with device:")
        )
    return names[0]
