"""Print the mutation score per module from mutmut's results (mutants/**/*.py.meta).

Score = killed (including timeouts and type-check catches) / mutants checked; mutants not
yet checked (an interrupted or narrowed run) and skipped ones are counted apart. Surviving
mutants are listed by name; `mutmut show NAME` prints the change.

Run after `mutmut run` (see `make mutate`).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

KILLED = {1: "killed", 3: "killed", 36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout",
          37: "killed"}
SURVIVED = {0}
NOT_RUN = {None, 2, 5, 33, 34}


def main() -> int:
    metas = sorted(Path("mutants").rglob("*.py.meta"))
    if not metas:
        print("no mutation results: run `make mutate` (mutmut run) first", file=sys.stderr)
        return 1
    survivors: list[str] = []
    print(f"{'module':<28}{'mutants':>8}{'checked':>9}{'killed':>8}{'survived':>10}{'other':>7}{'score':>8}")
    tot = Counter()
    for meta in metas:
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if not codes:
            continue
        c = Counter()
        for name, code in codes.items():
            if code in NOT_RUN:
                c["not run"] += 1
            elif code in KILLED:
                c["killed"] += 1
            elif code in SURVIVED:
                c["survived"] += 1
                survivors.append(name)
            else:  # suspicious, segfault: not a kill, not a clean survival
                c["other"] += 1
        checked = c["killed"] + c["survived"] + c["other"]
        if not checked:
            continue
        tot.update(c)
        tot["mutants"] += len(codes)
        module = str(meta.relative_to("mutants")).removesuffix(".py.meta").replace("/", ".")
        score = 100 * c["killed"] / checked
        print(f"{module:<28}{len(codes):>8}{checked:>9}{c['killed']:>8}{c['survived']:>10}{c['other']:>7}{score:>7.1f}%")
    checked = tot["killed"] + tot["survived"] + tot["other"]
    if checked:
        print(f"{'total':<28}{tot['mutants']:>8}{checked:>9}{tot['killed']:>8}{tot['survived']:>10}{tot['other']:>7}"
              f"{100 * tot['killed'] / checked:>7.1f}%")
    if survivors:
        print("\nsurviving mutants (`mutmut show NAME`):")
        for name in survivors:
            print(f"  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
