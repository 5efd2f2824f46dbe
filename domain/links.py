"""Signed one-click decision links: bound to one deal, one decision and one approver,
expiring, and single-use (the `used_links` table records each `jti` once)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from itsdangerous import BadSignature, URLSafeSerializer

SALT = "camlights.deal-decision"
MDF_SALT = "camlights.mdf-decision"  # a deal link never works as an MDF link, nor the reverse


@dataclass(frozen=True)
class LinkClaims:
    deal_id: str  # the entity decided on: a deal, or an MDF request (with MDF_SALT)
    decision: str
    approver: str  # an actor: "cam:<id>" or "ops:<id>" (see domain/actors.py)
    jti: str
    expires_at: datetime


class LinkError(Exception):
    """The link cannot be used; the subclass says why and the message says what to do."""


class LinkInvalid(LinkError):
    """Tampered with (bad signature) or malformed: nobody issued this link."""


class LinkExpired(LinkError):
    """A genuine link past its validity."""


def link_jti(idempotency_key: str, recipient: str, decision: str) -> str:
    return hashlib.sha256(f"{idempotency_key}|{recipient}|{decision}".encode()).hexdigest()[:32]


def make_token(secret: str, claims: LinkClaims, salt: str = SALT) -> str:
    return URLSafeSerializer(secret, salt=salt).dumps(
        {
            "d": claims.deal_id,
            "a": claims.decision,
            "by": claims.approver,
            "j": claims.jti,
            "exp": int(claims.expires_at.timestamp()),
        }
    )


def read_token(secret: str, token: str, now: datetime | None = None, salt: str = SALT) -> LinkClaims:
    try:
        data = URLSafeSerializer(secret, salt=salt).loads(token)
        claims = LinkClaims(
            deal_id=str(data["d"]),
            decision=str(data["a"]),
            approver=str(data["by"]),
            jti=str(data["j"]),
            expires_at=datetime.fromtimestamp(int(data["exp"]), UTC),
        )
    except BadSignature as err:
        raise LinkInvalid("this link is not valid (its signature does not match)") from err
    except (KeyError, TypeError, ValueError) as err:
        raise LinkInvalid("this link is malformed") from err
    if (now or datetime.now(UTC)) >= claims.expires_at:
        raise LinkExpired(f"this link expired on {claims.expires_at:%Y-%m-%d %H:%M} UTC")
    return claims
