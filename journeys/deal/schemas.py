"""Bodies of the deal registration endpoints."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

from api.schemas import CATEGORY, DOMAIN_INPUT, IsoDate, Name, Reason, RequiredReason, Strict, check_domain
from journeys.deal.domain import DealStage, DealState, Decision, normalize_domain

OPEN_STAGES = [s.value for s in DealStage if s not in (DealStage.closed_won, DealStage.closed_lost)]
# What `amount` accepts, as documented: a positive number with at most 12 digits before the
# point and 2 after it, as a JSON number or a string.
AMOUNT_SCHEMA = {
    "anyOf": [
        {"type": "number", "exclusiveMinimum": 0, "maximum": 999_999_999_999.99, "multipleOf": 0.01},
        {"type": "string", "pattern": r"^([1-9][0-9]{0,11}(\.[0-9]{1,2})?|0\.([1-9][0-9]?|0[1-9]))$"},
    ],
    "description": "deal value, e.g. '12500.00'",
}


class DealCreate(Strict):
    partner_id: uuid.UUID | None = Field(None, description="defaults to the caller's partner for a partner key")
    customer_name: Name
    customer_domain: str = Field(
        min_length=3,
        max_length=253,
        description="the customer's domain; a URL or a subdomain is reduced to the registrable domain",
        json_schema_extra={"pattern": DOMAIN_INPUT},
    )
    product_category: str = Field(pattern=CATEGORY, description="e.g. 'network', 'security'")
    amount: Annotated[Decimal, WithJsonSchema(AMOUNT_SCHEMA)] = Field(gt=0, max_digits=14, decimal_places=2)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    expected_close_date: IsoDate = Field(description="e.g. 2027-03-31")
    stage: Annotated[
        DealStage, WithJsonSchema({"type": "string", "enum": OPEN_STAGES, "description": "an open stage"})
    ] = DealStage.qualification
    mdf_request_id: uuid.UUID | None = Field(None, description="the partner's MDF activity that sourced this deal")
    lead_id: uuid.UUID | None = Field(
        None,
        description="a lead the partner accepted, credited with this deal (converted); 409 when it is not accepted",
    )

    @field_validator("customer_domain")
    @classmethod
    def _domain(cls, v: str) -> str:
        return check_domain(normalize_domain(v))

    @field_validator("stage")
    @classmethod
    def _open_stage(cls, v: DealStage) -> DealStage:
        if v in (DealStage.closed_won, DealStage.closed_lost):
            raise ValueError("a deal is registered in an open stage")
        return v


class DealOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    partner_id: uuid.UUID
    customer_name: str
    customer_domain: str
    product_category: str
    amount_minor: int
    currency: str
    expected_close_date: date
    stage: DealStage
    state: DealState
    conflict_with: uuid.UUID | None
    decided_by: str | None
    decision_reason: str | None
    protected_until: datetime | None
    extensions_used: int
    mdf_request_id: uuid.UUID | None = None
    created_by: str
    created_at: datetime


class DecisionBody(Strict):
    decision: Decision
    reason: RequiredReason


class StageBody(Strict):
    stage: DealStage


class ExtensionBody(Strict):
    days: float = Field(gt=0, le=3650, strict=True)
    reason: Reason = ""


class ExtensionDecisionBody(Strict):
    decision: Decision
    reason: Reason = ""
