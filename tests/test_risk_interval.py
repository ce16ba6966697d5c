"""The 95% interval of an individual risk under a fitted model (delta method on the model's
covariance), against R: ``tests/reference/risk/predict_se.R`` fits the same M3 with glm() and gives
``predict(se.fit = TRUE)`` intervals for three people whose every input is known (then the
averaged risk is expit of the linear predictor and the two methods must agree)."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import pandas as pd
import pytest

from rlsepi import risk_models
from rlsepi.cli import main
from rlsepi.io import read_cohort
from rlsepi.risk import individual_risk

REF = Path(__file__).parent / "reference" / "risk"
PEOPLE = {  # the people of predict_se.R; genotypes written out from its effect-allele counts
    "pregnant_low_ferritin": dict(age=34, sex="female", pregnant=True, trimester=3, ferritin=20,
                                  genotypes={"rs2300478": "GT", "rs9357271": "TC", "rs1975197": "AA", "rs4626664": "GG"}),
    "older_man": dict(age=67, sex="male", pregnant=False, ferritin=140,
                      genotypes={"rs2300478": "GG", "rs9357271": "TT", "rs1975197": "GG", "rs4626664": "AG"}),
    "woman_45": dict(age=45, sex="female", pregnant=False, ferritin=35,
                     genotypes={"rs2300478": "TT", "rs9357271": "TC", "rs1975197": "GG", "rs4626664": "GG"}),
}


@pytest.fixture(scope="module")
def fit() -> risk_models.NestedFit:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", risk_models.RiskModelWarning)
        return risk_models.fit_nested(read_cohort(REF / "cohort.csv"))


def _written(fit: risk_models.NestedFit) -> dict:
    """The model file ``rlsepi fit --format json`` writes, read back."""
    return json.loads(json.dumps(risk_models.strict_json(fit.to_dict())))


@pytest.fixture(scope="module")
def model_doc(fit) -> dict:
    return _written(fit)


def test_interval_matches_r_predict_se(model_doc):
    r = pd.read_csv(REF / "predict_output.csv").set_index("person")
    model = risk_models.load_risk_model(model_doc, name="M3")
    for person, inputs in PEOPLE.items():
        got = individual_risk(**inputs, model=model)
        want = r.loc[person]
        assert got.probability == pytest.approx(want["probability"], rel=1e-6, abs=0)
        assert got.probability_lower == pytest.approx(want["lower"], rel=1e-6, abs=0)
        assert got.probability_upper == pytest.approx(want["upper"], rel=1e-6, abs=0)
        assert got.probability_lower < got.probability < got.probability_upper


def test_no_interval_for_the_generating_model_or_without_covariance(fit, model_doc):
    assert individual_risk(age=40).probability_lower is None
    old = json.loads(json.dumps(model_doc))
    for m in old["models"]:
        m.pop("covariance")  # a file written before the covariance was saved
    got = individual_risk(age=40, model=risk_models.load_risk_model(old))
    assert got.probability_lower is None and got.probability_upper is None
    with_cov = individual_risk(**PEOPLE["woman_45"], model=risk_models.load_risk_model(model_doc))
    assert with_cov.probability_lower is not None
    # a fit without a covariance matrix (the dataclass default) writes "covariance": null
    bare = dataclasses.replace(fit, models=tuple(dataclasses.replace(m, covariance=None) for m in fit.models))
    doc = _written(bare)
    assert [m["covariance"] for m in doc["models"]] == [None] * 4
    got = individual_risk(**PEOPLE["woman_45"], model=risk_models.load_risk_model(doc))
    assert got.probability == with_cov.probability and got.probability_lower is None
    # a variance that was not finite (a separated term; strict JSON writes it as null): the
    # model is still used for the risk, with no interval rather than a wrong one
    sep = json.loads(json.dumps(model_doc))
    cov = sep["models"][3]["covariance"]
    k = cov["terms"].index("trimester3")
    cov["matrix"][k][k] = None
    got = individual_risk(**PEOPLE["woman_45"], model=risk_models.load_risk_model(sep))
    assert got.probability == with_cov.probability
    assert got.probability_lower is None and got.probability_upper is None


def test_coefficients_without_uncertainty_give_a_point_interval(model_doc):
    # a model file whose covariance is all zeros (coefficients taken as known): se = 0, so
    # the interval expit(logit(p) -/+ 1.96 x 0) is the point p itself, not "no interval"
    known = json.loads(json.dumps(model_doc))
    cov = known["models"][3]["covariance"]
    cov["matrix"] = [[0.0] * len(cov["terms"]) for _ in cov["terms"]]
    got = individual_risk(**PEOPLE["woman_45"], model=risk_models.load_risk_model(known))
    # (up to the rounding of the round trip expit(logit(p)), ~1e-15 relative)
    assert got.probability_lower == pytest.approx(got.probability, rel=1e-13, abs=0)
    assert got.probability_upper == pytest.approx(got.probability, rel=1e-13, abs=0)


def test_numbers_too_large_for_a_float_are_refused_by_name(model_doc):
    # JSON allows an integer of any size; float(10**400) overflows (a traceback before the fix)
    big = json.loads(json.dumps(model_doc))
    big["models"][3]["coefficients"][1]["estimate"] = 10**400
    term = big["models"][3]["coefficients"][1]["term"]
    with pytest.raises(risk_models.DataValidationError, match=f"not finite numbers \\(terms {term}\\)"):
        risk_models.load_risk_model(big)
    big = json.loads(json.dumps(model_doc))
    big["models"][3]["covariance"]["matrix"][1][1] = 10**400
    with pytest.raises(risk_models.DataValidationError, match="covariance matrix with numbers too large for a float"):
        risk_models.load_risk_model(big)


def test_interval_when_inputs_are_averaged_and_in_the_cli(model_doc, tmp_path, capsys):
    path = tmp_path / "fit.json"
    path.write_text(json.dumps(model_doc))
    assert main(["risk", "--model", str(path), "--age", "50", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert 0 < out["probability_lower"] < out["probability"] < out["probability_upper"] < 1
    assert main(["risk", "--model", str(path), "--age", "50"]) == 0
    assert "95% interval:" in capsys.readouterr().out


def test_page_and_api_with_a_fitted_model(model_doc):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from rlsepi.web import create_app

    model = risk_models.load_risk_model(model_doc, name="M3")
    client = TestClient(create_app(model=model, provenance={"model": "M3 from fit.json"}))
    inputs = PEOPLE["older_man"]
    want = individual_risk(**inputs, model=model)
    api = client.post("/api/risk", json=inputs).json()
    assert (api["probability_lower"], api["probability_upper"]) == (want.probability_lower, want.probability_upper)
    form = {"age": "67", "sex": "male", "pregnant": "no", "ferritin": "140"} | {
        f"g_{rs}": call for rs, call in inputs["genotypes"].items()}
    page = client.post("/", data=form).text
    assert (f"95% interval of this person's risk: {100 * want.probability_lower:.1f}% to "
            f"{100 * want.probability_upper:.1f}%") in page
    assert "M3 from fit.json" in page and "fitted model M3" in page
