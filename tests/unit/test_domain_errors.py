"""The domain's refusals carry their text and headers, and each kind is a DomainError."""

from __future__ import annotations

import pytest

from domain import errors

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("kind", [errors.NotFound, errors.Conflict, errors.Refused, errors.Invalid, errors.Gone])
def test_a_refusal_says_what_was_wrong(kind):
    err = kind("deal 7 is closed", headers={"Retry-After": "3"})
    assert isinstance(err, errors.DomainError)
    assert err.detail == str(err) == "deal 7 is closed"
    assert err.headers == {"Retry-After": "3"}
    assert kind("x").headers == {}
