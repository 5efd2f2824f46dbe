"""The evaluation step (`health.evaluate`) called directly: it scores by the policy version the
journey pinned, read with the partner in one statement (a version not stored is the newest), and
a partner that does not exist is refused."""

from __future__ import annotations

import uuid

import pytest
from temporalio.exceptions import ApplicationError

from core import registry
from domain.enums import Tier
from journeys.health.activities import HealthActivities
from journeys.health.domain import EvaluateInput, HealthBand
from tests.health.factories import health_policy, lapse, save
from tests.helpers.factories import make_partner
from tests.helpers.statements import sql_of, statements


def evaluate(partner_id, version: int) -> EvaluateInput:
    return EvaluateInput(idempotency_key=f"t:{uuid.uuid4()}", partner_id=str(partner_id), policy_version=version)


async def test_the_score_is_banded_by_the_pinned_version_read_with_the_partner_else_the_newest(sessionmaker):
    acts = HealthActivities(sessionmaker, registry.HEALTH_SIGNALS, registry.HEALTH_EVENTS)
    partner = await make_partner(sessionmaker, tier=Tier.registered)
    await lapse(sessionmaker, partner, "Network Associate")  # a score under 100
    lenient = await save(sessionmaker, health_policy(healthy_from=0, watch_from=0))
    strict = await save(sessionmaker, health_policy(healthy_from=100, watch_from=100))

    first = await acts.evaluate(evaluate(partner.id, lenient))
    assert first.band == HealthBand.healthy and first.score < 100  # banded by the lenient version
    newest = await acts.evaluate(evaluate(partner.id, strict + 1))  # not stored: the newest, strict
    assert newest.score == first.score and newest.band == HealthBand.at_risk
    with statements() as sent:
        again = await acts.evaluate(evaluate(partner.id, lenient))
    assert again.band == HealthBand.healthy
    assert "pinned_policy" in sent[0], sql_of(sent)  # the version read with the partner
    assert not any(s.startswith("SELECT policy_versions") for s in sent), sql_of(sent)

    with pytest.raises(ApplicationError, match="not found") as refused:
        await acts.evaluate(evaluate(uuid.uuid4(), lenient))
    assert refused.value.type == "PartnerNotFound" and refused.value.non_retryable
