"""The program policy: read by anyone authenticated, changed by ops (each change a new version)."""
from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Principal, require_roles
from api.deps import get_principal, get_session
from domain.enums import Role
from domain.policy import ProgramPolicy, VersionedPolicy
from store import repo

router = APIRouter(prefix="/policy", tags=["policy"])


@router.get("", response_model=VersionedPolicy)
async def get_policy(principal: Principal = Depends(get_principal), session: AsyncSession = Depends(get_session)):
    """The current version; journeys started from now on use it."""
    return await repo.current_policy(session)


@router.get("/versions/{version}", response_model=VersionedPolicy)
async def get_policy_version(version: int, principal: Principal = Depends(get_principal),
                             session: AsyncSession = Depends(get_session)):
    snap = await repo.policy_version(session, version)
    if snap is None:
        raise HTTPException(404, detail=f"no policy version {version}")
    return snap


@router.put("", response_model=VersionedPolicy, status_code=201)
async def put_policy(body: ProgramPolicy, principal: Principal = Depends(require_roles(Role.ops)),
                     session: AsyncSession = Depends(get_session)):
    """Store a new version of the whole policy. It applies to journeys started after it;
    running journeys keep the version they started with."""
    version = await repo.save_policy(session, body, created_by=principal.actor)
    await repo.claim_step(session, key=None, actor=principal.actor, action="policy.changed",
                          detail={"version": version})
    await session.commit()
    return VersionedPolicy(version=version, policy=body)
