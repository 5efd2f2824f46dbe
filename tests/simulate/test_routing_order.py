"""The simulator routes again, in lead id order, the leads whose offers expire at one instant
(`journeys/leads/simulation.py`): the same sample gives the same report. Real lead workflows and
activities on the time-skipping server, PostgreSQL and the SMTP server."""

from __future__ import annotations

from journeys.leads.simulation import RoutingOrderInterceptor
from tests.leads.factories import route_again_together

LEADS, PARTNERS = 6, 12


async def test_offers_expiring_at_one_instant_are_routed_again_in_lead_id_order(
    ts_env, sessionmaker, mailbox, base_settings, task_queue
):
    """Six leads share one deadline. Round robin gives each, in lead id order, the partner waiting
    longest: the six never offered, in partner id order, each at the instant of the expiry.
    Without the order the routings take them in the order they happen to commit, at times a few
    milliseconds apart that round robin would compare next."""
    order = RoutingOrderInterceptor(sessionmaker)
    partners, second = await route_again_together(
        ts_env, sessionmaker, base_settings, task_queue, leads=LEADS, partners=PARTNERS, interceptors=[order]
    )
    assert [str(o.partner_id) for o in second] == partners[LEADS:], "in lead id order, the longest waiting first"
    assert order.waited >= 1, "a routing waited for a lead of a lower id"
    assert len({o.offered_at for o in second}) == 1, "routed at the instant of the expiry, not milliseconds apart"
