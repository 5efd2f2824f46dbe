"""Sign-in to the partner portal by emailed magic link: the workspace's sign-in (api/web/signin.py)
with the portal's accounts (`partner_users`), link salt, cookies and prefix. The same shared
rate limits, single-use links (`web_used_sign_in_links`), no open redirect. A user's first sign-in
completes the onboarding milestone "portal access" (through the onboarding journey's contract)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.service import RPCError

from api import ratelimit
from api.deps import SessionDep, SettingsDep, TemporalDep
from api.links import Token
from api.portal import pages, security
from api.portal.security import PREFIX
from api.schemas import SCREEN_LINE
from api.web import security as web_security
from api.web.signin import USED, Next, address_of, claims_or_page, limiters, refuse, send_link
from core.settings import Settings
from domain.actors import partner as partner_actor
from domain.signin import PORTAL_SALT
from journeys.onboarding import contract as onboarding
from store.models.portal import PartnerUser
from store.models.web import UsedSignInLink

log = logging.getLogger(__name__)
router = APIRouter(prefix=PREFIX, route_class=pages.PortalRoute, include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Only a page of the portal (no open redirect)."""
    if target and target.startswith(f"{PREFIX}/") and not target.startswith("//") and "\\" not in target:
        return pages.back_to(target)
    return f"{PREFIX}/"


def _form_page(request: Request, settings: Settings, name: str, status: int = 200, **context) -> Response:
    token = web_security.pre_sign_in_token(request, security.PRE_CSRF_COOKIE)
    response = pages.page(name, status, csrf=token, **context)
    web_security.set_pre_sign_in_cookie(response, request, settings, token, security.PRE_CSRF_COOKIE, PREFIX)
    return response


async def account_for(session: AsyncSession, email: str) -> PartnerUser | None:
    return await session.scalar(select(PartnerUser).where(PartnerUser.email == email))


@router.get("/sign-in")
async def sign_in_form(request: Request, settings: SettingsDep, next: Next = ""):
    return _form_page(request, settings, "sign_in", next=safe_next(next))


@router.post("/sign-in")
async def request_link(
    request: Request,
    background: BackgroundTasks,
    session: SessionDep,
    settings: SettingsDep,
    email: Annotated[str, Form(max_length=320), SCREEN_LINE] = "",
    next: Annotated[str, Form(max_length=500), SCREEN_LINE] = "",
):
    await web_security.check_csrf(request, request.cookies.get(security.PRE_CSRF_COOKIE))
    back = safe_next(next)
    try:
        address = address_of(settings, email)
    except ValueError as err:
        return _form_page(request, settings, "sign_in", 422, next=back, error=f"email: {err}", email=email)
    wait = await limiters(request).address_blocked(request, address)
    if wait is not None:  # known or not, an address over its limits gets the same answer
        error = f"too many sign-in attempts; try again in {wait} s"
        return _form_page(request, settings, "sign_in", 429, next=back, error=error, email=email)
    if await account_for(session, address) is None:  # the answer stays that of a known address
        await limiters(request).fail(request, address)
    else:
        await limiters(request).sent.fail(ratelimit.engine_of(request), address)
        background.add_task(send_link, settings, address, back, prefix=PREFIX, salt=PORTAL_SALT)
    return _form_page(request, settings, "sign_in_sent", email=address)


@router.get("/sign-in/{token}")
async def confirm_link(token: Token, request: Request, session: SessionDep, settings: SettingsDep, next: Next = ""):
    """Opening the link changes nothing: it shows a button that signs in."""
    claims, failed = await claims_or_page(request, settings, token, PORTAL_SALT)
    if failed is not None:
        return failed
    if await session.get(UsedSignInLink, claims.jti) is not None:
        return await refuse(request, claims.email, 410, USED)
    return _form_page(request, settings, "sign_in_confirm", token=token, email=claims.email, next=safe_next(next))


@router.post("/sign-in/{token}")
async def use_link(
    token: Token,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    next: Annotated[str, Form(max_length=500), SCREEN_LINE] = "",
):
    await web_security.check_csrf(request, request.cookies.get(security.PRE_CSRF_COOKIE))
    claims, failed = await claims_or_page(request, settings, token, PORTAL_SALT)
    if failed is not None:
        return failed
    user = await account_for(session, claims.email)
    if user is None:  # removed since the link was sent
        return await refuse(request, claims.email, 403, "this address may no longer sign in")
    session.add(UsedSignInLink(jti=claims.jti, email=claims.email))
    first = user.first_signed_in_at is None
    if first:
        user.first_signed_in_at = datetime.now(UTC)
    partner_id = user.partner_id
    response = RedirectResponse(safe_next(next), status_code=303)
    await security.start_session(session, response, request, settings, user)
    try:
        await session.commit()
    except IntegrityError:  # used at the same moment in another tab
        await session.rollback()
        return await refuse(request, claims.email, 410, USED)
    response.delete_cookie(security.PRE_CSRF_COOKIE, path=PREFIX)
    if first:
        await portal_access_done(temporal, str(partner_id))
    return response


async def portal_access_done(temporal: Client, partner_id: str) -> None:
    """Tell the partner's onboarding journey its "portal access" milestone is done (a signal: the
    journey records it once; an ended journey has nothing left to do)."""
    workflow_id, signal, done = onboarding.milestone_done(
        partner_id, onboarding.PORTAL_ACCESS, partner_actor(partner_id)
    )
    try:
        await temporal.get_workflow_handle(workflow_id).signal(signal, done)
    except RPCError as err:  # no running onboarding: nothing to complete
        log.info("portal access of partner %s not signalled: %s", partner_id, err)


@router.post("/sign-out")
async def sign_out(request: Request, session: SessionDep):
    user = await security.current_user(request, session)
    await web_security.check_csrf(request, user.csrf_token)
    response = RedirectResponse(f"{PREFIX}/sign-in", status_code=303)
    await security.end_session(session, request, response)
    await session.commit()
    return response
