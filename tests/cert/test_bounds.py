"""A renewal sent straight to Temporal (past the API) with an expiry in year 9999 or without a zone
is refused by the validator; the journey keeps answering and takes a sane renewal, recorded by
the time it answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError

from journeys.cert.domain import RENEW, Renewal, RenewalResult
from tests.cert.test_api import cert_body, cert_policy
from tests.helpers.api import enrol


async def test_a_renewal_outside_the_horizon_is_refused_and_the_journey_keeps_answering(api, ops, worker, dev_env):
    await cert_policy(api, ops)
    partner = await enrol(api, ops, tier="registered", domain="far-cert.test")
    cert = (await api.post("/certifications", json=cert_body(partner["id"], 86400 * 20), headers=ops)).json()
    handle = dev_env.client.get_workflow_handle(f"cert-{cert['id']}")
    for expires_at, expected in [
        (datetime(9999, 12, 31, 23, 59, tzinfo=UTC), "expires_at: must lie within 3650 days"),
        (datetime(2030, 1, 1), "expires_at: a time needs its UTC offset"),
    ]:
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(RENEW, Renewal(expires_at=expires_at, by="ops:raw"), result_type=RenewalResult)
        assert expected in str(refused.value.cause), refused.value.cause
    new_expiry = (datetime.now(UTC) + timedelta(days=700)).replace(microsecond=0)
    r = await api.post(
        f"/certifications/{cert['id']}/renewals", json={"expires_at": new_expiry.isoformat()}, headers=ops
    )
    assert r.status_code == 200, r.text
    got = (await api.get(f"/partners/{partner['id']}/certifications", headers=ops)).json()[0]
    assert datetime.fromisoformat(got["expires_at"]) == new_expiry, got
