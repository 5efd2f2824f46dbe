"""Activities of the integrations: publish a catalog event (the event row and one delivery per
matching subscription, then wake each subscription's delivery stream for the partner, and refresh
the partner's health when the event moves it), pick a stream's next pending delivery, deliver it
(signed, SSRF-guarded, every attempt recorded), and mark it failed once its retries are over.
Each is idempotent."""

from __future__ import annotations

import asyncio
import functools
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import httpx
from sqlalchemy import Select, bindparam, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities import metrics
from domain import events
from domain.journeys import workflow_id
from domain.policy import ProgramPolicy
from domain.types import scrub_text
from domain.webhooks import (
    DELIVERY_WORKFLOW,
    WAKE,
    DeliverInput,
    DeliverResult,
    DeliveryStatus,
    EventInput,
    GiveUpInput,
    NextDelivery,
    PublishResult,
    StreamInput,
    Wake,
    WebhookActivity,
    delivery_workflow_id,
    event_id,
    headers,
    refused_address,
)
from store import repo
from store.db import autocommit, bound, table_of
from store.models import PolicyVersion
from store.models.integrations import WebhookDelivery, WebhookEvent, WebhookSubscription

PolicyStamp = tuple[int, datetime]  # a policy version and its created_at (store/repo.py `parsed_policy`)

NEXT_BATCH = 50  # pending deliveries a stream takes at once (it re-reads after them: replays join there)
REQUEST_MARGIN = 5.0  # seconds of an attempt beyond the request's own time limit (recording it)
MIN_ATTEMPT = 1.0  # seconds an attempt is given at the least (else it is not made)
DEADLINE_MARGIN = 1.0  # seconds before the delivery's retry time is over when no attempt starts any more
REPLY_CHARS = 1000  # of a subscriber's reply kept with the delivery (screened: `scrub_text`)


MAX_RESPONSE_BYTES = 64 * 1024  # of a destination's answer: read at most this much, then hang up


def attempt_seconds(
    attempt: timedelta | None, scheduled_at: datetime, retry_time: timedelta | None, now: datetime
) -> float:
    """How long one delivery attempt may wait for its answer: the stream allows the policy's
    timeout_seconds plus REQUEST_MARGIN for an attempt (`attempt`), and never past the delivery's
    retry time (`retry_time`, schedule-to-close from the first attempt's `scheduled_at`) less
    DEADLINE_MARGIN: once that is over the stream gives the delivery up and delivers the partner's
    next event, which a late request must not overtake. 0: over, or less than MIN_ATTEMPT left
    (an attempt cut shorter would only record a timeout over the subscriber's last answer): send
    nothing."""
    seconds = max(MIN_ATTEMPT, attempt.total_seconds() - REQUEST_MARGIN) if attempt else 10.0
    if retry_time is not None:
        left = (scheduled_at + retry_time - now).total_seconds() - DEADLINE_MARGIN
        seconds = min(seconds, left) if left >= MIN_ATTEMPT else 0.0
    return seconds


async def check_destination(url: str, allow_private: bool) -> str | None:
    """Why `url` may not be called (scheme, no host, a name that does not resolve, or an address
    that is not public: private, loopback, link-local, site-local, 6to4 of a private one... unless
    the subscription allows private networks), or None when it may."""
    refused, _ = await pinned_destination(url, allow_private, resolve=not allow_private)
    return refused


async def pinned_destination(url: str, allow_private: bool, *, resolve: bool = True) -> tuple[str | None, str | None]:
    """(why refused, None), or (None, the one address to connect to): the name is resolved once
    and every address it has is checked; the request then goes to that address (no second
    resolution a DNS rebinding could answer differently)."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as err:
        return f"the URL cannot be read ({err})", None
    if parts.scheme not in ("https", "http"):
        return f"the URL must be http or https, not {parts.scheme or 'nothing'!r}", None
    if not host:
        return "the URL has no host", None
    if not resolve:
        return None, None
    try:
        async with asyncio.timeout(5):
            infos = await asyncio.get_running_loop().getaddrinfo(host, port or 443, proto=6)
    except TimeoutError:
        return f"{host} did not resolve within 5 s", None
    except (OSError, UnicodeError, ValueError) as err:
        return f"{host} does not resolve ({getattr(err, 'strerror', None) or err})", None
    addresses = list(dict.fromkeys(str(info[4][0]).split("%", 1)[0] for info in infos))
    if not addresses:
        return f"{host} does not resolve", None
    if not allow_private:
        for address in addresses:
            why = refused_address(address)
            if why:
                return f"{host}: {why} (refused unless allow_private_network is set by ops)", None
    return None, addresses[0]


async def post_pinned(
    url: str, address: str, body: bytes, headers: dict[str, str], timeout: float, max_bytes: int = MAX_RESPONSE_BYTES
) -> httpx.Response:
    """POST `body` to `url` over a connection to `address` (Host header and TLS SNI/certificate
    name stay the URL's host), no proxy from the environment, at most `timeout` seconds in all
    (connect, send, answer: TimeoutError past it) and at most `max_bytes` of the answer kept."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = f"[{address}]" if ":" in address else address
    port = f":{parts.port}" if parts.port else ""
    target = urlunsplit((parts.scheme, literal + port, parts.path or "/", parts.query, ""))
    host_header = (f"[{host}]" if ":" in host else host) + port
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    sent = {**headers, "host": host_header, "accept-encoding": "identity"}  # raw bytes: no decompression bomb
    async with (
        asyncio.timeout(timeout),
        httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as http,
    ):
        async with http.stream("POST", target, content=body, headers=sent, extensions=extensions) as answer:
            kept = bytearray()
            async for chunk in answer.aiter_raw():
                kept += chunk
                if len(kept) >= max_bytes:
                    break
    content_type = answer.headers.get("content-type", "")
    return httpx.Response(answer.status_code, content=bytes(kept[:max_bytes]), headers={"content-type": content_type})


async def wake_stream(client, task_queue: str, subscription_id: object, partner_id: object) -> None:
    """Start the delivery stream of a subscription and partner, or wake it if it runs."""
    await client.start_workflow(
        DELIVERY_WORKFLOW,
        StreamInput(subscription_id=str(subscription_id), partner_id=str(partner_id)),
        id=delivery_workflow_id(subscription_id, partner_id),
        task_queue=task_queue,
        start_signal=WAKE,
        start_signal_args=[Wake()],
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    )


async def write_event(session: AsyncSession, inp: EventInput) -> tuple[str, list[uuid.UUID]]:
    """In the caller's transaction: the event (once per idempotency key) and one pending delivery
    per active subscription to its type. Returns the event id and those subscriptions, whose
    streams the caller wakes once the transaction has committed.

    One statement (a data-modifying CTE: the event, its subscriptions and their deliveries;
    PostgreSQL checks the deliveries' foreign key at the end of the statement), built once and sent
    with the event's values. An event an earlier attempt wrote is read back by its key, with the
    same subscriptions and deliveries (none written twice)."""
    msg_id, subscriptions, _ = await _write_event(session, inp)
    return msg_id, subscriptions


async def _write_event(session: AsyncSession, inp: EventInput) -> tuple[str, list[uuid.UUID], PolicyStamp | None]:
    """`write_event`, and the newest policy version (with its `created_at`) read by the same
    statement: what `Refresh.due` needs to know, without a statement of its own."""
    spec = events.spec(inp.type)
    data = spec.data.model_validate(inp.data).model_dump(mode="json")
    values = {
        "id": event_id(inp.idempotency_key),
        "idempotency_key": inp.idempotency_key,
        "type": inp.type,
        "types": [inp.type],
        "version": spec.version,
        "partner_id": uuid.UUID(inp.partner_id),
        "occurred_at": inp.occurred_at,
        "data": data,
    }
    written = (await session.execute(_event_with_deliveries(new=True), values)).one_or_none()
    if written is None:  # written by an earlier attempt: that row
        written = (await session.execute(_event_with_deliveries(new=False), values)).one()
    stamp = (written[2], written[3]) if written[2] is not None else None
    return written[0], list(written[1] or []), stamp


@functools.cache
def _event_with_deliveries(new: bool) -> Select:
    """`write_event`'s statement (its values bound by name, built once: a publish costs no
    statement building, a fifth of its CPU when built each time): the event inserted (`new`; no
    row when its key is taken) or read by its key, a pending delivery for each active subscription
    to its type (by name or the wildcard) made before it, and those subscriptions' ids. Written
    against the tables: no ORM bulk path (store/repo.py)."""
    table = table_of(WebhookEvent)
    returned = table.c.id, table.c.seq, table.c.partner_id, table.c.created_at
    values = bound(WebhookEvent, "id", "idempotency_key", "type", "version", "partner_id", "occurred_at", "data")
    if new:
        ev = (
            insert(table)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(*returned)
            .cte("ev")
        )
    else:
        ev = select(*returned).where(table.c.idempotency_key == values["idempotency_key"]).cte("ev")
    s = table_of(WebhookSubscription).c
    types = bindparam("types", type_=s.event_types.type)  # a one-element list: the event's type
    subs = (
        select(s.id, ev.c.seq, ev.c.partner_id)
        .join(ev, s.created_at <= ev.c.created_at)
        .where(s.active, or_(s.event_types.contains(types), s.event_types.contains([events.WILDCARD])))
        .cte("subs")
    )
    pending = literal(DeliveryStatus.pending.value), literal(0), literal(0)
    deliveries = (
        insert(table_of(WebhookDelivery))
        .from_select(
            ["subscription_id", "event_seq", "partner_id", "status", "attempts", "replays"],
            select(subs.c.id, subs.c.seq, subs.c.partner_id, *pending),
        )
        .on_conflict_do_nothing()
        .cte("deliveries")
    )
    subscribed = select(func.array_agg(subs.c.id)).scalar_subquery()
    newest = select(PolicyVersion.version, PolicyVersion.created_at).order_by(PolicyVersion.version.desc()).limit(1)
    policy = newest.cte("newest_policy")  # the newest policy version, for `Refresh.due` (no statement of its own)
    version, created_at = select(policy.c.version).scalar_subquery(), select(policy.c.created_at).scalar_subquery()
    return select(ev.c.id, subscribed, version, created_at).add_cte(deliveries)


@dataclass(frozen=True)
class Refreshed:
    """A journey of the partner itself refreshed by partner events (health's `refresh`): its
    workflow `<journey>-<partner id>` takes `signal` while `on(policy)` (the policy has it on)."""

    journey: str
    signal: str
    on: Callable[[ProgramPolicy], bool]


@dataclass(frozen=True)
class Refresh:
    """What a published event refreshes (core/registry.py builds it from the manifests): an event
    of one of `types` (every journey's `health_events`) signals each of `journeys` for its partner."""

    types: frozenset[str] = frozenset()
    journeys: tuple[Refreshed, ...] = ()

    async def due(self, session: AsyncSession, event_type: str, newest: PolicyStamp | None = None) -> list[Refreshed]:
        """The journeys an event of `event_type` refreshes under the current policy. `newest`: the
        newest version as the event's statement read it (`_write_event`); when this process has
        parsed that version, no statement; else the current policy is read in the caller's
        transaction (one indexed statement), only for such a type."""
        if event_type not in self.types or not self.journeys:
            return []
        policy = repo.parsed_policy(*newest) if newest is not None else None
        if policy is None:
            policy = (await repo.current_policy(session)).policy
        return [j for j in self.journeys if j.on(policy)]


@dataclass(frozen=True)
class Published:
    """An event written in a transaction (`write_published`), and what it needs once that
    transaction has committed (`announce`)."""

    event_id: str
    partner_id: str
    subscriptions: list[uuid.UUID]  # whose delivery streams to wake
    refreshed: list[Refreshed]  # the partner's journeys to refresh

    async def announce(self) -> None:
        """In the activity that wrote it, after the commit: each subscription's delivery stream
        woken, each refreshed journey signalled (both harmless twice: also on a retry)."""
        info, client = activity.info(), activity.client()
        for sub_id in self.subscriptions:
            await wake_stream(client, info.task_queue, sub_id, self.partner_id)
        await refresh(client, self.refreshed, self.partner_id)


async def write_published(session: AsyncSession, inp: EventInput, refreshes: Refresh) -> Published:
    """In the caller's transaction: the event and its deliveries (`write_event`) and the journeys
    it refreshes. An unknown type or data its model refuses is a non-retryable failure (no retry
    can fix it)."""
    try:
        msg_id, subscriptions, newest = await _write_event(session, inp)
    except ValueError as err:
        raise ApplicationError(f"event {inp.type}: {err}", type="BadEvent", non_retryable=True) from None
    return Published(msg_id, inp.partner_id, subscriptions, await refreshes.due(session, inp.type, newest))


async def refresh(client, journeys: list[Refreshed], partner_id: str) -> None:
    """Signal each journey's `<journey>-<partner id>`; one not running (not started yet, or the
    policy had it off) is nothing to refresh. Harmless twice: a refresh only evaluates again."""
    for j in journeys:
        try:
            await client.get_workflow_handle(workflow_id(j.journey, partner_id)).signal(j.signal)
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise


class WebhookActivities:
    """`unseal` reads a subscription's stored secret (core/sealing.py, with the worker's key ring);
    `refreshes` names the journeys a published event refreshes (none: events refresh nothing)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        unseal: Callable[[str], str] = lambda stored: stored,
        refreshes: Refresh | None = None,
    ):
        self.sessionmaker = sessionmaker
        self.unseal = unseal
        self.refreshes = refreshes or Refresh()

    @activity.defn(name=WebhookActivity.PUBLISH)
    async def publish(self, inp: EventInput) -> PublishResult:
        """Also run as a local activity (patch `kit-lean-steps`): the worker's client is there too.
        Autocommitted: an event is one statement (`write_event`; an earlier attempt's, two: each
        idempotent on its own)."""
        async with self.sessionmaker() as session:
            await autocommit(session)
            published = await write_published(session, inp, self.refreshes)
        await published.announce()
        return PublishResult(event_id=published.event_id, deliveries=len(published.subscriptions))

    @activity.defn(name=WebhookActivity.NEXT)
    async def next_delivery(self, inp: StreamInput) -> NextDelivery:
        """The stream's pending deliveries, oldest first (events in the order they were published),
        at most NEXT_BATCH of them."""
        async with self.sessionmaker() as session:
            found = await session.scalars(
                select(WebhookDelivery.id)
                .where(
                    WebhookDelivery.subscription_id == uuid.UUID(inp.subscription_id),
                    WebhookDelivery.partner_id == uuid.UUID(inp.partner_id),
                    WebhookDelivery.status == DeliveryStatus.pending.value,
                )
                .order_by(WebhookDelivery.event_seq)
                .limit(NEXT_BATCH)
            )
            return NextDelivery(delivery_ids=list(found))

    @activity.defn(name=WebhookActivity.DELIVER)
    async def deliver(self, inp: DeliverInput) -> DeliverResult:
        """One attempt: POST the signed event; a 2xx marks it delivered, anything else is recorded
        on the delivery (status, response, error) and raised for Temporal to retry with backoff."""
        async with self.sessionmaker() as session:
            row = await session.get(WebhookDelivery, inp.delivery_id)
            if row is None:
                raise ApplicationError(f"delivery {inp.delivery_id} is gone", type="DeliveryGone", non_retryable=True)
            if row.status != DeliveryStatus.pending.value:
                return DeliverResult(status=DeliveryStatus(row.status), status_code=row.last_status_code)
            event = await session.get(WebhookEvent, row.event_seq)
            sub = await session.get(WebhookSubscription, row.subscription_id)
            assert event is not None and sub is not None
            if not sub.active:
                raise ApplicationError("the subscription was deactivated", type="Deactivated", non_retryable=True)
            url, secret, allow_private = sub.url, self.unseal(sub.secret), sub.allow_private_network
            payload = events.body(event.type, event.version, event.occurred_at, event.data)
            msg_id = event.id
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        refused, address = await pinned_destination(url, allow_private)  # again: DNS may have changed since
        if refused or address is None:
            refused = refused or "the destination did not resolve"
            await self._record(inp.delivery_id, None, None, f"refused: {refused}")
            metrics.webhook_delivery("refused")
            raise ApplicationError(f"destination refused: {refused}", type="DestinationRefused", non_retryable=True)
        started = time.monotonic()
        info = activity.info()
        timeout = attempt_seconds(
            info.start_to_close_timeout, info.scheduled_time, info.schedule_to_close_timeout, datetime.now(UTC)
        )
        if timeout <= 0:  # the delivery's retry time is over: the stream gives it up and goes on to the
            # next event, so a request sent now could reach the subscriber after that one
            raise ApplicationError("the retry time is over", type="WebhookError")
        try:
            answer = await post_pinned(url, address, body, headers(secret, msg_id, int(time.time()), body), timeout)
        except (httpx.HTTPError, TimeoutError) as err:
            why = f"{type(err).__name__}: {err}" if str(err) else f"no complete answer within {timeout:g} s"
            await self._record(inp.delivery_id, None, None, why)
            metrics.webhook_delivery("error", time.monotonic() - started)
            raise ApplicationError(f"webhook request failed: {why}", type="WebhookError") from None
        ok = 200 <= answer.status_code < 300
        # the reply is the subscriber's text: screened (a NUL made PostgreSQL refuse the row: a
        # delivered event read as failed, with no attempt counted) and bounded before it is kept
        reply = scrub_text(answer.text, REPLY_CHARS)
        await self._record(inp.delivery_id, answer.status_code, reply, None, delivered=ok)
        outcome = "delivered" if ok else f"http_{answer.status_code // 100}xx"
        metrics.webhook_delivery(outcome, time.monotonic() - started)
        if not ok:
            raise ApplicationError(f"webhook answered {answer.status_code}", type="WebhookRefused")
        return DeliverResult(status=DeliveryStatus.delivered, status_code=answer.status_code)

    async def _record(
        self, delivery_id: int, code: int | None, response: str | None, error: str | None, delivered: bool = False
    ) -> None:
        values: dict = {
            "attempts": WebhookDelivery.attempts + 1,
            "last_status_code": code,
            "last_response": response,
            "last_error": error and error[:2000],
            "last_attempt_at": func.now(),
        }
        if delivered:
            values |= {"status": DeliveryStatus.delivered.value, "delivered_at": func.now()}
        async with self.sessionmaker() as session, session.begin():
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == DeliveryStatus.pending.value)
                .values(**values)
            )

    @activity.defn(name=WebhookActivity.GIVE_UP)
    async def give_up(self, inp: GiveUpInput) -> DeliverResult:
        """The retries are over (or the destination is refused): the delivery is failed, visibly;
        ops may replay it."""
        async with self.sessionmaker() as session, session.begin():
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == inp.delivery_id, WebhookDelivery.status == DeliveryStatus.pending.value)
                .values(status=DeliveryStatus.failed.value, last_error=inp.error)
            )
        metrics.webhook_delivery("failed")
        return DeliverResult(status=DeliveryStatus.failed)
