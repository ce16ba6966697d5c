"""Table 1 and the other descriptive helpers against independent answers.

Known answers: tests/reference/descriptive/table_one.csv, written by base R
(tests/reference/descriptive/table_one.R) from the raw fixture cohort; the small examples
below are worked by hand in their comments.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rlsepi.descriptive import calibration_points, quantile_groups, roc_points, table_one
from rlsepi.errors import DataValidationError

REF = Path(__file__).parent / "reference"
GROUPS = ("no RLS", "RLS", "overall")


@pytest.fixture(scope="module")
def fixture_cohort() -> pd.DataFrame:
    return pd.read_csv(REF / "risk" / "cohort.csv")


@pytest.fixture(scope="module")
def r_table() -> dict[tuple[str, str, str], float]:
    t = pd.read_csv(REF / "descriptive" / "table_one.csv")
    return {(r.item, r.group, r.statistic): float(r.value) for r in t.itertuples()}


def _row(t, characteristic: str) -> dict:
    rows = [r for r in t.rows if r["characteristic"] == characteristic]
    assert len(rows) == 1, f"{characteristic!r} appears {len(rows)} times"
    return rows[0]


def test_table_one_matches_r(fixture_cohort, r_table) -> None:
    t = table_one(fixture_cohort)
    assert t.groups == ("no RLS", "RLS")
    for g in GROUPS:
        # counts are integers: exact
        assert _row(t, "people")["values"][g] == (r_table["people", g, "n"],)
        women = _row(t, "women")["values"][g]
        assert women == (r_table["women", g, "count"], r_table["people", g, "n"])
        preg = _row(t, "pregnant (women 18-49)")["values"][g]
        assert preg == (r_table["pregnant", g, "count"], r_table["pregnant", g, "denominator"])
        low = _row(t, "ferritin <= 50 µg/L")["values"][g]
        assert low == (r_table["ferritin_low", g, "count"], r_table["people", g, "n"])
        # means, SDs, quantiles and frequencies: R and numpy agree to rounding (rtol 1e-13)
        np.testing.assert_allclose(_row(t, "age, years")["values"][g],
                                   [r_table["age", g, "mean"], r_table["age", g, "sd"]], rtol=1e-13)
        np.testing.assert_allclose(_row(t, "serum ferritin, µg/L")["values"][g],
                                   [r_table["ferritin", g, s] for s in ("median", "q1", "q3")], rtol=1e-13)
        for rsid in ("rs2300478", "rs9357271", "rs1975197", "rs4626664"):
            (freq,) = _row(t, f"{rsid} effect allele")["values"][g]
            np.testing.assert_allclose(freq, r_table[rsid, g, "frequency"], rtol=1e-13)


def test_table_one_text_is_the_values_formatted(fixture_cohort, r_table) -> None:
    """The text a reader sees, formatted here from R's numbers (not from ours)."""
    frame = table_one(fixture_cohort).to_frame()
    frame = frame.set_index("characteristic")
    for g in GROUPS:
        n = r_table["people", g, "n"]
        assert frame.loc["people", g] == f"{int(n):,}"
        assert frame.loc["age, years", g] == f"{r_table['age', g, 'mean']:.1f} ({r_table['age', g, 'sd']:.1f})"
        k = r_table["women", g, "count"]
        assert frame.loc["women", g] == f"{int(k):,} ({100 * k / n:.1f}%)"
        assert frame.loc["rs2300478 effect allele", g] == f"{r_table['rs2300478', g, 'frequency']:.3f}"


def test_table_one_small_by_hand() -> None:
    # 6 people; cases are rows 4-6.
    # no RLS (rows 1-3): ages 20, 30, 70 -> mean 40, SD sqrt(((-20)^2+(-10)^2+30^2)/2) = sqrt(700)
    #   women 2 of 3; pregnant among women 18-49: row 1 only (row 3 is 70) -> 1 of 1
    #   ferritin 10, 60, 100 -> median 60, Q1 35, Q3 80; <= 50: 1 of 3
    #   rs1 counts 0, 1, 2 -> frequency 3/6 = 0.5; IRLS missing for all -> "-"
    # RLS (rows 4-6): ages 40, 50, 60 -> mean 50, SD 10; women 1 of 3 (row 4, age 40, not pregnant)
    #   ferritin 50, 20, 200 -> median 50, Q1 35, Q3 125; <= 50: 2 of 3 (50 counts: "at or below")
    #   rs1 counts 2, 2, 2 -> 1.0; IRLS 10, 20, 30 -> median 20 [15-25]
    df = pd.DataFrame({
        "age": [20, 30, 70, 40, 50, 60],
        "sex": ["female", "male", "female", "female", "male", "male"],
        "pregnant": [True, False, False, False, False, False],
        "ferritin": [10.0, 60.0, 100.0, 50.0, 20.0, 200.0],
        "rs1": [0, 1, 2, 2, 2, 2],
        "irls_score": [np.nan, np.nan, np.nan, 10, 20, 30],
        "rls": [False, False, False, True, True, True],
    })
    t = table_one(df)
    v = {r["characteristic"]: r["values"] for r in t.rows}
    assert v["people"] == {"no RLS": (3,), "RLS": (3,), "overall": (6,)}
    np.testing.assert_allclose(v["age, years"]["no RLS"], [40, np.sqrt(700)], rtol=1e-15)
    np.testing.assert_allclose(v["age, years"]["RLS"], [50, 10], rtol=1e-15)
    assert v["women"] == {"no RLS": (2, 3), "RLS": (1, 3), "overall": (3, 6)}
    assert v["pregnant (women 18-49)"] == {"no RLS": (1, 1), "RLS": (0, 1), "overall": (1, 2)}
    assert v["serum ferritin, µg/L"]["no RLS"] == (60.0, 35.0, 80.0)
    assert v["serum ferritin, µg/L"]["RLS"] == (50.0, 35.0, 125.0)
    assert v["ferritin <= 50 µg/L"] == {"no RLS": (1, 3), "RLS": (2, 3), "overall": (3, 6)}
    assert v["rs1 effect allele"] == {"no RLS": (0.5,), "RLS": (1.0,), "overall": (0.75,)}
    assert v["IRLS score (cases)"] == {"no RLS": (), "RLS": (20.0, 15.0, 25.0), "overall": (20.0, 15.0, 25.0)}
    frame = t.to_frame().set_index("characteristic")
    assert frame["statistic"].tolist() == ["n", "mean (SD)", "n (%)", "n (%)", "median [IQR]", "n (%)",
                                           "frequency", "median [IQR]"]
    assert frame.loc["women"].tolist() == ["n (%)", "2 (66.7%)", "1 (33.3%)", "3 (50.0%)"]
    assert frame.loc["pregnant (women 18-49)"].tolist() == ["n (%)", "1 (100.0%)", "0 (0.0%)", "1 (50.0%)"]
    assert frame.loc["ferritin <= 50 µg/L"].tolist() == ["n (%)", "1 (33.3%)", "2 (66.7%)", "3 (50.0%)"]
    assert t.by == "rls"
    assert frame.loc["IRLS score (cases)"].tolist() == ["median [IQR]", "-", "20 [15-25]", "20 [15-25]"]
    assert frame.loc["serum ferritin, µg/L", "RLS"] == "50 [35-125]"
    assert frame.loc["rs1 effect allele"].tolist() == ["frequency", "0.500", "1.000", "0.750"]
    s = t.summary()
    assert s.splitlines()[0].split() == ["characteristic", "statistic", "no", "RLS", "RLS", "overall"]
    assert s.splitlines()[1].split()[:2] == ["people", "n"]  # no index column
    assert "2 (66.7%)" in s


def test_table_one_empty_group_and_labels() -> None:
    # nobody has RLS: the RLS column is all zero counts, formatted "0" (no division by zero)
    df = pd.DataFrame({"age": [30, 40], "sex": ["female", "male"], "rls": [0, 0]})
    t = table_one(df, labels=("controls", "cases"))
    frame = t.to_frame().set_index("characteristic")
    assert frame.loc["people"].tolist() == ["n", "2", "0", "2"]
    assert frame.loc["women"].tolist() == ["n (%)", "1 (50.0%)", "0", "1 (50.0%)"]


def test_table_one_refuses_missing_group_column() -> None:
    with pytest.raises(DataValidationError, match="column 'case' is missing"):
        table_one(pd.DataFrame({"age": [1]}), by="case")


def test_quantile_groups_by_hand() -> None:
    # 10 values, quintiles of 2 each; labels carry each group's range
    g = quantile_groups(np.arange(10.0), q=5)
    assert g.astype(str).tolist() == ["Q1 (0 to 1)"] * 2 + ["Q2 (2 to 3)"] * 2 + ["Q3 (4 to 5)"] * 2 + \
        ["Q4 (6 to 7)"] * 2 + ["Q5 (8 to 9)"] * 2
    assert g.cat.ordered
    # defaults: quintiles, named "quantile"
    d = quantile_groups(np.arange(10.0))
    assert d.name == "quantile" and len(d.cat.categories) == 5
    # the input's index is kept (people stay matched to their group)
    idx = pd.Index([7, 3, 9, 1], name="person")
    kept = quantile_groups(pd.Series([4.0, 1.0, 3.0, 2.0], index=idx), q=2, name="g")
    assert kept.index.equals(idx) and kept.name == "g"
    assert kept.astype(str).tolist() == ["Q2 (3 to 4)", "Q1 (1 to 2)", "Q2 (3 to 4)", "Q1 (1 to 2)"]
    # ten groups: the categories are in numeric order (Q10 last, not after Q1)
    deciles = quantile_groups(np.arange(20.0), q=10)
    assert [c.split()[0] for c in deciles.cat.categories] == [f"Q{i}" for i in range(1, 11)]
    assert str(deciles.max()).startswith("Q10 ")
    # ties merge groups: values 0,0,0,0,1 have one cut point between 0 and 1 at most
    tied = quantile_groups(pd.Series([0, 0, 0, 0, 1]), q=5)
    assert list(tied.cat.categories) == ["Q1 (0 to 0)", "Q2 (1 to 1)"]
    with pytest.raises(DataValidationError, match="1 values are missing"):
        quantile_groups(pd.Series([1.0, np.nan]))
    # numbers given as text (a column read as strings) are grouped as numbers: "10" is above "9"
    text = quantile_groups(pd.Series(["9", "10", "2", "1"]), q=2)
    assert text.astype(str).tolist() == ["Q2 (9 to 10)", "Q2 (9 to 10)", "Q1 (1 to 2)", "Q1 (1 to 2)"]


def test_roc_and_calibration_points_by_hand() -> None:
    # y = 0,0,1,1 with scores .1,.4,.35,.8: thresholds .8 (tpr .5, fpr 0), .4 (.5, .5),
    # .35 (1, .5), .1 (1, 1)
    fpr, tpr = roc_points(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 0.5, 1, 1])
    # a perfect score: 7 thresholds give 7 points on two straight runs; points inside a run
    # are dropped (fewer than 7 remain) and the corners (0,0), (0,1), (1,1) stay
    fpr, tpr = roc_points(np.array([0, 0, 0, 1, 1, 1]), np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]))
    corners = set(zip(fpr.tolist(), tpr.tolist()))
    assert len(fpr) < 7 and {(0.0, 0.0), (0.0, 1.0), (1.0, 1.0)} <= corners
    assert not {(1 / 3, 1.0), (2 / 3, 1.0)} & corners
    # quantile groups, not equal-width bins: {.1, .2} and {.3, .9}
    pred, obs = calibration_points(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.3, 0.9]), groups=2)
    np.testing.assert_allclose(pred, [0.15, 0.6], rtol=1e-15)
    np.testing.assert_allclose(obs, [0.0, 1.0], rtol=1e-15)
    # default: ten groups (deciles of 20 distinct predictions, two each)
    pred10, _ = calibration_points(np.tile([0, 1], 10), np.linspace(0.01, 0.2, 20))
    assert len(pred10) == 10
    # two quantile groups of 2: predicted means (0.1+0.2)/2 and (0.7+0.9)/2, observed 0.5 and 1
    pred, obs = calibration_points(np.array([0, 1, 1, 1]), np.array([0.1, 0.2, 0.7, 0.9]), groups=2)
    np.testing.assert_allclose(pred, [0.15, 0.8], rtol=1e-15)
    np.testing.assert_allclose(obs, [0.5, 1.0], rtol=1e-15)
