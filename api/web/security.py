"""Sign-in state and safety of the CAM workspace: server-side sessions behind an HttpOnly,
SameSite=Lax cookie (Secure behind HTTPS), a CSRF token per session checked on every form,
and the security headers of every page (a strict Content-Security-Policy, no framing, nosniff,
no referrer: a sign-in link's token never leaks through it)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import HTTPException, Request, Response
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import Principal
from core.settings import Settings
from domain.enums import Role
from store.models import Cam
from store.models.web import WebOperator, WebSession

PREFIX = "/web"
SESSION_COOKIE = "camlights_session"
PRE_CSRF_COOKIE = "camlights_signin_csrf"  # double-submit token of the forms shown before sign-in
CSRF_FIELD = "csrf_token"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class SignInRequired(Exception):
    """No valid session: the page answers with a redirect to the sign-in page."""


@dataclass(frozen=True)
class WebUser:
    """Who is signed in: a CAM or an operator, as the same `Principal` the JSON API uses, so
    services, rules and the audit trail are one."""

    principal: Principal
    name: str
    email: str
    csrf_token: str

    @property
    def is_ops(self) -> bool:
        return self.principal.role == Role.ops


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def is_secure(request: Request, settings: Settings) -> bool:
    return request.url.scheme == "https" or settings.public_base_url.startswith("https://")


async def start_session(
    session: AsyncSession, response: Response, request: Request, settings: Settings, *, account: Cam | WebOperator
) -> None:
    """A new server-side session for the account, and its cookie on `response` (the caller commits)."""
    token, expires_at = set_session_cookie(response, request, settings)
    session.add(
        WebSession(
            token_hash=token_hash(token),
            role=(Role.cam if isinstance(account, Cam) else Role.ops).value,
            cam_id=account.id if isinstance(account, Cam) else None,
            operator_id=account.id if isinstance(account, WebOperator) else None,
            email=account.email,
            csrf_token=secrets.token_urlsafe(32),
            expires_at=expires_at,
        )
    )


def set_session_cookie(
    response: Response, request: Request, settings: Settings, cookie: str = SESSION_COOKIE, path: str = PREFIX
) -> tuple[str, datetime]:
    """A new random session token as the HttpOnly, SameSite cookie (Secure behind HTTPS) of
    `path`; returns it and when it expires (the workspace's and the partner portal's sessions)."""
    token = secrets.token_urlsafe(32)
    hours = settings.web_session_hours
    response.set_cookie(
        cookie,
        token,
        max_age=int(hours * 3600),
        path=path,
        httponly=True,
        samesite="lax",
        secure=is_secure(request, settings),
    )
    return token, datetime.now(UTC) + timedelta(hours=hours)


async def end_session(
    session: AsyncSession,
    request: Request,
    response: Response,
    table: Any = WebSession,
    cookie: str = SESSION_COOKIE,
    path: str = PREFIX,
) -> None:
    """End this browser's session (a row of `table`, by its cookie's hash) and drop the cookie."""
    token = request.cookies.get(cookie)
    if token:
        await session.execute(
            update(table)
            .where(table.token_hash == token_hash(token), table.ended_at.is_(None))
            .values(ended_at=datetime.now(UTC))
        )
    response.delete_cookie(cookie, path=path)


async def current_user(request: Request, session: AsyncSession) -> WebUser:
    """The signed-in user of this request (a live, unexpired session), else `SignInRequired`."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 200:
        raise SignInRequired
    row = await session.scalar(
        select(WebSession).where(
            WebSession.token_hash == token_hash(token),
            WebSession.ended_at.is_(None),
            WebSession.expires_at > datetime.now(UTC),
        )
    )
    if row is None:
        raise SignInRequired
    if row.role == Role.cam.value and row.cam_id is not None:
        cam = await session.get(Cam, row.cam_id)
        if cam is None or cam.deactivated_at is not None:
            raise SignInRequired
        principal = Principal(key_id=cam.id, role=Role.cam, cam_id=cam.id, partner_id=None)
        name = cam.name
    else:
        operator = await session.get(WebOperator, row.operator_id) if row.operator_id else None
        if operator is None:
            raise SignInRequired
        principal = Principal(
            key_id=operator.id, role=Role.ops, cam_id=None, partner_id=None, approver_level=operator.approver_level
        )
        name = operator.name
    return WebUser(principal=principal, name=name, email=row.email, csrf_token=row.csrf_token)


def same_token(expected: str | None, sent: object) -> bool:
    if not expected or not isinstance(sent, str):
        return False
    return hmac.compare_digest(expected.encode(), sent.encode())


async def check_csrf(request: Request, expected: str | None) -> None:
    """A form without the token of this session (or of this browser, before sign-in) is refused
    with 403 before anything is done."""
    form = await request.form()
    if not same_token(expected, form.get(CSRF_FIELD)):
        raise HTTPException(
            403, detail="this form was sent without a valid security token (CSRF); reload the page and try again"
        )


async def signed_in(request: Request, session: AsyncSession, *, form: bool = False) -> WebUser:
    """The signed-in user (else SignInRequired); a form must carry the session's CSRF token."""
    user = await current_user(request, session)
    if form:
        await check_csrf(request, user.csrf_token)
    return user


def require_ops(user: WebUser) -> None:
    if not user.is_ops:
        raise HTTPException(403, detail="this page is for channel operations; your account is a CAM")


def pre_sign_in_token(request: Request, cookie: str = PRE_CSRF_COOKIE) -> str:
    """The double-submit token of the sign-in forms: the cookie's value, or a new one."""
    token = request.cookies.get(cookie)
    return token if token and 20 <= len(token) <= 100 else secrets.token_urlsafe(24)


def set_pre_sign_in_cookie(
    response: Response, request: Request, settings: Settings, token: str, cookie: str = PRE_CSRF_COOKIE, path=PREFIX
) -> None:
    response.set_cookie(cookie, token, path=path, httponly=True, samesite="lax", secure=is_secure(request, settings))


class SecurityHeaders:
    """Pure ASGI: the security headers on every answer under /web (pages, redirects, files), and
    under the partner portal's /portal."""

    def __init__(self, app: ASGIApp, prefixes: tuple[str, ...] = (PREFIX,)) -> None:
        self.app = app
        self.prefixes = prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(self.prefixes):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, with_headers)
