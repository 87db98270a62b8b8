"""Campaign control: the one place that changes a campaign's state on a person's behalf.

The console (``lab campaign pause|resume|abort|approve``), the campaign flow (start, resume,
reconcile after a crash, the approval form in the Prefect UI) and the form's decision all
call these functions, so a campaign moves through :class:`~lab.store.CampaignState` the same
way whoever asks. Everything here is database work on a :class:`~lab.store.Store`; nothing
imports Prefect (the console resumes a paused flow run itself after :func:`approve`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from lab.errors import LabError
from lab.spec import Campaign
from lab.store import CampaignState, ExperimentState, Store

__all__ = [
    "ACTIVE",
    "Decision",
    "abandon_waiting",
    "apply_decision",
    "approve",
    "create",
    "reconcile",
    "request_abort",
    "request_pause",
    "resumable",
]

ACTIVE = (CampaignState.CREATED, CampaignState.RUNNING, CampaignState.AWAITING_APPROVAL)
"""States in which a flow is (or is about to be) running the campaign."""

_WAITING = [ExperimentState.PROPOSED, ExperimentState.APPROVED]


def create(
    store: Store, spec: Campaign, seed: int, budget: float | None, workcell: str
) -> tuple[int, float]:
    """Record a new campaign (state ``created``).

    Returns:
        ``(campaign id, budget in force)``.
    """
    spent = float(budget if budget is not None else spec.budget)
    cid = store.create_campaign(spec.name, spec.model_dump(mode="json"), seed, spent, workcell)
    return cid, spent


def resumable(store: Store, campaign_id: int) -> Any:
    """The campaign's row, if it can be run again.

    Raises:
        LabError: If the campaign is ``completed`` or ``aborted``.
    """
    row = store.campaign(campaign_id)
    if row.status in (CampaignState.COMPLETED, CampaignState.ABORTED):
        raise LabError(f"campaign {campaign_id} is {row.status}; nothing to resume")
    return row


def request_pause(store: Store, campaign_id: int) -> None:
    """Ask the running flow to stop after the current experiment.

    Raises:
        LabError: If the campaign is not running (or about to).
    """
    current = store.campaign(campaign_id).status
    if current not in ACTIVE:
        raise LabError(f"campaign {campaign_id} is {current}; cannot pause it")
    store.set_campaign_status(campaign_id, CampaignState.PAUSE_REQUESTED)


def request_abort(store: Store, campaign_id: int) -> str:
    """Stop a campaign for good: a running flow stops after the current experiment; a
    campaign no flow runs (paused, failed, created) is aborted at once.

    Returns:
        The state it was in.

    Raises:
        LabError: If it is already ``completed`` or ``aborted``.
    """
    current = store.campaign(campaign_id).status
    allowed = (*ACTIVE, CampaignState.PAUSED, CampaignState.PAUSE_REQUESTED, CampaignState.FAILED)
    if current not in allowed:
        raise LabError(f"campaign {campaign_id} is {current}; cannot abort it")
    store.set_campaign_status(campaign_id, CampaignState.ABORT_REQUESTED)
    if current in (CampaignState.PAUSED, CampaignState.FAILED, CampaignState.CREATED):
        abandon_waiting(store, campaign_id, "campaign aborted")
        store.set_campaign_status(campaign_id, CampaignState.ABORTED)
    return current


def abandon_waiting(store: Store, campaign_id: int, reason: str) -> int:
    """Abandon every proposal not yet on the bench; returns how many."""
    waiting = store.experiments(campaign_id, _WAITING)
    for e in waiting:
        store.transition(int(e.id), ExperimentState.ABANDONED, failure_reason=reason[:2000])
    return len(waiting)


def approve(store: Store, campaign_id: int, by: str, notes: str = "") -> int:
    """Approve the batch of proposals waiting for approval; returns how many.

    Raises:
        LabError: If no proposal is waiting.
    """
    store.campaign(campaign_id)
    waiting = store.experiments(campaign_id, [ExperimentState.PROPOSED])
    if not waiting:
        raise LabError(f"campaign {campaign_id} has no proposals waiting for approval")
    for e in waiting:
        store.transition(int(e.id), ExperimentState.APPROVED)
        store.audit("approved", campaign_id, int(e.id), by=by, notes=notes)
    return len(waiting)


class Decision:
    """A person's decision on a batch (what the UI form returns).

    Attributes:
        approve: Run the batch (``False`` abandons it; the optimiser proposes again).
        notes: Why; kept in the audit log.
        edits: Experiment number to the parameters to use instead.
        by: Who decided.
    """

    def __init__(
        self,
        approve: bool = True,
        notes: str = "",
        edits: Mapping[str, Mapping[str, Any]] | None = None,
        by: str = "Prefect UI",
    ) -> None:
        self.approve = approve
        self.notes = notes
        self.edits = dict(edits or {})
        self.by = by


def apply_decision(
    store: Store, campaign_id: int, exp_ids: Iterable[int], spec: Campaign, decision: Decision
) -> None:
    """Apply a decision on a batch: edits (checked against the design space and the safety
    limits; a refused edit is recorded and the proposal kept), then approve or reject."""
    exp_ids = list(exp_ids)
    by_number = {str(store.experiment(i).seq + 1): i for i in exp_ids}
    if decision.approve:
        for number, new in decision.edits.items():
            if number not in by_number:
                store.audit(
                    "edit_refused", campaign_id, detail=f"no experiment {number} in the batch"
                )
                continue
            exp = store.experiment(by_number[number])
            params = {**exp.params, **new}
            try:
                spec.check_params(params)
            except LabError as exc:
                store.audit("edit_refused", campaign_id, by_number[number], detail=str(exc))
                continue
            store.update_params(
                by_number[number], params, decision.notes or "edited in the UI", by=decision.by
            )
    for i in exp_ids:
        if store.experiment(i).state != ExperimentState.PROPOSED.value:
            continue
        if decision.approve:
            store.transition(i, ExperimentState.APPROVED)
            store.audit("approved", campaign_id, i, by=decision.by, notes=decision.notes)
        else:
            store.transition(
                i, ExperimentState.ABANDONED, failure_reason=f"rejected: {decision.notes}"[:2000]
            )


def reconcile(
    store: Store,
    campaign_id: int,
    measuring_plans: set[str],
    analyse: Callable[[int, str], Any],
) -> list[str]:
    """Bring experiments caught mid-run by a crash to a consistent state.

    * ``running`` with a completed measurement run (a run whose ``plan_name`` is one of
      ``measuring_plans``): the data is all in the store, so it is analysed (nothing is
      measured twice);
    * ``running`` without one: the sample's state is unknown, so the experiment is marked
      ``abandoned`` with the reason (its cost stays spent; it is never counted twice);
    * ``measured``: analysed.

    Args:
        store: The store.
        campaign_id: The campaign.
        measuring_plans: ``plan_name`` of the routes' measurement runs.
        analyse: ``analyse(experiment id, run uid)`` turns a stored run into the objective.

    Returns:
        One line per experiment changed (also recorded as ``reconciled`` audit events).
    """
    notes = []
    for e in store.unfinished(campaign_id):
        if e.state == ExperimentState.RUNNING.value:
            runs = [r for r in store.runs(int(e.id)) if r.plan_name in measuring_plans]
            done = [r for r in runs if r.exit_status == "success"]
            if done:
                analyse(int(e.id), done[-1].uid)
                notes.append(f"experiment {e.seq + 1}: measurement complete, analysed")
            else:
                store.transition(
                    int(e.id),
                    ExperimentState.ABANDONED,
                    failure_reason="orchestrator stopped mid-run; sample state unknown",
                )
                notes.append(f"experiment {e.seq + 1}: abandoned (stopped mid-run)")
        elif e.state == ExperimentState.MEASURED.value:
            runs = [r for r in store.runs(int(e.id)) if r.exit_status == "success"]
            if runs:
                analyse(int(e.id), runs[-1].uid)
                notes.append(f"experiment {e.seq + 1}: analysed")
    for note in notes:
        store.audit("reconciled", campaign_id, detail=note)
    return notes
