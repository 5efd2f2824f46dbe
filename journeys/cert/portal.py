"""The certification journey in the partner portal: certifications expiring within the first
reminder (or lapsed, restricting deal registration in their category) on the home page, and the
certifications page: each of the partner's certifications with its expiry, and what a lapse
would restrict, said plainly from the policy (grace period, refused or held for review)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import Request
from sqlalchemy import or_, select

from api.deps import SessionDep
from api.portal.i18n import N_, Translator
from api.portal.items import PortalContext, PortalItem, portal_item, portal_view
from api.portal.pages import render, translator
from api.portal.security import PREFIX, signed_in
from journeys.cert.domain import JOURNEY, CertState
from journeys.cert.models import Certification
from journeys.cert.policy import CertPolicy
from store import repo


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
                link=f"{PREFIX}/certifications",
                entity_id=str(cert.id),
            )
        )
    return items


STATES = {
    CertState.active.value: N_("current"),
    CertState.grace.value: N_("expired: in the grace period"),
    CertState.lapsed.value: N_("lapsed"),
}


def lapse_terms(policy: CertPolicy, t: Translator) -> list[str]:
    """What a lapse restricts, in plain words from the policy: when it starts and what it does."""
    if policy.grace_days > 0:
        when = t.gettext(
            "A certification lapses %(days)s days after it expires (the grace period).",
            days=t.number(policy.grace_days),
        )
    else:
        when = t.gettext("A certification lapses the day it expires (there is no grace period).")
    what = (
        t.gettext("While it is lapsed, a deal you register in its product category is refused.")
        if policy.lapse_action == "refuse"
        else t.gettext("While it is lapsed, a deal you register in its product category waits for your CAM's review.")
    )
    unless = t.gettext("Another current certification in the same category keeps registration open.")
    return [when, what, unless, t.gettext("Renewing it lifts the restriction at once.")]


@portal_view(JOURNEY, "/certifications")
async def certifications_page(request: Request, session: SessionDep):
    """The partner's certifications (soonest expiry first) and what a lapse would restrict."""
    user = await signed_in(request, session)
    policy = (await repo.current_policy(session)).policy
    certs = (
        await session.scalars(
            select(Certification)
            .where(Certification.partner_id == user.partner_id)
            .order_by(Certification.expires_at, Certification.track)
            .limit(500)
        )
    ).all()
    t = translator(user)
    return render(
        request,
        "cert/certifications",
        user,
        certs=certs,
        states=STATES,
        terms=lapse_terms(policy.cert, t),
        now=datetime.now(UTC),
    )
