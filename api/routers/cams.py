"""Channel Account Managers: registered by ops."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from sqlalchemy import select

from api.deps import OpsDep, PrincipalDep, SessionDep
from api.idempotency import Idempotency
from api.schemas import CamCreate, CamOut, IdempotencyKey
from domain.enums import Role
from store import repo
from store.models import Cam

router = APIRouter(prefix="/cams", tags=["cams"])


@router.post(
    "", status_code=201, response_model=CamOut, responses={409: {"description": "a CAM with this email exists"}}
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
