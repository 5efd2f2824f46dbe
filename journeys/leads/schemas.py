"""Bodies of the lead distribution endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from api.schemas import CATEGORY, DOMAIN_INPUT, LINE, Email, Label, Name, Reason, RequiredReason, Strict, check_domain
from journeys.deal.contract import normalize_domain
from journeys.leads.domain import LeadState
from journeys.leads.policy import RoutingRule

COUNTRY = r"^[A-Z]{2}$"


class LeadCreate(Strict):
    external_id: str | None = Field(None, min_length=1, max_length=100, pattern=r"^[\x21-\x7e]+$")
    company: Name
    domain: str = Field(min_length=3, max_length=253, json_schema_extra={"pattern": DOMAIN_INPUT})
    contact_name: Name
    contact_email: Email
    country: str = Field(pattern=COUNTRY, description="ISO 3166 alpha-2, e.g. DE")
    region: str = Field("", max_length=60, pattern=LINE)
    product_category: str = Field(pattern=CATEGORY)
    value: Decimal | None = Field(None, gt=0, max_digits=14, decimal_places=2)
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    source: Label = ""
    notes: Reason = ""

    @field_validator("domain")
    @classmethod
    def _domain(cls, v: str) -> str:
        return check_domain(normalize_domain(v))

    @model_validator(mode="after")
    def _money(self) -> LeadCreate:
        if (self.value is None) != (self.currency is None):
            raise ValueError("value and currency go together")
        return self


class CrmLead(LeadCreate):
    """A lead from the CRM (`POST /events/crm`, type `lead.created`): the fields of `POST /leads`,
    its `external_id` (the CRM's id of the lead) required: a lead received before is not created twice."""

    external_id: str = Field(min_length=1, max_length=100, pattern=r"^[\x21-\x7e]+$")


class LeadOut(BaseModel):
    """A lead as a partner sees it (its own offers only; no routing path)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    external_id: str | None
    company: str
    domain: str
    contact_name: str
    contact_email: str
    country: str
    region: str
    product_category: str
    value_minor: int | None
    currency: str | None
    source: str
    notes: str
    state: LeadState
    partner_id: uuid.UUID | None
    deal_id: uuid.UUID | None
    created_at: datetime


class LeadDetail(LeadOut):
    """A lead as ops and CAMs see it: the state's reason and the whole routing path."""

    state_reason: str | None
    routing: list[dict[str, Any]]
    created_by: str


class DeclineBody(Strict):
    reason_code: str = Field(pattern=r"^[a-z_]{1,40}$", description="one of the policy's `leads.decline_reasons`")
    reason: Reason = ""


class HandBackBody(Strict):
    reason: RequiredReason


class RecallBody(Strict):
    reason: RequiredReason
    to_partner_id: uuid.UUID | None = Field(None, description="offer to this partner; none: route again")


class DealLinkBody(Strict):
    deal_id: uuid.UUID


class PreferencesBody(Strict):
    accepting: bool = Field(True, strict=True)
    capacity: int = Field(10, ge=0, le=1000, strict=True)
    countries: list[Annotated[str, Field(max_length=2, pattern=COUNTRY)]] = Field(default_factory=list, max_length=250)
    regions: list[Annotated[str, Field(max_length=60, pattern=CATEGORY)]] = Field(default_factory=list, max_length=100)
    categories: list[Annotated[str, Field(max_length=60, pattern=CATEGORY)]] = Field(
        default_factory=list, max_length=100
    )
    time_zone: str | None = Field(None, max_length=60, pattern=r"^[A-Za-z0-9_+/-]{1,60}$")

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        if v is not None:
            try:
                ZoneInfo(v)
            except (ZoneInfoNotFoundError, ValueError) as err:
                raise ValueError(f"unknown time zone {v!r}") from err
        return v


class DryRunBody(Strict):
    rules: list[RoutingRule] = Field(max_length=50, description="a draft of the policy's `leads.rules`")
    last: int = Field(100, ge=1, le=1000, strict=True, description="the last N leads to route again")


class DryRunLead(BaseModel):
    lead_id: uuid.UUID
    before: str | None  # the partner the current rules pick (None: unplaced)
    after: str | None  # the partner the draft picks
    before_rule: str | None
    after_rule: str | None


class DryRunOut(BaseModel):
    leads: list[DryRunLead]
    shares: dict[str, dict[str, float]]  # partner id (or "unplaced") -> {"before": share, "after": share}


class ImportRowError(BaseModel):
    row: int  # 1 is the first data row (after the header)
    errors: list[str]


class ImportOut(BaseModel):
    created: list[uuid.UUID]
    skipped: list[ImportRowError]  # rows already imported (same external_id) or duplicating an open lead


class SourceAttribution(BaseModel):
    """What the leads of one source (campaign) became: how many were accepted (by some partner,
    even if handed back later), converted (a deal credited) and won (the credited deal closed won),
    and the won deals' revenue per currency (minor units)."""

    source: str
    leads: int
    accepted: int
    converted: int
    won: int
    won_minor: dict[str, int] = Field(description="closed-won revenue per ISO 4217 currency, in minor units")
    acceptance_rate: float | None = Field(description="accepted / leads")
    conversion_rate: float | None = Field(description="converted / accepted")
