"""The MDF journey's proof files: reading uploads (checked by content, bounded, before anything
is stored), storing them (PostgreSQL or an S3 bucket), handing them to the journey with an update
(removed again if it refuses), and reading them back."""

from __future__ import annotations

import hashlib
import uuid
from typing import Protocol

from pydantic import BaseModel
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api import journeys
from api.auth import Principal
from core.settings import Settings
from domain.errors import Invalid, NotFound, Pending, TooLarge, Unavailable, Unsupported
from domain.policy import ProgramPolicy
from journeys.mdf.domain import JOURNEY, MIME_OF_KIND, MdfAnswer
from journeys.mdf.models import MdfProof, MdfRequest
from journeys.mdf.policy import ProofKind
from journeys.mdf.proofs import S3Store


class FileIn(Protocol):
    """An uploaded file as the router hands it over (e.g. Starlette's UploadFile)."""

    filename: str | None

    async def read(self, size: int = -1) -> bytes: ...


class Upload(BaseModel):
    kind: ProofKind
    filename: str
    content_type: str
    sha256: str
    data: bytes


async def read_uploads(files: list[tuple[ProofKind, FileIn]], policy: ProgramPolicy, needed: list[ProofKind]):
    """The files, checked before anything is stored: count, size per file and in total (413),
    type by content for its kind and the policy (415), the proof the activity type needs (422)."""
    rules = policy.mdf
    if not files and needed:
        raise Invalid(f"files: proof of kind {', '.join(k.value for k in needed)} is needed")
    if len(files) > rules.max_files:
        raise Invalid(f"files: at most {rules.max_files} files, not {len(files)}")
    out: list[Upload] = []
    total = 0
    for kind, upload in files:
        data = await upload.read(rules.max_file_bytes + 1)
        name = (upload.filename or "file").replace("\\", "/").rsplit("/", 1)[-1][:200] or "file"
        if len(data) > rules.max_file_bytes:
            raise TooLarge(f"{kind.value}: {name} is over {rules.max_file_bytes} bytes")
        total += len(data)
        if total > rules.max_total_bytes:
            raise TooLarge(f"files: together over {rules.max_total_bytes} bytes")
        sniffed = sniff_type(data)
        allowed = MIME_OF_KIND[kind] & set(rules.allowed_types)
        if sniffed not in allowed:
            what = f"its content is {sniffed}" if sniffed else "its content is not a PDF, PNG, JPEG or CSV file"
            raise Unsupported(f"{kind.value}: {name}: {what}; a {kind.value} may be {', '.join(sorted(allowed))}")
        out.append(
            Upload(kind=kind, filename=name, content_type=sniffed, sha256=hashlib.sha256(data).hexdigest(), data=data)
        )
    missing = [k.value for k in needed if k not in {u.kind for u in out}]
    if missing:
        raise Invalid(f"files: proof of kind {', '.join(missing)} is needed")
    return out


def sniff_type(data: bytes) -> str | None:
    from journeys.mdf.domain import sniff

    return sniff(data)


_STORES: dict[tuple, S3Store | None] = {}


def files_store(settings: Settings) -> S3Store | None:
    """The configured bucket (one client per configuration), or None: files stay in PostgreSQL."""
    key = (settings.proof_bucket, settings.s3_endpoint_url, settings.s3_region, settings.s3_access_key_id)
    if key not in _STORES:
        _STORES[key] = (
            settings.proof_bucket
            and S3Store(
                settings.proof_bucket,
                endpoint_url=settings.s3_endpoint_url,
                region=settings.s3_region,
                access_key_id=settings.s3_access_key_id,
                secret=settings.s3_secret_access_key,
            )
            or None
        )
    return _STORES[key]


async def store_proofs(
    session: AsyncSession, req: MdfRequest, uploads: list[Upload], by: str, settings: Settings
) -> list[MdfProof]:
    """The files' rows (and, with a bucket, their objects first), committed."""
    bucket = files_store(settings)
    proofs = []
    for u in uploads:
        proof = MdfProof(
            id=uuid.uuid4(),
            request_id=req.id,
            partner_id=req.partner_id,
            kind=u.kind.value,
            filename=u.filename,
            content_type=u.content_type,
            size_bytes=len(u.data),
            sha256=u.sha256,
            uploaded_by=by,
        )
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
            client,
            JOURNEY,
            request_id,
            update_name,
            arg,
            MdfAnswer,
            deadline=settings.update_deadline_seconds,
            progress=f"/mdf/requests/{request_id}",
        )
    except BaseException as err:
        if not isinstance(err, Pending):
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
        raise NotFound(f"no proof {proof_id} on MDF request {req.id}")
    return proof


async def proof_bytes(session: AsyncSession, proof: MdfProof, settings: Settings) -> bytes:
    if proof.storage == "s3" and proof.storage_key:
        bucket = files_store(settings)
        if bucket is None:
            raise Unavailable("this file is in the S3 bucket, and no bucket is configured (PROOF_BUCKET)")
        return await bucket.get(proof.storage_key)
    data = await session.scalar(select(MdfProof.data).where(MdfProof.id == proof.id))
    return data or b""
