"""Offboarding, effective at once: ending every workspace session of a CAM or an operator, and
refusing what a deactivated CAM would still hold (its one-click decision links)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from domain import actors
from store.models import Cam
from store.models.web import WebSession


async def end_sessions(
    session: AsyncSession, *, cam_id: uuid.UUID | None = None, operator_id: uuid.UUID | None = None
) -> int:
    """End every live session of a CAM or of an operator; returns how many ended (the caller commits)."""
    column, value = (WebSession.cam_id, cam_id) if cam_id is not None else (WebSession.operator_id, operator_id)
    result = await session.execute(
        update(WebSession).where(column == value, WebSession.ended_at.is_(None)).values(ended_at=datetime.now(UTC))
    )
    return result.rowcount  # type: ignore[attr-defined]


async def deactivated_cam(session: AsyncSession, actor: str) -> bool:
    """Whether `actor` is a CAM that was deactivated (its links decide nothing any more)."""
    if actors.kind_of(actor) != actors.ActorKind.cam:
        return False
    try:
        cam = await session.get(Cam, uuid.UUID(actors.parse(actor)[1]))
    except ValueError:
        return False
    return cam is not None and cam.deactivated_at is not None
