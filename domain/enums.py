from enum import StrEnum


class Tier(StrEnum):
    platinum = "platinum"
    gold = "gold"
    silver = "silver"
    registered = "registered"


class PartnerType(StrEnum):
    reseller = "reseller"
    msp = "msp"
    distributor = "distributor"
    integrator = "integrator"
    referral = "referral"


class PartnerStatus(StrEnum):
    onboarding = "onboarding"
    active = "active"
    at_risk = "at_risk"


class Role(StrEnum):
    ops = "ops"
    cam = "cam"
    partner = "partner"
