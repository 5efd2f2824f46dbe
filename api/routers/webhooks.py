"""Outbound webhooks: ops register subscriptions (the signing secret is shown once), read each
subscription's deliveries (status, attempts, last response) and replay one. The event catalog
is readable by every key."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select

from activities.webhooks import check_destination, wake_stream
from api import metrics
from api.deps import OpsDep, PrincipalDep, SessionDep, SettingsDep, TemporalDep
from api.idempotency import Idempotency
from api.openapi import IDEMPOTENCY_409, TEMPORAL_503
from api.routemeta import route_meta
from api.schemas import IdempotencyKey, Label
from core.sealing import seal
from domain import events
from domain.webhooks import DeliveryStatus, new_secret
from store import repo
from store.models.integrations import WebhookDelivery, WebhookEvent, WebhookSubscription

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
catalog_router = APIRouter()  # GET /events/catalog, beside POST /events/crm

# The schema lists the catalog's types (and `*`); the validator below applies the same rule.
EventType = Annotated[
    str, Field(min_length=1, max_length=80, json_schema_extra={"enum": [events.WILDCARD, *events.CATALOG]})
]


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=8, max_length=2000, pattern=r"^https?://[\x21-\x7e]+$", description="where events are POSTed"
    )
    event_types: list[EventType] = Field(
        min_length=1, max_length=100, description="types from `GET /events/catalog`, or `*` for every type"
    )
    description: Label = ""
    allow_private_network: bool = Field(
        False, description="allow a private, loopback or link-local destination (refused otherwise: SSRF)"
    )

    @field_validator("event_types")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [t for t in value if t != events.WILDCARD and t not in events.CATALOG]
        if unknown:
            raise ValueError(f"unknown event type(s) {', '.join(unknown)}; known: {', '.join(sorted(events.CATALOG))}")
        return list(dict.fromkeys(value))


SHOWN_ONCE = "(shown once, in the first answer: delete this subscription and create another for a new secret)"


class SubscriptionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    event_types: list[str]
    description: str
    allow_private_network: bool
    active: bool
    created_by: str
    created_at: datetime


class SubscriptionCreated(SubscriptionOut):
    secret: str = Field(description="signs every delivery (Standard Webhooks `whsec_...`); shown only now")


class DeliveryOut(BaseModel):
    id: int
    event_id: str
    event_type: str
    partner_id: uuid.UUID
    status: DeliveryStatus
    attempts: int
    replays: int
    last_status_code: int | None
    last_response: str | None
    last_error: str | None
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime


class CatalogEntry(BaseModel):
    type: str
    version: int
    description: str
    data_schema: dict[str, Any]


@router.post(
    "",
    status_code=201,
    response_model=SubscriptionCreated,
    openapi_extra=route_meta(
        {409: IDEMPOTENCY_409},
        business_rule="the URL's host must resolve to a public address unless allow_private_network (SSRF)",
    ),
)
async def create_subscription(
    body: SubscriptionCreate,
    request: Request,
    principal: OpsDep,
    session: SessionDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
):
    """Subscribe a URL to event types. A destination that is not a public address is refused (422)
    unless `allow_private_network` is set, which an integration's key may not do (403). The answer
    carries the signing secret, once."""
    if body.allow_private_network and principal.integration:
        raise HTTPException(
            403, detail="allow_private_network: an integration key may not allow private destinations; ask ops"
        )
    refused = await check_destination(body.url, body.allow_private_network)
    if refused:
        raise HTTPException(422, detail=f"url: {refused}")
    idem = Idempotency(session, principal, idempotency_key, request.url.path, body)

    async def create() -> dict:
        secret = new_secret()
        sub = WebhookSubscription(
            id=uuid.uuid4(),
            url=body.url,
            event_types=body.event_types,
            secret=seal(settings.key_ring(), secret),
            description=body.description,
            allow_private_network=body.allow_private_network,
            active=True,
            created_by=principal.actor,
        )
        session.add(sub)
        await session.flush()
        await repo.claim_step(
            session,
            key=None,
            actor=principal.actor,
            action="webhook.subscribed",
            detail={"subscription_id": str(sub.id), "url": sub.url, "event_types": sub.event_types},
        )
        await session.refresh(sub)
        out = jsonable_encoder(
            SubscriptionCreated.model_validate({**SubscriptionOut.model_validate(sub).model_dump(), "secret": secret})
        )
        await idem.remember(201, {**out, "secret": SHOWN_ONCE})  # the stored answer keeps no secret
        await session.commit()
        return out

    return await idem.run(create)


@router.get("", response_model=list[SubscriptionOut])
async def list_subscriptions(principal: OpsDep, session: SessionDep):
    return (await session.scalars(select(WebhookSubscription).order_by(WebhookSubscription.created_at))).all()


async def _subscription(session, subscription_id: uuid.UUID) -> WebhookSubscription:
    sub = await session.get(WebhookSubscription, subscription_id)
    if sub is None:
        raise HTTPException(404, detail=f"no webhook subscription with id {subscription_id}")
    return sub


@router.get("/{subscription_id}", response_model=SubscriptionOut)
async def get_subscription(subscription_id: uuid.UUID, principal: OpsDep, session: SessionDep):
    return await _subscription(session, subscription_id)


@router.delete("/{subscription_id}", response_model=SubscriptionOut)
async def deactivate(subscription_id: uuid.UUID, principal: OpsDep, session: SessionDep):
    """Stop sending to this subscription (its pending deliveries are failed, its history kept)."""
    sub = await _subscription(session, subscription_id)
    if sub.active:
        sub.active = False
        await repo.claim_step(
            session,
            key=None,
            actor=principal.actor,
            action="webhook.deactivated",
            detail={"subscription_id": str(sub.id)},
        )
        await session.commit()
        await session.refresh(sub)
    return sub


@router.get("/{subscription_id}/deliveries", response_model=list[DeliveryOut])
async def deliveries(
    subscription_id: uuid.UUID,
    principal: OpsDep,
    session: SessionDep,
    status: DeliveryStatus | None = None,
    partner_id: uuid.UUID | None = None,
    limit: int = Query(100, ge=1, le=1000),
):
    """The subscription's deliveries, newest first: status, attempts, the last answer or error."""
    await _subscription(session, subscription_id)
    query = (
        select(WebhookDelivery, WebhookEvent.id, WebhookEvent.type)
        .join(WebhookEvent, WebhookEvent.seq == WebhookDelivery.event_seq)
        .where(WebhookDelivery.subscription_id == subscription_id)
        .order_by(WebhookDelivery.event_seq.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(WebhookDelivery.status == status.value)
    if partner_id is not None:
        query = query.where(WebhookDelivery.partner_id == partner_id)
    rows = (await session.execute(query)).all()
    return [
        DeliveryOut(
            id=d.id,
            event_id=event_id,
            event_type=event_type,
            partner_id=d.partner_id,
            status=DeliveryStatus(d.status),
            attempts=d.attempts,
            replays=d.replays,
            last_status_code=d.last_status_code,
            last_response=d.last_response,
            last_error=d.last_error,
            last_attempt_at=d.last_attempt_at,
            delivered_at=d.delivered_at,
            created_at=d.created_at,
        )
        for d, event_id, event_type in rows
    ]


class ReplayOut(BaseModel):
    delivery_id: int
    status: DeliveryStatus
    replays: int


@router.post(
    "/{subscription_id}/deliveries/{delivery_id}/replay",
    status_code=202,
    response_model=ReplayOut,
    openapi_extra=route_meta(
        {
            409: "the delivery is still pending, or the subscription is deactivated",
            503: TEMPORAL_503,
        }
    ),
)
async def replay(
    subscription_id: uuid.UUID,
    principal: OpsDep,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    delivery_id: int = Path(ge=1, le=2**62),
):
    """Send a delivery again (delivered or failed): it is pending again and its partner's stream
    delivers it, with the same `webhook-id` (receivers deduplicate on it). 409 while it is pending."""
    sub = await _subscription(session, subscription_id)
    row = await session.get(WebhookDelivery, delivery_id, with_for_update=True)
    if row is None or row.subscription_id != sub.id:
        raise HTTPException(404, detail=f"no delivery {delivery_id} of webhook subscription {subscription_id}")
    if row.status == DeliveryStatus.pending.value:
        raise HTTPException(409, detail=f"delivery {delivery_id} is still pending: it is being delivered")
    if not sub.active:
        raise HTTPException(409, detail=f"webhook subscription {subscription_id} is deactivated")
    row.status, row.replays = DeliveryStatus.pending.value, row.replays + 1  # the row is locked (for update)
    await repo.claim_step(
        session,
        key=None,
        actor=principal.actor,
        action="webhook.replayed",
        partner_id=row.partner_id,
        detail={"subscription_id": str(sub.id), "delivery_id": delivery_id},
    )
    partner_id, replays = row.partner_id, row.replays
    await session.commit()
    await wake_stream(temporal, settings.task_queue, sub.id, partner_id)
    metrics.WEBHOOK_REPLAYS.inc()
    return ReplayOut(delivery_id=delivery_id, status=DeliveryStatus.pending, replays=replays)


@catalog_router.get("/events/catalog", response_model=list[CatalogEntry], tags=["webhooks"])
async def catalog(principal: PrincipalDep):
    """The event types a subscription may ask for, each with its version and its `data` schema."""
    return [
        CatalogEntry(
            type=name, version=spec.version, description=spec.description, data_schema=spec.data.model_json_schema()
        )
        for name, spec in sorted(events.CATALOG.items())
    ]
