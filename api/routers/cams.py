"""Channel Account Managers: registered by ops, and deactivated by ops (offboarding)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel
from sqlalchemy import select, update

from api.deps import OpsDep, PrincipalDep, SessionDep
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


@router.post("/{cam_id}/deactivate", response_model=CamDeactivatedOut, responses={404: {"description": "no such CAM"}})
async def deactivate_cam(cam_id: uuid.UUID, principal: OpsDep, session: SessionDep):
    """Offboarding, at once: the CAM's API keys are revoked, its workspace sessions end, it cannot
    sign in, and its decisions (keys, sessions, one-click links) are refused. Its partners keep
    working and keep it as their CAM until ops move them (`PATCH /partners/{id}`)."""
    cam = await session.get(Cam, cam_id, with_for_update=True)
    if cam is None:
        raise HTTPException(404, detail=f"no CAM with id {cam_id}")
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
