"""Process-wide runtime settings applied at entry points (console, flows, tests).

torch, BoTorch and PyTorch Geometric run 15-400x slower on small machines when BLAS/OpenMP
use more than one thread for the tiny matrices of Bayesian optimisation, so every entry
point pins them to one thread unless the user has chosen otherwise.
"""

from __future__ import annotations

import os

_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def configure_threads() -> None:
    """Pin BLAS/OpenMP (and torch, when already imported) to one thread unless set by the user."""
    for var in _THREAD_VARS:
        os.environ.setdefault(var, "1")
    import sys

    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def configure_prefect_defaults() -> None:
    """Quiet, offline-friendly Prefect defaults unless the user has chosen otherwise."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # The temporary server needs ~6-10 s on a small machine, more when it is busy; Prefect's
    # default wait is 20 s.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
