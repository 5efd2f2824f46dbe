"""Bodies of the certification renewal endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.schemas import CATEGORY, Strict
from domain.cert import CertState
from domain.types import Email, Name


class CertCreate(Strict):
    partner_id: uuid.UUID
    person_name: Name
    person_email: Email
    track: Name = Field(max_length=120, description="e.g. 'Network Associate'")
    product_category: str = Field(pattern=CATEGORY)
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
