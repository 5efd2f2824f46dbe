"""`camlights demo`: a small demo program (CAMs, a partner per tier, a deal waiting for a CAM,
a certification), loaded over HTTP through the running API (`make run`), as a user would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from core.settings import Settings
from domain.enums import Role
from store.apikeys import create_api_key
from store.db import make_engine, make_sessionmaker

CAMS = [("Casey Morgan", "casey.morgan@vendor.example"), ("Robin Ito", "robin.ito@vendor.example")]
PARTNERS = [
    ("Northwind Systems", "northwind.example", "US", "integrator", "platinum", 0),
    ("Contoso Cloud", "contoso.example", "GB", "msp", "gold", 1),
    ("Fabrikam Resellers", "fabrikam.example", "DE", "reseller", "silver", None),
    ("Tailspin Referrals", "tailspin.example", "FR", "referral", "registered", None),
]


async def load_demo(settings: Settings) -> None:
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as session, session.begin():
        _, ops_secret = await create_api_key(session, role=Role.ops, label="camlights demo")
    await engine.dispose()
    ops = {"Authorization": f"Bearer {ops_secret}"}
    base_url = f"http://{settings.api_host}:{settings.api_port}"
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as api:
        cam_ids: list[str] = []
        partner_ids: list[str] = []
        for name, email in CAMS:
            r = await api.post("/cams", json={"name": name, "email": email}, headers=ops)
            if r.status_code == 409:
                print(f"CAM {email} exists already: the demo was loaded before")
                return
            r.raise_for_status()
            cam_ids.append(r.json()["id"])
            print(f"CAM      {name:<22} {r.json()['id']}")
        for name, domain, country, kind, tier, cam in PARTNERS:
            body = {
                "name": name,
                "domain": domain,
                "country": country,
                "type": kind,
                "tier": tier,
                "cam_id": cam_ids[cam] if cam is not None else None,
                "contact_email": f"partners@{domain}",
            }
            r = await api.post("/partners", json=body, headers=ops)
            r.raise_for_status()
            print(f"partner  {name:<22} {tier:<10} {r.json()['id']}  onboarding-{r.json()['id']}")
            partner_ids.append(r.json()["id"])
        # A deal that waits for its CAM's decision (gold: the CAM decides; the email has links) and
        # a certification that expires in 45 days (reminders at 30 and 7 days).
        now = datetime.now(UTC)
        r = await api.post(
            "/deals",
            headers=ops,
            json={
                "partner_id": partner_ids[1],
                "customer_name": "Globex Corporation",
                "customer_domain": "globex.example",
                "product_category": "network",
                "amount": "48000.00",
                "currency": "USD",
                "expected_close_date": (now + timedelta(days=60)).date().isoformat(),
            },
        )
        r.raise_for_status()
        print(f"deal     Globex / Contoso Cloud  {r.json()['state']:<10} deal-{r.json()['id']}")
        r = await api.post(
            "/certifications",
            headers=ops,
            json={
                "partner_id": partner_ids[0],
                "person_name": "Sam Lee",
                "person_email": "sam@northwind.example",
                "track": "Network Associate",
                "product_category": "network",
                "issued_at": (now - timedelta(days=320)).isoformat(),
                "expires_at": (now + timedelta(days=45)).isoformat(),
            },
        )
        r.raise_for_status()
        print(f"cert     Network Associate       Northwind  cert-{r.json()['id']}")
        r = await api.post("/api-keys", json={"role": "cam", "cam_id": cam_ids[0], "label": "demo"}, headers=ops)
        r.raise_for_status()
        print(f"\nops key  {ops_secret}\ncam key  {r.json()['key']}  ({CAMS[0][0]})")
