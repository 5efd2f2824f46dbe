"""One advisory-lock scheme for the whole program: a transaction-level PostgreSQL lock per
named resource, released at commit or rollback."""

from __future__ import annotations

import functools
import hashlib

from sqlalchemy import BigInteger, ColumnElement, Select, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession


def lock_id(name: str) -> int:
    """A stable signed 64-bit id for a resource name, e.g. 'deal:domain:globex.com:network'."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


async def lock(session: AsyncSession, *names: str) -> None:
    """Take the transaction-level locks of `names`, always in the same order (no deadlock
    between two callers locking overlapping sets). One statement: PostgreSQL evaluates a select
    list from left to right."""
    if names:
        await session.execute(_locks(len(names)), lock_params(*names))


def lock_params(*names: str) -> dict[str, int]:
    """The ids of `names`' locks bound as l0, l1... in the one order every caller takes them
    (`taking(len(names))`'s values; a name twice, or two names of one id, take a lock again,
    which PostgreSQL allows)."""
    return {f"l{n}": i for n, i in enumerate(sorted(lock_id(name) for name in names))}


def taking(count: int) -> list[ColumnElement]:
    """A select list's columns taking `count` locks (ids bound as l0, l1...), left to right: for
    a statement that takes its transaction's locks while it reads something else. What the
    transaction reads in its later statements, it reads under the locks."""
    return [func.pg_advisory_xact_lock(bindparam(f"l{n}", type_=BigInteger)).label(f"l{n}") for n in range(count)]


@functools.cache
def _locks(count: int) -> Select:
    """The statement taking `count` locks: built once per count."""
    return select(*taking(count))
