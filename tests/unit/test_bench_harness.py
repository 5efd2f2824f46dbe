"""The benchmarks' own arithmetic and generator (bench/harness.py, bench/seed.py): what the
printed figures rest on."""

from __future__ import annotations

import pytest

from bench import seed
from bench.harness import Shape, percentile, shape_of

pytestmark = pytest.mark.unit


def test_percentile_interpolates_between_ranks() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 95) == pytest.approx(95.05)
    assert percentile(values, 100) == 100.0
    assert percentile([3.0], 95) == 3.0
    assert percentile([10.0, 0.0], 50) == 5.0  # order of the input does not matter
    with pytest.raises(ValueError):
        percentile([], 50)


def test_generated_program_has_the_documented_shape() -> None:
    prog = seed.generate(4000, seed=3)
    assert len(prog.partners) == 4000 and len(prog.deals) == 40_000 and len(prog.certifications) == 8000
    tiers = prog.tiers()
    for tier, share in seed.TIER_MIX:
        assert abs(tiers[tier] / 4000 - share) < 0.02, (tier, tiers)
    portfolio: dict = {}
    for p in prog.partners:
        assert (p["cam_id"] is None) == (p["tier"] == "registered")
        if p["cam_id"]:
            portfolio[p["cam_id"]] = portfolio.get(p["cam_id"], 0) + 1
    assert len(portfolio) == len(prog.cams) and max(portfolio.values()) <= 40
    assert sum(portfolio.values()) / len(portfolio) == pytest.approx(seed.CAM_PORTFOLIO, rel=0.1)
    ids = {p["id"] for p in prog.partners}
    assert all(d["partner_id"] in ids for d in prog.deals)
    approved = [d for d in prog.deals if d["state"] == "approved"]
    assert all(d["protected_until"] is not None for d in approved)
    assert abs(len(approved) / len(prog.deals) - 0.30) < 0.02
    assert all(c["restricted"] == (c["state"] == "lapsed") for c in prog.certifications)
    assert len({p["domain"] for p in prog.partners}) == 4000  # partners.domain is unique
    assert seed.generate(50, seed=3).partners[0]["id"] == seed.generate(50, seed=3).partners[0]["id"]


def test_the_same_shape_baseline_runs_the_journeys_local_steps_too() -> None:
    """A journey whose steps are local activities (the lean kit) gets a same-shape baseline of as
    many no-op local activities, not of none."""
    stats = {"activities": [1, 1], "signals": [1, 1], "updates": [0, 0], "local": [8, 9]}
    assert shape_of(stats) == Shape(activities=1, signals=1, updates=0, local_activities=8)


def test_a_bracketed_baseline_is_the_rate_over_both_its_runs() -> None:
    """The baseline run before the journeys and the one after count as one run of twice as many:
    a machine that slowed down between them weighs on the baseline's rate as on the journey's."""
    from bench.harness import _both

    before = {"wall": 2.0, "cpu": 3.0, "events": [36, 36], "activities": [5, 5]}
    after = {"wall": 6.0, "cpu": 5.0, "events": [39], "activities": [5]}
    both = _both(before, after)
    assert both["wall"] == 4.0 and both["cpu"] == 4.0  # 200 journeys in 8 s: 100 journeys in 4 s
    assert both["events"] == [36, 36, 39] and both["activities"] == [5, 5, 5]


async def test_a_baseline_run_first_must_have_the_journeys_shape() -> None:
    """A journey's benchmark that ran its first baseline with other signals or updates than the
    journey then received is refused before any second baseline runs (the client is never used)."""
    from bench.harness import Bracket, compare

    real = {"wall": 1.0, "activities": [0], "signals": [1], "updates": [0], "local": [3], "events": [14]}
    first = Bracket(Shape(5, signals=0), {"wall": 1.0, "cpu": 1.0})
    with pytest.raises(RuntimeError, match="the baseline run first was"):
        await compare(None, "deal", 1, real, 5, first=first)


async def test_the_lean_client_sends_json_and_reads_each_answer_on_one_connection() -> None:
    """bench/api.py times the creates with `LeanClient`: each request's body arrives whole, each
    answer is read to its Content-Length (the next one is not mistaken for its tail), and the
    connection is kept."""
    import asyncio
    import json

    from bench.api import LeanClient

    seen: list[tuple[str, dict, dict]] = []
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:  # the client closed its connection
                break
            lines = head.decode().split("\r\n")
            fields = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            body = json.loads(await reader.readexactly(int(fields["content-length"])) or b"{}")
            seen.append((lines[0], fields, body))
            answer = json.dumps({"n": len(seen), "echo": body}).encode()
            status = "201 Created" if body else "404 Not Found"
            writer.write(f"HTTP/1.1 {status}\r\ncontent-length: {len(answer)}\r\n\r\n".encode() + answer)
            await writer.drain()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    client = LeanClient(server.sockets[0].getsockname()[1])
    try:
        status, answer = await client.request(
            "POST", "/partners", {"name": "Ünïcode Ltd"}, {"Authorization": "Bearer k"}
        )
        assert status == 201 and json.loads(answer) == {"n": 1, "echo": {"name": "Ünïcode Ltd"}}
        status, answer = await client.request("GET", "/nowhere")
        assert status == 404 and json.loads(answer)["n"] == 2
    finally:
        await client.close()
        server.close()
        await server.wait_closed()
    assert connections == 1
    assert seen[0][0] == "POST /partners HTTP/1.1" and seen[0][1]["authorization"] == "Bearer k"
    assert seen[0][1]["content-type"] == "application/json" and seen[1][0] == "GET /nowhere HTTP/1.1"
