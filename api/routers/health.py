from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str = Field(description="`ok`, or `degraded` when a dependency does not answer")
    database: str = Field(description="`ok` or `error: <exception type>`")
    temporal: str = Field(description="`ok` or `error: <exception type>`")
    detail: str | None = Field(None, description="503 only: what does not answer (as in every error answer)")


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "PostgreSQL or Temporal does not answer"}},
)
async def health(request: Request):
    """No auth. 200 when PostgreSQL and Temporal answer, 503 otherwise."""
    checks: dict[str, str] = {}
    try:
        async with request.app.state.sessionmaker() as session:
            await session.execute(text("select 1"))
        checks["database"] = "ok"
    except Exception as err:  # report, never raise
        checks["database"] = f"error: {type(err).__name__}"
    try:
        await request.app.state.temporal.service_client.check_health()
        checks["temporal"] = "ok"
    except Exception as err:
        checks["temporal"] = f"error: {type(err).__name__}"
    failing = [f"{name}: {state}" for name, state in checks.items() if state != "ok"]
    if not failing:
        return JSONResponse(status_code=200, content={"status": "ok", **checks})
    return JSONResponse(status_code=503, content={"status": "degraded", **checks, "detail": "; ".join(failing)})
