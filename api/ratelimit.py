"""Brute force is slowed down per client: after `limit` failed attempts (bad API keys, bad or
reused decision links) within `window` seconds, a client gets 429 until the window has passed.
In-process memory: with several API replicas, each counts its own clients."""

from __future__ import annotations

import time
from collections import deque

from fastapi import HTTPException, Request


class FailureLimiter:
    def __init__(self, limit: int, window: float = 60.0, max_clients: int = 100_000):
        self.limit, self.window, self.max_clients = limit, window, max_clients
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, client: str, now: float) -> deque[float]:
        failures = self._failures.get(client)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[client]
        return failures

    def retry_after(self, client: str) -> int | None:
        """Seconds to wait when the client is over its limit, else None."""
        now = time.monotonic()
        failures = self._recent(client, now)
        if len(failures) < self.limit:
            return None
        return max(1, int(failures[0] + self.window - now) + 1)

    def fail(self, client: str) -> None:
        if len(self._failures) >= self.max_clients:  # bounded memory: forget the oldest client
            self._failures.pop(next(iter(self._failures)))
        self._failures.setdefault(client, deque()).append(time.monotonic())


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def check(limiter: FailureLimiter, request: Request, what: str) -> None:
    """429 with Retry-After when this client failed too often lately."""
    wait = limiter.retry_after(client_of(request))
    if wait is not None:
        raise HTTPException(
            429,
            detail=f"too many failed {what} from this client; try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
