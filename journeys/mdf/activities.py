"""Activities of the MDF journey: state changes of a request, its reservation in the funds
ledger, payments, approval requests with signed one-click links, and a fund's balance and expiry.
Each write claims its idempotency key (an audit row or a ledger entry) in the same transaction."""

from __future__ import annotations

import functools
import uuid

from sqlalchemy import Select, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.common import approver_rows, queue_rows
from domain import actors
from domain.journeys import NotifyResult, StepResult
from journeys.mdf import ledger
from journeys.mdf.domain import (
    JOURNEY,
    ApprovalRequestInput,
    Decision,
    EntryKind,
    ExpireFundInput,
    ExpireFundResult,
    FundBalance,
    FundBalanceInput,
    MdfActivity,
    MdfState,
    MdfStateInput,
    PaymentInput,
    ReserveInput,
    ReserveResult,
)
from journeys.mdf.links import DECISION, MdfLinkClaims
from journeys.mdf.models import MdfEntry, MdfFund, MdfRequest
from store import repo
from store.db import autocommit, table_of
from store.models import Partner

LINK_DECISIONS = (Decision.approve, Decision.reject)


class MdfActivities:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, link_secret: str, public_base_url: str, ops_email: str
    ):
        self.sessionmaker = sessionmaker
        self.link_secret = link_secret
        self.public_base_url = public_base_url.rstrip("/")
        self.ops_email = ops_email

    async def _request(self, session: AsyncSession, request_id: str) -> MdfRequest:
        row = await session.get(MdfRequest, uuid.UUID(request_id), with_for_update=True)
        if row is None:
            raise _not_found(request_id)
        return row

    async def _fund_ref(self, session: AsyncSession, request_id: uuid.UUID) -> ledger.FundRef:
        """The request's fund and partner: one read of two columns (no row locked: the fund's
        advisory lock orders what the ledger writes)."""
        row = (await session.execute(_fund_ref(), {"request_id": request_id})).one_or_none()
        if row is None:
            raise _not_found(str(request_id))
        return ledger.FundRef(id=row.fund_id, partner_id=row.partner_id)

    async def _fund(self, session: AsyncSession, fund_id: uuid.UUID | str) -> MdfFund:
        fund = await session.get(MdfFund, uuid.UUID(str(fund_id)))
        if fund is None:
            raise ApplicationError(f"MDF fund {fund_id} not found", type="MdfFundNotFound", non_retryable=True)
        return fund

    @activity.defn(name=MdfActivity.RECORD_STATE)
    async def record_state(self, inp: MdfStateInput) -> StepResult:
        """The claim, the read model and the request's UPDATE in one statement (`repo.record_state`),
        autocommitted; an approved claim's memo entry in the same transaction."""
        dumped = inp.model_dump(mode="json", exclude={"idempotency_key", "by", "at"})
        detail = {k: v for k, v in dumped.items() if v is not None}
        values: dict = {"state": inp.state.value, "awaiting_level": inp.awaiting_level}
        for name in (
            "amount_minor",
            "approved_minor",
            "claim_minor",
            "approved_claim_minor",
            "planned_start",
            "planned_end",
            "title",
        ):
            if getattr(inp, name) is not None:
                values[name] = getattr(inp, name)
        if inp.state in (MdfState.approved, MdfState.rejected):
            values |= {"decided_by": inp.by, "decision_reason": inp.reason}
        if inp.state == MdfState.paid:
            values["paid_at"] = inp.at
        request_id = uuid.UUID(inp.request_id)
        async with self.sessionmaker() as session:
            if not inp.memo_claim_minor:
                await autocommit(session)
            recorded = await repo.record_state(
                session,
                MdfRequest,
                request_id,
                values,
                key=inp.idempotency_key,
                actor=inp.by,
                action=f"mdf.{inp.state.value}",
                journey=JOURNEY,
                state=inp.state.value,
                detail=detail,
            )
            if recorded.partner_id is None:
                raise _not_found(inp.request_id)
            if recorded.applied and inp.memo_claim_minor:
                await ledger.add_entry(
                    session,
                    await self._fund_ref(session, request_id),
                    EntryKind.claim,
                    inp.memo_claim_minor,
                    key=f"{inp.idempotency_key}:claim",
                    by=inp.by,
                    request_id=request_id,
                    reason="claim approved",
                )
            await session.commit()
        return StepResult(applied=recorded.applied)

    @activity.defn(name=MdfActivity.RESERVE)
    async def reserve(self, inp: ReserveInput) -> ReserveResult:
        """Hold exactly the target for the request: reserve more (if the fund has it) or release."""
        async with self.sessionmaker() as session, session.begin():
            request_id = uuid.UUID(inp.request_id)
            ref = await self._fund_ref(session, request_id)
            ok, held, available = await ledger.reserve(
                session, ref, request_id, inp.target_minor, key=inp.idempotency_key, by=inp.by
            )
        return ReserveResult(ok=ok, reserved_minor=held, available_minor=available)

    @activity.defn(name=MdfActivity.RECORD_PAYMENT)
    async def record_payment(self, inp: PaymentInput) -> StepResult:
        request_id = uuid.UUID(inp.request_id)
        async with self.sessionmaker() as session, session.begin():
            ref = await self._fund_ref(session, request_id)
            await ledger.lock_fund(session, ref.id)
            pay = inp.payment
            if not await ledger.add_entry(
                session,
                ref,
                EntryKind.payment,
                pay.amount_minor,
                key=inp.idempotency_key,
                by=pay.by,
                request_id=request_id,
                reason=f"payment {pay.reference}",
                detail={"reference": pay.reference, "paid_on": pay.paid_on.isoformat()},
            ):
                return StepResult(applied=False)
            # The request's paid total and the payment's audit row: one statement.
            await session.execute(
                _paid(),
                repo.prefixed(
                    repo.CLAIM,
                    repo.claim_params(
                        key=f"{inp.idempotency_key}:audit",
                        actor=pay.by,
                        action="mdf.payment_recorded",
                        partner_id=ref.partner_id,
                        journey=JOURNEY,
                        detail={
                            "request_id": inp.request_id,
                            "reference": pay.reference,
                            "amount_minor": pay.amount_minor,
                        },
                    ),
                )
                | {"request_id": request_id},
            )
        return StepResult(applied=True)

    @activity.defn(name=MdfActivity.QUEUE_APPROVAL_REQUEST)
    async def queue_approval_request(self, inp: ApprovalRequestInput) -> NotifyResult:
        """Outbox rows for the approver(s) of a level; at the first level each gets its own signed
        approve / reject links, bound to that level, the round and the amount."""
        async with self.sessionmaker() as session, session.begin():
            req = await self._request(session, inp.request_id)
            partner = await session.get(Partner, req.partner_id)
            assert partner is not None

            def link(decision: str, approver: str, jti: str) -> str:
                claims = MdfLinkClaims(
                    request_id=inp.request_id,
                    decision=decision,
                    approver=approver,
                    jti=jti,
                    expires_at=inp.link_valid_until,
                    level=inp.level,
                    round=inp.round,
                    amount_minor=inp.amount_minor,
                )
                return DECISION.url(self.public_base_url, self.link_secret, claims)

            rows = await approver_rows(
                session,
                partner,
                inp.approver,
                self.ops_email,
                key=inp.idempotency_key,
                links=link if inp.level == 0 else None,  # the first level decides by one-click link
                decisions={d.value: f"{inp.stage}:{d.value}" for d in LINK_DECISIONS},
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

    @activity.defn(name=MdfActivity.FUND_BALANCE)
    async def fund_balance(self, inp: FundBalanceInput) -> FundBalance:
        async with self.sessionmaker() as session:
            b = await ledger.fund_balances(session, uuid.UUID(inp.fund_id))
        return FundBalance(available_minor=b.available, reserved_minor=b.reserved)

    @activity.defn(name=MdfActivity.EXPIRE_FUND)
    async def expire_fund(self, inp: ExpireFundInput) -> ExpireFundResult:
        """Use it or lose it: the fund's unreserved balance becomes an expiry entry (once)."""
        async with self.sessionmaker() as session, session.begin():
            fund = await self._fund(session, inp.fund_id)
            await ledger.lock_fund(session, fund.id)
            done = await session.scalar(
                select(MdfEntry.amount_minor).where(MdfEntry.idempotency_key == inp.idempotency_key)
            )
            if done is not None:
                return ExpireFundResult(expired_minor=done)
            available = (await ledger.fund_balances(session, fund.id)).available
            if available > 0:
                await ledger.add_entry(
                    session,
                    fund,
                    EntryKind.expiry,
                    available,
                    key=inp.idempotency_key,
                    by=actors.SYSTEM,
                    reason=f"unreserved funds of {fund.period} expired",
                )
            await repo.claim_step(
                session,
                key=f"{inp.idempotency_key}:audit",
                actor=actors.SYSTEM,
                action="mdf.fund_expired",
                partner_id=fund.partner_id,
                journey=JOURNEY,
                detail={"fund_id": inp.fund_id, "period": fund.period, "expired_minor": max(available, 0)},
            )
            await repo.set_journey_state(
                session, fund.partner_id, JOURNEY, f"fund-{fund.partner_id}-{fund.period}", "expired"
            )
        return ExpireFundResult(expired_minor=max(available, 0))


def _not_found(request_id: str) -> ApplicationError:
    return ApplicationError(f"MDF request {request_id} not found", type="MdfRequestNotFound", non_retryable=True)


@functools.cache
def _fund_ref() -> Select:
    """`_fund_ref`'s read, built once (store/repo.py)."""
    return select(MdfRequest.fund_id, MdfRequest.partner_id).where(
        MdfRequest.id == bindparam("request_id", type_=MdfRequest.id.type)
    )


@functools.cache
def _paid() -> Select:
    """The request's paid total (the sum of its payment entries) and the payment's audit row
    (`repo.claimed_from`: its values bound apart from the request's columns), in one statement,
    built once."""
    table = table_of(MdfRequest)
    request_id = bindparam("request_id", type_=MdfRequest.id.type)
    paid = (
        select(func.coalesce(func.sum(MdfEntry.amount_minor), 0))
        .where(MdfEntry.request_id == request_id, MdfEntry.kind == EntryKind.payment.value)
        .scalar_subquery()
    )
    total = update(table).where(table.c.id == request_id).values(paid_minor=paid)
    claim = repo.claimed_from()
    return select(claim.c.id).add_cte(total.cte("total"))
