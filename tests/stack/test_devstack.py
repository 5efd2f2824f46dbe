"""`camlights dev` (what `make run` runs): the whole embedded stack starts, prints where
everything is, stops cleanly on Ctrl-C, and a second start resumes the open journeys."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from worker.services import free_port, port_is_open

ROOT = Path(__file__).resolve().parents[2]


class Stack:
    def __init__(self, tmp: Path):
        self.data = tmp / ".data"
        self.ports = {name: free_port() for name in ("pg", "temporal", "ui", "smtp", "api")}
        self.api = f"http://127.0.0.1:{self.ports['api']}"
        self.env = {
            **os.environ,
            "CAMLIGHTS_EMBED": "all",
            "CAMLIGHTS_PG_FAST": "1",
            "DATA_DIR": str(self.data),
            "DATABASE_URL": f"postgresql+psycopg://camlights@127.0.0.1:{self.ports['pg']}/camlights",
            "TEMPORAL_ADDRESS": f"127.0.0.1:{self.ports['temporal']}",
            "TEMPORAL_UI_PORT": str(self.ports["ui"]),
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.ports["smtp"]),
            "API_PORT": str(self.ports["api"]),
        }
        self.log = tmp / "dev.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 180) -> str:
        self.log.write_text("")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "worker.cli", "dev"],
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while "Press Ctrl-C to stop" not in self.log.read_text():
            assert self.proc.poll() is None, f"camlights dev exited early:\n{self.log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"camlights dev did not start:\n{self.log.read_text()[-3000:]}"
            time.sleep(0.3)
        return self.log.read_text()

    def stop(self) -> int:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        code = self.proc.wait(90)
        for port in self.ports.values():
            assert not port_is_open("127.0.0.1", port), f"port {port} still open after Ctrl-C"
        return code


def _wait(check, timeout=30, what="condition"):
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return value


def test_make_run_stack_starts_stops_and_resumes(tmp_path):
    stack = Stack(tmp_path)
    try:
        out = stack.start()
        assert f"{stack.api}/docs" in out and f"http://127.0.0.1:{stack.ports['ui']}" in out
        assert "ops API key        cl_" in out
        key = (stack.data / "ops-api-key").read_text().strip()
        assert key in out and oct((stack.data / "ops-api-key").stat().st_mode)[-3:] == "600"
        assert "also saved in" in out and "ops-api-key)" in out
        ops = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=stack.api, timeout=30) as api:
            assert api.get("/health").json()["status"] == "ok"
            assert httpx.get(f"http://127.0.0.1:{stack.ports['ui']}/", timeout=10).status_code == 200
            r = api.post(
                "/partners",
                headers=ops,
                json={
                    "name": "Resume Ltd",
                    "domain": "resume.test",
                    "country": "IE",
                    "type": "msp",
                    "tier": "registered",
                    "contact_email": "hello@resume.test",
                },
            )
            assert r.status_code == 201, r.text
            pid = r.json()["id"]
        mails = _wait(lambda: list((stack.data / "mail").glob("*.eml")), what="welcome .eml")
        assert "hello@resume.test" in mails[0].read_text()
        # Encryption is on: a key ring kept with the state (mode 600), the UI decodes through /codec.
        keys = stack.data / "payload-keys"
        assert keys.read_text().startswith("k1:") and oct(keys.stat().st_mode)[-3:] == "600"
        ui = f"http://127.0.0.1:{stack.ports['ui']}"
        with httpx.Client(base_url=stack.api, timeout=30) as api:
            pre = api.options("/codec/decode", headers={"Origin": ui, "Access-Control-Request-Method": "POST"})
            assert pre.status_code == 204 and pre.headers["Access-Control-Allow-Origin"] == ui
            r = api.post(
                "/codec/encode",
                headers={"Origin": ui},
                json={"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "IlJlc3VtZSBMdGQi"}]},
            )
            assert r.status_code == 200 and r.json()["payloads"][0]["metadata"]["encryption-key-id"] == "azE="
            assert api.post("/codec/decode", headers={"Origin": "http://evil.test"}, json=r.json()).status_code == 401
        demo = subprocess.run(
            [sys.executable, "-m", "worker.cli", "demo"],
            cwd=ROOT,
            env=stack.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert demo.returncode == 0, demo.stderr[-2000:]
        assert "deal     Globex" in demo.stdout and "cert     Network Associate" in demo.stdout

        def approval_request():
            return [p for p in (stack.data / "mail").glob("*.eml") if "robin.ito@vendor.example" in p.read_text()]

        _wait(approval_request, what="the demo deal's approval request to its CAM")
        assert stack.stop() == 0

        out = stack.start()
        assert "ops API key        see" in out  # no second key on a restart
        with httpx.Client(base_url=stack.api, timeout=30) as api:
            assert api.get(f"/partners/{pid}", headers=ops).json()["name"] == "Resume Ltd"
            r = api.post(f"/partners/{pid}/onboarding/milestones/portal_access", headers=ops)
            assert r.status_code == 200, r.text

            def recorded():
                progress = api.get(f"/partners/{pid}/onboarding", headers=ops).json()
                return any(m["key"] == "portal_access" and m["done_at"] for m in progress["milestones"])

            _wait(recorded, what="the resumed journey to record the milestone")
        assert stack.stop() == 0
    finally:
        if stack.proc is not None and stack.proc.poll() is None:
            os.killpg(stack.proc.pid, signal.SIGKILL)
