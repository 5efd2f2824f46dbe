"""CAM effectiveness (issue 22): for each CAM, figures of its portfolio over a window, gathered
from every journey through its manifest (`JourneySpec.cam_figures`, journeys/<name>/
effectiveness.py: decision times against the SLA, certification rate, MDF utilization, QBR
completion, lead acceptance, the portfolio's health trend...) plus the escalations the audit trail
holds for the portfolio. The platform names no journey: a new journey's figures appear by its
manifest alone. Read by `GET /cams/{id}/effectiveness`, `GET /effectiveness/cams` and the
workspace page (with its CSV)."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import registry
from core.journey import CamFiguresQuery
from domain.sheets import csv_cell
from store import repo
from store.models import AuditEvent, Cam, Partner

Figure = float | int | None
ESCALATIONS = "escalations"
LABELS = {"partners": "Partners", ESCALATIONS: "Escalations", **registry.CAM_FIGURE_LABELS}


@dataclass(frozen=True)
class CamFigures:
    cam_id: uuid.UUID
    name: str
    start: datetime
    end: datetime
    figures: dict[str, Figure]


async def cam_figures(session: AsyncSession, cam: Cam, days: float, now: datetime | None = None) -> CamFigures:
    """The CAM's figures over the last `days` policy days."""
    policy = (await repo.current_policy(session)).policy
    end = now or datetime.now(UTC)
    start = end - policy.days(days)
    partners = select(Partner.id).where(Partner.cam_id == cam.id)
    q = CamFiguresQuery(partners=partners, cam_id=cam.id, start=start, end=end, policy=policy)
    figures: dict[str, Figure] = {
        "partners": await session.scalar(select(func.count()).select_from(partners.subquery())),
        ESCALATIONS: await session.scalar(
            select(func.count()).where(
                AuditEvent.partner_id.in_(partners),
                AuditEvent.action.like("%escalation%"),
                AuditEvent.at >= start,
                AuditEvent.at < end,
            )
        ),
    }
    for read in registry.CAM_FIGURES:
        figures.update(await read(session, q))
    return CamFigures(cam_id=cam.id, name=cam.name, start=start, end=end, figures=figures)


async def every_cam(session: AsyncSession, days: float, now: datetime | None = None) -> list[CamFigures]:
    """Every active CAM's figures, by name."""
    cams = (await session.scalars(select(Cam).where(Cam.deactivated_at.is_(None)).order_by(Cam.name, Cam.id))).all()
    return [await cam_figures(session, cam, days, now) for cam in cams]


def to_csv(rows: list[CamFigures]) -> str:
    """One line per CAM, one column per figure (cells a spreadsheet will not run as formulas)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["cam_id", "CAM", "from", "to", *LABELS.values()])
    for r in rows:
        cells = [r.name, r.start.isoformat(), r.end.isoformat(), *(r.figures.get(k) for k in LABELS)]
        writer.writerow([str(r.cam_id), *(csv_cell(c) for c in cells)])
    return out.getvalue()
