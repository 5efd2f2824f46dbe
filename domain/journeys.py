"""Contracts every journey shares: search attributes, notifications, state records."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from temporalio.common import SearchAttributeKey

from domain.enums import Journey, Tier

# Typed search attributes, registered on the Temporal server (see worker/devstack.py).
SA_PARTNER_ID = SearchAttributeKey.for_keyword("PartnerId")
SA_CAM_ID = SearchAttributeKey.for_keyword("CamId")
SA_TIER = SearchAttributeKey.for_keyword("Tier")
SA_JOURNEY = SearchAttributeKey.for_keyword("Journey")
SA_JOURNEY_STATE = SearchAttributeKey.for_keyword("JourneyState")
SEARCH_ATTRIBUTES = [SA_PARTNER_ID, SA_CAM_ID, SA_TIER, SA_JOURNEY, SA_JOURNEY_STATE]

NO_CAM = "none"  # CamId value for partners without a CAM (keyword attributes cannot be null)


def workflow_id(journey: Journey, entity_id: str) -> str:
    return f"{journey.value}-{entity_id}"


class Coverage(BaseModel):
    """Who covers a partner: its tier and CAM (None for tiers without one)."""

    tier: Tier
    cam_id: str | None = None


class NotifyInput(BaseModel):
    """Queue one notification (one outbox row per recipient) and record it in the audit trail.

    `idempotency_key` is the workflow id plus the step; a retry writes nothing twice.
    `recipients` are roles resolved from the DB at send time: "partner", "cam", "ops".
    """

    idempotency_key: str
    partner_id: str
    journey: Journey
    template: str
    recipients: list[str]
    context: dict[str, Any] = Field(default_factory=dict)
    audit_action: str


class NotifyResult(BaseModel):
    queued: int
    recipients: list[str]


class SendInput(BaseModel):
    idempotency_key: str


class SendResult(BaseModel):
    sent: int
    already_sent: int


class JourneyStateInput(BaseModel):
    """Record a journey's state in the read model (journeys table) with an audit row."""

    idempotency_key: str
    partner_id: str
    journey: Journey
    workflow_id: str
    state: str
    action: str
    detail: dict[str, Any] = Field(default_factory=dict)
    at: datetime


class LoadPolicyInput(BaseModel):
    version: int | None = None


class StepResult(BaseModel):
    applied: bool
