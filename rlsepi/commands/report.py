"""``rlsepi report``: the HTML report and summary.json, on the default cohort or the user's."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rlsepi.commands import (
    DEFAULT_SEED,
    REPORT_N,
    add_mapping_options,
    add_params_option,
    positive_int,
    read_mapped_cohort,
    require_file,
    seed_int,
)
from rlsepi.errors import RLSEpiError

NEEDED = ("age", "sex", "rls", "pregnant", "ferritin")
"""Columns with a value in every row used (the risk models need pregnancy and ferritin);
``trimester`` must exist but is empty when not pregnant."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="write the HTML report and summary.json (default: a simulated cohort)",
        description="Analyse a cohort with every capability of rlsepi (targets, prevalence by age and sex, "
        "age standardisation, sex odds ratios, peak age, pregnancy, Table 1, PRS, nested logistic models, worked "
        "examples of individual risk) and write DIR/index.html (self-contained), DIR/summary.json (every number "
        "of the page) and DIR/figures/. Without --cohort, simulates the default cohort.",
    )
    p.add_argument("--cohort", type=Path, metavar="FILE", help="report on this cohort (.parquet, .csv, .tsv) instead")
    add_mapping_options(p)
    p.add_argument("--out", type=Path, default=Path("reports"), metavar="DIR", help="output folder (default reports/)")
    p.add_argument("--n", type=positive_int, default=REPORT_N, metavar="N",
                   help=f"people in the simulated cohort (default {REPORT_N:,})")
    p.add_argument("--seed", type=seed_int, default=DEFAULT_SEED, metavar="S",
                   help=f"seed of the simulated cohort and of the bootstraps (default {DEFAULT_SEED})")
    add_params_option(p)
    p.add_argument("--check", action="store_true",
                   help="exit 1 when any target misses its band, listing which (CI runs this)")
    p.add_argument("--force", action="store_true", help="replace an existing report in DIR")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rlsepi import cohort, report
    from rlsepi.io import file_sha256
    from rlsepi.parameters import load_parameters

    start = time.perf_counter()
    if args.cohort is not None:
        require_file(args.cohort, "cohort file")
        if args.cohort.resolve().parent == args.out.resolve() and args.cohort.name in report.REPORT_FILES:
            raise RLSEpiError(f"the report would replace its input '{args.cohort}'; choose another --out folder")
    report.check_report_dir(args.out, force=args.force)  # before the analysis, not after
    if args.cohort is None:
        from rlsepi.io import check_memory

        # the simulated cohort is analysed in memory: about 400 bytes a person with the analyses' copies
        check_memory(400 * args.n, what=f"a report on {args.n:,} simulated people")
    params = load_parameters(args.params)
    if args.cohort is not None:
        df, dropped = read_mapped_cohort(args.cohort, args, NEEDED, must_exist=("trimester",), params=params)
        from rlsepi.schema import is_rsid

        if not any(is_rsid(str(c)) for c in df.columns):  # the report scores the polygenic risk from them
            raise RLSEpiError(f"cohort file '{args.cohort}' has no genotype columns; the report's polygenic score "
                              "needs them: add one column per locus named by its rsID (e.g. rs2300478), counting "
                              "effect alleles 0/1/2")
        provenance = {"source": f"cohort file {args.cohort.name}", "input_file": args.cohort.name,
                      "input_sha256": file_sha256(args.cohort), "rows_used": len(df),
                      "rows_dropped": dropped.summary(), "bootstrap_seed": args.seed}
    else:
        df = cohort.simulate(args.n, rng=args.seed, params=params)
        provenance = {"source": f"simulated cohort, seed {args.seed}", "seed": args.seed, "n": args.n,
                      "command": f"rlsepi report --n {args.n} --seed {args.seed}"
                      + (f" --params {args.params.name}" if args.params else "")}
    provenance.update(version=report.__version__, parameters_sha256=params.digest(), parameters=params.to_dict())
    analysis = report.analyse(df, params=params, provenance=provenance, rng=args.seed)
    paths = report.write_report(analysis, args.out, force=args.force)
    print(f"wrote {paths['html']} and {paths['summary']} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    if analysis.targets is not None:
        print(analysis.targets.summary())
        if args.check and not analysis.targets.passed:
            return 1
    elif args.check:
        print("rlsepi: --check needs the pregnancy and clinically significant columns of a simulated cohort",
              file=sys.stderr)
        return 1
    return 0
