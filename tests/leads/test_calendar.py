"""Business hours of an offer window: weekends, public holidays of the partner's country and DST
changes inside the window are counted right."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from journeys.leads.calendar import add_business_hours, is_working_day

pytestmark = pytest.mark.unit

BERLIN = ZoneInfo("Europe/Berlin")
WEEK = [0, 1, 2, 3, 4]


def deadline(start: datetime, hours: float, country: str = "DE", tz: str = "Europe/Berlin", **kw) -> datetime:
    opts = {"working_days": WEEK, "day_starts": time(9), "day_ends": time(17)} | kw
    return add_business_hours(start, hours, tz=tz, country=country, **opts).astimezone(ZoneInfo(tz))


def test_friday_1730_in_berlin_plus_16_hours_expires_on_tuesday():
    start = datetime(2026, 3, 6, 17, 30, tzinfo=BERLIN)  # a Friday, after hours
    # 09:00-17:00: Monday 8 h, Tuesday 8 h.
    assert deadline(start, 16) == datetime(2026, 3, 10, 17, 0, tzinfo=BERLIN)
    # A 12-hour day (08:00-20:00): Friday 2.5 h, Monday 12 h, Tuesday morning 1.5 h.
    assert deadline(start, 16, day_starts=time(8), day_ends=time(20)) == datetime(2026, 3, 10, 9, 30, tzinfo=BERLIN)


def test_public_holidays_of_the_partners_country_do_not_count():
    start = datetime(2026, 4, 2, 16, 0, tzinfo=BERLIN)  # Thursday before Easter
    # Thursday 1 h; Good Friday and Easter Monday are holidays; Tuesday 8 h; Wednesday 7 h.
    assert deadline(start, 16) == datetime(2026, 4, 8, 16, 0, tzinfo=BERLIN)
    # The same window for a partner in Berlin's zone but a country without those holidays (US).
    assert deadline(start, 16, country="US") == datetime(2026, 4, 6, 16, 0, tzinfo=BERLIN)
    assert not is_working_day(date(2026, 4, 3), "DE", WEEK) and is_working_day(date(2026, 4, 3), "US", WEEK)


def test_a_dst_change_inside_the_window_counts_real_hours():
    every_day = list(range(7))
    start = datetime(2026, 3, 29, 0, 0, tzinfo=BERLIN)  # the night clocks go 02:00 -> 03:00
    end = deadline(start, 23, working_days=every_day, day_starts=time(0), day_ends=time(23, 59))
    assert end == datetime(2026, 3, 30, 0, 1, tzinfo=BERLIN)  # Sunday holds 22 h 59 min of real time
    autumn = datetime(2026, 10, 23, 16, 0, tzinfo=BERLIN)  # Friday; clocks go back on Sunday
    assert deadline(autumn, 2) == datetime(2026, 10, 26, 10, 0, tzinfo=BERLIN)


def test_a_start_inside_working_hours_and_other_zones():
    start = datetime(2026, 3, 9, 10, 0, tzinfo=BERLIN)  # Monday 10:00
    assert deadline(start, 3) == datetime(2026, 3, 9, 13, 0, tzinfo=BERLIN)
    ny = datetime(2026, 7, 2, 12, 0, tzinfo=ZoneInfo("America/New_York"))  # Thursday before July 4th
    got = deadline(ny, 8, country="US", tz="America/New_York")  # Friday 3rd is the observed holiday
    assert got == datetime(2026, 7, 6, 12, 0, tzinfo=ZoneInfo("America/New_York"))


def test_an_unknown_country_has_no_holidays_and_no_working_day_fails():
    assert is_working_day(date(2026, 12, 25), "XX", WEEK)
    with pytest.raises(ValueError, match="no 1 business hours"):
        add_business_hours(
            datetime(2026, 3, 9, tzinfo=BERLIN),
            1,
            tz="Europe/Berlin",
            country="DE",
            working_days=[],
            day_starts=time(9),
            day_ends=time(17),
        )
