"""Benchmark ``rlsepi prs`` against ``plink2 --score`` side by side on PLINK 1, PLINK 2, BGEN and VCF.

Run on demand (not part of the tests)::

    .venv/bin/python benchmarks/bench_prs.py                 # 20,000 samples x 100,000 variants
    .venv/bin/python benchmarks/bench_prs.py --samples 2000 --variants 10000 --keep /tmp/bench
    .venv/bin/python benchmarks/bench_prs.py --formats bed,pgen,bgen --repeat 3

The PLINK 1 file is converted by plink2 to the other formats (``--make-pgen``, ``--export
bgen-1.2 bits=8``, ``--export vcf bgz``); plink2 scores the same files (the VCF through its
own import, as a user would: ``--vcf``), each run in its own process, alternating the tools.
The 1-minute load average is printed with each pair: the machine may be shared.

It writes a seeded PLINK file (1% missing calls) and a scoring file with 90% of the
variants plus 2% absent ones, a third of them with swapped alleles, then runs each tool
once in its own process and prints wall time, CPU time (user + system) and peak resident
memory (both from ``wait4``; CPU time is the steadier measure on a shared machine), their
ratios, and the largest absolute difference in SUM between the two.

Linux charges a child's peak RSS with the RSS of the process it was forked from, so the
data are generated in a separate process and this one imports nothing heavy before the
timed runs (numpy and pandas only afterwards, to compare the outputs).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_data(folder: Path, n: int, m: int, *, seed: int, block: int = 2000) -> Path:
    import numpy as np
    import pandas as pd

    from rlsepi import polygenic as pg

    rng = np.random.default_rng(seed)
    letters = np.array(list("ACGT"))
    a1 = rng.integers(0, 4, m)
    a2 = (a1 + rng.integers(1, 4, m)) % 4
    pal = (letters[a1] == "A") & (letters[a2] == "T") | (letters[a1] == "T") & (letters[a2] == "A") | \
          (letters[a1] == "C") & (letters[a2] == "G") | (letters[a1] == "G") & (letters[a2] == "C")
    a2 = np.where(pal, (a2 + 1) % 4, a2)  # no palindromic SNPs: both tools then use the same rows
    a2 = np.where(a2 == a1, (a1 + 2) % 4, a2)
    variants = pd.DataFrame({"chrom": (1 + np.arange(m) * 22 // m).astype(str), "id": [f"rs{i + 1}" for i in range(m)],
                             "pos": np.arange(m) * 100 + 1, "a1": letters[a1], "a2": letters[a2]})
    freq = rng.uniform(0.05, 0.95, m)
    samples = pd.DataFrame({"IID": [f"s{i + 1}" for i in range(n)]})

    def blocks():
        for lo in range(0, m, block):
            hi = min(lo + block, m)
            p = freq[lo:hi].astype(np.float32)
            g = (rng.random((n, hi - lo), dtype=np.float32) < p).astype(np.int8)
            g += rng.random((n, hi - lo), dtype=np.float32) < p
            g[rng.random((n, hi - lo), dtype=np.float32) < 0.01] = -1  # missing
            yield g

    pg.write_bed(folder / "bench", blocks(), variants, samples)
    used = np.flatnonzero(rng.random(m) < 0.9)
    swap = rng.random(used.size) < 1 / 3
    score = pd.DataFrame({
        "rsID": variants["id"].to_numpy()[used],
        "effect_allele": np.where(swap, variants["a2"].to_numpy()[used], variants["a1"].to_numpy()[used]),
        "other_allele": np.where(swap, variants["a1"].to_numpy()[used], variants["a2"].to_numpy()[used]),
        "effect_weight": np.round(rng.normal(0, 0.01, used.size), 6),
    })
    k = m // 50
    absent = pd.DataFrame({"rsID": [f"rs{m + 1 + i}" for i in range(k)], "effect_allele": "A",
                           "other_allele": "G", "effect_weight": 0.001})
    pd.concat([score, absent]).to_csv(folder / "score.tsv", sep="\t", index=False)
    return folder / "bench"


def run(cmd: list[str], cwd: Path) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (MiB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {err[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=20_000)
    ap.add_argument("--variants", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2, help="plink2 --threads (rlsepi uses numpy's default)")
    ap.add_argument("--keep", type=Path, help="folder to keep the files in (default: a temporary folder)")
    ap.add_argument("--reuse", action="store_true", help="with --keep: reuse the files already there")
    ap.add_argument("--formats", default="bed,pgen,bgen,vcf", help="comma-separated: bed, pgen, bgen, vcf")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each tool per format (alternating)")
    ap.add_argument("--generate-only", type=Path, metavar="FOLDER", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.generate_only is not None:
        make_data(args.generate_only, args.samples, args.variants, seed=args.seed)
        return 0
    plink2 = shutil.which("plink2")
    if plink2 is None:
        raise SystemExit("plink2 is not on PATH")
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench_prs."))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        if not (args.reuse and (folder / "bench.bed").exists()):
            subprocess.run([sys.executable, __file__, "--generate-only", str(folder), "--samples", str(args.samples),
                            "--variants", str(args.variants), "--seed", str(args.seed)], check=True)
        print(f"data: {args.samples:,} samples x {args.variants:,} variants "
              f"({(folder / 'bench.bed').stat().st_size / 2**20:,.0f} MiB .bed) in {time.perf_counter() - t0:.0f} s")
        conv = {"pgen": ["--make-pgen", "--out", "bench"],
                "bgen": ["--export", "bgen-1.2", "bits=8", "ref-first", "--out", "bench"],
                "vcf": ["--export", "vcf", "bgz", "--out", "bench"]}
        target = {"bed": "bench.bed", "pgen": "bench.pgen", "bgen": "bench.bgen", "vcf": "bench.vcf.gz"}
        theirs_in = {"bed": ["--bfile", "bench"], "pgen": ["--pfile", "bench"],
                     "bgen": ["--bgen", "bench.bgen", "ref-first", "--sample", "bench.sample"],
                     "vcf": ["--vcf", "bench.vcf.gz"]}
        formats = [f.strip() for f in args.formats.split(",")]
        # rlsepi's modules byte-compiled, as an installed package has them: with PYTHONDONTWRITEBYTECODE=1 and no
        # __pycache__ (a source checkout), every run would compile them again (about 0.06 s of CPU)
        package = importlib.util.find_spec("rlsepi").submodule_search_locations[0]
        subprocess.run([sys.executable, "-m", "compileall", "-q", package], check=True)
        if importlib.util.find_spec("coverage") is not None:
            print("note: 'coverage' is installed here, and numba imports it when it is (about 0.06 s of CPU per "
                  "rlsepi run that an install without rlsepi's test extra does not spend)")
        for fmt in formats:
            if fmt != "bed" and not (folder / target[fmt]).exists():
                subprocess.run([plink2, "--bfile", "bench", *conv[fmt], "--threads", str(args.threads)], cwd=folder,
                               check=True, capture_output=True)
        import numpy as np
        import pandas as pd

        rows = []
        for fmt in formats:
            for rep in range(args.repeat):
                load = os.getloadavg()[0]
                ours_t, ours_c, ours_m = run([sys.executable, "-m", "rlsepi.cli", "prs", target[fmt], "--score", "score.tsv",
                                      "--out", f"ours_{fmt}.tsv", "--force", "--quiet"], folder)
                theirs_t, theirs_c, theirs_m = run([plink2, *theirs_in[fmt], "--score", "score.tsv", "1", "2", "4",
                                          "header-read", "cols=+scoresums,+denom", "--threads", str(args.threads),
                                          "--memory", "2048", "--out", f"plink2_{fmt}"], folder)
                ours = pd.read_csv(folder / f"ours_{fmt}.tsv", sep="\t", comment="#")
                theirs = pd.read_csv(folder / f"plink2_{fmt}.sscore", sep="\t")
                diff = np.abs(ours["SUM"].to_numpy() - theirs["effect_weight_SUM"].to_numpy())
                rel = float((diff / np.maximum(np.abs(theirs["effect_weight_SUM"].to_numpy()), 1e-12)).max())
                rows.append((fmt, rep + 1, ours_t, theirs_t, ours_m, theirs_m, rel, load, ours_c, theirs_c))
                print(f"{fmt:5s} run {rep + 1}: rlsepi {ours_t:6.1f} s (CPU {ours_c:6.2f} s) {ours_m:6.0f} MiB | plink2 "
                      f"{theirs_t:6.1f} s (CPU {theirs_c:6.2f} s) {theirs_m:6.0f} MiB | ratio wall {ours_t / theirs_t:4.1f}x "
                      f"CPU {ours_c / theirs_c:4.1f}x memory {ours_m / theirs_m:4.1f}x | SUM max rel diff {rel:.1e} | "
                      f"load {load:.1f}", flush=True)
        print("\nmedian ratio rlsepi/plink2 per format (wall, CPU = user + system, memory):")
        for fmt in formats:
            r = [x for x in rows if x[0] == fmt]
            print(f"  {fmt:5s} wall {np.median([x[2] / x[3] for x in r]):.2f}x  CPU "
                  f"{np.median([x[8] / x[9] for x in r]):.2f}x  memory "
                  f"{np.median([x[4] / x[5] for x in r]):.2f}x  (rlsepi {np.median([x[2] for x in r]):.1f} s, CPU "
                  f"{np.median([x[8] for x in r]):.2f} s; plink2 {np.median([x[3] for x in r]):.1f} s, CPU "
                  f"{np.median([x[9] for x in r]):.2f} s, --threads {args.threads})")
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
