"""What the worker does around every activity: a database that is down or unreachable is a
transient failure reported in one short line (ops read it in `GET /ops/retrying` and the Web UI;
a full SQLAlchemy/psycopg trace is over Temporal's size limit for a pending activity's failure).
Data the database refuses (too long, out of range, invalid) is a permanent failure: retrying
cannot help, so it is non-retryable and the journey waits for ops (`needs_attention`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from temporalio.exceptions import ApplicationError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor


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
            if not _unavailable(err):
                raise
            raise ApplicationError(f"database unavailable: {first_line}", type="DatabaseUnavailable") from None


class DatabaseErrorInterceptor(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _DatabaseErrors(next)
