"""What journeys contribute to the partner portal, as they do to the CAM workspace
(api/web/items.py, api/web/actions.py): a journey's portal module (`journeys/<name>/portal.py`,
named by its manifest's `portal`) registers

- `@portal_item("<kind>")`: the things that need the signed-in partner now, each with its
  deadline (the home page lists them all, most urgent first);
- `@portal_section("<key>")`: a block of the home page (its template `<journey>/<name>.html.j2`
  from `journeys/<journey>/templates/portal/`);
- `@portal_action(journey, name, path)`: a form POST under /portal (CSRF checked, the user
  signed in); the handler returns the notice shown back on the page, a refusal it raises
  (`HTTPException`, `domain.errors.DomainError`) an error notice;
- `@portal_view(journey, path)`: a page under /portal.

Every provider gets the partner of the signed-in user and nothing else: a partner user sees and
acts on its own partner only (another partner's ids answer 404, `own`)."""

from __future__ import annotations

import functools
import inspect
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api.auth import Principal
from api.deps import SessionDep, SettingsDep, TemporalDep
from api.portal.i18n import Translator
from api.portal.pages import PortalRoute, back_to, redirect
from api.portal.security import PREFIX, PortalUser, signed_in
from api.routemeta import route_meta
from api.schemas import SCREEN_LINE
from api.web.actions import Refusal, detail_of, status_of
from core.settings import Settings
from domain.policy import ProgramPolicy
from store.models import Partner

router = APIRouter(prefix=PREFIX, route_class=PortalRoute, include_in_schema=False)


@dataclass(frozen=True)
class PortalContext:
    session: AsyncSession
    user: PortalUser
    policy: ProgramPolicy
    now: datetime
    t: Translator

    @property
    def partner_id(self) -> uuid.UUID:
        return self.user.partner_id


@dataclass(frozen=True)
class PortalItem:
    kind: str
    label: str  # what kind of thing, in the user's words: "Onboarding step"
    title: str
    detail: str
    deadline: datetime | None
    deadline_label: str  # "due", "protection ends", "expires"
    link: str = ""  # the page of the task (under /portal)
    action: str | None = None  # an inline form: `<journey>/<action>.html.j2`
    entity_id: str = ""
    extra: dict[str, str] = field(default_factory=dict)


ItemProvider = Callable[[PortalContext], Awaitable[list[PortalItem]]]
ITEMS: dict[str, ItemProvider] = {}


def portal_item(kind: str) -> Callable[[ItemProvider], ItemProvider]:
    def register(fn: ItemProvider) -> ItemProvider:
        ITEMS[kind] = fn
        return fn

    return register


@dataclass(frozen=True)
class PortalSection:
    title: str
    template: str
    context: dict[str, Any]
    order: int


SectionProvider = Callable[[PortalContext], Awaitable[PortalSection | None]]
SECTIONS: dict[str, SectionProvider] = {}


def portal_section(key: str) -> Callable[[SectionProvider], SectionProvider]:
    def register(fn: SectionProvider) -> SectionProvider:
        SECTIONS[key] = fn
        return fn

    return register


def own(row: Any, user: PortalUser, what: str) -> Any:
    """The row if it is the user's partner's; else 404, as if it did not exist."""
    if row is None or getattr(row, "partner_id", None) != user.partner_id:
        raise HTTPException(404, detail=f"no {what} of yours with this id")
    return row


# ------------------------------------------------------------------ actions and pages

Back = Annotated[str, Form(max_length=500), SCREEN_LINE]


@dataclass
class PortalActionContext:
    user: PortalUser
    session: AsyncSession
    temporal: Client
    settings: Settings
    back: str
    t: Translator

    @property
    def principal(self) -> Principal:
        return self.user.principal

    @property
    def deadline(self) -> float:
        return self.settings.update_deadline_seconds

    async def partner(self) -> Partner:
        """The signed-in user's partner (it exists: its users go with it)."""
        partner = await self.session.get(Partner, self.user.partner_id)
        if partner is None:
            raise HTTPException(404, detail="no such partner")
        return partner


async def action_context(
    request: Request, session: SessionDep, temporal: TemporalDep, settings: SettingsDep, back: Back = f"{PREFIX}/"
) -> PortalActionContext:
    user = await signed_in(request, session, form=True)
    return PortalActionContext(
        user, session, temporal, settings, back_to(back), Translator(user.language, user.time_zone)
    )


PortalActionDep = Annotated[PortalActionContext, Depends(action_context)]
Handler = Callable[..., Awaitable[str | tuple[str, str]]]
ACTIONS: dict[tuple[str, str], str] = {}  # (journey, name) -> path


def _as_endpoint(fn: Handler) -> Callable[..., Awaitable[RedirectResponse]]:
    @functools.wraps(fn)
    async def endpoint(**kwargs: Any) -> RedirectResponse:
        ctx: PortalActionContext = kwargs["ctx"]
        try:
            outcome = await fn(**kwargs)
        except Refusal as err:
            if status_of(err) == 404:  # another partner's id: the page says so, nothing else
                raise HTTPException(404, detail=detail_of(err)) from err
            return redirect(ctx.back, detail_of(err), "info" if status_of(err) == 202 else "error")
        text, level = (outcome, "ok") if isinstance(outcome, str) else outcome
        return redirect(ctx.back, text, level)

    endpoint.__signature__ = inspect.signature(fn, eval_str=True).replace(  # type: ignore[attr-defined]
        return_annotation=RedirectResponse
    )
    return endpoint


def portal_action(journey: str, name: str, path: str, *, upload: bool = False) -> Callable[[Handler], Handler]:
    """A form POST at `/portal<path>`: the handler takes `ctx: PortalActionDep` and the form's fields
    and returns its notice (or `(notice, level)`). `upload`: a form with files (multipart), whose
    body may be as large as the API's uploads (api/limits.py); the handler checks the files."""

    def register(fn: Handler) -> Handler:
        extra = route_meta(upload=True) if upload else None
        router.post(path, name=f"portal.{journey}.{name}", openapi_extra=extra)(_as_endpoint(fn))
        ACTIONS[(journey, name)] = f"{PREFIX}{path}"
        return fn

    return register


View = Callable[..., Awaitable[Any]]


def portal_view(journey: str, path: str) -> Callable[[View], View]:
    """A page at `/portal<path>` (GET): the handler signs the user in and answers with `pages.render`."""

    def register(fn: View) -> View:
        router.get(path, name=f"portal.{journey}.{fn.__name__}")(fn)
        return fn

    return register
