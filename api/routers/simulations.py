"""What-if simulations for ops (issue 26, docs/simulator.md): `POST /policy/simulations` runs
`camlights simulate` in a child process of the API (the API never imports the worker), one at a
time per ops user, its sample size and horizon capped by the current policy's `limits`. Progress
and the report are read with GET; DELETE cancels it (the child stops its throw-away servers and
removes their files). Simulations live in this API process only: a restart forgets them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from api.deps import OpsDep, SessionDep
from api.routemeta import route_meta
from domain.policy import ProgramPolicy
from store import repo

router = APIRouter(prefix="/policy/simulations", tags=["policy"])
ROOT = Path(__file__).resolve().parents[2]
KEEP_LINES = 50


class SimulationBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    draft: ProgramPolicy = Field(description="the draft policy, as PUT /policy takes it")
    partners: int = Field(20, ge=1, le=10000, description="sample size (capped by limits.simulation_max_partners)")
    months: int = Field(12, ge=1, le=120, description="horizon (capped by limits.simulation_max_months)")
    seed: int = Field(1, ge=0, le=2**31 - 1)


class SimulationOut(BaseModel):
    id: str
    state: Literal["running", "done", "failed", "cancelled"]
    partners: int
    months: int
    seed: int
    progress: list[str] = Field(description="the latest progress lines")
    report: dict[str, Any] | None = Field(None, description="the report (docs/simulator.md), once done")


@dataclass
class Simulation:
    id: str
    owner: str
    partners: int
    months: int
    seed: int
    workdir: Path
    proc: asyncio.subprocess.Process | None = None
    state: str = "running"
    progress: list[str] = field(default_factory=list)
    report: dict[str, Any] | None = None

    def out(self) -> SimulationOut:
        return SimulationOut(
            id=self.id,
            state=self.state,
            partners=self.partners,
            months=self.months,
            seed=self.seed,
            progress=self.progress[-KEEP_LINES:],
            report=self.report,
        )


RUNS: dict[str, Simulation] = {}
TASKS: set[asyncio.Task] = set()


async def _run(sim: Simulation, current: ProgramPolicy, draft: ProgramPolicy) -> None:
    (sim.workdir / "current.json").write_text(current.model_dump_json())
    (sim.workdir / "draft.json").write_text(draft.model_dump_json())
    args = ["--draft", "draft.json", "--current", "current.json", "--json", "report.json"]
    args += ["--partners", str(sim.partners), "--months", str(sim.months), "--seed", str(sim.seed)]
    try:
        sim.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "worker.cli",
            "simulate",
            *args,
            cwd=sim.workdir,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env={"PYTHONPATH": str(ROOT), **_env()},
        )
        assert sim.proc.stderr is not None
        async for raw in sim.proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            if line.startswith(("[simulate", "error", "cancelled")):
                sim.progress = [*sim.progress[-KEEP_LINES:], line]
        code = await sim.proc.wait()
        report = sim.workdir / "report.json"
        if code == 0 and report.exists():
            sim.report, sim.state = json.loads(report.read_text()), "done"
        elif sim.state != "cancelled":
            sim.state = "failed"
    finally:
        with contextlib.suppress(OSError):
            for f in sim.workdir.iterdir():
                f.unlink()
            sim.workdir.rmdir()


def _env() -> dict[str, str]:
    """The child's environment: this process's, without the live stack's addresses (the child
    starts its own servers; it reads the live program's shape only from DATABASE_URL)."""
    import os

    drop = {"SMTP_HOST", "SMTP_PORT", "SMTP_USERNAME", "SMTP_PASSWORD", "TEMPORAL_ADDRESS", "TEMPORAL_API_KEY"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def _owned(sim_id: uuid.UUID, principal: OpsDep) -> Simulation:
    sim = RUNS.get(str(sim_id))
    if sim is None or sim.owner != principal.actor:
        raise HTTPException(404, detail=f"no simulation {sim_id} of yours")
    return sim


@router.post(
    "",
    status_code=202,
    response_model=SimulationOut,
    openapi_extra=route_meta(
        {409: "a simulation of yours is running: wait for it or cancel it"},
        business_rule="the draft policy's cross-field rules, as PUT /policy's; partners and months within the "
        "current policy's limits.simulation_max_partners / simulation_max_months",
        cross_field=True,
    ),
)
async def start_simulation(body: SimulationBody, principal: OpsDep, session: SessionDep):
    """Simulate the draft against the current policy (docs/simulator.md); answered at once."""
    current = (await repo.current_policy(session)).policy
    limits = current.model_dump()["limits"]
    for name, value, cap in (
        ("partners", body.partners, limits.get("simulation_max_partners", 200)),
        ("months", body.months, limits.get("simulation_max_months", 24)),
    ):
        if value > cap:
            raise HTTPException(422, detail=f"{name}: at most {cap} (limits.simulation_max_{name})")
    if any(s.owner == principal.actor and s.state == "running" for s in RUNS.values()):
        raise HTTPException(409, detail="a simulation of yours is running: wait for it or cancel it (DELETE)")
    sim = Simulation(
        id=str(uuid.uuid4()),
        owner=principal.actor,
        partners=body.partners,
        months=body.months,
        seed=body.seed,
        workdir=Path(tempfile.mkdtemp(prefix="camlights-simulation-")),
    )
    RUNS[sim.id] = sim
    task = asyncio.create_task(_run(sim, current, body.draft))
    TASKS.add(task)
    task.add_done_callback(TASKS.discard)
    return sim.out()


@router.get("/{sim_id}", response_model=SimulationOut, responses={404: {"description": "no such simulation"}})
async def get_simulation(sim_id: uuid.UUID, principal: OpsDep):
    """Its progress, and its report once done."""
    return _owned(sim_id, principal).out()


@router.delete("/{sim_id}", response_model=SimulationOut, responses={404: {"description": "no such simulation"}})
async def cancel_simulation(sim_id: uuid.UUID, principal: OpsDep):
    """Cancel it: its throw-away servers are stopped and their files removed."""
    sim = _owned(sim_id, principal)
    if sim.state == "running":
        sim.state = "cancelled"
        if sim.proc is not None and sim.proc.returncode is None:
            sim.proc.send_signal(signal.SIGTERM)
    return sim.out()


async def stop_all() -> None:
    """At the API's shutdown: cancel every running simulation and wait for its clean-up."""
    for sim in RUNS.values():
        if sim.state == "running" and sim.proc is not None and sim.proc.returncode is None:
            sim.state = "cancelled"
            sim.proc.send_signal(signal.SIGTERM)
    if TASKS:
        await asyncio.wait(list(TASKS), timeout=60)
