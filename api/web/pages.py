"""Rendering of the workspace's pages (Jinja2, autoescaped) and the route class that turns every
refusal of a page into an HTML page saying what was wrong (or a redirect to sign in)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException

from api.errors import status_of
from api.web import policy_form, today
from api.web.security import CSRF_FIELD, PREFIX, SignInRequired
from domain.errors import DomainError

HERE = Path(__file__).resolve().parent
env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _utc(value: datetime | None) -> str:
    return "" if value is None else f"{value:%Y-%m-%d %H:%M} UTC"


env.filters["utc"] = _utc
env.filters["iso"] = lambda v: "" if v is None else v.isoformat()
env.globals.update(
    grouped=policy_form.grouped, relative=today.relative, urgency=today.urgency, CSRF_FIELD=CSRF_FIELD, PREFIX=PREFIX
)


def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    context = {"user": None, "csrf": "", "flash": None, **context}
    return HTMLResponse(env.get_template(f"{name}.html.j2").render(**context), status_code=status)


def error_page(status: int, message: str, user: Any = None) -> HTMLResponse:
    return page("error", status, message=message, code=status, user=user)


class WebRoute(APIRoute):
    """A page never answers with JSON: a refusal is an HTML page with its status and message,
    a missing session a redirect to the sign-in page (back here afterwards)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                back = request.url.path if request.method == "GET" else f"{PREFIX}/"
                return RedirectResponse(f"{PREFIX}/sign-in?next={quote(back)}", status_code=303)
            except HTTPException as err:
                return error_page(err.status_code, str(err.detail))
            except DomainError as err:
                return error_page(status_of(err), err.detail)
            except RequestValidationError as err:
                fields = "; ".join(
                    f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'form'}: {e.get('msg')}" for e in err.errors()
                )
                return error_page(422, f"the request was not valid: {fields}")

        return handle
