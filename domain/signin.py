"""Signed magic sign-in links of the CAM workspace, made like the decision links
(`domain/links.py`): bound to one address, expiring, single-use (the `web_used_sign_in_links`
table records each `jti` once)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, URLSafeSerializer

from domain.links import LinkExpired, LinkInvalid

SALT = "camlights.web-sign-in"  # a decision link is never a sign-in link, nor the reverse
PORTAL_SALT = "camlights.portal-sign-in"  # nor a workspace link a partner portal link


@dataclass(frozen=True)
class SignInClaims:
    email: str
    jti: str
    expires_at: datetime


def new_claims(email: str, valid_for: timedelta, now: datetime | None = None) -> SignInClaims:
    return SignInClaims(email=email, jti=secrets.token_hex(16), expires_at=(now or datetime.now(UTC)) + valid_for)


def make_sign_in_token(secret: str, claims: SignInClaims, salt: str = SALT) -> str:
    return URLSafeSerializer(secret, salt=salt).dumps(
        {"e": claims.email, "j": claims.jti, "exp": int(claims.expires_at.timestamp())}
    )


def read_sign_in_token(secret: str, token: str, now: datetime | None = None, salt: str = SALT) -> SignInClaims:
    try:
        data = URLSafeSerializer(secret, salt=salt).loads(token)
        claims = SignInClaims(
            email=str(data["e"]), jti=str(data["j"]), expires_at=datetime.fromtimestamp(int(data["exp"]), UTC)
        )
    except BadSignature as err:
        raise LinkInvalid("this sign-in link is not valid (its signature does not match)") from err
    except (KeyError, TypeError, ValueError) as err:
        raise LinkInvalid("this sign-in link is malformed") from err
    if (now or datetime.now(UTC)) >= claims.expires_at:
        raise LinkExpired(f"this sign-in link expired at {claims.expires_at:%Y-%m-%d %H:%M} UTC; ask for a new one")
    return claims
