"""CAM handover (issue 22): `POST /cams/{id}/handover` checks the request (every refusal a 4xx
that writes nothing), writes the handover row and its audit rows in one transaction, then starts
the durable workflow `cam-handover-{id}` (workflows/handover.py); `GET
/cams/{id}/handovers/{handover id}` reads its progress."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, Field
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from temporalio.client import Client
from temporalio.service import RPCError

from api.auth import Principal
from api.idempotency import Idempotency
from api.journeys import START_BUDGET, START_RPC_TIMEOUT
from api.partners.service import portfolio
from api.schemas import Reason, Strict
from domain.enums import Role, Tier
from domain.errors import Conflict, Invalid, NotFound, Refused, Unavailable
from domain.handover import HANDOVER_WORKFLOW, HandoverInput, handover_workflow_id
from journeys.health.contract import HealthPolicy, cam_load
from store import locks, repo
from store.models import AuditEvent, Cam, Handover, Partner

MAX_PARTNERS = 500  # per handover (a CAM holds at most the policy's max_partners_per_cam, 50 by default)


class HandoverCreate(Strict):
    to_cam_id: uuid.UUID = Field(description="the receiving CAM (active, not the handing-over CAM)")
    partner_ids: list[uuid.UUID] | None = Field(
        None,
        min_length=1,
        max_length=MAX_PARTNERS,
        description="the partners to hand over, each the CAM's (none: all of the CAM's partners)",
    )
    note: Reason = Field("", description="for the receiving CAM and the partners' introduction")
    override_capacity: bool = Field(False, description="ops confirm a receiving CAM beyond capacity (audited)")


class HandoverPartner(BaseModel):
    partner_id: uuid.UUID
    state: str = Field(description="pending, moved, or skipped (it had left the CAM meanwhile)")
    journeys_moved: int = 0


class HandoverOut(BaseModel):
    id: uuid.UUID
    workflow_id: str
    from_cam_id: uuid.UUID
    to_cam_id: uuid.UUID
    note: str
    state: str = Field(description="running or completed")
    requested_by: str
    created_at: datetime
    completed_at: datetime | None
    partners: list[HandoverPartner]
    moved: int
    pending: int


def answer(handover: Handover) -> HandoverOut:
    partners = []
    for pid in handover.partner_ids:
        done = handover.progress.get(pid)
        state = "pending" if done is None else ("moved" if done.get("moved") else "skipped")
        moved_journeys = len(done.get("workflow_ids", [])) if done else 0
        partners.append(HandoverPartner(partner_id=uuid.UUID(pid), state=state, journeys_moved=moved_journeys))
    return HandoverOut(
        id=handover.id,
        workflow_id=handover_workflow_id(handover.id),
        from_cam_id=handover.from_cam_id,
        to_cam_id=handover.to_cam_id,
        note=handover.note,
        state=handover.state,
        requested_by=handover.requested_by,
        created_at=handover.created_at,
        completed_at=handover.completed_at,
        partners=partners,
        moved=sum(1 for p in partners if p.state == "moved"),
        pending=sum(1 for p in partners if p.state == "pending"),
    )


async def _partners(session: AsyncSession, cam_id: uuid.UUID, wanted: list[uuid.UUID] | None) -> list[Partner]:
    """The partners handed over: those named (each must be the CAM's), or all of the CAM's."""
    mine = {p.id: p for p in (await session.scalars(select(Partner).where(Partner.cam_id == cam_id))).all()}
    if wanted is None:
        if not mine:
            raise Conflict(f"CAM {cam_id} has no partners: nothing to hand over")
        return sorted(mine.values(), key=lambda p: (p.name, str(p.id)))
    if len(set(wanted)) != len(wanted):
        raise Invalid("partner_ids: a partner is named twice")
    if others := [str(pid) for pid in wanted if pid not in mine]:
        raise Invalid(f"partner_ids: not partners of CAM {cam_id}: {', '.join(others)}")
    return [mine[pid] for pid in wanted]


async def _check_capacity(
    session: AsyncSession,
    principal: Principal,
    handover_id: uuid.UUID,
    to_cam: uuid.UUID,
    partners: list[Partner],
    *,
    override: bool,
) -> None:
    """The receiving CAM beyond capacity with these partners (policy `health`) is refused (409
    naming the figures) unless ops confirm the override, which is audited."""
    by_tier = await portfolio(session, to_cam)
    for p in partners:
        by_tier[Tier(p.tier)] = by_tier.get(Tier(p.tier), 0) + 1
    load = cam_load(by_tier, (await repo.current_policy(session)).policy.section(HealthPolicy))
    if load.over is None:
        return
    if not override:
        raise Conflict(
            f"to_cam_id: CAM {to_cam} would be beyond capacity with these {len(partners)} partner(s): "
            f"{load.over}; ops may confirm with override_capacity: true"
        )
    await repo.claim_step(
        session,
        key=f"{handover_workflow_id(handover_id)}:capacity_overridden",
        actor=principal.actor,
        action="cam.capacity_overridden",
        detail={"cam_id": str(to_cam), "over": load.over, "load": load.load, "partners": load.partners},
    )


async def start(
    session: AsyncSession,
    client: Client,
    principal: Principal,
    cam_id: uuid.UUID,
    body: HandoverCreate,
    *,
    task_queue: str,
    idem: Idempotency,
) -> dict:
    """Check, write (one transaction: the handover, its audit rows, the idempotency record),
    start the workflow; returns the answer (202). A refusal writes nothing; a start Temporal
    refuses or does not answer removes what was written (503: nothing was handed over)."""
    # One handover of a CAM at a time, and no assignment to the receiving CAM meanwhile.
    await locks.lock(session, f"cam:handover:{cam_id}", f"cam:capacity:{body.to_cam_id}")
    if await session.get(Cam, cam_id) is None:
        raise NotFound(f"no CAM with id {cam_id}")
    if body.to_cam_id == cam_id:
        raise Invalid("to_cam_id: the receiving CAM must be another CAM")
    to_cam = await session.get(Cam, body.to_cam_id)
    if to_cam is None:
        raise Invalid(f"to_cam_id: no CAM with id {body.to_cam_id}")
    if to_cam.deactivated_at is not None:
        raise Invalid(f"to_cam_id: CAM {body.to_cam_id} was deactivated and cannot receive partners")
    running = await session.scalar(
        select(Handover.id).where(Handover.from_cam_id == cam_id, Handover.state == "running")
    )
    if running is not None:
        raise Conflict(f"CAM {cam_id} has a handover running: wait for it (GET /cams/{cam_id}/handovers/{running})")
    partners = await _partners(session, cam_id, body.partner_ids)
    handover_id = uuid.uuid4()
    wid = handover_workflow_id(handover_id)
    await _check_capacity(session, principal, handover_id, body.to_cam_id, partners, override=body.override_capacity)
    handover = Handover(
        id=handover_id,
        from_cam_id=cam_id,
        to_cam_id=body.to_cam_id,
        partner_ids=[str(p.id) for p in partners],
        note=body.note,
        state="running",
        progress={},
        requested_by=principal.actor,
    )
    session.add(handover)
    await repo.claim_step(
        session,
        key=f"{wid}:requested",
        actor=principal.actor,
        action="cam.handover_requested",
        detail={
            "handover_id": str(handover_id),
            "from_cam_id": str(cam_id),
            "to_cam_id": str(body.to_cam_id),
            "partners": handover.partner_ids,
            "note": body.note,
        },
    )
    await session.flush()
    await session.refresh(handover)
    out = jsonable_encoder(answer(handover))
    await idem.remember(202, out)
    await session.commit()
    try:
        async with asyncio.timeout(START_BUDGET):
            await client.start_workflow(
                HANDOVER_WORKFLOW,
                HandoverInput(handover_id=str(handover_id), partner_ids=handover.partner_ids),
                id=wid,
                task_queue=task_queue,
                static_summary=f"CAM handover: {len(partners)} partner(s) from {cam_id} to {body.to_cam_id}",
                rpc_timeout=START_RPC_TIMEOUT,
            )
    except (RPCError, TimeoutError) as err:
        await session.execute(delete(AuditEvent).where(AuditEvent.idempotency_key.startswith(f"{wid}:")))
        await session.execute(delete(Handover).where(Handover.id == handover_id))
        await idem.forget()
        await session.commit()
        raise Unavailable(f"could not start the handover ({err}); nothing was handed over, retry later") from err
    return out


async def read(session: AsyncSession, principal: Principal, cam_id: uuid.UUID, handover_id: uuid.UUID) -> HandoverOut:
    """Ops, or either CAM of the handover."""
    if principal.role == Role.partner:
        raise Refused("a partner key may not read CAM handovers")
    handover = await session.get(Handover, handover_id)
    if handover is None or cam_id not in (handover.from_cam_id, handover.to_cam_id):
        raise NotFound(f"CAM {cam_id} has no handover {handover_id}")
    if principal.role == Role.cam and principal.cam_id not in (handover.from_cam_id, handover.to_cam_id):
        raise Refused(f"your cam key may not read handover {handover_id}")
    return answer(handover)


async def partner_count(session: AsyncSession, cam_id: uuid.UUID) -> int:
    return sum((await portfolio(session, cam_id)).values())


async def recent(session: AsyncSession, limit: int = 20) -> list[tuple[HandoverOut, str, str]]:
    """The latest handovers (the workspace's Ops page), each with its CAMs' names."""
    giving, receiving = aliased(Cam), aliased(Cam)
    rows = await session.execute(
        select(Handover, giving.name, receiving.name)
        .join(giving, giving.id == Handover.from_cam_id)
        .join(receiving, receiving.id == Handover.to_cam_id)
        .order_by(Handover.created_at.desc(), Handover.id)
        .limit(limit)
    )
    return [(answer(h), from_name, to_name) for h, from_name, to_name in rows.all()]
