"""Lead distribution: `leads-{lead_id}`.

Routes the lead by the policy's rules (in order), offers it to one partner (`sequential`) or to
a pool (first to accept wins, the others are withdrawn) with an acceptance deadline counted in
the partner's business hours and a reminder before it; on decline or expiry the next partner,
never one offered before; after the policy's maximum offers the lead is `unplaced` and waits for
ops' recall. Accepted: the conversion window, with nudges, until a deal is registered for it.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain import actors
    from domain.enums import Tier
    from domain.journeys import PROGRESS, Coverage, NotifyResult, Refusal, StepResult
    from domain.webhooks import EventInput, PublishResult, WebhookActivity
    from journeys.leads.domain import (
        DEAL_REGISTERED,
        JOURNEY,
        RECALL,
        RESPOND,
        DealRegistered,
        LeadActivity,
        LeadInput,
        LeadProgress,
        LeadResult,
        LeadState,
        LeadStateInput,
        OfferedTo,
        OfferInput,
        OfferRecord,
        OfferResponse,
        OfferResult,
        OfferState,
        RecallRequest,
        Response,
        ResponseResult,
        SendOfferInput,
    )
    from journeys.leads.events import LeadEvent
    from journeys.leads.policy import LeadsPolicy
    from workflows.kit import JourneyKit

NO_PARTNER = "none"  # the PartnerId search attribute of a lead not accepted by anyone
EVENT_OF = {
    OfferState.accepted: "lead.accepted",
    OfferState.declined: "lead.declined",
    OfferState.expired: "lead.expired",
    OfferState.returned: "lead.returned",
}


@workflow.defn
class LeadWorkflow:
    @workflow.init
    def __init__(self, inp: LeadInput) -> None:
        self._kit = JourneyKit(JOURNEY, NO_PARTNER, Coverage(tier=Tier.registered), context=self._context)
        self._inp = inp
        self._state = LeadState.new
        self._live: dict[str, OfferedTo] = {}
        self._offered: list[str] = []
        self._path: list[str] = []
        self._partner: str | None = None  # the partner that accepted
        self._inbox: list[tuple[int, OfferResponse]] = []
        self._answers: dict[int, str | None] = {}  # response number -> None (taken) or why refused
        self._responses = 0
        self._recall: RecallRequest | None = None
        self._recalls = 0
        self._deal: DealRegistered | None = None
        self._reminded: set[int] = set()
        self._steps = 0

    # ------------------------------------------------------------------ messages

    @workflow.update(name=RESPOND)
    async def respond(self, response: OfferResponse) -> ResponseResult:
        self._responses += 1
        n = self._responses
        self._inbox.append((n, response))
        await workflow.wait_condition(lambda: n in self._answers)
        refused = self._answers[n]
        if refused is not None:
            raise ApplicationError(refused, type=Refusal.NOT_PENDING)
        return ResponseResult(lead_id=self._inp.lead_id, state=self._state, partner_id=self._partner)

    @respond.validator
    def _validate_respond(self, response: OfferResponse) -> None:
        if response.by != actors.partner(response.partner_id) and not actors.is_ops(response.by):
            raise ApplicationError(
                f"{response.by} may not answer for partner {response.partner_id}", type=Refusal.NOT_APPROVER
            )
        if response.response == Response.hand_back:
            if self._state != LeadState.accepted or self._partner != response.partner_id:
                raise ApplicationError(
                    f"lead {self._inp.lead_id} is not accepted by this partner", type=Refusal.NOT_PENDING
                )
            if not response.reason.strip():
                raise ApplicationError("a lead is handed back with a reason", type=Refusal.INVALID)
            return
        if response.partner_id not in self._live or any(r.response == Response.accept for _, r in self._inbox):
            raise ApplicationError(
                f"lead {self._inp.lead_id} has no open offer for partner {response.partner_id} "
                f"(it is {self._state.value})",
                type=Refusal.NOT_PENDING,
            )
        if response.response == Response.decline:
            assert self._kit.policy is not None
            reasons = self._kit.policy.section(LeadsPolicy).decline_reasons
            if response.reason_code not in reasons:
                raise ApplicationError(f"reason_code: one of {', '.join(reasons)}", type=Refusal.INVALID)

    @workflow.update(name=RECALL)
    async def recall(self, req: RecallRequest) -> ResponseResult:
        self._recall = req
        self._recalls += 1
        n = self._recalls
        await workflow.wait_condition(lambda: self._recall is None or self._recalls != n)
        return ResponseResult(lead_id=self._inp.lead_id, state=self._state, partner_id=self._partner)

    @recall.validator
    def _validate_recall(self, req: RecallRequest) -> None:
        if not actors.is_ops(req.by):
            raise ApplicationError("only ops recall or reassign a lead", type=Refusal.NOT_APPROVER)
        if self._state not in (LeadState.new, LeadState.offered, LeadState.accepted, LeadState.unplaced):
            raise ApplicationError(f"lead is {self._state.value}: it cannot be recalled", type=Refusal.NOT_PENDING)
        if self._recall is not None:
            raise ApplicationError("a recall of this lead is in progress", type=Refusal.NOT_PENDING)
        if self._kit.policy is not None:
            self._kit.check_count(self._recalls, self._kit.policy.section(LeadsPolicy).max_recalls, "recalls")

    @workflow.signal(name=DEAL_REGISTERED)
    def deal_registered(self, deal: DealRegistered) -> None:
        if self._state == LeadState.accepted and deal.partner_id == self._partner and self._deal is None:
            self._deal = deal

    @workflow.query(name=PROGRESS)
    def progress(self) -> LeadProgress:
        return LeadProgress(
            lead_id=self._inp.lead_id,
            state=self._state,
            policy_version=self._kit.policy_version,
            partner_id=self._partner,
            live_offers=list(self._live.values()),
            offered=list(self._offered),
            path=list(self._path),
            deal_id=self._deal.deal_id if self._deal else None,
        )

    # ------------------------------------------------------------------ run

    @workflow.run
    async def run(self, inp: LeadInput) -> LeadResult:
        await self._kit.load_policy(inp.policy_version)
        self._kit.upsert(self._state.value)
        to, reason = inp.protected_partner_id, "the customer is protected by this partner's approved deal"
        while True:
            placed = await self._offer_round(to, reason)
            to, reason = None, ""
            if placed is None:  # recalled meanwhile: route again (to the partner ops named, if any)
                to, reason = self._take_recall()
                continue
            if not placed:
                await self._set_state(LeadState.unplaced, by=actors.SYSTEM, reason=self._path[-1])
                await self._kit.wait_for(lambda: self._recall is not None, waiting_for="ops to recall the lead")
                to, reason = self._take_recall()
                continue
            outcome = await self._convert()
            if outcome is None:  # handed back or recalled: routing continues
                to, reason = self._take_recall() if self._recall is not None else (None, "")
                continue
            return await self._end()

    def _take_recall(self) -> tuple[str | None, str]:
        req = self._recall
        assert req is not None
        self._path.append(f"recalled by {req.by}: {req.reason}")
        self._recall = None
        return req.to_partner_id, f"reassigned by {req.by}: {req.reason}"

    # ------------------------------------------------------------------ offers

    async def _offer_round(self, to: str | None, reason: str) -> bool | None:
        """Offer until a partner accepts (True), routing finds nobody (False) or ops recall (None)."""
        policy = self._kit.policy
        assert policy is not None
        rules = policy.section(LeadsPolicy)
        while True:
            left = rules.max_offers - len(self._offered)
            if left <= 0 and to is None:
                self._path.append(f"{rules.max_offers} offers made (the policy's maximum)")
                return False
            self._steps += 1
            in_step = self._kit.generation >= 9  # the offered state written by the routing step
            result = await self._kit.write(  # local since the kit's generation 8
                LeadActivity.OFFER_WITH_STATE if in_step else LeadActivity.OFFER,
                OfferInput(
                    idempotency_key=self._kit.key(f"offer:{self._steps}"),
                    lead_id=self._inp.lead_id,
                    offer_no=len(self._offered) + 1,
                    excluded=list(self._offered),
                    to_partner_id=to,
                    policy_version=self._kit.policy_version,
                    reason=reason,
                    limit=max(left, 1),
                    at=workflow.now(),
                    offered_state_key=self._kit.key(f"state:{self._steps + 1}:offered") if in_step else None,
                ),
                OfferResult,
                summary="route the lead and write its offer(s)" if to is None else f"offer the lead to {to}",
                since=8,
            )
            to = None
            self._path.extend(result.pick.reasons)
            if not result.offers:
                return False
            for offer in result.offers:
                self._live[offer.partner_id] = offer
                self._offered.append(offer.partner_id)
            if in_step:  # recorded with the offers: the search attributes follow
                self._state, self._steps = LeadState.offered, self._steps + 1
                self._kit.upsert(self._state.value)
            else:
                await self._set_state(LeadState.offered, by=actors.SYSTEM, reason=result.pick.reasons[-1])
            for offer in result.offers:
                if self._kit.generation >= 11:  # the event written with the email that tells it
                    offered = self._event("lead.offered", offer.partner_id, offer.offer_no, actors.SYSTEM)
                    await self._send(offer.partner_id, offer.offer_no, "offer", offer, events=[offered])
                else:
                    await self._send(offer.partner_id, offer.offer_no, "offer", offer)
                    await self._publish(self._event("lead.offered", offer.partner_id, offer.offer_no, actors.SYSTEM))
            outcome = await self._await_answers()
            if self._recall is not None:
                return None
            if outcome:
                return True

    async def _await_answers(self) -> bool | None:
        """Until the live offers are all answered or expired: True when one was accepted, None when
        ops recalled the lead, False (route again) otherwise."""
        while self._live:
            if self._recall is not None:
                await self._withdraw_all(f"recalled by {self._recall.by}")
                return None
            while self._inbox:
                n, response = self._inbox.pop(0)
                self._answers[n] = await self._answer(response)
                if self._partner is not None:
                    return True
            now = workflow.now()
            deadlines = []
            for pid, offer in list(self._live.items()):
                if now >= offer.expires_at:
                    del self._live[pid]
                    await self._close_offer(offer, OfferState.expired, actors.SYSTEM, reason="no answer in time")
                    continue
                if offer.remind_at is not None and offer.offer_no not in self._reminded:
                    if now >= offer.remind_at:
                        self._reminded.add(offer.offer_no)
                        await self._send(pid, offer.offer_no, "offer_reminder", offer)
                    else:
                        deadlines.append(offer.remind_at)
                deadlines.append(offer.expires_at)
            if not self._live:
                break
            await self._kit.wait_until(
                lambda: bool(self._inbox) or self._recall is not None,
                min(deadlines),
                summary="offer reminder or expiry",
                waiting_for="the partner's answer",
            )
        return False

    async def _answer(self, r: OfferResponse) -> str | None:
        offer = self._live.get(r.partner_id)
        if offer is None:
            return f"the offer to partner {r.partner_id} is closed (lead {self._state.value})"
        del self._live[r.partner_id]
        if r.response == Response.decline:
            await self._close_offer(offer, OfferState.declined, r.by, r.reason_code, r.reason)
            return None
        self._partner = r.partner_id
        self._kit.partner_id = r.partner_id
        await self._close_offer(offer, OfferState.accepted, r.by)
        await self._withdraw_all(f"partner {r.partner_id} accepted the lead")
        await self._set_state(LeadState.accepted, by=r.by, partner_id=r.partner_id)
        return None

    async def _withdraw_all(self, why: str) -> None:
        for pid, offer in list(self._live.items()):
            del self._live[pid]
            await self._close_offer(offer, OfferState.withdrawn, actors.SYSTEM, reason=why)
            await self._send(pid, offer.offer_no, "withdrawn", offer)

    async def _close_offer(
        self, offer: OfferedTo, state: OfferState, by: str, code: str | None = None, reason: str | None = None
    ) -> None:
        self._path.append(f"offer {offer.offer_no} to {offer.partner_id}: {state.value} ({reason or code or by})")
        await self._kit.write(
            LeadActivity.RECORD_OFFER,
            OfferRecord(
                idempotency_key=self._kit.key(f"offer:{offer.offer_no}:{state.value}"),
                lead_id=self._inp.lead_id,
                partner_id=offer.partner_id,
                offer_no=offer.offer_no,
                state=state,
                by=by,
                reason_code=code,
                reason=reason,
                at=workflow.now(),
            ),
            StepResult,
            summary=f"record offer {offer.offer_no}: {state.value}",
        )
        if state in EVENT_OF:
            await self._publish(self._event(EVENT_OF[state], offer.partner_id, offer.offer_no, by, reason or code))

    def _event(
        self,
        event_type: str,
        partner_id: str,
        offer_no: int,
        by: str,
        reason: str | None = None,
        deal_id: str | None = None,
    ) -> EventInput:
        """A `lead.*` event on the stream of the partner concerned (once per offer and type)."""
        inp = self._inp
        data = LeadEvent(
            lead_id=inp.lead_id,
            partner_id=partner_id,
            state=self._state.value,
            company=inp.company,
            country=inp.country,
            product_category=inp.product_category,
            source=inp.source,
            offer_no=offer_no,
            by=by,
            reason=reason,
            deal_id=deal_id,
        )
        return EventInput(
            idempotency_key=self._kit.key(f"event:{event_type}:{offer_no}"),
            type=event_type,
            partner_id=partner_id,
            occurred_at=workflow.now(),
            data=data.model_dump(mode="json"),
        )

    async def _publish(self, event: EventInput) -> None:
        await self._kit.write(
            WebhookActivity.PUBLISH,
            event,
            PublishResult,
            summary=f"publish the {event.type} event to webhook subscribers",
        )

    async def _send(
        self,
        partner_id: str,
        offer_no: int,
        template: str,
        offer: OfferedTo | None = None,
        events: list[EventInput] | None = None,
    ) -> None:
        """An email of the lead to the partner: queued, then sent (one step since the kit's
        generation 11, with the `events` it tells; before, each a step of its own after it)."""
        key = self._kit.key(f"notify:{template}:{offer_no}")
        arg = SendOfferInput(
            idempotency_key=key,
            lead_id=self._inp.lead_id,
            partner_id=partner_id,
            offer_no=offer_no,
            template=template,
            expires_at=offer.expires_at if offer else None,
            events=events or [],
        )
        what = template.replace("_", " ")
        if self._kit.generation >= 11:
            also = " and publish " + ", ".join(e.type for e in events) if events else ""
            summary = f"email the {what} to partner {partner_id}{also}"
            await self._kit.notify_by(LeadActivity.NOTIFY_OFFER, arg, summary=summary)
            return
        await self._kit.queue_and_send(
            LeadActivity.SEND_OFFER,
            arg,
            NotifyResult,
            key,
            summary=f"queue the {what} email to partner {partner_id}",
            send_summary=f"email the {what} to partner {partner_id}",
        )

    # ------------------------------------------------------------------ conversion window

    async def _convert(self) -> bool | None:
        """Accepted: nudges until a deal is registered (True) or the window ends (False: lapsed);
        None when the partner hands the lead back or ops recall it (routing continues)."""
        policy = self._kit.policy
        assert policy is not None and self._partner is not None
        rules = policy.section(LeadsPolicy)
        partner = self._partner
        accepted_at = workflow.now()
        ends = accepted_at + policy.days(rules.conversion_days)
        nudges = sorted(accepted_at + policy.days(d) for d in rules.nudge_days)
        offer_no = self._offered.index(partner) + 1
        sent = 0
        while True:
            if self._deal is not None:
                await self._set_state(
                    LeadState.converted, by=self._deal.by, partner_id=partner, deal_id=self._deal.deal_id
                )
                await self._publish(
                    self._event("lead.converted", partner, offer_no, self._deal.by, deal_id=self._deal.deal_id)
                )
                return True
            handed = [(n, r) for n, r in self._inbox if r.response == Response.hand_back]
            if handed or self._recall is not None:
                taken, self._inbox = list(self._inbox), []
                back = handed[0][1] if handed else None
                state = OfferState.returned if back is not None else OfferState.withdrawn
                if back is not None:
                    by, why, code = back.by, back.reason, back.reason_code
                else:
                    assert self._recall is not None
                    by, why, code = self._recall.by, self._recall.reason, None
                offer = OfferedTo(partner_id=partner, partner_name="", offer_no=offer_no, expires_at=ends)
                await self._close_offer(offer, state, by, code, why)
                self._partner = None
                self._kit.partner_id = NO_PARTNER
                await self._set_state(LeadState.new, by=by, reason=why)
                for n, r in taken:  # answered once recorded
                    self._answers[n] = None if r.response == Response.hand_back else "the lead is accepted"
                return None
            for n, _ in self._inbox:
                self._answers[n] = "the lead is already accepted"
            self._inbox.clear()
            now = workflow.now()
            if now >= ends:
                await self._set_state(
                    LeadState.lapsed,
                    by=actors.SYSTEM,
                    partner_id=partner,
                    reason="no deal registered within the conversion window",
                )
                return False
            while sent < len(nudges) and now >= nudges[sent]:
                sent += 1
                await self._send(partner, sent, "nudge")
            nxt = min([ends, *nudges[sent:]])
            await self._kit.wait_until(
                lambda: self._deal is not None or bool(self._inbox) or self._recall is not None,
                nxt,
                summary="conversion nudge" if nxt != ends else "conversion window ends",
                waiting_for="a deal registered for the lead",
            )

    # ------------------------------------------------------------------ helpers

    async def _end(self) -> LeadResult:
        await workflow.wait_condition(workflow.all_handlers_finished)
        return LeadResult(
            lead_id=self._inp.lead_id,
            state=self._state,
            partner_id=self._partner,
            deal_id=self._deal.deal_id if self._deal else None,
        )

    async def _set_state(
        self,
        state: LeadState,
        *,
        by: str,
        partner_id: str | None = None,
        deal_id: str | None = None,
        reason: str | None = None,
    ) -> None:
        self._state = state
        self._steps += 1
        record = LeadStateInput(
            idempotency_key=self._kit.key(f"state:{self._steps}:{state.value}"),
            lead_id=self._inp.lead_id,
            state=state,
            by=by,
            partner_id=partner_id,
            deal_id=deal_id,
            reason=reason,
            at=workflow.now(),
        )
        await self._kit.record_state(state.value, LeadActivity.RECORD_STATE, record, by=by)

    def _context(self) -> dict[str, Any]:
        return {"lead_id": self._inp.lead_id, "company": self._inp.company, "state": self._state.value}
