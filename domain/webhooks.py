"""Outbound webhooks (Standard Webhooks) and CRM events in: names, contracts and pure rules.

Why Standard Webhooks and not CloudEvents: subscribers need to know a request came from us and
was not replayed; Standard Webhooks specifies exactly that (`webhook-id` to deduplicate,
`webhook-timestamp` against replays, `webhook-signature` = HMAC-SHA256 over id, timestamp and
body with a `whsec_` secret), with verifying libraries in every language. CloudEvents specifies
the envelope only and leaves signing to each transport."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

# Workflow, messages and activities of webhook delivery.
DELIVERY_WORKFLOW = "WebhookDelivery"
WAKE = "wake"  # signal: there may be new pending deliveries for this subscription and partner
EVENTS_PATCH = "webhook-events"  # journeys publish catalog events (domain/events.py)
# The stream of events about no one partner (a lead before anyone was offered it, or that nobody
# took): published with this partner id, which no partner has; delivered in order like a partner's.
PROGRAM_STREAM = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class EventSpec:
    """One event type of the catalog (domain/events.py): its version and the model of its `data`."""

    version: int
    data: type[BaseModel]
    description: str


class WebhookActivity:
    PUBLISH = "events.publish"
    NEXT = "webhooks.next"
    DELIVER = "webhooks.deliver"
    GIVE_UP = "webhooks.give_up"


SECRET_PREFIX = "whsec_"


class DeliveryStatus(StrEnum):
    pending = "pending"
    delivered = "delivered"
    failed = "failed"


def delivery_workflow_id(subscription_id: object, partner_id: object) -> str:
    """One delivery stream per subscription and partner: what keeps a partner's events in order."""
    return f"webhooks-{subscription_id}-{partner_id}"


def event_id(idempotency_key: str) -> str:
    """The event's id (the `webhook-id`), derived from the step that published it: a retried or
    replayed step publishes the same id."""
    return "msg_" + base64.b32encode(hashlib.sha256(idempotency_key.encode()).digest()).decode()[:26].lower()


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header: `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`,
    the key being the base64 after `whsec_`."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
        "user-agent": "CAM-Lights-Webhooks/1",
    }


NAT64 = ipaddress.ip_network("64:ff9b::/96")  # well-known NAT64 prefix: the last 32 bits are an IPv4 address


def refused_address(address: str) -> str | None:
    """Why a destination address is refused (SSRF), or None for a public (`is_global`) unicast
    address. An IPv6 address that carries an IPv4 one (mapped, 6to4 2002::/16, Teredo, NAT64) is
    judged by that IPv4 address too; site-local fec0::/10 and every non-global range are refused."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        else:
            carried = ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
            if carried is None and ip in NAT64:
                carried = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
            if carried is not None:
                why = refused_address(str(carried))
                if why:
                    return f"{address} carries {carried}: {why}"
    for what, test in (
        ("loopback", ip.is_loopback),
        ("private", ip.is_private),
        ("link-local", ip.is_link_local),
        ("site-local", isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("unspecified", ip.is_unspecified),
        ("shared (carrier-grade NAT)", ip in ipaddress.ip_network("100.64.0.0/10")),
        ("non-global", not ip.is_global),
    ):
        if test:
            return f"{address} is a {what} address"
    return None


# --------------------------------------------------------------------------- contracts


class EventInput(BaseModel):
    """Publish one catalog event (activity `events.publish`), idempotent on `idempotency_key`."""

    idempotency_key: str
    type: str
    partner_id: str
    occurred_at: datetime
    data: dict[str, Any]


class PublishResult(BaseModel):
    event_id: str
    deliveries: int  # subscriptions it is queued for


class StreamInput(BaseModel):
    """The delivery stream of one subscription and partner (`webhooks-{subscription}-{partner}`)."""

    subscription_id: str
    partner_id: str


class Wake(BaseModel):
    reason: str = "new event"


class NextDelivery(BaseModel):
    delivery_ids: list[int] = Field(default_factory=list)  # the oldest pending first; empty: nothing pending


class DeliverInput(BaseModel):
    delivery_id: int


class DeliverResult(BaseModel):
    status: DeliveryStatus
    status_code: int | None = None


class GiveUpInput(BaseModel):
    delivery_id: int
    error: str = Field(max_length=2000)
