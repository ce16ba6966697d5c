"""``rlsepi validate``: a seeded ADEMP simulation study of the logistic risk model fit."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rlsepi.commands import add_params_option, emit, positive_int, seed_int
from rlsepi.io import to_jsonable
from rlsepi.parameters import load_parameters


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate", help="simulation study: bias, SE and coverage of the logistic fit against the true effects",
        description="Simulate R cohorts with known true effects (the calibrated generating model), fit the "
        "correctly specified logistic model to each, and report for every true odds ratio the bias, empirical SE, "
        "model SE and coverage of the 95% CI, each with its Monte Carlo SE (Morris, White & Crowther 2019). "
        "The same seed gives the same result whatever --workers is.",
    )
    p.add_argument("--replicates", type=positive_int, default=200, metavar="R", help="simulated cohorts (default 200)")
    p.add_argument("--n", type=positive_int, default=20_000, metavar="N", help="people per cohort (default 20,000)")
    p.add_argument("--seed", type=seed_int, default=0, metavar="S", help="random seed (default 0)")
    p.add_argument("--workers", type=positive_int, default=1, metavar="W", help="worker processes (default 1)")
    p.add_argument("--format", choices=("json", "csv", "markdown"), default="markdown",
                   help="output format (default markdown)")
    p.add_argument("--out", type=Path, metavar="FILE", help="write to FILE instead of standard output")
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    add_params_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rlsepi.commands import check_outputs
    from rlsepi.risk_validate import simulation_study

    check_outputs([args.out], inputs=[args.params], force=args.force)
    params = load_parameters(args.params)
    start = time.perf_counter()
    study = simulation_study(replicates=args.replicates, n=args.n, rng=args.seed, params=params,
                             workers=args.workers)
    if args.format == "json":
        from rlsepi.risk_models import strict_json

        text = json.dumps(strict_json(to_jsonable(study.to_dict())), indent=2, ensure_ascii=False,
                          allow_nan=False) + "\n"
    elif args.format == "csv":
        text = study.to_frame().to_csv(index=False)
    else:
        text = study.summary()
    emit(text, args.out, force=args.force)
    print(f"rlsepi: {args.replicates} replicates of {args.n:,} people in {time.perf_counter() - start:.1f} s",
          file=sys.stderr)
    return 0
