"""Partners: enrolment (the partner row, then its onboarding journey), coverage changes and the
read model. Transactions, locks and rules live here; the router only translates HTTP."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select
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
from domain.errors import Conflict, Invalid
from domain.events import TierChanged
from domain.policy import VersionedPolicy
from domain.webhooks import EventInput
from journeys.health.contract import HealthPolicy, cam_load
from journeys.onboarding import contract as onboarding
from journeys.onboarding.contract import reads as onboarding_reads
from store import locks, repo
from store.models import Cam, Handover, JourneyRecord, Partner
from store.portal import contact_admin


async def check_coverage(session: AsyncSession, tier: Tier, cam_id: uuid.UUID | None) -> VersionedPolicy:
    """A tier whose policy gives it a CAM needs one; registered partners have none. Returns the
    policy checked against (the one a journey started now runs on)."""
    current = await repo.current_policy(session)
    rules = current.policy.tiers[tier]
    if rules.has_cam and cam_id is None:
        raise Invalid(f"cam_id: a {tier.value} partner needs a CAM")
    if tier == Tier.registered and cam_id is not None:
        raise Invalid("cam_id: registered partners are self-service and have no CAM")
    if cam_id is not None and await session.get(Cam, cam_id) is None:
        raise Invalid(f"cam_id: no CAM with id {cam_id}")
    return current


async def portfolio(session: AsyncSession, cam_id: uuid.UUID, *, without: uuid.UUID | None = None) -> dict[Tier, int]:
    """The CAM's partners by tier (but `without`)."""
    stmt = select(Partner.tier, func.count()).where(Partner.cam_id == cam_id).group_by(Partner.tier)
    if without is not None:
        stmt = stmt.where(Partner.id != without)
    return {Tier(tier): n for tier, n in (await session.execute(stmt)).all()}


async def check_capacity(
    session: AsyncSession,
    tier: Tier,
    cam_id: uuid.UUID | None,
    partner_id: uuid.UUID,
    *,
    override: bool,
    current: VersionedPolicy,
) -> dict | None:
    """A CAM beyond capacity with this partner (policy `health.coverage`, `max_partners_per_cam`) is
    refused (409 naming the figures) unless ops confirm the override: then the figures to audit."""
    if cam_id is None:
        return None
    await locks.lock(session, f"cam:capacity:{cam_id}")  # two assignments at once cannot both pass
    by_tier = await portfolio(session, cam_id, without=partner_id)
    by_tier[tier] = by_tier.get(tier, 0) + 1
    load = cam_load(by_tier, current.policy.section(HealthPolicy))
    if load.over is None:
        return None
    if not override:
        raise Conflict(
            f"cam_id: CAM {cam_id} would be beyond capacity with this partner: {load.over}; "
            "ops may confirm with override_capacity: true"
        )
    return {"cam_id": str(cam_id), "over": load.over, "load": load.load, "partners": load.partners}


async def enrol(ctx: Creation, body: PartnerCreate, idem: Idempotency) -> dict:
    """Write the partner, its onboarding journey record and the audit row in one transaction,
    then start `onboarding-{partner_id}`. Returns the answer (also stored for idempotent retries)."""
    session = ctx.session
    current = await check_coverage(session, body.tier, body.cam_id)  # read once, used throughout
    partner = Partner(
        id=uuid.uuid4(), status=PartnerStatus.onboarding.value, **body.model_dump(exclude={"override_capacity"})
    )
    overridden = await check_capacity(
        session, body.tier, body.cam_id, partner.id, override=body.override_capacity, current=current
    )
    partner.tier, partner.type = body.tier.value, body.type.value
    start = journeys.start_input(onboarding.StartInput, partner, partner, policy_version=current.version)
    state = onboarding.START_STATE
    admin = contact_admin(partner, ctx.principal.actor)  # the portal's first admin
    new = journeys.NewJourney(
        onboarding.JOURNEY,
        partner,
        partner.id,
        state,
        start,
        "partner.enrolled",
        body.model_dump(mode="json"),
        rows=(admin,),
    )
    every = journeys.with_every_partner(partner, ctx.settings.task_queue, current)
    try:
        if every or overridden:  # rows of their own that name the partner: it is written first
            session.add(partner)
            await session.flush()
            session.add_all(every)
            if overridden:
                await _overridden(session, ctx.principal, partner.id, overridden)
        out = await journeys.create_and_start(ctx, new, answer=PartnerOut, idem=idem, what="enrolled")
        await journeys.start_recorded(session, ctx.temporal, [r.workflow_id for r in every])
        return out
    except IntegrityError as err:  # the domain is taken (the unique index says so: no query before)
        await session.rollback()
        existing = await session.scalar(select(Partner.id).where(Partner.domain == body.domain))
        await session.rollback()
        which = f" (partner {existing})" if existing else ""
        raise Conflict(f"a partner with domain {body.domain} is already enrolled{which}") from err


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
        raise Invalid("nothing to change: send tier and/or cam_id")
    if handover := await session.scalar(
        select(Handover.id).where(Handover.state == "running", Handover.partner_ids.contains([str(partner.id)]))
    ):
        raise Conflict(
            f"partner {partner.id} is being handed over to another CAM (handover {handover}): retry once it completed"
        )
    before = journeys.coverage_of(partner)
    tier = body.tier if "tier" in fields and body.tier is not None else Tier(partner.tier)
    cam_id = body.cam_id if "cam_id" in fields else partner.cam_id
    current = await check_coverage(session, tier, cam_id)
    if (tier.value, cam_id) != (partner.tier, partner.cam_id):
        overridden = await check_capacity(
            session, tier, cam_id, partner.id, override=body.override_capacity, current=current
        )
        if overridden:
            await _overridden(session, principal, partner.id, overridden)
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
            partner_id=str(partner.id),
            partner_name=partner.name,
            from_tier=before.tier.value,
            to_tier=after.tier.value,
            cam_id=after.cam_id,
            by=principal.actor,
        )
        _, woken = await write_event(
            session,
            EventInput(
                idempotency_key=f"partner-{partner.id}:tier:{uuid.uuid4()}",
                type="partner.tier_changed",
                partner_id=str(partner.id),
                occurred_at=datetime.now(UTC),
                data=event.model_dump(mode="json"),
            ),
        )
    await session.commit()
    await session.refresh(partner)
    for subscription_id in woken:
        await wake_stream(client, task_queue, subscription_id, partner.id)
    await journeys.signal_coverage(session, client, partner)
    return partner


async def _overridden(session: AsyncSession, principal: Principal, partner_id: uuid.UUID, figures: dict) -> None:
    await repo.claim_step(
        session,
        key=None,
        actor=principal.actor,
        action="cam.capacity_overridden",
        partner_id=partner_id,
        detail=figures,
    )


async def detail(session: AsyncSession, partner: Partner) -> PartnerDetail:
    milestones = await onboarding_reads.milestones(session, partner.id)
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
