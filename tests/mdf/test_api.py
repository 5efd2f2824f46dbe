"""The MDF journey end to end through the API on the dev server (days of a second): atomic
reservations under concurrency, the ledger behind every balance, upload refusals, proof download
authorization, one-click approval, Idempotency-Key on request and claim creation, reports."""

from __future__ import annotations

import asyncio
import hashlib
import struct
import uuid
import zlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from domain.enums import Role
from domain.links import MDF_SALT, make_token, read_token
from tests.helpers.api import approve_link, create_cam, enrol, new_key
from tests.helpers.policies import fast_policy
from tests.helpers.waiting import eventually

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
CSV = b"name,email,company\nAda,ada@example.test,Example\n"
# A partner's attendee list with cells Excel would run: served to reviewers defused.
FORMULA_CSV = b"name;email;score\r\n=HYPERLINK(A1);@SUM(1);-5\r\n+cmd|x;\ttab;-2+3\r\n"
DEFUSED_CSV = b"name;email;score\r\n'=HYPERLINK(A1);'@SUM(1);-5\r\n'+cmd|x;'\ttab;'-2+3\r\n"


def png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00\x00"))
        + chunk(b"IEND", b"")
    )


async def fast(api, ops, **mdf):
    policy = fast_policy(day_seconds=1).model_dump(mode="json")
    policy["mdf"].update({"decision_link_days": 30, "pre_approval_days": 60, "claim_window_days": 60, **mdf})
    for level in policy["mdf"]["approval_levels"]:
        level.update({"sla_days": 30, "escalation_days": 60})
    r = await api.put("/policy", json=policy, headers=ops)
    assert r.status_code == 201, r.text


def body(**over):
    today = datetime.now(UTC).date()
    return {
        "activity_type": "event",
        "title": "Spring roadshow",
        "planned_start": str(today),
        "planned_end": str(today + timedelta(days=3)),
        "amount_minor": 100_000,
        "currency": "USD",
        "expected_outcomes": "20 qualified leads",
        **over,
    }


async def setup(api, ops, sessionmaker, tier="gold", domain=None):
    cam = await create_cam(api, ops, email=f"cam-{uuid.uuid4().hex[:6]}@vendor.test")
    partner = await enrol(
        api,
        ops,
        tier=tier,
        cam_id=cam["id"] if tier in ("gold", "platinum") else None,
        domain=domain or f"{uuid.uuid4().hex[:8]}.test",
    )
    partner_h = await new_key(sessionmaker, Role.partner, partner_id=partner["id"])
    cam_h = await new_key(sessionmaker, Role.cam, cam_id=cam["id"])
    return cam, partner, partner_h, cam_h


async def funds(api, headers, partner_id):
    r = await api.get(f"/partners/{partner_id}/funds", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["funds"][0]


async def test_twenty_concurrent_requests_against_funds_for_ten(api, ops, worker, sessionmaker):
    """Gold allocation 25,000.00: twenty requests of 2,500.00 at once, exactly ten reserved; the
    others are refused with 409 naming what is available; the ledger sums to every balance."""
    await fast(api, ops)
    _, partner, partner_h, _ = await setup(api, ops, sessionmaker)
    results = await asyncio.gather(
        *[
            api.post("/mdf/requests", json=body(amount_minor=250_000, title=f"Event {i}"), headers=partner_h)
            for i in range(20)
        ]
    )
    codes = sorted(r.status_code for r in results)
    assert codes == [201] * 10 + [409] * 10, [r.text for r in results if r.status_code not in (201, 409)]
    refused = next(r for r in results if r.status_code == 409).json()
    assert "USD 0.00 available" in refused["detail"], refused
    fund = await funds(api, partner_h, partner["id"])
    b = fund["balances"]
    assert b["reserved_minor"] == 2_500_000 and b["available_minor"] == 0 and b["allocated_minor"] == 2_500_000
    signed = {
        "allocation": 1,
        "accrual": 1,
        "adjustment": 1,
        "reservation": -1,
        "release": 1,
        "payment": 0,
        "expiry": -1,
        "clawback": 0,
        "claim": 0,
    }
    assert sum(signed[e["kind"]] * e["amount_minor"] for e in fund["entries"]) == b["available_minor"]
    assert len([e for e in fund["entries"] if e["kind"] == "reservation"]) == 10


async def approved_request(api, ops, sessionmaker, mailbox, **over):
    cam, partner, partner_h, cam_h = await setup(api, ops, sessionmaker)
    r = await api.post("/mdf/requests", json=body(**over), headers=partner_h)
    assert r.status_code == 201, r.text
    req = r.json()
    r = await api.post(f"/mdf/requests/{req['id']}/decision", json={"decision": "approve"}, headers=partner_h)
    assert r.status_code == 403, r.text
    r = await api.post(f"/mdf/requests/{req['id']}/decision", json={"decision": "approve"}, headers=cam_h)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "approved"
    return cam, partner, partner_h, cam_h, req


async def test_claim_upload_refusals_proof_download_and_idempotency(api, ops, worker, sessionmaker, mailbox):
    cam, partner, partner_h, cam_h, req = await approved_request(api, ops, sessionmaker, mailbox)
    url = f"/mdf/requests/{req['id']}/claim"
    fields = {"amount_minor": "50000", "total_cost_minor": "100000"}
    good = [
        ("invoice", ("invoice.pdf", PDF, "application/pdf")),
        ("photo", ("booth.png", png(), "image/png")),
        ("attendee_list", ("attendees.csv", FORMULA_CSV, "text/csv")),
    ]
    # wrong type by content: an executable named .pdf
    r = await api.post(
        url,
        data=fields,
        files=[("invoice", ("invoice.pdf", b"MZ\x90\x00binary", "application/pdf")), *good[1:]],
        headers=partner_h,
    )
    assert r.status_code == 415 and "invoice.pdf" in r.json()["detail"], r.text
    # missing required proof (an event needs photos and the attendee list)
    r = await api.post(url, data=fields, files=good[:1], headers=partner_h)
    assert r.status_code == 422 and "photo" in r.json()["detail"], r.text
    # too large: the policy's per-file limit
    await fast(api, ops, max_file_bytes=1024, max_total_bytes=4096)
    r = await api.post(
        url,
        data=fields,
        files=[("invoice", ("big.pdf", PDF + b"0" * 2000, "application/pdf")), *good[1:]],
        headers=partner_h,
    )
    assert r.status_code == 413, r.text
    async with sessionmaker() as session:
        from sqlalchemy import func, select

        from journeys.mdf.models import MdfProof

        assert await session.scalar(select(func.count()).select_from(MdfProof)) == 0  # nothing stored
    # the claim, sent twice with one Idempotency-Key
    key = {"Idempotency-Key": f"claim-{uuid.uuid4()}"}
    first = await api.post(url, data=fields, files=good, headers={**partner_h, **key})
    assert first.status_code == 200 and first.json()["state"] == "claim_review", first.text
    again = await api.post(url, data=fields, files=good, headers={**partner_h, **key})
    assert again.status_code == 200 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    proofs = (await api.get(f"/mdf/requests/{req['id']}/proofs", headers=cam_h)).json()
    assert sorted(p["kind"] for p in proofs) == ["attendee_list", "invoice", "photo"]
    invoice = next(p for p in proofs if p["kind"] == "invoice")
    r = await api.get(f"/mdf/requests/{req['id']}/proofs/{invoice['id']}", headers=partner_h)
    assert r.status_code == 200 and r.content == PDF and r.headers["content-type"] == "application/pdf"
    attendees = next(p for p in proofs if p["kind"] == "attendee_list")
    r = await api.get(f"/mdf/requests/{req['id']}/proofs/{attendees['id']}", headers=cam_h)
    assert r.status_code == 200 and r.content == DEFUSED_CSV, r.content
    assert (
        r.headers["content-disposition"].startswith("attachment;") and r.headers["x-content-type-options"] == "nosniff"
    )
    assert r.headers["x-proof-sha256"] == hashlib.sha256(FORMULA_CSV).hexdigest()
    # another partner (and another CAM) may not read it
    _, other, other_h, other_cam_h = await setup(api, ops, sessionmaker)
    for headers in (other_h, other_cam_h):
        r = await api.get(f"/mdf/requests/{req['id']}/proofs/{invoice['id']}", headers=headers)
        assert r.status_code == 403, r.text
    r = await api.get(f"/mdf/requests/{req['id']}/proofs/{uuid.uuid4()}", headers=partner_h)
    assert r.status_code == 404


async def test_one_click_approval_link_payments_and_reports(api, ops, worker, sessionmaker, mailbox):
    await fast(api, ops)
    cam, partner, partner_h, cam_h = await setup(api, ops, sessionmaker)
    r = await api.post("/mdf/requests", json=body(amount_minor=80_000), headers={**partner_h, "Idempotency-Key": "r1"})
    assert r.status_code == 201, r.text
    req = r.json()
    again = await api.post(
        "/mdf/requests", json=body(amount_minor=80_000), headers={**partner_h, "Idempotency-Key": "r1"}
    )
    assert again.status_code == 201 and again.json()["id"] == req["id"]

    url = await eventually(
        lambda: approve_link(mailbox, "request_approval_request", cam["email"]),
        what="the approval email with its links",
    )
    page = await api.get(url)
    assert page.status_code == 200 and "Confirm: approve" in page.text
    done = await api.post(url, data={"reason": "looks good"})
    assert done.status_code == 200 and "approved" in done.text, done.text
    reused = await api.post(url, data={"reason": "again"})
    assert reused.status_code == 410
    got = (await api.get(f"/mdf/requests/{req['id']}", headers=partner_h)).json()
    assert got["state"] == "approved" and got["progress"]["decisions"][0]["by"] == f"cam:{cam['id']}"
    # claim (webinar proof is lighter, but this is an event)
    files = [
        ("invoice", ("i.pdf", PDF, "application/pdf")),
        ("photo", ("p.png", png(), "image/png")),
        ("attendee_list", ("a.csv", CSV, "text/csv")),
    ]
    r = await api.post(
        f"/mdf/requests/{req['id']}/claim",
        data={"amount_minor": "60000", "total_cost_minor": "150000"},
        files=files,
        headers=partner_h,
    )
    assert r.status_code == 200, r.text
    r = await api.post(f"/mdf/requests/{req['id']}/claim/decision", json={"decision": "approve"}, headers=cam_h)
    assert r.status_code == 200 and r.json()["state"] == "claim_approved", r.text
    r = await api.post(
        f"/mdf/requests/{req['id']}/payments",
        json={"reference": "P1", "amount_minor": 60_000, "paid_on": str(datetime.now(UTC).date())},
        headers=cam_h,
    )
    assert r.status_code == 403
    r = await api.post(
        f"/mdf/requests/{req['id']}/payments",
        json={"reference": "P1", "amount_minor": 60_000, "paid_on": str(datetime.now(UTC).date())},
        headers=ops,
    )
    assert r.status_code == 200 and r.json()["state"] == "paid", r.text
    published = ["mdf.requested", "mdf.approved", "mdf.claim_approved", "mdf.payment_recorded", "mdf.paid"]

    async def events() -> list[str]:  # published for webhook subscribers, in the journey's order
        from sqlalchemy import select

        from store.models.integrations import WebhookEvent

        async with sessionmaker() as session:
            query = select(WebhookEvent.type).where(WebhookEvent.partner_id == partner["id"])
            return [t for t in (await session.scalars(query.order_by(WebhookEvent.seq))).all() if t.startswith("mdf.")]

    await eventually(lambda: _equals(events(), published), what="the MDF events")
    r = await api.post(
        f"/mdf/requests/{req['id']}/clawbacks", json={"amount_minor": 70_000, "reason": "no event"}, headers=ops
    )
    assert r.status_code == 422, r.text
    r = await api.post(
        f"/mdf/requests/{req['id']}/clawbacks", json={"amount_minor": 10_000, "reason": "fewer booths"}, headers=ops
    )
    assert r.status_code == 201 and r.json()["clawed_back_minor"] == 10_000, r.text
    # a deal sourced by this activity, won: the ROI report
    fund = await funds(api, partner_h, partner["id"])
    assert fund["balances"]["paid_minor"] == 50_000 and fund["balances"]["reserved_minor"] == 0
    report = (await api.get("/mdf/reports/utilization", params={"partner_id": partner["id"]}, headers=cam_h)).json()
    assert report[0]["paid_minor"] == 50_000 and report[0]["requested_minor"] == 80_000
    assert report[0]["utilization_percent"] == round(100 * 50_000 / 2_500_000, 2)
    csv_text = (await api.get("/mdf/reports/utilization", params={"format": "csv"}, headers=cam_h)).text
    assert csv_text.splitlines()[0].startswith("partner_id,partner_name,period")
    roi = (await api.get("/mdf/reports/roi", headers=ops)).json()
    assert any(row["partner_id"] == partner["id"] and row["paid_minor"] == 60_000 for row in roi)


async def test_ops_inbox_links_decide_the_first_level_only(api, ops, worker, sessionmaker, mailbox, settings):
    """Issue 29: a silver partner (no CAM) asks 6,000.00 (two levels; ops decide the first). Whoever
    reads the ops inbox approves the first level with the request email's link; the reminder's link
    cannot approve the channel-marketing level (409) and stays used (410); an ops key without an
    approver level may not decide it (403); the approver of the first level may not approve the
    second (403); another key of level 2 does."""
    policy = fast_policy(day_seconds=1).model_dump(mode="json")
    policy["mdf"].update({"decision_link_days": 30, "pre_approval_days": 60, "claim_window_days": 60})
    for level in policy["mdf"]["approval_levels"]:
        level.update({"sla_days": 30, "escalation_days": 60})
    policy["mdf"]["approval_levels"][0].update({"sla_days": 1})  # the reminder at once
    assert (await api.put("/policy", json=policy, headers=ops)).status_code == 201
    _, partner, partner_h, _ = await setup(api, ops, sessionmaker, tier="silver")
    r = await api.post("/mdf/requests", json=body(amount_minor=600_000), headers=partner_h)
    assert r.status_code == 201, r.text
    req = r.json()
    reminded = await eventually(
        lambda: approve_link(mailbox, "request_approval_reminder"), what="the reminder with its links"
    )
    requested = approve_link(mailbox, "request_approval_request")
    assert requested and requested != reminded
    # a link naming no level (as issued before links carried one) decides nothing
    claims = read_token(settings.link_secret, requested.rsplit("/", 1)[1], salt=MDF_SALT)
    bare = replace(claims, jti="f" * 32, level=None, round=None, amount_minor=None)
    old = await api.get(f"/mdf/links/{make_token(settings.link_secret, bare, salt=MDF_SALT)}")
    assert old.status_code == 410 and "approval level" in old.text
    done = await api.post(requested, data={"reason": "fine"})
    assert done.status_code == 200, done.text
    got = (await api.get(f"/mdf/requests/{req['id']}", headers=ops)).json()
    assert got["progress"]["level"] == "channel_marketing", got
    refused = await api.post(reminded, data={"reason": "finance too"})
    assert refused.status_code == 409 and "level 2" in refused.text, refused.text
    assert (await api.post(reminded, data={"reason": "again"})).status_code == 410  # not released
    decide = f"/mdf/requests/{req['id']}/decision"
    r = await api.post(decide, json={"decision": "approve"}, headers=ops)  # an ops key without a level
    assert r.status_code == 403, r.text
    level2 = await new_key(sessionmaker, Role.ops, approver_level=2)
    assert (await api.post(decide, json={"decision": "approve"}, headers=level2)).status_code == 200
    # separation of duties: the key that approved the first level does not approve the second
    _, other, other_h, _ = await setup(api, ops, sessionmaker, tier="silver")
    r = await api.post("/mdf/requests", json=body(amount_minor=600_000), headers=other_h)
    decide = f"/mdf/requests/{r.json()['id']}/decision"
    r = await api.post(decide, json={"decision": "approve"}, headers=level2)
    assert r.status_code == 200 and r.json()["level"] == "channel_marketing", r.text
    r = await api.post(decide, json={"decision": "approve"}, headers=level2)
    assert r.status_code == 403 and "another approver" in r.json()["detail"], r.text


async def test_deal_sourced_by_mdf_accrues_and_counts_in_roi(api, ops, worker, sessionmaker, mailbox):
    """A deal linked to an MDF activity, won: 1% of its revenue accrues to the fund (an entry), and the
    ROI report counts its revenue. Another partner's request cannot be linked. Awaiting-me lists."""
    from tests.helpers.api import deal_body

    await fast(api, ops)
    cam, partner, partner_h, cam_h = await setup(api, ops, sessionmaker)
    req = (await api.post("/mdf/requests", json=body(amount_minor=50_000), headers=partner_h)).json()
    mine = (await api.get("/mdf/requests", params={"awaiting_me": "true"}, headers=cam_h)).json()
    assert [r["id"] for r in mine] == [req["id"]]
    level2 = await new_key(sessionmaker, Role.ops, approver_level=2)
    assert (await api.get("/mdf/requests", params={"awaiting_me": "true"}, headers=level2)).json() == []
    _, other, other_h, _ = await setup(api, ops, sessionmaker)
    r = await api.post("/deals", json=deal_body(mdf_request_id=req["id"]), headers=other_h)
    assert r.status_code == 422 and "mdf_request_id" in r.json()["detail"], r.text
    r = await api.post("/deals", json=deal_body(mdf_request_id=req["id"]), headers=partner_h)
    assert r.status_code == 201, r.text
    deal = r.json()
    assert deal["mdf_request_id"] == req["id"]
    r = await api.post(f"/deals/{deal['id']}/decision", json={"decision": "approve", "reason": "ok"}, headers=cam_h)
    assert r.status_code == 200, r.text
    r = await api.post(f"/deals/{deal['id']}/stage", json={"stage": "closed_won"}, headers=partner_h)
    assert r.status_code == 202, r.text

    async def accrued():
        fund = await funds(api, partner_h, partner["id"])
        return fund["balances"]["accrued_minor"] == 25_000  # 1% of 25,000.00

    await eventually(accrued, what="the accrual of the won deal")
    roi = (await api.get("/mdf/reports/roi", params={"partner_id": partner["id"]}, headers=partner_h)).json()
    assert roi[0]["won_revenue_minor"] == 2_500_000 and roi[0]["roi"] is None  # nothing paid yet


async def test_proof_files_in_an_s3_bucket(settings, ops, worker, sessionmaker, mailbox):
    """With PROOF_BUCKET set, the files go to the bucket (the row keeps name, type, size, SHA-256) and
    downloads read them back. The S3-compatible server is moto's HTTP server on loopback (no MinIO or
    other S3 server ships as a wheel); the client is the real boto3 over HTTP."""
    import hashlib

    import boto3
    import httpx
    from moto.server import ThreadedMotoServer

    from api.app import create_app
    from worker.services import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        s3 = {
            "s3_endpoint_url": f"http://127.0.0.1:{port}",
            "s3_access_key_id": "test",
            "s3_secret_access_key": "test",
            "proof_bucket": "camlights-proofs",
        }
        client = boto3.client(
            "s3",
            region_name="us-east-1",
            endpoint_url=s3["s3_endpoint_url"],
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        client.create_bucket(Bucket="camlights-proofs")
        app = create_app(settings.model_copy(update=s3), reconcile_every=None)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://camlights.test") as api:
                _, _, partner_h, _, req = await approved_request(api, ops, sessionmaker, mailbox)
                files = [
                    ("invoice", ("i.pdf", PDF, "application/pdf")),
                    ("photo", ("p.png", png(), "image/png")),
                    ("attendee_list", ("a.csv", CSV, "text/csv")),
                ]
                r = await api.post(
                    f"/mdf/requests/{req['id']}/claim",
                    files=files,
                    headers=partner_h,
                    data={"amount_minor": "50000", "total_cost_minor": "100000"},
                )
                assert r.status_code == 200, r.text
                proofs = (await api.get(f"/mdf/requests/{req['id']}/proofs", headers=partner_h)).json()
                invoice = next(p for p in proofs if p["kind"] == "invoice")
                assert invoice["sha256"] == hashlib.sha256(PDF).hexdigest()
                got = await api.get(f"/mdf/requests/{req['id']}/proofs/{invoice['id']}", headers=partner_h)
                assert got.status_code == 200 and got.content == PDF
        keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="camlights-proofs")["Contents"])
        assert keys == sorted(f"mdf/{req['id']}/{p['id']}" for p in proofs)
        obj = client.get_object(Bucket="camlights-proofs", Key=f"mdf/{req['id']}/{invoice['id']}")
        assert obj["Body"].read() == PDF
        async with sessionmaker() as session:
            from sqlalchemy import select

            from journeys.mdf.models import MdfProof

            rows = (await session.execute(select(MdfProof.storage, MdfProof.data))).all()
        assert rows and all(storage == "s3" and data is None for storage, data in rows)
    finally:
        server.stop()


async def test_other_currency_dates_and_refusals(api, ops, worker, sessionmaker, mailbox):
    """A request in another currency is reserved at the policy's rate (recorded); without a rate it is
    a 422; an unknown activity type 422 naming the catalog; dates move within the validity only after
    approval; a CAM key must name the partner; a partner cannot read another's request."""
    await fast(api, ops, exchange_rates={"EUR": "1.10"})
    cam, partner, partner_h, cam_h = await setup(api, ops, sessionmaker)
    r = await api.post("/mdf/requests", json=body(amount_minor=100_000, currency="EUR"), headers=partner_h)
    assert r.status_code == 201, r.text
    req = r.json()
    assert (req["amount_minor"], req["currency"], req["exchange_rate"]) == (110_000, "USD", "1.10")
    assert (req["requested_amount_minor"], req["requested_currency"]) == (100_000, "EUR")
    r = await api.post("/mdf/requests", json=body(currency="GBP"), headers=partner_h)
    assert r.status_code == 422 and "no exchange rate from GBP" in r.json()["detail"], r.text
    r = await api.post("/mdf/requests", json=body(activity_type="skywriting"), headers=partner_h)
    assert r.status_code == 422 and "webinar" in r.json()["detail"], r.text
    r = await api.post("/mdf/requests", json=body(), headers=cam_h)
    assert r.status_code == 422 and "partner_id" in r.json()["detail"], r.text
    today = datetime.now(UTC).date()
    # (policy days last a second here: the validity ends today, so the new start is today)
    dates = {"planned_start": str(today), "planned_end": str(today + timedelta(days=9))}
    r = await api.post(f"/mdf/requests/{req['id']}/dates", json=dates, headers=partner_h)
    assert r.status_code == 409, r.text  # not approved yet
    r = await api.post(f"/mdf/requests/{req['id']}/decision", json={"decision": "approve"}, headers=cam_h)
    assert r.status_code == 200 and r.json()["state"] == "approved", r.text
    r = await api.post(f"/mdf/requests/{req['id']}/dates", json=dates, headers=partner_h)
    assert r.status_code == 200, r.text
    got = (await api.get(f"/mdf/requests/{req['id']}", headers=partner_h)).json()
    assert got["planned_start"] == dates["planned_start"] and got["progress"]["planned_end"] == dates["planned_end"]
    too_late = {"planned_start": str(today + timedelta(days=400)), "planned_end": str(today + timedelta(days=401))}
    r = await api.post(f"/mdf/requests/{req['id']}/dates", json=too_late, headers=partner_h)
    assert r.status_code == 422 and "planned_start" in r.json()["detail"], r.text
    _, _, other_h, _ = await setup(api, ops, sessionmaker)
    assert (await api.get(f"/mdf/requests/{req['id']}", headers=other_h)).status_code == 403
    r = await api.post(f"/mdf/requests/{req['id']}/start", headers=partner_h)
    assert r.status_code == 200 and r.json()["state"] == "running", r.text


async def _equals(coro, expected) -> bool:
    return await coro == expected


async def test_every_update_is_answered_once_recorded(api, ops, worker, sessionmaker, mailbox):
    """Each MDF update, then at once the request as the API reads it from the database: the answer's
    effect is there (decide, resubmit, dates, start, claim, add proof, claim decision, payment)."""
    await fast(api, ops)
    cam, partner, partner_h, cam_h = await setup(api, ops, sessionmaker)
    req = (await api.post("/mdf/requests", json=body(amount_minor=100_000), headers=partner_h)).json()
    url = f"/mdf/requests/{req['id']}"
    today = datetime.now(UTC).date()

    async def step(path: str, headers, expected: str, **kw) -> dict:
        r = await api.post(f"{url}{path}", headers=headers, **kw)
        assert r.status_code == 200 and r.json()["state"] == expected, r.text
        got = (await api.get(url, headers=partner_h)).json()
        assert got["state"] == expected, (path, got["state"])
        return got

    await step("/decision", cam_h, "returned", json={"decision": "return", "reason": "add the agenda"})
    got = await step(
        "/resubmission",
        partner_h,
        "pending_approval",
        json={
            "title": "Roadshow with agenda",
            "planned_start": str(today),
            "planned_end": str(today + timedelta(days=2)),
            "amount_minor": 90_000,
        },
    )
    assert (got["title"], got["amount_minor"]) == ("Roadshow with agenda", 90_000), got
    await step("/decision", cam_h, "approved", json={"decision": "approve"})
    dates = {"planned_start": str(today), "planned_end": str(today + timedelta(days=1))}
    got = await step("/dates", partner_h, "approved", json=dates)
    assert got["planned_end"] == dates["planned_end"], got
    await step("/start", partner_h, "running")
    files = [
        ("invoice", ("i.pdf", PDF, "application/pdf")),
        ("photo", ("p.png", png(), "image/png")),
        ("attendee_list", ("a.csv", CSV, "text/csv")),
    ]
    await step(
        "/claim", partner_h, "claim_review", data={"amount_minor": "40000", "total_cost_minor": "100000"}, files=files
    )
    await step("/claim/decision", cam_h, "claim_returned", json={"decision": "return", "reason": "blurry photo"})
    await step("/proofs", partner_h, "claim_review", files=files[1:2])
    await step("/claim/decision", cam_h, "claim_approved", json={"decision": "approve"})
    got = await step(
        "/payments", ops, "claim_approved", json={"reference": "P1", "amount_minor": 10_000, "paid_on": str(today)}
    )
    assert got["paid_minor"] == 10_000, got
    got = await step("/payments", ops, "paid", json={"reference": "P2", "amount_minor": 30_000, "paid_on": str(today)})
    assert got["paid_minor"] == 40_000, got


async def test_a_deal_link_is_no_mdf_link_nor_the_reverse(api, settings):
    """One secret signs both kinds of one-click link: a deal's link opened on the MDF link page is
    forged (403), and the reverse, while each opens on its own page (the entity is unknown here: 404)."""
    from domain.links import MDF_SALT, SALT, LinkClaims, make_token

    entity = str(uuid.uuid4())  # a deal and an MDF request may not share an id; the link must not decide
    claims = LinkClaims(entity, "approve", "cam:1", uuid.uuid4().hex, datetime.now(UTC) + timedelta(days=1))
    deal_link = make_token(settings.link_secret, claims, salt=SALT)
    mdf_claims = {**claims.__dict__, "decision": "cam:approve", "level": 0, "round": 1, "amount_minor": 1000}
    mdf_link = make_token(settings.link_secret, claims.__class__(**mdf_claims), salt=MDF_SALT)
    r = await api.get(f"/deals/links/{deal_link}")
    assert r.status_code == 404 and "this deal does not exist" in r.text
    r = await api.get(f"/mdf/links/{mdf_link}")
    assert r.status_code == 404 and "this MDF request does not exist" in r.text
    for path in (f"/mdf/links/{deal_link}", f"/deals/links/{mdf_link}"):
        r = await api.get(path)
        assert r.status_code == 403 and "signature does not match" in r.text, path
        r = await api.post(path, data={"reason": ""})
        assert r.status_code == 403 and "signature does not match" in r.text, path
