"""The small pure rules left (pure, no server): workflow ids, sign-in tokens, the webhook headers
and SSRF reasons, periods and due dates, and what a journey tells another one."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, date, datetime, timedelta

import pytest
from itsdangerous import URLSafeSerializer

from domain import journeys, signin, webhooks
from domain.links import SALT as DECISION_SALT
from domain.links import LinkExpired, LinkInvalid
from journeys.mdf.domain import days_between
from journeys.onboarding import domain as onboarding
from journeys.qbr import domain as qbr
from journeys.qbr import periods

pytestmark = pytest.mark.unit
NOW = datetime(2030, 1, 15, 12, 0, tzinfo=UTC)


def test_workflow_ids() -> None:
    assert journeys.workflow_id("deal", "d-1") == "deal-d-1"
    assert qbr.qbr_id("p-1", "2027-Q1") == "qbr-p-1-2027-Q1"
    assert qbr.cycle_id("2027-Q1") == "qbr-cycle-2027-Q1"
    assert webhooks.delivery_workflow_id("s-1", "p-1") == "webhooks-s-1-p-1"
    wid, name, arg = onboarding.milestone_done("p-1", "first_deal", "journey:deal-d-1")
    assert (wid, name, arg.key, arg.by) == (
        "onboarding-p-1",
        onboarding.MARK_MILESTONE,
        "first_deal",
        "journey:deal-d-1",
    )


def test_sign_in_tokens_round_trip_expire_and_refuse_forgeries() -> None:
    claims = signin.new_claims("pat@gold.test", timedelta(minutes=15), now=NOW)
    assert (claims.email, claims.expires_at, len(claims.jti)) == ("pat@gold.test", NOW + timedelta(minutes=15), 32)
    assert signin.new_claims("pat@gold.test", timedelta(minutes=15), now=NOW).jti != claims.jti  # single use: fresh
    token = signin.make_sign_in_token("s3cret", claims)
    assert signin.read_sign_in_token("s3cret", token, now=NOW) == claims
    assert signin.read_sign_in_token("s3cret", token, now=claims.expires_at - timedelta(seconds=1)) == claims
    with pytest.raises(LinkExpired, match="expired at 2030-01-15 12:15 UTC; ask for a new one"):
        signin.read_sign_in_token("s3cret", token, now=claims.expires_at)
    with pytest.raises(LinkInvalid, match="signature does not match"):
        signin.read_sign_in_token("another", token, now=NOW)
    decision = URLSafeSerializer("s3cret", salt=DECISION_SALT).dumps({"e": "pat@gold.test", "j": "x", "exp": 2**40})
    with pytest.raises(LinkInvalid, match="signature does not match"):  # a decision link is no sign-in link
        signin.read_sign_in_token("s3cret", decision, now=NOW)
    for payload in ({"e": "pat@gold.test", "j": "x"}, {"e": "a", "j": "x", "exp": "soon"}, ["a"]):
        forged = URLSafeSerializer("s3cret", salt=signin.SALT).dumps(payload)
        with pytest.raises(LinkInvalid, match="this sign-in link is malformed"):
            signin.read_sign_in_token("s3cret", forged, now=NOW)


def test_webhook_headers_and_secrets() -> None:
    secret = webhooks.new_secret()
    assert secret.startswith("whsec_") and len(secret) == len("whsec_") + 44 and secret != webhooks.new_secret()
    sent = webhooks.headers(secret, "msg_1", 1_700_000_000, b"{}")
    assert sent == {
        "content-type": "application/json",
        "webhook-id": "msg_1",
        "webhook-timestamp": "1700000000",
        "webhook-signature": webhooks.sign(secret, "msg_1", 1_700_000_000, b"{}"),
        "user-agent": "CAM-Lights-Webhooks/1",
    }
    mac = hmac.new(bytes(33), b"msg_1.1.{}", hashlib.sha256).digest()  # "A" * 44 is the base64 of 33 zero bytes
    assert webhooks.sign("whsec_" + "A" * 44, "msg_1", 1, b"{}") == "v1," + base64.b64encode(mac).decode()
    assert webhooks.event_id("deal-1:event:deal.won") == "msg_" + webhooks.event_id("deal-1:event:deal.won")[4:]
    assert len(webhooks.event_id("x")) == 4 + 26 and webhooks.event_id("x").islower()


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.0.0.8", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "private"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "private"),
        ("0.0.0.0", "private"),
        ("100.64.0.1", "shared (carrier-grade NAT)"),
        ("100.127.255.255", "shared (carrier-grade NAT)"),
    ],
)
def test_each_refused_address_says_why(address: str, why: str) -> None:
    assert webhooks.refused_address(address) == f"{address} is a {why} address"


@pytest.mark.parametrize("address", ["100.63.255.255", "100.128.0.0", "8.8.8.8", "2606:4700::1111"])
def test_addresses_next_to_the_refused_ranges_pass(address: str) -> None:
    assert webhooks.refused_address(address) is None


def test_periods_and_due_dates() -> None:
    with pytest.raises(ValueError, match="period must look like 2027-Q1, not '2027-Q5'"):
        periods.check_period("2027-Q5")
    assert periods.check_period("2027-Q4") == "2027-Q4"
    assert periods.period_index("2027-Q1") == 2027 * 4 and periods.period_index("2027-Q4") == 2027 * 4 + 3
    assert periods.due_at(date(2027, 3, 31), "UTC") == datetime(2027, 4, 1, tzinfo=UTC)
    assert periods.due_at(date(2027, 3, 31), "Europe/Berlin") == datetime(2027, 3, 31, 22, tzinfo=UTC)
    assert days_between(date(2027, 1, 1), date(2027, 3, 1)) == 59.0
    assert days_between(date(2027, 3, 1), date(2027, 1, 1)) == -59.0


def test_an_action_item_is_open_until_done_or_dropped() -> None:
    item = qbr.ActionItem(id=1, title="Plan", owner="partner", due=date(2027, 5, 1))
    assert item.open
    assert not item.model_copy(update={"done_at": NOW}).open
    assert not item.model_copy(update={"cancelled_at": NOW}).open


def test_an_event_body_is_the_catalog_shape() -> None:
    from domain.events import body

    at = datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert body("deal.won", 2, at, {"deal_id": "d-1"}) == {
        "type": "deal.won",
        "version": 2,
        "timestamp": "2027-01-02T03:04:05+00:00",
        "data": {"deal_id": "d-1"},
    }
