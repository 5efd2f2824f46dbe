"""The Today page's model: every provider's items for this user, most urgent first, with
counts per kind."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Principal
from api.web import providers  # noqa: F401  (registers every provider)
from api.web.items import PROVIDERS, TodayContext, TodayItem
from store import repo

FAR = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Today:
    items: list[TodayItem]
    counts: dict[str, int]  # per label, in order of first appearance
    now: datetime


async def collect(session: AsyncSession, principal: Principal, now: datetime | None = None) -> Today:
    policy = (await repo.current_policy(session)).policy
    ctx = TodayContext(session=session, principal=principal, policy=policy, now=now or datetime.now(UTC))
    items: list[TodayItem] = []
    for kind in sorted(PROVIDERS):
        items.extend(await PROVIDERS[kind](ctx))
    items.sort(key=lambda i: (i.deadline or FAR, i.partner_name, i.entity_id))
    return Today(items=items, counts=dict(Counter(i.label for i in items)), now=ctx.now)


def relative(deadline: datetime | None, now: datetime, label: str) -> str:
    """'SLA ends in 5 h', 'SLA ends 2 d ago' ('was due 3 h ago')."""
    if deadline is None:
        return ""
    seconds = (deadline - now).total_seconds()
    span = _span(abs(seconds))
    return f"{label} in {span}" if seconds >= 0 else f"{label} {span} ago"


def _span(seconds: float) -> str:
    if seconds < 60:
        return f"{int(seconds)} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 2 * 86400:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 86400)} d"


def urgency(deadline: datetime | None, now: datetime) -> str:
    """'late', 'soon' (within a day) or 'later': the row's colour."""
    if deadline is None:
        return "later"
    left = (deadline - now).total_seconds()
    return "late" if left < 0 else "soon" if left < 86400 else "later"
