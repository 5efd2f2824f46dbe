"""Small data-access helpers shared by the API and the activities."""

from __future__ import annotations

import functools
import uuid
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import CTE, ColumnElement, Executable, Select, and_, bindparam, case, exists, func, select
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.journeys import workflow_id
from domain.policy import ProgramPolicy, VersionedPolicy
from store import locks
from store.db import bound, table_of
from store.models import AuditEvent, JourneyRecord, Partner, PolicyVersion


async def claim_step(
    session: AsyncSession,
    *,
    key: str | None,
    actor: str,
    action: str,
    partner_id: uuid.UUID | str | None = None,
    journey: str | None = None,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
    state: tuple[str, str] | None = None,
) -> bool:
    """Write the audit row of a state change. With a key, the unique constraint makes the step
    happen once: returns False (and writes nothing) when the key was already used, in which
    case the caller must not repeat the change. Runs inside the caller's transaction.

    `state`, (entity id, state): the journey's read model (`set_journey_state`) takes that state
    in the same statement, only when the step is claimed: one round trip for both."""
    params = claim_params(key=key, actor=actor, action=action, partner_id=partner_id, journey=journey, detail=detail)
    params["at"] = at
    if state is None:
        result = await session.execute(_claim(), params)
    else:
        assert partner_id and journey, "a journey's state belongs to a partner's journey"
        entity_id, new_state = state
        params |= {"workflow_id": workflow_id(journey, entity_id), "state": new_state}
        result = await session.execute(_claim_and_state(), params)
    return result.scalar_one_or_none() is not None


def claim_params(
    *,
    key: str | None,
    actor: str,
    action: str,
    partner_id: uuid.UUID | str | None = None,
    journey: str | None = None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The bound values of `claimed()` (as `claim_step` takes them; `at` is the transaction's time)."""
    return {
        "idempotency_key": key,
        "actor": actor,
        "action": action,
        "partner_id": uuid.UUID(str(partner_id)) if partner_id else None,
        "journey": journey,
        "detail": detail or {},
        "at": None,
    }


def claimed() -> CTE:
    """`claim_step`'s INSERT as the CTE `claimed` (a row, its `id`, when it claimed the key): for a
    statement that writes its own rows only when the step is claimed, with its values bound by
    the same names (`claim_params`; a column of the same name takes the same value)."""
    return cast(Insert, _claim()).cte("claimed")


# The statements every step sends, built once with their values bound by name: building an ORM
# statement costs more CPU than sending it (a published event: 1.5 ms built each time, 0.6 ms
# prebuilt; bench/README.md, session 40). Writes go to the table, not the mapped class: an ORM
# INSERT is rebuilt by the session's bulk path on every call (its cache key computed again).


@functools.cache
def _claim() -> Executable:
    """`claim_step`'s INSERT. A key of None never conflicts (NULLs are distinct), as before; `at`
    None is the transaction's time, as the column's default."""
    table = table_of(AuditEvent)
    return (
        insert(table)
        .values(
            **bound(AuditEvent, "idempotency_key", "actor", "action", "partner_id", "journey", "detail"),
            at=func.coalesce(bindparam("at", type_=AuditEvent.at.type), func.now()),
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(table.c.id)
    )


@functools.cache
def _claim_and_state() -> Executable:
    """`claim_step` with `state`: the claim, and the read model's upsert (`_journey_state`'s) only
    when it claimed, in one data-modifying CTE."""
    claim = claimed()
    upsert = _state_upsert(exists(select(claim.c.id)))
    return select(claim.c.id).add_cte(upsert.cte("state"))


def _state_upsert(*where: ColumnElement[bool]) -> Insert:
    """The read model's upsert of a journey's state (`workflow_id`, `partner_id`, `journey` and
    `state` bound), when `where` holds. The other columns of a new record take their server
    defaults (coverage_version 0, updated_at now())."""
    records = table_of(JourneyRecord)
    row = select(*bound(JourneyRecord, "workflow_id", "partner_id", "journey", "state").values()).where(*where)
    upsert = insert(records).from_select(["workflow_id", "partner_id", "journey", "state"], row, include_defaults=False)
    return upsert.on_conflict_do_update(
        index_elements=["workflow_id"], set_={"state": upsert.excluded.state, "updated_at": func.now()}
    )


@functools.cache
def _newest_policy() -> Select:
    """`current_policy`'s read: the newest version, its body only when it is not the known one."""
    known = bound(PolicyVersion, "version", "created_at")
    same = and_(PolicyVersion.version == known["version"], PolicyVersion.created_at == known["created_at"])
    return (
        select(PolicyVersion.version, PolicyVersion.created_at, case((same, None), else_=PolicyVersion.body))
        .order_by(PolicyVersion.version.desc())
        .limit(1)
    )


@functools.cache
def _journey_state() -> Insert:
    """`set_journey_state`'s upsert."""
    return _state_upsert()


# The newest policy this process parsed, by (version, created_at): versions are never changed
# once written, and `created_at` tells a version apart from a same-numbered one written after
# the table was emptied (tests). Every read still asks the database which version is the newest.
_parsed: tuple[tuple[int, datetime], ProgramPolicy] | None = None


async def current_policy(session: AsyncSession) -> VersionedPolicy:
    """The newest policy version. Migration 0002 stores version 1 (the built-in defaults);
    should it be missing, version 1 is the defaults (written only if the caller commits).
    One statement, read in the caller's transaction (never stale); the body is sent and parsed
    only when it is not the one this process parsed last."""
    global _parsed
    known = _parsed[0] if _parsed is not None else (0, datetime.min.replace(tzinfo=UTC))
    row = (await session.execute(_newest_policy(), {"version": known[0], "created_at": known[1]})).first()
    if row is None:
        await session.execute(
            insert(PolicyVersion)
            .values(version=1, body=ProgramPolicy().model_dump(mode="json"), created_by="system:defaults")
            .on_conflict_do_nothing(index_elements=["version"])
        )
        return VersionedPolicy(version=1, policy=ProgramPolicy())
    version, created_at, body = row
    if _parsed is None or body is not None:
        _parsed = ((version, created_at), ProgramPolicy.model_validate(body))
    return VersionedPolicy(version=version, policy=_parsed[1])


def parsed_policy(version: int, created_at: datetime) -> ProgramPolicy | None:
    """The policy of that version (and `created_at`) if it is the newest this process parsed
    (`current_policy`), without a statement; None otherwise."""
    if _parsed is not None and _parsed[0] == (version, created_at):
        return _parsed[1]
    return None


async def policy_version(session: AsyncSession, version: int) -> VersionedPolicy | None:
    row = await session.get(PolicyVersion, version)
    if row is None:
        return None
    return VersionedPolicy(version=row.version, policy=ProgramPolicy.model_validate(row.body))


async def save_policy(session: AsyncSession, policy: ProgramPolicy, created_by: str) -> int:
    """Store a new policy version (in the caller's transaction) and return its number."""
    await current_policy(session)  # make sure version 1 exists so numbering is stable
    await locks.lock(session, "policy:versions")
    latest = await session.scalar(select(func.max(PolicyVersion.version)))
    version = (latest or 0) + 1
    session.add(PolicyVersion(version=version, body=policy.model_dump(mode="json"), created_by=created_by))
    await session.flush()
    return version


async def set_journey_state(
    session: AsyncSession, partner_id: uuid.UUID, journey: str, entity_id: str, state: str
) -> None:
    """Upsert the read model of a journey (the `journeys` table), in the caller's transaction."""
    params = {
        "workflow_id": workflow_id(journey, entity_id),
        "partner_id": partner_id,
        "journey": journey,
        "state": state,
    }
    await session.execute(_journey_state(), params)


def behind_coverage(following: list[str]) -> Select[str]:
    """The journeys of `following` (those that follow coverage) not told their partner's current
    coverage version (a journey whose recorded start is not confirmed yet is told once started)."""
    return (
        select(JourneyRecord.workflow_id)
        .join(Partner, Partner.id == JourneyRecord.partner_id)
        .where(
            JourneyRecord.journey.in_(following),
            JourneyRecord.coverage_version < Partner.coverage_version,
            ~(JourneyRecord.started_at.is_(None) & JourneyRecord.start_input.is_not(None)),
        )
        .order_by(JourneyRecord.workflow_id)
    )
