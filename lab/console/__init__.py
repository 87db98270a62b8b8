"""The ``lab`` console: the front door (Typer + Rich).

Commands live in :mod:`lab.console.campaigns` (``lab demo``, ``lab campaign ...``),
:mod:`lab.console.bench` (``lab instruments check``, ``lab sim up``),
:mod:`lab.console.server` (``lab server ...``, ``lab worker up``) and
:mod:`lab.console.calculate`; :mod:`lab.console._app` holds the Typer apps, the error
handling (a :class:`~lab.errors.LabError` is one message and exit 2, no traceback) and the
entry point. Heavy libraries are imported inside the commands that need them, so
``lab --help`` stays fast.
"""

from lab.console import bench, calculate, campaigns, server  # noqa: F401 - register commands
from lab.console._app import app, main
from lab.console.bench import simulated_devices

__all__ = ["app", "main", "simulated_devices"]
