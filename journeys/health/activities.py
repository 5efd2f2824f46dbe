"""Activities of partner health: evaluate (every journey's signals, the score, the change
recorded with its contributions) and record an early-warning episode."""

from __future__ import annotations

import asyncio
import functools
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import Select, bindparam, func, not_, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.webhooks import wake_stream, write_event
from core.journey import HealthSignalsReader
from domain.journeys import StepResult
from domain.policy import VersionedPolicy
from domain.webhooks import EventInput
from journeys.health.dark import last_active
from journeys.health.domain import (
    JOURNEY,
    SWEEP,
    SWEPT,
    AlertInput,
    Contribution,
    EvaluateInput,
    Evaluation,
    HealthActivity,
    HealthBand,
    HealthState,
    ReengageAction,
    ReengagementInput,
    SweepResult,
    SweepTick,
    advance,
    changes,
    health_changed,
    score,
    take,
    warns,
)
from journeys.health.models import HealthEpisode, HealthReengagement, HealthScore
from store import repo
from store.db import table_of
from store.models import Partner
from store.models.integrations import WebhookEvent

SETTLE_SECONDS = 60.0  # an event's transaction is over by then: a seq not written by then never will be
SCAN_PER_PARTNER = 4  # events the sweep reads per partner of its batch (of every type)
SWEEP_CONCURRENCY = 8  # partners the sweep scores at once (a session each)


async def latest(session: AsyncSession, partner_id: uuid.UUID, but: str) -> HealthScore | None:
    """The partner's latest score but the one written under the key `but` (a retried evaluation
    compares with the row before its own, as its first attempt did)."""
    return await session.scalar(
        select(HealthScore)
        .where(HealthScore.partner_id == partner_id, HealthScore.idempotency_key != but)
        .order_by(HealthScore.id.desc())
        .limit(1)
    )


async def _claim(
    session: AsyncSession, key: str, pid: uuid.UUID, action: str, detail: dict, state: str | None = None
) -> bool:
    """The audit row of a step of `health-{pid}`, once per key (False: the step was taken), with
    the journey's new `state` in the same statement when given."""
    return await repo.claim_step(
        session,
        key=key,
        actor=f"journey:{JOURNEY}-{pid}",
        action=action,
        partner_id=pid,
        journey=JOURNEY,
        detail=detail,
        state=(str(pid), state) if state is not None else None,
    )


@functools.cache
def _partner(with_policy: bool = False) -> Select:
    """A partner's id (`partner_id`), if it exists; `with_policy`, and the policy version its
    journey pinned (`repo.with_pinned_policy`, in the same round trip)."""
    partners = table_of(Partner)
    stmt = select(partners.c.id).where(partners.c.id == bindparam("partner_id", type_=partners.c.id.type))
    return repo.with_pinned_policy(stmt) if with_policy else stmt


async def assess(
    signals: tuple[HealthSignalsReader, ...],
    session: AsyncSession,
    pid: uuid.UUID,
    key: str,
    snap: VersionedPolicy | repo.PinnedPolicy,
    *,
    with_activity: bool = False,
) -> Evaluation | None:
    """Score the partner now under `snap` and record a row when the score or its reasons changed
    (once per `key`: a retry after the commit writes nothing more); None: no such partner. The
    entity workflow's `evaluate` (`snap` the version its journey pinned, read with the partner; a
    version not stored is the newest) and the sweep (journeys/health/sweep.py) both score with it."""
    now = datetime.now(UTC)
    pinned = snap if isinstance(snap, repo.PinnedPolicy) else None
    params = {"partner_id": pid, **(pinned.params if pinned else {})}
    row = (await session.execute(_partner(pinned is not None), params)).first()
    if row is None:
        return None
    if pinned is not None:
        snap = await pinned.or_newest(session, row)
    assert isinstance(snap, VersionedPolicy)
    policy = snap.policy
    found = [s for read in signals for s in await read(session, pid, now, policy)]
    result = score(found, policy.health)
    before = await latest(session, pid, key)
    since = now - policy.days(policy.health.drop_days)
    peak = await session.scalar(
        select(func.max(HealthScore.score)).where(
            HealthScore.partner_id == pid,
            HealthScore.at >= since,
            HealthScore.idempotency_key != key,
        )
    )
    if before is not None and before.at < since:  # the score held since before the window
        peak = max(peak or before.score, before.score)
    old = [Contribution.model_validate(c) for c in before.contributions] if before else []
    moved = changes(old, result.contributions)
    changed = before is None or before.score != result.score or bool(moved)
    active = await last_active(session, pid) if with_activity else None
    if changed:  # once per key: a retry after the commit writes nothing more
        await session.execute(
            insert(HealthScore)
            .values(
                idempotency_key=key,
                partner_id=pid,
                at=now,
                score=result.score,
                band=result.band.value,
                contributions=[c.model_dump() for c in result.contributions],
                changes=[c.model_dump() for c in moved],
                policy_version=snap.version,
            )
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
        )
    return Evaluation(
        score=result.score,
        band=result.band,
        previous_band=HealthBand(before.band) if before else None,
        peak=peak,
        changed=changed,
        contributions=result.contributions,
        changes=moved,
        last_active=active,
    )


class SweepActivities:
    """The health sweep's one activity (journeys/health/sweep.py): the events published since its
    cursor of the types that move health (`types`, every journey's `health_events`), their
    partners scored with `assess`, a changed score recorded and published as
    `partner.health_changed`, and `health-{partner}` told when the change may open or close an
    early-warning episode (the alert stays the entity workflow's, once per episode)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        signals: tuple[HealthSignalsReader, ...] = (),
        types: frozenset[str] = frozenset(),
    ) -> None:
        self.sessionmaker = sessionmaker
        self.signals = signals
        self.types = types

    @activity.defn(name=HealthActivity.SWEEP)
    async def sweep(self, inp: SweepTick) -> SweepResult:
        """One pass, idempotent: a batch run again scores its partners again under the same keys
        (`health-sweep:<partner>:<seq>`) and writes nothing new."""
        async with self.sessionmaker() as session:
            snap = await repo.current_policy(session)
            h = snap.policy.health
            after = inp.after
            if after is None:  # the first pass: from the newest event on
                after = await session.scalar(select(func.coalesce(func.max(WebhookEvent.seq), 0)))
                assert after is not None
            skip = [WebhookEvent.seq.between(a, b) for a, b in inp.seen]
            scan = h.sweep_batch * SCAN_PER_PARTNER
            rows = (
                await session.execute(
                    select(WebhookEvent.seq, WebhookEvent.type, WebhookEvent.partner_id)
                    .where(WebhookEvent.seq > after, *([not_(or_(*skip))] if skip else []))
                    .order_by(WebhookEvent.seq)
                    .limit(scan)
                )
            ).all()
            settled = await session.scalar(
                select(func.max(WebhookEvent.seq)).where(
                    WebhookEvent.seq > after, WebhookEvent.created_at < func.now() - timedelta(seconds=SETTLE_SECONDS)
                )
            )
        on = h.watch and h.sweep_seconds > 0
        batch = take(((r.seq, r.type, str(r.partner_id)) for r in rows), self.types, h.sweep_batch, len(rows) < scan)
        limit = asyncio.Semaphore(SWEEP_CONCURRENCY)

        async def one(pid: str, seq: int) -> tuple[str, Evaluation | None]:
            async with limit, self.sessionmaker() as session, session.begin():
                key = f"{SWEEP}:{pid}:{seq}"
                ev = await assess(self.signals, session, uuid.UUID(pid), key, snap)
                if ev is not None and ev.changed:  # published with the row (once per key)
                    changed = health_changed(pid, ev).model_dump(mode="json")
                    msg = EventInput(
                        idempotency_key=f"{key}:changed",
                        type="partner.health_changed",
                        partner_id=pid,
                        occurred_at=datetime.now(UTC),
                        data=changed,
                    )
                    _, subscriptions = await write_event(session, msg)
                    woken[pid] = subscriptions
                return pid, ev

        woken: dict[str, list[uuid.UUID]] = {}
        done = await asyncio.gather(*(one(pid, seq) for pid, seq in batch.partners.items())) if on else []
        changed = {pid: ev for pid, ev in done if ev is not None and ev.changed}
        signalled = 0
        if changed:
            async with self.sessionmaker() as session:
                open_ = {
                    str(p)
                    for p in await session.scalars(
                        select(HealthEpisode.partner_id).where(
                            HealthEpisode.partner_id.in_([uuid.UUID(p) for p in changed]),
                            HealthEpisode.closed_at.is_(None),
                        )
                    )
                }
            info, client = activity.info(), activity.client()
            for pid, subscriptions in woken.items():
                for sub_id in subscriptions:  # also on a retry: waking a stream twice is harmless
                    await wake_stream(client, info.task_queue, sub_id, pid)
            for pid, ev in changed.items():
                if warns(ev, pid in open_, h):
                    signalled += await tell(client, pid, ev)
        if not on:
            return SweepResult(after=after, seen=list(inp.seen))
        taken = set(batch.processed)
        new, seen = advance(after, inp.seen, batch.processed, batch.first_unprocessed, settled or after)
        return SweepResult(
            after=new,
            seen=seen,
            every_seconds=h.sweep_seconds,
            more=batch.first_unprocessed is not None,
            events=sum(1 for r in rows if r.type in self.types and r.seq in taken),
            partners=len(batch.partners),
            changed=len(changed),
            signalled=signalled,
        )


async def tell(client: Client, pid: str, ev: Evaluation) -> int:
    """Signal `health-{pid}` the sweep's evaluation (1); a partner whose health workflow is not
    running has nothing to warn (0)."""
    try:
        await client.get_workflow_handle(f"{JOURNEY}-{pid}").signal(SWEPT, ev)
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        return 0
    return 1


class HealthActivities(SweepActivities):
    """`signals`: every journey's reader of its health signals; `types`: the event types that move
    them (both from the registry)."""

    @activity.defn(name=HealthActivity.EVALUATE)
    async def evaluate(self, inp: EvaluateInput) -> Evaluation:
        """Score the partner now; record a row when the score or its reasons changed (once per key)."""
        pid = uuid.UUID(inp.partner_id)
        pinned = repo.PinnedPolicy.of_version(inp.policy_version)
        async with self.sessionmaker() as session, session.begin():
            ev = await assess(self.signals, session, pid, inp.idempotency_key, pinned, with_activity=inp.activity)
        if ev is None:
            raise ApplicationError(f"partner {pid} not found", type="PartnerNotFound", non_retryable=True)
        return ev

    @activity.defn(name=HealthActivity.RECORD_ALERT)
    async def record_alert(self, inp: AlertInput) -> StepResult:
        pid = uuid.UUID(inp.partner_id)
        async with self.sessionmaker() as session, session.begin():
            action = "health.episode_opened" if inp.opened else "health.episode_closed"
            state = HealthState.alerting if inp.opened else HealthState.watching
            if not await _claim(
                session, inp.idempotency_key, pid, action, {"episode": inp.episode, "reason": inp.reason}, state.value
            ):
                return StepResult(applied=False)
            if inp.opened:
                await session.execute(
                    insert(HealthEpisode)
                    .values(partner_id=pid, episode=inp.episode, reason=inp.reason, opened_at=inp.at)
                    .on_conflict_do_nothing()
                )
            else:
                await session.execute(
                    update(HealthEpisode)
                    .where(HealthEpisode.partner_id == pid, HealthEpisode.episode == inp.episode)
                    .values(closed_at=inp.at)
                )
        return StepResult(applied=True)

    @activity.defn(name=HealthActivity.RECORD_REENGAGEMENT)
    async def record_reengagement(self, inp: ReengagementInput) -> StepResult:
        """A step of a dark partner's re-engagement, once per key: the spell opened, an email
        went (with its next step), ops was told, or the spell closed."""
        pid = uuid.UUID(inp.partner_id)
        async with self.sessionmaker() as session, session.begin():
            detail = {"spell": inp.spell, "emails": inp.emails, "step": inp.step}
            if not await _claim(session, inp.idempotency_key, pid, f"health.reengagement_{inp.action.value}", detail):
                return StepResult(applied=False)
            row: dict[str, object] = {"emails": inp.emails}
            if inp.step:
                row["last_step"] = inp.step
            if inp.action == ReengageAction.escalate:
                row["escalated_at"] = inp.at
            elif inp.action == ReengageAction.close:
                row["closed_at"] = inp.at
            await session.execute(
                insert(HealthReengagement)
                .values(partner_id=pid, spell=inp.spell, since=inp.since, opened_at=inp.at, **row)
                .on_conflict_do_update(index_elements=["partner_id", "spell"], set_=row)
            )
        return StepResult(applied=True)
