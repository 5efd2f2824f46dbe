"""Activities every journey uses: reading the program policy and the notification outbox."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiosmtplib
import jinja2
from sqlalchemy import Executable, Select, bindparam, case, exists, func, literal, null, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import metrics
from activities.mail import Mailer, message_id
from activities.webhooks import Published, Refresh, write_published
from domain import actors
from domain.journeys import (
    LOAD_POLICY,
    NOTIFY,
    NOTIFY_PUBLISHING,
    QUEUE_NOTIFICATION,
    RECORD_ATTENTION,
    SEND_NOTIFICATIONS,
    AttentionInput,
    LoadPolicyInput,
    NotifyInput,
    NotifyResult,
    SendInput,
    SendResult,
    StepResult,
)
from domain.links import link_jti
from domain.policy import VersionedPolicy
from domain.webhooks import EventInput
from store import repo
from store.db import bound, table_of
from store.models import Cam, JourneyRecord, OutboxMessage, Partner
from store.models.portal import PartnerUser

# A notification as `CommonActivities.queue_and_send` queues it: its input and its recipients
# (role, address, their own context).
Queued = tuple[NotifyInput, list[tuple[str, str, dict]]]


def shared_outbox(outbox: CommonActivities | None) -> CommonActivities:
    """The shared outbox activities a journey's one-step email goes through (`notify_after`,
    `queue_and_send`); refused for good when the journey's activities were built without them."""
    if outbox is None:
        raise ApplicationError("built without the shared outbox activities", non_retryable=True)
    return outbox


class CommonActivities:
    """Built once per worker with the session factory, the mailer and the ops address;
    `refreshes`: what an event an email carries refreshes (activities/webhooks.py)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        mailer: Mailer,
        ops_email: str,
        refreshes: Refresh | None = None,
    ):
        self.sessionmaker = sessionmaker
        self.mailer = mailer
        self.ops_email = ops_email
        self.refreshes = refreshes or Refresh()
        self._versions: dict[int, VersionedPolicy] = {}  # stored versions never change: read and validated once

    @activity.defn(name=LOAD_POLICY)
    async def load_policy(self, inp: LoadPolicyInput) -> VersionedPolicy:
        if inp.version is not None and inp.version in self._versions:
            return self._versions[inp.version]
        async with self.sessionmaker() as session:
            if inp.version is None:
                return await repo.current_policy(session)
            snap = await repo.policy_version(session, inp.version)
            if snap is None:
                raise ApplicationError(
                    f"policy version {inp.version} does not exist", type="PolicyNotFound", non_retryable=True
                )
        if len(self._versions) >= 32:
            self._versions.clear()
        self._versions[inp.version] = snap
        return snap

    @activity.defn(name=RECORD_ATTENTION)
    async def record_attention(self, inp: AttentionInput) -> StepResult:
        """A journey needs ops (its read-model state, the error, an audit row, an email to ops in
        the outbox), or ops resumed it (state restored, audit row)."""
        async with self.sessionmaker() as session, session.begin():
            detail = {"workflow_id": inp.workflow_id, "activity": inp.activity, "error": inp.error}
            if inp.resolved:
                applied = await repo.claim_step(
                    session,
                    key=inp.idempotency_key,
                    actor=inp.by,
                    action="journey.resumed",
                    partner_id=inp.partner_id,
                    journey=inp.journey,
                    detail=detail,
                )
            else:
                applied = 0 < await write_outbox(
                    session,
                    NotifyInput(
                        idempotency_key=inp.idempotency_key,
                        partner_id=inp.partner_id,
                        journey=inp.journey,
                        template="needs_attention",
                        recipients=[],
                        context={**detail, "journey": inp.journey},
                        audit_action="journey.needs_attention",
                    ),
                    [("ops", self.ops_email, {})],
                )
            if applied:
                attention = None if inp.resolved else {**detail, "since": inp.at.isoformat()}
                await session.execute(
                    update(JourneyRecord)
                    .where(JourneyRecord.workflow_id == inp.workflow_id)
                    .values(state=inp.state, attention=attention, updated_at=func.now())
                )
        return StepResult(applied=applied)

    @activity.defn(name=QUEUE_NOTIFICATION)
    async def queue_notification(self, inp: NotifyInput) -> NotifyResult:
        """Write the outbox rows and the audit row of one notification, in one transaction."""
        async with self.sessionmaker() as session, session.begin():
            recipients = await resolve_recipients(session, inp.partner_id, inp.recipients, self.ops_email)
            queued = await write_outbox(session, inp, [(role, address, {}) for role, address in recipients])
        return NotifyResult(queued=queued, recipients=[a for _, a in recipients])

    @activity.defn(name=NOTIFY)
    async def notify(self, inp: NotifyInput) -> SendResult:
        """Queue one notification and send it, in one activity (`queue_and_send`), to the
        recipients `inp.recipients` names; the events of `inp.events` are written in the queueing
        transaction too (`notify_publishing`)."""

        return await self.notify_after(inp)

    async def notify_after(
        self, inp: NotifyInput, first: Callable[[AsyncSession], Awaitable[object]] | None = None
    ) -> SendResult:
        """`notify`, with `first` run at the start of the queueing transaction: what the email
        tells (a journey's state change), written with it or not at all (kit generation 12). The
        email is sent after that transaction commits: a state change locks the rows it writes
        (the deal, the partner's fund, the partner), and an SMTP relay that hangs would keep every
        other writer of those rows waiting for as long as the send's timeout."""

        async def recipients(session: AsyncSession, languages: dict[str, str]) -> Queued:
            if first is not None:
                await first(session)
            found = await resolve_recipients(session, inp.partner_id, inp.recipients, self.ops_email, languages)
            return inp, [(role, address, {}) for role, address in found]

        return await self.queue_and_send(recipients, inp.events, after_commit=first is not None)

    async def queue_and_send(
        self,
        queued: Callable[[AsyncSession, dict[str, str]], Awaitable[Queued]],
        events: Sequence[EventInput] = (),
        *,
        after_commit: bool = False,
    ) -> SendResult:
        """Queue one notification and send it, in one step (`notify`, and a journey's own step
        whose recipients carry their own context, e.g. their signed links): `queued` gives the
        notification and its recipients in the queueing transaction (filling in the languages it
        found by address). Both halves are idempotent on the key (a retry queues nothing twice and
        sends only the rows still pending). The first row this attempt queued is sent in the
        queueing transaction, as its INSERT returned it: written as sent (no one sees it before
        the commit, which marks it: no lock, no read and, unless the send fails, no UPDATE of its
        own), in the language the recipients' query found; the others each in their own
        transaction, by their ids; a retry looks up the key's rows. `events` are written in the
        queueing transaction too. `after_commit`: the queueing transaction holds locks others
        wait for (`notify_after`), so every row is sent after it commits, each in its own."""
        rows, languages = list[Any](), dict[str, str]()
        published: list[Published] = []
        in_transaction = not after_commit
        async with self.sessionmaker() as session, session.begin():
            inp, recipients = await queued(session, languages)
            sent = _Sent(inp.idempotency_key)
            await write_outbox(session, inp, recipients, rows, sending=in_transaction)
            for event in events:
                published.append(await write_published(session, event, self.refreshes))
            if rows and in_transaction:
                await self._send_row(session, rows[0], sent, languages.get(rows[0].recipient.lower()), written=True)
        for p in published:  # committed: their streams woken, the journeys they refresh told
            await p.announce()
        sent.events = [p.event_id for p in published]
        later = rows[1:] if in_transaction else rows
        return await self._send(inp.idempotency_key, [row.id for row in later] if rows else None, sent, languages)

    @activity.defn(name=NOTIFY_PUBLISHING)
    async def notify_publishing(self, inp: NotifyInput) -> SendResult:
        """`notify` of an email and the catalog events it announces (`inp.events`, written in the
        email's transaction, each once per its key; kit generation 5). A name of its own: a worker
        that does not know it never runs it without those events."""
        return await self.notify(inp)

    @activity.defn(name=SEND_NOTIFICATIONS)
    async def send_notifications(self, inp: SendInput) -> SendResult:
        """Send every pending outbox row of a key. Each row is locked while it is sent and
        marked sent in the same transaction, so two attempts never send it twice. A recipient
        refused for good (SMTP 5xx, an address or template that cannot work) is marked `failed`
        with an audit row and does not hold up the others; a transient failure (connection
        lost, SMTP 4xx, timeout) is retried by Temporal, after the other rows were tried."""
        return await self._send(inp.idempotency_key)

    async def _send(
        self, key: str, ids: list[int] | None = None, sent: _Sent | None = None, languages: dict[str, str] | None = None
    ) -> SendResult:
        """`send_notifications` of the key's rows, or of `ids` when the caller has just queued them
        (the same rows: one lookup fewer), adding to what `sent` counted already; `languages`: the
        recipients' the caller found by address (a recipient's not there is looked up)."""
        sent = sent or _Sent(key)
        if ids is None:
            async with self.sessionmaker() as session:
                ids = list(
                    (
                        await session.scalars(
                            select(OutboxMessage.id)
                            .where(OutboxMessage.idempotency_key == key)
                            .order_by(OutboxMessage.id)
                        )
                    ).all()
                )
        for row_id in ids:
            async with self.sessionmaker() as session, session.begin():
                row = (await session.execute(_locked_row(), {"id": row_id})).one_or_none()
                known = (languages or {}).get(row.recipient.lower()) if row is not None else None
                await self._send_row(session, row, sent, known)
        return sent.result()

    async def _send_row(
        self, session: AsyncSession, row: Any, sent: _Sent, language: str | None = None, *, written: bool = False
    ) -> None:
        """Send one outbox row (its columns, locked or written by the caller's transaction) in that
        transaction: sent, and marked sent (or failed for good) with its attempt in one UPDATE when
        the transaction commits; a transient failure leaves it pending. `written`: the caller's
        transaction wrote the row as sent with this attempt (`write_outbox`'s `sending`), so only a
        failure needs the UPDATE (back to pending, or failed). `language`: the recipient's, when
        the caller knows it."""
        if row is None or (not written and row.status in ("sent", "failed")):
            sent.already += 1
            return
        # The bound values of `_outcome` (named apart from the columns they set).
        tries = row.attempts if written else row.attempts + 1
        outcome: dict[str, Any] = {"row_id": row.id, "tries": tries, "outcome": "pending", "error": None}
        try:
            if language is None:
                language = await recipient_language(session, row)
            rendered = self.mailer.render(row.journey, row.template, row.context, language)
            msg = self.mailer.build(
                recipient=row.recipient,
                rendered=rendered,
                msg_id=row.message_id,
                headers={"X-CAMLights-Key": row.idempotency_key, "X-CAMLights-Template": row.template},
            )
            await self.mailer.send(msg)
        except Exception as err:
            outcome["error"] = f"{type(err).__name__}: {err}"[:2000]
            if not is_permanent(err):
                sent.transient.append(f"{row.recipient}: {outcome['error']}")
            else:
                outcome["outcome"] = "failed"
                sent.failed += 1
                metrics.email(row.journey, row.template, "failed")
                await repo.claim_step(
                    session,
                    key=f"{row.idempotency_key}:failed:{row.id}",
                    actor="system",
                    action="notification.failed",
                    partner_id=row.partner_id,
                    journey=row.journey,
                    detail={"template": row.template, "to": row.recipient, "error": outcome["error"]},
                )
        else:
            outcome["outcome"] = "sent"
            sent.sent += 1
            metrics.email(row.journey, row.template, "sent")
            if written:  # written as sent: the commit marks it
                return
        await session.execute(_outcome(), outcome)


@dataclass
class _Sent:
    """What one send of a key's rows did; `result()` raises when a row failed for now (Temporal
    retries the activity: only the rows still pending are sent again)."""

    key: str
    sent: int = 0
    already: int = 0
    failed: int = 0
    transient: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)  # the ids of the events written with the email

    def result(self) -> SendResult:
        if self.transient:
            raise ApplicationError(f"SMTP send failed, will retry: {'; '.join(self.transient)}", type="SmtpError")
        return SendResult(
            sent=self.sent, already_sent=self.already, failed=self.failed, idempotency_key=self.key, events=self.events
        )


async def recipient_language(session: AsyncSession, row: Any) -> str:
    """The language of the email's recipient: the partner user's with that address (the partner's
    own people), else English (CAMs, ops, a certified person who is no portal user)."""
    if row.partner_id is None or row.recipient_role not in ("partner", "person"):
        return "en"
    language = await session.scalar(_language(), {"partner_id": row.partner_id, "email": row.recipient.lower()})
    return language or "en"


def is_permanent(err: BaseException) -> bool:
    """A failure that no retry can fix: the server refused the recipient or the message for good
    (5xx), or the message cannot be built (bad address, missing or broken template)."""
    if isinstance(err, aiosmtplib.SMTPRecipientsRefused):
        return all(refusal.code >= 500 for refusal in err.recipients)
    if isinstance(err, aiosmtplib.SMTPResponseException):
        return err.code >= 500
    return isinstance(err, ValueError | UnicodeError | jinja2.TemplateError)


async def resolve_recipients(
    session: AsyncSession,
    partner_id: str,
    roles: list[str],
    ops_email: str,
    languages: dict[str, str] | None = None,
) -> list[tuple[str, str]]:
    """Roles ("partner", "cam", "ops", "person:<address>") to (role, address), from the DB at queue time; a CAM
    role on a partner without a CAM resolves to nobody. One entry per address. `languages`, when
    given, receives the partner contact's language by its (lowercased) address, as
    `recipient_language` would find it (English when the contact is no portal user)."""
    # The partner's address, its CAM's (no CAM: None) and its contact's language in one statement.
    found = (await session.execute(_addresses(), {"id": uuid.UUID(partner_id)})).one_or_none()
    if found is None:
        raise ApplicationError(f"partner {partner_id} not found", type="PartnerNotFound", non_retryable=True)
    contact_email, cam_email, contact_language = found
    if languages is not None and "partner" in roles:
        languages[contact_email.lower()] = contact_language or "en"
    out: list[tuple[str, str]] = []
    for role in roles:
        if role == "partner":
            out.append((role, contact_email))
        elif role == "cam":
            if cam_email is not None:
                out.append((role, cam_email))
        elif role == "ops":
            out.append((role, ops_email))
        elif role.startswith("person:"):  # a named person of the partner, e.g. a certified engineer
            out.append(("person", role.removeprefix("person:")))
        else:
            raise ApplicationError(f"unknown recipient role {role!r}", type="BadRecipient", non_retryable=True)
    seen: set[str] = set()
    unique: list[tuple[str, str]] = []
    for r, a in out:  # first of each address (case-insensitive), in order
        if a.lower() not in seen:
            seen.add(a.lower())
            unique.append((r, a))
    return unique


async def approver_rows(
    session: AsyncSession,
    partner: Partner,
    approver: str,
    ops_email: str,
    *,
    key: str,
    links: Callable[[str, str, str], str] | None,
    decisions: Mapping[str, str],
) -> list[tuple[str, str, dict]]:
    """Outbox recipients for a decision request: the approver role ("cam" or "ops"; ops when the CAM
    went away meanwhile), each with its own signed one-click links when `links` is given:
    `links(decision in the token, approver actor, link id)` makes the URL of one decision, and
    `decisions` maps each template name (`approve` gives `approve_url`) to the decision in its token."""
    recipients = await resolve_recipients(session, str(partner.id), [approver], ops_email)
    if not recipients:
        recipients = await resolve_recipients(session, str(partner.id), ["ops"], ops_email)
    rows: list[tuple[str, str, dict]] = []
    for role, address in recipients:
        urls: dict[str, str] = {}
        if links is not None:
            # A CAM decides as itself; ops decide by link: the link itself identifies the decision.
            actor = (
                actors.cam(partner.cam_id)
                if role == "cam"
                else actors.ops(f"link-{link_jti(key, address, 'approver')[:16]}")
            )
            for name, decision in decisions.items():
                urls[f"{name}_url"] = links(decision, actor, link_jti(key, address, name))
        rows.append((role, address, urls))
    return rows


async def queue_rows(
    session: AsyncSession,
    rows: list[tuple[str, str, dict]],
    *,
    key: str,
    partner_id: str,
    journey: str,
    template: str,
    context: dict,
) -> NotifyResult:
    """The outbox rows of one notification whose recipients carry their own context (e.g. their
    signed links, from `approver_rows`), with its audit row."""
    notify = notification(rows, key=key, partner_id=partner_id, journey=journey, template=template, context=context)
    queued = await write_outbox(session, notify, rows)
    return NotifyResult(queued=queued, recipients=[a for _, a, _ in rows])


def notification(
    rows: list[tuple[str, str, dict]], *, key: str, partner_id: str, journey: str, template: str, context: dict
) -> NotifyInput:
    """The notification of `template` to `rows` (role, address, their own context) under `key`."""
    return NotifyInput(
        idempotency_key=key,
        partner_id=partner_id,
        journey=journey,
        template=template,
        recipients=[r for r, _, _ in rows],
        context=context,
        audit_action=f"{journey}.{template}_sent",
    )


async def write_outbox(
    session: AsyncSession,
    inp: NotifyInput,
    recipients: list[tuple[str, str, dict]],
    rows: list[Any] | None = None,
    *,
    sending: bool = False,
) -> int:
    """The audit row and one outbox row per recipient, in the caller's transaction. Returns how
    many rows were queued: 0 when an earlier attempt already queued this key. `rows`, when given,
    receives the rows written (their columns, as `_locked_row` reads them), in order.

    The audit row claims the key and the first recipient's row is written only when it did, in
    one statement (`_claimed_outbox_row`); each further recipient's row in one of its own.
    `sending`: the caller sends the first row in this transaction (`notify`), so it is written
    as sent with its first attempt; the caller's send sets another outcome if it fails (the row
    is seen by no one before the commit either way)."""
    audit: dict[str, Any] = {
        "key": inp.idempotency_key,
        "actor": "system",
        "action": inp.audit_action,
        "partner_id": inp.partner_id,
        "journey": inp.journey,
        "detail": {"template": inp.template, "to": [a for _, a, _ in recipients], **inp.context},
    }
    if not recipients:  # nobody to email: the audit row says so
        await repo.claim_step(session, **audit)
        return 0
    claim, first = repo.claim_params(**audit), _claimed_outbox_row(sending)
    for i, (role, address, extra) in enumerate(recipients):
        values = {
            "idempotency_key": inp.idempotency_key,
            "partner_id": claim["partner_id"],  # None: not a partner's ("" in the input)
            "journey": inp.journey,
            "template": inp.template,
            "recipient": address,
            "recipient_role": role,
            "context": {**inp.context, **extra, "recipient_role": role},
            "message_id": message_id(inp.idempotency_key, address, inp.template),
        }
        row = (await session.execute(first if i == 0 else _outbox_row(), claim | values)).one_or_none()
        if i == 0 and row is None:  # the key was claimed before: queued by an earlier attempt
            return 0
        if rows is not None and row is not None:
            rows.append(row)
    return len(recipients)


# The mail step's statements, built once with their values bound by name (building an ORM
# statement costs more CPU than sending it: store/repo.py).


_OUTBOX_COLUMNS = (
    "idempotency_key",
    "partner_id",
    "journey",
    "template",
    "recipient",
    "recipient_role",
    "context",
    "message_id",
)


@functools.cache
def _outbox_row() -> Executable:
    """`write_outbox`'s INSERT of one recipient's row, returned (none: queued before)."""
    table = table_of(OutboxMessage)
    return (
        insert(table)
        .values(**bound(OutboxMessage, *_OUTBOX_COLUMNS), status="pending", attempts=0)
        .on_conflict_do_nothing()
        .returning(*table.c)
    )


@functools.cache
def _claimed_outbox_row(sending: bool = False) -> Executable:
    """`write_outbox`'s first row: the audit row claims the key (`repo.claimed`) and the row is
    written only when it did, in one data-modifying CTE (the key, partner and journey bound once
    for both tables), returned. `sending`: written as sent by its first attempt (the caller
    sends it before its transaction commits)."""
    table, claim = table_of(OutboxMessage), repo.claimed()
    status = (literal("sent"), literal(1), func.now()) if sending else (literal("pending"), literal(0), null())
    row = select(*bound(OutboxMessage, *_OUTBOX_COLUMNS).values(), *status).where(exists(select(claim.c.id)))
    return (
        insert(table)
        .from_select([*_OUTBOX_COLUMNS, "status", "attempts", "sent_at"], row)
        .on_conflict_do_nothing()
        .returning(*table.c)
        .add_cte(claim)
    )


@functools.cache
def _locked_row() -> Select:
    """An outbox row's columns by id, locked until the sending transaction ends."""
    table = table_of(OutboxMessage)
    return select(*table.c).where(table.c.id == bindparam("id")).with_for_update()


@functools.cache
def _outcome() -> Executable:
    """A row's attempt, one UPDATE: its status (`sent`: with the time; `failed` for good, or
    still `pending` after a transient failure: with the error, and no time even if the row was
    written as sent; an earlier error stays otherwise)."""
    table = table_of(OutboxMessage)
    status = bindparam("outcome", type_=table.c.status.type)
    return (
        update(table)
        .where(table.c.id == bindparam("row_id"))
        .values(
            status=status,
            attempts=bindparam("tries", type_=table.c.attempts.type),
            sent_at=case((status == "sent", func.now()), else_=null()),
            last_error=func.coalesce(bindparam("error", type_=table.c.last_error.type), table.c.last_error),
        )
    )


@functools.cache
def _language() -> Select:
    """The language of the partner's user with that (lowercased) address."""
    return select(PartnerUser.language).where(
        PartnerUser.partner_id == bindparam("partner_id"), PartnerUser.email == bindparam("email")
    )


@functools.cache
def _addresses() -> Select:
    """A partner's contact address, its CAM's (None without a CAM) and the contact's language
    (None when the contact is no portal user: English), in one statement."""
    return (
        select(Partner.contact_email, Cam.email, PartnerUser.language)
        .outerjoin(Cam, Cam.id == Partner.cam_id)
        .outerjoin(
            PartnerUser,
            (PartnerUser.partner_id == Partner.id) & (PartnerUser.email == func.lower(Partner.contact_email)),
        )
        .where(Partner.id == bindparam("id"))
    )
