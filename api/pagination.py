"""Keyset pagination for the list endpoints: `?after=<id of the last row of the previous page>`
continues after that row in the list's order, reading only the next page from an index however
deep the page (an `offset` reads and skips every row before it: bench/README.md)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Query
from sqlalchemy import Select, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from domain.errors import NotFound

AFTER = Query(
    None, description="keyset pagination: the id of the last row of the previous page (the list continues after it)"
)


async def after(session: AsyncSession, stmt: Select[Any], after_id: uuid.UUID | int | None, *order: Any) -> Select[Any]:
    """`stmt` continued after the row `after_id` of the table of `order` (its sort columns, the
    last one its id); 404 naming the parameter and the id when there is no such row."""
    if after_id is None:
        return stmt
    table = order[-1].class_
    position = (await session.execute(select(*order).where(order[-1] == after_id))).first()
    if position is None:
        raise NotFound(f"after: no {table.__tablename__[:-1]} with id {after_id}")
    return stmt.where(tuple_(*order) > tuple_(*position))
