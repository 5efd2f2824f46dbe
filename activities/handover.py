"""The CAM handover's activities (workflows/handover.py): move one partner to the receiving CAM,
queue its introduction email, queue the receiving CAM's handover pack, complete the handover.
Each is idempotent: a partner's move is recorded in the handover's `progress` in the move's
transaction (a retry returns what the first attempt did), and every email, audit row and event
carries a key of the handover's step (domain/handover.py `step_key`)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.common import write_outbox
from activities.webhooks import wake_stream, write_event
from domain.enums import Tier
from domain.handover import (
    COMPLETED_EVENT,
    JOURNEY,
    HandoverActivity,
    HandoverItem,
    HandoverQuery,
    HandoverRef,
    HandoverStep,
    Moved,
    step_key,
)
from domain.journeys import Coverage, NotifyInput, NotifyResult, StepResult
from domain.webhooks import EventInput
from store import repo
from store.models import Cam, Handover, JourneyRecord, Partner

# A journey's `handover_items` (core/journey.py HandoverItemsReader).
ItemsReader = Callable[[AsyncSession, HandoverQuery], Awaitable[list[HandoverItem]]]


class HandoverActivities:
    """Built once per worker: the session factory, the links' address and secret, the journeys
    that follow coverage and every journey's `handover_items`."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        base_url: str,
        link_secret: str,
        following: tuple[str, ...],
        items: tuple[ItemsReader, ...],
    ):
        self.sessionmaker, self.following, self.items = sessionmaker, following, items
        self.base_url, self.link_secret = base_url, link_secret

    async def _handover(self, session: AsyncSession, handover_id: str, *, lock: bool = False) -> Handover:
        handover = await session.get(Handover, uuid.UUID(handover_id), with_for_update=lock)
        if handover is None:
            raise ApplicationError(f"handover {handover_id} not found", type="HandoverNotFound", non_retryable=True)
        return handover

    @activity.defn(name=HandoverActivity.MOVE)
    async def move_partner(self, inp: HandoverStep) -> Moved:
        """The partner's CAM becomes the receiving CAM and its coverage version goes up; the journeys
        behind it (those that follow coverage) are marked told in the same transaction and
        returned for the workflow to tell (once: the signals are in its history). A partner that
        left the handing-over CAM meanwhile is not moved."""
        async with self.sessionmaker() as session, session.begin():
            handover = await self._handover(session, inp.handover_id, lock=True)
            if (done := handover.progress.get(inp.partner_id)) is not None:
                return Moved.model_validate(done)  # a retry: what the first attempt did
            partner = await session.get(Partner, uuid.UUID(inp.partner_id), with_for_update=True)
            if partner is None or partner.cam_id != handover.from_cam_id:
                moved = Moved(moved=False)
            else:
                before = Coverage(tier=Tier(partner.tier), cam_id=str(partner.cam_id))
                partner.cam_id, partner.coverage_version = handover.to_cam_id, partner.coverage_version + 1
                await session.flush()
                wids = list(
                    (
                        await session.scalars(
                            repo.behind_coverage(list(self.following)).where(JourneyRecord.partner_id == partner.id)
                        )
                    ).all()
                )
                await session.execute(
                    update(JourneyRecord)
                    .where(JourneyRecord.workflow_id.in_(wids))
                    .values(coverage_version=partner.coverage_version)
                )
                after = Coverage(tier=before.tier, cam_id=str(handover.to_cam_id))
                await repo.claim_step(
                    session,
                    key=step_key(inp.handover_id, "move", inp.partner_id),
                    actor=handover.requested_by,
                    action="partner.coverage_changed",
                    partner_id=partner.id,
                    detail={
                        "from": before.model_dump(mode="json"),
                        "to": after.model_dump(mode="json"),
                        "handover_id": inp.handover_id,
                        "journeys": wids,
                    },
                )
                moved = Moved(moved=True, coverage=after, version=partner.coverage_version, workflow_ids=wids)
            handover.progress = {**handover.progress, inp.partner_id: moved.model_dump(mode="json")}
        return moved

    @activity.defn(name=HandoverActivity.INTRODUCE)
    async def queue_introduction(self, inp: HandoverStep) -> NotifyResult:
        """The partner's introduction to its new CAM (once per handover and partner)."""
        async with self.sessionmaker() as session, session.begin():
            handover = await self._handover(session, inp.handover_id)
            partner = await session.get(Partner, uuid.UUID(inp.partner_id))
            new, old = await session.get(Cam, handover.to_cam_id), await session.get(Cam, handover.from_cam_id)
            assert partner is not None and new is not None and old is not None
            context = {
                "partner_name": partner.name,
                "cam_name": new.name,
                "cam_email": new.email,
                "previous_cam_name": old.name,
                "note": handover.note,
            }
            queued = await write_outbox(
                session,
                NotifyInput(
                    idempotency_key=step_key(inp.handover_id, "introduce", inp.partner_id),
                    partner_id=inp.partner_id,
                    journey=JOURNEY,
                    template="introduction",
                    recipients=["partner"],
                    context=context,
                    audit_action="handover.introduction_sent",
                ),
                [("partner", partner.contact_email, {})],
            )
        return NotifyResult(queued=queued, recipients=[partner.contact_email])

    @activity.defn(name=HandoverActivity.PACK)
    async def queue_pack(self, inp: HandoverRef) -> NotifyResult:
        """The receiving CAM's handover pack (once per handover): the partners handed over (tier,
        status, health), their open items with the receiving CAM's new one-click links (every
        journey's `handover_items`), and the note."""
        key = step_key(inp.handover_id, "pack")
        async with self.sessionmaker() as session, session.begin():
            handover = await self._handover(session, inp.handover_id)
            new, old = await session.get(Cam, handover.to_cam_id), await session.get(Cam, handover.from_cam_id)
            assert new is not None and old is not None
            ids = [uuid.UUID(pid) for pid, done in handover.progress.items() if done.get("moved")]
            partners = (await session.scalars(select(Partner).where(Partner.id.in_(ids)).order_by(Partner.name))).all()
            policy = (await repo.current_policy(session)).policy
            query = HandoverQuery(
                partner_ids=tuple(ids),
                cam_id=handover.to_cam_id,
                now=datetime.now(UTC),
                policy=policy,
                base_url=self.base_url,
                secret=self.link_secret,
                key=key,
            )
            found: list[HandoverItem] = []
            for reader in self.items:
                found.extend(await reader(session, query) if ids else [])
            items = [i for i in found if i.kind == "open"]
            names = {str(p.id): p.name for p in partners}
            portfolio = [
                {
                    "name": p.name,
                    "tier": p.tier,
                    "status": p.status,
                    "about": [i.what for i in found if i.kind == "status" and i.partner_id == str(p.id)],
                    "open_items": sum(1 for i in items if i.partner_id == str(p.id)),
                }
                for p in partners
            ]
            context = {
                "cam_name": new.name,
                "previous_cam_name": old.name,
                "note": handover.note,
                "partners": len(portfolio),
                "open_items": len(items),
            }
            # The items (with their links) are the recipient's own context: not in the audit row.
            extra = {
                "portfolio": portfolio,
                "items": [{**i.model_dump(), "partner_name": names.get(i.partner_id, "")} for i in items],
            }
            queued = await write_outbox(
                session,
                NotifyInput(
                    idempotency_key=key,
                    partner_id="",
                    journey=JOURNEY,
                    template="pack",
                    recipients=["cam"],
                    context=context,
                    audit_action="handover.pack_sent",
                ),
                [("cam", new.email, extra)],
            )
        return NotifyResult(queued=queued, recipients=[new.email])

    @activity.defn(name=HandoverActivity.COMPLETE)
    async def complete(self, inp: HandoverRef) -> StepResult:
        """The handover is completed (once): its state, its audit row and, per partner moved, the
        `cam.handover_completed` event for webhook subscribers."""
        woken: list[tuple[uuid.UUID, str]] = []
        async with self.sessionmaker() as session, session.begin():
            handover = await self._handover(session, inp.handover_id, lock=True)
            moved = [pid for pid, done in handover.progress.items() if done.get("moved")]
            applied = await repo.claim_step(
                session,
                key=step_key(inp.handover_id, "completed"),
                actor=handover.requested_by,
                action="cam.handover_completed",
                detail={
                    "handover_id": inp.handover_id,
                    "from_cam_id": str(handover.from_cam_id),
                    "to_cam_id": str(handover.to_cam_id),
                    "partners_moved": len(moved),
                    "partners_skipped": len(handover.progress) - len(moved),
                },
            )
            if applied:
                handover.state, handover.completed_at = "completed", datetime.now(UTC)
            for pid in moved:
                _, subscriptions = await write_event(
                    session,
                    EventInput(
                        idempotency_key=step_key(inp.handover_id, "event", pid),
                        type=COMPLETED_EVENT,
                        partner_id=pid,
                        occurred_at=handover.completed_at or datetime.now(UTC),
                        data={
                            "handover_id": inp.handover_id,
                            "partner_id": pid,
                            "from_cam_id": str(handover.from_cam_id),
                            "to_cam_id": str(handover.to_cam_id),
                            "journeys_moved": len(handover.progress[pid].get("workflow_ids", [])),
                            "by": handover.requested_by,
                        },
                    ),
                )
                woken += [(sub, pid) for sub in subscriptions]
        info = activity.info()
        for sub, pid in woken:  # also on a retry: waking a stream twice is harmless
            await wake_stream(activity.client(), info.task_queue, sub, pid)
        return StepResult(applied=applied)
