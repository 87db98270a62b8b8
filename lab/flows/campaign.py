"""The campaign flow: propose, approve, run experiments, publish artifacts, until the budget is
spent or the guard rail stops it; resume and reconcile after a crash."""

from __future__ import annotations

import time
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
from lab.errors import LabError
from lab.flows._events import _emit, store_for
from lab.flows.experiment import analyse, experiment_flow, instrument_of
from lab.optimize import Optimizer, Proposal
from lab.spec import Campaign, load_campaign, parse_campaign
from lab.store import Experiment, ExperimentState, Store
from lab.workcell import check_campaign, load_workcell


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
