"""Signed one-click decision links: bound to one entity (a deal, an MDF request...), one decision
and one approver, expiring, and single-use (the `used_links` table records each `jti` once).

Each journey declares its kinds of link in its manifest (`JourneySpec.link_kinds`, a
`core.journey.LinkKind`): its own salt (a token of one kind never reads as another) and its own
claims type, a frozen dataclass deriving from `Claims` that names the field carrying the entity's
id (`ENTITY`) and its further integer fields (`SCOPE`, token field: claim). The token format is
the same for every kind: links already sent keep working.

`LinkClaims` is the untyped view (every field any kind has carried, the entity in `deal_id`):
what the codec reads when no kind is given, kept for tooling and tests. `SALT` and `MDF_SALT`
are frozen copies of the deal's and MDF's salts (tests/kit/test_registry.py checks the kinds
still use them: the links in emails already sent were signed with them)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar, overload

from itsdangerous import BadSignature, URLSafeSerializer

SALT = "camlights.deal-decision"
MDF_SALT = "camlights.mdf-decision"  # a deal link never works as an MDF link, nor the reverse


class Claims:
    """What every kind's claims carry (each kind: a frozen dataclass deriving from this)."""

    ENTITY: ClassVar[str]  # the field holding the id of the entity decided on (token field "d")
    SCOPE: ClassVar[Mapping[str, str]] = {}  # the kind's further integer claims: token field -> field
    decision: str
    approver: str  # an actor: "cam:<id>" or "ops:<id>" (see domain/actors.py)
    jti: str
    expires_at: datetime

    @property
    def entity_id(self) -> str:
        return str(getattr(self, self.ENTITY))


C = TypeVar("C", bound=Claims)
SCOPE = {"l": "level", "r": "round", "m": "amount_minor"}  # token field: claim (every kind's so far)


@dataclass(frozen=True)
class LinkClaims(Claims):
    """The untyped view of a link (see the module's docstring)."""

    ENTITY = "deal_id"
    SCOPE = SCOPE
    deal_id: str  # the entity decided on, whatever its kind
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


def make_token(secret: str, claims: Claims, salt: str = SALT) -> str:
    data: dict[str, object] = {
        "d": claims.entity_id,
        "a": claims.decision,
        "by": claims.approver,
        "j": claims.jti,
        "exp": int(claims.expires_at.timestamp()),
    }
    data.update({k: getattr(claims, name) for k, name in claims.SCOPE.items() if getattr(claims, name) is not None})
    return URLSafeSerializer(secret, salt=salt).dumps(data)


@overload
def read_token(secret: str, token: str, now: datetime | None = None, salt: str = SALT) -> LinkClaims: ...
@overload
def read_token(secret: str, token: str, now: datetime | None = None, salt: str = SALT, *, kind: type[C]) -> C: ...
def read_token(
    secret: str, token: str, now: datetime | None = None, salt: str = SALT, *, kind: type[Claims] = LinkClaims
) -> Claims:
    """The claims of a genuine, unexpired token of `kind` (signed with `salt`; the untyped view
    when no kind is given); a token field the kind does not know is ignored."""
    try:
        data = URLSafeSerializer(secret, salt=salt).loads(token)
        values: dict[str, Any] = {
            kind.ENTITY: str(data["d"]),
            "decision": str(data["a"]),
            "approver": str(data["by"]),
            "jti": str(data["j"]),
            "expires_at": datetime.fromtimestamp(int(data["exp"]), UTC),
        }
        values.update({name: int(data[k]) for k, name in kind.SCOPE.items() if data.get(k) is not None})
        claims = kind(**values)
    except BadSignature as err:
        raise LinkInvalid("this link is not valid (its signature does not match)") from err
    except (KeyError, TypeError, ValueError) as err:
        raise LinkInvalid("this link is malformed") from err
    if (now or datetime.now(UTC)) >= claims.expires_at:
        raise LinkExpired(f"this link expired on {claims.expires_at:%Y-%m-%d %H:%M} UTC")
    return claims
