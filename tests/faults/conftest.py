"""The fault tests' tally: each test records the faults it injected and the journeys it checked,
and the terminal summary prints them (also without `-s`)."""

from __future__ import annotations

import pytest

TALLY_KEY = pytest.StashKey[list[tuple[str, str, int, int]]]()


@pytest.fixture
def tally(request):
    """`tally(faults_injected, journeys_checked, what)` records one line for this test."""
    lines = request.config.stash.setdefault(TALLY_KEY, [])

    def record(faults: int, journeys: int, what: str) -> None:
        lines.append((request.node.name, what, faults, journeys))

    return record


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    lines = config.stash.get(TALLY_KEY, [])
    if not lines:
        return
    terminalreporter.section("faults injected on the real services")
    for name, what, faults, journeys in lines:
        terminalreporter.write_line(f"{name}: {faults} fault(s), {journeys} journey(s) checked; {what}")
    faults = sum(f for _, _, f, _ in lines)
    journeys = sum(j for _, _, _, j in lines)
    terminalreporter.write_line(f"total: {faults} fault(s) injected, {journeys} journey(s) checked")
