"""Request and response bodies of the API."""
from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from domain.cert import CertState
from domain.deal import DealStage, DealState, Decision, normalize_domain
from domain.enums import PartnerStatus, PartnerType, Role, Tier

EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
DOMAIN = r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CamCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(pattern=EMAIL, max_length=320)

    @field_validator("email")
    @classmethod
    def _lower(cls, v: str) -> str:
        return v.lower()


class CamOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    email: str
    created_at: datetime


class PartnerCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    domain: str = Field(max_length=253, description="the partner's web domain, e.g. acme.com")
    country: str = Field(pattern=r"^[A-Za-z]{2}$", description="ISO 3166-1 alpha-2 code")
    type: PartnerType
    tier: Tier
    cam_id: uuid.UUID | None = None
    contact_email: str = Field(pattern=EMAIL, max_length=320)

    @field_validator("domain")
    @classmethod
    def _domain(cls, v: str) -> str:
        v = v.lower().strip().rstrip(".")
        for prefix in ("https://", "http://"):
            v = v.removeprefix(prefix)
        v = v.split("/")[0].removeprefix("www.")
        if not re.match(DOMAIN, v):
            raise ValueError("must be a domain name such as acme.com")
        return v

    @field_validator("country")
    @classmethod
    def _upper(cls, v: str) -> str:
        return v.upper()

    @field_validator("contact_email")
    @classmethod
    def _email_lower(cls, v: str) -> str:
        return v.lower()


class PartnerUpdate(Strict):
    """Coverage change: a new tier and/or CAM (send `cam_id: null` to remove the CAM)."""

    tier: Tier | None = None
    cam_id: uuid.UUID | None = None


class MilestoneOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    key: str
    title: str
    required: bool
    due_at: datetime
    done_at: datetime | None
    done_by: str | None


class JourneyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    journey: str
    workflow_id: str
    state: str
    updated_at: datetime


class PartnerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    domain: str
    country: str
    type: PartnerType
    tier: Tier
    cam_id: uuid.UUID | None
    contact_email: str
    status: PartnerStatus
    created_at: datetime


class PartnerDetail(PartnerOut):
    milestones: list[MilestoneOut] = []
    journeys: list[JourneyOut] = []


class TimelineEntry(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    actor: str
    action: str
    journey: str | None
    detail: dict[str, Any]


class ApiKeyCreate(Strict):
    role: Role
    cam_id: uuid.UUID | None = None
    partner_id: uuid.UUID | None = None
    label: str = Field("", max_length=200)


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    role: Role
    cam_id: uuid.UUID | None
    partner_id: uuid.UUID | None
    label: str
    key: str = Field(description="the secret; shown once, stored only as a hash")


class MilestoneReport(BaseModel):
    partner_id: uuid.UUID
    milestone: str
    accepted: bool
    already_done: bool


class DealCreate(Strict):
    partner_id: uuid.UUID | None = Field(None, description="defaults to the caller's partner for a partner key")
    customer_name: str = Field(min_length=1, max_length=200)
    customer_domain: str = Field(min_length=3, max_length=253)
    product_category: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,59}$", description="e.g. 'network', 'security'")
    amount: Decimal = Field(gt=0, max_digits=14, decimal_places=2, description="deal value, e.g. '12500.00'")
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    expected_close_date: date
    stage: DealStage = DealStage.qualification

    @field_validator("customer_domain")
    @classmethod
    def _domain(cls, v: str) -> str:
        d = normalize_domain(v)
        if not re.match(DOMAIN, d):
            raise ValueError("must be a domain name such as customer.com")
        return d

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
    created_by: str
    created_at: datetime


class DecisionBody(Strict):
    decision: Decision
    reason: str = Field(min_length=1, max_length=1000)


class StageBody(Strict):
    stage: DealStage


class ExtensionBody(Strict):
    days: float = Field(gt=0, le=3650)
    reason: str = Field("", max_length=1000)


class ExtensionDecisionBody(Strict):
    decision: Decision
    reason: str = Field("", max_length=1000)


class CertCreate(Strict):
    partner_id: uuid.UUID
    person_name: str = Field(min_length=1, max_length=200)
    person_email: str = Field(pattern=EMAIL, max_length=320)
    track: str = Field(min_length=1, max_length=120, description="e.g. 'Network Associate'")
    product_category: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,59}$")
    issued_at: AwareDatetime = Field(description="with a time zone, e.g. 2026-06-30T00:00:00Z")
    expires_at: AwareDatetime


class CertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    partner_id: uuid.UUID
    person_name: str
    person_email: str
    track: str
    product_category: str
    issued_at: datetime
    expires_at: datetime
    state: CertState
    restricted: bool
    period: int
    created_at: datetime


class RenewalBody(Strict):
    expires_at: AwareDatetime
