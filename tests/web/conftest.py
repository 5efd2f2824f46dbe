"""The CAM workspace in a real browser: the API served over real HTTP (uvicorn on a free
loopback port) with the session's PostgreSQL, SMTP sink and Temporal dev server, a worker on
the test's task queue, and headless Chromium driven by Playwright."""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import uvicorn

from core.settings import Settings
from worker.services import free_port

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
NO_BROWSER = (
    "no Chromium for the browser tests: install the Debian package (`apt-get install -y chromium`, what .ci/run "
    "does), or run `.venv/bin/playwright install chromium`, or point CAMLIGHTS_CHROMIUM at a Chromium binary"
)


def system_chromium() -> str | None:
    """A Chromium installed on the machine (or named by CAMLIGHTS_CHROMIUM), else None."""
    named = os.environ.get("CAMLIGHTS_CHROMIUM")
    if named:
        return named
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if found := shutil.which(name):
            return found
    return None


@pytest_asyncio.fixture(scope="session")
async def browser():
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=20_000)  # 2 shared cores: a journey may take a while to answer

    async with async_playwright() as pw:
        executable = system_chromium()
        if executable is None and not Path(pw.chromium.executable_path).exists():
            pytest.fail(NO_BROWSER, pytrace=False)  # never a skip: CI must not pass without browser tests
        chromium = await pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@dataclass
class Live:
    url: str
    settings: Settings
    http: httpx.AsyncClient  # the JSON API of the same server


@pytest.fixture
def web_settings() -> dict:
    """Settings of the live app that a test module changes (by overriding this fixture)."""
    return {}


@pytest_asyncio.fixture
async def live(settings: Settings, sessionmaker, worker, web_settings):
    """The real app on http://127.0.0.1:<free port> (lifespan included), and a worker."""
    from api.app import create_app

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app_settings = settings.model_copy(update={"public_base_url": url, **web_settings})
    server = uvicorn.Server(
        uvicorn.Config(create_app(app_settings, reconcile_every=None), host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        if task.done():
            task.result()  # the server failed to start: raise its error
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"uvicorn did not start on {url}")
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        yield Live(url=url, settings=app_settings, http=http)
    server.should_exit = True
    await asyncio.wait_for(task, 15)


@pytest_asyncio.fixture
async def new_context(browser):
    """Browser contexts (separate cookie jars: separate sessions), closed after the test."""
    contexts = []

    async def make(width: int = 1280, height: int = 860):
        context = await browser.new_context(viewport={"width": width, "height": height}, timezone_id="Europe/Berlin")
        context.set_default_timeout(20_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        await context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
