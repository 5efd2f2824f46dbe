"""Every benchmark, each on a fresh embedded stack, and one report at the end.

    .venv/bin/python -m bench                 # the small version (make bench): a few minutes
    .venv/bin/python -m bench --n 10000       # the full one (make bench N=10000)
    .venv/bin/python -m bench --only api deal # some of them

`--n` is the program size: partners for the API (with 10 deals and 2 certifications each) and
open journeys on one worker; the journey-cost runs use N/10 journeys each (at least 50) and
the decision run steady 1, 5, 10 and 20 registrations/s for 30 s each (10 s below N=2000). Everything runs on
loopback in a temporary directory that is removed at the end, and stops by itself: each
benchmark is bounded by its counts and by `--timeout`.

A journey's benchmark is one module with `async def run(stack, n) -> list[Section]`, named by its
manifest (`JourneySpec.bench`); nothing here lists journeys."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench import harness
from bench.harness import Section, log
from core import loop as event_loop
from core import registry


def _journey(target: str) -> Callable[[harness.Stack, int], Awaitable[list[Section]]]:
    """A journey's benchmark as its manifest names it: "bench.<module>" runs the module's
    `run(stack, journeys)` with N/10 journeys (at least 50; at least 200 of a journey driven flat
    out, `FLOORED_JOURNEYS`); "bench.<module>:<function>" runs that function with the program
    size N itself."""

    async def run(st: harness.Stack, n: int) -> list[Section]:
        import importlib

        module, _, function = target.partition(":")
        loaded = importlib.import_module(module)
        if function:
            return await getattr(loaded, function)(st, n)
        floor = THROUGHPUT_FLOOR if module.rpartition(".")[2] in FLOORED_JOURNEYS else 50
        return await loaded.run(st, max(floor, n // 10))

    return run


async def _api(st: harness.Stack, n: int) -> list[Section]:
    from bench import api

    return await api.run(st, n, requests=100 if n >= 2000 else 50)


async def _open(st: harness.Stack, n: int) -> list[Section]:
    from bench import open_journeys

    return await open_journeys.run(st, n, caches=tuple(sorted({1000, n})) if n > 1000 else (n,))


async def _decisions(st: harness.Stack, n: int) -> list[Section]:
    from bench import decisions

    return await decisions.run(st, rates=(1.0, 5.0, 10.0, 20.0), seconds=30.0 if n >= 2000 else 10.0)


async def _limits(st: harness.Stack, n: int) -> list[Section]:
    from bench import limits

    return await limits.run(st, n)


async def _portal(st: harness.Stack, n: int) -> list[Section]:
    from bench import portal_pages

    return await portal_pages.run(st, n, requests=50 if n >= 2000 else 30)


async def _steps(st: harness.Stack, n: int) -> list[Section]:
    from bench import steps

    return await steps.run(st, n)


async def _ops(st: harness.Stack, n: int) -> list[Section]:
    from bench import ops_scan

    return await ops_scan.run(st, n)


# name -> (benchmark, its stack's policy: "hours" = one-hour policy days, None = the default policy)
# Each journey's comes from its manifest (`JourneySpec.bench`, `bench_policy`).
BENCHMARKS: dict[str, tuple[Callable[[harness.Stack, int], Awaitable[list[Section]]], str | None]] = {
    **{spec.name: (_journey(spec.bench), spec.bench_policy) for spec in registry.JOURNEYS},
    "api": (_api, None),
    "decisions": (_decisions, None),
    "open": (_open, None),
    "limits": (_limits, None),
    "ops": (_ops, None),
    "portal": (_portal, None),
    "steps": (_steps, "hours"),
}


COSTS_FILE = Path(__file__).with_name("journey_costs.json")
THROUGHPUT_JOURNEYS = ("onboarding", "deal", "cert", "mdf")  # driven flat out: they measure a worker's rate
# Their rates and ratios over at least this many journeys: over 50 (2-3 s of deals) the ratio to the
# baseline moved by +-0.2 between runs of the same code on a shared 2-core machine; over 200 it
# stayed within 0.83-0.94 for the deal and 0.87-1.07 for MDF (bench/README.md, session 45).
THROUGHPUT_FLOOR = 200
# The floor's journeys: those above and the others a benchmark also drives flat out, timed to a
# state rather than to their end (the lead until offered, health until its first round). Over 50
# leads (2 s) the lead's ratio was 0.55 and 0.59 in whole runs; over 200, 0.70-0.84 (session 53).
FLOORED_JOURNEYS = (*THROUGHPUT_JOURNEYS, "leads", "health")


def worker_units(c: dict[str, float]) -> float:
    """What a journey asks of a worker: workflow tasks, activities and local activities."""
    return c["workflow_tasks"] + c["activities"] + c["local_activities"]


def write_costs(path: Path, n: int) -> dict:
    """Merge this run's journey costs (harness.COSTS) and rates into the JSON `camlights capacity`
    reads; journeys not run this time keep their earlier figures."""
    import json
    from datetime import UTC, datetime

    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        doc = {}
    doc = {"schema": 1, "journeys": {}, "rates": {}, "measured": {}, **doc}
    doc["journeys"].update(harness.COSTS)
    doc["rates"].update(harness.RATES)
    doc["rates"].pop("worker_units_per_s", None)  # replaced by worker seconds: a unit's cost differs by journey
    done = {k: v for k, v in doc["journeys"].items() if k in THROUGHPUT_JOURNEYS and "local_activities" in v}
    if done:  # a unit's worker seconds on one worker process, over the journeys run flat out
        units = sum(c["measured_journeys"] * worker_units(c) for c in done.values())
        seconds = sum(c["measured_journeys"] / c["journeys_per_s"] for c in done.values())
        doc["rates"]["worker_seconds_per_unit"] = round(seconds / units, 6)
    per_unit = doc["rates"].get("worker_seconds_per_unit")
    for name, c in doc["journeys"].items():
        # run flat out: what one worker process took per journey; else its units at the measured cost
        if name in THROUGHPUT_JOURNEYS:
            c["worker_seconds"] = round(1 / c["journeys_per_s"], 6)
        elif per_unit and "local_activities" in c:
            c["worker_seconds"] = round(worker_units(c) * per_unit, 6)
    if "qbr" in doc["journeys"]:
        doc["rates"]["qbr_cycle_partners_per_s"] = doc["journeys"]["qbr"]["journeys_per_s"]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    doc["measured"] = {"date": datetime.now(UTC).date().isoformat(), "n": n, "load_average": round(load, 1)}
    path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    return doc


def model_check(previous: dict, current: dict[str, dict[str, float]] | None = None) -> Section:
    """The loop closed: what the committed figures (before this run) predicted for this run's
    journeys (`current`, default this run's harness.COSTS) against what it measured (issue 27:
    within 20 %): per journey, and for the whole program the run drove (every journey it ran, as
    many as it ran): Temporal actions, history bytes, PostgreSQL rows and bytes, emails, worker time."""
    s = Section("capacity model: committed figures' prediction vs this run")
    keys = ("actions", "events", "history_bytes", "emails", "db_rows", "db_bytes")
    totals = {k: [0.0, 0.0] for k in (*keys, "worker time")}  # measured, predicted
    for name, now in (harness.COSTS if current is None else current).items():
        old = previous.get("journeys", {}).get(name)
        if not old:
            continue
        count = now["measured_journeys"]
        for key in keys:
            totals[key][0] += count * now[key]
            totals[key][1] += count * old[key]
        parts = [f"{key} {now[key] / old[key]:.2f}" for key in keys if old.get(key)]
        if old.get("worker_seconds") and name in THROUGHPUT_JOURNEYS:
            predicted = count * old["worker_seconds"]
            measured = count / now["journeys_per_s"]
            totals["worker time"][0] += measured
            totals["worker time"][1] += predicted
            parts.append(f"worker time {measured / predicted:.2f}")
        s.add(f"{name} measured / predicted", ", ".join(parts))
    if totals["actions"][1]:
        s.add("program measured / predicted", ", ".join(f"{k} {m / p:.2f}" for k, (m, p) in totals.items() if p))
    return s


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        model = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.lower().startswith("model name"))
        cpu = model
    except (OSError, StopIteration):
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, {platform.system()} "
        f"{platform.release()}; load average {load:.1f} at start"
    )


async def main_async(names: list[str], n: int, timeout: float) -> list[Section]:
    sections: list[Section] = []
    for name in names:
        bench, policy = BENCHMARKS[name]
        log(f"=== {name} (N={n})")
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(timeout), harness.stack(harness.bench_policy() if policy else None) as st:
                out = await bench(st, n)
        except TimeoutError:
            out = [Section(name, [("gave up", f"not finished within --timeout {timeout:g}s")])]
        except Exception as err:  # noqa: BLE001 (one benchmark failing keeps the others' figures)
            out = [Section(name, [("failed", repr(err)[:300])])]
        for s in out:
            print("\n" + s.render(), flush=True)
        sections.extend(out)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        sections[-1].add("wall time", f"{time.perf_counter() - t0:.0f}s (services included); load average {load:.1f}")
    return sections


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=500, help="program size (default 500)")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), help="run only these")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per benchmark (default 3600)")
    parser.add_argument(
        "--costs",
        type=Path,
        default=COSTS_FILE,
        help="the journey costs file to update (default bench/journey_costs.json)",
    )
    parser.add_argument("--no-costs", action="store_true", help="do not write the journey costs file")
    parser.add_argument("--no-baselines", action="store_true", help="journey costs only, without the baselines")
    args = parser.parse_args(argv)
    if args.n < 10:
        parser.error("--n must be at least 10")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    t0 = time.perf_counter()
    log(f"machine: {machine()}")
    import json

    harness.BASELINES = not args.no_baselines
    harness.workflow_bytecode()
    try:
        previous = json.loads(args.costs.read_text())
    except (OSError, ValueError):
        previous = {}
    # On the event loop `camlights worker` runs on (core/loop.py): the journeys' worker runs in this process.
    sections = event_loop.run(main_async(args.only or list(BENCHMARKS), args.n, args.timeout))
    if harness.COSTS or harness.RATES:
        sections.append(model_check(previous))
        if not args.no_costs:
            write_costs(args.costs, args.n)
            log(f"journey costs written to {args.costs}")
    print(f"\n######## report (N={args.n}; {machine()})\n")
    print("\n\n".join(s.render() for s in sections))
    print(f"\ntotal {time.perf_counter() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
