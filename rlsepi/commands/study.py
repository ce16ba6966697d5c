"""``rlsepi study FILE``: re-check a published study from the numbers it reports.

The command only parses arguments, calls :mod:`rlsepi.study` and writes the result.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rlsepi.commands import DEFAULT_SEED, emit, require_file, seed_int

FORMATS = ("markdown", "csv", "json")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "study", help="re-check a published study: p-values from the summary statistics, GRIM, power, replication",
        description="Read a study described in TOML (groups with n; means and SDs, counts, correlations with the "
        "reported p-values and the tests the paper may have used; see examples/park2023_dti_alps.toml). Recompute "
        "every test with the range of p-values the rounding of the reported numbers allows, flag a reported "
        "p-value outside that range under every allowed test, p-values reported differently in two places, means "
        "impossible for integer data (GRIM), percentages that do not match their counts, and subgroups that do not "
        "add up; give the power the design had for its own effect and the size of a replication. --synthetic "
        "writes individual-level data with exactly the reported means and SDs. Exit code 2 for a study file that "
        "is not valid or contradicts itself.",
    )
    p.add_argument("file", type=Path, help="study description (.toml)")
    p.add_argument("--format", choices=FORMATS, default="markdown",
                   help="markdown (default), csv (one row per reported p-value and test) or json (everything)")
    p.add_argument("--out", type=Path, default=None, metavar="FILE", help="write to FILE instead of the screen")
    p.add_argument("--synthetic", type=Path, default=None, metavar="FILE.csv",
                   help="also write synthetic individual data with exactly the reported means and SDs")
    p.add_argument("--seed", type=seed_int, default=DEFAULT_SEED, metavar="S",
                   help=f"seed of the synthetic data (default {DEFAULT_SEED})")
    p.add_argument("--force", action="store_true", help="overwrite output files if they exist")
    p.set_defaults(run=run)


def _md_table(df: Any, columns: list[str]) -> list[str]:
    import math

    def cell(v: Any) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "—"
        if isinstance(v, float):
            return f"{v:.4f}" if abs(v) >= 1e-4 or v == 0 else f"{v:.2e}"
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in df.to_dict(orient="records")]
    return lines


def to_markdown(res: Any, spec: dict[str, Any], path: Path) -> str:
    import pandas as pd

    cite = spec["study"].get("citation")
    lines = [f"# Re-check: {res.title}", ""]
    if cite:
        lines += [f"Source: {cite}. Study file: `{path.name}`.", ""]
    lines += [res.summary() + ".", ""]
    lines += ["## What does not add up", ""]
    lines += [f"- {f}" for f in res.flags] or ["- nothing: every reported number is consistent with the others"]
    lines += ["", "## Every reported p-value beside its recomputed range", "",
              "Each test gives p at the reported numbers and, in brackets, the range that the rounding of the reported means, SDs or r allows (counts are exact); a reported p is "
              "consistent when its own rounding interval meets that range under at least one test the paper may have "
              "used.", ""]
    if len(res.tests):
        t = res.tests.copy()
        t["range"] = [f"{p:.4f} ({lo:.4f}-{hi:.4f})" if hi - lo > 5e-5 else f"{p:.4f}"
                      for p, lo, hi in zip(t["p_recomputed"], t["p_min"], t["p_max"])]
        t["recomputed"] = t["p_recomputed"]
        wide = (t.groupby(["name", "comparison", "reported_p", "source"], sort=False)
                .apply(lambda g: "; ".join(f"{a} {b}" for a, b in zip(g["test"], g["range"])), include_groups=False)
                .rename("recomputed (range)").reset_index())
        wide = wide.merge(res.verdicts, on=["name", "comparison", "reported_p", "source"], how="left")
        wide = wide.rename(columns={"reported_p": "reported p", "recomputed (range)": "recomputed"})
        lines += _md_table(wide, ["name", "comparison", "reported p", "source", "recomputed",
                                                      "verdict"])
    if len(res.checks):
        lines += ["", "## GRIM, percentages and subgroups", ""]
        lines += _md_table(res.checks, ["name", "check", "result", "detail"])
    if len(res.design):
        d = res.design.copy()
        for c in ("replication_n_total", "replication_n_per_group", "note"):
            if c not in d.columns:
                d[c] = None
        d = d.astype(object).where(pd.notna(d), None)
        lines += ["", f"## Power of the design and size of a replication ({100 * res.replication_power:.0f}% power, "
                  f"alpha {res.alpha:g})", "",
                  "Power for the study's own observed effect is a function of its p-value and says nothing the "
                  "p-value does not (Hoenig & Heisey 2001); the useful number is the replication's size, taking the "
                  "observed effect at face value (published effects are often inflated).", ""]
        d["replication_n_total"] = [None if v is None else f"{int(v):,}" for v in d["replication_n_total"]]
        lines += _md_table(d, ["name", "comparison", "effect", "power", "replication_n_total", "note"])
    lines.append("")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from rlsepi import __version__
    from rlsepi.commands import check_outputs
    from rlsepi.io import atomic_output, to_jsonable
    from rlsepi.risk_models import strict_json
    from rlsepi.study import check_study, load_study, read_study, synthetic_data

    require_file(args.file, "study file")
    check_outputs([args.out, args.synthetic], inputs=[args.file], force=args.force)
    spec = load_study(read_study(args.file))
    res = check_study(spec)
    if args.format == "json":
        doc = {"rlsepi_version": __version__, "command": "study", "file": args.file.name,
               "citation": spec["study"].get("citation"), **res.to_dict()}
        text = json.dumps(strict_json(to_jsonable(doc)), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    elif args.format == "csv":
        text = res.to_frame().to_csv(index=False, float_format="%.10g")
    else:
        text = to_markdown(res, spec, args.file)
    if args.synthetic is not None:
        data = synthetic_data(spec, rng=args.seed)
        with atomic_output(args.synthetic, force=args.force, mode="w") as fh:
            data.to_csv(fh, index=False, float_format="%.10g")
        print(f"wrote {args.synthetic} ({len(data)} people)", file=sys.stderr)
    emit(text, args.out, force=args.force)
    return 0


__all__ = ["register", "run", "to_markdown"]
