"""What the program policy is built of: the platform's own sections (tiers, ops, limits,
webhooks, `day_seconds`), the base of every journey's section and the assembly of the program
policy from the installed journeys' sections (domain/policy.py does it).

A journey's section is its `journeys/<name>/policy.py` (`SECTION = <its model>`, a
`PolicySection`); it is the field `<name>` of `ProgramPolicy`, its defaults are the section's
`default()` and the longest waits its workflow sets are its `timers()`, checked by the dry run."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from domain.enums import Tier

MAX_DAYS = 3650  # no window, SLA or offset of the program is longer than ten years
MAX_TIMER = timedelta(days=3 * MAX_DAYS * 10)  # the longest wait a journey may schedule (dry run)


def check_offsets(field: str, offsets: list[float]) -> None:
    if len(offsets) > 20:
        raise ValueError(f"{field}: at most 20 offsets")
    if any(not (0 < d <= MAX_DAYS) for d in offsets):  # NaN fails the comparison too
        raise ValueError(f"{field}: offsets must be positive days, at most {MAX_DAYS}")


class TierRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    has_cam: bool = Field(description="a CAM is required and receives escalations")
    cam_on_every_alert: bool = Field(False, description="the CAM is copied on every partner nudge")


def _default_tiers() -> dict[Tier, TierRules]:
    return {
        Tier.platinum: TierRules(has_cam=True, cam_on_every_alert=True),
        Tier.gold: TierRules(has_cam=True),
        Tier.silver: TierRules(has_cam=False),
        Tier.registered: TierRules(has_cam=False),
    }


class OpsPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    retrying_minutes: float = Field(
        30,
        gt=0,
        le=10080,
        allow_inf_nan=False,
        description="a step failing transiently for this long (real minutes) is listed by GET /ops/retrying",
    )


class LimitsPolicy(BaseModel):
    """What one journey takes from its partner: how far ahead (or back) a date sent to a journey
    may lie, how many times the same change may be made, and how long a history grows before the
    journey continues as new. Validators refuse beyond (409 / 422 through the API)."""

    model_config = ConfigDict(extra="forbid")

    horizon_days: int = Field(
        3650,
        ge=30,
        le=MAX_DAYS,
        description="a date or time sent to a journey lies within this many calendar days of today",
    )
    max_stage_changes: int = Field(200, ge=1, le=10000, description="stage changes of one deal")
    max_reschedules: int = Field(20, ge=1, le=1000, description="meeting proposals of one QBR (first included)")
    max_date_changes: int = Field(20, ge=1, le=1000, description="activity date changes of one MDF request")
    max_milestone_reports: int = Field(
        200, ge=1, le=10000, description="milestone reports to one onboarding journey (repeats included)"
    )
    history_events: int = Field(
        10000,
        ge=100,
        le=40000,
        description="a deal or QBR journey whose history reaches this many events continues as new",
    )
    simulation_max_partners: int = Field(
        200, ge=1, le=10000, description="the largest sample a what-if simulation runs (docs/simulator.md)"
    )
    simulation_max_months: int = Field(24, ge=1, le=120, description="the longest horizon of a what-if simulation")


class WebhookPolicy(BaseModel):
    """Outbound webhook delivery: how long and how often a failing subscriber is retried (real
    time, like `ops.retrying_minutes`: an endpoint's outage does not follow program days)."""

    model_config = ConfigDict(extra="forbid")

    retry_hours: float = Field(
        24, gt=0, le=720, allow_inf_nan=False, description="a delivery is retried this many hours, then failed"
    )
    first_retry_seconds: float = Field(5, ge=1, le=3600, allow_inf_nan=False, description="first retry interval")
    max_retry_seconds: float = Field(
        600, ge=1, le=86400, allow_inf_nan=False, description="longest interval between retries (doubling)"
    )
    timeout_seconds: float = Field(10, gt=0, le=60, allow_inf_nan=False, description="one request's time limit")


class PolicySection(BaseModel):
    """The base of a journey's section of the program policy (`journeys/<name>/policy.py`)."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def default(cls) -> Self:
        """The section before ops edit it (a section with required fields overrides this)."""
        return cls()

    def timers(self, platform: PlatformPolicy) -> dict[str, float]:
        """The longest wait, in policy days, of each timer the journey sets, by field name (the
        dry run refuses a policy under which one could not be scheduled)."""
        return {}


S = TypeVar("S", bound=PolicySection)


class PlatformPolicy(BaseModel):
    """One version of the program policy (what ops edit through `PUT /policy`)."""

    model_config = ConfigDict(extra="forbid")

    day_seconds: float = Field(
        86400,
        ge=0.01,
        le=86400,
        allow_inf_nan=False,
        description="length of one policy day in seconds (86400 in production)",
    )
    tiers: dict[Tier, TierRules] = Field(default_factory=_default_tiers)
    if TYPE_CHECKING:  # the platform's sections after the journeys' ones (see PLATFORM_SECTIONS)
        ops: OpsPolicy = OpsPolicy()
        webhooks: WebhookPolicy = WebhookPolicy()
        limits: LimitsPolicy = LimitsPolicy()

        # A journey's section by its name (`policy.deal`), typed Any: `section(DealPolicy)` is typed.
        def __getattr__(self, name: str) -> Any: ...

    @model_validator(mode="after")
    def _all_tiers(self) -> Self:
        missing = [t.value for t in Tier if t not in self.tiers]
        if missing:
            raise ValueError(f"tiers: rules missing for {', '.join(missing)}")
        return self

    @model_validator(mode="after")
    def _dry_run(self) -> Self:
        """Every wait a journey would schedule under this policy must be a real, bounded timer:
        a policy that would make journeys fail their workflow task is refused here."""
        for name, n in self.schedule().items():
            try:
                wait = self.days(n)
            except OverflowError as err:
                raise ValueError(f"{name}: {n:g} days of {self.day_seconds:g} s cannot be scheduled") from err
            if wait > MAX_TIMER:
                raise ValueError(f"{name}: {n:g} days of {self.day_seconds:g} s is longer than {MAX_TIMER.days} days")
        return self

    def sections(self) -> dict[str, PolicySection]:
        """The journeys' sections, by journey name."""
        values = {name: getattr(self, name) for name in type(self).model_fields}
        return {name: value for name, value in values.items() if isinstance(value, PolicySection)}

    def section(self, model: type[S]) -> S:
        """A journey's section, typed: `policy.section(DealPolicy)`."""
        for value in self.sections().values():
            if type(value) is model:
                return value
        raise LookupError(f"the program policy has no {model.__name__} section")

    def schedule(self) -> dict[str, float]:
        """The longest wait, in policy days, of each timer every journey sets (the dry run)."""
        return {
            f"{name}.{timer}": n
            for name, section in self.sections().items()
            for timer, n in section.timers(self).items()
        }

    def days(self, n: float) -> timedelta:
        """A duration of `n` policy days."""
        return timedelta(seconds=n * self.day_seconds)


# The platform's sections, after the journeys' ones in the program policy.
PLATFORM_SECTIONS: dict[str, type[BaseModel]] = {"ops": OpsPolicy, "webhooks": WebhookPolicy, "limits": LimitsPolicy}


def assemble(sections: Mapping[str, type[PolicySection]]) -> type[PlatformPolicy]:
    """The program policy of these journeys' sections (by journey name, in install order)."""
    taken = set(PlatformPolicy.model_fields) | set(PLATFORM_SECTIONS)
    clash = sorted(taken & set(sections))
    if clash:
        raise ValueError(f"a journey may not be named like a platform section: {', '.join(clash)}")
    fields: dict[str, Any] = {name: (model, Field(default_factory=model.default)) for name, model in sections.items()}
    fields |= {name: (model, Field(default_factory=model)) for name, model in PLATFORM_SECTIONS.items()}
    return create_model(
        "ProgramPolicy", __base__=PlatformPolicy, __module__="domain.policy", __doc__=PlatformPolicy.__doc__, **fields
    )
