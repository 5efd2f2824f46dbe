"""Activities of the certification renewal journey: the certification's state and the
entitlement restriction it carries."""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.common import CommonActivities, shared_outbox
from domain.journeys import Refusal, SendResult, StepResult
from journeys.cert.domain import JOURNEY, CertActivity, CertStateInput, CertStateNotice
from journeys.cert.models import Certification
from journeys.onboarding.contract import FIRST_CERTIFICATION, milestone_done
from store import repo

log = logging.getLogger(__name__)


class CertActivities:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *, outbox: CommonActivities | None = None):
        """`outbox`: the shared activities, which queue and send the email of `record_state_and_notify`."""
        self.sessionmaker = sessionmaker
        self.outbox = outbox

    @activity.defn(name=CertActivity.RECORD_STATE)
    async def record_state(self, inp: CertStateInput) -> StepResult:
        async with self.sessionmaker() as session, session.begin():
            applied, partner_id = await self._record(session, inp)
        if inp.milestone_by is not None:  # also after a retry whose state was recorded: a repeat is ignored
            await tell_first_certification(str(partner_id), inp.milestone_by)
        return StepResult(applied=applied)

    @activity.defn(name=CertActivity.RECORD_STATE_AND_NOTIFY)
    async def record_state_and_notify(self, inp: CertStateNotice) -> SendResult:
        """`record_state` and the email that tells the new state (`inp.notice`, with the events it
        carries): the state recorded and the email queued in one transaction, then sent once it
        committed (`CommonActivities.notify_after`; `TELLS_WITH_STATE`). Each half is idempotent on
        its own key: a retry records nothing twice and sends only what is still pending. A name of
        its own: a worker that does not know it never records a state without its email. A state
        that tells onboarding its first certification (`milestone_by`) is `record_state`'s."""
        if inp.record.milestone_by is not None:
            raise ApplicationError(
                "the first certification's milestone is told by cert.record_state",
                type=Refusal.INVALID,
                non_retryable=True,
            )
        return await shared_outbox(self.outbox).notify_after(
            inp.notice, lambda session: self._record(session, inp.record)
        )

    async def _record(self, session: AsyncSession, inp: CertStateInput) -> tuple[bool, uuid.UUID]:
        """The certification locked, the state's audit row with the journey's read model, and the
        certification's UPDATE, in the caller's transaction: (applied, the partner's id)."""
        cert = await session.get(Certification, uuid.UUID(inp.cert_id), with_for_update=True)
        if cert is None:
            raise ApplicationError(f"certification {inp.cert_id} not found", type="CertNotFound", non_retryable=True)
        if not await repo.claim_step(
            session,
            key=inp.idempotency_key,
            actor=inp.by,
            action=f"cert.{inp.state.value}",
            partner_id=cert.partner_id,
            journey=JOURNEY,
            detail={
                "cert_id": inp.cert_id,
                "track": cert.track,
                "category": cert.product_category,
                "restricted": inp.restricted,
                "expires_at": (inp.expires_at or cert.expires_at).isoformat(),
            },
            state=(inp.cert_id, inp.state.value),
        ):
            return False, cert.partner_id
        values: dict = {"state": inp.state.value, "restricted": inp.restricted}
        if inp.expires_at is not None:
            values["expires_at"] = inp.expires_at
        if inp.period is not None:
            values["period"] = inp.period
        await session.execute(update(Certification).where(Certification.id == cert.id).values(**values))
        return True, cert.partner_id


async def tell_first_certification(partner_id: str, by: str) -> None:
    """Signal the partner's onboarding journey its first certification (`MILESTONE_IN_STEP`).
    The journey records a milestone once and ignores repeats, so a retried step signals again
    harmlessly; a journey that has ended has nothing left to record."""
    workflow_id, signal, done = milestone_done(partner_id, FIRST_CERTIFICATION, by)
    try:
        await activity.client().get_workflow_handle(workflow_id).signal(signal, done)
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise  # retried with the step
        log.info("%s is not running; %s not delivered", workflow_id, signal)
