"""Rendering of the workspace's pages (Jinja2, autoescaped), the notice a form's redirect carries
(post/redirect/get), and the route class that turns every refusal of a page into an HTML page
saying what was wrong (or a redirect to sign in)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader, select_autoescape
from starlette.exceptions import HTTPException

from activities.mail import journey_templates
from api.errors import status_of
from api.web import policy_form
from api.web.items import relative, urgency
from api.web.security import CSRF_FIELD, PREFIX, SignInRequired, WebUser
from core.settings import Settings
from domain.errors import DomainError

HERE = Path(__file__).resolve().parent
# The shell's templates, and each journey's own (its sections, action forms and pages), named
# `<journey>/<template>` from `journeys/<journey>/templates/web/`.
env = Environment(
    loader=ChoiceLoader([FileSystemLoader(HERE / "templates"), PrefixLoader(journey_templates("web"))]),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _utc(value: datetime | None) -> str:
    return "" if value is None else f"{value:%Y-%m-%d %H:%M} UTC"


env.filters["utc"] = _utc
env.filters["iso"] = lambda v: "" if v is None else v.isoformat()
env.globals.update(
    grouped=policy_form.grouped, relative=relative, urgency=urgency, CSRF_FIELD=CSRF_FIELD, PREFIX=PREFIX
)


def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    context = {"user": None, "csrf": "", "flash": None, **context}
    return HTMLResponse(env.get_template(f"{name}.html.j2").render(**context), status_code=status)


FLASH_COOKIE = "camlights_flash"


def redirect(target: str, notice: str | None = None, level: str = "ok", path: str = PREFIX) -> RedirectResponse:
    """Back to a page (303), carrying a notice ("ok", "info" or "error") shown there once."""
    response = RedirectResponse(target, status_code=303)
    if notice:
        value = base64.urlsafe_b64encode(json.dumps([level, notice[:500]]).encode()).decode()
        response.set_cookie(FLASH_COOKIE, value, path=path, httponly=True, samesite="lax", max_age=60)
    return response


def take_flash(request: Request) -> tuple[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        level, text = json.loads(base64.urlsafe_b64decode(raw.encode()))
        return str(level), str(text)
    except (ValueError, TypeError):  # not ours: no notice
        return None


def render(request: Request, name: str, user: WebUser, status: int = 200, **context: Any) -> Response:
    """A page for the signed-in user, with the notice the last redirect carried."""
    response = page(name, status, user=user, csrf=user.csrf_token, flash=take_flash(request), **context)
    if request.cookies.get(FLASH_COOKIE):
        response.delete_cookie(FLASH_COOKIE, path=PREFIX)
    return response


def back_to(target: str) -> str:
    """Where a form goes back to: a workspace page, else Today (never another site)."""
    return target if re.fullmatch(r"/web/[A-Za-z0-9/_\-.?=&%]*", target or "") else f"{PREFIX}/"


def temporal_ui(settings: Settings, workflow_id: str) -> str:
    base = (settings.temporal_ui_url or f"http://127.0.0.1:{settings.temporal_ui_port}").rstrip("/")
    return f"{base}/namespaces/{settings.temporal_namespace}/workflows/{workflow_id}"


def error_page(status: int, message: str, user: Any = None) -> HTMLResponse:
    return page("error", status, message=message, code=status, user=user)


class WebRoute(APIRoute):
    """A page never answers with JSON: a refusal is an HTML page with its status and message,
    a missing session a redirect to the sign-in page (back here afterwards). The partner portal's
    routes are the same with their own prefix and error page."""

    prefix = PREFIX

    def error(self, status: int, message: str) -> Response:
        return error_page(status, message)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        prefix = self.prefix

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                back = request.url.path if request.method == "GET" else f"{prefix}/"
                return RedirectResponse(f"{prefix}/sign-in?next={quote(back)}", status_code=303)
            except HTTPException as err:
                return self.error(err.status_code, str(err.detail))
            except DomainError as err:
                return self.error(status_of(err), err.detail)
            except RequestValidationError as err:
                fields = "; ".join(
                    f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'form'}: {e.get('msg')}" for e in err.errors()
                )
                return self.error(422, f"the request was not valid: {fields}")

        return handle
