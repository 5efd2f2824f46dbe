"""The MDF journey's open items in a CAM handover (its manifest's `handover_items`): each
request or claim awaiting a decision, with the receiving CAM's new approve / reject links while
its first level (the CAM's) decides, the old CAM's links answering 410 once the partner's CAM
changed (api/links.py). A link is bound to the level, the submission round and the amount
(journeys/mdf/links.py): the round is read from the journey's own recorded steps (each
resubmission, each claim round is an audit row keyed `mdf-<request id>:<step>`), the amount from
the request; a later level is decided in the workspace."""

from __future__ import annotations

import re
import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain import actors
from domain.handover import HandoverItem, HandoverQuery
from domain.links import link_jti
from journeys.mdf.activities import LINK_DECISIONS
from journeys.mdf.domain import AWAITING_DECISION, JOURNEY, MdfState
from journeys.mdf.links import DECISION, MdfLinkClaims
from journeys.mdf.models import MdfRequest
from store.models import AuditEvent

# The workflow's steps that start a round, or move it to a level (journeys/mdf/workflow.py):
# a request's resubmission `resubmitted:<n>` (round 1 is the submission, not a step of its own),
# a claim's `claim:<n>`, and the levels of either, `<stage>:<n>:level:<i>`.
ROUND_STEPS = {
    MdfState.pending_approval.value: re.compile(r"^(?:resubmitted|request):(\d+)(?::level:\d+)?$"),
    MdfState.claim_review.value: re.compile(r"^claim:(\d+)(?::level:\d+)?$"),
}


def current_round(state: str, steps: list[str]) -> int:
    """The submission round a request in `state` is in, from the steps its journey recorded."""
    rounds = [int(m.group(1)) for s in steps if (m := ROUND_STEPS[state].match(s))]
    return max(rounds, default=1)


async def _steps(session: AsyncSession, partner_ids: tuple[uuid.UUID, ...]) -> dict[str, list[str]]:
    """The recorded steps of the partners' MDF journeys, by request id."""
    keys = await session.scalars(
        select(AuditEvent.idempotency_key).where(
            AuditEvent.partner_id.in_(partner_ids),
            AuditEvent.journey == JOURNEY,
            AuditEvent.action.in_([f"{JOURNEY}.{s.value}" for s in AWAITING_DECISION]),
        )
    )
    out: dict[str, list[str]] = {}
    for key in keys:
        wid, _, step = (key or "").partition(":")
        if wid.startswith(f"{JOURNEY}-"):
            out.setdefault(wid.removeprefix(f"{JOURNEY}-"), []).append(step)
    return out


async def handover_items(session: AsyncSession, query: HandoverQuery) -> list[HandoverItem]:
    requests = (
        await session.scalars(
            select(MdfRequest)
            .where(
                MdfRequest.partner_id.in_(query.partner_ids),
                MdfRequest.state.in_([s.value for s in AWAITING_DECISION]),
            )
            .order_by(MdfRequest.created_at, MdfRequest.id)
        )
    ).all()
    steps = await _steps(session, query.partner_ids) if requests else {}
    approver = actors.cam(query.cam_id)
    valid_until = query.now + query.policy.days(query.policy.mdf.decision_link_days)
    items = []
    for r in requests:
        claim = r.state == MdfState.claim_review.value
        amount = r.claim_minor if claim else r.amount_minor
        links = {}
        if r.awaiting_level == 0 and amount is not None:  # the first level (the CAM's) decides by link
            stage, round_ = ("claim" if claim else "request"), current_round(r.state, steps.get(str(r.id), []))
            claims = {
                d.value: MdfLinkClaims(
                    request_id=str(r.id),
                    decision=f"{stage}:{d.value}",
                    approver=approver,
                    jti=link_jti(query.key, str(r.id), d.value),
                    expires_at=valid_until,
                    level=0,
                    round=round_,
                    amount_minor=amount,
                )
                for d in LINK_DECISIONS
            }
            links = query.links(DECISION, claims)
        how = "" if links else ", decide in the workspace"
        items.append(
            HandoverItem(
                journey=JOURNEY,
                partner_id=str(r.partner_id),
                what=f"MDF {r.title} ({r.amount_minor / 100:,.2f} {r.currency}): {r.state}{how}",
                links=links,
            )
        )
    return items
