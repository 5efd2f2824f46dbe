"""The workspace's action mechanism (api/web/actions.py): what a journey's action handler returns
or refuses becomes a redirect back to its page with a notice; a typed refusal of the domain
(`domain.errors`) reads like an `HTTPException`, and a 202 is "accepted, pending", not an error."""

from __future__ import annotations

import pytest
from fastapi import HTTPException
from starlette.requests import Request

from api.web.actions import ActionContext, ActionDep, Notice, as_endpoint, status_of
from api.web.pages import take_flash
from domain import errors

pytestmark = pytest.mark.unit


def context(about: str = "") -> ActionContext:
    return ActionContext(user=None, session=None, temporal=None, settings=None, back="/web/partners/x", about=about)  # type: ignore[arg-type]


async def notice_of(outcome) -> tuple[str, tuple[str, str] | None]:
    async def handler(ctx: ActionDep) -> str | Notice:
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    response = await as_endpoint(handler)(ctx=context("Globex"))
    assert response.status_code == 303
    cookie = response.headers["set-cookie"].encode()
    return response.headers["location"], take_flash(Request({"type": "http", "headers": [(b"cookie", cookie)]}))


@pytest.mark.parametrize(
    ("outcome", "notice"),
    [
        ("Globex: approved.", ("ok", "Globex: approved.")),
        (Notice("Already decided by Casey (CAM)", "info"), ("info", "Already decided by Casey (CAM)")),
        (HTTPException(404, detail="no deal 1"), ("error", "Globex: no deal 1")),
        (HTTPException(202, detail="accepted, still pending"), ("info", "Globex: accepted, still pending")),
        (errors.Conflict("the deal is approved"), ("error", "Globex: the deal is approved")),
        (errors.Invalid("an override needs a reason"), ("error", "Globex: an override needs a reason")),
    ],
)
async def test_an_outcome_or_a_refusal_is_a_notice_on_the_page(outcome, notice):
    location, flash = await notice_of(outcome)
    assert location == "/web/partners/x" and flash == notice


def test_a_typed_refusal_stands_for_its_status():
    assert [
        status_of(e)
        for e in (
            errors.NotFound("x"),
            errors.Conflict("x"),
            errors.Refused("x"),
            errors.Invalid("x"),
            errors.Gone("x"),
        )
    ] == [404, 409, 403, 422, 410]
    assert status_of(HTTPException(202, "pending")) == 202


def test_an_action_takes_its_context():
    async def handler(decision: str) -> str:
        return decision

    with pytest.raises(TypeError, match="takes `ctx: ActionDep`"):
        as_endpoint(handler)
