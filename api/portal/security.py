"""Sign-in state of the partner portal: server-side sessions of partner users behind an HttpOnly,
SameSite=Lax cookie scoped to /portal (Secure behind HTTPS), a CSRF token per session checked on
every form, and the workspace's security headers (api/web/security.py: the same tokens, checks and
headers). A session is valid only while its user exists: removing a user ends it at once."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import HTTPException, Request, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Principal
from api.web import security as web_security
from api.web.security import SignInRequired, check_csrf, set_session_cookie, token_hash
from core.settings import Settings
from domain.enums import Role
from store.models.portal import PartnerUser, PortalSession

PREFIX = "/portal"
SESSION_COOKIE = "camlights_portal_session"
PRE_CSRF_COOKIE = "camlights_portal_signin_csrf"


@dataclass(frozen=True)
class PortalUser:
    """Who is signed in: a person of one partner, acting as that partner (the same `Principal` a
    partner's API key has, so the services, rules and audit trail are one)."""

    id: uuid.UUID
    partner_id: uuid.UUID
    name: str
    email: str
    role: str  # admin | member
    language: str
    time_zone: str
    csrf_token: str

    @property
    def principal(self) -> Principal:
        return Principal(key_id=self.id, role=Role.partner, cam_id=None, partner_id=self.partner_id)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


async def start_session(
    session: AsyncSession, response: Response, request: Request, settings: Settings, user: PartnerUser
) -> None:
    token, expires_at = set_session_cookie(response, request, settings, SESSION_COOKIE, PREFIX)
    session.add(
        PortalSession(
            token_hash=token_hash(token), user_id=user.id, csrf_token=secrets.token_urlsafe(32), expires_at=expires_at
        )
    )


async def end_session(session: AsyncSession, request: Request, response: Response) -> None:
    await web_security.end_session(session, request, response, PortalSession, SESSION_COOKIE, PREFIX)


async def current_user(request: Request, session: AsyncSession) -> PortalUser:
    """The signed-in partner user (a live session of an existing user), else `SignInRequired`."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 200:
        raise SignInRequired
    row = (
        await session.execute(
            select(PortalSession, PartnerUser)
            .join(PartnerUser, PartnerUser.id == PortalSession.user_id)
            .where(
                PortalSession.token_hash == token_hash(token),
                PortalSession.ended_at.is_(None),
                PortalSession.expires_at > datetime.now(UTC),
            )
        )
    ).first()
    if row is None:
        raise SignInRequired
    live, user = row
    return PortalUser(
        id=user.id,
        partner_id=user.partner_id,
        name=user.name,
        email=user.email,
        role=user.role,
        language=user.language,
        time_zone=user.time_zone,
        csrf_token=live.csrf_token,
    )


async def signed_in(request: Request, session: AsyncSession, *, form: bool = False) -> PortalUser:
    user = await current_user(request, session)
    if form:
        await check_csrf(request, user.csrf_token)
    return user


def require_admin(user: PortalUser) -> None:
    if not user.is_admin:
        raise HTTPException(403, detail="only your company's portal admins manage the team")


async def uploader(request: Request) -> uuid.UUID | None:
    """The signed-in partner user of a portal upload form, checked before its body is read
    (api/limits.py): None without a live session."""
    async with request.app.state.sessionmaker() as session:
        try:
            return (await current_user(request, session)).id
        except SignInRequired:
            return None
