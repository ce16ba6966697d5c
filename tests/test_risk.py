"""Tests of rlsepi.risk (individual risk), rlsepi.risk_models (nested logistic models) and
rlsepi.risk_validate (ADEMP simulation study).

Known answers come from independent sources: the marginal figures the generating model was
solved to reproduce (rlsepi.cohort.expected_figures, a separate code path), R's glm and pROC
(tests/reference/risk/, with the R script that made them), and Monte Carlo simulation.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pandas as pd
import pytest

from rlsepi import cli, cohort, risk
from rlsepi.errors import DataValidationError
from rlsepi.parameters import DEFAULT


@pytest.fixture(scope="module")
def truth() -> cohort.OutcomeModel:
    return cohort.solve_model(DEFAULT)


@pytest.fixture(scope="module")
def population() -> "object":
    return cohort.simulate(4000, rng=20241122)


# --- individual risk: exact averaging --------------------------------------------------


def test_everything_unknown_gives_the_prevalence(truth):
    figures = cohort.expected_figures(truth)
    r = risk.individual_risk()
    assert r.probability == pytest.approx(figures["prevalence"], abs=1e-12)
    assert r.probability == pytest.approx(DEFAULT.targets.prevalence.value, abs=1e-9)
    assert set(r.averaged_over) == {"age", "sex", "pregnancy", "ferritin", "genotypes"}


@pytest.mark.parametrize("k", [1, 2, 3])
def test_trimester_alone_gives_the_trimester_prevalence(truth, k):
    # conditioning on the trimester re-weights age (and ferritin) exactly as the solver did
    figures = cohort.expected_figures(truth)
    r = risk.individual_risk(trimester=k)
    assert r.probability == pytest.approx(figures[f"pregnancy_trimester{k}"], abs=1e-12)
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
        assert r.probability == pytest.approx(1 / (1 + math.exp(-e)), rel=1e-12)
        assert r.averaged_over == ()


def test_individual_risks_average_to_the_prevalence(population):
    """Calibration: with a random subset of each person's inputs hidden, the individual risks
    of a simulated population average to the prevalence, to Monte Carlo error."""
    rng = np.random.default_rng(5)
    df = population.iloc[:2500]
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
    assert r.prs == pytest.approx(score, abs=1e-12)
    sim = sum(weights[k] * population[k].to_numpy(float) for k in weights)
    emp = 100 * (np.mean(sim < score - 1e-9) + 0.5 * np.mean(np.abs(sim - score) <= 1e-9))
    assert r.prs_percentile == pytest.approx(emp, abs=4 * 100 * math.sqrt(0.25 / len(sim)))
    assert r.prs_z == pytest.approx((score - sim.mean()) / sim.std(), abs=0.1)


def test_genotype_parsing():
    assert risk.parse_genotype("rs2300478", "GT") == 1
    assert risk.parse_genotype("rs2300478", "tg") == 1
    assert risk.parse_genotype("rs2300478", "G/G") == 2
    assert risk.parse_genotype("rs9357271", "CC") == 0
    assert risk.parse_genotype("rs4626664", 2) == 2


@pytest.mark.parametrize("kwargs, message", [
    ({"age": 17}, "adult range"),
    ({"age": 100}, "adult range"),
    ({"sex": "male", "pregnant": True}, "man"),
    ({"sex": "male", "trimester": 2}, "man"),
    ({"age": 58, "pregnant": True}, "reproductive"),
    ({"ferritin": 0.0}, "positive"),
    ({"ferritin": -3.0}, "positive"),
    ({"genotypes": {"rs123": "AG"}}, "not in the score"),
    ({"genotypes": {"rs2300478": "AC"}}, "not this variant's"),
    ({"genotypes": {"rs2300478": "GX"}}, "two allele letters"),
    ({"pregnant": False, "trimester": 1}, "not pregnant"),
])
def test_refusals(kwargs, message):
    with pytest.raises(DataValidationError, match=message):
        risk.individual_risk(**kwargs)


def test_cli_risk_json(capsys):
    code = cli.main(["risk", "--age", "34", "--sex", "female", "--pregnant", "--trimester", "3",
                     "--ferritin", "20", "--genotype", "rs2300478=GT", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    direct = risk.individual_risk(age=34, sex="female", trimester=3, ferritin=20, genotypes={"rs2300478": "GT"})
    assert out["probability"] == pytest.approx(direct.probability, rel=1e-12)
    assert out["relative_risk"] == pytest.approx(direct.probability / direct.average_probability)
    assert "genotypes of rs9357271, rs1975197, rs4626664" in out["averaged_over"]
    assert out["prs"] is None
    assert "out of 100" in out["statement"] and len(out["caveats"]) == 3


def test_cli_risk_refuses_with_one_line(capsys):
    code = cli.main(["risk", "--sex", "male", "--pregnant"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("rlsepi: error:") and err.count("\n") == 1
