"""The certification journey's section of the program policy (`ProgramPolicy.cert`): reminders
before expiry, the CAM's alert, the grace period and what a lapse does to deals. Pure pydantic."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from domain.policy_kit import MAX_DAYS, PlatformPolicy, PolicySection, check_offsets


def _default_cert_reminder_days() -> list[float]:
    return [60, 30, 7]


class CertPolicy(PolicySection):
    model_config = ConfigDict(extra="forbid")

    reminder_days: list[float] = Field(
        default_factory=_default_cert_reminder_days,
        description="reminders to the person and the partner, days before expiry",
    )
    cam_alert_days: float = Field(
        30, gt=0, le=MAX_DAYS, allow_inf_nan=False, description="CAM tiers: the CAM is alerted this many days before"
    )
    grace_days: float = Field(
        0,
        ge=0,
        le=MAX_DAYS,
        allow_inf_nan=False,
        description="after expiry, days before the entitlements are restricted",
    )
    lapse_action: Literal["refuse", "review"] = Field(
        "refuse", description="a deal in a lapsed certification's category is refused, or held for CAM review"
    )

    @model_validator(mode="after")
    def _check(self) -> CertPolicy:
        check_offsets("cert.reminder_days", self.reminder_days)
        return self

    def timers(self, platform: PlatformPolicy) -> dict[str, float]:
        return {
            "reminder_days": max(self.reminder_days, default=0) + self.grace_days,
            "cam_alert_days": self.cam_alert_days + self.grace_days,
        }


SECTION = CertPolicy
