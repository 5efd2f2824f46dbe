"""`camlights capacity`: what a program of N partners needs, from journey costs measured by the bench.

The per-journey figures (Temporal actions, history events and bytes, activities, local activities,
workflow tasks, a worker's seconds, emails, PostgreSQL rows and bytes) and the per-process rates
come from bench/journey_costs.json,
which `make bench` rewrites from real histories (fetch_history) and PostgreSQL after its run; the
program profile gives how often each journey runs; the policy gives the calendar: when QBR cycles
start and when MDF funds are warned and expire. Everything here is a pure function of the three.

Calendar peaks: a fund's expiry is the end of its period plus `mdf.expiry_grace_days`, its warnings
`mdf.expiry_warning_days` before that, so every fund of a period fires at the same instants; the
QBR cycle starts on the first day of each of `qbr.cycle_months` but fans out through a window
(`qbr.cycle_window`), so its rate is the cycle's measured rate, not N. Funds are created on first
use (journeys/mdf/ledger.py), so a period rollover by itself starts nothing. `jitter_hours` models
spreading each calendar firing uniformly over that many hours.

Workers: a journey's `worker_seconds` is what one worker process took per journey when the bench
drove that journey flat out (onboarding, deal, cert, MDF); for the others (a fund's firings, a
QBR) its workflow tasks, activities and local activities at the seconds a unit took on average in
those runs. The busiest hour's seconds over 3,600 at the profile's utilisation is the count.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from domain.enums import Tier
from domain.policy import ProgramPolicy

COSTS_FILE = Path(__file__).resolve().parents[1] / "bench" / "journey_costs.json"
JOURNEYS = ("onboarding", "deal", "cert", "mdf", "mdf_fund", "qbr")
FIELDS = (
    "actions",
    "events",
    "history_bytes",
    "activities",
    "local_activities",
    "workflow_tasks",
    "worker_seconds",
    "emails",
    "db_rows",
    "db_bytes",
)
RATES = ("api_requests_per_s", "qbr_cycle_partners_per_s")
DEFAULT_TIER_MIX = {"platinum": 0.02, "gold": 0.08, "silver": 0.25, "registered": 0.65}  # bench/seed.py
DAYS_PER_MONTH = 365 / 12
PERIODS_PER_YEAR = {"month": 12, "quarter": 4, "half": 2, "year": 1}


class CostsError(ValueError):
    """The journey costs file is missing or not what the bench writes."""


@dataclass(frozen=True)
class Costs:
    journeys: dict[str, dict[str, float]]
    rates: dict[str, float]
    measured: dict


def load_costs(path: Path = COSTS_FILE) -> Costs:
    """The bench's journey costs, validated (CostsError says what is wrong and how to fix it)."""
    hint = "run `make bench` (it writes it) or pass --costs FILE"
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise CostsError(f"journey costs file {path} not found: {hint}") from None
    except (OSError, ValueError) as err:
        raise CostsError(f"journey costs file {path} is not valid JSON ({err}): {hint}") from None
    if not isinstance(doc, dict) or doc.get("schema") != 1:
        raise CostsError(f"journey costs file {path}: expected an object with schema 1: {hint}")
    journeys, rates = doc.get("journeys"), doc.get("rates")
    if not isinstance(journeys, dict) or not isinstance(rates, dict):
        raise CostsError(f"journey costs file {path}: 'journeys' and 'rates' must be objects: {hint}")
    for name in JOURNEYS:
        costs = journeys.get(name)
        if not isinstance(costs, dict):
            raise CostsError(f"journey costs file {path}: journey {name!r} missing: {hint}")
        for key in FIELDS:
            _number(path, f"journeys.{name}.{key}", costs.get(key), positive=False)
    for key in RATES:
        _number(path, f"rates.{key}", rates.get(key), positive=True)
    return Costs(journeys=journeys, rates=rates, measured=doc.get("measured") or {})


def _number(path: Path, where: str, value: object, positive: bool) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):  # type: ignore[operator]
        need = "a positive number" if positive else "a non-negative number"
        raise CostsError(f"journey costs file {path}: {where} must be {need} (got {value!r})")


@dataclass(frozen=True)
class Profile:
    """How the program behaves (defaults: the bench generator's mix, bench/seed.py)."""

    partners: int
    tier_mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_TIER_MIX))
    deals_per_partner_year: float = 5.0  # seed: 10 per partner over two years
    certs_per_partner: float = 2.0  # seed: 2 per partner, each renewed once a year
    mdf_requests_per_partner_year: float = 1.0
    new_partners_share_per_year: float = 0.2  # onboarding journeys a year, as a share of the program
    retention_days: float = 30.0  # closed workflows' histories kept by the Temporal namespace
    jitter_hours: float = 0.0  # each calendar firing spread uniformly over this many hours
    api_requests_per_partner_day: float = 20.0
    busy_hours_per_day: float = 10.0  # people's traffic (API, deals, onboarding) falls in these hours
    utilisation: float = 0.7  # size processes to run at most this busy

    def __post_init__(self) -> None:
        if self.partners < 1:
            raise ValueError("partners must be at least 1")
        if abs(sum(self.tier_mix.values()) - 1) > 0.01 or any(v < 0 for v in self.tier_mix.values()):
            raise ValueError(f"tier mix must be non-negative shares summing to 1 (got {self.tier_mix})")
        if not 0 < self.utilisation <= 1 or not 0 < self.busy_hours_per_day <= 24 or self.jitter_hours < 0:
            raise ValueError("utilisation in (0, 1], busy hours in (0, 24], jitter hours >= 0")


@dataclass(frozen=True)
class Estimate:
    month: dict[str, float]  # per month: actions, workflow_tasks, events, emails, db_rows, db_bytes
    peak: dict[str, float]  # the busiest hour (of each figure)
    peak_when: str  # the busiest hour for the workers (their seconds)
    history_bytes: float  # stored: open workflows plus closed ones within retention
    db_bytes_year: float  # PostgreSQL after a year at this rate
    workers: int
    api_replicas: int
    qbr_cycle_hours: float  # one cycle's fan-out at the measured, window-bound rate
    journeys_per_month: dict[str, float]


def _per_month(p: Profile, policy: ProgramPolicy) -> dict[str, float]:
    n = p.partners
    periods = PERIODS_PER_YEAR[policy.mdf.period]
    cycles = len(policy.qbr.cycle_months)
    in_cycle = sum(share / policy.qbr.tiers[Tier(t)].every_quarters for t, share in p.tier_mix.items())
    return {
        "onboarding": n * p.new_partners_share_per_year / 12,
        "deal": n * p.deals_per_partner_year / 12,
        "cert": n * p.certs_per_partner / 12,
        "mdf": n * p.mdf_requests_per_partner_year / 12,
        "mdf_fund": n * (1 - math.exp(-p.mdf_requests_per_partner_year / periods)) * periods / 12,
        "qbr": n * in_cycle * cycles / 12,
    }


def _open_days(p: Profile, policy: ProgramPolicy) -> dict[str, float]:
    """How long each journey's workflow stays open, from the policy."""
    protection = sum(share * policy.deal.tiers[Tier(t)].protection_days for t, share in p.tier_mix.items())
    return {
        "onboarding": policy.onboarding.plan_days,
        "deal": protection,
        "cert": 365.0,  # one run per period, continued as new at renewal
        "mdf": policy.mdf.pre_approval_days + policy.mdf.claim_window_days,
        "mdf_fund": 365 / PERIODS_PER_YEAR[policy.mdf.period] + policy.mdf.expiry_grace_days,
        "qbr": policy.qbr.meeting_window_days,
    }


def calendar_hours(p: Profile, policy: ProgramPolicy, costs: Costs, flows: dict[str, float]) -> dict[str, dict]:
    """The calendar-aligned firings, by hour offset from a period boundary, each with its load
    in that hour (jitter spreads a firing over `jitter_hours`)."""
    funds = flows["mdf_fund"] * 12 / PERIODS_PER_YEAR[policy.mdf.period]  # funds of one period
    firings = len(policy.mdf.expiry_warning_days) + 1
    share = 1 / max(1.0, p.jitter_hours)
    hours: dict[float, dict] = {}

    def add(hour: float, what: str, journey: str, count: float) -> None:
        slot = hours.setdefault(hour, {"what": [], "load": dict.fromkeys(FIELDS, 0.0)})
        slot["what"].append(what)
        for key in FIELDS:
            slot["load"][key] += count * costs.journeys[journey][key]

    grace = policy.mdf.expiry_grace_days
    add(grace * 24, f"MDF expiry (period end + {grace:g} days)", "mdf_fund", funds * share / firings)
    for w in policy.mdf.expiry_warning_days:
        add((grace - w) * 24, f"MDF expiry warning ({w:g} days before)", "mdf_fund", funds * share / firings)
    cycle = flows["qbr"] * 12 / len(policy.qbr.cycle_months)  # partners of one cycle
    per_hour = min(cycle, costs.rates["qbr_cycle_partners_per_s"] * 3600)
    add(0.0, "QBR cycle start (window-bound fan-out)", "qbr", per_hour)
    return {f"{h / 24:+g} days from the period boundary": v for h, v in sorted(hours.items())}


def estimate(p: Profile, costs: Costs, policy: ProgramPolicy | None = None) -> Estimate:
    policy = policy or ProgramPolicy()
    flows = _per_month(p, policy)
    month = {k: sum(flows[j] * costs.journeys[j][k] for j in JOURNEYS) for k in FIELDS}
    open_days = _open_days(p, policy)
    history = sum(
        flows[j] / DAYS_PER_MONTH * (open_days[j] + p.retention_days) * costs.journeys[j]["history_bytes"]
        for j in JOURNEYS
    )
    # people's journeys in their busy hours; timer-driven ones (cert, funds, QBR) spread over the day
    people = ("onboarding", "deal", "mdf")
    steady = {
        k: sum(flows[j] * costs.journeys[j][k] for j in people) / (DAYS_PER_MONTH * p.busy_hours_per_day)
        + costs.journeys["cert"][k] * flows["cert"] / (DAYS_PER_MONTH * 24)
        for k in FIELDS
    }
    calendar = calendar_hours(p, policy, costs, flows)
    peak = {k: steady[k] + max(h["load"][k] for h in calendar.values()) for k in FIELDS}  # each at its own peak
    when, worst = max(calendar.items(), key=lambda kv: kv[1]["load"]["worker_seconds"])
    cycle = flows["qbr"] * 12 / len(policy.qbr.cycle_months)  # partners of one QBR cycle
    # a journey's worker seconds, not a rate of units: a unit (a workflow task, an activity, a local
    # activity) costs a worker more or less by journey (each one's figure: bench/journey_costs.json)
    busy = steady["worker_seconds"] + worst["load"]["worker_seconds"]
    workers = math.ceil(busy / 3600 / p.utilisation)
    api_rps = p.partners * p.api_requests_per_partner_day / (p.busy_hours_per_day * 3600)
    replicas = math.ceil(api_rps / (costs.rates["api_requests_per_s"] * p.utilisation))
    return Estimate(
        month=month,
        peak=peak,
        peak_when=f"{when}: {', '.join(worst['what'])}",
        history_bytes=history,
        db_bytes_year=12 * month["db_bytes"],
        workers=max(1, workers),
        api_replicas=max(1, replicas),
        journeys_per_month=flows,
        qbr_cycle_hours=cycle / costs.rates["qbr_cycle_partners_per_s"] / 3600,
    )


# --------------------------------------------------------------------------- printing


def _n(x: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {unit}"
    return f"{x:.3g}"


def _bytes(x: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if x >= scale:
            return f"{x / scale:.3g} {unit}"
    return f"{x:.0f} B"


def table(profiles: list[Profile], costs: Costs, policy: ProgramPolicy | None = None, markdown: bool = False) -> str:
    """One column per profile: the month, the peak hour, storage and processes."""
    ests = [estimate(p, costs, policy) for p in profiles]
    rows: list[tuple[str, list[str]]] = [("partners", [f"{p.partners:,}" for p in profiles])]
    rows.append(("journeys / month", [_n(sum(e.journeys_per_month.values())) for e in ests]))
    for label, key in (
        ("Temporal actions", "actions"),
        ("workflow tasks", "workflow_tasks"),
        ("history events", "events"),
        ("activities", "activities"),
        ("local activities", "local_activities"),
        ("emails", "emails"),
        ("PostgreSQL rows", "db_rows"),
    ):
        rows.append((f"{label} / month", [_n(e.month[key]) for e in ests]))
    rows.append(("PostgreSQL bytes / month", [_bytes(e.month["db_bytes"]) for e in ests]))
    rows.append(("PostgreSQL after a year", [_bytes(e.db_bytes_year) for e in ests]))
    rows.append(
        (
            f"Temporal history stored ({profiles[0].retention_days:g} d retention)",
            [_bytes(e.history_bytes) for e in ests],
        )
    )
    for label, key in (
        ("actions", "actions"),
        ("workflow tasks", "workflow_tasks"),
        ("worker seconds", "worker_seconds"),
        ("emails", "emails"),
        ("PostgreSQL rows", "db_rows"),
    ):
        rows.append((f"peak hour: {label}", [_n(e.peak[key]) for e in ests]))
    rows.append(("peak hour: actions / s", [f"{e.peak['actions'] / 3600:.3g}" for e in ests]))
    hours = DAYS_PER_MONTH * 24
    rows.append(
        ("peak / average hour (actions)", [f"{e.peak['actions'] * hours / e.month['actions']:.1f}x" for e in ests])
    )
    rows.append(("QBR cycle fan-out (hours)", [f"{e.qbr_cycle_hours:.3g}" for e in ests]))
    rows.append(("workers", [str(e.workers) for e in ests]))
    rows.append(("API replicas", [str(e.api_replicas) for e in ests]))
    width = max(len(r[0]) for r in rows)
    cols = [max(len(r[1][i]) for r in rows) for i in range(len(profiles))]
    if markdown:
        lines = ["| " + " | ".join([""] + rows[0][1]) + " |", "|---" + "|---:" * len(profiles) + "|"]
        lines += ["| " + " | ".join([label] + vals) + " |" for label, vals in rows[1:]]
    else:
        lines = [
            label.ljust(width) + "  " + "  ".join(v.rjust(c) for v, c in zip(vals, cols, strict=True))
            for label, vals in rows
        ]
    lines.append("")
    for p, e in zip(profiles, ests, strict=True):
        lines.append(f"peak hour at {p.partners:,} partners: {e.peak_when}")
    measured = costs.measured
    lines.append(f"journey costs measured by make bench N={measured.get('n', '?')} on {measured.get('date', '?')}")
    return "\n".join(lines)


def parse_mix(text: str) -> dict[str, float]:
    """'platinum=0.02,gold=0.08,silver=0.25,registered=0.65' (percentages accepted)."""
    mix: dict[str, float] = {}
    for part in text.split(","):
        tier, _, value = part.partition("=")
        if tier.strip() not in DEFAULT_TIER_MIX or not value:
            raise ValueError(f"tier mix: expected tier=share for {', '.join(DEFAULT_TIER_MIX)} (got {part!r})")
        mix[tier.strip()] = float(value)
    total = sum(mix.values())
    if total > 1.5:  # percentages
        mix = {k: v / 100 for k, v in mix.items()}
    return {t: mix.get(t, 0.0) for t in DEFAULT_TIER_MIX}
