"""The ``lab`` console: the front door (Typer + Rich).

Heavy libraries (torch, Prefect, Bluesky) are imported inside the commands that need them, so
``lab --help`` stays fast. User mistakes (a bad campaign file, an unknown device, an unsafe set
point) are printed as one clear message and exit with status 2; no traceback.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from lab.errors import LabError

app = typer.Typer(
    name="lab",
    help="Closed-loop self-driving lab for material interfaces.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
campaign_app = typer.Typer(help="Validate and run campaigns.", no_args_is_help=True)
app.add_typer(campaign_app, name="campaign")
instruments_app = typer.Typer(help="Talk to the instruments of a workcell.", no_args_is_help=True)
app.add_typer(instruments_app, name="instruments")
sim_app = typer.Typer(help="The simulated workcell.", no_args_is_help=True)
app.add_typer(sim_app, name="sim")

console = Console()
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def user_errors(fn: F) -> F:
    """Print a :class:`LabError` as a message and exit with status 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LabError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def demo_campaign_path() -> Path:
    """Path of the shipped demo campaign (``campaigns/demo.yaml``)."""
    return Path(str(resources.files("campaigns") / "demo.yaml"))


@campaign_app.command("validate")
@user_errors
def campaign_validate(
    file: Annotated[Path, typer.Argument(help="Campaign YAML file.")],
) -> None:
    """Validate a campaign file: exit 0 when valid, 2 (with the fields to fix) when not."""
    from lab.spec import load_campaign

    spec = load_campaign(file)
    console.print(
        f"[green]valid[/]: {spec.name}: {len(spec.parameters)} parameters, "
        f"fidelities {spec.fidelity_names}, budget {spec.budget:g}"
    )


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

    from lab.instruments import check_workcell
    from lab.workcell import load_workcell

    results = check_workcell(load_workcell(workcell))
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

    from simulators.workcell import DEMO_DEVICES, FULL_DEVICES, SimulatedWorkcell
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
    devices = DEMO_DEVICES if demo_only else FULL_DEVICES
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


@app.command()
@user_errors
def demo(
    budget: Annotated[
        float | None, typer.Option(help="Budget in cost units (default: the campaign's, 10).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the optimiser and the simulated world.")] = 0,
    db: Annotated[
        str | None,
        typer.Option(
            help="Database URL (default: $LAB_DATABASE_URL or a SQLite file in your data folder)."
        ),
    ] = None,
    time_scale: Annotated[
        float, typer.Option(help="Simulated time runs this many times faster than real time.")
    ] = 2000.0,
) -> None:
    """Run a small closed-loop campaign against the simulated workcell (no server, no setup)."""
    from lab._runtime import configure_prefect_defaults, configure_threads

    configure_threads()
    configure_prefect_defaults()
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    # The simulated pumps power up with the reset alarm (A?R) that the driver acknowledges
    # and logs; in the demo that is expected, so only driver errors are shown.
    logging.getLogger("drivers").setLevel(logging.ERROR)
    t0 = time.perf_counter()

    from lab.spec import load_campaign
    from lab.store import default_database_url

    campaign_path = demo_campaign_path()
    spec = load_campaign(campaign_path)
    if budget is not None and budget <= 0:
        raise LabError("--budget must be positive")
    db_url = db or default_database_url()
    console.print(
        f"[bold]lab demo[/]: campaign [cyan]{spec.name}[/] "
        f"({spec.interface.substrate} | interlayer | {spec.interface.other_phase}), "
        f"budget {budget or spec.budget:g}, seed {seed}"
    )
    campaign_id, store = _run_demo(campaign_path, db_url, seed, budget, time_scale)
    console.print(_experiments_table(store, campaign_id, spec))
    best = min(
        (e for e in store.experiments(campaign_id) if e.objective is not None),
        key=lambda e: e.objective if spec.objective.direction == "minimize" else -e.objective,
        default=None,
    )
    if best is not None:
        params = ", ".join(f"{k}={v:.3g}" for k, v in best.params.items())
        console.print(
            f"[bold green]best[/]: {spec.objective.name} = {best.objective:.3g} {spec.objective.unit}"
            f" (experiment {best.seq + 1}: {params})"
        )
    console.print(f"database: [cyan]{store.url}[/] (campaign id {campaign_id})")
    console.print(f"wall time: {time.perf_counter() - t0:.1f} s")


def _run_demo(
    campaign_path: Path, db_url: str, seed: int, budget: float | None, time_scale: float
) -> tuple[int, Any]:
    """Start the simulated workcell in-process and run the campaign flow against it."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from lab.flows import campaign_flow, progress_listener
    from lab.store import Store
    from simulators.workcell import DEMO_DEVICES, SimulatedWorkcell
    from simulators.world import SimulatedWorld

    world = SimulatedWorld(time_scale=time_scale, seed=seed)
    with (
        tempfile.TemporaryDirectory(prefix="lab-demo-") as tmp,
        SimulatedWorkcell(DEMO_DEVICES, world=world, seed=seed) as cell,
    ):
        workcell_path = Path(tmp) / "workcell.yaml"
        cell.write_workcell(workcell_path)
        console.print(
            f"simulated workcell: {', '.join(DEMO_DEVICES)} (ptys + TCP), {workcell_path}"
        )
        progress = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("budget"),
            TimeElapsedColumn(),
            console=console,
        )
        total = budget if budget is not None else None

        def on_event(ev: dict[str, Any]) -> None:
            if ev["kind"] == "start":
                progress.update(bar, total=ev["budget"])
            elif ev["kind"] == "proposed":
                params = ", ".join(f"{k}={v:.3g}" for k, v in ev["params"].items())
                progress.update(bar, description=f"#{ev['seq'] + 1} {ev['strategy']}")
                progress.console.print(
                    f"  #{ev['seq'] + 1:>2} proposed ({ev['strategy']}): {params}"
                )
            elif ev["kind"] == "finished":
                progress.update(bar, completed=ev["spent"])
                if ev["value"] is not None:
                    progress.console.print(f"      measured: {ev['value']:.3g}")
                else:
                    progress.console.print(f"      [red]{ev['state']}[/]: {ev['reason']}")

        with progress, progress_listener(on_event):
            bar = progress.add_task("starting Prefect", total=total)
            campaign_id = campaign_flow(
                str(campaign_path), str(workcell_path), db_url, seed=seed, budget=budget
            )
    return campaign_id, Store(db_url)


def _experiments_table(store: Any, campaign_id: int, spec: Any) -> Any:
    """A Rich table of a campaign's experiments."""
    from rich.table import Table

    table = Table(title=f"campaign {campaign_id}: {spec.name}")
    units = {p.name: getattr(p, "unit", "") for p in spec.parameters}
    names = [p.name for p in spec.parameters]
    table.add_column("#", justify="right")
    table.add_column("state")
    for n in names:
        label = n.removesuffix("_ul_min").removesuffix("_ul").replace("_", " ")
        table.add_column(f"{label} ({units[n]})", justify="right", overflow="fold")
    table.add_column(
        f"{spec.objective.name.replace('_', ' ')} ({spec.objective.unit})",
        justify="right",
        overflow="fold",
    )
    table.add_column("chosen by", overflow="fold")
    for e in store.experiments(campaign_id):
        vals = [
            f"{e.params[n]:.3g}" if isinstance(e.params[n], float) else str(e.params[n])
            for n in names
        ]
        obj = "-" if e.objective is None else f"{e.objective:.3g}"
        why = "initial design" if e.strategy == "initial_design" else e.strategy
        if e.acquisition_value is not None:
            why += f" {e.acquisition_value:.2f}"
        table.add_row(str(e.seq + 1), e.state, *vals, obj, why)
    return table


def main() -> None:
    """Console entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()

__all__ = ["app", "main"]
