"""What the simulator adds to the worker for this journey: lead offers that expire at one instant are routed
again one after the other, in lead id order.

An offer's deadline counts business hours, so every offer made outside them (overnight, at the
weekend) expires at the same instant: the start of business plus the offer window. On the
time-skipping server their timers fire together and the leads' routings run at once. Round robin
reads the other leads' offers (it takes the partner offered longest ago), so the partner each lead
got depended on the order in which concurrent routings happened to commit: the same sample, seed
and policy gave reports one offer and one email apart (issue 26, CI). The live worker keeps
routing concurrently (nothing there promises the same answer twice); the simulator must.

A routing after an expiry waits (real time: the test server does not skip while an activity
runs) until every offer expiring at that instant is recorded as expired, and every lead with a
lower id whose offer expired then has been routed again (or has left `offered`: placed elsewhere,
unplaced at its maximum of offers). Bounded by `WAIT_SECONDS`: past it the routing goes on.

It also routes at the instant of the expiry (the offer's `at`, which becomes the new offer's
`offered_at`), not at the workflow's clock when it asked: while the test server holds its
time-skipping lock its clock runs on in real time, so leads routed at one instant got times a few
milliseconds apart, in an order that varied between runs, and round robin compares those times
when it next picks (two partners offered at one instant: the one offered "earlier" waits longer)."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from journeys.leads.domain import LeadActivity
from store.db import poll

log = logging.getLogger(__name__)
WAIT_SECONDS = 30.0
ROUTING_STEPS = frozenset({LeadActivity.OFFER, LeadActivity.OFFER_WITH_STATE})  # by the kit's generation
POLL = 0.01  # seconds between two looks

_EXPIRED_AT = text("select expires_at from lead_offers where lead_id = :lead and offer_no = :no and state = 'expired'")
# Offers of the instant still live (their expiry not recorded yet), and lower leads not routed again
# (a lead with another offer still live, due later, is not routed at this instant).
_AHEAD = text(
    "select count(*) filter (where o.state = 'live')"
    " + count(*) filter (where o.state = 'expired' and o.lead_id < :lead and l.state = 'offered'"
    "   and not exists (select 1 from lead_offers n where n.lead_id = o.lead_id"
    "     and (n.offer_no > o.offer_no or n.state = 'live')))"
    " from lead_offers o join leads l on l.id = o.lead_id where o.expires_at = :at"
)


class RoutingOrderInterceptor(Interceptor):
    """Routes again the leads whose offers expired at one instant in lead id order (simulation only)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker
        self.waited = 0  # routings that waited for another (the tests read it)

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _InOrder(next, self)

    async def wait_turn(self, lead_id: str, offer_no: int) -> datetime | None:
        """Once the routing's turn has come: the instant its lead's offer expired (None: a routing
        that did not follow an expiry, which goes at once)."""
        if offer_no <= 1:
            return None
        lead = uuid.UUID(lead_id)
        async with self.sessionmaker() as session:
            at = (await session.execute(_EXPIRED_AT, {"lead": lead, "no": offer_no - 1})).scalar()
        if at is None:  # a first routing, or after a decline or a recall: the driver orders those
            return None
        params = {"lead": lead, "at": at}
        looks = await poll(self.sessionmaker, _AHEAD, params, lambda ahead: not ahead, timeout=WAIT_SECONDS, every=POLL)
        if looks is None:
            log.warning(
                "lead %s: routed after %.0f s without its turn (offers expiring at %s)", lead_id, WAIT_SECONDS, at
            )
        self.waited += looks is None or looks > 1
        return at


class _InOrder(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, outer: RoutingOrderInterceptor) -> None:
        super().__init__(next)
        self.outer = outer

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        if activity.info().activity_type in ROUTING_STEPS and input.args:
            offer = input.args[0]
            expired_at = await self.outer.wait_turn(offer.lead_id, offer.offer_no)
            if expired_at is not None and offer.at > expired_at:
                input.args = [offer.model_copy(update={"at": expired_at}), *input.args[1:]]
        return await super().execute_activity(input)
