"""The same seed gives the same bytes on every machine.

numpy picks its vectorised ``exp``/``log`` kernels by CPU (AVX-512, AVX2, baseline), and BLAS
sums in an order that depends on the thread count, so unrounded results differ in the last
bits between machines. CI sees one CPU; these tests imitate others in subprocesses, with
numpy's CPU features switched down (``NPY_DISABLE_CPU_FEATURES``) and with one or two BLAS
threads, and require identical bytes of a cohort file and of a small report (summary.json,
index.html and the figures).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

import rlsepi
from rlsepi.io import round_floats, round_significant
from rlsepi.report import SUMMARY_DIGITS

ROOT = Path(rlsepi.__file__).resolve().parents[1]

N, SEED = 2000, 11

# one process: a cohort file, a small report, and the bits of numpy's exp on this CPU setting
SCRIPT = r"""
import hashlib, sys
from pathlib import Path
import numpy as np
from rlsepi import cohort, report
from rlsepi.cohort import write_cohort

out, n, seed = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
write_cohort(out / "cohort.parquet", n, seed=seed)
analysis = report.analyse(cohort.simulate(n, rng=seed), provenance={"seed": seed}, rng=seed)
report.write_report(analysis, out / "report")
x = np.linspace(-5.0, 8.0, 4097)
(out / "exp.sha256").write_text(hashlib.sha256(np.exp(x).tobytes() + np.log(x + 6.0).tobytes()).hexdigest())
"""


def _dispatch_targets() -> list[str]:
    from numpy._core import _multiarray_umath

    return list(_multiarray_umath.__cpu_dispatch__)


def _settings() -> dict[str, dict[str, str]]:
    """Environment per run: this CPU's best kernels; without AVX-512; the baseline kernels
    only (no AVX2/FMA3 either on x86-64: no dispatched kernel at all, on any CPU); with one
    or two BLAS threads. (Three runs, not all six combinations, to keep the suite fast: any
    difference from the first run fails the test whichever switch caused it.)"""
    targets = _dispatch_targets()
    no_avx512 = [t for t in targets if t.startswith(("X86_V4", "AVX512"))]
    return {
        "native, 2 BLAS threads": {"OPENBLAS_NUM_THREADS": "2"},
        "no AVX-512, 1 BLAS thread": {"NPY_DISABLE_CPU_FEATURES": " ".join(no_avx512), "OPENBLAS_NUM_THREADS": "1"},
        "baseline kernels, 2 BLAS threads": {"NPY_DISABLE_CPU_FEATURES": " ".join(targets),
                                             "OPENBLAS_NUM_THREADS": "2"},
    }


def _files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "exp.sha256"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("repro")
    procs = {}
    for i, (name, extra) in enumerate(_settings().items()):
        out = base / f"run{i}"
        out.mkdir()
        env = {k: v for k, v in os.environ.items()
               if k not in ("NPY_DISABLE_CPU_FEATURES", "NPY_ENABLE_CPU_FEATURES", "OMP_NUM_THREADS")}
        env.update(extra, PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
                   PYTHONHASHSEED="0", MPLBACKEND="Agg")
        procs[name] = (out, subprocess.Popen([sys.executable, "-c", SCRIPT, str(out), str(N), str(SEED)], env=env,
                                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    done = {}
    for name, (out, proc) in procs.items():
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"{name}: {err[-2000:]}"
        done[name] = out
    return done


def test_same_bytes_whatever_the_cpu_features_and_blas_threads(runs):
    names = list(runs)
    first = _files(runs[names[0]])
    assert {"cohort.parquet", "report/summary.json", "report/index.html"} <= set(first)
    assert any(k.startswith("report/figures/") for k in first)
    for name in names[1:]:
        other = _files(runs[name])
        differ = sorted(k for k in first.keys() | other.keys() if first.get(k) != other.get(k))
        assert not differ, f"{name} differs from {names[0]} in {differ}"


def test_the_switches_really_change_numpys_arithmetic(runs):
    """The test has teeth: on a CPU with AVX-512 the switched-down runs compute exp/log with
    other kernels (different last bits), so the identical files above are due to the
    rounding, not to identical arithmetic."""
    exp_bits = {name: (out / "exp.sha256").read_text() for name, out in runs.items()}
    if not any(t.startswith(("X86_V4", "AVX512")) for t in _dispatch_targets()) or \
            exp_bits["native, 2 BLAS threads"] == exp_bits["baseline kernels, 2 BLAS threads"]:
        pytest.skip("this CPU's best numpy kernels give the same exp/log bits as the baseline ones")
    assert exp_bits["native, 2 BLAS threads"] != exp_bits["no AVX-512, 1 BLAS thread"]


def test_summary_floats_have_the_stated_digits(runs):
    summary = json.loads((runs["native, 2 BLAS threads"] / "report" / "summary.json").read_text())
    summary.pop("provenance")  # the inputs, as given
    floats: list[float] = []

    def walk(x: object) -> None:
        if isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
        elif isinstance(x, float):
            floats.append(x)

    walk(summary)
    assert len(floats) > 500
    assert all(not math.isfinite(x) or float(f"{x:.{SUMMARY_DIGITS - 1}e}") == x for x in floats)


def test_round_significant_by_hand():
    # worked by hand: 6 significant digits of 0.0123456789 are 0.0123457 (the 7th digit, 7, rounds up)
    assert round_significant(0.0123456789, 6) == 0.0123457
    assert round_significant(-2.6802427212673052, 6) == -2.68024
    assert round_significant(8.648905396697103e-162, 6) == 8.64891e-162
    assert round_significant(123456789.0, 3) == 123000000.0
    assert round_significant(0.0, 6) == 0.0
    assert math.isnan(round_significant(float("nan"), 6))
    assert round_significant(float("inf"), 6) == float("inf")
    # ints and bools are not floats: kept; numpy scalars converted
    import numpy as np

    assert round_floats({"a": [1, True, np.float64(1 / 3)], "b": (2.5e-7 / 3,)}, 3) == \
        {"a": [1, True, 0.333], "b": [8.33e-08]}
