"""Configuration from the environment (pydantic-settings). Addresses default to the embedded stack.

`ENVIRONMENT` defaults to production: a deploy that forgets it gets the strict checks, never the
development shortcuts. In production the link secret must be at least 32 random bytes (the
development default, placeholders such as `CHANGE-ME...`, short or repetitive values stop the
process at start with an error naming the variable) and the payload key ring is required.
`camlights dev` (`make run`) and the test settings set `ENVIRONMENT=development` explicitly."""

from __future__ import annotations

import math
import re
from collections import Counter
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.codec import CodecError, KeyRing

DEV_LINK_SECRET = "insecure-dev-link-secret-change-me"

# variable name -> its development default: refused outside development.
DEV_SECRETS = {"link_secret": DEV_LINK_SECRET}

SECRET_MIN_BITS = 256  # 32 random bytes: `secrets.token_urlsafe(32)` (43 characters) or `openssl rand -hex 32`
# Words of a placeholder left in a manifest (deploy/k8s/secret.yaml.example) or a made-up value.
PLACEHOLDER_WORDS = ("change", "example", "placeholder", "secret", "password", "insecure", "default", "replace")
MAKE_ONE = "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"


def secret_problem(value: str) -> str | None:
    """Why `value` is not a production secret of at least 32 random bytes, or None when it looks like one.
    The strength is estimated from the characters it uses (hex digits: 4 bits each, base64: 6...)."""
    lowered = value.lower()
    for word in PLACEHOLDER_WORDS:
        if word in lowered:
            return f"it looks like a placeholder (contains {word!r}); {MAKE_ONE}"
    if re.search(r"(.)\1{5,}", value):
        return f"it repeats a character six times or more; {MAKE_ONE}"
    if any(value == value[:n] * (len(value) // n) for n in range(1, len(value) // 2 + 1) if len(value) % n == 0):
        return f"it is a repeated pattern; {MAKE_ONE}"
    counts = Counter(value)
    per_char = -sum(c / len(value) * math.log2(c / len(value)) for c in counts.values()) if value else 0.0
    if len(counts) < 10 or per_char < 3.0:
        return f"it uses too few different characters to be random; {MAKE_ONE}"
    if all(ch in "0123456789abcdef" for ch in lowered):
        alphabet = 16
    else:
        alphabet = sum(
            size
            for size, present in (
                (26, any(ch.islower() for ch in value)),
                (26, any(ch.isupper() for ch in value)),
                (10, any(ch.isdigit() for ch in value)),
                (32, any(not ch.isalnum() for ch in value)),
            )
            if present
        )
    bits = len(value) * math.log2(alphabet)
    if bits < SECRET_MIN_BITS:
        needed = f"at least {SECRET_MIN_BITS} (32 bytes) are needed"
        return f"it is too short: at most {int(bits)} random bits, {needed}; {MAKE_ONE}"
    return None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Literal["development", "production"] = "production"
    database_url: str = "postgresql+psycopg://camlights@127.0.0.1:55432/camlights"
    # Where an API process listens for key changes (api/keycache.py): a direct connection or a
    # session-mode pooler (LISTEN gets nothing through a transaction-mode PgBouncer). Unset: the
    # DATABASE_URL; "off": keep no key, look every request's key up.
    key_changes_url: str | None = None
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "camlights"
    temporal_tls: bool = False  # true for Temporal Cloud or a TLS-terminated cluster
    temporal_api_key: str | None = None  # Temporal Cloud API key (implies TLS)
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    # SMTP connections a worker keeps open between emails (0: a new connection for every email),
    # each reused while idle for less than SMTP_POOL_IDLE_SECONDS (keep it under the relay's own
    # idle timeout; a connection the relay closed anyway is replaced before anything is sent).
    smtp_pool_size: int = Field(4, ge=0, le=100)
    smtp_pool_idle_seconds: float = Field(30, gt=0, le=3600)
    mail_from: str = "CAM Lights <no-reply@camlights.local>"
    ops_email: str = "channel-ops@camlights.local"
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_base_url: str = "http://127.0.0.1:8000"
    link_secret: str = DEV_LINK_SECRET  # signs one-click decision links
    data_dir: Path = Path(".data")
    temporal_ui_port: int = 8233
    # How long an API call waits for a journey to take and record a decision (then 504 / 202).
    update_deadline_seconds: float = 10.0
    # Payload encryption (core/codec.py): `id1:<base64 32-byte key>,id2:...`; the active key encrypts
    # (default: the last one), every key decrypts. Unset: payloads are stored in clear (development only).
    payload_keys: str | None = Field(default=None, repr=False)
    payload_key_active: str | None = None
    # The Temporal Web UI origin allowed to call the codec endpoint (CORS), e.g. http://127.0.0.1:8233.
    codec_cors_origin: str | None = None
    # Request bodies (api/limits.py): the time a whole body may take to arrive (408 after it), for
    # uploads (MDF proofs, up to 64 MiB) and for every other body; uploads at once per API key (429).
    body_read_seconds: float = Field(30, gt=0, le=3600)
    upload_read_seconds: float = Field(300, gt=0, le=3600)
    uploads_per_key: int = Field(2, ge=1, le=100)
    # Failed authentications (or decision-link attempts) per client and minute before 429.
    auth_failures_per_minute: int = 20
    # Updates a partner key may send to its own journeys (deal stages, QBR meetings, MDF dates,
    # milestone reports) per minute, all journeys together; past it 429 with Retry-After.
    partner_updates_per_minute: int = Field(60, ge=1, le=10000)
    # Proxies (CIDRs, e.g. ["10.0.0.0/8"]) whose X-Forwarded-For names the client (the ingress);
    # from any other peer the header is ignored. Empty: the peer address is the client.
    trusted_proxies: list[IPv4Network | IPv6Network] = []
    # MDF proof files: in PostgreSQL unless an S3-compatible bucket is configured (AWS S3, MinIO, Ceph, R2...).
    proof_bucket: str | None = None
    s3_endpoint_url: str | None = None  # e.g. http://minio:9000 (unset: AWS)
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = Field(default=None, repr=False)
    # Observability (core/observability.py): traces to an OpenTelemetry collector (OTLP over HTTP,
    # e.g. http://otel-collector:4318/v1/traces; unset: no export), JSON-lines or text logs, and the
    # worker's Prometheus metrics and health endpoints (0: off).
    otlp_endpoint: str | None = None
    log_format: Literal["json", "text"] = "json"
    worker_metrics_port: int = 9464
    worker_health_port: int = 8081
    worker_observe_host: str = "127.0.0.1"  # 0.0.0.0 in a container
    # Workflows a worker keeps in memory between tasks (the sticky cache; Temporal's default 1000).
    # Evicted ones are replayed from history when they next act. Sizes and RSS: bench/README.md.
    worker_max_cached_workflows: int = Field(1000, ge=0, le=1_000_000)
    # Worker concurrency: workflow tasks, activities and local activities run at once (activities
    # unset: the Temporal SDK's 100 each); long polls kept open for workflow and activity tasks
    # (SDK default 5 each). Measured in bench/README.md ("Decisions").
    # Workflow tasks: 20 by default, as many as the worker's database pool has connections (10 and 10 more).
    # A task's local steps run while it is open, each with a pooled connection: past the pool they
    # only wait (for a connection, for the lead routing lock), a task held open over 5 seconds is
    # heartbeated with tasks of its own, and the worker spends CPU on waiting. Tasks beyond the
    # limit wait in Temporal's queue at no cost (bench/README.md, "session 53").
    worker_max_concurrent_workflow_tasks: int | None = Field(20, ge=2, le=10_000)
    worker_max_concurrent_activities: int | None = Field(None, ge=1, le=10_000)
    worker_max_concurrent_local_activities: int | None = Field(None, ge=1, le=10_000)
    worker_workflow_task_pollers: int | None = Field(None, ge=2, le=100)
    worker_activity_task_pollers: int | None = Field(None, ge=1, le=100)
    # On SIGTERM, how long the worker lets running activities finish (e.g. an email being sent)
    # before cancelling them; Temporal retries a cancelled one on another worker.
    worker_graceful_shutdown_seconds: float = Field(0, ge=0, le=3600)
    # Workflow code runs in Temporal's sandbox (it refuses non-deterministic calls and re-imports
    # each workflow module for every new run). False runs it as plain Python, for less CPU per
    # workflow task; the recorded histories are still replayed in the sandbox by the tests.
    worker_workflow_sandbox: bool = True
    # The CAM workspace (api/web/): validity of an emailed sign-in link, life of a browser session,
    # and the Temporal Web UI that journey links open (default: the embedded UI on temporal_ui_port).
    web_link_minutes: float = Field(15, gt=0, le=1440)
    web_session_hours: float = Field(12, gt=0, le=24 * 30)
    temporal_ui_url: str | None = None

    @model_validator(mode="after")
    def _enforce_non_default_secrets(self) -> Settings:
        if self.environment != "development":
            for name, default in DEV_SECRETS.items():
                value = getattr(self, name)
                if value == default:
                    raise ValueError(
                        f"{name.upper()} is still the development default; set it to a long random "
                        f"value (ENVIRONMENT={self.environment}; {MAKE_ONE})"
                    )
                problem = secret_problem(value)
                if problem:
                    raise ValueError(
                        f"{name.upper()} is not a production secret: {problem} (ENVIRONMENT={self.environment})"
                    )
            if not self.payload_keys:
                raise ValueError(
                    "PAYLOAD_KEYS is not set: partner data would be stored in clear in workflow history "
                    f"(ENVIRONMENT={self.environment}; `camlights rotate-key --print` makes a key ring)"
                )
        try:
            ring = self.key_ring()  # a malformed key ring stops the process at start, naming the problem
        except CodecError as err:
            raise ValueError(f"PAYLOAD_KEYS: {err}") from err
        if ring is not None and self.environment != "development":
            for key_id, key in ring.keys.items():
                if len(set(key)) < 20:  # 32 random bytes have ~30 distinct values; zeros or a repeated word do not
                    raise ValueError(
                        f"PAYLOAD_KEYS: key {key_id!r} is not random (ENVIRONMENT={self.environment}; "
                        "`camlights rotate-key --print` makes a key ring)"
                    )
        return self

    def key_ring(self) -> KeyRing | None:
        if not self.payload_keys:
            return None
        return KeyRing.parse(self.payload_keys, self.payload_key_active)


@lru_cache
def get_settings() -> Settings:
    return Settings()


@lru_cache
def get_tool_settings() -> Settings:
    """For the command-line tools that serve nothing (migrate, create-key, rotate-key, demo, backup, restore): the same
    configuration without the production secret checks, which guard the API and the worker (a local
    `camlights rotate-key --print` makes the first key ring before any secret is set)."""
    return Settings(environment="development")
