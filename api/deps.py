"""Typed request dependencies (full-stack-fastapi-template `api/deps.py`): one DB session per
request, the app-wide Temporal client and settings, the caller, role checks, and a partner
loaded and authorized for the caller."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from api import ratelimit
from api.auth import Principal, check_role, ensure_partner_access, principal_from_request
from api.schemas import IdempotencyKey
from core.settings import Settings
from domain.enums import Role
from domain.errors import NotFound
from store.models import Partner


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessionmaker() as session:
        yield session


# Every dependency is a coroutine: FastAPI runs a plain function in its thread pool, a thread hop
# per dependency and request (tests/contract/test_no_thread_hops.py).
async def get_temporal(request: Request) -> Client:
    return request.app.state.temporal


async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


# Declared so that /docs offers "Authorize" for the API key; the check itself is ours (JSON 401s).
bearer = HTTPBearer(auto_error=False, scheme_name="ApiKey", description="`Authorization: Bearer <api key>`")


async def get_principal(
    request: Request,
    session: Annotated[AsyncSession, Depends(get_session)],
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    return await principal_from_request(request, session)


SessionDep = Annotated[AsyncSession, Depends(get_session)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def update_budget(request: Request, principal: PrincipalDep) -> None:
    """A partner key's updates to its own journeys share one budget per key and minute
    (`PARTNER_UPDATES_PER_MINUTE`, api/ratelimit.py): 429 with Retry-After past it."""
    if principal.role == Role.partner:
        await ratelimit.spend(request.app.state.update_limiter, request, principal.key_id, "journey updates")


UpdateBudget = Depends(update_budget)


def require_roles(*roles: Role):
    async def check(principal: PrincipalDep) -> Principal:
        check_role(principal, *roles)
        return principal

    return check


OpsDep = Annotated[Principal, Depends(require_roles(Role.ops))]
StaffDep = Annotated[Principal, Depends(require_roles(Role.ops, Role.cam))]


async def load_partner(session: AsyncSession, partner_id: uuid.UUID, principal: Principal) -> Partner:
    """The partner, if it exists (404) and the caller may act on it (403)."""
    return check_partner(await session.get(Partner, partner_id), partner_id, principal)


def check_partner(partner: Partner | None, partner_id: uuid.UUID, principal: Principal) -> Partner:
    """`load_partner`'s checks of a partner read (None: there is none with `partner_id`)."""
    if partner is None:
        raise NotFound(f"no partner with id {partner_id}")
    ensure_partner_access(principal, partner)
    return partner


async def get_partner(partner_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> Partner:
    return await load_partner(session, partner_id, principal)


PartnerDep = Annotated[Partner, Depends(get_partner)]  # from the `partner_id` path parameter


@dataclass(frozen=True)
class Creation:
    """Everything a creating POST needs: the caller, its session, Temporal, settings, and its
    `Idempotency-Key` header (with the path it is scoped to)."""

    principal: Principal
    session: AsyncSession
    temporal: Client
    settings: Settings
    idempotency_key: str | None
    path: str
    # With a list: the journeys started, whose confirmation `created` writes after the answer is
    # sent (api/journeys.py `confirm_started`, in a session of its own); without, written at once.
    sessionmaker: async_sessionmaker[AsyncSession] | None = None
    started: list[str] | None = None


async def get_creation(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> Creation:
    return Creation(
        principal,
        session,
        temporal,
        settings,
        idempotency_key,
        request.url.path,
        sessionmaker=request.app.state.sessionmaker,
        started=[],  # confirmed once the answer is sent
    )


CreationDep = Annotated[Creation, Depends(get_creation)]
