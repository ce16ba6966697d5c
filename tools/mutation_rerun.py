"""Re-run mutants, each in a fresh pytest process: those mutmut could not judge, or named ones.

Under mutmut 3.8.1's fork server some mutants of `polygenic` end with SIGTERM (exit -15) before
their tests finish, so mutmut reports them as "suspicious": neither killed nor survived. The
cause lies in the forked worker, not in the mutant (run alone, the same tests pass or fail
normally). This runs each such mutant as mutmut would, but in a new process: the mutant switched
on with ``MUTANT_UNDER_TEST``, the tests mutmut maps to its function (``mutants/mutmut-stats.json``),
fastest first, stopping at the first failure, under a time limit. The outcomes go to
``mutants/rerun.json``, whose outcome ``tools/mutation_score.py`` uses for those mutants.
Name mutants to re-run survivors after adding tests: copy the tests into ``mutants/tests``
first (mutmut runs the tests from its own copy).

    python tools/mutation_rerun.py [--timeout SECONDS] [NAME ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

MUTANTS = Path("mutants")
RERUN_FILE = MUTANTS / "rerun.json"
JUDGED = {None, 0, 1, 3, 5, 33, 2, 34, 36, 37, 24, -24, 152, 255}  # codes mutmut itself decides


def suspicious(root: Path = MUTANTS) -> list[str]:
    """Names of the mutants whose mutmut result is none of killed, survived, timeout, no tests."""
    names = []
    for meta in sorted(root.rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        names += [n for n, code in codes.items() if code not in JUDGED]
    return names


def tests_for(name: str, stats: dict) -> list[str]:
    """The tests mutmut maps to the mutant's function, fastest first (as mutmut orders them)."""
    function = name.rsplit("__mutmut_", 1)[0]
    tests = stats["tests_by_mangled_function_name"].get(function, [])
    return sorted(tests, key=lambda t: stats["duration_by_test"].get(t, 0.0))


def run_one(name: str, tests: list[str], timeout: float) -> int:
    """1 if a test fails (killed), 0 if all pass (survived), 36 on timeout, 33 if no tests."""
    if not tests:
        return 33
    env = dict(os.environ, MUTANT_UNDER_TEST=name, PYTHONPATH=str(MUTANTS.resolve()))
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    try:
        done = subprocess.run(cmd, cwd=MUTANTS, env=env, timeout=timeout,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return 36
    return {0: 0, 1: 1}.get(done.returncode, done.returncode)


def _record(name: str, code: int) -> None:
    """Add one outcome to mutants/rerun.json at once (kept if interrupted; read again each time, so
    that two re-runs at once do not drop each other's outcomes; replaced, never half-written)."""
    done = json.loads(RERUN_FILE.read_text()) if RERUN_FILE.exists() else {}
    done[name] = code
    tmp = RERUN_FILE.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(done, indent=1, sort_keys=True) + "\n")
    tmp.replace(RERUN_FILE)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help="mutants to re-run (default: every suspicious one)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds for one mutant's tests")
    p.add_argument("--jobs", type=int, default=2, help="mutants run at once")
    args = p.parse_args(argv)
    stats_file = MUTANTS / "mutmut-stats.json"
    if not stats_file.exists():
        print("mutation_rerun: no mutants/mutmut-stats.json: run `make mutate` first", file=sys.stderr)
        return 2
    stats = json.loads(stats_file.read_text())
    names = args.names or suspicious()
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = {name: pool.submit(run_one, name, tests_for(name, stats), args.timeout) for name in names}
        for i, (name, future) in enumerate(futures.items(), 1):
            code = future.result()
            _record(name, code)
            print(f"{i}/{len(names)} {name}: {code}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
