"""Activities of the certification renewal journey: the certification's state and the
entitlement restriction it carries."""

from __future__ import annotations

import uuid

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.journeys import StepResult
from journeys.cert.domain import JOURNEY, CertActivity, CertStateInput
from journeys.cert.models import Certification
from store import repo


class CertActivities:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]):
        self.sessionmaker = sessionmaker

    @activity.defn(name=CertActivity.RECORD_STATE)
    async def record_state(self, inp: CertStateInput) -> StepResult:
        async with self.sessionmaker() as session, session.begin():
            cert = await session.get(Certification, uuid.UUID(inp.cert_id), with_for_update=True)
            if cert is None:
                raise ApplicationError(
                    f"certification {inp.cert_id} not found", type="CertNotFound", non_retryable=True
                )
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
            ):
                return StepResult(applied=False)
            values: dict = {"state": inp.state.value, "restricted": inp.restricted}
            if inp.expires_at is not None:
                values["expires_at"] = inp.expires_at
            if inp.period is not None:
                values["period"] = inp.period
            await session.execute(update(Certification).where(Certification.id == cert.id).values(**values))
            await repo.set_journey_state(session, cert.partner_id, JOURNEY, inp.cert_id, inp.state.value)
        return StepResult(applied=True)
