"""``rlsepi check COHORT``: does a cohort reproduce the published targets?"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from typing import TYPE_CHECKING

from rlsepi.commands import add_mapping_options, add_params_option, read_mapped_cohort, require_file
from rlsepi.distributed import parse_scheduler
from rlsepi.parameters import Parameters, load_parameters, parameters_from_mapping

if TYPE_CHECKING:  # heavy imports happen in run(), so that --help stays fast
    from rlsepi.targets import TargetCheck

NEEDED = ["age", "sex", "pregnant", "trimester", "rls", "rls_clinically_significant"]
REQUIRED = ("age", "sex", "pregnant", "rls", "rls_clinically_significant")
"""Columns with a value in every row used; ``trimester`` must exist but is empty when not pregnant."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check", help="compare a cohort's estimates with the published targets",
        description="Estimate each target (prevalence, clinically significant prevalence, female:male odds "
        "ratio, age of peak prevalence, prevalence by trimester) with its 95%% CI, and compare it with the "
        "target's band. Exit code 0 when every target is met, 1 when any is missed, 2 for bad input.",
    )
    p.add_argument("cohort", type=Path, help="cohort file (.parquet, .csv or .tsv) or Parquet dataset folder, "
                   "with the columns of the cohort table")
    add_params_option(p)
    add_mapping_options(p)
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    p.add_argument("--scheduler", type=parse_scheduler, default=None, metavar="local[:N]|tcp://HOST:PORT",
                   help="count out of core on a Dask cluster (local:N local worker processes, or a running "
                   "'dask scheduler'); every estimate comes from counts reduced over the partitions and equals "
                   "the in-memory one. A dataset folder is read out of core even without this option")
    p.set_defaults(run=run)


def targets_for(path: Path, params_file: Path | None) -> Parameters:
    """The user's --params if given, else the parameters a simulated cohort was made with."""
    if params_file is not None:
        return load_parameters(params_file)
    if path.suffix.lower() == ".parquet" or path.is_dir():
        from rlsepi.distributed import read_provenance

        stored = read_provenance(path).get("parameters")
        if stored:
            return parameters_from_mapping(stored)
    return load_parameters(None)


def report(check: TargetCheck, as_json: bool) -> int:
    from rlsepi.io import to_jsonable

    if as_json:
        print(json.dumps(to_jsonable({"passed": check.passed, "failed": check.failed, "inconclusive": check.inconclusive,
                                      "verdict": check.verdict,
                                      "targets": check.to_frame().to_dict(orient="records")}), indent=2))
    else:
        print(check.summary())
    return 0 if check.passed else 1


def run(args: argparse.Namespace) -> int:
    import sys

    from rlsepi.targets import check_targets

    if args.scheduler is not None or args.cohort.is_dir():
        return run_counts(args)
    path = require_file(args.cohort, "cohort file")
    params = targets_for(path, args.params)
    df, dropped = read_mapped_cohort(path, args, REQUIRED, must_exist=("trimester",), params=params)
    result = check_targets(df, params)
    if dropped.n_dropped:  # after the check, so that a refusal stays one line
        print(f"rlsepi check: {dropped.summary()}", file=sys.stderr)
    return report(result, args.json)


def run_counts(args: argparse.Namespace) -> int:
    """The same check from counts reduced over a file's or dataset's partitions."""
    from rlsepi.distributed import FREQ, cell_counts, connect, partitions
    from rlsepi.errors import DataValidationError
    from rlsepi.schema import parse_codes, parse_columns
    from rlsepi.targets import check_targets

    path = args.cohort
    if not path.exists():
        raise DataValidationError(f"cohort '{path}' does not exist")
    params = targets_for(path, args.params)
    columns, codes = parse_columns(args.column), parse_codes(args.code)
    partitions(path)  # refuse a CSV before starting a cluster
    with connect(args.scheduler, quiet=args.json) as client:
        counts = cell_counts(path, NEEDED, client=client, require=tuple(c for c in NEEDED if c != "trimester"),
                             columns=columns, codes=codes,
                             allow_duplicate_ids=args.allow_duplicate_ids,
                             progress=client is not None and not args.json and sys.stderr.isatty())
    return report(check_targets(counts.cells, params, freq=FREQ), args.json)
