"""Today's certification items: certifications about to lapse (inside the policy's CAM alert
window) and lapsed ones that restrict deal registration; the Portfolio's expiring column and the
Partner page's certifications section."""

from __future__ import annotations

from sqlalchemy import func, or_, select

from api.web.items import Section, TodayContext, TodayItem, column, provider, rows_of, section
from journeys.cert.models import Certification
from store.models import Partner


@provider("cert")
async def cert_items(ctx: TodayContext) -> list[TodayItem]:
    window = ctx.now + ctx.days(ctx.policy.cert.cam_alert_days)
    stmt = ctx.responsible(
        select(Certification, Partner)
        .join(Partner, Partner.id == Certification.partner_id)
        .where(or_(Certification.restricted.is_(True), Certification.expires_at <= window))
        .order_by(Certification.expires_at)
    )
    items = []
    for cert, partner in (await ctx.session.execute(stmt)).all():
        lapsed = cert.restricted
        items.append(
            TodayItem(
                kind="cert",
                label="Certification lapsed" if lapsed else "Certification expiring",
                partner_id=partner.id,
                partner_name=partner.name,
                title=f"{cert.track} — {cert.person_name}",
                detail=(
                    f"deal registration in {cert.product_category} is restricted until it is renewed"
                    if lapsed
                    else f"gates deal registration in {cert.product_category}"
                ),
                deadline=cert.expires_at,
                deadline_label="lapsed" if lapsed else "expires",
                entity_id=str(cert.id),
            )
        )
    return items


@column("certs_expiring", "Certifications expiring", 30)
async def certs_expiring(session, partner_ids, ctx: TodayContext) -> dict:
    window = ctx.now + ctx.days(ctx.policy.cert.cam_alert_days)
    rows = await session.execute(
        select(Certification.partner_id, func.count())
        .where(
            Certification.partner_id.in_(partner_ids),
            or_(Certification.restricted.is_(True), Certification.expires_at <= window),
        )
        .group_by(Certification.partner_id)
    )
    counts = dict(rows.all())
    return {pid: counts.get(pid, 0) for pid in partner_ids}


@section("cert")
async def certs_section(session, partner: Partner, ctx: TodayContext) -> Section:
    certs = await rows_of(session, Certification, partner, Certification.expires_at)
    return Section(title="Certifications", template="cert/certs.html.j2", context={"certs": certs}, order=30)
