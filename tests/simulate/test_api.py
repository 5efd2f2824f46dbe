"""`POST /policy/simulations` (api/routers/simulations.py): validated as PUT /policy, capped, one at a
time per ops user, progress and report by GET, cancelled by DELETE."""

from __future__ import annotations

from api.routers import simulations
from tests.helpers.waiting import eventually


async def test_an_invalid_draft_is_a_422_naming_the_field(api, ops):
    r = await api.post("/policy/simulations", json={"draft": {"deal": {"approval_sla_days": -1}}}, headers=ops)
    assert r.status_code == 422
    assert "approval_sla_days" in r.text
    assert simulations.RUNS == {} or all(s.owner != "x" for s in simulations.RUNS.values())


async def test_sample_and_horizon_beyond_the_policys_caps_are_refused(api, ops):
    put = await api.put(
        "/policy", json={"limits": {"simulation_max_partners": 5, "simulation_max_months": 2}}, headers=ops
    )
    assert put.status_code == 201
    r = await api.post("/policy/simulations", json={"draft": {}, "partners": 6, "months": 1}, headers=ops)
    assert r.status_code == 422 and "limits.simulation_max_partners" in r.text
    r = await api.post("/policy/simulations", json={"draft": {}, "partners": 2, "months": 3}, headers=ops)
    assert r.status_code == 422 and "limits.simulation_max_months" in r.text


async def test_one_simulation_at_a_time_with_progress_a_report_and_cancellation(api, ops, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # where the child makes its throw-away servers' directory
    body = {"draft": {"deal": {"approval_sla_days": 1, "escalation_days": 2}}, "partners": 2, "months": 1, "seed": 3}
    r = await api.post("/policy/simulations", json=body, headers=ops)
    assert r.status_code == 202, r.text
    sim = r.json()
    assert sim["state"] == "running"
    again = await api.post("/policy/simulations", json=body, headers=ops)
    assert again.status_code == 409

    async def finished():
        out = (await api.get(f"/policy/simulations/{sim['id']}", headers=ops)).json()
        return out if out["state"] != "running" else None

    done = await eventually(finished, timeout=300, interval=1, what="the simulation to finish")
    assert done["state"] == "done", done["progress"]
    assert done["report"]["partners"] == 2 and done["report"]["seed"] == 3
    assert any("month" in line for line in done["progress"])

    longer = {**body, "partners": 10, "months": 12}  # still running when it is cancelled, however fast the machine
    second = (await api.post("/policy/simulations", json=longer, headers=ops)).json()  # the first one is over

    async def started():
        out = (await api.get(f"/policy/simulations/{second['id']}", headers=ops)).json()
        return any("month" in line for line in out["progress"]) and list(tmp_path.glob("camlights-simulate-*"))

    await eventually(started, timeout=120, interval=0.5, what="the second simulation to run")
    cancelled = await api.delete(f"/policy/simulations/{second['id']}", headers=ops)
    assert cancelled.json()["state"] == "cancelled"
    run = simulations.RUNS[second["id"]]
    await eventually(lambda: run.proc is not None and run.proc.returncode is not None, timeout=60, what="the child")
    await eventually(lambda: not run.workdir.exists(), timeout=10, what="its files removed")
    assert list(tmp_path.glob("camlights-simulate-*")) == []  # the child removed its servers' files
    other = await api.get(f"/policy/simulations/{second['id']}", headers={"Authorization": "Bearer nope"})
    assert other.status_code == 401
