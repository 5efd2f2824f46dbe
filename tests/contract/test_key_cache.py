"""The API keys an API process keeps (api/keycache.py, issue 23: a key lookup cached with correct
invalidation). A valid key is looked up once; a change to any key, committed by this process or
by any other, drops what was kept before the next request can use it; nothing is kept while the
process does not hear of changes."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import httpx
import psycopg
from sqlalchemy import delete, select, text, update

from api import keycache
from api.app import create_app
from api.auth import Principal
from api.keycache import KeyCache
from domain.enums import Role
from store.apikeys import changes_keys, hash_key
from store.models import ApiKey, Partner
from tests.helpers.api import new_key
from tests.helpers.statements import statements
from worker.services import free_port


@contextlib.asynccontextmanager
async def running(settings):
    """The real app (its lifespan: the key listener) behind an httpx client, and the app."""
    app = create_app(settings, reconcile_every=None)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://camlights.test") as c:
            yield app, c


def lookups(sent: list[str]) -> int:
    return sum(1 for s in sent if "api_keys" in s)


def libpq(settings) -> str:
    """The database outside SQLAlchemy: another process's (or a person's psql) change."""
    return settings.database_url.replace("postgresql+psycopg://", "postgresql://")


async def key_id_of(sessionmaker, headers) -> uuid.UUID:
    digest = hash_key(headers["Authorization"].removeprefix("Bearer "))
    async with sessionmaker() as session:
        return await session.scalar(select(ApiKey.id).where(ApiKey.key_hash == digest))


async def refused_within(client, headers, seconds: float) -> float:
    """Seconds until a request with `headers` is refused (401); fails after `seconds`."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        r = await client.get("/policy", headers=headers)
        if r.status_code == 401:
            return time.monotonic() - t0
        assert r.status_code == 200, r.text
        await asyncio.sleep(0.01)
    raise AssertionError(f"still accepted {seconds}s after its revocation")


async def test_a_valid_key_is_looked_up_once_an_unknown_or_revoked_one_every_time(settings, sessionmaker):
    headers = await new_key(sessionmaker, Role.ops)
    async with running(settings) as (app, c):
        assert app.state.key_cache.listening
        with statements() as sent:
            assert (await c.get("/policy", headers=headers)).status_code == 200
        assert lookups(sent) == 1
        with statements() as sent:
            for _ in range(3):
                assert (await c.get("/policy", headers=headers)).status_code == 200
        assert lookups(sent) == 0, sent
        unknown = {"Authorization": "Bearer cl_" + "x" * 43}
        with statements() as sent:
            for _ in range(2):
                assert (await c.get("/policy", headers=unknown)).status_code == 401
        assert lookups(sent) == 2  # never kept: a key created later is found at once
        assert len(app.state.key_cache) == 1


async def test_a_key_revoked_by_a_request_is_refused_by_the_next(settings, sessionmaker):
    ops = await new_key(sessionmaker, Role.ops)
    other = await new_key(sessionmaker, Role.ops)
    async with running(settings) as (_, c):
        assert (await c.get("/policy", headers=other)).status_code == 200  # kept
        key_id = await key_id_of(sessionmaker, other)
        assert (await c.post(f"/api-keys/{key_id}/revoke", headers=ops)).status_code == 200
        assert (await c.get("/policy", headers=other)).status_code == 401
        assert (await c.get("/policy", headers=ops)).status_code == 200  # looked up again, still valid


async def test_a_change_committed_through_sqlalchemy_in_this_process_drops_at_once(settings, sessionmaker):
    """Another engine of the process (the worker's, a CLI's) revokes: refused by the very next request."""
    headers = await new_key(sessionmaker, Role.ops)
    async with running(settings) as (app, c):
        assert (await c.get("/policy", headers=headers)).status_code == 200
        before = app.state.key_cache.generation
        async with sessionmaker() as session:
            await session.execute(
                update(ApiKey)
                .where(ApiKey.key_hash == hash_key(headers["Authorization"][7:]))
                .values(revoked_at=text("now()"))
            )
            await session.commit()
        assert app.state.key_cache.generation > before
        assert (await c.get("/policy", headers=headers)).status_code == 401


async def test_each_way_of_changing_a_key_through_sqlalchemy_drops_when_its_transaction_ends(sessionmaker):
    """Without any listener (a cache that only this process's watcher can reach): an ORM flush of
    a changed key, a bulk UPDATE, a DELETE and a textual UPDATE each drop when the connection is
    given back; a read, and a change to another table, do not."""
    from store.apikeys import watch_key_changes

    watch_key_changes(keycache.drop_everywhere)  # what the API's lifespan does
    cache = KeyCache()
    headers = await new_key(sessionmaker, Role.ops)
    digest = hash_key(headers["Authorization"][7:])

    async def changed(change) -> bool:
        before = cache.generation
        async with sessionmaker() as session:
            await change(session)
            await session.commit()
        return cache.generation > before

    async def read(session):
        await session.scalar(select(ApiKey.id).where(ApiKey.key_hash == digest))

    async def other_table(session):
        await session.execute(update(Partner).where(Partner.id == uuid.uuid4()).values(name="x"))

    async def flushed(session):
        row = await session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
        row.label = "renamed by the ORM"

    async def bulk(session):
        await session.execute(update(ApiKey).where(ApiKey.key_hash == digest).values(label="bulk"))

    async def textual(session):
        await session.execute(text("UPDATE api_keys SET label = 'text' WHERE key_hash = :d"), {"d": digest})

    async def deleted(session):
        await session.execute(delete(ApiKey).where(ApiKey.key_hash == digest))

    assert not await changed(read)
    assert not await changed(other_table)
    for change in (flushed, bulk, textual, deleted):
        assert await changed(change), change.__name__


async def test_a_change_by_another_process_arrives_as_a_notification(settings, sessionmaker):
    """A revocation outside this process's SQLAlchemy (psql, another process): the trigger's
    notification drops the kept keys. Also a rolled-back revocation drops nothing."""
    headers = await new_key(sessionmaker, Role.ops)
    digest = hash_key(headers["Authorization"][7:])
    async with running(settings) as (app, c):
        assert (await c.get("/policy", headers=headers)).status_code == 200
        cache = app.state.key_cache
        generation = cache.generation
        async with await psycopg.AsyncConnection.connect(libpq(settings)) as other:
            await other.execute("UPDATE api_keys SET label = 'renamed' WHERE key_hash = %s", (digest,))
            await other.rollback()
        await asyncio.sleep(0.3)
        assert cache.generation == generation  # no notification for what was rolled back
        with statements() as sent:
            assert (await c.get("/policy", headers=headers)).status_code == 200
        assert lookups(sent) == 0
        async with await psycopg.AsyncConnection.connect(libpq(settings), autocommit=True) as other:
            await other.execute("UPDATE api_keys SET revoked_at = now() WHERE key_hash = %s", (digest,))
        took = await refused_within(c, headers, 5)
        assert cache.generation > generation
        print(f"refused {took * 1000:.1f} ms after another process's revocation")


async def test_deleting_a_key_notifies_too(settings, sessionmaker):
    """(A TRUNCATE of `api_keys` notifies through the same trigger; not run here: it would cascade.)"""
    headers = await new_key(sessionmaker, Role.ops)
    async with running(settings) as (app, c):
        assert (await c.get("/policy", headers=headers)).status_code == 200
        generation = app.state.key_cache.generation
        key_id = await key_id_of(sessionmaker, headers)
        async with await psycopg.AsyncConnection.connect(libpq(settings), autocommit=True) as other:
            await other.execute("DELETE FROM api_keys WHERE id = %s", (key_id,))
        await refused_within(c, headers, 5)
        assert app.state.key_cache.generation > generation


async def test_nothing_is_kept_while_the_listener_is_not_connected_and_it_reconnects(
    settings, sessionmaker, monkeypatch
):
    monkeypatch.setattr(keycache, "RETRY_DELAYS", (5.0,))  # the time it stays disconnected
    headers = await new_key(sessionmaker, Role.ops)
    async with running(settings) as (app, c):
        cache = app.state.key_cache
        assert (await c.get("/policy", headers=headers)).status_code == 200 and len(cache) == 1
        async with await psycopg.AsyncConnection.connect(libpq(settings), autocommit=True) as admin:
            cur = await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                (keycache.APPLICATION_NAME,),
            )
            assert [row[0] for row in await cur.fetchall()] == [True]  # the listener's connection
        t0 = time.monotonic()
        while cache.listening and time.monotonic() - t0 < 10:  # it notices within CHECK_EVERY
            await asyncio.sleep(0.05)
        assert not cache.listening and len(cache) == 0
        with statements() as sent:  # not listening: every request looks its key up, nothing is kept
            for _ in range(2):
                assert (await c.get("/policy", headers=headers)).status_code == 200
        assert lookups(sent) == 2 and len(cache) == 0
        assert await cache.wait_listening(10)  # listening again after its retry delay
        assert (await c.get("/policy", headers=headers)).status_code == 200
        assert len(cache) == 1


async def test_without_a_listener_the_api_looks_every_key_up(settings, sessionmaker, monkeypatch):
    """KEY_CHANGES_URL=off, or a listener that cannot connect: nothing is kept."""
    headers = await new_key(sessionmaker, Role.ops)
    async with running(settings.model_copy(update={"key_changes_url": "off"})) as (app, c):
        with statements() as sent:
            for _ in range(3):
                assert (await c.get("/policy", headers=headers)).status_code == 200
        assert lookups(sent) == 3 and len(app.state.key_cache) == 0

    monkeypatch.setattr(keycache, "START_WAIT", 0.3)
    nowhere = settings.database_url.rsplit("@", 1)[0] + f"@127.0.0.1:{free_port()}/none"
    async with running(settings.model_copy(update={"key_changes_url": nowhere})) as (app, c):
        assert not app.state.key_cache.listening
        with statements() as sent:
            for _ in range(3):
                assert (await c.get("/policy", headers=headers)).status_code == 200
        assert lookups(sent) == 3 and len(app.state.key_cache) == 0


class _Deaf(psycopg.AsyncConnection):
    """A connection whose LISTEN reaches nothing, as through a transaction-mode pooler."""

    async def execute(self, query, params=None, **kwargs):
        if isinstance(query, str) and query.startswith("LISTEN"):
            query = "SELECT 1"
        return await super().execute(query, params, **kwargs)


async def test_a_listener_that_does_not_hear_its_own_probe_keeps_nothing(settings, monkeypatch, caplog):
    monkeypatch.setattr(keycache, "CHECK_TIMEOUT", 0.3)
    cache = KeyCache()
    task = asyncio.create_task(cache.listen(settings.database_url, connect=_Deaf.connect))
    try:
        assert not await cache.wait_listening(1.5)
        cache.put("a", _principal(), cache.generation)
        assert cache.get("a") is None
        t0 = time.monotonic()
        while "did not hear its own notification" not in caplog.text and time.monotonic() - t0 < 10:
            await asyncio.sleep(0.05)
        assert "did not hear its own notification" in caplog.text and not cache.listening
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_probes_drop_nothing_a_key_change_drops_everything(settings):
    """Every API process hears the others' probes on the channel: only the trigger's operations drop."""
    cache = KeyCache()
    task = asyncio.create_task(cache.listen(settings.database_url))
    try:
        assert await cache.wait_listening(5)
        generation = cache.generation
        async with await psycopg.AsyncConnection.connect(libpq(settings), autocommit=True) as other:
            await other.execute("SELECT pg_notify(%s, %s)", (keycache.CHANNEL, keycache.PROBE + "another-process"))
            await asyncio.sleep(0.3)
            assert cache.generation == generation and cache.listening
            await other.execute("SELECT pg_notify(%s, 'UPDATE')", (keycache.CHANNEL,))
            t0 = time.monotonic()
            while cache.generation == generation and time.monotonic() - t0 < 5:
                await asyncio.sleep(0.01)
        assert cache.generation > generation
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _principal() -> Principal:
    return Principal(key_id=uuid.uuid4(), role=Role.ops, cam_id=None, partner_id=None)


async def test_the_cache_keeps_nothing_read_before_a_drop_nor_too_old_nor_too_many():
    cache = KeyCache(max_age=60, max_entries=2)
    p = _principal()
    cache.put("a", p, cache.generation)
    assert cache.get("a") is None  # not listening: nothing kept
    cache.listening = True
    started = cache.generation
    cache.drop()  # a change was announced while the lookup ran
    cache.put("a", p, started)
    assert cache.get("a") is None
    cache.put("a", p, cache.generation)
    assert cache.get("a") is p
    cache.put("b", p, cache.generation)
    cache.put("c", p, cache.generation)
    assert len(cache) == 2 and cache.get("a") is None and cache.get("c") is p  # the oldest went
    old = KeyCache(max_age=1.0, listening=True)
    old.put("a", p, old.generation)
    assert old.get("a") is p
    time.sleep(1.05)
    assert old.get("a") is None
    keycache.drop_everywhere()
    assert len(cache) == 0


def test_which_statements_change_keys():
    assert changes_keys(update(ApiKey).values(label="x"))
    assert changes_keys(delete(ApiKey))
    assert changes_keys(text("UPDATE api_keys SET revoked_at = now()"))
    assert changes_keys(text("delete from api_keys where id = :id"))
    assert changes_keys(text("TRUNCATE partners, api_keys"))
    assert not changes_keys(update(Partner).values(name="x"))
    assert not changes_keys(select(ApiKey))
    assert not changes_keys(text("SELECT * FROM api_keys"))
