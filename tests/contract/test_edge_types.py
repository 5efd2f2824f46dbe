"""One rule, checked over the whole app: every value that enters from outside goes through a
bounded edge type. The walk covers every route (the JSON API, the workspace's forms, the one-click
link and sign-in pages): path, query, header and cookie parameters, form fields, and JSON bodies
down through every nested model, list and union. A new route or field of a raw type fails here:

- text: a maximum length (or an anchored pattern of bounded width) and a screen (a pattern, or a
  validator such as the text types' `clean_text`: no NUL, no control characters);
- numbers: a lower and an upper bound; in a JSON body also strict (`false` is not 0, `"5"` not 5);
- `Decimal`: bounds, or a number of digits;
- dates and times: the edge's horizon (`api.schemas.IsoDate`, `IsoDatetime`);
- lists: a maximum length; dictionaries: keys from an enumeration (values checked as any field).

What is accepted without these, and why, is listed in `EXEMPT` (each with its reason)."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import re
import re._parser as sre_parse  # the width of a pattern: bounded or not
import types
import typing
import uuid
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from fastapi import Body, FastAPI, Form, Query, UploadFile
from fastapi.params import File
from fastapi.params import Form as FormInfo
from pydantic import AwareDatetime, BaseModel, NaiveDatetime, ValidationError
from pydantic.fields import FieldInfo

from api.app import create_app
from api.schemas import _json_number, _within_horizon
from core.settings import Settings
from tests.helpers.routes import api_routes

pytestmark = pytest.mark.unit

# (route, field path) -> why a raw type is accepted there. Keep it short.
EXEMPT: dict[tuple[str, str], str] = {}
# Whole bodies outside the rule, with the reason.
EXEMPT_BODIES = {
    "PUT /policy": "the program policy: an ops document of ~100 typed fields whose cross-field rules are "
    "domain/policy.py's model validators; its numbers are bounded there but not strict (a YAML-born document)",
    "POST /policy/simulations": "the same program policy document as PUT /policy (a what-if draft), validated as it is",
}


def _unwrap(tp: Any, meta: list[Any]) -> tuple[Any, list[Any]]:
    while typing.get_origin(tp) is typing.Annotated:
        tp, *extra = typing.get_args(tp)
        for m in extra:
            meta.extend(m.metadata if isinstance(m, FieldInfo) else [m])
    return tp, meta


def _set(meta: list[Any], *names: str) -> list[Any]:
    return [m for m in meta if any(getattr(m, n, None) is not None for n in names)]


def _bounded_pattern(meta: list[Any]) -> bool:
    """An anchored pattern that matches strings of a bounded length only (`^[A-Z]{3}$`)."""
    for m in _set(meta, "pattern"):
        p = m.pattern
        if p.startswith("^") and p.endswith("$") and sre_parse.parse(p).getwidth()[1] < sre_parse.MAXREPEAT:
            return True
    return False


def check(tp: Any, meta: list[Any], where: str, *, json: bool, validated: bool, seen: set) -> Iterator[str]:
    tp, meta = _unwrap(tp, list(meta))
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arm in typing.get_args(tp):
            if arm is not type(None):
                yield from check(arm, meta, where, json=json, validated=validated, seen=seen)
        return
    if origin is typing.Literal or (isinstance(tp, type) and issubclass(tp, enum.Enum)):
        return
    if tp in (bool, uuid.UUID, type(None), UploadFile):
        return
    if origin in (list, set, frozenset, tuple):
        if not _set(meta, "max_length"):
            yield f"{where}: a list without max_length"
        for arg in typing.get_args(tp):
            if arg is not Ellipsis:
                yield from check(arg, [], f"{where}[]", json=json, validated=validated, seen=seen)
        return
    if origin is dict or tp is dict:
        key, value = typing.get_args(tp) or (Any, Any)
        if not (isinstance(key, type) and issubclass(key, enum.Enum)):
            yield f"{where}: a dictionary with keys of {key!r} (not an enumeration)"
        yield from check(value, [], f"{where}{{}}", json=json, validated=validated, seen=seen)
        return
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        if tp in seen:
            return
        seen.add(tp)
        checked = {f for d in tp.__pydantic_decorators__.field_validators.values() for f in d.info.fields}
        for name, field in tp.model_fields.items():
            yield from check(
                field.annotation,
                list(field.metadata),
                f"{where}.{name}",
                json=json,
                validated=name in checked,
                seen=seen,
            )
        return
    validators = [m for m in meta if callable(getattr(m, "func", None))]
    if tp is str:
        if not (_set(meta, "max_length") or _bounded_pattern(meta)):
            yield f"{where}: text without a maximum length"
        if not (_set(meta, "pattern") or validators or validated):
            yield f"{where}: text not screened (no pattern, no validator)"
        return
    if tp in (int, float, decimal.Decimal):
        upper = _set(meta, "le", "lt") or (tp is decimal.Decimal and _set(meta, "max_digits"))
        if not (_set(meta, "ge", "gt") and upper):
            yield f"{where}: {tp.__name__} without a lower and an upper bound"
        if (
            json
            and tp is not decimal.Decimal
            and not (any(getattr(m, "strict", None) for m in meta) or any(m.func is _json_number for m in validators))
        ):
            yield f"{where}: {tp.__name__} not strict (a boolean or a string passes as a number)"
        return
    if tp in (AwareDatetime, NaiveDatetime) or (isinstance(tp, type) and issubclass(tp, dt.date)):
        if not any(m.func is _within_horizon for m in validators):
            yield f"{where}: a date or time without the edge's horizon (api.schemas.IsoDate, IsoDatetime)"
        return
    yield f"{where}: a value of type {tp!r} the rule does not know"


def _params(dependant) -> Iterator[tuple[str, Any]]:
    for kind in ("path", "query", "header", "cookie", "body"):
        for param in getattr(dependant, f"{kind}_params"):
            yield kind, param
    for sub in dependant.dependencies:
        yield from _params(sub)


def violations(app) -> list[str]:
    found = []
    for route in api_routes(app):
        for method in sorted(route.methods):
            label = f"{method} {route.path}"
            for kind, param in _params(route.dependant):
                info = param.field_info
                json = kind == "body" and not isinstance(info, FormInfo | File)
                if json and label in EXEMPT_BODIES:
                    continue
                where = f"{kind}.{param.name}"
                tp = info.annotation if info.annotation is not None else param.type_
                for problem in check(tp, list(info.metadata), where, json=json, validated=False, seen=set()):
                    field = problem.split(":")[0]
                    if (label, field) not in EXEMPT:
                        found.append(f"{label} {problem}")
    return found


def test_every_value_from_outside_goes_through_a_bounded_edge_type():
    app = create_app(Settings(_env_file=None, environment="development"), reconcile_every=None)
    assert not violations(app), "\n".join(violations(app))
    walked = {f"{m} {r.path}" for r in api_routes(app) for m in r.methods}
    for form in (
        "POST /portal/deals",
        "POST /portal/deals/{deal_id}/extensions",
        "POST /portal/team",
        "POST /portal/milestones/{key}",
        "POST /portal/sign-in",
        "POST /partners/{partner_id}/users",
    ):
        assert form in walked, f"the walk misses the partner portal's {form}"


class _Inner(BaseModel):
    when: dt.date
    tags: list[str]


class _Raw(BaseModel):
    name: str
    count: int
    inner: _Inner
    extra: dict[str, str]


def test_the_rule_sees_raw_types_in_bodies_forms_and_parameters():
    """The walk is not vacuous: a route with a raw field of each kind fails it."""
    app = FastAPI()

    @app.post("/raw")
    async def raw(body: Annotated[_Raw, Body()], q: Annotated[str, Query()] = "", note: Annotated[str, Form()] = ""):
        return {}

    problems = "\n".join(violations(app))
    for expected in (
        "body.body.name: text without a maximum length",
        "body.body.name: text not screened",
        "body.body.count: int without a lower and an upper bound",
        "body.body.count: int not strict",
        "body.body.inner.when: a date or time without the edge's horizon",
        "body.body.inner.tags: a list without max_length",
        "body.body.inner.tags[]: text not screened",
        "body.body.extra: a dictionary with keys of <class 'str'>",
        "query.q: text without a maximum length",
        "body.note: text not screened",
    ):
        assert f"POST /raw {expected}" in problems, problems


def test_every_operation_that_reads_a_body_declares_it():
    """The codec routes read their body themselves (protobuf JSON): declared in the schema all the same."""
    schema = create_app(Settings(_env_file=None, environment="development"), reconcile_every=None).openapi()
    for path in ("/codec/decode", "/codec/encode"):
        body = schema["paths"][path]["post"]["requestBody"]
        payloads = body["content"]["application/json"]["schema"]["properties"]["payloads"]
        assert body["required"] and payloads["maxItems"] == 1000


def test_constraints_a_schema_can_state_are_in_it():
    from journeys.mdf.schemas import AdjustmentBody
    from journeys.qbr.schemas import TargetBody

    app = create_app(Settings(_env_file=None, environment="development"), reconcile_every=None)
    schema = app.openapi()["components"]["schemas"]
    assert schema["AdjustmentBody"]["properties"]["amount_minor"]["not"] == {"const": 0}
    period = schema["AllocationBody"]["properties"]["period"]["anyOf"][0]["pattern"]
    assert re.fullmatch(period[1:-1], "2026-Q4") and not re.search(period, "2026-13")
    with pytest.raises(ValidationError, match="an adjustment is not zero"):
        AdjustmentBody.model_validate({"amount_minor": 0, "reason": "x"})
    with pytest.raises(ValidationError):
        TargetBody.model_validate({"amount_minor": False})


def test_bounds_are_json_schema_keywords():
    """A validator in front of a bounded integer (`JSON_NUMBER`) made pydantic write `gt`/`le`
    into the schema instead of `exclusiveMinimum`/`maximum`: clients (and the fuzz) saw no bounds."""
    found = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("gt", "ge", "lt", "le") and isinstance(value, int | float):
                    found.append(f"{where}/{key}")
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}/{i}")

    walk(create_app(Settings(_env_file=None, environment="development"), reconcile_every=None).openapi(), "")
    assert not found, found
