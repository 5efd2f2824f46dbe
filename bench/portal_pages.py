"""The partner portal's pages at program scale, beside the CAM workspace's: the bench's generated
program (`bench/seed.py`: N partners, 10·N deals, 2·N certifications, MDF funds, written with
COPY), plus what the seed has none of for one partner (the one with the most deals): its portal
admin, eight quarters of scorecards and a QBR. The real API (uvicorn, one process) on loopback;
each page timed over sequential requests (after a warm-up) with a signed-in session: the
partner's admin on the portal, the busiest CAM and ops on the workspace. Pages are full GETs
over HTTP: the session's lookup, the queries, the template and the security headers. (The
workspace's deal page asks the deal's journey for its state live; the seeded deals have none, so
it is not timed here.)

    .venv/bin/python -m bench --only portal --n 10000"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta

from bench import harness, seed
from bench.harness import Section, Stack, latency, log

PERIODS = [f"{year}-Q{q}" for year in (2025, 2026) for q in (1, 2, 3, 4)]


def _token() -> tuple[str, str]:
    token = secrets.token_urlsafe(32)
    return token, hashlib.sha256(token.encode()).hexdigest()


async def sessions(st: Stack, partner_id: uuid.UUID, cam_id: uuid.UUID) -> dict[str, str]:
    """Cookies of a signed-in portal admin of the partner, of the CAM and of ops."""
    from store.models.portal import PartnerUser, PortalSession
    from store.models.web import WebOperator, WebSession

    ends = datetime.now(UTC) + timedelta(hours=2)
    portal, portal_hash = _token()
    cam, cam_hash = _token()
    ops, ops_hash = _token()
    async with st.sessionmaker() as session, session.begin():
        user = PartnerUser(
            partner_id=partner_id, name="Bench Admin", email="admin@portal.bench.test", role="admin", created_by="bench"
        )
        operator = WebOperator(email="ops@bench.test", name="Ops", created_by="bench")
        session.add_all([user, operator])
        await session.flush()
        session.add_all(
            [
                PortalSession(token_hash=portal_hash, user_id=user.id, csrf_token="x", expires_at=ends),
                WebSession(
                    token_hash=cam_hash,
                    role="cam",
                    cam_id=cam_id,
                    email="cam@bench.test",
                    csrf_token="x",
                    expires_at=ends,
                ),
                WebSession(
                    token_hash=ops_hash,
                    role="ops",
                    operator_id=operator.id,
                    email="ops@bench.test",
                    csrf_token="x",
                    expires_at=ends,
                ),
            ]
        )
    return {
        "portal": f"camlights_portal_session={portal}",
        "cam": f"camlights_session={cam}",
        "ops": f"camlights_session={ops}",
    }


async def scorecards(st: Stack, partner: dict) -> None:
    """Eight quarters of scorecards (scored by the journey's own rules) and the last quarter's QBR."""
    from domain.enums import Tier
    from domain.policy import ProgramPolicy
    from journeys.qbr.models import Qbr, QbrScorecard
    from journeys.qbr.scoring import ScorecardInputs, scorecard

    policy = ProgramPolicy()
    tier = Tier(partner["tier"])
    previous: list[float] = []
    async with st.sessionmaker() as session, session.begin():
        for i, period in enumerate(PERIODS):
            inputs = ScorecardInputs(
                currency="USD",
                window_start=datetime(2025, 1, 1, tzinfo=UTC),
                window_end=datetime(2025, 4, 1, tzinfo=UTC),
                revenue_minor=2_000_000 * (i + 1),
                target_minor=policy.qbr.tiers[tier].target_minor,
                registrations=i % 4,
                certifications_current=1,
                certifications_required=policy.qbr.tiers[tier].certifications_required,
            )
            card = scorecard(str(partner["id"]), period, tier, inputs, policy.qbr, previous)
            previous.append(card.score)
            session.add(
                QbrScorecard(
                    partner_id=partner["id"],
                    period=period,
                    tier=tier.value,
                    score=card.score,
                    band=card.band.value,
                    trend=card.trend,
                    metrics=[m.model_dump(mode="json") for m in card.metrics],
                    inputs=inputs.model_dump(mode="json"),
                    actions=card.actions,
                    review=card.review.model_dump(mode="json") if card.review else None,
                    policy_version=1,
                )
            )
        session.add(Qbr(partner_id=partner["id"], period=PERIODS[-1], state="scorecard_sent"))


def pages(partner: dict, deal_id: uuid.UUID) -> list[tuple[str, str, str]]:
    """(label, session, path) of every page timed."""
    return [
        ("portal: home", "portal", "/portal/"),
        ("portal: deals", "portal", "/portal/deals"),
        ("portal: a deal", "portal", f"/portal/deals/{deal_id}"),
        ("portal: marketing funds", "portal", "/portal/mdf"),
        ("portal: certifications", "portal", "/portal/certifications"),
        ("portal: scorecard", "portal", "/portal/scorecard"),
        ("portal: QBRs", "portal", "/portal/qbr"),
        ("portal: a QBR (pre-read)", "portal", f"/portal/qbr/{PERIODS[-1]}"),
        ("portal: team", "portal", "/portal/team"),
        ("workspace: Today (CAM)", "cam", "/web/"),
        ("workspace: portfolio (CAM)", "cam", "/web/portfolio"),
        ("workspace: a partner (CAM)", "cam", f"/web/partners/{partner['id']}"),
        ("workspace: Today (ops)", "ops", "/web/"),
        ("workspace: CAM capacity (ops)", "ops", "/web/cams/capacity"),
    ]


async def run(st: Stack, n: int, requests: int = 100) -> list[Section]:
    import httpx

    n_deals, n_certs = 10 * n, 2 * n
    t = time.perf_counter()
    prog = seed.generate(n, n_deals, n_certs)
    await asyncio.to_thread(seed.write, st.settings.database_url, prog)
    log(f"seeded {n} partners, {n_deals} deals, {n_certs} certifications in {time.perf_counter() - t:.1f}s")
    with_cam = [p for p in prog.partners if p["cam_id"]]
    partner = max(with_cam, key=lambda p: sum(1 for d in prog.deals if d["partner_id"] == p["id"]))
    deal_id = next(d["id"] for d in prog.deals if d["partner_id"] == partner["id"])
    cookies = await sessions(st, partner["id"], partner["cam_id"])
    await scorecards(st, partner)
    deals = sum(1 for d in prog.deals if d["partner_id"] == partner["id"])
    certs = sum(1 for c in prog.certifications if c["partner_id"] == partner["id"])
    api = harness.start_api(st)
    out = Section(f"portal and workspace pages at {n} partners / {n_deals} deals / {n_certs} certifications")
    out.add("the partner (portal)", f"{partner['tier']}, {deals} deals, {certs} certifications, 8 scorecards")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api.port}", timeout=30) as http:
            for label, who, path in pages(partner, deal_id):
                times = []
                for i in range(requests + 3):
                    t0 = time.perf_counter()
                    r = await http.get(path, headers={"Cookie": cookies[who]})
                    dt = time.perf_counter() - t0
                    if r.status_code != 200:
                        raise RuntimeError(f"GET {path}: {r.status_code} {r.text[:200]}")
                    if i >= 3:  # the warm-up
                        times.append(dt)
                out.add(f"GET {label}", f"{latency(times)}  {len(r.content) // 1024} KiB")
    finally:
        api.stop()
    return [out]
