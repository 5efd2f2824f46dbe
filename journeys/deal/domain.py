"""Contracts of the deal registration journey (`deal-{deal_id}`)."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from domain.journeys import Coverage, NotifyInput

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList

JOURNEY = "deal"

# Messages (besides the shared CHANGE_COVERAGE and PROGRESS).
DECIDE = "decide"  # update: the CAM's (or ops') decision
REQUEST_EXTENSION = "request_extension"  # update
DECIDE_EXTENSION = "decide_extension"  # update
CHANGE_STAGE = "change_stage"  # signal


class DealActivity:
    """Activity names of this journey."""

    RECORD_STATE = "deal.record_state"
    RECORD_STAGE = "deal.record_stage"
    QUEUE_APPROVAL_REQUEST = "deal.queue_approval_request"
    # A state change and the email that tells it, in one step (kit generation 12).
    RECORD_STATE_AND_NOTIFY = "deal.record_state_and_notify"


LEGACY_ACTIVITY_NAMES = {
    DealActivity.RECORD_STATE: "record_deal_state",
    DealActivity.RECORD_STAGE: "record_deal_stage",
    DealActivity.QUEUE_APPROVAL_REQUEST: "queue_approval_request",
}


class DealState(StrEnum):
    pending_approval = "pending_approval"
    conflict_review = "conflict_review"
    approved = "approved"
    rejected = "rejected"
    won = "won"
    lost = "lost"
    expired = "expired"


OPEN_STATES = (DealState.pending_approval, DealState.conflict_review, DealState.approved)
AWAITING_DECISION = (DealState.pending_approval, DealState.conflict_review)


class DealStage(StrEnum):
    qualification = "qualification"
    discovery = "discovery"
    proposal = "proposal"
    negotiation = "negotiation"
    closed_won = "closed_won"
    closed_lost = "closed_lost"


class Decision(StrEnum):
    approve = "approve"
    reject = "reject"


# ------------------------------------------------------------------ customer matching (pure)

_LEGAL = {
    "inc",
    "incorporated",
    "corp",
    "corporation",
    "co",
    "company",
    "llc",
    "llp",
    "lp",
    "ltd",
    "limited",
    "plc",
    "gmbh",
    "ag",
    "kg",
    "kgaa",
    "sa",
    "sas",
    "sarl",
    "srl",
    "spa",
    "bv",
    "nv",
    "oy",
    "oyj",
    "ab",
    "as",
    "aps",
    "pty",
    "kk",
    "pte",
    "sl",
    "sro",
    "ltda",
    "the",
}

# Default-ignorable code points that are not in category Cf (which is dropped as a whole): the combining
# grapheme joiner, Hangul fillers, Khmer inherent vowels, Mongolian and standard variation selectors.
_IGNORABLE = frozenset(
    "\u034f\u115f\u1160\u17b4\u17b5\u3164\uffa0"
    + "".join(map(chr, range(0x180B, 0x1810)))
    + "".join(map(chr, range(0xFE00, 0xFE10)))
    + "".join(map(chr, range(0xE0100, 0xE01F0)))
)
_APOSTROPHES = "'\u2018\u2019\u02bc`"  # dropped, not spaced: "McDonald's" == "McDonalds"
_INITIALS = re.compile(r"\b([^\W\d_])[./](?=[^\W\d_]\b)")  # "s.a.s." -> "sas.", "a/s" -> "as"


def _fold(text: str) -> str:
    """NFKC + casefold, without invisible characters (zero-width, soft hyphen, BOM, bidi marks...)."""
    if text.isascii():
        return text.casefold()
    text = "".join(
        c for c in unicodedata.normalize("NFKC", text) if c not in _IGNORABLE and unicodedata.category(c) != "Cf"
    )
    return unicodedata.normalize("NFKC", text.casefold())


def normalize_company_name(name: str) -> str:
    """'The ACME, Inc.' -> 'acme'; 'Müller GmbH & Co. KG' -> 'müller'; 'Ｇｌｏ\u200bｂｅｘ S.A.' -> 'globex'.

    Accents stay significant ('müller' != 'muller'); look-alikes from other scripts (Cyrillic 'а') are not
    folded (that needs a UTS #39 confusables skeleton)."""
    text = _INITIALS.sub(r"\1", _fold(name))
    text = "".join("" if c in _APOSTROPHES else c if unicodedata.category(c)[0] in "LMN" else " " for c in text)
    words = text.split()
    words = [w for i, w in enumerate(words) if w != "and" or not 0 < i < len(words) - 1]  # '&' == 'and'
    kept = [w for w in words if w not in _LEGAL]
    return " ".join(kept or words)


def normalize_domain(domain: str) -> str:
    """'HTTPS://WWW.Shop.Acme.co.uk/x' -> 'acme.co.uk' (the registrable domain, IDN labels in punycode:
    'münchen.de' -> 'xn--mnchen-3ya.de')."""
    d = _fold(domain).strip().replace("\u3002", ".")  # NFKC already maps full-width dots to '.' or '。'
    d = re.sub(r"^([a-z][a-z0-9+.-]*:)?//", "", d)
    d = re.split(r"[/?#\\]", d, maxsplit=1)[0].rpartition("@")[2].split(":")[0].rstrip(".")
    d = d.removeprefix("www.")
    if not d.isascii():
        d = ".".join(_idna_label(label) for label in d.split("."))
    return _psl().privatesuffix(d) or d


def _idna_label(label: str) -> str:
    """One label in its ASCII (punycode) form, or unchanged when IDNA refuses it."""
    if label.isascii():
        return label
    try:
        return label.encode("idna").decode("ascii")
    except UnicodeError:
        return label


_PSL: PublicSuffixList | None = None


def _psl() -> PublicSuffixList:
    global _PSL
    if _PSL is None:
        from publicsuffixlist import PublicSuffixList

        _PSL = PublicSuffixList()
    return _PSL


# ------------------------------------------------------------------ workflow contracts


class DealCarried(BaseModel):
    """What an approved deal carries into its next run when its history grows (continue-as-new)."""

    decision: DealDecision
    submitted_at: datetime
    stage_since: datetime
    stage_changes: int
    stalled: bool
    protected_until: datetime
    extensions: int
    pending_extension: ExtensionRequest | None = None
    requests: int
    reminded: list[tuple[int, float]]
    runs: int = 1  # runs before this one


class DealInput(BaseModel):
    deal_id: str
    partner_id: str
    partner_name: str
    coverage: Coverage
    customer_name: str
    product_category: str
    amount_minor: int
    currency: str
    stage: DealStage
    state: DealState  # pending_approval or conflict_review, decided by the API's conflict check
    conflict_with: str | None = None
    hold_reason: str | None = None  # set when policy holds the deal for review (e.g. lapsed certification)
    policy_version: int | None = None
    carried: DealCarried | None = None  # set by continue-as-new: the protection phase goes on


class DealDecision(BaseModel):
    """Update: a CAM's (or ops') decision on a pending deal."""

    decision: Decision
    reason: str = Field(min_length=1, max_length=1000)
    by: str = Field(description="an actor: 'cam:<id>' or 'ops:<id>'")


class DecisionResult(BaseModel):
    deal_id: str
    state: DealState
    decided_by: str
    protected_until: datetime | None = None


class ExtensionRequest(BaseModel):
    """Update: the partner asks for more protection time."""

    days: float = Field(gt=0)
    reason: str = Field("", max_length=1000)
    by: str


class ExtensionDecision(BaseModel):
    """Update: the CAM (or ops) decides on a requested extension (CAM tiers)."""

    decision: Decision
    by: str
    reason: str = Field("", max_length=1000)


class ExtensionResult(BaseModel):
    status: str  # granted | awaiting_cam | rejected
    extensions_used: int
    protected_until: datetime | None


class StageChange(BaseModel):
    """Signal: the deal moved to another stage (closed_won / closed_lost end the journey)."""

    stage: DealStage
    by: str


class DealProgress(BaseModel):
    deal_id: str
    partner_id: str
    state: DealState
    stage: DealStage
    policy_version: int
    submitted_at: datetime
    decided_by: str | None = None
    decision_reason: str | None = None
    protected_until: datetime | None = None
    extensions_used: int = 0
    pending_extension_days: float | None = None
    stage_since: datetime
    stalled: bool = False
    stage_changes_left: int | None = None  # the policy's `limits.max_stage_changes` less those made


class DealResult(BaseModel):
    deal_id: str
    state: DealState
    stage: DealStage


# ------------------------------------------------------------------ activity contracts


class DealStateInput(BaseModel):
    idempotency_key: str
    deal_id: str
    state: DealState
    by: str
    reason: str | None = None
    protected_until: datetime | None = None
    extensions_used: int | None = None
    at: datetime
    # The closing stage change that brings this state, recorded in the same transaction (its own
    # audit row and key); journeys before patch `kit-lean-steps` record it in a step of its own.
    stage_change: DealStageInput | None = None


class DealStateNotice(BaseModel):
    """A state change (`record`) and the email that tells it (`notice`, with the events it
    carries), recorded and queued in one transaction, then sent (kit generation 12)."""

    record: DealStateInput
    notice: NotifyInput


class DealStageInput(BaseModel):
    idempotency_key: str
    deal_id: str
    stage: DealStage
    by: str
    at: datetime


class ApprovalRequestInput(BaseModel):
    """Queue the approval request with signed one-click links, one set per approver."""

    idempotency_key: str
    deal_id: str
    approver: str  # "cam" or "ops"
    template: str
    link_valid_until: datetime
    context: dict[str, Any] = Field(default_factory=dict)


def describe(inp: DealInput) -> tuple[str, str]:
    """The journey's static summary and details in the Temporal Web UI (encrypted by the codec)."""
    cam = f"CAM {inp.coverage.cam_id}" if inp.coverage.cam_id else "no CAM"
    amount = f"{inp.currency} {inp.amount_minor / 100:,.2f}"
    return (
        f"Deal: {inp.customer_name} — {inp.product_category}, {amount} — {inp.partner_name} "
        f"({inp.coverage.tier.value}, {cam})",
        f"**Deal** {inp.deal_id}  \n**Partner** {inp.partner_id}  \n**Registered as** {inp.state.value}"
        + (f"  \n**Conflict with** deal {inp.conflict_with}" if inp.conflict_with else "")
        + (f"  \n**Held** {inp.hold_reason}" if inp.hold_reason else "")
        + f"  \n**Policy version** {inp.policy_version or 'current at start'}",
    )


DealCarried.model_rebuild()
DealStateNotice.model_rebuild()
DealInput.model_rebuild()
