"""The program policy: read by anyone authenticated, changed by ops (each change a new version)."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, HTTPException, Path

from api import journeys
from api.deps import OpsDep, PrincipalDep, SessionDep, SettingsDep, TemporalDep
from api.routemeta import route_meta
from core.hooks import policy_saved
from domain.policy import ProgramPolicy, VersionedPolicy
from store import repo

router = APIRouter(prefix="/policy", tags=["policy"])
log = logging.getLogger(__name__)


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


@router.put(
    "",
    response_model=VersionedPolicy,
    status_code=201,
    openapi_extra=route_meta(
        business_rule=(
            "the policy's cross-field rules (e.g. milestones due within the plan, escalation after the "
            "SLA, rules for every tier) are model validators in domain/policy.py"
        ),
        cross_field=True,
    ),
)
async def put_policy(
    body: ProgramPolicy, principal: OpsDep, session: SessionDep, temporal: TemporalDep, settings: SettingsDep
):
    """Store a new version of the whole policy. It applies to journeys started after it (on every
    worker, no restart); running journeys keep the version they started with. The QBR cycle's
    schedule follows it at once (else within a worker's next policy check). A journey every partner
    has that it turns on (e.g. `health.watch`) is recorded for every partner enrolled before and
    started by the reconciler."""
    version = await repo.save_policy(session, body, created_by=principal.actor)
    await repo.claim_step(
        session, key=None, actor=principal.actor, action="policy.changed", detail={"version": version}
    )
    # The journeys every partner has that this version turns on (e.g. health.watch), for the
    # partners enrolled before: recorded with the version, started by the reconciler.
    await journeys.backfill_every_partner(session, settings.task_queue, VersionedPolicy(version=version, policy=body))
    await session.commit()
    try:
        async with asyncio.timeout(5):
            await policy_saved(temporal, body, settings.task_queue, version)
    except Exception:  # stored already; the workers apply it at their next check
        log.exception("policy version %s: the journeys' policy hooks are left to the workers' next check", version)
    return VersionedPolicy(version=version, policy=body)
