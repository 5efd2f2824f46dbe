"""The certification journey in the partner portal: certifications expiring within the first
reminder (or lapsed, restricting deal registration in their category) on the home page."""

from __future__ import annotations

from sqlalchemy import or_, select

from api.portal.items import PortalContext, PortalItem, portal_item
from journeys.cert.domain import JOURNEY
from journeys.cert.models import Certification


@portal_item(JOURNEY)
async def certifications_expiring(ctx: PortalContext) -> list[PortalItem]:
    window = ctx.now + ctx.policy.days(max(ctx.policy.cert.reminder_days, default=ctx.policy.cert.cam_alert_days))
    stmt = (
        select(Certification)
        .where(
            Certification.partner_id == ctx.partner_id,
            or_(Certification.restricted.is_(True), Certification.expires_at <= window),
        )
        .order_by(Certification.expires_at)
    )
    t = ctx.t
    items = []
    for cert in (await ctx.session.scalars(stmt)).all():
        lapsed = cert.restricted
        restricts = t.gettext("deal registration in %(category)s", category=cert.product_category)
        items.append(
            PortalItem(
                kind=JOURNEY,
                label=t.gettext("Certification lapsed") if lapsed else t.gettext("Certification expiring"),
                title=f"{cert.track} — {cert.person_name}",
                detail=(
                    t.gettext("Restricts until renewed: %(what)s", what=restricts)
                    if lapsed
                    else t.gettext("A lapse would restrict: %(what)s", what=restricts)
                ),
                deadline=cert.expires_at,
                deadline_label=t.gettext("lapsed") if lapsed else t.gettext("expires"),
                entity_id=str(cert.id),
            )
        )
    return items
