"""The database: the source of truth for every campaign's state.

SQLModel tables (campaigns, experiments, runs, readings, measurements, audit events) on SQLite
(WAL) by default or PostgreSQL by URL. Every experiment has an idempotency key and a state
machine ``proposed -> running -> measured -> analysed`` (or ``failed`` / ``abandoned``).
"""

from lab.store._documents import DocumentWriter
from lab.store._engine import default_database_url, make_engine
from lab.store._leases import LeaseTimeout, hold_leases
from lab.store._migrate import SchemaMismatch
from lab.store._models import (
    CAMPAIGN_TRANSITIONS,
    AuditEvent,
    CampaignRow,
    CampaignState,
    Experiment,
    ExperimentState,
    InstrumentLease,
    Measurement,
    ModelSnapshot,
    Reading,
    RunRow,
    Sample,
)
from lab.store._store import Store

__all__ = [
    "CAMPAIGN_TRANSITIONS",
    "AuditEvent",
    "CampaignRow",
    "CampaignState",
    "DocumentWriter",
    "Experiment",
    "ExperimentState",
    "InstrumentLease",
    "LeaseTimeout",
    "Measurement",
    "ModelSnapshot",
    "Reading",
    "RunRow",
    "Sample",
    "SchemaMismatch",
    "Store",
    "default_database_url",
    "hold_leases",
    "make_engine",
]
