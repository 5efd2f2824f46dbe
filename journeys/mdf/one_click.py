"""The MDF journey's one-click decisions (the token is the credential; its kind is links.DECISION):
reading a link and applying its decision once."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api import journeys, links
from api.errors import status_of
from api.links import LinkRefused
from domain.errors import DomainError, Invalid, TimedOut
from journeys.mdf.domain import DECIDE, DECIDE_CLAIM, JOURNEY, LinkScope, MdfAnswer, MdfDecision
from journeys.mdf.links import DECISION, MdfLinkClaims

RELEASED = (Invalid, TimedOut)  # not taken by the journey (no worker in time) or a reason it refused: usable again


async def link_claims(session: AsyncSession, secret: str, token: str) -> MdfLinkClaims:
    """A usable MDF link: genuine, unexpired, unused, and naming its level (the first), round and amount."""
    claims = await links.claims_of(session, secret, token, DECISION)
    if not claims.scoped or claims.level != 0:
        raise LinkRefused(410, "this link was issued before links named their approval level: decide signed in")
    return claims


async def apply_link(
    session: AsyncSession, client: Client, secret: str, token: str, reason: str, *, deadline: float
) -> MdfAnswer:
    """Confirming applies the decision once: the link's id is recorded first. The journey takes it
    only at the level, round and amount signed into it (the first level); a refusal keeps the link
    used (it never decides another level), only a decision not taken in time or an invalid reason
    frees it again."""
    claims = await link_claims(session, secret, token)
    assert claims.level is not None and claims.round is not None and claims.amount_minor is not None
    stage, _, decision = claims.decision.partition(":")
    request_id = uuid.UUID(claims.request_id)
    await links.use(session, claims)
    arg = MdfDecision(
        decision=decision,
        by=claims.approver,
        reason=reason.strip() or f"{decision} by one-click link",
        link=LinkScope(level=claims.level, round=claims.round, amount_minor=claims.amount_minor),
    )
    try:
        return await journeys.run_update(
            client,
            JOURNEY,
            request_id,
            DECIDE if stage == "request" else DECIDE_CLAIM,
            arg,
            MdfAnswer,
            deadline=deadline,
            progress=f"/mdf/requests/{request_id}",
        )
    except DomainError as err:
        if isinstance(err, RELEASED):  # not taken: the link may be used again
            await links.release(session, claims)
        raise LinkRefused(status_of(err), err.detail) from err
