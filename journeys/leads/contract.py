"""What other journeys and the platform may use of the lead distribution journey: its policy
section, its event types and its message names."""

from __future__ import annotations

from journeys.leads.events import EVENTS, LeadEvent
from journeys.leads.policy import LeadsPolicy, Mode, Picker, RoutingRule

JOURNEY = "leads"
DEAL_REGISTERED = "deal_registered"  # signal: a deal was registered for an accepted lead

__all__ = ["DEAL_REGISTERED", "EVENTS", "JOURNEY", "LeadEvent", "LeadsPolicy", "Mode", "Picker", "RoutingRule"]
