"""Re-checking a published study: recomputed p-values against R (tests/reference/study/study.R),
rounding ranges, GRIM, the Park et al. 2023 example, synthetic data, bad study files."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rlsepi import study as st
from rlsepi.cli import main
from rlsepi.errors import DataValidationError

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "park2023_dti_alps.toml"
R = {c.strip(): float(v) for c, v in pd.read_csv(Path(__file__).parent / "reference" / "study" / "study_r.csv",
                                                  dtype=str).itertuples(index=False)}


def rep(x: str) -> st.Reported:
    return st.Reported.parse(x, "test")


def test_t_tests_match_r():
    args = (rep("1.481"), rep("0.241"), 69, rep("1.601"), rep("0.245"), 51)
    p, lo, hi = st.p_range_means(*args, "student")
    assert p == pytest.approx(R["alps_student"], abs=1e-12)
    assert lo == pytest.approx(R["alps_student_min"], abs=1e-12)
    assert hi == pytest.approx(R["alps_student_max"], abs=1e-12)
    assert st.p_range_means(*args, "welch")[0] == pytest.approx(R["alps_welch"], abs=1e-12)
    age = (rep("57.0"), rep("6.7"), 69, rep("55.9"), rep("8.1"), 51)
    assert st.p_range_means(*age, "student")[0] == pytest.approx(R["age_student"], abs=1e-12)
    assert st.p_range_means(*age, "student")[2] == pytest.approx(R["age_student_max"], abs=1e-12)
    assert st.p_range_means(*age, "welch")[0] == pytest.approx(R["age_welch"], abs=1e-12)


def test_count_tests_match_r():
    for test, key in (("chi2", "sex_chi2"), ("chi2-yates", "sex_chi2_yates"), ("fisher", "sex_fisher"),
                      ("chi2-n1", "sex_chi2_n1")):
        assert st.p_counts(20, 69, 13, 51, test) == pytest.approx(R[key], abs=1e-12)


def test_correlation_matches_r():
    p, lo, hi = st.p_range_correlation(rep("-0.128"), 69)
    assert (p, lo, hi) == pytest.approx((R["r_age"], R["r_age_min"], R["r_age_max"]), abs=1e-12)


def test_reported_rounding_intervals():
    assert (rep("0.008").low, rep("0.008").high) == pytest.approx((0.0075, 0.0085))
    assert (rep("<0.001").low, rep("<0.001").high) == (0.0, 0.001)
    assert rep("57.0").decimals == 1 and rep("1.4715").decimals == 4


def test_grim_by_hand():
    # 5 integers: possible means are k/5 = 3.2, 3.4, ...; 3.25 reported to 2 decimals cannot arise
    assert st.grim(rep("3.20"), 5) == "consistent"
    assert st.grim(rep("3.25"), 5) == "inconsistent"
    assert st.grim(rep("57.0"), 69) == "not informative"  # 69 >= 10**1: every mean is possible
    assert st.grim(rep("2.55"), 10, items=2) == "consistent"  # 51/20


@pytest.fixture(scope="module")
def park():
    spec = st.load_study(st.read_study(EXAMPLE))
    return spec, st.check_study(spec)


def test_park_dti_alps_recomputes_to_0_0085_within_rounding_of_0_008(park):
    _, res = park
    t = res.tests
    row = t[(t["name"] == "DTI-ALPS index") & (t["reported_p"] == "0.008") & (t["test"] == "student")].iloc[0]
    assert row["p_recomputed"] == pytest.approx(0.0085, abs=5e-5)
    assert row["consistent"]


def test_park_flags_the_age_p_value_of_the_text(park):
    _, res = park
    v = res.verdicts[res.verdicts["name"] == "age, years"].set_index("reported_p")
    assert set(v.index) >= {"0.418", "0.443"}
    assert any("0.418 (Table 1), p = 0.443 (text)" in f for f in res.flags)
    # the sex p-values: the text's 0.672 is Pearson's chi-square, the table's 0.673 the 'N - 1' chi-square (MedCalc)
    tests = res.tests[(res.tests["name"] == "male sex") & (res.tests["reported_p"].isin(["0.672", "0.673"]))]
    fits = tests[tests["consistent"]].groupby("reported_p")["test"].apply(set).to_dict()
    assert fits == {"0.672": {"chi2"}, "0.673": {"chi2-n1"}}


def test_park_shows_every_published_p_value(park):
    spec, res = park
    n_reported = sum(len(t["reported"]) for t in spec["tests"])
    assert len(res.verdicts) == n_reported == 57  # 8 in Table 1 (two twice), 40 in Table 2, 9 correlations
    corr = res.verdicts[res.verdicts["name"].str.startswith("DTI-ALPS index vs")]
    assert (corr["verdict"] == "consistent").all() and len(corr) == 9


def test_park_percentages_are_truncated(park):
    _, res = park
    c = res.checks[res.checks["check"] == "percentage"].set_index("detail")["result"]
    assert c["28.9% reported for 20/69 = 28.986%"] == "truncated, not rounded"
    assert c["28.0% reported for 7/25 = 28.000%"] == "consistent"


def test_park_design_power_and_replication(park):
    from rlsepi.power import correlation, two_means

    _, res = park
    d = res.design.set_index(["name", "comparison"])
    alps = d.loc[("DTI-ALPS index", "RLS vs controls")]
    sp = np.sqrt((68 * 0.241**2 + 50 * 0.245**2) / 118)
    assert alps["replication_n_per_group"] == np.ceil(two_means(0.12, sp, power=0.9).groups["group1"])
    assert 0.6 < alps["power"] < 0.9
    r = d.loc[("DTI-ALPS index vs age", "in RLS")]
    assert r["power"] == pytest.approx(R_POWER_R_AGE, abs=1e-9)
    assert r["replication_n_total"] == np.ceil(correlation(-0.128, power=0.9).n_total)


# pwr.r.test(n = 69, r = 0.128) from tests/reference/power/power_r.csv ("r_power")
R_POWER_R_AGE = float(pd.read_csv(ROOT / "tests" / "reference" / "power" / "power_r.csv").set_index("case")
                      .loc["r_power", "value"])


def test_synthetic_data_has_exactly_the_reported_means_and_sds(park):
    spec, _ = park
    df = st.synthetic_data(spec, rng=4)
    g = df[df["group"] == "naive"]["DTI-ALPS index"]
    assert len(g) == 44
    assert g.mean() == pytest.approx(1.4715, abs=1e-12) and g.std(ddof=1) == pytest.approx(0.259, abs=1e-12)
    assert df[df["group"] == "rls"]["male sex"].sum() == 20
    again = st.synthetic_data(spec, rng=4)
    pd.testing.assert_frame_equal(df, again)


BAD = {
    "more cases than people": ('[groups.a]\nn = 10\n[groups.b]\nn = 10\n[[tests]]\nkind = "counts"\nname = "x"\n'
                               'groups = ["a", "b"]\ncount = [12, 3]\n', "12 people counted in group 'a'"),
    "sd of zero": ('[groups.a]\nn = 10\n[groups.b]\nn = 10\n[[tests]]\nkind = "means"\nname = "x"\n'
                   'groups = ["a", "b"]\nmean = [1, 2]\nsd = [0, 1]\n', "SD must be greater than 0"),
    "negative n": ('[groups.a]\nn = -3\n', "must be at least 1"),
    "parts do not add up": ('[groups.a]\nn = 10\nparts = ["b"]\n[groups.b]\nn = 4\n', "add up to 4"),
    "unknown group": ('[groups.a]\nn = 10\n[[tests]]\nkind = "correlation"\ngroup = "z"\nr = 0.1\n',
                      "group 'z' is not defined"),
    "p above 1": ('[groups.a]\nn = 10\n[[tests]]\nkind = "correlation"\ngroup = "a"\nr = 0.1\np = "1.3"\n',
                  "between 0 and 1"),
    "not toml": ("[groups.a\n", "not valid TOML"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_study_files_exit_2_with_one_line(name, tmp_path, capsys):
    text, message = BAD[name]
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(DataValidationError, match=message):
        st.load_study(st.read_study(path))
    assert main(["study", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rlsepi: error:")


def test_cli_study_outputs(tmp_path, capsys):
    assert main(["study", str(EXAMPLE)]) == 0
    md = capsys.readouterr().out
    assert "student 0.0085 (0.0078-0.0092)" in md and "p = 0.443 (text)" in md
    assert main(["study", str(EXAMPLE), "--format", "json", "--synthetic", str(tmp_path / "syn.csv")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["verdicts"]) == 57 and doc["flags"]
    syn = pd.read_csv(tmp_path / "syn.csv")
    assert set(syn["group"]) == {"rls", "naive", "treated", "controls"}
    assert main(["study", str(EXAMPLE), "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("name,kind,comparison,reported_p")


def test_verdicts_not_recomputable_and_decision_error():
    base = {"groups": {"a": {"n": 30}, "b": {"n": 30}}}
    means = {"kind": "means", "name": "x", "groups": ["a", "b"], "mean": ["10.0", "10.5"], "sd": ["2.0", "2.0"]}
    # p at the reported numbers is about 0.33: 0.01 fits no t test
    res = st.check_study(st.load_study({**base, "tests": [{**means, "p": "0.01", "tests": ["student", "welch"]}]}))
    assert res.verdicts["verdict"].iloc[0] == "decision error"
    res = st.check_study(st.load_study({**base, "tests": [{**means, "p": "0.01",
                                                           "tests": ["student", "mann-whitney"]}]}))
    assert res.verdicts["verdict"].iloc[0] == "not recomputable"
    res = st.check_study(st.load_study({**base, "tests": [{**means, "p": "0.20", "tests": ["student"]}]}))
    assert res.verdicts["verdict"].iloc[0] == "inconsistent"  # both sides of alpha agree: not a decision error


def test_flags_print_tiny_recomputed_p_values_in_scientific_notation():
    # 10.0 vs 15.0 (SD 2, n 30 each): Student's t = 9.68 on 58 df, p about 1e-13 (scipy below),
    # so a reported p = 0.20 is a decision error and the flag shows the recomputed range in
    # scientific notation ("student 1.92e-14 to 5e-13"), not "<1e-4"
    base = {"groups": {"a": {"n": 30}, "b": {"n": 30}}}
    means = {"kind": "means", "name": "x", "groups": ["a", "b"], "mean": ["10.0", "15.0"], "sd": ["2.0", "2.0"]}
    res = st.check_study(st.load_study({**base, "tests": [{**means, "p": "0.20", "tests": ["student"]}]}))
    assert res.verdicts["verdict"].iloc[0] == "decision error"
    flag = next(f for f in res.flags if f.startswith("x:"))
    m = re.search(r"\(student (\S+) to (\S+)\)", flag)
    assert m is not None and "<1e-4" not in flag, flag
    lo, hi = float(m.group(1)), float(m.group(2))
    from scipy import stats

    p_at_reported = stats.ttest_ind_from_stats(10.0, 2.0, 30, 15.0, 2.0, 30).pvalue
    assert 0 < lo <= p_at_reported <= hi < 1e-4
    assert m.group(1) == f"{lo:.3g}" and "e-" in m.group(1)


def _subgroup_result(whole_sd: str, whole_mean: str = "1.01") -> str:
    spec = st.load_study({
        "groups": {"all": {"n": 20, "parts": ["a", "b"]}, "a": {"n": 10}, "b": {"n": 10}},
        "summaries": [{"name": "x", "group": "a", "mean": "1.0", "sd": "1.0"},
                      {"name": "x", "group": "b", "mean": "1.02", "sd": "1.0"},
                      {"name": "x", "group": "all", "mean": whole_mean, "sd": whole_sd}]})
    checks = st.check_study(spec).checks
    return checks.loc[checks["check"] == "subgroups of all", "result"].item()


def test_subgroup_sd_minimum_inside_the_box_of_rounding_intervals():
    # Hand calculation: a = 1.0 (0.95-1.05), b = 1.02 (1.015-1.025) overlap, so the subgroup means
    # can be equal and the between-group sum of squares can be 0 (no corner of the box reaches 0:
    # the closest corners differ by 0.025, giving 10*10/20 * 0.025**2 = 0.003125).
    # Smallest whole SD: sqrt((9 * 0.95**2 * 2 + 0) / 19) = 0.924662...; from corners only it would be
    # sqrt((16.245 + 0.003125) / 19) = 0.924751..., so a reported 0.92470 (0.924695-0.924705) is
    # consistent, and only the interior minimum shows it.
    assert math.isclose(math.sqrt(9 * 0.95**2 * 2 / 19), 0.9246621, rel_tol=1e-7)
    assert _subgroup_result("0.92470") == "consistent"
    assert _subgroup_result("0.92460") == "inconsistent"  # below 0.924662: no rounding reaches it


def test_subgroup_mean_on_a_rounding_boundary_is_consistent():
    # 10 people at 1.0 (0.95-1.05) and 10 at 1.02 (1.015-1.025): the whole mean can be as low as
    # (10 * 0.95 + 10 * 1.015) / 20 = 0.9825, which is exactly the top of a reported "0.982"
    # (0.9815-0.9825). Touching intervals are consistent, whatever the last bit of the weighted mean.
    assert _subgroup_result("0.95", whole_mean="0.982") == "consistent"
    assert _subgroup_result("0.95", whole_mean="0.981") == "inconsistent"


def test_recomputed_p_range_text_by_hand() -> None:
    assert [st._fmt(0.0123), st._fmt(1e-4), st._fmt(1.92e-14), st._fmt(0.0)] == \
        ["0.0123", "0.0001", "1.92e-14", "<1e-308"]
