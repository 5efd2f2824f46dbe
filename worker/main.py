"""The worker: every journey's workflow and activities (from the registry) on one task queue."""

from __future__ import annotations

import asyncio
import logging
import signal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import Worker

from core import registry
from core.schedules import ensure_qbr_schedule_from_store
from core.settings import Settings
from core.temporal import connect
from store.db import make_engine, make_sessionmaker
from worker.interceptors import DatabaseErrorInterceptor


def build_worker(
    client: Client, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], task_queue: str | None = None
) -> Worker:
    resources = registry.Resources(sessionmaker=sessionmaker, mailer=registry.make_mailer(settings), settings=settings)
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=registry.workflows(),
        activities=registry.activities(resources),
        interceptors=[DatabaseErrorInterceptor()],
    )


async def run_worker(settings: Settings) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(levelname)s %(message)s")
    engine = make_engine(settings.database_url)
    client = await connect(settings)
    worker = build_worker(client, settings, make_sessionmaker(engine))
    try:  # the QBR cycle's Temporal Schedule follows the current policy; a failure must not stop the worker
        await ensure_qbr_schedule_from_store(client, make_sessionmaker(engine), settings.task_queue)
    except Exception:
        logging.exception("could not create or update the QBR cycle schedule; the worker runs without it")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    logging.info(
        "worker polling task queue %r on %s (journeys: %s)",
        settings.task_queue,
        settings.temporal_address,
        ", ".join(s.name for s in registry.JOURNEYS),
    )
    async with worker:
        await stop.wait()
    await engine.dispose()
