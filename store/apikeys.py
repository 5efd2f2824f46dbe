"""API keys: random secrets stored only as SHA-256 hashes. Used by the API (auth, POST /api-keys),
the CLI (create-key) and the dev stack (the first ops key)."""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Delete, TextClause, Update, event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.pool import Pool

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


# ------------------------------------------------------------------ changes seen in this process

_CHANGED = "camlights.api_keys_changed"
_KEYS_SQL = re.compile(r"\b(update|delete\s+from|truncate)\b[^;]*\bapi_keys\b", re.IGNORECASE | re.DOTALL)
_on_change: list[Callable[[], None]] = []


def watch_key_changes(callback: Callable[[], None]) -> None:
    """Call `callback` once a connection of this process that updated, deleted or truncated
    `api_keys` (through SQLAlchemy, any engine) has ended its transaction: the API's key cache
    drops what it kept before the caller's next request (api/keycache.py). Other processes'
    changes arrive as notifications (migration 0017)."""
    if not _on_change:
        event.listen(Engine, "after_execute", _seen)
        event.listen(Pool, "checkin", _ended)
    if callback not in _on_change:
        _on_change.append(callback)


def changes_keys(statement: object) -> bool:
    """Whether a statement updates, deletes or truncates `api_keys`."""
    if isinstance(statement, Update | Delete):
        return getattr(statement.table, "name", None) == ApiKey.__tablename__
    if isinstance(statement, TextClause):
        return _KEYS_SQL.search(statement.text) is not None
    return False


def _seen(conn, clauseelement, multiparams, params, execution_options, result) -> None:
    if changes_keys(clauseelement):
        conn.info[_CHANGED] = True  # the pooled connection's: read again when it is checked in


def _ended(dbapi_connection, connection_record) -> None:
    if connection_record is not None and connection_record.info.pop(_CHANGED, False):
        for callback in _on_change:
            callback()
