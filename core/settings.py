"""Configuration from the environment (pydantic-settings). Defaults point at the embedded stack.

Secrets have development defaults so that `make run` works out of the box; outside development
(`ENVIRONMENT=production`) a secret left at its default stops the process at start with an error
naming the variable (full-stack-fastapi-template `_enforce_non_default_secrets`)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_LINK_SECRET = "insecure-dev-link-secret-change-me"

# variable name -> its development default: refused outside development.
DEV_SECRETS = {"link_secret": DEV_LINK_SECRET}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Literal["development", "production"] = "development"
    database_url: str = "postgresql+psycopg://camlights@127.0.0.1:55432/camlights"
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
    # Failed authentications (or decision-link attempts) per client and minute before 429.
    auth_failures_per_minute: int = 20

    @model_validator(mode="after")
    def _enforce_non_default_secrets(self) -> Settings:
        if self.environment != "development":
            for name, default in DEV_SECRETS.items():
                if getattr(self, name) == default:
                    raise ValueError(
                        f"{name.upper()} is still the development default; set it to a long random "
                        f"value (ENVIRONMENT={self.environment})"
                    )
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
