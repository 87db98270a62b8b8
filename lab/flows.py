"""Prefect flows: the one place that wires optimiser, devices, plans, store and analysis.

``campaign_flow`` loops until the budget is spent::

    rebuild the optimiser from the store -> propose -> run the plans on the bench
    (a RunEngine whose documents go to the store) -> analyse the raw readings into the
    objective -> (the next proposal refits the model)

The database is the source of truth: the optimiser is rebuilt from it at every step, so a
crashed campaign resumes where it stopped. Failures are recorded, never dropped.
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from prefect import flow, task
from prefect.artifacts import (
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE

from lab._runtime import configure_threads
from lab.analysis import fit_rc_zarc, interfacial_resistance
from lab.errors import AnalysisError, LabError
from lab.optimize import Optimizer, Proposal
from lab.spec import Campaign, load_campaign
from lab.store import DocumentWriter, Experiment, ExperimentState, Store
from lab.workcell import load_workcell

ProgressListener = Callable[[dict[str, Any]], None]
_listeners: list[ProgressListener] = []


@contextlib.contextmanager
def progress_listener(fn: ProgressListener) -> Iterator[None]:
    """Receive progress events (dicts with a ``kind`` key) while the context is open."""
    _listeners.append(fn)
    try:
        yield
    finally:
        _listeners.remove(fn)


def _emit(**event: Any) -> None:
    for fn in list(_listeners):
        with contextlib.suppress(Exception):
            fn(event)


def proposal_of(exp: Experiment) -> Proposal:
    """The optimiser's view of a stored experiment."""
    return Proposal(
        params=dict(exp.params),
        fidelity=exp.fidelity,
        cost=exp.cost,
        model_version=exp.model_version,
        acquisition_value=exp.acquisition_value,
        strategy=exp.strategy,
        key=exp.idempotency_key,
    )


def rebuild_optimizer(spec: Campaign, seed: int, experiments: list[Experiment]) -> Optimizer:
    """Replay a campaign's experiments into a fresh optimiser."""
    opt = Optimizer(spec, seed=seed)
    for exp in experiments:
        p = proposal_of(exp)
        if exp.state == ExperimentState.ANALYSED.value and exp.objective is not None:
            opt.tell(p, exp.objective)
        elif exp.state in (ExperimentState.FAILED.value, ExperimentState.ABANDONED.value):
            opt.tell_failed(p, exp.failure_reason or exp.state)
        else:
            opt.mark_pending(p)
    return opt


@task(name="propose", cache_policy=NO_CACHE)
def propose(store: Store, campaign_id: int, spec: Campaign, seed: int, n: int) -> list[int]:
    """Refit on everything measured so far and store ``n`` new proposals."""
    opt = rebuild_optimizer(spec, seed, store.experiments(campaign_id))
    proposals = opt.ask(n)
    for p in proposals:
        spec.check_params(p.params)
    rows = store.add_experiments(campaign_id, [p.to_dict() for p in proposals])
    return [int(r.id) for r in rows]  # type: ignore[arg-type]


@task(name="run-experiment", cache_policy=NO_CACHE)
def run_experiment(store: Store, exp_id: int, spec: Campaign, workcell_path: str) -> str | None:
    """Run the synthesis and characterisation plans of one experiment on the bench.

    Returns:
        The uid of the characterisation run, or ``None`` when the experiment failed (the
        failure and its reason are in the store).
    """
    from bluesky import RunEngine

    from lab.devices import connect_workcell
    from lab.plans import characterize, measure_screening, sweep_frequencies, synthesize

    exp = store.transition(exp_id, ExperimentState.RUNNING)
    fid = spec.fidelity(exp.fidelity)
    md = {"experiment_id": exp_id, "idempotency_key": exp.idempotency_key, "campaign": spec.name}
    writer = DocumentWriter(store, exp_id)
    try:
        spec.check_params(exp.params)
        workcell = load_workcell(workcell_path)
        with connect_workcell(
            workcell,
            spec.safety,
            diameter_mm=spec.syringe_diameter_mm,
            ac_voltage_v=spec.ac_voltage_v,
        ) as inst:
            if inst.lcr is None:
                raise LabError(f"{workcell_path}: the workcell has no scpi_lcr impedance meter")
            recipe = spec.recipe(exp.params)
            pumps = {role: inst.pump_for_role(role) for role, (v, _) in recipe.items() if v > 0}
            RE = RunEngine({}, context_managers=[])
            RE.subscribe(writer)
            RE(
                synthesize(
                    pumps,
                    recipe,
                    spec.safety,
                    md=md,
                    anneal=spec.anneal(exp.params),
                    hotplate=inst.hotplate,
                    gantry=inst.gantry,
                    time_scale=workcell.time_scale,
                )
            )
            if fid.route == "impedance_sweep":
                freqs = sweep_frequencies(fid.freq_min_hz, fid.freq_max_hz, fid.points)
                RE(characterize(inst.lcr, freqs, spec.safety, md=md))
            elif fid.route == "impedance_single":
                RE(measure_screening(inst.lcr, fid.frequency_hz, spec.safety, md=md))
            else:
                raise LabError(f"fidelity '{fid.name}' has route '{fid.route}', not a bench route")
    except Exception as exc:  # noqa: BLE001 - reported, never dropped
        reason = f"{type(exc).__name__}: {exc}"
        store.fail(exp_id, reason)
        store.audit(
            "experiment_error", exp.campaign_id, exp_id, traceback=traceback.format_exc()[-4000:]
        )
        return None
    return writer.run_uids[-1]


def objective_from_readings(
    readings: list[dict[str, float]], route: str, area_cm2: float
) -> tuple[float, dict[str, Any], str]:
    """Raw impedance readings to the objective.

    Args:
        readings: One dict per event with keys ending in ``_frequency``, ``_z_real``, ``_z_imag``.
        route: ``impedance_sweep`` (equivalent-circuit fit) or ``impedance_single``.
        area_cm2: Electrode area in cm^2.

    Returns:
        ``(value in ohm*cm^2, raw data and fit, method description)``.

    Raises:
        AnalysisError: If the readings are missing, incomplete or cannot be fitted.
    """
    if not readings:
        raise AnalysisError("the run produced no readings")

    def column(suffix: str) -> np.ndarray:
        try:
            key = next(k for k in readings[0] if k.endswith(suffix))
            return np.array([r[key] for r in readings], dtype=float)
        except (StopIteration, KeyError, TypeError, ValueError):
            raise AnalysisError(f"readings lack a finite '*{suffix}' value") from None

    f, zr, zi = column("_frequency"), column("_z_real"), column("_z_imag")
    raw: dict[str, Any] = {
        "frequency_hz": f.tolist(),
        "z_real_ohm": zr.tolist(),
        "z_imag_ohm": zi.tolist(),
    }
    if route == "impedance_single":
        if not (np.isfinite(zr[0]) and zr[0] > 0):
            raise AnalysisError(f"screening reading {zr[0]} ohm is not a positive resistance")
        return float(zr[0]) * area_cm2, raw, f"Re Z at {f[0]:g} Hz (screening)"
    fit = fit_rc_zarc(f, zr + 1j * zi)
    raw["fit"] = fit.to_dict()
    return interfacial_resistance(fit, area_cm2), raw, "R_s + ZARC equivalent-circuit fit"


@task(name="analyse", cache_policy=NO_CACHE)
def analyse(
    store: Store, exp_id: int, run_uid: str, spec: Campaign, instrument: str
) -> float | None:
    """Turn the stored raw readings of a run into the objective; store it atomically.

    Returns:
        The objective, or ``None`` when analysis failed (recorded in the store).
    """
    store.transition(exp_id, ExperimentState.MEASURED)
    exp = store.experiment(exp_id)
    fid = spec.fidelity(exp.fidelity)
    try:
        value, raw, method = objective_from_readings(
            [r.data for r in store.readings(run_uid)], fid.route, spec.objective.electrode_area_cm2
        )
    except AnalysisError as exc:
        store.fail(exp_id, f"analysis: {exc}")
        return None
    store.record_measurement(
        exp_id,
        name=spec.objective.name,
        value=value,
        unit=spec.objective.unit,
        fidelity=fid.name,
        instrument=instrument,
        method=method,
        run_uid=run_uid,
        raw=raw,
    )
    return value


def _experiment_rows(store: Store, campaign_id: int) -> list[dict[str, Any]]:
    rows = []
    for e in store.experiments(campaign_id):
        row: dict[str, Any] = {"#": e.seq + 1, "state": e.state, "fidelity": e.fidelity}
        row.update({k: round(v, 3) if isinstance(v, float) else v for k, v in e.params.items()})
        row["objective"] = None if e.objective is None else round(e.objective, 3)
        row["why"] = (
            e.strategy
            if e.acquisition_value is None
            else f"{e.strategy} ({e.acquisition_value:.3g})"
        )
        row["model"] = e.model_version
        rows.append(row)
    return rows


@flow(name="interface-campaign")
def campaign_flow(
    campaign_path: str,
    workcell_path: str,
    db_url: str,
    seed: int = 0,
    budget: float | None = None,
    campaign_id: int | None = None,
) -> int:
    """Run (or resume) a closed-loop campaign until its budget is spent.

    Args:
        campaign_path: Campaign YAML file.
        workcell_path: Workcell YAML file (real instruments or the simulated workcell).
        db_url: Database URL.
        seed: Optimiser seed.
        budget: Budget in cost units (default: the campaign's).
        campaign_id: Resume this campaign instead of creating one.

    Returns:
        The campaign id.
    """
    configure_threads()
    spec = load_campaign(campaign_path)
    load_workcell(workcell_path)  # fail early with a clear message
    store = Store(db_url)
    if campaign_id is None:
        budget = float(budget if budget is not None else spec.budget)
        campaign_id = store.create_campaign(spec.name, spec.model_dump(mode="json"), seed, budget)
    else:
        row = store.campaign(campaign_id)
        seed, budget = row.seed, float(budget if budget is not None else row.budget)
    lcr_name = next(
        (n for n, d in load_workcell(workcell_path).devices.items() if d.kind == "scpi_lcr"), "lcr"
    )
    progress_id = create_progress_artifact(
        progress=0.0,
        key=f"campaign-{campaign_id}-progress",
        description=f"{spec.name}: budget spent (%)",
    )
    _emit(kind="start", campaign_id=campaign_id, budget=budget, db=store.url)
    while True:
        spent = store.spent(campaign_id)
        cost = spec.target.cost
        if spent + cost > budget + 1e-9:
            break
        n = max(1, min(spec.batch_size, int((budget - spent + 1e-9) // cost)))
        exp_ids = propose(store, campaign_id, spec, seed, n)
        for exp_id in exp_ids:
            exp = store.experiment(exp_id)
            _emit(kind="proposed", seq=exp.seq, params=exp.params, strategy=exp.strategy)
            run_uid = run_experiment(store, exp_id, spec, workcell_path)
            value = analyse(store, exp_id, run_uid, spec, lcr_name) if run_uid else None
            exp = store.experiment(exp_id)
            spent = store.spent(campaign_id)
            _emit(
                kind="finished",
                seq=exp.seq,
                state=exp.state,
                value=value,
                reason=exp.failure_reason,
                spent=spent,
                budget=budget,
            )
        update_progress_artifact(progress_id, progress=min(100.0, 100.0 * spent / budget))
    create_table_artifact(
        key=f"campaign-{campaign_id}-experiments",
        table=_experiment_rows(store, campaign_id),
        description=f"{spec.name}: experiments, their results and why each was chosen",
    )
    store.set_campaign_status(campaign_id, "completed")
    _emit(kind="done", campaign_id=campaign_id)
    return campaign_id
