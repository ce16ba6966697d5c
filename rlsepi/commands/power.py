"""``rlsepi power DESIGN``: closed-form sample size and power, and power by simulation.

The command only parses arguments, calls :mod:`rlsepi.power` and writes the result.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from rlsepi.commands import add_params_option, emit, fraction, positive_int, seed_int
from rlsepi.errors import RLSEpiError

FORMATS = ("markdown", "csv", "json")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None


def _common(p: argparse.ArgumentParser, *, alpha: float = 0.05, sided: bool = True, solve: bool = True) -> None:
    if solve:
        g = p.add_mutually_exclusive_group()
        g.add_argument("--n", type=_positive_float, default=None, metavar="N",
                       help="sample size: give it to get the power")
        g.add_argument("--power", type=fraction(closed=False), default=None, metavar="P",
                       help="power wanted: give it to get the sample size (default 0.8 when --n is not given)")
    p.add_argument("--alpha", type=fraction(closed=False), default=alpha, metavar="A",
                   help=f"significance level, or 1 - confidence level (default {alpha:g})")
    if sided:
        p.add_argument("--sided", type=int, choices=(1, 2), default=2, help="one- or two-sided test (default 2)")
    p.add_argument("--format", choices=FORMATS, default="markdown", help="markdown (default), csv or json")
    p.add_argument("--out", type=Path, default=None, metavar="FILE", help="write to FILE instead of the screen")
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")


def register(sub: argparse._SubParsersAction) -> None:
    top = sub.add_parser(
        "power", help="sample size and power: closed forms for each design, and by simulation",
        description="Sample size and power for the designs of an RLS study (closed forms that match epiR, "
        "power.t.test and pwr), and power by simulation under the calibrated RLS model. Give --n to get the "
        "power, or --power to get the sample size.",
    )
    des = top.add_subparsers(dest="power_design", metavar="DESIGN", required=True)

    p = des.add_parser("prevalence", help="people to estimate a prevalence to +- a precision",
                       description="People needed to estimate a prevalence to +- PRECISION (simple random "
                       "sampling; epiR epi.sssimpleestb), times a design effect, with an optional finite population "
                       "and an imperfect test.")
    p.add_argument("--prevalence", type=fraction(closed=False), default=None, metavar="P",
                   help="expected prevalence (default: the published RLS prevalence in parameters.py)")
    p.add_argument("--precision", type=_positive_float, required=True, metavar="E",
                   help="half-width of the CI: absolute (0.005 = +-0.5 points) or, with --relative, a fraction of P")
    p.add_argument("--relative", action="store_true", help="PRECISION is relative to the prevalence")
    p.add_argument("--design-effect", type=_positive_float, default=1.0, metavar="D", help="design effect (default 1)")
    p.add_argument("--population", type=_positive_float, default=None, metavar="N",
                   help="size of a finite population (finite population correction)")
    p.add_argument("--sensitivity", type=fraction(closed=True), default=1.0, help="of the case-finding test (default 1)")
    p.add_argument("--specificity", type=fraction(closed=True), default=1.0, help="of the case-finding test (default 1)")
    _common(p, sided=False, solve=False)
    add_params_option(p)
    p.set_defaults(run=run)

    p = des.add_parser("proportions", help="two proportions (cross-sectional or cohort)",
                       description="Two proportions, P1 in the exposed and P0 in the unexposed (epiR epi.sscohortc). "
                       "--n is the total of both groups.")
    p.add_argument("--p1", type=fraction(closed=False), required=True, help="risk or prevalence in the exposed")
    p.add_argument("--p0", type=fraction(closed=False), required=True, help="risk or prevalence in the unexposed")
    p.add_argument("--ratio", type=_positive_float, default=1.0, metavar="R", help="exposed per unexposed (default 1)")
    p.add_argument("--design-effect", type=_positive_float, default=1.0, metavar="D", help="design effect (default 1)")
    _common(p)
    p.set_defaults(run=run)

    p = des.add_parser("case-control", help="unmatched case-control study of an odds ratio",
                       description="An unmatched case-control study (epiR epi.sscc). --n is cases + controls.")
    p.add_argument("--odds-ratio", type=_positive_float, required=True, metavar="OR", help="odds ratio to detect")
    p.add_argument("--p0", type=fraction(closed=False), required=True, help="exposure prevalence among controls")
    p.add_argument("--controls-per-case", type=_positive_float, default=1.0, metavar="K", help="default 1")
    p.add_argument("--design-effect", type=_positive_float, default=1.0, metavar="D", help="design effect (default 1)")
    _common(p)
    p.set_defaults(run=run)

    p = des.add_parser("means", help="two-sample t-test of means",
                       description="Two equal groups, common SD (R power.t.test). --n is people per group.")
    p.add_argument("--delta", type=_float, required=True, help="difference in means to detect")
    p.add_argument("--sd", type=_positive_float, required=True, help="common standard deviation (> 0)")
    _common(p)
    p.set_defaults(run=run)

    p = des.add_parser("correlation", help="test of a Pearson correlation",
                       description="A test that a correlation is zero (pwr pwr.r.test).")
    p.add_argument("--r", type=_float, required=True, help="correlation to detect, between -1 and 1")
    _common(p)
    p.set_defaults(run=run)

    p = des.add_parser("genetic", help="one variant: additive, dominant or recessive; case-control or population",
                       description="Power of the 1-df trend test for one variant, with Hardy-Weinberg genotypes and "
                       "logistic penetrances fixed by the prevalence. --locus takes the allele frequency and odds "
                       "ratio of a published locus from parameters.py. --n is cases + controls (case-control) or "
                       "people sampled (population).")
    p.add_argument("--locus", default=None, metavar="RSID", help="a locus of parameters.py, e.g. rs2300478")
    p.add_argument("--eaf", type=fraction(closed=False), default=None, help="effect-allele frequency")
    p.add_argument("--odds-ratio", type=_positive_float, default=None, metavar="OR",
                   help="per allele (additive), carriers (dominant) or homozygotes (recessive)")
    p.add_argument("--prevalence", type=fraction(closed=False), default=None, metavar="K",
                   help="population prevalence (default: the published RLS prevalence)")
    p.add_argument("--model", choices=("additive", "dominant", "recessive"), default="additive")
    p.add_argument("--design", choices=("case-control", "population"), default="case-control")
    p.add_argument("--controls-per-case", type=_positive_float, default=1.0, metavar="K", help="default 1")
    _common(p, alpha=5e-8, sided=False)
    add_params_option(p)
    p.set_defaults(run=run)

    p = des.add_parser("simulate", help="power by simulation under the calibrated RLS model",
                       description="Sample N people from the calibrated RLS population, fit a logistic model (M0-M3, "
                       "the true generating model, or a formula) and test one term (Wald test), REPLICATES times. "
                       "Reports power with its Monte Carlo SE, the true value of the term and the bias of its "
                       "estimate. With --target-power, searches over N for the smallest sample reaching it. The same "
                       "seed gives the same result whatever --workers is.")
    p.add_argument("--n", type=positive_int, default=None, metavar="N", help="people per simulated study")
    p.add_argument("--target-power", type=fraction(closed=False), default=None, metavar="P",
                   help="search over N for this power instead of simulating one N")
    p.add_argument("--term", required=True, help="term to test, e.g. prs_sd, female, ferritin_halving, rs2300478")
    p.add_argument("--model", default="M1", metavar="MODEL",
                   help="M0, M1, M2, M3, true (the generating model) or a formula such as 'rls ~ female + age10' "
                   "(default M1)")
    p.add_argument("--replicates", type=positive_int, default=1000, metavar="R", help="default 1000")
    p.add_argument("--seed", type=seed_int, default=0, metavar="S", help="random seed (default 0)")
    p.add_argument("--workers", type=positive_int, default=2, metavar="W", help="worker processes (default 2)")
    p.add_argument("--reference-n", type=positive_int, default=200_000, metavar="N",
                   help="people in the reference cohort giving the pseudo-true value of a misspecified model's "
                   "term (default 200,000)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _common(p, sided=False, solve=False)
    add_params_option(p)
    p.set_defaults(run=run)


def _progress(label: str):
    start = time.perf_counter()

    def show(done: int, total: int) -> None:
        width = 30
        filled = int(width * done / total)
        rate = done / max(time.perf_counter() - start, 1e-9)
        eta = (total - done) / rate if rate > 0 else 0
        sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} ({eta:.0f} s left) ")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def compute(args: argparse.Namespace) -> Any:
    """The result object of the design asked for."""
    from rlsepi import power as pw
    from rlsepi.parameters import load_parameters

    d = args.power_design
    target = None
    if d not in ("prevalence", "simulate"):
        target = args.power if args.power is not None or args.n is not None else 0.8
    if d == "prevalence":
        prev = args.prevalence if args.prevalence is not None else load_parameters(args.params).targets.prevalence.value
        return pw.prevalence_precision(prev, precision=args.precision, relative=args.relative, alpha=args.alpha,
                                       design_effect=args.design_effect, population=args.population,
                                       sensitivity=args.sensitivity, specificity=args.specificity)
    if d == "proportions":
        return pw.two_proportions(args.p1, args.p0, n=args.n, power=target, ratio=args.ratio, alpha=args.alpha,
                                  sided=args.sided, design_effect=args.design_effect)
    if d == "case-control":
        return pw.case_control(args.odds_ratio, args.p0, n=args.n, power=target,
                               controls_per_case=args.controls_per_case, alpha=args.alpha, sided=args.sided,
                               design_effect=args.design_effect)
    if d == "means":
        return pw.two_means(args.delta, args.sd, n=args.n, power=target, alpha=args.alpha, sided=args.sided)
    if d == "correlation":
        return pw.correlation(args.r, n=args.n, power=target, alpha=args.alpha, sided=args.sided)
    if d == "genetic":
        params = load_parameters(args.params)
        eaf, odds = args.eaf, args.odds_ratio
        if args.locus is not None:
            loci = {loc.rsid: loc for loc in params.loci}
            if args.locus not in loci:
                raise RLSEpiError(f"--locus '{args.locus}' is not a locus of the parameters; known: {', '.join(loci)}")
            eaf = eaf if eaf is not None else loci[args.locus].eaf
            odds = odds if odds is not None else loci[args.locus].odds_ratio
        if eaf is None or odds is None:
            raise RLSEpiError("give --eaf and --odds-ratio, or --locus RSID to take them from the parameters")
        prev = args.prevalence if args.prevalence is not None else params.targets.prevalence.value
        return pw.genetic_association(eaf, odds, prevalence=prev, model=args.model, design=args.design,
                                      controls_per_case=args.controls_per_case, n=args.n, power=target,
                                      alpha=args.alpha)
    from rlsepi import power_simulation as ps

    params = load_parameters(args.params)
    progress = None if args.quiet else _progress("rlsepi power simulate")
    if args.target_power is not None:
        if args.n is not None:
            raise RLSEpiError("give --n (to simulate one sample size) or --target-power (to search over N), not both")
        return ps.search_n(args.target_power, term=args.term, model=args.model, replicates=args.replicates,
                           alpha=args.alpha, params=params, rng=args.seed, workers=args.workers,
                           reference_n=args.reference_n, progress=progress)
    if args.n is None:
        raise RLSEpiError("give --n N (people per simulated study) or --target-power P")
    return ps.simulate_power(args.n, term=args.term, model=args.model, replicates=args.replicates, alpha=args.alpha,
                             params=params, rng=args.seed, workers=args.workers, reference_n=args.reference_n,
                             progress=progress)


def render(res: Any, fmt: str) -> str:
    from rlsepi import __version__
    from rlsepi.io import to_jsonable
    from rlsepi.risk_models import strict_json

    if fmt == "json":
        doc = {"rlsepi_version": __version__, "command": "power", **res.to_dict()}
        return json.dumps(strict_json(to_jsonable(doc)), indent=2, allow_nan=False) + "\n"
    if fmt == "csv":
        return res.to_frame().to_csv(index=False, float_format="%.10g")
    lines = ["# Power and sample size", "", res.summary(), ""]
    if hasattr(res, "evaluations"):
        lines += ["| N | simulated power | Monte Carlo SE |", "|---:|---:|---:|"]
        lines += [f"| {r.n:,} | {r.power:.3f} | {r.power_mcse:.3f} |" for r in res.evaluations.itertuples()]
        lines.append("")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from rlsepi.io import check_output_path

    if args.out is not None:
        check_output_path(args.out, force=args.force)
    text = render(compute(args), args.format)
    emit(text, args.out, force=args.force)
    return 0


__all__ = ["register", "run", "compute", "render"]
