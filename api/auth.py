"""Bearer API keys (stored as SHA-256 hashes) and role checks.

Roles: `ops` (everything), `cam` (its own portfolio), `partner` (itself only)."""
from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import Role
from store.models import ApiKey, Partner

KEY_PREFIX = "cl_"


def hash_key(secret: str) -> str:
    # API keys are 32 random bytes: a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


async def create_api_key(session: AsyncSession, *, role: Role, cam_id: uuid.UUID | None = None,
                         partner_id: uuid.UUID | None = None, label: str = "") -> tuple[ApiKey, str]:
    """Add a key to the session (the caller commits) and return it with its secret, shown once."""
    secret = new_secret()
    row = ApiKey(key_hash=hash_key(secret), prefix=secret[:10], role=role.value, cam_id=cam_id,
                 partner_id=partner_id, label=label)
    session.add(row)
    await session.flush()
    return row, secret


@dataclass(frozen=True)
class Principal:
    key_id: uuid.UUID
    role: Role
    cam_id: uuid.UUID | None
    partner_id: uuid.UUID | None

    @property
    def actor(self) -> str:
        if self.role == Role.cam:
            return f"cam:{self.cam_id}"
        if self.role == Role.partner:
            return f"partner:{self.partner_id}"
        return f"ops:{self.key_id}"

    def can_access_partner(self, partner: Partner) -> bool:
        if self.role == Role.ops:
            return True
        if self.role == Role.cam:
            return partner.cam_id is not None and partner.cam_id == self.cam_id
        return partner.id == self.partner_id


def scope_to_principal(stmt, principal: Principal, partner_id_column):
    """Limit a query that joins `partners` to what the caller may see: a CAM its portfolio,
    a partner itself, ops everything."""
    if principal.role == Role.cam:
        return stmt.where(Partner.cam_id == principal.cam_id)
    if principal.role == Role.partner:
        return stmt.where(partner_id_column == principal.partner_id)
    return stmt


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=message,
                         headers={"WWW-Authenticate": "Bearer"})


async def principal_from_request(request: Request, session: AsyncSession) -> Principal:
    header = request.headers.get("authorization")
    if not header:
        raise _unauthorized("missing Authorization header: send 'Authorization: Bearer <api key>'")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("Authorization header must be 'Bearer <api key>'")
    row = await session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(token.strip())))
    if row is None or row.revoked_at is not None:
        raise _unauthorized("invalid or revoked API key")
    return Principal(key_id=row.id, role=Role(row.role), cam_id=row.cam_id, partner_id=row.partner_id)


def require_roles(*roles: Role):
    from api.deps import get_principal

    async def check(principal: Principal = Depends(get_principal)) -> Principal:
        if principal.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                detail=f"this action needs the role {' or '.join(r.value for r in roles)}; "
                                       f"your key has the role {principal.role.value}")
        return principal

    return check


def ensure_partner_access(principal: Principal, partner: Partner) -> None:
    if not principal.can_access_partner(partner):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            detail=f"your {principal.role.value} key may not access partner {partner.id}")
