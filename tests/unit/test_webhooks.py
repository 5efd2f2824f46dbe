"""Standard Webhooks signatures as an independent library verifies them, and the SSRF rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from activities.webhooks import DEADLINE_MARGIN, REQUEST_MARGIN, attempt_seconds
from domain import events
from domain.webhooks import event_id, headers, new_secret, refused_address

pytestmark = pytest.mark.unit


def test_our_signature_verifies_with_the_standard_webhooks_library_and_only_untampered():
    secret = new_secret()
    now = int(datetime.now(UTC).timestamp())
    body = json.dumps(events.body("deal.won", 1, datetime.now(UTC), {"deal_id": "d-1"})).encode()
    sent = headers(secret, event_id("deal-1:event:deal.won"), now, body)
    assert Webhook(secret).verify(body, sent)["type"] == "deal.won"
    for tampered_body, tampered_headers in (
        (body.replace(b"d-1", b"d-2"), sent),
        (body, {**sent, "webhook-id": event_id("another step")}),
        (body, {**sent, "webhook-timestamp": str(now - 1)}),
    ):
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(tampered_body, tampered_headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, sent)


def test_event_ids_are_stable_per_step_and_distinct_across_steps():
    assert event_id("deal-1:event:deal.won") == event_id("deal-1:event:deal.won")
    assert event_id("deal-1:event:deal.won") != event_id("deal-2:event:deal.won")
    assert event_id("x").startswith("msg_")


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.8",
        "172.16.3.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fd00::1",
        "::ffff:127.0.0.1",
        "224.0.0.1",
        "fec0::1",  # site-local (deprecated, still routed inside some networks)
        "2002:c0a8:101::1",
        "2002:7f00:1::",  # 6to4 of 192.168.1.1 and of 127.0.0.1
        "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo whose client is 10.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "198.18.0.1",
        "192.0.2.1",
        "2001:db8::1",
        "240.0.0.1",
    ],  # benchmarking, documentation, reserved
)
def test_private_loopback_and_metadata_addresses_are_refused(address):
    assert refused_address(address) is not None


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8", "2002:808:808::1"]
)
def test_public_addresses_pass(address):
    assert refused_address(address) is None


def test_every_catalog_entry_has_a_version_and_a_payload_model():
    for name, spec in events.CATALOG.items():
        assert "." in name and spec.version >= 1 and spec.data.model_json_schema()["properties"]
    with pytest.raises(ValueError, match="unknown event type"):
        events.spec("deal.bogus")


def test_an_attempt_never_outlasts_the_deliverys_retry_time():
    """An attempt waits the policy's timeout, cut at the retry time less DEADLINE_MARGIN: past it
    nothing is sent (the stream has gone on to the partner's next event, which must come after), nor
    when less than a second would be left for it."""
    first = datetime(2027, 1, 1, tzinfo=UTC)
    attempt = timedelta(seconds=10 + REQUEST_MARGIN)
    assert attempt_seconds(attempt, first, None, first + timedelta(days=3)) == 10  # no retry time: the policy's
    retry = timedelta(seconds=60)
    assert attempt_seconds(attempt, first, retry, first) == 10  # far from it
    bar = first + retry - timedelta(seconds=DEADLINE_MARGIN)
    assert attempt_seconds(attempt, first, retry, bar - timedelta(seconds=4)) == pytest.approx(4)  # cut short
    assert attempt_seconds(attempt, first, retry, bar - timedelta(seconds=1)) == 1  # the shortest attempt
    assert attempt_seconds(attempt, first, retry, bar - timedelta(seconds=0.5)) == 0  # too short: not made
    assert attempt_seconds(attempt, first, retry, bar) == 0  # at the bar: over
    assert attempt_seconds(attempt, first, retry, bar + timedelta(seconds=1)) <= 0
    assert attempt_seconds(timedelta(seconds=2), first, None, first) == 1.0  # never under a second otherwise
