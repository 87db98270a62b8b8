"""The faults part: the campaign flow against a workcell with injected faults, and the
accounting of every fault to a host-side record (recorded, unrecordable, masked, missed)."""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import logging
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .audit import audit_campaign, utc_to_monotonic
from .campaigns import write_campaign
from .common import SCRIPT, Settings
from .processes import child_env, kill_group


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
    """Why a fault cannot be seen by the host, or ``None`` if it can (see
    ``benchmarks/reliability.py``)."""
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
    """The faults part (see ``benchmarks/reliability.py``), at ``rate`` (default
    ``cfg.fault_rate``)."""
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
            str(SCRIPT),
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
            dev, t = ev.detail.get("device"), utc_to_monotonic(ev.at, offset)
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
        t = utc_to_monotonic(ev.at, offset)
        start = utc_to_monotonic(exp.started_at, offset)
        if dev is None or t is None:
            continue
        lo = (start if start is not None else t - 60.0) - 0.1
        evidence.append(Evidence(dev, t, lo, t + 0.05, ev.kind, text[-300:]))
    lcr = next((n for n, k in kinds.items() if k == "scpi_lcr"), None)
    for exp in exps.values():
        if lcr and exp.state == "failed" and (exp.failure_reason or "").startswith("analysis:"):
            t = utc_to_monotonic(exp.updated_at, offset)
            start = utc_to_monotonic(exp.started_at, offset)
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
                else round(utc_to_monotonic(e.started_at, offset) - t_start, 3),
                "ended": round(utc_to_monotonic(e.updated_at, offset) - t_start, 3),
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
