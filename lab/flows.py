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
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from prefect import flow, task
from prefect import runtime as prefect_runtime
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
from pydantic import Field

from lab import control
from lab._runtime import configure_threads
from lab.errors import AnalysisError, LabError
from lab.optimize import Optimizer, Proposal
from lab.spec import Campaign, load_campaign, parse_campaign
from lab.store import DocumentWriter, Experiment, ExperimentState, Store, hold_leases
from lab.workcell import check_campaign, load_workcell, measuring_device

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
        elif exp.state == ExperimentState.FAILED.value:
            opt.tell_failed(p, exp.failure_reason or exp.state)
        elif exp.state == ExperimentState.ABANDONED.value:
            continue  # never measured: no information about the design point
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
    for version in sorted({p.model_version for p in proposals} - {"initial_design"}):
        store.add_model_snapshot(
            campaign_id,
            version,
            opt.n_observations,
            {"acquisition": getattr(opt, "acquisition", None), "seed": seed},
        )
    rows = store.add_experiments(campaign_id, [p.to_dict() for p in proposals])
    return [int(r.id) for r in rows]  # type: ignore[arg-type]


def validated(
    callback: Callable[[str, dict[str, Any]], None],
) -> Callable[[str, dict[str, Any]], None]:
    """Wrap a document callback so every document is checked against event-model's schemas.

    An invalid document raises ``jsonschema.ValidationError`` before it reaches the store, so
    the run fails loudly instead of storing something downstream tools cannot read.
    """
    from event_model import DocumentNames, schema_validators

    def check(name: str, doc: dict[str, Any]) -> None:
        schema_validators[DocumentNames(name)].validate(doc)
        callback(name, doc)

    return check


def _resources(workcell: Any, kinds: set[str]) -> list[str]:
    """Lease identifiers (transport URLs) of the devices of ``kinds`` in a workcell."""
    return sorted({d.url for d in workcell.devices.values() if d.kind in kinds})


def driver_error_of(exc: BaseException) -> Any | None:
    """The driver error behind ``exc`` (itself or along its chain of causes), or ``None``.

    A device's failed status reaches the RunEngine's caller wrapped, with the driver's error as
    its cause.
    """
    from drivers import DriverError

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, DriverError):
            return current
        seen.add(id(current))
        current = current.__cause__
    return None


def _reconnect(store: Store, inst: Any, device: str, campaign_id: int, exp_id: int) -> None:
    """Reopen a device's port after its connection was lost; record the outcome.

    A failed reopen is recorded and not raised: the next attempt then fails on the closed port
    and tries again, until the retries are used up.
    """
    if device not in inst.names and inst.lcr is not None:
        device = inst.lcr.name  # an error raised by a device object, not by its driver
    try:
        inst.reconnect(device)
    except Exception as exc:  # noqa: BLE001 - recorded, the retry loop decides
        store.audit(
            "reconnect_failed",
            campaign_id,
            exp_id,
            device=device,
            error=f"{type(exc).__name__}: {exc}"[:500],
        )
    else:
        store.audit("reconnected", campaign_id, exp_id, device=device)


class RetryRecorder:
    """Records every repeated driver exchange of one experiment as a ``driver_retry`` event.

    A driver repeats an idempotent exchange after a time-out, a garbled reply or an alarm and
    logs a warning, which the console does not show. Installed on the experiment's drivers
    (:meth:`lab.devices.Instruments.add_retry_listener`), this puts each retry in the audit
    trail with the device, the command, the attempt and the error. It runs in the thread that
    talks to the instrument; an event the store refuses is kept and written by :meth:`flush`.

    Args:
        store: The store.
        campaign_id: Campaign of the experiment.
        exp_id: The experiment.
    """

    def __init__(self, store: Store, campaign_id: int, exp_id: int) -> None:
        self.store = store
        self.campaign_id = campaign_id
        self.exp_id = exp_id
        self.pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, retry: Any) -> None:
        """Record one :class:`drivers.DriverRetry`."""
        detail = {
            "device": retry.device,
            "command": retry.what,
            "attempt": retry.attempt,
            "error": f"{type(retry.error).__name__}: {retry.error}"[:500],
        }
        try:
            self.store.audit("driver_retry", self.campaign_id, self.exp_id, **detail)
        except Exception:  # noqa: BLE001 - kept for flush(); the exchange goes on
            with self._lock:
                self.pending.append(detail)

    def flush(self) -> None:
        """Write the events the store refused earlier.

        Raises:
            Exception: The store's error, if it still refuses them (they stay pending).
        """
        with self._lock:
            while self.pending:
                self.store.audit("driver_retry", self.campaign_id, self.exp_id, **self.pending[0])
                self.pending.pop(0)


@task(name="run-experiment", cache_policy=NO_CACHE)
def run_experiment(
    store: Store,
    exp_id: int,
    spec: Campaign,
    workcell_path: str,
    *,
    measure_retries: int = 2,
    backoff_s: float = 0.5,
) -> str | None:
    """Run the synthesis and characterisation plans of one experiment on the bench.

    The instruments are leased in the database for the whole experiment (lifetime without a
    heartbeat: :meth:`lab.workcell.Workcell.lease_ttl`). A driver fault while measuring (the
    sample is made and unchanged) is retried by Prefect (:func:`measure`: ``measure_retries``
    times, backoff ``backoff_s`` doubling), after reopening the port of a device whose
    connection was lost (same URL and settings); a fault while making the sample fails the
    experiment, because a half-made sample cannot be repeated. Every failure is recorded with its cause, and every exchange a driver repeated
    (after a time-out, a garbled reply or an alarm) as a ``driver_retry`` audit event.

    Returns:
        The uid of the characterisation run, or ``None`` when the experiment failed (the
        failure and its reason are in the store).
    """
    from bluesky import RunEngine

    from lab.devices import connect_workcell
    from lab.plans import make_sample

    exp = store.experiment(exp_id)
    fid = spec.fidelity(exp.fidelity)
    md = {"experiment_id": exp_id, "idempotency_key": exp.idempotency_key, "campaign": spec.name}
    writer = DocumentWriter(store, exp_id)
    recorder = RetryRecorder(store, exp.campaign_id, exp_id)
    stage = "setup"
    try:
        spec.check_params(exp.params)
        workcell = load_workcell(workcell_path)
        check_campaign(spec, workcell, workcell_path)
        where_route, route, route_bindings = spec.bound_route(fid)
        meter = measuring_device(spec, fid, workcell, workcell_path)
        steps = spec.bound_steps()
        step_devices = [workcell.resolve(st.device) or st.device for st in spec.process]
        names = sorted({*step_devices, meter})
        cid = exp.campaign_id

        def cancelled() -> bool:
            return store.campaign(cid).status in ("abort_requested", "aborted")

        resources = sorted({workcell.devices[n].url for n in names})
        ttl_s = workcell.lease_ttl()
        with hold_leases(
            store,
            resources,
            f"campaign-{cid}/experiment-{exp_id}",
            ttl_s=ttl_s,
            cancelled=cancelled,
        ) as holder:
            store.transition(exp_id, ExperimentState.RUNNING)
            store.audit("leases", cid, exp_id, holder=holder, resources=resources, ttl_s=ttl_s)
            with connect_workcell(workcell, spec.safety, spec=spec, names=names) as inst:
                inst.add_retry_listener(recorder)
                ctx = process_context(spec, workcell)
                plan_steps = [
                    (where, kind, inst.devices[name], values_of(bindings, exp.params, spec))
                    for (where, kind, bindings), name in zip(steps, step_devices, strict=True)
                ]
                route_values = values_of(route_bindings, exp.params, spec)
                route.check_values(route_values, ctx, where_route)
                device = inst.devices[meter]
                route.configure(device, route_values)
                RE = RunEngine({}, context_managers=[])
                RE.subscribe(validated(writer))
                stage = "synthesis"
                RE(make_sample(plan_steps, ctx, md=md))
                synthesis = writer.run_uids[-1]
                store.add_sample(
                    exp_id, f"{spec.name}-{exp.seq + 1}", synthesis, realised_of(store, synthesis)
                )
                stage = "measurement"
                retrying = measure.with_options(
                    retries=measure_retries,
                    retry_delay_seconds=[backoff_s * 2**i for i in range(measure_retries)],
                )
                retrying(
                    store,
                    exp_id,
                    RE,
                    route.plan,
                    device,
                    route_values,
                    ctx,
                    md,
                    inst,
                    meter,
                    measure_retries,
                )
    except Exception as exc:  # noqa: BLE001 - reported, never dropped
        reason = f"{stage}: {type(exc).__name__}: {exc}"
        cause = driver_error_of(exc)
        if cause is not None and cause is not exc:
            reason += f" (caused by {type(cause).__name__}: {cause})"
        current = store.experiment(exp_id).state
        if current in (ExperimentState.PROPOSED.value, ExperimentState.APPROVED.value):
            store.transition(exp_id, ExperimentState.ABANDONED, failure_reason=reason[:2000])
        else:
            store.fail(exp_id, reason)
        store.audit(
            "experiment_error", exp.campaign_id, exp_id, traceback=traceback.format_exc()[-4000:]
        )
        return None
    finally:
        recorder.flush()
    return writer.run_uids[-1]


def _driver_fault(task: Any, task_run: Any, state: Any) -> bool:
    """Retry condition of :func:`measure`: retry only a driver fault (time-out, garbled reply,
    lost connection, alarm), never a safety refusal or a programming error."""
    try:
        state.result()
    except Exception as exc:  # noqa: BLE001 - the failed run's exception is what we classify
        return driver_error_of(exc) is not None
    return False


@task(name="measure", cache_policy=NO_CACHE, retry_condition_fn=_driver_fault)
def measure(
    store: Store,
    exp_id: int,
    RE: Any,
    plan: Callable[..., Any],
    device: Any,
    values: dict[str, Any],
    ctx: Any,
    md: dict[str, Any],
    inst: Any,
    meter: str,
    retries: int = 0,
) -> None:
    """Run a route's measurement plan on a made sample; Prefect retries it on driver faults.

    The sample is made and unchanged, so a measurement that failed on a time-out, a garbled
    reply or a lost connection can be repeated: each fault is recorded as a
    ``measurement_fault`` audit event, a lost connection's port is reopened and the meter's
    error queue cleared before Prefect's next attempt (``retries`` and the backoff are set by
    :func:`run_experiment`; :func:`_driver_fault` decides).
    """
    from drivers import ConnectionLost

    exp = store.experiment(exp_id)
    attempt = max(0, int(prefect_runtime.task_run.run_count or 1) - 1)
    try:
        RE(plan(device, values, ctx, md))
    except Exception as exc:
        cause = driver_error_of(exc)
        detail = {"attempt": attempt, "error": f"{type(exc).__name__}: {exc}"[:500]}
        if cause is not None and cause is not exc:
            detail["cause"] = f"{type(cause).__name__}: {cause}"[:500]
        store.audit("measurement_fault", exp.campaign_id, exp_id, **detail)
        if cause is not None and attempt < retries:  # prepare the next attempt
            if isinstance(cause, ConnectionLost):
                _reconnect(store, inst, cause.device or meter, exp.campaign_id, exp_id)
            with contextlib.suppress(Exception):
                device._driver.clear()
        raise


def values_of(bindings: dict[str, Any], params: dict[str, Any], spec: Campaign) -> dict[str, Any]:
    """Argument values of one proposal (in each argument's unit) from their bindings."""
    return {name: b.value(params, spec) for name, b in bindings.items()}


def process_context(spec: Campaign, workcell: Any) -> Any:
    """The :class:`~lab.steps.StepContext` of a campaign's process on a workcell."""
    from lab.steps import StepContext

    stations = {n: d.station for n, d in workcell.devices.items() if d.station}
    tracked = bool(stations) and any(d.kind == "grbl" for d in workcell.devices.values())
    return StepContext(
        safety=spec.safety, time_scale=workcell.time_scale, stations=stations, tracked=tracked
    )


def realised_of(store: Store, run_uid: str) -> dict[str, Any]:
    """What the instruments read back during a sample's run, per step.

    Returns:
        ``{"steps": [{"index", "step", "device", "args", "read": {signal: value}}]}`` from
        the run's metadata (the steps run and their values) and its per-step event streams
        (named ``step<index>_...``).
    """
    run = store.run(run_uid)
    steps = list(run.start_doc.get("steps") or []) if run is not None else []
    read: dict[str, dict[str, Any]] = {}
    for r in store.run_readings(run_uid):
        read.setdefault(r.stream, {}).update(r.data)
    out = []
    for step in steps:
        prefix = f"step{step['index']}_"
        got: dict[str, Any] = {}
        for stream, data in read.items():
            if stream.startswith(prefix):
                got.update(data)
        out.append({**step, "read": got})
    return {"steps": out}


@task(name="analyse", cache_policy=NO_CACHE)
def analyse(
    store: Store, exp_id: int, run_uid: str, spec: Campaign, instrument: str
) -> float | None:
    """Turn the stored raw readings of a run into the objective; store it atomically.

    Returns:
        The objective, or ``None`` when analysis failed (recorded in the store).
    """
    if store.experiment(exp_id).state == ExperimentState.RUNNING.value:
        store.transition(exp_id, ExperimentState.MEASURED)
    exp = store.experiment(exp_id)
    fid = spec.fidelity(exp.fidelity)
    _, route, bindings = spec.bound_route(fid)
    try:
        value, raw, method = route.analyse(
            [r.data for r in store.readings(run_uid)],
            values_of(bindings, exp.params, spec),
            spec.objective,
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
    """The proposals table of the UI: the read model's rows, the columns a person scans."""
    from lab.readmodel import experiment_rows, load_campaign_data, param_key

    data = load_campaign_data(store, campaign_id)
    names = [p.name for p in data.spec.parameters]
    rows = []
    for r in experiment_rows(data):
        row: dict[str, Any] = {"#": r["number"], "state": r["state"], "fidelity": r["fidelity"]}
        for n in names:
            v = r.get(param_key(n))
            row[n] = round(v, 3) if isinstance(v, float) else v
        obj = r["objective"]
        row["objective"] = None if obj is None else round(obj, 3)
        row["why"] = r["why"]
        row["failure"] = r["failure_reason"]
        rows.append(row)
    return rows


def publish_artifacts(store: Store, campaign_id: int, spec: Campaign, budget: float) -> None:
    """Progress, proposals (with why each was chosen) and best-so-far artifacts for the UI."""
    key = f"campaign-{campaign_id}"
    create_table_artifact(
        key=f"{key}-proposals",
        table=_experiment_rows(store, campaign_id),
        description=f"{spec.name}: every experiment, its result and why it was chosen",
    )
    from lab.readmodel import load_campaign_data

    curve = load_campaign_data(store, campaign_id).best_curve()
    if curve:
        lines = [
            f"# {spec.name}: best {spec.objective.name} so far at '{spec.target.name}'",
            "",
            f"| cumulative cost | best {spec.objective.name} ({spec.objective.unit}) | experiment |",
            "|---:|---:|---:|",
            *(f"| {c:g} | {b:.4g} | {n} |" for c, b, n in curve),
        ]
        create_markdown_artifact(
            key=f"{key}-best", markdown="\n".join(lines), description="convergence"
        )
    from lab.report import report_artifacts

    create_markdown_artifact(
        key=f"{key}-summary",
        markdown=report_artifacts(store, campaign_id)["summary"],
        description=f"{spec.name}: summary",
    )


@flow(name="experiment", flow_run_name="experiment-{exp_id}", validate_parameters=False)
def experiment_flow(db_url: str, exp_id: int, spec: Campaign, workcell_path: str) -> float | None:
    """One experiment as a subflow: make the sample and measure it on the bench, then analyse."""
    store = store_for(db_url)
    run_uid = run_experiment(store, exp_id, spec, workcell_path)
    if not run_uid:
        return None
    instrument = instrument_of(spec, store.experiment(exp_id).fidelity, workcell_path)
    return analyse(store, exp_id, run_uid, spec, instrument)


def instrument_of(spec: Campaign, fidelity: str, workcell_path: str) -> str:
    """Name of the device that measures ``fidelity`` (its route's name when unresolved)."""
    fid = spec.fidelity(fidelity)
    try:
        return measuring_device(spec, fid, load_workcell(workcell_path))
    except LabError:
        return fid.route


_STORES: dict[str, Store] = {}


def store_for(db_url: str) -> Store:
    """One store (engine and connection pool) per database URL in this process."""
    if db_url not in _STORES:
        _STORES[db_url] = Store(db_url)
    return _STORES[db_url]


def reconcile(store: Store, campaign_id: int, spec: Campaign, workcell_path: str) -> list[str]:
    """Bring experiments caught mid-run by a crash to a consistent state
    (:func:`lab.control.reconcile`, analysing completed measurement runs here).

    Returns:
        One line per experiment changed.
    """
    from lab.routes import ROUTES

    measuring = {ROUTES.get(f.route).plan_name for f in spec.fidelities}

    def analysed(exp_id: int, run_uid: str) -> Any:
        fidelity = store.experiment(exp_id).fidelity
        instrument = instrument_of(spec, fidelity, workcell_path)
        return analyse.fn(store, exp_id, run_uid, spec, instrument)

    return control.reconcile(store, campaign_id, measuring, analysed)


class BatchDecision(RunInput):
    """The approval form shown in the Prefect UI for a batch of proposals.

    Attributes:
        approve: Run the batch (``False`` abandons it; the optimiser proposes again).
        notes: Why; kept in the audit log.
        edits: Experiment number (as shown in the proposals table) to the parameters to use
            instead, e.g. ``{"3": {"precursor_volume_ul": 10.0}}``; checked against the design
            space and the safety limits.
    """

    approve: bool = True
    notes: str = ""
    edits: dict[str, dict[str, Any]] = Field(default_factory=dict)


def _server_mode() -> bool:
    """True when flows report to a Prefect server that people can reach (not temporary)."""
    import os

    return bool(os.environ.get("PREFECT_API_URL"))


def _apply_decision(
    store: Store, campaign_id: int, exp_ids: list[int], spec: Campaign, decision: BatchDecision
) -> None:
    control.apply_decision(
        store,
        campaign_id,
        exp_ids,
        spec,
        control.Decision(decision.approve, decision.notes, decision.edits, by="Prefect UI"),
    )


def _wait_for_approval(
    store: Store, campaign_id: int, exp_ids: list[int], poll_s: float, spec: Campaign
) -> bool:
    """Block until the batch is decided.

    With a Prefect server the flow run pauses with an approval form (:class:`BatchDecision`);
    ``lab campaign approve ID`` approves in the database and resumes the paused run. Without
    a server (temporary mode) the database is polled for ``lab campaign approve ID``.

    Returns:
        ``False`` if the campaign was paused or aborted while waiting.
    """
    store.set_campaign_status(campaign_id, "awaiting_approval")
    _emit(kind="awaiting_approval", campaign_id=campaign_id, experiments=exp_ids)
    if _server_mode():
        rows = [r for r in _experiment_rows(store, campaign_id) if r["state"] == "proposed"]
        create_table_artifact(
            key=f"campaign-{campaign_id}-batch",
            table=rows,
            description="Batch waiting for approval: resume the run with the form to decide",
        )
        decision = pause_flow_run(
            wait_for_input=BatchDecision,
            timeout=7 * 24 * 3600,
            poll_interval=max(1, int(poll_s)),
            key=f"batch-{'-'.join(map(str, exp_ids))}",
        )
        _apply_decision(store, campaign_id, exp_ids, spec, decision or BatchDecision())
        store.set_campaign_status(campaign_id, "running")
        return True
    while True:
        status = store.campaign(campaign_id).status
        if status in ("pause_requested", "abort_requested"):
            return False
        states = {store.experiment(i).state for i in exp_ids}
        if ExperimentState.PROPOSED.value not in states:
            store.set_campaign_status(campaign_id, "running")
            return True
        time.sleep(poll_s)


@flow(name="interface-campaign", validate_parameters=False)
def campaign_flow(
    campaign_path: str | None,
    workcell_path: str,
    db_url: str,
    seed: int = 0,
    budget: float | None = None,
    campaign_id: int | None = None,
    approval_poll_s: float = 1.0,
    workcell_label: str | None = None,
) -> int:
    """Run (or resume) a closed-loop campaign until its budget is spent.

    Args:
        campaign_path: Campaign YAML file (``None`` when resuming: the stored spec is used).
        workcell_path: Workcell YAML file (real instruments or the simulated workcell).
        db_url: Database URL.
        seed: Optimiser seed (a resumed campaign keeps its own).
        budget: Budget in cost units (default: the campaign's).
        campaign_id: Resume this campaign instead of creating one.
        approval_poll_s: Polling period while a batch waits for approval, s.
        workcell_label: What to record as the campaign's workcell (default: the path);
            ``simulated`` for an in-process simulated workcell that a resume starts again.

    Returns:
        The campaign id.
    """
    configure_threads()
    from lab.instruments import check_kinds, check_limits

    workcell = load_workcell(workcell_path)
    workcell.lease_ttl()  # fail early with a clear message
    check_kinds(workcell, workcell_path)
    if campaign_id is None:
        if campaign_path is None:
            raise LabError("give a campaign file, or a campaign id to resume")
        spec = load_campaign(campaign_path)
        check_campaign(spec, workcell, workcell_path)  # before anything is written
        check_limits(spec, workcell, workcell_path)
    store = store_for(db_url)
    if campaign_id is None:
        campaign_id, budget = control.create(
            store, spec, seed, budget, workcell_label or workcell_path
        )
    else:
        row = control.resumable(store, campaign_id)
        spec = parse_campaign(row.spec, f"campaign {campaign_id}")
        check_campaign(spec, workcell, workcell_path)
        seed, budget = row.seed, float(budget if budget is not None else row.budget)
    store.set_campaign_status(campaign_id, "running")
    store.set_flow_run(campaign_id, str(prefect_runtime.flow_run.id))
    _emit(kind="start", campaign_id=campaign_id, budget=budget, db=store.url)
    for note in reconcile(store, campaign_id, spec, workcell_path):
        _emit(kind="reconciled", note=note)
    progress_id = create_progress_artifact(
        progress=min(100.0, 100.0 * store.spent(campaign_id) / budget),
        key=f"campaign-{campaign_id}-progress",
        description=f"{spec.name}: budget spent (%)",
    )
    cost = spec.target.cost
    final = "completed"
    while final == "completed":
        status = store.campaign(campaign_id).status
        if status == "pause_requested":
            final = "paused"
            break
        if status == "abort_requested":
            control.abandon_waiting(store, campaign_id, "campaign aborted")
            final = "aborted"
            break
        waiting = store.experiments(
            campaign_id, [ExperimentState.PROPOSED, ExperimentState.APPROVED]
        )
        if not waiting:
            room = budget - store.committed(campaign_id)
            if room + 1e-9 < cost:
                break
            n = max(1, min(spec.batch_size, int((room + 1e-9) // cost)))
            propose(store, campaign_id, spec, seed, n)
            waiting = store.experiments(campaign_id, [ExperimentState.PROPOSED])
        for e in waiting:
            _emit(kind="proposed", seq=e.seq, params=e.params, strategy=e.strategy)
        pending = [int(e.id) for e in waiting if e.state == ExperimentState.PROPOSED.value]
        if spec.approval == "batch" and pending:
            if not _wait_for_approval(store, campaign_id, pending, approval_poll_s, spec):
                continue
            waiting = store.experiments(campaign_id, [ExperimentState.APPROVED])
            if not waiting:
                continue  # the batch was rejected: propose again
        for e in waiting:
            if store.campaign(campaign_id).status in ("pause_requested", "abort_requested"):
                break
            # The parent flow's heartbeat covers its subflows; a heartbeat thread per subflow
            # costs ~1 s at exit (joined), more than the experiment itself on a fast bench.
            with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
                value = experiment_flow(db_url, int(e.id), spec, workcell_path)
            done = store.experiment(int(e.id))
            spent = store.spent(campaign_id)
            _emit(
                kind="finished",
                seq=done.seq,
                state=done.state,
                value=value,
                reason=done.failure_reason,
                spent=spent,
                budget=budget,
            )
            update_progress_artifact(progress_id, progress=min(100.0, 100.0 * spent / budget))
            streak = failure_streak(store, campaign_id)
            if streak >= spec.max_consecutive_failures:
                final = "failed"
                reason = (
                    f"{streak} consecutive experiments failed or were abandoned (guard rail "
                    f"max_consecutive_failures={spec.max_consecutive_failures}); last: "
                    f"{done.failure_reason}"
                )
                store.audit("guard_rail", campaign_id, detail=reason[:2000])
                _emit(kind="guard_rail", campaign_id=campaign_id, reason=reason)
                break
        publish_artifacts(store, campaign_id, spec, budget)
    publish_artifacts(store, campaign_id, spec, budget)
    store.set_campaign_status(campaign_id, final)
    _emit(kind="done", campaign_id=campaign_id, status=final)
    return campaign_id


def failure_streak(store: Store, campaign_id: int) -> int:
    """Number of the campaign's latest finished experiments in a row that failed or were
    abandoned (0 when the latest finished one was analysed). Proposals a person rejected or
    an abort dropped are not failures and do not count."""
    streak = 0
    done = {ExperimentState.ANALYSED.value, ExperimentState.FAILED.value}
    done.add(ExperimentState.ABANDONED.value)
    for e in reversed(store.experiments(campaign_id)):
        reason = e.failure_reason or ""
        if e.state not in done or reason.startswith(("rejected", "campaign aborted")):
            continue
        if e.state == ExperimentState.ANALYSED.value:
            break
        streak += 1
    return streak


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
