"""No form of the workspace, of the partner portal or of a one-click link page answers a 500,
whatever its fields hold: a property test posts generated values (text, numbers written every way,
control characters, absurd amounts, other choices than the form offers) to every form route of the
app, signed in with a valid session and its CSRF token (an ops operator in the workspace, the
partner's admin in the portal), and to real rows half the time. An "approve lower" amount of 1e30
was a 500 (`decimal.InvalidOperation` while quantizing it), and so was "NaN" as the portal's MDF
amount.

The routes are found by walking the app (every POST under /web and /portal and every link page),
so a new form is covered without being listed here. Runs in-process (httpx over ASGI): no browser."""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
import typing
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from starlette.requests import Request

from api.app import create_app
from api.web.pages import take_flash
from core.settings import Settings
from domain.enums import Role
from journeys.qbr.models import Qbr
from store.models.portal import PartnerUser, PortalSession
from store.models.web import WebOperator, WebSession
from tests.helpers.api import create_cam, deal_body, enrol, new_key
from tests.helpers.routes import api_routes
from tests.leads.test_api import lead_body
from tests.mdf.test_api import body as mdf_body
from tests.mdf.test_api import fast

TRICKY = [
    "",
    " ",
    "0",
    "-1",
    "1e30",
    "1e999999",
    "-1e-999999",
    "NaN",
    "sNaN",
    "Infinity",
    "9" * 30,
    "0.001",
    "1,000.00",
    "400.00",
    "\x00",
    "a\x1bb",
    "a\r\nb",
    "\ud800",
    "x" * 1500,
    "approve",
    "approve_lower",
    "reject",
    "return",
    "override",
    "hold",
    "gold",
    "registered",
    "/web/",
    "//evil.test/",
    "http://evil.test/",
    "2026-Q1",
    "9999-Q9",
    "a@vendor.test",
    "{}",
    "null",
]


ABSURD = ["1e30", "1e999999", "-1e-999999", "9" * 30, "sNaN", "-0"]


def form_routes() -> list[tuple[str, dict[str, typing.Any]]]:
    """(path, {form field: its type}) of every POST that a browser sends a form to."""
    app = create_app(Settings(_env_file=None, environment="development"), reconcile_every=None)
    out = []
    for route in api_routes(app):
        if "POST" in route.methods and (route.path.startswith(("/web/", "/portal/")) or "/links/" in route.path):
            fields = {p.alias: p.field_info.annotation for p in _body(route.dependant)}
            out.append((route.path, fields))
    return sorted(out, key=lambda r: r[0])


def _body(dependant):
    yield from dependant.body_params
    for sub in dependant.dependencies:
        yield from _body(sub)


def cases() -> list[tuple[str, dict[str, typing.Any], dict[str, str]]]:
    """Each form route, once with every field generated and once per choice of its choice field
    (a decision): the rest of the form is generated around each choice the form offers."""
    out = []
    for path, fields in form_routes():
        out.append((path, fields, {}))
        for name, tp in fields.items():
            base = _base(tp)
            if isinstance(base, type) and issubclass(base, enum.Enum):
                out.extend((path, fields, {name: m.value}) for m in base)
                break
    return out


def _base(tp):
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


CASES = cases()


def value_of(tp) -> st.SearchStrategy[str]:
    tp = _base(tp)
    # numbers written every way a form may carry them (amounts, versions), besides any text
    numbers = st.one_of(st.sampled_from(ABSURD), st.decimals().map(str), st.floats().map(str), st.integers().map(str))
    text = st.one_of(numbers, numbers, st.sampled_from(TRICKY), st.text(max_size=40))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return st.one_of(st.sampled_from([m.value for m in tp]), text)
    return text


def form_of(fields: dict[str, typing.Any]) -> st.SearchStrategy[dict[str, str]]:
    """Each field sent or left out, with a generated value."""
    return st.fixed_dictionaries(
        {}, optional={name: value_of(tp) for name, tp in fields.items() if name != "csrf_token"}
    )


@pytest.fixture
async def rows(api, ops, worker, sessionmaker):
    """Real rows for the path's ids: a partner with its CAM and its admin (the portal's user), a deal,
    an MDF request pending and a lead (offered to the partner once routed)."""
    await fast(api, ops)
    cam = await create_cam(api, ops, email="casey@vendor.test")
    partner = await enrol(api, ops, tier="gold", cam_id=cam["id"], domain="forms.test")
    partner_h = await new_key(sessionmaker, Role.partner, partner_id=partner["id"])
    deal = await api.post("/deals", json=deal_body(), headers=partner_h)
    assert deal.status_code == 201, deal.text
    req = await api.post("/mdf/requests", json=mdf_body(amount_minor=80_000), headers=partner_h)
    assert req.status_code == 201, req.text
    lead = await api.post("/leads", json=lead_body(domain="forms-lead.test"), headers=ops)
    assert lead.status_code == 201, lead.text
    async with sessionmaker() as session, session.begin():
        operator = WebOperator(email="ops-forms@vendor.test", name="Ops", created_by="test")
        session.add(operator)
        admin = await session.scalar(select(PartnerUser.id).where(PartnerUser.email == "owner@forms.test"))
        # a QBR of this year's first quarter (no journey runs it): the portal's QBR forms read their fields
        session.add(Qbr(partner_id=partner["id"], period=f"{datetime.now(UTC).year}-Q1", state="scheduling"))
    return {
        "user_id": admin,
        "lead_id": lead.json()["id"],
        "partner_id": partner["id"],
        "deal_id": deal.json()["id"],
        "request_id": req.json()["id"],
        "operator_id": operator.id,
    }


async def new_session(sessionmaker, operator_id, user_id=None) -> tuple[str, str]:
    """A signed-in ops session (its cookie value and CSRF token), as signing in creates one, and
    with `user_id` a portal session of that partner user (the same token and CSRF token)."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    async with sessionmaker() as session, session.begin():
        if user_id is not None:
            session.add(
                PortalSession(
                    token_hash=hashlib.sha256(token.encode()).hexdigest(),
                    user_id=user_id,
                    csrf_token=csrf,
                    expires_at=datetime.now(UTC) + timedelta(hours=1),
                )
            )
        session.add(
            WebSession(
                token_hash=hashlib.sha256(token.encode()).hexdigest(),
                role=Role.ops.value,
                operator_id=operator_id,
                email="ops-forms@vendor.test",
                csrf_token=csrf,
                expires_at=datetime.now(UTC) + timedelta(hours=1),
            )
        )
    return token, csrf


def path_values(rows: dict) -> dict[str, st.SearchStrategy[str]]:
    real_or_not = lambda name: st.one_of(st.just(str(rows[name])), st.uuids().map(str))  # noqa: E731
    return {
        "partner_id": real_or_not("partner_id"),
        "deal_id": real_or_not("deal_id"),
        "request_id": real_or_not("request_id"),
        "lead_id": real_or_not("lead_id"),
        # never the session's own user: removing it would end the portal sessions of later examples
        "user_id": st.one_of(st.uuids().map(str), st.just("x")),
        # never the session's own operator: removing it would end the sessions later examples sign in with
        "operator_id": st.one_of(st.uuids().map(str), st.just("x")),
        "sim_id": st.one_of(st.uuids().map(str), st.just("x")),
        "period": st.sampled_from(["2026-Q1", f"{datetime.now(UTC).year}-Q1", "9999-Q1", "x"]),
        "key": st.sampled_from(["portal_access", "first_deal", "no_such_milestone", "X"]),
        "item_no": st.sampled_from(["1", "0", "99999999999999999999"]),
        "token": st.one_of(st.just("forged-token"), st.text(alphabet="abcXYZ019._-", min_size=1, max_size=60)),
    }


@settings(max_examples=8 * len(CASES), deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(data=st.data())
async def test_no_form_value_answers_a_500(api, sessionmaker, rows, data):
    path, fields, chosen = data.draw(st.sampled_from(CASES), label="route")
    values = path_values(rows)
    names = re.findall(r"{(\w+)}", path)
    assert set(names) <= set(values), f"{path}: give its path parameters values in path_values"
    params = data.draw(st.fixed_dictionaries({n: values[n] for n in names}), label="path")
    form = {**data.draw(form_of(fields), label="form"), **chosen}
    token, csrf = await new_session(sessionmaker, rows["operator_id"], rows["user_id"])
    url = path.format(**{k: quote(v, safe="", errors="surrogatepass") for k, v in params.items()})
    cookies = (
        f"camlights_session={token}; camlights_signin_csrf={csrf}; "
        f"camlights_portal_session={token}; camlights_portal_signin_csrf={csrf}"
    )
    sent = {**form, "csrf_token": csrf}
    # encoded here: a lone surrogate goes out as the invalid UTF-8 a hostile client can send
    body = urlencode(sent, encoding="utf-8", errors="surrogatepass")
    headers = {"Cookie": cookies, "Content-Type": "application/x-www-form-urlencoded"}
    r = await api.post(url, content=body, headers=headers, follow_redirects=False)
    assert r.status_code < 500, (url, sent, r.status_code, r.text[:500])
    if path.startswith("/portal/") and not path.startswith("/portal/sign-"):  # signed in: the handler ran
        assert "/sign-in" not in r.headers.get("location", ""), (url, r.headers["location"])


async def test_an_absurd_lower_amount_is_a_clear_refusal(api, sessionmaker, rows):
    for amount in ("1e30", "1e999999", "99999999999999999999", "-5", "sNaN"):
        token, csrf = await new_session(sessionmaker, rows["operator_id"])
        r = await api.post(
            f"/web/mdf/requests/{rows['request_id']}/decision",
            data={"decision": "approve_lower", "amount": amount, "csrf_token": csrf, "back": "/web/"},
            headers={"Cookie": f"camlights_session={token}"},
        )
        assert r.status_code == 303, (amount, r.status_code, r.text[:300])
        level, notice = take_flash(
            Request({"type": "http", "headers": [(b"cookie", r.headers["set-cookie"].encode())]})
        )
        assert level == "error" and notice.startswith("amount: a positive amount"), (amount, notice)
