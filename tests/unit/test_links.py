"""Signed one-click decision links (domain/links.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from itsdangerous import URLSafeSerializer

from domain.links import (
    MDF_SALT,
    SALT,
    LinkClaims,
    LinkError,
    LinkExpired,
    LinkInvalid,
    link_jti,
    make_token,
    read_token,
)

pytestmark = pytest.mark.unit

SECRET = "unit-test-secret"
NOW = datetime(2030, 1, 15, 12, 0, tzinfo=UTC)
CLAIMS = LinkClaims(
    deal_id="D-42",
    decision="approve",
    approver="cam:7",
    jti=link_jti("deal-D-42/approval-1", "cam:7", "approve"),
    expires_at=NOW + timedelta(days=7),
)


def _signed(payload: object, secret: str = SECRET) -> str:
    return URLSafeSerializer(secret, salt=SALT).dumps(payload)


def test_round_trip() -> None:
    token = make_token(SECRET, CLAIMS)
    assert read_token(SECRET, token, now=NOW) == CLAIMS


def test_round_trip_truncates_expiry_to_whole_seconds() -> None:
    """The token carries a Unix timestamp: sub-second precision is dropped (earlier, never later)."""
    claims = replace(CLAIMS, expires_at=CLAIMS.expires_at + timedelta(microseconds=900_000))
    assert read_token(SECRET, make_token(SECRET, claims), now=NOW).expires_at == CLAIMS.expires_at


def test_error_hierarchy() -> None:
    assert issubclass(LinkInvalid, LinkError) and issubclass(LinkExpired, LinkError)
    assert not issubclass(LinkInvalid, LinkExpired) and not issubclass(LinkExpired, LinkInvalid)


def test_tampered_payload_is_invalid() -> None:
    """Another deal's payload under this link's signature: the signature no longer matches."""
    token = make_token(SECRET, CLAIMS)
    forged = make_token(SECRET, replace(CLAIMS, deal_id="D-43")).rpartition(".")[0]
    with pytest.raises(LinkInvalid, match="signature"):
        read_token(SECRET, f"{forged}.{token.rpartition('.')[2]}", now=NOW)


@pytest.mark.parametrize("field", ["decision", "approver"])
def test_tampered_claim_is_invalid(field: str) -> None:
    """Turning an 'approve' link into a 'reject' one, or re-addressing it, breaks the signature."""
    signature = make_token(SECRET, CLAIMS).rpartition(".")[2]
    payload = make_token(SECRET, replace(CLAIMS, **{field: "reject" if field == "decision" else "ops:1"}))
    with pytest.raises(LinkInvalid):
        read_token(SECRET, f"{payload.rpartition('.')[0]}.{signature}", now=NOW)


@pytest.mark.parametrize("token", ["", "garbage", "a.b", "....", make_token(SECRET, CLAIMS) + "x"])
def test_garbage_is_invalid(token: str) -> None:
    with pytest.raises(LinkInvalid):
        read_token(SECRET, token, now=NOW)


def test_other_secret_is_invalid() -> None:
    with pytest.raises(LinkInvalid, match="signature"):
        read_token(SECRET, make_token("another-secret", CLAIMS), now=NOW)


def test_other_salt_is_invalid() -> None:
    """A value this secret signed for another purpose is not a decision link."""
    token = URLSafeSerializer(SECRET, salt="camlights.other").dumps(
        {"d": "D-42", "a": "approve", "by": "cam:7", "j": "x", "exp": 2_000_000_000}
    )
    with pytest.raises(LinkInvalid):
        read_token(SECRET, token, now=NOW)


@pytest.mark.parametrize(("made_for", "read_as"), [(SALT, MDF_SALT), (MDF_SALT, SALT)])
def test_a_deal_link_is_no_mdf_link_nor_the_reverse(made_for: str, read_as: str) -> None:
    """Both kinds are signed with the one link secret: only the salt keeps a deal decision link from
    deciding the MDF request that happens to have the same id, and the reverse."""
    token = make_token(SECRET, CLAIMS, salt=made_for)
    assert read_token(SECRET, token, now=NOW, salt=made_for) == CLAIMS
    with pytest.raises(LinkInvalid, match="signature does not match"):
        read_token(SECRET, token, now=NOW, salt=read_as)


def test_a_link_is_a_deal_link_unless_said_otherwise() -> None:
    assert read_token(SECRET, make_token(SECRET, CLAIMS), now=NOW, salt=SALT) == CLAIMS
    with pytest.raises(LinkInvalid):
        read_token(SECRET, make_token(SECRET, CLAIMS, salt=MDF_SALT), now=NOW)


@pytest.mark.parametrize(
    "payload",
    [
        {"a": "approve", "by": "cam:7", "j": "x", "exp": 2_000_000_000},  # no deal
        {"d": "D-42", "a": "approve", "by": "cam:7", "j": "x"},  # no expiry
        {"d": "D-42", "a": "approve", "by": "cam:7", "j": "x", "exp": "tomorrow"},
        {"d": "D-42", "a": "approve", "by": "cam:7", "j": "x", "exp": None},
        ["D-42", "approve"],
        "D-42",
        None,
    ],
)
def test_malformed_payload_is_invalid(payload: object) -> None:
    """Correctly signed but not a link's claims."""
    with pytest.raises(LinkInvalid, match="malformed"):
        read_token(SECRET, _signed(payload), now=NOW)


def test_expired() -> None:
    token = make_token(SECRET, CLAIMS)
    with pytest.raises(LinkExpired, match="expired on 2030-01-22 12:00 UTC"):
        read_token(SECRET, token, now=CLAIMS.expires_at + timedelta(days=1))


def test_expiry_boundary() -> None:
    """Valid up to the last second before `expires_at`; expired from `expires_at` on."""
    token = make_token(SECRET, CLAIMS)
    assert read_token(SECRET, token, now=CLAIMS.expires_at - timedelta(seconds=1)) == CLAIMS
    with pytest.raises(LinkExpired):
        read_token(SECRET, token, now=CLAIMS.expires_at)


def test_tampered_and_expired_is_invalid_not_expired() -> None:
    """The signature is checked first: a forged link never learns that it would have expired."""
    token = make_token("another-secret", CLAIMS)
    with pytest.raises(LinkInvalid):
        read_token(SECRET, token, now=CLAIMS.expires_at + timedelta(days=30))


def test_jti_is_deterministic() -> None:
    jti = link_jti("deal-D-42/approval-1", "cam:7", "approve")
    assert jti == link_jti("deal-D-42/approval-1", "cam:7", "approve") == CLAIMS.jti
    assert len(jti) == 32 and int(jti, 16) >= 0


@pytest.mark.parametrize(
    ("key", "recipient", "decision"),
    [
        ("deal-D-42/approval-1", "cam:8", "approve"),  # another recipient
        ("deal-D-42/approval-1", "ops:1", "approve"),
        ("deal-D-42/approval-1", "cam:7", "reject"),  # another decision
        ("deal-D-42/approval-2", "cam:7", "approve"),  # another request (e.g. the escalation)
        ("deal-D-43/approval-1", "cam:7", "approve"),
    ],
)
def test_jti_differs(key: str, recipient: str, decision: str) -> None:
    assert link_jti(key, recipient, decision) != CLAIMS.jti


def test_jti_all_distinct_across_recipients_and_decisions() -> None:
    jtis = {link_jti("k", r, d) for r in ("cam:1", "cam:2", "ops:1") for d in ("approve", "reject")}
    assert len(jtis) == 6


def test_an_mdf_link_names_its_level_round_and_amount() -> None:
    """Issue 29: the journey takes an MDF link only where it was issued; a deal link names none."""
    scoped = replace(CLAIMS, level=0, round=2, amount_minor=600_000)
    back = read_token(SECRET, make_token(SECRET, scoped, salt=MDF_SALT), now=NOW, salt=MDF_SALT)
    assert back == scoped and back.scoped
    plain = read_token(SECRET, make_token(SECRET, CLAIMS), now=NOW)
    assert plain == CLAIMS and not plain.scoped
