"""The default text output of risk, validate and fit, and other paths no test reached.

Each number checked in a text is formatted here from an independent value (the generating
model, R's glm, a hand count), not from the object that printed it.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path

import pandas as pd
import pytest

from rlsepi import cli, cohort, prevalence, risk, risk_models, risk_validate
from rlsepi.errors import DataValidationError
from rlsepi.io import read_cohort, to_jsonable
from rlsepi.parameters import DEFAULT, EXTENDED_LOCI

REF = Path(__file__).parent / "reference" / "risk"


@pytest.fixture(scope="module")
def truth() -> cohort.OutcomeModel:
    return cohort.solve_model(DEFAULT)


def test_individual_risk_summary_and_frame(truth, capsys) -> None:
    geno = {"rs2300478": 2, "rs9357271": 0, "rs1975197": 1, "rs4626664": 0}
    person = pd.DataFrame([{"age": 60, "sex": "male", "pregnant": False, "trimester": None, "ferritin": 40.0, **geno}])
    p = 1 / (1 + math.exp(-float(truth.linear_predictor(person)[0])))
    assert cli.main(["risk", "--age", "60", "--sex", "male", "--ferritin", "40",
                     *[a for k, v in geno.items() for a in ("--genotype", f"{k}={v}")]]) == 0
    text = capsys.readouterr().out
    assert f"this person:          {100 * p:.1f}%" in text
    assert "men aged 60:" in text
    weights = {locus.rsid: locus.weight for locus in DEFAULT.loci}
    prs = sum(weights[k] * v for k, v in geno.items())
    assert f"polygenic score:      {prs:.3f}" in text
    assert f"About {round(100 * p)} out of 100 people like this would have RLS" in text
    assert "Please note:" in text and "Not given" not in text
    r = risk.individual_risk(age=60, sex="male", ferritin=40.0, genotypes=geno)
    frame = r.to_frame().set_index("quantity")["value"]
    assert frame["probability"] == pytest.approx(p, rel=1e-12, abs=0)
    assert frame["prs"] == pytest.approx(prs, rel=1e-13, abs=0)
    # nothing known: the text names what was averaged over and that the score was not computed
    u = risk.individual_risk().summary()
    assert "adults of all adult ages:" in u and "not computed (not every genotype was given)" in u
    assert "Not given, so averaged over the population (given what was known): age, sex" in u


def test_individual_risk_ignores_inputs_the_model_lacks() -> None:
    # a fitted M0 (sex and age only): ferritin and genotypes are given but not part of it
    df = read_cohort(REF / "cohort.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = risk_models.fit_nested(df, cv_folds=3)
    lm = risk_models.load_risk_model(to_jsonable(res.to_dict()), name="M0")
    r = risk.individual_risk(age=50, sex="female", ferritin=30.0, genotypes={"rs2300478": 1}, model=lm)
    coef = res["M0"].coefficients.set_index("term")["estimate"]
    age10 = (50 - 50) / 10  # the spec centres age at 50 in decades (checked by the value below)
    eta = coef["const"] + coef["female"] + coef["age10"] * age10 + coef["age10_sq"] * age10 ** 2
    assert r.probability == pytest.approx(1 / (1 + math.exp(-eta)), rel=1e-10, abs=0)
    assert "ferritin" in " ".join(r.ignored) and "Given but not part of this model" in r.summary()
    with pytest.raises(DataValidationError, match="choose one of M0, M1, M2, M3"):
        risk_models.load_risk_model(to_jsonable(res.to_dict()), name="M9")
    with pytest.raises(DataValidationError, match="holds no model M0-M3"):
        risk_models.load_risk_model({"models": []})


def test_load_risk_model_refuses_bad_files(tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataValidationError, match="cannot read model file"):
        risk_models.load_risk_model(bad)


def test_nested_model_summary_shows_r_numbers() -> None:
    df = read_cohort(REF / "cohort.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = risk_models.fit_nested(df, cv_folds=3)
    r_out = pd.read_csv(REF / "r_output.csv")
    sel = (r_out.age == "quadratic") & (r_out.ferritin == "log2") & (r_out.model == "M1") & (r_out.kind == "estimate")
    est = r_out[sel].set_index("name")["value"]
    text = res["M1"].summary()
    assert text.splitlines()[0].startswith("M1: rls ~ female + age10")
    assert f"OR {math.exp(est['female']):8.3f}" in text
    metric = r_out[(r_out.age == "quadratic") & (r_out.ferritin == "log2") & (r_out.model == "M1")
                   & (r_out.kind == "metric")].set_index("name")["value"]
    assert f"AUC {metric['auc']:.3f}" in text and f"Brier {metric['brier']:.4f}" in text
    assert res["M1"].odds_ratios()["female"] == pytest.approx(math.exp(est["female"]), rel=1e-10, abs=0)
    n, events = len(df), int(df["rls"].sum())
    assert res.summary().splitlines()[0] == f"# Nested logistic models for RLS (n = {n:,}, events = {events:,})"


def test_cli_fit_default_markdown_and_formula_errors(capsys) -> None:
    assert cli.main(["fit", str(REF / "cohort.csv"), "--cv-folds", "3"]) == 0
    out = capsys.readouterr().out
    r_out = pd.read_csv(REF / "r_output.csv")
    sel = (r_out.age == "quadratic") & (r_out.ferritin == "log2") & (r_out.model == "M3") & (r_out.kind == "estimate")
    est = r_out[sel].set_index("name")["value"]
    assert f"{math.exp(est['female']):.3f}" in out
    # p-values below 1e-4 print in scientific notation (R's values, 3 significant digits), not "<0.0001"
    pv = r_out[(r_out.age == "quadratic") & (r_out.ferritin == "log2") & (r_out.model == "M3")
               & (r_out.kind == "p_value")].set_index("name")["value"]
    m3 = out[out.index("## M3"):]
    assert f"| prs_sd | {math.exp(est['prs_sd']):.3f} |" in m3 and f"| {pv['prs_sd']:.3g} |" in m3  # 7.86e-21
    assert f"| {pv['age10_sq']:.3g} |" in m3 and f"| {pv['ferritin_halving']:.4f} |" in m3
    assert "<0.0001" not in out
    df = read_cohort(REF / "cohort.csv")
    with pytest.raises(DataValidationError, match="has no '~'"):
        risk_models.fit_nested(df, formula="female + age10")
    with pytest.raises(DataValidationError, match="cannot use formula 'rls ~ nonesuch'") as caught:
        risk_models.fit_nested(df, formula="rls ~ nonesuch")
    # the message lists the columns a formula can use: the derived columns of the default
    # codings (quadratic age; both ferritin codings are always derived) and the raw age,
    # ferritin, score and trimester indicators, separated by ", "
    listed = str(caught.value).split("; the columns are ", 1)[1].split(", ")
    assert sorted(listed) == sorted(["female", "age", "age10", "age10_sq", "ferritin", "ferritin_halving",
                                     "ferritin_lt50", "ferritin_50_75", "prs", "prs_sd", "trimester1",
                                     "trimester2", "trimester3"])


def test_simulation_study_summary_and_cli_default(capsys) -> None:
    study = risk_validate.simulation_study(replicates=2, n=3000, rng=5)
    text = study.summary()
    lines = text.splitlines()
    assert lines[0] == "# Simulation study of the logistic fit (ADEMP; 2 replicates of 3,000 people, seed 5)"
    # each row: bias = mean estimate - truth, formatted; computed here from the estimates
    est = study.estimates[study.estimates["usable"]]
    row = study.table.set_index("term").loc["female"]
    bias = est[est["term"] == "female"]["estimate"].mean() - row["true_log_or"]
    assert f"| female | {math.exp(row['true_log_or']):.3f} | 2 | {bias:+.4f} (" in text
    assert cli.main(["validate", "--replicates", "2", "--n", "3000", "--seed", "5"]) == 0
    assert capsys.readouterr().out.strip() == text.strip()


def test_prevalence_table_summary_by_hand() -> None:
    d = pd.DataFrame({"sex": ["female"] * 4 + ["male"] * 4, "rls": [1, 0, 0, 0, 1, 1, 0, 0]})
    s = prevalence.stratified(d, "sex").summary()
    assert "25.00%" in s and "50.00%" in s and "95% CI" in s
    lines = [ln.split() for ln in s.splitlines()]
    assert lines[1][:4] == ["female", "4", "1", "25.00%"]


def test_fit_p_value_text_by_hand() -> None:
    # 4 decimals from 1e-4 up, 3 significant digits below, never "0" or a bare "<0.0001"
    f = risk_models._fmt_p
    assert [f(0.5), f(1e-4), f(5.25e-5), f(7.86e-21), f(0.0), f(float("nan"))] == \
        ["0.5000", "0.0001", "5.25e-05", "7.86e-21", "<1e-308", "—"]


def _person(**kw) -> risk.IndividualRisk:
    base = {"probability": 0.1234, "average_probability": 0.0801, "relative_risk": 1.5406, "per_100": 12,
            "average_per_100": 8, "prs": 0.4567, "prs_z": 1.234, "prs_percentile": 88.26,
            "inputs": {"age": 45.0, "sex": "female"}, "averaged_over": ("ferritin",), "ignored": ("pregnancy",),
            "model": "M2", "caveats": ("first caveat", "second caveat"), "probability_lower": 0.1011,
            "probability_upper": 0.1502}
    return risk.IndividualRisk(**(base | kw))


def test_individual_risk_summary_text_typed_by_hand() -> None:
    # every line typed from the values of _person (percent with one decimal, the label padded
    # to 22 characters), so a changed factor, format, order or separator shows
    assert _person().summary().splitlines() == [
        "Illustrative risk of restless legs syndrome (M2)",
        "  this person:          12.3%",
        "  95% interval:         10.1% to 15.0% (uncertainty of the fitted coefficients)",
        "  women aged 45:        8.0%",
        "  relative risk:        1.54 times the average",
        "  polygenic score:      0.457 (z = +1.23, percentile 88.3)",
        "",
        "About 12 out of 100 people like this would have RLS, compared with about 8 out of 100 women aged 45.",
        "Not given, so averaged over the population (given what was known): ferritin.",
        "Given but not part of this model: pregnancy.",
        "",
        "Please note:",
        "  - first caveat",
        "  - second caveat",
    ]
    # no interval unless both ends are known; no score; nothing averaged or ignored; fewer than 1
    text = _person(probability_upper=None, prs=None, averaged_over=(), ignored=(), per_100=0, average_per_100=0,
                   inputs={"age": None, "sex": "male"}).summary()
    assert text.splitlines() == [
        "Illustrative risk of restless legs syndrome (M2)",
        "  this person:          12.3%",
        "  men of all adult ages:8.0%",
        "  relative risk:        1.54 times the average",
        "  polygenic score:      not computed (not every genotype was given)",
        "",
        ("Fewer than 1 out of 100 people like this would have RLS, compared with fewer than 1 out of 100 men of "
        "all adult ages."),
        "",
        "Please note:",
        "  - first caveat",
        "  - second caveat",
    ]
    assert _person(inputs={"age": 70.5, "sex": None}).statement.endswith("about 8 out of 100 adults aged 70.5.")


def test_input_errors_one_message_per_field() -> None:
    # the messages typed from the rules of individual_risk (ages 18-99, pregnancy 18-49)
    assert risk.input_errors() == {}
    assert risk.input_errors(age=30, sex="f", pregnant=True, trimester=2, ferritin=12.5,
                             genotypes={"rs2300478": "TT"}) == {}
    assert risk.input_errors(age=10, sex="male", pregnant=True, ferritin=-1, genotypes={"rs2300478": "GA"}) == {
        "age": "age 10 is outside the adult range of the model (18-99 years)",
        "ferritin": "ferritin must be a positive number in µg/L, got -1",
        "pregnant": "pregnancy was given for a man; pregnancy applies to women only",
        "genotypes.rs2300478": "genotype 'GA' for rs2300478 has alleles that are not this variant's; "
                               "its alleles are G/T",
    }
    # an invalid age or sex is reported once, and not used again to judge the pregnancy
    assert risk.input_errors(age=10, sex="female", pregnant=True) == {
        "age": "age 10 is outside the adult range of the model (18-99 years)"}
    assert risk.input_errors(age=30, sex="x", pregnant=True) == {"sex": "sex must be 'female' or 'male', got 'x'"}
    # a valid age and sex are used to judge it
    assert risk.input_errors(age=60, sex="female", pregnant=True) == {
        "pregnant": "pregnancy at age 60 is outside the model's reproductive ages (18-49)"}
    assert risk.input_errors(age=30, sex="male", trimester=1) == {
        "pregnant": "pregnancy was given for a man; pregnancy applies to women only"}
    # a bad trimester is its own field and is not used again; a good one is
    assert risk.input_errors(pregnant=False, trimester=4) == {"trimester": "trimester must be 1, 2 or 3, got 4"}
    assert risk.input_errors(pregnant=False, trimester=2) == {
        "pregnant": "a trimester was given for someone who is not pregnant"}
    # the parameters' loci decide the alleles (TOX3 rs3104767 is only in the extended score)
    ext = dataclasses.replace(DEFAULT, loci=EXTENDED_LOCI)
    assert risk.input_errors(genotypes={"rs3104767": "GC"}, params=ext) == {}
    assert risk.input_errors(genotypes={"rs3104767": "GC"}) == {
        "genotypes.rs3104767": "variant 'rs3104767' is not in the score; the score's variants are rs2300478, "
                               "rs9357271, rs1975197, rs4626664"}
    # the model's own variants decide which genotypes are known
    lm = risk.generating_risk_model(cohort.solve_model(DEFAULT))
    one = dataclasses.replace(lm, score_weights={"rs9357271": 0.4})
    assert risk.input_errors(genotypes={"rs2300478": "GG", "rs9357271": "CT"}, model=one) == {
        "genotypes.rs2300478": "variant 'rs2300478' is not in the score; the score's variants are rs9357271"}


def test_individual_risk_dict_and_what_was_averaged() -> None:
    d = _person().to_dict()
    # JSON-ready: lists, not tuples, under the dataclass's own names, plus the statement
    assert (d["averaged_over"], d["ignored"], d["caveats"]) == (["ferritin"], ["pregnancy"],
                                                                ["first caveat", "second caveat"])
    assert set(d) == {f.name for f in dataclasses.fields(risk.IndividualRisk)} | {"statement"}
    # an unknown trimester is averaged over when the model uses pregnancy, and only inputs the
    # model uses are named
    assert risk.individual_risk(age=30, sex="female", pregnant=True).averaged_over == (
        "trimester", "ferritin", "genotypes")
    lm = risk.generating_risk_model(cohort.solve_model(DEFAULT))
    no_fer = dataclasses.replace(lm, uses=frozenset({"age", "sex", "pregnancy"}))
    assert risk.individual_risk(age=30, sex="female", pregnant=True, model=no_fer).averaged_over == ("trimester",)
    # age and sex shape the distribution of the other inputs: named even if the model lacks them
    only_sex = dataclasses.replace(lm, uses=frozenset({"sex"}))
    assert risk.individual_risk(sex="female", model=only_sex).averaged_over == ("age",)
