"""Sign-in to the partner portal by emailed magic link: the workspace's sign-in (api/web/signin.py)
with the portal's accounts (`partner_users`), link salt, cookies and prefix. The same shared
rate limits, single-use links (`web_used_sign_in_links`), no open redirect. A user's first sign-in
completes the onboarding milestone "portal access" (through the onboarding journey's contract)."""

from __future__ import annotations

import functools
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.service import RPCError

from api.deps import SessionDep, SettingsDep, TemporalDep
from api.links import Token
from api.portal import pages, security
from api.portal.security import PREFIX
from api.schemas import SCREEN_LINE
from api.web import pages as web_pages
from api.web import security as web_security
from api.web.signin import Next, ask_for_link, redeem, usable_link
from core.settings import Settings
from domain.actors import partner as partner_actor
from domain.signin import PORTAL_SALT
from journeys.onboarding import contract as onboarding
from store.models.portal import PartnerUser

log = logging.getLogger(__name__)
MAIL = Path(web_pages.HERE) / "templates" / "mail"
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


def sign_in_template(language: str) -> str:
    """The sign-in email in the user's language (`api/web/templates/mail/sign_in.<language>.*`)."""
    localized = f"sign_in.{language}"
    return localized if (MAIL / f"{localized}.subject.j2").is_file() else "sign_in"


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

    async def known(address: str) -> str | None:
        user = await account_for(session, address)
        return None if user is None else sign_in_template(user.language)

    form = functools.partial(_form_page, request, settings)
    return await ask_for_link(
        request, background, settings, email, safe_next(next), known=known, form=form, prefix=PREFIX, salt=PORTAL_SALT
    )


@router.get("/sign-in/{token}")
async def confirm_link(token: Token, request: Request, session: SessionDep, settings: SettingsDep, next: Next = ""):
    """Opening the link changes nothing: it shows a button that signs in."""
    claims, refused = await usable_link(request, session, settings, token, PORTAL_SALT)
    if refused is not None:
        return refused
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
    first: list[str] = []  # the partner whose user signs in for the first time

    async def start(response: Response, user: PartnerUser) -> None:
        if user.first_signed_in_at is None:
            user.first_signed_in_at = datetime.now(UTC)
            first.append(str(user.partner_id))
        await security.start_session(session, response, request, settings, user)

    response = await redeem(
        request,
        session,
        settings,
        token,
        safe_next(next),
        account=lambda e: account_for(session, e),
        start=start,
        salt=PORTAL_SALT,
        pre_cookie=security.PRE_CSRF_COOKIE,
        path=PREFIX,
    )
    if first and response.status_code == 303:
        await portal_access_done(temporal, first[0])
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
