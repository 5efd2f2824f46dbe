"""Brute force is slowed down per client: failed attempts (bad API keys, bad or reused decision
links, failed sign-ins) are counted per client and kind in PostgreSQL (`rate_limits`), so every API
process shares one budget and gives the same answer. Past `limit` failures within `window`
seconds of the first one, a failed attempt is answered 429 with Retry-After until the window has
passed. Only failures are counted and limited: valid credentials are answered normally, whatever
the budget of their address (behind an ingress every client may share one).

The same counter is a budget for partner keys' updates to their own journeys (`spend`): every
update counts, past `PARTNER_UPDATES_PER_MINUTE` per key the answer is 429 with Retry-After.

One statement per check (an upsert that returns the count, or one read); a valid request costs
none. The client is the peer address, or the X-Forwarded-For hop in front of the trusted proxies
(`TRUSTED_PROXIES`) when the peer is one of them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

from fastapi import HTTPException, Request
from sqlalchemy import case, delete, extract, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from store.models.limits import RateLimit

PRUNE_EVERY = 1000  # failures counted by a process between two deletions of finished windows
PRUNE_AFTER = timedelta(hours=1)  # the longest window a limiter may have


@dataclass
class FailureLimiter:
    """At most `limit` failures of kind `name` per key within `window` seconds of the first."""

    name: str
    limit: int
    window: float = 60.0
    _counted: int = 0

    def key(self, subject: str) -> str:
        return f"{self.name}:{subject}"[:400]

    async def fail(self, engine: AsyncEngine, subject: str) -> int | None:
        """Count a failure (one upsert); seconds to wait if `subject` is now over the limit, else None."""
        window = timedelta(seconds=self.window)
        now = func.now()
        current = RateLimit.window_start > now - window  # in the update: the stored row
        stmt = (
            insert(RateLimit)
            .values(key=self.key(subject), window_start=now, hits=1)
            .on_conflict_do_update(
                index_elements=[RateLimit.key],
                set_={
                    "hits": case((current, RateLimit.hits + 1), else_=1),
                    "window_start": case((current, RateLimit.window_start), else_=now),
                },
            )
            .returning(RateLimit.hits, extract("epoch", RateLimit.window_start + window - now))
        )
        async with engine.connect() as conn:
            hits, remaining = (await conn.execute(stmt)).one()
            self._counted += 1
            if self._counted % PRUNE_EVERY == 0:
                await conn.execute(delete(RateLimit).where(RateLimit.window_start < func.now() - PRUNE_AFTER))
        return _wait(remaining) if hits > self.limit else None


async def blocked(engine: AsyncEngine, checks: Sequence[tuple[FailureLimiter, str]]) -> int | None:
    """Seconds to wait when any (limiter, subject) has used its whole budget, else None (one read)."""
    limiters = {limiter.key(subject): limiter for limiter, subject in checks}
    stmt = select(RateLimit.key, RateLimit.hits, extract("epoch", func.now() - RateLimit.window_start)).where(
        RateLimit.key.in_(list(limiters))
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    waits = [
        _wait(limiters[key].window - float(age))
        for key, hits, age in rows
        if float(age) < limiters[key].window and hits >= limiters[key].limit
    ]
    return max(waits, default=None)


def _wait(remaining) -> int:
    return max(1, math.ceil(float(remaining)))


Network = IPv4Network | IPv6Network


def _trusted(host: str, networks: Sequence[Network]) -> bool:
    try:
        address = ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in networks)


def client_of(request: Request) -> str:
    """The client's address: the peer, or, when the peer is a trusted proxy, the nearest
    X-Forwarded-For hop that is not one (a client cannot choose its address by sending the header)."""
    peer = request.client.host if request.client else "unknown"
    trusted = getattr(request.app.state, "trusted_proxies", [])
    if not trusted or not _trusted(peer, trusted):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getlist("x-forwarded-for")).split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            return hop[:100]
    return hops[0][:100] if hops else peer


def networks(cidrs: Sequence[object]) -> list[Network]:
    """The trusted proxies' networks (from the settings' CIDRs)."""
    return [ip_network(str(cidr), strict=False) for cidr in cidrs]


def engine_of(request: Request) -> AsyncEngine:
    return request.app.state.limits_engine


async def _charge(limiter: FailureLimiter, request: Request, key: str, refusal: str) -> None:
    """Count one attempt against `key` (one upsert); 429 with Retry-After once past the limit."""
    wait = await limiter.fail(engine_of(request), key)
    if wait is not None:
        raise HTTPException(429, detail=f"{refusal}; try again in {wait} s", headers={"Retry-After": str(wait)})


async def failed(limiter: FailureLimiter, request: Request, what: str) -> None:
    """Count a failed attempt of this client; 429 with Retry-After when it failed too often lately."""
    await _charge(limiter, request, client_of(request), f"too many failed {what} from this client")


async def spend(limiter: FailureLimiter, request: Request, key_id: object, what: str) -> None:
    """Count one `what` of this API key (one upsert); 429 with Retry-After past its budget."""
    await _charge(
        limiter, request, str(key_id), f"too many {what} from this API key (at most {limiter.limit} a minute)"
    )
