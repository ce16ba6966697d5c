"""Where the fixed start-up cost of ``rlsepi prs`` goes, in CPU seconds (user + system).

Run on demand (not part of the tests)::

    .venv/bin/python benchmarks/prs_startup.py [--runs 9]

The stages run one after another in a fresh process (numpy, pandas, scipy.special, numba,
rlsepi's PRS modules, then numba's set-up at the first call of a cached kernel, split into its
parts as ``numba.core.caching.Cache.load_overload`` runs them: the NRT runtime, the imports of
numba's typing and lowering registries, installing the registries, then loading each kernel's
object code), each timed with ``time.process_time``; the script prints each stage's median over
``--runs`` processes. CPU time is the steadier measure on a shared machine.
The compiled kernels must be in numba's cache (run ``rlsepi prs`` once after editing them).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

_KERNEL_ARGS = "np.zeros((10, 5), np.uint8), np.ones(20, bool), True, 20, K.LUT_A1, K.LUT_MISS"

STAGES = [
    ("numpy", "import numpy"),
    ("pandas", "import pandas"),
    ("scipy.special (ndtr for the analytic percentile)", "import scipy.special"),
    ("numba", "import numba"),
    ("rlsepi PRS modules and kernels (not yet loaded)", "from rlsepi import polygenic, _kernels"),
    ("numba: NRT runtime", ("from numba.core.registry import cpu_target; from numba.core.runtime import rtsys; "
                            "rtsys.initialize(cpu_target.target_context)")),
    ("numba: imports of its typing and lowering registries (one probes BLAS: scipy.linalg)",
     "cpu_target.target_context.load_additional_registries()"),
    ("numba: installing the registries", "cpu_target.target_context.refresh()"),
    ("first cached kernel (bed_counts)", f"import numpy as np; K = _kernels; K.bed_counts({_KERNEL_ARGS})"),
    ("second cached kernel (bed_accumulate3)",
     "K.bed_accumulate3(np.zeros((10, 5), np.uint8), np.zeros((10, 4, 3)), 20, np.zeros((20, 3)), 2, 8)"),
]


_CHILD = """
import json, sys, time
stages = json.loads(sys.argv[1])
out = []
for code in stages:
    t = time.process_time()
    exec(code, globals())
    out.append(time.process_time() - t)
print(json.dumps(out))
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=9, help="processes (medians over them)")
    args = ap.parse_args(argv)
    load = os.getloadavg()[0]
    deltas, totals = [], []
    for _ in range(args.runs):
        proc = subprocess.Popen([sys.executable, "-c", _CHILD, json.dumps([code for _, code in STAGES])],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out = proc.stdout.read() if proc.stdout else b""
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"failed: {proc.stderr.read().decode() if proc.stderr else ''}")
        deltas.append(json.loads(out))
        totals.append(usage.ru_utime + usage.ru_stime)
    print(f"median CPU seconds of {args.runs} processes (load average {load:.1f} -> {os.getloadavg()[0]:.1f}):")
    for i, (name, _) in enumerate(STAGES):
        print(f"  {statistics.median(d[i] for d in deltas):6.3f} s  {name}")
    print(f"  {statistics.median(totals):6.3f} s  the whole process")
    rest = statistics.median(t - sum(d) for t, d in zip(totals, deltas))
    print(f"  {rest:6.3f} s  of which the interpreter's start and exit (python -c pass: about 0.02 s; the rest mostly the "
          "shutdown's garbage collections over the libraries' objects, which the rlsepi program avoids: rlsepi.cli.run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
