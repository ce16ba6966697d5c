"""The simulator: covariates by hand calculation, the solved model by brute force, the
cohort against the targets, recovery of the true coefficients, and determinism."""

from __future__ import annotations

import itertools
import dataclasses
import math
import os

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from scipy.special import expit

from rlsepi import cohort
from rlsepi.parameters import DEFAULT, parameters_from_mapping
from rlsepi.targets import check_targets

MODEL = cohort.solve_model(DEFAULT)


# --- covariates, against hand calculations ------------------------------------------


def test_age_distribution_is_esp2013_restricted_to_adults():
    ages, prob = cohort.age_distribution(DEFAULT)
    assert ages[0] == 18 and ages[-1] == 99
    # ESP 2013 weights of ages 18-99: 2 years of 15-19 (5500/5 each) + bands 20-24..90-94 + 95+ (200)
    total = 2 * 1100 + (6000 + 6000 + 6500 + 7000 * 4 + 6500 + 6000 + 5500 + 5000 + 4000 + 2500 + 1500 + 800) + 200
    assert total == 80_700
    assert prob[ages == 60][0] == pytest.approx(6000 / 5 / total, abs=1e-15)
    assert prob[ages == 18][0] == pytest.approx(5500 / 5 / total, abs=1e-15)
    assert prob[ages == 97][0] == pytest.approx(200 / 5 / total, abs=1e-15)


def test_pregnancy_probability_by_hand():
    p = cohort.pregnancy_probability(np.array([17, 18, 27, 49, 50]), DEFAULT)
    # fertility is the broken line through the 5-year rates at the band midpoints (17.5: 0.020,
    # 22.5: 0.045, 27.5: 0.085, ..., 47.5: 0.001) and 0 at 50:
    # 18 -> 0.020 + 0.5/5 * 0.025 = 0.0225; 27 -> 0.045 + 4.5/5 * 0.040 = 0.081; 49 -> 0.001 * 1/2.5 = 0.0004
    assert p == pytest.approx([0.0, 0.0225 * 40 / 52, 0.081 * 40 / 52, 0.0004 * 40 / 52, 0.0], abs=1e-15)


def _gauss_smoothed_broken_line(x: float, xp, fp, sd: float) -> float:
    """The broken line through (xp, fp), constant outside, averaged over N(x, sd^2) by
    numerical quadrature: an independent evaluation of the closed form in smooth_interpolate."""
    from scipy import integrate

    f = lambda t: np.interp(t, xp, fp) * stats.norm.pdf(t, loc=x, scale=sd)  # noqa: E731
    pts = [p for p in xp if x - 12 * sd < p < x + 12 * sd]
    return integrate.quad(f, x - 12 * sd, x + 12 * sd, points=pts or None, limit=200, epsabs=1e-13)[0]


@pytest.mark.parametrize(("threshold", "cut"), [(1.0, 1.5), (1.99, 1.5), (0.999, 0.0), (12.0, 12.5)])
def test_reported_ferritin_cut_at_the_smallest_report(threshold, cut):
    # Reports are whole µg/L and at least 1 (FERRITIN_RESOLUTION = 1): a report <= 1 is the report 1,
    # which an unrounded value below 1.5 gets; no report is <= 0.999. Checked on the reports themselves.
    assert cohort.FERRITIN_RESOLUTION == 1.0
    assert cohort.reported_ferritin_cut(threshold) == cut
    x = np.array([cut - 0.01, cut + 0.01]) if cut else np.array([0.01, 0.49, 0.51, 7.0])
    assert (cohort.ferritin_as_reported(x) <= threshold).tolist() == ([True, False] if cut else [False] * 4)


def test_covariate_distribution_given_ages_is_conditional_on_each_age():
    # given ages (not necessarily whole), each age weighs 1/3; per age the sexes and states sum to 1;
    # men are never pregnant, nor are women of 60 (reproductive ages 18-49)
    d = cohort.covariate_distribution(DEFAULT, ages=np.array([20.0, 30.5, 60.0]))
    np.testing.assert_array_equal(d.ages, [20.0, 30.5, 60.0])
    assert d.age_prob.tolist() == pytest.approx([1 / 3] * 3, rel=1e-15, abs=0)
    np.testing.assert_allclose(d.cell_mass().sum(axis=(1, 2)), [1 / 3] * 3, rtol=1e-15, atol=0)
    np.testing.assert_array_equal(d.state_prob[:, 0, :], [[1.0, 0.0, 0.0, 0.0]] * 3)
    np.testing.assert_array_equal(d.state_prob[2, 1, :], [1.0, 0.0, 0.0, 0.0])
    assert 0.0 < d.state_prob[1, 1, 1:].sum() < 0.1  # some women of 30.5 are pregnant


def test_ferritin_parameters_by_quadrature():
    fer, sd = DEFAULT.ferritin, DEFAULT.age_curve.input_smoothing_sd
    ages = np.array([18.0, 40.0, 57.3, 60.0, 75.0, 99.0])
    for female, anchors, med, lsd in ((False, fer.male_anchor_ages, fer.male_median, fer.male_log_sd),
                                      (True, fer.female_anchor_ages, fer.female_median, fer.female_log_sd)):
        mu, s = cohort.ferritin_log_params(ages, np.full(ages.size, female), np.zeros(ages.size, dtype=int), DEFAULT)
        want_mu = [_gauss_smoothed_broken_line(a, anchors, np.log(med), sd) for a in ages]
        want_sd = [_gauss_smoothed_broken_line(a, anchors, lsd, sd) for a in ages]
        assert mu == pytest.approx(want_mu, abs=1e-10)
        assert s == pytest.approx(want_sd, abs=1e-10)
    # far from the anchors the published group values hold: men >= 60 (127 ug/L, log-SD 0.99) at 99,
    # men 20-59 (137, 0.76) at 18 (4.4 kernel SDs from the anchor at 40)
    mu, s = cohort.ferritin_log_params(np.array([18, 99]), np.array([False, False]), np.zeros(2, dtype=int), DEFAULT)
    assert np.exp(mu) == pytest.approx([137, 127], rel=1e-5, abs=0) and s == pytest.approx([0.76, 0.99], abs=1e-5)
    # pregnant women: the share below 15 ug/L is Mei 2011's iron deficiency by trimester
    mu, sd_ = cohort.ferritin_log_params(np.array([30] * 3), np.array([True] * 3), np.array([1, 2, 3]), DEFAULT)
    below = stats.lognorm.cdf(15, s=sd_, scale=np.exp(mu))
    assert below == pytest.approx([0.069, 0.143, 0.295], abs=1e-12)


def test_age_dependent_inputs_have_no_steps():
    # no input jumps anywhere between 18 and 99: over a step of 1e-6 years each moves by
    # at most its largest slope times 1e-6 (the old male log-SD jumped by 0.23 at 60)
    a = np.arange(18.0, 99.0, 0.01)
    h = 1e-6
    for female in (False, True):
        f = np.full(a.size, female)
        zero = np.zeros(a.size, dtype=int)
        mu0, sd0 = cohort.ferritin_log_params(a, f, zero, DEFAULT)
        mu1, sd1 = cohort.ferritin_log_params(a + h, f, zero, DEFAULT)
        assert np.max(np.abs(mu1 - mu0)) < 0.1 * h and np.max(np.abs(sd1 - sd0)) < 0.1 * h
    p0 = cohort.pregnancy_probability(a, DEFAULT)
    p1 = cohort.pregnancy_probability(a + h, DEFAULT)
    assert np.max(np.abs(p1 - p0)) < 0.01 * h


def test_clinically_significant_cutoff_by_hand():
    # Cases: 33.8% mild (1-10), 44.6% moderate (11-20), 21.6% severe (21-40). Clinically significant
    # share = 2.7 / 8.0 = 0.3375. Severe gives 0.216; 0.1215 more must come from the top of the
    # moderate band at 0.0446 per score: scores 19 and 20 give 0.0892, and 0.0323 of score 18
    # (a fraction 0.0323 / 0.0446 = 0.72422).
    s_star, frac = cohort.clinical_significance_cutoff(DEFAULT, 0.027 / 0.080)
    assert s_star == 18
    assert frac == pytest.approx((0.3375 - 0.216 - 0.0892) / 0.0446, abs=1e-12)
    # every case: all scores above 0 (no case scores 0), nothing of the score 0
    assert cohort.clinical_significance_cutoff(DEFAULT, 1.0) == (1, pytest.approx(1.0, rel=0, abs=1e-12))
    # a share outside (0, 1] cannot be reached: refused (1.05 used to give every case, 0 an IndexError)
    from rlsepi.errors import ParameterError

    for bad in (1.05, 0.0, -0.1, float("nan")):
        with pytest.raises(ParameterError, match=r"clinically significant share of cases must lie in \(0, 1\]"):
            cohort.clinical_significance_cutoff(DEFAULT, bad)


# --- the solved model, by brute-force enumeration ------------------------------------


def _genotype_combinations(params) -> list[tuple[float, float]]:
    genos = []
    for combo in itertools.product(range(3), repeat=len(params.loci)):
        prob, lp = 1.0, 0.0
        for g, locus in zip(combo, params.loci):
            q = locus.eaf
            prob *= [(1 - q) ** 2, 2 * q * (1 - q), q * q][g]
            lp += g * math.log(locus.odds_ratio)
        genos.append((prob, lp))
    return genos


def _brute_cells(model: cohort.OutcomeModel, params, age: float, genos) -> list[tuple[int, int, float, float]]:
    """(female, state, P(sex, state | age), P(RLS | age, sex, state)) by explicit enumeration of
    each of the 3**4 genotype combinations and ferritin above/below the threshold (lognormal CDF)."""
    fs = params.population.female_share
    p_preg = float(cohort.pregnancy_probability(np.array([age]), params)[0])
    tri_p = np.array(params.pregnancy.trimester_weeks) / sum(params.pregnancy.trimester_weeks)
    out = []
    for female in (0, 1):
        states = [(0, 1.0)] if not female else [(0, 1 - p_preg)] + [(k, p_preg * tri_p[k - 1]) for k in (1, 2, 3)]
        for state, sp in states:
            if sp == 0:
                continue
            mu, sd = cohort.ferritin_log_params(np.array([age]), np.array([bool(female)]), np.array([state]), params)
            # ferritin is stored to whole ug/L (round half to even): "reported <= 50" is
            # "unrounded < 50.5", by hand
            q_low = stats.lognorm.cdf(math.floor(params.ferritin.low_threshold) + 0.5, s=sd[0],
                                      scale=math.exp(mu[0]))
            base = (model.intercept + model.female * female
                    - model.age_curvature * ((age - model.age_peak) / 10) ** 2
                    + ([0.0] + list(model.trimester))[state])
            p = 0.0
            for gp, lp in genos:
                p += gp * (q_low * expit(base + lp + math.log(params.ferritin.low_or)) + (1 - q_low) * expit(base + lp))
            out.append((female, state, (fs if female else 1 - fs) * sp, p))
    return out


def _brute_at_age(model: cohort.OutcomeModel, params, age: float, genos=None) -> float:
    """E[P(RLS) | age] by brute force, at any real age."""
    cells = _brute_cells(model, params, age, genos or _genotype_combinations(params))
    return sum(w * p for *_, w, p in cells) / sum(w for *_, w, _ in cells)


def _brute_force(model: cohort.OutcomeModel, params) -> dict[str, float]:
    """Expected marginal figures by explicit enumeration over every whole year of age."""
    ages, age_p = cohort.age_distribution(params)
    genos = _genotype_combinations(params)
    acc: dict[str, list[float]] = {}

    def add(key, w, p):
        s = acc.setdefault(key, [0.0, 0.0])
        s[0] += w * p
        s[1] += w

    for i, age in enumerate(ages):
        for female, state, w, p in _brute_cells(model, params, float(age), genos):
            w = age_p[i] * w
            add("all", w, p)
            add("female" if female else "male", w, p)
            add(f"age{age}", w, p)
            if state:
                add(f"t{state}", w, p)
    mean = {k: v[0] / v[1] for k, v in acc.items()}
    odds = lambda p: p / (1 - p)  # noqa: E731
    return {
        "prevalence": mean["all"],
        "female_male_or": odds(mean["female"]) / odds(mean["male"]),
        "by_age": np.array([mean[f"age{a}"] for a in ages]),
        **{f"pregnancy_trimester{k}": mean[f"t{k}"] for k in (1, 2, 3)},
    }


def _check_peak_by_brute_force(model, params, peak: float) -> None:
    genos = _genotype_combinations(params)
    at = lambda a: _brute_at_age(model, params, a, genos)  # noqa: E731
    p0 = at(peak)
    # the expected single-year curve is highest at the peak: lower 0.01 and 1 year either side
    for d in (0.01, 1.0):
        assert at(peak - d) < p0 and at(peak + d) < p0
    # and its slope there is 0: central differences of P on +-1e-3 years, against the slope 0.5
    # years away (a peak off by e would leave a slope of about e / 0.5 times the latter)
    slope = lambda a, h=1e-3: (at(a + h) - at(a - h)) / (2 * h)  # noqa: E731
    assert abs(slope(peak)) < 1e-5 * abs(slope(peak + 0.5))
    # the young-age ratio
    young = params.age_curve.young_age
    assert at(young) / p0 == pytest.approx(params.age_curve.young_to_peak_ratio, abs=1e-9)


def test_solved_model_hits_every_target_in_expectation():
    got = _brute_force(MODEL, DEFAULT)
    t = DEFAULT.targets
    assert got["prevalence"] == pytest.approx(t.prevalence.value, abs=1e-10)
    assert got["female_male_or"] == pytest.approx(t.female_male_or.value, abs=1e-10)
    for k in (1, 2, 3):
        assert got[f"pregnancy_trimester{k}"] == pytest.approx(t.pregnancy[k - 1].value, abs=1e-10)
    assert MODEL.clinically_significant_share * got["prevalence"] == pytest.approx(0.027, abs=1e-10)
    _check_peak_by_brute_force(MODEL, DEFAULT, 60.0)


def test_expected_single_year_curve_has_one_maximum_at_the_target():
    ages, p = cohort.expected_prevalence_by_age(MODEL)
    top = int(np.argmax(p))
    assert ages[top] == 60
    d = np.diff(p)
    assert (d[:top] > 0).all() and (d[top:] < 0).all()  # rises to 60, falls after: one maximum
    # also between whole years: the curve on a 0.05-year grid changes direction once
    fine = np.arange(18, 99.001, 0.05)
    _, pf = cohort.expected_prevalence_by_age(MODEL, ages=fine)
    turns = np.nonzero(np.diff(np.sign(np.diff(pf))))[0]
    assert turns.size == 1 and abs(fine[turns[0] + 1] - 60) <= 0.05
    # peaked, not a table-top: 5 years either side at least 1.5% below the top, 15 years 10% below
    at = dict(zip(ages.tolist(), p))
    assert max(at[55], at[65]) < 0.985 * at[60] and max(at[45], at[75]) < 0.90 * at[60]
    assert at[70] < at[60] and at[80] < at[70]  # falling after 70
    assert cohort.expected_figures(MODEL)["peak_age"] == pytest.approx(60.0, abs=1e-8)


def _pure_age_model(age_peak: float) -> cohort.OutcomeModel:
    """MODEL with every effect but age set to 0: p(age) = expit(b0 - gamma ((age - age_peak) / 10)^2)
    for every person, whatever their sex, pregnancy, ferritin or genotypes."""
    return dataclasses.replace(MODEL, female=0.0, trimester=(0.0, 0.0, 0.0), ferritin_low=0.0,
                               loci=tuple((rsid, 0.0) for rsid, _ in MODEL.loci), age_peak=age_peak)


@pytest.mark.parametrize(("age_peak", "expected"), [(43.7, 43.7), (18.6, 18.6), (12.0, 18.0), (120.0, 99.0)])
def test_peak_age_of_a_pure_age_curve_by_hand(age_peak, expected):
    # the curve over the ages 18-99 is highest at age_peak, or at the end nearer to it when age_peak
    # lies outside (18.6: the best whole year is 19, the second of the ages)
    assert cohort.expected_figures(_pure_age_model(age_peak))["peak_age"] == pytest.approx(expected, rel=0, abs=1e-8)


def test_figures_of_a_pure_age_curve_by_hand():
    m = _pure_age_model(43.7)
    f = cohort.expected_figures(m)

    def logit(a: float) -> float:
        return m.intercept - m.age_curvature * ((a - 43.7) / 10) ** 2

    young, peak = DEFAULT.age_curve.young_age, DEFAULT.targets.peak_age.value  # where the solver looks
    assert f["prevalence_at_young_age"] == pytest.approx(expit(logit(young)), rel=1e-12, abs=0)
    assert f["prevalence_at_peak_age"] == pytest.approx(expit(logit(peak)), rel=1e-12, abs=0)
    # d/da of the quadratic log-odds: -2 gamma (a - age_peak) / 100; a central difference over +-0.001
    # years, exact for a quadratic but for the rounding of logit values near -3 (about 1e-11 relative)
    assert f["logit_slope_at_peak"] == pytest.approx(-2 * m.age_curvature * (peak - 43.7) / 100, rel=1e-8, abs=0)
    assert f["female_male_or"] == pytest.approx(1.0, rel=1e-12, abs=0)
    # 5-year bands: squared distances from 43.7 sum to 24.45 over 40-44 and 64.45 over 45-49 (ESP 2013
    # weighs their years alike), more elsewhere: the highest band is 40
    assert f["peak_age_band"] == 40.0


def test_solver_residuals_are_at_machine_precision():
    # The solver's own residual is about 1e-16; the stored model rounds each coefficient to
    # MODEL_DIGITS = 10 significant digits (the same on every CPU), which moves each figure by
    # about 1e-11 (|d figure / d coefficient| <= 1 times a relative 5e-11). So 1e-10, not 1e-12.
    assert cohort.MODEL_DIGITS == 10
    tol = 1e-10
    f = cohort.expected_figures(MODEL)
    t = DEFAULT.targets
    assert abs(f["prevalence"] - t.prevalence.value) < tol
    assert abs(f["female_male_or"] - t.female_male_or.value) < tol
    for k in (1, 2, 3):
        assert abs(f[f"pregnancy_trimester{k}"] - t.pregnancy[k - 1].value) < tol
    assert abs(f["logit_slope_at_peak"]) < tol
    assert abs(f["prevalence_at_young_age"] / f["prevalence_at_peak_age"]
               - DEFAULT.age_curve.young_to_peak_ratio) < tol


@pytest.mark.parametrize("peak", [55.0, 66.5])
def test_solver_follows_changed_targets(peak):
    params = parameters_from_mapping({"targets": {"prevalence": {"value": 0.095}, "female_male_or": {"value": 1.6},
                                                  "peak_age": {"value": peak}}})
    model = cohort.solve_model(params)
    got = _brute_force(model, params)
    assert got["prevalence"] == pytest.approx(0.095, abs=1e-10)
    assert got["female_male_or"] == pytest.approx(1.6, abs=1e-10)
    _check_peak_by_brute_force(model, params, peak)


def test_unreachable_peak_is_refused_by_name():
    # a nearly flat age curve (prevalence at 25 is 90% of the peak) has a zero slope at 60, but
    # the higher maximum lies elsewhere: refused, naming the parameters, not silently wrong
    from rlsepi.errors import ParameterError

    # (a nearly flat curve, young_to_peak_ratio 0.9, is now outside the parameter's range: refused by name)
    with pytest.raises(ParameterError, match="young_to_peak_ratio"):
        parameters_from_mapping({"age_curve": {"young_to_peak_ratio": 0.9}})
    # a peak at 50 is within every range, but the covariates' own age trends put the maximum elsewhere
    params = parameters_from_mapping({"targets": {"peak_age": {"value": 50, "low": 40, "high": 60}}})
    with pytest.raises(ParameterError, match="highest at age .* not at 'targets.peak_age.value' = 50"):
        cohort.solve_model(params)


def test_conditional_effects_differ_from_marginal_targets():
    # ferritin and pregnancy carry part of the female excess: with the conditional sex effect set
    # to 0, the expected crude OR is still above 1 (women have lower ferritin and can be pregnant),
    # but below the target; the solved conditional effect supplies exactly the rest
    no_sex = dataclasses.replace(MODEL, female=0.0)
    crude_without = cohort.expected_figures(no_sex)["female_male_or"]
    assert 1.0 < crude_without < DEFAULT.targets.female_male_or.value
    assert cohort.expected_figures(MODEL)["female_male_or"] == pytest.approx(
        DEFAULT.targets.female_male_or.value, rel=1e-9, abs=0)
    assert 0.0 < MODEL.female < math.log(DEFAULT.targets.female_male_or.value)


# --- simulated cohorts against the targets --------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_cohorts_of_200k_reproduce_the_population_targets(seed):
    # At n = 200,000 the chance that any of these misses its band is below 0.1% per seed
    # (the local peak estimate has SD about 1.1 years at this size, so it never leaves 50-70).
    df = cohort.simulate(200_000, rng=seed)
    check = check_targets(df, DEFAULT)
    population = [r for r in check.results if not r.name.startswith("pregnancy")]
    assert all(r.passed for r in population), check.summary()


@pytest.mark.parametrize("seed", [11, 12])
def test_cohorts_of_1m_reproduce_every_target(seed):
    # Pregnancy targets need ~3,000 pregnant women per trimester: at 200,000 people there are
    # ~620, the SE of 22% is 1.7 points, and the +-3 point band misses in ~11% of seeds.
    df = cohort.simulate(1_000_000, rng=seed)
    check = check_targets(df, DEFAULT)
    assert check.passed, check.summary()


def test_monte_carlo_agrees_with_the_expectation():
    df = cohort.simulate(1_000_000, rng=99)
    exp = cohort.expected_figures(MODEL)
    n = len(df)
    for col, key in (("rls", "prevalence"), ("rls_clinically_significant", "clinically_significant")):
        p = exp[key]
        assert abs(df[col].mean() - p) < 4 * math.sqrt(p * (1 - p) / n)


def test_cohort_structure():
    df = cohort.simulate(100_000, rng=3)
    assert df["person_id"].is_unique and df["person_id"].iloc[0] == 1
    assert df["age"].between(18, 99).all()
    preg = df["pregnant"]
    assert (df.loc[preg, "sex"] == "female").all() and df.loc[preg, "age"].between(18, 49).all()
    assert df.loc[preg, "trimester"].isin([1, 2, 3]).all() and df.loc[~preg, "trimester"].isna().all()
    assert (df["ferritin"] > 0).all()
    assert (df["rls_clinically_significant"] <= df["rls"]).all()
    assert df.loc[df["rls"], "irls_score"].between(1, 40).all() and df.loc[~df["rls"], "irls_score"].isna().all()
    assert (df.loc[df["rls_clinically_significant"], "irls_score"] >= 18).all()
    # pregnancy by single year of age, at the hand values of test_pregnancy_probability_by_hand
    # (18: 0.0225 x 40/52 of about 680 women; 27: 0.081 x 40/52 of about 2,200): exact binomial tests
    women = df[df["sex"] == "female"]
    for age, p in ((18, 0.0225 * 40 / 52), (27, 0.081 * 40 / 52)):
        at = women.loc[women["age"] == age, "pregnant"]
        assert stats.binomtest(int(at.sum()), len(at), p).pvalue > 1e-4, age
    for locus in DEFAULT.loci:
        g = df[locus.rsid]
        assert g.dtype == np.int8 and g.isin([0, 1, 2]).all()
        # Hardy-Weinberg at the published frequency: chi-square goodness of fit, 2 df
        q = locus.eaf
        expected = len(df) * np.array([(1 - q) ** 2, 2 * q * (1 - q), q * q])
        observed = np.bincount(g, minlength=3)
        assert stats.chisquare(observed, expected).pvalue > 1e-4


def test_written_cohort_declares_which_columns_may_be_missing(tmp_path):
    # the Parquet schema says what readers (pandas, DuckDB, Spark, R arrow) may rely on: only the trimester
    # (not pregnant) and the IRLS score (not a case) are ever missing; every other column is required
    import pyarrow.parquet as pq

    cohort.write_cohort(tmp_path / "c.parquet", 50, seed=1)
    schema = pq.read_schema(tmp_path / "c.parquet")
    loci = [locus.rsid for locus in DEFAULT.loci]
    assert schema.names == ["person_id", "age", "sex", "pregnant", "trimester", "ferritin", *loci, "rls",
                            "rls_clinically_significant", "irls_score"]
    assert [name for name in schema.names if schema.field(name).nullable] == ["trimester", "irls_score"]
    assert [str(schema.field(n).type) for n in ("person_id", "age", "sex", "pregnant", "trimester", "ferritin")] == [
        "int64", "int16", "dictionary<values=string, indices=int8, ordered=0>", "bool", "int8", "double"]


def test_severity_bands_follow_hogl_2005():
    df = cohort.simulate(300_000, rng=8)
    s = df.loc[df["rls"], "irls_score"].astype(int)
    n = len(s)
    for lo, hi, share in ((1, 10, 0.338), (11, 20, 0.446), (21, 40, 0.216)):
        got = s.between(lo, hi).mean()
        assert abs(got - share) < 4 * math.sqrt(share * (1 - share) / n)


# --- recovery of the true coefficients ------------------------------------------------


def _design(df: pd.DataFrame) -> pd.DataFrame:
    x = pd.DataFrame({
        "const": 1.0,
        "female": (df["sex"] == "female").astype(float),
        "age": df["age"].astype(float),
        "age2": df["age"].astype(float) ** 2,
        "low_ferritin": (df["ferritin"] <= 50).astype(float),
    })
    tri = df["trimester"].fillna(0).astype(int)
    for k in (1, 2, 3):
        x[f"trimester{k}"] = (tri == k).astype(float)
    for locus in DEFAULT.loci:
        x[locus.rsid] = df[locus.rsid].astype(float)
    return x


def _true_coefficients(m: cohort.OutcomeModel) -> pd.Series:
    # -g((a - c)/10)^2 = -g c^2/100 + (2 g c/100) a - (g/100) a^2
    g, c = m.age_curvature, m.age_peak
    return pd.Series({
        "const": m.intercept - g * c * c / 100, "female": m.female, "age": 2 * g * c / 100, "age2": -g / 100,
        "low_ferritin": m.ferritin_low, **{f"trimester{k + 1}": b for k, b in enumerate(m.trimester)},
        **dict(m.loci),
    })


def _fit(df: pd.DataFrame):
    return sm.Logit(df["rls"].astype(float), _design(df)).fit(disp=0, method="newton", maxiter=50)


def test_refit_recovers_the_true_coefficients():
    df = cohort.simulate(400_000, rng=21)
    res = _fit(df)
    truth = _true_coefficients(MODEL)
    # 13 coefficients: each must lie in its Bonferroni-adjusted (simultaneous 95%) interval
    z = stats.norm.ppf(1 - 0.05 / (2 * len(truth)))
    dev = (res.params[truth.index] - truth).abs() / res.bse[truth.index]
    assert (dev < z).all(), dev.sort_values().tail(3)


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("RLSEPI_SLOW") != "1", reason="opt-in validation run: make validate")
def test_confidence_intervals_cover_at_the_nominal_rate():
    reps, n = 200, 100_000
    truth = _true_coefficients(MODEL)
    covered = pd.DataFrame(0, index=range(reps), columns=truth.index)
    for r in range(reps):
        res = _fit(cohort.simulate(n, rng=10_000 + r))
        lo, hi = res.conf_int().loc[truth.index].T.values
        covered.loc[r] = ((lo <= truth.values) & (truth.values <= hi)).astype(int)
    rate = covered.mean()
    mcse = math.sqrt(0.95 * 0.05 / reps)
    print(pd.DataFrame({"coverage": rate, "mcse": mcse}))
    assert ((rate - 0.95).abs() < 3.5 * mcse).all(), rate


# --- determinism ----------------------------------------------------------------------


def test_same_seed_same_cohort_and_different_seed_different_cohort():
    a = cohort.simulate(70_000, rng=5)
    b = cohort.simulate(70_000, rng=5)
    c = cohort.simulate(70_000, rng=6)
    pd.testing.assert_frame_equal(a, b)
    assert not a["ferritin"].equals(c["ferritin"])


def test_prefix_property_blocks_do_not_depend_on_n():
    # block i draws from child i of the seed, so a smaller cohort is a prefix of a larger one
    small = cohort.simulate(BLOCK := cohort.BLOCK_SIZE + 10, rng=4)
    big = cohort.simulate(3 * BLOCK, rng=4)
    pd.testing.assert_frame_equal(small.iloc[: cohort.BLOCK_SIZE], big.iloc[: cohort.BLOCK_SIZE])


def test_generator_and_seed_sequence_are_accepted():
    a = cohort.simulate(1000, rng=np.random.SeedSequence(9))
    b = cohort.simulate(1000, rng=9)
    pd.testing.assert_frame_equal(a, b)
    g1 = cohort.simulate(1000, rng=np.random.default_rng(3))
    g2 = cohort.simulate(1000, rng=np.random.default_rng(3))
    pd.testing.assert_frame_equal(g1, g2)
    # None (the default, SPEC 7): fresh entropy from the operating system, a different cohort each time
    a, b = cohort.seed_sequence(None), cohort.seed_sequence(None)
    assert isinstance(a, np.random.SeedSequence) and a.entropy != b.entropy and a.spawn_key == ()
    assert not cohort.simulate(1000)["ferritin"].equals(cohort.simulate(1000)["ferritin"])


def test_simulate_follows_changed_population_parameters():
    # the people themselves follow the parameters (not only the solved model): ages 40-80, 70% women
    params = parameters_from_mapping({"population": {"min_age": 40, "max_age": 80, "female_share": 0.7}})
    df = cohort.simulate(20_000, rng=4, params=params)
    assert (df["age"].min(), df["age"].max()) == (40, 80)
    women = int((df["sex"] == "female").sum())
    assert stats.binomtest(women, len(df), 0.7).pvalue > 1e-4


@pytest.mark.parametrize("root", [np.random.SeedSequence(9), np.random.SeedSequence(9, pool_size=8),
                                  np.random.SeedSequence(9).spawn(3)[2]])
def test_block_i_draws_from_the_ith_child_of_the_seed(root):
    # as the module promises: the stream of block i is numpy's own i-th child (SeedSequence.spawn),
    # whatever the seed's pool size or spawn key, and the seed itself is left unspawned
    children = root.spawn(3)
    fresh = np.random.SeedSequence(root.entropy, spawn_key=root.spawn_key, pool_size=root.pool_size)
    for i, child in enumerate(children):
        block = cohort._block_seed(fresh, i)
        assert block.generate_state(8).tolist() == child.generate_state(8).tolist()
    assert fresh.n_children_spawned == 0


@pytest.mark.parametrize("bad", [0, -5, 2.5, True])
def test_bad_n_is_refused(bad):
    from rlsepi.errors import RLSEpiError

    with pytest.raises(RLSEpiError, match="positive whole number"):
        cohort.simulate(bad, rng=1)


# --- worker processes -------------------------------------------------------------------


def test_workers_make_only_the_blocks_of_the_cohort(capfd):
    # 150,000 people are 2 full blocks of 65,536 and one of 150,000 - 131,072 = 18,928 people.
    # A worker asked for a 4th block (people 196,609 onwards) fails with a traceback on stderr.
    one = list(cohort.iter_blocks(150_000, rng=3))
    two = list(cohort.iter_blocks(150_000, rng=3, workers=2))
    assert [b.num_rows for b in two] == [65_536, 65_536, 18_928]
    assert len(one) == 3 and all(a.equals(b) for a, b in zip(one, two, strict=True))
    assert capfd.readouterr().err == ""


def test_one_worker_makes_the_blocks_in_this_process(monkeypatch):
    # the default (workers=1) starts no process: validate and power simulate call iter_blocks from their
    # own worker processes, which are daemons and may not start processes of their own
    import multiprocessing

    def no_process(*args, **kwargs):
        raise AssertionError("a worker process was started")

    monkeypatch.setattr(multiprocessing, "get_context", no_process)
    assert [b.num_rows for b in cohort.iter_blocks(cohort.BLOCK_SIZE + 5, rng=1)] == [cohort.BLOCK_SIZE, 5]
    assert [b.num_rows for b in cohort.iter_blocks(cohort.BLOCK_SIZE + 5, rng=1, workers=1)] == [cohort.BLOCK_SIZE, 5]


def test_an_abandoned_block_generator_does_not_stop_python_from_exiting(tmp_path):
    # the workers wait for the next block number; unless they are daemons, Python's exit
    # joins them and waits for ever
    import subprocess
    import sys

    code = ("from rlsepi import cohort\n"
            "blocks = cohort.iter_blocks(300_000, rng=1, workers=2)\n"
            "print(next(blocks).num_rows)\n")
    here = os.path.dirname(os.path.dirname(cohort.__file__))  # the rlsepi under test, not the working directory's
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([here, os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60, env=env,
                       cwd=tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (0, "65536\n", "")
