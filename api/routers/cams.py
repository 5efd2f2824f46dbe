"""Channel Account Managers: registered by ops, and deactivated by ops (offboarding)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel
from sqlalchemy import select, update

from api import handover
from api.deps import OpsDep, PrincipalDep, SessionDep, SettingsDep, TemporalDep
from api.handover import HandoverCreate, HandoverOut
from api.idempotency import Idempotency
from api.offboarding import end_sessions
from api.openapi import IDEMPOTENCY_409
from api.partners.service import portfolio
from api.routemeta import route_meta
from api.schemas import CamCreate, CamOut, IdempotencyKey
from domain.enums import Role
from journeys.health.contract import CamLoad, HealthPolicy, cam_load
from store import repo
from store.models import ApiKey, Cam

router = APIRouter(prefix="/cams", tags=["cams"])


class CamDeactivatedOut(BaseModel):
    id: uuid.UUID
    email: str
    deactivated_at: datetime
    keys_revoked: int
    sessions_ended: int


@router.post(
    "",
    status_code=201,
    response_model=CamOut,
    responses={409: {"description": "a CAM with this email exists"}},
    openapi_extra=route_meta({409: f"a CAM with this email exists, or {IDEMPOTENCY_409}"}),
)
async def create_cam(
    body: CamCreate,
    request: Request,
    principal: OpsDep,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
):
    idem = Idempotency(session, principal, idempotency_key, request.url.path, body)

    async def create() -> dict:
        if existing := await session.scalar(select(Cam.id).where(Cam.email == body.email)):
            raise HTTPException(409, detail=f"a CAM with email {body.email} already exists (cam {existing})")
        cam = Cam(id=uuid.uuid4(), name=body.name, email=body.email)
        session.add(cam)
        await session.flush()
        await repo.claim_step(
            session,
            key=None,
            actor=principal.actor,
            action="cam.created",
            detail={"cam_id": str(cam.id), "email": cam.email},
        )
        await session.refresh(cam)
        out = jsonable_encoder(CamOut.model_validate(cam))
        await idem.remember(201, out)
        await session.commit()
        return out

    return await idem.run(create)


@router.get("", response_model=list[CamOut])
async def list_cams(principal: OpsDep, session: SessionDep):
    return (await session.scalars(select(Cam).order_by(Cam.name, Cam.id))).all()


@router.get("/{cam_id}", response_model=CamOut)
async def get_cam(cam_id: uuid.UUID, principal: PrincipalDep, session: SessionDep):
    if principal.role == Role.partner or (principal.role == Role.cam and principal.cam_id != cam_id):
        raise HTTPException(403, detail=f"your {principal.role.value} key may not read CAM {cam_id}")
    cam = await session.get(Cam, cam_id)
    if cam is None:
        raise HTTPException(404, detail=f"no CAM with id {cam_id}")
    return cam


@router.get("/{cam_id}/capacity", response_model=CamLoad, responses={404: {"description": "no such CAM"}})
async def cam_capacity(cam_id: uuid.UUID, principal: PrincipalDep, session: SessionDep):
    """The CAM's load: its partners by tier and the share of one CAM they take (policy
    `health.coverage`), against `health.max_partners_per_cam`; ops, or the CAM itself."""
    await get_cam(cam_id, principal, session)
    return cam_load(await portfolio(session, cam_id), (await repo.current_policy(session)).policy.section(HealthPolicy))


@router.post(
    "/{cam_id}/handover",
    status_code=202,
    response_model=HandoverOut,
    responses={404: {"description": "no such CAM"}, 409: {"description": "nothing to hand over, or beyond capacity"}},
    openapi_extra=route_meta(
        {
            409: "the CAM has no partners or a handover running, the receiving CAM would be beyond capacity "
            f"(ops may confirm with override_capacity), or {IDEMPOTENCY_409}",
            503: "Temporal did not start the handover: nothing was handed over",
        },
        business_rule="the receiving CAM is unknown, deactivated or the same CAM, or a partner named is not the CAM's",
    ),
)
async def hand_over(
    cam_id: uuid.UUID,
    body: HandoverCreate,
    request: Request,
    principal: OpsDep,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
):
    """Hand some or all of the CAM's partners over to another CAM, durably (`cam-handover-{id}`):
    each partner's CAM changes and its running journeys follow (pending approvals included: the
    old CAM's one-click links answer 410, the receiving CAM's handover pack carries new ones);
    each partner gets an introduction email, the receiving CAM one handover pack (portfolio, open
    items, health). Progress: `GET /cams/{id}/handovers/{handover id}`."""
    idem = Idempotency(session, principal, idempotency_key, request.url.path, body)
    return await idem.run(
        lambda: handover.start(session, temporal, principal, cam_id, body, task_queue=settings.task_queue, idem=idem),
        status_code=202,
    )


@router.get(
    "/{cam_id}/handovers/{handover_id}",
    response_model=HandoverOut,
    responses={404: {"description": "no such handover of this CAM"}},
)
async def get_handover(cam_id: uuid.UUID, handover_id: uuid.UUID, principal: PrincipalDep, session: SessionDep):
    """A handover's progress, partner by partner (ops, or either CAM of the handover)."""
    return await handover.read(session, principal, cam_id, handover_id)


@router.post(
    "/{cam_id}/deactivate",
    response_model=CamDeactivatedOut,
    responses={404: {"description": "no such CAM"}, 409: {"description": "the CAM still has partners"}},
    openapi_extra=route_meta({409: "the CAM still covers partners: hand them over first"}),
)
async def deactivate_cam(cam_id: uuid.UUID, principal: OpsDep, session: SessionDep):
    """Offboarding, at once: the CAM's API keys are revoked, its workspace sessions end, it cannot
    sign in, and its decisions (keys, sessions, one-click links) are refused. A CAM who still
    covers partners is refused (409): hand them over first (`POST /cams/{id}/handover`)."""
    cam = await session.get(Cam, cam_id, with_for_update=True)
    if cam is None:
        raise HTTPException(404, detail=f"no CAM with id {cam_id}")
    if cam.deactivated_at is None and (count := await handover.partner_count(session, cam.id)):
        raise HTTPException(
            409,
            detail=f"CAM {cam_id} still covers {count} partner(s): hand them over to another CAM first "
            f"(POST /cams/{cam_id}/handover with to_cam_id), then deactivate",
        )
    now = datetime.now(UTC)
    revoked = await session.execute(
        update(ApiKey).where(ApiKey.cam_id == cam.id, ApiKey.revoked_at.is_(None)).values(revoked_at=now)
    )
    keys = revoked.rowcount  # type: ignore[attr-defined]
    ended = await end_sessions(session, cam_id=cam.id)
    if cam.deactivated_at is None:
        cam.deactivated_at = now
        await repo.claim_step(
            session,
            key=None,
            actor=principal.actor,
            action="cam.deactivated",
            detail={"cam_id": str(cam.id), "email": cam.email, "keys_revoked": keys, "sessions_ended": ended},
        )
    out = CamDeactivatedOut(
        id=cam.id, email=cam.email, deactivated_at=cam.deactivated_at, keys_revoked=keys, sessions_ended=ended
    )
    await session.commit()
    return out
