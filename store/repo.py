"""Small data-access helpers shared by the API and the activities."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    CTE,
    ColumnElement,
    Executable,
    Select,
    Subquery,
    Table,
    and_,
    bindparam,
    case,
    exists,
    func,
    select,
    true,
    update,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

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


@dataclass(frozen=True)
class NewRow:
    """A row written in a creation's statement (`write_created`): its model, its values by column
    name, and the unique columns whose conflict leaves the row unwritten (ON CONFLICT DO NOTHING)."""

    model: type
    values: dict[str, Any]
    conflict: tuple[str, ...] = ()


async def write_created(
    session: AsyncSession,
    entity: Any,
    rows: Sequence[NewRow],
    *,
    check: Check | None = None,
    **claim: Any,
) -> Mapping[str, Any] | None:
    """A creation in one statement: the entity (when not written yet), `rows` (its journey record,
    ...) and the audit row claiming `claim` (`claim_params`; none without `claim`), as
    data-modifying CTEs: one round trip instead of one per row. A unique violation raises
    IntegrityError and writes nothing, as the rows' own INSERTs would. The entity comes back with
    its server defaults (RETURNING) and joins the session as if it had been flushed. Foreign keys
    between the rows hold: PostgreSQL checks them at the end of the statement.
    `check`: a read sent in the same statement (its snapshot, which does not see the rows written
    here), whose one row's columns are returned (e.g. a registration's conflict read, again after
    its locks: api/journeys.py `NewJourney.check`)."""
    state = sa_inspect(entity)
    assert not state.pending, "a creation's entity is written here or flushed before, not added"
    shapes: list[tuple[Table, tuple[str, ...], tuple[str, ...]]] = []
    params: dict[str, Any] = {}
    if state.transient:
        values = {p.columns[0].name: state.dict[p.key] for p in state.mapper.column_attrs if p.key in state.dict}
        rows = [NewRow(type(entity), values), *rows]
    for i, row in enumerate(rows):
        table = table_of(row.model)
        values = {**_python_defaults(table, row.values), **row.values}
        shapes.append((table, tuple(values), row.conflict))
        params |= {f"r{i}_{name}": value for name, value in values.items()}
    if claim:
        params |= claim_params(**claim)
    if check is not None:
        assert state.transient, "a check comes back with the entity's row"
        clash = {k for k, v in check.params.items() if k in params and params[k] != v}
        assert not clash, f"the check binds {sorted(clash)} to other values than the creation's"
        params |= check.params
    read = check.read if check is not None else None
    result = await session.execute(_created(tuple(shapes), state.transient, bool(claim), read), params)
    if not state.transient:
        return None
    written = result.one()._mapping
    make_transient_to_detached(entity)
    for p in state.mapper.column_attrs:
        set_committed_value(entity, p.key, written[p.columns[0].name])
    session.add(entity)  # persistent: known to the session, nothing left to flush
    return {c.name: written[c.name] for c in read.c} if read is not None else None


@dataclass(frozen=True)
class Check:
    """A read sent with a creation (`write_created`): a subquery of one row, built once (its
    columns' names must differ from the entity's), its bound values, and what the caller decided
    on (`expect`: columns of the read and their values; `held`)."""

    read: Subquery
    params: Mapping[str, Any]
    expect: Mapping[str, Any]

    def held(self, seen: Mapping[str, Any] | None) -> bool:
        """Whether the read, sent again with the write, still found what was decided on."""
        return seen is not None and all(seen[k] == v for k, v in self.expect.items())


def _python_defaults(table: Table, given: dict[str, Any]) -> dict[str, Any]:
    """The values of the columns' Python-side defaults not `given` (SQLAlchemy would bind each by
    its column's name, and two tables of one statement could both have such a column)."""
    out = {}
    for c in table.columns:
        default = c.default
        if c.name in given or default is None or not (default.is_scalar or default.is_callable):
            continue
        out[c.name] = default.arg if default.is_scalar else default.arg(None)  # type: ignore[attr-defined]
    return out


@functools.cache
def _created(
    shapes: tuple[tuple[Table, tuple[str, ...], tuple[str, ...]], ...],
    returning: bool,
    audited: bool = True,
    read: Subquery | None = None,
) -> Select:
    """`write_created`'s statement for rows of these shapes (table, columns bound as `r<i>_<name>`,
    conflict columns), built once per shape: the first row's columns returned when `returning`,
    with `read`'s (outer-joined: its row or NULLs); the audit row's claim when `audited`."""
    ctes = []
    for i, (table, columns, conflict) in enumerate(shapes):
        row = insert(table).values({c: bindparam(f"r{i}_{c}", type_=table.c[c].type) for c in columns})
        if conflict:
            row = row.on_conflict_do_nothing(index_elements=list(conflict))
        ctes.append((row.returning(*table.c) if i == 0 and returning else row).cte(f"r{i}"))
    claim = [claimed()] if audited else []
    if returning and read is not None:
        return select(*ctes[0].c, *read.c).select_from(ctes[0].outerjoin(read, true())).add_cte(*ctes[1:], *claim)
    if returning:
        return select(*ctes[0].c).add_cte(*ctes[1:], *claim)
    assert claim, "a creation writes its entity or claims its audit row: else it has nothing to answer"
    return select(claim[0].c.id).add_cte(*ctes)


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


@dataclass(frozen=True)
class Recorded:
    """`record_state`'s answer: the entity's partner (None: no such entity, nothing written) and
    whether this call claimed the step (False: the key was used before, nothing written)."""

    partner_id: uuid.UUID | None
    applied: bool


async def record_state(
    session: AsyncSession,
    model: type,
    entity_id: uuid.UUID,
    values: dict[str, Any],
    *,
    key: str,
    actor: str,
    action: str,
    journey: str,
    state: str,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
    once: dict[str, Any] | None = None,
) -> Recorded:
    """A journey's state change of its entity (a row of `model` with a `partner_id`) in one
    statement: the audit row claiming `key` for the entity's partner, and only when it claimed,
    the journey's read model taking `state` and the entity's UPDATE of `values` (by column name).
    Neither the entity is read before nor a lock taken: the UPDATE locks its row. One round trip
    instead of a read, a claim and an UPDATE; in an autocommitted session (`db.autocommit`), the
    whole step, without BEGIN and COMMIT.

    `once`: columns set only while the first of them is still NULL (e.g. a first decision's
    `decided_by`, `decided_at` and reason), left as they are after that."""
    claim = claim_params(key=key, actor=actor, action=action, journey=journey, detail=detail)
    del claim["partner_id"]  # the entity's
    once = once or {}
    params = prefixed(CLAIM, claim | {"at": at}) | {
        "entity_id": entity_id,
        "j_workflow_id": workflow_id(journey, str(entity_id)),
        "j_state": state,
        **{f"v_{name}": value for name, value in (values | once).items()},
    }
    statement = _state_change(table_of(model), tuple(values), tuple(once))
    row = (await session.execute(statement, params)).one_or_none()
    if row is None:
        return Recorded(partner_id=None, applied=False)
    return Recorded(partner_id=row.partner_id, applied=row.claimed is not None)


# The prefix of a claim's values bound in a statement that also writes another table: SQLAlchemy
# sets a column of an INSERT or UPDATE from a bound value of the column's name (`partner_id`,
# `state`...), so there they are bound apart (`claimed_from`).
CLAIM = "c_"


def prefixed(prefix: str, params: dict[str, Any]) -> dict[str, Any]:
    return {f"{prefix}{name}": value for name, value in params.items()}


def claimed_from(partner_id: ColumnElement | None = None) -> CTE:
    """`claimed()` with its values bound as `c_<name>` (`prefixed(CLAIM, claim_params(...))`), for a
    statement that writes another table too; `partner_id`: the partner of the claim as a column
    of a CTE of the statement (the row is then claimed only when that CTE has one)."""
    audit = table_of(AuditEvent)
    names = ["idempotency_key", "journey", "actor", "action", "detail"] + (
        [] if partner_id is not None else ["partner_id"]
    )
    given = [bindparam(f"{CLAIM}{name}", type_=audit.c[name].type) for name in names]
    at = func.coalesce(bindparam(f"{CLAIM}at", type_=AuditEvent.at.type), func.now())
    row = select(*given, *([partner_id] if partner_id is not None else []), at)
    columns = names + (["partner_id"] if partner_id is not None else []) + ["at"]
    return (
        insert(audit)
        .from_select(columns, row)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(audit.c.id)
        .cte("claimed")
    )


@functools.cache
def _state_change(table: Table, columns: tuple[str, ...], once: tuple[str, ...] = ()) -> Select:
    """`record_state`'s statement for an entity table, the columns it sets and those it sets only
    while the first of `once` is NULL (all bound `v_<name>`), built once per shape. The claim and
    the read model take the partner from the entity's row; no row, no claim (and no answer row)."""
    entity_id = bindparam("entity_id", type_=table.c.id.type)
    entity = select(table.c.partner_id).where(table.c.id == entity_id).cte("entity")
    claim = claimed_from(entity.c.partner_id)
    did = exists(select(claim.c.id))
    records = table_of(JourneyRecord)
    named = (  # the record's journey is the claim's
        bindparam("j_workflow_id", type_=records.c.workflow_id.type),
        bindparam(f"{CLAIM}journey", type_=records.c.journey.type),
        bindparam("j_state", type_=records.c.state.type),
    )
    upsert = insert(records).from_select(
        ["workflow_id", "journey", "state", "partner_id"],
        select(*named, entity.c.partner_id).where(did),
        include_defaults=False,
    )
    upsert = upsert.on_conflict_do_update(
        index_elements=["workflow_id"], set_={"state": upsert.excluded.state, "updated_at": func.now()}
    )
    given: dict[str, ColumnElement] = {c: bindparam(f"v_{c}", type_=table.c[c].type) for c in columns + once}
    if once:  # the row's values before the UPDATE decide
        unset = table.c[once[0]].is_(None)
        given |= {c: case((unset, given[c]), else_=table.c[c]) for c in once}
    change = update(table).where(table.c.id == entity_id, did).values(given)
    answer = select(entity.c.partner_id, select(claim.c.id).scalar_subquery().label("claimed"))
    return answer.add_cte(claim, upsert.cte("state"), change.cte("changed"))


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


# The policies this process parsed, by version: (created_at, policy). Versions are never changed
# once written, and `created_at` tells a version apart from a same-numbered one written after the
# table was emptied (tests). Every read still asks the database; the body comes only when the
# version read is not the one kept here. `_newest`: the newest version `current_policy` read.
_parsed: dict[int, tuple[datetime, ProgramPolicy]] = {}
_newest: tuple[int, datetime] | None = None
_PARSED_KEPT = 64
_NEVER = datetime.min.replace(tzinfo=UTC)


def _parsed_as(version: int, created_at: datetime) -> ProgramPolicy | None:
    kept = _parsed.get(version)
    return kept[1] if kept is not None and kept[0] == created_at else None


def _policy_of(version: int, created_at: datetime, body: Any, known: ProgramPolicy | None) -> ProgramPolicy:
    """The policy of a version read with the `created_at` of `known` (what was kept before the
    read): `known` itself when the body was not sent, else the body parsed and kept."""
    if body is None and known is not None:
        return known
    policy = ProgramPolicy.model_validate(body)
    if len(_parsed) >= _PARSED_KEPT:
        _parsed.clear()
    _parsed[version] = (created_at, policy)
    return policy


async def current_policy(session: AsyncSession) -> VersionedPolicy:
    """The newest policy version. Migration 0002 stores version 1 (the built-in defaults);
    should it be missing, version 1 is the defaults (written only if the caller commits).
    One statement, read in the caller's transaction (never stale); the body is sent and parsed
    only when it is not the one this process parsed last. No statement at all when a statement
    moments before in the same transaction (the request's key lookup, a create's first read) saw
    that the newest version is the one parsed (`saw_newest_policy`; used once)."""
    global _newest
    seen = session.info.pop(_NEWEST_SEEN, None)
    if seen is not None and seen == _newest and (policy := _parsed_as(*seen)) is not None:
        return VersionedPolicy(version=seen[0], policy=policy)
    known = _parsed_as(*_newest) if _newest is not None else None
    version, created_at = _newest if _newest is not None and known is not None else (0, _NEVER)
    params = {"version": version, "created_at": created_at}
    row = (await session.execute(_newest_policy(), params)).first()
    if row is None:
        await session.execute(
            insert(PolicyVersion)
            .values(version=1, body=ProgramPolicy().model_dump(mode="json"), created_by="system:defaults")
            .on_conflict_do_nothing(index_elements=["version"])
        )
        return VersionedPolicy(version=1, policy=ProgramPolicy())
    version, created_at, body = row
    policy = _policy_of(version, created_at, body, known)
    _newest = (version, created_at)
    return VersionedPolicy(version=version, policy=policy)


def newest_policy_version() -> Subquery:
    """The newest policy version and its `created_at` (`policy_version`, `policy_created_at`): a
    subquery another statement joins (the API key lookup), so a request learns it without a
    round trip of its own."""
    newest = select(PolicyVersion.version.label("policy_version"), PolicyVersion.created_at.label("policy_created_at"))
    return newest.order_by(PolicyVersion.version.desc()).limit(1).subquery("newest_policy")


def saw_newest_policy(session: AsyncSession, version: int | None, created_at: datetime | None) -> None:
    """What a statement of this session's transaction read as the newest policy version
    (`newest_policy_version`): the next `current_policy` uses it instead of asking again."""
    if version is not None and created_at is not None:
        session.info[_NEWEST_SEEN] = (version, created_at)


_NEWEST_SEEN = "camlights.newest_policy"


def parsed_policy(version: int, created_at: datetime) -> ProgramPolicy | None:
    """The policy of that version (and `created_at`) if it is the newest this process parsed
    (`current_policy`), without a statement; None otherwise."""
    return _parsed_as(version, created_at) if _newest == (version, created_at) else None


@functools.cache
def pinned_policy_read() -> Subquery:
    """`policy_version`'s read as a subquery (one row or none) another statement joins, so a step
    reads the version its journey pinned with its own first read (`with_pinned_policy`;
    `PinnedPolicy` binds it and takes its two columns): the version's `policy_created_at`, and
    its `policy_body` only when it is not the one this process parsed."""
    known_at = bindparam("policy_known_at", type_=PolicyVersion.created_at.type)
    return (
        select(
            PolicyVersion.created_at.label("policy_created_at"),
            case((PolicyVersion.created_at == known_at, None), else_=PolicyVersion.body).label("policy_body"),
        )
        .where(PolicyVersion.version == bindparam("policy_version", type_=PolicyVersion.version.type))
        .subquery("pinned_policy")
    )


def with_pinned_policy(stmt: Select) -> Select:
    """`stmt`, a read of one row by its key, with the pinned version's `policy_created_at` and
    `policy_body` (`pinned_policy_read`, outer-joined: the row is read whether or not the version
    exists), bound by `PinnedPolicy.params` and taken by `PinnedPolicy.or_newest`."""
    pinned = pinned_policy_read()
    return stmt.add_columns(pinned.c.policy_created_at, pinned.c.policy_body).outerjoin(pinned, true())


@dataclass(frozen=True)
class PinnedPolicy:
    """One read of a pinned `version` through `pinned_policy_read`: its bound values (`params`),
    and the policy from the row it read (`of`), parsed only when the body was sent."""

    version: int
    kept: tuple[datetime, ProgramPolicy] | None = None  # what this process had parsed before the read

    @classmethod
    def of_version(cls, version: int) -> PinnedPolicy:
        return cls(version, _parsed.get(version))

    @property
    def params(self) -> dict[str, Any]:
        return {"policy_version": self.version, "policy_known_at": self.kept[0] if self.kept else _NEVER}

    def of(self, created_at: datetime | None, body: Any) -> VersionedPolicy | None:
        """None: there is no such version."""
        if created_at is None:
            return None
        policy = _policy_of(self.version, created_at, body, self.kept[1] if self.kept else None)
        return VersionedPolicy(version=self.version, policy=policy)

    async def or_newest(self, session: AsyncSession, row: Any) -> VersionedPolicy:
        """The version a `with_pinned_policy` statement read in `row`, else (not stored) the newest."""
        return self.of(row.policy_created_at, row.policy_body) or await current_policy(session)


@functools.cache
def _policy_version_read() -> Select:
    """`policy_version`'s statement: `pinned_policy_read` alone."""
    read = pinned_policy_read()
    return select(read.c.policy_created_at, read.c.policy_body)


async def policy_version(session: AsyncSession, version: int) -> VersionedPolicy | None:
    """A stored version (None if there is none). One statement, which sends the body (about 7 kB
    of JSON, parsed and validated into the policy) only when this process has not parsed this
    version as written at that `created_at` (a journey's steps read their pinned version again
    and again: the routing of every lead, each health evaluation)."""
    read = PinnedPolicy.of_version(version)
    row = (await session.execute(_policy_version_read(), read.params)).first()
    return read.of(*row) if row is not None else None


async def save_policy(session: AsyncSession, policy: ProgramPolicy, created_by: str) -> int:
    """Store a new policy version (in the caller's transaction) and return its number."""
    session.info.pop(_NEWEST_SEEN, None)  # no longer the newest once this one is written
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
