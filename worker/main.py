"""The worker: every journey's workflows and activities on one task queue."""
from __future__ import annotations

import asyncio
import logging
import signal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from activities.cert import CertActivities
from activities.common import CommonActivities
from activities.deal import DealActivities
from activities.mail import Mailer
from activities.onboarding import OnboardingActivities
from domain.settings import Settings
from store.db import make_engine, make_sessionmaker
from workflows.cert import CertWorkflow
from workflows.deal import DealWorkflow
from workflows.onboarding import OnboardingWorkflow

WORKFLOWS = [OnboardingWorkflow, DealWorkflow, CertWorkflow]


def make_mailer(settings: Settings) -> Mailer:
    return Mailer(host=settings.smtp_host, port=settings.smtp_port, sender=settings.mail_from,
                  username=settings.smtp_username, password=settings.smtp_password,
                  starttls=settings.smtp_starttls)


def build_activities(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> list:
    common = CommonActivities(sessionmaker, make_mailer(settings), settings.ops_email)
    onboarding = OnboardingActivities(sessionmaker)
    deal = DealActivities(sessionmaker, link_secret=settings.link_secret,
                          public_base_url=settings.public_base_url, ops_email=settings.ops_email)
    cert = CertActivities(sessionmaker)
    return [
        common.load_policy, common.queue_notification, common.send_notifications,
        onboarding.open_onboarding_plan, onboarding.record_milestone, onboarding.finish_onboarding,
        deal.record_deal_state, deal.record_deal_stage, deal.queue_approval_request,
        cert.record_cert_state,
    ]


def build_worker(client: Client, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession],
                 task_queue: str | None = None) -> Worker:
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=WORKFLOWS,
        activities=build_activities(sessionmaker, settings),
    )


async def connect(settings: Settings) -> Client:
    return await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace,
                                data_converter=pydantic_data_converter,
                                tls=settings.temporal_tls or settings.temporal_api_key is not None,
                                api_key=settings.temporal_api_key)


async def run_worker(settings: Settings) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(levelname)s %(message)s")
    engine = make_engine(settings.database_url)
    client = await connect(settings)
    worker = build_worker(client, settings, make_sessionmaker(engine))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    logging.info("worker polling task queue %r on %s", settings.task_queue, settings.temporal_address)
    async with worker:
        await stop.wait()
    await engine.dispose()
