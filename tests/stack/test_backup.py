"""`camlights backup` / `camlights restore` on the embedded stack (docs/operations.md, "Restoring from
a backup"): a program with journeys in flight is backed up while it runs, `.data/` is lost, the
archive is restored and the stack started again; every journey is where it was, nothing is lost or
written or sent twice, and a later milestone report still reaches its journey."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile

import httpx
import psycopg
import pytest

from core.settings import Settings
from tests.stack.test_devstack import ROOT, Stack, _wait
from worker.backup import BackupError, restore

PARTNERS = ("Alpha", "Bravo", "Charlie")


def _cli(stack: Stack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "worker.cli", *args],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def _refused(stack: Stack, archive, **options) -> str:
    """What `camlights restore` says when it refuses (in this process: a refusal starts nothing)."""
    settings = Settings(
        environment="development",  # what `camlights restore` reads (the tool settings)
        data_dir=stack.data,
        database_url=stack.env["DATABASE_URL"],
        temporal_address=stack.env["TEMPORAL_ADDRESS"],
    )
    with pytest.raises(BackupError) as refused:
        restore(settings, archive, **options)
    return str(refused.value)


def _row_counts(stack: Stack) -> dict[str, int]:
    """Rows per table, and the milestones recorded as done."""
    url = stack.env["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as con:
        tables = [r[0] for r in con.execute("select tablename from pg_tables where schemaname = 'public'")]
        counts = {t: con.execute(f'select count(*) from "{t}"').fetchone()[0] for t in sorted(tables)}
        done = con.execute("select count(*) from partner_milestones where done_at is not null").fetchone()[0]
        return {**counts, "milestones done": done}


def _mails(stack: Stack) -> dict[str, tuple[int, bytes]]:
    """Every .eml the sink kept: name -> (mtime, content). A message sent again rewrites its file."""
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in (stack.data / "mail").glob("*.eml")}


def _progress(api: httpx.Client, ops: dict, pid: str) -> dict:
    r = api.get(f"/partners/{pid}/onboarding", headers=ops)
    assert r.status_code == 200, r.text
    return r.json()


def _done(progress: dict) -> set[str]:
    return {m["key"] for m in progress["milestones"] if m["done_at"]}


def test_backup_while_running_then_restore_resumes_every_journey(tmp_path):
    stack = Stack(tmp_path)
    archive = tmp_path / "backups" / "program.tar.gz"
    try:
        stack.start()
        ops = {"Authorization": f"Bearer {(stack.data / 'ops-api-key').read_text().strip()}"}
        with httpx.Client(base_url=stack.api, timeout=30) as api:
            pids = []
            for name in PARTNERS:
                r = api.post(
                    "/partners",
                    headers=ops,
                    json={
                        "name": f"{name} Ltd",
                        "domain": f"{name.lower()}.test",
                        "country": "IE",
                        "type": "msp",
                        "tier": "registered",
                        "contact_email": f"hello@{name.lower()}.test",
                    },
                )
                assert r.status_code == 201, r.text
                pids.append(r.json()["id"])
            r = api.post(f"/partners/{pids[0]}/onboarding/milestones/portal_access", headers=ops)
            assert r.status_code == 200 and r.json()["accepted"], r.text
            _wait(lambda: len(_mails(stack)) >= len(PARTNERS), what="the welcome emails")
            before = {pid: _progress(api, ops, pid) for pid in pids}
            assert _done(before[pids[0]]) == {"portal_access"}

        # Settled (emails sent, outbox marked): the backup runs with the stack up.
        counts = _wait(lambda: (c := _row_counts(stack)) == _row_counts(stack) and c, what="a settled database")
        assert counts["outbox"] >= len(PARTNERS) and counts["milestones done"] == 1
        out = _cli(stack, "backup", "--output", str(archive))
        assert out.returncode == 0, out.stderr + out.stdout
        assert "stop `make run` first" in _refused(stack, archive, force=True)
        assert "copying the Temporal history" in out.stdout and "dumping the database" in out.stdout
        assert "backup complete" in out.stdout and "NOT in the archive" in out.stdout
        assert oct(archive.stat().st_mode)[-3:] == "600"
        assert [p.name for p in archive.parent.iterdir()] == ["program.tar.gz"]  # no temporary left behind
        with tarfile.open(archive) as tar:
            names = tar.getnames()
            manifest = json.loads(tar.extractfile("manifest.json").read())
        assert names[0] == "manifest.json" and {"temporal.db", "postgres.dump"} <= set(names)
        assert not [n for n in names if n.startswith("secrets/") or "key" in n or "secret" in n]
        assert list(manifest["payload_keys"]["fingerprints"]) == ["k1"] and manifest["stack_running"] is True
        assert _row_counts(stack) == counts
        assert stack.stop() == 0
        stopped = _cli(stack, "backup", "--output", str(tmp_path / "stopped.tar.gz"))  # PostgreSQL started for it
        assert stopped.returncode == 0 and "the stack is not running" in stopped.stdout, stopped.stderr
        with tarfile.open(tmp_path / "stopped.tar.gz") as tar:
            assert json.loads(tar.extractfile("manifest.json").read())["stack_running"] is False

        # The disk is lost; the secrets were kept apart (the operator's secret store).
        vault = tmp_path / "vault"
        vault.mkdir()
        for name in ("payload-keys", "link-secret"):
            shutil.copy(stack.data / name, vault / name)
        mails = _mails(stack)
        shutil.rmtree(stack.data)

        assert "--payload-keys" in _refused(stack, archive) and not stack.data.exists()
        wrong = tmp_path / "other-ring"
        wrong.write_text(f"k1:{base64.b64encode(bytes(32)).decode()}\n")  # k1, but not the key the history used
        assert "lacks key(s) k1" in _refused(stack, archive, payload_keys=wrong) and not stack.data.exists()
        bad = tmp_path / "future.tar.gz"
        with tarfile.open(bad, "w:gz") as tar:
            body = json.dumps({**manifest, "version": 99}).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
        assert "format version 99" in _refused(stack, bad)

        keys = ("--payload-keys", str(vault / "payload-keys"), "--link-secret", str(vault / "link-secret"))
        out = _cli(stack, "restore", str(archive), *keys)
        assert out.returncode == 0, out.stderr + out.stdout
        assert "restoring the database" in out.stdout and "restored into" in out.stdout
        for name in ("payload-keys", "link-secret"):
            assert (stack.data / name).read_text().strip() == (vault / name).read_text().strip()
            assert oct((stack.data / name).stat().st_mode)[-3:] == "600"
        assert {n: m[1] for n, m in _mails(stack).items()} == {n: m[1] for n, m in mails.items()}
        refused = _cli(stack, "restore", str(archive), *keys)  # the command's own refusal: exit code 1, on stderr
        assert refused.returncode == 1 and "is not empty" in refused.stderr and "--force" in refused.stderr
        restored_mails = _mails(stack)

        stack.start()
        assert "ops API key        see" in stack.log.read_text()  # the restored key still signs in
        with httpx.Client(base_url=stack.api, timeout=30) as api:
            for pid in pids:  # every journey is running, exactly where it was
                now = _progress(api, ops, pid)
                assert now["state"] == "in_progress" and now["milestones"] == before[pid]["milestones"]
                assert now["started_at"] == before[pid]["started_at"]
            assert _row_counts(stack) == counts  # nothing lost, nothing written twice by the replays
            r = api.post(f"/partners/{pids[1]}/onboarding/milestones/portal_access", headers=ops)
            assert r.status_code == 200 and r.json()["accepted"] and not r.json()["already_done"], r.text
            r = api.post(f"/partners/{pids[0]}/onboarding/milestones/portal_access", headers=ops)
            assert r.status_code == 200 and r.json()["already_done"], r.text  # recorded before the backup
            assert _done(_progress(api, ops, pids[1])) == {"portal_access"}
        after = _wait(lambda: (c := _row_counts(stack))["milestones done"] == 2 and c, what="the milestone recorded")
        assert after["outbox"] == counts["outbox"] and _mails(stack) == restored_mails  # no email sent again
        assert stack.stop() == 0
    finally:
        if stack.proc is not None and stack.proc.poll() is None:
            os.killpg(stack.proc.pid, signal.SIGKILL)
