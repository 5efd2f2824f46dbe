"""API keys: created by ops for a role (a CAM key is bound to a CAM, a partner key to a partner),
and revoked by ops (offboarding): a revoked key is refused (401) from the next request on."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import OpsDep, SessionDep
from api.idempotency import Idempotency
from api.openapi import IDEMPOTENCY_409
from api.routemeta import route_meta
from api.schemas import ApiKeyCreate, ApiKeyOut, IdempotencyKey
from core import registry
from domain.enums import Role
from store import repo
from store.apikeys import create_api_key
from store.models import ApiKey, Cam, Partner

router = APIRouter(prefix="/api-keys", tags=["auth"])

SHOWN_ONCE = "(shown once, in the first answer: revoke this key and create another if it was lost)"


class ApiKeyRevokedOut(BaseModel):
    id: uuid.UUID
    role: Role
    label: str
    revoked_at: datetime


async def check_binding(session: AsyncSession, body: ApiKeyCreate) -> None:
    if body.role == Role.cam:
        if body.cam_id is None or body.partner_id is not None:
            raise HTTPException(422, detail="cam_id: a cam key needs cam_id (and no partner_id)")
        cam = await session.get(Cam, body.cam_id)
        if cam is None:
            raise HTTPException(422, detail=f"cam_id: no CAM with id {body.cam_id}")
        if cam.deactivated_at is not None:
            raise HTTPException(422, detail=f"cam_id: CAM {body.cam_id} is deactivated")
    elif body.role == Role.partner:
        if body.partner_id is None or body.cam_id is not None:
            raise HTTPException(422, detail="partner_id: a partner key needs partner_id (and no cam_id)")
        if await session.get(Partner, body.partner_id) is None:
            raise HTTPException(422, detail=f"partner_id: no partner with id {body.partner_id}")
    elif body.cam_id is not None or body.partner_id is not None:
        raise HTTPException(422, detail="role: an ops key is bound to no CAM and no partner")
    if body.integration and body.role != Role.ops:
        raise HTTPException(422, detail="integration: only an ops key is an integration key")
    grants = registry.grants()
    for name in requested_grants(body):
        if body.role not in (grant := grants[name]).roles:
            roles = " or ".join(r.value for r in grant.roles)
            raise HTTPException(422, detail=f"{grant.api_field}: only an {roles} key carries {grant.label}")


def requested_grants(body: ApiKeyCreate) -> dict[str, Any]:
    """The journeys' grants the request sets (each by its `POST /api-keys` field), by full name."""
    values = {name: getattr(body, grant.api_field, None) for name, grant in registry.grants().items()}
    return {name: value for name, value in values.items() if value is not None}


@router.post(
    "",
    status_code=201,
    response_model=ApiKeyOut,
    openapi_extra=route_meta(
        {409: IDEMPOTENCY_409},
        business_rule="the CAM or partner a key is bound to must exist (and the CAM be active)",
    ),
)
async def create_key(
    body: ApiKeyCreate,
    request: Request,
    principal: OpsDep,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
):
    """Create a key; the secret is in the answer once and stored only as a hash."""
    idem = Idempotency(session, principal, idempotency_key, request.url.path, body)

    async def create() -> dict:
        await check_binding(session, body)
        row, secret = await create_api_key(
            session,
            role=body.role,
            cam_id=body.cam_id,
            partner_id=body.partner_id,
            label=body.label,
            grants=requested_grants(body),
            integration=body.integration,
        )
        await repo.claim_step(
            session,
            key=None,
            actor=principal.actor,
            action="api_key.created",
            partner_id=body.partner_id,
            detail={"key_id": str(row.id), "role": body.role.value, "prefix": row.prefix},
        )
        out = jsonable_encoder(
            ApiKeyOut(
                id=row.id,
                role=body.role,
                cam_id=body.cam_id,
                partner_id=body.partner_id,
                label=body.label,
                approver_level=body.approver_level,
                integration=body.integration,
                key=secret,
            )
        )
        await idem.remember(201, {**out, "key": SHOWN_ONCE})  # the stored answer keeps no secret
        await session.commit()
        return out

    return await idem.run(create)


@router.post("/{key_id}/revoke", response_model=ApiKeyRevokedOut, responses={404: {"description": "no such key"}})
async def revoke_key(key_id: uuid.UUID, principal: OpsDep, session: SessionDep):
    """Revoke a key at once (offboarding); revoking a revoked key changes nothing."""
    row = await session.get(ApiKey, key_id, with_for_update=True)
    if row is None:
        raise HTTPException(404, detail=f"no API key with id {key_id}")
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
        await repo.claim_step(
            session,
            key=None,
            actor=principal.actor,
            action="api_key.revoked",
            partner_id=row.partner_id,
            detail={"key_id": str(row.id), "role": row.role, "prefix": row.prefix},
        )
    out = ApiKeyRevokedOut(id=row.id, role=Role(row.role), label=row.label, revoked_at=row.revoked_at)
    await session.commit()
    return out
