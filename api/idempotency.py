"""`Idempotency-Key` on creating POSTs: a retried request returns the stored answer and
creates nothing twice. The record is written in the same transaction as the creation. Stored
answers keep no secret (the caller stores a redacted copy) and expire after `ANSWER_TTL`: an
expired answer is not replayed, and every new record purges the expired ones."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Principal
from domain.errors import Conflict, Invalid
from store.models import IdempotencyRecord

ANSWER_TTL = timedelta(hours=24)  # a client retries within minutes; a day covers any outage


class Idempotency:
    def __init__(self, session: AsyncSession, principal: Principal, key: str | None, path: str, body: BaseModel):
        if key is not None and not (1 <= len(key) <= 200 and key.isascii() and key.isprintable()):
            raise Invalid("Idempotency-Key header must be 1 to 200 printable ASCII characters")
        self.session, self.principal, self.key, self.path = session, principal, key, path
        self.request_hash = hashlib.sha256(f"{path}\n{body.model_dump_json()}".encode()).hexdigest()

    async def stored(self) -> IdempotencyRecord | None:
        """The stored answer when this key was used before (409 if for another request)."""
        if self.key is None:
            return None
        row = await self.session.get(IdempotencyRecord, (self.principal.key_id, self.key))
        if row is None or row.created_at < datetime.now(UTC) - ANSWER_TTL:  # expired: purged by the next record
            return None
        if row.request_hash != self.request_hash:
            raise Conflict(
                f"Idempotency-Key {self.key!r} was already used for a different "
                "request; use a new key for a new request",
            )
        return row

    async def remember(self, status_code: int, content: Any) -> None:
        """Add the answer to the caller's transaction (committed with the creation)."""
        if self.key is None:
            return
        await self.session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.created_at < datetime.now(UTC) - ANSWER_TTL)
        )
        self.session.add(
            IdempotencyRecord(
                api_key_id=self.principal.key_id,
                key=self.key,
                method="POST",
                path=self.path,
                request_hash=self.request_hash,
                status_code=status_code,
                response=content,
            )
        )
        await self.session.flush()

    async def forget(self) -> None:
        """Drop the record (used when a creation is compensated) so a retry can try again."""
        if self.key is None:
            return
        await self.session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.api_key_id == self.principal.key_id, IdempotencyRecord.key == self.key
            )
        )

    async def run(
        self,
        create: Callable[[], Awaitable[dict]],
        *,
        resume: Callable[[dict], Awaitable[None]] | None = None,
        status_code: int = 201,
    ) -> JSONResponse:
        """Create once. `create` writes, calls `remember` and commits, and returns the answer. A
        retry gets the stored answer (after `resume`, e.g. making sure its journey runs); a
        conflict raised while a concurrent request with the same key committed first gets that
        request's answer too."""
        if (row := await self.stored()) is not None:
            return await self._replay(row, resume)
        try:
            content = await create()
        except (Conflict, HTTPException, IntegrityError) as err:  # HTTPException: a router's own 409
            if isinstance(err, HTTPException) and err.status_code != 409:
                raise
            await self.session.rollback()
            if (row := await self.stored()) is not None:
                return await self._replay(row, resume)
            if isinstance(err, IntegrityError):
                raise Conflict("a concurrent request created the same thing; read it before retrying") from err
            raise
        return JSONResponse(status_code=status_code, content=content)

    async def _replay(self, row: IdempotencyRecord, resume: Callable[[dict], Awaitable[None]] | None) -> JSONResponse:
        if resume is not None and 200 <= row.status_code < 300:
            await resume(row.response)
        return JSONResponse(status_code=row.status_code, content=row.response, headers={"Idempotent-Replayed": "true"})
