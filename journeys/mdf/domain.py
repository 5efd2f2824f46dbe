"""Contracts of the market development funds journey (`mdf-{request_id}`) and the funds ledger.

A request reserves funds at submission; approvals by amount level; the activity starts within
the pre-approval validity; the claim comes with proof inside the claim window; claim review;
payments; the reservation's remainder is released. One fund per partner and period is watched
by `mdf-fund-{partner_id}-{period}`: warnings before its unreserved balance expires, then the
expiry entry. Balances are sums of ledger entries (`balances`), never stored."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from domain.journeys import Coverage, day_after
from journeys.mdf.policy import ProofKind

JOURNEY = "mdf"
APPROVER_LEVEL = "approver_level"  # the grant (manifest `grants`) an ops key decides further levels with
APPROVER_GRANT = f"{JOURNEY}.{APPROVER_LEVEL}"  # what `Principal.grant` reads

# Messages (besides the shared CHANGE_COVERAGE and PROGRESS).
DECIDE = "decide"  # update: a decision on the request at the current approval level
RESUBMIT = "resubmit"  # update: the partner's changed request after a return
CHANGE_DATES = "change_dates"  # update: the partner moves its activity's dates
START_ACTIVITY = "start_activity"  # update: the partner says the activity started
SUBMIT_CLAIM = "submit_claim"  # update: the claim with its proof
ADD_PROOF = "add_proof"  # update: more proof for a returned claim
DECIDE_CLAIM = "decide_claim"  # update: a decision on the claim at the current level
RECORD_PAYMENT = "record_payment"  # update: ops record a payment


class MdfActivity:
    """Activity names of this journey."""

    RECORD_STATE = "mdf.record_state"
    RESERVE = "mdf.reserve"
    RECORD_PAYMENT = "mdf.record_payment"
    QUEUE_APPROVAL_REQUEST = "mdf.queue_approval_request"
    FUND_BALANCE = "mdf.fund_balance"
    EXPIRE_FUND = "mdf.expire_fund"


LEGACY_ACTIVITY_NAMES: dict[str, str] = {}  # a new journey: no names before per-journey names


class MdfState(StrEnum):
    pending_approval = "pending_approval"
    returned = "returned"  # back with the partner for changes
    approved = "approved"  # waiting for the activity to start
    running = "running"  # the activity started; the claim window opens at its end
    claim_review = "claim_review"
    claim_returned = "claim_returned"  # back with the partner for more proof
    claim_approved = "claim_approved"  # waiting for the payment cut-off
    due_for_payment = "due_for_payment"
    paid = "paid"
    rejected = "rejected"
    claim_denied = "claim_denied"
    expired = "expired"


OPEN_STATES = tuple(
    s for s in MdfState if s not in {MdfState.paid, MdfState.rejected, MdfState.claim_denied, MdfState.expired}
)
AWAITING_DECISION = (MdfState.pending_approval, MdfState.claim_review)


class Decision(StrEnum):
    approve = "approve"
    approve_lower = "approve_lower"  # a request: approved for less; a claim: approved in part
    reject = "reject"  # a request rejected; a claim denied
    return_ = "return"  # back to the partner: changes (request) or more proof (claim)


class EntryKind(StrEnum):
    allocation = "allocation"
    accrual = "accrual"
    adjustment = "adjustment"  # signed
    reservation = "reservation"
    release = "release"
    payment = "payment"
    expiry = "expiry"
    clawback = "clawback"
    claim = "claim"  # memo: an approved claim (moves no money)


ENTRY_KINDS: tuple[str, ...] = tuple(k.value for k in EntryKind)  # read per row by the reports


# ------------------------------------------------------------------ the ledger (pure)


@dataclass(frozen=True)
class Balances:
    allocated: int = 0
    accrued: int = 0
    adjusted: int = 0
    reserved: int = 0  # held for requests not yet paid or released
    claimed: int = 0
    paid: int = 0  # payments less clawbacks
    expired: int = 0

    @property
    def funded(self) -> int:
        return self.allocated + self.accrued + self.adjusted

    @property
    def available(self) -> int:
        """What can still be reserved: funded, less what is held, paid out of it, or expired."""
        return self.funded - self.reserved - self.paid_gross - self.expired

    paid_gross: int = 0  # payments (clawbacks do not make the money available again)


def balances(entries: Iterable[tuple[str, int]]) -> Balances:
    """Every balance of a fund from its entries `(kind, amount_minor)`; amounts are positive
    except adjustments (signed). Reservations are reduced by releases and by payments."""
    s: dict[str, int] = dict.fromkeys(ENTRY_KINDS, 0)
    for kind, amount in entries:
        if kind not in s:  # str values only: as EntryKind(kind) refuses it, without its cost per row
            raise ValueError(f"{kind!r} is not a ledger entry kind")
        s[kind] += amount
    return Balances(
        allocated=s["allocation"],
        accrued=s["accrual"],
        adjusted=s["adjustment"],
        reserved=s["reservation"] - s["release"] - s["payment"],
        claimed=s["claim"],
        paid=s["payment"] - s["clawback"],
        paid_gross=s["payment"],
        expired=s["expiry"],
    )


# ------------------------------------------------------------------ periods (pure)


@dataclass(frozen=True)
class Period:
    label: str  # e.g. 2026-Q4, 2026-11, 2026-H2, 2026
    starts_at: datetime
    ends_at: datetime  # exclusive


_MONTHS = {"month": 1, "quarter": 3, "half": 6, "year": 12}


def period_of(at: datetime, kind: str, tz: str) -> Period:
    """The funding period containing `at`, with its boundaries at midnight in the program's zone."""
    zone = ZoneInfo(tz)
    local = at.astimezone(zone)
    months = _MONTHS[kind]
    first = (local.month - 1) // months * months + 1
    start = date(local.year, first, 1)
    end = date(local.year + (first - 1 + months) // 12, (first - 1 + months) % 12 + 1, 1)
    label = {
        "month": f"{local.year}-{first:02d}",
        "quarter": f"{local.year}-Q{(first - 1) // 3 + 1}",
        "half": f"{local.year}-H{(first - 1) // 6 + 1}",
        "year": f"{local.year}",
    }[kind]
    return Period(label, datetime.combine(start, time(), zone), datetime.combine(end, time(), zone))


def period_named(label: str, kind: str, tz: str) -> Period:
    """The period of a label written by `period_of` (ValueError when it is not one of `kind`)."""
    try:
        year = int(label[:4])
        if kind == "year" and len(label) == 4:
            month = 1
        elif kind == "month" and len(label) == 7 and label[4] == "-":
            month = int(label[5:])
        elif kind == "quarter" and label[4:6] == "-Q" and len(label) == 7:
            month = (int(label[6]) - 1) * 3 + 1
        elif kind == "half" and label[4:6] == "-H" and len(label) == 7:
            month = (int(label[6]) - 1) * 6 + 1
        else:
            raise ValueError
        if not (2000 <= year <= 2099 and 1 <= month <= 12):
            raise ValueError
    except ValueError:
        example = period_of(datetime.now().astimezone(), kind, tz).label
        raise ValueError(f"{label!r} is not a {kind} period (e.g. {example})") from None
    period = period_of(datetime.combine(date(year, month, 1), time(12), ZoneInfo(tz)), kind, tz)
    if period.label != label:
        raise ValueError(f"{label!r} is not a {kind} period")
    return period


def next_cutoff(after: datetime, day: int, tz: str) -> datetime:
    """The next payment cut-off (midnight starting `day` of a month, program zone) after `after`."""
    local = after.astimezone(ZoneInfo(tz))
    year, month = local.year, local.month
    for _ in range(3):
        at = datetime.combine(date(year, month, day), time(), ZoneInfo(tz))
        if at > after:
            return at
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    raise AssertionError("a cut-off within three months")  # pragma: no cover


def end_of_day(d: date, tz: str) -> datetime:
    """The moment a day ends in the program's zone (the next midnight)."""
    return datetime.combine(day_after(d), time(), ZoneInfo(tz))


def convert(amount_minor: int, rate: str) -> int:
    """An amount in another currency to the program currency (banker's rounding, minor units)."""
    return int((Decimal(amount_minor) * Decimal(rate)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def reimbursable(total_cost_minor: int, partner_share_percent: float) -> int:
    """What the vendor pays of a cost once the partner's matching share is applied (rounded down)."""
    share = Decimal(str(partner_share_percent))
    return int(Decimal(total_cost_minor) * (Decimal(100) - share) // Decimal(100))


# ------------------------------------------------------------------ proof files (pure)

MIME_OF_KIND = {
    ProofKind.invoice: {"application/pdf", "image/png", "image/jpeg"},
    ProofKind.photo: {"image/png", "image/jpeg"},
    ProofKind.attendee_list: {"text/csv", "application/pdf"},
}


def sniff(data: bytes) -> str | None:
    """The file's type from its content, not its name: PDF, PNG, JPEG, or CSV (UTF-8 text with
    a comma or semicolon separated header); None for anything else."""
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    head = data[:65536]
    if not head or b"\x00" in head:
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as err:
        # A character cut by the 64 KiB window has at most its first 3 bytes in it; anything else is no CSV.
        if err.start < len(head) - 3 or err.reason != "unexpected end of data":
            return None
        text = head[: err.start].decode("utf-8")
    first = text.lstrip("\ufeff").split("\n", 1)[0]
    if ("," in first or ";" in first) and all(c.isprintable() or c in "\r\t" for c in first):
        return "text/csv"
    return None


FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(?:[.,][0-9]+)?")


def defuse_cell(value: str) -> str:
    """A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR first), written as
    text with a leading apostrophe (OWASP's CSV injection advice); a plain number stays as it is."""
    if value.startswith(FORMULA_LEADS) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def defuse_csv(data: bytes) -> bytes:
    """A CSV proof as reviewers download it: the same rows and cells, every formula-leading cell
    defused (a partner's attendee list could otherwise run `=HYPERLINK(...)` in the CAM's Excel)."""
    text = data.decode("utf-8", errors="replace")
    first = text.lstrip("\ufeff").split("\n", 1)[0]
    delimiter = ";" if ";" in first and "," not in first else ","
    newline = "\r\n" if "\r\n" in text[: len(first) + 2] else "\n"
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=newline)
    for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
        writer.writerow([defuse_cell(cell) for cell in row])
    return out.getvalue().encode("utf-8")


# ------------------------------------------------------------------ workflow contracts


class MdfInput(BaseModel):
    request_id: str
    partner_id: str
    partner_name: str
    coverage: Coverage
    fund_id: str
    period: str
    activity_type: str
    title: str
    planned_start: date
    planned_end: date
    amount_minor: int  # in the program currency: what is reserved
    currency: str
    requested_amount_minor: int  # as the partner asked, in `requested_currency`
    requested_currency: str
    exchange_rate: str | None = None
    partner_share_percent: float
    expected_outcomes: str = ""
    state: MdfState = MdfState.pending_approval
    policy_version: int | None = None


class MdfFundInput(BaseModel):
    fund_id: str
    partner_id: str
    partner_name: str
    coverage: Coverage
    period: str
    currency: str
    expires_at: datetime
    policy_version: int | None = None


class LinkScope(BaseModel):
    """What a one-click link was issued for: the journey takes it there and nowhere else."""

    level: int = Field(description="the approval level's index (links decide the first level, 0, only)")
    round: int = Field(description="the request's (or claim's) submission number")
    amount_minor: int = Field(description="the amount decided on")


class MdfDecision(BaseModel):
    """Update: a decision at the current level (request or claim)."""

    decision: Decision
    amount_minor: int | None = Field(None, gt=0, description="approve_lower: the amount approved")
    reason: str = Field("", max_length=1000)
    by: str
    approver_level: int | None = Field(
        None, description="an ops approver's highest level (1 = the first); None: the first level only"
    )
    link: LinkScope | None = Field(None, description="decided by a one-click link: what the link was issued for")


class Resubmission(BaseModel):
    """Update: the partner's request after it was returned for changes."""

    title: str
    planned_start: date
    planned_end: date
    amount_minor: int = Field(gt=0)
    expected_outcomes: str = ""
    by: str


class DateChange(BaseModel):
    planned_start: date
    planned_end: date
    by: str


class StartActivity(BaseModel):
    by: str


class ClaimSubmission(BaseModel):
    """Update: the claim (its proof already stored by the API, by id and kind)."""

    amount_minor: int = Field(gt=0)
    total_cost_minor: int = Field(gt=0)
    proof_kinds: list[ProofKind]
    by: str


class ProofAdded(BaseModel):
    proof_kinds: list[ProofKind]
    by: str


class Payment(BaseModel):
    reference: str = Field(min_length=1, max_length=100)
    amount_minor: int = Field(gt=0)
    paid_on: date
    by: str


class MdfAnswer(BaseModel):
    """The answer of every update: where the request stands afterwards."""

    request_id: str
    state: MdfState
    level: str | None = None  # the approval level now waiting, if any
    approved_minor: int | None = None
    claim_minor: int | None = None
    paid_minor: int = 0
    reserved_minor: int = 0


class LevelDecision(BaseModel):
    stage: str  # request | claim
    level: str
    decision: Decision
    amount_minor: int | None
    by: str
    reason: str
    at: datetime


class MdfProgress(BaseModel):
    request_id: str
    partner_id: str
    state: MdfState
    policy_version: int
    level: str | None
    levels: list[str]
    amount_minor: int
    approved_minor: int | None
    reserved_minor: int
    claim_minor: int | None
    approved_claim_minor: int | None
    paid_minor: int
    planned_start: date
    planned_end: date
    start_by: datetime | None
    claim_by: datetime | None
    decisions: list[LevelDecision]
    payments: list[Payment]


class MdfResult(BaseModel):
    request_id: str
    state: MdfState
    paid_minor: int


class MdfFundProgress(BaseModel):
    fund_id: str
    period: str
    expires_at: datetime
    warned: list[float]
    expired_minor: int | None


# ------------------------------------------------------------------ activity contracts


class MdfStateInput(BaseModel):
    idempotency_key: str
    request_id: str
    state: MdfState
    by: str
    reason: str | None = None
    amount_minor: int | None = None
    approved_minor: int | None = None
    claim_minor: int | None = None
    approved_claim_minor: int | None = None
    planned_start: date | None = None
    planned_end: date | None = None
    title: str | None = None
    memo_claim_minor: int | None = None  # write the `claim` memo entry of an approved claim
    awaiting_level: int | None = None  # pending_approval / claim_review: the level now deciding
    at: datetime


class ReserveInput(BaseModel):
    """Hold exactly `target_minor` for the request (reservation or release of the difference)."""

    idempotency_key: str
    request_id: str
    target_minor: int = Field(ge=0)
    by: str


class ReserveResult(BaseModel):
    ok: bool
    reserved_minor: int
    available_minor: int


class PaymentInput(BaseModel):
    idempotency_key: str
    request_id: str
    payment: Payment


class ApprovalRequestInput(BaseModel):
    """Queue the request to decide at a level; the first level gets signed one-click links."""

    idempotency_key: str
    request_id: str
    stage: str  # request | claim
    level: int
    approver: str  # "cam" or "ops"
    template: str
    link_valid_until: datetime
    round: int | None = None  # the submission the links are for (None: recorded before links carried it)
    amount_minor: int | None = None  # the amount decided on, signed into the links
    context: dict[str, Any] = Field(default_factory=dict)


class FundBalanceInput(BaseModel):
    fund_id: str


class FundBalance(BaseModel):
    available_minor: int
    reserved_minor: int


class ExpireFundInput(BaseModel):
    idempotency_key: str
    fund_id: str
    at: datetime


class ExpireFundResult(BaseModel):
    expired_minor: int


def money(amount_minor: int, currency: str) -> str:
    return f"{currency} {amount_minor / 100:,.2f}"


def describe(inp: dict[str, Any]) -> tuple[str, str]:
    """The static summary and details in the Temporal Web UI (encrypted by the codec), for a request
    journey or a fund journey."""
    if "request_id" not in inp:
        fund = MdfFundInput.model_validate(inp)
        return (
            f"MDF fund {fund.period} — {fund.partner_name} ({fund.coverage.tier.value})",
            f"**Fund** {fund.fund_id}  \n**Partner** {fund.partner_id}  \n"
            f"**Expires** {fund.expires_at:%Y-%m-%d %H:%M} UTC",
        )
    req = MdfInput.model_validate(inp)
    cam = f"CAM {req.coverage.cam_id}" if req.coverage.cam_id else "no CAM"
    asked = money(req.requested_amount_minor, req.requested_currency)
    return (
        f"MDF: {req.title} ({req.activity_type}), {asked} — {req.partner_name} ({req.coverage.tier.value}, {cam})",
        f"**Request** {req.request_id}  \n**Partner** {req.partner_id}  \n**Fund** {req.period}  \n"
        f"**Dates** {req.planned_start} to {req.planned_end}  \n**Reserved** {money(req.amount_minor, req.currency)}"
        + (f" (rate {req.exchange_rate})" if req.exchange_rate else "")
        + f"  \n**Policy version** {req.policy_version or 'current at start'}",
    )


def days_between(a: date, b: date) -> float:
    return (b - a) / timedelta(days=1)
