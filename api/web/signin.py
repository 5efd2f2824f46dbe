"""Sign-in by emailed magic link (CAMs by their `cams.email`, operators by `web_operators`, and
the program's `OPS_EMAIL`). A link is signed like the decision links, short-lived and single-use;
opening it changes nothing (mail scanners open links), confirming it starts a session. Failed
attempts (unknown addresses, forged, expired or used links) are rate-limited per client and
per address (shared by every API process); a genuine link is never refused by its client's
count; the answer to a request never tells whether an address is known."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, BackgroundTasks, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from activities.mail import message_id
from api import offboarding, ratelimit
from api.deps import SessionDep, SettingsDep
from api.links import Token
from api.schemas import SCREEN_LINE
from api.web import security
from api.web.pages import HERE, WebRoute, error_page, page
from core import registry
from core.settings import Settings
from domain.actors import SYSTEM
from domain.enums import Role
from domain.links import LinkError, LinkExpired
from domain.signin import SALT, make_sign_in_token, new_claims, read_sign_in_token
from domain.types import normalize_email
from store import repo
from store.models import Cam
from store.models.web import UsedSignInLink, WebOperator

log = logging.getLogger(__name__)
router = APIRouter(prefix=security.PREFIX, route_class=WebRoute, include_in_schema=False)
mail_env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=False),
    undefined=StrictUndefined,
)

Next = Annotated[str, Query(max_length=500), SCREEN_LINE]  # where to go after signing in (checked: `safe_next`)


class Limiters:
    """Failed sign-in attempts per client and per address, and links sent per address (shared by
    every API process, like the API's limiter): a flood of requests neither guesses links nor
    floods a mailbox. Only failures are limited per client: a genuine link or a known address is
    answered normally whatever its client's count (behind an ingress, every client may share one)."""

    def __init__(self, per_minute: int):
        self.client = ratelimit.FailureLimiter("signin-client", per_minute)
        self.address = ratelimit.FailureLimiter("signin-address", max(3, per_minute // 4))
        self.sent = ratelimit.FailureLimiter("signin-sent", max(3, per_minute // 4))

    async def address_blocked(self, request: Request, email: str) -> int | None:
        """Seconds to wait when this address failed, or was sent links, too often lately (one read)."""
        return await ratelimit.blocked(ratelimit.engine_of(request), [(self.address, email), (self.sent, email)])

    async def fail(self, request: Request, email: str | None) -> int | None:
        """Count a failure of this client (and address); seconds to wait when over a limit."""
        engine = ratelimit.engine_of(request)
        waits = [await self.client.fail(engine, ratelimit.client_of(request))]
        if email:
            waits.append(await self.address.fail(engine, email))
        return max((w for w in waits if w is not None), default=None)


USED = "this sign-in link was already used. Ask for a new link on the sign-in page."


def limiters(request: Request) -> Limiters:
    return request.app.state.web_sign_in_limiters


def safe_next(target: str | None) -> str:
    """Only a page of the workspace (no open redirect)."""
    if target and target.startswith(f"{security.PREFIX}/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"{security.PREFIX}/"


async def account_for(session: AsyncSession, settings: Settings, email: str) -> Cam | WebOperator | None:
    cam = await session.scalar(select(Cam).where(Cam.email == email))
    if cam is not None:
        return cam if cam.deactivated_at is None else None  # a deactivated CAM signs in no more
    operator = await session.scalar(select(WebOperator).where(WebOperator.email == email))
    if operator is None and email == settings.ops_email.lower():  # the program's ops mailbox
        operator = WebOperator(email=email, name="Channel operations", created_by=SYSTEM)
        session.add(operator)
        try:
            await session.flush()
        except IntegrityError:  # signed in at the same moment elsewhere
            await session.rollback()
            operator = await session.scalar(select(WebOperator).where(WebOperator.email == email))
    return operator


def address_of(settings: Settings, typed: str) -> str:
    """The address as the mailer uses it; the program's OPS_EMAIL as configured (the embedded
    default, `channel-ops@camlights.local`, is a special-use domain email-validator refuses)."""
    if typed.strip().lower() == settings.ops_email.strip().lower():
        return settings.ops_email.strip().lower()
    return normalize_email(typed.strip())


def _form_page(request: Request, settings: Settings, name: str, status: int = 200, **context) -> Response:
    token = security.pre_sign_in_token(request)
    response = page(name, status, csrf=token, user=None, **context)
    security.set_pre_sign_in_cookie(response, request, settings, token)
    return response


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
    await security.check_csrf(request, request.cookies.get(security.PRE_CSRF_COOKIE))

    async def known(address: str) -> str | None:
        account = await account_for(session, settings, address)
        await session.commit()  # the ops mailbox's operator, made at its first request
        return None if account is None else "sign_in"

    form = functools.partial(_form_page, request, settings)
    return await ask_for_link(request, background, settings, email, safe_next(next), known=known, form=form)


async def ask_for_link(
    request: Request,
    background: BackgroundTasks,
    settings: Settings,
    email: str,
    target: str,
    *,
    known: Callable[[str], Awaitable[str | None]],
    form: Callable[..., Response],
    prefix: str = security.PREFIX,
    salt: str = SALT,
) -> Response:
    """Answer a request for a link: `known(address)` names the email's template (its language)
    when the address may sign in, else None (the answer does not tell: it is the same); limited
    per address and, for unknown ones, per client; `form(name, status, **context)` renders the
    sign-in pages (of the workspace or the partner portal)."""
    try:
        address = address_of(settings, email)
    except ValueError as err:
        return form("sign_in", 422, next=target, error=f"email: {err}", email=email)
    wait = await limiters(request).address_blocked(request, address)
    if wait is not None:  # known or not, an address over its limits gets the same answer
        return form("sign_in", 429, next=target, error=f"too many sign-in attempts; try again in {wait} s", email=email)
    template = await known(address)
    if template is None:  # a failure, but the answer stays that of a known address (it tells nothing)
        await limiters(request).fail(request, address)
    else:
        # each link sent counts for the address: no mail flood
        await limiters(request).sent.fail(ratelimit.engine_of(request), address)
        # Sent after the answer, so that a known address is not told apart by the time it takes.
        background.add_task(send_link, settings, address, target, prefix=prefix, salt=salt, template=template)
    return form("sign_in_sent", email=address)


async def send_link(
    settings: Settings,
    email: str,
    next_page: str,
    *,
    prefix: str = security.PREFIX,
    salt: str = SALT,
    template: str = "sign_in",
) -> None:
    """Email the sign-in link (of the workspace, or of the portal: its prefix, salt and the
    template of the user's language, `mail/sign_in.<language>`)."""
    try:
        await _send_link(settings, email, next_page, prefix, salt, template)
    except Exception:  # the user asks again; the log says why it failed
        log.exception("the sign-in link to %s could not be sent", email)


async def _send_link(settings: Settings, email: str, next_page: str, prefix: str, salt: str, template: str) -> None:
    claims = new_claims(email, timedelta(minutes=settings.web_link_minutes))
    token = make_sign_in_token(settings.link_secret, claims, salt)
    base = settings.public_base_url.rstrip("/")
    mailer = registry.make_mailer(settings)
    mailer.env = mail_env  # the workspace's own templates
    rendered = mailer.render(
        "mail",
        template,
        {
            "link": f"{base}{prefix}/sign-in/{token}?next={quote(next_page)}",
            "minutes": f"{settings.web_link_minutes:g}",
            "expires_at": f"{claims.expires_at:%Y-%m-%d %H:%M} UTC",
        },
    )
    msg = mailer.build(
        recipient=email,
        rendered=rendered,
        msg_id=message_id(claims.jti, email, "sign_in"),
        headers={"X-CAMLights-Template": "sign_in"},
    )
    await mailer.send(msg)


async def refuse(request: Request, email: str | None, status: int, message: str) -> Response:
    """A failed attempt: its page, or past the client's (or address's) limit, 429 with Retry-After."""
    wait = await limiters(request).fail(request, email)
    if wait is None:
        return error_page(status, message)
    response = error_page(429, f"too many failed sign-in attempts; try again in {wait} s")
    response.headers["Retry-After"] = str(wait)
    return response


async def claims_or_page(request: Request, settings: Settings, token: str, salt: str = SALT):
    try:
        return read_sign_in_token(settings.link_secret, token, salt=salt), None
    except LinkError as err:
        status = 410 if isinstance(err, LinkExpired) else 403
        return None, await refuse(request, None, status, f"{err}. Ask for a new link on the sign-in page.")


async def usable_link(request: Request, session: AsyncSession, settings: Settings, token: str, salt: str = SALT):
    """The link's claims if it is genuine, unexpired and unused; else (None, the refusal's page)."""
    claims, refused = await claims_or_page(request, settings, token, salt)
    if refused is not None:
        return None, refused
    if await session.get(UsedSignInLink, claims.jti) is not None:
        return None, await refuse(request, claims.email, 410, USED)
    return claims, None


async def redeem(
    request: Request,
    session: AsyncSession,
    settings: Settings,
    token: str,
    target: str,
    *,
    account: Callable[[str], Awaitable[Any]],
    start: Callable[[Response, Any], Awaitable[None]],
    salt: str = SALT,
    pre_cookie: str = security.PRE_CSRF_COOKIE,
    path: str = security.PREFIX,
) -> Response:
    """Sign in with the link (once): `account(email)` is who may sign in (None: no longer),
    `start(response, account)` adds their session; committed with the link marked used."""
    claims, refused = await claims_or_page(request, settings, token, salt)
    if refused is not None:
        return refused
    who = await account(claims.email)
    if who is None:  # removed since the link was sent
        return await refuse(request, claims.email, 403, "this address may no longer sign in")
    session.add(UsedSignInLink(jti=claims.jti, email=claims.email))
    response = RedirectResponse(target, status_code=303)
    await start(response, who)
    try:
        await session.commit()
    except IntegrityError:  # used at the same moment in another tab
        await session.rollback()
        return await refuse(request, claims.email, 410, USED)
    response.delete_cookie(pre_cookie, path=path)
    return response


@router.get("/sign-in/{token}")
async def confirm_link(token: Token, request: Request, session: SessionDep, settings: SettingsDep, next: Next = ""):
    """Opening the link changes nothing: it shows a button that signs in."""
    claims, refused = await usable_link(request, session, settings, token)
    if refused is not None:
        return refused
    return _form_page(request, settings, "sign_in_confirm", token=token, email=claims.email, next=safe_next(next))


@router.post("/sign-in/{token}")
async def use_link(
    token: Token,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    next: Annotated[str, Form(max_length=500), SCREEN_LINE] = "",
):
    await security.check_csrf(request, request.cookies.get(security.PRE_CSRF_COOKIE))

    async def start(response: Response, account: Cam | WebOperator) -> None:
        await security.start_session(session, response, request, settings, account=account)

    return await redeem(
        request,
        session,
        settings,
        token,
        safe_next(next),
        account=lambda e: account_for(session, settings, e),
        start=start,
    )


@router.post("/sign-out")
async def sign_out(request: Request, session: SessionDep):
    user = await security.current_user(request, session)
    await security.check_csrf(request, user.csrf_token)
    response = RedirectResponse(f"{security.PREFIX}/sign-in", status_code=303)
    await security.end_session(session, request, response)
    await session.commit()
    return response


@router.post("/sign-out-everywhere")
async def sign_out_everywhere(request: Request, session: SessionDep):
    """End every session of this account (every browser), at once and audited."""
    user = await security.current_user(request, session)
    await security.check_csrf(request, user.csrf_token)
    response = RedirectResponse(f"{security.PREFIX}/sign-in", status_code=303)
    who = user.principal
    ended = await offboarding.end_sessions(
        session, **({"cam_id": who.cam_id} if who.role == Role.cam else {"operator_id": who.key_id})
    )
    await repo.claim_step(
        session, key=None, actor=who.actor, action="web.signed_out_everywhere", detail={"sessions_ended": ended}
    )
    response.delete_cookie(security.SESSION_COOKIE, path=security.PREFIX)
    await session.commit()
    return response
