"""Contracts every journey shares: workflow ids, message and activity names, search attributes,
notifications and state records. A journey's own contracts live in domain/<journey>.py."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pydantic import BaseModel, Field
from temporalio.common import SearchAttributeKey

from domain.enums import Tier
from domain.errors import Conflict, DomainError, Invalid, NotFound, Refused
from domain.webhooks import EventInput

# Typed search attributes, registered on the Temporal server (see worker/services.py).
SA_PARTNER_ID = SearchAttributeKey.for_keyword("PartnerId")
SA_CAM_ID = SearchAttributeKey.for_keyword("CamId")
SA_TIER = SearchAttributeKey.for_keyword("Tier")
SA_JOURNEY = SearchAttributeKey.for_keyword("Journey")
SA_JOURNEY_STATE = SearchAttributeKey.for_keyword("JourneyState")
SA_NEXT_DEADLINE = SearchAttributeKey.for_datetime("NextDeadline")  # when the journey acts next, by itself
SEARCH_ATTRIBUTES = [SA_PARTNER_ID, SA_CAM_ID, SA_TIER, SA_JOURNEY, SA_JOURNEY_STATE, SA_NEXT_DEADLINE]

NO_CAM = "none"  # CamId value for partners without a CAM (keyword attributes cannot be null)

# Date arithmetic of a journey never leaves these bounds (a date near the end of what datetime
# holds, sent by any client, must not fail the workflow task on `+ timedelta`).
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def shifted(at: datetime, delta: timedelta) -> datetime:
    """`at + delta`, clamped to EARLIEST..LATEST (naive values to their naive bounds): journey
    date arithmetic cannot overflow. Unchanged for every date a journey can be sent today."""
    earliest, latest = (
        (EARLIEST, LATEST) if at.tzinfo is not None else (EARLIEST.replace(tzinfo=None), LATEST.replace(tzinfo=None))
    )
    try:
        moved = at + delta
    except OverflowError:
        return latest if delta > timedelta(0) else earliest
    return min(max(moved, earliest), latest)


def day_after(d: date) -> date:
    """The next day, clamped to LATEST's day (`date.max + 1 day` overflows)."""
    return min(d, LATEST.date()) + timedelta(days=1)


def outside_horizon(value: date | datetime, now: datetime, days: int) -> str | None:
    """Why `value` may not be sent to a journey (None: it may): it must lie within `days` calendar
    days of `now` (the policy's `limits.horizon_days`), and a time must name its zone."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            return "a time needs its UTC offset (e.g. 2030-01-31T10:00:00Z)"
        moment = value
    else:
        moment = datetime.combine(value, time(12), UTC)
    if abs(moment - now) > timedelta(days=days):  # aware minus aware: a timedelta, never an overflow
        lo, hi = (now - timedelta(days=days)).date(), (now + timedelta(days=days)).date()
        return f"must lie within {days} days of today (between {lo} and {hi})"
    return None


# Messages every journey answers (names are constants; handlers are declared with them).
CHANGE_COVERAGE = "change_coverage"  # signal: the partner's tier or CAM changed
PROGRESS = "progress"  # query: the live state of the journey
RESUME = "resume"  # signal: ops resolved what made the journey need attention; retry the step

# Activities every journey uses. The names before journey-scoped names (0.1) stay registered on
# the worker and are used by journeys replaying a history recorded before the patch.
ACTIVITY_NAMES_PATCH = "activity-names-per-journey"
LOAD_POLICY = "policy.load"
QUEUE_NOTIFICATION = "outbox.queue"
SEND_NOTIFICATIONS = "outbox.send"
NOTIFY = "outbox.notify"  # queue and send one notification in one activity (patch `kit-lean-steps`)
# The same, with the events the email announces written in its transaction (generation 5). A name
# of its own: a worker built before it, during a rollout, refuses the task (retried until a newer
# worker takes it) rather than running it without the events its input carries.
NOTIFY_PUBLISHING = "outbox.notify_publishing"
RECORD_ATTENTION = "journey.record_attention"
NEEDS_ATTENTION_PATCH = "needs-attention"  # a permanent activity failure waits for ops instead of failing
NEXT_DEADLINE_PATCH = "next-deadline"  # journeys keep NextDeadline and their current details up to date
# Journeys cost their business steps: the policy read as a local activity, one activity per
# notification (`outbox.notify`), events published by a local activity, milestone signals sent
# without a workflow task of their own, search attributes upserted only when they change.
# Its generations, oldest first: a new run records the newest one's marker alone (one marker and
# one TemporalChangeVersion upsert per run) and has what every older one brings; a running journey
# keeps the generation it started with. 2: a journey's fact for another journey (the certification's
# first period telling onboarding) is told by the step that records it, not by a signal of its own;
# a wait whose condition already holds returns at once (no NextDeadline upsert for a deadline not waited for).
# 3: every short idempotent write of a journey is a local activity (`kit.write`): its state record
# (`record_state`), and the lead's offer records and events (an activity and a workflow task each before).
# 4: a notification is a local activity too (`outbox.notify`, which queues and sends it, and
# `outbox.send` for what a step queued): both idempotent on the outbox key, the SMTP conversation
# short; a send still failing after `LOCAL_ATTEMPTS` goes on as an activity, retried without end.
# Not while an update waits for its answer (it would wait for the SMTP conversation): then an activity.
# 5: a catalog event rides with the email that tells the same news (`outbox.notify_publishing`,
# one transaction for the email's rows and the event's), instead of a local activity of its own.
# 6: onboarding's plan and milestone records are `kit.write`s too (generation 3 had left them
# activities: an activity task, its three events and a workflow task each).
# 7: MDF's ledger steps (a hold or release of the request's reservation, a payment's record) and a
# deal's stage record are `kit.write`s too (left activities as onboarding's were: three of an MDF
# journey's five activities).
LEAN_PATCHES = (
    "kit-lean-steps",
    "kit-lean-steps-2",
    "kit-lean-steps-3",
    "kit-lean-steps-4",
    "kit-lean-steps-5",
    "kit-lean-steps-6",
    "kit-lean-steps-7",
    "kit-lean-steps-8",
    "kit-lean-steps-9",
    "kit-lean-steps-10",
    "kit-lean-steps-11",
    "kit-lean-steps-12",
    # 13: a journey's own patches made before it are implied, without their markers
    # (`JourneyKit.patched(patch_id, since=13)`): each cost a new run a marker and a
    # TemporalChangeVersion upsert (the health journey's three, six of its first round's 20 events).
    "kit-lean-steps-13",
)
LEAN_PATCH = LEAN_PATCHES[0]
# A local activity still failing after a few attempts goes on as an activity (visible to ops).
LOCAL_THEN_ACTIVITY_PATCH = "kit-local-then-activity"
NEEDS_ATTENTION = "needs_attention"  # the JourneyState of a journey waiting for ops
SHARED_ACTIVITY_NAMES = frozenset(
    {LOAD_POLICY, QUEUE_NOTIFICATION, SEND_NOTIFICATIONS, NOTIFY, NOTIFY_PUBLISHING, RECORD_ATTENTION}
)
LEGACY_ACTIVITY_NAMES = {
    LOAD_POLICY: "load_policy",
    QUEUE_NOTIFICATION: "queue_notification",
    SEND_NOTIFICATIONS: "send_notifications",
}


def workflow_id(journey: str, entity_id: object) -> str:
    """`<journey>-<entity id>`: the one place a journey's workflow id is spelled."""
    return f"{journey}-{entity_id}"


class Coverage(BaseModel):
    """Who covers a partner: its tier and CAM (None for tiers without one)."""

    tier: Tier
    cam_id: str | None = None


class NotifyInput(BaseModel):
    """Queue one notification (one outbox row per recipient) and record it in the audit trail.

    `idempotency_key` is the workflow id plus the step; a retry writes nothing twice.
    `recipients` are roles resolved from the DB at send time: "partner", "cam", "ops",
    "person:<address>".
    """

    idempotency_key: str
    partner_id: str
    journey: str
    template: str
    recipients: list[str]
    context: dict[str, Any] = Field(default_factory=dict)
    audit_action: str
    # The catalog events this email announces, written in its transaction (`outbox.notify_publishing`,
    # since the kit's generation 5): none for `outbox.notify`, which writes no event.
    events: list[EventInput] = Field(default_factory=list)


class NotifyResult(BaseModel):
    queued: int
    recipients: list[str]


class SendInput(BaseModel):
    idempotency_key: str


class SendResult(BaseModel):
    sent: int
    already_sent: int
    failed: int = 0  # refused for good (status `failed`, audit row `notification.failed`)
    # The outbox key sent: a local activity's marker keeps its result, not its input, so this is
    # what names the notification in the history (kit generation 4).
    idempotency_key: str | None = None
    # The ids of the catalog events the email's transaction wrote (`outbox.notify_publishing`,
    # generation 5), named in the history for the same reason.
    events: list[str] = Field(default_factory=list)


class JourneyStateInput(BaseModel):
    """Record a journey's state in the read model (journeys table) with an audit row."""

    idempotency_key: str
    partner_id: str
    journey: str
    workflow_id: str
    state: str
    action: str
    detail: dict[str, Any] = Field(default_factory=dict)
    at: datetime


class Resume(BaseModel):
    """Signal: ops fixed the cause; the journey retries the step that failed."""

    by: str


class AttentionInput(BaseModel):
    """Record that a journey needs ops (or, with `resolved`, that it resumed): the journey's
    read-model state, an audit row and, when it starts, an email to ops."""

    idempotency_key: str
    partner_id: str
    journey: str
    workflow_id: str
    activity: str
    error: str
    resolved: bool = False
    state: str  # the journey's state: `needs_attention` while waiting, its own state once resumed
    by: str = "system"
    at: datetime


class LoadPolicyInput(BaseModel):
    version: int | None = None


class StepResult(BaseModel):
    applied: bool


# Business refusals raised by update validators and handlers (ApplicationError.type); the API
# maps them to HTTP statuses in one place.
class Refusal:
    NOT_PENDING = "NotPending"  # 409: the journey is not in a state that accepts this
    NOT_APPROVER = "NotApprover"  # 403: this actor may not do this
    LIMIT_REACHED = "LimitReached"  # 409: a policy bound is used up
    TOO_SHORT = "TooShort"  # 422: a date or length the policy refuses
    UNKNOWN_KEY = "UnknownKey"  # 404: the journey has no such item (e.g. a milestone key)
    INVALID = "Invalid"  # 422: a value the rules refuse (an amount above what was approved, proof missing)
    INSUFFICIENT_FUNDS = "InsufficientFunds"  # 409: the fund cannot cover the amount


REFUSAL_KIND: dict[str, type[DomainError]] = {  # how a service passes each refusal on (api/errors.py: its status)
    Refusal.NOT_PENDING: Conflict,
    Refusal.NOT_APPROVER: Refused,
    Refusal.LIMIT_REACHED: Conflict,
    Refusal.TOO_SHORT: Invalid,
    Refusal.UNKNOWN_KEY: NotFound,
    Refusal.INVALID: Invalid,
    Refusal.INSUFFICIENT_FUNDS: Conflict,
}
