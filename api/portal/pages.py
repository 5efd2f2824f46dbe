"""Rendering of the partner portal's pages: Jinja2 (autoescaped) with the i18n extension, every
page in the signed-in user's language and formats (api/portal/i18n.py), and the workspace's
post/redirect/get notices and error pages (api/web/pages.py) under /portal."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader, select_autoescape
from pydantic import ValidationError

from activities.mail import journey_templates
from api.portal.i18n import Translator, languages
from api.portal.security import PREFIX, PortalUser
from api.web import pages as web_pages
from api.web.items import urgency
from api.web.security import CSRF_FIELD

HERE = Path(__file__).resolve().parent
env = Environment(
    loader=ChoiceLoader([FileSystemLoader(HERE / "templates"), PrefixLoader(journey_templates("portal"))]),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
    extensions=["jinja2.ext.i18n"],
)
env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]  # each page is rendered with its user's `gettext` (Translator)
env.globals.update(urgency=urgency, CSRF_FIELD=CSRF_FIELD, PREFIX=PREFIX, LANGUAGES=languages)


def page(name: str, status: int = 200, t: Translator | None = None, **context: Any) -> HTMLResponse:
    t = t or Translator()
    context = {"user": None, "csrf": "", "flash": None, **t.context(), **context}
    return HTMLResponse(env.get_template(f"{name}.html.j2").render(**context), status_code=status)


def translator(user: PortalUser) -> Translator:
    return Translator(user.language, user.time_zone)


def render(request: Request, name: str, user: PortalUser, status: int = 200, **context: Any) -> Response:
    """A page for the signed-in partner user, with the notice the last redirect carried."""
    flash = web_pages.take_flash(request)
    response = page(name, status, translator(user), user=user, csrf=user.csrf_token, flash=flash, **context)
    if request.cookies.get(web_pages.FLASH_COOKIE):
        response.delete_cookie(web_pages.FLASH_COOKIE, path=PREFIX)
    return response


def redirect(target: str, notice: str | None = None, level: str = "ok") -> RedirectResponse:
    return web_pages.redirect(target, notice, level, path=PREFIX)


def back_to(target: str) -> str:
    """Where a form goes back to: a portal page, else home (never another site)."""
    return target if re.fullmatch(r"/portal/[A-Za-z0-9/_\-.?=&%]*", target or "") else f"{PREFIX}/"


def error_text(err: ValidationError) -> str:
    """A form's refusal in words: each field and what was wrong with it."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {e['msg']}" for e in err.errors())


def error_page(status: int, message: str) -> HTMLResponse:
    return page("error", status, message=message, code=status)


class PortalRoute(web_pages.WebRoute):
    prefix = PREFIX

    def error(self, status: int, message: str) -> Response:
        return error_page(status, message)
