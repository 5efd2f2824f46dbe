"""The SQL statements and transactions a piece of code sends, captured on every engine of the process
(the pins of tests/kit/test_create_statements.py and tests/kit/test_notify_statements.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.engine import Engine


@contextmanager
def statements() -> Iterator[list[str]]:
    sent: list[str] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        sent.append(statement.split("\n")[0][:120])

    event.listen(Engine, "before_cursor_execute", capture)
    try:
        yield sent
    finally:
        event.remove(Engine, "before_cursor_execute", capture)


@contextmanager
def transactions() -> Iterator[list[str]]:
    """The transactions a piece of code begins (each a BEGIN and a COMMIT or ROLLBACK round trip)."""
    begun: list[str] = []

    def capture(conn):
        begun.append("BEGIN")

    event.listen(Engine, "begin", capture)
    try:
        yield begun
    finally:
        event.remove(Engine, "begin", capture)


@contextmanager
def autocommit_modes() -> Iterator[list[bool]]:
    """Whether each statement a piece of code sends runs autocommitted (no BEGIN and COMMIT sent)."""
    modes: list[bool] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        modes.append(conn.connection.dbapi_connection.autocommit)

    event.listen(Engine, "before_cursor_execute", capture)
    try:
        yield modes
    finally:
        event.remove(Engine, "before_cursor_execute", capture)


def sql_of(sent: list[str]) -> str:
    return "\n".join(f"  {s}" for s in sent)
