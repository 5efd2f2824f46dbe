"""CRM events in: opportunity stage changes and closed-won / closed-lost (with the amount) from
a CRM, keyed by the deal's id or the CRM's opportunity id, signal the deal journeys, so that a
deal's protection follows the CRM without a human. Idempotent on the CRM's event id.

The journeys contribute further event types through their manifests (`JourneySpec.crm_events`,
e.g. the leads journey's `lead.created`): the event's `data` is the handler's model, and the
handler (the journey's own service) acts on it; the platform names none of them.

The integration calls with an ops key issued to it (`POST /api-keys`, role ops, `"integration": true`,
a label naming the CRM); its actor (`ops:<key id>`) is what the deal's audit trail shows."""

from __future__ import annotations

import functools
import operator
import uuid
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from api import journeys, metrics
from api.deps import OpsDep, SessionDep, SettingsDep, TemporalDep
from api.openapi import TEMPORAL_503
from api.routemeta import route_meta
from api.schemas import JSON_NUMBER, IsoDatetime
from core import registry
from core.journey import CrmContext
from journeys.deal.contract import CHANGE_STAGE, JOURNEY, DealRef, DealStage, DealState, StageChange, lock_deal
from store import repo
from store.models.integrations import CrmEvent, CrmLink

router = APIRouter(prefix="/events", tags=["integrations"])

CLOSING = {"opportunity.closed_won": DealStage.closed_won, "opportunity.closed_lost": DealStage.closed_lost}
OPPORTUNITY = ("opportunity.stage_changed", *CLOSING)
# The journeys' own CRM event types (their manifests' `crm_events`), imported.
JOURNEY_EVENTS = registry.crm_events()
CrmType = Literal[(*OPPORTUNITY, *JOURNEY_EVENTS)]  # type: ignore[valid-type]  # the manifests' types
# The `data` of the journeys' event types: one of their handlers' models.
JourneyData: Any = functools.reduce(operator.or_, [e.model for e in JOURNEY_EVENTS.values()], type(None))
ExternalId = Field(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")


class CrmEventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(
        min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$", description="the CRM's id of this event (dedupe)"
    )
    type: CrmType
    deal_id: uuid.UUID | None = Field(None, description="the deal registration's id")
    crm_opportunity_id: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="the CRM's opportunity id; sent once with deal_id, it alone names the deal afterwards",
    )
    stage: DealStage | None = Field(None, description="opportunity.stage_changed: the new stage")
    amount_minor: Annotated[int, Field(ge=0, le=10**15), JSON_NUMBER] | None = Field(
        None, description="closed won: the amount, in minor units"
    )
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$", description="ISO 4217 code of amount_minor")
    occurred_at: IsoDatetime | None = None
    data: JourneyData = Field(
        None,
        description="a journey's event type: its object, e.g. lead.created: the fields of POST /leads "
        "(external_id, the CRM's id of the lead, required)",
    )

    @model_validator(mode="after")
    def _check(self) -> CrmEventIn:
        if self.type in JOURNEY_EVENTS:
            model = JOURNEY_EVENTS[self.type].model
            if not isinstance(self.data, model):
                raise ValueError(f"data: {self.type} carries {model.__name__}")
            named = [f for f in ("deal_id", "crm_opportunity_id", "stage", "amount_minor") if getattr(self, f)]
            if named:
                raise ValueError(f"{', '.join(named)}: not fields of {self.type}")
            return self
        if self.data is not None:
            raise ValueError(f"data: not a field of {self.type}")
        if self.deal_id is None and self.crm_opportunity_id is None:
            raise ValueError("deal_id or crm_opportunity_id is required")
        if self.type == "opportunity.stage_changed":
            if self.stage is None:
                raise ValueError("stage is required for opportunity.stage_changed")
            if self.stage in CLOSING.values():
                raise ValueError(f"stage {self.stage.value}: send opportunity.{self.stage.value} instead")
        elif self.stage is not None and self.stage != CLOSING[self.type]:
            raise ValueError(f"stage {self.stage.value} contradicts {self.type}")
        if (self.amount_minor is None) != (self.currency is None):
            raise ValueError("amount_minor and currency go together")
        return self

    @property
    def new_stage(self) -> DealStage:
        return CLOSING.get(self.type) or self.stage  # type: ignore[return-value]  # checked above


class CrmEventOut(BaseModel):
    event_id: str
    deal_id: uuid.UUID
    stage: DealStage
    duplicate: bool = Field(description="true: this event id was received before; nothing was done again")


class CrmJourneyEventOut(BaseModel):
    """What a journey's event type did (e.g. lead.created: the lead)."""

    event_id: str
    type: str
    journey: str
    id: uuid.UUID = Field(description="the entity the event created or found, e.g. the lead")
    state: str
    duplicate: bool = Field(description="true: the CRM's object was received before; nothing was done again")


@router.post(
    "/crm",
    status_code=202,
    response_model=CrmEventOut | CrmJourneyEventOut,
    responses={
        200: {
            "model": CrmEventOut | CrmJourneyEventOut,
            "description": "a repeated event id (or a journey object received before): the first answer",
        }
    },
    openapi_extra=route_meta(
        {
            404: "no deal with this deal_id, or none linked to this crm_opportunity_id",
            409: "the deal is not approved or its journey has ended, or the opportunity is linked to another deal; "
            "a journey's event refused by its rules (e.g. lead.created for a customer with an open lead)",
            503: TEMPORAL_503,
        },
        business_rule="deal_id or crm_opportunity_id; a stage only with stage_changed; amount with currency; "
        "a journey's event type carries data (its object) and none of the opportunity fields",
        cross_field=True,
    ),
)
async def crm_event(
    body: CrmEventIn,
    principal: OpsDep,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    response: Response,
):
    """Tell the deal's journey what the CRM says: a stage change, or closed won / lost (which ends
    the journey and releases the protection). 404 when no deal matches, 409 when the deal is not
    approved (or has ended) or the opportunity is linked to another deal. A journey's event type
    (e.g. lead.created) goes to that journey's handler."""
    if body.type in JOURNEY_EVENTS:
        kind = JOURNEY_EVENTS[body.type]
        context = CrmContext(session, temporal, principal, settings.task_queue)
        outcome = await kind.handle(context, body.event_id, body.data)
        if outcome.duplicate:
            response.status_code = 200
        metrics.CRM_EVENTS.labels(body.type, "duplicate" if outcome.duplicate else "applied").inc()
        return CrmJourneyEventOut(event_id=body.event_id, type=body.type, journey=kind.journey, **asdict(outcome))
    if (seen := await session.get(CrmEvent, body.event_id)) is not None:
        response.status_code = 200
        metrics.CRM_EVENTS.labels(body.type, "duplicate").inc()
        return CrmEventOut(event_id=seen.event_id, deal_id=seen.deal_id, stage=DealStage(seen.stage), duplicate=True)
    deal = await _deal(session, body)
    if deal.state != DealState.approved:
        raise HTTPException(409, detail=f"deal {deal.id} is {deal.state}: only an approved deal follows the CRM")
    stage = body.new_stage
    inserted = await session.scalar(
        insert(CrmEvent)
        .values(
            event_id=body.event_id,
            type=body.type,
            deal_id=deal.id,
            crm_opportunity_id=body.crm_opportunity_id,
            stage=stage.value,
            amount_minor=body.amount_minor,
            currency=body.currency,
            received_by=principal.actor,
        )
        .on_conflict_do_nothing()
        .returning(CrmEvent.event_id)
    )
    if inserted is None:  # the same event, concurrently: the other request handles it
        response.status_code = 200
        return CrmEventOut(event_id=body.event_id, deal_id=deal.id, stage=stage, duplicate=True)
    await repo.claim_step(
        session,
        key=f"crm:{body.event_id}",
        actor=principal.actor,
        action="deal.crm_event",
        partner_id=deal.partner_id,
        journey=JOURNEY,
        detail={
            "deal_id": str(deal.id),
            "type": body.type,
            "stage": stage.value,
            "amount_minor": body.amount_minor,
            "currency": body.currency,
            "crm_opportunity_id": body.crm_opportunity_id,
        },
    )
    # Signalled before the commit: a journey that has ended (409) leaves nothing written.
    await journeys.signal(temporal, JOURNEY, deal.id, CHANGE_STAGE, StageChange(stage=stage, by=principal.actor))
    await session.commit()
    metrics.CRM_EVENTS.labels(body.type, "applied").inc()
    return CrmEventOut(event_id=body.event_id, deal_id=deal.id, stage=stage, duplicate=False)


async def _deal(session, body: CrmEventIn) -> DealRef:
    linked = None
    if body.crm_opportunity_id is not None:
        linked = await session.scalar(
            select(CrmLink.deal_id).where(CrmLink.crm_opportunity_id == body.crm_opportunity_id)
        )
    if body.deal_id is None:
        if linked is None:
            raise HTTPException(
                404, detail=f"no deal is linked to CRM opportunity {body.crm_opportunity_id}; send its deal_id once"
            )
        deal_id = linked
    else:
        deal_id = body.deal_id
        if linked is not None and linked != deal_id:
            raise HTTPException(
                409, detail=f"CRM opportunity {body.crm_opportunity_id} is linked to deal {linked}, not {deal_id}"
            )
    deal = await lock_deal(session, deal_id)
    if deal is None:
        raise HTTPException(404, detail=f"no deal with id {deal_id}")
    if body.crm_opportunity_id is not None and linked is None:
        session.add(CrmLink(crm_opportunity_id=body.crm_opportunity_id, deal_id=deal.id))
        await session.flush()
    return deal
