"""Refusals at the boundary (parameters, files) and small conversions, each checked by its
message or value: paths no other test reached."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import warnings

import numpy as np
import pandas as pd
import pytest

from rlsepi import io
from rlsepi.errors import DataValidationError, OutputExistsError, ParameterError, RLSEpiError
from rlsepi.parameters import load_parameters, parameters_from_mapping


@pytest.mark.parametrize(("mapping", "message"), [
    ({"targets": {"prevalence": {"kind": "median"}}}, "'targets.prevalence.kind' = 'median' is not allowed"),
    ({"targets": {"clinically_significant": {"value": 0.09, "low": 0.05, "high": 0.1}}},
     "'targets.clinically_significant.value' = 0.09 must be below 'targets.prevalence.value' = 0.08"),
    ({"population": {"standard": "mars"}}, "'population.standard' = 'mars' is not allowed"),
    ({"population": {"min_age": 18, "max_age": 30}}, "leave fewer than 20 years of age"),
    ({"pregnancy": {"trimester_weeks": [13, 14]}}, "'pregnancy.trimester_weeks' must have 3 values, got 2"),
    ({"pregnancy": {"min_age": 45, "max_age": 40}}, "'pregnancy.min_age' = 45 exceeds 'pregnancy.max_age' = 40"),
    ({"ferritin": {"clinical_cuts": [75.0, 50.0]}}, "'ferritin.clinical_cuts' must be two increasing values"),
    ({"ferritin": {"pregnancy_deficiency": [0.1, 0.2]}}, "'ferritin.pregnancy_deficiency' must have 3 values"),
    ({"targets": 5}, "parameter 'targets' must be a table, got 5"),
    ({"targets": {"prevalence": {"value": [0.1]}}}, "'targets.prevalence.value' must be a single value"),
    ({"targets": {"prevalence": {"value": "high"}}}, "'targets.prevalence.value' must be a number, got 'high'"),
    ({"targets": {"prevalence": {"source": 3}}}, "'targets.prevalence.source' must be text, got 3"),
    ({"pregnancy": {"trimester_weeks": 13}}, "'pregnancy.trimester_weeks' must be a list, got 13"),
    ({"loci": [1, 2]}, "'loci' must be a table of tables keyed by rsID"),
    ({"loci": {"rs999": 5}}, "parameter 'loci.rs999' must be a table"),
    ({"targets": {"peak_age": {"value": 10}}}, "peak_age"),
])
def test_parameter_refusals_name_the_key(mapping, message) -> None:
    with pytest.raises(ParameterError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parameters_from_mapping(mapping)


def test_parameter_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="does not exist"):
        load_parameters(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[targets\n")
    with pytest.raises(ParameterError, match="is not valid TOML"):
        load_parameters(bad)
    with pytest.raises(ParameterError, match="is a folder; give a TOML file"):
        load_parameters(tmp_path)  # a folder
    wrong = tmp_path / "wrong.toml"
    wrong.write_text("[targets.prevalence]\nvalue = 1.5\n")
    with pytest.raises(ParameterError, match=r"^.*wrong\.toml: .*targets\.prevalence\.value"):
        load_parameters(wrong)


def test_output_path_refusals(tmp_path: Path) -> None:
    with pytest.raises(OutputExistsError, match="is a folder; give a file name"):
        io.check_output_path(tmp_path)
    f = tmp_path / "x.txt"
    f.write_text("old")
    with pytest.raises(OutputExistsError, match="already exists; use --force"):
        io.check_output_path(f)
    with pytest.raises(RLSEpiError, match="does not exist; create it first"):
        io.check_output_path(tmp_path / "nope" / "x.txt")
    # a failing block leaves neither the old file changed nor a temporary file behind
    with pytest.raises(ValueError, match="boom"):
        with io.atomic_output(f, force=True, mode="w") as fh:
            fh.write("new")
            raise ValueError("boom")
    assert f.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["x.txt"]
    if os.geteuid() != 0:  # root may write anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        with pytest.raises(RLSEpiError, match="is not writable"):
            io.check_output_path(ro / "x.txt")


def test_read_cohort_paths(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="input file .* does not exist"):
        io.read_cohort(tmp_path / "none.csv")
    gz = tmp_path / "c.csv.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write("age,rls\n30,1\n40,0\n")
    assert io.read_cohort(gz)["age"].tolist() == [30, 40]
    broken = tmp_path / "c.parquet"
    broken.write_bytes(b"not parquet at all")
    with pytest.raises(DataValidationError, match="cannot read"):
        io.read_cohort(broken)


def test_to_jsonable_converts_numpy() -> None:
    out = io.to_jsonable({"a": np.int64(3), "b": np.array([1.5, 2.0]), "c": (np.float32(0.5),)})
    assert out == {"a": 3, "b": [1.5, 2.0], "c": [0.5]}
    assert type(out["a"]) is int and type(out["b"][0]) is float


# --- models, simulation study, simulator --------------------------------------------------

from rlsepi import cohort, risk_models, risk_validate  # noqa: E402

REF = Path(__file__).parent / "reference" / "risk"


@pytest.fixture(scope="module")
def fixture_cohort() -> pd.DataFrame:
    return io.read_cohort(REF / "cohort.csv")


@pytest.mark.parametrize(("kwargs", "edit", "message"), [
    ({"ferritin": "cubic"}, None, "ferritin coding must be 'log2' or 'cut', got 'cubic'"),
    ({"age": "linear"}, None, "age coding must be 'quadratic' or 'spline', got 'linear'"),
    ({"alpha": 2.0}, None, "alpha must lie between 0 and 1, got 2.0"),
    ({"alpha": 0.0}, None, "alpha must lie between 0 and 1, got 0.0"),  # both ends excluded
    ({"alpha": 1.0}, None, "alpha must lie between 0 and 1, got 1.0"),
    ({"cv_folds": 1}, None, "cv_folds must be at least 2, got 1"),
    ({}, lambda d: d.drop(columns="trimester"), "column 'trimester' is missing"),
    ({}, lambda d: d.assign(ferritin=np.nan), "column 'ferritin' is empty in all 5000 rows"),
    ({"age": "spline"}, lambda d: d.assign(age=40 + (d.index % 2)), "too few distinct values for a 4-knot spline"),
])
def test_model_refusals(fixture_cohort, kwargs, edit, message) -> None:
    df = fixture_cohort if edit is None else edit(fixture_cohort.copy())
    with pytest.raises(DataValidationError, match=message):
        risk_models.fit_nested(df, **kwargs)


def test_events_exactly_as_many_as_folds(fixture_cohort) -> None:
    # cross-validation needs one event in each fold: 2 events in 400 rows fit with 2 folds
    # (with the warnings such data deserve), 1 event is refused
    df = fixture_cohort.iloc[:400].assign(rls=False)
    df.iloc[[3, 10], df.columns.get_loc("rls")] = True
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = risk_models.fit_nested(df, cv_folds=2)
    assert (res.n, res.events) == (400, 2)
    # M0 has 3 coefficients besides the intercept (female, age10, age10_sq): 2 / 3 = 0.7 per coefficient
    assert "M0: 2 events for 3 coefficients (0.7 per coefficient, fewer than 10); estimates may be biased " \
        "and unstable" in [str(w.message) for w in caught]
    df.iloc[[3], df.columns.get_loc("rls")] = False
    with pytest.raises(DataValidationError, match="^1 events among 400 rows: too few events or non-events"):
        risk_models.fit_nested(df, cv_folds=2)


def test_nested_fit_lookup_and_comparison_text(fixture_cohort) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = risk_models.fit_nested(fixture_cohort.iloc[:3000], cv_folds=2)
    with pytest.raises(KeyError):
        res["M7"]
    c = res.comparisons[0]
    assert c.summary().startswith(f"{c.larger} vs {c.smaller}: LR chi2 {c.lr_statistic:.2f} on {c.df} df")
    assert c.to_frame()["lr_statistic"].iloc[0] == c.lr_statistic


@pytest.mark.parametrize(("call", "message"), [
    (lambda: risk_validate.simulation_study(replicates=1, n=1000), "replicates must be at least 2, got 1"),
    (lambda: risk_validate.simulation_study(replicates=2, n=50), "n must be at least 100, got 50"),
    (lambda: risk_validate.performance(np.array([0.1]), np.array([0.1]), 0.0), "at least 2 replicates"),
    (lambda: cohort.simulate(100, rng=-1), "seed must be a non-negative integer"),
    (lambda: cohort.simulate(100, rng=1, workers=0), "workers must be at least 1, got 0"),
])
def test_study_and_simulator_refusals(call, message) -> None:
    with pytest.raises(RLSEpiError, match=message):
        call()


def test_simulation_study_with_two_workers_equals_one() -> None:
    a = risk_validate.simulation_study(replicates=2, n=2000, rng=3)
    b = risk_validate.simulation_study(replicates=2, n=2000, rng=3, workers=2)
    pd.testing.assert_frame_equal(a.estimates, b.estimates)
    pd.testing.assert_frame_equal(a.to_frame(), a.table)


# --- the user's columns and codes; the command line's argument types -----------------------

from rlsepi.cli import main  # noqa: E402
from rlsepi.schema import harmonise  # noqa: E402


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"columns": {"age": "Age", "sex": "Age"}}, "column mapping 'sex=Age': the file already has a column 'sex'"),
    ({"columns": {"age": "Years"}}, "column mapping 'age=Years': the file has no column 'Years'"),
    ({"codes": {"smoker": {"y": True}}}, "code mapping for column 'smoker': there is no such column"),
    ({"codes": {"rls": {"yes": "maybe"}}}, "column 'rls' must be yes/no; code mapping gives 'maybe'"),
])
def test_harmonise_refusals(kwargs, message) -> None:
    raw = pd.DataFrame({"Age": [30, 40], "sex": ["F", "M"], "rls": ["yes", "no"]})
    with pytest.raises(DataValidationError, match=message):
        harmonise(raw, **kwargs)


def test_harmonise_explicit_codes_for_numbers_and_other_columns() -> None:
    raw = pd.DataFrame({"age": ["30", "forty"], "sex": ["F", "M"], "rls": [1, 0], "site": ["a", "b"]})
    df, _ = harmonise(raw, codes={"age": {"forty": 40}, "site": {"a": "Aarhus"}})
    assert df["age"].tolist() == [30, 40] and df["site"].tolist() == ["Aarhus", "b"]


@pytest.mark.parametrize(("args", "message"), [
    (["prevalence", "x.csv", "--alpha", "1"], "must lie between 0 and 1 (exclusive), got 1"),
    (["prevalence", "x.csv", "--alpha", "lots"], "expected a number between 0 and 1, got 'lots'"),
    (["prevalence", "x.csv", "--n-boot", "-3"], "must be 0 or more, got -3"),
    (["prevalence", "x.csv", "--seed", "one"], "expected a whole number, got 'one'"),
])
def test_cli_argument_types(args, message, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_refuses_a_folder_without_parquet_files_as_the_cohort(tmp_path: Path, capsys) -> None:
    # a folder is read as a Parquet dataset (one file per partition); an empty one is refused
    assert main(["check", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == (f"rlsepi: error: folder '{tmp_path}' holds no .parquet files; give a Parquet dataset folder "
                   "or a file\n")


def test_targets_with_an_empty_trimester_are_not_judged_as_passed() -> None:
    from rlsepi.targets import check_targets

    df = cohort.simulate(3000, rng=8)
    df.loc[df["trimester"] == 2, ["pregnant", "trimester"]] = [False, pd.NA]
    res = {r.name: r for r in check_targets(df).results}
    t2 = res["pregnancy_trimester2"]
    assert t2.n == 0 and np.isnan(t2.estimate) and not t2.passed
    t1 = res["pregnancy_trimester1"]
    sub = df[df["pregnant"].astype(bool) & (df["trimester"] == 1)]
    assert t1.n == len(sub) and t1.estimate == pytest.approx(sub["rls"].mean(), rel=1e-15, abs=0)


@pytest.mark.parametrize(("error", "code", "err"), [(KeyboardInterrupt, 130, "rlsepi: interrupted; nothing was written\n"),
                                                     (BrokenPipeError, 0, "")])
def test_cli_interrupt_and_broken_pipe(monkeypatch, capsys, error, code, err) -> None:
    import rlsepi.commands.params as params_command

    def boom(args):
        raise error()

    monkeypatch.setattr(params_command, "run", boom)
    assert main(["params"]) == code
    assert capsys.readouterr().err == err
