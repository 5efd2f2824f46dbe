"""Activities of partner health: evaluate (every journey's signals, the score, the change
recorded with its contributions) and record an early-warning episode."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.journey import HealthSignalsReader
from domain.journeys import StepResult
from journeys.health.dark import last_active
from journeys.health.domain import (
    JOURNEY,
    AlertInput,
    Contribution,
    EvaluateInput,
    Evaluation,
    HealthActivity,
    HealthBand,
    HealthState,
    ReengageAction,
    ReengagementInput,
    changes,
    score,
)
from journeys.health.models import HealthEpisode, HealthReengagement, HealthScore
from store import repo
from store.models import Partner


async def latest(session: AsyncSession, partner_id: uuid.UUID, but: str) -> HealthScore | None:
    """The partner's latest score but the one written under the key `but` (a retried evaluation
    compares with the row before its own, as its first attempt did)."""
    return await session.scalar(
        select(HealthScore)
        .where(HealthScore.partner_id == partner_id, HealthScore.idempotency_key != but)
        .order_by(HealthScore.id.desc())
        .limit(1)
    )


async def _claim(session: AsyncSession, key: str, pid: uuid.UUID, action: str, detail: dict) -> bool:
    """The audit row of a step of `health-{pid}`, once per key (False: the step was taken)."""
    return await repo.claim_step(
        session,
        key=key,
        actor=f"journey:{JOURNEY}-{pid}",
        action=action,
        partner_id=pid,
        journey=JOURNEY,
        detail=detail,
    )


class HealthActivities:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], signals: tuple[HealthSignalsReader, ...] = ()
    ) -> None:
        """`signals`: every journey's reader of its health signals (from the registry)."""
        self.sessionmaker = sessionmaker
        self.signals = signals

    @activity.defn(name=HealthActivity.EVALUATE)
    async def evaluate(self, inp: EvaluateInput) -> Evaluation:
        """Score the partner now; record a row when the score or its reasons changed (once per key)."""
        pid = uuid.UUID(inp.partner_id)
        now = datetime.now(UTC)
        async with self.sessionmaker() as session, session.begin():
            partner = await session.get(Partner, pid)
            if partner is None:
                raise ApplicationError(f"partner {pid} not found", type="PartnerNotFound", non_retryable=True)
            snap = await repo.policy_version(session, inp.policy_version) or await repo.current_policy(session)
            policy = snap.policy
            found = [s for read in self.signals for s in await read(session, pid, now, policy)]
            result = score(found, policy.health)
            before = await latest(session, pid, inp.idempotency_key)
            since = now - policy.days(policy.health.drop_days)
            peak = await session.scalar(
                select(func.max(HealthScore.score)).where(
                    HealthScore.partner_id == pid,
                    HealthScore.at >= since,
                    HealthScore.idempotency_key != inp.idempotency_key,
                )
            )
            if before is not None and before.at < since:  # the score held since before the window
                peak = max(peak or before.score, before.score)
            old = [Contribution.model_validate(c) for c in before.contributions] if before else []
            moved = changes(old, result.contributions)
            changed = before is None or before.score != result.score or bool(moved)
            active = await last_active(session, pid) if inp.activity else None
            if changed:  # once per key: a retry after the commit writes nothing more
                await session.execute(
                    insert(HealthScore)
                    .values(
                        idempotency_key=inp.idempotency_key,
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

    @activity.defn(name=HealthActivity.RECORD_ALERT)
    async def record_alert(self, inp: AlertInput) -> StepResult:
        pid = uuid.UUID(inp.partner_id)
        async with self.sessionmaker() as session, session.begin():
            action = "health.episode_opened" if inp.opened else "health.episode_closed"
            if not await _claim(
                session, inp.idempotency_key, pid, action, {"episode": inp.episode, "reason": inp.reason}
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
            state = HealthState.alerting if inp.opened else HealthState.watching
            await repo.set_journey_state(session, pid, JOURNEY, inp.partner_id, state.value)
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
