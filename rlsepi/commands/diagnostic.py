"""``rlsepi diagnostic``: what a test result means (PPV, NPV, likelihood ratios, post-test probability).

The command only parses arguments, calls :mod:`rlsepi.diagnostic` and writes the result.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rlsepi.commands import emit, fraction, nonnegative_int
from rlsepi.errors import RLSEpiError

FORMATS = ("markdown", "csv", "json")


def _prevalences(text: str) -> list[float]:
    try:
        vals = [float(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers between 0 and 1 separated by commas, got '{text}'") from None
    if not vals or not all(0 <= v <= 1 for v in vals):
        raise argparse.ArgumentTypeError(f"every prevalence must lie between 0 and 1, got '{text}'")
    return vals


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "diagnostic", help="what a test result means: PPV, NPV, likelihood ratios, post-test probability",
        description="From a sensitivity and a specificity, or from a 2x2 table of counts (--tp --fp --fn --tn, with "
        "exact and Wilson intervals), and one or more prevalences: the positive and negative predictive values, the "
        "likelihood ratios and the post-test probability; --plot draws PPV and NPV against prevalence. Without "
        "--sensitivity/--specificity or counts, uses the illustrative PLMS figures from parameters.py "
        "(periodic limb movements on polysomnography for RLS).",
    )
    p.add_argument("--sensitivity", type=fraction(closed=True), default=None, metavar="SE")
    p.add_argument("--specificity", type=fraction(closed=True), default=None, metavar="SP")
    for name, text in (("tp", "test positive, disease present"), ("fp", "test positive, disease absent"),
                       ("fn", "test negative, disease present"), ("tn", "test negative, disease absent")):
        p.add_argument(f"--{name}", type=nonnegative_int, default=None, metavar="COUNT", help=text)
    p.add_argument("--prevalence", type=_prevalences, default=None, metavar="P[,P...]",
                   help="pre-test probabilities, e.g. 0.08,0.40 (default: the population prevalence of RLS in "
                   "parameters.py and a sleep-clinic 40%%)")
    p.add_argument("--alpha", type=fraction(closed=False), default=0.05, help="1 - confidence level (default 0.05)")
    p.add_argument("--plot", type=Path, default=None, metavar="FILE.png|svg|pdf",
                   help="draw PPV and NPV against prevalence to FILE")
    p.add_argument("--format", choices=FORMATS, default="markdown", help="markdown (default), csv or json")
    p.add_argument("--out", type=Path, default=None, metavar="FILE", help="write to FILE instead of the screen")
    p.add_argument("--force", action="store_true", help="overwrite FILE(s) if they exist")
    p.set_defaults(run=run)


def compute(args: argparse.Namespace) -> dict[str, Any]:
    from rlsepi import diagnostic as dg
    from rlsepi.parameters import (
        DEFAULT,
        PLMS_SENSITIVITY,
        PLMS_SOURCE,
        PLMS_SPECIFICITY,
        SLEEP_CLINIC_PREVALENCE,
    )

    counts = [args.tp, args.fp, args.fn, args.tn]
    given = [c is not None for c in counts]
    out: dict[str, Any] = {"counts": None, "source": None}
    if any(given):
        if not all(given):
            raise RLSEpiError("give all four counts --tp --fp --fn --tn, or none (and --sensitivity --specificity)")
        if args.sensitivity is not None or args.specificity is not None:
            raise RLSEpiError("give counts or --sensitivity/--specificity, not both")
        table = dg.from_counts(*counts, alpha=args.alpha)
        out["counts"] = table
        se, sp = table.sensitivity, table.specificity
    elif args.sensitivity is None and args.specificity is None:
        se, sp = PLMS_SENSITIVITY, PLMS_SPECIFICITY
        out["source"] = f"PLMS index >= 15/h on polysomnography for RLS: {PLMS_SOURCE}"
    elif args.sensitivity is None or args.specificity is None:
        raise RLSEpiError("give both --sensitivity and --specificity")
    else:
        se, sp = args.sensitivity, args.specificity
    prevs = args.prevalence or [DEFAULT.targets.prevalence.value, SLEEP_CLINIC_PREVALENCE]
    out["values"] = dg.from_accuracy(se, sp, prevs, counts=out["counts"])
    return out


def render(res: dict[str, Any], fmt: str) -> str:
    from rlsepi import __version__
    from rlsepi.io import to_jsonable
    from rlsepi.risk_models import strict_json

    pv = res["values"]
    if fmt == "json":
        doc = {"rlsepi_version": __version__, "command": "diagnostic", "source": res["source"],
               "sensitivity": pv.sensitivity, "specificity": pv.specificity, "lr_positive": pv.lr_positive,
               "lr_negative": pv.lr_negative, "by_prevalence": pv.table.to_dict(orient="records"),
               "counts": None if res["counts"] is None else {
                   "tp": res["counts"].tp, "fp": res["counts"].fp, "fn": res["counts"].fn, "tn": res["counts"].tn,
                   "alpha": res["counts"].alpha, "measures": res["counts"].table.to_dict(orient="records")}}
        return json.dumps(strict_json(to_jsonable(doc)), indent=2, allow_nan=False) + "\n"
    if fmt == "csv":
        return pv.to_frame().to_csv(index=False, float_format="%.10g")
    lines = ["# What a test result means", ""]
    if res["source"]:
        lines += [f"Test: {res['source']}.", ""]
    if res["counts"] is not None:
        c = res["counts"]
        lines += [f"From counts: {c.summary()}", "", "| measure | estimate | exact CI | Wilson CI |", "|---|---:|---:|---:|"]
        for r in c.table.itertuples():
            lines.append(f"| {r.measure} | {r.estimate:.4g} | {r.exact_lower:.4g}-{r.exact_upper:.4g} | "
                         f"{r.wilson_lower:.4g}-{r.wilson_upper:.4g} |")
        lines += ["", "(The PPV and NPV in this table are at the table's own prevalence.)", ""]
    lines += [pv.summary(), "", "| prevalence | PPV | NPV | P(disease) after a negative result |", "|---:|---:|---:|---:|"]
    for r in pv.table.itertuples():
        lines.append(f"| {100 * r.prevalence:.1f}% | {100 * r.ppv:.1f}% | {100 * r.npv:.1f}% | "
                     f"{100 * r.post_test_negative:.1f}% |")
    lines.append("")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from rlsepi.io import atomic_output, check_output_path

    if args.out is not None:
        check_output_path(args.out, force=args.force)
    if args.plot is not None:
        check_output_path(args.plot, force=args.force)
        if args.plot.suffix.lower() not in (".png", ".svg", ".pdf"):
            raise RLSEpiError(f"--plot '{args.plot}': give a .png, .svg or .pdf file")
    res = compute(args)
    text = render(res, args.format)
    if args.plot is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from rlsepi.diagnostic import plot_predictive_values

        pv = res["values"]
        ax = plot_predictive_values(pv.sensitivity, pv.specificity, marks=list(pv.table["prevalence"]))
        with atomic_output(args.plot, force=args.force, mode="wb") as fh:
            ax.figure.savefig(fh, format=args.plot.suffix.lower().lstrip("."), dpi=150, bbox_inches="tight")
        plt.close(ax.figure)
    emit(text, args.out, force=args.force)
    return 0


__all__ = ["register", "run", "compute", "render"]
