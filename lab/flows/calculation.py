"""The cheap fidelity for a library: works of adhesion of each stack, fanned out on a task runner."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prefect import flow, task
from prefect.artifacts import (
    create_progress_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE

from lab._runtime import configure_threads
from lab.errors import LabError
from lab.flows._events import _emit


class _TaskMap:
    """``map(fn, items)`` as Prefect tasks on the running flow's task runner, results in order."""

    def __init__(self, name: str) -> None:
        self.name = name

    def map(self, fn: Callable[[Any], Any], items: Any) -> Iterator[Any]:
        run = task(fn, name=self.name, cache_policy=NO_CACHE)
        futures = [run.submit(item) for item in items]
        for future in futures:
            yield future.result()


def calculation_task_runner(
    executor: str = "serial", workers: int | None = None, address: str | None = None
) -> Any:
    """The task runner for :func:`calculation_flow`.

    Args:
        executor: ``"serial"`` (no tasks: the flow computes each stack itself), ``"threads"``
            (Prefect's thread pool: useful when the energy model releases the GIL) or
            ``"dask"`` (prefect-dask: a local cluster of ``workers`` single-threaded
            processes, or the existing scheduler at ``address``).
        workers: Parallel workers (default: the CPU count).
        address: Address of a running Dask scheduler (``tcp://host:8786``); ``dask`` only.

    Returns:
        A Prefect task runner, or ``None`` for ``"serial"``.

    Raises:
        LabError: For an unknown executor, or ``"dask"`` without the ``dask`` extra.
    """
    if executor == "serial":
        return None
    if executor == "threads":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=workers)
    if executor == "dask":
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError as exc:
            raise LabError(
                "the dask executor needs prefect-dask: pip install 'interface-lab[dask]'"
            ) from exc
        if address:
            return DaskTaskRunner(address=address)
        import os

        return DaskTaskRunner(
            cluster_kwargs={
                "n_workers": workers or os.cpu_count() or 1,
                "threads_per_worker": 1,
                "processes": True,
                "dashboard_address": None,
            }
        )
    raise LabError(f"unknown executor {executor!r}: serial, threads or dask")


@flow(name="calculate-adhesion", validate_parameters=False)
def calculation_flow(
    pairs: list[tuple[str, str]],
    energy: str = "chgnet",
    substrate: str = "Li",
    fan_out: bool = False,
) -> list[Any]:
    """The cheap fidelity for a library: works of adhesion of each stack, cached.

    Stacks already in the cache are read back; with ``fan_out`` the others run as one task
    each on the flow's task runner, otherwise here, one after the other. Progress goes to the
    listeners as ``{"kind": "calculated", "done", "total", "eta_s"}`` and to a progress
    artifact. :func:`calculate` picks the task runner.

    Args:
        pairs: ``(modifier, partner)`` names.
        energy: Energy model (:func:`lab.materials.calculator.energy_model`).
        substrate: Electrode below the interlayer.
        fan_out: Submit the uncached stacks as tasks.

    Returns:
        One :class:`~lab.materials.calculator.AdhesionResult` per pair, in order.
    """
    from lab.materials.calculator import calculate_library, energy_model

    configure_threads()
    try:
        model = energy_model(energy)
    except (ImportError, ValueError) as exc:
        raise LabError(str(exc)) from exc
    artifact = create_progress_artifact(0.0, description=f"stacks calculated ({energy})")

    def progress(done: int, total: int, eta_s: float) -> None:
        _emit(kind="calculated", done=done, total=total, eta_s=eta_s)
        update_progress_artifact(artifact, progress=100.0 * done / max(total, 1))

    return calculate_library(
        [(str(m), str(p)) for m, p in pairs],
        model,
        substrate=substrate,
        executor=_TaskMap("adhesion") if fan_out else None,
        progress=progress,
    )


def calculate(
    pairs: list[tuple[str, str]],
    energy: str = "chgnet",
    *,
    substrate: str = "Li",
    executor: str = "serial",
    workers: int | None = None,
    address: str | None = None,
) -> list[Any]:
    """Run :func:`calculation_flow` on the task runner that ``executor`` names.

    Args:
        pairs: ``(modifier, partner)`` names.
        energy: Energy model (:func:`lab.materials.calculator.energy_model`).
        substrate: Electrode below the interlayer.
        executor: ``"serial"``, ``"threads"`` or ``"dask"`` (:func:`calculation_task_runner`).
        workers: Parallel workers (default: the CPU count).
        address: A running Dask scheduler to use instead of a local cluster.

    Returns:
        One :class:`~lab.materials.calculator.AdhesionResult` per pair, in order.
    """
    runner = calculation_task_runner(executor, workers, address)
    run = calculation_flow if runner is None else calculation_flow.with_options(task_runner=runner)
    return run(list(pairs), energy, substrate, fan_out=runner is not None)
