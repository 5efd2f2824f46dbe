"""The capacity model (`camlights capacity`, worker/capacity.py) and the journey costs the bench
measures for it (bench/harness.py history_costs, bench/journey_costs.json)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from bench import seed
from bench.harness import history_costs
from domain.policy import ProgramPolicy
from worker import capacity
from worker.capacity import COSTS_FILE, CostsError, Profile, estimate, load_costs, parse_mix

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def costs() -> capacity.Costs:
    return load_costs(COSTS_FILE)


def test_the_committed_journey_costs_are_valid_and_cover_every_journey(costs) -> None:
    assert set(capacity.JOURNEYS) <= set(costs.journeys)
    for name in capacity.JOURNEYS:
        c = costs.journeys[name]
        assert c["actions"] > 0 and c["events"] >= c["actions"] and c["history_bytes"] > c["events"], name
    assert dict(seed.TIER_MIX) == capacity.DEFAULT_TIER_MIX  # the model's default is the bench's program


def test_monotonic_in_the_number_of_partners(costs) -> None:
    sizes = [100, 1000, 10_000, 100_000, 500_000]
    ests = [estimate(Profile(partners=n), costs) for n in sizes]
    for key in ("actions", "workflow_tasks", "emails", "db_rows", "db_bytes"):
        assert all(a.month[key] < b.month[key] for a, b in zip(ests, ests[1:], strict=False)), key
        assert all(a.peak[key] <= b.peak[key] for a, b in zip(ests, ests[1:], strict=False)), key
    assert all(a.history_bytes < b.history_bytes for a, b in zip(ests, ests[1:], strict=False))
    assert all(
        a.workers <= b.workers and a.api_replicas <= b.api_replicas for a, b in zip(ests, ests[1:], strict=False)
    )
    assert ests[-1].workers > ests[0].workers


@pytest.mark.parametrize("n", [1000, 100_000, 500_000])
def test_the_peak_hour_is_at_least_the_average_hour(costs, n) -> None:
    est = estimate(Profile(partners=n), costs)
    hours = capacity.DAYS_PER_MONTH * 24
    for key in ("actions", "workflow_tasks", "emails", "db_rows"):
        assert est.peak[key] >= est.month[key] / hours, key


def test_jitter_lowers_the_calendar_peak_down_to_the_qbr_cycle_floor(costs) -> None:
    """Spreading the fund firings lowers the peak until the QBR cycle's hour (bound by its window,
    not by the calendar) is the busiest."""
    n = 2_000_000  # with the lean journeys' costs (bench/journey_costs.json) the floor shows at this size
    sharp, some, two, wide = (estimate(Profile(partners=n, jitter_hours=j), costs) for j in (0, 1.5, 2, 72))
    assert sharp.peak["actions"] > some.peak["actions"] > two.peak["actions"] > wide.peak["actions"]
    assert sharp.workers >= some.workers >= two.workers >= wide.workers and sharp.workers > wide.workers
    assert "MDF expiry" in sharp.peak_when and "QBR cycle start" in wide.peak_when
    assert wide.month == sharp.month  # spreading moves work, it does not remove any


def test_the_calendar_follows_the_policy(costs) -> None:
    """The fund firings sit at the policy's offsets: expiry at period end + grace, warnings before it."""
    policy = ProgramPolicy()
    flows = capacity._per_month(Profile(partners=10_000), policy)
    hours = capacity.calendar_hours(Profile(partners=10_000), policy, costs, flows)
    grace = policy.mdf.expiry_grace_days
    expected = {grace, 0.0} | {grace - w for w in policy.mdf.expiry_warning_days}
    assert {float(k.split(" ")[0]) for k in hours} == expected
    policy.mdf.expiry_grace_days = 0  # expiries at the boundary: the same hour as the QBR cycle start
    merged = capacity.calendar_hours(Profile(partners=10_000), policy, costs, flows)
    assert len(merged["+0 days from the period boundary"]["what"]) == 2


def _write(tmp_path: Path, doc: object) -> Path:
    path = tmp_path / "costs.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def test_a_missing_or_garbled_costs_file_says_what_is_wrong(tmp_path) -> None:
    with pytest.raises(CostsError, match="not found: run `make bench`"):
        load_costs(tmp_path / "nope.json")
    with pytest.raises(CostsError, match="not valid JSON"):
        load_costs(_write(tmp_path, "{ half"))
    with pytest.raises(CostsError, match="schema 1"):
        load_costs(_write(tmp_path, [1, 2]))
    good = json.loads(COSTS_FILE.read_text())
    broken = json.loads(json.dumps(good))
    del broken["journeys"]["deal"]
    with pytest.raises(CostsError, match="journey 'deal' missing"):
        load_costs(_write(tmp_path, broken))
    broken = json.loads(json.dumps(good))
    broken["journeys"]["cert"]["actions"] = "many"
    with pytest.raises(CostsError, match=r"journeys\.cert\.actions must be a non-negative number \(got 'many'\)"):
        load_costs(_write(tmp_path, broken))
    broken = json.loads(json.dumps(good))
    broken["rates"]["api_requests_per_s"] = 0
    with pytest.raises(CostsError, match=r"rates\.api_requests_per_s must be a positive number"):
        load_costs(_write(tmp_path, broken))
    broken = json.loads(json.dumps(good))
    del broken["journeys"]["qbr"]["worker_seconds"]  # a file from before worker seconds
    with pytest.raises(CostsError, match=r"journeys\.qbr\.worker_seconds must be a non-negative number \(got None\)"):
        load_costs(_write(tmp_path, broken))


def test_profile_and_tier_mix_are_checked() -> None:
    assert parse_mix("platinum=2,gold=8,silver=25,registered=65") == capacity.DEFAULT_TIER_MIX
    with pytest.raises(ValueError, match="tier mix"):
        parse_mix("diamond=1")
    with pytest.raises(ValueError, match="summing to 1"):
        Profile(partners=10, tier_mix={"platinum": 0.5, "gold": 0.1, "silver": 0.1, "registered": 0.1})
    with pytest.raises(ValueError, match="at least 1"):
        Profile(partners=0)


def test_history_costs_count_billed_actions_from_events() -> None:
    """Actions: starts, activities (and their retries), timers, signals, upserts, local-activity
    markers; not a patch marker, not workflow task events."""
    from temporalio.api.enums.v1 import EventType as E
    from temporalio.api.history.v1 import History, HistoryEvent

    def ev(kind, **attrs) -> HistoryEvent:
        return HistoryEvent(event_type=kind, **attrs)

    events = [
        ev(E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED),
        ev(E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED),
        ev(E.EVENT_TYPE_WORKFLOW_TASK_STARTED),
        ev(E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED),
        ev(E.EVENT_TYPE_MARKER_RECORDED, marker_recorded_event_attributes={"marker_name": "core_patch"}),
        ev(E.EVENT_TYPE_MARKER_RECORDED, marker_recorded_event_attributes={"marker_name": "core_local_activity"}),
        ev(E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES),
        ev(E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED),
        ev(E.EVENT_TYPE_ACTIVITY_TASK_STARTED, activity_task_started_event_attributes={"attempt": 3}),
        ev(E.EVENT_TYPE_TIMER_STARTED),
        ev(E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED),
        ev(E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED),
        ev(E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED),
    ]
    one = History(events=events)
    c = history_costs([one, one])
    assert c["events"] == len(events) and c["history_bytes"] == sum(e.ByteSize() for e in events)
    assert c["actions"] == 1 + 1 + 1 + 1 + 2 + 1 + 1  # start, marker, upsert, activity + 2 retries, timer, signal
    assert (c["activities"], c["local_activities"], c["workflow_tasks"], c["timers"]) == (1, 1, 2, 1)


def test_the_command_prints_the_table_from_the_committed_costs(capsys) -> None:
    from worker import cli

    out = subprocess.run(
        [sys.executable, "-m", "worker.cli", "capacity", "--partners", "1000", "500000", "--jitter-hours", "6"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    for label in (
        "Temporal actions / month",
        "peak hour: actions",
        "workers",
        "API replicas",
        "Temporal history stored (30 d retention)",
        "PostgreSQL bytes / month",
    ):
        assert label in out, out
    assert "1,000" in out and "500,000" in out and "journey costs measured by make bench" in out
    assert cli.main(["capacity", "--partners", "1000", "--markdown"]) == 0
    assert capsys.readouterr().out.startswith("|  | 1,000 |")
    assert cli.main(["capacity", "--partners", "10", "--costs", "/nonexistent.json"]) == 2
    assert "not found: run `make bench`" in capsys.readouterr().err
    assert cli.main(["capacity", "--partners", "10", "--tier-mix", "gold=1,diamond=2"]) == 2
    assert "tier mix" in capsys.readouterr().err


def test_the_bench_merges_its_costs_into_the_file_and_checks_the_committed_prediction(tmp_path, monkeypatch) -> None:
    """A run of some journeys keeps the others' figures, recomputes the worker rate from the
    journeys run flat out, and compares itself with what the file predicted."""
    import importlib

    from bench import harness

    bench_main = importlib.import_module("bench.__main__")
    committed = json.loads(COSTS_FILE.read_text())
    path = _write(tmp_path, committed)
    deal = dict(committed["journeys"]["deal"], actions=committed["journeys"]["deal"]["actions"] * 1.1)
    monkeypatch.setattr(harness, "COSTS", {"deal": deal})
    monkeypatch.setattr(harness, "RATES", {})
    doc = bench_main.write_costs(path, 1000)
    assert doc["journeys"]["deal"] == deal and doc["journeys"]["cert"] == committed["journeys"]["cert"]
    assert doc["measured"]["n"] == 1000 and "worker_units_per_s" not in load_costs(path).rates
    check = bench_main.model_check(committed)
    row = dict(check.rows)["deal measured / predicted"]
    assert row.startswith("actions 1.10, events 1.00") and "worker time " in row


def test_the_bench_gives_each_journey_its_worker_seconds(tmp_path, monkeypatch) -> None:
    """Run flat out, a journey's worker seconds are what it took one worker; a journey that was
    not (a fund's firings, a QBR) is charged its units — workflow tasks, activities and local
    activities — at what a unit took on average in those runs."""
    import importlib

    from bench import harness

    bench_main = importlib.import_module("bench.__main__")
    base = {k: 0.0 for k in capacity.FIELDS} | {"measured_journeys": 10}
    costs = {
        # two workflow tasks and no activity, but eight local activities: 10 units in 0.1 s
        "deal": base | {"workflow_tasks": 2.0, "local_activities": 8.0, "journeys_per_s": 10.0},
        # 30 units in 0.2 s
        "mdf": base | {"workflow_tasks": 10.0, "activities": 10.0, "local_activities": 10.0, "journeys_per_s": 5.0},
        "qbr": base | {"workflow_tasks": 3.0, "activities": 1.0, "local_activities": 1.0, "journeys_per_s": 99.0},
    }
    monkeypatch.setattr(harness, "COSTS", costs)
    monkeypatch.setattr(harness, "RATES", {})
    path = _write(tmp_path, {"schema": 1, "journeys": {}, "rates": {"worker_units_per_s": 102.5}})
    doc = bench_main.write_costs(path, 10)
    assert "worker_units_per_s" not in doc["rates"]  # a unit's rate is not what a journey costs
    per_unit = (10 * 0.1 + 10 * 0.2) / (10 * 10 + 10 * 30)
    assert doc["rates"]["worker_seconds_per_unit"] == pytest.approx(per_unit, abs=1e-6)
    assert doc["journeys"]["deal"]["worker_seconds"] == pytest.approx(0.1)  # not its 2 workflow tasks' worth
    assert doc["journeys"]["mdf"]["worker_seconds"] == pytest.approx(0.2)
    assert doc["journeys"]["qbr"]["worker_seconds"] == pytest.approx(5 * per_unit, abs=1e-6)  # not 1 / 99 s


def test_workers_follow_the_journeys_worker_seconds(costs) -> None:
    """The worker count is the busiest hour's worker seconds at the utilisation: a journey that
    takes twice the worker time (its steps local activities, say, with no activity to count)
    needs about twice the workers."""
    n = 500_000
    heavy = capacity.Costs(
        journeys={k: dict(v) for k, v in costs.journeys.items()}, rates=costs.rates, measured=costs.measured
    )
    for j in ("onboarding", "deal", "mdf", "cert", "mdf_fund", "qbr"):
        heavy.journeys[j]["worker_seconds"] *= 2
    one, two = estimate(Profile(partners=n), costs), estimate(Profile(partners=n), heavy)
    assert two.peak["worker_seconds"] == pytest.approx(2 * one.peak["worker_seconds"])
    assert one.workers == math.ceil(one.peak["worker_seconds"] / 3600 / 0.7)
    assert 2 * one.workers - 1 <= two.workers <= 2 * one.workers
    # at the bar: the busiest hour's seconds at exactly the utilisation fit the workers, a hair more do not
    exact = one.peak["worker_seconds"] / 3600 / one.workers
    assert estimate(Profile(partners=n, utilisation=exact * 1.000001), costs).workers == one.workers
    assert estimate(Profile(partners=n, utilisation=exact * 0.999), costs).workers == one.workers + 1
