"""The caller: a bearer API key (stored hashed) and its role.

Roles: `ops` (everything), `cam` (its own portfolio), `partner` (itself only)."""

from __future__ import annotations

import functools
import hmac
import uuid
from collections.abc import Mapping
from dataclasses import InitVar, dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException, Request, status
from sqlalchemy import Select, bindparam, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from api import ratelimit
from domain import actors
from domain.enums import Role
from domain.errors import Refused
from store import repo
from store.apikeys import hash_key, is_integration
from store.models import ApiKey, Partner

if TYPE_CHECKING:
    from api.keycache import KeyCache

LEGACY_GRANT = "mdf.approver_level"  # what `Principal(approver_level=...)` still sets (see below)


@dataclass(frozen=True)
class Principal:
    key_id: uuid.UUID
    role: Role
    cam_id: uuid.UUID | None
    partner_id: uuid.UUID | None
    integration: bool = False  # an integration's ops key (store/apikeys.py INTEGRATION_PREFIX)
    # What the journeys grant the key (`JourneySpec.grants`), by full name: `grant(name)` reads one.
    grants: Mapping[str, Any] = field(default_factory=dict)
    # Transitional: the workspace's operators (api/web/security.py) still pass MDF's approval level
    # by this name; it becomes their grant `LEGACY_GRANT`.
    approver_level: InitVar[int | None] = None

    def __post_init__(self, approver_level: int | None) -> None:
        if approver_level is not None:
            object.__setattr__(self, "grants", {**self.grants, LEGACY_GRANT: approver_level})

    def grant(self, name: str) -> Any:
        """The value of a journey's grant this key carries (`<journey>.<name>`), or None."""
        return self.grants.get(name)

    @property
    def actor(self) -> str:
        """The caller as an actor (domain/actors.py), as written in the audit trail."""
        if self.role == Role.cam:
            return actors.cam(self.cam_id)
        if self.role == Role.partner:
            return actors.partner(self.partner_id)
        return actors.ops(self.key_id)

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
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=message, headers={"WWW-Authenticate": "Bearer"})


async def principal_from_request(request: Request, session: AsyncSession) -> Principal:
    """The caller of a bearer API key. Failed attempts count per client (429 past the limit);
    a valid key is answered whatever its client's count (api/ratelimit.py)."""
    try:
        return await _authenticate(request, session)
    except HTTPException:
        await ratelimit.failed(request.app.state.auth_limiter, request, "authentications")
        raise


def require_bearer_header(request: Request) -> str:
    """The bearer token of the request, well-formed (not yet looked up), or 401. Cheap: the body
    limit (api/limits.py) calls it before reading a body."""
    header = request.headers.get("authorization")
    if not header:
        raise _unauthorized("missing Authorization header: send 'Authorization: Bearer <api key>'")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("Authorization header must be 'Bearer <api key>'")
    if not (token.isascii() and token.isprintable() and len(token) <= 200):
        raise _unauthorized("invalid or revoked API key")
    return token


async def _authenticate(request: Request, session: AsyncSession) -> Principal:
    token = require_bearer_header(request)
    digest = hash_key(token)
    cache: KeyCache | None = getattr(request.app.state, "key_cache", None)
    if cache is not None and (kept := cache.get(digest)) is not None:
        return kept  # a valid key this process looked up, unchanged since (api/keycache.py)
    generation = cache.generation if cache is not None else 0
    row = (await session.execute(_key_by_hash(), {"digest": digest})).first()
    # The lookup is by hash (nothing about the key leaks from its timing); compare in constant time too.
    if row is None or not hmac.compare_digest(row.key_hash, digest) or row.revoked_at is not None:
        raise _unauthorized("invalid or revoked API key")
    repo.saw_newest_policy(session, row.policy_version, row.policy_created_at)
    principal = Principal(
        key_id=row.id,
        role=Role(row.role),
        cam_id=row.cam_id,
        partner_id=row.partner_id,
        grants=MappingProxyType(dict(row.grants or {})),  # shared by the requests of the key: read-only
        integration=is_integration(row.prefix),
    )
    if cache is not None:
        cache.put(digest, principal, generation)
    return principal


@functools.cache
def _key_by_hash() -> Select:
    """A request's key lookup (when this process does not keep the key: api/keycache.py), built
    once (store/repo.py: building costs more than sending): the columns a principal is made of,
    not an ORM object; and, in the same round trip, which policy version is the newest
    (`repo.saw_newest_policy`: a create's policy read then sends nothing when this process has
    parsed that version)."""
    columns = (ApiKey.id, ApiKey.key_hash, ApiKey.prefix, ApiKey.role, ApiKey.cam_id, ApiKey.partner_id)
    newest = repo.newest_policy_version()
    return (
        select(*columns, ApiKey.grants, ApiKey.revoked_at, newest.c.policy_version, newest.c.policy_created_at)
        .select_from(ApiKey)
        .outerjoin(newest, true())
        .where(ApiKey.key_hash == bindparam("digest"))
    )


def check_role(principal: Principal, *roles: Role) -> None:
    if principal.role not in roles:
        raise Refused(
            f"this action needs the role {' or '.join(r.value for r in roles)}; "
            f"your key has the role {principal.role.value}",
        )


def ensure_partner_access(principal: Principal, partner: Partner) -> None:
    if not principal.can_access_partner(partner):
        raise Refused(f"your {principal.role.value} key may not access partner {partner.id}")
