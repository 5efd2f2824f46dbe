"""A partner's people (`partner_users`): the primary contact is the admin from enrolment; an
admin invites and removes colleagues in the portal, and so may ops and the partner's CAM through
the API (`POST/GET/DELETE /partners/{partner_id}/users`). Removing a user ends their portal
sessions at once (the session rows go with the user)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import PartnerDep, PrincipalDep, SessionDep
from api.routemeta import route_meta
from api.schemas import Email, Name, Strict
from domain.errors import Conflict, Invalid, NotFound
from store import repo
from store.models import Partner
from store.models.portal import PartnerUser

LANGUAGES = ("en", "de")  # a catalog each: api/portal/locale/<language>/LC_MESSAGES/messages.po


class TeamRole(StrEnum):
    admin = "admin"
    member = "member"


TIME_ZONE = r"^[A-Za-z0-9_+\-/]{1,64}$"


class PartnerUserCreate(Strict):
    name: Name
    email: Email
    role: TeamRole = TeamRole.member
    language: Literal["en", "de"] = "en"
    time_zone: str = Field(
        "UTC", max_length=64, pattern=TIME_ZONE, description="an IANA time zone, e.g. Europe/Berlin (else 422)"
    )


class PartnerUserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    partner_id: uuid.UUID
    name: str
    email: str
    role: TeamRole
    language: str
    time_zone: str
    created_at: datetime
    first_signed_in_at: datetime | None


def check_time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(f"unknown time zone {value!r} (an IANA name, e.g. Europe/Berlin)") from err
    if value not in available_timezones() and value != "UTC":
        raise ValueError(f"unknown time zone {value!r} (an IANA name, e.g. Europe/Berlin)")
    return value


async def users_of(session: AsyncSession, partner_id: uuid.UUID) -> list[PartnerUser]:
    stmt = select(PartnerUser).where(PartnerUser.partner_id == partner_id).order_by(PartnerUser.created_at)
    return list((await session.scalars(stmt)).all())


async def invite(session: AsyncSession, partner: Partner, body: PartnerUserCreate, actor: str) -> PartnerUser:
    """A new colleague (409 when the address is already a partner user); committed and audited."""
    try:
        check_time_zone(body.time_zone)
    except ValueError as err:
        raise Invalid(f"time_zone: {err}") from err
    email = body.email.lower()
    if await session.scalar(select(PartnerUser.id).where(PartnerUser.email == email)) is not None:
        raise Conflict(f"email: {email} is already a portal user")
    user = PartnerUser(
        id=uuid.uuid4(),
        partner_id=partner.id,
        name=body.name,
        email=email,
        role=body.role.value,
        language=body.language,
        time_zone=body.time_zone,
        created_by=actor,
    )
    session.add(user)
    await repo.claim_step(
        session,
        key=None,
        actor=actor,
        action="portal.user_invited",
        partner_id=partner.id,
        detail={"user_id": str(user.id), "email": email, "role": body.role.value},
    )
    try:
        await session.commit()
    except IntegrityError as err:  # invited at the same moment elsewhere
        await session.rollback()
        raise Conflict(f"email: {email} is already a portal user") from err
    return user


async def remove(session: AsyncSession, partner: Partner, user_id: uuid.UUID, actor: str) -> None:
    """Remove a user of this partner (404 for anyone else's); the last admin stays (409)."""
    user = await session.get(PartnerUser, user_id, with_for_update=True)
    if user is None or user.partner_id != partner.id:
        raise NotFound(f"no user {user_id} of this partner")
    if user.role == TeamRole.admin.value:
        admins = await session.scalar(
            select(func.count()).where(PartnerUser.partner_id == partner.id, PartnerUser.role == TeamRole.admin.value)
        )
        if (admins or 0) <= 1:
            raise Conflict("this is the partner's last admin; make a colleague admin first")
    await session.delete(user)  # its sessions go with it (ON DELETE CASCADE): signed out at once
    await repo.claim_step(
        session,
        key=None,
        actor=actor,
        action="portal.user_removed",
        partner_id=partner.id,
        detail={"user_id": str(user_id), "email": user.email},
    )
    await session.commit()


router = APIRouter(prefix="/partners", tags=["partners"])


@router.get("/{partner_id}/users", response_model=list[PartnerUserOut])
async def list_users(partner: PartnerDep, session: SessionDep):
    """The partner's portal users (ops, its CAM, the partner itself)."""
    return await users_of(session, partner.id)


@router.post(
    "/{partner_id}/users",
    status_code=201,
    response_model=PartnerUserOut,
    openapi_extra=route_meta(
        {409: "the address is already a partner portal user"},
        business_rule="the time zone must be a known IANA name (the pattern admits others)",
    ),
)
async def add_user(partner: PartnerDep, body: PartnerUserCreate, principal: PrincipalDep, session: SessionDep):
    """Invite a colleague to the partner portal (ops, its CAM, the partner itself)."""
    return await invite(session, partner, body, principal.actor)


@router.delete(
    "/{partner_id}/users/{user_id}",
    status_code=204,
    openapi_extra=route_meta({409: "the partner's last admin stays"}),
)
async def delete_user(partner: PartnerDep, user_id: uuid.UUID, principal: PrincipalDep, session: SessionDep):
    """Remove a portal user: their sessions end at once."""
    await remove(session, partner, user_id, principal.actor)
    return Response(status_code=204)
