"""Round-trip time of every driver command against the simulated workcell, over real transports.

Starts the full simulated workcell (both pumps, hotplate, balance and gantry on pseudo-terminals,
the LCR meter on a TCP socket on 127.0.0.1), opens each device's host driver at its real URL and
times each driver command ``--n`` times (after two untimed warm-up calls). A command's time is
the whole driver call: framing, writing, the simulator's handling, the reply and its parsing;
calls that make several exchanges (a set point verified by reading it back, ``measure``) say how
many in the ``exchanges`` column.

Usage::

    python benchmarks/hil_roundtrip.py --out DIR [--n N] [--time-scale X] [--seed S]

Prints a table and writes ``DIR/roundtrip.csv`` (one row per command) and ``DIR/summary.json``
(the same numbers by device, plus the settings and machine). Times are milliseconds; p90 is the
90th percentile (linear interpolation). Set commands that get no reply (IKA ``START_1``, SCPI
``:FREQ``) are timed only inside calls that read them back.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivers import NE1000, Grbl, IkaHotplate, MtSicsBalance, ScpiLcr
from simulators.workcell import FULL_DEVICES, TCP_KINDS, SimulatedWorkcell
from simulators.world import SimulatedWorld

WARM_UP = 2
"""Untimed calls before each command's timed repetitions."""


@dataclass
class Command:
    """One timed driver call.

    Attributes:
        device: Device name in the workcell.
        name: The driver call, e.g. ``"diameter()"``.
        wire: What goes on the wire, e.g. ``"DIA"``.
        exchanges: Messages the call sends.
        call: The call itself.
        before: Untimed step before every repetition (e.g. wait until the pump stopped).
        setup: Untimed step once before the command's repetitions.
    """

    device: str
    name: str
    wire: str
    exchanges: int
    call: Callable[[], object]
    before: Callable[[], object] | None = None
    setup: Callable[[], object] | None = None


def _quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile of ``values`` with linear interpolation (numpy's default)."""
    data = sorted(values)
    pos = (len(data) - 1) * q
    low = int(pos)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (pos - low)


def _pump_commands(name: str, p: NE1000) -> list[Command]:
    def long_program() -> None:
        p.wait_until_stopped(timeout_s=5.0)
        p.set_volume(1000.0, "UL")
        p.set_rate(10.0, "UM")

    def short_program() -> None:
        p.stop()
        p.set_volume(1.0, "UL")
        p.set_rate(500.0, "UM")

    def idle() -> None:
        p.wait_until_stopped(timeout_s=5.0)

    return [
        Command(name, "status()", "<CR> (status poll)", 1, p.status),
        Command(name, "identify()", "VER", 1, p.identify),
        Command(name, "diameter()", "DIA", 1, p.diameter),
        Command(name, "set_diameter(4.61)", "DIA4.61", 1, lambda: p.set_diameter(4.61)),
        Command(name, "rate()", "RAT", 1, p.rate),
        Command(name, "set_rate(100, UM)", "RAT100UM", 1, lambda: p.set_rate(100.0, "UM")),
        Command(name, "volume()", "VOL", 1, p.volume),
        Command(name, "set_volume(1, UL)", "VOLUL; VOL1", 2, lambda: p.set_volume(1.0, "UL")),
        Command(name, "direction()", "DIR", 1, p.direction),
        Command(name, "set_direction(INF)", "DIRINF", 1, lambda: p.set_direction("INF")),
        Command(name, "dispensed()", "DIS", 1, p.dispensed),
        Command(name, "clear_dispensed(INF)", "CLDINF", 1, lambda: p.clear_dispensed("INF")),
        Command(name, "run()", "RUN", 1, p.run, before=idle),
        Command(
            name,
            "stop() while pumping",
            "STP (pause); STP (stop)",
            2,
            p.stop,
            before=p.run,
            setup=long_program,
        ),
        Command(
            name,
            "dispense(1 uL, 500 uL/min)",
            "VOLUL; VOL1; RAT500UM; DIRINF; RUN",
            5,
            lambda: p.dispense(1.0, 500.0),
            before=idle,
            setup=short_program,
        ),
    ]


def _hotplate_commands(name: str, h: IkaHotplate) -> list[Command]:
    return [
        Command(name, "identify()", "IN_NAME", 1, h.identify),
        Command(name, "temperature()", "IN_PV_1", 1, h.temperature),
        Command(name, "plate_temperature()", "IN_PV_2", 1, h.plate_temperature),
        Command(name, "temperature_setpoint()", "IN_SP_1", 1, h.temperature_setpoint),
        Command(name, "safety_temperature()", "IN_SP_3", 1, h.safety_temperature),
        Command(name, "speed()", "IN_PV_4", 1, h.speed),
        Command(name, "speed_setpoint()", "IN_SP_4", 1, h.speed_setpoint),
        Command(name, "viscosity_trend()", "IN_PV_5", 1, h.viscosity_trend),
        Command(
            name,
            "set_temperature(25) verified",
            "OUT_SP_1 25; IN_SP_1",
            2,
            lambda: h.set_temperature(25.0),
        ),
        Command(name, "set_speed(0) verified", "OUT_SP_4 0; IN_SP_4", 2, lambda: h.set_speed(0)),
    ]


def _balance_commands(name: str, b: MtSicsBalance) -> list[Command]:
    # Tare before zeroing: a tare of a zeroed, empty pan can read a hair below zero ("T -").
    return [
        Command(name, "identify()", "I2", 1, b.identify),
        Command(name, "serial_number()", "I4", 1, b.serial_number),
        Command(name, "weight_stable()", "S", 1, b.weight_stable),
        Command(name, "weight_immediate()", "SI", 1, b.weight_immediate),
        Command(name, "tare()", "T", 1, b.tare),
        Command(name, "reset()", "@", 1, b.reset),
        Command(name, "zero()", "Z", 1, b.zero),
        Command(name, "zero_immediately()", "ZI", 1, b.zero_immediately),
    ]


def _gantry_commands(name: str, g: Grbl) -> list[Command]:
    step = {"x": -1.0}

    def idle() -> None:
        g.wait_idle(timeout=5.0)

    def move_to() -> None:
        step["x"] = -2.0 if step["x"] == -1.0 else -1.0
        g.move_to(x=step["x"], feed=1000.0)

    def move_by() -> None:
        step["x"] = -step["x"]
        g.move_by(dx=step["x"], feed=1000.0)

    return [
        Command(name, "status()", "? (real-time)", 1, g.status),
        Command(name, "wait_idle() when idle", "?", 1, idle),
        Command(name, "send_line(G90)", "G90", 1, lambda: g.send_line("G90")),
        Command(name, "send_line($G)", "$G", 1, lambda: g.send_line("$G")),
        Command(name, "unlock()", "$X", 1, g.unlock),
        Command(name, "move_to(x)", "G90 G1 X.. F1000", 1, move_to, before=idle),
        Command(name, "move_by(dx)", "?; G91 G1 X.. F1000", 2, move_by, before=idle),
        Command(name, "soft_reset()", "Ctrl-X (banner back)", 1, g.soft_reset, before=idle),
    ]


def _lcr_commands(name: str, m: ScpiLcr) -> list[Command]:
    return [
        Command(name, "identify()", "*IDN?", 1, m.identify),
        Command(name, "frequency()", ":FREQ?", 1, m.frequency),
        Command(name, "function()", ":FUNC:IMP?", 1, m.function),
        Command(name, "voltage()", ":VOLT?", 1, m.voltage),
        Command(name, "trigger_source()", ":TRIG:SOUR?", 1, m.trigger_source),
        Command(name, "opc()", "*OPC?", 1, m.opc),
        Command(name, "next_error()", ":SYST:ERR?", 1, m.next_error),
        Command(name, "fetch()", ":FETC?", 1, m.fetch, setup=lambda: m.measure(1000.0)),
        Command(name, "check_errors() when empty", ":SYST:ERR?", 1, m.check_errors),
        Command(
            name,
            "measure(1 kHz)",
            ":FUNC:IMP RX; :TRIG:SOUR BUS; :INIT:CONT ON; :FREQ 1000; :TRIG; *OPC?; :FETC?; "
            ":SYST:ERR?",
            8,
            lambda: m.measure(1000.0),
        ),
    ]


def _open(cell: SimulatedWorkcell, stack: ExitStack) -> list[Command]:
    """Open every driver, bring each device to a known state, list its commands."""
    commands: list[Command] = []
    for name, entry in cell.devices.items():
        url, kind = entry["url"], entry["kind"]
        if kind == "ne1000":
            pump = stack.enter_context(NE1000(url, address=entry.get("address", 0), name=name))
            pump.identify()  # answers the power-up alarm
            pump.set_diameter(4.61)
            commands += _pump_commands(name, pump)
        elif kind == "ika_namur":
            commands += _hotplate_commands(name, stack.enter_context(IkaHotplate(url, name=name)))
        elif kind == "mt_sics":
            balance = stack.enter_context(MtSicsBalance(url, name=name))
            commands += _balance_commands(name, balance)
        elif kind == "grbl":
            gantry = stack.enter_context(Grbl(url, name=name))
            gantry.status()
            commands += _gantry_commands(name, gantry)
        elif kind == "scpi_lcr":
            lcr = stack.enter_context(ScpiLcr(url, name=name))
            lcr.clear()
            commands += _lcr_commands(name, lcr)
        else:  # pragma: no cover - FULL_DEVICES has only these kinds
            raise ValueError(f"no benchmark for device kind {kind!r}")
    return commands


def _time(command: Command, n: int) -> list[float]:
    """Milliseconds of ``n`` timed calls after the warm-up."""
    if command.setup is not None:
        command.setup()
    times = []
    for i in range(WARM_UP + n):
        if command.before is not None:
            command.before()
        t0 = time.perf_counter()
        command.call()
        elapsed = (time.perf_counter() - t0) * 1e3
        if i >= WARM_UP:
            times.append(elapsed)
    return times


def run(out: Path, n: int, time_scale: float, seed: int) -> dict[str, Any]:
    """Benchmark every command; write ``roundtrip.csv`` and ``summary.json`` into ``out``.

    Returns:
        The summary written to ``summary.json``.
    """
    t_start = time.perf_counter()
    world = SimulatedWorld(time_scale=time_scale, seed=seed)
    rows: list[dict[str, Any]] = []
    # The balance weighs the sample wherever the gantry is: on an empty pan (the sample away at
    # another station) a tare can read a hair below zero ("T -"); only timing is measured here.
    devices = {**FULL_DEVICES, "balance": {"kind": "mt_sics"}}
    with SimulatedWorkcell(devices, world=world, seed=seed) as cell, ExitStack() as stack:
        kinds = {name: entry["kind"] for name, entry in cell.devices.items()}
        for command in _open(cell, stack):
            times = _time(command, n)
            kind = kinds[command.device]
            rows.append(
                {
                    "device": command.device,
                    "kind": kind,
                    "transport": "tcp" if kind in TCP_KINDS else "pty",
                    "command": command.name,
                    "wire": command.wire,
                    "exchanges": command.exchanges,
                    "n": len(times),
                    "median_ms": round(_quantile(times, 0.5), 4),
                    "p90_ms": round(_quantile(times, 0.9), 4),
                    "min_ms": round(min(times), 4),
                    "max_ms": round(max(times), 4),
                }
            )
    out.mkdir(parents=True, exist_ok=True)
    with (out / "roundtrip.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    devices: dict[str, Any] = {}
    for row in rows:
        dev = devices.setdefault(
            row["device"], {"kind": row["kind"], "transport": row["transport"], "commands": {}}
        )
        dev["commands"][row["command"]] = {
            k: row[k] for k in ("wire", "exchanges", "median_ms", "p90_ms", "min_ms", "max_ms")
        }
    summary = {
        "n": n,
        "warm_up": WARM_UP,
        "time_scale": time_scale,
        "seed": seed,
        "wall_s": round(time.perf_counter() - t_start, 3),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "devices": devices,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    _print_table(rows, summary)
    return summary


def _print_table(rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    header = (
        f"{'device':<15} {'via':<4} {'command':<30} {'msgs':>4} {'median ms':>10} {'p90 ms':>8}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['device']:<15} {row['transport']:<4} {row['command']:<30} "
            f"{row['exchanges']:>4} {row['median_ms']:>10.3f} {row['p90_ms']:>8.3f}"
        )
    print(
        f"\n{summary['n']} timed calls per command (after {WARM_UP} warm-up), time scale "
        f"{summary['time_scale']:g}, {summary['cpus']} CPUs, wall {summary['wall_s']:.1f} s"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the CSV and JSON")
    parser.add_argument("--n", type=int, default=200, help="timed calls per command (200)")
    parser.add_argument(
        "--time-scale", type=float, default=2000.0, help="simulated s per real s (2000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated world (0)")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be at least 1")
    # The pumps' expected power-up alarm is retried with a warning: keep the output a table.
    logging.basicConfig(level=logging.ERROR)
    run(args.out, args.n, args.time_scale, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
