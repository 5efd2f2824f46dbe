"""Settings default to production, where they refuse a weak link secret and a missing or weak
payload key ring, each with a message naming the variable and the problem."""

from __future__ import annotations

import base64
import random
import secrets
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from core.settings import DEV_LINK_SECRET, DEV_SECRETS, Settings

pytestmark = pytest.mark.unit

KEYS = "k1:" + base64.b64encode(secrets.token_bytes(32)).decode()
STRONG = {name: secrets.token_urlsafe(32) for name in DEV_SECRETS}
EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "secret.yaml.example"


def test_production_is_the_default(monkeypatch):
    monkeypatch.delenv("ENVIRONMENT", raising=False)
    with pytest.raises(ValidationError, match="LINK_SECRET is still the development default"):
        Settings(_env_file=None)
    assert Settings(_env_file=None, payload_keys=KEYS, **STRONG).environment == "production"


def test_development_accepts_the_defaults():
    assert Settings(_env_file=None, environment="development").link_secret == DEV_LINK_SECRET


@pytest.mark.parametrize("name", sorted(DEV_SECRETS))
def test_production_refuses_a_default_secret_naming_the_variable(name):
    with pytest.raises(ValidationError, match=name.upper()):
        Settings(_env_file=None, environment="production")


def _placeholder() -> str:
    (doc,) = [d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d]
    return doc["stringData"]["LINK_SECRET"]


def _random_text(n: int, seed: int) -> str:
    """n random bytes, URL-safe base64, the same in every pytest-xdist worker (test ids must match)."""
    return base64.urlsafe_b64encode(random.Random(seed).randbytes(n)).rstrip(b"=").decode()


def _random_hex(n: int, seed: int) -> str:
    return random.Random(seed).randbytes(n).hex()


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("x", "too few different characters"),
        (DEV_LINK_SECRET, "development default"),
        (_placeholder(), "placeholder"),
        ("please-change-this-" + _random_text(32, seed=1), "placeholder (contains 'change')"),
        ("example" + _random_text(32, seed=2), "placeholder (contains 'example')"),
        ("my-secret-" + _random_text(32, seed=3), "placeholder (contains 'secret')"),
        ("Placeholder" + _random_text(32, seed=4), "placeholder (contains 'placeholder')"),
        (_random_text(16, seed=5) + "zzzzzz" + _random_text(16, seed=6), "repeats a character"),
        ("aB3$" * 20, "repeated pattern"),
        ("0110100110010110100101100110100110010110011010010110", "too few different characters"),
        (_random_text(24, seed=7), "too short"),  # 24 random bytes
        (_random_hex(24, seed=8), "too short"),
    ],
)
def test_production_refuses_a_weak_link_secret(value, problem):
    with pytest.raises(ValidationError, match="LINK_SECRET") as err:
        Settings(_env_file=None, environment="production", payload_keys=KEYS, link_secret=value)
    assert problem in str(err.value)


@pytest.mark.parametrize(
    "value",
    [secrets.token_urlsafe(32), secrets.token_hex(32), base64.b64encode(secrets.token_bytes(32)).decode()],
    ids=["token_urlsafe(32)", "openssl rand -hex 32", "openssl rand -base64 32"],
)
def test_production_starts_with_32_random_bytes(value):
    assert Settings(_env_file=None, environment="production", payload_keys=KEYS, link_secret=value).link_secret == value


def test_production_refuses_to_store_partner_data_in_clear():
    with pytest.raises(ValidationError, match="PAYLOAD_KEYS is not set"):
        Settings(_env_file=None, environment="production", **STRONG)


@pytest.mark.parametrize("key", [bytes(32), b"0123456789abcdef" * 2], ids=["zeros", "a repeated word"])
def test_production_refuses_a_payload_key_that_is_not_random(key):
    keys = f"{KEYS},weak:{base64.b64encode(key).decode()}"
    with pytest.raises(ValidationError, match="PAYLOAD_KEYS: key 'weak' is not random"):
        Settings(_env_file=None, environment="production", payload_keys=keys, **STRONG)
    assert Settings(_env_file=None, environment="development", payload_keys=keys).payload_keys == keys


def test_the_placeholder_key_ring_of_the_example_is_refused():
    (doc,) = [d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d]
    with pytest.raises(ValidationError, match="PAYLOAD_KEYS"):
        Settings(_env_file=None, environment="production", payload_keys=doc["stringData"]["PAYLOAD_KEYS"], **STRONG)


@pytest.mark.parametrize(
    ("keys", "message"),
    [("k1", "expected <id>:<base64 key>"), ("k1:!!!", "not base64"), ("k1:" + "QUFB", "must be 32 bytes")],
)
def test_a_malformed_key_ring_stops_the_start_naming_the_problem(keys, message):
    with pytest.raises(ValidationError, match=message):
        Settings(_env_file=None, environment="development", payload_keys=keys)


def test_the_environment_variable_is_read(monkeypatch):
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("LINK_SECRET", "insecure-dev-link-secret-change-me")
    with pytest.raises(ValidationError, match="LINK_SECRET"):
        Settings(_env_file=None)
    monkeypatch.setenv("ENVIRONMENT", "development")
    assert Settings(_env_file=None).environment == "development"
