"""Every subcommand refuses bad or degenerate input the same way (issue 9, part 5).

Each case of the table runs one command (in this process, through :func:`rlsepi.cli.main`)
in a fresh folder holding the files it needs, and checks the command contract:

- the exit code (2 for bad input; 0 where the data are degenerate but usable, with a warning);
- for a refusal, exactly one line on the error stream, naming the problem (a regular
  expression per case), and no traceback;
- no file in the folder changed, and none left behind (no temporary file, no partial output).

A few cases run in a subprocess (signals; the --debug switch). The cohort readers are fuzzed
with hypothesis (random and truncated bytes, CSV and Parquet).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlsepi.cli import main

import rlsepi

ROOT = Path(rlsepi.__file__).resolve().parents[1]  # the package under test, for subprocesses

# --- the base cohort and its bad variants ----------------------------------------------------


@pytest.fixture(scope="module")
def base() -> pd.DataFrame:
    """A small valid cohort (2,000 simulated people, with cases, pregnancies and genotypes)."""
    from rlsepi.cohort import simulate

    df = simulate(2000, rng=20261124)
    assert df["rls"].sum() > 20 and df["pregnant"].sum() > 3
    return df


def csv(df: pd.DataFrame, **kw) -> bytes:
    return df.to_csv(index=False, **kw).encode()


def parquet(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def _edit(fn: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[pd.DataFrame], bytes]:
    def make(df: pd.DataFrame) -> bytes:
        return csv(fn(df.astype(object)))
    return make


def _set(rows, col, value):
    def fn(d: pd.DataFrame) -> pd.DataFrame:
        idx = rows(d) if callable(rows) else rows
        d.loc[idx, col] = value
        return d
    return fn


def _first_women(d: pd.DataFrame, k: int = 2, pregnant: bool = False):
    sel = (d["sex"] == "female") & (d["pregnant"] == pregnant)
    return d.index[sel][:k]


def _first_men(d: pd.DataFrame, k: int = 2):
    return d.index[d["sex"] == "male"][:k]


def _pregnant_men(d):
    idx = _first_men(d)
    d.loc[idx, "pregnant"] = True
    d.loc[idx, "trimester"] = 2
    return d


def _pregnant_at_85(d):
    idx = _first_women(d, 1)
    d.loc[idx, "age"] = 85
    d.loc[idx, "pregnant"] = True
    d.loc[idx, "trimester"] = 1
    return d


def _dup_ids(d):
    d.loc[d.index[[3, 4, 5]], "person_id"] = d.loc[d.index[2], "person_id"]
    return d


def _shift_rows(d):
    return d.sample(frac=1.0, random_state=1)


BAD_COHORTS: dict[str, tuple[Callable[[pd.DataFrame], bytes], str, str]] = {
    # name: (file bytes from the base cohort, file suffix, what the error line must say)
    "empty_file": (lambda d: b"", ".csv", r"cannot read|empty|no columns"),
    "header_only": (lambda d: csv(d.iloc[:0]), ".csv", r"no rows"),
    "binary_garbage": (lambda d: bytes(range(256)) * 40, ".csv", r"cannot read|column '\w+' is missing"),
    "random_parquet": (lambda d: b"PAR1" + bytes(np.random.default_rng(1).integers(0, 256, 3000, dtype=np.uint8)),
                       ".parquet", r"cannot read|not a readable Parquet"),
    "truncated_parquet": (lambda d: parquet(d)[: len(parquet(d)) // 2], ".parquet", r"cannot read|not a readable"),
    "semicolons": (lambda d: csv(d, sep=";"), ".csv", r"so it is separated by ';', not commas; save it as comma-sep"),
    "tabs_in_csv": (lambda d: csv(d, sep="\t"), ".csv", r"so it is separated by tabs, not commas; save it as comma-sep"),
    "no_rls_column": (lambda d: csv(d.drop(columns=["rls"])), ".csv", r"column 'rls' is missing"),
    "no_age_column": (lambda d: csv(d.drop(columns=["age"])), ".csv", r"column 'age' is missing"),
    "no_sex_column": (lambda d: csv(d.drop(columns=["sex"])), ".csv", r"column 'sex' is missing"),
    "sex_foreign_code": (_edit(_set([4, 9], "sex", "X")), ".csv", r"column 'sex' has 2 rows \(rows 5, 10\).*--code sex:X="),
    "sex_zero_one": (_edit(lambda d: d.assign(sex=(d["sex"] == "female").astype(int))), ".csv",
                     r"column 'sex' has \d+ rows.*'0'.*--code sex:0="),
    "pregnant_perhaps": (_edit(_set([7], "pregnant", "perhaps")), ".csv", r"column 'pregnant' has 1 row \(row 8\).*'perhaps'"),
    "rls_maybe": (_edit(_set([0, 1, 2, 3], "rls", "maybe")), ".csv", r"column 'rls' has 4 rows \(rows 1, 2, 3, …\).*'maybe'"),
    "pregnant_men": (_edit(_pregnant_men), ".csv", r"column 'pregnant' is yes for 2 rows.*of men"),
    "pregnant_at_85": (_edit(_pregnant_at_85), ".csv", r"column 'pregnant' is yes for 1 row.*reproductive ages 18-49"),
    "trimester_not_pregnant": (_edit(lambda d: _set(lambda x: _first_women(x, 3), "trimester", 2)(d)), ".csv",
                               r"column 'trimester' is given for 3 rows.*not pregnant"),
    "pregnant_no_trimester": (_edit(lambda d: _set(lambda x: _first_women(x, 1, True), "trimester", None)(d)), ".csv",
                              r"column 'trimester' is empty for 1 row.*pregnant"),
    "trimester_4": (_edit(lambda d: _set(lambda x: _first_women(x, 1, True), "trimester", 4)(d)), ".csv",
                    r"column 'trimester' has 1 row .*outside"),
    "duplicate_ids": (_edit(_dup_ids), ".csv", r"column 'person_id' has 4 rows \(rows 3, 4, 5, …\).*--allow-duplicate-ids"),
    "no_cases": (_edit(lambda d: d.assign(rls=False, rls_clinically_significant=False)), ".csv",
                 r"column 'rls' has no cases among 2000 rows"),
    "all_cases": (_edit(lambda d: d.assign(rls=True)), ".csv", r"column 'rls' has no non-cases"),
    "one_row": (_edit(lambda d: d.iloc[:1]), ".csv", r"the cohort has 1 row; at least 2"),
    "ages_all_blank": (_edit(lambda d: d.assign(age=None)), ".csv", r"column 'age' is empty in all 2000 rows"),
    "age_negative": (_edit(_set([10], "age", -4)), ".csv", r"column 'age' has 1 row \(row 11\) outside the allowed"),
    "age_150": (_edit(_set([11, 12], "age", 150)), ".csv", r"column 'age' has 2 rows \(rows 12, 13\) outside"),
    "age_text": (_edit(lambda d: d.assign(age=d["age"].astype(object)).pipe(_set([5], "age", "forty"))), ".csv",
                 r"column 'age' has 1 row \(row 6\) that are not numbers"),
    "age_inf": (_edit(_set([3], "age", np.inf)), ".csv", r"column 'age' has 1 row \(row 4\) that are infinite"),
    "ferritin_negative": (_edit(_set([20, 21, 22, 23], "ferritin", -3.0)), ".csv",
                          r"column 'ferritin' has 4 rows \(rows 21, 22, 23, …\) outside.*positive"),
    "ferritin_zero": (_edit(_set([2], "ferritin", 0.0)), ".csv", r"column 'ferritin' has 1 row \(row 3\) outside"),
    "ferritin_inf": (_edit(_set([8], "ferritin", np.inf)), ".csv", r"column 'ferritin' has 1 row \(row 9\) that are infinite"),
    "ferritin_minus_inf": (_edit(_set([8], "ferritin", -np.inf)), ".csv", r"column 'ferritin' has 1 row \(row 9\)"),
    "genotype_3": (_edit(_set([30], "rs2300478", 3)), ".csv", r"column 'rs2300478' has 1 row \(row 31\)"),
    "genotype_text": (_edit(lambda d: d.assign(rs9357271=d["rs9357271"].astype(object)).pipe(_set([1], "rs9357271", "AG"))),
                      ".csv", r"column 'rs9357271' has 1 row \(row 2\)"),
    "latin1_text": (lambda d: csv(d).replace(b"female", "f\xe9male".encode("latin-1"), 1), ".csv", r"cannot read|codes not understood"),
    "unknown_extension": (lambda d: csv(d), ".xlsx", r"cannot tell the format"),
}
"""Bad cohort files, each refused by every command that reads a cohort."""

PRS_COHORT_CASES = ("empty_file", "header_only", "binary_garbage", "random_parquet", "truncated_parquet",
                    "genotype_3", "genotype_text", "duplicate_ids", "pregnant_men", "unknown_extension")
"""For ``prs`` (whose genotype readers another branch owns): cohort-level and file-level cases only."""


@dataclass
class Case:
    """One command on one input: the argv, the files it needs, what must happen."""

    id: str
    argv: list[str]
    match: str
    code: int = 2
    files: dict[str, bytes | Callable[[pd.DataFrame], bytes]] = field(default_factory=dict)
    setup: Callable[[Path], None] | None = None
    stdout: str = ""
    """For a degenerate input that is analysed (exit 0): what the output must say about it."""


def _cohort_cases() -> list[Case]:
    cases = []
    extra = {"check": [], "prevalence": ["--n-boot", "0"], "fit": ["--cv-folds", "2"],
             "report": ["--out", "rep"], "prs": ["--out", "s.tsv"]}
    for command in ("check", "prevalence", "fit", "report", "prs"):
        for name, (make, suffix, match) in BAD_COHORTS.items():
            if command == "prs" and name not in PRS_COHORT_CASES:
                continue
            file = f"cohort{suffix}"
            target = ["--cohort", file] if command == "report" else [file]
            cases.append(Case(f"{command}-{name}", [command, *target, *extra[command]], match, files={file: make}))
        missing = ["--cohort", "nope.csv"] if command == "report" else ["nope.csv"]
        cases.append(Case(f"{command}-missing_file", [command, *missing, *extra[command]], r"does not exist"))
        folder = ["--cohort", "adir"] if command == "report" else ["adir"]
        cases.append(Case(f"{command}-folder_as_file", [command, *folder, *extra[command]], r"folder|does not exist|cannot",
                          setup=lambda d: (d / "adir").mkdir()))
    return cases


GOOD = "good.csv"


def _good(df: pd.DataFrame) -> bytes:
    return csv(df)


def _toml(text: str) -> Callable[[pd.DataFrame], bytes]:
    return lambda d: text.encode()


PARAMS_BAD = {
    "missing": (None, r"does not exist"),
    "latin1": (lambda d: "[targets.prevalence]\nvalue = 0.09 # caf\xe9\n".encode("latin-1"), r"not UTF-8"),
    "not_toml": (_toml("this is = = not toml\n"), r"not valid TOML"),
    "unknown_key": (_toml("[nonsense]\nx = 1\n"), r"unknown parameter 'nonsense'"),
    "prevalence_1.5": (_toml("[targets.prevalence]\nvalue = 1.5\n"), r"targets.prevalence.value"),
    "or_1e6": (_toml("[loci.rs2300478]\nodds_ratio = 1e6\n"), r"loci.rs2300478.odds_ratio.*allowed range"),
    "ferritin_or_1e6": (_toml("[ferritin]\nlow_or = 1e6\n"), r"ferritin.low_or"),
    "young_ratio_tiny": (_toml("[age_curve]\nyoung_to_peak_ratio = 0.0001\n"), r"young_to_peak_ratio"),
    "peak_20": (_toml("[targets.peak_age]\nvalue = 20\nlow = 18\nhigh = 30\n"), r"peak_age"),
    "negative_or": (_toml("[loci.rs2300478]\nodds_ratio = -2\n"), r"odds_ratio"),
    "string_value": (_toml("[targets.prevalence]\nvalue = \"high\"\n"), r"targets.prevalence.value"),
    "folder": ("DIR", r"folder"),
}


def _params_cases() -> list[Case]:
    cases = []
    for name, (content, match) in PARAMS_BAD.items():
        files: dict = {}
        setup = None
        if content == "DIR":
            setup = lambda d: (d / "p.toml").mkdir()  # noqa: E731
        elif content is not None:
            files["p.toml"] = content
        for command, rest in (("params", []), ("simulate", ["--n", "100", "--out", "c.parquet"])):
            cases.append(Case(f"{command}-params-{name}", [command, *rest, "--params", "p.toml"], match,
                              files=dict(files), setup=setup))
    return cases


def _simulate_cases() -> list[Case]:
    s = "simulate"
    return [
        Case("simulate-params-unsolvable_targets", [s, "--n", "100", "--out", "c.parquet", "--params", "p.toml"],
             r"cannot reach these targets", files={"p.toml": _toml("[targets.prevalence]\nvalue = 0.9\nlow = 0.5\n"
                                                                   "high = 0.95\n")}),
        Case("simulate-n0", [s, "--n", "0", "--out", "c.parquet"], r"--n: must be greater than 0"),
        Case("simulate-n-negative", [s, "--n", "-5", "--out", "c.parquet"], r"--n"),
        Case("simulate-n-text", [s, "--n", "many", "--out", "c.parquet"], r"--n: expected a whole number"),
        Case("simulate-n-float", [s, "--n", "1e3", "--out", "c.parquet"], r"--n: expected a whole number"),
        Case("simulate-n-exceeds-disk", [s, "--n", "100000000000000", "--out", "c.parquet"], r"needs about .* free"),
        Case("simulate-seed-negative", [s, "--n", "10", "--seed", "-1", "--out", "c.parquet"], r"--seed"),
        Case("simulate-out-csv", [s, "--n", "10", "--out", "c.csv"], r"must end in .parquet"),
        Case("simulate-out-missing-folder", [s, "--n", "10", "--out", "no/c.parquet"], r"folder 'no' does not exist"),
        Case("simulate-out-is-folder", [s, "--n", "10", "--out", "d.parquet"], r"already exists",
             setup=lambda d: (d / "d.parquet").mkdir()),
        Case("simulate-out-exists", [s, "--n", "10", "--out", "c.parquet"], r"already exists; use --force",
             files={"c.parquet": b"precious"}),
        Case("simulate-out-is-params", [s, "--n", "10", "--out", "p.parquet", "--params", "p.parquet", "--force"],
             r"is the input file", files={"p.parquet": b"[targets.prevalence]\nvalue = 0.09\n"}),
        Case("simulate-plink-exists", [s, "--n", "10", "--out", "c.parquet", "--plink", "g"],
             r"'g.bim' already exists", files={"g.bim": b"precious"}),
        Case("simulate-plink-missing-folder", [s, "--n", "10", "--out", "c.parquet", "--plink", "no/g"],
             r"folder 'no' does not exist"),
        Case("simulate-workers0", [s, "--n", "10", "--out", "c.parquet", "--workers", "0"], r"--workers"),
        Case("simulate-batch0", [s, "--n", "10", "--out", "c.parquet", "--batch-blocks", "0"], r"--batch-blocks"),
        Case("simulate-no-out", [s, "--n", "10"], r"--out"),
        Case("simulate-unknown-option", [s, "--n", "10", "--out", "c.parquet", "--speed", "11"], r"unrecognized"),
    ]


def _fit_model(df: pd.DataFrame) -> bytes:
    """A model file as 'rlsepi fit --format json' writes it, fitted on women only."""
    from rlsepi.commands.fit import render
    from rlsepi.risk_models import fit_nested

    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        women = df[(df["sex"] == "female")].reset_index(drop=True)
        return render(fit_nested(women, cv_folds=2), "json").encode()


def _model_with_text_estimates(df: pd.DataFrame) -> bytes:
    doc = json.loads(_fit_model(df))
    for m in doc["models"]:
        for r in m["coefficients"]:
            r["estimate"] = "abc"
    return json.dumps(doc).encode()


def _model_without_range(df: pd.DataFrame) -> bytes:
    doc = json.loads(_fit_model(df))
    doc.pop("data_range")
    return json.dumps(doc).encode()


def _risk_cases() -> list[Case]:
    r = "risk"
    model = {"m.json": _fit_model}
    return [
        Case("risk-age-negative", [r, "--age", "-1"], r"age"),
        Case("risk-age-200", [r, "--age", "200"], r"age"),
        Case("risk-age-text", [r, "--age", "old"], r"--age"),
        Case("risk-age-nan", [r, "--age", "nan"], r"age"),
        Case("risk-age-inf", [r, "--age", "inf"], r"age"),
        Case("risk-age-child", [r, "--age", "9"], r"age"),
        Case("risk-sex-other", [r, "--sex", "other"], r"--sex"),
        Case("risk-trimester-4", [r, "--trimester", "4"], r"--trimester"),
        Case("risk-pregnant-man", [r, "--sex", "male", "--pregnant"], r"pregnan"),
        Case("risk-trimester-man", [r, "--sex", "male", "--trimester", "2"], r"pregnan|trimester"),
        Case("risk-pregnant-at-70", [r, "--sex", "female", "--age", "70", "--pregnant"], r"pregnan|age"),
        Case("risk-ferritin-negative", [r, "--ferritin", "-1"], r"ferritin"),
        Case("risk-ferritin-zero", [r, "--ferritin", "0"], r"ferritin"),
        Case("risk-ferritin-nan", [r, "--ferritin", "nan"], r"ferritin"),
        Case("risk-genotype-no-equals", [r, "--genotype", "rs2300478"], r"RSID=ALLELES"),
        Case("risk-genotype-twice", [r, "--genotype", "rs2300478=GT", "--genotype", "rs2300478=GG"], r"twice"),
        Case("risk-genotype-bad-letters", [r, "--genotype", "rs2300478=ZZ"], r"rs2300478"),
        Case("risk-genotype-three-letters", [r, "--genotype", "rs2300478=GGT"], r"rs2300478"),
        Case("risk-genotype-unknown-rsid", [r, "--genotype", "rs1=AG"], r"rs1"),
        Case("risk-model-missing", [r, "--model", "m.json"], r"does not exist"),
        Case("risk-model-not-json", [r, "--model", "m.json"], r"cannot read model file", files={"m.json": b"\x00\xffnot json"}),
        Case("risk-model-list", [r, "--model", "m.json"], r"not a model", files={"m.json": b"[1, 2]"}),
        Case("risk-model-empty-object", [r, "--model", "m.json"], r"no model M0-M3|does not record", files={"m.json": b"{}"}),
        Case("risk-model-text-estimates", [r, "--model", "m.json", "--sex", "female"], r"not finite numbers",
             files={"m.json": _model_with_text_estimates}),
        Case("risk-model-no-range", [r, "--model", "m.json", "--sex", "female"], r"does not record the range",
             files={"m.json": _model_without_range}),
        Case("risk-model-man-on-women", [r, "--model", "m.json", "--sex", "male", "--age", "50"],
             r"fitted on women only.*men", files=model),
        Case("risk-model-sex-unknown", [r, "--model", "m.json", "--age", "50"], r"fitted on women only; give --sex female",
             files=model),
        Case("risk-model-ferritin-outside", [r, "--model", "m.json", "--sex", "female", "--ferritin", "1e5"],
             r"ferritin 100000 .* outside", files=model),
        Case("risk-model-name-bad", [r, "--model", "m.json", "--model-name", "M9", "--sex", "female"], r"M9",
             files=model),
        Case("risk-model-name-alone", [r, "--model-name", "M1"], r"--model-name needs --model"),
        Case("risk-params-bad", [r, "--params", "p.toml"], r"unknown parameter", files={"p.toml": _toml("[x]\n")}),
    ]


def _validate_cases() -> list[Case]:
    v = "validate"
    return [
        Case("validate-replicates0", [v, "--replicates", "0"], r"--replicates"),
        Case("validate-n0", [v, "--n", "0"], r"--n"),
        Case("validate-n-text", [v, "--n", "x"], r"--n"),
        Case("validate-workers0", [v, "--workers", "0"], r"--workers"),
        Case("validate-format-xml", [v, "--format", "xml"], r"--format"),
        Case("validate-out-exists", [v, "--replicates", "2", "--n", "500", "--out", "v.md"], r"already exists",
             files={"v.md": b"precious"}),
        Case("validate-out-missing-folder", [v, "--replicates", "2", "--n", "500", "--out", "no/v.md"], r"does not exist"),
        Case("validate-out-is-params", [v, "--replicates", "2", "--n", "500", "--params", "p.toml", "--out", "p.toml",
                                         "--force"], r"is the input file", files={"p.toml": _toml("[targets.prevalence]\nvalue = 0.09\n")}),
        Case("validate-params-bad", [v, "--params", "p.toml"], r"not valid TOML", files={"p.toml": _toml("= =")}),
    ]


def _prevalence_cases() -> list[Case]:
    p = "prevalence"
    g = {GOOD: _good}
    cases = [
        Case("prevalence-column-bad-spec", [p, GOOD, "--column", "sexgender"], r"cannot read the column mapping", files=g),
        Case("prevalence-column-missing", [p, GOOD, "--column", "sex=gender"], r"no column 'gender'", files=g),
        Case("prevalence-code-bad-spec", [p, GOOD, "--code", "sex=female"], r"cannot read the code mapping", files=g),
        Case("prevalence-code-no-column", [p, GOOD, "--code", "colour:1=red"], r"column 'colour'", files=g),
        Case("prevalence-code-bad-target", [p, GOOD, "--code", "sex:female=woman?"], r"'sex'", files=g),
        Case("prevalence-by-missing", [p, GOOD, "--by", "region"], r"column 'region' is missing", files=g),
        Case("prevalence-ci-bogus", [p, GOOD, "--ci", "bogus", "--n-boot", "0"], r"bogus", files=g),
        Case("prevalence-alpha-1.5", [p, GOOD, "--alpha", "1.5"], r"--alpha", files=g),
        Case("prevalence-alpha-0", [p, GOOD, "--alpha", "0"], r"--alpha", files=g),
        Case("prevalence-standard-bogus", [p, GOOD, "--standard", "mars2100"], r"mars2100", files=g),
        Case("prevalence-standard-bad-file", [p, GOOD, "--standard", "std.csv", "--n-boot", "0"], r"std.csv|weight|age_lower",
             files={**g, "std.csv": b"a,b\n1,2\n"}),
        Case("prevalence-out-is-input", [p, GOOD, "--out", GOOD, "--force"], r"is the input file", files=g),
        Case("prevalence-out-exists", [p, GOOD, "--out", "o.md"], r"already exists", files={**g, "o.md": b"keep"}),
        Case("prevalence-out-missing-folder", [p, GOOD, "--out", "no/o.md"], r"does not exist", files=g),
        Case("prevalence-out-is-folder", [p, GOOD, "--out", "od"], r"is a folder", files=g,
             setup=lambda d: (d / "od").mkdir()),
        Case("prevalence-weights-missing", [p, GOOD, "--weights", "w"], r"column 'w' is missing", files=g),
        Case("prevalence-weights-negative", [p, "w.csv", "--weights", "w", "--n-boot", "0"], r"'w'",
             files={"w.csv": lambda d: csv(d.assign(w=-1.0))}),
        Case("prevalence-age-breaks-text", [p, GOOD, "--age-breaks", "a,b"], r"--age-breaks", files=g),
        Case("prevalence-outcome-missing", [p, GOOD, "--outcome", "wed"], r"column 'wed' is missing", files=g),
        Case("prevalence-outcome-not-yes-no", [p, GOOD, "--outcome", "ferritin"], r"column 'ferritin'", files=g),
        Case("prevalence-suppress-negative", [p, GOOD, "--suppress-below", "-1"], r"--suppress-below", files=g),
        Case("prevalence-n-boot-negative", [p, GOOD, "--n-boot", "-1"], r"--n-boot", files=g),
        Case("prevalence-format-xls", [p, GOOD, "--format", "xls"], r"--format", files=g),
        Case("prevalence-adjust-missing", [p, GOOD, "--adjust", "bmi", "--n-boot", "0"], r"'bmi'", files=g),
        Case("prevalence-separation-is-a-note", [p, "few.csv", "--n-boot", "0", "--by", "sex", "--format", "json"],
             r"rlsepi prevalence: 40 of 40 rows used", code=0,
             stdout=r"logistic, adjusted for age \(linear\)\) not estimable: the logistic sex odds ratio cannot be "
                    r"estimated: the outcome separates by 'sex'",
             files={"few.csv": lambda d: csv(pd.concat([d[(d["sex"] == "female") & ~d["rls"]].head(25),
                                                         d[(d["sex"] == "male") & d["rls"]].head(2),
                                                         d[(d["sex"] == "male") & ~d["rls"]].head(13)]))}),
        Case("prevalence-dup-ids-allowed", [p, "dup.csv", "--allow-duplicate-ids", "--n-boot", "0", "--by", "sex"],
             r"rlsepi: warning: column 'person_id' has 4 rows", code=0, files={"dup.csv": _edit(_dup_ids)}),
    ]
    return cases


def _fit_cases() -> list[Case]:
    f = "fit"
    g = {GOOD: _good}
    return [
        Case("fit-formula-no-tilde", [f, GOOD, "--formula", "female + age10", "--cv-folds", "2"], r"has no '~'", files=g),
        Case("fit-formula-unknown-column", [f, GOOD, "--formula", "rls ~ bmi", "--cv-folds", "2"], r"bmi", files=g),
        Case("fit-formula-outcome", [f, GOOD, "--formula", "y ~ female", "--cv-folds", "2"], r"outcome must be 'rls'", files=g),
        Case("fit-cv-folds-0", [f, GOOD, "--cv-folds", "0"], r"--cv-folds", files=g),
        Case("fit-cv-folds-1", [f, GOOD, "--cv-folds", "1"], r"cv_folds must be at least 2|--cv-folds", files=g),
        Case("fit-out-is-input", [f, GOOD, "--out", GOOD, "--force"], r"is the input file", files=g),
        Case("fit-out-exists", [f, GOOD, "--out", "f.json", "--format", "json"], r"already exists",
             files={**g, "f.json": b"keep"}),
        Case("fit-ferritin-bogus", [f, GOOD, "--ferritin", "cubic"], r"--ferritin", files=g),
        Case("fit-no-trimester-column", [f, "nt.csv", "--cv-folds", "2"], r"column 'trimester' is missing",
             files={"nt.csv": lambda d: csv(d.drop(columns=["trimester"]))}),
        Case("fit-no-genotypes", [f, "ng.csv", "--cv-folds", "2"], r"column 'rs\d+' is missing",
             files={"ng.csv": lambda d: csv(d.drop(columns=["rs2300478"]))}),
        Case("fit-women-only-drops-female", [f, "w.csv", "--cv-folds", "2"], r"rlsepi: warning: M0: term 'female' dropped",
             code=0, files={"w.csv": lambda d: csv(d[d["sex"] == "female"])}),
    ]


def _check_cases() -> list[Case]:
    c = "check"
    g = {GOOD: _good}
    return [
        Case("check-column-mapping", [c, "m.csv", "--column", "sex=gender"], r"", code=-1,
             files={"m.csv": lambda d: csv(d.rename(columns={"sex": "gender"}))}),
        Case("check-code-mapping-1-2", [c, "m.csv"], r"", code=-1,
             files={"m.csv": lambda d: csv(d.assign(sex=d["sex"].map({"female": 2, "male": 1}).astype(int)))}),
        Case("check-column-bad", [c, GOOD, "--column", "sex"], r"cannot read the column mapping", files=g),
        Case("check-code-bad", [c, GOOD, "--code", "sex"], r"cannot read the code mapping", files=g),
        Case("check-no-trimester", [c, "nt.csv"], r"column 'trimester' is missing",
             files={"nt.csv": lambda d: csv(d.drop(columns=["trimester"]))}),
        Case("check-params-bad", [c, GOOD, "--params", "p.toml"], r"unknown parameter", files={**g, "p.toml": _toml("[x]\n")}),
    ]


def _report_cases() -> list[Case]:
    r = "report"
    g = {GOOD: _good}
    return [
        Case("report-out-is-file", [r, "--cohort", GOOD, "--out", "rep"], r"is a file", files={**g, "rep": b"keep"}),
        Case("report-out-missing-parent", [r, "--cohort", GOOD, "--out", "no/rep"], r"does not exist", files=g),
        Case("report-exists-no-force", [r, "--cohort", GOOD, "--out", "rep"], r"already exist.*--force", files=g,
             setup=lambda d: ((d / "rep").mkdir(), (d / "rep" / "index.html").write_text("mine"))),
        Case("report-n0", [r, "--n", "0"], r"--n"),
        Case("report-n-exceeds-memory", [r, "--n", "100000000000000", "--out", "rep"], r"needs about .* of memory"),
        Case("report-seed-text", [r, "--seed", "x"], r"--seed"),
        Case("report-params-bad", [r, "--params", "p.toml", "--out", "rep"], r"unknown parameter",
             files={"p.toml": _toml("[x]\n")}),
        Case("report-column-bad", [r, "--cohort", GOOD, "--column", "x", "--out", "rep"], r"column mapping", files=g),
    ]


def _prs_cases() -> list[Case]:
    p = "prs"
    g = {GOOD: _good}
    return [
        Case("prs-out-bad-extension", [p, GOOD, "--out", "s.xlsx"], r"must end in .tsv or .parquet", files=g),
        Case("prs-score-missing", [p, GOOD, "--out", "s.tsv", "--score", "nope.txt"], r"does not exist", files=g),
        Case("prs-score-and-extended", [p, GOOD, "--out", "s.tsv", "--score", "x.txt", "--extended"], r"either --score",
             files={**g, "x.txt": b"x"}),
        Case("prs-min-overlap-2", [p, GOOD, "--out", "s.tsv", "--min-overlap", "2"], r"--min-overlap", files=g),
        Case("prs-out-exists", [p, GOOD, "--out", "s.tsv"], r"already exists", files={**g, "s.tsv": b"keep"}),
        Case("prs-out-is-input", [p, "s.tsv", "--out", "s.tsv", "--force"], r"is the input file",
             files={"s.tsv": lambda d: csv(d, sep="\t")}),
        Case("prs-no-genotype-columns", [p, "ng.csv", "--out", "s.tsv"], r"genotype|rs\d+|overlap|match",
             files={"ng.csv": lambda d: csv(d[["person_id", "age", "sex", "rls"]])}),
    ]


def _other_command_cases() -> list[Case]:
    """Commands added by other branches (power, study, diagnostic, serve): command-line and file cases."""
    return [
        Case("power-no-design", ["power"], r"DESIGN|required"),
        Case("power-unknown-design", ["power", "cohort-size"], r"invalid choice"),
        Case("study-missing-file", ["study", "nope.toml"], r"does not exist|nope.toml"),
        Case("study-not-toml", ["study", "s.toml"], r"TOML|s.toml", files={"s.toml": b"= = ="}),
        Case("study-latin1", ["study", "s.toml"], r"UTF-8|s.toml", files={"s.toml": "title = 'caf\xe9'".encode("latin-1")}),
        Case("study-out-is-input", ["study", "s.toml", "--out", "s.toml", "--force"], r"is the input file",
             files={"s.toml": b"[study]\n"}),
        Case("diagnostic-sensitivity-2", ["diagnostic", "--sensitivity", "2", "--specificity", "0.9"], r"sensitivity"),
        Case("diagnostic-negative-count", ["diagnostic", "--tp", "-1", "--fp", "2", "--fn", "3", "--tn", "4"], r"--tp|tp"),
        Case("diagnostic-prevalence-text", ["diagnostic", "--prevalence", "high"], r"prevalence"),
        Case("diagnostic-out-missing-folder", ["diagnostic", "--out", "no/d.md"], r"does not exist"),
        Case("serve-model-missing", ["serve", "--model", "m.json", "--port", "0"], r"does not exist"),
        Case("serve-port-text", ["serve", "--port", "http"], r"--port"),
    ]


def _global_cases() -> list[Case]:
    return [
        Case("no-command", [], r"COMMAND|required"),
        Case("unknown-command", ["bogus"], r"invalid choice"),
        Case("params-unknown-option", ["params", "--color"], r"unrecognized"),
    ]


CASES: list[Case] = [
    *_cohort_cases(), *_params_cases(), *_simulate_cases(), *_risk_cases(), *_validate_cases(),
    *_prevalence_cases(), *_fit_cases(), *_check_cases(), *_report_cases(), *_prs_cases(), *_other_command_cases(),
    *_global_cases(),
]


def test_the_suite_tries_at_least_150_inputs():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    assert len(CASES) >= 150
    assert {c.argv[0] for c in CASES if c.argv} >= {"simulate", "check", "params", "prevalence", "fit", "risk",
                                                     "validate", "prs", "report"}


# --- running a case ----------------------------------------------------------------------------


def run_main(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse usage errors
            code = exc.code if isinstance(exc.code, int) else 2
    return code, out.getvalue(), err.getvalue()


def snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder under ``folder`` (hidden ones too) with a hash of its bytes."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, base, tmp_path, monkeypatch):
    for name, content in case.files.items():
        (tmp_path / name).write_bytes(content(base) if callable(content) else content)
    if case.setup:
        case.setup(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RLSEPI_DEBUG", raising=False)
    before = snapshot(tmp_path)
    code, out, err = run_main(case.argv)
    assert "Traceback" not in err and "Traceback" not in out, err
    if case.code == -1:  # a mapping that must be accepted: anything but bad input and bugs
        assert code in (0, 1), err
        return
    assert code == case.code, f"exit {code}; stderr: {err}"
    lines = [line for line in err.splitlines() if line.strip()]
    if case.code == 2:
        assert len(lines) == 1, f"expected one line on stderr, got: {err!r}"
        assert lines[0].startswith("rlsepi"), lines[0]
        assert ": error: " in lines[0], lines[0]
        assert snapshot(tmp_path) == before, "a refused command changed or left files"
    import re
    assert re.search(case.match, err), f"{case.match!r} not in {err!r}"
    if case.stdout:
        assert re.search(case.stdout, out), f"{case.stdout!r} not in the output"


# --- the contract beyond the table ---------------------------------------------------------------


def test_a_bug_exits_3_with_one_line_and_a_traceback_only_when_debugging(monkeypatch, tmp_path):
    import rlsepi.commands.params as params_cmd

    def broken(args):
        raise ZeroDivisionError("simulated bug")

    monkeypatch.setattr(params_cmd, "run", broken)
    monkeypatch.delenv("RLSEPI_DEBUG", raising=False)
    code, out, err = run_main(["params"])
    assert code == 3
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rlsepi: bug: unexpected ZeroDivisionError: simulated bug")
    assert "RLSEPI_DEBUG=1" in lines[0] and "Traceback" not in err
    code, out, err = run_main(["--debug", "params"])
    assert code == 3 and "Traceback (most recent call last)" in err and "simulated bug" in err
    monkeypatch.setenv("RLSEPI_DEBUG", "1")
    code, out, err = run_main(["params"])
    assert code == 3 and "Traceback (most recent call last)" in err


def test_an_unwritable_disk_is_bad_input_not_a_bug(monkeypatch, tmp_path):
    import errno as errno_

    import rlsepi.commands.params as params_cmd

    def full(args):
        raise OSError(errno_.ENOSPC, "No space left on device", "out.parquet")

    monkeypatch.setattr(params_cmd, "run", full)
    code, out, err = run_main(["params"])
    assert code == 2
    assert err.strip() == "rlsepi: error: No space left on device 'out.parquet'; free some space or write elsewhere"


def test_warnings_reach_the_user_as_rlsepi_warning_lines(monkeypatch):
    import warnings

    import rlsepi.commands.params as params_cmd

    def warns(args):
        warnings.warn("something doubtful\nover two lines", UserWarning)
        return 0

    monkeypatch.setattr(params_cmd, "run", warns)
    code, out, err = run_main(["params"])
    assert code == 0
    assert err == "rlsepi: warning: something doubtful over two lines\n"


def test_check_understands_the_codes_its_help_promises(base, tmp_path, monkeypatch):
    """sex as 1/2 and F/M, yes/no columns as Y/N: the same verdict as the canonical file."""
    monkeypatch.chdir(tmp_path)
    base.to_csv("canonical.csv", index=False)
    coded = base.assign(sex=base["sex"].map({"female": "F", "male": "M"}).astype(str),
                        rls=np.where(base["rls"], "Y", "N"))
    coded.to_csv("coded.csv", index=False)
    code_a, out_a, _ = run_main(["check", "canonical.csv", "--json"])
    code_b, out_b, _ = run_main(["check", "coded.csv", "--json"])
    assert code_a == code_b and json.loads(out_a) == json.loads(out_b)


def test_simulate_plink_failure_leaves_no_parquet(tmp_path, monkeypatch):
    """All outputs of one command, or none: a failing PLINK writer leaves no Parquet file."""
    import rlsepi.polygenic as pg

    def failing(*args, **kwargs):
        raise OSError(28, "No space left on device", "g.bed")

    monkeypatch.setattr(pg, "write_plink", failing)
    monkeypatch.chdir(tmp_path)
    code, out, err = run_main(["simulate", "--n", "200", "--out", "c.parquet", "--plink", "g"])
    assert code == 2 and "No space left" in err
    assert snapshot(tmp_path) == {}


def test_report_force_replaces_only_its_own_files(tmp_path, monkeypatch):
    import rlsepi.report as rep

    monkeypatch.chdir(tmp_path)
    out = tmp_path / "rep"
    (out / "figures").mkdir(parents=True)
    (out / "notes.txt").write_text("mine")
    (out / "figures" / "my_plot.png").write_bytes(b"mine")
    (out / "index.html").write_text("old")
    monkeypatch.setattr(rep, "summarise", lambda a: {"x": 1})
    monkeypatch.setattr(rep, "_figures", lambda a: {"prevalence": b"png"})
    monkeypatch.setattr(rep, "render_html", lambda s, f: "<html>new</html>")
    rep.write_report(None, out, force=True)
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "figures" / "my_plot.png").read_bytes() == b"mine"
    assert (out / "index.html").read_text() == "<html>new</html>"
    assert (out / "figures" / "prevalence.png").read_bytes() == b"png"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_output_paths_are_checked_before_the_analysis(base, tmp_path, monkeypatch):
    """A bad --out is refused at once, not after minutes of work: the analysis is never called."""
    import rlsepi.commands.fit as fit_cmd
    import rlsepi.risk_models as rm

    called = []
    monkeypatch.setattr(rm, "fit_nested", lambda *a, **k: called.append(1))
    monkeypatch.chdir(tmp_path)
    base.to_csv("c.csv", index=False)
    code, _, err = run_main(["fit", "c.csv", "--out", "missing/f.json"])
    assert code == 2 and not called and fit_cmd is not None


# --- signals, in a subprocess --------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    try:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    except FileNotFoundError:  # pragma: no cover
        pytest.skip("ps is not available")
    return [int(x) for x in out.split()]


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGINT, 128 + signal.SIGINT)])
def test_a_signal_leaves_no_temporary_file_and_no_worker(tmp_path, sig, code):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "rlsepi.cli", "simulate", "--n", "50000000", "--workers", "2",
                             "--out", "c.parquet", "--plink", "g"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # a shell may start children with Ctrl-C ignored; a user's terminal does not
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until the writing has started and the workers run
        if any(p.name.endswith(".tmp") for p in tmp_path.iterdir()) and len(_children(proc.pid)) >= 2:
            break
        time.sleep(0.1)
    workers = _children(proc.pid)
    assert workers, "the workers did not start"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err and err.strip().startswith("rlsepi: ") and len(err.strip().splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []
    time.sleep(0.5)
    alive = [w for w in workers if Path(f"/proc/{w}").exists()
             and "Z" not in Path(f"/proc/{w}/stat").read_text().split()[2]]
    assert alive == []


# --- fuzzing the cohort readers ------------------------------------------------------------------


@pytest.fixture(scope="module")
def valid_bytes(base) -> dict[str, bytes]:
    return {".csv": csv(base.iloc[:60]), ".parquet": parquet(base.iloc[:60])}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=600), suffix=st.sampled_from([".csv", ".tsv", ".parquet", ".csv.gz"]))
def test_fuzz_random_bytes_never_crash_the_cohort_reader(data, suffix, tmp_path):
    from rlsepi.errors import RLSEpiError
    from rlsepi.io import read_cohort
    from rlsepi.schema import harmonise

    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(data)
    try:
        harmonise(read_cohort(path), require=("age", "sex", "rls"))
    except RLSEpiError as exc:
        assert "\n" not in str(exc).strip()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.floats(0, 1), suffix=st.sampled_from([".csv", ".parquet"]), flip=st.integers(0, 10**6))
def test_fuzz_truncated_and_damaged_files_through_the_cli(valid_bytes, cut, suffix, flip, tmp_path):
    """A valid cohort cut short (and with one byte changed) is read or refused with exit 2: never a bug."""
    raw = bytearray(valid_bytes[suffix][: int(len(valid_bytes[suffix]) * cut)])
    if raw:
        raw[flip % len(raw)] ^= 0x5A
    import tempfile

    case = Path(tempfile.mkdtemp(dir=tmp_path))
    (case / f"c{suffix}").write_bytes(bytes(raw))
    before = snapshot(case)
    cwd = os.getcwd()
    os.chdir(case)
    try:
        code, out, err = run_main(["check", f"c{suffix}"])
    finally:
        os.chdir(cwd)
    assert code in (0, 1, 2), err
    assert "Traceback" not in err
    if code == 2:
        assert len(err.strip().splitlines()) == 1
    assert snapshot(case) == before


def test_no_case_among_men_is_named_not_left_to_numpy(tmp_path: Path) -> None:
    """A cohort with no male case: the infinite odds ratios are warned about by name, and no
    bare numpy message ("divide by zero encountered ...") reaches the user."""
    from rlsepi.cohort import simulate

    d = simulate(3000, rng=1)
    d.loc[d["sex"] == "male", "rls"] = False
    path = tmp_path / "no_male_case.csv"
    d.to_csv(path, index=False)
    code, out, err = run_main(["prevalence", str(path)])
    assert code == 0, err
    assert "Mantel-Haenszel odds ratio over 'age_band' is infinite" in err
    assert "Breslow-Day test of equal odds ratios across age bands: not defined" in out
    code, _, fit_err = run_main(["fit", str(path)])
    assert code == 0, fit_err
    assert "M0: (quasi-)complete separation ('female' = 0 has" in fit_err
    assert "encountered in" not in err + fit_err


def test_model_whose_added_terms_are_all_dropped_is_not_tested(tmp_path: Path) -> None:
    """Nobody pregnant: M3's trimester terms cannot be estimated. M3's formula is the model
    actually fitted, and M3 vs M2 is reported as the same model, not as an LR test on 0 df."""
    from rlsepi.cohort import simulate
    from rlsepi.risk_models import fit_nested

    d = simulate(3000, rng=1)
    d["pregnant"] = False
    d["trimester"] = np.nan
    with pytest.warns(UserWarning, match="M3 vs M2: no test; every term M3 adds was dropped as inestimable"):
        fit = fit_nested(d, cv_folds=2)
    assert fit["M3"].formula == fit["M2"].formula
    assert "trimester" not in fit["M3"].formula
    m3 = fit.comparisons[2]
    assert (m3.larger, m3.smaller, m3.df) == ("M3", "M2", 0)
    assert math.isnan(m3.lr_p_value) and math.isnan(m3.auc_difference)
    assert m3.summary() == "M3 vs M2: the same model (every term M3 adds was dropped as inestimable); no test"
    assert "| M3 vs M2 | — (0) | — | — (the same model) | — |" in fit.summary()
