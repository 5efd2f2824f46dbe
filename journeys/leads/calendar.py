"""Business hours: an offer's deadline counts the working hours of the partner's time zone
(the policy's working days and hours, less the public holidays of the partner's country), across
daylight-saving changes. Pure: the holidays come from the `holidays` package."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

MAX_DAYS = 3660  # a window never looks further than this many calendar days ahead


@lru_cache(maxsize=512)
def _holidays(country: str, year: int) -> frozenset[date]:
    try:
        return frozenset(holidays.country_holidays(country, years=year).keys())
    except NotImplementedError:  # a country the library does not know: no public holidays
        return frozenset()


def is_working_day(day: date, country: str, working_days: list[int]) -> bool:
    return day.weekday() in working_days and day not in _holidays(country, day.year)


def add_business_hours(
    start: datetime,
    hours: float,
    *,
    tz: str,
    country: str,
    working_days: list[int],
    day_starts: time,
    day_ends: time,
) -> datetime:
    """The moment (UTC) when `hours` business hours have passed since `start` (aware), in the zone
    `tz`: only working days that are not public holidays of `country` count, each from
    `day_starts` to `day_ends` local time (a DST change inside the day counts the real hours)."""
    zone = ZoneInfo(tz)
    local = start.astimezone(zone)
    left = timedelta(hours=hours)
    day = local.date()
    for _ in range(MAX_DAYS):
        if is_working_day(day, country, working_days):
            opens = datetime.combine(day, day_starts, zone)
            closes = datetime.combine(day, day_ends, zone)
            begin = max(opens, local) if day == local.date() else opens
            if begin < closes:
                # Aware datetimes in one zone subtract as wall time: compare in UTC for real hours.
                available = closes.astimezone(UTC) - begin.astimezone(UTC)
                if left <= available:
                    return (begin.astimezone(UTC) + left).astimezone(UTC)
                left -= available
        day += timedelta(days=1)
    raise ValueError(f"no {hours:g} business hours within {MAX_DAYS} days (no working day in the policy?)")
