"""The journeys' policy hooks (`JourneySpec.on_policy_saved`, e.g. the QBR cycle's schedule):
run by `PUT /policy` as soon as a version is stored, and by every worker at start and whenever it
sees a newer version (should the API's attempt have failed), so no restart is ever needed."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from core import registry
from domain.policy import ProgramPolicy
from store import repo
from store.models import PolicyVersion

POLICY_CHECK_SECONDS = 15.0  # how often a worker looks for a new policy version (one indexed read)
log = logging.getLogger(__name__)


async def policy_saved(client: Client, policy: ProgramPolicy, task_queue: str, version: int) -> None:
    """Every journey's hook, in registry order; each is idempotent (a version never goes back)."""
    for spec in registry.JOURNEYS:
        if spec.on_policy_saved is not None:
            await spec.on_policy_saved(client, policy, task_queue, version)


async def apply_current_policy(client: Client, sessionmaker: async_sessionmaker[AsyncSession], task_queue: str) -> int:
    """The hooks with the current policy version (the worker does this at start); its version."""
    async with sessionmaker() as session:
        current = await repo.current_policy(session)
    await policy_saved(client, current.policy, task_queue, current.version)
    return current.version


async def follow_policy(
    client: Client,
    sessionmaker: async_sessionmaker[AsyncSession],
    task_queue: str,
    every: float = POLICY_CHECK_SECONDS,
) -> None:
    """Run by every worker: apply the hooks at start and whenever a newer policy version is stored
    (every worker converges on the same, newest version)."""
    applied: int | None = None
    while True:
        try:
            async with sessionmaker() as session:
                latest = await session.scalar(select(func.max(PolicyVersion.version)))
            if latest != applied:
                await apply_current_policy(client, sessionmaker, task_queue)
                applied = latest
        except Exception:  # the database or Temporal away for a moment: try again at the next check
            log.exception("could not bring the journeys in line with the policy; trying again")
        await asyncio.sleep(every)
