"""Re-run mutants outside mutmut: those it could not judge, or named ones.

Under mutmut 3.8.1's fork server some mutants end with SIGTERM (exit -15) within 0.2 s, before
their tests run, so mutmut reports them as "suspicious": neither killed nor survived. The cause
lies in mutmut's worker, not in the mutant (in a plain fork the same tests pass or fail
normally). This runs each such mutant as mutmut would, in a process forked from one that has
imported the tests (but not through mutmut's fork server): the mutant switched on with
``MUTANT_UNDER_TEST``, the tests mutmut maps to its function (``mutants/mutmut-stats.json``),
fastest first, stopping at the first failure, under a time limit. The outcomes go to
``mutants/rerun.json``, whose outcome ``tools/mutation_score.py`` uses for those mutants.

Name mutants and give ``--tests-file`` to judge survivors by tests added since the run: copy
the tests into ``mutants/tests`` first (mutmut runs the tests from its own copy), and deselect
(``--deselect=ID`` lines) any new test that fails on the run's code with no mutant switched on.

    python tools/mutation_rerun.py [--timeout SECONDS] [--jobs N] [--tests-file F] [NAME ...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path

MUTANTS = Path("mutants").resolve()
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


def run_all(names: list[str], stats: dict, timeout: float, jobs: int, args: list[str] | None = None) -> None:
    """Run each mutant's tests in a process forked from one that has imported every test module.

    Each run: the mutant switched on (``MUTANT_UNDER_TEST``), ``pytest -x`` on its tests (or on
    ``args``), exit code 1 killed, 0 survived; over ``timeout`` seconds it is stopped and counts
    as a timeout (36); no tests, 33. Importing the test modules once here is what makes a run
    cheap: in a new process each would collect them again (minutes on a loaded machine).
    """
    import pytest

    os.chdir(MUTANTS)
    sys.path.insert(0, os.getcwd())  # the mutated package, before any installed rlsepi
    everything = args or sorted({t for name in names for t in tests_for(name, stats)})
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
        pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", *everything])
    pending, running = list(names), {}
    count = 0
    while pending or running:
        while pending and len(running) < jobs:
            name = pending.pop(0)
            tests = args or tests_for(name, stats)
            if not tests:
                count += 1
                _record(name, 33, count, len(names))
                continue
            pid = os.fork()
            if pid == 0:  # the child: one mutant's tests, output discarded
                os.environ["MUTANT_UNDER_TEST"] = name
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, 1)
                os.dup2(null, 2)
                try:
                    code = int(pytest.main(["-x", "-q", "-p", "no:cacheprovider", *tests]))
                except BaseException:
                    code = 3
                os._exit(code)
            running[pid] = (name, time.monotonic())
        time.sleep(0.1)
        for pid, (name, started) in list(running.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done == 0 and time.monotonic() - started < timeout:
                continue
            if done == 0:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                code = 36
            else:
                code = os.waitstatus_to_exitcode(status)
            del running[pid]
            count += 1
            _record(name, code, count, len(names))


def _record(name: str, code: int, i: int, total: int) -> None:
    """Add one outcome to mutants/rerun.json at once (kept if interrupted; read again each time, so
    that two re-runs at once do not drop each other's outcomes; replaced, never half-written)."""
    done = json.loads(RERUN_FILE.read_text()) if RERUN_FILE.exists() else {}
    done[name] = code
    tmp = RERUN_FILE.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(done, indent=1, sort_keys=True) + "\n")
    tmp.replace(RERUN_FILE)
    print(f"{i}/{total} {name}: {code}", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help="mutants to re-run (default: every suspicious one)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds for one mutant's tests")
    p.add_argument("--jobs", type=int, default=2, help="mutants run at once")
    p.add_argument("--tests-file", type=Path,
                   help="pytest arguments, one a line (test files, --deselect=ID), run for every mutant "
                        "instead of the tests mutmut maps to it: to judge survivors by tests added since")
    args = p.parse_args(argv)
    stats_file = MUTANTS / "mutmut-stats.json"
    if not stats_file.exists():
        print("mutation_rerun: no mutants/mutmut-stats.json: run `make mutate` first", file=sys.stderr)
        return 2
    stats = json.loads(stats_file.read_text())
    names = args.names or suspicious()
    if not names:
        print("mutation_rerun: no mutant to re-run")
        return 0
    extra = None
    if args.tests_file:
        extra = [ln.strip() for ln in args.tests_file.read_text().splitlines() if ln.strip()]
    run_all(names, stats, args.timeout, args.jobs, extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
