"""The one read model of a campaign: experiments, best-so-far, why each was chosen.

Console tables, Prefect artifacts, reports and exports all read a campaign through
:class:`CampaignData` (loaded once from the store) and :func:`experiment_rows`, so the same
experiment shows the same values, the same best-so-far curve (at the target fidelity only)
and the same "why chosen" text everywhere. Nothing here changes a campaign.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.spec import Campaign, parse_campaign
from lab.store import Experiment, ExperimentState, Measurement, Store

__all__ = [
    "FIXED_COLUMNS",
    "TAIL_COLUMNS",
    "CampaignData",
    "experiment_rows",
    "iso",
    "load_campaign_data",
    "param_columns",
    "param_key",
    "utc",
    "why_chosen",
]

_STRATEGIES = {
    "initial_design": "space-filling initial design (scrambled Sobol), before any model",
    "recommendation": "the model's recommendation",
    "qlognei": "maximised noisy expected improvement (qLogNEI) of the surrogate",
    "qlogei": "maximised expected improvement (qLogEI) of the surrogate",
    "mf_gibbon": "multi-fidelity GIBBON: information about the optimum per unit cost",
    "mf_mes": "multi-fidelity max-value entropy search per unit cost",
    "mf_kg": "multi-fidelity knowledge gradient per unit cost",
}


@dataclass
class CampaignData:
    """Everything a report needs, read once from the store.

    Attributes:
        campaign_id: The campaign id.
        name: Campaign name.
        status: Campaign status (``running``, ``completed``, ...).
        budget: Budget in cost units.
        seed: Optimiser seed.
        spec: The validated campaign.
        experiments: Experiments in proposal order.
        measurements: Measurement of each analysed experiment, by experiment id.
        database: The database URL (password hidden).
    """

    campaign_id: int
    name: str
    status: str
    budget: float
    seed: int
    spec: Campaign
    experiments: list[Experiment]
    measurements: dict[int, Measurement]
    database: str
    cumulative_cost: dict[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        running = 0.0
        for e in self.started():
            running += float(e.cost)
            self.cumulative_cost[int(e.id)] = running  # type: ignore[arg-type]

    def started(self) -> list[Experiment]:
        """Experiments that reached the bench (their cost is spent), in the order they started."""
        return sorted(
            (e for e in self.experiments if e.started_at is not None),
            key=lambda e: (utc(e.started_at), e.seq),
        )

    @property
    def spent(self) -> float:
        """Budget spent so far."""
        return sum(float(e.cost) for e in self.experiments if e.started_at is not None)

    @property
    def target(self) -> str:
        """Name of the target fidelity."""
        return self.spec.target.name

    def better(self, a: float, b: float) -> bool:
        """Whether objective ``a`` beats ``b`` in the campaign's direction."""
        return a > b if self.spec.objective.direction == "maximize" else a < b

    def analysed(self, fidelity: str | None = None) -> list[Experiment]:
        """Analysed experiments with a finite objective (optionally of one fidelity)."""
        return [
            e
            for e in self.experiments
            if e.state == ExperimentState.ANALYSED.value
            and e.objective is not None
            and math.isfinite(e.objective)
            and (fidelity is None or e.fidelity == fidelity)
        ]

    def best(self) -> Experiment | None:
        """The best analysed experiment at the target fidelity."""
        best: Experiment | None = None
        for e in self.analysed(self.target):
            if best is None or self.better(float(e.objective), float(best.objective)):  # type: ignore[arg-type]
                best = e
        return best

    def best_curve(self) -> list[tuple[float, float, int]]:
        """``(cumulative cost, best target objective so far, experiment number)`` after each
        started experiment, from the first analysed target-fidelity result on."""
        out: list[tuple[float, float, int]] = []
        best: Experiment | None = None
        for e in self.started():
            ok = (
                e.state == ExperimentState.ANALYSED.value
                and e.fidelity == self.target
                and e.objective is not None
                and math.isfinite(e.objective)
            )
            if ok and (best is None or self.better(float(e.objective), float(best.objective))):  # type: ignore[arg-type]
                best = e
            if best is not None:
                out.append((self.cumulative_cost[int(e.id)], float(best.objective), best.seq + 1))  # type: ignore[arg-type]
        return out


def utc(t: datetime | None) -> datetime:
    if t is None:
        return datetime.max.replace(tzinfo=UTC)
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def iso(t: datetime | None) -> str | None:
    return None if t is None else utc(t).isoformat()


def _open_store(db_url: str) -> Store:
    """A store for an existing database (never creates an empty SQLite file)."""
    if db_url.startswith("sqlite:///") and db_url != "sqlite:///:memory:":
        path = Path(db_url.removeprefix("sqlite:///")).expanduser()
        if not path.is_file():
            raise LabError(f"no database at {path}; check --db (or $LAB_DATABASE_URL)")
    return Store(db_url)


def load_campaign_data(db_url: str | Store, campaign_id: int) -> CampaignData:
    """Read a campaign, its experiments and measurements.

    Args:
        db_url: Database URL, or an open :class:`~lab.store.Store` (e.g. the flow's own).
        campaign_id: Campaign id.

    Raises:
        LabError: If the database or the campaign does not exist, or its spec is invalid.
    """
    own = not isinstance(db_url, Store)
    store = _open_store(db_url) if own else db_url
    try:
        row = store.campaign(campaign_id)
        spec = parse_campaign(row.spec, f"campaign {campaign_id}")
        exps = store.experiments(campaign_id)
        meas = {int(m.experiment_id): m for m in store.measurements(campaign_id)}
        return CampaignData(
            campaign_id=campaign_id,
            name=row.name,
            status=row.status,
            budget=float(row.budget),
            seed=int(row.seed),
            spec=spec,
            experiments=exps,
            measurements=meas,
            database=store.url,
        )
    finally:
        if own:
            store.engine.dispose()


def why_chosen(e: Experiment) -> str:
    """One line saying why an experiment was proposed."""
    base = e.strategy or "unknown"
    text = _STRATEGIES.get(base, f"acquisition '{base}'")
    if e.acquisition_value is not None:
        text += f"; acquisition value {e.acquisition_value:.4g}"
    if e.model_version and e.model_version != "initial_design":
        text += f"; model {e.model_version}"
    if e.edited_by:
        text += f"; parameters edited by {e.edited_by} before it ran"
    return text


def param_columns(data: CampaignData) -> list[str]:
    names = [p.name for p in data.spec.parameters]
    extra = sorted({k for e in data.experiments for k in e.params} - set(names))
    return names + extra


FIXED_COLUMNS = [
    "campaign_id",
    "campaign",
    "experiment_id",
    "number",
    "key",
    "state",
    "fidelity",
    "cost",
    "cumulative_cost",
]
TAIL_COLUMNS = [
    "objective",
    "objective_name",
    "unit",
    "direction",
    "method",
    "instrument",
    "strategy",
    "acquisition_value",
    "model_version",
    "why",
    "failure_reason",
    "created_at",
    "started_at",
    "updated_at",
]


def param_key(name: str) -> str:
    return f"param_{name}" if name in FIXED_COLUMNS or name in TAIL_COLUMNS else name


def experiment_rows(data: CampaignData) -> list[dict[str, Any]]:
    """One flat dict per experiment (the export's rows), in proposal order.

    ``number`` is the 1-based experiment number shown by the console and the report;
    parameters are columns named as in the campaign file (prefixed ``param_`` only if a name
    clashes with a fixed column); times are ISO 8601 strings in UTC.
    """
    o = data.spec.objective
    params = param_columns(data)
    rows = []
    for e in data.experiments:
        m = data.measurements.get(int(e.id))  # type: ignore[arg-type]
        row: dict[str, Any] = {
            "campaign_id": data.campaign_id,
            "campaign": data.name,
            "experiment_id": int(e.id),  # type: ignore[arg-type]
            "number": e.seq + 1,
            "key": e.idempotency_key,
            "state": e.state,
            "fidelity": e.fidelity,
            "cost": float(e.cost),
            "cumulative_cost": data.cumulative_cost.get(int(e.id)),  # type: ignore[arg-type]
        }
        for p in params:
            row[param_key(p)] = e.params.get(p)
        row.update(
            {
                "objective": e.objective,
                "objective_name": o.name,
                "unit": m.unit if m is not None else o.unit,
                "direction": o.direction,
                "method": m.method if m is not None else None,
                "instrument": m.instrument if m is not None else None,
                "strategy": e.strategy,
                "acquisition_value": e.acquisition_value,
                "model_version": e.model_version,
                "why": why_chosen(e),
                "failure_reason": e.failure_reason,
                "created_at": iso(e.created_at),
                "started_at": iso(e.started_at),
                "updated_at": iso(e.updated_at),
            }
        )
        rows.append(row)
    return rows
