"""Signed one-click decision links: bound to one deal, one decision and one approver,
expiring, and single-use (the `used_links` table records each `jti` once). An MDF link is also
bound to the approval level (index, 0: the first level), the round (the request's or claim's
submission number) and the amount it was issued for: the journey refuses it anywhere else."""

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
    level: int | None = None  # MDF: the approval level's index the link decides (links: the first only)
    round: int | None = None  # MDF: the submission (request or claim round) it was issued for
    amount_minor: int | None = None  # MDF: the amount decided on when it was issued

    @property
    def scoped(self) -> bool:
        """Bound to a level, a round and an amount (every MDF link issued since these were added)."""
        return self.level is not None and self.round is not None and self.amount_minor is not None


class LinkError(Exception):
    """The link cannot be used; the subclass says why and the message says what to do."""


class LinkInvalid(LinkError):
    """Tampered with (bad signature) or malformed: nobody issued this link."""


class LinkExpired(LinkError):
    """A genuine link past its validity."""


def link_jti(idempotency_key: str, recipient: str, decision: str) -> str:
    return hashlib.sha256(f"{idempotency_key}|{recipient}|{decision}".encode()).hexdigest()[:32]


SCOPE = {"l": "level", "r": "round", "m": "amount_minor"}  # token field: claim


def make_token(secret: str, claims: LinkClaims, salt: str = SALT) -> str:
    data: dict[str, object] = {
        "d": claims.deal_id,
        "a": claims.decision,
        "by": claims.approver,
        "j": claims.jti,
        "exp": int(claims.expires_at.timestamp()),
    }
    data.update({k: getattr(claims, name) for k, name in SCOPE.items() if getattr(claims, name) is not None})
    return URLSafeSerializer(secret, salt=salt).dumps(data)


def read_token(secret: str, token: str, now: datetime | None = None, salt: str = SALT) -> LinkClaims:
    try:
        data = URLSafeSerializer(secret, salt=salt).loads(token)
        claims = LinkClaims(
            deal_id=str(data["d"]),
            decision=str(data["a"]),
            approver=str(data["by"]),
            jti=str(data["j"]),
            expires_at=datetime.fromtimestamp(int(data["exp"]), UTC),
            **{name: int(data[k]) for k, name in SCOPE.items() if data.get(k) is not None},
        )
    except BadSignature as err:
        raise LinkInvalid("this link is not valid (its signature does not match)") from err
    except (KeyError, TypeError, ValueError) as err:
        raise LinkInvalid("this link is malformed") from err
    if (now or datetime.now(UTC)) >= claims.expires_at:
        raise LinkExpired(f"this link expired on {claims.expires_at:%Y-%m-%d %H:%M} UTC")
    return claims
