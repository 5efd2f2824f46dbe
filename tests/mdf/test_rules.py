"""Pure rules of the MDF journey (journeys/mdf/domain.py) and its policy section: periods, cut-offs,
currency conversion, the partner's share, proof files sniffed by content, balances, validation."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from journeys.mdf.domain import (
    Balances,
    balances,
    convert,
    end_of_day,
    next_cutoff,
    period_named,
    period_of,
    reimbursable,
    sniff,
)
from journeys.mdf.handover import current_round
from journeys.mdf.policy import ApprovalLevel, MdfPolicy

pytestmark = pytest.mark.unit

BERLIN, LA = "Europe/Berlin", "America/Los_Angeles"


# ------------------------------------------------------------------ periods


@pytest.mark.parametrize(
    ("at", "kind", "label", "start", "end"),
    [
        (datetime(2026, 11, 26, 12, tzinfo=UTC), "quarter", "2026-Q4", date(2026, 10, 1), date(2027, 1, 1)),
        (datetime(2026, 1, 1, tzinfo=UTC), "quarter", "2026-Q1", date(2026, 1, 1), date(2026, 4, 1)),
        (datetime(2026, 6, 30, 23, 59, tzinfo=UTC), "quarter", "2026-Q2", date(2026, 4, 1), date(2026, 7, 1)),
        (datetime(2026, 12, 31, 23, tzinfo=UTC), "month", "2026-12", date(2026, 12, 1), date(2027, 1, 1)),
        (datetime(2026, 2, 14, tzinfo=UTC), "month", "2026-02", date(2026, 2, 1), date(2026, 3, 1)),
        (datetime(2026, 7, 1, tzinfo=UTC), "half", "2026-H2", date(2026, 7, 1), date(2027, 1, 1)),
        (datetime(2026, 6, 30, tzinfo=UTC), "half", "2026-H1", date(2026, 1, 1), date(2026, 7, 1)),
        (datetime(2026, 5, 5, tzinfo=UTC), "year", "2026", date(2026, 1, 1), date(2027, 1, 1)),
    ],
)
def test_period_of(at, kind, label, start, end):
    p = period_of(at, kind, "UTC")
    assert p.label == label
    assert p.starts_at == datetime.combine(start, datetime.min.time(), ZoneInfo("UTC"))
    assert p.ends_at == datetime.combine(end, datetime.min.time(), ZoneInfo("UTC"))
    assert p.starts_at <= at < p.ends_at


def test_period_boundaries_are_midnight_in_the_program_zone():
    # 23:30 UTC on 31 December is already 1 January in Berlin, still 31 December in Los Angeles.
    at = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
    berlin, la = period_of(at, "quarter", BERLIN), period_of(at, "quarter", LA)
    assert (berlin.label, la.label) == ("2027-Q1", "2026-Q4")
    assert berlin.starts_at == datetime(2026, 12, 31, 23, tzinfo=UTC)  # midnight CET
    assert la.ends_at == datetime(2027, 1, 1, 8, tzinfo=UTC)  # midnight PST
    # A month across the change to summer time: 31 March in Berlin is 30 days and 23 hours long.
    march = period_of(datetime(2026, 3, 15, tzinfo=UTC), "month", BERLIN)
    assert march.ends_at.astimezone(UTC) - march.starts_at.astimezone(UTC) == timedelta(days=31) - timedelta(hours=1)
    assert march.ends_at == datetime(2026, 3, 31, 22, tzinfo=UTC)  # midnight CEST


@pytest.mark.parametrize(
    ("label", "kind"),
    [
        ("2026-Q4", "quarter"),
        ("2026-01", "month"),
        ("2026-12", "month"),
        ("2026-H1", "half"),
        ("2026", "year"),
        ("2099-Q1", "quarter"),
    ],
)
@pytest.mark.parametrize("tz", ["UTC", BERLIN, LA])
def test_period_named_round_trips(label, kind, tz):
    p = period_named(label, kind, tz)
    assert p.label == label
    assert period_of(p.starts_at, kind, tz) == p
    assert period_of(p.ends_at - timedelta(seconds=1), kind, tz) == p
    assert p.starts_at.astimezone(ZoneInfo(tz)).time() == datetime.min.time()


@pytest.mark.parametrize(
    ("label", "kind"),
    [
        ("2026-Q5", "quarter"),
        ("2026-Q0", "quarter"),
        ("2026-Q", "quarter"),
        ("2026-q4", "quarter"),
        ("2026-4", "month"),
        ("2026-13", "month"),
        ("2026-00", "month"),
        ("2026-1 ", "month"),
        ("2026/01", "month"),
        ("2026-H3", "half"),
        ("2026-H0", "half"),
        ("26", "year"),
        ("1999", "year"),
        ("3000", "year"),
        ("2026-Q4", "month"),
        ("2026-11", "quarter"),
        ("2026", "quarter"),
        ("abcd", "year"),
        ("", "month"),
        ("2026-Q1x", "quarter"),
    ],
)
def test_period_named_refuses_bad_labels(label, kind):
    with pytest.raises(ValueError, match="is not a"):
        period_named(label, kind, "UTC")


# ------------------------------------------------------------------ cut-offs, days, money


def test_next_cutoff():
    assert next_cutoff(datetime(2026, 11, 26, tzinfo=UTC), 15, "UTC") == datetime(2026, 12, 15, tzinfo=UTC)
    assert next_cutoff(datetime(2026, 11, 3, tzinfo=UTC), 15, "UTC") == datetime(2026, 11, 15, tzinfo=UTC)
    assert next_cutoff(datetime(2026, 12, 20, tzinfo=UTC), 15, "UTC") == datetime(2027, 1, 15, tzinfo=UTC)
    # exactly at a cut-off: the next one (strictly after)
    assert next_cutoff(datetime(2026, 11, 15, tzinfo=UTC), 15, "UTC") == datetime(2026, 12, 15, tzinfo=UTC)
    assert next_cutoff(datetime(2027, 1, 31, tzinfo=UTC), 28, "UTC") == datetime(2027, 2, 28, tzinfo=UTC)
    # in the program's zone: 14 Nov 23:30 UTC is already the 15th in Berlin, but the cut-off (midnight
    # in Berlin, 23:00 UTC) has passed; in Los Angeles it is 15:30 on the 14th: hours to go.
    after = datetime(2026, 11, 14, 23, 30, tzinfo=UTC)
    assert next_cutoff(after, 15, BERLIN) == datetime(2026, 12, 14, 23, tzinfo=UTC)
    assert next_cutoff(after, 15, LA) == datetime(2026, 11, 15, 8, tzinfo=UTC)


def test_end_of_day():
    assert end_of_day(date(2026, 11, 26), "UTC") == datetime(2026, 11, 27, tzinfo=UTC)
    assert end_of_day(date(2026, 3, 28), BERLIN) == datetime(2026, 3, 28, 23, tzinfo=UTC)
    assert end_of_day(date(2026, 3, 29), BERLIN) == datetime(2026, 3, 29, 22, tzinfo=UTC)  # summer time


@pytest.mark.parametrize(
    ("amount", "rate", "expected"),
    [
        (100_000, "1.08", 108_000),
        (1, "1.5", 2),
        (3, "0.5", 2),
        (5, "0.5", 2),
        (7, "0.5", 4),
        (12_345, "0.0001", 1),
        (999_999_999, "1.234567", 1_234_566_999),
        (10, "1", 10),
    ],
)
def test_convert_rounds_half_to_even(amount, rate, expected):
    assert convert(amount, rate) == expected


@pytest.mark.parametrize(
    ("cost", "share", "expected"),
    [
        (800_000, 50, 400_000),
        (100, 25, 75),
        (99, 50, 49),
        (1_000_001, 33.3, 667_000),
        (10, 0, 10),
        (3, 99.99, 0),
        (1_000_000, 12.5, 875_000),
    ],
)
def test_reimbursable_rounds_down(cost, share, expected):
    assert reimbursable(cost, share) == expected


# ------------------------------------------------------------------ proof files


PDF = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(20)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(20)
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"This program cannot be run in DOS mode."


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (PDF, "application/pdf"),
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (b"name,email,company\nAda,ada@example.com,Acme\n", "text/csv"),
        (b"\xef\xbb\xbfname;email\r\nAda;ada@example.com\r\n", "text/csv"),  # BOM, semicolons, CRLF
        ("nom,société\nÉlise,Acme\n".encode(), "text/csv"),
        (EXE, None),
        (b"", None),
        (b"just some text without separators\n", None),
        (b"a,b\n\x00\x01", None),
        (b"\xff\xfename,email\n", None),  # NUL bytes; not UTF-8
        (b"GIF89a,\x01\x00", None),
        (b"PK\x03\x04,docx", None),
        (b"#!/bin/sh\nrm -rf a,b\n", None),
        (b"%PDF", None),  # cut before the version: not a PDF header
    ],
)
def test_sniff_by_content(data, expected):
    assert sniff(data) == expected


def test_sniff_ignores_the_name_a_file_was_given():
    # The content decides: a PDF sent as "photo.png" is a PDF (not accepted as a photo), and an
    # executable renamed "invoice.pdf" is nothing accepted at all.
    from journeys.mdf.domain import MIME_OF_KIND
    from journeys.mdf.policy import ProofKind

    assert sniff(PDF) not in MIME_OF_KIND[ProofKind.photo]
    assert sniff(EXE) is None


def test_sniff_csv_cut_inside_a_character_at_64_kib():
    head = b"name,city\n" + b"x" * (65536 - 11) + "é".encode()  # é straddles the 64 KiB window
    assert sniff(head) == "text/csv"
    assert sniff(b"name,city\n\xc3\x28 broken") is None  # invalid UTF-8 well inside the window


@pytest.mark.parametrize(("char", "inside"), [("é", 1), ("€", 1), ("€", 2), ("😀", 1), ("😀", 2), ("😀", 3)])
def test_sniff_csv_any_character_cut_at_64_kib(char, inside):
    """A 2, 3 or 4-byte character with `inside` of its bytes in the 64 KiB window is still a CSV."""
    header = b"name,city\n"
    data = header + b"x" * (65536 - len(header) - inside) + char.encode() + b",more\n"
    assert data[:65536].endswith(char.encode()[:inside])
    assert sniff(data) == "text/csv"
    assert sniff(data[:65536]) == "text/csv"


@pytest.mark.parametrize("at", [10, 65531, 65532, 65533, 65535])
def test_sniff_invalid_utf8_inside_the_window_is_no_csv(at):
    """Only a character cut by the window's end (at most its first 3 bytes) is forgiven."""
    data = bytearray(b"name,city\n" + b"x" * 70000)
    data[at] = 0xFF
    assert sniff(bytes(data)) is None


# ------------------------------------------------------------------ balances


def test_balances_are_sums_of_entries():
    b = balances(
        [
            ("allocation", 250_000),
            ("accrual", 10_000),
            ("adjustment", -5_000),
            ("adjustment", 1_000),
            ("reservation", 100_000),
            ("reservation", 50_000),
            ("release", 30_000),
            ("payment", 60_000),
            ("claim", 60_000),
            ("clawback", 20_000),
            ("expiry", 40_000),
        ]
    )
    assert (b.allocated, b.accrued, b.adjusted, b.funded) == (250_000, 10_000, -4_000, 256_000)
    assert b.reserved == 150_000 - 30_000 - 60_000
    assert (b.paid, b.paid_gross, b.claimed, b.expired) == (40_000, 60_000, 60_000, 40_000)
    # a clawback does not make the money available again; a claim memo moves nothing
    assert b.available == 256_000 - 60_000 - 60_000 - 40_000 == 96_000


def test_empty_and_unknown_entries():
    assert balances([]) == Balances() and Balances().available == 0
    with pytest.raises(ValueError):
        balances([("gift", 1)])


# ------------------------------------------------------------------ the policy section


def test_default_policy_and_levels_for():
    p = MdfPolicy()
    assert [lv.name for lv in p.levels_for(1)] == ["cam"]
    assert [lv.name for lv in p.levels_for(500_000)] == ["cam"]  # "above" is strict
    assert [lv.name for lv in p.levels_for(500_001)] == ["cam", "channel_marketing"]
    assert [lv.name for lv in p.levels_for(2_500_000)] == ["cam", "channel_marketing"]
    assert [lv.name for lv in p.levels_for(2_500_001)] == ["cam", "channel_marketing", "finance"]
    webinar = p.activity_type("webinar")
    assert webinar is not None and webinar.pre_approved and p.activity_type("nope") is None


def _levels(*above: int, sla: float = 2, escalation: float = 4) -> list[dict]:
    return [
        {"name": f"level_{i}", "above_minor": a, "sla_days": sla, "escalation_days": escalation}
        for i, a in enumerate(above)
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"approval_levels": _levels(0, 500, 500)}, "above_minor must increase"),
        ({"approval_levels": _levels(0, 500, 100)}, "above_minor must increase"),
        ({"approval_levels": _levels(100, 500)}, "first level applies to every amount"),
        ({"approval_levels": []}, "first level applies to every amount"),
        ({"approval_levels": _levels(0, sla=4, escalation=4)}, "escalation_days must be longer"),
        ({"approval_levels": [*_levels(0), {"name": "level_0", "above_minor": 10}]}, "names must be unique"),
        ({"time_zone": "Mars/Olympus_Mons"}, "not an IANA time zone"),
        ({"time_zone": "../etc/passwd"}, "not an IANA time zone"),
        ({"exchange_rates": {"EUR": "0"}}, "not a positive decimal rate"),
        ({"exchange_rates": {"EUR": "-1.08"}}, "not a positive decimal rate"),
        ({"exchange_rates": {"EUR": "abc"}}, "not a positive decimal rate"),
        ({"exchange_rates": {"EUR": "NaN"}}, "not a positive decimal rate"),
        ({"exchange_rates": {"EUR": "Infinity"}}, "not a positive decimal rate"),
        ({"exchange_rates": {"EUR": "1e9"}}, "not a positive decimal rate"),
        ({"exchange_rates": {"USD": "1"}}, "not another ISO 4217 code"),
        ({"exchange_rates": {"eur": "1.08"}}, "not another ISO 4217 code"),
        ({"exchange_rates": {"EURO": "1.08"}}, "not another ISO 4217 code"),
        ({"allocations": {"gold": 1}}, "missing for"),
        ({"allocations": {"platinum": 1, "gold": 1, "silver": -1, "registered": 0}}, "mdf.allocations: amounts are"),
        (
            {"auto_approve_max_minor": {"platinum": 10**15 + 1, "gold": 1, "silver": 1, "registered": 0}},
            "mdf.auto_approve_max_minor: amounts are minor units from 0 to 10",
        ),
        (
            {"auto_approve_max_minor": {"gold": 1}},
            "mdf.auto_approve_max_minor: missing for platinum, silver, registered",
        ),
        ({"activity_types": []}, "mdf.activity_types: at least one, with unique keys"),
        (
            {
                "activity_types": [
                    {"key": "webinar", "title": "A", "proof": ["invoice"]},
                    {"key": "webinar", "title": "B", "proof": ["photo"]},
                ]
            },
            "at least one, with unique keys",
        ),
        ({"max_file_bytes": 2048, "max_total_bytes": 1024}, "must not exceed"),
        ({"allowed_types": ["application/x-msdownload"]}, "choose from"),
        ({"claim_reminder_days": [14, -3]}, "offsets must be positive"),
        ({"expiry_warning_days": [0]}, "offsets must be positive"),
    ],
)
def test_policy_validation_refuses(change, message):
    with pytest.raises(ValidationError, match=message):
        MdfPolicy.model_validate({**MdfPolicy().model_dump(mode="json"), **change})


def test_policy_validation_accepts():
    p = MdfPolicy.model_validate(
        {
            **MdfPolicy().model_dump(mode="json"),
            "time_zone": BERLIN,
            "exchange_rates": {"EUR": "1.08", "JPY": "0.0067"},
            "approval_levels": _levels(0, 1_000, 10**9),
        }
    )
    assert convert(100_000, p.exchange_rates["EUR"]) == 108_000
    assert [lv.name for lv in p.levels_for(10**9 + 1)] == ["level_0", "level_1", "level_2"]
    assert ApprovalLevel(name="cam", above_minor=0).escalation_days > ApprovalLevel(name="cam", above_minor=0).sla_days


@pytest.mark.parametrize(("label", "start"), [("2000", datetime(2000, 1, 1)), ("2099-H2", datetime(2099, 7, 1))])
def test_period_named_at_the_ends_of_the_years_accepted(label, start):
    kind = "year" if len(label) == 4 else "half"
    assert period_named(label, kind, "UTC").starts_at == start.replace(tzinfo=ZoneInfo("UTC"))


@pytest.mark.parametrize("label", ["1999", "2100", "1999-H2", "2100-H1"])
def test_period_named_refuses_years_beyond_the_horizon(label):
    kind = "year" if len(label) == 4 else "half"
    with pytest.raises(ValueError, match=f"'{label}' is not a {kind} period"):
        period_named(label, kind, "UTC")


def test_period_named_says_what_a_label_looks_like():
    example = period_of(datetime.now(UTC), "quarter", "UTC").label
    with pytest.raises(ValueError, match=re.escape(f"'2026-Q5' is not a quarter period (e.g. {example})")):
        period_named("2026-Q5", "quarter", "UTC")


def test_sniff_reads_the_first_line_within_the_first_64_kib_only():
    header = b"name,city\n"
    beyond = header + b"x" * (65536 - len(header)) + b"\xff\x00"  # not UTF-8, a NUL: both past the window
    assert sniff(beyond) == "text/csv"
    assert sniff(b"first name;city\nPat;Berlin\n") == "text/csv"  # words with spaces in the header
    assert sniff(b"\xef\xbb\xbfname,city\n") == "text/csv"  # a UTF-8 byte order mark first
    assert sniff(b"name\ncity,country\n") is None  # the separator must be on the first line


def test_a_handover_reads_the_round_a_decision_waits_in_from_the_recorded_steps():
    """The receiving CAM's new MDF links (journeys/mdf/handover.py) carry the round the journey is
    in: a request's last resubmission (1 without one), a claim's last claim round."""
    assert current_round("pending_approval", []) == 1
    steps = ["resubmitted:2", "request:2:level:1", "resubmitted:3", "claim:1", "returned:2", "approved"]
    assert current_round("pending_approval", steps) == 3
    assert current_round("claim_review", steps) == 1
    assert current_round("claim_review", [*steps, "claim:2", "claim:2:level:1"]) == 2
