"""The Today page's model: every provider's items for this user, most urgent first, with
counts per kind."""

from __future__ import annotations

import functools
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Principal
from api.web import providers  # noqa: F401  (registers every provider)
from api.web.items import PROVIDERS, TodayContext, TodayItem, urgency
from domain.enums import Role
from store import repo
from store.models import Cam, Partner

FAR = datetime.max.replace(tzinfo=UTC)
# The page shows the most urgent items of the list (of one kind with `?kind=`), and counts all of
# them: ops' list of a whole program at 10,000 partners was 11 MiB of HTML (bench/README.md).
SHOWN = 200


@dataclass(frozen=True)
class Today:
    items: list[TodayItem]
    counts: dict[str, int]  # per label, in order of first appearance
    now: datetime
    kind: str = ""  # only this provider's items shown ("": every kind)

    # Derived once per page (the template reads them per label and per item).
    @functools.cached_property
    def kinds(self) -> dict[str, str]:
        """label -> the provider's kind (the `?kind=` of the label's link)."""
        return {i.label: i.kind for i in self.items}

    @functools.cached_property
    def chosen(self) -> list[TodayItem]:
        return [i for i in self.items if i.kind == self.kind] if self.kind else self.items

    @property
    def shown(self) -> list[TodayItem]:
        return self.chosen[:SHOWN]

    @property
    def hidden(self) -> int:
        """Items of the choice not shown (the least urgent)."""
        return max(0, len(self.chosen) - SHOWN)


async def collect(session: AsyncSession, principal: Principal, now: datetime | None = None, *, kind: str = "") -> Today:
    policy = (await repo.current_policy(session)).policy
    ctx = TodayContext(session=session, principal=principal, policy=policy, now=now or datetime.now(UTC))
    items = await _items(ctx)
    return Today(items=items, counts=dict(Counter(i.label for i in items)), now=ctx.now, kind=kind)


async def _items(ctx: TodayContext) -> list[TodayItem]:
    items: list[TodayItem] = []
    for kind in sorted(PROVIDERS):
        items.extend(await PROVIDERS[kind](ctx))
    items.sort(key=lambda i: (i.deadline or FAR, i.partner_name, i.entity_id))
    return items


@dataclass(frozen=True)
class Workload:
    cam_id: uuid.UUID
    name: str
    email: str
    partners: int
    items: int
    late: int


async def workload(session: AsyncSession) -> list[Workload]:
    """Every CAM's open and late Today items, from one pass of the providers over every partner
    that has a CAM (what each CAM's own Today lists)."""
    policy = (await repo.current_policy(session)).policy
    everyone = Principal(key_id=uuid.UUID(int=0), role=Role.cam, cam_id=None, partner_id=None)
    ctx = TodayContext(
        session=session, principal=everyone, policy=policy, now=datetime.now(UTC), scope=Partner.cam_id.is_not(None)
    )
    cam_of = dict((await session.execute(select(Partner.id, Partner.cam_id).where(Partner.cam_id.is_not(None)))).all())
    items: Counter[uuid.UUID] = Counter()
    late: Counter[uuid.UUID] = Counter()
    for item in await _items(ctx):
        cam = cam_of.get(item.partner_id) if item.partner_id else None
        if cam is not None:
            items[cam] += 1
            late[cam] += urgency(item.deadline, ctx.now) == "late"
    partners = Counter(cam_of.values())
    cams = (await session.execute(select(Cam.id, Cam.name, Cam.email).order_by(Cam.name))).all()
    return [Workload(c, name, email, partners[c], items[c], late[c]) for c, name, email in cams]
