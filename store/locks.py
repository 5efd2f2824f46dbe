"""One advisory-lock scheme for the whole program: a transaction-level PostgreSQL lock per
named resource, released at commit or rollback."""

from __future__ import annotations

import functools
import hashlib

from sqlalchemy import BigInteger, Select, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession


def lock_id(name: str) -> int:
    """A stable signed 64-bit id for a resource name, e.g. 'deal:domain:globex.com:network'."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


async def lock(session: AsyncSession, *names: str) -> None:
    """Take the transaction-level locks of `names`, always in the same order (no deadlock
    between two callers locking overlapping sets). One statement: PostgreSQL evaluates a select
    list from left to right."""
    idents = sorted({lock_id(n) for n in names})
    if idents:
        await session.execute(_locks(len(idents)), {f"l{n}": i for n, i in enumerate(idents)})


@functools.cache
def _locks(count: int) -> Select:
    """The statement taking `count` locks, their ids bound as l0, l1...: built once per count."""
    return select(
        *(func.pg_advisory_xact_lock(bindparam(f"l{n}", type_=BigInteger)).label(f"l{n}") for n in range(count))
    )
