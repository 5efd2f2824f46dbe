"""The whole-quarter MDF utilization report (issue 23): JSON paged with `?after=<fund_id>` in the
report's order (newest period first, then partner name, then fund), the CSV streamed whole a page at
a time, an `after` the caller may not see answered 404 before anything is sent."""

from __future__ import annotations

import csv
import io
import uuid

from domain.enums import Role, Tier
from tests.helpers.api import new_key
from tests.helpers.factories import make_cam, make_partner
from tests.mdf.factories import make_fund


async def test_the_utilization_report_pages_by_fund_and_streams_its_csv(api, sessionmaker):
    cam = await make_cam(sessionmaker)
    names = ["Delta", "=Alpha", "Charlie", "Bravo", "Echo"]  # one a spreadsheet would run
    partners = [
        await make_partner(sessionmaker, tier=Tier.gold, cam=cam if i < 3 else None, name=n)
        for i, n in enumerate(names)
    ]
    for partner in partners:
        await make_fund(sessionmaker, partner)
    ops = await new_key(sessionmaker, Role.ops)
    mine = {str(p.id) for p in partners}

    whole = (await api.get("/mdf/reports/utilization", params={"limit": 10_000}, headers=ops)).json()
    whole = [row for row in whole if row["partner_id"] in mine]
    assert [row["partner_name"] for row in whole] == sorted(names)  # one period: by name

    paged, after = [], None
    for _ in range(20):
        params = {"limit": 2, **({"after": after} if after else {})}
        r = await api.get("/mdf/reports/utilization", params=params, headers=ops)
        assert r.status_code == 200, r.text
        assert len(r.json()) <= 2
        if not r.json():
            break
        paged += r.json()
        after = r.json()[-1]["fund_id"]
    assert [row for row in paged if row["partner_id"] in mine] == whole
    assert len({row["fund_id"] for row in paged}) == len(paged)  # no row twice across pages

    r = await api.get("/mdf/reports/utilization", params={"format": "csv"}, headers=ops)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = [row for row in csv.DictReader(io.StringIO(r.text)) if row["partner_id"] in mine]
    assert [row["fund_id"] for row in rows] == [row["fund_id"] for row in whole]
    assert "'=Alpha" in [row["partner_name"] for row in rows]  # defused

    # continued after a row, in CSV too
    second = whole[1]["fund_id"]
    r = await api.get("/mdf/reports/utilization", params={"format": "csv", "after": second}, headers=ops)
    assert [row["fund_id"] for row in csv.DictReader(io.StringIO(r.text)) if row["partner_id"] in mine] == [
        row["fund_id"] for row in whole[2:]
    ]

    # a CAM pages its portfolio only; a fund outside it, or none at all, is a 404 naming `after`
    cam_h = await new_key(sessionmaker, Role.cam, cam_id=cam.id)
    theirs = (await api.get("/mdf/reports/utilization", headers=cam_h)).json()
    assert sorted(row["partner_name"] for row in theirs) == sorted(names[:3])
    outside = next(row["fund_id"] for row in whole if row["partner_name"] in names[3:])
    for headers, fund in ((cam_h, outside), (ops, str(uuid.uuid4()))):
        for fmt in ("json", "csv"):
            r = await api.get("/mdf/reports/utilization", params={"after": fund, "format": fmt}, headers=headers)
            assert r.status_code == 404 and "after" in r.json()["detail"], r.text
