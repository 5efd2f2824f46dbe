"""The what-if simulator's page for ops (`/web/ops/simulations`, docs/simulator.md): start a
simulation of a draft policy (JSON) against the current one, follow its progress, cancel it, and
read its report side by side with small bars (domain/charts.py)."""

from __future__ import annotations

import json
import uuid
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from markupsafe import Markup
from pydantic import ValidationError

from api.deps import SessionDep
from api.routers import simulations
from api.schemas import SCREEN_TEXT
from api.web.pages import WebRoute, redirect, render
from api.web.security import PREFIX, require_ops, signed_in
from domain.charts import pair_bars_svg
from store import repo

router = APIRouter(prefix=PREFIX, route_class=WebRoute, include_in_schema=False)
PAGE = f"{PREFIX}/ops/simulations"


@router.get("/ops/simulations")
async def simulations_page(request: Request, session: SessionDep):
    user = await signed_in(request, session)
    require_ops(user)
    mine = [s.out() for s in simulations.RUNS.values() if s.owner == user.principal.actor]
    rows = {s.id: _rows(s.report) for s in mine if s.report}
    current = (await repo.current_policy(session)).policy.model_dump_json(indent=1)
    return render(request, "simulations", user, simulations=list(reversed(mine)), rows=rows, current=current)


def _rows(report: dict) -> list[tuple[str, float, float, bool, Markup]]:
    """(label, current, draft, differs, bars) for each figure of a report."""
    labels = report.get("labels", {})
    out = []
    for key, current in report["current"].items():
        draft, label = report["draft"][key], labels.get(key, key)
        out.append((label, current, draft, current != draft, pair_bars_svg(label, current, draft)))
    return out


@router.post("/ops/simulations")
async def start_page(
    request: Request,
    session: SessionDep,
    draft: Annotated[str, Form(max_length=200_000), SCREEN_TEXT],
    partners: Annotated[int, Form(ge=1, le=10000)] = 20,
    months: Annotated[int, Form(ge=1, le=120)] = 12,
    seed: Annotated[int, Form(ge=0, le=2**31 - 1)] = 1,
):
    user = await signed_in(request, session, form=True)
    require_ops(user)
    try:
        body = simulations.SimulationBody.model_validate(
            {"draft": json.loads(draft or "{}"), "partners": partners, "months": months, "seed": seed}
        )
        started = await simulations.start_simulation(body=body, principal=user.principal, session=session)
    except json.JSONDecodeError as err:
        return redirect(PAGE, f"the draft is not JSON: {err}", "error")
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return redirect(PAGE, f"the draft policy is invalid: {where}: {first['msg']}", "error")
    except HTTPException as err:
        return redirect(PAGE, str(err.detail), "error")
    return redirect(PAGE, f"Simulation started: {started.partners} partners, {started.months} months, seed {seed}.")


@router.post("/ops/simulations/{sim_id}/cancel")
async def cancel_page(request: Request, session: SessionDep, sim_id: uuid.UUID):
    user = await signed_in(request, session, form=True)
    require_ops(user)
    try:
        await simulations.cancel_simulation(sim_id=sim_id, principal=user.principal)
    except HTTPException as err:
        return redirect(PAGE, str(err.detail), "error")
    return redirect(PAGE, "Simulation cancelled.")
