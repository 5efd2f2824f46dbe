"""Decisions under load: in-policy deals registered through the real API (uvicorn) at a steady
rate, auto-approved by their journey on the worker, and the approval email received by the SMTP
sink. For each deal: the time from sending `POST /deals` to the arrival of its `approved` email
(the whole path: API, conflict check under its lock, start, policy read, approval recorded,
outbox, SMTP), and the API's own answer time.

Open loop: a registration is sent every 1/rate s whatever the answers, bounded by `seconds`, then
up to 60 s for the emails. The load generator runs in a process of its own (one keep-alive HTTP
client, nothing else on its event loop) so that it is not starved by the bookkeeping of this
process (the SMTP sink runs in its own); each rate reports the rate it actually offered, how late its sends
were, the load average, and the CPU each process used (cores: CPU seconds / wall seconds).

    .venv/bin/python -m bench --only decisions                       # 1, 5, 10, 20/s
    .venv/bin/python -m bench.decisions --rates 1 5 10 20 --seconds 20
    .venv/bin/python -m bench.decisions --rates 20 --workers 2 --apis 2
    .venv/bin/python -m bench.decisions --rates 20 --worker-env WORKER_MAX_CONCURRENT_WORKFLOW_TASKS=4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import harness
from bench.harness import Section, Stack, latency, log, percentile

TARGET_P95 = 1.0
DRAIN_SECONDS = 60.0


# --------------------------------------------------------------------------- the load generator


async def generate(spec: dict) -> dict:
    """Send `rate` registrations a second for `seconds`, round robin over the API processes at
    `urls`, each through one keep-alive client; every send is started at its planned time
    whatever the answers (open loop). Returns each send's wall-clock time, answer time, status
    and the approval email's key (or the refusal)."""
    import httpx

    rate, total = float(spec["rate"]), int(spec["total"])
    partners, headers, close = spec["partners"], spec["headers"], spec["close"]
    limits = httpx.Limits(max_connections=500, max_keepalive_connections=500)
    clients = [httpx.AsyncClient(base_url=url, timeout=120, limits=limits, headers=headers) for url in spec["urls"]]
    results: list[dict] = []
    try:
        for c in clients:  # open a connection to each API before the clock starts
            await c.get("/health")

        async def register(i: int, planned: float) -> None:
            slug = uuid.uuid4().hex[:12]
            body = {
                "partner_id": partners[i % len(partners)],
                "customer_name": f"Customer {slug}",
                "customer_domain": f"{slug}.example",
                "product_category": "network",
                "amount": "4800.00",
                "currency": "USD",
                "expected_close_date": close,
                "stage": "qualification",
            }
            at, t0 = time.time(), time.perf_counter()
            out = {"at": at, "late": t0 - planned}
            try:
                r = await clients[i % len(clients)].post("/deals", json=body)
            except httpx.HTTPError as err:
                out.update(answer=time.perf_counter() - t0, status=0, error=repr(err)[:200])
            else:
                out.update(answer=time.perf_counter() - t0, status=r.status_code)
                if r.status_code == 201:
                    out["key"] = f"deal-{r.json()['id']}:notify:approved"
                else:
                    out["error"] = f"{r.status_code} {r.text[:200]}"
            results.append(out)

        cpu0 = time.process_time()
        start = time.perf_counter() + 0.05
        tasks = []
        for i in range(total):
            planned = start + i / rate
            delay = planned - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(register(i, planned)))
        await asyncio.gather(*tasks)
        return {"results": results, "cpu": time.process_time() - cpu0}
    finally:
        for c in clients:
            await c.aclose()


def _generator_main() -> int:
    spec = json.loads(sys.stdin.read())
    out = asyncio.run(generate(spec))
    sys.stdout.write(json.dumps(out))
    return 0


# --------------------------------------------------------------------------- CPU per process


def _cpu_seconds() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds) of every process (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        # utime + stime, and cutime + cstime: the children it reaped (PostgreSQL's ended backends)
        out[int(entry.name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]) / tick)
    return out


def _tree_cpu(snapshot: dict[int, tuple[int, float]], root: int) -> float:
    """CPU seconds of `root` and its descendants (e.g. PostgreSQL's backends)."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in snapshot.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += snapshot.get(pid, (0, 0.0))[1]
        todo.extend(children.get(pid, []))
    return total


class CpuMeter:
    """CPU used by each named process tree between `start()` and `stop()`, per wall second."""

    def __init__(self, roots: dict[str, list[int]]):
        self.roots = roots

    def _sample(self) -> dict[str, float]:
        snap = _cpu_seconds()
        return {name: sum(_tree_cpu(snap, pid) for pid in pids) for name, pids in self.roots.items()}

    def start(self) -> None:
        self.t0, self.before, self.own0 = time.perf_counter(), self._sample(), time.process_time()

    def stop(self) -> dict[str, float]:
        wall, after = time.perf_counter() - self.t0, self._sample()
        cores = {name: (after[name] - self.before[name]) / wall for name in self.roots}
        cores["bench"] = (time.process_time() - self.own0) / wall
        return cores


# --------------------------------------------------------------------------- the run


async def run(
    st: Stack,
    rates: tuple[float, ...] = (20.0,),
    seconds: float = 30.0,
    *,
    workers: int = 1,
    apis: int = 1,
    worker_env: dict[str, str] | None = None,
    api_env: dict[str, str] | None = None,
    label: str = "",
    profile: Path | None = None,
) -> list[Section]:
    """`apis` API processes and `workers` worker processes for every rate, one rate after the
    other (each starts once the previous one's emails arrived)."""
    import httpx

    from worker.services import free_port

    partners = await harness.seed_partners(st, min(int(max(rates) * seconds), 500))
    ops = await harness.api_key(st, "ops")
    started: list[harness.Process] = []
    try:
        api_procs = [harness.start_api(st, api_env, name=f"api{i}") for i in range(apis)]
        started += api_procs
        for i in range(workers):
            ports = {"WORKER_METRICS_PORT": str(free_port()), "WORKER_HEALTH_PORT": str(free_port())}
            env = {**ports, **(worker_env or {})}
            started.append(harness.start_process(st, ["-m", "worker.cli", "worker"], f"worker{i}", env))
        urls = [f"http://127.0.0.1:{p.port}" for p in api_procs]
        close = (datetime.now(UTC) + timedelta(days=90)).date().isoformat()
        async with httpx.AsyncClient(base_url=urls[0], timeout=30, headers=ops) as http:
            # untimed: until the worker processes are up and a warm-up deal's approval email arrived
            t0 = time.perf_counter()
            for i in range(max(workers, apis) * 2):
                slug = f"warm-up-{i}-{uuid.uuid4().hex[:6]}"
                r = await http.post(
                    "/deals",
                    json={
                        "partner_id": str(partners[i % len(partners)]["id"]),
                        "customer_name": slug,
                        "customer_domain": f"{slug}.example",
                        "product_category": "network",
                        "amount": "4800.00",
                        "currency": "USD",
                        "expected_close_date": close,
                        "stage": "qualification",
                    },
                )
                assert r.status_code == 201, r.text
                await _arrivals(st, {f"deal-{r.json()['id']}:notify:approved"}, DRAIN_SECONDS)
            log(f"decisions: warm-up deals approved and emailed in {time.perf_counter() - t0:.1f}s")
        meter = CpuMeter(
            {
                "API": [p.pid for p in api_procs],
                "worker": [p.pid for p in started[apis:]],
                "Temporal": [st.temporal.proc.pid],
                "PostgreSQL": [st.pg.proc.pid],
                "SMTP sink": [st.smtp.pid],
            }
        )
        shape = f"{apis} API process{'es' if apis > 1 else ''}, {workers} worker{'s' if workers > 1 else ''}"
        out = []
        for rate in rates:
            spec = {
                "rate": rate,
                "total": max(1, int(rate * seconds)),
                "urls": urls,
                "headers": ops,
                "partners": [str(p["id"]) for p in partners],
                "close": close,
            }
            out.append(await steady(st, spec, meter, f"{label}{shape}", profile))
    finally:
        for p in started:
            p.stop()
    return out


async def _arrivals(st: Stack, keys: set[str], timeout: float) -> dict[str, float]:
    """Wait until an `approved` email of every key arrived (or `timeout`): key -> its arrival
    time (time.time()). Reads only the messages that arrived since the last look."""
    arrived: dict[str, float] = {}
    seen = 0
    ends = time.perf_counter() + timeout
    while True:
        received = st.smtp.received
        for at, m in received[seen:]:
            key = m["X-CAMLights-Key"]
            if key in keys and key not in arrived and m["X-CAMLights-Template"] == "approved":
                arrived[key] = at
        seen = len(received)
        if len(arrived) >= len(keys) or time.perf_counter() > ends:
            return arrived
        await asyncio.sleep(0.1)


def _profile(spec: dict, meter: CpuMeter, folder: Path | None) -> list[subprocess.Popen]:
    """py-spy (when installed beside Python) sampling the API and worker processes while the
    registrations are sent: `<folder>/<process>-<rate>.txt`, collapsed stacks (flamegraph.pl,
    speedscope)."""
    spy = Path(sys.executable).with_name("py-spy")
    if folder is None or not spy.exists():
        return []
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name in ("API", "worker"):
        for i, pid in enumerate(meter.roots[name]):
            target = folder / f"{name.lower()}{i}-{spec['rate']:g}.txt"
            args = [str(spy), "record", "--pid", str(pid), "--rate", "50", "--format", "raw", "-o", str(target)]
            out.append(subprocess.Popen([*args, "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return out


async def steady(st: Stack, spec: dict, meter: CpuMeter, shape: str, profile: Path | None = None) -> Section:
    rate, seconds = spec["rate"], spec["total"] / spec["rate"]
    st.smtp.clear()
    load0 = os.getloadavg()[0]
    log(f"decisions: {spec['total']} registrations at {rate:g}/s ({shape})")
    meter.start()
    spies = _profile(spec, meter, profile)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.decisions",
        "generate",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    stdout, _ = await proc.communicate(json.dumps(spec).encode())
    if proc.returncode != 0:
        raise RuntimeError(f"the load generator failed (exit {proc.returncode})")
    gen = json.loads(stdout)
    for spy in spies:
        spy.send_signal(signal.SIGINT)  # py-spy writes its profile on SIGINT
    for spy in spies:
        await asyncio.to_thread(spy.wait, 60)
    results = gen["results"]
    sent = {r["key"]: r["at"] for r in results if "key" in r}
    arrived = await _arrivals(st, set(sent), DRAIN_SECONDS)
    cores = meter.stop()
    load1 = os.getloadavg()[0]
    ats = sorted(r["at"] for r in results)
    offered = (len(ats) - 1) / (ats[-1] - ats[0]) if len(ats) > 1 and ats[-1] > ats[0] else float("nan")
    lat = [arrived[k] - at for k, at in sent.items() if k in arrived]
    errors = [r["error"] for r in results if "error" in r]
    s = Section(f"decisions: in-policy deal registered -> approved -> partner emailed, {rate:g}/s for {seconds:g}s")
    s.add("processes", shape)
    s.add(
        "registrations sent",
        f"{len(results)}: {offered:.1f}/s offered (asked {rate:g}/s); sends late p95 "
        f"{percentile([r['late'] for r in results], 95) * 1000:.0f} ms; {len(errors)} refused",
    )
    s.add("POST /deals answered", latency([r["answer"] for r in results]))
    if lat:
        p95 = percentile(lat, 95)
        s.add("registered -> emailed", f"{latency(lat)}  {'MISS' if p95 > TARGET_P95 else 'ok'} (target p95 < 1 s)")
    s.add("approval emails missing", f"{len(sent) - len(lat)} after {DRAIN_SECONDS:g}s")
    wall = time.perf_counter() - meter.t0
    cores["load generator"] = gen["cpu"] / wall
    s.add("CPU (cores)", ", ".join(f"{name} {c:.2f}" for name, c in cores.items()))
    per = max(len(lat), 1)
    s.add("CPU per decision (ms)", ", ".join(f"{name} {c * wall / per * 1000:.1f}" for name, c in cores.items()))
    s.add("load average", f"{load0:.1f} at start, {load1:.1f} at end")
    if errors:
        s.add("first refusal", errors[0])
        cause = _logged_error(st)
        if cause:
            s.add("API log, last error", cause)
    return s


def _logged_error(st: Stack) -> str | None:
    """The last exception line the API processes logged (what a 500 was)."""
    lines = [
        line
        for log_file in sorted(st.tmp.glob("api*.log"))
        for line in log_file.read_text(errors="replace").splitlines()
        if "Error" in line or "Exception" in line
    ]
    return lines[-1][-300:] if lines else None


# --------------------------------------------------------------------------- command line


def _pairs(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"expected KEY=VALUE, not {item!r}")
        out[key] = value
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["generate"]:
        return _generator_main()
    parser = argparse.ArgumentParser(prog="python -m bench.decisions", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[1, 5, 10, 20], help="registrations a second")
    parser.add_argument("--seconds", type=float, default=20, help="seconds at each rate (default 20)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--apis", type=int, default=1, help="API processes, round robin (default 1)")
    parser.add_argument("--worker-env", nargs="*", default=[], metavar="KEY=VALUE", help="worker settings")
    parser.add_argument("--api-env", nargs="*", default=[], metavar="KEY=VALUE", help="API settings")
    parser.add_argument(
        "--temporal-config", nargs="*", default=[], metavar="KEY=VALUE", help="Temporal dev server dynamic config"
    )
    parser.add_argument("--label", default="", help="a name for this run, printed with each rate")
    parser.add_argument("--profile", type=Path, help="py-spy profiles of the API and workers into this folder")
    args = parser.parse_args(argv)

    async def go() -> list[Section]:
        async with harness.stack(temporal_config=tuple(args.temporal_config)) as st:
            return await run(
                st,
                tuple(args.rates),
                args.seconds,
                workers=args.workers,
                apis=args.apis,
                worker_env=_pairs(args.worker_env),
                api_env=_pairs(args.api_env),
                label=f"{args.label}: " if args.label else "",
                profile=args.profile,
            )

    for s in asyncio.run(go()):
        print("\n" + s.render(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
