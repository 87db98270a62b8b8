"""The ``lab`` console: the front door (Typer + Rich).

Heavy libraries (torch, Prefect, Bluesky, and the standard library's ``logging`` and
``tempfile``) are imported inside the commands that need them, so ``lab --help`` stays fast.
User mistakes (a bad campaign file, an unknown device, an unsafe set point) are printed as one
clear message and exit with status 2; no traceback.

There is deliberately no ``from __future__ import annotations`` here: Typer reads every
command's annotations to build the command tree on each invocation (``--help`` included), and
string annotations would be parsed again one by one, which costs more than evaluating them once
when the module is executed. Names used in annotations must be importable at module level.
"""

import contextlib
import functools
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from lab.errors import LabError

HELP_MARKUP = None
"""Typer help rendering: plain (click) text. Rich help panels cost ~0.3 s of imports and
formatting per ``lab --help`` on a 2-core machine; the plain text says the same."""

app = typer.Typer(
    rich_markup_mode=HELP_MARKUP,
    name="lab",
    help="Closed-loop self-driving lab for material interfaces.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
campaign_app = typer.Typer(
    rich_markup_mode=HELP_MARKUP, help="Validate and run campaigns.", no_args_is_help=True
)
app.add_typer(campaign_app, name="campaign")
instruments_app = typer.Typer(
    rich_markup_mode=HELP_MARKUP,
    help="Talk to the instruments of a workcell.",
    no_args_is_help=True,
)
app.add_typer(instruments_app, name="instruments")
sim_app = typer.Typer(
    rich_markup_mode=HELP_MARKUP, help="The simulated workcell.", no_args_is_help=True
)
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
    from importlib import resources

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


DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL (default: $LAB_DATABASE_URL or a SQLite file in your data folder).",
    ),
]


def _db_url(db: str | None) -> str:
    from lab.store import default_database_url

    return db or default_database_url()


def _quiet_runtime() -> None:
    import logging

    from lab._runtime import configure_prefect_defaults, configure_threads

    configure_threads()
    configure_prefect_defaults()
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    # Simulated pumps power up with the reset alarm (A?R), which the driver acknowledges and
    # logs as a warning; on the console only driver errors are shown.
    logging.getLogger("drivers").setLevel(logging.ERROR)
    # A measurement retried on a driver fault is a Prefect task retry; its traceback goes to
    # the run's record and the audit trail, the console prints the one-line outcome.
    logging.getLogger("prefect.task_runs").setLevel(logging.CRITICAL)


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

    devices = {**FULL_DEVICES}
    for kind in INSTRUMENTS:
        devices.update(INSTRUMENTS.get(kind).simulated_devices())
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


def _run_campaign(
    *,
    db_url: str,
    campaign_path: Path | None = None,
    campaign_id: int | None = None,
    workcell: Path | None = None,
    seed: int = 0,
    budget: float | None = None,
    time_scale: float = 2000.0,
) -> int:
    """Run (or resume) a campaign with Rich progress; start simulators when no workcell."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from lab.flows import campaign_flow, progress_listener
    from lab.spec import load_campaign, parse_campaign
    from lab.store import Store

    if budget is not None and budget <= 0:
        raise LabError("--budget must be positive")
    if campaign_path is not None:
        spec = load_campaign(campaign_path)
    else:
        from lab import control

        row = control.resumable(Store(db_url), int(campaign_id))  # type: ignore[arg-type]
        spec = parse_campaign(row.spec, f"campaign {campaign_id}")
        if workcell is None and row.workcell and row.workcell != "simulated":
            workcell = Path(row.workcell)
    from lab.workcell import lease_ttl, load_workcell

    if workcell is not None:
        from lab.instruments import check_kinds, check_limits
        from lab.workcell import check_campaign

        wc = load_workcell(workcell)
        wc.lease_ttl()
        check_kinds(wc, str(workcell))
        check_campaign(spec, wc, str(workcell))  # before anything is written
        check_limits(spec, wc, str(workcell))
    else:
        lease_ttl()  # a bad $LAB_LEASE_TTL_S is a user error before anything starts
    sim = (
        contextlib.nullcontext(workcell)
        if workcell is not None
        else _simulated_workcell(spec, seed, time_scale)
    )
    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("budget"),
        TimeElapsedColumn(),
        console=console,
    )

    def on_event(ev: dict[str, Any]) -> None:
        kind = ev["kind"]
        if kind == "start":
            progress.update(bar, total=ev["budget"])
            progress.console.print(f"campaign id {ev['campaign_id']}", highlight=False)
        elif kind == "reconciled":
            progress.console.print(f"  resume: {ev['note']}")
        elif kind == "proposed":
            params = ", ".join(
                f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                for k, v in ev["params"].items()
            )
            progress.update(bar, description=f"#{ev['seq'] + 1} {ev['strategy']}")
            progress.console.print(f"  #{ev['seq'] + 1:>2} proposed ({ev['strategy']}): {params}")
        elif kind == "awaiting_approval":
            progress.console.print(
                f"  waiting for approval: `lab campaign approve {ev['campaign_id']}`"
            )
        elif kind == "finished":
            progress.update(bar, completed=ev["spent"])
            if ev["value"] is not None:
                progress.console.print(f"      measured: {ev['value']:.3g}")
            else:
                progress.console.print(f"      [red]{ev['state']}[/]: {ev['reason']}")
        elif kind == "guard_rail":
            progress.console.print(f"[red]stopped[/]: {ev['reason']}", highlight=False)
        elif kind == "done" and ev["status"] != "completed":
            progress.console.print(f"campaign {ev['campaign_id']} {ev['status']}")

    with sim as workcell_path, progress, progress_listener(on_event):
        bar = progress.add_task("starting Prefect", total=budget)
        cid = campaign_flow(
            None if campaign_path is None else str(campaign_path),
            str(workcell_path),
            db_url,
            seed=seed,
            budget=budget,
            campaign_id=campaign_id,
            workcell_label="simulated" if workcell is None else str(workcell.resolve()),
        )
    return cid


def _summary(db_url: str, campaign_id: int) -> str:
    from lab.spec import parse_campaign
    from lab.store import Store

    store = Store(db_url)
    row = store.campaign(campaign_id)
    spec = parse_campaign(row.spec, f"campaign {campaign_id}")
    console.print(_experiments_table(store, campaign_id, spec))
    best = min(
        (e for e in store.experiments(campaign_id) if e.objective is not None),
        key=lambda e: e.objective if spec.objective.direction == "minimize" else -e.objective,
        default=None,
    )
    if best is not None:
        params = ", ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.params.items()
        )
        console.print(
            f"[bold green]best[/]: {spec.objective.name} = {best.objective:.3g} {spec.objective.unit}"
            f" (experiment {best.seq + 1}: {params})"
        )
    state = store.campaign(campaign_id).status
    console.print(f"database: [cyan]{store.url}[/] (campaign id {campaign_id}, {state})")
    return state


def _exit_on_failure(state: str) -> None:
    """Exit non-zero when a campaign ended ``failed`` (the guard rail stopped it)."""
    if state == "failed":
        raise typer.Exit(1)


@app.command()
@user_errors
def demo(
    budget: Annotated[
        float | None, typer.Option(help="Budget in cost units (default: the campaign's, 10).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the optimiser and the simulated world.")] = 0,
    db: DbOption = None,
    time_scale: Annotated[
        float, typer.Option(help="Simulated time runs this many times faster than real time.")
    ] = 2000.0,
) -> None:
    """Run a small closed-loop campaign against the simulated workcell (no server, no setup)."""
    _quiet_runtime()
    t0 = time.perf_counter()
    from lab.spec import load_campaign

    campaign_path = demo_campaign_path()
    spec = load_campaign(campaign_path)
    db_url = _db_url(db)
    console.print(
        f"[bold]lab demo[/]: campaign [cyan]{spec.name}[/] "
        f"({spec.interface.substrate} | interlayer | {spec.interface.other_phase}), "
        f"budget {budget or spec.budget:g}, seed {seed}"
    )
    cid = _run_campaign(
        db_url=db_url, campaign_path=campaign_path, seed=seed, budget=budget, time_scale=time_scale
    )
    state = _summary(db_url, cid)
    console.print(f"wall time: {time.perf_counter() - t0:.1f} s")
    _exit_on_failure(state)


@campaign_app.command("launch")
@user_errors
def campaign_launch(
    file: Annotated[Path, typer.Argument(help="Campaign YAML file.")],
    db: DbOption = None,
    workcell: Annotated[
        Path | None,
        typer.Option(help="Workcell file; without it the simulated workcell runs in-process."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Optimiser seed.")] = 0,
    budget: Annotated[float | None, typer.Option(help="Budget in cost units.")] = None,
    time_scale: Annotated[
        float, typer.Option(help="Clock of the in-process simulated workcell.")
    ] = 2000.0,
) -> None:
    """Create a campaign, print its id, and run it to the end."""
    _quiet_runtime()
    db_url = _db_url(db)
    cid = _run_campaign(
        db_url=db_url,
        campaign_path=file,
        workcell=workcell,
        seed=seed,
        budget=budget,
        time_scale=time_scale,
    )
    _exit_on_failure(_summary(db_url, cid))


@campaign_app.command("resume")
@user_errors
def campaign_resume(
    campaign_id: Annotated[int, typer.Argument(metavar="ID", help="Campaign id.")],
    db: DbOption = None,
    workcell: Annotated[
        Path | None, typer.Option(help="Workcell file (default: the one it was launched with).")
    ] = None,
    time_scale: Annotated[
        float, typer.Option(help="Clock of the in-process simulated workcell.")
    ] = 2000.0,
) -> None:
    """Run a stopped, paused or crashed campaign to the end."""
    _quiet_runtime()
    db_url = _db_url(db)
    _run_campaign(db_url=db_url, campaign_id=campaign_id, workcell=workcell, time_scale=time_scale)
    _exit_on_failure(_summary(db_url, campaign_id))


@campaign_app.command("list")
@user_errors
def campaign_list(
    db: DbOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List campaigns, newest first."""
    import json

    from lab.store import Store

    rows = Store(_db_url(db)).campaigns()
    if json_out:
        print(json.dumps([{"id": r.id, "name": r.name, "state": r.status} for r in rows]))
        return
    from rich.table import Table

    table = Table(title="campaigns")
    for col in ("id", "name", "state", "budget", "created"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r.id), r.name, r.status, f"{r.budget:g}", f"{r.created_at:%Y-%m-%d %H:%M}"
        )
    console.print(table)


def _campaign_status(db_url: str, campaign_id: int) -> dict[str, Any]:
    from lab.store import Store

    store = Store(db_url)
    row = store.campaign(campaign_id)
    return {
        "state": row.status,
        "budget": row.budget,
        "spent": store.spent(campaign_id),
        "experiments": [
            {
                "key": e.idempotency_key,
                "status": e.state,
                "fidelity": e.fidelity,
                "params": e.params,
                "value": e.objective,
                "edited_by": e.edited_by,
                "samples": [
                    {"label": smp.label, "realised": smp.realised}
                    for smp in store.samples(int(e.id))
                ],
            }
            for e in store.experiments(campaign_id)
        ],
    }


@campaign_app.command("status")
@user_errors
def campaign_status(
    campaign_id: Annotated[int, typer.Argument(metavar="ID", help="Campaign id.")],
    db: DbOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """State, budget and experiments of a campaign."""
    import json

    status = _campaign_status(_db_url(db), campaign_id)
    if json_out:
        print(json.dumps(status))
        return
    console.print(
        f"campaign {campaign_id}: [bold]{status['state']}[/], spent {status['spent']:g} of "
        f"{status['budget']:g}"
    )
    _summary(_db_url(db), campaign_id)


@campaign_app.command("pause")
@user_errors
def campaign_pause(
    campaign_id: Annotated[int, typer.Argument(metavar="ID", help="Campaign id.")],
    db: DbOption = None,
) -> None:
    """Pause after the running experiment; `lab campaign resume ID` continues."""
    from lab import control
    from lab.store import Store

    control.request_pause(Store(_db_url(db)), campaign_id)
    console.print(
        f"campaign {campaign_id}: pause requested (takes effect after the current experiment)"
    )


@campaign_app.command("abort")
@user_errors
def campaign_abort(
    campaign_id: Annotated[int, typer.Argument(metavar="ID", help="Campaign id.")],
    db: DbOption = None,
) -> None:
    """Stop for good after the running experiment; waiting proposals are abandoned."""
    from lab import control
    from lab.store import Store

    control.request_abort(Store(_db_url(db)), campaign_id)
    console.print(f"campaign {campaign_id}: abort requested")


@campaign_app.command("approve")
@user_errors
def campaign_approve(
    campaign_id: Annotated[int, typer.Argument(metavar="ID", help="Campaign id.")],
    db: DbOption = None,
) -> None:
    """Approve the batch of proposals waiting for approval."""
    from lab import control
    from lab.store import Store

    store = Store(_db_url(db))
    n = control.approve(store, campaign_id, by=os.environ.get("USER", "console"))
    console.print(f"campaign {campaign_id}: approved {n} experiment(s)")
    row = store.campaign(campaign_id)
    if row.flow_run_id and os.environ.get("PREFECT_API_URL"):
        # The run is paused with an approval form on the server: resume it.
        from uuid import UUID

        from prefect.flow_runs import resume_flow_run

        try:
            resume_flow_run(UUID(row.flow_run_id), run_input={"approve": True, "notes": "console"})
        except Exception as exc:  # noqa: BLE001 - approved in the database either way
            console.print(f"(the flow run was not paused on the server: {exc})")


@campaign_app.command("report")
@user_errors
def campaign_report(
    campaign_id: Annotated[int, typer.Argument(metavar="ID", help="Campaign id.")],
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for index.html and its plots (default: ./campaign-ID-report)."),
    ] = None,
    db: DbOption = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the key figures as JSON.")
    ] = False,
) -> None:
    """Write an HTML report: best objective vs cost, fidelity usage, surrogate checks, table."""
    from lab._runtime import configure_threads

    configure_threads()
    from lab.report import write_report

    out_dir = out if out is not None else Path(f"campaign-{campaign_id}-report")
    if json_out:
        index = write_report(_db_url(db), campaign_id, out_dir)
        print((index.parent / "report.json").read_text(encoding="utf-8"), end="")
        return
    with console.status("refitting held-out surrogates and drawing the plots..."):
        index = write_report(_db_url(db), campaign_id, out_dir)
    console.print(f"report: [cyan]{index}[/] (open it in a browser)")


@campaign_app.command("export")
@user_errors
def campaign_export(
    campaign_id: Annotated[int, typer.Argument(metavar="ID", help="Campaign id.")],
    fmt: Annotated[
        str, typer.Option("--format", help="csv, or parquet (needs the pyarrow package).")
    ] = "csv",
    out: Annotated[
        Path | None,
        typer.Option(help="Output file, or a folder for campaign-ID.FORMAT (default: here)."),
    ] = None,
    db: DbOption = None,
) -> None:
    """Export one row per experiment (parameters, result, why it was chosen) as CSV/Parquet."""
    from lab.report import export_campaign

    path = export_campaign(_db_url(db), campaign_id, fmt, out if out is not None else Path.cwd())  # type: ignore[arg-type]
    console.print(f"wrote {path}")


server_app = typer.Typer(
    rich_markup_mode=HELP_MARKUP, help="The local Prefect server and UI.", no_args_is_help=True
)
app.add_typer(server_app, name="server")


@server_app.command("up")
@user_errors
def server_up(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 4200,
) -> None:
    """Start a local Prefect server and UI on 127.0.0.1 (Ctrl-C to stop)."""
    import subprocess

    from lab._runtime import configure_prefect_defaults

    configure_prefect_defaults()
    url = f"http://127.0.0.1:{port}"
    console.print(
        f"Prefect UI: [cyan]{url}[/]\nrun campaigns against it with "
        f"[bold]PREFECT_API_URL={url}/api[/] lab campaign launch FILE",
        highlight=False,
    )
    cmd = [
        sys.executable,
        "-m",
        "prefect",
        "server",
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    # The UI in the browser asks /ui-settings where the API is: PREFECT_UI_API_URL, else
    # PREFECT_API_URL, else the *default* host and port (4200), not --port. Point it here.
    env = {
        **os.environ,
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
    }
    if not {"PREFECT_UI_API_URL", "PREFECT_SERVER_UI_API_URL"} & env.keys():
        env["PREFECT_UI_API_URL"] = f"{url}/api"
    try:
        raise typer.Exit(subprocess.call(cmd, env=env))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


def _experiments_table(store: Any, campaign_id: int, spec: Any) -> Any:
    """A Rich table of a campaign's experiments (the read model's rows)."""
    from rich.table import Table

    from lab.readmodel import experiment_rows, load_campaign_data, param_key

    data = load_campaign_data(store, campaign_id)
    table = Table(title=f"campaign {campaign_id}: {spec.name}")
    names = [p.name for p in spec.parameters]
    table.add_column("#", justify="right")
    table.add_column("state")
    table.add_column("fidelity")
    for p in spec.parameters:
        unit = getattr(p, "unit", None)
        table.add_column(f"{p.name} ({unit})" if unit else p.name, justify="right", overflow="fold")
    table.add_column(f"{spec.objective.name} ({spec.objective.unit})", justify="right")
    table.add_column("chosen by", overflow="fold")
    for r in experiment_rows(data):
        cells = [r[param_key(n)] for n in names]
        vals = [f"{v:.3g}" if isinstance(v, float) else str(v) for v in cells]
        obj = "-" if r["objective"] is None else f"{r['objective']:.3g}"
        table.add_row(str(r["number"]), r["state"], r["fidelity"], *vals, obj, r["why"])
    return table


@server_app.command("deploy")
@user_errors
def server_deploy(
    pool: Annotated[str, typer.Option(help="Process work pool to run campaigns on.")] = "lab",
    name: Annotated[str, typer.Option(help="Deployment name.")] = "campaign",
) -> None:
    """Register the campaign flow as a deployment on a process work pool (needs a server).

    Start a worker on each instrument PC with `lab worker up --pool POOL`, then run a
    campaign from the UI or with `prefect deployment run interface-campaign/NAME -p ...`.
    """
    if not os.environ.get("PREFECT_API_URL"):
        raise LabError("set PREFECT_API_URL to the server (see `lab server up`) before deploying")
    from lab._runtime import configure_prefect_defaults

    configure_prefect_defaults()
    deployment_id = _deploy(pool, name)
    console.print(
        f"deployment [cyan]interface-campaign/{name}[/] ({deployment_id}) on pool [cyan]{pool}[/]; "
        f"start a worker with: lab worker up --pool {pool}",
        highlight=False,
    )


def _deploy(pool: str, name: str) -> str:
    """Create the process pool if needed and deploy the campaign flow from this installation."""
    import subprocess

    from prefect import flow as prefect_flow

    subprocess.run(
        [sys.executable, "-m", "prefect", "work-pool", "create", pool, "--type", "process"],
        capture_output=True,
        text=True,
    )
    root = Path(__file__).resolve().parents[1]
    remote = prefect_flow.from_source(source=str(root), entrypoint="lab/flows/campaign.py:campaign_flow")
    return str(remote.deploy(name=name, work_pool_name=pool, print_next_steps=False))


worker_app = typer.Typer(
    rich_markup_mode=HELP_MARKUP, help="Prefect workers that run campaigns.", no_args_is_help=True
)
app.add_typer(worker_app, name="worker")


@worker_app.command("up")
@user_errors
def worker_up(
    pool: Annotated[str, typer.Option(help="Work pool to take campaign runs from.")] = "lab",
    run_once: Annotated[bool, typer.Option(help="Take the waiting runs once, then exit.")] = False,
) -> None:
    """Start a process worker for the campaign deployment (one per instrument PC)."""
    import subprocess

    from lab._runtime import configure_prefect_defaults, configure_threads

    if not os.environ.get("PREFECT_API_URL"):
        raise LabError("set PREFECT_API_URL to the Prefect server the worker should poll")
    configure_threads()
    configure_prefect_defaults()
    cmd = [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", "process"]
    if run_once:
        cmd.append("--run-once")
    raise typer.Exit(subprocess.call(cmd))


@app.command()
@user_errors
def calculate(
    modifier: Annotated[
        list[str] | None,
        typer.Option("--modifier", "-m", help="Modifier (repeatable; default: the whole library)."),
    ] = None,
    partner: Annotated[
        list[str] | None,
        typer.Option("--partner", "-p", help="Partner electrolyte (repeatable; default: all)."),
    ] = None,
    energy: Annotated[
        str,
        typer.Option(help="Energy model: chgnet, or module:attribute naming a callable."),
    ] = "chgnet",
    executor: Annotated[
        str, typer.Option(help="serial, threads, or dask (prefect-dask; the dask extra).")
    ] = "serial",
    workers: Annotated[
        int | None, typer.Option(min=1, help="Parallel workers (default: the CPU count).")
    ] = None,
    dask_address: Annotated[
        str | None,
        typer.Option(help="A running Dask scheduler (tcp://host:8786) instead of a local cluster."),
    ] = None,
    thickness: Annotated[
        float, typer.Option(help="Film thickness of the resistance estimate, nm.")
    ] = 5.0,
    out: Annotated[Path | None, typer.Option(help="Write the results as CSV.")] = None,
) -> None:
    """Compute the cheap fidelity (works of adhesion) for modifier | partner stacks, cached."""
    import csv
    import logging

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from lab.materials import electrolytes, get_material, modifiers

    _quiet_runtime()
    logging.getLogger("distributed").setLevel(logging.ERROR)
    if dask_address and executor != "dask":
        raise LabError("--dask-address needs --executor dask")
    mods, parts = modifier or modifiers(), partner or electrolytes()
    for name in [*mods, *parts]:
        get_material(name)  # an unknown name fails here, with the library's message
    pairs = [(m, p) for m in mods for p in parts]

    from lab.flows import calculate as run_calculation
    from lab.flows import progress_listener
    from lab.materials.calculator import contact_asr_estimate

    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[eta]}"),
        TimeElapsedColumn(),
        console=console,
    )

    def on_event(ev: dict[str, Any]) -> None:
        if ev["kind"] == "calculated":
            eta, left = ev["eta_s"], ev["total"] - ev["done"]
            text = f"~{eta:.0f} s left" if left and eta == eta else "~? left" if left else ""
            progress.update(bar, completed=ev["done"], total=ev["total"], eta=text)

    t0 = time.perf_counter()
    with progress, progress_listener(on_event):
        bar = progress.add_task(f"stacks ({executor})", total=len(pairs), eta="")
        results = run_calculation(
            pairs, energy, executor=executor, workers=workers, address=dask_address
        )
    columns = ["modifier", "partner", "w_substrate_j_m2", "w_partner_j_m2", "asr_ohm_cm2", "wall_s"]
    table = Table(
        "modifier", "partner", "W Li|film J/m²", "W film|partner J/m²", f"ASR {thickness:g} nm", "s"
    )
    rows = []
    for r in results:
        asr = contact_asr_estimate(r.w_substrate, r.w_partner, thickness)
        rows.append([r.modifier, r.partner, r.w_substrate, r.w_partner, asr, r.seconds])
        table.add_row(
            r.modifier,
            r.partner,
            f"{r.w_substrate:.3f}",
            f"{r.w_partner:.3f}",
            f"{asr:.3g}",
            "cached" if r.seconds == 0.0 else f"{r.seconds:.1f}",
        )
    console.print(table)
    if out is not None:
        with out.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(columns)
            writer.writerows(rows)
        console.print(f"results: [cyan]{out}[/]")
    cached = sum(r.seconds == 0.0 for r in results)
    console.print(
        f"{len(results)} stacks ({cached} from the cache), energy {energy}, "
        f"wall time {time.perf_counter() - t0:.1f} s"
    )


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
