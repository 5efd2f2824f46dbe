"""Journey date arithmetic cannot overflow, and the horizon every validator applies."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from domain.journeys import EARLIEST, LATEST, day_after, outside_horizon, shifted
from journeys.mdf.domain import end_of_day
from journeys.qbr.periods import due_at

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 5, 12, tzinfo=UTC)


def test_shifts_clamp_instead_of_overflowing():
    assert shifted(datetime.max.replace(tzinfo=UTC), timedelta(days=1)) == LATEST
    assert shifted(datetime(9999, 12, 31, 23, tzinfo=UTC), timedelta(minutes=480)) == LATEST
    assert shifted(datetime.min.replace(tzinfo=UTC), -timedelta(days=1)) == EARLIEST
    assert shifted(datetime.max, timedelta(days=1)) == LATEST.replace(tzinfo=None)  # naive stays naive
    assert shifted(NOW, timedelta(days=3)) == NOW + timedelta(days=3)  # unchanged where it fits
    assert day_after(date.max) == LATEST.date() + timedelta(days=1)
    assert end_of_day(date.max, "Europe/Berlin").year == 9000
    assert due_at(date(9999, 12, 31), "Pacific/Kiritimati").year == 9000


def test_the_horizon_refuses_far_dates_and_zone_less_times():
    assert outside_horizon(date(2030, 1, 1), NOW, 3650) is None
    assert outside_horizon(NOW - timedelta(days=10), NOW, 3650) is None
    assert "within 3650 days" in outside_horizon(date(9999, 12, 31), NOW, 3650)
    assert "within 3650 days" in outside_horizon(date.min, NOW, 3650)
    assert "within 30 days" in outside_horizon(datetime.max.replace(tzinfo=UTC), NOW, 30)
    # the first moment there is, 14 hours east of UTC, is before the first UTC moment: no overflow
    assert "within 30 days" in outside_horizon(datetime.min.replace(tzinfo=timezone(timedelta(hours=14))), NOW, 30)
    assert "UTC offset" in outside_horizon(datetime(2027, 1, 1), NOW, 3650)
