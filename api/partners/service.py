"""Partners: enrolment (the partner row, then its onboarding journey), coverage changes and the
read model. Transactions, locks and rules live here; the router only translates HTTP."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import HTTPException
from fastapi.encoders import jsonable_encoder
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from activities.webhooks import wake_stream, write_event
from api import journeys
from api.auth import Principal
from api.deps import Creation
from api.idempotency import Idempotency
from api.partners.schemas import JourneyOut, MilestoneOut, PartnerCreate, PartnerDetail, PartnerOut, PartnerUpdate
from domain.enums import PartnerStatus, Tier
from domain.events import TierChanged
from domain.webhooks import EventInput
from journeys.onboarding.domain import JOURNEY as ONBOARDING
from journeys.onboarding.domain import OnboardingInput, OnboardingState
from journeys.onboarding.models import PartnerMilestone
from store import repo
from store.models import Cam, JourneyRecord, Partner


async def check_coverage(session: AsyncSession, tier: Tier, cam_id: uuid.UUID | None) -> int:
    """A tier whose policy gives it a CAM needs one; registered partners have none. Returns the
    policy version checked against (the one a journey started now runs on)."""
    current = await repo.current_policy(session)
    rules = current.policy.tiers[tier]
    if rules.has_cam and cam_id is None:
        raise HTTPException(422, detail=f"cam_id: a {tier.value} partner needs a CAM")
    if tier == Tier.registered and cam_id is not None:
        raise HTTPException(422, detail="cam_id: registered partners are self-service and have no CAM")
    if cam_id is not None and await session.get(Cam, cam_id) is None:
        raise HTTPException(422, detail=f"cam_id: no CAM with id {cam_id}")
    return current.version


async def enrol(ctx: Creation, body: PartnerCreate, idem: Idempotency) -> dict:
    """Write the partner, its onboarding journey record and the audit row in one transaction,
    then start `onboarding-{partner_id}`. Returns the answer (also stored for idempotent retries)."""
    session = ctx.session
    policy_version = await check_coverage(session, body.tier, body.cam_id)
    if existing := await session.scalar(select(Partner.id).where(Partner.domain == body.domain)):
        raise HTTPException(409, detail=f"a partner with domain {body.domain} is already enrolled (partner {existing})")
    partner = Partner(id=uuid.uuid4(), status=PartnerStatus.onboarding.value, **body.model_dump())
    partner.tier, partner.type = body.tier.value, body.type.value
    start = journeys.start_input(OnboardingInput, partner, partner, policy_version=policy_version)
    state = OnboardingState.in_progress.value
    new = journeys.NewJourney(
        ONBOARDING, partner, partner.id, state, start, "partner.enrolled", jsonable_encoder(body.model_dump())
    )
    every = journeys.with_every_partner(partner, ctx.settings.task_queue, policy_version)
    try:
        session.add(partner)
        await session.flush()  # the partner before the records of the journeys every partner has
        session.add_all(every)
        out = await journeys.create_and_start(ctx, new, answer=PartnerOut, idem=idem, what="enrolled")
        await journeys.start_recorded(session, ctx.temporal, [r.workflow_id for r in every])
        return out
    except IntegrityError as err:  # a concurrent request won the race for this domain
        await session.rollback()
        raise HTTPException(409, detail=f"a partner with domain {body.domain} is already enrolled") from err


async def change_coverage(
    session: AsyncSession,
    client: Client,
    principal: Principal,
    partner: Partner,
    body: PartnerUpdate,
    *,
    task_queue: str,
) -> Partner:
    """A new tier and/or CAM; every running journey that follows coverage is told (registry)."""
    fields = body.model_fields_set
    if not fields:
        raise HTTPException(422, detail="nothing to change: send tier and/or cam_id")
    before = journeys.coverage_of(partner)
    tier = body.tier if "tier" in fields and body.tier is not None else Tier(partner.tier)
    cam_id = body.cam_id if "cam_id" in fields else partner.cam_id
    await check_coverage(session, tier, cam_id)
    partner.tier, partner.cam_id = tier.value, cam_id
    after = journeys.coverage_of(partner)
    if after == before:
        return partner
    partner.coverage_version += 1  # every journey behind it is told (now, or by the reconciler)
    await repo.claim_step(
        session,
        key=None,
        actor=principal.actor,
        action="partner.coverage_changed",
        partner_id=partner.id,
        detail={"from": before.model_dump(mode="json"), "to": after.model_dump(mode="json")},
    )
    woken: list[uuid.UUID] = []
    if after.tier != before.tier:  # with the change, in its transaction (webhook subscribers hear of it)
        event = TierChanged(
            partner_id=str(partner.id), partner_name=partner.name, from_tier=before.tier.value,
            to_tier=after.tier.value, cam_id=after.cam_id, by=principal.actor,
        )  # fmt: skip
        _, woken = await write_event(session, EventInput(
            idempotency_key=f"partner-{partner.id}:tier:{uuid.uuid4()}", type="partner.tier_changed",
            partner_id=str(partner.id), occurred_at=datetime.now(UTC), data=event.model_dump(mode="json"),
        ))  # fmt: skip
    await session.commit()
    await session.refresh(partner)
    for subscription_id in woken:
        await wake_stream(client, task_queue, subscription_id, partner.id)
    await journeys.signal_coverage(session, client, partner)
    return partner


async def detail(session: AsyncSession, partner: Partner) -> PartnerDetail:
    milestones = (
        await session.scalars(
            select(PartnerMilestone)
            .where(PartnerMilestone.partner_id == partner.id)
            .order_by(PartnerMilestone.due_at, PartnerMilestone.key)
        )
    ).all()
    records = (
        await session.scalars(
            select(JourneyRecord).where(JourneyRecord.partner_id == partner.id).order_by(JourneyRecord.workflow_id)
        )
    ).all()
    return PartnerDetail(
        **PartnerOut.model_validate(partner).model_dump(),
        milestones=[MilestoneOut.model_validate(m) for m in milestones],
        journeys=[JourneyOut.model_validate(j) for j in records],
    )
