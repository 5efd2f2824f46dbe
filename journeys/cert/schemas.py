"""Bodies of the certification renewal endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import CATEGORY, Email, IsoDatetime, Name, Strict, at_most
from journeys.cert.domain import CertState


class CertCreate(Strict):
    partner_id: uuid.UUID
    person_name: Name
    person_email: Email
    # Annotated, so that 120 (the column's length) wins over Name's 200: `track: Name = Field(max_length=120)`
    # validated up to 200 characters and the database refused the rest with a 500.
    track: Annotated[Name, Field(max_length=120), at_most(120)] = Field(description="e.g. 'Network Associate'")
    product_category: str = Field(pattern=CATEGORY)
    issued_at: IsoDatetime = Field(description="with a time zone, e.g. 2026-06-30T00:00:00Z")
    expires_at: IsoDatetime


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
    expires_at: IsoDatetime = Field(description="with a time zone, e.g. 2027-06-30T00:00:00Z")
