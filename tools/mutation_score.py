"""Print the mutation score per module from mutmut's results (mutants/**/*.py.meta).

Score = killed (including timeouts and type-check catches) / (mutants checked - equivalent
survivors). Equivalent mutants are listed by name, each with the reason, in
``tools/mutation_equivalent.txt``; a listed mutant that was killed counts as killed. Mutants not
yet checked (an interrupted or narrowed run, "no tests") are counted apart, never in the score.
Surviving mutants that are not listed as equivalent are printed by name; `mutmut show NAME`
prints the change.

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
EQUIVALENT = Path(__file__).with_name("mutation_equivalent.txt")


def equivalent_names(path: Path = EQUIVALENT) -> set[str]:
    """Names of the mutants classified as equivalent (first word of each non-comment line)."""
    if not path.exists():
        return set()
    lines = (ln.split("#", 1)[0].strip() for ln in path.read_text(encoding="utf-8").splitlines())
    return {ln.split()[0] for ln in lines if ln}


def main() -> int:
    metas = sorted(Path("mutants").rglob("*.py.meta"))
    if not metas:
        print("no mutation results: run `make mutate` (mutmut run) first", file=sys.stderr)
        return 1
    equivalent = equivalent_names()
    survivors: list[str] = []
    header = ("module", "mutants", "not run", "checked", "killed", "equiv", "survived", "other", "score")
    print(f"{header[0]:<22}" + "".join(f"{h:>9}" for h in header[1:]))
    tot: Counter[str] = Counter()
    for meta in metas:
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if not codes:
            continue
        c: Counter[str] = Counter()
        for name, code in codes.items():
            if code in NOT_RUN:
                c["not run"] += 1
            elif code in KILLED:
                c["killed"] += 1
            elif code in SURVIVED and name in equivalent:
                c["equiv"] += 1
            elif code in SURVIVED:
                c["survived"] += 1
                survivors.append(name)
            else:  # suspicious, segfault: not a kill, not a clean survival
                c["other"] += 1
        c["mutants"] = len(codes)
        c["checked"] = c["killed"] + c["equiv"] + c["survived"] + c["other"]
        tot.update(c)
        module = str(meta.relative_to("mutants")).removesuffix(".py.meta").replace("/", ".")
        print(_row(module, c))
    if tot["checked"]:
        print(_row("total", tot))
    if survivors:
        print("\nsurviving mutants not listed as equivalent (`mutmut show NAME`):")
        for name in survivors:
            print(f"  {name}")
    return 0


def _row(label: str, c: Counter[str]) -> str:
    scored = c["checked"] - c["equiv"]
    score = f"{100 * c['killed'] / scored:.1f}%" if scored else "-"
    cells = [c[k] for k in ("mutants", "not run", "checked", "killed", "equiv", "survived", "other")]
    return f"{label:<22}" + "".join(f"{v:>9}" for v in cells) + f"{score:>9}"


if __name__ == "__main__":
    sys.exit(main())
