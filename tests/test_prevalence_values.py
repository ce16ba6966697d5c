"""Value checks of prevalence's small-cell suppression and the peak bootstrap intervals.

Suppression is checked on a table built by hand around the threshold. The bootstrap
intervals are checked for their level without depending on how the package draws its
resamples: an independent bootstrap written here (people resampled with replacement, the
estimate recomputed with no interval) gives the distribution, and a (1 - alpha) interval
must hold about (1 - alpha) of it.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from rlsepi import prevalence
from rlsepi.cohort import simulate
from rlsepi.errors import DataValidationError


def _table(rows: list[tuple[str, int, int]]) -> prevalence.PrevalenceTable:
    """A stratified table with given (group, n, cases), built from people."""
    people = [{"g": g, "rls": int(i < cases)} for g, n, cases in rows for i in range(n)]
    return prevalence.stratified(pd.DataFrame(people), "g")


def test_suppression_exactly_at_the_threshold() -> None:
    # k = 5: a stratum is shown when n >= 5 and cases and non-cases are each 0 or >= 5
    t = _table([
        ("a_n5_c0", 5, 0),     # n = k, no cases: shown (0 is not suppressed)
        ("b_n4_c0", 4, 0),     # n = k - 1: n and everything blanked
        ("c_n10_c5", 10, 5),   # cases = k, non-cases = k: shown
        ("d_n10_c4", 10, 4),   # cases = k - 1: blanked, n kept
        ("e_n10_c6", 10, 6),   # non-cases = k - 1: blanked, n kept
        ("f_n5_c5", 5, 5),     # all cases, n = k: shown
        ("g_n9_c1", 9, 1),     # 1 case: blanked
        ("h_n9_c8", 9, 8),     # 1 non-case: blanked
    ])
    s = prevalence.suppress(t, 5).table.set_index("g")
    shown = s["prevalence"].notna()
    assert shown.to_dict() == {"a_n5_c0": True, "b_n4_c0": False, "c_n10_c5": True, "d_n10_c4": False,
                               "e_n10_c6": False, "f_n5_c5": True, "g_n9_c1": False, "h_n9_c8": False}
    assert s["n"].isna().to_dict() == {g: g == "b_n4_c0" for g in s.index}
    assert s.loc["c_n10_c5", "prevalence"] == 0.5 and s.loc["f_n5_c5", "cases"] == 5
    assert (s.loc[~shown, "method"] == "suppressed (<5)").all()
    assert (s.loc[shown, "method"] == "wilson").all()
    for col in ("cases", "ci_lower", "ci_upper"):
        assert s.loc[~shown, col].isna().all() and s.loc[shown, col].notna().all()
    # k = 1 suppresses nothing; k = 0 is refused
    assert prevalence.suppress(t, 1).table["prevalence"].notna().all()
    with pytest.raises(DataValidationError, match="1 or more, got 0"):
        prevalence.suppress(t, 0)


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    return simulate(20_000, rng=20261124)[["age", "sex", "rls"]]


def _share_inside(values: np.ndarray, lo: float, hi: float) -> float:
    return float(np.mean((values >= lo) & (values <= hi)))


def test_peak_age_interval_has_its_level(cohort: pd.DataFrame) -> None:
    gen = np.random.default_rng(1)
    n = len(cohort)
    mine = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(200):
            d = cohort.iloc[gen.integers(0, n, n)]
            try:
                mine.append(prevalence.peak_age(d, n_boot=0).age)
            except DataValidationError:  # a resample without a peak: left out, as the package does
                continue
        mine = np.asarray(mine)
        # Monte Carlo: 200 of ours and 400 of the package's; the share inside a 50% interval
        # has an SE of about 0.04, so 0.35-0.65 is > 3 SE either side. A 95% interval at the
        # wrong level (hard-coded, or alpha instead of alpha/2) lands far outside these bands.
        for alpha, low, high in ((0.5, 0.35, 0.65), (0.2, 0.70, 0.90), (0.05, 0.90, 0.995)):
            pk = prevalence.peak_age(cohort, n_boot=400, alpha=alpha, rng=2)
            share = _share_inside(mine, pk.ci_lower, pk.ci_upper)
            assert low <= share <= high, (alpha, share, pk.ci_lower, pk.ci_upper)
            assert pk.ci_lower <= pk.age <= pk.ci_upper


def test_peak_band_interval_has_its_level(cohort: pd.DataFrame) -> None:
    # the documented parametric bootstrap, written out: each band's cases ~ Binomial(n, p)
    t = prevalence.stratified(cohort, "age_band").table
    n, p = t["n"].to_numpy(), t["prevalence"].to_numpy()
    mid = np.array([int(str(b).split("-")[0]) for b in t["age_band"]]) + 2.0
    gen = np.random.default_rng(3)
    mine = mid[np.argmax(gen.binomial(n, p, size=(20_000, n.size)) / n, axis=1)]
    for alpha in (0.5, 0.2, 0.05):
        pb = prevalence.peak_band(cohort, n_boot=2000, alpha=alpha, rng=4)
        # the limits are the alpha/2 and 1 - alpha/2 quantiles of this discrete distribution:
        # P(X < lo) <= alpha/2 <= P(X <= lo), and the same above hi, compared in probability
        # (the quantiles themselves jump between bands 5 years apart). Slack 0.012: about 3 SE
        # of the package's 2,000 draws at 2.5%.
        eps = 0.012
        below, below_eq = np.mean(mine < pb.ci_lower), np.mean(mine <= pb.ci_lower)
        above, above_eq = np.mean(mine > pb.ci_upper), np.mean(mine >= pb.ci_upper)
        assert below - eps <= alpha / 2 <= below_eq + eps, (alpha, below, below_eq, pb.ci_lower)
        assert above - eps <= alpha / 2 <= above_eq + eps, (alpha, above, above_eq, pb.ci_upper)
    # a 50% interval is strictly inside the 95% one here (the distribution spans bands)
    wide = prevalence.peak_band(cohort, n_boot=2000, alpha=0.05, rng=4)
    narrow = prevalence.peak_band(cohort, n_boot=2000, alpha=0.5, rng=4)
    assert wide.ci_upper - wide.ci_lower > narrow.ci_upper - narrow.ci_lower


def test_summaries_state_the_level_and_the_numbers() -> None:
    # 20 women (5 cases) and 20 men (2 cases) at ages 30 and 60; worked by hand
    rows = []
    for sex, age, n, k in (("female", 30, 10, 2), ("female", 60, 10, 3), ("male", 30, 10, 1), ("male", 60, 10, 1)):
        rows += [{"sex": sex, "age": age, "rls": int(i < k)} for i in range(n)]
    d = pd.DataFrame(rows)
    pb = prevalence.peak_band(d, n_boot=200, alpha=0.1, rng=1)
    assert pb.band == "60-64" and pb.prevalence == pytest.approx(4 / 20, rel=1e-15, abs=0)
    assert "90% bootstrap interval" in pb.summary()
    none = prevalence.peak_band(d, n_boot=0)
    assert none.summary() == "peak prevalence in ages 60-64 (20.00%); no bootstrap interval"
    row = none.to_frame().iloc[0].to_dict()
    assert math.isnan(row.pop("ci_lower")) and math.isnan(row.pop("ci_upper"))
    assert row == {"peak_band": "60-64", "midpoint": 62.0, "prevalence": 0.2, "method": "bootstrap"}
    st = prevalence.standardised(d, standard={30: 1, 60: 3})
    # bands 30-34 and 60-64: prevalences 3/20 and 4/20, weights 1:3 -> (0.15 + 3 * 0.2) / 4
    assert st.adjusted == pytest.approx((0.15 + 3 * 0.2) / 4, rel=1e-14, abs=0)
    assert st.summary().startswith(f"age-standardised to user weights: {100 * st.adjusted:.2f}% ")
    mh = prevalence.mantel_haenszel(d, strata="age", width=5)
    # MH OR = sum(a d / n) / sum(b c / n): age 30: a=2,b=8,c=1,d=9; age 60: a=3,b=7,c=1,d=9; n = 20
    want = (2 * 9 / 20 + 3 * 9 / 20) / (8 * 1 / 20 + 7 * 1 / 20)
    assert mh.estimate == pytest.approx(want, rel=1e-13, abs=0)
    assert f"{want:.3f}" in mh.summary() and "95% CI" in mh.summary()
    lo = prevalence.adjusted_odds_ratio(d, adjust=("age",))
    assert f"{lo.estimate:.3f}" in lo.summary() and "adjusted for age" in lo.summary()


@pytest.mark.parametrize(("call", "message"), [
    (lambda d: prevalence.crude(d, alpha=1.5), "alpha must lie between 0 and 1, got 1.5"),
    (lambda d: prevalence.crude(d, outcome="dx"), "column 'dx' is missing"),
    (lambda d: prevalence.crude(d.assign(rls=["maybe"] * len(d))), "rls"),
    (lambda d: prevalence.crude(d, weights="w"), "weights column 'w' is missing"),
    (lambda d: prevalence.crude(d.iloc[:0]), "no rows to estimate a prevalence from"),
    (lambda d: prevalence.age_band(d["age"], width=0), "age band width must be 1 year or more, got 0"),
    (lambda d: prevalence.age_band(d["age"], breaks=[]), "age breaks are empty"),
    (lambda d: prevalence.stratified(d.drop(columns="age"), "age_band"), "column 'age' is missing"),
    (lambda d: prevalence.stratified(d, []), "give at least one column to stratify by"),
    (lambda d: prevalence.stratified(d, "nonesuch"), "nonesuch"),
    (lambda d: prevalence.standard_population("mars2000"), "unknown standard population 'mars2000'"),
    (lambda d: prevalence.standard_population({30: -1}), "not a number >= 0"),
    (lambda d: prevalence.standard_population(pd.DataFrame({"age_lower": [30]})), "has no column 'weight'"),
    (lambda d: prevalence.standard_population(pd.DataFrame({"age_lower": [30, 30], "weight": [1, 1]})),
     "repeating an age band"),
    (lambda d: prevalence.standard_population(pd.DataFrame({"age_lower": [30], "weight": [1], "sex": ["x"]})),
     "column 'sex' must hold female or male"),
    (lambda d: prevalence.read_standard("/nonexistent/w.csv"), "does not exist"),
    (lambda d: prevalence.standardised(d.drop(columns="age"), standard="esp2013"), "column 'age' is missing"),
    (lambda d: prevalence.standardised(d.assign(age=np.nan), standard="esp2013"), "column 'age' has"),
    (lambda d: prevalence.standardised(d.drop(columns="sex"), standard="esp2013", by_sex=True),
     "column 'sex' is missing"),
    (lambda d: prevalence.standardised(d, standard={0: 0.0, 70: 1.0}), "gives no weight to the cohort"),
    (lambda d: prevalence.odds_ratio(d, exposure="smoker"), "column 'smoker' is missing"),
    (lambda d: prevalence.odds_ratio(d, method="magic"), "unknown odds-ratio method 'magic'"),
    (lambda d: prevalence.mantel_haenszel(d, strata="region"), "column 'region' is missing"),
    (lambda d: prevalence.adjusted_odds_ratio(d, age_terms="cubic"), "age_terms must be linear or quadratic"),
    (lambda d: prevalence.adjusted_odds_ratio(d, adjust=("bmi",)), "column 'bmi' is missing"),
    (lambda d: prevalence.adjusted_odds_ratio(d, adjust=("sex",)), "column 'sex' is the exposure"),
    (lambda d: prevalence.peak_age(d, model="cubic"), "peak model must be one of local, quadratic, spline, got 'cubic'"),
    (lambda d: prevalence.peak_age(d, model="spline", spline_df=2), "at least 3 degrees of freedom, got 2"),
    (lambda d: prevalence.peak_age(d.drop(columns="age")), "column 'age' is missing"),
    (lambda d: prevalence.peak_age(d.assign(age=np.nan)), "column 'age' has"),
])
def test_refusals_name_the_problem(call, message) -> None:
    d = pd.DataFrame({"age": [30, 30, 60, 60] * 5, "sex": ["female", "male"] * 10, "rls": [1, 0, 0, 0, 1] * 4})
    with pytest.raises(DataValidationError, match=message):
        call(d)


def test_no_peak_when_prevalence_only_rises() -> None:
    d = pd.DataFrame({"age": np.repeat([20, 40, 60, 80], 50),
                      "rls": np.concatenate([np.arange(50) < k for k in (2, 6, 15, 30)]).astype(int)})
    for kw in ({"model": "local", "bandwidth": 10.0}, {"model": "quadratic"}):
        with pytest.raises(DataValidationError, match="does not rise and fall with age"):
            prevalence.peak_age(d, n_boot=0, **kw)
    # the local fit names the edge it ran into, and gives no interval reaching past the ages observed
    with pytest.raises(DataValidationError, match=r"highest at the oldest age observed \(80\)"):
        prevalence.peak_age(d, n_boot=50, rng=1, bandwidth=10.0)
    # ages 20 years apart are too sparse for the default 4-year kernel: refused as such (its
    # Newton steps underflow), not reported as a peak at an edge
    with pytest.raises(DataValidationError, match=r"too far apart for a kernel SD of 4 years \(largest gap 20 "
                                                  r"years\); pass a bandwidth of at least 10"):
        prevalence.peak_age(d)


def test_target_check_misses_the_peak_when_prevalence_only_rises() -> None:
    # a cohort whose prevalence only rises with age does not reproduce a peak between 50 and 70:
    # the target is missed (not passed, and not a crash)
    from rlsepi.targets import check_targets

    df = simulate(4000, rng=3)
    df["rls"] = df["age"] >= 75
    res = {r.name: r for r in check_targets(df).results}
    peak = res["peak_age"]
    assert not peak.passed and np.isnan(peak.estimate) and "no peak inside the ages observed" in peak.label


def test_woolf_p_value_in_the_far_tail_by_hand() -> None:
    # women 400 cases / 600 non-cases, men 100 / 900: OR = 400*900/(600*100) = 6,
    # SE(log OR) = sqrt(1/400 + 1/600 + 1/100 + 1/900), z = ln 6 / SE ~ 15.3, and the
    # two-sided p = erfc(|z| / sqrt 2) ~ 1e-52 (libm's erfc, not scipy's normal): a p-value
    # computed as 2 * (1 - cdf) would be 0 here
    d = pd.DataFrame({"sex": ["female"] * 1000 + ["male"] * 1000,
                      "rls": [1] * 400 + [0] * 600 + [1] * 100 + [0] * 900})
    o = prevalence.odds_ratio(d)
    se = math.sqrt(1 / 400 + 1 / 600 + 1 / 100 + 1 / 900)
    z = math.log(6) / se
    assert o.estimate == pytest.approx(6, rel=1e-14, abs=0)
    assert o.pvalue == pytest.approx(math.erfc(z / math.sqrt(2)), rel=1e-12, abs=0)
    assert 1e-60 < o.pvalue < 1e-45
