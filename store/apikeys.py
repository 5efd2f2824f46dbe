"""API keys: random secrets stored only as SHA-256 hashes. Used by the API (auth, POST /api-keys),
the CLI (create-key) and the dev stack (the first ops key)."""

from __future__ import annotations

import hashlib
import secrets
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import Role
from store.models import ApiKey

KEY_PREFIX = "cl_"


def hash_key(secret: str) -> str:
    # API keys are 32 random bytes: a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


async def create_api_key(
    session: AsyncSession,
    *,
    role: Role,
    cam_id: uuid.UUID | None = None,
    partner_id: uuid.UUID | None = None,
    label: str = "",
    approver_level: int | None = None,
) -> tuple[ApiKey, str]:
    """Add a key to the session (the caller commits) and return it with its secret, shown once."""
    secret = new_secret()
    row = ApiKey(
        key_hash=hash_key(secret),
        prefix=secret[:10],
        role=role.value,
        cam_id=cam_id,
        partner_id=partner_id,
        label=label,
        approver_level=approver_level,
    )
    session.add(row)
    await session.flush()
    return row, secret
