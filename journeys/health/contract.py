"""What other journeys and the platform may use of partner health: the `Signal` each journey's
`health_signals` reader returns (journeys/<name>/health.py, named by its manifest) and the
policy section `health` (journeys/health/policy.py: weights, bands, thresholds, cadence, CAM
coverage weights) and a CAM's load against it."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from domain.enums import Tier
from journeys.health.policy import DEFAULT_WEIGHTS, HealthPolicy, SignalKind

__all__ = ["DEFAULT_WEIGHTS", "CamLoad", "HealthPolicy", "Signal", "SignalKind", "cam_load"]


class Signal(BaseModel):
    """One reason a partner's health moves, as a journey sees it now. `kind` picks its weight in
    the policy (`health.weights`); `severity` (0..1] scales it (e.g. how far the win rate is under
    its goal); `key` is stable while the reason lasts (so a change lists it once)."""

    kind: str = Field(pattern=r"^[a-z][a-z0-9_]{1,39}$")
    key: str = Field(min_length=1, max_length=200)
    what: str = Field(min_length=1, max_length=300, description="in words, e.g. certification X lapsed on D")
    severity: float = Field(1.0, gt=0, le=1, allow_inf_nan=False)
    at: datetime | None = None


# --------------------------------------------------------------------------- CAM capacity


class CamLoad(BaseModel):
    """A CAM's portfolio against the policy: partners by tier, the share of one CAM they take."""

    partners: int = Field(description="partners assigned to the CAM")
    by_tier: dict[Tier, int]
    load: float = Field(description="sum of each partner's tier share (health.coverage): 1.0 is a full CAM")
    max_partners: int = Field(description="health.max_partners_per_cam")
    over: str | None = Field(None, description="why the portfolio is beyond capacity (None: within)")


def cam_load(by_tier: dict[Tier, int], policy: HealthPolicy) -> CamLoad:
    """The load of a portfolio of `by_tier` partners; `over` names the figures when it is more
    than one CAM (`coverage` shares summed) or more than `max_partners_per_cam` partners."""
    counts = {t: by_tier.get(t, 0) for t in Tier}
    partners = sum(counts.values())
    load = round(sum(n * policy.coverage.get(t, 0.0) for t, n in counts.items()), 6)
    over = None
    if partners > policy.max_partners_per_cam:
        over = f"{partners} active partners, more than the {policy.max_partners_per_cam} a CAM can hold"
    elif load > 1:
        parts = ", ".join(f"{n} {t.value} \u00d7 {policy.coverage.get(t, 0.0):.3f}" for t, n in counts.items() if n)
        over = f"a load of {load:.2f} CAMs ({parts}), more than 1.00"
    return CamLoad(partners=partners, by_tier=counts, load=load, max_partners=policy.max_partners_per_cam, over=over)
