"""``lab calculate``: the cheap fidelity of a library, computed and cached."""

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from lab.console._app import (
    _quiet_runtime,
    app,
    console,
    user_errors,
)
from lab.errors import LabError


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
