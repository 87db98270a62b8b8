"""Console commands for the bench: ``lab instruments check``, ``lab sim up``, and the simulated
workcell a campaign runs on in-process."""

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from lab.console._app import (
    console,
    instruments_app,
    sim_app,
    user_errors,
)
from lab.errors import LabError


@instruments_app.command("check")
@user_errors
def instruments_check(
    workcell: Annotated[Path, typer.Option(help="Workcell YAML file.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON object instead.")] = False,
) -> None:
    """Identify every device of a workcell and run a short safe routine on each.

    Exit status 0 only if every device passed.
    """
    import json

    from lab.instruments import check_kinds, check_workcell
    from lab.workcell import load_workcell

    wc = load_workcell(workcell)
    check_kinds(wc, str(workcell))
    results = check_workcell(wc)
    if json_out:
        print(json.dumps({n: {"ok": r.ok, "message": r.message} for n, r in results.items()}))
    else:
        from rich.table import Table

        table = Table(title=f"instruments of {workcell}")
        for col in ("device", "ok", "time [s]", "message"):
            table.add_column(col)
        for name, r in results.items():
            ok = "[green]ok[/]" if r.ok else "[red]FAIL[/]"
            table.add_row(name, ok, f"{r.seconds:.2f}", r.message)
        console.print(table)
    if not all(r.ok for r in results.values()):
        raise typer.Exit(1)


@sim_app.command("up")
@user_errors
def sim_up(
    workcell_out: Annotated[
        Path, typer.Option(help="Write the workcell file here once every device is listening.")
    ] = Path("workcell.yaml"),
    time_scale: Annotated[
        float, typer.Option(help="Simulated seconds per real second (1 = real time).")
    ] = 1.0,
    faults: Annotated[
        float, typer.Option(help="Probability of an injected fault per reply, 0-1.")
    ] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of the world and of fault injection.")] = 0,
    truth: Annotated[
        str, typer.Option(help="Ground truth as module:function.")
    ] = "simulators.truths:demo_interface",
    demo_only: Annotated[
        bool, typer.Option("--demo-only", help="Only the demo's two pumps and impedance meter.")
    ] = False,
) -> None:
    """Start the simulated workcell (ptys and TCP on 127.0.0.1) until SIGINT or SIGTERM."""
    import signal
    import threading

    from simulators.workcell import DEMO_DEVICES, SimulatedWorkcell
    from simulators.world import SimulatedWorld, load_truth

    if time_scale <= 0:
        raise LabError("--time-scale must be positive")
    if not 0.0 <= faults <= 1.0:
        raise LabError("--faults is a probability: give a value between 0 and 1")
    try:
        truth_fn = load_truth(truth)
    except (ValueError, ImportError) as exc:
        raise LabError(f"--truth {truth}: {exc}") from None
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    world = SimulatedWorld(truth_fn, time_scale=time_scale, seed=seed)
    devices = DEMO_DEVICES if demo_only else simulated_devices()
    with SimulatedWorkcell(devices, world=world, seed=seed, faults_rate=faults) as cell:
        from rich.table import Table

        table = Table(title="simulated workcell")
        for col in ("device", "kind", "url"):
            table.add_column(col)
        for name, entry in cell.devices.items():
            table.add_row(name, entry["kind"], entry["url"])
        console.print(table)
        path = cell.write_workcell(workcell_out)
        console.print(
            f"workcell file: [cyan]{path}[/] (time scale {time_scale:g}, faults {faults:g}); "
            "Ctrl-C to stop",
            highlight=False,
        )
        while not stop.wait(0.2):
            pass
        n_faults = len(cell.fault_log())
    console.print(f"stopped ({n_faults} injected faults)")


def simulated_devices(spec: Any | None = None) -> dict[str, dict[str, Any]]:
    """Device entries of the simulated workcell: every instrument kind, or a campaign's.

    The full bench is two syringe pumps, a hotplate, a balance, a gantry carrying samples
    between stations, a deposition controller whose films hold every material of the
    library (and Li for contacts) and the impedance meter. For a campaign, only the devices
    its process steps and routes name are started (the gantry with them only when a step
    moves the sample), so a campaign without moves runs on a bench whose instruments share
    one work position.
    """
    from lab.instruments import INSTRUMENTS
    from lab.routes import ROUTES
    from simulators.workcell import FULL_DEVICES

    devices = {n: dict(e) for n, e in FULL_DEVICES.items()}
    stations = dict(devices["gantry"]["stations"])
    for kind in INSTRUMENTS:
        devices.update(INSTRUMENTS.get(kind).simulated_devices())
        stations.update(INSTRUMENTS.get(kind).simulated_stations())
    devices["gantry"]["stations"] = stations
    for entry in devices.values():  # each kind's module names the simulator that speaks it
        kind = INSTRUMENTS.get(entry["kind"])
        entry.setdefault("simulator", kind.simulator)
        entry.setdefault("transport", kind.simulator_transport)
    if spec is None:
        return devices
    wanted = set()
    for st in spec.process:
        wanted |= {n for n, d in devices.items() if st.device in (n, d.get("role"))}
    kinds = {k for f in spec.fidelities for k in ROUTES.get(f.route).instruments}
    for f in spec.fidelities:
        if f.device:
            wanted |= {n for n, d in devices.items() if f.device in (n, d.get("role"))}
        else:
            wanted |= {n for n, d in devices.items() if d["kind"] in kinds}
    moves = any(d["kind"] == "grbl" for n, d in devices.items() if n in wanted)
    out = {}
    for n in devices:
        if n in wanted:
            entry = dict(devices[n])
            if not moves:
                entry.pop("station", None)
            out[n] = entry
    return out


@contextlib.contextmanager
def _simulated_workcell(spec: Any, seed: int, time_scale: float) -> Iterator[Path]:
    """A campaign's simulated workcell, in-process; yields its workcell file."""
    import tempfile

    from simulators.workcell import SimulatedWorkcell
    from simulators.world import SimulatedWorld

    devices = simulated_devices(spec)
    truth = spec.simulated_truth or "simulators.truths:demo_interface"
    world = SimulatedWorld(truth, time_scale=time_scale, seed=seed)
    with (
        tempfile.TemporaryDirectory(prefix="lab-sim-") as tmp,
        SimulatedWorkcell(devices, world=world, seed=seed) as cell,
    ):
        path = Path(tmp) / "workcell.yaml"
        cell.write_workcell(path)
        console.print(f"simulated workcell: {', '.join(devices)} (ptys + TCP), {path}")
        yield path
