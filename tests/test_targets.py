"""check_targets: every row's estimate, interval, label and method, recomputed by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from rlsepi import cohort, prevalence
from rlsepi.parameters import DEFAULT
from rlsepi.targets import check_targets


def _wilson(k: int, n: int, alpha: float) -> tuple[float, float]:
    z = stats.norm.ppf(1 - alpha / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    return cohort.simulate(8000, rng=77)


def test_every_row_recomputed(df) -> None:
    alpha = 0.1  # not the default: a dropped alpha shows
    res = {r.name: r for r in check_targets(df, alpha=alpha).results}
    rls, cs = df["rls"].astype(bool), df["rls_clinically_significant"].astype(bool)
    for name, flag, label in (("prevalence", rls, "RLS prevalence"),
                              ("clinically_significant", cs, "clinically significant RLS")):
        r = res[name]
        assert (r.label, r.method, r.n) == (label, "wilson", len(df))
        assert r.estimate == pytest.approx(flag.mean(), rel=1e-15, abs=0)
        assert (r.ci_lower, r.ci_upper) == pytest.approx(_wilson(int(flag.sum()), len(df), alpha), rel=1e-12, abs=0)
        t = getattr(DEFAULT.targets, name)
        assert (r.target, r.low, r.high) == (t.value, t.low, t.high)
        assert r.in_band == (t.low <= r.estimate <= t.high)
        assert r.passed == (r.in_band and t.low <= r.ci_lower and r.ci_upper <= t.high)
    fem = df["sex"] == "female"
    a, b, c, d = [int(x.sum()) for x in (rls & fem, ~rls & fem, rls & ~fem, ~rls & ~fem)]
    o = res["female_male_or"]
    assert (o.label, o.method, o.kind) == ("female:male odds ratio (crude)", "woolf", "odds_ratio")
    assert o.estimate == pytest.approx(a * d / (b * c), rel=1e-13, abs=0)
    se, z = math.sqrt(1 / a + 1 / b + 1 / c + 1 / d), stats.norm.ppf(0.95)
    assert o.ci_lower == pytest.approx(a * d / (b * c) * math.exp(-z * se), rel=1e-12, abs=0)
    preg = df[df["pregnant"].astype(bool)]
    for k in (1, 2, 3):
        r = res[f"pregnancy_trimester{k}"]
        sub = preg.loc[preg["trimester"] == k, "rls"].astype(bool)
        assert (r.label, r.method, r.n) == (f"prevalence in trimester {k}", "wilson", len(sub))
        assert (r.ci_lower, r.ci_upper) == pytest.approx(_wilson(int(sub.sum()), len(sub), alpha), rel=1e-12, abs=0)


def test_summary_rows_and_verdict(df) -> None:
    check = check_targets(df)
    text = check.summary()
    r = {x.name: x for x in check.results}["prevalence"]
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("RLS prevalence"))
    assert line.split()[2:5] == [f"{r.target:.2%}", f"{r.low:.2%}-{r.high:.2%}", f"{r.estimate:.2%}"]
    assert line.split()[-1] == ("pass" if r.passed else "FAIL")
    assert check.failed == [x.name for x in check.results if not x.low <= x.estimate <= x.high]
    unsure = [x.name for x in check.results
              if x.low <= x.estimate <= x.high and not x.low <= x.ci_lower <= x.ci_upper <= x.high]
    assert check.inconclusive == unsure
    parts = ([f"targets missed: {', '.join(check.failed)}"] if check.failed else []) + (
        [f"too few people to tell (the 95% CI reaches outside the band): {', '.join(unsure)}"] if unsure else [])
    assert text.splitlines()[-1] == ("; ".join(parts) or "all targets reproduced")


def test_summary_text_of_known_results() -> None:
    # every cell of the table typed by hand from the values below (percent with 2 decimals,
    # odds ratio with 2, age with 1), so a changed format, column or verdict shows
    from rlsepi.targets import TargetCheck, TargetResult

    rows = (TargetResult("prevalence", "RLS prevalence", 0.08, 0.07, 0.10, 0.081234, 0.0791, 0.08342, 20000,
                         "wilson", True),
            TargetResult("female_male_or", "female:male OR", 1.75, 1.5, 2.0, 2.3456, 2.1012, 2.6049, 19999,
                         "woolf", False, "odds_ratio"),
            TargetResult("peak_age", "peak age", 60.0, 50.0, 70.0, 61.26, 58.04, 64.46, 18000, "lq", True, "age"),
            # in the band, but its interval (4.37-18.98%) reaches outside 5-11%: 64 women cannot tell
            TargetResult("pregnancy_trimester1", "trimester 1", 0.08, 0.05, 0.11, 0.09375, 0.0437, 0.1898, 64,
                         "wilson", True, "proportion", False))
    lines = TargetCheck(rows).summary().splitlines()
    assert lines[0].split() == ["target", "published", "band", "estimate", "95%", "CI", "n", "result"]
    assert lines[1].split() == ["RLS", "prevalence", "8.00%", "7.00%-10.00%", "8.12%", "7.91%-8.34%", "20000", "pass"]
    assert lines[2].split() == ["female:male", "OR", "1.75", "1.50-2.00", "2.35", "2.10-2.60", "19999", "FAIL"]
    assert lines[3].split() == ["peak", "age", "60.0", "50.0-70.0", "61.3", "58.0-64.5", "18000", "pass"]
    assert lines[4].split() == ["trimester", "1", "8.00%", "5.00%-11.00%", "9.38%", "4.37%-18.98%", "64", "too", "few",
                                "to", "tell"]
    assert lines[5:] == ["targets missed: female_male_or; too few people to tell (the 95% CI reaches outside the "
                         "band): pregnancy_trimester1"]
    assert TargetCheck(rows[:1]).summary().splitlines()[-1] == "all targets reproduced"
    assert not TargetCheck(rows[3:]).passed
    assert TargetCheck(rows[3:]).summary().splitlines()[-1] == (
        "too few people to tell (the 95% CI reaches outside the band): pregnancy_trimester1")


def test_summary_of_targets_that_could_not_be_estimated() -> None:
    # an estimate that could not be made (no peak inside the ages, no women) prints as nan
    from rlsepi.targets import TargetCheck, TargetResult

    nan = float("nan")
    rows = (TargetResult("female_male_or", "OR", 1.75, 1.5, 2.0, nan, nan, nan, 10, "woolf", False, "odds_ratio"),
            TargetResult("peak_age", "peak", 60.0, 50.0, 70.0, nan, nan, nan, 10, "lq", False, "age"))
    lines = TargetCheck(rows).summary().splitlines()
    assert lines[1].split() == ["OR", "1.75", "1.50-2.00", "nan", "nan-nan", "10", "FAIL"]
    assert lines[2].split() == ["peak", "60.0", "50.0-70.0", "nan", "nan-nan", "10", "FAIL"]


def test_a_table_of_counts_gives_the_results_of_its_rows(df) -> None:
    # freq=: each row of the counts stands for that many people (distributed.cell_counts); the
    # n of every row is the number of people, and an empty trimester is not estimated
    cols = ["age", "sex", "pregnant", "trimester", "rls", "rls_clinically_significant"]
    cells = df.groupby(cols, dropna=False, observed=True).size().rename("people").reset_index()
    assert len(cells) < len(df) // 2  # a real reduction
    rows = check_targets(df).to_frame()
    counts = check_targets(cells, freq="people").to_frame()
    pd.testing.assert_frame_equal(counts, rows)
    assert rows.set_index("name").loc["female_male_or", "n"] == len(df)
    # a trimester with rows but nobody in them (zero counts) is not estimated
    no_t3 = cells.assign(people=cells["people"].where(cells["trimester"].fillna(0) != 3, 0))
    r3 = {r.name: r for r in check_targets(no_t3, freq="people").results}["pregnancy_trimester3"]
    assert (r3.n, r3.passed, math.isnan(r3.estimate)) == (0, False, True)


def test_default_peak_interval_is_peak_ages_fieller_interval(df) -> None:
    # the committed report's peak interval is peak_age's default (Fieller-type: no bootstrap, so
    # check_targets takes no seed and no number of resamples)
    default = check_targets(df)
    peak = {r.name: r for r in default.results}["peak_age"]
    assert peak.method == FIELLER_METHOD
    pk = prevalence.peak_age(df, outcome="rls")
    assert (peak.estimate, peak.ci_lower, peak.ci_upper) == (pk.age, pk.ci_lower, pk.ci_upper)


def test_peak_interval_at_the_requested_level(df) -> None:
    # the peak row's interval is peak_age's at the same alpha
    peak = {r.name: r for r in check_targets(df, alpha=0.1).results}["peak_age"]
    pk = prevalence.peak_age(df, outcome="rls", alpha=0.1)
    assert (peak.estimate, peak.ci_lower, peak.ci_upper) == (pk.age, pk.ci_lower, pk.ci_upper)
    wider = prevalence.peak_age(df, outcome="rls", alpha=0.05)
    assert wider.ci_upper - wider.ci_lower > peak.ci_upper - peak.ci_lower  # the level is not ignored


FIELLER_METHOD = ("local quadratic (kernel SD 4 years), Fieller interval: the ages whose local slope is not "
                  "significantly non-zero, sandwich SE")
"""The method as prevalence.peak_age's documentation words it (typed, not read from the code)."""


def _top_band(d: pd.DataFrame) -> str:
    """The 5-year band with the highest crude prevalence, by hand."""
    lower = (d["age"] // 5 * 5).astype(int)
    top = int(d["rls"].astype(bool).groupby(lower).mean().idxmax())
    return f"{top}-{top + 4}"


def test_labels_and_methods_of_peak_and_unestimated_rows(df) -> None:
    peak = {r.name: r for r in check_targets(df).results}["peak_age"]
    assert peak.label == f"age of peak prevalence (top band {_top_band(df)})"
    assert peak.method == FIELLER_METHOD
    # prevalence that only rises with age (no peak inside the ages) and nobody in trimester 2:
    # both rows are named, not estimated, and missed; trimester 3 after it is still estimated
    gen = np.random.default_rng(5)
    rising = df[~(df["pregnant"].astype(bool) & (df["trimester"] == 2))].copy()
    rising["rls"] = gen.random(len(rising)) < (rising["age"] - 10) / 100
    res = {r.name: r for r in check_targets(rising).results}
    p, t2 = res["peak_age"], res["pregnancy_trimester2"]
    assert (p.label, p.method, p.n, p.passed) == (
        f"age of peak prevalence (top band {_top_band(rising)}; no peak inside the ages observed)",
        "local quadratic", len(rising), False)
    assert math.isnan(p.estimate) and math.isnan(p.ci_lower) and math.isnan(p.ci_upper)
    assert (t2.label, t2.method, t2.n, t2.passed) == ("prevalence in trimester 2", "wilson", 0, False)
    assert math.isnan(t2.estimate)
    in_t3 = rising["pregnant"].astype(bool) & (rising["trimester"] == 3)
    assert res["pregnancy_trimester3"].n == int(in_t3.sum()) > 0
    assert res["pregnancy_trimester3"].estimate == rising.loc[in_t3, "rls"].mean()


def test_a_peak_that_cannot_be_estimated_is_a_named_miss_not_a_refusal(df) -> None:
    # everyone aged 45: the smooth peak needs 3 distinct ages; the check still judges the
    # other targets, and names why the peak row is missed
    one_age = df.assign(age=45)
    res = {r.name: r for r in check_targets(one_age).results}
    p = res["peak_age"]
    assert p.label == "age of peak prevalence (top band 45-49; not estimable: the local peak needs at least 3 distinct ages)"
    assert (p.result, math.isnan(p.estimate)) == ("FAIL", True)
    assert res["prevalence"].estimate == one_age["rls"].astype(bool).mean()
