"""The API keys this process looked up, kept while PostgreSQL tells it of every change to them.

Every request authenticates with a bearer key; looking it up was a statement (and a round trip)
of its own on every request. An API process keeps the principal of each valid key it looked up
(never an unknown or a revoked one), and drops them all when any key changes:

- PostgreSQL notifies the channel `CHANNEL` when a statement that updated, deleted or truncated
  `api_keys` commits (migration 0017's trigger): a revocation by another API process, the
  worker, the CLI or by hand. The listener (`listen`) holds one connection of its own.
- A change committed by this process through SQLAlchemy drops them at once, before the
  notification comes back (store/apikeys.py `watch_key_changes`): a key revoked by a request is
  refused by the next one.
- Nothing is kept unless the listener is connected and listening: before it is, after it lost
  its connection (then until it listens again: a change may have been missed meanwhile), or with
  no listener at all, every request looks its key up. Listening is proven, not assumed: every
  `CHECK_EVERY` seconds (and before it starts) the listener sends a notification of its own and
  must hear it back, which also catches a transaction-mode pooler that would swallow LISTEN.
- A lookup that began before the latest drop is not kept (`generation`): a revocation committed
  while it ran cannot be overwritten by what it read.
- An entry is kept at most `MAX_AGE` seconds, and at most `MAX_ENTRIES` of them.

New keys need nothing: a key not kept is looked up."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
import weakref
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

CHANNEL = "camlights_api_keys"  # store/migrations/versions/0017_api_keys_notify.py
MAX_AGE = 300.0  # seconds an entry is kept even if no change is announced
MAX_ENTRIES = 10_000
CHECK_EVERY = 5.0  # seconds between the listener's probes of its connection (`_probe`)
APPLICATION_NAME = "camlights-key-listener"  # its connection in pg_stat_activity
PROBE = "probe:"  # the payload prefix of a probe (every API process hears every probe; none drops)
CHECK_TIMEOUT = 2.0
RETRY_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
START_WAIT = 5.0  # seconds the API's start waits for the listener (then it starts looking every key up)

_caches: weakref.WeakSet[KeyCache] = weakref.WeakSet()


def drop_everywhere() -> None:
    """A key changed in this process (store/apikeys.py `watch_key_changes`): every cache drops all."""
    for cache in list(_caches):
        cache.drop()


@dataclass(eq=False)
class KeyCache:
    max_age: float = MAX_AGE
    max_entries: int = MAX_ENTRIES
    generation: int = 0
    listening: bool = False
    # key hash -> (when it was kept, its principal: api/auth.py)
    _entries: dict[str, tuple[float, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _caches.add(self)

    def get(self, digest: str) -> Any:
        if not self.listening:
            return None
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if time.monotonic() - entry[0] > self.max_age:
            self._entries.pop(digest, None)
            return None
        return entry[1]

    def put(self, digest: str, principal: Any, generation: int) -> None:
        """Keep what a lookup that began at `generation` found (nothing if a drop came since)."""
        if not self.listening or generation != self.generation:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.pop(next(iter(self._entries)))  # the oldest
        self._entries[digest] = (time.monotonic(), principal)

    def drop(self) -> None:
        self.generation += 1
        self._entries.clear()

    async def wait_listening(self, seconds: float) -> bool:
        """Whether the listener listens within `seconds` (the API's start waits for it)."""
        ends = time.monotonic() + seconds
        while not self.listening:
            if time.monotonic() >= ends:
                log.warning("API key cache: no listener after %gs; looking every key up until there is", seconds)
                return False
            await asyncio.sleep(0.02)
        return True

    def __len__(self) -> int:
        return len(self._entries)

    async def listen(self, database_url: str, connect: Any = None) -> None:
        """Run until cancelled: LISTEN on `CHANNEL`, drop everything on each notification; keep
        entries only while listening (reconnect with backoff when the connection is lost)."""
        import psycopg

        conninfo = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        connect = connect or psycopg.AsyncConnection.connect
        attempt = 0
        while True:
            try:
                async with await connect(conninfo, autocommit=True, application_name=APPLICATION_NAME) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    await self._probe(conn)  # it hears what is sent on the channel
                    self.drop()  # a change may have come while nobody listened
                    self.listening = True
                    attempt = 0
                    await self._follow(conn)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # connection refused or lost: keep nothing until listening again
                log.warning("API key cache: not listening for key changes (%s); looking every key up", err)
            finally:
                self.listening = False
                self.drop()
            await asyncio.sleep(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)])
            attempt += 1

    async def _follow(self, conn: Any) -> None:
        while True:
            async with contextlib.aclosing(conn.notifies(timeout=CHECK_EVERY)) as notes:
                async for note in notes:
                    self._heard(note)
            await self._probe(conn)  # quiet for a while: a dead peer or a deaf LISTEN sends nothing

    async def _probe(self, conn: Any) -> None:
        """Send a notification of its own on the channel and hear it back within `CHECK_TIMEOUT`,
        else raise: the connection is gone, or LISTEN does not reach this session (a
        transaction-mode pooler between: it would never hear a revocation)."""
        token = f"{PROBE}{uuid.uuid4().hex}"
        async with asyncio.timeout(CHECK_TIMEOUT):
            await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, token))
        async with contextlib.aclosing(conn.notifies(timeout=CHECK_TIMEOUT)) as notes:
            async for note in notes:
                if note.payload == token:
                    return
                self._heard(note)
        raise ConnectionError(f"did not hear its own notification on {CHANNEL} within {CHECK_TIMEOUT:g}s")

    def _heard(self, note: Any) -> None:
        if not note.payload.startswith(PROBE):  # a key changed (the trigger sends its operation)
            self.drop()
