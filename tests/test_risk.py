"""Tests of rlsepi.risk (individual risk), rlsepi.risk_models (nested logistic models) and
rlsepi.risk_validate (ADEMP simulation study).

Known answers come from independent sources: the marginal figures the generating model was
solved to reproduce (rlsepi.cohort.expected_figures, a separate code path), R's glm and pROC
(tests/reference/risk/, with the R script that made them), and Monte Carlo simulation.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from rlsepi import cli, cohort, risk, risk_models, risk_validate
from rlsepi.errors import DataValidationError
from rlsepi.io import read_cohort, to_jsonable
from rlsepi.parameters import DEFAULT, EXTENDED_LOCI


@pytest.fixture(scope="module")
def truth() -> cohort.OutcomeModel:
    return cohort.solve_model(DEFAULT)


@pytest.fixture(scope="module")
def population() -> object:
    return cohort.simulate(4000, rng=20241122)


# --- individual risk: exact averaging --------------------------------------------------


def test_everything_unknown_gives_the_prevalence(truth):
    figures = cohort.expected_figures(truth)
    r = risk.individual_risk()
    assert r.probability == pytest.approx(figures["prevalence"], rel=1e-11, abs=0)
    assert r.probability == pytest.approx(DEFAULT.targets.prevalence.value, rel=1e-9, abs=0)  # the solver's residual
    assert set(r.averaged_over) == {"age", "sex", "pregnancy", "ferritin", "genotypes"}


@pytest.mark.parametrize("k", [1, 2, 3])
def test_trimester_alone_gives_the_trimester_prevalence(truth, k):
    # conditioning on the trimester re-weights age (and ferritin) exactly as the solver did
    figures = cohort.expected_figures(truth)
    r = risk.individual_risk(trimester=k)
    assert r.probability == pytest.approx(figures[f"pregnancy_trimester{k}"], rel=1e-11, abs=0)
    assert r.inputs["sex"] is None and r.inputs["pregnant"] is True


def test_all_known_equals_the_generating_linear_predictor(truth, population):
    rows = population.iloc[:25]
    eta = truth.linear_predictor(rows)
    for (_, row), e in zip(rows.iterrows(), eta):
        tri = None if pd.isna(row["trimester"]) else int(row["trimester"])
        r = risk.individual_risk(
            age=int(row["age"]), sex=str(row["sex"]), pregnant=bool(row["pregnant"]), trimester=tri,
            ferritin=float(row["ferritin"]),
            genotypes={rs: int(row[rs]) for rs, _ in truth.loci},
        )
        assert r.probability == pytest.approx(1 / (1 + math.exp(-e)), rel=1e-12, abs=0)
        assert r.averaged_over == () and r.ignored == ()  # the generating model uses every input


def test_average_for_age_and_sex_is_the_risk_given_only_age_and_sex():
    """The average beside a person's risk is P(RLS | age, sex): the risk of someone of whom
    only age and sex are known, and, by total probability over the pregnancy states of
    women of 30 (not pregnant, trimester 1-3), sum_k m_k P(RLS | 30, female, k) / sum_k m_k
    with m_k the population mass of each state."""
    geno = {"rs2300478": 2, "rs9357271": 1, "rs1975197": 0, "rs4626664": 1}
    dist = cohort.covariate_distribution(DEFAULT)
    m = dist.cell_mass()[int(np.flatnonzero(dist.ages == 30)[0]), 1, :]
    by_state = [risk.individual_risk(age=30, sex="female", pregnant=False).probability] + [
        risk.individual_risk(age=30, sex="female", trimester=k).probability for k in (1, 2, 3)]
    total = float(np.dot(m, by_state) / m.sum())
    assert m[1:].min() > 0  # every trimester has people at 30
    only = risk.individual_risk(age=30, sex="female")
    assert only.probability == pytest.approx(total, rel=1e-12, abs=0)
    for person in ({}, {"ferritin": 12.0, "genotypes": geno}, {"trimester": 1}, {"pregnant": False}):
        r = risk.individual_risk(age=30, sex="female", **person)
        assert r.average_probability == pytest.approx(total, rel=1e-12, abs=0), person
        assert r.relative_risk == pytest.approx(r.probability / total, rel=1e-12, abs=0)


def test_unknown_ferritin_is_summed_over_the_reported_bins_by_hand():
    """A person whose only unknown is ferritin, under a ferritin threshold of 1.2 µg/L: the
    cohort reports whole µg/L, so "reported <= 1.2" is "unrounded < 1.5" (half a unit above
    the whole 1), and the risk is, by hand,
    P = w expit(eta + b_low) + (1 - w) expit(eta) with w = Phi((ln 1.5 - mu) / sigma),
    mu and sigma the log-ferritin distribution of the person's cell. The effect must be
    read inside the bin below 1.5, which a representative point above 1.2 would miss."""
    import dataclasses as dc

    params = dc.replace(DEFAULT, ferritin=dc.replace(DEFAULT.ferritin, low_threshold=1.2))
    model = cohort.solve_model(params)
    dist = cohort.covariate_distribution(params)
    geno = {"rs2300478": 1, "rs9357271": 0, "rs1975197": 2, "rs4626664": 1}
    # a woman of 30 in trimester 3: among the lowest ferritin of the population (median 25, w = 0.0015)
    person = pd.DataFrame([{"age": 30, "sex": "female", "pregnant": True, "trimester": 3, "ferritin": 100.0, **geno}])
    eta = float(model.linear_predictor(person)[0])  # ferritin 100: above the threshold
    a = int(np.flatnonzero(dist.ages == 30)[0])
    mu, sigma = dist.fer_mu[a, 1, 3], dist.fer_sigma[a, 1, 3]
    w = stats.norm.cdf((math.log(1.5) - mu) / sigma)
    want = w / (1 + math.exp(-(eta + model.ferritin_low))) + (1 - w) / (1 + math.exp(-eta))
    got = risk.individual_risk(age=30, sex="female", trimester=3, genotypes=geno, params=params)
    assert got.averaged_over == ("ferritin",) and w > 1e-3
    assert got.probability == pytest.approx(want, rel=1e-12, abs=0)


@pytest.mark.parametrize("age, sex, trimester", [(18, "female", 1), (49, "female", 3), (99, "male", None),
                                                  (18, "male", None), (99, "female", None)])
def test_risk_at_the_edges_of_the_age_ranges(truth, age, sex, trimester):
    # the adult range 18-99 and the reproductive ages 18-49 include both ends (parameters.py)
    geno = {"rs2300478": 1, "rs9357271": 2, "rs1975197": 0, "rs4626664": 1}
    person = pd.DataFrame([{"age": age, "sex": sex, "pregnant": trimester is not None, "trimester": trimester,
                            "ferritin": 60.0, **geno}])
    eta = float(truth.linear_predictor(person)[0])
    r = risk.individual_risk(age=age, sex=sex, trimester=trimester, ferritin=60.0, genotypes=geno)
    assert r.probability == pytest.approx(1 / (1 + math.exp(-eta)), rel=1e-12, abs=0)


def test_inputs_as_understood():
    """The inputs a result reports (and the JSON output writes), typed from the rules: sex
    codes f/m, alleles as effect-allele counts (rs2300478 G/T, effect G), pregnancy known to be
    False for a man or a woman past the reproductive ages, unknown (None) for a woman of 45."""
    r = risk.individual_risk(age=45, sex="F", genotypes={"rs2300478": "GT", "rs9357271": 2})
    assert r.inputs == {"age": 45.0, "sex": "female", "pregnant": None, "trimester": None, "ferritin": None,
                        "genotypes": {"rs2300478": 1, "rs9357271": 2}}
    assert r.statement.endswith("out of 100 women aged 45.")
    assert r.to_dict()["inputs"]["genotypes"] == {"rs2300478": 1, "rs9357271": 2}
    man = risk.individual_risk(age=60, sex="m", ferritin=80)
    assert (man.inputs["sex"], man.inputs["pregnant"], man.inputs["ferritin"]) == ("male", False, 80.0)
    assert risk.individual_risk(age=60, sex="female").inputs["pregnant"] is False
    assert risk.individual_risk(trimester=2).inputs["pregnant"] is True


def test_individual_risks_average_to_the_prevalence(population):
    """Calibration: with a random subset of each person's inputs hidden, the individual risks
    of a simulated population average to the prevalence, to Monte Carlo error."""
    rng = np.random.default_rng(5)
    df = population.iloc[:2000]
    loci = [locus.rsid for locus in DEFAULT.loci]
    risks = []
    for _, row in df.iterrows():
        hide = rng.random(5) < 0.5
        tri = None if not bool(row["pregnant"]) else int(row["trimester"])
        kwargs = {
            "age": None if hide[0] else int(row["age"]),
            "sex": None if hide[1] else str(row["sex"]),
            "pregnant": None if hide[2] else bool(row["pregnant"]),
            "trimester": None if hide[2] else tri,
            "ferritin": None if hide[3] else float(row["ferritin"]),
            "genotypes": {rs: int(row[rs]) for rs in loci if not (hide[4] and rs in loci[:2])},
        }
        risks.append(risk.individual_risk(**kwargs).probability)
    risks = np.array(risks)
    se = risks.std(ddof=1) / math.sqrt(risks.size)
    assert abs(risks.mean() - DEFAULT.targets.prevalence.value) < 4 * se
    # and the observed cases of the same people (binomial error added)
    obs = df["rls"].mean()
    assert abs(risks.mean() - obs) < 4 * math.sqrt(se**2 + obs * (1 - obs) / len(df))


def test_average_for_age_and_sex_matches_the_simulated_cohort(truth):
    df = cohort.simulate(60_000, rng=11)
    sel = (df["sex"] == "female") & df["age"].between(50, 54)
    sim = 1 / (1 + np.exp(-truth.linear_predictor(df[sel])))
    exact = np.mean([risk.individual_risk(age=a, sex="female").average_probability for a in range(50, 55)])
    # ages 50-54 carry equal weight in the ESP band, so the plain mean is the band average
    assert exact == pytest.approx(sim.mean(), abs=4 * sim.std() / math.sqrt(sim.size))


def test_prs_percentile_matches_simulated_scores(population):
    weights = {locus.rsid: locus.weight for locus in DEFAULT.loci}
    g = {"rs2300478": 1, "rs9357271": 2, "rs1975197": 0, "rs4626664": 1}
    r = risk.individual_risk(sex="male", age=50, genotypes=g)
    score = sum(weights[k] * v for k, v in g.items())
    assert r.prs == pytest.approx(score, rel=1e-13, abs=0)
    sim = sum(weights[k] * population[k].to_numpy(float) for k in weights)
    emp = 100 * (np.mean(sim < score - 1e-9) + 0.5 * np.mean(np.abs(sim - score) <= 1e-9))
    assert r.prs_percentile == pytest.approx(emp, abs=4 * 100 * math.sqrt(0.25 / len(sim)))
    assert r.prs_z == pytest.approx((score - sim.mean()) / sim.std(), abs=0.1)


@settings(max_examples=40, deadline=None)
@given(age=st.integers(18, 99), female=st.booleans(), ferritin=st.floats(1.0, 2000.0),
       g=st.lists(st.integers(0, 2), min_size=4, max_size=4), known=st.lists(st.booleans(), min_size=4, max_size=4))
def test_risk_invariants(age, female, ferritin, g, known):
    """Probabilities lie in (0, 1); with everything else fixed, one more risk allele or a
    ferritin at or below the threshold never lowers the risk (all true effects are positive)."""
    loci = [locus.rsid for locus in DEFAULT.loci]
    geno = {rs: c for rs, c, k in zip(loci, g, known) if k}
    sex = "female" if female else "male"
    r = risk.individual_risk(age=age, sex=sex, ferritin=ferritin, genotypes=geno)
    assert 0 < r.probability < 1 and 0 < r.average_probability < 1
    assert r.relative_risk == pytest.approx(r.probability / r.average_probability)
    low = risk.individual_risk(age=age, sex=sex, ferritin=min(ferritin, 40.0), genotypes=geno)
    assert low.probability >= r.probability - 1e-12
    rs = loci[0]
    if geno.get(rs, 0) < 2 and rs in geno:
        more = risk.individual_risk(age=age, sex=sex, ferritin=ferritin, genotypes={**geno, rs: geno[rs] + 1})
        assert more.probability > r.probability


def test_genotype_parsing():
    assert risk.parse_genotype("rs2300478", "GT") == 1
    assert risk.parse_genotype("rs2300478", "tg") == 1
    assert risk.parse_genotype("rs2300478", "G/G") == 2
    assert risk.parse_genotype("rs2300478", " t|t ") == 0
    assert risk.parse_genotype("rs2300478", "1") == 1
    assert risk.parse_genotype("rs9357271", "CC") == 0
    assert risk.parse_genotype("rs4626664", 2) == 2
    assert risk.parse_genotype("rs4626664", np.int64(0)) == 0
    # the other strand of a G/T variant: C/A, read by complement
    assert risk.parse_genotype("rs2300478", "CA") == 1
    assert risk.parse_genotype("rs2300478", "AA") == 0
    # a variant whose other allele is not verified (TOX3, effect G): any other base is "other"
    ext = dataclasses.replace(DEFAULT, loci=EXTENDED_LOCI)
    assert risk.parse_genotype("rs3104767", "GC", params=ext) == 1
    assert risk.parse_genotype("rs3104767", "GG", params=ext) == 2
    assert risk.parse_genotype("rs3104767", "TA", params=ext) == 0
    with pytest.raises(DataValidationError, match=r"^genotype 'GX' for rs3104767 is not two allele letters; "
                                                  r"give e.g. GG$"):
        risk.parse_genotype("rs3104767", "GX", params=ext)
    with pytest.raises(DataValidationError, match=r"^genotype count for rs2300478 must be 0, 1 or 2, got 3$"):
        risk.parse_genotype("rs2300478", 3)
    with pytest.raises(DataValidationError, match=r"^genotype 'GTT' for rs2300478 is not two allele letters; "
                                                  r"give e.g. GT$"):
        risk.parse_genotype("rs2300478", "GTT")
    # an A/T variant cannot be read from the other strand
    at = (dataclasses.replace(DEFAULT.loci[0], effect_allele="A", other_allele="T"),)
    with pytest.raises(DataValidationError, match=r"^genotype 'CG' for rs2300478 has alleles that are not this "
                                                  r"variant's; its alleles are A/T \(an A/T or C/G variant cannot be "
                                                  r"read from the other strand\)$"):
        risk.parse_genotype("rs2300478", "CG", params=dataclasses.replace(DEFAULT, loci=at))


# each message typed in full from the rules (ages 18-99, pregnancy 18-49, the default score)
@pytest.mark.parametrize("kwargs, message", [
    ({"age": 17}, "age 17 is outside the adult range of the model (18-99 years)"),
    ({"age": 100}, "age 100 is outside the adult range of the model (18-99 years)"),
    ({"age": float("nan")}, "age nan is outside the adult range of the model (18-99 years)"),
    ({"sex": "other"}, "sex must be 'female' or 'male', got 'other'"),
    ({"sex": "male", "pregnant": True}, "pregnancy was given for a man; pregnancy applies to women only"),
    ({"sex": "m", "trimester": 2}, "pregnancy was given for a man; pregnancy applies to women only"),
    ({"trimester": 0}, "trimester must be 1, 2 or 3, got 0"),
    ({"age": 58, "pregnant": True}, "pregnancy at age 58 is outside the model's reproductive ages (18-49)"),
    ({"age": 17.5, "trimester": 1}, "age 17.5 is outside the adult range of the model (18-99 years)"),
    ({"ferritin": 0.0}, "ferritin must be a positive number in µg/L, got 0"),
    ({"ferritin": -3.0}, "ferritin must be a positive number in µg/L, got -3"),
    ({"ferritin": float("inf")}, "ferritin must be a positive number in µg/L, got inf"),
    ({"genotypes": {"rs123": "AG"}},
     "variant 'rs123' is not in the score; the score's variants are rs2300478, rs9357271, rs1975197, rs4626664"),
    ({"genotypes": {"rs2300478": "AG"}},
     "genotype 'AG' for rs2300478 has alleles that are not this variant's; its alleles are G/T"),
    ({"genotypes": {"rs2300478": "GX"}}, "genotype 'GX' for rs2300478 is not two allele letters; give e.g. GT"),
    ({"pregnant": False, "trimester": 1}, "a trimester was given for someone who is not pregnant"),
])
def test_refusals(kwargs, message):
    with pytest.raises(DataValidationError) as exc:
        risk.individual_risk(**kwargs)
    assert str(exc.value) == message


def test_cli_risk_json(capsys, truth):
    # everything known: the answer is the generating model's linear predictor (cohort.py's
    # OutcomeModel, a separate code path from risk.py), written out for this person
    geno = {"rs2300478": "GT", "rs9357271": "TT", "rs1975197": "AG", "rs4626664": "GG"}
    code = cli.main(["risk", "--age", "34", "--sex", "female", "--pregnant", "--trimester", "3",
                     "--ferritin", "20", *[a for k, v in geno.items() for a in ("--genotype", f"{k}={v}")], "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    counts = {}
    for locus in DEFAULT.loci:
        counts[locus.rsid] = geno[locus.rsid].count(locus.effect_allele)
    person = pd.DataFrame([{"age": 34, "sex": "female", "pregnant": True, "trimester": 3, "ferritin": 20.0, **counts}])
    eta = float(truth.linear_predictor(person)[0])
    assert out["probability"] == pytest.approx(1 / (1 + math.exp(-eta)), rel=1e-12, abs=0)
    assert out["relative_risk"] == pytest.approx(out["probability"] / out["average_probability"], rel=1e-12, abs=0)
    weights = {locus.rsid: locus.weight for locus in DEFAULT.loci}
    assert out["prs"] == pytest.approx(sum(weights[k] * v for k, v in counts.items()), rel=1e-13, abs=0)
    assert out["averaged_over"] == []
    # genotypes partly unknown: the average over the unknown ones is named
    assert cli.main(["risk", "--age", "34", "--sex", "female", "--genotype", "rs2300478=GT", "--json"]) == 0
    part = json.loads(capsys.readouterr().out)
    assert "genotypes of rs9357271, rs1975197, rs4626664" in part["averaged_over"]
    assert part["prs"] is None
    assert "out of 100" in part["statement"] and len(part["caveats"]) == 3


def test_cli_risk_refuses_with_one_line(capsys):
    code = cli.main(["risk", "--sex", "male", "--pregnant"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("rlsepi: error:") and err.count("\n") == 1


# --- nested models: known answers from R glm and pROC ---------------------------------------

REF = Path(__file__).parent / "reference" / "risk"
CODINGS = [("quadratic", "log2"), ("quadratic", "cut"), ("spline", "log2")]


# Relative tolerances against R, as tight as the measured agreement allows (measured worst
# case in brackets): estimates 1e-10 (4e-11; R stops IRLS on a relative deviance change of
# 1e-14, not on the coefficients); odds ratios of R's estimates, log-likelihoods, Brier
# scores, AUCs and DeLong results 1e-12 (<= 4e-12). Standard errors 5e-7 (2e-7: R's glm
# reports the SEs from the working weights of its second-last iteration). Wald p-values 1e-4
# relative (6e-5): p ~ exp(-z^2/2), so a relative SE difference e moves p by about z^2 e, and
# |z| reaches 27 here (p = 1e-164). No p-value is ever compared with an absolute tolerance.
RT = 1e-12
RT_EST, RT_SE, RT_P = 1e-10, 5e-7, 1e-4


def quiet_fit(df, **kwargs):
    """fit_nested with the expected CV-fold separation warnings of the sparse trimester cells
    silenced (they are still recorded in the result, where the tests look at them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", risk_models.RiskModelWarning)
        return risk_models.fit_nested(df, **kwargs)


@pytest.fixture(scope="module")
def r_output() -> pd.DataFrame:
    return pd.read_csv(REF / "r_output.csv")


@pytest.fixture(scope="module")
def fixture_cohort() -> pd.DataFrame:
    return read_cohort(REF / "cohort.csv")


class _LazyFits(dict):
    """The fit of each coding, made when a test first asks for it (and then kept).

    Lazily, so that the test that triggers a fit is one that checks it: mutmut maps each
    function to the tests during which it ran, fixture set-up included. A module fixture
    fitting every coding at once ran the spline basis and the profile CIs inside the first
    quadratic test only, so the tests that check them were never run against their mutants.
    """

    def __init__(self, cohort: pd.DataFrame) -> None:
        super().__init__()
        self.cohort = cohort

    def __missing__(self, key):
        age, fer = key
        self[key] = fit = quiet_fit(self.cohort, age=age, ferritin=fer)
        return fit


@pytest.fixture(scope="module")
def fits(fixture_cohort) -> dict:
    return _LazyFits(fixture_cohort)


def _r(r_output, age, fer, model, kind):
    sel = (r_output.age == age) & (r_output.ferritin == fer) & (r_output.model == model) & (r_output.kind == kind)
    return r_output[sel].set_index("name")["value"]


@pytest.mark.parametrize("age, fer", CODINGS)
def test_fits_match_r_glm_and_proc(fits, r_output, age, fer):
    res = fits[age, fer]
    # the full-data fits are clean (sparse trimester cells only trouble some CV training folds)
    assert all("cross-validation folds" in w for w in res.warnings)
    for m in res.models:
        coef = m.coefficients.set_index("term")
        est, se = _r(r_output, age, fer, m.name, "estimate"), _r(r_output, age, fer, m.name, "se")
        assert sorted(est.index) == sorted(coef.index)
        np.testing.assert_allclose(coef.loc[est.index, "estimate"], est, rtol=RT_EST, atol=0)
        np.testing.assert_allclose(coef.loc[se.index, "se"], se, rtol=RT_SE, atol=0)
        np.testing.assert_allclose(coef.loc[est.index, "odds_ratio"], np.exp(est), rtol=RT, atol=0)
        # 95% Wald CI from R's estimate and SE: b -/+ qnorm(0.975) se, qnorm(0.975) = 1.959963984540054
        # (R). The SEs agree to 2e-7, so the OR-scale ends to 1.3e-7 (measured); a log-scale end
        # near 0 magnifies that (5e-6 measured, where b - 1.96 se is small)
        half = 1.959963984540054 * se[est.index]
        assert set(coef["ci_method"]) == {"wald"}
        np.testing.assert_allclose(coef.loc[est.index, "or_lower"], np.exp(est - half), rtol=5e-7, atol=0)
        np.testing.assert_allclose(coef.loc[est.index, "or_upper"], np.exp(est + half), rtol=5e-7, atol=0)
        np.testing.assert_allclose(coef.loc[est.index, "ci_lower"], est - half, rtol=1e-5, atol=0)
        np.testing.assert_allclose(coef.loc[est.index, "p_value"],
                                   _r(r_output, age, fer, m.name, "p_value"), rtol=RT_P, atol=0)
        metric = _r(r_output, age, fer, m.name, "metric")
        assert m.metrics["loglik"] == pytest.approx(metric["loglik"], rel=RT, abs=0)
        assert m.metrics["brier"] == pytest.approx(metric["brier"], rel=RT, abs=0)
        for k in ("auc", "auc_lower", "auc_upper"):  # pROC
            assert m.metrics[k] == pytest.approx(metric[k], rel=RT, abs=0), (m.name, k)
    # the nested comparisons: DeLong's paired test (pROC's roc.test) and the LR test from R's
    # log-likelihoods (one check per coding and model, in the one test that makes each fit:
    # mutmut maps a function only to the tests during which it ran)
    ll = {m: _r(r_output, age, fer, m, "metric")["loglik"] for m in ("M0", "M1", "M2", "M3")}
    dfs = {"M1": 1, "M2": 1 if fer == "log2" else 2, "M3": 3}  # prs_sd; ferritin terms; trimester1-3
    for c in res.comparisons:
        ref = _r(r_output, age, fer, f"{c.larger} vs {c.smaller}", "comparison")
        for k in ("auc_difference", "auc_difference_lower", "auc_difference_upper", "auc_difference_p_value"):
            assert getattr(c, k) == pytest.approx(ref[k], rel=RT, abs=0), (c.larger, k)
        lr = 2 * (ll[c.larger] - ll[c.smaller])
        assert c.lr_statistic == pytest.approx(lr, rel=1e-11, abs=0)  # 2e-12: a difference of logliks
        assert c.df == dfs[c.larger]
        assert c.lr_p_value == pytest.approx(stats.chi2.sf(lr, c.df), rel=1e-11, abs=0)


def test_newton_fit_matches_r_glm(fixture_cohort, r_output):
    # the fast Newton-Raphson fit behind cross-validation, profiling and the simulation study
    frame, full, _ = risk_models.derive_columns(fixture_cohort, ferritin="log2")
    X = frame[["female", *full.columns()[1:]]].to_numpy()
    X = np.column_stack([np.ones(len(X)), X])
    fit = risk_models._newton_logit(frame["rls"].to_numpy(float), X)
    est = _r(r_output, "quadratic", "log2", "M3", "estimate")
    se = _r(r_output, "quadratic", "log2", "M3", "se")
    names = ["const", "female", *full.columns()[1:]]
    np.testing.assert_allclose(fit.params, est[names], rtol=RT_EST, atol=0)
    np.testing.assert_allclose(fit.bse, se[names], rtol=RT_SE, atol=0)


def test_profile_ci_matches_r_confint(fixture_cohort, r_output):
    # R's confint.glm interpolates the profile with a spline: agreement 3e-5 relative, not 1e-12
    res = quiet_fit(fixture_cohort, profile=True)  # fitted here: this test is the one that checks it
    for name in ("M0", "M2"):
        coef = res[name].coefficients.set_index("term")
        lo = _r(r_output, "quadratic", "log2", name, "profile_lower")
        hi = _r(r_output, "quadratic", "log2", name, "profile_upper")
        np.testing.assert_allclose(coef.loc[lo.index, "ci_lower"], lo, rtol=1e-4, atol=0)  # 3e-5
        np.testing.assert_allclose(coef.loc[hi.index, "ci_upper"], hi, rtol=1e-4, atol=0)
        assert set(coef["ci_method"]) == {"profile"}
    assert "| term | OR | 95% CI (profile) | p |" in res.summary()


def test_cross_validation_is_seeded_and_sane(fixture_cohort, fits):
    a = fits["quadratic", "log2"]["M1"].metrics
    b = quiet_fit(fixture_cohort, random_state=0)["M1"].metrics
    c = quiet_fit(fixture_cohort, random_state=1)["M1"].metrics
    assert a["cv_auc"] == b["cv_auc"] and a["calibration_slope"] == b["calibration_slope"]
    assert a["cv_auc"] != c["cv_auc"]
    # out-of-fold predictions of a correctly sized model: slope near 1, intercept near 0
    assert 0.7 < a["calibration_slope"] < 1.3 and abs(a["calibration_intercept"]) < 0.2
    assert a["cv_auc"] <= a["auc"] + 0.02


def test_cross_validated_metrics_by_statsmodels(fixture_cohort):
    """Every cross-validated metric recomputed independently: the folds of the documented
    procedure (scikit-learn's StratifiedKFold, 5 folds, shuffled, seed 0), each training fold
    fitted by statsmodels' Logit, the out-of-fold linear predictor lp scored with
    roc_auc_score per fold (mean and SD with ddof 1), the Brier score of expit(lp), the
    calibration slope (logit(y) on 1 + lp) and intercept (intercept only, offset lp)."""
    import statsmodels.api as sm
    from scipy.special import expit
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    res = quiet_fit(fixture_cohort)  # fitted here: this is the test that checks its cross-validation
    frame = risk_models.derive_columns(fixture_cohort)[0]
    y = frame["rls"].to_numpy(float)
    folds = list(StratifiedKFold(n_splits=5, shuffle=True, random_state=0).split(np.zeros(len(y)), y.astype(int)))
    for name in ("M0", "M1", "M2"):
        X = sm.add_constant(frame[res[name].spec.columns()].to_numpy(float), has_constant="add")
        lp = np.empty(len(y))
        aucs = []
        for train, test in folds:
            b = sm.Logit(y[train], X[train]).fit(disp=0, tol=1e-12, maxiter=100).params
            lp[test] = X[test] @ b
            aucs.append(roc_auc_score(y[test], lp[test]))
        slope = sm.Logit(y, sm.add_constant(lp)).fit(disp=0, tol=1e-12).params[1]
        citl = sm.GLM(y, np.ones((len(y), 1)), family=sm.families.Binomial(), offset=lp).fit(tol=1e-13).params[0]
        m = res[name].metrics
        assert m["cv_folds"] == 5 and m["cv_unstable_folds"] == 0
        # both fitters converge fully: measured agreement <= 5e-16, and 4e-14 for the calibration
        # intercept (relative to a value near 0, -0.0008 to -0.0025); 100 times that is allowed
        assert m["cv_auc"] == pytest.approx(np.mean(aucs), rel=1e-13, abs=0), name
        assert m["cv_auc_sd"] == pytest.approx(np.std(aucs, ddof=1), rel=1e-13, abs=0), name
        assert m["cv_brier"] == pytest.approx(np.mean((y - expit(lp)) ** 2), rel=1e-13, abs=0), name
        assert m["calibration_slope"] == pytest.approx(slope, rel=1e-13, abs=0), name
        assert m["calibration_intercept"] == pytest.approx(citl, rel=5e-12, abs=0), name


def test_separation_and_few_events_are_warned(fixture_cohort):
    df = fixture_cohort.copy()
    df.loc[df["trimester"] == 3, "rls"] = False  # no event in trimester 3: quasi-complete separation
    with pytest.warns(risk_models.SeparationWarning) as caught:
        res = risk_models.fit_nested(df, cv_folds=3)
    assert any("'trimester3' = 1" in str(w.message) for w in caught)
    assert any("separation" in w for w in res["M3"].warnings)
    t3 = res["M3"].coefficients.set_index("term").loc["trimester3"]
    assert t3["estimate"] < -10  # drifting to minus infinity
    json.dumps(risk_models.strict_json(to_jsonable(res.to_dict())), allow_nan=False)  # still valid JSON
    assert not any("separation" in w for w in res["M2"].warnings)
    small = fixture_cohort.iloc[:700]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", risk_models.SeparationWarning)
        with pytest.warns(risk_models.FewEventsWarning, match="per coefficient"):
            risk_models.fit_nested(small, cv_folds=3)


def test_complete_separation_is_named_and_nothing_else_is_printed(fixture_cohort):
    # an outcome that is the score above its median: every model with the score separates
    # completely (statsmodels reports perfect prediction); M0 (age and sex) does not
    frame = risk_models.derive_columns(fixture_cohort)[0]
    df = fixture_cohort.loc[frame.index].assign(rls=(frame["prs"] > frame["prs"].median()).to_numpy())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = risk_models.fit_nested(df, cv_folds=2)
    # each warning names its model (no bare numpy "overflow encountered in exp")
    assert caught and all(issubclass(w.category, risk_models.RiskModelWarning) for w in caught), \
        [str(w.message) for w in caught if not issubclass(w.category, risk_models.RiskModelWarning)]
    for name in ("M1", "M2", "M3"):
        assert any(w.startswith(f"{name}: (quasi-)complete separation (huge coefficients for prs_sd")
                   for w in res[name].warnings), name
    assert not any("separation (" in w for w in res["M0"].warnings)


def test_rows_missing_a_genotype_are_dropped_and_counted(fixture_cohort):
    df = fixture_cohort.copy()
    df["rs9357271"] = df["rs9357271"].astype("Int8")
    df.loc[df.index[[4, 9]], "rs9357271"] = pd.NA
    frame, spec, dropped = risk_models.derive_columns(df)
    assert dropped == {"missing rs9357271": 2} and len(frame) == len(df) - 2
    # the score of every kept row is the sum of ln(OR) x effect-allele count (parameters.py)
    weights = {locus.rsid: locus.weight for locus in DEFAULT.loci}
    kept = df.drop(index=df.index[[4, 9]])
    want = sum(w * kept[rs].astype(float).to_numpy() for rs, w in weights.items())
    np.testing.assert_allclose(frame["prs"].to_numpy(), want, rtol=1e-13, atol=1e-15)  # atol: scores of 0


def test_fit_diagnostics_thresholds_by_hand():
    diag = risk_models.fit_diagnostics
    common = {"empty_cells": [], "converged": True, "iterations": 200, "perfect": False, "extreme": False}
    # a log odds ratio beyond 15 (an OR above 3.3 million) is "huge"; 15 itself and the intercept are not
    out = diag("M1", terms=["const", "x", "z"], params=np.array([20.0, 15.5, 15.0]), events=500, n=1000, **common)
    assert out == [(risk_models.SeparationWarning,
                    ("M1: (quasi-)complete separation (huge coefficients for x); the affected odds ratios are "
                     "infinite and their Wald CIs meaningless; combine categories or use a penalised fit"))]
    # events per coefficient (the intercept not counted): 15 events for 2 coefficients = 7.5 < 10
    out = diag("M2", terms=["const", "a", "b"], params=np.zeros(3), events=15, n=1000, **common)
    assert out == [(risk_models.FewEventsWarning,
                    ("M2: 15 events for 2 coefficients (7.5 per coefficient, fewer than 10); estimates may be "
                     "biased and unstable"))]
    # the rarer outcome counts: 990 events leave 10 non-events, 5.0 per coefficient; exactly 10 is enough
    assert "M2: 10 events for 2 coefficients (5.0 per coefficient" in diag(
        "M2", terms=["const", "a", "b"], params=np.zeros(3), events=990, n=1000, **common)[0][1]
    assert diag("M2", terms=["const", "a", "b"], params=np.zeros(3), events=20, n=1000, **common) == []


def test_data_range_and_refusals_outside_it(fixture_cohort):
    raw = pd.read_csv(REF / "cohort.csv")
    state = np.where(raw["pregnant"], raw["trimester"].fillna(0), 0).astype(int)
    res = quiet_fit(fixture_cohort, cv_folds=2)
    assert res.data_range == {"sexes": ["female", "male"], "age": [float(raw["age"].min()), float(raw["age"].max())],
                              "pregnancy": sorted(set(state.tolist())),
                              "ferritin": [float(raw["ferritin"].min()), float(raw["ferritin"].max())]}
    assert res.data_range["pregnancy"] == [0, 1, 2, 3]
    # fitted on nobody pregnant: the trimester terms are dropped, and a pregnancy is refused by name
    est = risk_models.NestedLogistic(cv_folds=2)
    assert (est.ferritin, est.age, est.formula, est.profile, est.random_state, est.alpha) == \
        ("log2", "quadratic", None, False, 0, 0.05)  # the documented defaults
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        none = est.fit(fixture_cohort[~fixture_cohort["pregnant"]]).result_
    assert none.data_range["pregnancy"] == [0]
    assert none.settings["ferritin"] == "log2" and none.settings["age"] == "quadratic"
    same = [w for w in caught if str(w.message).startswith("M3 vs M2: no test; every term M3 adds was dropped")]
    assert len(same) == 1 and len(none.comparisons) == 3 and none.comparisons[2].df == 0
    # every warning points at the line that called fit (here), not inside rlsepi; not under
    # mutmut, whose trampolines add two stack frames to every call of a mutated function
    if "MUTANT_UNDER_TEST" not in os.environ:
        assert {w.filename for w in caught} == {__file__}, {(w.filename, str(w.message)[:40]) for w in caught}
    lm = risk_models.load_risk_model(to_jsonable(none.to_dict()), name="M3")
    ok = risk.individual_risk(age=30, sex="female", pregnant=False, model=lm)
    assert 0 < ok.probability < 1
    # rlsepi risk --model checks the person against the range before computing the risk
    check = risk_models.check_within_range
    with pytest.raises(DataValidationError, match="^the model was fitted on nobody in trimester 2; "
                                                  "it cannot give a risk there$"):
        check(none.data_range, age=30, sex="female", pregnant=True, trimester=2, ferritin=None,
              uses=frozenset({"pregnancy"}))
    with pytest.raises(DataValidationError, match="^the model was fitted on no pregnant women; it cannot give "
                                                  "a risk in pregnancy$"):
        check(none.data_range, age=30, sex="female", pregnant=True, trimester=None, ferritin=None,
              uses=frozenset({"pregnancy"}))


def test_user_formula_is_fitted_on_the_same_rows(fixture_cohort, fits, r_output):
    res = quiet_fit(fixture_cohort, formula="rls ~ female + age10 + age10_sq", cv_folds=3)
    user = res["user"].coefficients.set_index("term")
    est = _r(r_output, "quadratic", "log2", "M0", "estimate")  # the same model as M0
    np.testing.assert_allclose(user.loc[est.index, "estimate"], est, rtol=RT_EST, atol=0)
    with pytest.raises(DataValidationError, match="outcome must be 'rls'"):
        quiet_fit(fixture_cohort, formula="age ~ female")


def test_fitted_model_json_drives_individual_risk(fits, fixture_cohort, tmp_path):
    res = fits["quadratic", "cut"]
    path = tmp_path / "fit.json"
    path.write_text(json.dumps(to_jsonable(res.to_dict())))
    lm = risk_models.load_risk_model(path)  # the largest model, M3
    coef = res["M3"].coefficients.set_index("term")["estimate"]
    frame = risk_models.derive_columns(fixture_cohort, ferritin="cut")[0]
    for i in (0, 7, 42):
        row = fixture_cohort.iloc[i]
        x = frame.iloc[i]
        eta = coef["const"] + sum(coef[t] * x[t] for t in coef.index if t != "const")
        tri = None if pd.isna(row["trimester"]) else int(row["trimester"])
        r = risk.individual_risk(age=int(row["age"]), sex=row["sex"], pregnant=bool(row["pregnant"]), trimester=tri,
                                 ferritin=float(row["ferritin"]),
                                 genotypes={locus.rsid: int(row[locus.rsid]) for locus in DEFAULT.loci}, model=lm)
        assert r.probability == pytest.approx(1 / (1 + math.exp(-eta)), rel=1e-10, abs=0)
        assert r.model == "fitted model M3"
    # the spline coding rebuilds its basis from the stored knots
    spline = fits["spline", "log2"]
    lm2 = risk_models.load_risk_model(to_jsonable(spline.to_dict()), name="M2")
    coef2 = spline["M2"].coefficients.set_index("term")["estimate"]
    frame2 = risk_models.derive_columns(fixture_cohort, ferritin="log2", age="spline")[0]
    row, x = fixture_cohort.iloc[5], frame2.iloc[5]
    eta = coef2["const"] + sum(coef2[t] * x[t] for t in coef2.index if t != "const")
    r = risk.individual_risk(age=int(row["age"]), sex=row["sex"], ferritin=float(row["ferritin"]),
                             genotypes={locus.rsid: int(row[locus.rsid]) for locus in DEFAULT.loci}, model=lm2)
    assert r.probability == pytest.approx(1 / (1 + math.exp(-eta)), rel=1e-10, abs=0)
    m0 = risk_models.load_risk_model(path, name="M0")
    r = risk.individual_risk(age=40, sex="male", ferritin=30, genotypes={"rs2300478": "GG"}, model=m0)
    assert set(r.ignored) == {"ferritin", "genotypes"} and r.averaged_over == ()


def test_fitted_log2_model_averages_unknown_ferritin_like_a_simulated_population(fits):
    """Gauss-Hermite averaging over unknown ferritin (and exact averaging over pregnancy and
    genotypes) against a Monte Carlo average over simulated women of one age."""
    res = fits["quadratic", "log2"]
    lm = risk_models.load_risk_model(to_jsonable(res.to_dict()), name="M3")
    spec = res["M3"].spec
    coef = res["M3"].coefficients.set_index("term")["estimate"]
    df = cohort.simulate(150_000, rng=99)
    sel = df[(df["sex"] == "female") & (df["age"] == 31)]
    frame = risk_models.derive_columns(sel, ferritin="log2")[0]
    frame["prs_sd"] = (frame["prs"] - spec.prs_mean) / spec.prs_sd  # the fitted standardisation
    eta = coef["const"] + sum(coef[t] * frame[t] for t in coef.index if t != "const")
    p = 1 / (1 + np.exp(-eta.to_numpy()))
    exact = risk.individual_risk(age=31, sex="female", model=lm).probability
    assert exact == pytest.approx(p.mean(), abs=4 * p.std(ddof=1) / math.sqrt(p.size))
    assert {"pregnancy", "ferritin", "genotypes"} <= set(risk.individual_risk(age=31, sex="female", model=lm).averaged_over)


def test_cli_fit_formats(tmp_path, capsys):
    src = REF / "cohort.csv"
    out = tmp_path / "fit.json"
    assert cli.main(["fit", str(src), "--format", "json", "--out", str(out), "--cv-folds", "3"]) == 0
    doc = json.loads(out.read_text())
    assert [m["name"] for m in doc["models"]] == ["M0", "M1", "M2", "M3"]
    m3 = doc["models"][3]
    assert m3["formula"].startswith("rls ~ female + age10")
    # the written numbers are R's (the default coding is quadratic age, log2 ferritin)
    r_out = pd.read_csv(REF / "r_output.csv")
    est = _r(r_out, "quadratic", "log2", "M3", "estimate")
    got = {c["term"]: c for c in m3["coefficients"]}
    np.testing.assert_allclose([got[t]["estimate"] for t in est.index], est, rtol=RT_EST, atol=0)
    pv = _r(r_out, "quadratic", "log2", "M3", "p_value")
    np.testing.assert_allclose([got[t]["p_value"] for t in pv.index], pv, rtol=RT_P, atol=0)
    metric = _r(r_out, "quadratic", "log2", "M3", "metric")
    assert m3["metrics"]["auc"] == pytest.approx(metric["auc"], rel=RT, abs=0)
    assert m3["metrics"]["brier"] == pytest.approx(metric["brier"], rel=RT, abs=0)
    assert len(doc["comparisons"]) == 3
    # the settings are the command's: its defaults (quadratic age, log2 ferritin, Wald CIs at
    # 95%, seed 0) and --cv-folds 3; the fixture has no missing value, so no row is dropped
    assert doc["settings"] == {"ferritin": "log2", "age": "quadratic", "formula": None, "ci": "wald",
                               "alpha": 0.05, "cv_folds": 3, "seed": 0}
    assert doc["n"] == 5000 and doc["dropped"] == {}
    assert all(m["metrics"]["cv_folds"] == 3 and m["metrics"]["cv_seed"] == 0 for m in doc["models"])
    assert cli.main(["fit", str(src), "--format", "json", "--out", str(out)]) == 2  # exists, no --force
    assert cli.main(["risk", "--model", str(out), "--age", "50", "--sex", "female", "--json"]) == 0
    capsys.readouterr()
    assert cli.main(["fit", str(src), "--format", "csv", "--cv-folds", "3"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    coef = table[(table["kind"] == "coefficient") & (table["model"] == "M3")].set_index("name")["estimate"]
    np.testing.assert_allclose(coef[est.index].astype(float), est, rtol=1e-9, atol=0)  # CSV: %.10g or finer
    # one long table (NestedFit.to_frame): a user's script reads these columns by name
    assert list(table.columns) == ["model", "kind", "name", "estimate", "se", "lower", "upper", "p_value",
                                   "odds_ratio", "or_lower", "or_upper", "df"]
    metric = table[table["kind"] == "metric"]
    for m in ("M0", "M1", "M2", "M3"):
        auc = metric[metric["model"] == m].set_index("name")["estimate"].astype(float)
        assert auc["auc"] == pytest.approx(_r(r_out, "quadratic", "log2", m, "metric")["auc"], rel=RT, abs=0)
    comp = table[table["kind"] == "comparison"]
    ll = {m: _r(r_out, "quadratic", "log2", m, "metric")["loglik"] for m in ("M0", "M1", "M2", "M3")}
    for label in ("M1 vs M0", "M2 vs M1", "M3 vs M2"):
        rows = comp[comp["model"] == label].set_index("name")
        larger, smaller = label.split(" vs ")
        df_ = {"M1": 1, "M2": 1, "M3": 3}[larger]  # prs_sd; ferritin_halving; trimester1-3
        lr = 2 * (ll[larger] - ll[smaller])
        assert rows.loc["lr_test", "estimate"] == pytest.approx(lr, rel=1e-11, abs=0)  # a difference of logliks
        assert rows.loc["lr_test", "df"] == df_ and pd.isna(rows.loc["lr_test", "se"])
        # p's relative error is about lr/2 times lr's (2e-12 here), so 1e-9 at lr = 87
        assert rows.loc["lr_test", "p_value"] == pytest.approx(stats.chi2.sf(lr, df_), rel=1e-9, abs=0)
        ref = _r(r_out, "quadratic", "log2", label, "comparison")
        auc_d = rows.loc["auc_difference"]
        for col, key in (("estimate", "auc_difference"), ("lower", "auc_difference_lower"),
                         ("upper", "auc_difference_upper"), ("p_value", "auc_difference_p_value")):
            assert auc_d[col] == pytest.approx(ref[key], rel=RT, abs=0), (label, col)
    # a warning row names the model it is about (the text before the first colon)
    warn = table[table["kind"] == "warning"]
    assert len(warn) >= 1
    for model, text in zip(warn["model"], warn["name"]):
        assert model in ("M0", "M1", "M2", "M3") and text.startswith(f"{model}: ")
    # a user's file with other column names and codes, and a missing ferritin
    user = pd.read_csv(src).rename(columns={"sex": "gender", "rls": "dx"})
    user["gender"] = user["gender"].map({"female": "F", "male": "M"})
    user["dx"] = user["dx"].map({True: "yes", False: "no"})
    user.loc[:2, "ferritin"] = None
    user.to_csv(tmp_path / "user.csv", index=False)
    assert cli.main(["fit", str(tmp_path / "user.csv"), "--column", "sex=gender", "--column", "rls=dx",
                     "--format", "markdown", "--cv-folds", "3", "--ferritin", "cut"]) == 0
    captured = capsys.readouterr()
    assert "| M3 vs M2 |" in captured.out and "n = 4,997" in captured.out
    assert "3 dropped" in captured.err


# --- ADEMP simulation study -----------------------------------------------------------------

WELL_POWERED = ["female", "age10", "age10_sq", "ferritin_le50", "rs2300478", "rs9357271", "rs1975197", "rs4626664"]


def test_mcse_formulas_match_the_spread_of_repeated_studies():
    """Each Monte Carlo SE should equal the SD of its measure over independent repeats of a
    study (here estimates drawn from N(truth, sigma^2) with SE sigma: an exactly valid method)."""
    rng = np.random.default_rng(3)
    truth, sigma, r = 0.4, 0.2, 60
    runs = [risk_validate.performance(truth + sigma * rng.standard_normal(r),
                                      sigma * np.sqrt(rng.chisquare(50, r) / 50), truth) for _ in range(1500)]
    table = pd.DataFrame(runs)
    for measure in ("bias", "empirical_se", "model_se", "coverage"):
        spread = table[measure].std(ddof=1)
        assert table[f"{measure}_mcse"].mean() == pytest.approx(spread, rel=0.1, abs=0), measure
    assert table["bias"].mean() == pytest.approx(0.0, abs=4 * sigma / math.sqrt(r * 1500))
    assert table["coverage"].mean() == pytest.approx(0.95, abs=0.01)


@pytest.fixture(scope="module")
def small_study():
    return risk_validate.simulation_study(replicates=12, n=12_000, rng=2024)


def test_small_simulation_study_recovers_the_truth(small_study, truth):
    table = small_study.table.set_index("term")
    expected = risk_validate.true_effects(truth)
    assert list(table.index) == list(expected)
    assert table.loc["age10_sq", "true_log_or"] == pytest.approx(-truth.age_curvature)
    used = small_study.replicates - small_study.excluded
    assert used >= 8
    for term in WELL_POWERED:
        row = table.loc[term]
        assert abs(row["bias"]) < 4 * row["bias_mcse"], term
        # model SE and empirical SE estimate the same thing
        assert abs(row["model_se"] - row["empirical_se"]) < 4 * math.hypot(row["model_se_mcse"],
                                                                              row["empirical_se_mcse"]), term
    cover = table.loc[WELL_POWERED, "coverage"].to_numpy()
    # pooled over the well-powered terms, coverage is near 95% (binomial error of the pool)
    assert cover.mean() > 0.95 - 4 * math.sqrt(0.95 * 0.05 / (used * len(WELL_POWERED)))


def test_simulation_study_is_seeded(small_study):
    again = risk_validate.simulation_study(replicates=3, n=12_000, rng=2024)
    first3 = small_study.estimates[small_study.estimates["replicate"] < 3].reset_index(drop=True)
    pd.testing.assert_frame_equal(again.estimates, first3)


def test_cli_validate_json(tmp_path):
    out = tmp_path / "v.json"
    assert cli.main(["validate", "--replicates", "2", "--n", "3000", "--seed", "5", "--format", "json",
                     "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["replicates"] == 2 and doc["seed"] == 5
    rows = {r["term"]: r for r in doc["results"]}
    # the true effects are the generating model's (cohort.solve_model, not risk_validate)
    model = cohort.solve_model(DEFAULT)
    assert rows["female"]["true_or"] == pytest.approx(math.exp(model.female), rel=1e-12, abs=0)
    for rsid, beta in model.loci:
        assert rows[rsid]["true_log_or"] == pytest.approx(beta, rel=1e-12, abs=0)
    # two replicates: coverage is 0, 1/2 or 1 for every term used twice
    assert all(r["coverage"] in (0.0, 0.5, 1.0) for r in doc["results"] if r["replicates_used"] == 2)


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("RLSEPI_SLOW") != "1", reason="opt in with RLSEPI_SLOW=1 (a few minutes)")
def test_large_simulation_study():
    """200 replicates of 20,000: for the well-powered terms, bias within 4 MCSE and model SE
    within 10% of the empirical SE; coverage within 4 MCSE of 95% for every term. The
    trimester cells hold only ~4-10 events per replicate, where the MLE of a log odds ratio has
    a known small-sample bias (about -1/(2 x events), Jensen on log counts); for them the bias
    must stay below a third of the empirical SE."""
    study = risk_validate.simulation_study(replicates=200, n=20_000, rng=7, workers=2)
    table = study.table.set_index("term")
    for term, row in table.iterrows():
        mcse = math.sqrt(0.95 * 0.05 / row["replicates_used"])
        assert abs(row["coverage"] - 0.95) < 4 * mcse, term
        if term in WELL_POWERED:
            assert abs(row["bias"]) < 4 * row["bias_mcse"], term
            assert row["model_se"] == pytest.approx(row["empirical_se"], rel=0.1, abs=0), term
        else:
            assert abs(row["bias"]) < row["empirical_se"] / 3, term


def test_delong_p_value_in_the_far_tail_matches_proc() -> None:
    # pROC's roc.test gives p = 2.39e-212 (z = 31.1); a p-value computed as 2 * (1 - cdf) would
    # be 0 here (tests/reference/risk/delong_far_tail.R makes the data and the answers)
    here = Path(__file__).parent / "reference" / "risk"
    ref = json.loads((here / "delong_far_tail.json").read_text())
    data = pd.read_csv(here / "delong_far_tail.csv")
    auc, cov = risk_models.delong(data["y"].to_numpy(), np.vstack([data["strong"], data["weak"]]))
    assert auc[0] == pytest.approx(ref["auc_strong"], rel=1e-14, abs=0)
    assert auc[1] == pytest.approx(ref["auc_weak"], rel=1e-14, abs=0)
    d, se, p = risk_models.delong_difference(auc, cov, 0, 1)
    assert d == pytest.approx(ref["difference"], rel=1e-13, abs=0)
    assert d / se == pytest.approx(ref["z"], rel=1e-11, abs=0)
    assert 0 < ref["p_value"] < 1e-200
    assert p == pytest.approx(ref["p_value"], rel=1e-9, abs=0)  # z agrees to 1e-11; p's relative error ~z^2 times that


def test_hanley_mcneil_standard_error_by_hand() -> None:
    # A = 0.62, 80,000 events and 920,000 non-events (8% of 1M), by hand:
    # Q1 = 0.62/1.38 = 0.449275362, Q2 = 2(0.3844)/1.62 = 0.474567901, A(1-A) = 0.2356;
    # SE^2 = (0.2356 + 79,999 x 0.064875362 + 919,999 x 0.090167901) / (80,000 x 920,000)
    #      = (0.2356 + 5,189.96 + 82,954.40) / 7.36e10 = 88,144.60 / 7.36e10 = 1.197617e-6, SE = 0.00109436
    assert risk_models.hanley_mcneil_se(0.62, 80_000, 920_000) == pytest.approx(0.00109436, rel=1e-5, abs=0)
    # the out-of-core fit's note quotes it (and the synthetic population's prevalence) from the code
    from rlsepi.distributed import not_out_of_core

    assert "at an AUC of 0.62 and 8% prevalence, a sample of 1,000,000 people gives the AUC a standard " \
        "error of about 0.0011, and 100,000 people about 0.0035" in not_out_of_core()
