"""Closed-form sample size and power against R (epiR, pwr, power.t.test) and a hand calculation;
power by simulation against the closed form within Monte Carlo error."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rlsepi import power as pw
from rlsepi import power_simulation as psim
from rlsepi.cli import main
from rlsepi.errors import RLSEpiError

REF = Path(__file__).parent / "reference" / "power"


def _ref(name: str) -> dict[tuple[str, str], float]:
    df = pd.read_csv(REF / name)
    return {(c, q): float(v) for c, q, v in df.itertuples(index=False)}


R = _ref("power_r.csv")  # tests/reference/power/power.R
HAND = _ref("genetic_hand.csv")  # tests/reference/power/genetic_hand.R and genetic_hand.md

CASES = {
    ("prev_abs_0.08_0.005", "n"): lambda: pw.prevalence_precision(0.08, precision=0.005).n_total,
    ("prev_rel_0.08_0.1", "n"): lambda: pw.prevalence_precision(0.08, precision=0.1, relative=True).n_total,
    ("prev_abs_imperfect_N", "n"): lambda: pw.prevalence_precision(
        0.08, precision=0.01, population=50000, sensitivity=0.9, specificity=0.95, alpha=0.1).n_total,
    ("twoprop_n", "n_total"): lambda: pw.two_proportions(0.095, 0.057, power=0.8).n_total,
    ("twoprop_n_r05_deff", "n_total"): lambda: pw.two_proportions(
        0.12, 0.08, power=0.9, ratio=0.5, design_effect=1.5, sided=1).n_total,
    ("twoprop_power", "power"): lambda: pw.two_proportions(0.095, 0.057, n=1500).power,
    ("cc_n", "n_total"): lambda: pw.case_control(1.75, 0.45, power=0.8).n_total,
    ("cc_n", "n_case"): lambda: pw.case_control(1.75, 0.45, power=0.8).groups["cases"],
    ("cc_n_r3", "n_total"): lambda: pw.case_control(1.5, 0.2, power=0.9, controls_per_case=3, alpha=0.01).n_total,
    ("cc_n_r3", "n_case"): lambda: pw.case_control(1.5, 0.2, power=0.9, controls_per_case=3, alpha=0.01).groups["cases"],
    ("cc_power", "power"): lambda: pw.case_control(1.75, 0.45, n=400).power,
    ("t_n", "n_per_group"): lambda: pw.two_means(0.12, 0.243, power=0.8).groups["group1"],
    ("t_n_one_sided", "n_per_group"): lambda: pw.two_means(0.5, 1, power=0.9, alpha=0.01, sided=1).groups["group1"],
    ("t_power", "power"): lambda: pw.two_means(0.12, 0.243, n=60).power,
    ("t_power_strict", "power"): lambda: pw.two_means(0.3, 1, n=10, strict=True).power,
    ("r_power", "power"): lambda: pw.correlation(0.128, n=69).power,
    ("r_power_one_sided", "power"): lambda: pw.correlation(0.3, n=50, sided=1).power,
    ("r_n", "n"): lambda: pw.correlation(0.128, power=0.8).n_total,
}


@pytest.mark.parametrize("key", sorted(CASES), ids=lambda k: f"{k[0]}-{k[1]}")
def test_closed_forms_match_r(key):
    assert CASES[key]() == pytest.approx(R[key], abs=1e-6, rel=1e-9)


def test_every_r_answer_is_checked():
    assert set(CASES) == set(R)


@pytest.mark.parametrize("case, args", [
    ("additive_cc_2000", dict(eaf=0.24, odds_ratio=1.68, model="additive", design="case-control", n=2000, alpha=5e-8)),
    ("recessive_pop_20000", dict(eaf=0.24, odds_ratio=1.68, model="recessive", design="population", n=20000,
                                 alpha=5e-8)),
    ("dominant_cc13_3000", dict(eaf=0.30, odds_ratio=1.30, model="dominant", design="case-control", n=3000,
                                alpha=0.05, controls_per_case=2)),
])
def test_genetic_association_matches_hand_calculation(case, args):
    res = pw.genetic_association(args.pop("eaf"), args.pop("odds_ratio"), prevalence=0.08, **args)
    assert res.power == pytest.approx(HAND[(case, "power")], abs=1e-9)
    assert res.inputs["case_score_mean"] == pytest.approx(HAND[(case, "mu1")], abs=1e-9)
    assert res.inputs["control_score_mean"] == pytest.approx(HAND[(case, "mu0")], abs=1e-9)


def test_population_sample_pooled_variance_is_the_hwe_variance():
    # written in genetic_hand.md: recessive coding, population sample: vp = q^2 (1 - q^2)
    assert HAND[("recessive_pop_20000", "vp")] == pytest.approx(0.24**2 * (1 - 0.24**2), abs=1e-12)


@given(st.floats(0.2, 0.95), st.integers(20, 5000))
def test_sample_size_and_power_invert_each_other(target, n):
    r = pw.two_means(0.3, 1.0, power=target)
    assert pw.two_means(0.3, 1.0, n=r.groups["group1"]).power == pytest.approx(target, abs=1e-9)
    c = pw.correlation(0.2, power=target)
    assert pw.correlation(0.2, n=c.n_total).power == pytest.approx(target, abs=1e-9)
    g = pw.genetic_association(0.3, 1.3, prevalence=0.08, power=target, alpha=1e-3)
    assert pw.genetic_association(0.3, 1.3, prevalence=0.08, n=g.n_total, alpha=1e-3).power == pytest.approx(
        target, abs=1e-9)
    p = pw.two_proportions(0.1, 0.06, n=n)
    if 0.01 < p.power < 0.99:  # outside, the power is flat in n and does not determine it
        assert pw.two_proportions(0.1, 0.06, power=p.power).n_total == pytest.approx(n, rel=1e-9, abs=0)


def test_genotype_frequencies_reproduce_the_prevalence():
    fr = pw.genotype_frequencies(0.24, 1.68, 0.08)
    assert float(fr["population"] @ fr["penetrance"]) == pytest.approx(0.08, abs=1e-12)
    assert fr["cases"].sum() == pytest.approx(1) and fr["controls"].sum() == pytest.approx(1)


@pytest.mark.parametrize("call, match", [
    (lambda: pw.two_means(1, 0, n=10), "sd must be greater than 0"),
    (lambda: pw.two_means(1, 1, power=1.5), "power must lie between 0 and 1"),
    (lambda: pw.two_means(1, 1, n=-3), "n must be greater than 0"),
    (lambda: pw.two_proportions(0.1, 0.1, power=0.8), "no difference"),
    (lambda: pw.case_control(1.0, 0.3, power=0.8), "no effect"),
    (lambda: pw.correlation(1.2, n=50), "strictly between -1 and 1"),
    (lambda: pw.two_means(1, 1), "exactly one of n"),
    (lambda: pw.genetic_association(0.2, 1.2, prevalence=0.08, model="codominant", n=100), "genetic model"),
    (lambda: pw.prevalence_precision(0.08, precision=0.01, sensitivity=0.4, specificity=0.5), "must exceed 1"),
])
def test_bad_input_is_refused_by_name(call, match):
    with pytest.raises(RLSEpiError, match=match):
        call()


def test_simulated_power_agrees_with_closed_form_within_monte_carlo_error():
    """'rls ~ female' in N people from the calibrated population vs two proportions with the
    exact expected prevalence in women and men (the groups' sizes are random in the simulation
    and fixed in the closed form, and the Wald test differs from the score test by O(1/N);
    both are small beside the Monte Carlo SE)."""
    n = 1200
    ps = pw.prevalence_by_sex()
    ratio = ps["female_share"] / (1 - ps["female_share"])
    closed = pw.two_proportions(ps["female"], ps["male"], n=n, ratio=ratio).power
    sim = psim.simulate_power(n, term="female", model="rls ~ female", replicates=300, rng=11, workers=2)
    assert sim.failed == 0
    assert abs(sim.power - closed) < 3 * math.sqrt(closed * (1 - closed) / sim.replicates)
    # the truth is exact here: the crude female:male log odds ratio of the population
    assert sim.truth_source.startswith("exact")
    assert abs(sim.bias) < 4 * sim.bias_mcse + 0.02
    assert 0.5 < closed < 0.9  # a power where the check has teeth


def test_simulation_same_result_whatever_workers():
    a = psim.simulate_power(400, term="rs2300478", model="true", replicates=6, rng=3, workers=1)
    b = psim.simulate_power(400, term="rs2300478", model="true", replicates=6, rng=3, workers=2)
    pd.testing.assert_frame_equal(a.estimates, b.estimates)
    assert a.truth == pytest.approx(math.log(1.68))


def test_search_n_brackets_the_target():
    res = psim.search_n(0.8, term="female", model="rls ~ female", replicates=40, rng=2, n_start=600, rel_tol=0.3)
    ev = res.evaluations.set_index("n")["power"]
    assert ev[res.n] >= 0.8
    assert (ev[ev.index < res.n] < 0.8).any()


def test_unknown_term_is_refused():
    with pytest.raises(RLSEpiError, match="term 'prs' is not in model M1"):
        psim.simulate_power(500, term="prs", model="M1", replicates=2)


def test_cli_power_outputs(capsys, tmp_path):
    assert main(["power", "prevalence", "--precision", "0.005", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["n_total"] == pytest.approx(R[("prev_abs_0.08_0.005", "n")], abs=1e-6)
    assert doc["n_required"] == 11310
    out = tmp_path / "cc.csv"
    assert main(["power", "case-control", "--odds-ratio", "1.75", "--p0", "0.45", "--format", "csv",
                 "--out", str(out)]) == 0
    assert pd.read_csv(out)["n_total"].iloc[0] == pytest.approx(R[("cc_n", "n_total")], abs=1e-6)
    assert main(["power", "genetic", "--locus", "rs2300478", "--n", "2000"]) == 0
    assert "96.7%" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [
    ["power", "means", "--delta", "1", "--sd", "0"],
    ["power", "means", "--delta", "1", "--sd", "1", "--power", "1.5"],
    ["power", "means", "--delta", "1", "--sd", "1", "--n", "-5"],
    ["power", "genetic", "--locus", "rs0"],
])
def test_cli_bad_input_exit_2_one_line(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own refusals
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(err) and err[-1].startswith("rlsepi")


def test_fast_derivation_equals_risk_models_derive_columns():
    from rlsepi import cohort
    from rlsepi.parameters import DEFAULT
    from rlsepi.risk_models import derive_columns

    df = cohort.simulate(3000, rng=5)
    slow, spec_slow, _ = derive_columns(df, params=DEFAULT)
    fast, spec_fast = psim._derive(df, DEFAULT)
    pd.testing.assert_frame_equal(fast[slow.columns], slow, check_dtype=False, rtol=1e-12)
    assert spec_fast == spec_slow
