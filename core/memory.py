"""The cyclic garbage collector in the long-running processes (the worker, the API).

A full collection (generation 2) walks every object the collector tracks. In a worker most of
them are what its imports created (SQLAlchemy, pydantic, temporalio, every journey's modules),
which live as long as the process: each full collection walked them all again, about 110 ms with
the whole worker paused (bench/README.md, session 45). `freeze_startup_objects`, once the process
has imported what it runs, moves the objects that exist then into the collector's permanent
generation (`gc.freeze`): they are never walked again, and full collections walk only what came
after. Objects created later are collected as before."""

from __future__ import annotations

import gc

_frozen = False


def freeze_startup_objects() -> None:
    """Once per process (later calls do nothing): collect, then freeze what is left."""
    global _frozen
    if _frozen:
        return
    _frozen = True
    gc.collect()  # what the imports left as garbage is freed, not kept forever
    gc.freeze()
