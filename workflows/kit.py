"""What every journey workflow does the same way, in one plain class (in the way of the
`UpdatableTimer` helper in temporalio's samples): read the pinned policy, run an activity by
its journey-scoped name, notify through the outbox, wait until a deadline or a condition,
upsert the journey's search attributes, follow a coverage change, and tell another journey
something by workflow id.

Deterministic; imports only domain/ (activities are called by name, never imported)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, FailureError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from domain.journeys import (
        ACTIVITY_NAMES_PATCH,
        LEAN_PATCHES,
        LEGACY_ACTIVITY_NAMES,
        LOAD_POLICY,
        LOCAL_THEN_ACTIVITY_PATCH,
        NEEDS_ATTENTION,
        NEEDS_ATTENTION_PATCH,
        NEXT_DEADLINE_PATCH,
        NO_CAM,
        NOTIFY,
        NOTIFY_PUBLISHING,
        QUEUE_NOTIFICATION,
        RECORD_ATTENTION,
        RESUME,
        SA_CAM_ID,
        SA_JOURNEY,
        SA_JOURNEY_STATE,
        SA_NEXT_DEADLINE,
        SA_PARTNER_ID,
        SA_TIER,
        SEND_NOTIFICATIONS,
        AttentionInput,
        Coverage,
        LoadPolicyInput,
        NotifyInput,
        NotifyResult,
        Refusal,
        Resume,
        SendInput,
        SendResult,
        StepResult,
        outside_horizon,
    )
    from domain.policy import LimitsPolicy, ProgramPolicy, VersionedPolicy
    from domain.webhooks import EVENTS_PATCH, EventInput, PublishResult, WebhookActivity

R = TypeVar("R")

# Short: a worker that dies mid-activity delays the retry by at most this much.
ACTIVITY_TIMEOUT = timedelta(seconds=15)
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(seconds=30)
)
# A local activity retries inside its workflow task, where ops cannot see it (Temporal lists pending
# activities only): after these attempts (about 3 s) the step is an activity of its own, retried
# as every step is and listed by `GET /ops/retrying` (patch `kit-local-then-activity`).
LOCAL_ATTEMPTS = 3
LOCAL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=LOCAL_ATTEMPTS,
)


class JourneyKit:
    """One per workflow run, built in `@workflow.init` from the journey's name, its partner and
    coverage, and the legacy names of its own activities."""

    def __init__(
        self,
        journey: str,
        partner_id: str,
        coverage: Coverage,
        legacy_names: Mapping[str, str] | None = None,
        *,
        context: Callable[[], dict[str, Any]] = dict,
        scope: Callable[[], str] = str,
    ) -> None:
        """`context` gives what every email of the journey shows; `scope` prefixes the steps of
        notifications (e.g. the period of a perpetual journey)."""
        self.journey = journey
        self._context = context
        self._scope_of = scope
        self.partner_id = partner_id
        self.coverage = coverage
        self.policy: ProgramPolicy | None = None
        self.policy_version = 0
        self._legacy = {**LEGACY_ACTIVITY_NAMES, **(legacy_names or {})}
        self.state = ""  # the state last upserted
        self._since = workflow.now()  # when it took that state
        self.attention: AttentionInput | None = None  # set while the journey waits for ops
        self._attentions = 0
        self._resumed: Resume | None = None
        self._generation: int | None = None
        self._told: set[asyncio.Task[bool]] = set()  # signals to other journeys still on their way
        self._held: list[EventInput] = []  # events for the next email (`emit(email_follows=True)`)
        workflow.set_signal_handler(RESUME, self._on_resume)

    # ------------------------------------------------------------------ policy and activities

    @property
    def lean(self) -> bool:
        """Patch `kit-lean-steps` (domain/journeys.py), or a later generation of it."""
        return self.generation >= 1

    @property
    def carries_events(self) -> bool:
        """Generation 5 (`kit-lean-steps-5`): an event rides with the email that tells the same news."""
        return self.generation >= 5

    @property
    def generation(self) -> int:
        """The generation of the lean kit this run has (`LEAN_PATCHES`, 0 before `kit-lean-steps`):
        decided once per run, at its first use (the policy read, the first thing a journey does),
        newest first so that a new run records one marker."""
        if self._generation is None:
            found = (g for g in range(len(LEAN_PATCHES), 0, -1) if workflow.patched(LEAN_PATCHES[g - 1]))
            self._generation = next(found, 0)
        return self._generation

    def patched(self, patch_id: str, since: int = 1) -> bool:
        """`workflow.patched` for a journey's patch made before the kit's generation `since` (1,
        `kit-lean-steps`, for a patch older than it; 13 for one made since): a run of that
        generation or a newer one has the patch too, without its marker (each costs two history
        events: the marker and a TemporalChangeVersion upsert). Asked before the run's generation
        is decided (a patch checked before the policy read), only the generations from `since` up
        are looked for: a run recorded before them finds none, so no marker is matched out of the
        order its history has them in, and a new run records the newest one, as its generation
        would."""
        if self._generation is None and since > 1:
            newer = range(len(LEAN_PATCHES), since - 1, -1)
            implied = any(workflow.patched(LEAN_PATCHES[g - 1]) for g in newer)
        else:
            implied = self.generation >= since
        return implied or workflow.patched(patch_id)

    async def load_policy(self, version: int | None) -> ProgramPolicy:
        """Read the policy version pinned at start (None: the current one) through a local
        activity (an activity before `kit-lean-steps`), so the value is in the history; keep it
        for the rest of the run."""
        arg, summary = LoadPolicyInput(version=version), f"read the program policy (version {version or 'current'})"
        if self.lean:
            snap = await self.local_activity(LOAD_POLICY, arg, VersionedPolicy, summary=summary)
        else:
            snap = await self.activity(LOAD_POLICY, arg, VersionedPolicy, summary=summary)
        self.policy, self.policy_version = snap.policy, snap.version
        return snap.policy

    async def local_activity(self, name: str, arg: BaseModel, result_type: type[R], *, summary: str) -> R:
        """A short idempotent step run by the worker inside the workflow task (a marker in the
        history instead of an activity and a workflow task of its own); a permanent failure
        waits for ops as `activity` does. Still failing after `LOCAL_ATTEMPTS` (or failing for
        good), it goes on as an activity (`activity`): retried without end, visible to ops
        (`GET /ops/retrying`), a permanent failure waiting for them, and the journey answers its
        queries and updates meanwhile (patch `kit-local-then-activity`, decided only then: a step
        that succeeds costs nothing more)."""
        try:
            return await self._until_done(
                name,
                lambda: workflow.execute_local_activity(
                    name,
                    arg,
                    result_type=result_type,
                    start_to_close_timeout=ACTIVITY_TIMEOUT,
                    retry_policy=LOCAL_RETRY,
                    summary=summary,
                ),
            )
        except FailureError as err:  # a local activity's failure comes as its cause (no ActivityError)
            if isinstance(err, CancelledError) or not workflow.patched(LOCAL_THEN_ACTIVITY_PATCH):
                raise
        # Retried without end by Temporal from here on; a permanent failure waits for ops.
        return await self.activity(name, arg, result_type, summary=summary)

    async def activity(self, name: str, arg: BaseModel, result_type: type[R], *, summary: str | None = None) -> R:
        """Run an activity by its journey-scoped name. Journeys recorded before the names were
        scoped replay with the old names (patch `activity-names-per-journey`). A permanent
        failure (non-retryable) does not fail the journey: it waits, visibly, for ops to fix
        the cause and resume it, then runs the step again; queries and updates keep working."""
        if not self.patched(ACTIVITY_NAMES_PATCH):
            name = self._legacy.get(name, name)
        return await self._until_done(
            name,
            lambda: workflow.execute_activity(
                name,
                arg,
                result_type=result_type,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=RETRY,
                summary=summary or name,
            ),
        )

    async def _until_done(self, name: str, run: Callable[[], Awaitable[R]]) -> R:
        """Run a step until it succeeds; a permanent failure waits for ops (patch `needs-attention`)."""
        while True:
            try:
                return await run()
            except ActivityError as err:
                cause = err.cause
                if not (isinstance(cause, ApplicationError) and cause.non_retryable):
                    raise
                if not self.patched(NEEDS_ATTENTION_PATCH):
                    raise
                await self._wait_for_ops(name, f"{cause.type or 'Error'}: {cause.message}")

    async def _wait_for_ops(self, activity: str, error: str) -> None:
        await self._publish_held()  # the email they wait for may be days away
        self._attentions += 1
        before, self._resumed = self.state, None
        self.attention = AttentionInput(
            idempotency_key=self.key(f"attention:{self._attentions}"),
            partner_id=self.partner_id,
            journey=self.journey,
            workflow_id=workflow.info().workflow_id,
            activity=activity,
            error=error[:2000],
            state=NEEDS_ATTENTION,
            at=workflow.now(),
        )
        self.upsert(NEEDS_ATTENTION)
        workflow.set_current_details(
            f"**needs attention** since {workflow.now():%Y-%m-%d %H:%M} UTC: `{activity}` failed for good "
            f"({error[:200]}). Waiting for ops: fix the cause, then `POST /ops/journeys/{{id}}/resume`."
        )
        workflow.logger.warning(
            "%s needs attention: %s failed for good (%s)", self.journey, activity, error, extra=self.log_extra
        )
        await self._record_attention(self.attention)
        await workflow.wait_condition(lambda: self._resumed is not None)
        assert self._resumed is not None
        resolved = self.attention.model_copy(
            update={
                "idempotency_key": self.key(f"attention:{self._attentions}:resumed"),
                "resolved": True,
                "state": before,
                "by": self._resumed.by,
                "at": workflow.now(),
            }
        )
        self.attention = None
        self.upsert(before)
        await self._record_attention(resolved)

    async def _record_attention(self, inp: AttentionInput) -> None:
        await workflow.execute_activity(
            RECORD_ATTENTION,
            inp,
            result_type=StepResult,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
            summary="record that ops resumed the journey" if inp.resolved else "record that the journey needs ops",
        )
        if not inp.resolved:
            await self.send_outbox(inp.idempotency_key)

    def _on_resume(self, resume: Resume) -> None:
        if self.attention is not None:
            self._resumed = resume

    @property
    def log_extra(self) -> dict[str, str]:
        """For `workflow.logger` calls: the partner id on the record (JSON logs carry it)."""
        return {"partner_id": self.partner_id}

    @property
    def actor(self) -> str:
        """This journey as an actor (`journey:<workflow id>`), for facts it tells others."""
        return f"journey:{workflow.info().workflow_id}"

    @property
    def _scope(self) -> str:
        return self._scope_of()

    def key(self, step: str) -> str:
        """The idempotency key of a step of this journey: `<workflow id>:<step>`."""
        return f"{workflow.info().workflow_id}:{step}"

    async def record_state(self, state: str, name: str, arg: BaseModel, *, by: str | None = None) -> StepResult:
        """A state change: in the search attributes at once, then written by the journey's record
        activity `name` (idempotent on the key inside `arg`)."""
        self.upsert(state)
        summary = f"record the {self.journey} state: {state}" + (f" (by {by})" if by else "")
        return await self.write(name, arg, StepResult, summary=summary)

    async def write(self, name: str, arg: BaseModel, result_type: type[R], *, summary: str, since: int = 3) -> R:
        """A short idempotent write of the journey (a state, an offer, an event): a local activity
        since the kit's generation 3 (`kit-lean-steps-3`; no activity task and no workflow task of
        its own), an activity before; `since`: a later generation for a write that one made local
        (onboarding's plan and milestones: 6; MDF's holds and payments, a deal's stage: 7; a lead's
        routing and offer, health's episode and re-engagement records: 8; health's evaluation, which
        records the partner's score once per key: 10). Still
        failing after `LOCAL_ATTEMPTS`, it goes on as an activity, visible to ops, as every local
        step does (`local_activity`)."""
        if self.generation >= since:
            return await self.local_activity(name, arg, result_type, summary=summary)
        return await self.activity(name, arg, result_type, summary=summary)

    # ------------------------------------------------------------------ notifications

    async def notify(
        self,
        template: str,
        recipients: list[str],
        *,
        step: str | None = None,
        events: Sequence[EventInput] = (),
        **context: Any,
    ) -> None:
        """Queue a notification in the outbox (with its audit row) and send it: one local activity
        since the kit's generation 4 unless an update waits for its answer (`outbox.notify`; an
        activity before, and `outbox.queue` then `outbox.send` before `kit-lean-steps`). Both halves
        are idempotent on the key `<workflow id>:<scope>notify:<step or template>`; a retry or a
        replay after a crash sends nothing twice. The journey's own context is added to `context`.

        `events` (built by `event`), the news this email tells: since generation 5 written in the
        email's transaction (`outbox.notify_publishing`) with the events `emit` held for it;
        before, each published after the email as a step of its own (the order recorded
        histories have)."""
        carried = [*self._held, *events] if self.carries_events and recipients else []
        if not carried:
            await self._publish_held()
            await self._notify(template, recipients, step=step, **context)
            for inp in events:
                await self._publish(inp)
            return
        self._held = []
        await self._notify(template, recipients, step=step, events=carried, **context)

    async def _notify(
        self,
        template: str,
        recipients: list[str],
        *,
        step: str | None = None,
        events: list[EventInput] | None = None,
        **context: Any,
    ) -> None:
        if not recipients:
            return
        inp = self.notice(template, recipients, step=step, events=events or [], **context)
        key, summary = inp.idempotency_key, _email_summary(inp)
        name = NOTIFY_PUBLISHING if events else NOTIFY
        if self._local_sends():
            await self.local_activity(name, inp, SendResult, summary=summary)
            return
        if self.lean:
            await self.activity(name, inp, SendResult, summary=summary)
            return
        await self.activity(
            QUEUE_NOTIFICATION, inp, NotifyResult, summary=f"queue the {template} email to {_audience(recipients)}"
        )
        await self.send_outbox(key, summary=f"send the {template} email to {_audience(recipients)}")

    def notice(
        self,
        template: str,
        recipients: list[str],
        *,
        step: str | None = None,
        events: Sequence[EventInput] = (),
        **context: Any,
    ) -> NotifyInput:
        """The notification `notify` sends: keyed `<workflow id>:<scope>notify:<step or template>`,
        with the journey's own context added to `context`, carrying `events`."""
        return NotifyInput(
            idempotency_key=self.key(f"{self._scope}notify:{step or template}"),
            partner_id=self.partner_id,
            journey=self.journey,
            template=template,
            recipients=recipients,
            context={**self._context(), **context},
            audit_action=f"{self.journey}.{template}_sent",
            events=list(events),
        )

    def tells_with_state(self, since: int = 12) -> bool:
        """Since generation 12 (`kit-lean-steps-12`), or the later one `since` a journey took it up
        in: a state change and the email that tells it go in one step (`record_and_notify`), unless
        an update of the journey waits for its answer: that answer follows the state's record, not
        an SMTP conversation, so the two stay steps of their own (as `_local_sends` keeps such an
        email an activity)."""
        return self.generation >= since and workflow.all_handlers_finished()

    async def record_and_notify(
        self,
        state: str,
        name: str,
        build: Callable[[NotifyInput], BaseModel],
        template: str,
        recipients: list[str],
        *,
        by: str | None = None,
        events: Sequence[EventInput] = (),
        **context: Any,
    ) -> SendResult:
        """A state change and the email that tells it (`template` to `recipients`, with the events
        `emit` held for it and `events`) in one local activity: the journey's `name` records the
        state and queues the email in one transaction and sends it (`CommonActivities.notify_after`:
        both written or neither, each idempotent on its own key). `build` gives that activity's
        input from the notification. For a run with `tells_with_state()`; before, the journey records
        (`record_state`), emits and notifies as three calls, in the order its histories have."""
        if not recipients:
            raise ValueError(f"{template}: a state change told by email needs a recipient")
        self.upsert(state)
        carried, self._held = [*self._held, *events], []
        notice = self.notice(template, recipients, events=carried, **context)
        summary = f"record the {self.journey} state: {state}" + (f" (by {by})" if by else "")
        return await self.local_activity(
            name, build(notice), SendResult, summary=f"{summary}; {_email_summary(notice)}"
        )

    async def queue_and_send(
        self, name: str, arg: BaseModel, result_type: type[R], key: str, *, summary: str, send_summary: str
    ) -> R:
        """A notification the journey's own activity `name` queues (with what it records, e.g. one
        signed link per recipient) under `key`, then sent. Since `kit-lean-steps` the queueing, a
        short idempotent write, is a local activity."""
        if self.lean:
            result = await self.local_activity(name, arg, result_type, summary=summary)
        else:
            result = await self.activity(name, arg, result_type, summary=summary)
        await self.send_outbox(key, summary=send_summary)
        return result

    async def notify_by(self, name: str, arg: BaseModel, *, summary: str) -> SendResult:
        """A notification the journey's own activity `name` queues (with what it records, e.g. one
        signed link per recipient) and sends in one step, with the events it carries, as `notify`
        does (`CommonActivities.queue_and_send`): a local activity unless an update of the journey
        waits for its answer (`_local_sends`). For a journey's email `queue_and_send` sent in two
        steps before (a lead's offer emails since the kit's generation 11)."""
        if self._local_sends():
            return await self.local_activity(name, arg, SendResult, summary=summary)
        return await self.activity(name, arg, SendResult, summary=summary)

    def _local_sends(self) -> bool:
        """Generation 4: an email step is a local activity, unless an update of the journey is
        still to be answered (e.g. a renewal whose record was just written): its answer goes to
        the caller when the workflow task completes, and must not wait for an SMTP conversation,
        so that step stays an activity (the workflow task completes at once)."""
        return self.generation >= 4 and workflow.all_handlers_finished()

    async def send_outbox(self, key: str, *, summary: str | None = None) -> None:
        """Send whatever the outbox holds for `key` (rows queued by any activity)."""
        summary = summary or f"send the emails queued as {key.rsplit(':', 1)[-1]}"
        if self._local_sends():
            await self.local_activity(SEND_NOTIFICATIONS, SendInput(idempotency_key=key), SendResult, summary=summary)
            return
        await self.activity(SEND_NOTIFICATIONS, SendInput(idempotency_key=key), SendResult, summary=summary)

    # ------------------------------------------------------------------ events and metrics

    def event(self, event_type: str, data: BaseModel, *, step: str | None = None) -> EventInput:
        """A catalog event (domain/events.py) of this journey, written once per
        `<workflow id>:<scope>event:<step or type>` (a retry or a replay publishes nothing twice)."""
        return EventInput(
            idempotency_key=self.key(f"{self._scope}event:{step or event_type}"),
            type=event_type,
            partner_id=self.partner_id,
            occurred_at=workflow.now(),
            data=data.model_dump(mode="json"),
        )

    async def emit(
        self, event_type: str, data: BaseModel, *, step: str | None = None, email_follows: bool = False
    ) -> None:
        """Publish a catalog event to the webhook subscribers (`event`); delivery runs on its own
        (workflows/webhooks.py) and never holds up the journey. Journeys recorded before events
        replay without (patch `webhook-events`).

        `email_follows`: the caller's next email (`notify`) tells the same news, and the journey
        does not wait before it (other steps may come between, e.g. the state record): since
        generation 5 the event is held and written in that email's transaction. A wait of the kit
        (`wait_until`, `wait_for`, a step waiting for ops) publishes what is held first, on its own."""
        if not self.patched(EVENTS_PATCH):
            return
        inp = self.event(event_type, data, step=step)
        if email_follows and self.carries_events:
            self._held.append(inp)
            return
        await self._publish(inp)

    async def _publish(self, inp: EventInput) -> None:
        """One event as a step of its own: a local activity since `kit-lean-steps`, an activity before."""
        if not self.patched(EVENTS_PATCH):
            return
        summary = f"publish the {inp.type} event to webhook subscribers"
        if self.lean:  # a short idempotent write: a local activity
            await self.local_activity(WebhookActivity.PUBLISH, inp, PublishResult, summary=summary)
            return
        await self.activity(WebhookActivity.PUBLISH, inp, PublishResult, summary=summary)

    async def _publish_held(self) -> None:
        """Events held for an email that did not come before a wait: each published on its own, now."""
        held, self._held = self._held, []
        for inp in held:
            await self._publish(inp)

    def decided(self, outcome: str, by: str, since: datetime) -> None:
        """Count a decision by outcome and who took it, and its latency from `since` (metrics of the
        worker's Prometheus endpoint; not recorded while replaying, no command in the history)."""
        meter = workflow.metric_meter()
        attrs = {"journey": self.journey, "outcome": outcome, "by": by.split(":", 1)[0]}
        meter.create_counter("camlights_decisions", "decisions by journey, outcome and kind of actor").add(1, attrs)
        meter.create_histogram_timedelta(
            "camlights_decision_latency", "from submission to decision (workflow time)", "ms"
        ).record(workflow.now() - since, attrs)

    # ------------------------------------------------------------------ time

    async def wait(
        self, condition: Callable[[], bool], timeout: timedelta, *, summary: str, waiting_for: str | None = None
    ) -> bool:
        """Wait until `condition` holds or `timeout` passes; True when the condition holds.
        A timeout already past only evaluates the condition (no timer). `summary` says what the
        timer is for ("approval SLA: remind the CAM"); `waiting_for` who or what may end it sooner."""
        return await self.wait_until(condition, workflow.now() + timeout, summary=summary, waiting_for=waiting_for)

    async def wait_for(self, condition: Callable[[], bool], *, waiting_for: str) -> None:
        """Wait with no deadline (a human's decision after every reminder, a renewal after a lapse)."""
        await self._publish_held()
        if self.patched(NEXT_DEADLINE_PATCH):
            self._upsert([SA_NEXT_DEADLINE.value_unset()])
        workflow.set_current_details(
            f"**{self.state or 'running'}** since {self._since:%Y-%m-%d %H:%M} UTC; waiting for {waiting_for}, "
            "no deadline left."
        )
        await workflow.wait_condition(condition)

    async def wait_until(
        self, condition: Callable[[], bool], deadline: datetime, *, summary: str, waiting_for: str | None = None
    ) -> bool:
        await self._publish_held()
        timeout = deadline - workflow.now()
        if timeout <= timedelta(0):
            return condition()
        if self.generation >= 2 and condition():  # nothing to wait for: no deadline to show
            return True
        if self.patched(NEXT_DEADLINE_PATCH):
            self._upsert([SA_NEXT_DEADLINE.value_set(deadline)])
        workflow.set_current_details(
            f"**{self.state or 'running'}** since {self._since:%Y-%m-%d %H:%M} UTC; waiting for "
            f"{waiting_for or 'its next step'}. Next deadline {deadline:%Y-%m-%d %H:%M} UTC: {summary}."
        )
        try:
            await workflow.wait_condition(condition, timeout=timeout, timeout_summary=summary)
        except TimeoutError:
            return False
        return True

    # ------------------------------------------------------------------ limits (for validators)

    @property
    def limits(self) -> LimitsPolicy:
        """The policy's limits (their defaults before the policy is read)."""
        return self.policy.limits if self.policy is not None else LimitsPolicy()

    def check_horizon(self, field: str, value: date | datetime | None) -> None:
        """Refuse (422) a date or time outside the policy's horizon: every date a validator lets
        through is one the handler and the run can compute with."""
        if value is None:
            return
        why = outside_horizon(value, workflow.now(), self.limits.horizon_days)
        if why:
            raise ApplicationError(f"{field}: {why}", type=Refusal.INVALID)

    def check_count(self, used: int, cap: int, what: str) -> None:
        """Refuse (409) the change that would exceed a per-journey cap of the policy."""
        if used >= cap:
            raise ApplicationError(
                f"the policy allows {cap} {what} per journey; all are used", type=Refusal.LIMIT_REACHED
            )

    def history_full(self) -> bool:
        """The history has grown enough to continue as new (Temporal suggests it, or it reached
        the policy's `limits.history_events`)."""
        info = workflow.info()
        return info.is_continue_as_new_suggested() or info.get_current_history_length() >= self.limits.history_events

    # ------------------------------------------------------------------ coverage and visibility

    def has_cam(self) -> bool:
        """The partner's tier has a CAM by policy and one is assigned."""
        assert self.policy is not None
        return self.policy.tiers[self.coverage.tier].has_cam and self.coverage.cam_id is not None

    def upsert(self, state: str) -> None:
        """The search attributes every journey carries, upserted as its state or coverage moves."""
        if state != self.state:
            self._since = workflow.now()
        self.state = state
        self._upsert(
            [
                SA_PARTNER_ID.value_set(self.partner_id),
                SA_CAM_ID.value_set(self.coverage.cam_id or NO_CAM),
                SA_TIER.value_set(self.coverage.tier.value),
                SA_JOURNEY.value_set(self.journey),
                SA_JOURNEY_STATE.value_set(state),
            ]
        )

    def _upsert(self, updates: Sequence[SearchAttributeUpdate[Any]]) -> None:
        """Upsert the attributes whose value changes (all of them, and even none, before
        `kit-lean-steps`): the start already set them (api/journeys.py), a continued run carries them."""
        if self.lean:
            current = workflow.info().typed_search_attributes
            updates = [u for u in updates if current.get(u.key) != u.value]
            if not updates:
                return
        workflow.upsert_search_attributes(updates)

    def apply_coverage(self, coverage: Coverage, state: str) -> None:
        """A coverage change: carried from now on, and visible in the search attributes at once."""
        self.coverage = coverage
        self.upsert(state)

    # ------------------------------------------------------------------ other journeys

    async def tell(self, workflow_id: str, signal: str, arg: BaseModel, *, wait: bool = True) -> bool:
        """Signal another journey by workflow id (journeys share nothing else). A journey that
        is not running is not an error: returns False. With `wait=False` (since `kit-lean-steps`)
        the journey goes on at once: the signal goes out with its next commands, without a
        workflow task of its own, and a journey not running is only logged (returns True); for a
        fact the journey does not depend on, told by a journey that goes on after it."""
        if not wait and self.lean:
            task = asyncio.create_task(self._signal(workflow_id, signal, arg))
            self._told.add(task)
            task.add_done_callback(self._told.discard)
            return True
        return await self._signal(workflow_id, signal, arg)

    async def _signal(self, workflow_id: str, signal: str, arg: BaseModel) -> bool:
        try:
            await workflow.get_external_workflow_handle(workflow_id).signal(signal, arg)
        except FailureError:
            workflow.logger.info("%s is not running; %s not delivered", workflow_id, signal, extra=self.log_extra)
            return False
        return True


def _audience(recipients: list[str]) -> str:
    """Roles as a reader says them, without addresses: 'the partner and the CAM'."""
    names = [
        "the certified person" if r.startswith("person:") else ("ops" if r == "ops" else f"the {r}") for r in recipients
    ]
    return " and ".join(dict.fromkeys(names))


def _email_summary(inp: NotifyInput) -> str:
    """'email the <template> to <audience>', and the events it publishes."""
    summary = f"email the {inp.template} to {_audience(inp.recipients)}"
    if inp.events:
        summary += " and publish " + ", ".join(e.type for e in inp.events)
    return summary
