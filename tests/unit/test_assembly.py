"""How the program policy and the event catalog are assembled from the journeys' parts
(domain/policy_kit.py, domain/events.py): a new journey's section and events join them, a
journey cannot take a platform section's name or another's event type, and a journey's code
reads its own section typed."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field, ValidationError

from domain import events, installed
from domain.policy import SECTIONS, PlatformPolicy, PolicySection, ProgramPolicy
from domain.policy_kit import assemble
from domain.webhooks import EventSpec
from journeys.deal.policy import DealPolicy

pytestmark = pytest.mark.unit


class ReferralsPolicy(PolicySection):
    follow_up_days: float = Field(3, gt=0, allow_inf_nan=False)

    def timers(self, platform: PlatformPolicy) -> dict[str, float]:
        return {"follow_up_days": self.follow_up_days}


def test_a_new_journeys_section_joins_the_program_policy_and_its_dry_run():
    policy_model = assemble({**SECTIONS, "referrals": ReferralsPolicy})
    policy = policy_model()
    assert list(policy_model.model_fields)[-4:] == ["referrals", "ops", "webhooks", "limits"]
    assert policy.section(ReferralsPolicy).follow_up_days == 3
    assert policy.schedule()["referrals.follow_up_days"] == 3
    with pytest.raises(ValidationError, match=r"referrals.follow_up_days: 1e\+06 days of 86400 s is longer than"):
        policy_model(referrals={"follow_up_days": 1e6})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        ProgramPolicy.model_validate({"referrals": {}})  # not installed: not a section


def test_a_section_without_timers_sets_none_and_its_defaults_are_its_fields():
    class Quiet(PolicySection):
        label: str = "x"

    assert assemble({"quiet": Quiet})().schedule() == {}


def test_a_journey_is_not_named_like_a_platform_section():
    for name in ("ops", "tiers", "day_seconds"):
        with pytest.raises(ValueError, match=f"may not be named like a platform section: {name}"):
            assemble({name: ReferralsPolicy})


def test_a_journey_reads_its_own_section_typed():
    policy = ProgramPolicy()
    assert policy.section(DealPolicy) is policy.deal
    with pytest.raises(LookupError, match="no ReferralsPolicy section"):
        policy.section(ReferralsPolicy)


def test_the_installed_journeys_parts_are_found_by_name():
    assert [name for name, _ in installed.parts("policy")] == list(installed.INSTALLED)
    with_events = [name for name, _ in installed.parts("events")]
    assert with_events and set(with_events) < set(installed.INSTALLED)  # a journey may publish none


class Referral(BaseModel):
    referral_id: str


def test_the_catalog_groups_events_by_prefix_and_refuses_one_declared_twice():
    referrals = {"referral.created": EventSpec(1, Referral, "a referral came in")}
    merged = events.catalog({"partner.a": events.CATALOG["partner.enrolled"]}, referrals, events.PLATFORM_EVENTS)
    assert list(merged) == ["partner.a", "partner.tier_changed", "referral.created", "cam.handover_completed"]
    with pytest.raises(ValueError, match="declared twice: referral.created"):
        events.catalog(referrals, referrals)
