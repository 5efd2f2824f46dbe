"""The journeys' own routes in the workspace: the inline actions of their Today items and Partner
page sections (form POSTs), and their pages. A journey registers them in `journeys/<name>/web.py`:

    @action("deal", "deal_decision", "/deals/{deal_id}/decision")
    async def decide(deal_id: uuid.UUID, ctx: ActionDep, decision: Annotated[Decision, Form()]) -> str:
        ctx.about = "..."  # what the action is about, in words: prefixes a refusal
        ...
        return "approved."  # the notice shown back on the page (or a `Notice` with its level)

`ActionDep` signs the user in (the form's CSRF token checked before anything runs) and gives the
database session, Temporal, the update deadline and the page to go back to (the form's `back`).
The action answers with a redirect to that page and a notice (post/redirect/get); a refusal the
handler raises, `HTTPException` or `domain.errors.DomainError`, becomes an error notice (a 202,
"accepted, still pending", an info notice): the page, never an error page. Its form is the
journey's `templates/web/<name>.html.j2`, shown by the `action` macro (`_macros.html.j2`) in a
Today item whose `action` is `<name>` or in a section. `@view` adds a page of the journey."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException
from temporalio.client import Client

from api import errors as api_errors
from api.auth import Principal
from api.deps import SessionDep, SettingsDep, TemporalDep
from api.schemas import SCREEN_LINE, SCREEN_TEXT, at_most
from api.web.pages import WebRoute, back_to, env, redirect
from api.web.security import PREFIX, WebUser, signed_in
from core.settings import Settings
from domain import errors

router = APIRouter(prefix=PREFIX, route_class=WebRoute, include_in_schema=False)

Back = Annotated[str, Form(max_length=500), SCREEN_LINE]
Reason = Annotated[str, Form(max_length=1000), SCREEN_TEXT, at_most(1000)]

Refusal = (HTTPException, errors.DomainError)
status_of = api_errors.status_of  # one mapping of refusals to statuses, the JSON API's (api/errors.py)


def detail_of(err: HTTPException | errors.DomainError) -> str:
    return str(err.detail)


@dataclass
class ActionContext:
    user: WebUser
    session: AsyncSession
    temporal: Client
    settings: Settings
    back: str  # the page to go back to (a workspace page; else Today)
    about: str = ""  # what the action is about, in words (a deal's customer): prefixes a refusal

    @property
    def principal(self) -> Principal:
        return self.user.principal

    @property
    def deadline(self) -> float:
        """How long a workflow update may take before the answer is "accepted, pending"."""
        return self.settings.update_deadline_seconds


async def action_context(
    request: Request, session: SessionDep, temporal: TemporalDep, settings: SettingsDep, back: Back = "/web/"
) -> ActionContext:
    user = await signed_in(request, session, form=True)
    return ActionContext(user, session, temporal, settings, back_to(back))


ActionDep = Annotated[ActionContext, Depends(action_context)]


@dataclass(frozen=True)
class Notice:
    text: str
    level: str = "ok"  # "ok", "info" (nothing wrong, e.g. already decided) or "error"


Handler = Callable[..., Awaitable[str | Notice]]


@dataclass(frozen=True)
class Action:
    journey: str
    name: str  # its form: templates/actions/<name>.html.j2
    path: str  # where the form posts to
    handler: Handler


ACTIONS: dict[tuple[str, str], Action] = {}
VIEWS: dict[str, str] = {}  # path -> the journey whose page it is


def action_form(name: str) -> str:
    """The form of the action `name`: its journey's `templates/web/<name>.html.j2`."""
    journey = next((j for j, n in ACTIONS if n == name), None)
    if journey is None:
        raise LookupError(f"no journey registers the action {name!r}")
    return f"{journey}/{name}.html.j2"


env.globals["action_form"] = action_form


def as_endpoint(fn: Handler) -> Callable[..., Awaitable[RedirectResponse]]:
    """The handler as a route: its outcome, or the refusal it raised, as a redirect with a notice."""

    @functools.wraps(fn)
    async def endpoint(**kwargs: Any) -> RedirectResponse:
        ctx: ActionContext = kwargs["ctx"]
        try:
            outcome = await fn(**kwargs)
        except Refusal as err:
            status, detail = status_of(err), detail_of(err)
            text = f"{ctx.about}: {detail}" if ctx.about else detail
            return redirect(ctx.back, text, "info" if status == 202 else "error")
        notice = outcome if isinstance(outcome, Notice) else Notice(outcome)
        return redirect(ctx.back, notice.text, notice.level)

    signature = inspect.signature(fn, eval_str=True)
    if "ctx" not in signature.parameters:
        raise TypeError(f"{fn.__qualname__}: an action's handler takes `ctx: ActionDep`")
    endpoint.__signature__ = signature.replace(return_annotation=RedirectResponse)  # type: ignore[attr-defined]
    return endpoint


def action(journey: str, name: str, path: str) -> Callable[[Handler], Handler]:
    """Register the journey's inline action `name` as a form POST at `/web<path>` (see above);
    the handler takes `ctx: ActionDep` and the form's fields."""

    def register(fn: Handler) -> Handler:
        router.post(path, name=f"{journey}.{name}")(as_endpoint(fn))
        ACTIONS[(journey, name)] = Action(journey, name, f"{PREFIX}{path}", fn)
        return fn

    return register


View = Callable[..., Awaitable[Any]]


def view(journey: str, path: str) -> Callable[[View], View]:
    """Register a page of the journey at `/web<path>` (GET): the handler signs the user in
    (`security.signed_in`) and answers with `pages.render` (or a redirect)."""

    def register(fn: View) -> View:
        router.get(path, name=f"{journey}.{fn.__name__}")(fn)
        VIEWS[f"{PREFIX}{path}"] = journey
        return fn

    return register
