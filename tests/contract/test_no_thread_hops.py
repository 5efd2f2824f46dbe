"""No request hops to a thread (issue 23: creates cost what their writes cost). FastAPI runs a
dependency or an endpoint that is a plain function (or a class) in its thread pool: a hand-off to a
worker thread and back per call, which waits for the GIL behind whatever the event loop is running
(two such hops were in every `POST /deals`). Every route's endpoint and dependencies are coroutines;
a real create and a real list call the thread pool not once."""

from __future__ import annotations

import inspect

import pytest
from fastapi.routing import iter_route_contexts

from api.app import create_app
from core.settings import Settings
from tests.helpers.api import deal_body, enrol


def _is_coroutine(call) -> bool:
    if inspect.isclass(call):
        return False  # FastAPI calls the class: its __init__ runs in the thread pool
    if inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call):
        return True
    method = type(call).__call__  # an instance, e.g. the bearer scheme
    return inspect.iscoroutinefunction(method)


def _sync_calls(dependant, route: str) -> list[str]:
    out = []
    for sub in dependant.dependencies:
        if sub.call is not None and not _is_coroutine(sub.call):
            out.append(f"{route}: dependency {getattr(sub.call, '__qualname__', sub.call)!r}")
        out.extend(_sync_calls(sub, route))
    return out


def test_every_endpoint_and_dependency_of_every_route_is_a_coroutine():
    app = create_app(Settings(_env_file=None, environment="development"), reconcile_every=None)
    found, walked = [], 0
    for route in iter_route_contexts(app.routes):
        dependant = getattr(route, "dependant", None)
        if dependant is None:  # starlette's own routes (the schema, the docs, static files)
            continue
        walked += 1
        name = f"{sorted(route.methods or ())} {route.path}"
        if not _is_coroutine(dependant.call):
            found.append(f"{name}: endpoint {dependant.call.__qualname__}")
        found.extend(_sync_calls(dependant, name))
    assert walked > 150, walked  # every operation of the API, the portal and the workspace
    assert not found, "run in FastAPI's thread pool:\n" + "\n".join(sorted(set(found)))


def _plain() -> int:
    return 1


class _Form:
    def __init__(self, x: str = "") -> None:
        self.x = x


def test_the_walk_finds_a_plain_function_and_a_class_dependency():
    """What the walk above refuses (a validator is tested for what it refuses)."""
    from fastapi import Depends, FastAPI

    app = FastAPI()

    @app.get("/a")
    async def a(n: int = Depends(_plain)) -> int:
        return n

    @app.get("/b")
    async def b(form: _Form = Depends()) -> str:
        return form.x

    @app.get("/c")
    def c() -> str:
        return ""

    @app.get("/d")
    async def d() -> str:
        return ""

    routes = {r.path: r.dependant for r in iter_route_contexts(app.routes) if getattr(r, "dependant", None)}
    assert _sync_calls(routes["/a"], "/a") == ["/a: dependency '_plain'"]
    assert _sync_calls(routes["/b"], "/b") == ["/b: dependency '_Form'"]
    assert not _is_coroutine(routes["/c"].call)
    assert _is_coroutine(routes["/d"].call) and _sync_calls(routes["/d"], "/d") == []


@pytest.fixture
def thread_pool_calls(monkeypatch):
    """Every call FastAPI hands to its thread pool (its two call sites), recorded."""
    import fastapi.dependencies.utils as dependencies
    import fastapi.routing as routing

    calls: list[str] = []

    def recording(original):
        async def run(func, *args, **kwargs):
            calls.append(getattr(func, "__qualname__", repr(func)))
            return await original(func, *args, **kwargs)

        return run

    monkeypatch.setattr(dependencies, "run_in_threadpool", recording(dependencies.run_in_threadpool))
    monkeypatch.setattr(routing, "run_in_threadpool", recording(routing.run_in_threadpool))
    return calls


async def test_a_create_and_a_list_never_enter_the_thread_pool(api, ops, thread_pool_calls):
    partner = await enrol(api, ops, tier="registered", domain="no-hops.test")
    r = await api.post("/deals", json=deal_body(partner_id=partner["id"]), headers=ops)
    assert r.status_code == 201, r.text
    assert (await api.get("/deals", headers=ops)).status_code == 200
    assert thread_pool_calls == []
