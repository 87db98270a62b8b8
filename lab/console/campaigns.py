"""Console commands for campaigns: ``lab demo`` and ``lab campaign validate|launch|resume|list|
status|pause|abort|approve|report|export``."""

import contextlib
import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from lab.console._app import (
    DbOption,
    _db_url,
    _quiet_runtime,
    app,
    campaign_app,
    console,
    demo_campaign_path,
    user_errors,
)
from lab.console.bench import _simulated_workcell
from lab.errors import LabError


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
