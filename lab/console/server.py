"""Console commands for Prefect: ``lab server up|deploy`` and ``lab worker up``."""

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from lab.console._app import (
    HELP_MARKUP,
    app,
    console,
    user_errors,
)
from lab.errors import LabError

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
    root = Path(__file__).resolve().parents[2]  # the repository: lab/console/server.py
    remote = prefect_flow.from_source(
        source=str(root), entrypoint="lab/flows/campaign.py:campaign_flow"
    )
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
