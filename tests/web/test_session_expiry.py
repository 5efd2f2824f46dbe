"""A session ends on the server when its time is up, whatever the browser keeps."""

from __future__ import annotations

import asyncio

import pytest

from tests.helpers.api import create_cam
from tests.web.test_sign_in_limits import form_token, sign_in_over_http


@pytest.fixture
def web_settings() -> dict:
    return {"web_session_hours": 2 / 3600}  # two seconds


async def test_an_expired_session_signs_in_again(live, ops, mailbox):
    cam = await create_cam(live.http, ops, email="casey@vendor.test")
    await sign_in_over_http(live, mailbox, cam["email"], await form_token(live.http))
    assert (await live.http.get("/web/portfolio")).status_code == 200
    cookie = live.http.cookies.get("camlights_session")
    await asyncio.sleep(2.5)
    r = await live.http.get("/web/portfolio", headers={"Cookie": f"camlights_session={cookie}"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/web/sign-in?next=/web/portfolio"
