"""The event loop of our long-running processes: libuv's (uvloop) where it is installed.

Every database statement, SMTP exchange, workflow task and activity of a worker goes through
its event loop; uvloop's costs 13-17 % less CPU than asyncio's for the simulator's runs
(bench/README.md, issue 26). The API gets it from uvicorn, which picks uvloop when installed;
`camlights worker`, the simulator and the benchmarks run through `run`."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on uvloop's event loop where it is installed (a dependency on every
    platform but Windows), asyncio's elsewhere."""
    try:
        import uvloop
    except ImportError:  # not on this platform
        return asyncio.run(main)
    return uvloop.run(main)
