"""The what-if simulator (worker/simulate.py, docs/simulator.md): it never touches the live
stack, refuses an invalid draft or an unbounded run naming the field, and counts the same as the
same small program run on the dev server with second-long days."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from domain.policy import ProgramPolicy
from worker.simulate import (
    Clock,
    DealPlan,
    DraftError,
    PartnerPlan,
    Plan,
    bench_shape,
    check_bounds,
    count,
    drive,
    plan,
    run_once,
    settle,
    validate_draft,
)

ROOT = Path(__file__).resolve().parents[2]
LIVE_TABLES = ("partners", "cams", "deals", "certifications", "outbox", "audit_events", "policy_versions", "api_keys")


def _cli(tmp_path: Path, draft: object, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    path = tmp_path / "draft.json"
    path.write_text(json.dumps(draft))
    return subprocess.run(
        [sys.executable, "-m", "worker.cli", "simulate", "--draft", str(path), *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_an_invalid_draft_is_refused_naming_the_field(tmp_path):
    with pytest.raises(DraftError, match=r"deal\.approval_sla_days"):
        validate_draft({"deal": {"approval_sla_days": -1}})
    with pytest.raises(DraftError, match=r"limits\.no_such_field"):
        validate_draft({"limits": {"no_such_field": 1}})
    out = _cli(tmp_path, {"deal": {"approval_sla_days": -1}}, "--partners", "2", "--months", "1")
    assert out.returncode == 2
    assert "deal.approval_sla_days" in out.stderr
    assert "starting" not in out.stderr  # refused before anything started


def test_sample_size_and_horizon_are_capped_by_the_policy(tmp_path):
    policy = ProgramPolicy.model_validate({})
    check_bounds(200, 24, policy)
    with pytest.raises(DraftError, match="partners"):
        check_bounds(201, 12, policy)
    with pytest.raises(DraftError, match="months"):
        check_bounds(20, 25, policy)
    out = _cli(tmp_path, {}, "--partners", "100000", "--months", "12")
    assert out.returncode == 2 and "partners" in out.stderr


async def _live_counts(sessionmaker) -> dict[str, int]:
    async with sessionmaker() as session:
        return {t: (await session.execute(text(f"select count(*) from {t}"))).scalar_one() for t in LIVE_TABLES}


async def test_a_simulation_never_touches_the_live_database_namespace_or_mail(
    tmp_path, sessionmaker, mailbox, postgres, dev_env, api, ops
):
    """The CLI run with the live test stack's database, SMTP sink and Temporal server in its
    environment: the database, the namespace and the mailbox are as they were."""
    cam = await api.post("/cams", json={"name": "Live CAM", "email": "cam@live.test"}, headers=ops)
    assert cam.status_code == 201
    before = await _live_counts(sessionmaker)
    workflows_before = (await dev_env.client.count_workflows()).count
    mailbox.clear()
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {
        "TMPDIR": str(scratch),
        "DATABASE_URL": postgres.url,
        "SMTP_HOST": mailbox.host,
        "SMTP_PORT": str(mailbox.port),
        "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "TASK_QUEUE": "live",
    }
    out = _cli(
        tmp_path,
        {"deal": {"approval_sla_days": 1, "escalation_days": 2}},
        "--partners",
        "3",
        "--months",
        "1",
        "--seed",
        "5",
        "--json",
        str(tmp_path / "report.json"),
        env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["partners"] == 3 and report["seed"] == 5
    assert report["counts"]["current"]["emails"] > 0  # it did send, to its own sink
    after = await _live_counts(sessionmaker)
    if after != before:
        async with sessionmaker() as session:
            rows = (await session.execute(text("select actor, action, detail from audit_events order by id"))).all()
            mails = (await session.execute(text("select journey, template, recipient from outbox"))).all()
        raise AssertionError(f"{before} -> {after}: audit {rows}, outbox {mails}")
    assert (await dev_env.client.count_workflows()).count == workflows_before
    assert mailbox.messages == []
    assert list(scratch.iterdir()) == []  # its throw-away servers' files are gone


def _small_program() -> Plan:
    """Three partners, a deal each: a gold deal decided within the SLA, a gold deal decided after
    its reminder and its escalation, and a registered partner's deal approved automatically."""

    def partner(tier: str, cam: int | None, deal: DealPlan) -> PartnerPlan:
        return PartnerPlan(tier=tier, cam=cam, join_day=0, lateness=0.5, gives_up=1.0, deals=[deal])

    return Plan(
        partners=[
            partner("gold", 0, DealPlan(day=2, amount=120_000, category="network", decide_after=1, approve=True)),
            partner("gold", 0, DealPlan(day=3, amount=48_000, category="cloud", decide_after=5.5, approve=True)),
            partner(
                "registered", None, DealPlan(day=1, amount=5_000, category="security", decide_after=1, approve=True)
            ),
        ],
        cams=1,
        months=1,
        seed=0,
        shape=bench_shape(),
    )


async def test_the_simulator_counts_what_the_dev_server_does_with_second_long_days(
    tmp_path, settings, sessionmaker, mailbox, worker
):
    program = _small_program()
    # No QBR cycle on either side: the time-skipping server's calendar reaches a quarter's first day
    # within the month (depending on today's date), the dev server's with second-long days never.
    simulated = await run_once(
        program, ProgramPolicy.model_validate({}), tmp_path / "ts", lambda _: None, "simulated", lambda: False, False
    )

    async def now() -> datetime:
        return datetime.now(UTC)

    async def sleep(d: timedelta) -> None:
        import asyncio

        await asyncio.sleep(d.total_seconds())

    seconds = ProgramPolicy.model_validate({"day_seconds": 1})
    await drive(program, seconds, settings, Clock(sleep, now), lambda _: None, "dev", qbr_cycles=False)
    await settle(settings.database_url)
    real = await count(settings.database_url, mailbox.messages, program)
    assert simulated["deals"] == 3
    assert simulated["deals_auto_approved"] == 1 and simulated["cam_decisions"] == 2
    assert simulated["deal_escalations"] == 1
    keys = (
        "deals",
        "deals_auto_approved",
        "deals_auto_approved_minor",
        "cam_decisions",
        "escalations",
        "onboarding_active",
        "onboarding_at_risk",
        "outbox_sent",
        "emails",
    )
    assert real["emails_by_template"] == simulated["emails_by_template"]
    assert {k: real[k] for k in keys} == {k: simulated[k] for k in keys}


async def test_the_sample_is_measured_from_the_live_programs_history(api, ops, postgres, sessionmaker):
    from tests.helpers.api import create_cam, enrol
    from worker.simulate import measure

    assert measure(postgres.url) is None  # no partners: the bench generator's shape is used
    cam = await create_cam(api, ops)
    await enrol(api, ops, tier="gold", cam_id=cam["id"], domain="gold.test")
    await enrol(api, ops, tier="registered", domain="reg1.test")
    await enrol(api, ops, tier="registered", domain="reg2.test")
    before = await _live_counts(sessionmaker)
    shape = measure(postgres.url)
    assert shape is not None and shape.source == "live program"
    assert shape.tier_mix["gold"] == pytest.approx(1 / 3) and shape.tier_mix["registered"] == pytest.approx(2 / 3)
    assert shape.partners_per_cam == 1.0
    assert shape.deals_per_partner_year["gold"] == 0 and shape.certs_per_partner == 0
    assert await _live_counts(sessionmaker) == before  # read only (no worker runs: nothing else writes)


def test_the_qbr_cycle_is_started_as_its_schedule_starts_it():
    """The simulator starts the workflow the QBR schedule starts, under the schedule's id."""
    from temporalio.client import ScheduleActionStartWorkflow
    from temporalio.workflow import _Definition

    from journeys.qbr.cycle import QbrCycleWorkflow
    from journeys.qbr.domain import CYCLE_WORKFLOW, QBR_WORKFLOW, CycleInput
    from journeys.qbr.schedules import qbr_schedule
    from journeys.qbr.workflow import QbrWorkflow
    from worker.simulate import QBR_CYCLE_WORKFLOW, QBR_SCHEDULED_ID

    action = qbr_schedule(ProgramPolicy.model_validate({}), "queue").action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert action.workflow == QBR_CYCLE_WORKFLOW and action.id == QBR_SCHEDULED_ID
    assert list(action.args) == [CycleInput.model_validate({})]  # what the simulator's `{}` decodes to
    # the names the cycle's activity and the API start them by
    assert _Definition.must_from_class(QbrWorkflow).name == QBR_WORKFLOW
    assert _Definition.must_from_class(QbrCycleWorkflow).name == CYCLE_WORKFLOW == QBR_CYCLE_WORKFLOW


async def test_qbr_meetings_mdf_claims_and_leads_unplaced_current_against_draft():
    """One small program, two months, both policies (each in its own process): the QBR cycles the
    simulator starts at the cadence give CAM meetings (none where the draft makes gold digital);
    an MDF request claimed in time is paid (expired unclaimed under a two-day claim window); leads
    answered by their partners are placed (unplaced under a draft rule that matches nobody)."""
    from worker.simulate import LeadPlan, MdfPlan, simulate

    shape = bench_shape()
    shape.lead_accept, shape.lead_decline = 1.0, 0.0  # every partner accepts what it is offered
    mdf = MdfPlan(
        day=1, type_index=1, amount_minor=100_000, decide_after=1, claim_after=3, claim_decide_after=1, pay_after=0
    )
    program = Plan(
        partners=[
            PartnerPlan(tier="gold", cam=0, join_day=0, lateness=0.5, gives_up=1.0, mdf=[mdf]),
            PartnerPlan(tier="gold", cam=0, join_day=0, lateness=0.5, gives_up=1.0),
        ],
        cams=1,
        months=2,
        seed=7,
        shape=shape,
        leads=[LeadPlan(day=5, category="network"), LeadPlan(day=6.5, category="cloud")],
    )
    every_month = {"qbr": {"cycle_months": list(range(1, 13))}, "mdf": {"payment_cutoff_day": None}}
    current = ProgramPolicy.model_validate(every_month)
    draft = current.model_dump(mode="json")
    draft["qbr"]["tiers"]["gold"]["mode"] = "digital"
    draft["mdf"]["claim_window_days"] = 2
    draft["mdf"]["claim_reminder_days"] = [1]
    draft["leads"]["rules"] = [{"name": "platinum_only", "required": True, "tiers": ["platinum"]}]
    report = (await simulate(current, ProgramPolicy.model_validate(draft), program, lambda _: None)).as_json()
    now, then = report["current"], report["draft"]
    assert now["qbr_meetings_per_cam"] >= 2 and then["qbr_meetings_per_cam"] == 0, report["counts"]
    assert (now["mdf_claimed"], now["mdf_expired_unclaimed"]) == (1, 0), report["counts"]
    assert now["mdf_paid_amount"] == now["mdf_claimed_amount"] > 0
    assert (then["mdf_claimed"], then["mdf_paid_amount"], then["mdf_expired_unclaimed"]) == (0, 0, 1)
    assert then["mdf_expired_unclaimed_amount"] == 1_000
    assert (now["leads"], now["leads_unplaced"]) == (2, 0) and (then["leads"], then["leads_unplaced"]) == (2, 2)
    for key in ("qbr_meetings_per_cam", "mdf_claimed", "mdf_paid_amount", "mdf_expired_unclaimed", "leads_unplaced"):
        assert key in report["differences"] and key in report["labels"]


def _busy_sample(seed: int) -> Plan:
    """Six partners of the bench's shape over two months, with more deals, MDF requests and leads
    than a real program's two months, so that routing, approvals and claims all take turns."""
    shape = bench_shape()
    shape.deals_per_partner_year = {tier: 12.0 for tier in shape.deals_per_partner_year}
    shape.mdf_requests_per_partner_year = 6.0
    shape.leads_per_partner_year = 30.0
    shape.tier_mix = {"platinum": 0.2, "gold": 0.3, "silver": 0.2, "registered": 0.3}
    return plan(shape, 6, 2, seed)


async def test_the_same_sample_seed_and_policies_give_the_same_report():
    """The same sample under the same policy, twice at once (as current and as draft, each in its
    own process on its own servers): every count is the same; another seed draws another sample."""
    from worker.simulate import simulate

    program = _busy_sample(11)
    assert asdict(program) == asdict(_busy_sample(11))
    assert asdict(program) != asdict(_busy_sample(12))
    assert program.leads and any(p.deals for p in program.partners) and any(p.mdf for p in program.partners)
    policy = ProgramPolicy.model_validate({"qbr": {"cycle_months": list(range(1, 13))}})
    report = await simulate(policy, policy, program, lambda _: None)
    first, second = report.counts["current"], report.counts["draft"]
    assert first["leads"] == len(program.leads) and first["leads_placed"] > 0, first
    assert first["deals"] > 0 and first["mdf_requested"] > 0 and first["emails"] > 0, first
    assert first == second
    assert report.as_json()["differences"] == []


async def test_a_run_whose_parent_is_killed_stops_its_servers_and_removes_its_files(tmp_path):
    """The CLI killed (its own time limit, an operator's kill -9): each policy's process sees it,
    cancels at once, stops its throw-away servers and removes their files."""
    import asyncio
    import signal

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    draft = tmp_path / "draft.json"
    draft.write_text(json.dumps({"deal": {"approval_sla_days": 1}}))
    cli = subprocess.Popen(
        [sys.executable, "-m", "worker.cli", "simulate", "--draft", str(draft), "--partners", "2", "--months", "12"],
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(scratch)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def postgres_started() -> bool:
            return any(scratch.glob("camlights-simulate-*/*/pg/postmaster.pid"))

        deadline = asyncio.get_running_loop().time() + 120
        while not postgres_started():
            assert cli.poll() is None, "the simulation ended before it was killed"
            assert asyncio.get_running_loop().time() < deadline, "its servers did not start"
            await asyncio.sleep(0.2)
    finally:
        cli.send_signal(signal.SIGKILL)
        cli.wait()
    deadline = asyncio.get_running_loop().time() + 90
    while list(scratch.iterdir()):
        assert asyncio.get_running_loop().time() < deadline, f"left behind: {list(scratch.rglob('*'))[:5]}"
        await asyncio.sleep(0.5)
