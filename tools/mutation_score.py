"""Print the mutation score per module from mutmut's results (mutants/**/*.py.meta).

Score = killed (including timeouts and type-check catches) / (mutants checked - equivalent
survivors). Equivalent mutants are listed by name, each with the reason, in
``tools/mutation_equivalent.txt``; a listed mutant that was killed counts as killed. A mutant
that no test reaches ("no tests") counts as not killed. Mutants not yet checked (an interrupted
or narrowed run) are counted apart, never in the score. Surviving mutants that are not listed as
equivalent are printed by name; `mutmut show NAME` prints the change.

With ``--sample`` only the mutants of ``mutants/sample.json`` (a simple random sample per module,
drawn by ``tools/mutation_sample.py``) are counted, and each score is printed with its 95% Wilson
interval: the score of the sample estimates the score of the whole module. The interval ignores
the finite-population correction, so it is slightly wider than it needs to be.

Mutants re-run outside mutmut by ``tools/mutation_rerun.py`` (``mutants/rerun.json``) count
with that later outcome: those mutmut reported as "suspicious" (its worker ended by a signal)
and survivors re-run after tests were added.

Run after `mutmut run` (see `make mutate`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from statsmodels.stats.proportion import proportion_confint

KILLED = {1, 3, 24, -24, 36, 37, 152, 255}  # killed, pytest internal error, timeouts, type check
SURVIVED = {0}
UNTESTED = {5, 33}  # "no tests": nothing that mutmut runs reaches the mutant
NOT_RUN = {None, 2, 34}  # not checked, interrupted, skipped
EQUIVALENT = Path(__file__).with_name("mutation_equivalent.txt")
RERUN = Path("mutants") / "rerun.json"
COLUMNS = ("mutants", "not run", "checked", "killed", "equiv", "survived", "untested", "other")


def equivalent_names(path: Path = EQUIVALENT) -> set[str]:
    """Names of the mutants classified as equivalent (first word of each non-comment line)."""
    if not path.exists():
        return set()
    lines = (ln.split("#", 1)[0].strip() for ln in path.read_text(encoding="utf-8").splitlines())
    return {ln.split()[0] for ln in lines if ln}


def classify(codes: dict[str, int | None], equivalent: set[str]) -> tuple[Counter[str], list[str]]:
    """Counts of each outcome, and the names of the survivors not listed as equivalent."""
    c: Counter[str] = Counter()
    survivors = []
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
        elif code in UNTESTED:
            c["untested"] += 1
            survivors.append(name)
        else:  # suspicious, segfault: not a kill, not a clean survival
            c["other"] += 1
    c["mutants"] = len(codes)
    c["checked"] = c["killed"] + c["equiv"] + c["survived"] + c["untested"] + c["other"]
    return c, survivors


def score(c: Counter[str], interval: bool) -> str:
    """The score as text: killed / (checked - equivalent), with the 95% Wilson interval if asked."""
    scored = c["checked"] - c["equiv"]
    if not scored:
        return "-"
    text = f"{100 * c['killed'] / scored:.1f}%"
    if interval:
        lo, hi = proportion_confint(c["killed"], scored, alpha=0.05, method="wilson")
        text += f" ({100 * lo:.1f}-{100 * hi:.1f})"
    return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sample", action="store_true",
                   help="count only the mutants of mutants/sample.json and print each score's 95%% interval")
    args = p.parse_args(argv)
    metas = sorted(Path("mutants").rglob("*.py.meta"))
    if not metas:
        print("no mutation results: run `make mutate` (mutmut run) first", file=sys.stderr)
        return 1
    sample = None
    if args.sample:
        path = Path("mutants") / "sample.json"
        if not path.exists():
            print("no mutants/sample.json: draw a sample with tools/mutation_sample.py N", file=sys.stderr)
            return 1
        drawn = json.loads(path.read_text())
        sample = drawn["names"]
        shrunk = drawn.get("shrunk", {})
        sizes = "".join(f", {v['n']} in {m} (redrawn from those, seed {v['seed']})" for m, v in shrunk.items())
        print(f"simple random sample of {drawn['n']} mutants per module (seed {drawn['seed']}){sizes}; "
              "score with its 95% Wilson interval, an estimate for the whole module\n")
    equivalent = equivalent_names()
    rerun = json.loads(RERUN.read_text()) if RERUN.exists() else {}
    survivors: list[str] = []
    unfinished: list[str] = []
    width = 26 if sample is not None else 9
    print(f"{'module':<22}" + "".join(f"{h:>9}" for h in COLUMNS) + f"{'score':>{width}}")
    tot: Counter[str] = Counter()
    for meta in metas:
        module = str(meta.relative_to("mutants")).removesuffix(".py.meta").replace("/", ".")
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if sample is not None:
            if module not in sample:
                continue
            codes = {name: codes.get(name) for name in sample[module]}
        if not codes:
            continue
        codes = {name: rerun.get(name, code) for name, code in codes.items()}
        c, names = classify(codes, equivalent)
        if sample is not None and c["not run"]:
            unfinished.append(module)
        survivors += names
        tot.update(c)
        print(f"{module:<22}" + "".join(f"{c[k]:>9}" for k in COLUMNS)
              + f"{score(c, sample is not None):>{width}}")
    if tot["checked"] and sample is None:
        print(f"{'total':<22}" + "".join(f"{tot[k]:>9}" for k in COLUMNS) + f"{score(tot, False):>{width}}")
    if unfinished:
        print(f"\nnot every sampled mutant has run in {', '.join(unfinished)}: mutmut runs the fastest first, "
              "so these scores are not yet estimates of the module's")
    if survivors:
        print("\nmutants not killed and not listed as equivalent (`mutmut show NAME`):")
        for name in survivors:
            print(f"  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
