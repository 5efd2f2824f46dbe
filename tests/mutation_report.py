"""The mutation score of `make mutate` / `make mutate-changed`, read from mutmut's results in
mutants/: killed / checked mutants of the modules asked for (all of domain/ by default), the
surviving mutants listed (`.venv/bin/mutmut show NAME` prints one's diff), and a non-zero exit
when the score is below --min. A mutant no unit test even runs ("no tests") counts as surviving."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

KILLED = {1, 3, 36, 24, -24, 152, 255, 37}  # failed a test, or timed out (an endless loop is caught)
NOT_RUN = {None, 2, 34}  # not checked yet, interrupted, skipped


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("modules", nargs="*", help="e.g. journeys/qbr/domain.py (default: every module of domain/)")
    parser.add_argument("--min", type=float, default=0.0, help="fail below this score (percent)")
    parser.add_argument("--names", action="store_true", help="only print the surviving mutants' names")
    args = parser.parse_args()
    paths = [Path("mutants") / m for m in args.modules] or sorted(Path("mutants/domain").glob("*.py"))
    counts: Counter[str] = Counter()
    survivors: list[str] = []
    for path in paths:
        meta = path.with_name(path.name + ".meta")
        if not meta.exists():
            continue
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            if code in NOT_RUN:
                counts["not run"] += 1
            elif code in KILLED:
                counts["killed"] += 1
            else:
                counts["survived"] += 1
                survivors.append(
                    name if args.names else f"    {name}  ({'no tests' if code in (5, 33) else 'survived'})"
                )
    if args.names:
        print(" ".join(survivors))
        return 0
    checked = counts["killed"] + counts["survived"]
    if not checked:
        print("no mutant was checked (run `make mutate` first)")
        return 1
    score = 100.0 * counts["killed"] / checked
    print("\n".join(survivors))
    print(f"surviving mutants: {counts['survived']} (see one with `.venv/bin/mutmut show NAME`)")
    print(f"mutation score: {score:.1f}% ({counts['killed']} of {checked} mutants killed", end="")
    print(f", {counts['not run']} not run)" if counts["not run"] else ")")
    if score < args.min:
        print(f"below the {args.min:g}% required: add unit tests that kill the survivors above")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
