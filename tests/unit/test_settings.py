"""Settings refuse the development default of every secret outside development."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.settings import DEV_SECRETS, Settings

pytestmark = pytest.mark.unit


def test_development_accepts_the_defaults():
    assert Settings(_env_file=None).environment == "development"


@pytest.mark.parametrize("name", sorted(DEV_SECRETS))
def test_production_refuses_a_default_secret_naming_the_variable(name):
    with pytest.raises(ValidationError, match=name.upper()):
        Settings(_env_file=None, environment="production")


def test_production_starts_with_real_secrets():
    values = {name: "a-long-random-value-" + name for name in DEV_SECRETS}
    assert Settings(_env_file=None, environment="production", **values).environment == "production"


def test_the_environment_variable_is_read(monkeypatch):
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("LINK_SECRET", "insecure-dev-link-secret-change-me")
    with pytest.raises(ValidationError, match="LINK_SECRET"):
        Settings(_env_file=None)
