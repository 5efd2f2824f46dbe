"""The partner portal's tests: the live server and the browser of the workspace's tests."""

from tests.web.conftest import browser, live, new_context, screenshots, web_settings  # noqa: F401
