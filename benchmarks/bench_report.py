"""Time the default report end to end and say where the time goes.

Run on demand (``python benchmarks/bench_report.py [--n N]``). Each analysis of
:func:`rlsepi.report.analyse` is timed on its own, then the figures and the files, on the
same cohort the report uses by default.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from typing import Any

from rlsepi import cohort, descriptive, polygenic, prevalence, report, risk, risk_models
from rlsepi.commands import DEFAULT_SEED, REPORT_N
from rlsepi.targets import check_targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=REPORT_N)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args()
    rows: list[tuple[str, float]] = []

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        out = fn()
        rows.append((name, time.perf_counter() - start))
        return out

    total = time.perf_counter()
    df = timed("simulate cohort", lambda: cohort.simulate(args.n, rng=args.seed))
    timed("targets check", lambda: check_targets(df))
    timed("prevalence: crude, by age and sex", lambda: [prevalence.stratified(df, b) for b in
                                                          (["sex", "age_band"], ["age_band"], ["sex"])])
    timed("prevalence: standardised x3", lambda: [prevalence.standardised(df, standard=s)
                                                  for s in ("esp2013", "who2000", "us2000")])
    timed("sex OR: Woolf + Mantel-Haenszel", lambda: (prevalence.odds_ratio(df), prevalence.mantel_haenszel(df)))
    timed("sex OR: logistic, adjusted for age", lambda: prevalence.adjusted_odds_ratio(df, age_terms="quadratic"))
    timed("peak band + smooth peak (bootstrap)", lambda: (prevalence.peak_band(df, rng=0), prevalence.peak_age(df, rng=0)))
    timed("Table 1", lambda: descriptive.table_one(df))
    timed("PRS (score + match log)", lambda: polygenic.score_genotypes(polygenic.cohort_genotypes(df)))
    timed("nested models M0-M3 (+CV, DeLong)", lambda: risk_models.fit_nested(df, random_state=args.seed))
    timed("individual risk examples", lambda: [risk.individual_risk(**kw) for _, kw in report.EXAMPLES])
    analysis = timed("analyse() as the report runs it", lambda: report.analyse(df, rng=args.seed))
    with tempfile.TemporaryDirectory() as tmp:
        timed("figures + HTML + JSON", lambda: report.write_report(analysis, f"{tmp}/r"))
    wall = time.perf_counter() - total
    print(f"default report, {args.n:,} people (the analyse() line repeats the steps above it together)")
    for name, secs in rows:
        print(f"  {name:40s} {secs:7.2f} s")
    print(f"  {'(all of the above, run twice)':40s} {wall:7.2f} s")


if __name__ == "__main__":
    main()
