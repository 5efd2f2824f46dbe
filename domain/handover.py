"""CAM handover (issue 22): the contracts of the platform workflow `cam-handover-{handover id}`
(workflows/handover.py) and its activities (activities/handover.py). A handover moves some or
all partners of one CAM to another: each partner's CAM changes (its coverage version goes up,
api/journeys.py), every running journey of the partner is told the new coverage once, the
partner gets an introduction email and the receiving CAM one handover pack."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from domain.journeys import Coverage
from domain.policy import ProgramPolicy

HANDOVER_WORKFLOW = "CamHandover"
JOURNEY = "handover"  # the outbox and audit rows' journey column; templates activities/templates/handover/
COMPLETED_EVENT = "cam.handover_completed"


def handover_workflow_id(handover_id: object) -> str:
    return f"cam-handover-{handover_id}"


def step_key(handover_id: object, step: str, partner_id: object | None = None) -> str:
    """The idempotency key of a step of a handover (`<workflow id>:<step>[:<partner id>]`): its
    audit row, outbox rows (and so their Message-IDs) and webhook event are written once."""
    return f"{handover_workflow_id(handover_id)}:{step}" + (f":{partner_id}" if partner_id is not None else "")


class HandoverActivity:
    MOVE = "handover.move_partner"
    INTRODUCE = "handover.queue_introduction"
    PACK = "handover.queue_pack"
    COMPLETE = "handover.complete"


class HandoverInput(BaseModel):
    """The workflow's input: the handover row's id (the row holds the partners, CAMs and note)."""

    handover_id: str
    partner_ids: list[str]


class HandoverStep(BaseModel):
    """One partner's step of a handover."""

    handover_id: str
    partner_id: str


class Moved(BaseModel):
    """What moving a partner did: its new coverage, the coverage version its journeys were
    marked with, and the journeys the workflow tells (once). `moved` is False when the partner
    had left the handing-over CAM meanwhile (nothing to do)."""

    moved: bool
    coverage: Coverage | None = None
    version: int = 0
    workflow_ids: list[str] = []


class HandoverRef(BaseModel):
    handover_id: str


@dataclass(frozen=True)
class HandoverQuery:
    """What a journey's items are read for in a CAM handover (its manifest's `handover_items`):
    the partners handed over, the receiving CAM (whose new one-click links the items carry,
    signed with `secret` at `base_url`), now and the policy (the links' validity), and the
    handover pack's key (link ids derive from it)."""

    partner_ids: tuple[uuid.UUID, ...]
    cam_id: uuid.UUID
    now: datetime
    policy: ProgramPolicy
    base_url: str
    secret: str
    key: str

    def links(self, kind: Any, claims: Mapping[str, Any]) -> dict[str, str]:
        """The receiving CAM's links of a kind (a `core.journey.LinkKind`), one per decision."""
        return {decision: kind.url(self.base_url, self.secret, c) for decision, c in claims.items()}


class HandoverItem(BaseModel):
    """A partner's item in the receiving CAM's handover pack: an `open` item of a journey (a
    decision waiting, an escalation; with the receiving CAM's new links by decision) or a
    `status` shown on the partner's portfolio line (e.g. its health)."""

    journey: str
    partner_id: str
    kind: Literal["open", "status"] = "open"
    what: str  # in words: "deal registration Acme (12,000.00 USD, network): pending_approval"
    links: dict[str, str] = {}
