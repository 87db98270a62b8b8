"""One experiment: make the sample with the campaign's process, measure it with its fidelity's
route (driver faults retried as Prefect task retries), analyse the readings into the objective."""

from __future__ import annotations

import contextlib
import threading
import traceback
from collections.abc import Callable
from typing import Any

from prefect import flow, task
from prefect import runtime as prefect_runtime
from prefect.cache_policies import NO_CACHE

from lab.errors import AnalysisError, LabError
from lab.flows._events import store_for
from lab.spec import Campaign
from lab.store import DocumentWriter, ExperimentState, Store, hold_leases
from lab.workcell import check_campaign, load_workcell, measuring_device


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
