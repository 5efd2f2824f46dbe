"""What the Today page lists: one provider per journey kind, each returning the items that need
the signed-in CAM (or ops). A journey adds its items with one module in `api/web/providers/`
that decorates its function with `@provider("<kind>")`; nothing else lists them."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Principal
from domain.enums import Role, Tier
from domain.policy import ProgramPolicy
from store.models import Partner


@dataclass(frozen=True)
class TodayContext:
    session: AsyncSession
    principal: Principal
    policy: ProgramPolicy
    now: datetime
    scope: ColumnElement[bool] | None = None  # instead of the principal's partners (the ops workload view)

    def days(self, n: float) -> timedelta:
        """`n` policy days (the program's `day_seconds`)."""
        return self.policy.days(n)

    def responsible(self, stmt: Select) -> Select:
        """Limit a query joining `partners` to the partners this user answers for: a CAM its
        portfolio; ops the partners without a CAM (tiers without one, or none assigned)."""
        return stmt.where(self.answers_for())

    def answers_for(self) -> ColumnElement[bool]:
        if self.scope is not None:
            return self.scope
        if self.principal.role == Role.cam:
            return Partner.cam_id == self.principal.cam_id
        no_cam_tiers = [t.value for t in Tier if not self.policy.tiers[t].has_cam]
        return or_(Partner.cam_id.is_(None), Partner.tier.in_(no_cam_tiers))


@dataclass(frozen=True)
class TodayItem:
    kind: str  # the provider's kind, e.g. "deal"
    label: str  # what kind of item, in words: "Deal decision"
    partner_id: uuid.UUID | None  # None: about no one partner (a lead nobody took, on ops' list)
    partner_name: str
    title: str
    detail: str
    deadline: datetime | None  # when it becomes late (None: no deadline)
    deadline_label: str  # "SLA ends", "lapses", "due"
    action: str | None = None  # the inline form to show: "deal_decision", "extension_decision", ...
    entity_id: str = ""
    extra: dict[str, str] = field(default_factory=dict)


Provider = Callable[[TodayContext], Awaitable[list[TodayItem]]]
PROVIDERS: dict[str, Provider] = {}


def provider(kind: str) -> Callable[[Provider], Provider]:
    def register(fn: Provider) -> Provider:
        PROVIDERS[kind] = fn
        return fn

    return register


# ------------------------------------------------------------------ portfolio columns

Value = str | int | float | None


@dataclass(frozen=True)
class Column:
    """A column of the Portfolio page (and its CSV) that a journey contributes, e.g. onboarding
    progress, open deals, funds available, health band. A provider returns a value per partner,
    or None when it has nothing at all to show (the column is then left out, e.g. no scorecard
    exists yet)."""

    key: str
    label: str
    order: int  # position among the contributed columns


ColumnProvider = Callable[[AsyncSession, list[uuid.UUID], TodayContext], Awaitable[dict[uuid.UUID, Value] | None]]
COLUMNS: dict[str, tuple[Column, ColumnProvider]] = {}


def column(key: str, label: str, order: int) -> Callable[[ColumnProvider], ColumnProvider]:
    def register(fn: ColumnProvider) -> ColumnProvider:
        COLUMNS[key] = (Column(key, label, order), fn)
        return fn

    return register


# ------------------------------------------------------------------ partner page sections


@dataclass(frozen=True)
class Section:
    """A block of the Partner page that a journey contributes (the scorecard with its trend chart,
    MDF funds, QBR notes and action items): `template` rendered with `context`, the journey's own
    `<journey>/<name>.html.j2` (from `journeys/<journey>/templates/web/`) or a shared one
    (`sections/trend.html.j2`); the page gives it `partner`, `csrf` and `back` too."""

    title: str
    template: str
    context: dict[str, Any]
    order: int


SectionProvider = Callable[[AsyncSession, Partner, TodayContext], Awaitable[Section | None]]
SECTIONS: dict[str, SectionProvider] = {}


async def rows_of(session: AsyncSession, model: Any, partner: Partner, *order_by: Any) -> Sequence[Any]:
    """A section's rows: the partner's rows of a journey's table (by its `partner_id`), in this order."""
    return (await session.scalars(select(model).where(model.partner_id == partner.id).order_by(*order_by))).all()


def section(key: str) -> Callable[[SectionProvider], SectionProvider]:
    """Register a Partner page section; the provider returns None when it has nothing to show."""

    def register(fn: SectionProvider) -> SectionProvider:
        SECTIONS[key] = fn
        return fn

    return register


# ------------------------------------------------------------------ deadlines in words


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
