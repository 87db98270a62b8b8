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

import functools
import os
import sys
from collections.abc import Callable
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


def main() -> None:
    """Console entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
