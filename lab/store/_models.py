"""SQLModel tables."""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Timezone-aware current time (UTC)."""
    return datetime.now(UTC)


class ExperimentState(enum.StrEnum):
    """Life cycle of one experiment."""

    PROPOSED = "proposed"
    APPROVED = "approved"
    RUNNING = "running"
    MEASURED = "measured"
    ANALYSED = "analysed"
    FAILED = "failed"
    ABANDONED = "abandoned"


FINAL_STATES = frozenset(
    {ExperimentState.ANALYSED, ExperimentState.FAILED, ExperimentState.ABANDONED}
)

ALLOWED_TRANSITIONS: dict[ExperimentState, frozenset[ExperimentState]] = {
    ExperimentState.PROPOSED: frozenset(
        {ExperimentState.APPROVED, ExperimentState.RUNNING, ExperimentState.ABANDONED}
    ),
    ExperimentState.APPROVED: frozenset({ExperimentState.RUNNING, ExperimentState.ABANDONED}),
    ExperimentState.RUNNING: frozenset(
        {ExperimentState.MEASURED, ExperimentState.FAILED, ExperimentState.ABANDONED}
    ),
    ExperimentState.MEASURED: frozenset({ExperimentState.ANALYSED, ExperimentState.FAILED}),
    ExperimentState.ANALYSED: frozenset(),
    ExperimentState.FAILED: frozenset(),
    ExperimentState.ABANDONED: frozenset(),
}


class CampaignState(enum.StrEnum):
    """Lifecycle of a campaign.

    ``created → running ⇄ awaiting_approval``; a person asks to pause or abort
    (``pause_requested``/``abort_requested``), which the flow honours between experiments
    (``paused``/``aborted``); a flow ends ``completed`` (budget spent) or ``failed`` (the
    guard rail: too many consecutive failed experiments). ``paused`` and ``failed`` resume
    to ``running``; ``completed`` and ``aborted`` are final.
    """

    CREATED = "created"
    RUNNING = "running"
    AWAITING_APPROVAL = "awaiting_approval"
    PAUSE_REQUESTED = "pause_requested"
    PAUSED = "paused"
    ABORT_REQUESTED = "abort_requested"
    ABORTED = "aborted"
    COMPLETED = "completed"
    FAILED = "failed"


_CS = CampaignState
CAMPAIGN_TRANSITIONS: dict[CampaignState, frozenset[CampaignState]] = {
    _CS.CREATED: frozenset({_CS.RUNNING, _CS.PAUSE_REQUESTED, _CS.ABORT_REQUESTED, _CS.ABORTED}),
    _CS.RUNNING: frozenset(set(_CS) - {_CS.CREATED}),
    _CS.AWAITING_APPROVAL: frozenset(set(_CS) - {_CS.CREATED}),
    _CS.PAUSE_REQUESTED: frozenset(
        {
            _CS.PAUSED,
            _CS.RUNNING,
            _CS.ABORT_REQUESTED,
            _CS.ABORTED,
            _CS.COMPLETED,
            _CS.FAILED,
            _CS.PAUSE_REQUESTED,
            _CS.AWAITING_APPROVAL,
        }
    ),
    _CS.PAUSED: frozenset({_CS.RUNNING, _CS.ABORT_REQUESTED, _CS.ABORTED, _CS.PAUSED}),
    _CS.ABORT_REQUESTED: frozenset({_CS.ABORTED, _CS.ABORT_REQUESTED}),
    _CS.ABORTED: frozenset(),
    _CS.COMPLETED: frozenset(),
    _CS.FAILED: frozenset({_CS.RUNNING, _CS.ABORTED, _CS.FAILED}),
}
"""Allowed campaign state changes (:meth:`lab.store.Store.set_campaign_status` checks them)."""


class CampaignRow(SQLModel, table=True):
    """One campaign: its validated spec and seed."""

    __tablename__ = "campaign"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True)
    spec: dict = Field(sa_column=Column(JSON, nullable=False))
    seed: int = 0
    budget: float
    workcell: str | None = None
    flow_run_id: str | None = None
    status: str = Field(default="created", index=True)
    created_at: datetime = Field(default_factory=utcnow)


class Experiment(SQLModel, table=True):
    """One proposed experiment and why it was chosen."""

    __tablename__ = "experiment"
    __table_args__ = (UniqueConstraint("campaign_id", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    seq: int
    idempotency_key: str = Field(unique=True, index=True)
    params: dict = Field(sa_column=Column(JSON, nullable=False))
    fidelity: str
    cost: float
    model_version: str
    acquisition_value: float | None = None
    strategy: str
    state: str = Field(default=ExperimentState.PROPOSED.value, index=True)
    failure_reason: str | None = None
    objective: float | None = None
    edited_by: str | None = None
    """Who changed the proposal's parameters before it ran (``None``: as proposed)."""
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)


class RunRow(SQLModel, table=True):
    """One Bluesky run (start/stop documents) belonging to an experiment."""

    __tablename__ = "run"

    id: int | None = Field(default=None, primary_key=True)
    uid: str = Field(unique=True, index=True)
    experiment_id: int | None = Field(default=None, foreign_key="experiment.id", index=True)
    plan_name: str | None = None
    start_doc: dict = Field(sa_column=Column(JSON, nullable=False))
    exit_status: str | None = None
    reason: str | None = None
    started_at: datetime = Field(default_factory=utcnow)
    stopped_at: datetime | None = None


class Reading(SQLModel, table=True):
    """One Bluesky event: the raw readings of one trigger-and-read."""

    __tablename__ = "reading"
    __table_args__ = (UniqueConstraint("run_uid", "stream", "seq_num"),)

    id: int | None = Field(default=None, primary_key=True)
    run_uid: str = Field(foreign_key="run.uid", index=True)
    stream: str = "primary"
    seq_num: int
    data: dict = Field(sa_column=Column(JSON, nullable=False))
    units: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    time: float


class Measurement(SQLModel, table=True):
    """The measured (derived) objective of one experiment, with provenance."""

    __tablename__ = "measurement"

    id: int | None = Field(default=None, primary_key=True)
    experiment_id: int = Field(foreign_key="experiment.id", unique=True, index=True)
    run_uid: str | None = Field(default=None, foreign_key="run.uid")
    name: str
    value: float
    unit: str
    fidelity: str
    instrument: str
    method: str
    raw: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class Sample(SQLModel, table=True):
    """A physical sample made for an experiment (one per synthesis attempt)."""

    __tablename__ = "sample"

    id: int | None = Field(default=None, primary_key=True)
    experiment_id: int = Field(foreign_key="experiment.id", index=True)
    label: str
    synthesis_run_uid: str | None = Field(default=None, foreign_key="run.uid")
    realised: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    """What the instruments report was done, per step: ``{"steps": [{"step", "device",
    ...read-backs}]}`` (e.g. the deposited material and thickness)."""
    created_at: datetime = Field(default_factory=utcnow)


class ModelSnapshot(SQLModel, table=True):
    """A surrogate model version that proposed experiments (its training-data hash)."""

    __tablename__ = "model_snapshot"
    __table_args__ = (UniqueConstraint("campaign_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    version: str
    n_observations: int
    detail: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class InstrumentLease(SQLModel, table=True):
    """Exclusive use of one instrument (by its transport URL) with heartbeat and expiry."""

    __tablename__ = "instrument_lease"

    resource: str = Field(primary_key=True)
    holder: str
    acquired_at: datetime = Field(default_factory=utcnow)
    heartbeat_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime


class AuditEvent(SQLModel, table=True):
    """Anything a person or the system did that changes a campaign."""

    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id", index=True)
    experiment_id: int | None = Field(default=None, foreign_key="experiment.id")
    kind: str
    detail: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    at: datetime = Field(default_factory=utcnow)
