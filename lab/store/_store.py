"""Transactional operations on the tables; each public method is one transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from lab.errors import LabError
from lab.store._engine import make_engine
from lab.store._models import (
    ALLOWED_TRANSITIONS,
    CAMPAIGN_TRANSITIONS,
    FINAL_STATES,
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
    utcnow,
)


class StoreError(LabError):
    """An illegal state change or a missing row."""


class Store:
    """Campaign state in a SQL database.

    Args:
        engine_or_url: An engine, or a URL for :func:`make_engine`.
    """

    def __init__(self, engine_or_url: Engine | str | None = None) -> None:
        self.engine = (
            engine_or_url if isinstance(engine_or_url, Engine) else make_engine(engine_or_url)
        )

    @property
    def url(self) -> str:
        """The database URL (password hidden)."""
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def session(self):  # type: ignore[no-untyped-def]
        """A session that commits on success and rolls back on any error."""
        with Session(self.engine, expire_on_commit=False) as s:
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise

    # ------------------------------------------------------------ campaigns
    def create_campaign(
        self, name: str, spec: dict[str, Any], seed: int, budget: float, workcell: str | None = None
    ) -> int:
        """Insert a campaign and return its id."""
        with self.session() as s:
            row = CampaignRow(name=name, spec=spec, seed=seed, budget=budget, workcell=workcell)
            s.add(row)
            s.flush()
            s.add(AuditEvent(campaign_id=row.id, kind="campaign_created", detail={"seed": seed}))
            return int(row.id)  # type: ignore[arg-type]

    def campaign(self, campaign_id: int) -> CampaignRow:
        """Fetch a campaign.

        Raises:
            StoreError: If there is no such campaign.
        """
        with self.session() as s:
            row = s.get(CampaignRow, campaign_id)
            if row is None:
                raise StoreError(
                    f"no campaign with id {campaign_id} in {self.url}; see `lab campaign list`"
                )
            return row

    def set_flow_run(self, campaign_id: int, flow_run_id: str | None) -> None:
        """Record the Prefect flow run that is driving a campaign now."""
        with self.session() as s:
            row = s.get(CampaignRow, campaign_id)
            if row is None:
                raise StoreError(f"no campaign with id {campaign_id}")
            row.flow_run_id = flow_run_id
            s.add(row)

    def update_params(
        self, exp_id: int, params: dict[str, Any], reason: str, by: str = "a person"
    ) -> None:
        """Edit the parameters of a proposal that has not reached the bench yet.

        Raises:
            StoreError: If the experiment is past ``proposed``/``approved``.
        """
        with self.session() as s:
            exp = s.get(Experiment, exp_id)
            if exp is None:
                raise StoreError(f"no experiment with id {exp_id}")
            if exp.state not in (ExperimentState.PROPOSED.value, ExperimentState.APPROVED.value):
                raise StoreError(
                    f"experiment {exp_id} is {exp.state}; only proposals can be edited"
                )
            s.add(
                AuditEvent(
                    campaign_id=exp.campaign_id,
                    experiment_id=exp_id,
                    kind="edited",
                    detail={"before": exp.params, "after": params, "reason": reason},
                )
            )
            exp.params = params
            exp.edited_by = by
            exp.updated_at = utcnow()
            s.add(exp)

    def set_workcell(self, campaign_id: int, workcell: str) -> None:
        """Record which workcell a campaign runs on (``simulated`` for in-process simulators)."""
        with self.session() as s:
            row = s.get(CampaignRow, campaign_id)
            if row is None:
                raise StoreError(f"no campaign with id {campaign_id}")
            row.workcell = workcell
            s.add(row)

    def set_campaign_status(self, campaign_id: int, status: str | CampaignState) -> None:
        """Move a campaign to another :class:`CampaignState`.

        Raises:
            StoreError: For an unknown state or a change :data:`CAMPAIGN_TRANSITIONS` forbids.
        """
        try:
            new = CampaignState(status)
        except ValueError:
            raise StoreError(f"unknown campaign state {status!r}") from None
        with self.session() as s:
            row = s.get(CampaignRow, campaign_id)
            if row is None:
                raise StoreError(f"no campaign with id {campaign_id}")
            old = CampaignState(row.status)
            if new not in CAMPAIGN_TRANSITIONS[old] and new != old:
                raise StoreError(
                    f"campaign {campaign_id} is {old.value}; it cannot become {new.value}"
                )
            row.status = new.value
            status = new.value
            s.add(row)
            s.add(
                AuditEvent(
                    campaign_id=campaign_id, kind="campaign_status", detail={"status": status}
                )
            )

    # ------------------------------------------------------------ experiments
    def add_experiments(
        self, campaign_id: int, proposals: Iterable[dict[str, Any]]
    ) -> list[Experiment]:
        """Insert proposals as experiments, idempotently by their ``key``.

        Args:
            campaign_id: Owning campaign.
            proposals: Dicts with ``key, params, fidelity, cost, model_version,
                acquisition_value, strategy``.

        Returns:
            The experiment rows, existing ones returned unchanged.
        """
        out = []
        with self.session() as s:
            seq = len(
                s.exec(select(Experiment.id).where(Experiment.campaign_id == campaign_id)).all()
            )
            for p in proposals:
                existing = s.exec(
                    select(Experiment).where(Experiment.idempotency_key == p["key"])
                ).first()
                if existing is not None:
                    out.append(existing)
                    continue
                exp = Experiment(
                    campaign_id=campaign_id,
                    seq=seq,
                    idempotency_key=p["key"],
                    params=p["params"],
                    fidelity=p["fidelity"],
                    cost=p["cost"],
                    model_version=p["model_version"],
                    acquisition_value=p.get("acquisition_value"),
                    strategy=p["strategy"],
                )
                seq += 1
                s.add(exp)
                s.flush()
                s.add(
                    AuditEvent(
                        campaign_id=campaign_id,
                        experiment_id=exp.id,
                        kind="proposed",
                        detail={"strategy": exp.strategy, "model_version": exp.model_version},
                    )
                )
                out.append(exp)
        return out

    def _transition(
        self, s: Session, exp_id: int, new: ExperimentState, **fields: Any
    ) -> Experiment:
        exp = s.get(Experiment, exp_id)
        if exp is None:
            raise StoreError(f"no experiment with id {exp_id}")
        cur = ExperimentState(exp.state)
        if new not in ALLOWED_TRANSITIONS[cur]:
            raise StoreError(f"experiment {exp_id} cannot go from {cur.value} to {new.value}")
        exp.state = new.value
        exp.updated_at = utcnow()
        if new is ExperimentState.RUNNING and exp.started_at is None:
            exp.started_at = exp.updated_at
        for k, v in fields.items():
            setattr(exp, k, v)
        s.add(exp)
        s.add(
            AuditEvent(
                campaign_id=exp.campaign_id,
                experiment_id=exp_id,
                kind=f"state:{new.value}",
                detail={k: v for k, v in fields.items() if isinstance(v, str | int | float)},
            )
        )
        return exp

    def transition(self, exp_id: int, new: ExperimentState, **fields: Any) -> Experiment:
        """Move an experiment along its state machine (one transaction).

        Raises:
            StoreError: If the transition is not allowed.
        """
        with self.session() as s:
            return self._transition(s, exp_id, new, **fields)

    def fail(self, exp_id: int, reason: str) -> Experiment:
        """Mark an experiment failed with a reason (allowed from running or measured)."""
        return self.transition(exp_id, ExperimentState.FAILED, failure_reason=reason[:2000])

    def record_measurement(
        self,
        exp_id: int,
        *,
        name: str,
        value: float,
        unit: str,
        fidelity: str,
        instrument: str,
        method: str,
        run_uid: str | None,
        raw: dict[str, Any],
    ) -> Measurement:
        """Store the derived objective and mark the experiment analysed, atomically."""
        with self.session() as s:
            exp = s.get(Experiment, exp_id)
            if exp is None:
                raise StoreError(f"no experiment with id {exp_id}")
            if exp.state == ExperimentState.RUNNING.value:
                self._transition(s, exp_id, ExperimentState.MEASURED)
            m = Measurement(
                experiment_id=exp_id,
                run_uid=run_uid,
                name=name,
                value=value,
                unit=unit,
                fidelity=fidelity,
                instrument=instrument,
                method=method,
                raw=raw,
            )
            s.add(m)
            self._transition(s, exp_id, ExperimentState.ANALYSED, objective=value)
            return m

    def experiment(self, exp_id: int) -> Experiment:
        """Fetch one experiment.

        Raises:
            StoreError: If there is no such experiment.
        """
        with self.session() as s:
            exp = s.get(Experiment, exp_id)
            if exp is None:
                raise StoreError(f"no experiment with id {exp_id}")
            return exp

    def experiments(
        self, campaign_id: int, states: Sequence[ExperimentState] | None = None
    ) -> list[Experiment]:
        """Experiments of a campaign in proposal order, optionally filtered by state."""
        with self.session() as s:
            q = select(Experiment).where(Experiment.campaign_id == campaign_id)
            if states:
                q = q.where(col(Experiment.state).in_([st.value for st in states]))
            return list(s.exec(q.order_by(Experiment.seq)).all())

    def spent(self, campaign_id: int) -> float:
        """Budget spent: the cost of every experiment that reached the bench (was started)."""
        return sum(e.cost for e in self.experiments(campaign_id) if e.started_at is not None)

    def committed(self, campaign_id: int) -> float:
        """Budget spent plus the cost of experiments proposed or approved but not started."""
        waiting = (ExperimentState.PROPOSED.value, ExperimentState.APPROVED.value)
        return sum(
            e.cost
            for e in self.experiments(campaign_id)
            if e.started_at is not None or e.state in waiting
        )

    def unfinished(self, campaign_id: int) -> list[Experiment]:
        """Experiments not yet in a final state."""
        return [
            e for e in self.experiments(campaign_id) if ExperimentState(e.state) not in FINAL_STATES
        ]

    def campaigns(self) -> list[CampaignRow]:
        """Every campaign, newest first."""
        with self.session() as s:
            return list(s.exec(select(CampaignRow).order_by(col(CampaignRow.id).desc())).all())

    def add_sample(
        self,
        exp_id: int,
        label: str,
        synthesis_run_uid: str | None,
        realised: dict[str, Any] | None = None,
    ) -> None:
        """Record the physical sample made for an experiment and what was done to it."""
        with self.session() as s:
            s.add(
                Sample(
                    experiment_id=exp_id,
                    label=label,
                    synthesis_run_uid=synthesis_run_uid,
                    realised=realised,
                )
            )

    def samples(self, exp_id: int) -> list[Sample]:
        """Samples made for an experiment, oldest first."""
        with self.session() as s:
            return list(
                s.exec(select(Sample).where(Sample.experiment_id == exp_id).order_by(Sample.id))
            )

    def add_model_snapshot(
        self, campaign_id: int, version: str, n_observations: int, detail: dict[str, Any]
    ) -> None:
        """Record a model version (idempotent by version)."""
        with self.session() as s:
            q = select(ModelSnapshot).where(
                ModelSnapshot.campaign_id == campaign_id, ModelSnapshot.version == version
            )
            if s.exec(q).first() is None:
                s.add(
                    ModelSnapshot(
                        campaign_id=campaign_id,
                        version=version,
                        n_observations=n_observations,
                        detail=detail,
                    )
                )

    # ------------------------------------------------------------ instrument leases
    def acquire_leases(self, resources: Sequence[str], holder: str, ttl_s: float) -> bool:
        """Take every lease in ``resources`` for ``holder``, or none of them.

        A lease held by someone else is taken over only once it has expired. Each step is a
        conditional UPDATE or a primary-key INSERT, so two holders racing on SQLite or
        PostgreSQL cannot both win.

        Returns:
            ``True`` if all leases are now held by ``holder``.
        """
        now = utcnow()
        expires = now + timedelta(seconds=ttl_s)
        try:
            with self.session() as s:
                for res in sorted(set(resources)):
                    took = s.execute(
                        update(InstrumentLease)
                        .where(
                            InstrumentLease.resource == res,
                            or_(InstrumentLease.holder == holder, InstrumentLease.expires_at < now),
                        )
                        .values(
                            holder=holder, acquired_at=now, heartbeat_at=now, expires_at=expires
                        )
                    )
                    if took.rowcount == 0:
                        s.add(
                            InstrumentLease(
                                resource=res,
                                holder=holder,
                                acquired_at=now,
                                heartbeat_at=now,
                                expires_at=expires,
                            )
                        )
                        s.flush()
                s.add(
                    AuditEvent(
                        kind="lease_acquired",
                        detail={"holder": holder, "resources": sorted(resources)},
                    )
                )
            return True
        except IntegrityError:
            return False

    def renew_leases(self, resources: Sequence[str], holder: str, ttl_s: float) -> bool:
        """Heartbeat: extend the holder's leases. Returns ``False`` if any was lost."""
        now = utcnow()
        with self.session() as s:
            res = s.execute(
                update(InstrumentLease)
                .where(
                    col(InstrumentLease.resource).in_(list(resources)),
                    InstrumentLease.holder == holder,
                )
                .values(heartbeat_at=now, expires_at=now + timedelta(seconds=ttl_s))
            )
            return res.rowcount == len(set(resources))

    def release_leases(self, resources: Sequence[str], holder: str) -> None:
        """Give the holder's leases back."""
        with self.session() as s:
            s.execute(
                delete(InstrumentLease).where(
                    col(InstrumentLease.resource).in_(list(resources)),
                    InstrumentLease.holder == holder,
                )
            )
            s.add(
                AuditEvent(
                    kind="lease_released", detail={"holder": holder, "resources": sorted(resources)}
                )
            )

    def leases(self) -> list[InstrumentLease]:
        """Every current lease row."""
        with self.session() as s:
            return list(s.exec(select(InstrumentLease)).all())

    # ------------------------------------------------------------ bluesky runs
    def add_run(self, uid: str, experiment_id: int | None, start_doc: dict[str, Any]) -> None:
        """Record a run start (idempotent by uid)."""
        with self.session() as s:
            if s.exec(select(RunRow).where(RunRow.uid == uid)).first() is None:
                s.add(
                    RunRow(
                        uid=uid,
                        experiment_id=experiment_id,
                        plan_name=start_doc.get("plan_name"),
                        start_doc=start_doc,
                    )
                )

    def add_reading(
        self, run_uid: str, stream: str, seq_num: int, data: dict, units: dict, time: float
    ) -> None:
        """Record one event's readings."""
        with self.session() as s:
            s.add(
                Reading(
                    run_uid=run_uid,
                    stream=stream,
                    seq_num=seq_num,
                    data=data,
                    units=units,
                    time=time,
                )
            )

    def close_run(self, uid: str, exit_status: str, reason: str | None) -> None:
        """Record a run stop."""
        with self.session() as s:
            run = s.exec(select(RunRow).where(RunRow.uid == uid)).first()
            if run is None:
                raise StoreError(f"stop document for unknown run {uid}")
            run.exit_status = exit_status
            run.reason = reason
            run.stopped_at = utcnow()
            s.add(run)

    def run(self, uid: str) -> RunRow | None:
        """The run with Bluesky uid ``uid``, or ``None``."""
        with self.session() as s:
            return s.exec(select(RunRow).where(RunRow.uid == uid)).first()

    def runs(self, experiment_id: int) -> list[RunRow]:
        """Runs of an experiment in start order."""
        with self.session() as s:
            return list(
                s.exec(
                    select(RunRow).where(RunRow.experiment_id == experiment_id).order_by(RunRow.id)
                ).all()
            )

    def run_readings(self, run_uid: str) -> list[Reading]:
        """Readings of a run in every stream, in the order they were recorded."""
        with self.session() as s:
            return list(
                s.exec(select(Reading).where(Reading.run_uid == run_uid).order_by(Reading.id))
            )

    def readings(self, run_uid: str, stream: str = "primary") -> list[Reading]:
        """Readings of a run in event order."""
        with self.session() as s:
            return list(
                s.exec(
                    select(Reading)
                    .where(Reading.run_uid == run_uid, Reading.stream == stream)
                    .order_by(Reading.seq_num)
                ).all()
            )

    def measurements(self, campaign_id: int) -> list[Measurement]:
        """Measurements of a campaign's experiments."""
        with self.session() as s:
            return list(
                s.exec(
                    select(Measurement)
                    .join(Experiment, Experiment.id == Measurement.experiment_id)
                    .where(Experiment.campaign_id == campaign_id)
                    .order_by(Measurement.id)
                ).all()
            )

    def audit_events(
        self, campaign_id: int | None = None, kinds: Iterable[str] | None = None
    ) -> list[AuditEvent]:
        """Audit events in the order they were written.

        Args:
            campaign_id: Only this campaign's events (all events if None).
            kinds: Only events of these kinds (all kinds if None).
        """
        query = select(AuditEvent)
        if campaign_id is not None:
            query = query.where(AuditEvent.campaign_id == campaign_id)
        if kinds is not None:
            query = query.where(col(AuditEvent.kind).in_(list(kinds)))
        with self.session() as s:
            return list(s.exec(query.order_by(col(AuditEvent.id))).all())

    def audit(
        self,
        kind: str,
        campaign_id: int | None = None,
        experiment_id: int | None = None,
        **detail: Any,
    ) -> None:
        """Append an audit event."""
        with self.session() as s:
            s.add(
                AuditEvent(
                    campaign_id=campaign_id, experiment_id=experiment_id, kind=kind, detail=detail
                )
            )
