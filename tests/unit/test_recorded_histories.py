"""Recorded histories carry no machine's paths: a failure's stack trace is kept relative to the
repository and to `site-packages/` (tests/helpers/histories.py `portable`)."""

from __future__ import annotations

import re

from tests.helpers.histories import ROOT, TESTS, portable

ABSOLUTE = re.compile(r'File \\"/')


def test_portable_rewrites_our_files_and_installed_ones():
    trace = (
        f'"stackTrace": "  File \\"{ROOT}/journeys/mdf/workflow.py\\", line 221\\n'
        '  File \\"/opt/venv/lib/python3.11/site-packages/temporalio/worker/_interceptor.py\\", line 455"'
    )
    assert portable(trace) == (
        '"stackTrace": "  File \\"journeys/mdf/workflow.py\\", line 221\\n'
        '  File \\"site-packages/temporalio/worker/_interceptor.py\\", line 455"'
    )
    assert portable('{"note": "a/b c/site-packages/x"}') == '{"note": "a/b c/site-packages/x"}'  # no path: kept


def test_no_recorded_history_names_an_absolute_path():
    offending = [
        p.relative_to(ROOT) for p in sorted(TESTS.glob("**/histories/*.json")) if ABSOLUTE.search(p.read_text())
    ]
    assert not offending, offending
