"""Every benchmark, each on a fresh embedded stack, and one report at the end.

    .venv/bin/python -m bench                 # the small version (make bench): a few minutes
    .venv/bin/python -m bench --n 10000       # the full one (make bench N=10000)
    .venv/bin/python -m bench --only api deal # some of them

`--n` is the program size: partners for the API (with 10 deals and 2 certifications each) and
open journeys on one worker; the journey-cost runs use N/10 journeys each (at least 50) and
the decision run steady 1, 5 and 20 registrations/s for 30 s each (10 s below N=2000). Everything runs on
loopback in a temporary directory that is removed at the end, and stops by itself: each
benchmark is bounded by its counts and by `--timeout`.

A new journey's benchmark is one module with `async def run(stack, n) -> list[Section]` and one
entry in BENCHMARKS."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable

from bench import harness
from bench.harness import Section, log


def _journey(module: str) -> Callable[[harness.Stack, int], Awaitable[list[Section]]]:
    async def run(st: harness.Stack, n: int) -> list[Section]:
        import importlib

        return await importlib.import_module(f"bench.{module}").run(st, max(50, n // 10))

    return run


async def _api(st: harness.Stack, n: int) -> list[Section]:
    from bench import api

    return await api.run(st, n, requests=100 if n >= 2000 else 50)


async def _open(st: harness.Stack, n: int) -> list[Section]:
    from bench import open_journeys

    return await open_journeys.run(st, n, caches=tuple(sorted({1000, n})) if n > 1000 else (n,))


async def _decisions(st: harness.Stack, n: int) -> list[Section]:
    from bench import decisions

    return await decisions.run(st, rates=(1.0, 5.0, 20.0), seconds=30.0 if n >= 2000 else 10.0)


async def _qbr(st: harness.Stack, n: int) -> list[Section]:
    """The QBR cycle over N partners (N/5 below N=2000) with a window of 20, pages of 100, against a
    bare fan-out of the same shape (bench/qbr_cycle.py)."""
    import statistics

    from bench import qbr_cycle

    partners = n if n >= 2000 else max(50, n // 5)
    a = await qbr_cycle.part_a(st.client, st.settings, st.sessionmaker, partners, 20, 100)
    b = await qbr_cycle.part_b(st.client, partners, 20, 100, round(statistics.fmean(a["child_activities"])))
    real, base = partners / a["wall"], partners / b["wall"]
    s = Section("qbr: cycle fan-out")
    s.add("partners, window, page", f"{partners}, 20, 100")
    s.add("real partners/s", f"{real:.2f}   ({a['wall']:.2f}s)")
    s.add("bare fan-out partners/s", f"{base:.2f}   ({b['wall']:.2f}s)")
    s.add("ratio real / baseline", f"{real / base:.2f}   (target >= 0.8)")
    s.add("cycle history events per run", f"real {a['cycle']}, baseline {b['cycle']} (largest {max(a['cycle'])})")
    s.add(
        "child history events",
        f"real {harness.spread(a['child_events'])}, baseline {harness.spread(b['child_events'])}",
    )
    return [s]


async def _limits(st: harness.Stack, n: int) -> list[Section]:
    from bench import limits

    return await limits.run(st, n)


async def _ops(st: harness.Stack, n: int) -> list[Section]:
    from bench import ops_scan

    return await ops_scan.run(st, n)


# name -> (benchmark, its stack's policy: "hours" = one-hour policy days, None = the default policy)
BENCHMARKS: dict[str, tuple[Callable[[harness.Stack, int], Awaitable[list[Section]]], str | None]] = {
    "onboarding": (_journey("onboarding"), "hours"),
    "deal": (_journey("deal"), "hours"),
    "cert": (_journey("cert"), "hours"),
    "mdf": (_journey("mdf"), "hours"),
    "qbr": (_qbr, None),
    "api": (_api, None),
    "decisions": (_decisions, None),
    "open": (_open, None),
    "limits": (_limits, None),
    "ops": (_ops, None),
}


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
        for s in out:
            print("\n" + s.render(), flush=True)
        sections.extend(out)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        sections[-1].add("wall time", f"{time.perf_counter() - t0:.0f}s (services included); load average {load:.1f}")
    return sections


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--n", type=int, default=500, help="program size (default 500)")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), help="run only these")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per benchmark (default 3600)")
    args = parser.parse_args(argv)
    if args.n < 10:
        parser.error("--n must be at least 10")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    t0 = time.perf_counter()
    log(f"machine: {machine()}")
    sections = asyncio.run(main_async(args.only or list(BENCHMARKS), args.n, args.timeout))
    print(f"\n######## report (N={args.n}; {machine()})\n")
    print("\n\n".join(s.render() for s in sections))
    print(f"\ntotal {time.perf_counter() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
