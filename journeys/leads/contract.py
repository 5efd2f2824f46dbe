"""What other journeys and the platform may use of the lead distribution journey: its message
names, its event payload and its policy section."""

from __future__ import annotations

from journeys.leads.domain import DEAL_REGISTERED, JOURNEY
from journeys.leads.events import LeadEvent
from journeys.leads.policy import LeadsPolicy

__all__ = ["DEAL_REGISTERED", "JOURNEY", "LeadEvent", "LeadsPolicy"]
