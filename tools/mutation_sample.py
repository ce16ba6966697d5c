"""Draw a seeded uniform random sample of mutants per module, for `make mutate SAMPLE=N`.

The whole statistical core has about 13,000 mutants; on a 2-core machine running all of them
takes of the order of a day. A simple random sample of N mutants from each module gives an
unbiased estimate of each module's score, with a binomial confidence interval
(`tools/mutation_score.py` prints the Wilson interval), at a fraction of the cost: random
mutant selection estimates the full score well (Wong & Mathur 1995; Zhang et al. 2010, "Is
operator-based mutant selection superior to random mutant selection?", ICSE).

Needs every mutant's name, from ``mutants/**/*.py.meta``: if they do not exist yet, the mutants
are generated first, with the steps `mutmut run` starts with (mutmut 3.8.1, pinned). Writes the
sample to ``mutants/sample.json`` (seed, size, names per module) and prints the names, one a
line, for `mutmut run` (`make mutate SAMPLE=N`).

    python tools/mutation_sample.py N [--seed S] [--module rlsepi.cohort ...]
    python tools/mutation_sample.py K --shrink --module rlsepi.cohort ...

``--shrink`` replaces the named modules' sample by a simple random sample of K of its own
names, drawn without looking at any result: still a simple random sample of the module, for when
the first one takes longer to run than there is time (results already obtained are kept).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from pathlib import Path

SAMPLE_FILE = Path("mutants") / "sample.json"


def all_mutants(root: Path = Path("mutants")) -> dict[str, list[str]]:
    """Every mutant's name, by module (from mutmut's ``.py.meta`` files), sorted."""
    out: dict[str, list[str]] = {}
    for meta in sorted(root.rglob("*.py.meta")):
        module = str(meta.relative_to(root)).removesuffix(".py.meta").replace("/", ".")
        names = sorted(json.loads(meta.read_text())["exit_code_by_key"])
        if names:
            out[module] = names
    return out


def generate(jobs: int) -> None:
    """Generate the mutants as `mutmut run` does before running any (no mutant is run)."""
    from mutmut import __main__ as mm  # the first steps of mutmut.__main__._run, mutmut 3.8.1

    mm.set_mutant_under_test("mutant_generation")
    os.makedirs("mutants", exist_ok=True)
    mm.copy_src_dir()
    mm.copy_also_copy_files()
    mm.setup_source_paths()
    mm.store_lines_covered_by_tests()  # mutate_only_covered_lines: runs the tests under coverage
    mm.create_mutants(jobs)


def draw(mutants: dict[str, list[str]], n: int, seed: int) -> dict[str, list[str]]:
    """N names per module, a simple random sample without replacement (all if fewer)."""
    rng = random.Random(seed)
    # one generator, modules in sorted order: the same seed and mutants give the same sample
    return {m: sorted(rng.sample(names, min(n, len(names)))) for m, names in sorted(mutants.items())}


def shrink(n: int, seed: int, modules: list[str]) -> int:
    """Replace the sample of each module by n of its names (seeded); print the whole sample's names."""
    drawn = json.loads(SAMPLE_FILE.read_text())
    unknown = sorted(set(modules) - set(drawn["names"]))
    if unknown or not modules:
        print(f"mutation_sample: --shrink needs --module, one of {', '.join(drawn['names'])}", file=sys.stderr)
        return 2
    smaller = draw({m: drawn["names"][m] for m in modules}, n, seed)
    drawn["names"].update(smaller)
    drawn.setdefault("shrunk", {}).update({m: {"n": n, "seed": seed} for m in modules})
    SAMPLE_FILE.write_text(json.dumps(drawn, indent=1) + "\n")
    for names in drawn["names"].values():
        print("\n".join(names))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("n", type=int, help="mutants to draw from each module")
    p.add_argument("--seed", type=int, default=20261124)
    p.add_argument("--module", action="append", help="only these modules (default: all)")
    p.add_argument("--jobs", type=int, default=2, help="processes for generating the mutants")
    p.add_argument("--shrink", action="store_true",
                   help="draw N of the existing sample of each --module (mutants/sample.json)")
    args = p.parse_args(argv)
    if args.n < 1:
        print("mutation_sample: N must be at least 1", file=sys.stderr)
        return 2
    if args.shrink:
        return shrink(args.n, args.seed, args.module or [])
    mutants = all_mutants()
    if not mutants:
        print("mutation_sample: generating the mutants (runs the tests once under coverage)", file=sys.stderr)
        generate(args.jobs)
        mutants = all_mutants()
    if not mutants:
        print("mutation_sample: mutmut generated no mutants: check [tool.mutmut] in pyproject.toml",
              file=sys.stderr)
        return 2
    if args.module:
        unknown = sorted(set(args.module) - set(mutants))
        if unknown:
            print(f"mutation_sample: unknown module {', '.join(unknown)}; known: {', '.join(mutants)}",
                  file=sys.stderr)
            return 2
        mutants = {m: mutants[m] for m in args.module}
    sample = draw(mutants, args.n, args.seed)
    SAMPLE_FILE.write_text(json.dumps({"seed": args.seed, "n": args.n,
                                       "population": {m: len(v) for m, v in mutants.items()},
                                       "names": sample}, indent=1) + "\n")
    for names in sample.values():
        print("\n".join(names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
