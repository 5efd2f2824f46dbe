"""Activities of the deal registration journey: state and stage changes, approval requests
with signed one-click links."""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.common import CommonActivities, approver_rows, queue_rows, shared_outbox
from domain.journeys import NotifyResult, SendResult, StepResult
from journeys.deal.domain import (
    JOURNEY,
    ApprovalRequestInput,
    DealActivity,
    DealStageInput,
    DealState,
    DealStateInput,
    DealStateNotice,
    Decision,
)
from journeys.deal.links import DECISION, DealLinkClaims
from journeys.deal.models import Deal
from journeys.mdf import contract as mdf
from store import repo
from store.db import autocommit, table_of
from store.models import Partner

DEALS = table_of(Deal)  # the deal's UPDATEs take SQLAlchemy's Core path, not the ORM's bulk one


def _not_found(deal_id: str) -> ApplicationError:
    return ApplicationError(f"deal {deal_id} not found", type="DealNotFound", non_retryable=True)


def _alone(inp: DealStateInput) -> bool:
    """A state change written in one statement: neither a closing stage change nor a win."""
    return inp.stage_change is None and inp.state != DealState.won


def _state_detail(inp: DealStateInput) -> dict:
    """The audit detail of a state change."""
    return {
        "deal_id": inp.deal_id,
        "reason": inp.reason,
        "protected_until": inp.protected_until.isoformat() if inp.protected_until else None,
    }


class DealActivities:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        link_secret: str,
        public_base_url: str,
        ops_email: str,
        outbox: CommonActivities | None = None,
    ):
        """`outbox`: the shared activities, which queue and send the email of `record_state_and_notify`."""
        self.sessionmaker = sessionmaker
        self.outbox = outbox
        self.link_secret = link_secret
        self.public_base_url = public_base_url.rstrip("/")
        self.ops_email = ops_email

    async def _deal(self, session: AsyncSession, deal_id: str) -> Deal:
        deal = await session.get(Deal, uuid.UUID(deal_id), with_for_update=True)
        if deal is None:
            raise _not_found(deal_id)
        return deal

    async def _deal_and_partner(self, session: AsyncSession, deal_id: str) -> tuple[Deal, Partner]:
        """The deal, locked, and its partner in one read."""
        read = select(Deal, Partner).join(Partner, Partner.id == Deal.partner_id).where(Deal.id == uuid.UUID(deal_id))
        row = (await session.execute(read.with_for_update(of=Deal))).first()
        if row is None:
            raise _not_found(deal_id)
        return row[0], row[1]

    @activity.defn(name=DealActivity.RECORD_STATE)
    async def record_state(self, inp: DealStateInput) -> StepResult:
        """A state change, once per key. A decision, an extension or an expiry: the claim, the read
        model and the deal's UPDATE in one autocommitted statement (`repo.record_state`; the
        decision's columns only on the first decision). A closing stage change (its audit row
        names the stage it leaves) or a win (accrued to the partner's fund): the deal read and
        locked first, every write in one transaction."""
        if _alone(inp):
            async with self.sessionmaker() as session:
                await autocommit(session)
                return StepResult(applied=await self._record(session, inp))
        async with self.sessionmaker() as session, session.begin():
            return StepResult(applied=await self._record(session, inp))

    @activity.defn(name=DealActivity.RECORD_STATE_AND_NOTIFY)
    async def record_state_and_notify(self, inp: DealStateNotice) -> SendResult:
        """`record_state` and the email that tells the new state (`inp.notice`, with the events it
        carries): the state recorded and the email queued in one transaction, then sent
        (`CommonActivities.notify_after`; kit generation 12). Each half is idempotent on its own key:
        a retry records nothing twice and sends only what is still pending. A name of its own: a
        worker that does not know it never records a state without its email."""
        return await shared_outbox(self.outbox).notify_after(
            inp.notice, lambda session: self._record(session, inp.record)
        )

    async def _record(self, session: AsyncSession, inp: DealStateInput) -> bool:
        """`record_state` in the caller's session: a change written in one statement
        (`_record_alone`), else a closing stage change or a win in the caller's transaction."""
        if _alone(inp):
            return await self._record_alone(session, inp)
        deal, partner = await self._deal_and_partner(session, inp.deal_id)
        # A closing stage change: its audit row here, the stage set by the state's UPDATE below.
        stage = inp.stage_change
        if stage is not None and not await self._record_stage(session, deal, stage, write=False):
            stage = None
        if not await repo.claim_step(
            session,
            key=inp.idempotency_key,
            actor=inp.by,
            action=f"deal.{inp.state.value}",
            partner_id=deal.partner_id,
            journey=JOURNEY,
            detail=_state_detail(inp),
            state=(inp.deal_id, inp.state.value),
        ):
            if stage is not None:
                await session.execute(update(DEALS).where(DEALS.c.id == deal.id).values(stage=stage.stage.value))
            return False
        values: dict = {"state": inp.state.value}
        if stage is not None:
            values["stage"] = stage.stage.value
        if inp.state in (DealState.approved, DealState.rejected) and deal.decided_by is None:
            values |= {"decided_by": inp.by, "decided_at": inp.at, "decision_reason": inp.reason}
        if inp.protected_until is not None:
            values["protected_until"] = inp.protected_until
        if inp.extensions_used is not None:
            values["extensions_used"] = inp.extensions_used
        await session.execute(update(DEALS).where(DEALS.c.id == deal.id).values(**values))
        if inp.state == DealState.won:  # closed-won revenue accrues market development funds
            current = await repo.current_policy(session)
            await mdf.accrue_for_deal(
                session,
                partner,
                deal.id,
                deal.amount_minor,
                deal.currency,
                current.policy,
                policy_version=current.version,
                task_queue=activity.info().task_queue,
            )
        return True

    async def _record_alone(self, session: AsyncSession, inp: DealStateInput) -> bool:
        """`record_state` of a decision, an extension or an expiry: one statement, autocommitted by
        the caller's session or in its transaction."""
        values: dict = {"state": inp.state.value}
        if inp.protected_until is not None:
            values["protected_until"] = inp.protected_until
        if inp.extensions_used is not None:
            values["extensions_used"] = inp.extensions_used
        once = None
        if inp.state in (DealState.approved, DealState.rejected):
            once = {"decided_by": inp.by, "decided_at": inp.at, "decision_reason": inp.reason}
        recorded = await repo.record_state(
            session,
            Deal,
            uuid.UUID(inp.deal_id),
            values,
            once=once,
            key=inp.idempotency_key,
            actor=inp.by,
            action=f"deal.{inp.state.value}",
            journey=JOURNEY,
            state=inp.state.value,
            detail=_state_detail(inp),
        )
        if recorded.partner_id is None:
            raise _not_found(inp.deal_id)
        return recorded.applied

    @activity.defn(name=DealActivity.RECORD_STAGE)
    async def record_stage(self, inp: DealStageInput) -> StepResult:
        async with self.sessionmaker() as session, session.begin():
            deal = await self._deal(session, inp.deal_id)
            return StepResult(applied=await self._record_stage(session, deal, inp))

    async def _record_stage(
        self, session: AsyncSession, deal: Deal, inp: DealStageInput, *, write: bool = True
    ) -> bool:
        """The stage and its audit row, once per key, in the caller's transaction (`write` False:
        the audit row alone, the caller sets the stage with its own UPDATE of the deal)."""
        if not await repo.claim_step(
            session,
            key=inp.idempotency_key,
            actor=inp.by,
            action="deal.stage_changed",
            partner_id=deal.partner_id,
            journey=JOURNEY,
            detail={"deal_id": inp.deal_id, "from": deal.stage, "to": inp.stage.value},
        ):
            return False
        if write:
            await session.execute(update(DEALS).where(DEALS.c.id == deal.id).values(stage=inp.stage.value))
        return True

    @activity.defn(name=DealActivity.QUEUE_APPROVAL_REQUEST)
    async def queue_approval_request(self, inp: ApprovalRequestInput) -> NotifyResult:
        """Outbox rows for the approver(s), each with its own signed approve/reject links."""
        async with self.sessionmaker() as session, session.begin():
            deal, partner = await self._deal_and_partner(session, inp.deal_id)

            def link(decision: str, approver: str, jti: str) -> str:
                claims = DealLinkClaims(
                    deal_id=inp.deal_id, decision=decision, approver=approver, jti=jti, expires_at=inp.link_valid_until
                )
                return DECISION.url(self.public_base_url, self.link_secret, claims)

            rows = await approver_rows(
                session,
                partner,
                inp.approver,
                self.ops_email,
                key=inp.idempotency_key,
                links=link,
                decisions={d.value: d.value for d in Decision},
            )
            return await queue_rows(
                session,
                rows,
                key=inp.idempotency_key,
                partner_id=str(partner.id),
                journey=JOURNEY,
                template=inp.template,
                context=inp.context,
            )
