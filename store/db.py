"""Engine and session factory. One `async_sessionmaker` per process; one session per unit of work."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, cast

from sqlalchemy import BindParameter, Executable, Table, bindparam, event
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

# A pooled connection idle for longer than this is pinged before it is handed out (a dead one is
# replaced); one used more recently is handed out as it is: a ping is a round trip to PostgreSQL
# on every checkout (a create checks out two), and a connection that worked a moment ago almost
# always still does. Should PostgreSQL go away within that moment, the request using it fails
# (503) and every pooled connection is dropped with it (SQLAlchemy invalidates the pool).
PING_AFTER_IDLE = 2.0  # seconds


def make_engine(database_url: str, **kwargs: Any) -> AsyncEngine:
    ping = kwargs.pop("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    engine = create_async_engine(database_url, **kwargs)
    if ping:
        _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: AsyncEngine) -> None:
    """`pool_pre_ping`, for the connections idle longer than `PING_AFTER_IDLE` only."""
    pool, dialect = engine.sync_engine.pool, engine.sync_engine.dialect

    def used(dbapi_connection: Any, record: Any, *_: Any) -> None:
        record.info["used_at"] = time.monotonic()

    def checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if time.monotonic() - record.info.get("used_at", 0.0) <= PING_AFTER_IDLE:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as err:  # as pool_pre_ping: every pooled connection is dropped, a new one tried
            raise InvalidatePoolError(f"pooled connection is gone: {err}") from err

    event.listen(pool, "connect", used)
    event.listen(pool, "checkin", used)
    event.listen(pool, "checkout", checkout)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def table_of(model: type) -> Table:
    """A mapped class's table: a statement written against it takes SQLAlchemy's Core path (an
    ORM INSERT is rebuilt by the session's bulk path on every call)."""
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


def bound(model: type, *columns: str) -> dict[str, BindParameter]:
    """For a statement built once (`functools.cache`) and sent with its values: each column of
    `model` named, as a bind parameter of the column's name and type (a JSONB or UUID value is
    then sent as such)."""
    table = table_of(model)
    return {c: bindparam(c, type_=table.c[c].type) for c in columns}


async def autocommit(session: AsyncSession) -> None:
    """Each statement of the session commits by itself: for a step whose writes are one statement
    (or each idempotent on its own), no BEGIN and COMMIT round trips. Only before the session's
    first statement (a transaction already open stays one)."""
    if not session.in_transaction():
        await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


async def poll(
    connect: Callable[[], AbstractAsyncContextManager[Any]],
    statement: Executable,
    params: Mapping[str, Any],
    done: Callable[[Any], bool],
    *,
    timeout: float,
    every: float,
) -> int | None:
    """Read the scalar `statement` every `every` seconds of real time (a connection or session
    from `connect` each look) until `done(value)`, for at most `timeout` seconds: the looks it
    took, or None when the time ran out."""
    ends, looks = time.monotonic() + timeout, 0
    while time.monotonic() < ends:
        looks += 1
        async with connect() as conn:
            value = (await conn.execute(statement, params)).scalar()
        if done(value):
            return looks
        await asyncio.sleep(every)
    return None
