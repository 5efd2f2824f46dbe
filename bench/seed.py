"""A realistic program, generated: CAMs, partners in a realistic tier mix, deals and
certifications, written with PostgreSQL COPY (10,000 partners, 100,000 deals and 20,000
certifications in well under a minute). Deterministic for a given seed.

    tier mix      platinum 2 %, gold 8 %, silver 25 %, registered 65 %
    CAMs          platinum, gold and silver partners have one; at most 40 partners each (25 on average)
    deals         10 per partner on average (platinum 4x, gold 2x, registered 0.5x), over two years;
                  30 % approved (protection ending within 180 days), 25 % won, 20 % lost,
                  12 % expired, 6 % pending approval, 5 % rejected, 2 % in conflict review
    certifications 2 per partner on average: 85 % active (expiring within two years), 5 % grace,
                  10 % lapsed (restricted)
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

TIER_MIX = (("platinum", 0.02), ("gold", 0.08), ("silver", 0.25), ("registered", 0.65))
DEALS_WEIGHT = {"platinum": 4.0, "gold": 2.0, "silver": 1.2, "registered": 0.5}
DEAL_STATES = (
    ("approved", 0.30),
    ("won", 0.25),
    ("lost", 0.20),
    ("expired", 0.12),
    ("pending_approval", 0.06),
    ("rejected", 0.05),
    ("conflict_review", 0.02),
)
CERT_STATES = (("active", 0.85), ("grace", 0.05), ("lapsed", 0.10))
CATEGORIES = ("network", "security", "cloud", "storage", "collaboration", "analytics")
STAGES = ("qualification", "discovery", "proposal", "negotiation")
TYPES = ("reseller", "msp", "distributor", "integrator", "referral")
CAM_PORTFOLIO = 25


@dataclass
class Program:
    cams: list[dict] = field(default_factory=list)
    partners: list[dict] = field(default_factory=list)
    deals: list[dict] = field(default_factory=list)
    certifications: list[dict] = field(default_factory=list)
    mdf_funds: list[dict] = field(default_factory=list)
    mdf_entries: list[dict] = field(default_factory=list)

    def tiers(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.partners:
            out[p["tier"]] = out.get(p["tier"], 0) + 1
        return out


def _pick(rng: random.Random, weighted) -> str:
    r, acc = rng.random(), 0.0
    for value, weight in weighted:
        acc += weight
        if r < acc:
            return value
    return weighted[-1][0]


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def generate(
    partners: int, deals: int | None = None, certs: int | None = None, seed: int = 12, funds: bool = True
) -> Program:
    """`partners` partners, `deals` deals (10 per partner by default) and `certs` certifications
    (2 per partner by default)."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    deals = 10 * partners if deals is None else deals
    certs = 2 * partners if certs is None else certs
    prog = Program()

    tiers = [_pick(rng, TIER_MIX) for _ in range(partners)]
    covered = sum(1 for t in tiers if t != "registered")
    for i in range(max(1, round(covered / CAM_PORTFOLIO))):
        prog.cams.append({"id": _uuid(rng), "name": f"CAM {i}", "email": f"cam{i}@vendor.bench.test"})
    portfolio = [0] * len(prog.cams)
    for i, tier in enumerate(tiers):
        cam_id = None
        if tier != "registered":
            # fill CAMs unevenly, at most 40 partners each
            slot = min(range(len(prog.cams)), key=lambda c: (portfolio[c] >= 40, portfolio[c] + rng.random() * 30))
            portfolio[slot] += 1
            cam_id = prog.cams[slot]["id"]
        status = _pick(rng, (("active", 0.75), ("onboarding", 0.15), ("at_risk", 0.10)))
        created = now - timedelta(days=rng.uniform(0, 1000))
        prog.partners.append(
            {
                "id": _uuid(rng),
                "name": f"Partner {i} {rng.choice(('Systems', 'Cloud', 'Networks', 'IT'))}",
                "domain": f"p{i}.bench.test",
                "country": rng.choice(("DE", "US", "FR", "GB", "JP", "BR")),
                "type": rng.choice(TYPES),
                "tier": tier,
                "cam_id": cam_id,
                "contact_email": f"owner@p{i}.bench.test",
                "status": status,
                "created_at": created,
                "updated_at": created,
            }
        )

    weights = [DEALS_WEIGHT[p["tier"]] for p in prog.partners]
    owners = rng.choices(prog.partners, weights=weights, k=deals)
    customers = max(10, deals // 3)
    for owner in owners:
        c = rng.randrange(customers)
        state = _pick(rng, DEAL_STATES)
        created = now - timedelta(days=rng.uniform(0, 730), seconds=rng.uniform(0, 86400))
        protected = now + timedelta(days=rng.uniform(0, 180)) if state == "approved" else None
        amount = rng.choice((5_000, 20_000, 48_000, 120_000, 500_000)) * 100
        prog.deals.append(
            {
                "id": _uuid(rng),
                "partner_id": owner["id"],
                "customer_name": f"Customer {c} Inc",
                "customer_domain": f"customer{c}.example",
                "customer_key": f"customer{c}.example",
                "customer_name_key": f"customer {c}",
                "product_category": rng.choice(CATEGORIES),
                "amount_minor": amount,
                "currency": "USD",
                "expected_close_date": (created + timedelta(days=rng.uniform(30, 240))).date(),
                "stage": rng.choice(STAGES),
                "state": state,
                "conflict_with": None,
                "decided_by": None if state in ("pending_approval", "conflict_review") else "system",
                "decided_at": None,
                "decision_reason": None,
                "protected_until": protected,
                "extensions_used": 0,
                "created_by": f"partner:{owner['id']}",
                "created_at": created,
                "updated_at": created,
            }
        )

    cert_weights = [2 if p["tier"] != "registered" else 1 for p in prog.partners]
    cert_owners = rng.choices(prog.partners, weights=cert_weights, k=certs)
    for i, owner in enumerate(cert_owners):
        state = _pick(rng, CERT_STATES)
        if state == "active":
            expires = now + timedelta(days=rng.uniform(1, 730))
        else:
            expires = now - timedelta(days=rng.uniform(1, 120))
        prog.certifications.append(
            {
                "id": _uuid(rng),
                "partner_id": owner["id"],
                "person_name": f"Person {i}",
                "person_email": f"person{i}@{owner['domain']}",
                "track": f"{rng.choice(CATEGORIES).title()} Associate",
                "product_category": rng.choice(CATEGORIES),
                "issued_at": expires - timedelta(days=730),
                "expires_at": expires,
                "state": state,
                "restricted": state == "lapsed",
                "period": 1,
                "created_by": "ops:bench",
                "created_at": expires - timedelta(days=730),
                "updated_at": now,
            }
        )
    if funds:
        mdf(rng, prog, now)
    return prog


MDF_PERIODS = (("2026-Q3", 7, 9), ("2026-Q4", 10, 12))
MDF_ALLOCATION = {"platinum": 5_000_000, "gold": 2_000_000, "silver": 500_000, "registered": 100_000}


def mdf(rng: random.Random, prog: Program, now: datetime) -> None:
    """A fund per partner and period (two quarters) with its ledger: the allocation, and for about
    half of them reservations, payments and releases (balances are sums of entries)."""
    for p in prog.partners:
        for period, first, last in MDF_PERIODS:
            starts = datetime(2026, first, 1, tzinfo=UTC)
            ends = datetime(2026 + (last == 12), last % 12 + 1, 1, tzinfo=UTC)
            fund = {
                "id": _uuid(rng),
                "partner_id": p["id"],
                "period": period,
                "currency": "USD",
                "starts_at": starts,
                "ends_at": ends,
                "expires_at": ends,
                "created_at": starts,
            }
            prog.mdf_funds.append(fund)
            allocated = MDF_ALLOCATION[p["tier"]]
            moves = [("allocation", allocated)]
            if rng.random() < 0.5:
                reserved = allocated * rng.choice((2, 4, 6)) // 10
                paid = reserved * rng.choice((5, 8, 10)) // 10
                moves += [("reservation", reserved), ("payment", paid)]
                if reserved > paid:
                    moves.append(("release", reserved - paid))
            for kind, amount in moves:
                entry = {"fund_id": fund["id"], "partner_id": p["id"], "kind": kind, "amount_minor": amount}
                prog.mdf_entries.append({**entry, "by": "ops:bench", "detail": "{}", "at": starts})


def dsn(database_url: str) -> str:
    """A libpq DSN from the SQLAlchemy URL (`postgresql+psycopg://...`)."""
    return database_url.replace("postgresql+psycopg://", "postgresql://", 1)


def write(database_url: str, prog: Program) -> None:
    """COPY every row, then ANALYZE (as autovacuum would soon after a bulk load)."""
    import psycopg

    tables = (
        ("cams", prog.cams),
        ("partners", prog.partners),
        ("deals", prog.deals),
        ("certifications", prog.certifications),
        ("mdf_funds", prog.mdf_funds),
        ("mdf_entries", prog.mdf_entries),
    )
    with psycopg.connect(dsn(database_url)) as conn:
        with conn.cursor() as cur:
            for table, rows in tables:
                if not rows:
                    continue
                cols = list(rows[0])
                with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row([row[c] for c in cols])
        conn.commit()
        conn.autocommit = True
        for table, _ in tables:
            conn.execute(f"ANALYZE {table}")


def expected_close() -> date:
    return (datetime.now(UTC) + timedelta(days=90)).date()
