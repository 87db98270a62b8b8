"""Reliability benchmark: injected faults, SIGKILLed orchestrators, fuzzed replies, unsafe set points.

Usage::

    python benchmarks/reliability.py --out DIR [--quick | --full] [--seed S]

Writes ``DIR/summary.json``, shaped (extra keys inside each object are allowed)::

    {"faults": {"completed": bool, "lost": int, "duplicated": int, "recorded": int},
     "kills": {"runs": int, "lost": int, "duplicated": int},
     "fuzz": {"cases": int, "untyped_errors": int, "hangs": int},
     "unsafe_on_wire": int}

``DIR/details.json`` (every kill, every unrecorded fault, every untyped error) and
``DIR/logs/`` (the child processes' output), and prints the same figures. Default settings
take about 10 minutes on two cores (up to 25 on a loaded machine); ``--quick`` (CI, the test)
about a minute; ``--full`` runs longer campaigns, more kills and more fuzz cases.

One Prefect server is started for the whole run (``prefect server start`` on a free port of
127.0.0.1, in a temporary ``PREFECT_HOME``); every orchestrator process talks to it, so none
pays for a temporary server of its own. The simulated workcells run in this process (ptys and
TCP, the same servers as ``lab sim up``); the orchestrators run in child processes.

**faults** - the demo campaign, extended with an anneal (an ``anneal_temperature_c`` parameter
and the anneal process step on the hotplate that consumes it, so the hotplate works too) and
with the gantry moves that carry the sample between the stations (dispense, hotplate, LCR
meter), runs to its budget (the guard rail on consecutive failures lifted) in a child process
(``lab.flows.campaign_flow``, what ``lab campaign launch`` calls) against the full simulated
workcell (two pumps, hotplate, balance, gantry, LCR meter) with ``--fault-rate`` (default
10 %) injected faults per command exchange on every instrument: each exchange draws a fault
with that probability, its kind uniformly from no_reply, garbled, truncated, busy, disconnect
and drift (:mod:`simulators.faults`; ``exchanges`` counts the draws per device - the balance
is in the workcell, but no process step names it, so the flow does not connect it). At 10 %
nearly every experiment fails (it makes ~150 exchanges; a fault on a command that acts, or on
a query and then on its one retry, fails it), so lost and duplicated are then checked on
failing paths only; default and ``--full`` runs therefore repeat the campaign at 1 % (``at_lower_rate``), where measurements
succeed. ``completed``: the child exited 0, the campaign is ``completed`` and every experiment
is in a final state. ``lost`` and ``duplicated`` are counted in the store as for the kills
(below). ``injected`` is the simulators' fault log (``SimulatedWorkcell.fault_log()``).

    *recorded*: an injected fault is recorded when the host left a record of what it caused,
    counted one to one (a record accounts for one fault): (a) the retry of an idempotent
    exchange after a time-out, a garbled reply or an alarm (a ``driver_retry`` audit event), or
    another driver log record of level WARNING or above naming the device, at most the
    device's reply time-out plus 1.5 s after the fault (a pump's power-up ``A?R`` is no fault
    and is ignored); (b) a ``measurement_fault`` audit event, or (c) the failure of the experiment
    the fault happened in (``experiment_error`` audit event unless it repeats the last
    ``measurement_fault``, or ``failed: analysis: ...`` for the LCR meter), naming the device,
    after the fault and during that experiment. Fault times come from the simulated clock,
    record times from the same monotonic clock (log) or the store's UTC timestamps. Faults and
    records are paired per device by a maximum bipartite matching on those windows, each fault
    preferring the earliest record after it. Driver log records other than retries are
    written by the drivers' loggers, which the benchmark's child sends to a file; ``lab
    campaign launch`` raises them to ERROR, so they are not on the console:
    ``recorded_in_store`` counts the records in the store alone (retries, measurement faults,
    failures).

    An unrecorded fault is *unrecordable* when the host cannot see it by nature, counted by
    cause: ``drift`` (a well-formed reply with a slowly growing offset), ``no_op`` (a reply
    that was empty anyway was dropped, garbled or cut: nothing changed on the wire),
    ``undetectable_garble`` (digits or a sign replaced by digits or a sign: the reply is still
    well formed, and no protocol here has a checksum), ``unanswered_set_command`` (an IKA
    hotplate ignoring a command while busy: NAMUR set commands get no reply and the protocol
    has no error reply). It is *masked* when a record on its device follows it within the
    reply time-out plus 1.5 s but is accounted to another fault (two faults, one failed
    exchange: a reply lost, then the link dropped). Every other unrecorded fault is *missed*
    (listed in details.json with the matching of every fault): the host could have noticed it
    and left no record.

**kills** - the demo campaign runs as ``lab campaign launch`` in a child process (its own
session) against the simulated demo workcell (no injected faults); at a random point the
whole process group is killed with SIGKILL and ``lab campaign resume`` is started, ``--kills``
times; the last resume runs to the end. A random point is a random number of database writes
(audit events, readings and run stops: proposals, state changes, leases, each reading of a
sweep, the end of a sweep) after the previous (re)start, so kills land in proposals,
dispenses, sweeps, between a sweep and its analysis, and in a resume. ``reconciled`` says what
the resumes found (experiments analysed or abandoned on resume).
The killed run's instrument leases expire after their time-to-live (30 s as shipped;
``--quick`` runs the console with 3 s, through ``LAB_LEASE_TTL_S``). Counted in the store
after the campaign completed:

    *lost*: an experiment with a successful measurement run (``characterize`` or
    ``measure_screening``, exit status success) that has no measurement row from that run, or
    whose stored readings or measurement data are incomplete (fewer readings than the run's
    frequencies). An experiment whose analysis failed (``failed``, ``analysis: ...``) keeps its
    readings and is counted as ``analysis_failed`` instead.

    *duplicated*: extra measurement rows of one experiment, extra successful measurement runs of
    one experiment, extra synthesis runs (``make_sample``) of one experiment (a sample made
    twice), and idempotency keys used more than once.

    Also counted, not included in either: readings of an analysed experiment's sweep that are
    silently wrong - ``stale_readings`` (the same values as the previous point: one
    measurement fetched twice; the simulated meter adds fresh noise to each) and
    ``off_frequency_readings`` (measured at another frequency than the sweep asked for).

**fuzz** - property-based fuzzing (hypothesis) of every driver's reply parsing. Each case
builds a driver on a fake port (``port=``) whose replies come from the instrument's simulator
and then pass through a drawn mutation per exchange: none, dropped, random bytes, a plausible
frame of the protocol, bit flips, replaced, inserted or deleted bytes, truncation, duplication,
junk before or after, a late reply (after the time-out), or a port error on read or write. A
case runs one to three driver calls (every public call that reads a reply). A call must return
or raise a :class:`drivers.DriverError` subclass: anything else is an *untyped error*. A call
that runs past its bound (calls x reply time-out plus its own wait, x 1.5 + 1 s) or does not
return at all within 10 s is a *hang*. ``cases`` counts hypothesis examples.

**unsafe_on_wire** - random proposals, many outside the limits (above, negative, zero, NaN,
infinite, just past a limit), go through every layer that can send a set point: the campaign's
checks then its process (``make_sample`` of the bound steps) and its target route, built as
``run_experiment`` builds them; the plans alone (``make_sample`` of random dispense and anneal
steps, the sweep plans); the Ophyd devices; and the drivers; against the full simulated
workcell, once with the demo's safety limits and once with awkward non-round limits (to catch
rounding past a limit). Both campaigns anneal and move the sample between stations; in the
awkward one every parameter that feeds a capped step argument or route option reaches its cap
(found from the process, not from parameter names) and no constant exceeds a limit. Every byte
the simulators receive is recorded (their ``feed`` is wrapped); the set points on the wire
(pump rates and volumes, hotplate temperature and speed, LCR frequency and AC level, gantry
targets and feeds) are parsed and compared with the limits in force on each device (its
driver's: the workcell file's intersected with the campaign's). The figure is the number of
set points outside them.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import json
import logging
import math
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

MEASUREMENT_PLANS = ("characterize", "measure_screening")
SYNTHESIS_PLANS = ("make_sample",)
FINAL_STATES = ("analysed", "failed", "abandoned")


@dataclass
class Settings:
    """What one benchmark run does (``--quick``, default, ``--full``)."""

    seed: int = 0
    fault_rate: float = 0.10
    lower_fault_rate: float | None = 0.01
    time_scale: float = 2000.0
    faults_budget: int = 8
    kills: int = 10
    kills_budget: int = 16
    kill_span: int = 40
    lease_ttl_s: float | None = None
    fuzz_examples: int = 1000
    unsafe_proposals: int = 600
    child_timeout_s: float = 900.0
    parallel: bool = False


PRESETS: dict[str, dict[str, Any]] = {
    "quick": {
        "lower_fault_rate": None,
        "faults_budget": 2,
        "kills": 1,
        "kills_budget": 2,
        "kill_span": 25,
        "lease_ttl_s": 3.0,
        "fuzz_examples": 25,
        "unsafe_proposals": 30,
        "child_timeout_s": 240.0,
        "parallel": True,
    },
    "default": {},
    "full": {
        "faults_budget": 20,
        "kills": 20,
        "kills_budget": 26,
        "fuzz_examples": 5000,
        "unsafe_proposals": 3000,
        "child_timeout_s": 2400.0,
    },
}


def log(msg: str) -> None:
    """Progress line on stderr."""
    print(f"[reliability {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ============================================================================ campaign files


def demo_data() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "campaigns" / "demo.yaml").read_text())


ANNEAL_STEP: dict[str, Any] = {
    "step": "anneal",
    "device": "hotplate",
    "args": {"temperature": "$anneal_temperature_c", "time": "10 min"},
}
"""The process step the benchmark's anneal adds (the parameter is added with it)."""


def add_anneal(data: dict[str, Any], low: float, high: float) -> dict[str, Any]:
    """Add an anneal temperature parameter (``low``-``high`` degC) and the process step that
    consumes it (on the hotplate, after the process's other steps)."""
    data["parameters"].append(
        {
            "name": "anneal_temperature_c",
            "type": "continuous",
            "low": low,
            "high": high,
            "unit": "degC",
        }
    )
    data["process"].append(copy.deepcopy(ANNEAL_STEP))
    return data


def add_moves(data: dict[str, Any], devices: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Insert gantry moves so every step, and the target fidelity's measurement, runs at the
    station of its device in ``devices`` (a workcell whose gantry carries the sample); no
    change for a workcell without a gantry or without stations."""
    from lab.routes import ROUTES

    gantry = next((n for n, d in devices.items() if d["kind"] == "grbl"), None)
    if gantry is None or not any(d.get("station") for d in devices.values()):
        return data

    def station(role: str | None, kinds: tuple[str, ...] = ()) -> str | None:
        for n, d in devices.items():
            if (role is not None and role in (n, d.get("role"))) or (
                role is None and d["kind"] in kinds
            ):
                return d.get("station")
        return None

    process: list[dict[str, Any]] = []
    at: str | None = None
    for step in data["process"]:
        if step["step"] == "move":
            at = str(step["args"]["station"])
        else:
            where = station(step["device"])
            if where and where != at:
                process.append({"step": "move", "device": gantry, "args": {"station": where}})
                at = where
        process.append(step)
    target = data.get("target_fidelity")
    fid = next((f for f in data["fidelities"] if f["name"] == target), data["fidelities"][-1])
    where = station(fid.get("device"), ROUTES.get(fid["route"]).instruments)
    if where and where != at:
        process.append({"step": "move", "device": gantry, "args": {"station": where}})
    data["process"] = process
    return data


def campaign_data(
    *,
    budget: int | None = None,
    anneal: bool = False,
    devices: dict[str, dict[str, Any]] | None = None,
    max_consecutive_failures: int | None = None,
) -> dict[str, Any]:
    """The demo campaign, optionally with another budget, an anneal (parameter and process
    step), the moves a workcell with a gantry needs (``devices``) and another guard rail."""
    data = demo_data()
    if budget is not None:
        data["budget"] = budget
        data["initial_design"] = min(int(data.get("initial_design", 4)), max(1, budget - 1))
    if anneal:
        add_anneal(data, 60.0, 150.0)
    if devices is not None:
        add_moves(data, devices)
    if max_consecutive_failures is not None:
        data["max_consecutive_failures"] = max_consecutive_failures
    return data


def write_campaign(
    path: Path,
    *,
    budget: int,
    anneal: bool,
    devices: dict[str, dict[str, Any]] | None = None,
    max_consecutive_failures: int | None = None,
) -> Path:
    """The demo campaign with another budget, written to ``path`` (see :func:`campaign_data`):
    with ``anneal``, an anneal temperature parameter and the anneal step that consumes it;
    with ``devices``, the gantry moves between their stations."""
    data = campaign_data(
        budget=budget,
        anneal=anneal,
        devices=devices,
        max_consecutive_failures=max_consecutive_failures,
    )
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# ============================================================================ store audit


def _utc_to_monotonic(at: datetime | None, offset: float) -> float | None:
    if at is None:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.timestamp() - offset


def _check_sweep(store: Any, run: Any, seq: int, out: dict[str, Any]) -> None:
    """Count readings of a sweep that repeat the previous one or sit off the asked frequency.

    The simulated meter adds fresh noise to every measurement, so two consecutive readings
    with identical values were one measurement fetched twice (a stale reading).
    """
    asked = list(run.start_doc.get("frequencies_hz") or [])
    rows = [r.data for r in store.readings(run.uid)]

    def value(row: dict[str, Any], suffix: str) -> Any:
        return next((v for k, v in row.items() if k.endswith(suffix)), None)

    for i, row in enumerate(rows):
        z = (value(row, "_z_real"), value(row, "_z_imag"))
        if i and z == (value(rows[i - 1], "_z_real"), value(rows[i - 1], "_z_imag")):
            out["stale_readings"] += 1
            out["corrupted_detail"].append({"seq": seq, "point": i, "problem": "stale", "z": z})
        f = value(row, "_frequency")
        if i < len(asked) and f is not None and not math.isclose(f, asked[i], rel_tol=1e-6):
            out["off_frequency_readings"] += 1
            out["corrupted_detail"].append(
                {"seq": seq, "point": i, "problem": "off frequency", "asked": asked[i], "got": f}
            )


def audit_campaign(db_url: str, campaign_id: int) -> dict[str, Any]:
    """Lost and duplicated measurements of a campaign, from the store (see the module docstring)."""
    from lab.store import Store

    store = Store(db_url)
    row = store.campaign(campaign_id)
    exps = store.experiments(campaign_id)
    measurements = store.measurements(campaign_id)
    by_exp: dict[int, list[Any]] = {}
    for m in measurements:
        by_exp.setdefault(m.experiment_id, []).append(m)
    keys = Counter(e.idempotency_key for e in exps)
    out: dict[str, Any] = {
        "status": row.status,
        "budget": row.budget,
        "spent": store.spent(campaign_id),
        "experiments": len(exps),
        "states": dict(Counter(e.state for e in exps)),
        "lost": 0,
        "analysis_failed": 0,
        "inconsistent": 0,
        "duplicate_keys": sum(c - 1 for c in keys.values() if c > 1),
        "duplicate_measurements": sum(len(v) - 1 for v in by_exp.values() if len(v) > 1),
        "duplicate_measurement_runs": 0,
        "duplicate_syntheses": 0,
        "unexplained_abandoned": 0,
        "stale_readings": 0,
        "off_frequency_readings": 0,
        "lost_detail": [],
        "corrupted_detail": [],
    }
    for e in exps:
        runs = store.runs(int(e.id))
        ok = [r for r in runs if r.plan_name in MEASUREMENT_PLANS and r.exit_status == "success"]
        synth = [r for r in runs if r.plan_name in SYNTHESIS_PLANS]
        out["duplicate_measurement_runs"] += max(0, len(ok) - 1)
        out["duplicate_syntheses"] += max(0, len(synth) - 1)
        rows = by_exp.get(int(e.id), [])
        if e.state == "abandoned" and not e.failure_reason:
            out["unexplained_abandoned"] += 1
        if not ok:
            if rows:
                out["inconsistent"] += 1
            continue
        uids = {r.uid: r for r in ok}
        if e.state == "analysed":
            for run in ok:
                _check_sweep(store, run, e.seq, out)
        complete = False
        if e.state == "analysed" and rows:
            complete = True
            for m in rows:
                run = uids.get(m.run_uid or "")
                if run is None:
                    complete = False
                    continue
                n_read = len(store.readings(run.uid))
                expected = len(run.start_doc.get("frequencies_hz") or []) or n_read
                n_raw = len((m.raw or {}).get("frequency_hz") or [])
                if not (n_read == expected == n_raw and n_read > 0):
                    complete = False
        if complete:
            continue
        if e.state == "failed" and (e.failure_reason or "").startswith("analysis:"):
            out["analysis_failed"] += 1
            continue
        out["lost"] += 1
        out["lost_detail"].append(
            {"seq": e.seq, "state": e.state, "reason": e.failure_reason, "rows": len(rows)}
        )
    out["duplicated"] = (
        out["duplicate_keys"]
        + out["duplicate_measurements"]
        + out["duplicate_measurement_runs"]
        + out["duplicate_syntheses"]
    )
    out["all_final"] = all(e.state in FINAL_STATES for e in exps)
    return out


# ============================================================================ processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env(tmp: Path, api_url: str | None) -> dict[str, str]:
    """Environment of an orchestrator child: its own PREFECT_HOME, the shared server."""
    home = Path(tempfile.mkdtemp(prefix="prefect-home-", dir=tmp))
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "XDG_DATA_HOME": str(tmp / "xdg"),
        "OMP_NUM_THREADS": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "COLUMNS": "160",
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
    }
    env.pop("LAB_DATABASE_URL", None)
    env.pop("PREFECT_API_URL", None)
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


def kill_group(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Signal the process group of a child started with ``start_new_session=True``."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


class PrefectServer:
    """``prefect server start`` on a free port of 127.0.0.1, for every child of this run."""

    def __init__(self, tmp: Path, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api"
        env = child_env(tmp, None)
        self._log = log_path.open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "prefect",
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )

    def wait(self, timeout: float = 300.0) -> float:
        """Block until the server answers; return the seconds waited."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prefect server exited with {self.proc.returncode}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url}/health", timeout=2) as r,
            ):
                if r.status == 200:
                    return time.monotonic() - t0
            time.sleep(0.3)
        raise RuntimeError(f"prefect server not up after {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            kill_group(self.proc, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                kill_group(self.proc, signal.SIGKILL)
                self.proc.wait(timeout=15)
        self._log.close()


# ============================================================================ faults


class ExchangeCounter:
    """Counts each simulator's fault draws (one per command exchange) without changing them."""

    def __init__(self, cell: Any) -> None:
        self.counts: Counter[str] = Counter()
        for name, sim in cell.sims.items():
            injector = sim.faults
            inner = injector.draw

            def draw(_inner: Callable[[], str | None] = inner, _name: str = name) -> str | None:
                self.counts[_name] += 1
                return _inner()

            injector.draw = draw  # type: ignore[method-assign]


@dataclass
class Evidence:
    """A host-side record that can account for one injected fault on ``device``."""

    device: str
    t: float
    lo: float
    hi: float
    source: str
    text: str


@dataclass
class Fault:
    device: str
    t: float
    kind: str
    detail: str
    silent: str | None = None
    matched: Evidence | None = None


def _device_named(text: str, names: Sequence[str]) -> str | None:
    """The device named last in the last line of ``text`` that names one (else in all of it)."""
    pattern = re.compile(
        r"(?<![A-Za-z0-9_])(" + "|".join(map(re.escape, names)) + r")(?![A-Za-z0-9_])"
    )
    for line in reversed([ln for ln in text.strip().splitlines() if ln.strip()]):
        found = pattern.findall(line)
        if found:
            return found[-1]
    return None


def _repr_pair(detail: str) -> tuple[bytes, bytes] | None:
    m = re.fullmatch(r"(b(['\"]).*\2) -> (b(['\"]).*\4)", detail, re.S)
    if not m:
        return None
    try:
        return ast.literal_eval(m[1]), ast.literal_eval(m[3])
    except (ValueError, SyntaxError):
        return None


def silent_by_nature(kind: str, detail: str, device_kind: str) -> str | None:
    """Why a fault cannot be seen by the host, or ``None`` if it can (see the module docstring)."""
    if kind == "drift":
        return "drift"
    if kind == "no_reply" and detail == "dropped b''":
        return "no_op"
    if kind == "garbled" and detail == "empty reply":
        return "no_op"
    if kind == "truncated" and detail == "b'' -> b''":
        return "no_op"
    if kind == "garbled":
        pair = _repr_pair(detail)
        if pair is not None:
            before, after = pair
            same_shape = len(before) == len(after) and all(
                a == b
                or (chr(a).isdigit() and chr(b).isdigit())
                or (chr(a) in "+-" and chr(b) in "+-")
                for a, b in zip(before, after, strict=True)
            )
            if same_shape:
                return "undetectable_garble"
    if kind == "busy" and device_kind == "ika_namur":
        return "unanswered_set_command"
    return None


def match_faults(faults: list[Fault], evidence: list[Evidence]) -> None:
    """Pair faults and records one to one per device (maximum bipartite matching).

    Faults the host can see are matched first (time order), then the silent ones; each fault
    prefers the earliest record after it.
    """
    order = sorted(faults, key=lambda f: (f.silent is not None, f.t))
    owner: dict[int, Fault] = {}

    def candidates(f: Fault) -> list[int]:
        found = [i for i, e in enumerate(evidence) if e.device == f.device and e.lo <= f.t <= e.hi]
        return sorted(found, key=lambda i: evidence[i].t)  # the earliest record first

    cand = {id(f): candidates(f) for f in order}

    def augment(f: Fault, seen: set[int]) -> bool:
        for i in cand[id(f)]:
            if i in seen:
                continue
            seen.add(i)
            if i not in owner or augment(owner[i], seen):
                owner[i] = f
                return True
        return False

    for f in order:
        augment(f, set())
    for i, f in owner.items():
        f.matched = evidence[i]


def child_faults(args: argparse.Namespace) -> int:
    """Child: run the campaign flow with the drivers' WARNING records written to a file."""
    host_log = open(args.host_log, "a", buffering=1)  # noqa: SIM115 - open for the process

    class JsonLines(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            with contextlib.suppress(Exception):
                host_log.write(
                    json.dumps(
                        {
                            "t": time.monotonic(),
                            "logger": record.name,
                            "level": record.levelname,
                            "message": record.getMessage(),
                        }
                    )
                    + "\n"
                )

    drivers_log = logging.getLogger("drivers")
    drivers_log.setLevel(logging.WARNING)
    drivers_log.addHandler(JsonLines(logging.WARNING))
    drivers_log.propagate = False
    from lab.flows import campaign_flow

    cid = campaign_flow(args.campaign, args.workcell, args.db, seed=args.seed)
    print(f"campaign {cid}")
    return 0


def run_faults(
    tmp: Path, cfg: Settings, api_url: str, logs: Path, rate: float | None = None
) -> dict[str, Any]:
    """The faults part (see the module docstring), at ``rate`` (default ``cfg.fault_rate``)."""
    from simulators.workcell import FULL_DEVICES, SimulatedWorkcell
    from simulators.world import SimulatedWorld

    rate = cfg.fault_rate if rate is None else rate
    tag = f"faults-{rate:g}"
    work = tmp / tag
    work.mkdir()
    # With the gantry carrying the sample between stations; the guard rail is lifted so the
    # campaign runs to its budget however many experiments the faults fail in a row.
    campaign = write_campaign(
        work / "campaign.yaml",
        budget=cfg.faults_budget,
        anneal=True,
        devices=FULL_DEVICES,
        max_consecutive_failures=1000,
    )
    db = f"sqlite:///{work / 'lab.db'}"
    host_log = work / "host-log.jsonl"
    world = SimulatedWorld(time_scale=cfg.time_scale, seed=cfg.seed)
    t_start = time.monotonic()
    with SimulatedWorkcell(FULL_DEVICES, world=world, seed=cfg.seed, faults_rate=rate) as cell:
        exchanges = ExchangeCounter(cell)
        # sim_time() == (monotonic - t0) * time_scale
        t0_world = time.monotonic() - world.sim_time() / world.time_scale
        workcell = cell.write_workcell(work / "workcell.yaml")
        kinds = {n: e["kind"] for n, e in cell.devices.items()}
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            "faults",
            "--campaign",
            str(campaign),
            "--workcell",
            str(workcell),
            "--db",
            db,
            "--host-log",
            str(host_log),
            "--seed",
            str(cfg.seed),
        ]
        with (logs / f"{tag}-child.log").open("w") as out:
            proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=child_env(work, api_url),
                start_new_session=True,
            )
            try:
                rc = proc.wait(timeout=cfg.child_timeout_s)
            except subprocess.TimeoutExpired:
                kill_group(proc)
                proc.wait()
                rc = None
        fault_log = cell.fault_log()
        draws = dict(exchanges.counts)
    wall = time.monotonic() - t_start
    result: dict[str, Any] = {
        "completed": False,
        "lost": 0,
        "duplicated": 0,
        "recorded": 0,
        "injected": len(fault_log),
        "fault_rate": rate,
        "exit_code": rc,
        "wall_s": round(wall, 1),
        "exchanges": draws,
    }
    if not Path(db.removeprefix("sqlite:///")).exists():
        result["error"] = f"the campaign never started (see logs/{tag}-child.log)"
        return result

    from sqlmodel import Session, select

    from lab.store import AuditEvent, Store

    store = Store(db)
    cid = 1
    audit = audit_campaign(db, cid)
    offset = time.time() - time.monotonic()
    timeouts = {n: (2.0 if k == "scpi_lcr" else 1.0) for n, k in kinds.items()}
    names = sorted(kinds, key=len, reverse=True)
    exps = {int(e.id): e for e in store.experiments(cid)}

    evidence: list[Evidence] = []
    if host_log.exists():
        for line in host_log.read_text().splitlines():
            rec = json.loads(line)
            dev = _device_named(rec["message"], names)
            if dev is None or "A?R" in rec["message"]:
                continue  # A?R: a pump's power-up alarm, acknowledged and retried; no fault
            if rec["message"].startswith("retrying "):
                continue  # in the store as a driver_retry audit event
            t = rec["t"]
            evidence.append(
                Evidence(dev, t, t - timeouts[dev] - 1.5, t + 0.005, "driver_log", rec["message"])
            )
    with Session(store.engine) as s:
        events = list(
            s.exec(select(AuditEvent).where(AuditEvent.campaign_id == cid).order_by(AuditEvent.id))
        )
    for ev in events:
        if ev.kind == "driver_retry":
            dev, t = ev.detail.get("device"), _utc_to_monotonic(ev.at, offset)
            if dev in timeouts and t is not None and "A?R" not in ev.detail.get("error", ""):
                text = f"retrying {ev.detail.get('command')} after {ev.detail.get('error')}"
                evidence.append(Evidence(dev, t, t - timeouts[dev] - 1.5, t + 0.05, ev.kind, text))
            continue
        if ev.kind not in ("measurement_fault", "experiment_error") or ev.experiment_id is None:
            continue
        exp = exps.get(int(ev.experiment_id))
        if exp is None:
            continue
        if ev.kind == "experiment_error" and (exp.failure_reason or "").startswith("measurement:"):
            continue  # the same error as the last measurement_fault of the experiment
        text = ev.detail.get("error") or ev.detail.get("traceback") or ""
        dev = _device_named(text, names)
        t = _utc_to_monotonic(ev.at, offset)
        start = _utc_to_monotonic(exp.started_at, offset)
        if dev is None or t is None:
            continue
        lo = (start if start is not None else t - 60.0) - 0.1
        evidence.append(Evidence(dev, t, lo, t + 0.05, ev.kind, text[-300:]))
    lcr = next((n for n, k in kinds.items() if k == "scpi_lcr"), None)
    for exp in exps.values():
        if lcr and exp.state == "failed" and (exp.failure_reason or "").startswith("analysis:"):
            t = _utc_to_monotonic(exp.updated_at, offset)
            start = _utc_to_monotonic(exp.started_at, offset)
            if t is not None and start is not None:
                evidence.append(
                    Evidence(lcr, t, start - 0.1, t + 0.05, "analysis_failed", exp.failure_reason)
                )

    faults = [
        Fault(dev, t0_world + sim_t / world.time_scale, kind, detail)
        for dev, sim_t, kind, detail in fault_log
    ]
    for f in faults:
        f.silent = silent_by_nature(f.kind, f.detail, kinds[f.device])
    match_faults(faults, evidence)
    recorded = [f for f in faults if f.matched is not None]
    unmatched = [f for f in faults if f.matched is None]
    unrecordable = Counter(f.silent for f in unmatched if f.silent is not None)
    # Masked: the exchange the fault hit did fail and was recorded, but that record is the
    # one accounted to another fault (e.g. a reply lost, then the link dropped): one record
    # stands for one fault.
    masked = [
        f
        for f in unmatched
        if f.silent is None
        and any(
            e.device == f.device and f.t <= e.t <= f.t + timeouts[f.device] + 1.5 for e in evidence
        )
    ]
    missed = [f for f in unmatched if f.silent is None and f not in masked]
    result.update(
        completed=bool(rc == 0 and audit["status"] == "completed" and audit["all_final"]),
        lost=audit["lost"],
        duplicated=audit["duplicated"],
        recorded=len(recorded),
        recorded_in_store=sum(1 for f in recorded if f.matched.source != "driver_log"),
        recorded_in_driver_log=sum(1 for f in recorded if f.matched.source == "driver_log"),
        unrecordable=sum(unrecordable.values()),
        unrecordable_by_cause=dict(unrecordable),
        masked=len(masked),
        missed=len(missed),
        injected_by_kind=dict(Counter(f.kind for f in faults)),
        injected_by_device=dict(Counter(f.device for f in faults)),
        missed_by_kind=dict(Counter(f"{f.device}/{f.kind}" for f in missed)),
        experiments=audit["experiments"],
        states=audit["states"],
        analysis_failed=audit["analysis_failed"],
        stale_readings=audit["stale_readings"],
        off_frequency_readings=audit["off_frequency_readings"],
        campaign_status=audit["status"],
        spent=audit["spent"],
        budget=audit["budget"],
        failure_causes=dict(
            Counter(_cause(e.failure_reason) for e in exps.values() if e.state != "analysed")
        ),
        unused_evidence=len(evidence) - len(recorded),
    )
    result["_details"] = {
        "faults": [
            {
                "device": f.device,
                "t": round(f.t - t_start, 3),
                "kind": f.kind,
                "detail": f.detail[:120],
                "silent": f.silent,
                "record": None
                if f.matched is None
                else {
                    "source": f.matched.source,
                    "t": round(f.matched.t - t_start, 3),
                    "text": f.matched.text[-160:],
                },
            }
            for f in faults
        ],
        "unused_records": [
            {
                "device": e.device,
                "t": round(e.t - t_start, 3),
                "source": e.source,
                "text": e.text[-160:],
            }
            for e in evidence
            if all(f.matched is not e for f in faults)
        ],
        "experiments": [
            {
                "seq": e.seq,
                "state": e.state,
                "started": None
                if e.started_at is None
                else round(_utc_to_monotonic(e.started_at, offset) - t_start, 3),
                "ended": round(_utc_to_monotonic(e.updated_at, offset) - t_start, 3),
            }
            for e in exps.values()
        ],
        "missed": [
            {"device": f.device, "t": round(f.t - t_start, 3), "kind": f.kind, "detail": f.detail}
            for f in missed
        ],
        "masked": [
            {"device": f.device, "t": round(f.t - t_start, 3), "kind": f.kind, "detail": f.detail}
            for f in masked
        ],
        "lost": audit["lost_detail"],
        "corrupted": audit["corrupted_detail"],
        "failures": [
            {"seq": e.seq, "state": e.state, "reason": e.failure_reason}
            for e in exps.values()
            if e.state != "analysed"
        ],
    }
    return result


def _cause(reason: str | None) -> str:
    """``stage: ErrorType`` of a failure reason, e.g. ``measurement: ConnectionLost``."""
    if not reason:
        return "unknown"
    stage, _, rest = reason.partition(": ")
    err = rest.split(":", 1)[0].strip() if rest else ""
    return f"{stage}: {err}" if err and " " not in err else stage


# ============================================================================ kills


def _progress(db_path: Path) -> int:
    """Audit events, readings and closed runs so far (0 before the database exists)."""
    if not db_path.exists():
        return 0
    try:
        with contextlib.closing(
            sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=2.0)
        ) as con:
            row = con.execute(
                "SELECT (SELECT count(*) FROM audit_event) + (SELECT count(*) FROM reading)"
                " + (SELECT count(*) FROM run WHERE exit_status IS NOT NULL)"
            ).fetchone()
            return int(row[0])
    except sqlite3.Error:
        return 0


def child_console(args: argparse.Namespace, console_args: list[str]) -> int:
    """Child: the ``lab`` console, with the instrument leases' time-to-live set."""
    from lab.console import main as console_main

    if args.lease_ttl is not None:
        os.environ["LAB_LEASE_TTL_S"] = str(args.lease_ttl)
    sys.argv = ["lab", *console_args]
    console_main()
    return 0


def run_kills(tmp: Path, cfg: Settings, api_url: str, logs: Path) -> dict[str, Any]:
    """The kills part (see the module docstring)."""
    import numpy as np

    from simulators.workcell import DEMO_DEVICES, SimulatedWorkcell
    from simulators.world import SimulatedWorld

    work = tmp / "kills"
    work.mkdir()
    campaign = write_campaign(work / "campaign.yaml", budget=cfg.kills_budget, anneal=False)
    db_path = work / "lab.db"
    db = f"sqlite:///{db_path}"
    rng = np.random.default_rng(cfg.seed + 1)
    kills: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    final_rc: int | None = None
    t_start = time.monotonic()
    world = SimulatedWorld(time_scale=cfg.time_scale, seed=cfg.seed + 1)
    with SimulatedWorkcell(DEMO_DEVICES, world=world, seed=cfg.seed + 1) as cell:
        workcell = cell.write_workcell(work / "workcell.yaml")

        def start(i: int) -> subprocess.Popen:
            if i == 0:
                args = ["campaign", "launch", str(campaign), "--db", db, "--seed", str(cfg.seed)]
            else:
                args = ["campaign", "resume", "1", "--db", db]
            args += ["--workcell", str(workcell)]
            if cfg.lease_ttl_s is None:
                cmd = [sys.executable, "-m", "lab.console", *args]
            else:
                cmd = [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--child",
                    "console",
                    "--lease-ttl",
                    str(cfg.lease_ttl_s),
                    "--",
                    *args,
                ]
            out = (logs / f"kills-{i:02d}.log").open("w")
            proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=child_env(work, api_url),
                start_new_session=True,
            )
            out.close()
            return proc

        i = 0
        while len(kills) < cfg.kills:
            before = _progress(db_path)
            target = before + int(rng.integers(1, cfg.kill_span + 1))
            t_run = time.monotonic()
            proc = start(i)
            deadline = t_run + cfg.child_timeout_s
            killed = False
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    break
                if _progress(db_path) >= target:
                    kill_group(proc)
                    proc.wait()
                    killed = True
                    break
                time.sleep(0.005)
            else:
                kill_group(proc)
                proc.wait()
                runs.append({"run": i, "timeout": True})
                break
            at = _progress(db_path)
            states = _states(db_path)
            runs.append(
                {
                    "run": i,
                    "killed": killed,
                    "exit_code": None if killed else proc.returncode,
                    "wall_s": round(time.monotonic() - t_run, 2),
                }
            )
            i += 1
            if not killed:
                final_rc = proc.returncode
                break  # the campaign ended (or failed) before the kill point
            kills.append(
                {"kill": len(kills) + 1, "rows_before": before, "target": target, "at": at}
                | {"states": states}
            )
        if final_rc is None and not (runs and runs[-1].get("timeout")):
            proc = start(i)
            try:
                final_rc = proc.wait(timeout=cfg.child_timeout_s)
            except subprocess.TimeoutExpired:
                kill_group(proc)
                proc.wait()
            runs.append({"run": i, "killed": False, "exit_code": final_rc})
    audit = audit_campaign(db, 1) if db_path.exists() else None
    result: dict[str, Any] = {
        "runs": len(kills),
        "lost": audit["lost"] if audit else 0,
        "duplicated": audit["duplicated"] if audit else 0,
        "completed": bool(
            final_rc == 0 and audit and audit["status"] == "completed" and audit["all_final"]
        ),
        "final_exit_code": final_rc,
        "lease_ttl_s": cfg.lease_ttl_s if cfg.lease_ttl_s is not None else 30.0,
        "wall_s": round(time.monotonic() - t_start, 1),
    }
    if audit:
        result.update(
            experiments=audit["experiments"],
            states=audit["states"],
            analysis_failed=audit["analysis_failed"],
            budget=audit["budget"],
            spent=audit["spent"],
            spent_once=abs(audit["spent"] - audit["budget"]) < 1e-9,
            unexplained_abandoned=audit["unexplained_abandoned"],
            stale_readings=audit["stale_readings"],
            off_frequency_readings=audit["off_frequency_readings"],
            reconciled=_reconciled(db),
            duplicate_breakdown={
                k: audit[k]
                for k in (
                    "duplicate_keys",
                    "duplicate_measurements",
                    "duplicate_measurement_runs",
                    "duplicate_syntheses",
                )
            },
        )
    result["_details"] = {
        "kills": kills,
        "runs": runs,
        "lost": audit["lost_detail"] if audit else [],
    }
    return result


def _reconciled(db_url: str) -> dict[str, int]:
    """What the resumes' reconciliation did: experiments analysed or abandoned on resume."""
    from sqlmodel import Session, select

    from lab.store import AuditEvent, Store

    with Session(Store(db_url).engine) as s:
        notes = [
            str(ev.detail.get("detail", ""))
            for ev in s.exec(select(AuditEvent).where(AuditEvent.kind == "reconciled"))
        ]
    return {
        "analysed_on_resume": sum("analysed" in n for n in notes),
        "abandoned_on_resume": sum("abandoned" in n for n in notes),
    }


def _states(db_path: Path) -> dict[str, int]:
    try:
        with contextlib.closing(
            sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=2.0)
        ) as con:
            return dict(con.execute("SELECT state, count(*) FROM experiment GROUP BY state"))
    except sqlite3.Error:
        return {}


# ============================================================================ fuzz

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


# ============================================================================ unsafe on wire


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
    """The unsafe-on-wire part (see the module docstring); ``limits`` picks the limit sets."""
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


# ============================================================================ main


def _public(part: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in part.items() if not k.startswith("_")}


def print_summary(summary: dict[str, Any]) -> None:
    f, k, z = summary["faults"], summary["kills"], summary["fuzz"]
    u = summary["unsafe_on_wire_detail"]
    lines = [
        "reliability",
        f"  faults   completed={f['completed']} lost={f['lost']} duplicated={f['duplicated']} "
        f"recorded={f['recorded']}",
        f"           {f.get('fault_rate', 0):.0%} faults: injected {f.get('injected')}, "
        f"recorded {f['recorded']} ({f.get('recorded_in_store')} in the store), unrecordable "
        f"{f.get('unrecordable')} {f.get('unrecordable_by_cause')}, masked {f.get('masked')}, "
        f"missed {f.get('missed')}; experiments {f.get('states')}",
    ]
    for part in (f, f.get("at_lower_rate") or {}, k):
        if part.get("stale_readings") or part.get("off_frequency_readings"):
            lines.append(
                f"           silently corrupted sweeps ({part.get('fault_rate', 'kills')}): "
                f"{part.get('stale_readings')} stale readings, "
                f"{part.get('off_frequency_readings')} off the asked frequency"
            )
    low = f.get("at_lower_rate")
    if low:
        lines.append(
            f"           {low.get('fault_rate', 0):.0%} faults: completed={low['completed']} "
            f"lost={low['lost']} duplicated={low['duplicated']} recorded={low['recorded']} of "
            f"{low.get('injected')} (unrecordable {low.get('unrecordable')}, masked "
            f"{low.get('masked')}, missed {low.get('missed')}); experiments {low.get('states')}"
        )
    lines += [
        f"  kills    runs={k['runs']} lost={k['lost']} duplicated={k['duplicated']} "
        f"(completed {k.get('completed')}, experiments {k.get('states')})",
        f"  fuzz     cases={z['cases']} untyped_errors={z['untyped_errors']} hangs={z['hangs']} "
        f"({z.get('calls')} driver calls, {z.get('typed_errors')} typed errors)",
        f"  unsafe_on_wire={summary['unsafe_on_wire']} (by limits {u.get('by_limits')}; "
        f"{u.get('proposals')} proposals, {u.get('set_points_on_wire')} set points on the wire)",
    ]
    print("\n".join(lines), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, help="folder for summary.json and details.json")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="about a minute (CI)")
    mode.add_argument("--full", action="store_true", help="longer campaigns, more kills and cases")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fault-rate", type=float, default=None, help="default 0.10")
    parser.add_argument("--child", choices=["faults", "console"], help=argparse.SUPPRESS)
    parser.add_argument("--campaign", help=argparse.SUPPRESS)
    parser.add_argument("--workcell", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--host-log", help=argparse.SUPPRESS)
    parser.add_argument("--lease-ttl", type=float, default=None, help=argparse.SUPPRESS)
    argv = list(sys.argv[1:] if argv is None else argv)
    rest: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, rest = argv[:i], argv[i + 1 :]
    args = parser.parse_args(argv)
    if args.child == "faults":
        return child_faults(args)
    if args.child == "console":
        return child_console(args, rest)
    if args.out is None:
        parser.error("--out DIR is required")

    preset = "quick" if args.quick else "full" if args.full else "default"
    cfg = Settings(seed=args.seed, **PRESETS[preset])
    if args.fault_rate is not None:
        cfg.fault_rate = args.fault_rate
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    logs = out / "logs"
    logs.mkdir(exist_ok=True)
    t0 = time.monotonic()
    log(f"{preset} run, settings {asdict(cfg)}")
    with tempfile.TemporaryDirectory(prefix="reliability-") as d:
        tmp = Path(d)
        server = PrefectServer(tmp, logs / "prefect-server.log")
        try:
            log("fuzzing the drivers (the Prefect server starts meanwhile)")
            fuzz = run_fuzz(cfg.fuzz_examples, cfg.seed)
            log(f"unsafe on wire: {cfg.unsafe_proposals} proposals")
            unsafe = run_unsafe(cfg.unsafe_proposals, cfg.seed)
            log(f"prefect server up after {server.wait():.0f} s more")
            parts: dict[str, dict[str, Any]] = {}

            def faults_part() -> None:
                log(f"faults: campaign of {cfg.faults_budget}, {cfg.fault_rate:.0%} faults")
                parts["faults"] = run_faults(tmp, cfg, server.url, logs)
                if cfg.lower_fault_rate:
                    log(f"faults: the same campaign with {cfg.lower_fault_rate:.0%} faults")
                    lower = run_faults(tmp, cfg, server.url, logs, cfg.lower_fault_rate)
                    parts["faults"]["at_lower_rate"] = _public(lower)
                    parts["faults"]["_details_lower_rate"] = lower.get("_details")
                log("faults: done")

            def kills_part() -> None:
                log(f"kills: {cfg.kills} SIGKILLs in a campaign of {cfg.kills_budget}")
                parts["kills"] = run_kills(tmp, cfg, server.url, logs)
                log("kills: done")

            if cfg.parallel:
                thread = threading.Thread(target=_guard(parts, "kills", kills_part))
                thread.start()
                _guard(parts, "faults", faults_part)()
                thread.join()
            else:
                _guard(parts, "faults", faults_part)()
                _guard(parts, "kills", kills_part)()
        finally:
            server.stop()
    faults, kills = parts["faults"], parts["kills"]
    summary = {
        "faults": _public(faults),
        "kills": _public(kills),
        "fuzz": _public(fuzz),
        "unsafe_on_wire": unsafe["unsafe_on_wire"],
        "unsafe_on_wire_detail": _public(unsafe),
        "settings": {"preset": preset, **asdict(cfg)},
        "wall_s": round(time.monotonic() - t0, 1),
    }
    details = {
        "faults": faults.get("_details"),
        "faults_at_lower_rate": faults.get("_details_lower_rate"),
        "kills": kills.get("_details"),
        "fuzz": fuzz.get("_details"),
        "unsafe_on_wire": unsafe.get("_details"),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    (out / "details.json").write_text(json.dumps(details, indent=2, default=str))
    print_summary(summary)
    log(f"done in {summary['wall_s']:.0f} s; {out / 'summary.json'}")
    return 0


def _guard(
    parts: dict[str, dict[str, Any]], name: str, fn: Callable[[], None]
) -> Callable[[], None]:
    """Run a part; a crash of the benchmark itself becomes a part that did not complete."""
    empty = {
        "faults": {"completed": False, "lost": 0, "duplicated": 0, "recorded": 0},
        "kills": {"runs": 0, "lost": 0, "duplicated": 0, "completed": False},
    }[name]

    def run() -> None:
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - reported in the summary
            import traceback

            log(f"{name}: benchmark error: {exc!r}")
            parts[name] = {**empty, "error": traceback.format_exc()[-2000:]}

    return run


if __name__ == "__main__":
    raise SystemExit(main())
