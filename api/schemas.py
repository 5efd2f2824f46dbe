"""Types every request and response body shares, and the bodies of the program-level routers
(CAMs, API keys). Each journey's bodies live in api/<journey>/schemas.py."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from domain.enums import Role
from domain.types import Email, Label, Name

DOMAIN = r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+(xn--[a-z0-9-]{1,59}|[a-z]{2,63})$"
CATEGORY = r"^[a-z0-9][a-z0-9_-]{0,59}$"


def check_domain(v: str) -> str:
    if not re.match(DOMAIN, v):
        raise ValueError("must be a domain name such as acme.com")
    return v


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CamCreate(Strict):
    name: Name
    email: Email


class CamOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    email: str
    created_at: datetime


class ApiKeyCreate(Strict):
    role: Role
    cam_id: uuid.UUID | None = None
    partner_id: uuid.UUID | None = None
    label: Label = ""


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    role: Role
    cam_id: uuid.UUID | None
    partner_id: uuid.UUID | None
    label: str
    key: str = Field(description="the secret; shown once, stored only as a hash")
