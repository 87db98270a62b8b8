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
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

# The parts live in the package benchmarks/_reliability/, imported from the repository root
# (benchmarks/ itself is not a package); the root is also where lab, drivers and simulators are.
if str(Path(__file__).resolve().parents[1]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._reliability.audit import audit_campaign
from benchmarks._reliability.campaigns import (
    add_anneal,
    add_moves,
    campaign_data,
    demo_data,
    write_campaign,
)
from benchmarks._reliability.common import PRESETS, ROOT, Settings, log
from benchmarks._reliability.faults import (
    Evidence,
    Fault,
    _device_named,
    child_faults,
    match_faults,
    run_faults,
    silent_by_nature,
)
from benchmarks._reliability.fuzz import (
    FUZZ_OPS,
    FuzzPort,
    Mutation,
    fuzz_driver,
    make_fuzz_driver,
    make_fuzz_sim,
    run_fuzz,
)
from benchmarks._reliability.kills import child_console, run_kills
from benchmarks._reliability.processes import PrefectServer
from benchmarks._reliability.unsafe import (
    Limits,
    WireTap,
    _at_limits,
    _odd_campaign,
    run_unsafe,
    set_points_on_wire,
)

__all__ = [
    "FUZZ_OPS",
    "PRESETS",
    "ROOT",
    "Evidence",
    "Fault",
    "FuzzPort",
    "Limits",
    "Mutation",
    "Settings",
    "WireTap",
    "_at_limits",
    "_device_named",
    "_odd_campaign",
    "add_anneal",
    "add_moves",
    "audit_campaign",
    "campaign_data",
    "demo_data",
    "fuzz_driver",
    "main",
    "make_fuzz_driver",
    "make_fuzz_sim",
    "match_faults",
    "run_faults",
    "run_fuzz",
    "run_kills",
    "run_unsafe",
    "set_points_on_wire",
    "silent_by_nature",
    "write_campaign",
]
"""The names the tests take from this script and the parts ``main`` runs; the parts' other
names are in their modules."""


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
