"""The unsafe-on-wire part: random proposals, many out of limits, through the campaign
checks, plans, devices and drivers, and the set points on the simulators' wire compared with
the limits in force."""

from __future__ import annotations

import contextlib
import logging
import math
import re
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .campaigns import add_anneal, add_moves, campaign_data, demo_data


class WireTap:
    """Every byte a simulator's handler is fed, in order (its ``feed`` is wrapped)."""

    def __init__(self, sim: Any) -> None:
        self._chunks: list[bytes] = []
        self._lock = threading.Lock()
        inner = sim.feed

        def feed(data: bytes) -> Any:
            with self._lock:
                self._chunks.append(bytes(data))
            return inner(data)

        sim.feed = feed

    @property
    def data(self) -> bytes:
        with self._lock:
            return b"".join(self._chunks)


@dataclass(frozen=True)
class Limits:
    """The limits in force on the wire (the campaign's safety limits and the drivers')."""

    max_rate_ul_min: float
    max_volume_ul: float
    max_temp_c: float
    max_speed_rpm: float
    min_freq_hz: float
    max_freq_hz: float
    max_volt_v: float
    travel: tuple[tuple[float, float], ...]
    machine_travel: tuple[tuple[float, float], ...]


_NUM = r"([0-9]+\.?[0-9]*|\.[0-9]+)"
_RATES = {"UM": 1.0, "MM": 1000.0, "UH": 1.0 / 60.0, "MH": 1000.0 / 60.0}


def set_points_on_wire(kind: str, data: bytes, lim: Limits) -> list[dict[str, Any]]:
    """The set points in what a simulator received, each with ``ok`` against the limits."""
    out: list[dict[str, Any]] = []

    def add(what: str, value: float, ok: bool, raw: bytes, **extra: Any) -> None:
        out.append({"what": what, "value": value, "ok": ok, "raw": raw.decode("latin-1"), **extra})

    if kind == "ne1000":
        unit = "ML"  # power-on units; the driver always names the unit before a volume
        for raw in data.split(b"\r"):
            text = "".join(chr(b) for b in raw if 0x20 < b < 0x7F).upper()
            cmd = re.sub(r"^\d{1,2}", "", text)
            if m := re.fullmatch(rf"RAT{_NUM}(UM|MM|UH|MH)", cmd):
                v = float(m[1]) * _RATES[m[2]]
                add("pump rate uL/min", v, 0 < v <= lim.max_rate_ul_min, raw)
            elif m := re.fullmatch(r"VOL(UL|ML)", cmd):
                unit = m[1]
            elif m := re.fullmatch(rf"VOL{_NUM}", cmd):
                v = float(m[1]) * (1000.0 if unit == "ML" else 1.0)
                add("pump volume uL", v, 0 < v <= lim.max_volume_ul, raw)
    elif kind == "ika_namur":
        for raw in data.split(b"\n"):
            words = raw.decode("ascii", "replace").split()
            if len(words) == 2 and words[0] in ("OUT_SP_1", "OUT_SP_4"):
                try:
                    v = float(words[1])
                except ValueError:
                    continue
                if words[0] == "OUT_SP_1":
                    add("hotplate set point degC", v, 0 <= v <= lim.max_temp_c, raw)
                else:
                    add("stirrer set point rpm", v, 0 <= v <= lim.max_speed_rpm, raw)
    elif kind == "scpi_lcr":
        for line in data.split(b"\n"):
            for raw in line.split(b";"):
                words = raw.decode("ascii", "replace").strip().split()
                if len(words) != 2:
                    continue
                header = words[0].upper().lstrip(":")
                try:
                    v = float(words[1])
                except ValueError:
                    continue
                if header in ("FREQ", "FREQUENCY"):
                    ok = lim.min_freq_hz <= v <= lim.max_freq_hz
                    add("LCR frequency Hz", v, ok, raw)
                elif header in ("VOLT", "VOLTAGE", "VOLT:LEV", "VOLTAGE:LEVEL"):
                    add("LCR AC level Vrms", v, 0 <= v <= lim.max_volt_v, raw)
    elif kind == "grbl":
        text = data.translate(None, b"?!~\x18")
        for raw in text.split(b"\n"):
            line = raw.decode("ascii", "replace").strip().upper()
            words = dict(re.findall(r"([A-Z])\s*([-+]?[0-9.]+)", line))
            if not re.search(r"\bG0*[01]\b", line):
                continue
            if "G91" in line.replace(" ", ""):
                add("gantry relative move (unchecked)", math.nan, True, raw)
                continue
            for i, axis in enumerate("XYZ"):
                if axis in words:
                    v = float(words[axis])
                    low, high = lim.travel[i]
                    mlow, mhigh = lim.machine_travel[i]
                    add(
                        f"gantry {axis} mm",
                        v,
                        low <= v <= high,
                        raw,
                        in_machine_travel=mlow <= v <= mhigh,
                    )
            if "F" in words:
                add("gantry feed mm/min", float(words["F"]), float(words["F"]) > 0, raw)
    return out


ODD_SAFETY: dict[str, float] = {
    "max_pump_rate_ul_min": 333.3333,
    "max_dispense_volume_ul": 77.77777,
    "max_temperature_c": 149.96,
    "min_frequency_hz": 20.00004,
    "max_frequency_hz": 1234567.891,
    "max_ac_voltage_v": 0.123456,
    "max_deposit_thickness_nm": 123.4567,
}
"""Awkward, non-round safety limits (to catch rounding past a limit)."""


def _bound_args(data: dict[str, Any]) -> list[tuple[Any, dict[str, Any]]]:
    """``(declared arguments, the file's argument mapping)`` of every process step and
    fidelity route of a campaign mapping (from the step and route registries)."""
    from lab.routes import ROUTES
    from lab.steps import STEPS

    out = [(STEPS.get(st["step"]).args, st.setdefault("args", {})) for st in data["process"]]
    out += [
        (ROUTES.get(f["route"]).options, f.setdefault("options", {})) for f in data["fidelities"]
    ]
    return out


def _at_limits(data: dict[str, Any]) -> dict[str, Any]:
    """Move every parameter bound to a capped argument up to that cap (its high bound; the
    lowest cap when it feeds several), and
    every constant above a cap (or below a floor) onto it, in the campaign's own units."""
    from lab.units import convert, parse_quantity

    safety = data["safety"]
    params = {p["name"]: p for p in data["parameters"]}
    caps: dict[str, float] = {}
    for args, given in _bound_args(data):
        for a in args:
            if a.unit is None or a.limit is None or a.limit not in safety:
                continue
            hi = float(safety[a.limit])
            lo = float(safety[a.floor]) if a.floor in safety else None
            raw = given.get(a.name, a.default)
            if isinstance(raw, str) and raw.startswith("$"):
                p = params[raw[1:]]
                cap = convert(hi, a.unit, p["unit"], p["name"])
                caps[p["name"]] = p["high"] = min(caps.get(p["name"], cap), cap)
                if lo is not None:
                    p["low"] = max(p["low"], convert(lo, a.unit, p["unit"], p["name"]))
                continue
            value = parse_quantity(raw, a.unit, a.name)
            if value > hi:
                given[a.name] = f"{hi!r} {a.unit}"
            elif lo is not None and value < lo:
                given[a.name] = f"{lo!r} {a.unit}"
    return data


def _odd_campaign() -> dict[str, Any]:
    """The demo campaign (with the anneal) with awkward, non-round safety limits, every
    parameter that feeds a capped step argument or route option reaching its cap, and no
    constant of the process or the route options past a limit."""
    data = demo_data()
    data["safety"] = dict(ODD_SAFETY)
    add_anneal(data, 30.0, ODD_SAFETY["max_temperature_c"])
    data["fidelities"][0]["options"] = {
        "freq_min": f"{ODD_SAFETY['min_frequency_hz']!r} Hz",
        "freq_max": f"{ODD_SAFETY['max_frequency_hz']!r} Hz",
        "points": 15,
        "ac_voltage": "10 mV",
    }
    return _at_limits(data)


def _draw(rng: Any, low: float, high: float, limit: float, p_bad: float = 0.3) -> float:
    """A value for a set point whose usual range is ``low``-``high`` and whose limit is ``limit``.

    With probability ``p_bad`` the value is out of limits (just past the limit, above it, far
    above, negative, NaN, infinite); otherwise it is in range, exactly the limit, or just below
    the limit (where rounding to the instrument's resolution can carry it past the limit).
    """
    if rng.random() >= p_bad:
        r = rng.random()
        if r < 0.7:
            return float(rng.uniform(low, high))
        if r < 0.85:
            return float(limit)
        return float(limit - abs(limit) * float(rng.choice([1e-7, 1e-5, 1e-4, 3e-3])))
    r = rng.random()
    if r < 0.2:
        return float(limit + abs(limit) * float(rng.choice([1e-9, 1e-7, 1e-5, 1e-3])) + 1e-12)
    if r < 0.4:
        return float(limit * rng.uniform(1.0, 1.2) + 1e-6)
    if r < 0.5:
        return float(limit * rng.uniform(2.0, 100.0))
    if r < 0.65:
        return float(-rng.uniform(0.0, abs(limit)))
    if r < 0.75:
        return math.nan
    if r < 0.9:
        return math.inf
    return -math.inf


def _recover_gantry(gantry: Any) -> None:
    """Release a feed hold (``Gantry.stop()`` on a plan's abort) or an alarm between proposals."""
    if gantry is None:
        return
    with contextlib.suppress(Exception):
        state = gantry._driver.status().state
        if state in ("Hold", "Alarm", "Door"):
            gantry._driver.soft_reset()
            if gantry._driver.status().state == "Alarm":
                gantry._driver.unlock()


def _refused(exc: BaseException) -> bool:
    """Whether an error is a limit refusal (anywhere in its chain)."""
    from drivers import SafetyLimitError
    from lab.errors import SafetyError

    seen = 0
    e: BaseException | None = exc
    while e is not None and seen < 10:
        if isinstance(e, SafetyError | SafetyLimitError):
            return True
        e = e.__cause__ or e.__context__
        seen += 1
    return False


def run_unsafe(
    proposals: int,
    seed: int,
    time_scale: float = 1e5,
    limits: Sequence[str] = ("demo_limits", "odd_limits"),
) -> dict[str, Any]:
    """The unsafe-on-wire part (see ``benchmarks/reliability.py``); ``limits`` picks the
    limit sets."""
    import numpy as np

    rng = np.random.default_rng(seed)
    quiet = {n: logging.getLogger(n) for n in ("bluesky", "drivers", "ophyd")}
    levels = {n: lg.level for n, lg in quiet.items()}
    for lg in quiet.values():
        lg.setLevel(logging.CRITICAL)  # refused plans log their tracebacks; counted instead
    try:
        return _run_unsafe(rng, proposals, seed, time_scale, tuple(limits))
    finally:
        for n, lg in quiet.items():
            lg.setLevel(levels[n])


class _Proposals:
    """Random proposals through each layer that can send a set point (see ``run_unsafe``)."""

    PATHS = ("campaign", "plans", "devices", "drivers")

    def __init__(self, rng: Any, spec: Any, inst: Any, workcell: Any) -> None:
        from bluesky import RunEngine

        self.rng = rng
        self.spec = spec
        self.s = spec.safety
        self.inst = inst
        self.workcell = workcell
        self.time_scale = workcell.time_scale
        self.RE = RunEngine({}, context_managers=[])
        self.roles = {p.role: p for p in inst.pumps.values()}
        self.stations = list(inst.gantry.stations.values()) if inst.gantry else []

    # -- values
    def volume(self) -> float:
        return _draw(self.rng, 1.0, 40.0, self.s.max_dispense_volume_ul)

    def rate(self) -> float:
        return _draw(self.rng, 20.0, 400.0, self.s.max_pump_rate_ul_min)

    def temperature(self) -> float:
        return _draw(self.rng, 40.0, 150.0, self.s.max_temperature_c)

    def freq(self) -> float:
        s = self.s
        if self.rng.random() < 0.3:  # at or past the lower limit
            return s.min_frequency_hz * float(self.rng.choice([1.0, 1 - 1e-7, 1 + 1e-7, 0.5]))
        return _draw(self.rng, s.min_frequency_hz, s.max_frequency_hz, s.max_frequency_hz)

    def pump(self) -> Any:
        return self.roles[str(self.rng.choice(sorted(self.roles)))]

    def context(self) -> Any:
        """The step context ``run_experiment`` builds (limits, clock, stations)."""
        from lab.flows import process_context

        return process_context(self.spec, self.workcell)

    def _move(self, device: Any) -> list[tuple[str, Any, Any, dict[str, Any]]]:
        """A move of the sample to ``device``'s station (none without a gantry or station)."""
        from lab.steps import STEPS

        station = self.workcell.devices[device.name].station
        if self.inst.gantry is None or not station:
            return []
        return [("move", STEPS.get("move"), self.inst.gantry, {"station": station})]

    # -- paths
    def campaign(self) -> None:
        """A proposal in the campaign's terms: ``check_params``, then the campaign's process
        and its target route, built as ``run_experiment`` builds them."""
        from lab.flows import values_of
        from lab.plans import make_sample

        spec = self.spec
        params: dict[str, float] = {}
        for p in spec.continuous:
            # The value that caps the parameter: its high bound, or the safety limit of the
            # step arguments and route options bound to it (in its unit) when that is lower.
            safe = spec.safe_range(p.name)[1]
            limit = p.high if safe is None else min(p.high, safe)
            params[p.name] = _draw(self.rng, p.low, p.high, limit)
        for c in spec.categorical:
            params[c.name] = str(self.rng.choice(c.choices))
        spec.check_params(params)  # what run_experiment does first
        ctx = self.context()
        steps = [
            (where, kind, self.inst.device(st.device), values_of(bindings, params, spec))
            for (where, kind, bindings), st in zip(spec.bound_steps(), spec.process, strict=True)
        ]
        self.RE(make_sample(steps, ctx))
        where, route, bindings = spec.bound_route(spec.target)
        values = values_of(bindings, params, spec)
        if "points" in values:
            values["points"] = min(int(values["points"]), 5)  # a short sweep
        route.check_values(values, ctx, where)
        route.configure(self.inst.lcr, values)
        self.RE(route.plan(self.inst.lcr, values, ctx, {}))

    def plans(self) -> None:
        """The plans called directly with random set points (no campaign check first)."""
        from lab.plans import characterize, make_sample, measure_screening
        from lab.steps import STEPS

        r = self.rng.random()
        if r < 0.5:
            steps: list[tuple[str, Any, Any, dict[str, Any]]] = []
            for role, pump in sorted(self.roles.items()):
                if not steps:
                    steps += self._move(pump)
                values = {"volume": self.volume(), "rate": self.rate()}
                steps.append((f"dispense {role}", STEPS.get("dispense"), pump, values))
            plate = self.inst.hotplate
            if plate is not None and self.rng.random() < 0.5:
                values = {
                    "temperature": self.temperature(),
                    "time": float(self.rng.uniform(-1.0, 20.0)),
                }
                steps += [*self._move(plate), ("anneal", STEPS.get("anneal"), plate, values)]
            self.RE(make_sample(steps, self.context()))
        elif r < 0.75:
            self.RE(characterize(self.inst.lcr, [self.freq(), self.freq(), self.freq()], self.s))
        else:
            self.RE(measure_screening(self.inst.lcr, self.freq(), self.s))

    def devices(self) -> None:
        """The Ophyd devices' ``set`` with random set points."""
        inst = self.inst
        which = str(self.rng.choice(["rate", "volume", "setpoint", "heat", "freq", "move"]))
        if which == "rate":
            self.pump().rate.set(self.rate()).wait(30)
        elif which == "volume":
            self.pump().set(self.volume()).wait(30)
        elif which == "setpoint":
            inst.hotplate.setpoint.set(self.temperature()).wait(30)
        elif which == "heat":
            try:
                inst.hotplate.set(self.temperature()).wait(30)
            finally:
                with contextlib.suppress(Exception):
                    inst.hotplate.heat_off()
        elif which == "freq":
            inst.lcr.frequency.set(self.freq()).wait(30)
        else:
            base = self.stations[int(self.rng.integers(len(self.stations)))]
            sign = [float(self.rng.choice([0.0, 1.0, -1.0])) for _ in base]
            target = tuple(
                v + k * _draw(self.rng, 0.0, 50.0, 200.0) for v, k in zip(base, sign, strict=True)
            )
            inst.gantry.set(target).wait(30)

    def drivers(self) -> None:
        """The drivers called directly with random set points."""
        inst, rng, s = self.inst, self.rng, self.s
        which = str(
            rng.choice(
                ["dispense", "rate", "volume", "temp", "speed", "freq", "volt", "measure", "move"]
            )
        )
        pump = self.pump()._driver
        if which == "dispense":
            pump.dispense(self.volume(), self.rate())
            pump.wait_until_stopped(30.0)
        elif which == "rate":
            unit = str(rng.choice(list(_RATES)))
            pump.set_rate(self.rate() / _RATES[unit], unit)
        elif which == "volume":
            unit = str(rng.choice(["UL", "ML"]))
            pump.set_volume(self.volume() / (1000.0 if unit == "ML" else 1.0), unit)
        elif which == "temp":
            inst.hotplate._driver.set_temperature(self.temperature())
        elif which == "speed":
            from drivers import IkaLimits

            inst.hotplate._driver.set_speed(_draw(rng, 0.0, 1000.0, IkaLimits().max_speed_rpm))
        elif which == "freq":
            inst.lcr._driver.set_frequency(self.freq())
        elif which == "volt":
            inst.lcr._driver.set_voltage(_draw(rng, 0.001, 0.1, s.max_ac_voltage_v))
        elif which == "measure":
            if rng.random() < 0.5:
                inst.lcr._driver.measure(self.freq())
            else:
                inst.lcr._driver.sweep([self.freq(), self.freq()])
        else:
            target = [
                _draw(rng, -180.0, -10.0, -200.0 if rng.random() < 0.5 else 200.0) for _ in range(3)
            ]
            inst.gantry._driver.move_to(*target, feed=float(rng.choice([3000.0, 500.0])))
            inst.gantry._driver.wait_idle(30.0)


def limits_in_force(
    workcell: Any, safety: Any, machine: tuple[tuple[float, float], ...]
) -> dict[str, Limits]:
    """The limits in force on each device of a workcell under a campaign's safety limits:
    what its driver enforces (:func:`lab.instruments.limits_for`, the intersection of the
    workcell file's ``limits:`` and the campaign's), else the driver's defaults."""
    from drivers import IkaLimits, LcrLimits, PumpLimits, TravelLimits
    from lab.instruments import limits_for

    out: dict[str, Limits] = {}
    for name, entry in workcell.devices.items():
        lim = limits_for(name, entry, safety)
        pump = lim if isinstance(lim, PumpLimits) else PumpLimits()
        plate = lim if isinstance(lim, IkaLimits) else IkaLimits()
        lcr = lim if isinstance(lim, LcrLimits) else LcrLimits()
        travel = lim if isinstance(lim, TravelLimits) else TravelLimits()
        out[name] = Limits(
            max_rate_ul_min=pump.max_rate_ul_min,
            max_volume_ul=pump.max_volume_ul,
            max_temp_c=plate.max_temp_c,
            max_speed_rpm=plate.max_speed_rpm,
            min_freq_hz=lcr.min_frequency_hz,
            max_freq_hz=lcr.max_frequency_hz,
            max_volt_v=lcr.max_voltage_vrms,
            travel=(travel.x, travel.y, travel.z),
            machine_travel=machine,
        )
    return out


def _constant_options(spec: Any) -> dict[str, Any]:
    """The target route's options that are constants (a device setting such as the AC level
    that the other paths than the campaign's then use)."""
    _, _, bindings = spec.bound_route(spec.target)
    return {n: b.constant for n, b in bindings.items() if b.param is None}


def _run_unsafe(
    rng: Any, proposals: int, seed: int, time_scale: float, limits: tuple[str, ...]
) -> dict[str, Any]:
    from lab.devices import connect_workcell
    from lab.spec import parse_campaign
    from lab.workcell import check_campaign, load_workcell
    from simulators.workcell import FULL_DEVICES, SimulatedWorkcell
    from simulators.world import SimulatedWorld

    # Both campaigns anneal and carry the sample between the stations of the full workcell.
    all_specs = {"demo_limits": lambda: campaign_data(anneal=True), "odd_limits": _odd_campaign}
    specs = {
        label: parse_campaign(add_moves(all_specs[label](), FULL_DEVICES), label)
        for label in limits
    }
    outcomes: Counter[str] = Counter()
    by_path: Counter[str] = Counter()
    by_path_outcome: Counter[str] = Counter()
    set_points: list[dict[str, Any]] = []
    unexpected: list[str] = []
    t0 = time.monotonic()
    world = SimulatedWorld(time_scale=time_scale, seed=seed)
    with (
        tempfile.TemporaryDirectory(prefix="reliability-unsafe-") as tmp,
        SimulatedWorkcell(FULL_DEVICES, world=world, seed=seed) as cell,
    ):
        taps = {name: WireTap(sim) for name, sim in cell.sims.items()}
        kinds = {n: e["kind"] for n, e in cell.devices.items()}
        workcell = load_workcell(cell.write_workcell(Path(tmp) / "workcell.yaml"))
        machine = tuple((-float(cell.sims["gantry"].settings[130 + i]), 0.0) for i in range(3))
        for label, spec in specs.items():
            check_campaign(spec, workcell, label)  # what a launch checks first
            s = spec.safety
            lim = limits_in_force(workcell, s, machine)
            starts = {n: len(t.data) for n, t in taps.items()}
            with connect_workcell(workcell, s, spec=spec) as inst:
                ac = _constant_options(spec).get("ac_voltage")
                if ac is not None and inst.lcr is not None:
                    inst.lcr.ac_voltage_v = float(ac)
                gen = _Proposals(rng, spec, inst, workcell)
                for _ in range(max(1, proposals // len(specs))):
                    path = str(rng.choice(_Proposals.PATHS))
                    by_path[path] += 1
                    try:
                        getattr(gen, path)()
                        outcome = "executed"
                    except Exception as exc:  # noqa: BLE001 - classified
                        outcome = "refused" if _refused(exc) else "failed"
                        if outcome == "failed" and len(unexpected) < 20:
                            unexpected.append(f"{label}/{path}: {type(exc).__name__}: {exc}")
                    outcomes[outcome] += 1
                    by_path_outcome[f"{path}/{outcome}"] += 1
                    _recover_gantry(inst.gantry)
                with contextlib.suppress(Exception):
                    inst.hotplate._driver.stop_heating()
            # A pty keeps the line settings of the last open until the simulator sees the
            # hang-up; reopening a 7E1 port at once can fail (termios.error 22).
            time.sleep(0.3)
            for name, tap in taps.items():
                for sp in set_points_on_wire(kinds[name], tap.data[starts[name] :], lim[name]):
                    set_points.append({**sp, "device": name, "limits": label})
    bad = [sp for sp in set_points if not sp["ok"]]
    outside_machine = [sp for sp in set_points if sp.get("in_machine_travel") is False]
    return {
        "unsafe_on_wire": len(bad),
        "by_limits": {label: sum(1 for sp in bad if sp["limits"] == label) for label in specs},
        "by_set_point": dict(Counter(f"{sp['limits']}: {sp['what']}" for sp in bad)),
        "proposals": sum(by_path.values()),
        "by_path": dict(by_path),
        "outcomes": dict(outcomes),
        "outcomes_by_path": dict(sorted(by_path_outcome.items())),
        "set_points_on_wire": len(set_points),
        "set_points_by_kind": dict(Counter(sp["what"] for sp in set_points)),
        "outside_machine_travel": len(outside_machine),
        "wall_s": round(time.monotonic() - t0, 1),
        "_details": {
            "unsafe": bad[:50],
            "outside_machine_travel": outside_machine[:20],
            "unexpected_failures": unexpected,
        },
    }
