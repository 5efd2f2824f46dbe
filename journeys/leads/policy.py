"""The lead distribution section of the program policy (`ProgramPolicy.leads`): routing rules
evaluated in order, the offer window counted in business hours, reminders, the conversion window.
Pure pydantic (domain/policy.py assembles it from `SECTION`)."""

from __future__ import annotations

from datetime import time
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.enums import Tier
from domain.policy_kit import PlatformPolicy, PolicySection

CODE = r"^[a-z0-9][a-z0-9_-]{0,39}$"
HOUR = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
Country = Annotated[str, Field(min_length=2, max_length=2, pattern=r"^[A-Z]{2}$")]  # ISO 3166 alpha-2
Code = Annotated[str, Field(min_length=1, max_length=60, pattern=r"^[a-z0-9][a-z0-9_-]{0,59}$")]


class Picker(StrEnum):
    round_robin = "round_robin"  # the candidate offered a lead longest ago (never first)
    weighted = "weighted"  # a reproducible draw weighted by tier weight x performance
    longest_idle = "longest_idle"  # the candidate that accepted a lead longest ago (never first)


class OfferMode(StrEnum):
    sequential = "sequential"  # one partner at a time
    pool = "pool"  # up to `pool_size` partners at once: the first to accept wins


class RoutingRule(BaseModel):
    """Applies to a lead whose country / region / category it names (empty: any); its candidates
    are the partners serving the lead, of the tiers it names (empty: any), holding a current
    certification in the lead's category when `certified`, accepting leads, under their capacity.
    `required`: no candidate means the lead waits for a human; otherwise the next rule is tried."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=CODE)
    required: bool = Field(False, strict=True)
    countries: list[Country] = Field(default_factory=list, max_length=300)
    regions: list[Code] = Field(default_factory=list, max_length=300)
    categories: list[Code] = Field(default_factory=list, max_length=100)
    tiers: list[Tier] = Field(default_factory=list, max_length=4)
    certified: bool = Field(
        False,
        strict=True,
        description="only partners holding a current certification in the lead's product category",
    )
    picker: Picker = Picker.round_robin
    mode: OfferMode = OfferMode.sequential
    pool_size: int = Field(3, ge=2, le=20, strict=True, description="partners offered at once in `pool` mode")


class LeadsPolicy(PolicySection):
    model_config = ConfigDict(extra="forbid")

    rules: list[RoutingRule] = Field(
        default_factory=lambda: [RoutingRule(name="anyone", picker=Picker.round_robin)], max_length=50
    )
    categories: list[str] = Field(
        default_factory=list, max_length=200, description="the product categories a lead may name (empty: any)"
    )
    tier_weights: dict[Tier, float] = Field(
        default_factory=lambda: {Tier.platinum: 4.0, Tier.gold: 3.0, Tier.silver: 2.0, Tier.registered: 1.0}
    )
    offer_hours: float = Field(16, gt=0, le=400, description="business hours a partner has to accept an offer")
    reminder_hours: float = Field(4, ge=0, le=400, description="business hours before the deadline: a reminder")
    max_offers: int = Field(5, ge=1, le=50, description="partners offered a lead before it is `unplaced`")
    max_recalls: int = Field(20, ge=1, le=200, description="recalls of one lead by ops (its history stays bounded)")
    working_days: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4], min_length=1, max_length=7)
    day_starts: str = Field("09:00", pattern=HOUR, description="working hours start, local time (HH:MM)")
    day_ends: str = Field("17:00", pattern=HOUR, description="working hours end, local time (HH:MM)")
    default_time_zone: str = "Europe/Berlin"
    conversion_days: float = Field(30, gt=0, le=365, description="days after acceptance to register a deal")
    nudge_days: list[float] = Field(default_factory=lambda: [7.0, 21.0], max_length=10)
    decline_reasons: list[str] = Field(
        default_factory=lambda: ["no_capacity", "not_our_territory", "not_our_product", "bad_lead", "other"],
        min_length=1,
        max_length=20,
    )

    @field_validator("working_days")
    @classmethod
    def _days(cls, v: list[int]) -> list[int]:
        if any(d not in range(7) for d in v) or len(set(v)) != len(v):
            raise ValueError("working_days are distinct weekdays 0 (Monday) to 6 (Sunday)")
        return sorted(v)

    @property
    def hours(self) -> tuple[time, time]:
        """The working day's start and end (local time)."""
        return time.fromisoformat(self.day_starts), time.fromisoformat(self.day_ends)

    @model_validator(mode="after")
    def _checks(self) -> LeadsPolicy:
        if self.hours[1] <= self.hours[0]:
            raise ValueError("leads.day_ends must be after leads.day_starts")
        if self.reminder_hours >= self.offer_hours:
            raise ValueError("leads.reminder_hours must be shorter than leads.offer_hours")
        if any(not 0 < d < self.conversion_days for d in self.nudge_days):
            raise ValueError("leads.nudge_days lie inside the conversion window")
        try:
            ZoneInfo(self.default_time_zone)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"leads.default_time_zone: unknown time zone {self.default_time_zone!r}") from err
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise ValueError("leads.rules: each rule has its own name")
        return self

    def timers(self, platform: PlatformPolicy) -> dict[str, float]:
        # An offer's deadline counts business hours: in calendar days, the working days it needs
        # spread over the week, and two weeks more for public holidays.
        starts, ends = self.hours
        day_hours = (ends.hour * 60 + ends.minute - starts.hour * 60 - starts.minute) / 60
        offer_days = self.offer_hours / day_hours * 7 / len(self.working_days) + 14
        return {"offer_hours": offer_days, "conversion_days": self.conversion_days}


SECTION = LeadsPolicy
