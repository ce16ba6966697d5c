"""``rlsepi simulate``: write a calibrated synthetic cohort to Parquet."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from rlsepi.commands import DEFAULT_SEED, add_params_option, positive_int, seed_int
from rlsepi.distributed import parse_scheduler
from rlsepi.errors import RLSEpiError
from rlsepi.parameters import load_parameters



def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate", help="simulate a synthetic cohort calibrated to the published targets",
        description="Simulate adults with age, sex, pregnancy, serum ferritin, genotypes at the score's loci "
        "and RLS status from a logistic model whose intercept, sex effect, age curve and trimester effects are "
        "solved so that the cohort reproduces the targets in expectation. The same seed gives a byte-identical "
        "file whatever --workers and --batch-blocks are.",
    )
    p.add_argument("--n", required=True, type=positive_int, metavar="N", help="number of people (> 0)")
    p.add_argument("--seed", type=seed_int, default=DEFAULT_SEED, metavar="S",
                   help=f"random seed, a whole number >= 0 (default {DEFAULT_SEED})")
    p.add_argument("--out", required=True, metavar="FILE|DIR/",
                   help="output Parquet file (FILE.parquet), or a folder (DIR/, with the slash) for a Parquet "
                   "dataset: one file per partition plus _metadata, the same rows as the single file")
    p.add_argument("--force", action="store_true", help="overwrite FILE (or replace DIR) if it exists")
    p.add_argument("--plink", type=Path, metavar="PREFIX",
                   help="also write the genotypes as PLINK 1 binary PREFIX.bed/.bim/.fam (real allele letters)")
    add_params_option(p)
    p.add_argument("--workers", type=positive_int, default=1, metavar="W",
                   help="worker processes (default 1); does not change the result")
    p.add_argument("--batch-blocks", type=positive_int, default=None, metavar="B",
                   help="blocks of 65,536 people held in memory at once (default 2 per worker); "
                   "does not change the result")
    p.add_argument("--scheduler", type=parse_scheduler, default=None, metavar="local[:N]|tcp://HOST:PORT",
                   help="write the dataset on a Dask cluster: local:N starts N local worker processes, "
                   "tcp://HOST:PORT uses a running 'dask scheduler' (workers write their own partitions, "
                   "so DIR must be on a file system they share); needs --out DIR/; does not change the result")
    p.add_argument("--partition-blocks", type=positive_int, default=None, metavar="K",
                   help="blocks of 65,536 people per dataset file (default 16, about 1M people); "
                   "does not change the result")
    p.add_argument("--check", action="store_true",
                   help="after writing, compare the cohort with the targets (exit 1 if any is missed)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors and the check")
    p.set_defaults(run=run)


def canonical_command(args: argparse.Namespace) -> str:
    """The command that regenerates the same bytes (output path and speed options left out)."""
    cmd = f"rlsepi simulate --n {args.n} --seed {args.seed}"
    if args.params is not None:
        cmd += f" --params {args.params.name}"
    return cmd + " --out FILE"


def is_dataset(out: str) -> bool:
    """``--out DIR/`` (trailing slash) or an existing folder: a Parquet dataset."""
    return out.endswith(("/", os.sep)) or Path(out).is_dir()


def run_dataset(args: argparse.Namespace) -> int:
    from rlsepi.distributed import connect, write_dataset

    if args.plink is not None:
        raise RLSEpiError("--plink writes from a single file; use --out FILE.parquet with --plink")
    out = Path(args.out)
    params = load_parameters(args.params)
    start = time.perf_counter()
    with connect(args.scheduler, quiet=args.quiet) as client:
        write_dataset(out, args.n, seed=args.seed, params=params, command=canonical_command(args), client=client,
                      partition_blocks=args.partition_blocks or 16, force=args.force,
                      progress=not args.quiet and sys.stderr.isatty())
        seconds = time.perf_counter() - start
        if not args.quiet:
            print(f"wrote {args.n:,} people to dataset {out}/ in {seconds:.1f} s (seed {args.seed})", file=sys.stderr)
        if args.check:
            from rlsepi.commands.check import NEEDED, report
            from rlsepi.distributed import FREQ, cell_counts
            from rlsepi.targets import check_targets

            counts = cell_counts(out, NEEDED, client=client, require=tuple(c for c in NEEDED if c != "trimester"))
            return report(check_targets(counts.cells, params, freq=FREQ), as_json=False)
    return 0


def run(args: argparse.Namespace) -> int:
    from rlsepi.cohort import write_cohort
    from rlsepi.commands import check_outputs
    from rlsepi.io import check_free_space, estimated_cohort_bytes, output_group, read_cohort

    if is_dataset(args.out):
        return run_dataset(args)
    if args.scheduler is not None:
        raise RLSEpiError(f"--scheduler writes a Parquet dataset; give a folder: --out {Path(args.out).with_suffix('')}/")
    if args.partition_blocks is not None:
        raise RLSEpiError("--partition-blocks is for a dataset folder (--out DIR/)")
    args.out = Path(args.out)
    if args.out.suffix.lower() != ".parquet":
        raise RLSEpiError(f"output '{args.out}' must end in .parquet (or give a folder, DIR/, for a dataset)")
    plink = [Path(f"{args.plink}.{ext}") for ext in ("bed", "bim", "fam")] if args.plink is not None else []
    check_outputs([args.out, *plink], inputs=[args.params], force=args.force)
    params = load_parameters(args.params)
    check_free_space(args.out, estimated_cohort_bytes(args.n, len(params.loci))
                     + (args.n * (1 + len(params.loci)) if plink else 0), what=f"a cohort of {args.n:,} people")
    start = time.perf_counter()
    with output_group(force=args.force) as group:  # the Parquet file and the PLINK files, or nothing
        write_cohort(args.out, args.n, seed=args.seed, params=params, command=canonical_command(args),
                     workers=args.workers, batch_blocks=args.batch_blocks, force=args.force)
        seconds = time.perf_counter() - start
        if args.plink is not None:
            from rlsepi.polygenic import write_plink

            columns = ["person_id", "sex", "rls", *(loc.rsid for loc in params.loci)]
            write_plink(read_cohort(group.staged_path(args.out), columns=columns, fmt="parquet"),
                        args.plink, params.loci, force=args.force)
    if not args.quiet:
        print(f"wrote {args.n:,} people to {args.out} in {seconds:.1f} s (seed {args.seed})", file=sys.stderr)
    if args.check:
        from rlsepi.commands.check import NEEDED, report
        from rlsepi.targets import check_targets

        return report(check_targets(read_cohort(args.out, columns=NEEDED), params), as_json=False)
    return 0
