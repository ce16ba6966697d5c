"""``rlsepi fit COHORT``: nested logistic risk models M0-M3 with their metrics."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from rlsepi.commands import (
    add_mapping_options,
    add_params_option,
    check_outputs,
    emit,
    positive_int,
    read_mapped_cohort,
    require_file,
    seed_int,
)
from rlsepi.distributed import parse_scheduler
from rlsepi.errors import RLSEpiError
from rlsepi.io import check_output_path, to_jsonable
from rlsepi.parameters import load_parameters

if TYPE_CHECKING:
    from rlsepi.risk_models import NestedFit
    from rlsepi.schema import DropReport


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fit", help="nested logistic risk models (age+sex, +PRS, +ferritin, +pregnancy) with metrics",
        description="Fit M0 (age + sex), M1 (+ PRS per SD), M2 (+ ferritin) and M3 (+ trimester of pregnancy) on "
        "the same complete rows; report odds ratios with 95% CIs and p-values, likelihood-ratio tests between "
        "nested models, AUC with DeLong CI and DeLong's test of the AUC difference, Brier score, and seeded "
        "cross-validated AUC and calibration intercept and slope. Separation, non-convergence and too few events "
        "per coefficient are reported as warnings. The JSON output can be given to 'rlsepi risk --model'.",
    )
    p.add_argument("cohort", type=Path, help="cohort file (.parquet, .csv or .tsv) or Parquet dataset folder")
    p.add_argument("--format", choices=("json", "csv", "markdown"), default="markdown",
                   help="output format (default markdown)")
    p.add_argument("--out", type=Path, metavar="FILE", help="write to FILE instead of standard output")
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    p.add_argument("--ferritin", choices=("log2", "cut"), default="log2",
                   help="ferritin per halving (log2, default) or the cut-points <50 / 50-75 / >75 µg/L (cut)")
    p.add_argument("--age", choices=("quadratic", "spline"), default="quadratic",
                   help="age as a quadratic (default) or a 4-knot restricted cubic spline")
    p.add_argument("--formula", metavar="F",
                   help="an extra model over the derived columns, e.g. 'rls ~ female + age10 + ferritin_lt50'")
    p.add_argument("--profile", action="store_true", help="profile-likelihood CIs instead of Wald CIs (slower)")
    p.add_argument("--cv-folds", type=positive_int, default=5, metavar="K", help="cross-validation folds (default 5)")
    p.add_argument("--seed", type=seed_int, default=0, metavar="S", help="seed of the cross-validation folds (default 0)")
    p.add_argument("--scheduler", type=parse_scheduler, default=None, metavar="local[:N]|tcp://HOST:PORT",
                   help="fit out of core on a Dask cluster (local:N local worker processes, or a running 'dask "
                   "scheduler'): IRLS reduces X'WX and X'W(y-p) over the partitions of a Parquet file or dataset "
                   "at every iteration; the coefficients, SEs, log-likelihoods and LR tests equal the in-memory "
                   "fit. AUCs, Brier score and cross-validation need individual rows and are left out. "
                   "A dataset folder is fitted this way even without the option")
    add_mapping_options(p)
    add_params_option(p)
    p.set_defaults(run=run)


def render(result: NestedFit, fmt: str, input_report: DropReport | None = None) -> str:
    """The result in the chosen format, as text."""
    if fmt == "json":
        doc = result.to_dict()
        if input_report is not None:
            doc["input"] = {"rows_read": input_report.n_input, "rows_complete": input_report.n_used,
                            "missing": dict(input_report.missing), "renamed": dict(input_report.renamed)}
        from rlsepi.risk_models import strict_json

        return json.dumps(strict_json(to_jsonable(doc)), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    if fmt == "csv":
        return result.to_frame().to_csv(index=False)
    return result.summary()


def run(args: argparse.Namespace) -> int:
    from rlsepi.errors import InestimableTermWarning
    from rlsepi.risk_models import RiskModelWarning, fit_nested

    if args.scheduler is not None or args.cohort.is_dir():
        return run_out_of_core(args)
    path = require_file(args.cohort, "cohort file")
    check_outputs([args.out], inputs=[path, args.params], force=args.force)
    params = load_parameters(args.params)
    need = ("rls", "age", "sex", "pregnant", "ferritin", *(locus.rsid for locus in params.loci))
    df, report = read_mapped_cohort(path, args, need, must_exist=("trimester",), params=params)
    if report.n_dropped:
        print(f"rlsepi: {report.summary()}", file=sys.stderr)
    with warnings.catch_warnings():
        # the warnings are part of the result (every format shows them); don't print them twice
        warnings.simplefilter("ignore", RiskModelWarning)
        warnings.simplefilter("ignore", InestimableTermWarning)
        result = fit_nested(df, ferritin=args.ferritin, age=args.age, formula=args.formula, profile=args.profile,
                            cv_folds=args.cv_folds, random_state=args.seed, params=params)
    text = render(result, args.format, report)
    for w in result.warnings:
        print(f"rlsepi: warning: {w}", file=sys.stderr)
    emit(text, args.out, force=args.force)
    return 0


def run_out_of_core(args: argparse.Namespace) -> int:
    """M0-M3 by IRLS over the partitions of a Parquet file or dataset folder."""
    from rlsepi.distributed import connect, fit_nested, partitions
    from rlsepi.schema import parse_codes, parse_columns

    if not args.cohort.exists():
        raise RLSEpiError(f"cohort '{args.cohort}' does not exist")
    for flag, used in (("--formula", args.formula), ("--profile", args.profile)):
        if used:
            raise RLSEpiError(f"{flag} is not available out of core (--scheduler or a dataset folder); "
                              "fit in memory for it")
    if args.out is not None:
        check_output_path(args.out, force=args.force)
    params = load_parameters(args.params)
    partitions(args.cohort)  # refuse a CSV before starting a cluster
    with connect(args.scheduler, quiet=args.format == "json" and args.out is None) as client:
        result = fit_nested(args.cohort, client=client, ferritin=args.ferritin, age=args.age,
                            columns=parse_columns(args.column), codes=parse_codes(args.code), params=params,
                            allow_duplicate_ids=args.allow_duplicate_ids,
                            progress=client is not None and sys.stderr.isatty())
    if args.format == "json":
        from rlsepi.risk_models import strict_json

        text = json.dumps(strict_json(to_jsonable(result.to_dict())), indent=2, ensure_ascii=False,
                          allow_nan=False) + "\n"
    elif args.format == "csv":
        text = result.to_frame().to_csv(index=False)
    else:
        text = result.summary() + "\n"
    emit(text, args.out, force=args.force)
    return 0
