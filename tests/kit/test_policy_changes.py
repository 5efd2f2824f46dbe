"""A policy change reaches every process without a restart: `PUT /policy` through one API process
is what another answers, the QBR cycle's Temporal Schedule follows it at once, and a worker's
policy check applies a version whose schedule update the API could not make; an older version
never replaces a newer one."""

from __future__ import annotations

import asyncio
import contextlib

import httpx

from api.app import create_app
from core.hooks import follow_policy
from domain.policy import ProgramPolicy
from journeys.qbr.schedules import SCHEDULE_ID, ensure_qbr_schedule, followed_version
from store import repo
from tests.helpers.policies import fast_policy
from tests.helpers.waiting import eventually


async def schedule_months(client) -> tuple[list[int], int | None]:
    schedule = (await client.get_schedule_handle(SCHEDULE_ID).describe()).schedule
    (calendar,) = schedule.spec.calendars
    return [r.start for r in calendar.month], followed_version(schedule)


def with_months(*months: int) -> ProgramPolicy:
    policy = fast_policy()
    return policy.model_copy(update={"qbr": policy.qbr.model_copy(update={"cycle_months": list(months)})})


async def test_a_policy_change_through_one_api_is_what_the_other_answers_and_the_schedule_follows(
    settings, sessionmaker, dev_env, ops
):
    await ensure_qbr_schedule(dev_env.client, ProgramPolicy(), settings.task_queue)  # as a worker made it
    apps = [create_app(settings, reconcile_every=None) for _ in range(2)]
    async with contextlib.AsyncExitStack() as stack:
        http = []
        for app in apps:
            await stack.enter_async_context(app.router.lifespan_context(app))
            http.append(
                await stack.enter_async_context(
                    httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
                )
            )
        r = await http[0].put("/policy", json=with_months(2, 5, 8, 11).model_dump(mode="json"), headers=ops)
        assert r.status_code == 201, r.text
        version = r.json()["version"]
        r = await http[1].get("/policy", headers=ops)
        assert r.json()["version"] == version and r.json()["policy"]["qbr"]["cycle_months"] == [2, 5, 8, 11]
        assert await schedule_months(dev_env.client) == ([2, 5, 8, 11], version)


async def test_a_worker_applies_a_new_policy_version_without_a_restart(settings, sessionmaker, dev_env):
    client = dev_env.client
    await ensure_qbr_schedule(client, with_months(1), settings.task_queue)  # made before versions were noted
    following = asyncio.create_task(follow_policy(client, sessionmaker, settings.task_queue, every=0.2))
    try:
        await eventually(lambda: _months_are(client, [1, 4, 7, 10]), what="the schedule of the current policy")
        async with sessionmaker() as session:  # stored, but no API process applied its schedule
            version = await repo.save_policy(session, with_months(3, 6, 9, 12), created_by="system:test")
            await session.commit()
        await eventually(lambda: _months_are(client, [3, 6, 9, 12]), what="the schedule of the new version")
        assert (await schedule_months(client))[1] == version
        # A late writer with an older version leaves the newer schedule as it is.
        await ensure_qbr_schedule(client, with_months(1, 7), settings.task_queue, version - 1)
        assert await schedule_months(client) == ([3, 6, 9, 12], version)
    finally:
        following.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await following


async def _months_are(client, months: list[int]) -> bool:
    try:
        return (await schedule_months(client))[0] == months
    except Exception:  # not created yet
        return False


async def test_a_pinned_version_is_parsed_once_and_a_version_written_again_is_read_again(sessionmaker):
    """`repo.policy_version` (a journey step reading its pinned version): the body is sent and
    validated once per version in a process; later reads answer from what was parsed, unless the
    number now names another row (the table emptied and the version written again), whose body is
    then read."""
    from sqlalchemy import delete, select

    from store.models import PolicyVersion
    from tests.helpers.statements import statements

    first = with_months(1, 4, 7, 10)
    async with sessionmaker() as session, session.begin():
        version = await repo.save_policy(session, first, "test:first")
    async with sessionmaker() as session:
        parsed = await repo.policy_version(session, version)
        with statements() as sent:
            again = await repo.policy_version(session, version)
        created_at = await session.scalar(select(PolicyVersion.created_at).where(PolicyVersion.version == version))
        read = (
            await session.execute(
                repo._policy_version_read(), {"policy_version": version, "policy_known_at": created_at}
            )
        ).one()
    assert parsed is not None and again is not None and parsed.policy == first
    assert again.policy is parsed.policy and len(sent) == 1  # one statement, not parsed again
    assert read.policy_created_at == created_at and read.policy_body is None  # the known version's body is not sent
    async with sessionmaker() as session:
        assert await repo.policy_version(session, version + 1) is None  # no such version: none, not a stale one

    second = with_months(2, 5, 8, 11)
    async with sessionmaker() as session, session.begin():
        await session.execute(delete(PolicyVersion).where(PolicyVersion.version == version))
        session.add(PolicyVersion(version=version, body=second.model_dump(mode="json"), created_by="test:second"))
    async with sessionmaker() as session:
        reread = await repo.policy_version(session, version)
        stored = await session.scalar(select(PolicyVersion.created_by).where(PolicyVersion.version == version))
    assert stored == "test:second"
    assert reread is not None and reread.policy == second and reread.policy.qbr.cycle_months == [2, 5, 8, 11]
