"""The program as it runs at scale, on one machine: two `camlights api` processes and two
`camlights worker` processes (real processes, real PostgreSQL, Temporal and SMTP). Requests are
spread over both APIs and one worker is SIGKILLed in the middle of the journeys: every journey
completes, no row or email is duplicated, failure limits are one budget across both APIs, and a
policy change made through one API is what the other answers and what new journeys on either
worker use. Nothing a replica answers depends on which replica it is."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
from sqlalchemy import func, select

from domain.enums import Role
from journeys.onboarding.models import PartnerMilestone
from store.models import AuditEvent, OutboxMessage
from tests.helpers.api import new_key, nothing_twice, templates
from tests.helpers.policies import fast_policy
from tests.helpers.processes import process_env
from tests.helpers.waiting import eventually
from worker.services import free_port

ROOT = Path(__file__).resolve().parents[2]
MILESTONES = ("portal_access", "first_training", "first_certification", "business_plan", "first_deal")
JOURNEYS = 6
LIMIT = 5  # failed authentications a client may make a minute, across every API process


@contextlib.contextmanager
def processes(env: dict[str, str], logs: Path) -> Iterator[dict[str, list]]:
    """Two API processes (each on its own port) and two workers; every one stopped at the end."""
    started: dict[str, list] = {"api": [], "worker": []}

    def start(kind: str, *args: str) -> subprocess.Popen:
        log = (logs / f"{kind}-{len(started[kind])}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "worker.cli", kind, *args], cwd=ROOT, env=env, stdout=log, stderr=log
        )
        started[kind].append(proc)
        return proc

    try:
        ports = [free_port(), free_port()]
        for port in ports:
            start("api", "--host", "127.0.0.1", "--port", str(port))
        start("worker")
        start("worker")
        started["urls"] = [f"http://127.0.0.1:{port}" for port in ports]
        yield started
    finally:
        for proc in [*started["api"], *started["worker"]]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in [*started["api"], *started["worker"]]:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


async def _count(sessionmaker, model, *where) -> int:
    async with sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


async def _task_workers(client, workflow_id: str) -> set[str]:
    """Who ran this journey's workflow and activity tasks (a worker's identity is pid@host)."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return {
        e.workflow_task_completed_event_attributes.identity or e.activity_task_started_event_attributes.identity
        for e in history.events
        if e.HasField("workflow_task_completed_event_attributes")
        or e.HasField("activity_task_started_event_attributes")
    }


async def test_two_apis_and_two_workers_one_killed_every_journey_completes_once(
    dev_env, settings, sessionmaker, mailbox, ops, tmp_path, tally
):
    env = process_env(settings, AUTH_FAILURES_PER_MINUTE=str(LIMIT))
    with processes(env, tmp_path) as running:
        clients = [httpx.AsyncClient(base_url=url, timeout=30) for url in running["urls"]]
        a, b = clients
        try:

            async def healthy() -> bool:
                for c in clients:
                    with contextlib.suppress(httpx.TransportError):
                        if (await c.get("/health")).status_code != 200:
                            return False
                        continue
                    return False
                return True

            await eventually(healthy, timeout=40, what="both API processes healthy")

            # A policy change through one API is what the other answers.
            first = await a.put("/policy", json=fast_policy(plan_days=120).model_dump(mode="json"), headers=ops)
            assert first.status_code == 201, first.text
            changed = fast_policy(day_seconds=5, plan_days=60).model_dump(mode="json")
            r = await a.put("/policy", json=changed, headers=ops)
            assert r.status_code == 201, r.text
            version = r.json()["version"]
            assert version == first.json()["version"] + 1
            answered = (await b.get("/policy", headers=ops)).json()
            assert answered["version"] == version
            assert answered["policy"]["onboarding"]["plan_days"] == 60 and answered["policy"]["day_seconds"] == 5

            # Journeys started through either API (one CAM made through each, partners alternating).
            cams = []
            for i, api in enumerate(clients):
                r = await api.post("/cams", json={"name": f"CAM {i}", "email": f"cam{i}@vendor.test"}, headers=ops)
                assert r.status_code == 201, r.text
                cams.append(r.json())
            partners = []
            for i in range(JOURNEYS):
                body = {
                    "name": f"Partner {i}",
                    "domain": f"p{i}.scale.test",
                    "country": "de",
                    "type": "reseller",
                    "tier": "gold",
                    "cam_id": cams[i % 2]["id"],
                    "contact_email": f"owner@p{i}.scale.test",
                }
                r = await clients[i % 2].post("/partners", json=body, headers=ops)
                assert r.status_code == 201, r.text
                partners.append(r.json())

            # Mid-journeys (plans open, welcome emails sent, the first milestones due in 5 s, every
            # journey cached on a worker): SIGKILL the first worker. Between an SMTP server's accept and
            # the commit that marks the message sent a kill re-sends it (at-least-once, README): this
            # kill waits for no send to be in flight, so any duplicate found below is a real one.
            async def quiet() -> bool:
                if templates(mailbox).count("welcome") < JOURNEYS:
                    return False
                if await _count(sessionmaker, AuditEvent, AuditEvent.action == "onboarding.plan_opened") < JOURNEYS:
                    return False
                if await _count(sessionmaker, OutboxMessage, OutboxMessage.status != "sent"):
                    return False
                for p in partners:
                    desc = await dev_env.client.get_workflow_handle(f"onboarding-{p['id']}").describe()
                    if desc.raw_description.pending_activities:
                        return False
                return True

            await eventually(quiet, timeout=30, what="welcomes sent, plans open, no activity in flight")
            killed, survivor = running["worker"]
            killed.send_signal(signal.SIGKILL)
            killed.wait(10)

            # Every milestone, through both APIs at once; the killed worker's journeys move to the other.
            cam_keys = [await new_key(sessionmaker, Role.cam, cam_id=c["id"]) for c in cams]

            timeouts = []

            async def complete(i: int, partner: dict) -> None:
                for j, key in enumerate(MILESTONES):
                    url = f"/partners/{partner['id']}/onboarding/milestones/{key}"
                    for attempt in range(4):  # as a client does: another replica, after a 504
                        r = await clients[(i + j + attempt) % 2].post(url, headers=cam_keys[i % 2])
                        if r.status_code != 504:
                            break
                        # A journey cached on the killed worker answers once its sticky task times
                        # out (10 s) and the survivor takes it; the 504 says "may still apply".
                        timeouts.append(key)
                    # 409 only when the 504'd attempt did apply and this was the journey's last step.
                    assert r.status_code == 200 or (attempt and r.status_code == 409), r.text

            await asyncio.gather(*(complete(i, p) for i, p in enumerate(partners)))

            async def all_active() -> bool:
                for i, p in enumerate(partners):
                    if (await clients[i % 2].get(f"/partners/{p['id']}", headers=ops)).json()["status"] != "active":
                        return False
                return True

            await eventually(all_active, timeout=40, what="every journey completed")
            await eventually(lambda: templates(mailbox).count("activated") == 2 * JOURNEYS, what="activation emails")

            # Limits: one budget for a client across both APIs, a 429 from either once it is spent.
            for i in range(LIMIT):
                r = await clients[i % 2].get("/partners", headers={"Authorization": f"Bearer cl_guess{i}"})
                assert r.status_code == 401, r.text
            for api in clients:
                r = await api.get("/partners", headers={"Authorization": "Bearer cl_guess-more"})
                assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 60, r.text
                assert (await api.get("/partners", headers=ops)).status_code == 200  # a valid key is answered
        finally:
            for c in clients:
                await c.aclose()
        survivor_pid, killed_pid = survivor.pid, killed.pid

    # Each new journey used the version changed through the other API, on whichever worker ran it;
    # both workers ran journeys before the kill, the survivor finished them.
    async with sessionmaker() as session:
        opened = (await session.scalars(select(AuditEvent).where(AuditEvent.action == "onboarding.plan_opened"))).all()
    assert len(opened) == JOURNEYS and {e.detail["policy_version"] for e in opened} == {version}
    ran = set()
    for p in partners:
        ran |= await _task_workers(dev_env.client, f"onboarding-{p['id']}")
    pids = {int(identity.split("@")[0]) for identity in ran if identity}
    assert pids == {killed_pid, survivor_pid}, (pids, killed_pid, survivor_pid)

    # Nothing twice: one email per Message-ID, one outbox row per email, one audit row per step.
    actions = await nothing_twice(sessionmaker, mailbox)
    assert actions["onboarding.activated"] == JOURNEYS
    assert actions["onboarding.milestone_done"] == JOURNEYS * len(MILESTONES)
    assert await _count(sessionmaker, PartnerMilestone) == JOURNEYS * len(MILESTONES)
    tally(1, JOURNEYS, f"2 API + 2 worker processes, one worker SIGKILLed mid-journeys ({len(timeouts)} 504 retried)")
