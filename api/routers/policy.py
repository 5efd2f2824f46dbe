"""The program policy: read by anyone authenticated, changed by ops (each change a new version)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Path

from api.deps import OpsDep, PrincipalDep, SessionDep
from domain.policy import ProgramPolicy, VersionedPolicy
from store import repo

router = APIRouter(prefix="/policy", tags=["policy"])


@router.get("", response_model=VersionedPolicy)
async def get_policy(principal: PrincipalDep, session: SessionDep):
    """The current version; journeys started from now on use it."""
    return await repo.current_policy(session)


@router.get("/versions/{version}", response_model=VersionedPolicy)
async def get_policy_version(principal: PrincipalDep, session: SessionDep, version: int = Path(ge=1, le=2_147_483_647)):
    snap = await repo.policy_version(session, version)
    if snap is None:
        raise HTTPException(404, detail=f"no policy version {version}")
    return snap


@router.put("", response_model=VersionedPolicy, status_code=201)
async def put_policy(body: ProgramPolicy, principal: OpsDep, session: SessionDep):
    """Store a new version of the whole policy. It applies to journeys started after it;
    running journeys keep the version they started with."""
    version = await repo.save_policy(session, body, created_by=principal.actor)
    await repo.claim_step(
        session, key=None, actor=principal.actor, action="policy.changed", detail={"version": version}
    )
    await session.commit()
    return VersionedPolicy(version=version, policy=body)
