"""Every regular expression that reads a value from outside runs in linear time.

A pattern that backtracks (`\\d+\\.?\\d*` tries every split of a run of digits: quadratic) turns one
long field into minutes of CPU in the event loop: one request stops the API. This walks every
pattern the edge uses — the OpenAPI schema's (`Field(pattern=...)`, `json_schema_extra`, query
and path parameters), the parameters of the routes outside the schema (workspace and link
forms), every model's JSON Schema and the compiled patterns and pattern constants of the `api`
and `domain` modules — and runs each, as Python's `re` would (the slowest engine that reads
them), against long pathological inputs within a time budget. Each pattern runs in a child
process, so a quadratic one is stopped and named instead of hanging the suite."""

from __future__ import annotations

import importlib
import multiprocessing
import pkgutil
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

import api
import domain
from api.app import create_app
from core.settings import Settings
from tests.helpers.routes import api_routes

pytestmark = pytest.mark.unit

LENGTH = 50_000  # characters of each pathological input (a quadratic pattern needs minutes for one)
BUDGET = 0.2  # CPU seconds for one input (a linear pattern needs about 1 ms; CPU time, so a busy machine is no excuse)
GRACE = 10.0  # wall seconds the parent waits for one input before it calls the pattern non-linear

# Runs of what patterns repeat, each followed by what makes the match fail at the very end.
RUNS = [
    "1",
    "0",
    "a",
    "A",
    "x",
    "Q",
    " ",
    "\t",
    "-",
    "_",
    ".",
    "/",
    ":",
    "@",
    "é",
    "1.",
    "a.",
    "a-",
    "1-",
    "a1",
    "aA",
    "a ",
    "a@",
    "0.0",
    "2026-Q1",
    "2027-03-31",
    "\\",
]
ENDS = ["", "!", "x", "\x00", "\n", " x", "e", "."]


def pathological() -> list[tuple[str, str]]:
    """(label, text) pairs: each run repeated to LENGTH, then each end; also behind a plausible start."""
    out = []
    for run in RUNS:
        body = run * (LENGTH // len(run))
        for end in ENDS:
            out.append((f"{run!r}*{len(body) // len(run)}+{end!r}", body + end))
        out.append((f"'2'+{run!r}*n+'!'", "2" + body + "!"))
    return out


def _modules(package) -> Iterator[Any]:
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        yield importlib.import_module(info.name)


def _schema_patterns(schema: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "pattern" and isinstance(value, str):
                yield where, value
            else:
                yield from _schema_patterns(value, where)
    elif isinstance(schema, list):
        for item in schema:
            yield from _schema_patterns(item, where)


def _param_patterns(dependant, where: str) -> Iterator[tuple[str, str]]:
    params = [
        *dependant.path_params,
        *dependant.query_params,
        *dependant.header_params,
        *dependant.cookie_params,
        *dependant.body_params,
    ]
    for param in params:
        for meta in param.field_info.metadata:
            pattern = getattr(meta, "pattern", None)
            if isinstance(pattern, str):
                yield f"{where} {param.name}", pattern
    for sub in dependant.dependencies:
        yield from _param_patterns(sub, where)


def collect() -> dict[str, tuple[str, int]]:
    """Every pattern (and its flags), keyed by pattern text, with one place that uses it."""
    found: dict[str, tuple[str, int]] = {}

    def add(where: str, pattern: str, flags: int = 0) -> None:
        found.setdefault(pattern, (where, flags))

    app = create_app(Settings(_env_file=None, environment="development"), reconcile_every=None)
    for where, pattern in _schema_patterns(app.openapi(), "openapi"):
        add(where, pattern)
    for route in api_routes(app):
        for where, pattern in _param_patterns(route.dependant, route.path):
            add(where, pattern)
    for package in (api, domain):
        for module in _modules(package):
            for name, value in vars(module).items():
                if isinstance(value, re.Pattern) and isinstance(value.pattern, str):
                    add(f"{module.__name__}.{name}", value.pattern, value.flags)
                elif isinstance(value, str) and name.isupper() and value.startswith("^"):
                    add(f"{module.__name__}.{name}", value)
                elif (
                    isinstance(value, type)
                    and issubclass(value, BaseModel)
                    and value.__module__ == module.__name__
                    and not value.__pydantic_generic_metadata__["parameters"]
                ):
                    try:
                        schema = value.model_json_schema()
                    except Exception:  # noqa: BLE001 - a model without a JSON Schema has no pattern to run
                        continue
                    for where, pattern in _schema_patterns(schema, f"{module.__name__}.{name}"):
                        add(where, pattern)
    return found


def _run(pattern: str, flags: int, inputs: list[tuple[str, str]], conn) -> None:
    compiled = re.compile(pattern, flags)
    for i, (_, text) in enumerate(inputs):
        conn.send(("start", i))
        started = time.process_time()
        compiled.search(text)
        compiled.fullmatch(text)
        conn.send(("done", i, time.process_time() - started))
    conn.send(("end",))


def too_slow(pattern: str, flags: int, inputs: list[tuple[str, str]]) -> str | None:
    """None, or the input on which the pattern needed more than BUDGET of CPU (or no answer within GRACE)."""
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_run, args=(pattern, flags, inputs, child), daemon=True)
    proc.start()
    child.close()
    current = None
    try:
        while True:
            if not parent.poll(GRACE):
                return f"{inputs[current][0] if current is not None else 'start'}: no answer within {GRACE} s"
            message = parent.recv()
            if message[0] == "end":
                return None
            if message[0] == "start":
                current = message[1]
            elif message[2] > BUDGET:
                return f"{inputs[message[1]][0]}: {message[2]:.2f} s"
    finally:
        proc.kill()
        proc.join()


def test_the_walk_finds_the_patterns_of_the_edge():
    patterns = collect()
    # the edge types, a journey's period, a form's pattern outside the schema, a validator's constant
    for known in (r"^[a-z0-9][a-z0-9_-]{0,59}$", r"^20[0-9]{2}-Q[1-4]$", "^(approve|override)$"):
        assert known in patterns, sorted(patterns)
    from api import schemas

    assert schemas.DOMAIN in patterns and schemas._NUMBER.pattern in patterns
    assert len(patterns) >= 20


def test_every_pattern_of_the_edge_runs_in_linear_time():
    inputs = pathological()
    slow = {}
    for pattern, (where, flags) in sorted(collect().items()):
        why = too_slow(pattern, flags, inputs)
        if why:
            slow[f"{where}: {pattern[:80]!r}"] = why
    assert not slow, slow


def test_the_budget_catches_a_backtracking_pattern():
    # the digit pattern of the date types before it was made linear: quadratic on a run of digits
    why = too_slow(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*", 0, [("digits", "1" * LENGTH + "x")])
    assert why is not None and "digits" in why
