"""Contracts of the certification renewal journey (`cert-{certification_id}`)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel

from domain.journeys import Coverage, NotifyInput

JOURNEY = "cert"

# Messages (besides the shared CHANGE_COVERAGE and PROGRESS).
RENEW = "renew"  # update: the certification was renewed


class CertActivity:
    """Activity names of this journey."""

    RECORD_STATE = "cert.record_state"
    # The state and the email that tells it in one step (`TELLS_WITH_STATE`).
    RECORD_STATE_AND_NOTIFY = "cert.record_state_and_notify"


LEGACY_ACTIVITY_NAMES = {CertActivity.RECORD_STATE: "record_cert_state"}

# Since the kit's generation 2 (domain/journeys.py `LEAN_PATCHES`) the first period's `active`
# step tells the partner's onboarding journey its first certification (a signal the activity sends
# once the state is recorded), not the workflow (two history events, often a workflow task).
MILESTONE_IN_STEP = 2
# Since the kit's generation 13 the grace period and the lapse are each recorded with the email that
# tells them in one step (`cert.record_state_and_notify`, as the deal's states since generation 12).
TELLS_WITH_STATE = 13


class CertState(StrEnum):
    active = "active"
    grace = "grace"  # expired, entitlements not yet restricted (policy grace period)
    lapsed = "lapsed"  # expired, entitlements restricted until renewal


class CertInput(BaseModel):
    """One period of a certification; continue-as-new carries it to the next period."""

    cert_id: str
    partner_id: str
    partner_name: str
    coverage: Coverage
    person_name: str
    person_email: str
    track: str
    product_category: str
    expires_at: datetime
    period: int = 1  # 1 for the first period, +1 at each renewal
    policy_version: int | None = None


class Renewal(BaseModel):
    """Update: the certification was renewed (API or LMS)."""

    expires_at: datetime
    by: str


class RenewalResult(BaseModel):
    cert_id: str
    state: CertState
    expires_at: datetime
    period: int


class CertProgress(BaseModel):
    cert_id: str
    partner_id: str
    state: CertState
    expires_at: datetime
    period: int
    restricted: bool
    reminders_sent: list[str]


class CertStateInput(BaseModel):
    idempotency_key: str
    cert_id: str
    state: CertState
    restricted: bool
    by: str
    expires_at: datetime | None = None
    period: int | None = None
    at: datetime
    milestone_by: str | None = None  # set: once recorded, tell onboarding the first certification (by this actor)


class CertStateNotice(BaseModel):
    """A state change (`record`) and the email that tells it (`notice`, with the events it
    carries), recorded and queued in one transaction, then sent (`TELLS_WITH_STATE`)."""

    record: CertStateInput
    notice: NotifyInput


def describe(inp: CertInput) -> tuple[str, str]:
    """The journey's static summary and details in the Temporal Web UI (encrypted by the codec)."""
    return (
        f"Certification: {inp.track} ({inp.product_category}) — {inp.person_name}, {inp.partner_name} "
        f"({inp.coverage.tier.value}) — expires {inp.expires_at:%Y-%m-%d}",
        f"**Certification** {inp.cert_id}  \n**Partner** {inp.partner_id}  \n**Period** {inp.period}  \n"
        f"**Policy version** {inp.policy_version or 'current at start'}",
    )
