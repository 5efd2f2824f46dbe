"""Bodies of the partner endpoints (enrolment, coverage, the read model, the timeline)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.schemas import DOMAIN_INPUT, Email, Name, Strict, check_domain
from domain.enums import PartnerStatus, PartnerType, Tier
from journeys.onboarding.contract import Milestone


class PartnerCreate(Strict):
    name: Name
    domain: str = Field(
        max_length=253,
        description="the partner's web domain, e.g. acme.com (a URL such as https://www.acme.com/ is reduced to it)",
        json_schema_extra={"pattern": DOMAIN_INPUT},
    )
    country: str = Field(pattern=r"^[A-Za-z]{2}$", description="ISO 3166-1 alpha-2 code")
    type: PartnerType
    tier: Tier
    cam_id: uuid.UUID | None = None
    contact_email: Email
    override_capacity: bool = Field(False, description="ops confirm a CAM beyond capacity (audited)")

    @field_validator("domain")
    @classmethod
    def _domain(cls, v: str) -> str:
        v = v.lower().strip().rstrip(".")
        for prefix in ("https://", "http://"):
            v = v.removeprefix(prefix)
        v = v.split("/")[0].removeprefix("www.")
        return check_domain(v)

    @field_validator("country")
    @classmethod
    def _upper(cls, v: str) -> str:
        return v.upper()


class PartnerUpdate(Strict):
    """Coverage change: a new tier and/or CAM (send `cam_id: null` to remove the CAM)."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})  # `{}` changes nothing: 422

    tier: Tier | None = None
    cam_id: uuid.UUID | None = None
    override_capacity: bool = Field(False, description="ops confirm a CAM beyond capacity (audited)")


class MilestoneOut(Milestone):  # onboarding's milestones, as its contract gives them
    pass


class JourneyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    journey: str
    workflow_id: str
    state: str
    updated_at: datetime
    started_at: datetime | None = Field(None, description="when Temporal confirmed the start (null: pending)")


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

    id: int  # the next page: `?after=<id of the last entry>`
    at: datetime
    actor: str
    action: str
    journey: str | None
    detail: dict[str, Any]
