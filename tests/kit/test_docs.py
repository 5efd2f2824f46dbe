"""The documentation stays true to the code: every registered journey has its page in
docs/journeys/ naming each of its states and policy settings, and every relative link in README.md
and docs/ (files and #anchors) resolves."""

from __future__ import annotations

import enum
import importlib
import re
from pathlib import Path

import pytest

from core import registry
from domain.policy import ProgramPolicy

ROOT = Path(__file__).resolve().parents[2]
SPECS = registry.JOURNEYS
IDS = [s.name for s in SPECS]
PAGES = [
    ROOT / "README.md",
    ROOT / "deploy/README.md",
    ROOT / "bench/README.md",
    *sorted((ROOT / "docs").rglob("*.md")),
]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")

pytestmark = pytest.mark.unit


def _page(spec) -> str:
    page = ROOT / spec.docs_page
    assert page.is_file(), f"journey {spec.name!r} has no page {spec.docs_page}: add one (see docs/contributing.md)"
    return page.read_text()


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_every_journey_has_its_page_with_its_states_and_policy(spec):
    text = _page(spec)
    module = importlib.import_module(f"journeys.{spec.name}.domain")
    states = [
        member.value
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, enum.Enum) and obj.__name__.endswith("State")
        if obj.__module__ == module.__name__
        for member in obj
    ]
    assert states, f"journeys/{spec.name}/domain.py defines no *State enum"
    missing = [s for s in states if f"`{s}`" not in text]
    assert not missing, f"{spec.docs_page} does not name the states {missing}"
    section = ProgramPolicy.model_fields[spec.name].annotation
    missing = [f for f in section.model_fields if f"`{f}`" not in text]  # type: ignore[union-attr]
    assert not missing, f"{spec.docs_page} does not name the policy settings {missing} of `{spec.name}`"


def _anchors(page: Path) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped, spaces to hyphens."""
    anchors = set()
    in_code = False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (m := re.match(r"#{1,6}\s+(.*)", line)):
            text = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower().replace("`", ""))
            anchors.add(text.replace(" ", "-"))
    return anchors


def _links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # links in code blocks are not links
    return [a or b for a, b in LINK.findall(text)]


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_relative_link_resolves(page):
    broken = []
    for link in _links(page):
        if re.match(r"[a-z]+:", link):  # http:, https:, mailto:
            continue
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            broken.append(f"{link} (no file {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target})")
        elif anchor and target.suffix == ".md" and anchor not in _anchors(target):
            broken.append(f"{link} (no heading #{anchor} in {target.relative_to(ROOT)})")
    assert not broken, f"{page.relative_to(ROOT)} has broken links: {broken}"


def test_the_docs_exist_and_the_readme_stays_short():
    for name in ("api", "configuration", "workspace", "integrations", "operations", "contributing"):
        assert (ROOT / "docs" / f"{name}.md").is_file(), f"docs/{name}.md is missing"
    lines = (ROOT / "README.md").read_text().count("\n")
    assert lines <= 160, f"README.md has {lines} lines: keep it a five-minute read, move the rest to docs/"
