"""The CAM handover's keys (domain/handover.py): one per step and partner, under the workflow id,
so that a retried step writes its audit row, its emails (their Message-IDs) and its event once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from domain.handover import HandoverItem, HandoverQuery, Moved, handover_workflow_id, step_key
from domain.policy import ProgramPolicy

pytestmark = pytest.mark.unit


def test_each_step_of_each_partner_has_its_own_key_under_the_workflow_id():
    assert handover_workflow_id("h1") == "cam-handover-h1"
    keys = {step_key("h1", step, partner) for step in ("move", "introduce") for partner in ("p1", "p2")}
    assert len(keys) == 4 and all(k.startswith("cam-handover-h1:") for k in keys)
    assert step_key("h1", "pack") == "cam-handover-h1:pack" != step_key("h2", "pack")


def test_a_partner_that_left_the_cam_is_not_moved_and_an_item_is_open_unless_said():
    assert Moved(moved=False).workflow_ids == [] and Moved(moved=False).coverage is None
    assert HandoverItem(journey="deal", partner_id="p1", what="w").kind == "open"


def test_an_items_links_are_one_per_decision_of_its_kind():
    class Kind:
        def url(self, base_url, secret, claims):
            return f"{base_url}/k/{secret}:{claims}"

    query = HandoverQuery((), uuid.uuid4(), datetime.now(UTC), ProgramPolicy(), "http://x", "s", "key")
    assert query.links(Kind(), {"approve": 1, "reject": 2}) == {"approve": "http://x/k/s:1", "reject": "http://x/k/s:2"}
    assert query.links(Kind(), {}) == {}
