"""Configuration from the environment (pydantic-settings). Defaults point at the embedded stack."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

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
    link_secret: str = "insecure-dev-link-secret-change-me"  # signs one-click decision links
    data_dir: Path = Path(".data")
    temporal_ui_port: int = 8233


@lru_cache
def get_settings() -> Settings:
    return Settings()
