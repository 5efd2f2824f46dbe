"""Request bodies accept what their OpenAPI schema calls valid and nothing it calls invalid: the
cases the contract fuzz found (tests/contract/test_schemathesis.py), pinned as examples."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from api.schemas import NONBLANK_LINE, CamCreate
from journeys.cert.schemas import CertCreate, RenewalBody
from journeys.deal.schemas import DealCreate, ExtensionBody

pytestmark = pytest.mark.unit

CERT = {
    "partner_id": "e3e70682-c209-4cac-a29f-6fbed82c07cd",
    "person_name": "Pat",
    "person_email": "pat@gold.test",
    "track": "Network Associate",
    "product_category": "network",
    "issued_at": "2026-01-01T00:00:00Z",
    "expires_at": "2027-01-01T00:00:00Z",
}
DEAL = {
    "customer_name": "Globex",
    "customer_domain": "globex.com",
    "product_category": "network",
    "amount": "25000.00",
    "currency": "USD",
    "expected_close_date": "2027-03-31",
}


def test_a_name_is_measured_once_normalized():
    # U+0344 is two characters in NFC: 150 of them passed max_length=200 and the insert failed (500)
    with pytest.raises(ValidationError, match="at most 200 characters once normalized"):
        CamCreate.model_validate({"name": "\u0344" * 150, "email": "a@vendor.test"})


def test_a_track_is_at_most_120_characters_as_its_column():
    CertCreate.model_validate({**CERT, "track": "T" * 120})
    with pytest.raises(ValidationError, match="at most 120"):
        CertCreate.model_validate({**CERT, "track": "T" * 121})
    assert CertCreate.model_json_schema()["properties"]["track"]["maxLength"] == 120


def test_lengths_apply_to_the_text_as_sent():
    with pytest.raises(ValidationError, match="at most 200 characters"):  # 201 with a space: not stripped first
        CamCreate.model_validate({"name": " " + "x" * 200, "email": "a@vendor.test"})
    assert CamCreate.model_validate({"name": "  Casey ", "email": "a@vendor.test"}).name == "Casey"


def test_the_documented_pattern_is_what_the_name_validator_accepts():
    pattern = re.compile(NONBLANK_LINE)
    for ok in ("Casey", " Casey", "Zoë 🙂"):
        assert pattern.search(ok)
        CamCreate.model_validate({"name": ok, "email": "a@vendor.test"})
    for bad, why in [
        ("", "must not be blank"),
        ("   ", "must not be blank"),
        ("a\x00b", "NUL bytes"),
        ("a\nb", "U+000A"),
        ("a\x85b", "U+0085"),
        ("a\ufffeb", "U+FFFE"),
        ("a\U0001ffffb", "U+1FFFF"),
    ]:
        assert not pattern.search(bad), ascii(bad)
        with pytest.raises(ValidationError, match=re.escape(why)):
            CamCreate.model_validate({"name": bad, "email": "a@vendor.test"})


@pytest.mark.parametrize("value", [0, 0.5, 1700000000, "5", " 1e3 "])
def test_dates_and_times_are_strings_not_timestamps(value):
    with pytest.raises(ValidationError, match="must be a string such as"):
        RenewalBody.model_validate({"expires_at": value})
    with pytest.raises(ValidationError, match="must be a string such as"):
        DealCreate.model_validate({**DEAL, "expected_close_date": value})


def test_extension_days_are_a_number_not_a_boolean_or_a_string():
    assert ExtensionBody.model_validate({"days": 3}).days == 3.0
    for bad in (True, "3"):
        with pytest.raises(ValidationError, match="Input should be a valid number"):
            ExtensionBody.model_validate({"days": bad})


def test_a_deal_is_registered_in_an_open_stage_as_documented():
    stage = DealCreate.model_json_schema()["properties"]["stage"]
    assert "closed_won" not in stage["enum"] and "qualification" in stage["enum"]
    amount = DealCreate.model_json_schema()["properties"]["amount"]["anyOf"]
    assert [a["type"] for a in amount] == ["number", "string"]
    string = re.compile(amount[1]["pattern"])
    for ok in ("1", "0.01", "12500.00", "999999999999.99"):
        assert string.search(ok)
        DealCreate.model_validate({**DEAL, "amount": ok})
    for bad, why in [
        ("0", "greater than 0"),
        ("0.00", "greater than 0"),
        ("1.005", "no more than 2 decimal places"),
        ("1000000000000", "no more than 12 digits before the decimal point"),
    ]:
        assert not string.search(bad)
        with pytest.raises(ValidationError, match=why):
            DealCreate.model_validate({**DEAL, "amount": bad})
