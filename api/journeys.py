"""Starting, signalling and updating journeys from the API (one Temporal client for the whole
app): start_onboarding, start_deal and start_cert side by side."""
from __future__ import annotations

from fastapi import HTTPException
from sqlalchemy import delete
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from domain.cert import CertInput, CertState
from domain.deal import DealInput
from domain.enums import Journey, OnboardingState
from domain.journeys import (
    NO_CAM,
    SA_CAM_ID,
    SA_JOURNEY,
    SA_JOURNEY_STATE,
    SA_PARTNER_ID,
    SA_TIER,
    Coverage,
    workflow_id,
)
from domain.onboarding import OnboardingInput
from store.models import AuditEvent, Certification, Deal, JourneyRecord, Partner
from workflows.cert import CertWorkflow
from workflows.deal import DealWorkflow
from workflows.onboarding import OnboardingWorkflow


def coverage_of(partner: Partner) -> Coverage:
    return Coverage(tier=partner.tier, cam_id=str(partner.cam_id) if partner.cam_id else None)


def search_attributes(partner: Partner, journey: Journey, state: str) -> TypedSearchAttributes:
    return TypedSearchAttributes([
        SearchAttributePair(SA_PARTNER_ID, str(partner.id)),
        SearchAttributePair(SA_CAM_ID, str(partner.cam_id) if partner.cam_id else NO_CAM),
        SearchAttributePair(SA_TIER, partner.tier),
        SearchAttributePair(SA_JOURNEY, journey.value),
        SearchAttributePair(SA_JOURNEY_STATE, state),
    ])


async def start_onboarding(client: Client, task_queue: str, partner: Partner,
                           policy_version: int | None = None) -> WorkflowHandle:
    """`policy_version` pins the policy current at enrolment: a change made a moment later
    applies to journeys started after it, not to this one."""
    return await client.start_workflow(
        OnboardingWorkflow.run,
        OnboardingInput(partner_id=str(partner.id), partner_name=partner.name, coverage=coverage_of(partner),
                        policy_version=policy_version),
        id=workflow_id(Journey.onboarding, str(partner.id)),
        task_queue=task_queue,
        search_attributes=search_attributes(partner, Journey.onboarding, OnboardingState.in_progress.value),
    )


# Business refusals raised by the journeys' update validators (ApplicationError.type), as HTTP statuses.
REFUSALS = {"NotPending": 409, "NotApprover": 403, "LimitReached": 409, "TooShort": 422}


async def run_update(client: Client, journey: Journey, entity_id, update, arg):
    """Run a workflow update on `<journey>-<entity_id>`; a validator's refusal becomes
    409/403/422 with the workflow's own message, a closed journey a 409."""
    handle = client.get_workflow_handle(workflow_id(journey, str(entity_id)))
    try:
        return await handle.execute_update(update, arg)
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.type in REFUSALS:
            raise HTTPException(REFUSALS[cause.type], detail=cause.message) from err
        raise
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise HTTPException(409, detail=f"the {journey.value} journey of {entity_id} is not running") from err
        raise


async def start_deal(client: Client, task_queue: str, deal: Deal, partner: Partner, *,
                     conflict_with: Deal | None = None, hold_reason: str | None = None,
                     policy_version: int | None = None) -> WorkflowHandle:
    """`deal-{deal_id}`, in the state the API's conflict check decided."""
    return await client.start_workflow(
        DealWorkflow.run,
        DealInput(deal_id=str(deal.id), partner_id=str(partner.id), partner_name=partner.name,
                  coverage=coverage_of(partner), customer_name=deal.customer_name,
                  product_category=deal.product_category, amount_minor=deal.amount_minor, currency=deal.currency,
                  stage=deal.stage, state=deal.state, conflict_with=str(conflict_with.id) if conflict_with else None,
                  hold_reason=hold_reason, policy_version=policy_version),
        id=workflow_id(Journey.deal, str(deal.id)), task_queue=task_queue,
        search_attributes=search_attributes(partner, Journey.deal, deal.state),
    )


async def start_cert(client: Client, task_queue: str, cert: Certification, partner: Partner,
                     policy_version: int | None = None) -> WorkflowHandle:
    """`cert-{certification_id}`, first period."""
    return await client.start_workflow(
        CertWorkflow.run,
        CertInput(cert_id=str(cert.id), partner_id=str(partner.id), partner_name=partner.name,
                  coverage=coverage_of(partner), person_name=cert.person_name, person_email=cert.person_email,
                  track=cert.track, product_category=cert.product_category, expires_at=cert.expires_at,
                  policy_version=policy_version),
        id=workflow_id(Journey.cert, str(cert.id)), task_queue=task_queue,
        search_attributes=search_attributes(partner, Journey.cert, CertState.active.value),
    )


async def signal_coverage(client: Client, partner: Partner, open_deal_ids: list[str] = (),
                          cert_ids: list[str] = ()) -> list[str]:
    """Tell every running journey of the partner about its new tier/CAM. Returns the ids signalled."""
    signalled = []
    targets = [(workflow_id(Journey.onboarding, str(partner.id)), OnboardingWorkflow.change_coverage)]
    targets += [(workflow_id(Journey.deal, d), DealWorkflow.change_coverage) for d in open_deal_ids]
    targets += [(workflow_id(Journey.cert, c), CertWorkflow.change_coverage) for c in cert_ids]
    for wid, signal in targets:
        handle = client.get_workflow_handle(wid)
        try:
            await handle.signal(signal, coverage_of(partner))
            signalled.append(handle.id)
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:  # finished or never started: nothing to tell
                raise
    return signalled


async def compensate_start(session, idem, *, model, entity_id, journey: Journey, detail_key: str) -> None:
    """A journey could not be started: remove what the request wrote (the entity, its journey
    record, its audit rows and the idempotency record) so nothing is half-written."""
    await session.execute(delete(AuditEvent).where(AuditEvent.detail[detail_key].astext == str(entity_id)))
    await session.execute(delete(JourneyRecord).where(
        JourneyRecord.workflow_id == workflow_id(journey, str(entity_id))))
    await session.execute(delete(model).where(model.id == entity_id))
    await idem.forget()
    await session.commit()
