"""The partner portal's own pages: home (what needs me now, most urgent first, from every
journey's `@portal_item`, and the journeys' sections), the team (admins invite and remove
colleagues) and the user's language and time zone. The journeys' task pages and actions are
theirs (`journeys/<name>/portal.py`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Form, Request
from pydantic import ValidationError
from sqlalchemy import update

from api.deps import SessionDep
from api.portal import team
from api.portal.i18n import languages
from api.portal.items import ITEMS, SECTIONS, PortalActionDep, PortalContext, router
from api.portal.pages import error_text, redirect, render, translator
from api.portal.security import PREFIX, require_admin, signed_in
from api.schemas import SCREEN_LINE
from api.web.actions import Refusal, status_of
from store import repo
from store.models import Partner
from store.models.portal import PartnerUser

FAR = datetime.max.replace(tzinfo=UTC)


@router.get("/")
async def home(request: Request, session: SessionDep):
    user = await signed_in(request, session)
    policy = (await repo.current_policy(session)).policy
    ctx = PortalContext(session=session, user=user, policy=policy, now=datetime.now(UTC), t=translator(user))
    items = [item for provider in ITEMS.values() for item in await provider(ctx)]
    items.sort(key=lambda i: i.deadline or FAR)
    sections = [s for provider in SECTIONS.values() if (s := await provider(ctx)) is not None]
    sections.sort(key=lambda s: s.order)
    partner = await session.get(Partner, user.partner_id)
    return render(request, "home", user, items=items, sections=sections, partner=partner, now=ctx.now)


@router.get("/team")
async def team_page(request: Request, session: SessionDep):
    user = await signed_in(request, session)
    people = await team.users_of(session, user.partner_id)
    return render(request, "team", user, people=people, languages=languages())


Field = Annotated[str, Form(max_length=320), SCREEN_LINE]


@router.post("/team")
async def invite(
    ctx: PortalActionDep,
    name: Field = "",
    email: Field = "",
    role: Field = "member",
    language: Field = "en",
    time_zone: Field = "UTC",
):
    """An admin invites a colleague (a member cannot manage the team: 403)."""
    require_admin(ctx.user)
    try:
        body = team.PartnerUserCreate(name=name, email=email, role=role, language=language, time_zone=time_zone)
    except ValidationError as err:
        return redirect(f"{PREFIX}/team", error_text(err), "error")
    partner = await ctx.partner()
    try:
        await team.invite(ctx.session, partner, body, ctx.principal.actor)
    except Refusal as err:
        return redirect(f"{PREFIX}/team", str(err.detail), "error")
    return redirect(f"{PREFIX}/team", ctx.t.gettext("%(name)s was invited.", name=body.name))


@router.post("/team/{user_id}/remove")
async def remove(user_id: uuid.UUID, ctx: PortalActionDep):
    """An admin removes a colleague (another partner's user: 404); their sessions end at once."""
    require_admin(ctx.user)
    partner = await ctx.partner()
    try:
        await team.remove(ctx.session, partner, user_id, ctx.principal.actor)
    except Refusal as err:
        if status_of(err) == 404:
            raise
        return redirect(f"{PREFIX}/team", str(err.detail), "error")
    target = f"{PREFIX}/team" if user_id != ctx.user.id else f"{PREFIX}/sign-in"
    return redirect(target, ctx.t.gettext("Removed from the team."))


@router.post("/me")
async def settings(ctx: PortalActionDep, language: Field = "en", time_zone: Field = "UTC"):
    """The signed-in user's own language and time zone."""
    if language not in languages():
        return redirect(ctx.back, f"language: one of {', '.join(languages())}", "error")
    try:
        zone = team.check_time_zone(time_zone)
    except ValueError as err:
        return redirect(ctx.back, f"time_zone: {err}", "error")
    await ctx.session.execute(
        update(PartnerUser).where(PartnerUser.id == ctx.user.id).values(language=language, time_zone=zone)
    )
    await ctx.session.commit()
    return redirect(ctx.back)
