"""The program policy: every window, SLA, threshold and cadence lives here.

Durations are expressed in policy *days*; `day_seconds` says how long one policy day is
(86400 in production). Tests and demos shrink it so a 90-day journey runs in seconds.
Workflows never hard-code a duration: they read the policy once (through an activity)
and carry it.

`ProgramPolicy` is assembled when this module is imported: the platform's sections
(domain/policy_kit.py) and one section per installed journey, its `journeys/<name>/policy.py`
(domain/installed.py). Journey code reads its own section typed, `policy.section(DealPolicy)`,
or by name, `policy.deal` (typed Any). Adding a journey adds no line here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

from domain import installed
from domain.policy_kit import (
    MAX_DAYS,
    MAX_TIMER,
    LimitsPolicy,
    OpsPolicy,
    PlatformPolicy,
    PolicySection,
    TierRules,
    WebhookPolicy,
    assemble,
)

__all__ = [
    "MAX_DAYS",
    "MAX_TIMER",
    "SECTIONS",
    "LimitsPolicy",
    "OpsPolicy",
    "PlatformPolicy",
    "PolicySection",
    "ProgramPolicy",
    "TierRules",
    "VersionedPolicy",
    "WebhookPolicy",
]

# Each installed journey's section model, by journey name (its field of ProgramPolicy).
SECTIONS: dict[str, type[PolicySection]] = {name: module.SECTION for name, module in installed.parts("policy")}

if TYPE_CHECKING:
    ProgramPolicy = PlatformPolicy
else:
    ProgramPolicy = assemble(SECTIONS)


class VersionedPolicy(BaseModel):
    version: int
    policy: ProgramPolicy
