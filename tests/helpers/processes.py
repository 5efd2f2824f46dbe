"""The environment of a real `camlights worker` / `camlights api` process started by a test:
the same database, Temporal, task queue, key ring and SMTP server as the test's settings."""

from __future__ import annotations

import os

from core.settings import Settings


def process_env(settings: Settings, **overrides: str) -> dict[str, str]:
    return {
        **os.environ,
        "ENVIRONMENT": settings.environment,
        "DATABASE_URL": settings.database_url,
        "TEMPORAL_ADDRESS": settings.temporal_address,
        "TASK_QUEUE": settings.task_queue,
        "PAYLOAD_KEYS": settings.payload_keys or "",
        "PAYLOAD_KEY_ACTIVE": settings.payload_key_active or "",
        "SMTP_HOST": settings.smtp_host,
        "SMTP_PORT": str(settings.smtp_port),
        "OPS_EMAIL": settings.ops_email,
        **overrides,
    }
