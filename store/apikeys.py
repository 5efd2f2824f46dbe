"""API keys: random secrets stored only as SHA-256 hashes. Used by the API (auth, POST /api-keys),
the CLI (create-key) and the dev stack (the first ops key)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import Role
from store.models import ApiKey

KEY_PREFIX = "cl_"
# An integration's ops key (e.g. the CRM's): marked by its prefix, kept in `api_keys.prefix`; it may
# not do what only a person should (allow private webhook destinations).
INTEGRATION_PREFIX = "cl_int_"


def hash_key(secret: str) -> str:
    # API keys are 32 random bytes: a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret(integration: bool = False) -> str:
    if integration:
        return INTEGRATION_PREFIX + secrets.token_urlsafe(32)
    while (secret := KEY_PREFIX + secrets.token_urlsafe(32)).startswith(INTEGRATION_PREFIX):
        pass  # one in 16 million: a person's key never looks like an integration's
    return secret


def is_integration(prefix: str) -> bool:
    return prefix.startswith(INTEGRATION_PREFIX)


async def create_api_key(
    session: AsyncSession,
    *,
    role: Role,
    cam_id: uuid.UUID | None = None,
    partner_id: uuid.UUID | None = None,
    label: str = "",
    grants: Mapping[str, Any] | None = None,
    integration: bool = False,
) -> tuple[ApiKey, str]:
    """Add a key to the session (the caller commits) and return it with its secret, shown once."""
    secret = new_secret(integration)
    row = ApiKey(
        key_hash=hash_key(secret),
        prefix=secret[:10],
        role=role.value,
        cam_id=cam_id,
        partner_id=partner_id,
        label=label,
        grants=dict(grants or {}),
    )
    session.add(row)
    await session.flush()
    return row, secret
