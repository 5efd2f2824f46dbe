"""The worker's sticky-cache size comes from the environment (bench/README.md: RSS per size)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.settings import Settings

pytestmark = pytest.mark.unit


def test_the_cache_size_is_read_and_bounded(monkeypatch):
    monkeypatch.setenv("ENVIRONMENT", "development")
    assert Settings(_env_file=None).worker_max_cached_workflows == 1000  # Temporal's own default
    monkeypatch.setenv("WORKER_MAX_CACHED_WORKFLOWS", "3000")
    assert Settings(_env_file=None).worker_max_cached_workflows == 3000
    monkeypatch.setenv("WORKER_MAX_CACHED_WORKFLOWS", "-1")
    with pytest.raises(ValidationError, match="worker_max_cached_workflows"):
        Settings(_env_file=None)
