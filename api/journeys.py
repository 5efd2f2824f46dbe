"""How the API starts, updates, queries and signals journeys: one way for every journey.

Starting a journey (`start_journey`): the service writes the entity and its journey record
(with the workflow's input) in one transaction and commits; then the workflow is started.
Transport errors are retried; "already started" is success (the id is ours: it names a row
we just committed); only a definite refusal by Temporal removes what was written. A start that
stays uncertain leaves the rows in place: the journey record says it is not confirmed, and
`ensure_started` (run on an idempotent retry and by the API's background reconciler) starts it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Executable, bindparam, delete, func, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.background import BackgroundTask
from temporalio.client import (
    Client,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import Creation
from api.idempotency import Idempotency
from core import registry
from core.journey import PendingStart
from domain.enums import Tier
from domain.errors import Conflict, NotFound, Pending, TimedOut, Unavailable
from domain.journeys import (
    CHANGE_COVERAGE,
    NO_CAM,
    REFUSAL_KIND,
    SA_CAM_ID,
    SA_JOURNEY,
    SA_JOURNEY_STATE,
    SA_PARTNER_ID,
    SA_TIER,
    Coverage,
    workflow_id,
)
from domain.policy import VersionedPolicy
from store import repo
from store.db import autocommit, table_of
from store.models import AuditEvent, JourneyRecord, Partner

log = logging.getLogger(__name__)
T = TypeVar("T")

# Statuses after which the server may or may not have started the workflow: retry, never compensate.
UNCERTAIN = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.CANCELLED,
    RPCStatusCode.UNKNOWN,
    RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.ABORTED,
    RPCStatusCode.INTERNAL,
}
START_BACKOFF = (0.2, 0.5, 1.0, 2.0)  # seconds between attempts (five attempts in all)
START_RPC_TIMEOUT = timedelta(seconds=3)
START_BUDGET = 10.0  # seconds for all attempts: an unreachable Temporal answers 503 in about this time


Confirm = Callable[[AsyncSession, str], Awaitable[None]]  # records that Temporal took a start (by workflow id)


class StartRefused(Exception):
    """Temporal definitely did not start the journey (e.g. invalid argument, unknown namespace)."""


class StartUncertain(Exception):
    """Every attempt ended without an answer: the journey may or may not be running."""


def coverage_of(partner: Partner) -> Coverage:
    return Coverage(tier=partner.tier, cam_id=str(partner.cam_id) if partner.cam_id else None)


def party(partner: Partner) -> dict[str, Any]:
    """The fields every journey's input has about its partner."""
    return {"partner_id": str(partner.id), "partner_name": partner.name, "coverage": coverage_of(partner)}


M = TypeVar("M", bound=BaseModel)


def start_input(model: type[M], entity: Any, partner: Partner, **explicit: Any) -> M:
    """A journey's workflow input from its entity row (columns named like the input's fields),
    its partner (`party`) and the values only the service knows."""
    values = {name: getattr(entity, name) for name in model.model_fields if hasattr(entity, name)}
    return model.model_validate({**values, **party(partner), **explicit})


def search_attributes(partner_id: str, coverage: Coverage, journey: str, state: str) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [
            SearchAttributePair(SA_PARTNER_ID, partner_id),
            SearchAttributePair(SA_CAM_ID, coverage.cam_id or NO_CAM),
            SearchAttributePair(SA_TIER, coverage.tier.value),
            SearchAttributePair(SA_JOURNEY, journey),
            SearchAttributePair(SA_JOURNEY_STATE, state),
        ]
    )


def created_key(wid: str) -> str:
    """Idempotency key of the audit row written with the entity that starts a journey."""
    return f"{wid}:created"


@dataclass(frozen=True)
class NewJourney:
    """What a service creates to start a journey: the entity row (its id names the workflow),
    the workflow's input, and the audit row of the creation."""

    journey: str
    entity: Any  # a store model with an `id`
    partner_id: uuid.UUID
    state: str
    start_input: BaseModel
    action: str
    detail: dict[str, Any]
    rows: tuple[repo.NewRow, ...] = ()  # written with the entity, in its statement (e.g. a partner's admin)
    # A read sent again in the write's statement (`repo.write_created`'s check) and what it must
    # still find there (`Check.expect`), else `ReadChanged` before anything commits: e.g. a deal
    # registration's conflict read, first sent with the statement that waited for its locks.
    check: repo.Check | None = None


class ReadChanged(Exception):
    """`NewJourney.check` found something else than it expected: nothing is committed; the caller
    rolls back and decides again."""


async def created(
    ctx: Creation, body: BaseModel, journey: str, create: Callable[[Idempotency], Awaitable[dict]]
) -> JSONResponse:
    """The answer to a POST that creates an entity and starts its journey: 201 once (`create`),
    the stored answer on a retry with the same `Idempotency-Key` (after making sure the journey
    it started runs)."""
    idem = Idempotency(ctx.session, ctx.principal, ctx.idempotency_key, ctx.path, body)
    response = await idem.run(
        lambda: create(idem),
        resume=lambda out: ensure_started(ctx.session, ctx.temporal, workflow_id(journey, out["id"])),
    )
    if ctx.started and ctx.sessionmaker is not None:
        response.background = BackgroundTask(confirm_started, ctx.sessionmaker, list(ctx.started))
    return response


async def create_and_start(
    ctx: Creation, new: NewJourney, *, answer: type[BaseModel], idem: Idempotency, what: str
) -> dict:
    """One transaction: the entity, its journey record (with how to start it), the rows written
    with it (`new.rows`), the audit row of the creation — one statement, `repo.write_created` —
    and the idempotency record; then `start_journey`. Returns the answer (201). The confirmation
    of the start is written after the answer is sent (`Creation.started`, `confirm_started`)."""
    session, task_queue, actor = ctx.session, ctx.settings.task_queue, ctx.principal.actor
    wid = workflow_id(new.journey, new.entity.id)
    recorded = {  # the other columns take their defaults
        "workflow_id": wid,
        "partner_id": new.partner_id,
        "journey": new.journey,
        "state": new.state,
        "workflow_type": registry.journey(new.journey).workflow.__name__,
        "task_queue": task_queue,
        "start_input": new.start_input.model_dump(mode="json"),
    }
    record = JourneyRecord(**recorded)  # what `start_journey` starts from (the row is not read again)
    seen = await repo.write_created(
        session,
        new.entity,
        [*new.rows, repo.NewRow(JourneyRecord, recorded)],
        check=new.check,
        key=created_key(wid),
        actor=actor,
        action=new.action,
        partner_id=new.partner_id,
        journey=new.journey,
        detail=new.detail,
    )
    if new.check is not None and not new.check.held(seen):
        raise ReadChanged(f"{wid}: {dict(new.check.expect)} became {seen}")
    # The row's server defaults came back with its INSERT (RETURNING); read what did not.
    unloaded = set(answer.model_fields) & sa_inspect(new.entity).unloaded
    if unloaded:
        await session.refresh(new.entity, attribute_names=sorted(unloaded))
    out = answer.model_validate(new.entity).model_dump(mode="json", by_alias=True)  # jsonable_encoder's, once
    await idem.remember(201, out)
    await session.commit()
    await start_journey(session, ctx.temporal, wid, idem=idem, what=what, record=record, confirmed=ctx.started)
    return out


async def launch(
    client: Client,
    record: JourneyRecord,
    *,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> None:
    """Start the recorded workflow: retry what is uncertain, accept "already started"."""
    await launch_start(client, _start_of(record), sleep=sleep)


def _start_of(record: JourneyRecord) -> PendingStart:
    inp = record.start_input or {}
    assert record.workflow_type is not None and record.task_queue is not None, "written with start_input"
    coverage = Coverage.model_validate(inp["coverage"])
    return PendingStart(
        journey=record.journey,
        workflow_id=record.workflow_id,
        workflow_type=record.workflow_type,
        task_queue=record.task_queue,
        start_input=inp,
        partner_id=str(inp["partner_id"]),
        tier=coverage.tier.value,
        state=record.state,
        cam_id=coverage.cam_id,
    )


async def launch_start(
    client: Client, start: PendingStart, *, sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
) -> None:
    """Start a workflow (a recorded journey, or a journey's own record of its start): retry what
    is uncertain (StartUncertain after START_BUDGET), accept "already started" (the id names our
    own entity), raise StartRefused on a definite refusal."""
    coverage = Coverage(tier=Tier(start.tier), cam_id=start.cam_id)
    attrs = search_attributes(start.partner_id, coverage, start.journey, start.state)
    summary, details = registry.journey(start.journey).describe(start.start_input)
    last: BaseException | None = None
    loop = asyncio.get_running_loop()
    ends = loop.time() + START_BUDGET
    for delay in (*START_BACKOFF, None):
        try:
            # The SDK retries unavailable servers itself; bound each attempt and the whole start.
            async with asyncio.timeout(min(START_RPC_TIMEOUT.total_seconds(), max(ends - loop.time(), 0.1))):
                await client.start_workflow(
                    start.workflow_type,
                    start.start_input,
                    id=start.workflow_id,
                    task_queue=start.task_queue,
                    search_attributes=attrs,
                    static_summary=summary or None,
                    static_details=details or None,
                    rpc_timeout=START_RPC_TIMEOUT,
                )
            return
        except WorkflowAlreadyStartedError:
            return  # an earlier attempt whose answer was lost: the id names our own row
        except RPCError as err:
            if err.status not in UNCERTAIN:
                raise StartRefused(f"{err.status.name if err.status else 'error'}: {err.message}") from err
            last = err
        except (TimeoutError, OSError, RuntimeError) as err:  # connection lost mid-call
            last = err
        if delay is not None and loop.time() + delay < ends:
            log.warning("starting %s: no answer (%s); retrying in %.1fs", start.workflow_id, last, delay)
            await sleep(delay)
        else:
            break
    raise StartUncertain(f"no answer from Temporal within {START_BUDGET:g} s ({last})") from last


def with_every_partner(partner: Partner, task_queue: str, policy: VersionedPolicy) -> list[JourneyRecord]:
    """The records of the journeys every partner has (their manifests' `with_every_partner`, e.g.
    health, when the policy has it on), written with the partner; `start_recorded` starts them,
    or else the reconciler."""
    records = []
    for spec in registry.JOURNEYS:
        model = spec.with_every_partner(policy.policy) if spec.with_every_partner else None
        if model is None:
            continue
        inp = start_input(model, partner, partner, policy_version=policy.version)
        records.append(
            JourneyRecord(
                workflow_id=workflow_id(spec.name, partner.id),
                partner_id=partner.id,
                journey=spec.name,
                state="started",
                workflow_type=spec.workflow.__name__,
                task_queue=task_queue,
                start_input=inp.model_dump(mode="json"),
            )
        )
    return records


async def backfill_every_partner(session: AsyncSession, task_queue: str, policy: VersionedPolicy) -> int:
    """Record the journeys every partner has (`with_every_partner`, e.g. health once the policy
    turns `health.watch` on) for the partners enrolled before: one record per `<name>-<partner
    id>`, written in the caller's transaction (with the policy version) and never twice (ON
    CONFLICT DO NOTHING on the workflow id); the reconciler starts them. Returns how many."""
    names = [s.name for s in registry.JOURNEYS if s.with_every_partner and s.with_every_partner(policy.policy)]
    if not names:
        return 0
    have = select(func.count()).where(JourneyRecord.partner_id == Partner.id, JourneyRecord.journey.in_(names))
    partners = (await session.scalars(select(Partner).where(have.scalar_subquery() < len(names)))).all()
    rows = [
        {c.name: getattr(r, c.name) for c in JourneyRecord.__table__.columns if getattr(r, c.name) is not None}
        for p in partners
        for r in with_every_partner(p, task_queue, policy)
    ]
    added = 0
    for i in range(0, len(rows), 1000):
        stmt = (
            pg_insert(JourneyRecord).values(rows[i : i + 1000]).on_conflict_do_nothing(index_elements=["workflow_id"])
        )
        added += len((await session.execute(stmt.returning(JourneyRecord.workflow_id))).all())
    return added


async def start_recorded(session: AsyncSession, client: Client, wids: list[str]) -> None:
    """Start what `with_every_partner` recorded; what stays unstarted is the reconciler's."""
    for wid in wids:
        record = await session.get(JourneyRecord, wid)
        if record is None:
            continue
        try:
            await launch(client, record)
        except (StartRefused, StartUncertain) as err:
            log.warning("%s not started yet (%s); the reconciler will", record.workflow_id, err)
            continue
        await _mark_started(session, record.workflow_id)


async def _mark_started(session: AsyncSession, wid: str) -> None:
    """Record the confirmed start: one statement, autocommitted when the session has no
    transaction open (after a create's commit: no BEGIN and COMMIT round trips of its own)."""
    await autocommit(session)
    await session.execute(_started(), {"wid": wid, "at": datetime.now(UTC)})
    await session.commit()


@functools.cache
def _started() -> Executable:
    """`_mark_started`'s UPDATE, built once (store/repo.py)."""
    table = table_of(JourneyRecord)
    return (
        update(table)
        .where(table.c.workflow_id == bindparam("wid"), table.c.started_at.is_(None))
        .values(started_at=bindparam("at", type_=table.c.started_at.type))
    )


async def _compensate(
    session: AsyncSession, wid: str, entity: type | None, entity_id: object, idem: Idempotency | None
) -> None:
    """The start was refused: remove what the request wrote (the entity, its journey record, its
    creation audit row, the idempotency record) so nothing is half-written."""
    await session.execute(delete(AuditEvent).where(AuditEvent.idempotency_key == created_key(wid)))
    await session.execute(delete(JourneyRecord).where(JourneyRecord.workflow_id == wid))
    model = entity or Partner
    await session.execute(delete(model).where(model.id == entity_id))  # type: ignore[attr-defined]
    if idem is not None:
        await idem.forget()
    await session.commit()


async def start_journey(
    session: AsyncSession,
    client: Client,
    wid: str,
    *,
    idem: Idempotency | None = None,
    what: str,
    record: JourneyRecord | None = None,
    confirmed: list[str] | None = None,
) -> None:
    """Start the journey `wid` recorded (and committed) by the caller (`record`: the row it wrote,
    not read again). On a definite refusal the rows are removed and the answer is 503 "nothing
    was <what>"; when it stays uncertain the rows stay and the answer is 503 "retry with the
    same Idempotency-Key". The confirmed start is recorded now, or, given `confirmed`, added to
    it for `confirm_started` after the answer is sent."""
    if record is None:
        record = await session.get(JourneyRecord, wid)
    assert record is not None, f"journey {wid} must be recorded and committed before it is started"
    entity_id = uuid.UUID(wid.split("-", 1)[1])
    try:
        await launch(client, record)
    except StartRefused as err:
        log.error("starting %s was refused (%s); removing what was %s", wid, err, what)
        await _compensate(session, wid, registry.journey(record.journey).entity, entity_id, idem)
        raise Unavailable(
            f"could not start the {record.journey} journey ({err}); nothing was {what}, retry later"
        ) from err
    except StartUncertain as err:
        log.error("starting %s is uncertain (%s); it will be started by the reconciler", wid, err)
        raise Unavailable(
            f"{what} {entity_id}, but Temporal did not confirm the start of its "
            f"journey ({err}); it will be started automatically. Retry with the same "
            "Idempotency-Key to get the answer.",
            headers={"Retry-After": "5"},
        ) from err
    if confirmed is not None:
        confirmed.append(wid)
        return
    await _mark_started(session, wid)


async def confirm_started(sessionmaker: async_sessionmaker[AsyncSession], wids: list[str]) -> None:
    """Record confirmed starts after the answer was sent (a create's last write, off its latency).
    Should this process stop first, or the write fail, the reconciler starts the journey again
    ("already started" is success) and records it then."""
    try:
        async with sessionmaker() as session:
            for wid in wids:
                await _mark_started(session, wid)
    except Exception:  # the answer is sent; what stays unconfirmed is the reconciler's
        log.warning("recording the start of %s failed; the reconciler will", ", ".join(wids), exc_info=True)


async def ensure_started(session: AsyncSession, client: Client, wid: str) -> None:
    """On an idempotent retry: make sure the journey of a stored answer runs (uncertain start before)."""
    record = await session.get(JourneyRecord, wid)
    if record is None or record.started_at is not None or record.start_input is None:
        return
    try:
        await launch(client, record)
    except (StartRefused, StartUncertain) as err:
        raise Unavailable(
            f"the {record.journey} journey {wid} is not started yet ({err}); retry later",
            headers={"Retry-After": "5"},
        ) from err
    await _mark_started(session, wid)


async def reconcile(
    sessionmaker: async_sessionmaker[AsyncSession],
    client: Client,
    older_than: timedelta = timedelta(seconds=5),
    limit: int = 100,
) -> int:
    """Start every recorded journey whose start was never confirmed (API killed between the
    commit and the start, or a start that stayed uncertain), the `journeys` rows' and those the
    journeys record themselves (`JourneySpec.own_starts`, e.g. leads), then send the current coverage to
    the journeys that missed a coverage change (`deliver_coverage`). Returns how many were started."""
    started = 0
    async with sessionmaker() as session:
        cutoff = datetime.now(UTC) - older_than
        records = (
            await session.scalars(
                select(JourneyRecord)
                .where(
                    JourneyRecord.started_at.is_(None),
                    JourneyRecord.start_input.is_not(None),
                    JourneyRecord.updated_at < cutoff,
                )
                .order_by(JourneyRecord.updated_at)
                .limit(limit)
            )
        ).all()
        pending: list[tuple[PendingStart, Confirm]] = [(_start_of(r), _mark_started) for r in records]
        for spec in registry.JOURNEYS:  # the journeys that record their own starts (no `journeys` row)
            if spec.own_starts is not None:
                found = await spec.own_starts.pending(session, cutoff, limit)
                pending += [(start, spec.own_starts.confirm) for start in found]
        for start, confirm in pending:
            try:
                await launch_start(client, start, sleep=lambda _: asyncio.sleep(0))
            except StartRefused as err:
                log.warning("reconciler: %s still not started (%s)", start.workflow_id, err)
                continue
            except StartUncertain as err:  # Temporal is not answering: the next round tries again
                log.warning("reconciler: %s still not started (%s); round stopped", start.workflow_id, err)
                break
            await confirm(session, start.workflow_id)
            started += 1
        await deliver_coverage(session, client, limit)
    return started


async def run_reconciler(sessionmaker: async_sessionmaker[AsyncSession], client: Client, every: float = 10.0) -> None:
    while True:
        try:
            n = await reconcile(sessionmaker, client)
            if n:
                log.warning("reconciler started %d journey(s) whose start was not confirmed", n)
        except Exception:  # keep the loop alive: the next round retries
            log.exception("reconciler round failed")
        await asyncio.sleep(every)


# ------------------------------------------------------------------ messages to running journeys


async def run_update(
    client: Client,
    journey: str,
    entity_id: object,
    update_name: str,
    arg: BaseModel,
    result_type: type[T],
    *,
    deadline: float,
    progress: str,
) -> T:
    """Run a workflow update on `<journey>-<entity_id>` within `deadline` seconds, holding no
    database connection (callers close their session first). A refusal by the journey's
    validator or handler becomes 409/403/404/422 with the journey's own message, a journey not
    running a 409. Not taken in time (no worker?): 504, it may still apply. Taken but not yet
    recorded: 202 with `Location: <progress>`."""
    handle = client.get_workflow_handle(workflow_id(journey, entity_id))
    loop = asyncio.get_running_loop()
    ends = loop.time() + deadline
    try:
        try:
            async with asyncio.timeout(deadline):
                update = await handle.start_update(
                    update_name, arg, wait_for_stage=WorkflowUpdateStage.ACCEPTED, result_type=result_type
                )
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as err:  # our deadline, or the RPC's
            await refuse_if_wedged(client, journey, entity_id, err)
            raise TimedOut(
                f"the {journey} journey of {entity_id} did not take the request within {deadline:g} s (is a "
                f"worker running?); it may still apply later: check {progress} before retrying",
            ) from err
        try:
            async with asyncio.timeout(max(ends - loop.time(), 0.1)):
                return await update.result()
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as err:
            await refuse_if_wedged(client, journey, entity_id, err)
            raise Pending(
                f"accepted by the {journey} journey and not recorded yet; it will apply: see {progress}",
                headers={"Location": progress},
            ) from err
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.type in REFUSAL_KIND:
            raise REFUSAL_KIND[cause.type](cause.message) from err
        await refuse_if_wedged(client, journey, entity_id, err)
        raise
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise Conflict(f"the {journey} journey of {entity_id} is not running") from err
        await refuse_if_wedged(client, journey, entity_id, err)
        raise


async def query(
    client: Client, journey: str, entity_id: object, query_name: str, result_type: type[T], *, deadline: float = 10.0
) -> T:
    """Ask a journey for its live state (a query); 404 when it has no journey, 504 when it does
    not answer within `deadline` seconds."""
    try:
        async with asyncio.timeout(deadline):
            return await client.get_workflow_handle(workflow_id(journey, entity_id)).query(
                query_name, result_type=result_type
            )
    except TimeoutError as err:
        await refuse_if_wedged(client, journey, entity_id, err)
        raise TimedOut(f"the {journey} journey of {entity_id} did not answer within {deadline:g} s") from err
    except WorkflowQueryFailedError as err:
        await refuse_if_wedged(client, journey, entity_id, err)
        raise
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise NotFound(f"{entity_id} has no {journey} journey") from err
        await refuse_if_wedged(client, journey, entity_id, err)
        raise


async def refuse_if_wedged(client: Client, journey: str, entity_id: object, err: BaseException) -> None:
    """A journey whose workflow task keeps failing (a bug, or data its code cannot handle) answers
    nothing: a clear 503 naming it, never a 500. Ops see it in `GET /ops/retrying` (the
    `workflow task` rows). Returns when the journey is not failing (the caller answers as before)."""
    wid = workflow_id(journey, entity_id)
    try:
        async with asyncio.timeout(5):
            description = await client.get_workflow_handle(wid).describe()
    except (TimeoutError, RPCError):
        return
    raw = description.raw_description
    if not raw.HasField("pending_workflow_task") or raw.pending_workflow_task.attempt < 2:
        return
    raise Unavailable(
        f"the {journey} journey {wid} cannot run: its workflow task has failed "
        f"{raw.pending_workflow_task.attempt - 1} time(s) in a row. Ops are told (GET /ops/retrying); "
        "this request may still apply once it is fixed: read the journey before retrying",
        headers={"Retry-After": "300"},
    ) from err


async def signal(client: Client, journey: str, entity_id: object, signal_name: str, arg: BaseModel) -> None:
    """Tell a running journey a fact; 409 when it has ended."""
    try:
        await client.get_workflow_handle(workflow_id(journey, entity_id)).signal(signal_name, arg)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise Conflict(f"the {journey} journey of {entity_id} has ended") from err
        raise


async def signal_coverage(session: AsyncSession, client: Client, partner: Partner) -> list[str]:
    """Tell every journey of the partner that follows coverage (registry) and is behind the
    partner's coverage version its new tier/CAM, and record each one Temporal took (or that has
    ended: nothing to tell). A journey Temporal did not answer for stays behind: the reconciler
    (`deliver_coverage`) sends it again. Returns the workflow ids signalled."""
    wids = (await session.scalars(_behind().where(JourneyRecord.partner_id == partner.id))).all()
    return await _tell_coverage(session, client, partner, list(wids))


def _behind():
    """The journeys that follow coverage and were not told their partner's current coverage
    (a journey whose recorded start is not confirmed yet is told once it is started)."""
    return repo.behind_coverage([spec.name for spec in registry.JOURNEYS if spec.follows_coverage])


async def _tell_coverage(session: AsyncSession, client: Client, partner: Partner, wids: list[str]) -> list[str]:
    coverage, version = coverage_of(partner), partner.coverage_version
    signalled, told = [], []
    for wid in wids:
        try:
            async with asyncio.timeout(START_RPC_TIMEOUT.total_seconds()):
                await client.get_workflow_handle(wid).signal(CHANGE_COVERAGE, coverage)
            signalled.append(wid)
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:  # not told: the reconciler sends it again
                log.warning("coverage of %s not delivered to %s (%s); the reconciler retries", partner.id, wid, err)
                break  # Temporal is not answering: the rest waits for the reconciler too
        except TimeoutError:
            log.warning("coverage of %s not delivered to %s (no answer); the reconciler retries", partner.id, wid)
            break
        told.append(wid)  # signalled, or ended (nothing to tell)
    if told:
        await session.execute(
            update(JourneyRecord)
            .where(JourneyRecord.workflow_id.in_(told), JourneyRecord.coverage_version < version)
            .values(coverage_version=version)
        )
        await session.commit()
    return signalled


async def deliver_coverage(session: AsyncSession, client: Client, limit: int = 100) -> int:
    """The reconciler's second task: send every journey behind its partner's coverage version the
    current coverage (a signal that failed after the change was committed). Returns how many were told."""
    wids = (await session.scalars(_behind().limit(limit))).all()
    by_partner: dict[uuid.UUID, list[str]] = {}
    for wid in wids:
        record = await session.get(JourneyRecord, wid)
        assert record is not None
        by_partner.setdefault(record.partner_id, []).append(wid)
    told = 0
    for partner_id, partner_wids in by_partner.items():
        partner = await session.get(Partner, partner_id)
        assert partner is not None
        told += len(await _tell_coverage(session, client, partner, partner_wids))
    return told
