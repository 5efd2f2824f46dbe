"""Bodies of the MDF endpoints: funds, requests, decisions, claims, payments, clawbacks, reports.
Money is integer minor units with an ISO 4217 code."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.schemas import JSON_NUMBER, IsoDate, Name, Reason, RequiredReason, Strict, at_most
from journeys.mdf.domain import Decision, MdfProgress, MdfState

MAX_MINOR = 10**13  # minor units: the largest amount of any MDF operation (100 billion)
Minor = Annotated[
    int, Field(gt=0, le=MAX_MINOR, description="minor units (cents), e.g. 250000 = 2,500.00"), JSON_NUMBER
]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code")]
# A funding period of the years 2000 to 2099 (the horizon of the edge's dates): a year, half, quarter
# or month; which kind the program uses is the policy's (`mdf.period`), checked when the fund is opened.
PERIOD = r"^20[0-9]{2}(-(Q[1-4]|H[1-2]|0[1-9]|1[0-2]))?$"
Period = Annotated[str, Field(pattern=PERIOD, description="e.g. 2026-Q4")]


class BalancesOut(BaseModel):
    allocated_minor: int
    accrued_minor: int
    adjusted_minor: int
    funded_minor: int
    reserved_minor: int
    claimed_minor: int
    paid_minor: int
    expired_minor: int
    available_minor: int
    expiring_minor: int = Field(description="what expires at `expires_at` unless requested before")


class EntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    amount_minor: int
    request_id: uuid.UUID | None
    by: str
    reason: str | None
    at: datetime


class FundOut(BaseModel):
    id: uuid.UUID
    period: str
    currency: str
    starts_at: datetime
    ends_at: datetime
    expires_at: datetime
    balances: BalancesOut
    entries: list[EntryOut]


class FundsOut(BaseModel):
    partner_id: uuid.UUID
    currency: str
    funds: list[FundOut]


class AllocationBody(Strict):
    period: Period | None = Field(None, description="defaults to the current period")
    amount_minor: Minor
    reason: RequiredReason


class AdjustmentBody(Strict):
    period: Period | None = None
    amount_minor: Annotated[
        int,
        Field(ge=-(10**13), le=10**13, description="signed, not zero", json_schema_extra={"not": {"const": 0}}),
        JSON_NUMBER,
    ]
    reason: RequiredReason

    @field_validator("amount_minor")
    @classmethod
    def _not_zero(cls, v: int) -> int:
        if v == 0:
            raise ValueError("an adjustment is not zero")
        return v


class MdfCreate(Strict):
    partner_id: uuid.UUID | None = Field(None, description="defaults to the caller's partner for a partner key")
    activity_type: str = Field(pattern=r"^[a-z][a-z0-9_]{1,39}$", description="a key of the policy's catalog")
    title: Name
    planned_start: IsoDate
    planned_end: IsoDate
    amount_minor: Minor
    currency: Currency
    expected_outcomes: Reason = ""
    period: Period | None = Field(None, description="the fund to draw from; defaults to the current period")


class MdfOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    partner_id: uuid.UUID
    fund_id: uuid.UUID
    period: str
    activity_type: str
    title: str
    planned_start: date
    planned_end: date
    amount_minor: int
    currency: str
    requested_amount_minor: int
    requested_currency: str
    exchange_rate: str | None
    partner_share_percent: float
    expected_outcomes: str
    state: MdfState
    awaiting_level: int | None
    approved_minor: int | None
    claim_minor: int | None
    approved_claim_minor: int | None
    paid_minor: int
    decided_by: str | None
    decision_reason: str | None
    created_by: str
    created_at: datetime


class MdfDetailOut(MdfOut):
    progress: MdfProgress | None = Field(None, description="the journey's live state (absent if it cannot answer)")


class DecisionBody(Strict):
    decision: Decision
    amount_minor: Minor | None = Field(None, description="approve_lower: the amount approved")
    reason: Reason = ""


class ResubmissionBody(Strict):
    title: Name
    planned_start: IsoDate
    planned_end: IsoDate
    amount_minor: Minor
    expected_outcomes: Reason = ""


class DatesBody(Strict):
    planned_start: IsoDate
    planned_end: IsoDate


class PaymentBody(Strict):
    reference: Annotated[Name, Field(max_length=100), at_most(100)]
    amount_minor: Minor
    paid_on: IsoDate


class ClawbackBody(Strict):
    amount_minor: Minor
    reason: RequiredReason


class ProofOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    uploaded_by: str
    created_at: datetime


class ClawbackOut(BaseModel):
    request_id: uuid.UUID
    amount_minor: int
    paid_minor: int
    clawed_back_minor: int


class UtilizationRow(BaseModel):
    partner_id: uuid.UUID
    partner_name: str
    period: str
    currency: str
    allocated_minor: int
    requested_minor: int
    approved_minor: int
    claimed_minor: int
    paid_minor: int
    expired_minor: int
    utilization_percent: float | None = Field(description="paid ÷ (allocated + accrued + adjusted), in %")
    fund_id: uuid.UUID = Field(description="the fund of the row; `?after=` continues after it")


class RoiRow(BaseModel):
    partner_id: uuid.UUID
    partner_name: str
    period: str
    currency: str
    paid_minor: int
    won_revenue_minor: int = Field(description="closed-won deals linked to the period's MDF activities")
    roi: float | None = Field(description="won revenue ÷ paid")
