"""A lead cannot be flooded and its deadlines survive a restart (time-skipping server, real
activities): ops' recalls are capped by the policy (409 LimitReached); a hand-back needs a reason
and routing goes on without that partner."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowUpdateFailedError

from domain.enums import Tier
from domain.policy import ProgramPolicy
from journeys.leads.domain import OfferResponse, RecallRequest, Response
from journeys.leads.policy import LeadsPolicy
from journeys.leads.workflow import LeadWorkflow
from tests.helpers.factories import make_partner
from tests.helpers.waiting import eventually
from tests.leads.factories import make_lead, save_policy, start
from tests.leads.test_workflow import _n_live, accept, live, offers
from worker.main import build_worker


async def test_recalls_are_capped_and_a_hand_back_moves_on(ts_env, sessionmaker, base_settings, task_queue):
    a = await make_partner(sessionmaker, tier=Tier.gold)
    b = await make_partner(sessionmaker, tier=Tier.gold)
    version = await save_policy(sessionmaker, ProgramPolicy(leads=LeadsPolicy(max_recalls=2)))
    lead = await make_lead(sessionmaker)
    async with build_worker(ts_env.client, base_settings, sessionmaker, task_queue):
        handle = await start(ts_env, lead, task_queue, version)
        await eventually(lambda: _n_live(handle, 1), what="an offer")
        (first,) = await live(handle)
        await handle.execute_update(LeadWorkflow.respond, accept(first))
        no_reason = OfferResponse(partner_id=first, response=Response.hand_back, by=f"partner:{first}")
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await handle.execute_update(LeadWorkflow.respond, no_reason)
        assert err.value.cause.type == "Invalid"
        back = no_reason.model_copy(update={"reason": "customer already works with us on it"})
        result = await handle.execute_update(LeadWorkflow.respond, back)
        assert result.partner_id is None
        await eventually(lambda: _n_live(handle, 1), what="the next offer")
        assert await live(handle) != [first]  # never back to the partner that handed it back
        for n in range(2):
            await handle.execute_update(LeadWorkflow.recall, RecallRequest(by="ops:k1", reason=f"recall {n}"))
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await handle.execute_update(LeadWorkflow.recall, RecallRequest(by="ops:k1", reason="once more"))
        assert err.value.cause.type == "LimitReached"
        await handle.terminate("test over")
    states = [r.state for r in await offers(sessionmaker, lead)]
    assert states[:2] == ["returned", "withdrawn"] and {str(a.id), str(b.id)} >= {first}
