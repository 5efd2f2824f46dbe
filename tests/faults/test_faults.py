"""Faults, tested on the real services: PostgreSQL stopped and restarted mid-journey, the Temporal
dev server killed and restarted on its persistent store, the SMTP server down for a while (and
refusing or deferring recipients), the API killed between the row commit and the workflow start,
and the worker killed mid-activity.

Each test starts what it breaks (its own PostgreSQL, Temporal dev server, SMTP sink, API or
worker processes, all on loopback), runs real onboarding journeys through the real API with a
policy whose days last a second, injects the fault, and checks the same thing at the end
(`verify`): every journey completed; every step in each workflow's history is exactly one audit
row (nothing lost, nothing twice); one partner row, one journey record and one milestone plan per
partner; every outbox row sent (or `failed` with its audit row, for a recipient refused for good);
every email of a sent row arrived, and a Message-ID arrived twice only in the documented
at-least-once window (the SMTP server accepted the message, then its sender died before the
commit that marks it sent)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from temporalio.api.enums.v1 import PendingWorkflowTaskState
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from api.app import create_app
from core.settings import Settings
from core.temporal import connect
from domain.enums import Role
from domain.journeys import NOTIFY, NOTIFY_PUBLISHING, SEND_NOTIFICATIONS, SendResult
from domain.webhooks import PublishResult, WebhookActivity, event_id
from journeys.onboarding.domain import OnboardingActivity
from journeys.onboarding.models import PartnerMilestone
from store.db import make_engine, make_sessionmaker
from store.migrate import upgrade
from store.models import AuditEvent, JourneyRecord, OutboxMessage, Partner
from store.models.integrations import WebhookEvent
from tests.helpers.api import new_key
from tests.helpers.policies import fast_policy
from tests.helpers.processes import process_env
from tests.helpers.waiting import eventually
from worker.main import build_worker
from worker.services import Postgres, SmtpSink, TemporalDevServer, free_port

ROOT = Path(__file__).resolve().parents[2]
MILESTONES = ("portal_access", "first_training", "first_certification", "business_plan", "first_deal")
NOT_A_STEP = {SEND_NOTIFICATIONS}  # sends carry the key of the notification they send
# Queues (a step: its audit row) and sends one notification; the second also writes its events;
# the third records the onboarding's outcome first, in the same transaction (kit generation 12).
STEP_AND_SEND = {NOTIFY, NOTIFY_PUBLISHING, OnboardingActivity.FINISH_AND_NOTIFY}
SENDS = NOT_A_STEP | STEP_AND_SEND  # the activity a failing send retries
PUBLISHES = {WebhookActivity.PUBLISH}  # events for webhook subscribers: one webhook_events row per key
# Writes run as local activities (kit generation 3): their marker has no input, so the key is the
# one the journey gives them; onboarding's closing record is keyed `<workflow id>:<final state>`.
# Notifications too (generation 4): their result names the outbox key (SendResult.idempotency_key);
# one still failing after the local attempts goes on as an activity, read from its input as before.
LOCAL_STEPS = {OnboardingActivity.FINISH, OnboardingActivity.FINISH_AND_NOTIFY}
# Onboarding's plan and milestone records (kit generation 6): the plan keyed `<workflow id>:plan`,
# a milestone `<workflow id>:milestone:<key>`, the key named by the marker's summary.
PLAN, MILESTONE = OnboardingActivity.OPEN_PLAN, OnboardingActivity.RECORD_MILESTONE
MILESTONE_SUMMARY = re.compile(r"^record milestone (\S+) \(by ")


# --------------------------------------------------------------------------- journeys through the API


@contextlib.asynccontextmanager
async def in_process_api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The real app (lifespan included: its own engine and Temporal client) behind httpx."""
    app = create_app(settings, reconcile_every=None)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://camlights.test", timeout=30) as client:
            yield client


async def put_policy(api: httpx.AsyncClient, ops: dict, **days: float) -> None:
    r = await api.put("/policy", json=fast_policy(**days).model_dump(mode="json"), headers=ops)
    assert r.status_code == 201, r.text


async def new_cam(api: httpx.AsyncClient, ops: dict) -> str:
    r = await api.post("/cams", json={"name": "Casey", "email": f"cam-{uuid.uuid4().hex[:6]}@vendor.test"}, headers=ops)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def partner_body(domain: str, tier: str, cam_id: str | None) -> dict:
    return {
        "name": "Acme Networks",
        "domain": domain,
        "country": "de",
        "type": "reseller",
        "tier": tier,
        "cam_id": cam_id if tier in ("platinum", "gold") else None,
        "contact_email": f"owner@{domain}",
    }


async def enrol_all(api: httpx.AsyncClient, ops: dict, cam_id: str, tiers: list[str], prefix: str) -> list[str]:
    pids = []
    for i, tier in enumerate(tiers):
        r = await api.post("/partners", json=partner_body(f"{prefix}-{i}.test", tier, cam_id), headers=ops)
        assert r.status_code == 201, r.text
        pids.append(r.json()["id"])
    return pids


async def report_all(api: httpx.AsyncClient, ops: dict, pids: list[str], keys=MILESTONES) -> None:
    """Report milestones, all at once (each answer waits for the journey to record it: 200,
    or 202 when it is taken but not recorded within the API's deadline)."""

    async def one(pid: str, key: str) -> None:
        r = await api.post(f"/partners/{pid}/onboarding/milestones/{key}", headers=ops)
        assert r.status_code in (200, 202), r.text

    await asyncio.gather(*(one(pid, key) for pid in pids for key in keys))


async def outcomes(client: Client, pids: list[str], timeout: float) -> dict[str, str]:
    """Wait for every journey to complete; its final state by partner id."""

    async def one(pid: str) -> tuple[str, str]:
        result = await client.get_workflow_handle(f"onboarding-{pid}").result()
        return pid, result["state"]

    return dict(await asyncio.wait_for(asyncio.gather(*(one(pid) for pid in pids)), timeout))


async def retrying(client: Client, pids: list[str]) -> dict[str, str]:
    """Journeys with an activity being retried (attempt >= 2) right now: what failed last."""
    out = {}
    for pid in pids:
        desc = await client.get_workflow_handle(f"onboarding-{pid}").describe()
        for pa in desc.raw_description.pending_activities:
            if pa.attempt >= 2:
                out[pid] = f"{pa.activity_type.name} attempt {pa.attempt}: {pa.last_failure.message[:120]}"
    return out


async def partner_id(sessionmaker, domain: str) -> str | None:
    async with sessionmaker() as session:
        found = await session.scalar(select(Partner.id).where(Partner.domain == domain))
    return None if found is None else str(found)


async def timed(call) -> tuple[httpx.Response, float]:
    t = time.monotonic()
    r = await call
    return r, time.monotonic() - t


async def health(api: httpx.AsyncClient) -> httpx.Response:
    return await api.get("/health")


async def healthy(api: httpx.AsyncClient) -> bool:
    try:
        return (await health(api)).status_code == 200
    except httpx.TransportError:
        return False


# --------------------------------------------------------------------------- the end-state check


async def history_steps(client: Client, wid: str) -> tuple[set[str], set[str], set[str]]:
    """The idempotency keys of the steps the workflow's history scheduled (activities that
    write, and the local writes of `LOCAL_STEPS`), of the sends (outbox keys), and the ids of the
    events it published (by an activity, or by a local activity: its marker holds the result, the
    event's id)."""
    state = (await client.get_workflow_handle(wid).result())["state"]
    steps: set[str] = set()
    sends: set[str] = set()
    published: set[str] = set()
    async for event in client.get_workflow_handle(wid).fetch_history_events():
        if event.HasField("marker_recorded_event_attributes"):
            marker = event.marker_recorded_event_attributes
            if marker.marker_name != "core_local_activity":
                continue
            [data] = await client.data_converter.decode(marker.details["data"].payloads)
            if data["activity_type"] in PUBLISHES:
                [result] = await client.data_converter.decode(marker.details["result"].payloads, [PublishResult])
                published.add(result.event_id)
            if data["activity_type"] in LOCAL_STEPS:
                steps.add(f"{wid}:{state}")
            if data["activity_type"] == PLAN:
                steps.add(f"{wid}:plan")
            if data["activity_type"] == MILESTONE:
                [summary] = await client.data_converter.decode([event.user_metadata.summary])
                match = MILESTONE_SUMMARY.match(summary)
                assert match is not None, summary
                steps.add(f"{wid}:milestone:{match.group(1)}")
            if data["activity_type"] in SENDS and "result" in marker.details:  # kit generation 4
                [sent] = await client.data_converter.decode(marker.details["result"].payloads, [SendResult])
                sends.add(sent.idempotency_key)
                published.update(sent.events)  # the events the email carried (generation 5)
                if data["activity_type"] not in NOT_A_STEP:
                    steps.add(sent.idempotency_key)
            continue  # policy.load: reads only
        if not event.HasField("activity_task_scheduled_event_attributes"):
            continue
        attrs = event.activity_task_scheduled_event_attributes
        [arg] = await client.data_converter.decode(attrs.input.payloads) if attrs.input.payloads else [None]
        if isinstance(arg, dict) and "record" in arg and "notice" in arg:  # a state and its email, as an activity
            steps.add(arg["record"]["idempotency_key"])
            arg = arg["notice"]
        key = arg.get("idempotency_key") if isinstance(arg, dict) else None
        if key is None:
            continue  # policy.load: reads only
        name = attrs.activity_type.name
        if name in PUBLISHES:
            published.add(event_id(key))
            continue
        published.update(event_id(e["idempotency_key"]) for e in arg.get("events", []))  # carried by an email
        if name in SENDS:
            sends.add(key)
        if name not in NOT_A_STEP:
            steps.add(key)
    return steps, sends, published


@dataclass
class Checked:
    journeys: int
    emails: int
    rows: int
    failed: int
    duplicates: dict[str, int]


async def verify(
    sessionmaker,
    client: Client,
    sink: SmtpSink,
    pids: list[str],
    dup_ok: Callable[[str, float], bool] = lambda m, t: False,
) -> Checked:
    """See the module docstring. `dup_ok(message_id, first_arrival)` says whether a message that
    arrived twice falls in the documented at-least-once window of this test's fault."""
    ids = [uuid.UUID(p) for p in pids]
    async with sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(Partner).where(Partner.id.in_(ids))) == len(pids)
        twice = (
            (await s.execute(select(Partner.domain).group_by(Partner.domain).having(func.count() > 1))).scalars().all()
        )
        assert not twice, f"partner rows written twice: {twice}"
        rows = (await s.scalars(select(OutboxMessage).where(OutboxMessage.partner_id.in_(ids)))).all()
        for pid in ids:
            wid = f"onboarding-{pid}"
            desc = await client.get_workflow_handle(wid).describe()
            assert desc.status == WorkflowExecutionStatus.COMPLETED, (wid, desc.status)
            steps, sends, published = await history_steps(client, wid)
            events = select(WebhookEvent.id).where(WebhookEvent.partner_id == pid)
            assert set((await s.scalars(events)).all()) == published, wid  # each event once, none unasked
            audit = {
                k: a
                for k, a in (
                    await s.execute(
                        select(AuditEvent.idempotency_key, AuditEvent.action).where(
                            AuditEvent.partner_id == pid, AuditEvent.idempotency_key.is_not(None)
                        )
                    )
                ).all()
            }
            failed_keys = {k for k in audit if ":failed:" in k}
            # Every step of the history is one audit row, and there is no row for a step it never took.
            assert set(audit) - failed_keys == steps | {f"{wid}:created"}, (wid, set(audit) ^ steps)
            mine = [r for r in rows if r.partner_id == pid]
            assert {r.idempotency_key for r in mine} == sends, (wid, {r.idempotency_key for r in mine} ^ sends)
            for r in mine:
                assert r.status in ("sent", "failed"), (r.recipient, r.template, r.status, r.last_error)
                if r.status == "failed":
                    assert audit.get(f"{r.idempotency_key}:failed:{r.id}") == "notification.failed", r.recipient
            assert len(failed_keys) == sum(r.status == "failed" for r in mine)
            record = await s.get(JourneyRecord, wid)
            assert record is not None and record.started_at is not None
            assert record.state == (await client.get_workflow_handle(wid).result())["state"]
            plan = select(func.count()).select_from(PartnerMilestone).where(PartnerMilestone.partner_id == pid)
            assert await s.scalar(plan) == len(MILESTONES)
    sent = {r.message_id for r in rows if r.status == "sent"}
    never = {r.message_id for r in rows if r.status == "failed"}
    arrivals: dict[str, float] = {}
    got: Counter[str] = Counter()
    for at, msg in sink.received:
        got[msg["Message-ID"]] += 1
        arrivals.setdefault(msg["Message-ID"], at)
    assert set(got) == sent, f"lost: {sent - set(got)}; unexpected: {set(got) - sent}"
    assert not never & set(got)
    dups = {mid: n for mid, n in got.items() if n > 1}
    for mid, n in dups.items():
        assert dup_ok(mid, arrivals[mid]), f"{mid} arrived {n} times outside the at-least-once window"
    return Checked(len(pids), sum(got.values()), len(rows), len(never), dups)


# --------------------------------------------------------------------------- 1. PostgreSQL


async def test_postgres_stopped_and_restarted_mid_journey(dev_env, base_settings, tmp_path, tally):
    """Its own PostgreSQL is shut down the way a crash looks to clients (immediate shutdown:
    every connection cut) while six journeys are mid-flight, and started again on the same data
    directory and port ~5 s later. Activities fail and are retried by Temporal; the API answers
    /health 503 while it is down and 200 after (pool_pre_ping drops the dead connections)."""
    pg = Postgres(tmp_path / "pg", port=free_port())
    await asyncio.to_thread(pg.start)
    sink = SmtpSink().start()
    engine = None
    try:
        await asyncio.to_thread(upgrade, pg.url)
        engine = make_engine(pg.url)
        sm = make_sessionmaker(engine)
        settings = base_settings.model_copy(
            update={
                "database_url": pg.url,
                "temporal_address": dev_env.client.service_client.config.target_host,
                "task_queue": f"faults-pg-{uuid.uuid4()}",
                "smtp_port": sink.port,
            }
        )
        ops = await new_key(sm, Role.ops)
        async with in_process_api(settings) as api, build_worker(dev_env.client, settings, sm, settings.task_queue):
            await put_policy(api, ops, plan_days=16, escalation_days=1)
            cam = await new_cam(api, ops)
            pids = await enrol_all(
                api, ops, cam, ["platinum", "gold", "silver", "registered", "platinum", "gold"], "pg"
            )
            activate = pids[:3]
            await eventually(lambda: len(sink.messages) >= len(pids), what="welcome emails")
            await report_all(api, ops, activate[:1], MILESTONES[:2])

            t_stop = time.time()
            await asyncio.to_thread(pg.stop, True)
            t_down = time.time()
            r = await health(api)
            assert r.status_code == 503 and r.json()["database"].startswith("error"), r.text
            assert r.json()["temporal"] == "ok"
            during = await api.get(f"/partners/{pids[0]}", headers=ops)  # needs the DB for the key
            assert during.status_code == 503 and "database" in during.json()["detail"], during.text
            late = partner_body("pg-late.test", "gold", cam)
            key = {**ops, "Idempotency-Key": "enrol-while-postgres-is-down"}
            refused = await api.post("/partners", json=late, headers=key)
            assert refused.status_code == 503 and "nothing was written" in refused.json()["detail"], refused.text
            # An upload is authenticated before its body is read (api/limits.py): the same 503, not a 500.
            upload = await api.post(
                f"/mdf/requests/{uuid.uuid4()}/claim",
                headers=ops,
                files={"proof": ("p.pdf", b"%PDF-1.4", "application/pdf")},
            )
            assert upload.status_code == 503 and "nothing was written" in upload.json()["detail"], upload.text
            failing = await eventually(
                lambda: _at_least(retrying(dev_env.client, pids), 3), timeout=15, what="activities retried"
            )
            # Ops see why, in one line (worker/interceptors.py), not "Failure exceeds size limit".
            assert all("database unavailable" in why for why in failing.values()), failing
            await asyncio.sleep(max(0.0, 5 - (time.time() - t_stop)))
            await asyncio.to_thread(pg.start)
            t_up = time.time()
            await eventually(lambda: healthy(api), timeout=15, what="/health 200 after the restart")
            # Nothing of the refused enrolment was written: the same request now simply succeeds.
            late_r = await api.post("/partners", json=late, headers=key)
            assert late_r.status_code == 201 and "Idempotent-Replayed" not in late_r.headers, late_r.text
            pids.append(late_r.json()["id"])
            activate.append(pids[-1])

            await report_all(api, ops, activate)
            states = await outcomes(dev_env.client, pids, timeout=60)
            assert states == {p: ("activated" if p in activate else "at_risk") for p in pids}
            checked = await verify(sm, dev_env.client, sink, pids, lambda mid, t: t_stop - 1 <= t <= t_down + 1)
        tally(
            1,
            checked.journeys,
            f"PostgreSQL down {t_up - t_stop:.1f}s (immediate shutdown); {len(failing)} journeys retrying an "
            f"activity while down (e.g. {next(iter(failing.values()))}); API during the outage: /health 503, "
            f"GET {during.status_code}, enrolment {refused.status_code} (nothing written); {checked.rows} outbox "
            f"rows, {checked.emails} emails, {sum(checked.duplicates.values()) - len(checked.duplicates)} "
            "at-least-once duplicate(s)",
        )
    finally:
        sink.stop()
        if engine is not None:
            await engine.dispose()
        await asyncio.to_thread(pg.stop)


async def _at_least(found, n: int):
    value = await found
    return value if len(value) >= n else None


# --------------------------------------------------------------------------- 2. Temporal


async def test_temporal_dev_server_killed_and_restarted_on_its_store(sessionmaker, base_settings, tmp_path, tally):
    """Its own Temporal dev server with a SQLite store in tmp is killed (SIGKILL) mid-journey
    and started again ~5 s later on the same port and file. While it is down /health says so
    (503, database ok); an enrolment sent then is not answered before Temporal is back (its start
    is retried), then 201 (or 503 with Retry-After); retried with its Idempotency-Key it gets
    the stored answer, and its journey runs. The worker and the API reconnect by themselves and
    the journeys resume where they were."""
    server = TemporalDevServer(
        db_file=tmp_path / "temporal.db", port=free_port(), headless=True, log_file=tmp_path / "temporal.log"
    )
    await asyncio.to_thread(server.start)
    sink = SmtpSink().start()
    try:
        settings = base_settings.model_copy(
            update={
                "temporal_address": server.address,
                "task_queue": f"faults-t-{uuid.uuid4()}",
                "smtp_port": sink.port,
            }
        )
        client = await connect(settings)
        ops = await new_key(sessionmaker, Role.ops)
        async with in_process_api(settings) as api, build_worker(client, settings, sessionmaker, settings.task_queue):
            await put_policy(api, ops, plan_days=20, escalation_days=1)
            cam = await new_cam(api, ops)
            pids = await enrol_all(api, ops, cam, ["platinum", "gold", "silver", "registered"], "temporal")
            await eventually(lambda: len(sink.messages) >= len(pids), what="welcome emails")
            await report_all(api, ops, pids[:1], MILESTONES[:2])

            t_kill = time.time()
            await asyncio.to_thread(server.kill)
            r = await health(api)
            assert r.status_code == 503 and r.json()["database"] == "ok" and r.json()["temporal"] != "ok", r.text
            # Sent while Temporal is down, answered whenever the API gives up or Temporal is back.
            late = partner_body("temporal-late.test", "gold", cam)
            key = {**ops, "Idempotency-Key": "enrol-while-temporal-is-down"}
            enrolment = asyncio.create_task(timed(api.post("/partners", json=late, headers=key)))
            query = asyncio.create_task(timed(api.get(f"/partners/{pids[0]}/onboarding", headers=ops)))
            # Its rows are committed before the start; the start is then retried, not given up at once.
            written = await eventually(lambda: partner_id(sessionmaker, late["domain"]), what="the enrolment written")
            answered, _ = await asyncio.wait({enrolment}, timeout=3)
            assert not answered, "answered while Temporal was down"  # (its start is being retried)

            await asyncio.to_thread(server.start)
            t_up = time.time()
            await eventually(lambda: healthy(api), timeout=30, what="/health 200 after the restart")
            down, down_s = await enrolment
            # Temporal back within the start's budget: 201; else 503 naming the partner written, to retry.
            if down.status_code == 201:
                assert down.json()["id"] == written, down.text
            else:
                assert down.status_code == 503 and down.headers.get("Retry-After") == "5", down.text
                assert written in down.json()["detail"] and "Retry with the same Idempotency-Key" in down.text
            q, q_s = await query
            assert q.status_code in (200, 503, 504) and (q.status_code == 200 or "detail" in q.json()), q.text
            again = await api.post("/partners", json=late, headers=key)
            assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true", again.text
            assert again.json()["id"] == written  # the one partner written, whichever answer came first
            pids.append(again.json()["id"])
            activate = [pids[0], pids[2], pids[-1]]
            await report_all(api, ops, activate)
            states = await outcomes(client, pids, timeout=60)
            assert states == {p: ("activated" if p in activate else "at_risk") for p in pids}
            checked = await verify(sessionmaker, client, sink, pids)
            assert not checked.duplicates
        tally(
            1,
            checked.journeys,
            f"Temporal SIGKILLed, down {t_up - t_kill:.0f}s; an enrolment sent during the outage answered "
            f"{down.status_code} after {down_s:.1f}s, a progress query {q.status_code} after {q_s:.1f}s; "
            f"{checked.emails} emails, none twice",
        )
    finally:
        sink.stop()
        await asyncio.to_thread(server.stop)


# --------------------------------------------------------------------------- 3. SMTP


async def test_smtp_server_down_for_a_while(api, ops, settings, dev_env, sessionmaker, tally):
    """The SMTP port is closed when three journeys start: every welcome send fails and is
    retried by Temporal; the rows stay pending with the error. A sink then listens on that port:
    every email arrives exactly once and every journey completes."""
    port = free_port()
    sink = SmtpSink(port=port)  # not started: nothing listens on the port
    mailer = settings.model_copy(update={"smtp_port": port})
    try:
        async with build_worker(dev_env.client, mailer, sessionmaker, settings.task_queue):
            await put_policy(api, ops, plan_days=10, escalation_days=1)
            cam = await new_cam(api, ops)
            t_down = time.time()
            pids = await enrol_all(api, ops, cam, ["gold", "silver", "platinum"], "smtp")
            failing = await eventually(
                lambda: _at_least(retrying(dev_env.client, pids), len(pids)), timeout=15, what="sends retried"
            )
            assert all(any(name in v for name in SENDS) for v in failing.values()), failing
            async with sessionmaker() as s:
                rows = (await s.scalars(select(OutboxMessage))).all()
            assert rows and all(r.status == "pending" and r.attempts >= 1 and r.last_error for r in rows)
            await asyncio.sleep(max(0.0, 4 - (time.time() - t_down)))
            sink.start()
            t_up = time.time()
            await eventually(lambda: len(sink.messages) >= len(pids), timeout=30, what="welcome emails")
            await report_all(api, ops, pids[:1])
            states = await outcomes(dev_env.client, pids, timeout=60)
            assert states == {p: ("activated" if p == pids[0] else "at_risk") for p in pids}
            checked = await verify(sessionmaker, dev_env.client, sink, pids)
            assert not checked.duplicates and not checked.failed
        tally(
            1,
            checked.journeys,
            f"SMTP down {t_up - t_down:.1f}s; {len(failing)} sends retried (e.g. {next(iter(failing.values()))}); "
            f"{checked.emails} emails, each once",
        )
    finally:
        sink.stop()


async def test_smtp_refused_recipient_fails_alone_and_deferred_one_arrives_later(
    api, ops, settings, dev_env, sessionmaker, tally
):
    """One partner's mailbox answers 550 (for good) from the start: each of its rows is `failed`
    with a `notification.failed` audit row, its CAM still gets the copies of the same
    notifications, and its journey continues to the end. Another partner's mailbox answers 451
    (try later): its welcome is retried, and delivered once after `accept()`."""
    sink = SmtpSink().start()
    refused, deferred = "owner@refused.test", "owner@deferred.test"
    sink.refuse(refused)
    sink.defer(deferred)
    mailer = settings.model_copy(update={"smtp_port": sink.port})
    try:
        async with build_worker(dev_env.client, mailer, sessionmaker, settings.task_queue):
            await put_policy(api, ops, plan_days=6, escalation_days=1)
            r = await api.post("/cams", json={"name": "Casey", "email": "casey@vendor.test"}, headers=ops)
            cam = r.json()["id"]
            pids = []
            for domain, tier in (("refused.test", "platinum"), ("deferred.test", "gold"), ("fine.test", "silver")):
                r = await api.post("/partners", json=partner_body(domain, tier, cam), headers=ops)
                assert r.status_code == 201, r.text
                pids.append(r.json()["id"])

            async def deferred_row():
                async with sessionmaker() as s:
                    row = await s.scalar(select(OutboxMessage).where(OutboxMessage.recipient == deferred))
                return row if row is not None and row.attempts >= 2 else None

            row = await eventually(deferred_row, timeout=15, what="the deferred welcome retried")
            assert row.status == "pending" and "451" in (row.last_error or ""), row.last_error
            # The refused partner's CAM gets its copy of the nudge, while the partner's copy failed.
            await eventually(
                lambda: any(
                    m["To"] == "casey@vendor.test" and m["X-CAMLights-Template"] == "nudge" for m in sink.messages
                ),
                timeout=15,
                what="the CAM's copy of the refused partner's nudge",
            )
            sink.accept(deferred)
            await eventually(lambda: any(m["To"] == deferred for m in sink.messages), timeout=30, what="deferred")
            states = await outcomes(dev_env.client, pids, timeout=60)
            assert set(states.values()) == {"at_risk"}
            checked = await verify(sessionmaker, dev_env.client, sink, pids)
            assert not checked.duplicates
        async with sessionmaker() as s:
            rows = (await s.scalars(select(OutboxMessage))).all()
            failed_audit = (await s.scalars(select(AuditEvent).where(AuditEvent.action == "notification.failed"))).all()
        to_refused = [r for r in rows if r.recipient == refused]
        assert {r.template for r in to_refused} >= {"welcome", "nudge", "at_risk"}
        assert all(r.status == "failed" and "550" in (r.last_error or "") for r in to_refused)
        assert len(failed_audit) == len(to_refused) and {a.detail["to"] for a in failed_audit} == {refused}
        # The other recipients of the same notifications were delivered.
        shared = {r.idempotency_key for r in to_refused}
        others = [r for r in rows if r.idempotency_key in shared and r.recipient != refused]
        assert others and all(r.status == "sent" for r in others)
        assert not any(m["To"] == refused for m in sink.messages)
        assert [m["To"] for m in sink.messages].count(deferred) == sum(r.recipient == deferred for r in rows)
        tally(
            2,
            checked.journeys,
            f"{len(to_refused)} rows to the refused mailbox failed (each with its audit row), {len(others)} "
            f"copies to others sent; deferred welcome retried {row.attempts}+ times, then delivered once",
        )
    finally:
        sink.stop()


# --------------------------------------------------------------------------- 4. API killed


class Proxy:
    """A TCP forwarder in front of Temporal. `cut = True` swallows every byte in both
    directions from then on (connections stay open): a call in flight gets no answer."""

    def __init__(self, upstream: str):
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.cut = False
        self.dropped = 0
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        return f"127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        self.writers += [writer, up_writer]
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer), return_exceptions=True)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if self.cut:
                    self.dropped += len(data)
                    continue
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def close(self) -> None:
        for w in self.writers:
            w.close()
        if self.server is not None:
            self.server.close()


def api_process(settings: Settings, temporal: str, port: int, log: Path) -> subprocess.Popen:
    env = process_env(
        settings, TEMPORAL_ADDRESS=temporal, API_HOST="127.0.0.1", API_PORT=str(port), LINK_SECRET=settings.link_secret
    )
    return subprocess.Popen(
        [sys.executable, "-m", "worker.cli", "api"],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


async def wait_up(client: httpx.AsyncClient, proc: subprocess.Popen, timeout: float = 30) -> None:
    """Wait for the API to answer /health 200, without blocking the loop (the proxy runs on it)."""

    async def up():
        assert proc.poll() is None, f"the API exited with code {proc.returncode}"
        return await healthy(client)

    await eventually(up, timeout=timeout, interval=0.2, what="the API process")


def sigkill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)


def stop(proc: subprocess.Popen | None, wait: float = 20) -> None:
    """Stop a process this test started: SIGINT (a clean shutdown), SIGKILL after `wait` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        sigkill(proc)


async def test_api_killed_between_the_row_commit_and_the_workflow_start(
    settings, dev_env, sessionmaker, worker, mailbox, tmp_path, tally
):
    """A real API process reaches Temporal through a proxy the test controls. The proxy is cut,
    an enrolment is sent: the partner row and its journey record commit, the start gets no
    answer, and the API is SIGKILLed in that window (no workflow exists). A new API process
    starts the recorded journey (its reconciler's first round, at startup); the client's retry
    with the same Idempotency-Key gets the stored answer; a second enrolment of the same domain
    is a 409. One partner row, one workflow, and the journey runs to `activated`."""
    ops = await new_key(sessionmaker, Role.ops)
    proxy = Proxy(dev_env.client.service_client.config.target_host)
    address = await proxy.start()
    first = api_process(settings, address, port1 := free_port(), tmp_path / "api1.log")
    second: subprocess.Popen | None = None
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port1}", timeout=30) as c1:
            await wait_up(c1, first)
            r = await c1.post("/cams", json={"name": "Casey", "email": "casey@vendor.test"}, headers=ops)
            cam_id = r.json()["id"]
            body = partner_body("killed.test", "gold", cam_id)
            headers = {**ops, "Idempotency-Key": "enrol-killed-api"}
            proxy.cut = True
            request = asyncio.create_task(c1.post("/partners", json=body, headers=headers))

            async def committed():
                async with sessionmaker() as s:
                    return await s.scalar(select(Partner).where(Partner.domain == "killed.test"))

            partner = await eventually(committed, timeout=10, interval=0.02, what="the committed partner row")
            await eventually(lambda: proxy.dropped > 0, timeout=5, interval=0.02, what="the start swallowed")
            await asyncio.to_thread(sigkill, first)
            t_kill = time.time()
            with pytest.raises(httpx.TransportError):
                await request  # the caller never got an answer
        pid = str(partner.id)
        wid = f"onboarding-{pid}"
        with pytest.raises(RPCError) as missing:
            await dev_env.client.get_workflow_handle(wid).describe()
        assert missing.value.status == RPCStatusCode.NOT_FOUND  # the kill landed between commit and start
        async with sessionmaker() as s:
            record = await s.get(JourneyRecord, wid)
            assert record is not None and record.started_at is None and record.start_input is not None
            age = await s.scalar(select(func.now() - JourneyRecord.updated_at).where(JourneyRecord.workflow_id == wid))
        # The reconciler starts records older than 5 s: let this one age, so that its first round
        # (at the new API's startup) is the one that starts it.
        await asyncio.sleep(max(0.0, 5.5 - age.total_seconds()))
        port2 = free_port()
        second = api_process(settings, dev_env.client.service_client.config.target_host, port2, tmp_path / "api2.log")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port2}", timeout=30) as c2:
            await wait_up(c2, second)

            async def running():
                try:
                    return (await dev_env.client.get_workflow_handle(wid).describe()).status.name == "RUNNING"
                except RPCError:
                    return False

            await eventually(running, timeout=15, what="the reconciler starting the recorded journey")
            t_started = time.time()
            again = await c2.post("/partners", json=body, headers=headers)
            assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true", again.text
            assert again.json()["id"] == pid
            dup = await c2.post("/partners", json=body, headers=ops)
            assert dup.status_code == 409, dup.text
            await report_all(c2, ops, [pid])
        states = await outcomes(dev_env.client, [pid], timeout=30)
        assert states == {pid: "activated"}
        async with sessionmaker() as s:
            assert await s.scalar(select(func.count()).select_from(Partner)) == 1
            assert await s.scalar(select(func.count()).select_from(JourneyRecord)) == 1
        runs = await eventually(
            lambda: _count_runs(dev_env.client, pid), timeout=10, what="the journey in the visibility store"
        )
        assert runs == 1
        checked = await verify(sessionmaker, dev_env.client, mailbox, [pid])
        assert not checked.duplicates
        tally(
            2,
            checked.journeys,
            f"proxy cut ({proxy.dropped} bytes of the start swallowed), API SIGKILLed after the commit; "
            f"the new API's reconciler started it {t_started - t_kill:.1f}s after the kill; 1 row, 1 workflow",
        )
    finally:
        sigkill(first)
        stop(second, 15)
        await proxy.close()


async def _count_runs(client: Client, pid: str) -> int | None:
    n = (await client.count_workflows(f"PartnerId = '{pid}'")).count
    return n or None


# --------------------------------------------------------------------------- 5. worker killed


def worker_process(settings: Settings, smtp_port: int, log: Path) -> subprocess.Popen:
    env = process_env(settings, SMTP_PORT=str(smtp_port))
    return subprocess.Popen(
        [sys.executable, "-m", "worker.cli", "worker"],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


async def test_worker_killed_mid_activity(api, ops, settings, dev_env, sessionmaker, tmp_path, tally):
    """A real worker process is SIGKILLed while the welcome is sent (`outbox.notify`, a local
    activity inside its workflow task): its row, queued in the same transaction, is not committed;
    the SMTP server has the whole message and has not answered yet (it holds DATA). The server
    keeps the message (accepted, never confirmed to the dead worker): this is the documented
    at-least-once window. A new worker takes the workflow task once it times out, replays, runs the
    step again and sends it again with the same Message-ID; nothing else is duplicated, no row is
    written twice, and the journey runs to `activated`."""
    sink = SmtpSink().start()
    sink.hold()
    first = worker_process(settings, sink.port, tmp_path / "worker1.log")
    second: subprocess.Popen | None = None
    try:
        await put_policy(api, ops, plan_days=60, escalation_days=2)
        cam = await new_cam(api, ops)
        [pid] = await enrol_all(api, ops, cam, ["gold"], "worker")
        wid = f"onboarding-{pid}"
        await eventually(lambda: sink.held >= 1, timeout=30, what="the welcome held by the SMTP server")
        desc = await dev_env.client.get_workflow_handle(wid).describe()
        # The send is a local activity (kit generation 4): inside the worker's workflow task, which
        # is started and not completed; no activity of the history is pending.
        assert not [pa for pa in desc.raw_description.pending_activities if pa.activity_type.name in SENDS]
        pending = desc.raw_description.pending_workflow_task
        assert pending.state == PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_STARTED  # mid-step
        await asyncio.to_thread(sigkill, first)
        t_kill = time.time()
        sink.release()
        [held] = await eventually(lambda: sink.messages, what="the held message kept by the server")
        assert held["X-CAMLights-Template"] == "welcome"
        async with sessionmaker() as s:
            # The first email of a notification is sent in the transaction that queues it: the dead
            # worker committed neither its row nor its audit claim (nothing half-written to resume).
            row = await s.scalar(select(OutboxMessage).where(OutboxMessage.message_id == held["Message-ID"]))
            assert row is None, row.status

        second = worker_process(settings, sink.port, tmp_path / "worker2.log")
        await eventually(lambda: len(sink.messages) >= 2, timeout=45, what="the welcome retried by the new worker")
        t_resent = time.time()
        await report_all(api, ops, [pid])
        states = await outcomes(dev_env.client, [pid], timeout=45)
        assert states == {pid: "activated"}
        checked = await verify(sessionmaker, dev_env.client, sink, [pid], lambda mid, t: mid == held["Message-ID"])
        assert checked.duplicates == {held["Message-ID"]: 2}  # that one, twice: nothing else
        tally(
            1,
            checked.journeys,
            f"worker SIGKILLed inside {NOTIFY}, a local activity (workflow task attempt {pending.attempt}); "
            f"the new worker re-sent it {t_resent - t_kill:.0f}s later with the same Message-ID "
            "(the one at-least-once duplicate); "
            f"{checked.emails} emails for {checked.rows} rows",
        )
    finally:
        sink.release()
        sigkill(first)
        stop(second)
        sink.stop()
