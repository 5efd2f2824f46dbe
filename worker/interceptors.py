"""What the worker does around every activity: a database that is down or unreachable is a
transient failure reported in one short line (ops read it in `GET /ops/retrying` and the Web UI;
a full SQLAlchemy/psycopg trace is over Temporal's size limit for a pending activity's failure),
as is any other error the database answers (retried: e.g. a trigger or a lock timeout).
Data the database refuses (too long, out of range, invalid) is a permanent failure: retrying
cannot help, so it is non-retryable and the journey waits for ops (`needs_attention`).

A step being retried (its second attempt or later) is recorded in `retrying_steps` and removed
when it succeeds: ops find a stuck journey by that index, not by describing every running one.
A first attempt that succeeds (nearly every step) costs nothing; the record is best effort (with
the database down it is written at the first attempt after it is back)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import delete, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from store.models.ops import RetryingStep

log = logging.getLogger(__name__)
INDEX_SECONDS = 2.0  # the most a step waits for its retrying record


def _unavailable(err: BaseException) -> bool:
    if isinstance(err, OperationalError | InterfaceError):
        return True
    return isinstance(err, DBAPIError) and bool(err.connection_invalidated)


class _DatabaseErrors(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await super().execute_activity(input)
        except Exception as err:
            first_line = str(getattr(err, "orig", None) or err).strip().splitlines()[0][:300]
            if isinstance(err, DataError):
                raise ApplicationError(
                    f"the database refused the data: {first_line}", type="BadData", non_retryable=True
                ) from None
            if _unavailable(err):
                raise ApplicationError(f"database unavailable: {first_line}", type="DatabaseUnavailable") from None
            if isinstance(err, DBAPIError):  # any other refusal: retried, reported in one line too
                raise ApplicationError(f"database error: {first_line}", type=type(err).__name__) from None
            raise


class DatabaseErrorInterceptor(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _DatabaseErrors(next)


class _RetryingSteps(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, sessionmaker: async_sessionmaker[AsyncSession]):
        super().__init__(next)
        self.sessionmaker = sessionmaker

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        indexed = info.attempt >= 2 and bool(info.workflow_id) and not info.is_local
        if indexed:
            await self._index(
                insert(RetryingStep)
                .values(
                    workflow_id=info.workflow_id,
                    activity_id=info.activity_id,
                    run_id=info.workflow_run_id or "",
                    activity=info.activity_type,
                    failing_since=info.scheduled_time,
                )
                .on_conflict_do_update(
                    index_elements=[RetryingStep.workflow_id, RetryingStep.activity_id],
                    set_={"run_id": info.workflow_run_id or "", "updated_at": func.now()},
                )
            )
        result = await super().execute_activity(input)
        if indexed:
            await self._index(
                delete(RetryingStep).where(
                    RetryingStep.workflow_id == info.workflow_id, RetryingStep.activity_id == info.activity_id
                )
            )
        return result

    async def _index(self, stmt: Any) -> None:
        try:
            async with asyncio.timeout(INDEX_SECONDS), self.sessionmaker() as session:
                await session.execute(stmt)
                await session.commit()
        except Exception as err:  # the index never fails a step; `GET /ops/retrying` checks what it lists
            log.warning("retrying steps: not recorded (%s)", str(err).splitlines()[0][:200] if str(err) else err)


class RetryingStepsInterceptor(Interceptor):
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]):
        self.sessionmaker = sessionmaker

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _RetryingSteps(next, self.sessionmaker)
