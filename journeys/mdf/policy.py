"""The market development funds journey's section of the program policy (`ProgramPolicy.mdf`):
funds, activity types, approval levels, claim windows, payment and proof rules. Pure pydantic."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.enums import Tier
from domain.policy_kit import MAX_DAYS, PlatformPolicy, PolicySection, check_offsets
from domain.types import Name, at_most


class ProofKind(StrEnum):
    invoice = "invoice"
    photo = "photo"
    attendee_list = "attendee_list"


class MdfActivityType(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=r"^[a-z][a-z0-9_]{1,39}$", description="stable identifier")
    title: Annotated[Name, Field(max_length=120), at_most(120)]
    proof: list[ProofKind] = Field(min_length=1, description="proof of performance its claim needs")
    partner_share_percent: float = Field(
        50, ge=0, lt=100, allow_inf_nan=False, description="the partner's matching share of the cost"
    )
    pre_approved: bool = Field(False, description="long-tail partners' requests up to the limit need no human")


class ApprovalLevel(BaseModel):
    """A level of approval: needed for amounts above `above_minor` (the first level always)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{1,39}$", description="e.g. cam, channel_marketing, finance")
    above_minor: int = Field(ge=0, le=10**15, description="needed when the amount is above this")
    sla_days: float = Field(2, gt=0, le=MAX_DAYS, allow_inf_nan=False, description="pending this long: reminder")
    escalation_days: float = Field(
        4, gt=0, le=MAX_DAYS, allow_inf_nan=False, description="pending this long: escalation to ops"
    )


def _default_mdf_types() -> list[MdfActivityType]:
    return [
        MdfActivityType(
            key="event",
            title="Event or trade show",
            proof=[ProofKind.invoice, ProofKind.photo, ProofKind.attendee_list],
            partner_share_percent=50,
        ),
        MdfActivityType(
            key="webinar",
            title="Webinar",
            proof=[ProofKind.invoice, ProofKind.attendee_list],
            partner_share_percent=50,
            pre_approved=True,
        ),
        MdfActivityType(
            key="digital_ads",
            title="Digital advertising",
            proof=[ProofKind.invoice],
            partner_share_percent=50,
            pre_approved=True,
        ),
        MdfActivityType(
            key="print", title="Print collateral", proof=[ProofKind.invoice, ProofKind.photo], partner_share_percent=25
        ),
    ]


def _default_mdf_levels() -> list[ApprovalLevel]:
    return [
        ApprovalLevel(name="cam", above_minor=0),
        ApprovalLevel(name="channel_marketing", above_minor=500_000),
        ApprovalLevel(name="finance", above_minor=2_500_000),
    ]


def _default_mdf_allocations() -> dict[Tier, int]:
    return {Tier.platinum: 5_000_000, Tier.gold: 2_500_000, Tier.silver: 1_000_000, Tier.registered: 250_000}


def _default_mdf_auto() -> dict[Tier, int]:
    return {Tier.platinum: 0, Tier.gold: 0, Tier.silver: 200_000, Tier.registered: 100_000}


def _default_mdf_types_allowed() -> list[str]:
    return ["application/pdf", "image/png", "image/jpeg", "text/csv"]


def _default_expiry_warning_days() -> list[float]:
    return [30, 7]


def _default_claim_reminder_days() -> list[float]:
    return [14, 3]


class MdfPolicy(PolicySection):
    model_config = ConfigDict(extra="forbid")

    currency: str = Field("USD", pattern=r"^[A-Z]{3}$", description="the program currency of every fund")
    period: Literal["month", "quarter", "half", "year"] = Field(
        "quarter", description="one fund per partner and period"
    )
    time_zone: str = Field("UTC", max_length=60, description="IANA time zone of period boundaries and cut-offs")
    allocations: dict[Tier, int] = Field(
        default_factory=_default_mdf_allocations, description="allocation per period, minor units, by tier"
    )
    accrual_percent: float = Field(
        1, ge=0, le=100, allow_inf_nan=False, description="share of closed-won revenue of registered deals accrued"
    )
    accrual_cap_minor: int = Field(1_000_000, ge=0, le=10**15, description="most accrued per partner and period")
    exchange_rates: dict[str, str] = Field(
        default_factory=dict,
        description="units of the program currency per unit of another currency, set by ops, e.g. {'EUR': '1.08'}",
    )
    activity_types: list[MdfActivityType] = Field(default_factory=_default_mdf_types)
    approval_levels: list[ApprovalLevel] = Field(default_factory=_default_mdf_levels)
    auto_approve_max_minor: dict[Tier, int] = Field(
        default_factory=_default_mdf_auto, description="tiers without a CAM: pre-approved types up to this"
    )
    pre_approval_days: float = Field(
        60, gt=0, le=MAX_DAYS, allow_inf_nan=False, description="an approved activity must start within this"
    )
    max_activity_days: float = Field(180, gt=0, le=MAX_DAYS, allow_inf_nan=False)
    claim_window_days: float = Field(
        45, gt=0, le=MAX_DAYS, allow_inf_nan=False, description="after the activity's end, days to claim"
    )
    claim_reminder_days: list[float] = Field(
        default_factory=_default_claim_reminder_days, description="reminders this many days before the window ends"
    )
    pause_window_when_returned: bool = Field(False, description="the claim window stops while the partner adds proof")
    expiry_grace_days: float = Field(
        15, ge=0, le=MAX_DAYS, allow_inf_nan=False, description="after period end, days before unreserved funds expire"
    )
    expiry_warning_days: list[float] = Field(
        default_factory=_default_expiry_warning_days, description="warnings this many days before funds expire"
    )
    payment_cutoff_day: int | None = Field(
        15, ge=1, le=28, description="approved claims become due for payment on this day of the month"
    )
    audit_days: float = Field(365, gt=0, le=MAX_DAYS, allow_inf_nan=False, description="clawbacks allowed this long")
    max_files: int = Field(10, ge=1, le=100)
    max_file_bytes: int = Field(10 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024)
    max_total_bytes: int = Field(25 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    allowed_types: list[str] = Field(default_factory=_default_mdf_types_allowed, description="checked by content")
    decision_link_days: float = Field(7, gt=0, le=MAX_DAYS, allow_inf_nan=False)

    @model_validator(mode="after")
    def _check(self) -> MdfPolicy:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"mdf.time_zone: {self.time_zone!r} is not an IANA time zone") from err
        by_tiers = (("allocations", self.allocations), ("auto_approve_max_minor", self.auto_approve_max_minor))
        for field, by_tier in by_tiers:
            missing = [t.value for t in Tier if t not in by_tier]
            if missing:
                raise ValueError(f"mdf.{field}: missing for {', '.join(missing)}")
            if any(not 0 <= v <= 10**15 for v in by_tier.values()):
                raise ValueError(f"mdf.{field}: amounts are minor units from 0 to 10^15")
        keys = [t.key for t in self.activity_types]
        if not keys or len(keys) != len(set(keys)):
            raise ValueError("mdf.activity_types: at least one, with unique keys")
        levels = self.approval_levels
        if not levels or levels[0].above_minor != 0:
            raise ValueError("mdf.approval_levels: the first level applies to every amount (above_minor 0)")
        if any(b.above_minor <= a.above_minor for a, b in zip(levels, levels[1:], strict=False)):
            raise ValueError("mdf.approval_levels: above_minor must increase from level to level")
        if len({lv.name for lv in levels}) != len(levels):
            raise ValueError("mdf.approval_levels: names must be unique")
        for lv in levels:
            if lv.escalation_days <= lv.sla_days:
                raise ValueError(f"mdf.approval_levels: {lv.name}: escalation_days must be longer than sla_days")
        for code, rate in self.exchange_rates.items():
            if not (len(code) == 3 and code.isascii() and code.isupper() and code.isalpha()) or code == self.currency:
                raise ValueError(f"mdf.exchange_rates: {code!r} is not another ISO 4217 code")
            try:
                ok = 0 < Decimal(rate) < 10**6
            except (InvalidOperation, ValueError):
                ok = False
            if not ok:
                raise ValueError(f"mdf.exchange_rates: {code}: {rate!r} is not a positive decimal rate")
        if self.max_file_bytes > self.max_total_bytes:
            raise ValueError("mdf.max_file_bytes must not exceed mdf.max_total_bytes")
        allowed = {"application/pdf", "image/png", "image/jpeg", "text/csv"}
        if not self.allowed_types or not set(self.allowed_types) <= allowed:
            raise ValueError(f"mdf.allowed_types: choose from {', '.join(sorted(allowed))}")
        check_offsets("mdf.claim_reminder_days", self.claim_reminder_days)
        check_offsets("mdf.expiry_warning_days", self.expiry_warning_days)
        return self

    def activity_type(self, key: str) -> MdfActivityType | None:
        return next((t for t in self.activity_types if t.key == key), None)

    def levels_for(self, amount_minor: int) -> list[ApprovalLevel]:
        """The levels an amount needs: the first always, each next one above its threshold."""
        return [lv for i, lv in enumerate(self.approval_levels) if i == 0 or amount_minor > lv.above_minor]

    def timers(self, platform: PlatformPolicy) -> dict[str, float]:
        return {
            "approval_levels": max(lv.escalation_days for lv in self.approval_levels),
            "pre_approval_days": self.pre_approval_days + self.max_activity_days,
            "claim_window_days": self.claim_window_days,
            "audit_days": self.audit_days,
            "expiry_grace_days": self.expiry_grace_days + max(self.expiry_warning_days, default=0),
            "decision_link_days": self.decision_link_days,
        }


SECTION = MdfPolicy
