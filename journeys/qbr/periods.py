"""Periods of the QBR journey: a quarter such as `2027-Q1`, its bounds and due times in the
program's time zone, and the cadence of the reviews."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from domain.journeys import day_after

PERIOD = r"^20[0-9]{2}-Q[1-4]$"  # a quarter of the years 2000 to 2099 (the horizon of the edge's dates)
_PERIOD = re.compile(PERIOD)


def check_period(period: str) -> str:
    if not _PERIOD.fullmatch(period):
        raise ValueError(f"period must look like 2027-Q1, not {period!r}")
    return period


def _split(period: str) -> tuple[int, int]:
    check_period(period)
    return int(period[:4]), int(period[-1])


def period_of(moment: datetime, tz: str) -> str:
    local = moment.astimezone(ZoneInfo(tz))
    return f"{local.year}-Q{(local.month - 1) // 3 + 1}"


def shift(period: str, quarters: int) -> str:
    year, q = _split(period)
    n = year * 4 + (q - 1) + quarters
    return f"{n // 4}-Q{n % 4 + 1}"


def period_bounds(period: str, tz: str) -> tuple[datetime, datetime]:
    """[start, end) of the quarter in the program's time zone, in UTC."""
    year, q = _split(period)
    zone = ZoneInfo(tz)
    start = datetime(year, 3 * (q - 1) + 1, 1, tzinfo=zone)
    ny, nq = _split(shift(period, 1))
    end = datetime(ny, 3 * (nq - 1) + 1, 1, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def due_at(due: date, tz: str) -> datetime:
    """An item due on `due` is due by the end of that day in the program's time zone (UTC)."""
    return datetime.combine(day_after(due), time(), tzinfo=ZoneInfo(tz)).astimezone(UTC)


def period_index(period: str) -> int:
    year, q = _split(period)
    return year * 4 + q - 1


def held_this_period(period: str, every_quarters: int) -> bool:
    """A cadence of every N quarters holds its reviews in the quarters whose index N divides
    (quarterly: all; semi-annual: Q2 and Q4 reviewed, i.e. the first and third QBR of a year)."""
    return period_index(period) % every_quarters == 0
