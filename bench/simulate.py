"""How long a what-if simulation takes (issue 26): a year (or `--months`) of N partners from the
bench's generator, the current (default) policy against a draft with shorter deal SLAs, each on its
own throw-away PostgreSQL, SMTP sink and time-skipping Temporal server (each run in its own
process), as `camlights simulate` runs it. Prints the seconds per size and per partner-month, with
the load average (the machine may be shared).

    .venv/bin/python -m bench.simulate --partners 20 50 200 [--months 12 [6 ...]]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from domain.policy import ProgramPolicy
from worker.simulate import bench_shape, plan, simulate

DRAFT = {"deal": {"approval_sla_days": 1, "escalation_days": 2}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--partners", type=int, nargs="+", default=[20, 50])
    parser.add_argument("--months", type=int, nargs="+", default=[12])
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    current, draft = ProgramPolicy.model_validate({}), ProgramPolicy.model_validate(DRAFT)
    rows = []
    for months in args.months:
        for n in args.partners:
            sample = plan(bench_shape(), n, months, args.seed)
            steps = sum(1 + len(p.deals) * 2 + len(p.certs) * 2 + len(p.mdf) * 2 for p in sample.partners)
            t0 = time.monotonic()
            report = asyncio.run(simulate(current, draft, sample, progress=lambda m: print(f"  {m}", flush=True)))
            took = time.monotonic() - t0
            load = "/".join(f"{x:.1f}" for x in os.getloadavg())
            rows.append((n, months, steps, took, took / (n * months), load))
            print(report.table(), flush=True)
            print(f"  load average {load}", flush=True)
    head = f"{'partners':>8}  {'months':>6}  {'actions':>7}  {'seconds (both runs)':>19}  {'s per partner-month':>19}"
    print(f"\n{head}  load average (1/5/15 min)")
    for n, months, steps, took, per, load in rows:
        print(f"{n:>8}  {months:>6}  {steps:>7}  {took:>19.0f}  {per:>19.3f}  {load}")


if __name__ == "__main__":
    main()
