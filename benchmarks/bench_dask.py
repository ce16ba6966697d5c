"""Benchmark the Dask paths: simulate to a dataset, prevalence and fit out of core.

Run on demand (``python benchmarks/bench_dask.py``), never in the test suite. Each step is a
fresh ``rlsepi`` process; memory is sampled from /proc every 50 ms for every process of the
tree, and reported as the client's peak and the largest peak of any other process (a Dask
worker or the nanny that supervises it). Wall times include start-up (imports, solving the
model, starting the local cluster).

Side by side, in one run:

- ``simulate`` of ``--n`` people: the single-process writer to one file, and ``--scheduler
  local:W`` writing a dataset;
- ``prs`` on a ``--prs-samples`` x ``--prs-variants`` PLINK 1 file, one process against ``local:W``;
- ``prevalence`` and ``fit`` on that dataset with ``local:W``, against pandas in memory on a
  ``--sample``-person cohort (the in-memory fit also computes AUCs and cross-validation,
  which the out-of-core fit leaves out, so its time is not like for like).

Measured 2026-11-24 with ``--n 100000000 --sample 2000000 --workdir /tmp/...``, the steps run
one after another (``--steps simulate``, then ``prevalence``, then ``fit``; the fit after the
IRLS changes of that day). The 2 cores were shared with four other jobs (the load average at
the end of each row is in the last column), so wall times are pessimistic and local:2 cannot
be twice one process here; memory is the meaningful number. The in-memory sample is 2M
people, not 10M: pandas' fit of 1M people already peaked at 3 GiB (10M would need about
30 GiB, more than this machine's 23 GiB).

    step        people       how                   seconds  people/s  client MiB  max child MiB  load
    simulate   100,000,000   1 process, one file     245.9   406,666        220            0   6.2
    simulate   100,000,000   local:2, dataset        227.2   440,120        261          235   7.6
    simulate     2,000,000   1 process, one file       3.8   530,262        198            0   7.6
    prevalence 100,000,000   local:2, dataset        205.3   487,154        917          415   5.2
    prevalence   2,000,000   pandas in memory         20.8    95,965       1557            0   4.8
    fit        100,000,000   local:2, dataset       1423.9    70,229        252         2934   6.1
    fit          2,000,000   pandas in memory         88.8    22,516       6071            0   5.1
    (the file of 100M people is 429 MiB, the dataset 433 MiB in 96 files)

Out of core, 100M people were fitted at 70,000 people/s against 23,600 for 10M before the
IRLS changes (below): the first pass (reading and checking every partition) is now the only
one that reads. The workers' resident memory was already 2.6 GiB four minutes into the first
pass, before the cache held much, and peaked at 2.9 GiB: it is mostly the working memory of
checking a 1M-person partition with pandas (held by the allocator between partitions), plus
the cache (about 1.1 GiB each at the end: 22 bytes a person), and does not grow with N until
the cache is full. The in-memory fit (which also computes the AUCs and 2-fold
cross-validation) needs 3 GiB per million people. Not explained yet: the prevalence client's
917 MiB (289 MiB for 10M people); besides 96 small count tables it runs the local scheduler
and its dashboard.

Measured earlier the same day with ``--n 10000000 --sample 1000000`` (before the IRLS
changes: the fit re-read and re-checked every partition on every pass, about 5 us per person
per pass), load average about 10:

    step        people       how                   seconds  people/s  client MiB  max child MiB
    simulate    10,000,000   1 process, one file      27.4   364,604        195            0
    simulate    10,000,000   local:2, dataset         56.2   177,906        224          217
    simulate     1,000,000   1 process, one file       8.1   123,198        195            0
    prevalence  10,000,000   local:2, dataset         40.1   249,359        289          309
    prevalence   1,000,000   pandas in memory         19.1    52,401        891            0
    fit         10,000,000   local:2, dataset        423.4    23,618        227          799
    fit          1,000,000   pandas in memory         75.3    13,280       3043            0

``prs`` on a 20,000 x 100,000 PLINK 1 file (477 MiB ``.bed``, 1% missing, 90,000 matched
variants; made as ``bench_prs.py`` makes it), measured 2026-11-24 with ``--steps prs``, twice
(load average about 2-3, then 3-6):

    step        people       how                   seconds  people/s  client MiB  max child MiB
    prs             20,000   1 process                10.7     1,863        389            0
    prs             20,000   local:2, variant blocks  14.5     1,384        316          407
    prs             20,000   1 process                17.3     1,157        389            0
    prs             20,000   local:2, variant blocks  31.0       645        330          415

    max |SUM difference| 2.0e-13, max |AVG difference| 1.1e-18, ALLELE_CT and DENOM identical

On 2 cores local:2 is slower: the single process's compiled kernels already use both cores,
and the cluster adds its start-up (about 3 s), a second read of the ``.bim`` by each worker and
two processes competing for two cores. The scores are the same.

Worker memory depends on the partition size (1M people by default), not on N; the client holds
only counts and p x p matrices.

Scaling argument (on paper): a simulate partition sends the worker a plan of a few KB (the
parameters and solved model) and returns one Parquet footer (about 5 KB per 65,536-person row
group); the rows never cross the network. A prevalence pass returns one table of counts per
partition (a few thousand cells of ~50 bytes). An IRLS iteration sends the current
coefficients (p numbers per model) and returns per partition and model a p x p matrix, a
p-vector and a log-likelihood (for M0-M3, about 2.5 KB). The fit reads every partition once
(the first pass); its columns then stay in the memory of the worker that read it (about 22
bytes a person, up to 2 GiB per worker) and the 5-7 further passes go to the same worker, so
they cost only arithmetic. Work per partition is independent, so wall time should fall close
to 1/W with W workers until the shared file system's read bandwidth or the scheduler's
per-task overhead (about 1 ms per task) limits it; with 1M-person partitions that overhead is
negligible below tens of thousands of partitions. With fewer workers than the data needs
(more than about 90M people per worker), partitions beyond the cache are read again each
pass, and the fit slows towards one read per pass.

For ``prs``, a block of variants (20,000 by default) sends the worker its scoring-file rows
(about 100 bytes each: 2 MB) and returns 8 bytes x (weights + 3) per person (for 500,000
people and one weight, 16 MB); the genotypes never cross the network, and each worker reads
only its own rows of the file. The scoring is linear in the genotypes read, so W workers on W
machines (each with its own cores and disk bandwidth from the shared file system) should
score close to W times as many variants per second, less the client's matching (one pass over
the variant table) and the reduction (one (n, k + 3) addition per block).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tree_rss_kib(pid: int) -> dict[int, int]:
    """Resident memory, in KiB, of ``pid`` and each of its descendants (Linux /proc)."""
    out, stack = {}, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        out[p] = int(line.split()[1])
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    stack += [int(c) for c in fh.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return out


def measure(cmd: list[str]) -> tuple[float, float, float]:
    """Wall seconds, the client's peak RSS and the largest peak of any child (MiB)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    peaks: dict[int, int] = {}
    while proc.poll() is None:
        for p, kib in tree_rss_kib(proc.pid).items():
            peaks[p] = max(peaks.get(p, 0), kib)
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"benchmark command failed: {' '.join(cmd)}\n{proc.stderr.read().decode()}")
    client = peaks.pop(proc.pid, 0)
    return seconds, client / 1024, max(peaks.values(), default=0) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000_000, help="people in the cohort (default 100M)")
    parser.add_argument("--sample", type=int, default=10_000_000, help="people for the in-memory runs (default 10M)")
    parser.add_argument("--workers", type=int, default=2, help="local worker processes (default 2)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--prs-samples", type=int, default=20_000, help="people in the PLINK file for prs (20k)")
    parser.add_argument("--prs-variants", type=int, default=100_000, help="variants in the PLINK file for prs (100k)")
    parser.add_argument("--steps", default="simulate,prevalence,fit,prs",
                        help="comma-separated: simulate (writes the dataset and the sample), prevalence and fit "
                             "(on them), prs")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the dataset and the sample here between runs (default: a temporary folder, "
                             "deleted at the end); lets the steps run one at a time")
    args = parser.parse_args()
    steps = {s.strip() for s in args.steps.split(",")}
    exe = [sys.executable, "-m", "rlsepi.cli"]
    sched = ["--scheduler", f"local:{args.workers}"]
    rows = []

    def row(step: str, people: int, how: str, cmd: list[str]) -> None:
        s, client, worker = measure(cmd)
        rows.append((step, people, how, s, people / s, client, worker))
        print(f"{step:<11} {people:>12,} {how:<22} {s:8.1f} {people / s:12,.0f} {client:9.0f} {worker:9.0f}  "
              f"(load average {os.getloadavg()[0]:.1f})", flush=True)

    print(f"{'step':<11} {'people':>12} {'how':<22} {'seconds':>8} {'people/s':>12} {'client MiB':>9} "
          f"{'max child MiB':>9}")
    with contextlib.ExitStack() as stack:
        if args.workdir is None:
            t = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR"))))
        else:
            t = args.workdir
            t.mkdir(parents=True, exist_ok=True)
        if "prs" in steps:
            prs_rows(t, args, exe, sched, row)
        one, ds, small = t / "one.parquet", t / "ds", t / "sample.parquet"
        if "simulate" in steps:
            sim = ["simulate", "--n", str(args.n), "--seed", str(args.seed), "--quiet"]
            row("simulate", args.n, "1 process, one file", [*exe, *sim, "--out", str(one)])
            shutil.rmtree(ds, ignore_errors=True)
            row("simulate", args.n, f"local:{args.workers}, dataset", [*exe, *sim, "--out", f"{ds}/", *sched])
            size = lambda p: sum(f.stat().st_size for f in p.rglob("*")) if p.is_dir() else p.stat().st_size
            print(f"  file {size(one) / 2**20:,.0f} MiB, dataset {size(ds) / 2**20:,.0f} MiB")
            one.unlink()
            small.unlink(missing_ok=True)
            row("simulate", args.sample, "1 process, one file",
                [*exe, "simulate", "--n", str(args.sample), "--seed", str(args.seed), "--quiet", "--out", str(small)])
        if "prevalence" in steps:
            prev = ["prevalence", "--format", "json", "--quiet", "--n-boot", "20"]
            row("prevalence", args.n, f"local:{args.workers}, dataset", [*exe, *prev, str(ds), *sched])
            row("prevalence", args.sample, "pandas in memory", [*exe, *prev, str(small)])
        if "fit" in steps:
            row("fit", args.n, f"local:{args.workers}, dataset", [*exe, "fit", "--format", "json", str(ds), *sched])
            row("fit", args.sample, "pandas in memory",
                [*exe, "fit", "--format", "json", "--cv-folds", "2", str(small)])


def prs_rows(t: Path, args: argparse.Namespace, exe: list[str], sched: list[str], row: Callable[..., None]) -> None:
    """``prs`` on a seeded PLINK 1 file (made as ``bench_prs.py`` makes it), one process against local:W."""
    import numpy as np
    import pandas as pd

    start = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_prs.py"), "--generate-only", str(t),
                    "--samples", str(args.prs_samples), "--variants", str(args.prs_variants), "--seed", str(args.seed)],
                   check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    print(f"  prs data: {args.prs_samples:,} x {args.prs_variants:,} "
          f"({(t / 'bench.bed').stat().st_size / 2**20:,.0f} MiB .bed) in {time.perf_counter() - start:.0f} s")
    cmd = [*exe, "prs", str(t / "bench.bed"), "--score", str(t / "score.tsv"), "--quiet"]
    row("prs", args.prs_samples, "1 process", [*cmd, "--out", str(t / "one.parquet")])
    row("prs", args.prs_samples, f"{sched[1]}, variant blocks", [*cmd, "--out", str(t / "dist.parquet"), *sched])
    one, dist = (pd.read_parquet(t / f) for f in ("one.parquet", "dist.parquet"))  # full precision
    same = (one["ALLELE_CT"].equals(dist["ALLELE_CT"]) and one["DENOM"].equals(dist["DENOM"]))
    print(f"  prs: max |SUM difference| {np.abs(one['SUM'] - dist['SUM']).max():.1e}, "
          f"max |AVG difference| {np.abs(one['AVG'] - dist['AVG']).max():.1e}, ALLELE_CT and DENOM identical: {same}")
    for f in t.glob("bench.*"):
        f.unlink()


if __name__ == "__main__":
    main()
