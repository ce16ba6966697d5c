"""Tests of the column registry, validation and harmonisation of user cohorts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rlsepi.errors import DataValidationError
from rlsepi.schema import DropReport, harmonise, parse_codes, parse_columns, validate


def raw() -> pd.DataFrame:
    return pd.DataFrame({
        "Age": [40, 51, 66, 70, 35],
        "gender": ["F", "m", "female", "MALE", "2"],
        "dx": ["yes", "no", None, "TRUE", "0"],
        "ferritin": [30.0, 80.0, np.nan, 120.0, 45.0],
    })


def test_harmonise_maps_names_and_codes_and_counts_dropped_rows() -> None:
    df, report = harmonise(raw(), columns={"age": "Age", "sex": "gender", "rls": "dx"},
                           require=["age", "sex", "rls"])
    assert df["sex"].tolist() == ["female", "male", "male", "female"]
    assert df["rls"].tolist() == [True, False, True, False]
    assert df["rls"].dtype == bool
    assert isinstance(report, DropReport)
    assert (report.n_input, report.n_used, report.n_dropped) == (5, 4, 1)
    assert report.missing == {"age": 0, "sex": 0, "rls": 1}
    assert report.renamed == {"age": "Age", "sex": "gender", "rls": "dx"}
    # ferritin is not required: its missing value is kept, not dropped
    assert df["ferritin"].isna().sum() == 0 and len(df) == 4


def test_missing_counted_per_column_even_when_one_row_misses_two() -> None:
    d = pd.DataFrame({"age": [40, None, 50], "sex": ["F", None, "M"], "rls": [1, 0, None]})
    df, report = harmonise(d, require=["age", "sex", "rls"])
    assert report.missing == {"age": 1, "sex": 1, "rls": 1}
    assert report.n_dropped == 2 and len(df) == 1
    assert "2 dropped" in report.summary()


def test_explicit_codes_override_automatic_ones() -> None:
    d = pd.DataFrame({"age": [40, 50], "sex": [0, 1], "rls": ["J", "N"]})
    with pytest.raises(DataValidationError, match=r"column 'sex' has 1 row \(row 1\).*--code sex:0="):
        harmonise(d, require=["sex"])
    df, report = harmonise(d, codes={"sex": {"0": "female", "1": "male"}, "rls": {"J": "yes", "N": "no"}},
                           require=["age", "sex", "rls"])
    assert df["sex"].tolist() == ["female", "male"]
    assert df["rls"].tolist() == [True, False]
    assert report.recoded["sex"] == {"0": "female", "1": "male"}


def test_code_to_missing() -> None:
    d = pd.DataFrame({"age": [40, 50, 60], "sex": ["F", "M", "9"], "rls": [1, 0, 1]})
    df, report = harmonise(d, codes={"sex": {"9": "NA"}}, require=["sex", "rls"])
    assert len(df) == 2 and report.missing["sex"] == 1


@pytest.mark.parametrize("frame, message", [
    ({"age": [40, 15, 30], "sex": ["F", "M", "F"], "rls": [0, 1, 0]}, r"column 'age' has 1 row \(row 2\).*adults"),
    ({"age": [40, 50, 30], "sex": ["F", "X", "F"], "rls": [0, 1, 0]}, r"column 'sex' has 1 row \(row 2\).*--code sex:X="),
    ({"age": [40, 50, 30], "sex": ["F", "M", "F"], "rls": [0, 2, 0]}, r"column 'rls' has 1 row \(row 2\).*not understood"),
    ({"age": [40, 50, 30], "sex": ["F", "M", "F"], "rls": [0, 1, 0], "ferritin": [20, 0, -1]},
     r"column 'ferritin' has 2 rows \(rows 2, 3\).*must be positive"),
    ({"age": [40, "forty", 30], "sex": ["F", "M", "F"], "rls": [0, 1, 0]}, r"column 'age' has 1 row \(row 2\) that are not numbers"),
])
def test_validation_errors_name_column_rows_and_fix(frame: dict, message: str) -> None:
    with pytest.raises(DataValidationError, match=message):
        harmonise(pd.DataFrame(frame), require=["age", "sex", "rls"])


def test_row_numbers_refer_to_the_file_even_after_missing_rows() -> None:
    d = pd.DataFrame({"age": [None, 40, 16], "sex": ["F", "F", "M"], "rls": [0, 1, 0]})
    with pytest.raises(DataValidationError, match=r"row 3\)"):
        harmonise(d, require=["age", "sex", "rls"])


def test_mapping_errors() -> None:
    with pytest.raises(DataValidationError, match="no column 'gender'"):
        harmonise(pd.DataFrame({"sex": ["F"]}), columns={"sex": "gender"})
    with pytest.raises(DataValidationError, match="column 'rls' is missing.*--column rls=YOURS"):
        harmonise(pd.DataFrame({"sex": ["F"]}), require=["rls"])
    with pytest.raises(DataValidationError, match="COLUMN:CODE=VALUE"):
        parse_codes(["sex=1"])
    with pytest.raises(DataValidationError, match="NAME=YOURS"):
        parse_columns(["sex"])


def test_parse() -> None:
    assert parse_codes(["sex:1=male", "rls:Y=yes"]) == {"sex": {"1": "male"}, "rls": {"Y": "yes"}}
    assert parse_columns(["sex=gender"]) == {"sex": "gender"}


def test_validate_passes_a_clean_table_unchanged() -> None:
    d = pd.DataFrame({"age": [40], "sex": ["female"], "ferritin": [12.0]})
    assert validate(d) is d


def test_other_yes_no_columns_on_request() -> None:
    d = pd.DataFrame({"age": [40, 50], "sex": ["F", "M"], "dx2": ["ja", "nein"]})
    with pytest.raises(DataValidationError, match=r"column 'dx2' has 2 rows \(rows 1, 2\) with codes not understood"):
        harmonise(d, boolean=["dx2"])
    df, _ = harmonise(d, boolean=["dx2"], codes={"dx2": {"ja": "yes", "nein": "no"}}, require=["dx2"])
    assert df["dx2"].tolist() == [True, False]


# --- plausibility rules between columns (issue 9, part 2); expected rows written by hand ---------


def _cohort(**cols) -> pd.DataFrame:
    base = {"person_id": [1, 2, 3, 4], "age": [30, 40, 50, 60], "sex": ["female", "male", "female", "male"],
            "pregnant": [True, False, False, False], "trimester": [2, None, None, None]}
    base.update(cols)
    return pd.DataFrame(base)


def test_a_plausible_cohort_passes() -> None:
    from rlsepi.schema import check_plausible

    check_plausible(_cohort())  # raises nothing


@pytest.mark.parametrize("cols,message", [
    ({"pregnant": [True, True, False, False], "trimester": [2, 1, None, None]},
     r"column 'pregnant' is yes for 1 row \(row 2\) of men"),
    ({"age": [55, 40, 50, 60]}, r"column 'pregnant' is yes for 1 row \(row 1\) aged outside the reproductive ages 18-49"),
    ({"trimester": [2, None, 3, None]}, r"column 'trimester' is given for 1 row \(row 3\) that are not pregnant"),
    ({"trimester": [None, None, None, None]}, r"column 'trimester' is empty for 1 row \(row 1\) that are pregnant"),
    ({"person_id": [7, 7, 3, 7]}, r"column 'person_id' has 3 rows \(rows 1, 2, 4\) sharing 1 value"),
    ({"pregnant": ["yes", "no", "perhaps", "no"]}, r"column 'pregnant' has 1 row \(row 3\) with codes not understood"),
])
def test_implausible_cohorts_are_refused_by_name(cols, message) -> None:
    from rlsepi.schema import check_plausible

    with pytest.raises(DataValidationError, match=message):
        check_plausible(_cohort(**cols))


def test_duplicate_ids_can_be_allowed_with_a_counted_warning() -> None:
    from rlsepi.errors import DataQualityWarning
    from rlsepi.schema import check_plausible

    with pytest.warns(DataQualityWarning, match=r"column 'person_id' has 2 rows \(rows 1, 2\)"):
        check_plausible(_cohort(person_id=[5, 5, 6, 8]), allow_duplicate_ids=True)


def test_infinite_values_and_all_blank_required_columns_are_refused() -> None:
    with pytest.raises(DataValidationError, match=r"column 'ferritin' has 1 row \(row 2\) that are infinite"):
        validate(pd.DataFrame({"ferritin": [10.0, np.inf]}))
    with pytest.raises(DataValidationError, match=r"column 'age' is empty in all 2 rows"):
        harmonise(pd.DataFrame({"age": [None, None], "sex": ["F", "M"], "rls": [0, 1]}), require=["age", "sex", "rls"])


def test_a_cohort_without_cases_or_with_one_row_is_not_analysable() -> None:
    from rlsepi.schema import require_analysable

    with pytest.raises(DataValidationError, match=r"column 'rls' has no cases among 3 rows"):
        require_analysable(pd.DataFrame({"rls": [False, False, False]}))
    with pytest.raises(DataValidationError, match=r"column 'rls' has no non-cases"):
        require_analysable(pd.DataFrame({"rls": [True, True]}))
    with pytest.raises(DataValidationError, match=r"the cohort has 1 row"):
        require_analysable(pd.DataFrame({"rls": [True]}))
    require_analysable(pd.DataFrame({"rls": [True, False]}))


def test_inestimable_terms_constant_and_collinear() -> None:
    from rlsepi.schema import inestimable_terms

    X = pd.DataFrame({"const": 1.0, "female": [1.0, 1, 1, 1, 1], "age": [20.0, 30, 40, 50, 60],
                      "t1": [1.0, 0, 0, 0, 0], "t2": [0.0, 1, 1, 1, 1], "age_years_x2": [40.0, 60, 80, 100, 120]})
    out = inestimable_terms(X)
    assert list(out) == ["female", "t2", "age_years_x2"]  # t2 = 1 - t1; the last is 2 x age
    assert "does not vary" in out["female"]
    assert "linear combination of t1" in out["t2"]
    assert "linear combination of age" in out["age_years_x2"]
    assert inestimable_terms(X[["const", "age", "t1"]]) == {}
