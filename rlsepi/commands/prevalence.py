"""``rlsepi prevalence COHORT``: prevalence, standardised prevalence, sex odds ratios and peak age.

The command only parses arguments, reads and harmonises the cohort
(:func:`rlsepi.schema.harmonise`), calls :mod:`rlsepi.prevalence` and writes the results.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlsepi import __version__
from rlsepi.commands import (
    DEFAULT_SEED,
    add_mapping_options,
    check_outputs,
    emit,
    fraction,
    nonnegative_int,
    read_mapped_cohort,
    require_file,
    seed_int,
)
from rlsepi.distributed import parse_scheduler
from rlsepi.errors import DataValidationError

if TYPE_CHECKING:  # numpy and pandas are imported where used, so that the CLI starts fast
    import pandas as pd

FORMATS = ("markdown", "csv", "json")
TABLE_COLUMNS = ["n", "cases", "prevalence", "ci_lower", "ci_upper", "method"]


def _int_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, e.g. 18,30,45,60,75; "
                                         f"got '{text}'") from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prevalence", help="prevalence with CIs, standardised prevalence, female:male odds ratios, peak age",
        description="Estimate, from a cohort file (CSV, TSV or Parquet), the crude prevalence and the prevalence "
        "by stratum with confidence intervals, the directly age- and age-and-sex-standardised prevalence, the "
        "female:male odds ratio (crude Woolf and exact, Mantel-Haenszel over age bands with the Breslow-Day "
        "test, and logistic regression adjusted for age) and the age of peak prevalence. Rows missing a "
        "value the analysis needs are dropped and counted per column. Exit code 2 for bad input.",
    )
    p.add_argument("cohort", type=Path, help="cohort file: .csv, .tsv or .parquet, one row per person, "
                   "or a Parquet dataset folder")
    add_mapping_options(p)
    p.add_argument("--outcome", default="rls", metavar="COL", help="yes/no outcome column (default rls)")
    p.add_argument("--by", action="append", default=None, metavar="COLS",
                   help="stratify by these columns, comma-separated; repeat for several tables "
                   "(default: sex; age_band; sex,age_band). age_band is made from age")
    p.add_argument("--age-breaks", type=_int_list, default=None, metavar="A,B,...",
                   help="lower limits of the age bands, e.g. 18,30,45,60,75 (default 5-year bands)")
    p.add_argument("--age-width", type=int, default=5, metavar="YEARS", help="width of age bands (default 5)")
    p.add_argument("--ci", default="wilson", metavar="METHOD",
                   help="binomial interval: wilson (default), exact (= clopper-pearson), jeffreys or agresti-coull")
    p.add_argument("--alpha", type=fraction(closed=False), default=0.05, help="1 - confidence level (default 0.05)")
    p.add_argument("--standard", action="append", default=None, metavar="NAME|FILE",
                   help="standard population: esp2013, who2000, us2000, or a CSV with age_lower,weight[,sex]; "
                   "repeat for several (default esp2013)")
    p.add_argument("--standard-breaks", type=_int_list, default=None, metavar="A,B,...",
                   help="coarser bands for standardisation, limits taken from the standard's bands, e.g. 15,45,65")
    p.add_argument("--adjust", default="", metavar="COLS",
                   help="extra covariates for the logistic odds ratio, comma-separated (age is always in)")
    p.add_argument("--age-terms", default="linear", choices=("linear", "quadratic"),
                   help="how age enters the logistic odds ratio (default linear)")
    p.add_argument("--peak-model", default="local", choices=("local", "quadratic", "spline"),
                   help="smooth curve for the age of peak prevalence: local quadratic logistic on single years "
                   "(default; the target check's estimator), one global quadratic, or a cubic B-spline")
    p.add_argument("--n-boot", type=nonnegative_int, default=200, metavar="B",
                   help="bootstrap resamples for the peak band's interval (10 times B) and for the smooth peak "
                   "age of the quadratic and spline models (default 200; 0 for none); the local model's "
                   "Fieller interval needs none")
    p.add_argument("--seed", type=seed_int, default=DEFAULT_SEED, metavar="S",
                   help=f"seed of the bootstraps (default {DEFAULT_SEED})")
    p.add_argument("--weights", default=None, metavar="COL",
                   help="survey weights column (> 0) for the crude and stratified prevalence")
    p.add_argument("--suppress-below", type=nonnegative_int, default=0, metavar="K",
                   help="blank prevalence tables' cells with fewer than K people, cases or non-cases")
    p.add_argument("--format", choices=FORMATS, default="markdown",
                   help="markdown (default), csv (the prevalence tables) or json (everything)")
    p.add_argument("--out", type=Path, default=None, metavar="FILE", help="write to FILE instead of the screen")
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    p.add_argument("--quiet", action="store_true", help="do not print the row counts to the error stream")
    p.add_argument("--scheduler", type=parse_scheduler, default=None, metavar="local[:N]|tcp://HOST:PORT",
                   help="count out of core on a Dask cluster (local:N local worker processes, or a running "
                   "'dask scheduler'): people per stratum are reduced over the partitions of a Parquet file or "
                   "dataset and every prevalence, interval, standardisation, crude and Mantel-Haenszel odds ratio "
                   "and peak band comes from those counts (equal to the in-memory results). The logistic "
                   "odds ratio and the smooth peak age need individual rows and are left out (see rlsepi fit "
                   "--scheduler). A dataset folder is read this way even without the option")
    p.set_defaults(run=run)


def _split(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


def _standard_arg(value: str) -> tuple[str, Any]:
    from rlsepi.parameters import STANDARD_POPULATIONS
    from rlsepi.prevalence import read_standard

    key = value.lower()
    if key in STANDARD_POPULATIONS or key in ("esp", "who", "world", "us"):
        return key, key
    path = Path(value)
    if path.suffix.lower() in (".csv", ".tsv", ".txt") or path.exists():
        return path.name, read_standard(path)
    raise DataValidationError(
        f"--standard '{value}' is neither a bundled standard ({', '.join(sorted(STANDARD_POPULATIONS))}) "
        "nor a weights file; give a CSV with columns age_lower,weight"
    )


def analyse(df: pd.DataFrame, args: argparse.Namespace) -> dict[str, Any]:
    """Every estimate the command reports, as result objects and notes."""
    import numpy as np

    from rlsepi import prevalence as prev

    out: dict[str, Any] = {"tables": [], "standardised": [], "odds_ratios": [], "notes": []}
    freq = getattr(args, "freq", None)  # a table of counts (out of core) instead of one row per person
    k = args.suppress_below
    bands = {"width": args.age_width, "breaks": args.age_breaks}

    def maybe_suppress(t: prev.PrevalenceTable) -> prev.PrevalenceTable:
        return prev.suppress(t, k) if k > 0 else t

    crude = prev.crude(df, outcome=args.outcome, method=args.ci, alpha=args.alpha, weights=args.weights, freq=freq)
    crude_t = prev.PrevalenceTable(crude.to_frame(), (), crude.method, args.alpha)
    out["crude"] = maybe_suppress(crude_t)
    for spec in args.by_lists:
        t = prev.stratified(df, spec, outcome=args.outcome, method=args.ci, alpha=args.alpha,
                            weights=args.weights, freq=freq, **bands)
        out["tables"].append(maybe_suppress(t))
    for label, std in args.standards:
        for by_sex in (False, True):
            try:
                out["standardised"].append(prev.standardised(
                    df, standard=std, outcome=args.outcome, by_sex=by_sex, breaks=args.standard_breaks,
                    alpha=args.alpha, freq=freq))
            except DataValidationError as exc:
                out["notes"].append(f"{'age-and-sex' if by_sex else 'age'} standardisation to {label}: {exc}")
    or_calls = [
        ("crude, Woolf", lambda: prev.odds_ratio(df, outcome=args.outcome, method="woolf", alpha=args.alpha,
                                                 freq=freq)),
        ("crude, exact", lambda: prev.odds_ratio(df, outcome=args.outcome, method="exact", alpha=args.alpha,
                                                 freq=freq)),
        ("Mantel-Haenszel over age bands", lambda: prev.mantel_haenszel(
            df, outcome=args.outcome, alpha=args.alpha, freq=freq, **bands)),
        (f"logistic, adjusted for age ({args.age_terms})" + "".join(f", {c}" for c in args.adjust_list), lambda: prev.adjusted_odds_ratio(
            df, outcome=args.outcome, adjust=("age", *args.adjust_list), age_terms=args.age_terms,
            alpha=args.alpha)),
    ]
    if freq is not None:
        out["notes"].append(f"{or_calls.pop()[0]} odds ratio: not computed out of core (it needs individual rows; "
                            "rlsepi fit --scheduler fits logistic models over partitions)")
    for label, call in or_calls:
        try:
            out["odds_ratios"].append((label, call()))
        except DataValidationError as exc:
            out["notes"].append(f"female:male odds ratio ({label}) not estimable: {exc}")
    rng = np.random.default_rng(args.seed)
    seeds = rng.spawn(2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out["peak_band"] = prev.peak_band(df, outcome=args.outcome, width=args.age_width,
                                              n_boot=10 * args.n_boot, alpha=args.alpha, rng=seeds[0],
                                              freq=freq)
        except DataValidationError as exc:
            out["notes"].append(f"peak age band not estimable: {exc}")
        try:  # from counts too: the fit and its resamples need only people and cases by age
            out["peak_age"] = prev.peak_age(df, outcome=args.outcome, model=args.peak_model,
                                            n_boot=args.n_boot, alpha=args.alpha, rng=seeds[1], freq=freq)
        except DataValidationError as exc:
            out["notes"].append(f"smooth peak age not estimable: {exc}")
    out["notes"] += [f"warning: {w.message}" for w in caught]
    if k > 0:
        out["notes"].append(f"small-cell suppression: counts between 1 and {k - 1} of people, cases or non-cases, "
                            "and the prevalences and intervals they would reveal, are blank")
    if args.weights:
        out["notes"].append(f"survey weights ('{args.weights}') apply to the crude and stratified prevalence; "
                            "standardised prevalence, odds ratios and peak age are unweighted")
    return out


# --- rendering -------------------------------------------------------------------------


def prevalence_frame(res: dict[str, Any]) -> pd.DataFrame:
    """All prevalence tables in one long frame: table, stratum columns, n, cases, prevalence, CI, method."""
    import pandas as pd
    frames = []
    c = res["crude"].to_frame()
    frames.append(c.assign(table="crude"))
    for t in res["tables"]:
        f = t.to_frame()
        for col in t.by:
            f[col] = f[col].astype(str)
        frames.append(f.assign(table="by " + ",".join(t.by)))
    for s in res["standardised"]:
        f = s.to_frame()[["n", "cases", "prevalence", "ci_lower", "ci_upper", "method"]]
        frames.append(f.assign(table=f"standardised ({'+'.join(s.by)}) to {s.standard}"))
    out = pd.concat(frames, ignore_index=True)
    strata = [c for c in out.columns if c not in TABLE_COLUMNS and c != "table"]
    return out[["table", *strata, *TABLE_COLUMNS]]


def _jsonable(x: Any) -> Any:
    import numpy as np
    import pandas as pd

    from rlsepi.io import to_jsonable

    if isinstance(x, pd.DataFrame):
        return _jsonable(x.astype(object).where(x.notna(), None).to_dict(orient="records"))
    if isinstance(x, float) and not np.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    y = to_jsonable(x)
    if isinstance(y, float) and not np.isfinite(y):
        return None
    return y


def blank_small_counts(table: pd.DataFrame, columns: list[str], k: int) -> pd.DataFrame:
    """Blank counts between 1 and k - 1 (and what they would reveal) in a detail table."""
    import numpy as np
    if k <= 0:
        return table
    t = table.copy()
    small = np.zeros(len(t), dtype=bool)
    for col in columns:
        v = t[col].to_numpy()
        small |= (v > 0) & (v < k)
    if "n" in t.columns and "cases" in t.columns:
        non = (t["n"] - t["cases"]).to_numpy()
        small |= (non > 0) & (non < k)
    for col in [c for c in t.columns if c in columns or c in ("prevalence",)]:
        t[col] = t[col].astype(float)
        t.loc[small, col] = np.nan
    return t


def to_json(res: dict[str, Any], report: Any, args: argparse.Namespace) -> str:
    import pandas as pd
    k = args.suppress_below
    t_std = []
    for s in res["standardised"]:
        t_std.append({"standard": s.standard, "source": s.source, "by": list(s.by), "n": s.n, "cases": s.cases,
                      "crude": s.crude, "prevalence": s.adjusted, "ci_lower": s.ci_lower, "ci_upper": s.ci_upper,
                      "method": s.method, "bands_outside_cohort": list(s.excluded),
                      "strata": blank_small_counts(s.table, ["n", "cases"], k)})
    ors = []
    cells = ["exposed_cases", "exposed_noncases", "unexposed_cases", "unexposed_noncases"]
    for label, o in res["odds_ratios"]:
        entry = {"analysis": label, **o.to_frame().iloc[0].to_dict()}
        if hasattr(o, "tables"):
            entry["strata"] = blank_small_counts(o.tables, cells, k)
            entry["strata_dropped"] = list(o.dropped)
        elif hasattr(o, "exposed_cases"):
            counts = pd.DataFrame([{c: getattr(o, c) for c in cells}])
            entry["table"] = blank_small_counts(counts, cells, k).iloc[0].to_dict()
        ors.append(entry)
    doc = {
        "rlsepi_version": __version__,
        "command": "prevalence",
        "input": {"file": args.cohort.name, "rows": report.to_dict()},
        "options": {"outcome": args.outcome, "ci": args.ci, "alpha": args.alpha, "age_breaks": args.age_breaks,
                    "age_width": args.age_width, "weights": args.weights, "suppress_below": args.suppress_below,
                    "seed": args.seed, "n_boot": args.n_boot, "peak_model": args.peak_model,
                    "by": args.by_lists, "standards": [label for label, _ in args.standards],
                    "standard_breaks": args.standard_breaks, "adjust": ["age", *args.adjust_list],
                    "age_terms": args.age_terms},
        "crude": res["crude"].to_frame().iloc[0].to_dict(),
        "tables": [{"by": list(t.by), "rows": t.to_frame()} for t in res["tables"]],
        "standardised": t_std,
        "odds_ratios": ors,
        "peak_band": None if "peak_band" not in res else {
            **res["peak_band"].to_frame().iloc[0].to_dict(), "n_boot": res["peak_band"].n_boot},
        "peak_age": None if "peak_age" not in res else {
            **res["peak_age"].to_frame().iloc[0].to_dict(), "curve": res["peak_age"].curve},
        "notes": res["notes"],
    }
    return json.dumps(_jsonable(doc), indent=2, allow_nan=False) + "\n"


def _md_table(df: pd.DataFrame) -> str:
    import numpy as np
    def cell(v: Any) -> str:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return "—"
        if isinstance(v, float):
            return f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.3g}"
        return str(v).replace("|", "\\|")

    head = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in r) + " |" for r in df.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


def to_markdown(res: dict[str, Any], report: Any, args: argparse.Namespace) -> str:
    import numpy as np
    import pandas as pd

    from rlsepi import prevalence as prev
    level = f"{100 * (1 - args.alpha):g}%"
    parts = [f"# RLS prevalence: {args.cohort.name}", "",
             f"rlsepi {__version__}; outcome `{args.outcome}`; {level} intervals; {report.summary()}.", ""]
    if report.n_dropped:
        parts += ["Rows dropped for a missing value, by column:", "", _md_table(report.to_frame()), ""]
    parts += ["## Prevalence", "", _md_table(prevalence_frame(res)), ""]
    if res["odds_ratios"]:
        frame = pd.concat([o.to_frame().assign(analysis=label) for label, o in res["odds_ratios"]], ignore_index=True)
        parts += ["## Female:male odds ratio", "",
                  _md_table(frame[["analysis", "estimate", "ci_lower", "ci_upper", "pvalue", "method"]]
                            .assign(pvalue=[prev.format_pvalue(v) for v in frame["pvalue"]])), ""]
        for _, o in res["odds_ratios"]:
            if hasattr(o, "breslow_day") and np.isfinite(o.breslow_day):
                parts += [f"Breslow-Day test of equal odds ratios across age bands: chi2 = {o.breslow_day:.3f} on "
                          f"{o.breslow_day_df} df, p = {prev.format_pvalue(o.breslow_day_pvalue)}.", ""]
            elif hasattr(o, "breslow_day"):
                parts += ["Breslow-Day test of equal odds ratios across age bands: not defined (it needs a "
                          "finite pooled odds ratio and at least two strata).", ""]
    if "peak_band" in res or "peak_age" in res:
        parts += ["## Age of peak prevalence", ""]
        if "peak_band" in res:
            parts += [f"- {res['peak_band'].summary()}"]
        if "peak_age" in res:
            parts += [f"- {res['peak_age'].summary()}"]
        parts += [""]
    if res["notes"]:
        parts += ["## Notes", "", *[f"- {n}" for n in res["notes"]], ""]
    sources = {s.standard: s.source for s in res["standardised"]}
    if sources:
        parts += ["## Standard populations", "", *[f"- {k}: {v}" for k, v in sources.items()], ""]
    return "\n".join(parts)


def run(args: argparse.Namespace) -> int:
    from rlsepi.io import atomic_output

    path = args.cohort if args.cohort.is_dir() else require_file(args.cohort, "cohort file")
    standard_files = [Path(s) for s in (args.standard or []) if Path(s).exists()]
    check_outputs([args.out], inputs=[path, *standard_files], force=args.force)
    by_specs = args.by if args.by is not None else ["sex", "age_band", "sex,age_band"]
    args.by_lists = [_split(s) for s in by_specs if _split(s)]
    args.adjust_list = _split(args.adjust)
    args.standards = [_standard_arg(s) for s in (args.standard or ["esp2013"])]
    derived = {"age_band"}
    need = ["age", "sex", args.outcome]
    for cols in args.by_lists:
        need += [c for c in cols if c not in derived]
    need += args.adjust_list
    if args.weights:
        need.append(args.weights)
    require = tuple(dict.fromkeys(need))
    from rlsepi.prevalence import CI_METHODS

    if args.ci not in CI_METHODS:  # before reading the cohort: cheap mistakes first
        raise DataValidationError(f"unknown CI method '{args.ci}'; choose one of {', '.join(CI_METHODS)}")
    if args.scheduler is not None or path.is_dir():
        if args.weights:
            raise DataValidationError("--weights needs individual rows; it cannot be used with --scheduler "
                                      "or a dataset folder")
        from rlsepi.distributed import FREQ, cell_counts, connect, partitions
        from rlsepi.schema import parse_codes, parse_columns

        partitions(path)  # refuse a CSV before starting a cluster
        with connect(args.scheduler, quiet=args.quiet) as client:
            counts = cell_counts(path, require, client=client, columns=parse_columns(args.column),
                                 codes=parse_codes(args.code), require=require, boolean=(args.outcome,),
                                 allow_duplicate_ids=args.allow_duplicate_ids,
                                 progress=client is not None and not args.quiet and sys.stderr.isatty())
        df, report = counts.cells, counts.report
        args.freq = FREQ
        if len(df) == 0:
            raise DataValidationError(f"no rows left after dropping those with missing values ({report.summary()})")
    else:  # the schema's validation layer, as for every command reading a cohort
        df, report = read_mapped_cohort(path, args, require, outcome=args.outcome, boolean=(args.outcome,))
    res = analyse(df, args)
    if not args.quiet:  # after the analysis, so that a refusal stays one line
        print(f"rlsepi prevalence: {report.summary()}", file=sys.stderr)
    if args.format == "json":
        text = to_json(res, report, args)
    elif args.format == "csv":
        buf = io.StringIO()
        prevalence_frame(res).to_csv(buf, index=False, float_format="%.10g")
        text = buf.getvalue()
    else:
        text = to_markdown(res, report, args)
    emit(text, args.out, force=args.force)
    if args.out is not None and not args.quiet:
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


__all__ = ["register", "run", "analyse", "prevalence_frame", "to_json", "to_markdown"]
