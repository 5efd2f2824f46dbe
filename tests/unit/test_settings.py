"""Settings refuse the development default of every secret outside development."""

from __future__ import annotations

import base64

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
    keys = "k1:" + base64.b64encode(bytes(32)).decode()
    assert Settings(_env_file=None, environment="production", payload_keys=keys, **values).environment == "production"


def test_production_refuses_to_store_partner_data_in_clear():
    values = {name: "a-long-random-value-" + name for name in DEV_SECRETS}
    with pytest.raises(ValidationError, match="PAYLOAD_KEYS"):
        Settings(_env_file=None, environment="production", **values)


@pytest.mark.parametrize(
    ("keys", "message"),
    [("k1", "expected <id>:<base64 key>"), ("k1:!!!", "not base64"), ("k1:" + "QUFB", "must be 32 bytes")],
)
def test_a_malformed_key_ring_stops_the_start_naming_the_problem(keys, message):
    with pytest.raises(ValidationError, match=message):
        Settings(_env_file=None, payload_keys=keys)


def test_the_environment_variable_is_read(monkeypatch):
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("LINK_SECRET", "insecure-dev-link-secret-change-me")
    with pytest.raises(ValidationError, match="LINK_SECRET"):
        Settings(_env_file=None)
