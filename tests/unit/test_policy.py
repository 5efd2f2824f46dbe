"""`ProgramPolicy` validation (domain/policy.py): every rejected policy names the offending field."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from domain.enums import Tier
from domain.policy import ProgramPolicy

pytestmark = pytest.mark.unit


def _dump() -> dict:
    """The default policy as the JSON ops would send through `PUT /policy`."""
    return ProgramPolicy().model_dump(mode="json")


def _rejected(data: dict) -> tuple[str, list[dict]]:
    with pytest.raises(ValidationError) as err:
        ProgramPolicy.model_validate(data)
    return str(err.value), err.value.errors()


def test_defaults_are_valid() -> None:
    """The built-in policy validates, survives a JSON round trip and covers every tier."""
    policy = ProgramPolicy()
    assert ProgramPolicy.model_validate(_dump()) == policy
    assert set(policy.tiers) == set(Tier) == set(policy.deal.tiers)
    assert policy.day_seconds == 86400
    assert policy.deal.escalation_days > policy.deal.approval_sla_days
    assert all(m.due_day <= policy.onboarding.plan_days for m in policy.onboarding.milestones)
    assert [m.key for m in policy.onboarding.required(Tier.registered)] == [
        "portal_access",
        "first_training",
        "first_deal",
    ]


def test_missing_tier_rules() -> None:
    data = _dump()
    del data["tiers"]["gold"]
    msg, errors = _rejected(data)
    assert "tiers: rules missing for gold" in msg
    assert errors[0]["type"] == "value_error"


def test_missing_deal_tier_rules() -> None:
    data = _dump()
    del data["deal"]["tiers"]["silver"]
    del data["deal"]["tiers"]["registered"]
    msg, errors = _rejected(data)
    assert "deal.tiers: rules missing for silver, registered" in msg
    assert errors[0]["loc"] == ("deal",)


def test_duplicate_milestone_keys() -> None:
    data = _dump()
    data["onboarding"]["milestones"][1]["key"] = data["onboarding"]["milestones"][0]["key"]
    msg, errors = _rejected(data)
    assert "onboarding.milestones: milestone keys must be unique" in msg
    assert errors[0]["loc"] == ("onboarding",)


def test_no_milestones() -> None:
    data = _dump()
    data["onboarding"]["milestones"] = []
    msg, _ = _rejected(data)
    assert "onboarding.milestones: at least one milestone is needed" in msg


def test_milestone_due_after_plan_end() -> None:
    data = _dump()
    data["onboarding"]["plan_days"] = 50  # first_deal is due on day 75, first_certification on day 60
    msg, errors = _rejected(data)
    assert "onboarding.milestones: milestone 'first_certification' is due on day 60" in msg
    assert "50" in msg and errors[0]["loc"] == ("onboarding",)


def test_milestone_due_on_the_last_day_is_fine() -> None:
    data = _dump()
    data["onboarding"]["plan_days"] = 75
    assert ProgramPolicy.model_validate(data).onboarding.plan_days == 75


@pytest.mark.parametrize("escalation", [1, 2])
def test_deal_escalation_not_after_approval_sla(escalation: float) -> None:
    """Escalating to ops before (or when) the approver is reminded makes no sense."""
    data = _dump()
    data["deal"]["approval_sla_days"] = 2
    data["deal"]["escalation_days"] = escalation
    msg, errors = _rejected(data)
    assert "deal.escalation_days must be longer than deal.approval_sla_days" in msg
    assert errors[0]["loc"] == ("deal",)


@pytest.mark.parametrize(
    ("section", "field", "offsets"),
    [
        ("deal", "expiry_reminder_days", [14, 0]),
        ("deal", "expiry_reminder_days", [-3]),
        ("cert", "reminder_days", [60, -1, 7]),
        ("cert", "reminder_days", [0]),
    ],
)
def test_non_positive_reminder_offsets(section: str, field: str, offsets: list[float]) -> None:
    data = _dump()
    data[section][field] = offsets
    msg, errors = _rejected(data)
    assert f"{section}.{field}: offsets must be positive" in msg
    assert errors[0]["loc"] == (section,)


@pytest.mark.parametrize(
    "path",
    [
        ("bogus",),
        ("deal", "auto_approve_all"),
        ("cert", "grace"),
        ("onboarding", "plan"),
        ("tiers", "gold", "has_cams"),
        ("deal", "tiers", "gold", "protection"),
        ("onboarding", "milestones", 0, "due"),
    ],
)
def test_unknown_fields_are_refused(path: tuple) -> None:
    """A typo never silently falls back to a default: extra fields are forbidden at every level."""
    data = _dump()
    node = data
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = 1
    msg, errors = _rejected(data)
    assert [(e["type"], e["loc"]) for e in errors] == [("extra_forbidden", path)]
    assert path[-1] in msg


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (0, "greater_than_equal"),
        (-1, "greater_than_equal"),
        (0.001, "greater_than_equal"),
        (86401, "less_than_equal"),
        (1e300, "less_than_equal"),
        (float("nan"), "finite_number"),
        (float("inf"), "finite_number"),
    ],
)
def test_day_seconds_must_be_a_sane_length(value: float, kind: str) -> None:
    _, errors = _rejected({**_dump(), "day_seconds": value})
    assert [(e["type"], e["loc"]) for e in errors] == [(kind, ("day_seconds",))]


@pytest.mark.parametrize(
    ("section", "field", "value"),
    [
        ("onboarding", "plan_days", 3651),
        ("deal", "escalation_days", float("inf")),
        ("deal", "max_extensions", 101),
        ("cert", "grace_days", 1e308),
        ("deal", "stall_days", float("nan")),
    ],
)
def test_windows_are_bounded(section: str, field: str, value: float) -> None:
    data = _dump()
    data[section][field] = value
    _, errors = _rejected(data)
    assert errors and errors[0]["loc"][:2] == (section, field), errors


def test_the_dry_run_refuses_a_schedule_no_journey_could_keep() -> None:
    """Each window is within bounds, but protection plus every extension is over the longest timer."""
    data = _dump()
    data["deal"]["max_extensions"] = 100
    data["deal"]["max_extension_days"] = 3650
    message, _ = _rejected(data)
    assert "deal.protection_days" in message and "longer than" in message


@pytest.mark.parametrize(
    ("day_seconds", "n", "expected"),
    [
        (86400, 1, timedelta(days=1)),
        (86400, 90, timedelta(days=90)),
        (86400, 0.5, timedelta(hours=12)),
        (86400, 0, timedelta(0)),
        (2, 90, timedelta(seconds=180)),  # a shrunken demo policy: 90 days in three minutes
        (0.1, 14, timedelta(seconds=1.4)),
    ],
)
def test_days(day_seconds: float, n: float, expected: timedelta) -> None:
    """`days(n)` is n policy days of `day_seconds` each."""
    assert ProgramPolicy(day_seconds=day_seconds).days(n) == expected


def _set(data: dict, path: tuple, value: object) -> dict:
    node = data
    for step in path[:-1]:
        node = node[step]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


_DELETE = object()
_WEIGHTS = ProgramPolicy().qbr.model_dump(mode="json")["weights"]
_BAD_WEIGHTS = "qbr.weights: weights must be non-negative with a positive sum"


# Every section's own rules (beyond one field's bounds), each refused with the message ops see. The
# MDF section has its table in tests/mdf/test_rules.py.
@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("tiers", "silver"), _DELETE, "tiers: rules missing for silver"),
        (("onboarding", "milestones"), [], "at least one milestone is needed"),
        (("onboarding", "plan_days"), 74.9, "milestone 'first_deal' is due on day 75.0, after the end of the 74.9-day"),
        (("deal", "tiers", "platinum"), _DELETE, "deal.tiers: rules missing for platinum"),
        (("deal", "escalation_days"), 2, "deal.escalation_days must be longer than deal.approval_sla_days"),
        (("deal", "expiry_reminder_days"), [1] * 21, "deal.expiry_reminder_days: at most 20 offsets"),
        (("deal", "expiry_reminder_days"), [3651], "expiry_reminder_days: offsets must be positive days, at most 3650"),
        (("deal", "expiry_reminder_days"), [float("nan")], "deal.expiry_reminder_days: offsets must be positive"),
        (("cert", "reminder_days"), [1] * 21, "cert.reminder_days: at most 20 offsets"),
        (("cert", "reminder_days"), [30, 3651], "cert.reminder_days: offsets must be positive days, at most 3650"),
        (("qbr", "tiers", "gold"), _DELETE, "qbr.tiers: rules missing for gold"),
        (("qbr", "cycle_months"), [0, 4], "qbr.cycle_months: distinct months 1 to 12"),
        (("qbr", "cycle_months"), [1, 13], "qbr.cycle_months: distinct months 1 to 12"),
        (("qbr", "cycle_months"), [1, 4, 1], "qbr.cycle_months: distinct months 1 to 12"),
        (("qbr", "watch_from"), 70.1, "qbr.watch_from must not be above qbr.healthy_from"),
        (("qbr", "healthy_from"), 44.9, "qbr.watch_from must not be above qbr.healthy_from"),
        (("qbr", "weights", "revenue"), -0.1, _BAD_WEIGHTS),
        (("qbr", "weights"), dict.fromkeys(_WEIGHTS, 0), _BAD_WEIGHTS),
        (("qbr", "weights"), {"revenue": 0}, _BAD_WEIGHTS),
        (("qbr", "time_zone"), "Mars/Olympus_Mons", "qbr.time_zone: unknown time zone 'Mars/Olympus_Mons'"),
        (("qbr", "time_zone"), "../etc/passwd", "qbr.time_zone: unknown time zone"),
    ],
)
def test_each_section_refuses(path: tuple, value: object, message: str) -> None:
    msg, errors = _rejected(_set(_dump(), path, value))
    assert message in msg
    assert len(errors) == 1 and errors[0]["type"] == "value_error"


# ... and accepts what sits exactly on each of those bars.
@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("onboarding", "plan_days"), 75),
        (("deal", "escalation_days"), 2.01),
        (("deal", "expiry_reminder_days"), [1] * 20),
        (("deal", "expiry_reminder_days"), [3650, 0.01]),
        (("deal", "expiry_reminder_days"), []),
        (("cert", "reminder_days"), [3650]),
        (("qbr", "cycle_months"), [12, 1]),
        (("qbr", "watch_from"), 70),
        (("qbr", "weights"), {"revenue": 0, "mdf": 0.1}),
        (("qbr", "time_zone"), "Europe/Berlin"),
    ],
)
def test_each_section_accepts_its_bars(path: tuple, value: object) -> None:
    policy = ProgramPolicy.model_validate(_set(_dump(), path, value))
    node: object = policy.model_dump(mode="json")
    for step in path:
        node = node[step]  # type: ignore[index]
    assert node == value


def test_the_dry_run_lists_every_timer_at_its_longest() -> None:
    schedule = ProgramPolicy().schedule()
    assert schedule == {
        "onboarding.plan_days": 90,
        "onboarding.escalation_days": 75 + 14,  # the last milestone's due day, then the escalation
        "deal.escalation_days": 4,
        "deal.protection_days": 180 + 2 * 30,  # platinum's protection and every extension
        "deal.stall_days": 21,
        "deal.decision_link_days": 7,
        "cert.reminder_days": 60 + 0,
        "cert.cam_alert_days": 30 + 0,
        "mdf.approval_levels": max(lv.escalation_days for lv in ProgramPolicy().mdf.approval_levels),
        "mdf.pre_approval_days": ProgramPolicy().mdf.pre_approval_days + ProgramPolicy().mdf.max_activity_days,
        "mdf.claim_window_days": ProgramPolicy().mdf.claim_window_days,
        "mdf.audit_days": ProgramPolicy().mdf.audit_days,
        "mdf.expiry_grace_days": ProgramPolicy().mdf.expiry_grace_days + max(ProgramPolicy().mdf.expiry_warning_days),
        "mdf.decision_link_days": ProgramPolicy().mdf.decision_link_days,
        "qbr.schedule_deadline_days": 21,
        "qbr.meeting_window_days": 80,
        "qbr.action_escalation_days": 2 * 7 + 3,
        "qbr.remediation_days": 90,
        # 16 business hours of 8-hour days over a 5-day week, and two weeks for public holidays
        "leads.offer_hours": 16 / 8 * 7 / 5 + 14,
        "leads.conversion_days": 30,
        "health.evaluate_seconds": 30 / 86400,  # seconds between evaluations, in policy days
    }
    assert ProgramPolicy(cert={"reminder_days": []}).schedule()["cert.reminder_days"] == 0


def test_an_offer_window_of_one_minute_days_cannot_be_scheduled() -> None:
    """Business hours stretch an offer's wait: 400 hours of one-minute working days is refused."""
    leads = {"offer_hours": 400, "day_starts": "09:00", "day_ends": "09:01", "working_days": [0]}
    msg, _ = _rejected(_set(_dump(), ("leads",), {**_dump()["leads"], **leads}))
    assert "leads.offer_hours: 168014 days of 86400 s is longer than 109500 days" in msg


@pytest.mark.parametrize(("extensions", "refused"), [(29, False), (30, True)])
def test_the_longest_timer_is_a_bar_too(extensions: int, refused: bool) -> None:
    """Platinum's 3650 days of protection and 29 extensions of 3650 days: exactly the longest timer."""
    data = _dump()
    data["deal"]["tiers"]["platinum"]["protection_days"] = 3650
    data["deal"].update(max_extensions=extensions, max_extension_days=3650)
    if refused:
        msg, _ = _rejected(data)
        assert "deal.protection_days: 113150 days of 86400 s is longer than 109500 days" in msg
    else:
        assert ProgramPolicy.model_validate(data).schedule()["deal.protection_days"] == 109500


def test_the_defaults_change_only_on_purpose() -> None:
    """Every default of the program policy, as `GET /policy` shows it before ops edit anything
    (tests/unit/policy_defaults.json): a changed threshold, window or weight must be deliberate."""
    pinned = json.loads((Path(__file__).parent / "policy_defaults.json").read_text())
    assert _dump() == pinned
