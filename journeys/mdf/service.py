"""The MDF journey's service: funds (balances from the ledger), requests with their atomic
reservation, decisions, claims with proof files (checked by content, bounded), payments,
clawbacks, reports, and the one-click decision links. The router only translates HTTP."""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TypeVar

from fastapi import HTTPException, UploadFile
from pydantic import BaseModel
from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api import journeys, links
from api.auth import Principal, scope_to_principal
from api.deps import Creation, load_partner
from api.idempotency import Idempotency
from api.links import LinkRefused
from core.settings import Settings
from domain.enums import Role
from domain.journeys import PROGRESS
from domain.policy import ProgramPolicy
from journeys.deal import contract as deal
from journeys.mdf import ledger
from journeys.mdf.domain import (
    APPROVER_GRANT,
    AWAITING_DECISION,
    DECIDE,
    DECIDE_CLAIM,
    JOURNEY,
    MIME_OF_KIND,
    EntryKind,
    LinkScope,
    MdfAnswer,
    MdfDecision,
    MdfInput,
    MdfProgress,
    MdfState,
    convert,
    days_between,
    defuse_cell,
    money,
)
from journeys.mdf.links import DECISION, MdfLinkClaims
from journeys.mdf.models import MdfEntry, MdfFund, MdfProof, MdfRequest
from journeys.mdf.policy import ProofKind
from journeys.mdf.proofs import S3Store
from journeys.mdf.schemas import (
    BalancesOut,
    ClawbackOut,
    EntryOut,
    FundOut,
    FundsOut,
    MdfCreate,
    MdfDetailOut,
    MdfOut,
    RoiRow,
    UtilizationRow,
)
from store import repo
from store.models import Partner

log = logging.getLogger(__name__)
R = TypeVar("R")


async def request_for(session: AsyncSession, request_id: uuid.UUID, principal: Principal) -> tuple[MdfRequest, Partner]:
    """The request (404) and its partner, if the caller may act on it (403)."""
    req = await session.get(MdfRequest, request_id)
    if req is None:
        raise HTTPException(404, detail=f"no MDF request with id {request_id}")
    return req, await load_partner(session, req.partner_id, principal)


async def start_fund_soon(session: AsyncSession, client: Client, fund: MdfFund) -> None:
    """Start the fund's journey now if it is not running; when Temporal does not answer, the
    reconciler starts it (its record is committed)."""
    try:
        await journeys.ensure_started(session, client, ledger.fund_workflow_id(fund.partner_id, fund.period))
    except HTTPException as err:
        log.warning("the journey of fund %s will be started by the reconciler (%s)", fund.id, err.detail)


async def open_fund(
    session: AsyncSession, partner: Partner, period: str | None, task_queue: str
) -> tuple[MdfFund, ProgramPolicy]:
    current = await repo.current_policy(session)
    try:
        fund = await ledger.ensure_fund(
            session, partner, current.policy, policy_version=current.version, task_queue=task_queue, period=period
        )
    except ValueError as err:
        raise HTTPException(422, detail=f"period: {err}") from err
    if datetime.now(UTC) >= fund.expires_at:
        raise HTTPException(409, detail=f"the {fund.period} fund expired on {fund.expires_at:%Y-%m-%d %H:%M} UTC")
    return fund, current.policy


# ------------------------------------------------------------------ funds


def balances_out(fund: MdfFund, b: ledger.Balances) -> BalancesOut:
    return BalancesOut(
        allocated_minor=b.allocated,
        accrued_minor=b.accrued,
        adjusted_minor=b.adjusted,
        funded_minor=b.funded,
        reserved_minor=b.reserved,
        claimed_minor=b.claimed,
        paid_minor=b.paid,
        expired_minor=b.expired,
        available_minor=b.available,
        expiring_minor=max(b.available, 0) if b.expired == 0 else 0,
    )


async def funds(session: AsyncSession, client: Client, partner: Partner, task_queue: str) -> FundsOut:
    """The partner's funds, newest first, each with its balances and the entries behind them. The
    current period's fund is opened on first sight (its allocation from the policy)."""
    current = await repo.current_policy(session)
    fund = await ledger.ensure_fund(
        session, partner, current.policy, policy_version=current.version, task_queue=task_queue
    )
    await session.commit()
    await start_fund_soon(session, client, fund)
    rows = (
        await session.scalars(
            select(MdfFund).where(MdfFund.partner_id == partner.id).order_by(MdfFund.starts_at.desc())
        )
    ).all()
    out = []
    for f in rows:
        entries = (await session.scalars(select(MdfEntry).where(MdfEntry.fund_id == f.id).order_by(MdfEntry.id))).all()
        b = ledger.balances((e.kind, e.amount_minor) for e in entries)
        out.append(
            FundOut(
                id=f.id,
                period=f.period,
                currency=f.currency,
                starts_at=f.starts_at,
                ends_at=f.ends_at,
                expires_at=f.expires_at,
                balances=balances_out(f, b),
                entries=[EntryOut.model_validate(e) for e in entries],
            )
        )
    return FundsOut(partner_id=partner.id, currency=current.policy.mdf.currency, funds=out)


async def add_fund_entry(
    ctx: Creation, partner: Partner, kind: EntryKind, amount: int, reason: str, period: str | None, idem: Idempotency
) -> dict:
    """Ops allocate more or adjust a fund (with a reason). A negative adjustment cannot take more
    than is available."""
    session = ctx.session
    fund, _ = await open_fund(session, partner, period, ctx.settings.task_queue)
    await ledger.lock_fund(session, fund.id)
    if amount < 0:
        available = (await ledger.fund_balances(session, fund.id)).available
        if -amount > available:
            raise HTTPException(
                409,
                detail=f"the {fund.period} fund has {money(available, fund.currency)} available: "
                f"an adjustment of {money(amount, fund.currency)} would take it below zero",
            )
    await ledger.add_entry(session, fund, kind, amount, key=None, by=ctx.principal.actor, reason=reason)
    await repo.claim_step(
        session,
        key=None,
        actor=ctx.principal.actor,
        action=f"mdf.{kind.value}",
        partner_id=partner.id,
        journey=JOURNEY,
        detail={"fund_id": str(fund.id), "period": fund.period, "amount_minor": amount, "reason": reason},
    )
    b = await ledger.fund_balances(session, fund.id)
    out = {"fund_id": str(fund.id), "period": fund.period, **balances_out(fund, b).model_dump()}
    await idem.remember(201, out)
    await session.commit()
    await start_fund_soon(session, ctx.temporal, fund)
    return out


# ------------------------------------------------------------------ requests


def check_dates(body, policy: ProgramPolicy) -> None:
    if body.planned_end < body.planned_start:
        raise HTTPException(422, detail="planned_end: the activity cannot end before it starts")
    if days_between(body.planned_start, body.planned_end) > policy.mdf.max_activity_days:
        raise HTTPException(422, detail=f"planned_end: an activity lasts at most {policy.mdf.max_activity_days:g} days")


async def create_request(ctx: Creation, body: MdfCreate, partner: Partner, idem: Idempotency) -> dict:
    """Validate against the policy, reserve the amount in the fund (atomically: 409 naming what is
    available), write the request and its journey record, then start `mdf-{request_id}`."""
    session, principal = ctx.session, ctx.principal
    current = await repo.current_policy(session)
    rules = current.policy.mdf
    kind = rules.activity_type(body.activity_type)
    if kind is None:
        known = ", ".join(t.key for t in rules.activity_types)
        raise HTTPException(422, detail=f"activity_type: {body.activity_type!r} is not in the catalog ({known})")
    check_dates(body, current.policy)
    rate = None
    amount = body.amount_minor
    if body.currency != rules.currency:
        rate = rules.exchange_rates.get(body.currency)
        if rate is None:
            raise HTTPException(
                422,
                detail=f"currency: no exchange rate from {body.currency} to {rules.currency} in the policy "
                "(ops set mdf.exchange_rates)",
            )
        amount = convert(body.amount_minor, rate)
    fund, _ = await open_fund(session, partner, body.period, ctx.settings.task_queue)
    if await idem.stored() is not None:
        raise HTTPException(409, detail="a concurrent retry of this request was answered")
    req = MdfRequest(
        id=uuid.uuid4(),
        partner_id=partner.id,
        fund_id=fund.id,
        period=fund.period,
        activity_type=kind.key,
        title=body.title,
        planned_start=body.planned_start,
        planned_end=body.planned_end,
        amount_minor=amount,
        currency=rules.currency,
        requested_amount_minor=body.amount_minor,
        requested_currency=body.currency,
        exchange_rate=rate,
        partner_share_percent=kind.partner_share_percent,
        expected_outcomes=body.expected_outcomes,
        state=MdfState.pending_approval.value,
        awaiting_level=0,
        paid_minor=0,
        created_by=principal.actor,
    )
    session.add(req)
    await session.flush()
    ok, _, available = await ledger.reserve(
        session, fund, req.id, amount, key=f"{journeys.workflow_id(JOURNEY, req.id)}:reserved", by=principal.actor
    )
    if not ok:
        raise HTTPException(
            409,
            detail=f"the {fund.period} fund has {money(available, fund.currency)} available: "
            f"{money(amount, fund.currency)} cannot be reserved",
        )
    start = journeys.start_input(
        MdfInput, req, partner, request_id=str(req.id), fund_id=str(fund.id), policy_version=current.version
    )
    detail = {
        "request_id": str(req.id),
        "title": body.title,
        "amount_minor": amount,
        "period": fund.period,
        "exchange_rate": rate,
    }
    new = journeys.NewJourney(JOURNEY, req, partner.id, req.state, start, "mdf.requested", detail)
    out = await journeys.create_and_start(ctx, new, answer=MdfOut, idem=idem, what="requested")
    await start_fund_soon(session, ctx.temporal, fund)
    return out


async def list_requests(
    session: AsyncSession,
    principal: Principal,
    *,
    partner_id: uuid.UUID | None,
    cam_id: uuid.UUID | None,
    state: MdfState | None,
    period: str | None,
    awaiting_me: bool,
    limit: int,
    offset: int,
) -> Sequence[MdfRequest]:
    stmt = select(MdfRequest).join(Partner, Partner.id == MdfRequest.partner_id)
    stmt = scope_to_principal(stmt, principal, MdfRequest.partner_id)
    if partner_id:
        stmt = stmt.where(MdfRequest.partner_id == partner_id)
    if cam_id:
        stmt = stmt.where(Partner.cam_id == cam_id)
    if state:
        stmt = stmt.where(MdfRequest.state == state.value)
    if period:
        stmt = stmt.where(MdfRequest.period == period)
    if awaiting_me:
        awaiting = MdfRequest.state.in_([s.value for s in AWAITING_DECISION])
        if principal.role == Role.partner:
            return []
        if principal.role == Role.cam:
            stmt = stmt.where(awaiting, MdfRequest.awaiting_level == 0)
        else:  # ops: the first level of partners without a CAM, and the further levels the key may decide
            further = and_(
                MdfRequest.awaiting_level >= 1, MdfRequest.awaiting_level < (principal.grant(APPROVER_GRANT) or 1)
            )
            stmt = stmt.where(awaiting, or_(and_(MdfRequest.awaiting_level == 0, Partner.cam_id.is_(None)), further))
    stmt = stmt.order_by(MdfRequest.created_at, MdfRequest.id).limit(limit).offset(offset)
    return (await session.scalars(stmt)).all()


async def detail(session: AsyncSession, client: Client, req: MdfRequest) -> MdfDetailOut:
    out = MdfDetailOut.model_validate(req)
    await session.close()  # hold no connection while the journey answers
    try:
        out.progress = await journeys.query(client, JOURNEY, req.id, PROGRESS, MdfProgress, deadline=5)
    except HTTPException:
        out.progress = None
    return out


async def update(
    session: AsyncSession,
    client: Client,
    principal: Principal,
    request_id: uuid.UUID,
    update_name: str,
    arg: BaseModel,
    result_type: type[R],
    *,
    deadline: float,
    decision: bool = False,
) -> R:
    """A workflow update on a request the caller may act on (a decision: never the partner's own)."""
    await request_for(session, request_id, principal)
    if decision and principal.role == Role.partner:
        raise HTTPException(403, detail="a partner cannot decide on its own MDF request or claim")
    await session.close()
    return await journeys.run_update(
        client,
        JOURNEY,
        request_id,
        update_name,
        arg,
        result_type,
        deadline=deadline,
        progress=f"/mdf/requests/{request_id}",
    )


def decision_of(principal: Principal, decision, amount_minor, reason: str) -> MdfDecision:
    return MdfDecision(
        decision=decision,
        amount_minor=amount_minor,
        reason=reason,
        by=principal.actor,
        approver_level=principal.grant(APPROVER_GRANT) if principal.role == Role.ops else None,
    )


# ------------------------------------------------------------------ proof files


class Upload(BaseModel):
    kind: ProofKind
    filename: str
    content_type: str
    sha256: str
    data: bytes


async def read_uploads(files: list[tuple[ProofKind, UploadFile]], policy: ProgramPolicy, needed: list[ProofKind]):
    """The files, checked before anything is stored: count, size per file and in total (413),
    type by content for its kind and the policy (415), the proof the activity type needs (422)."""
    rules = policy.mdf
    if not files and needed:
        raise HTTPException(422, detail=f"files: proof of kind {', '.join(k.value for k in needed)} is needed")
    if len(files) > rules.max_files:
        raise HTTPException(422, detail=f"files: at most {rules.max_files} files, not {len(files)}")
    out: list[Upload] = []
    total = 0
    for kind, upload in files:
        data = await upload.read(rules.max_file_bytes + 1)
        name = (upload.filename or "file").replace("\\", "/").rsplit("/", 1)[-1][:200] or "file"
        if len(data) > rules.max_file_bytes:
            raise HTTPException(413, detail=f"{kind.value}: {name} is over {rules.max_file_bytes} bytes")
        total += len(data)
        if total > rules.max_total_bytes:
            raise HTTPException(413, detail=f"files: together over {rules.max_total_bytes} bytes")
        sniffed = sniff_type(data)
        allowed = MIME_OF_KIND[kind] & set(rules.allowed_types)
        if sniffed not in allowed:
            what = f"its content is {sniffed}" if sniffed else "its content is not a PDF, PNG, JPEG or CSV file"
            raise HTTPException(
                415, detail=f"{kind.value}: {name}: {what}; a {kind.value} may be {', '.join(sorted(allowed))}"
            )
        out.append(
            Upload(kind=kind, filename=name, content_type=sniffed, sha256=hashlib.sha256(data).hexdigest(), data=data)
        )
    missing = [k.value for k in needed if k not in {u.kind for u in out}]
    if missing:
        raise HTTPException(422, detail=f"files: proof of kind {', '.join(missing)} is needed")
    return out


def sniff_type(data: bytes) -> str | None:
    from journeys.mdf.domain import sniff

    return sniff(data)


_STORES: dict[tuple, S3Store | None] = {}


def files_store(settings: Settings) -> S3Store | None:
    """The configured bucket (one client per configuration), or None: files stay in PostgreSQL."""
    key = (settings.proof_bucket, settings.s3_endpoint_url, settings.s3_region, settings.s3_access_key_id)
    if key not in _STORES:
        _STORES[key] = settings.proof_bucket and S3Store(
            settings.proof_bucket, endpoint_url=settings.s3_endpoint_url, region=settings.s3_region,
            access_key_id=settings.s3_access_key_id, secret=settings.s3_secret_access_key,
        ) or None  # fmt: skip
    return _STORES[key]


async def store_proofs(
    session: AsyncSession, req: MdfRequest, uploads: list[Upload], by: str, settings: Settings
) -> list[MdfProof]:
    """The files' rows (and, with a bucket, their objects first), committed."""
    bucket = files_store(settings)
    proofs = []
    for u in uploads:
        proof = MdfProof(
            id=uuid.uuid4(), request_id=req.id, partner_id=req.partner_id, kind=u.kind.value, filename=u.filename,
            content_type=u.content_type, size_bytes=len(u.data), sha256=u.sha256, uploaded_by=by,
        )  # fmt: skip
        if bucket is not None:
            proof.storage, proof.storage_key = "s3", f"mdf/{req.id}/{proof.id}"
            await bucket.put(proof.storage_key, u.data, u.content_type, u.sha256)
        else:
            proof.storage, proof.data = "db", u.data
        session.add(proof)
        proofs.append(proof)
    await session.commit()
    return proofs


async def with_proofs(
    session: AsyncSession,
    client: Client,
    req: MdfRequest,
    uploads: list[Upload],
    principal: Principal,
    update_name: str,
    arg: BaseModel,
    *,
    settings: Settings,
) -> MdfAnswer:
    """Store the files, then ask the journey; a refusal (or no answer at all) removes the files again,
    so nothing is half-written."""
    proofs = await store_proofs(session, req, uploads, principal.actor, settings)
    keys = [(p.id, p.storage_key) for p in proofs]
    request_id = req.id
    try:
        answer = await journeys.run_update(
            client, JOURNEY, request_id, update_name, arg, MdfAnswer, deadline=settings.update_deadline_seconds,
            progress=f"/mdf/requests/{request_id}",
        )  # fmt: skip
    except BaseException as err:
        if not (isinstance(err, HTTPException) and err.status_code == 202):
            async with session.begin():
                await session.execute(delete(MdfProof).where(MdfProof.id.in_([i for i, _ in keys])))
            bucket = files_store(settings)
            for _, key in keys:
                if bucket is not None and key is not None:
                    await bucket.delete(key)
        raise
    return answer


def fingerprint(fields: dict, uploads: list[Upload]) -> BaseModel:
    """What an Idempotency-Key is bound to for a multipart request: its fields and its files' hashes."""

    class Fingerprint(BaseModel):
        fields: dict
        files: list[tuple[str, str, str]]

    return Fingerprint(fields=fields, files=[(u.kind.value, u.filename, u.sha256) for u in uploads])


async def proof_for(session: AsyncSession, req: MdfRequest, proof_id: uuid.UUID) -> MdfProof:
    proof = await session.get(MdfProof, proof_id)
    if proof is None or proof.request_id != req.id:
        raise HTTPException(404, detail=f"no proof {proof_id} on MDF request {req.id}")
    return proof


async def proof_bytes(session: AsyncSession, proof: MdfProof, settings: Settings) -> bytes:
    if proof.storage == "s3" and proof.storage_key:
        bucket = files_store(settings)
        if bucket is None:
            raise HTTPException(503, detail="this file is in the S3 bucket, and no bucket is configured (PROOF_BUCKET)")
        return await bucket.get(proof.storage_key)
    data = await session.scalar(select(MdfProof.data).where(MdfProof.id == proof.id))
    return data or b""


# ------------------------------------------------------------------ clawbacks


async def clawback(
    session: AsyncSession, principal: Principal, req: MdfRequest, amount: int, reason: str, policy: ProgramPolicy
) -> ClawbackOut:
    """Ops recover paid funds within the policy's audit period (an entry, with a reason)."""
    if req.state != MdfState.paid.value or req.paid_at is None:
        raise HTTPException(409, detail=f"MDF request is {req.state}: only a paid request can be clawed back")
    if datetime.now(UTC) > req.paid_at + policy.days(policy.mdf.audit_days):
        raise HTTPException(409, detail=f"the audit period ({policy.mdf.audit_days:g} days after payment) has ended")
    fund = await session.get(MdfFund, req.fund_id)
    assert fund is not None
    await ledger.lock_fund(session, fund.id)
    clawed = (
        await session.scalar(
            select(func.coalesce(func.sum(MdfEntry.amount_minor), 0)).where(
                MdfEntry.request_id == req.id, MdfEntry.kind == EntryKind.clawback.value
            )
        )
        or 0
    )
    if amount > req.paid_minor - clawed:
        raise HTTPException(
            422,
            detail=f"amount_minor: {money(req.paid_minor - clawed, req.currency)} of the payments remain to claw back",
        )
    await ledger.add_entry(
        session, fund, EntryKind.clawback, amount, key=None, by=principal.actor, request_id=req.id, reason=reason
    )
    await repo.claim_step(
        session,
        key=None,
        actor=principal.actor,
        action="mdf.clawback",
        partner_id=req.partner_id,
        journey=JOURNEY,
        detail={"request_id": str(req.id), "amount_minor": amount, "reason": reason},
    )
    return ClawbackOut(
        request_id=req.id, amount_minor=amount, paid_minor=req.paid_minor, clawed_back_minor=clawed + amount
    )


# ------------------------------------------------------------------ reports


async def utilization(
    session: AsyncSession, principal: Principal, *, period: str | None, partner_id: uuid.UUID | None
) -> list[UtilizationRow]:
    # The funds asked for: the sums below read only their entries and requests, not the whole
    # ledger (a CAM's portfolio at 10,000 partners: bench/README.md).
    funds = scope_to_principal(
        select(MdfFund.id).join(Partner, Partner.id == MdfFund.partner_id), principal, MdfFund.partner_id
    )
    if period:
        funds = funds.where(MdfFund.period == period)
    if partner_id:
        funds = funds.where(MdfFund.partner_id == partner_id)
    sums = (
        select(
            MdfEntry.fund_id,
            *[
                func.coalesce(func.sum(MdfEntry.amount_minor).filter(MdfEntry.kind == k.value), 0).label(k.value)
                for k in EntryKind
            ],
        )
        .where(MdfEntry.fund_id.in_(funds))
        .group_by(MdfEntry.fund_id)
        .subquery()
    )
    asked = (
        select(
            MdfRequest.fund_id,
            func.sum(MdfRequest.amount_minor).label("requested"),
            func.coalesce(func.sum(MdfRequest.approved_minor), 0).label("approved"),
        )
        .where(MdfRequest.fund_id.in_(funds))
        .group_by(MdfRequest.fund_id)
        .subquery()
    )
    stmt = (
        select(MdfFund, Partner.name, sums, asked.c.requested, asked.c.approved)
        .join(Partner, Partner.id == MdfFund.partner_id)
        .outerjoin(sums, sums.c.fund_id == MdfFund.id)
        .outerjoin(asked, asked.c.fund_id == MdfFund.id)
        .order_by(MdfFund.period.desc(), Partner.name, MdfFund.id)
    )
    stmt = scope_to_principal(stmt, principal, MdfFund.partner_id)
    if period:
        stmt = stmt.where(MdfFund.period == period)
    if partner_id:
        stmt = stmt.where(MdfFund.partner_id == partner_id)
    out = []
    for row in (await session.execute(stmt.limit(10_000))).all():
        fund, name = row[0], row[1]
        m = row._mapping
        b = ledger.balances((k.value, int(m[k.value] or 0)) for k in EntryKind)
        out.append(
            UtilizationRow(
                partner_id=fund.partner_id,
                partner_name=name,
                period=fund.period,
                currency=fund.currency,
                allocated_minor=b.allocated,
                requested_minor=int(m["requested"] or 0),
                approved_minor=int(m["approved"] or 0),
                claimed_minor=b.claimed,
                paid_minor=b.paid,
                expired_minor=b.expired,
                utilization_percent=round(100 * b.paid / b.funded, 2) if b.funded > 0 else None,
            )
        )
    return out


async def roi(
    session: AsyncSession, principal: Principal, *, period: str | None, partner_id: uuid.UUID | None
) -> list[RoiRow]:
    won = deal.won_by_mdf_request()
    stmt = (
        select(
            MdfRequest.partner_id,
            Partner.name,
            MdfRequest.period,
            MdfRequest.currency,
            func.sum(MdfRequest.paid_minor),
            func.coalesce(func.sum(won.c.won), 0),
        )
        .join(Partner, Partner.id == MdfRequest.partner_id)
        .outerjoin(won, won.c.mdf_request_id == MdfRequest.id)
        .group_by(MdfRequest.partner_id, Partner.name, MdfRequest.period, MdfRequest.currency)
        .order_by(MdfRequest.period.desc(), Partner.name)
    )
    stmt = scope_to_principal(stmt, principal, MdfRequest.partner_id)
    if period:
        stmt = stmt.where(MdfRequest.period == period)
    if partner_id:
        stmt = stmt.where(MdfRequest.partner_id == partner_id)
    return [
        RoiRow(
            partner_id=pid,
            partner_name=name,
            period=p,
            currency=cur,
            paid_minor=int(paid),
            won_revenue_minor=int(w),
            roi=round(int(w) / int(paid), 2) if paid else None,
        )
        for pid, name, p, cur, paid, w in (await session.execute(stmt.limit(10_000))).all()
    ]


def as_csv(rows: Sequence[BaseModel], model: type[BaseModel]) -> str:
    buf = io.StringIO()
    fields = list(model.model_fields)
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    for row in rows:
        values = row.model_dump(mode="json")
        # A cell that a spreadsheet would run as a formula is written as text.
        writer.writerow({k: defuse_cell(v) if isinstance(v, str) else v for k, v in values.items()})
    return buf.getvalue()


# ------------------------------------------------------------------ one-click links (the token is the credential)


RELEASED = (422, 504)  # not taken by the journey (no worker in time) or a reason it refused: usable again


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
        decision=decision, by=claims.approver, reason=reason.strip() or f"{decision} by one-click link",
        link=LinkScope(level=claims.level, round=claims.round, amount_minor=claims.amount_minor),
    )  # fmt: skip
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
    except HTTPException as err:
        if err.status_code in RELEASED:  # not taken: the link may be used again
            await links.release(session, claims)
        raise LinkRefused(err.status_code, str(err.detail)) from err
