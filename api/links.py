"""One-click decision links of every kind the journeys declare (`JourneySpec.link_kinds`, a
`core.journey.LinkKind` each): the refusal of a link that cannot be used (with the status and
message to show), reading and checking a token of a kind (its salt, its claims
type, its entity: signature, expiry, single use, the approver still covering the partner),
recording and releasing its use, the failed-attempt limit per client (never refusing a genuine
link), and the HTML pages (`templates/<journey>/link_*`)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from pathlib import Path
from typing import Annotated, TypeVar

import fastapi
from fastapi import Form, Request
from fastapi.responses import HTMLResponse
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader, select_autoescape
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from activities.mail import journey_templates
from api import offboarding, ratelimit
from api.schemas import SCREEN_TEXT, TOKEN, at_most
from core.journey import LinkKind
from domain import actors
from domain.links import Claims, LinkExpired, LinkInvalid, read_token
from store.models import Base, Partner, UsedLink

C = TypeVar("C", bound=Claims)

pages = Environment(
    loader=ChoiceLoader(
        [FileSystemLoader(Path(__file__).resolve().parent / "templates"), PrefixLoader(journey_templates("links"))]
    ),
    autoescape=select_autoescape(default=True),
)


class LinkRefused(Exception):
    """A one-click link that cannot be used: the HTTP status and the message to show."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


async def claims_of(session: AsyncSession, secret: str, token: str, kind: LinkKind[C]) -> C:
    """The link's claims (of its kind's type), if it is genuine (a token of this kind: 403), not
    expired (410), not used yet (410), its CAM not deactivated (403), and, for a CAM's link, still
    the CAM of the partner of its kind's entity row (a deal, an MDF request): once the partner's
    CAM changed (a handover, a coverage change) the old CAM's links are gone (410)."""
    try:
        claims = read_token(secret, token, salt=kind.salt, kind=kind.claims)
    except LinkExpired as err:
        raise LinkRefused(410, str(err)) from err
    except LinkInvalid as err:
        raise LinkRefused(403, str(err)) from err
    if await session.get(UsedLink, claims.jti) is not None:
        raise LinkRefused(410, "this link was already used")
    if await offboarding.deactivated_cam(session, claims.approver):
        raise LinkRefused(403, "this link's CAM was deactivated: its decisions are taken by another approver")
    if await replaced_cam(session, claims.approver, kind.entity, claims.entity_id):
        raise LinkRefused(
            410,
            "this link's CAM no longer covers the partner (it was handed over to another CAM): "
            "the current CAM decides, with the links sent to them",
        )
    return claims


async def use(session: AsyncSession, claims: Claims) -> None:
    """Record the link as used and commit (a concurrent second use is refused: 410), then let the
    connection go (no connection is held while the journey answers)."""
    session.add(UsedLink(jti=claims.jti, deal_id=uuid.UUID(claims.entity_id), used_by=claims.approver))
    try:
        await session.commit()
    except IntegrityError as err:
        await session.rollback()
        raise LinkRefused(410, "this link was already used") from err
    await session.close()


async def release(session: AsyncSession, claims: Claims) -> None:
    """The journey did not take the decision: the link may be used again."""
    async with session.begin():
        await session.execute(delete(UsedLink).where(UsedLink.jti == claims.jti))


async def replaced_cam(session: AsyncSession, actor: str, entity: type[Base], entity_id: str) -> bool:
    """Whether `actor` is a CAM that is not (any more) the CAM of the partner of `entity_id`: a
    coverage change takes the old CAM's links away at once, whether or not its journeys heard of it."""
    if actors.kind_of(actor) != actors.ActorKind.cam:
        return False
    try:
        row_id = uuid.UUID(entity_id)
    except ValueError:
        return True
    row = (
        await session.execute(
            select(Partner.cam_id).join(entity, entity.partner_id == Partner.id).where(entity.id == row_id)  # type: ignore[attr-defined]
        )
    ).first()
    if row is None:  # no such entity: its page says so
        return False
    return row.cam_id is None or str(row.cam_id) != actors.parse(actor)[1]


# What a link's pages take from outside: the token in the path and the reason typed on the page
# (screened as every text is: a NUL is refused before the link is used).
Token = Annotated[str, fastapi.Path(pattern=TOKEN, description="the link's token")]
LinkReason = Annotated[str, Form(max_length=1000), SCREEN_TEXT, at_most(1000)]


def page(journey: str, name: str, status: int = 200, **context) -> HTMLResponse:
    return HTMLResponse(pages.get_template(f"{journey}/{name}.html.j2").render(**context), status_code=status)


async def applied(request: Request, journey: str, apply: Awaitable[object]) -> HTMLResponse:
    """The page after a confirmed link: its journey's `link_done`, or the refusal's page (every
    journey's POST of its one-click link ends here)."""
    try:
        result = await apply
    except LinkRefused as err:
        return await error_page(request, journey, err)
    return page(journey, "link_done", result=result)


async def error_page(request: Request, journey: str, err: LinkRefused) -> HTMLResponse:
    """The refusal as a page; a forged, unknown or reused link counts as a failed attempt, and
    past the client's limit the page says when to try again (429)."""
    if err.status in (403, 404, 410):
        limiter: ratelimit.FailureLimiter = request.app.state.link_limiter
        wait = await limiter.fail(ratelimit.engine_of(request), ratelimit.client_of(request))
        if wait is not None:
            message = f"too many failed link attempts from this client; try again in {wait} s"
            response = page(journey, "link_error", 429, message=message)
            response.headers["Retry-After"] = str(wait)
            return response
    return page(journey, "link_error", err.status, message=err.message)
