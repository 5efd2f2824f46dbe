"""The worker and the API freeze what their startup created (`core/memory.py`): the collector's
full collections then walk only what came after (bench/README.md, session 45). Each in a fresh
interpreter, where nothing froze before."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from core.settings import Settings
from tests.helpers.processes import process_env

ONCE = """
import gc
from core.memory import freeze_startup_objects
assert gc.get_freeze_count() == 0
freeze_startup_objects()
frozen = gc.get_freeze_count()
kept = [[i] for i in range(10_000)]  # created after: not frozen by a second call
freeze_startup_objects()
print(frozen, gc.get_freeze_count())
"""

STARTED = """
import asyncio, gc, sys

async def main():
    from core.settings import get_settings
    from core.temporal import connect
    from store.db import make_engine, make_sessionmaker

    settings = get_settings()
    before = gc.get_freeze_count()
    if sys.argv[1] == "worker":
        from worker.main import build_worker

        engine = make_engine(settings.database_url)
        build_worker(await connect(settings), settings, make_sessionmaker(engine))
        await engine.dispose()
    else:
        from api.app import create_app

        app = create_app(settings, reconcile_every=None)
        async with app.router.lifespan_context(app):
            pass
    print(before, gc.get_freeze_count())

asyncio.run(main())
"""


def run(code: str, *args: str, env: dict[str, str] | None = None) -> list[int]:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return [int(n) for n in out.stdout.split()]


def test_freezing_happens_once_per_process_and_keeps_what_comes_later_collectable():
    frozen, after = run(ONCE)
    assert frozen > 1_000  # the interpreter's own objects
    assert after == frozen


def test_the_worker_and_the_api_freeze_their_startup_objects(settings: Settings):
    env = process_env(settings)
    for process in ("worker", "api"):
        before, after = run(STARTED, process, env=env)
        assert before == 0, process
        assert after > 100_000, process  # every imported module's objects
