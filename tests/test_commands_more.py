"""Issue 15: the remaining paths of the commands, power/study/diagnostic and cohort/risk models.

Every test checks a value (from R, a hand calculation written down here, or the simulator's true
parameters), an exact one-line error with its exit code, or a file's content.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import subprocess

import pytest

from rlsepi.cli import main
from rlsepi.errors import DataValidationError, RLSEpiError


def run(*args: str) -> subprocess.CompletedProcess:
    """The command in this process (same code path as the console script)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def one_error(r: subprocess.CompletedProcess) -> str:
    """The single error line of a refused command (exit 2, nothing on stdout, no traceback)."""
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


# --- rlsepi power -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["prevalence", "--precision", "x"], ("rlsepi power prevalence: error: argument --precision: expected a "
         "number, got 'x'; see 'rlsepi power prevalence --help'")),
        (["prevalence", "--precision", "0"], ("rlsepi power prevalence: error: argument --precision: must be "
         "greater than 0, got 0; see 'rlsepi power prevalence --help'")),
        (["prevalence", "--precision", "inf"], ("rlsepi power prevalence: error: argument --precision: must be "
         "greater than 0, got inf; see 'rlsepi power prevalence --help'")),
        (["means", "--delta", "big", "--sd", "1"], ("rlsepi power means: error: argument --delta: expected a "
         "number, got 'big'; see 'rlsepi power means --help'")),
    ],
)
def test_power_number_options_refused_in_one_line(args, message):
    assert one_error(run("power", *args)) == message


def test_power_prevalence_defaults_to_the_published_prevalence(tmp_path):
    # the default P is parameters.py's 0.08; R: epi.sssimpleestb(Py = 0.08, epsilon = 0.005, ...) in
    # tests/reference/power/power.R gives n = 11309.2547681235 (power_r.csv, case prev_abs_0.08_0.005)
    out = tmp_path / "p.json"
    r = run("power", "prevalence", "--precision", "0.005", "--format", "json", "--out", str(out))
    assert r.returncode == 0 and r.stdout == ""
    doc = json.loads(out.read_text())
    assert doc["inputs"]["prevalence"] == 0.08
    assert doc["n_total"] == pytest.approx(11309.2547681235, rel=1e-9, abs=0)
    assert doc["n_required"] == 11310
    # an existing output is refused without --force, and kept
    before = out.read_text()
    line = one_error(run("power", "prevalence", "--precision", "0.01", "--out", str(out)))
    assert line.startswith("rlsepi: error: ") and str(out) in line and "--force" in line
    assert out.read_text() == before


def test_power_genetic_refuses_unknown_locus_and_missing_effect():
    line = one_error(run("power", "genetic", "--locus", "rs1", "--n", "1000"))
    assert line.startswith("rlsepi: error: --locus 'rs1' is not a locus of the parameters; known: rs2300478")
    assert one_error(run("power", "genetic", "--eaf", "0.3", "--n", "1000")) == (
        "rlsepi: error: give --eaf and --odds-ratio, or --locus RSID to take them from the parameters")


def test_power_simulate_needs_exactly_one_of_n_and_target():
    assert one_error(run("power", "simulate", "--term", "female", "--n", "500", "--target-power", "0.8",
                         "--quiet")) == ("rlsepi: error: give --n (to simulate one sample size) or --target-power "
                                         "(to search over N), not both")
    assert one_error(run("power", "simulate", "--term", "female", "--quiet")) == (
        "rlsepi: error: give --n N (people per simulated study) or --target-power P")


def test_power_simulate_target_search_table_and_progress():
    # 'rls ~ female' tests the crude sex effect, whose true value is the published female:male odds ratio
    # (parameters.py targets.female_male_or) that the simulator is calibrated to
    from rlsepi.parameters import load_parameters

    r = run("power", "simulate", "--term", "female", "--model", "rls ~ female", "--target-power", "0.8",
            "--replicates", "20", "--workers", "1", "--seed", "2")
    assert r.returncode == 0, r.stderr
    truth = float(r.stdout.split("true log OR ")[1].split()[0])
    assert truth == pytest.approx(math.log(load_parameters(None).targets.female_male_or.value), abs=5e-4)
    rows = [line.strip("|").split("|") for line in r.stdout.splitlines() if line.startswith("| ") and "N" not in line]
    table = [(int(n.replace(",", "")), float(p), float(se)) for n, p, se in rows]
    assert len(table) >= 2
    for _, p, se in table:  # binomial Monte Carlo SE of a proportion over 20 replicates, by hand
        assert se == pytest.approx(math.sqrt(p * (1 - p) / 20), abs=6e-4)
    chosen = int(r.stdout.split("about ")[1].split(" people")[0].replace(",", ""))
    powers = {n: p for n, p, _ in table}
    assert powers[chosen] >= 0.8  # the N reported reaches the target ...
    below = [n for n in powers if n < chosen]
    assert below and powers[max(below)] < 0.8  # ... and the largest N tried below it does not
    # the progress bar goes to stderr and ends each pass at R/R
    assert "rlsepi power simulate [" in r.stderr and "20/20" in r.stderr


# --- rlsepi.study: contradictions named in one line; rounding intervals by hand ------------------

G = {"a": {"n": 10}, "b": {"n": 12}}


def _means(**kw):
    return {"kind": "means", "name": "age", "groups": ["a", "b"], "mean": [50.1, 52.3], "sd": [8.2, 9.1], **kw}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"groups": G, "extra": {}}, ("unknown section(s) extra; a study file has [study], [groups.NAME], [[tests]] "
         "and [[summaries]]")),
        ({"study": {"alpha": 1.5}, "groups": G}, "[study] alpha must lie between 0 and 1 (exclusive), got 1.5"),
        ({"study": {"replication_power": 0}, "groups": G},
         "[study] replication_power must lie between 0 and 1 (exclusive), got 0"),
        ({"groups": {}}, "the study has no groups; add e.g. [groups.cases] n = 69"),
        ({"groups": {"a": {"label": "x"}}}, "[groups.a] needs n (the number of people)"),
        ({"groups": {"a": {"n": 2.5}}}, "[groups.a] n: expected a whole number, got 2.5"),
        ({"groups": {"a": {"n": 0}}}, "[groups.a] n: must be at least 1, got 0"),
        ({"groups": {**G, "all": {"n": 22, "parts": ["a", "c"]}}}, "[groups.all] parts: group 'c' is not defined"),
        ({"groups": {**G, "all": {"n": 23, "parts": ["a", "b"]}}}, ("[groups.all] n = 23 but its parts (a, b) add up "
         "to 22")),
        ({"groups": G, "tests": {"kind": "means"}}, "'tests' must be an array of tables: [[tests]]"),
        ({"groups": G, "summaries": {}}, "'summaries' must be an array of tables: [[summaries]]"),
        ({"groups": G, "summaries": [{"name": "bmi", "group": "z"}]}, ("summary 1 ('bmi'): needs a group defined in "
         "[groups]")),
        ({"groups": G, "summaries": [{"name": "bmi", "group": "a", "mean": 27, "sd": "0.0"}]},
         "summary 1 ('bmi'): an SD must be greater than 0, got 0.0"),
        ({"groups": G, "tests": [5]}, "test 1: expected a table"),
        ({"groups": G, "tests": [_means(p={"source": "Table 2"})]}, ("test 1 ('age'): each reported p needs a value, "
         "e.g. { value = \"0.008\", source = \"Table 2\" }")),
        ({"groups": G, "tests": [_means(p="1.2")]}, "test 1 ('age') p: a p-value must lie between 0 and 1, got 1.2"),
        ({"groups": G, "tests": [_means(p="n.s.")]}, "test 1 ('age') p: 'n.s.' is not a number"),
        ({"groups": G, "tests": [_means(p="NaN")]}, "test 1 ('age') p: 'NaN' is not a finite number"),
        ({"groups": G, "tests": [_means(p=True)]}, ("test 1 ('age') p: expected a number or a string such as "
         "\"0.008\", got True")),
        ({"groups": G, "tests": [_means(groups=["a", "c"])]}, "test 1 ('age'): group 'c' is not defined in [groups]"),
        ({"groups": G, "tests": [_means(mean=[50.1])]}, ("test 1 ('age'): 'mean' must be a list of 2 values (one per "
         "group), got [50.1]")),
        ({"groups": G, "tests": [_means(sd=[8.2, -1])]}, "test 1 ('age'): an SD must be greater than 0, got -1"),
        ({"groups": G, "tests": [_means(tests=["anova"])]}, ("test 1 ('age'): unknown test 'anova' for means; use "
         "student, welch, mann-whitney")),
        ({"groups": G, "tests": [{"kind": "counts", "name": "f", "groups": ["a", "c"], "count": [1, 2]}]},
         "test 1 ('f'): group 'c' is not defined in [groups]"),
        ({"groups": G, "tests": [{"kind": "counts", "name": "f", "groups": ["a", "b"], "count": [11, 2]}]},
         "test 1 ('f'): 11 people counted in group 'a', which has only 10; the study contradicts itself"),
        ({"groups": G, "tests": [{"kind": "counts", "name": "f", "groups": ["a", "b"], "count": [1, 2],
                                  "tests": ["g-test"]}]},
         "test 1 ('f'): unknown test 'g-test' for counts; use chi2, chi2-n1, chi2-yates, fisher"),
        ({"groups": G, "tests": [{"kind": "correlation", "name": "r", "group": "z", "r": 0.3}]},
         "test 1 ('r'): group 'z' is not defined in [groups]"),
        ({"groups": G, "tests": [{"kind": "correlation", "name": "r", "group": "a", "r": 1}]},
         "test 1 ('r'): r must lie strictly between -1 and 1, got 1"),
        ({"groups": {"a": {"n": 3}}, "tests": [{"kind": "correlation", "name": "r", "group": "a", "r": 0.3}]},
         "test 1 ('r'): a correlation needs at least 4 people, group 'a' has 3"),
        ({"groups": G, "tests": [{"kind": "ratio", "name": "x"}]},
         "test 1 ('x'): kind must be 'means', 'counts' or 'correlation', got 'ratio'"),
    ],
)
def test_study_contradictions_are_refused_by_name(doc, message):
    from rlsepi.study import load_study

    with pytest.raises(DataValidationError) as exc:
        load_study(doc)
    assert str(exc.value) == message


def test_study_rounding_intervals_and_grim_by_hand():
    from rlsepi.study import Reported, grim, p_counts

    lt = Reported.parse("<0.001", "p")  # '<0.001' is [0, 0.001]
    assert (lt.low, lt.high, lt.value, lt.decimals) == (0.0, 0.001, 0.001, 3)
    neg = Reported.parse("−1.25", "x")  # a typographic minus is a minus; 2 decimals: +-0.005
    assert neg.value == -1.25 and neg.low == pytest.approx(-1.255) and neg.high == pytest.approx(-1.245)
    # GRIM, by hand: 10 integers sum to an integer, so their mean has at most 1 decimal: 3.45 is impossible
    # (34/10 = 3.40, 35/10 = 3.50 both round elsewhere), 3.50 is possible; 2 items per person: 20 -> 69/20 = 3.45
    assert grim(Reported.parse("3.45", "m"), 10) == "inconsistent"
    assert grim(Reported.parse("3.50", "m"), 10) == "consistent"
    assert grim(Reported.parse("3.45", "m"), 10, items=2) == "consistent"
    assert grim(Reported.parse("3.4", "m"), 10) == "not informative"  # n >= 10**decimals
    # no one at all in one outcome column: no evidence either way, p = 1
    assert p_counts(0, 10, 0, 12, "chi2") == 1.0


def test_study_file_that_cannot_be_read(tmp_path):
    from rlsepi.study import read_study

    bad = tmp_path / "s.toml"
    bad.write_bytes(b"title = \"caf\xe9\"\n")
    with pytest.raises(DataValidationError, match=r"^study file '.*s\.toml' is not UTF-8 text \(byte \d+\); save it as UTF-8$"):
        read_study(bad)
    with pytest.raises(DataValidationError, match=r"^cannot read study file '.*none\.toml': No such file or directory$"):
        read_study(tmp_path / "none.toml")


# --- rlsepi report from a cohort file, checked against hand counts -----------------------------


def _hand_cohort(path, *, genotypes: bool = True) -> None:
    """600 people aged 20-79, alternately female and male; RLS when i % 10 is 0 or 2 (all even, so
    female: 120 of 300) or 3 (odd, male: 60 of 300)."""
    import numpy as np
    import pandas as pd

    i = np.arange(600)
    df = pd.DataFrame({"person_id": i + 1, "age": 20 + i % 60, "sex": np.where(i % 2 == 0, "female", "male"),
                       "rls": np.where(np.isin(i % 10, [0, 2, 3]), "yes", "no"), "pregnant": "no",
                       "trimester": pd.NA, "ferritin": 50 + i % 100})
    if genotypes:
        for k, rs in enumerate(("rs2300478", "rs9357271", "rs1975197", "rs4626664")):
            df[rs] = (i + k) % 3
    df.to_csv(path, index=False)


def test_report_from_a_cohort_file_counts_by_hand(tmp_path):
    import hashlib

    src, out = tmp_path / "c.csv", tmp_path / "rep"
    _hand_cohort(src)
    r = run("report", "--cohort", str(src), "--out", str(out), "--check")
    # --check has no targets to check in a file without the simulator's pregnancy columns: exit 1, said so
    assert r.returncode == 1
    assert ("rlsepi: --check needs the pregnancy and clinically significant columns of a simulated cohort"
            in r.stderr.splitlines())
    doc = json.loads((out / "summary.json").read_text())
    prov = doc["provenance"]
    assert prov["input_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest() and prov["rows_used"] == 600
    woolf = doc["sex_odds_ratio"]["crude_woolf"]
    # by hand: 120 of 300 women, 60 of 300 men: OR = 120*240 / (180*60) = 8/3;
    # Woolf SE = sqrt(1/120 + 1/180 + 1/60 + 1/240), 95% CI exp(log OR +- 1.959964 SE)
    assert (woolf["exposed_cases"], woolf["exposed_noncases"], woolf["unexposed_cases"],
            woolf["unexposed_noncases"]) == (120, 180, 60, 240)
    se = math.sqrt(1 / 120 + 1 / 180 + 1 / 60 + 1 / 240)
    assert woolf["estimate"] == pytest.approx(8 / 3, rel=1e-5, abs=0)
    assert woolf["ci_lower"] == pytest.approx(8 / 3 * math.exp(-1.959964 * se), rel=1e-5, abs=0)
    assert woolf["ci_upper"] == pytest.approx(8 / 3 * math.exp(1.959964 * se), rel=1e-5, abs=0)
    # Mantel-Haenszel over 5-year bands: bands with cases hold 20/30 women and 10/20 men with RLS
    # (OR 20*10 / (10*10) = 2 in each); the other bands have no case and are dropped: MH OR = 2
    assert doc["sex_odds_ratio"]["mantel_haenszel"]["estimate"] == pytest.approx(2.0, rel=1e-5, abs=0)
    # this cohort's prevalence is highest at its youngest age: no smooth peak is estimated, and the
    # summary and the page say why instead of giving an edge age with an interval
    why = doc["peak"]["smooth"]["not_estimable"]
    assert why.startswith("prevalence does not rise and fall with age in these data") and "(20)" in why
    page = (out / "index.html").read_text()
    assert "<html" in page.lower() and "Smooth estimate: none: prevalence does not rise and fall with age" in page


def test_report_refuses_a_cohort_without_genotypes_and_its_own_output(tmp_path):
    src = tmp_path / "c.csv"
    _hand_cohort(src, genotypes=False)
    assert one_error(run("report", "--cohort", str(src), "--out", str(tmp_path / "rep"))) == (
        f"rlsepi: error: cohort file '{src}' has no genotype columns; the report's polygenic score needs them: add "
        "one column per locus named by its rsID (e.g. rs2300478), counting effect alleles 0/1/2")
    assert not (tmp_path / "rep" / "summary.json").exists()
    inside = tmp_path / "rep2" / "summary.json"
    inside.parent.mkdir()
    inside.write_text("{}")
    assert one_error(run("report", "--cohort", str(inside), "--out", str(inside.parent), "--force")) == (
        f"rlsepi: error: the report would replace its input '{inside}'; choose another --out folder")
    assert inside.read_text() == "{}"


# --- rlsepi diagnostic ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prevalence", "a,b"], ("rlsepi diagnostic: error: argument --prevalence: expected numbers between 0 and 1 "
         "separated by commas, got 'a,b'; see 'rlsepi diagnostic --help'")),
        (["--prevalence", "0.1,1.5"], ("rlsepi diagnostic: error: argument --prevalence: every prevalence must lie "
         "between 0 and 1, got '0.1,1.5'; see 'rlsepi diagnostic --help'")),
        (["--tp", "8", "--fp", "2"], ("rlsepi: error: give all four counts --tp --fp --fn --tn, or none (and "
         "--sensitivity --specificity)")),
        (["--tp", "8", "--fp", "2", "--fn", "2", "--tn", "8", "--sensitivity", "0.9"],
         "rlsepi: error: give counts or --sensitivity/--specificity, not both"),
        (["--sensitivity", "0.9"], "rlsepi: error: give both --sensitivity and --specificity"),
        (["--tp", "0", "--fp", "2", "--fn", "0", "--tn", "8"], ("rlsepi: error: no one with the disease (tp + fn = 0): "
         "sensitivity cannot be estimated")),
    ],
)
def test_diagnostic_refusals(args, message):
    assert one_error(run("diagnostic", *args)) == message


def test_diagnostic_counts_markdown_csv_and_plot(tmp_path):
    # by hand: TP 80, FP 20, FN 20, TN 80: sensitivity = specificity = 0.8, LR+ = 4, LR- = 0.25;
    # at prevalence 10%: PPV = 0.08 / (0.08 + 0.18) = 30.8%, NPV = 0.72 / (0.72 + 0.02) = 97.3%,
    # P(disease) after a negative result = 1 - NPV = 2.7%
    counts = ["--tp", "80", "--fp", "20", "--fn", "20", "--tn", "80", "--prevalence", "0.1"]
    md, plot = tmp_path / "d.md", tmp_path / "d.svg"
    r = run("diagnostic", *counts, "--out", str(md), "--plot", str(plot))
    assert r.returncode == 0 and r.stdout == "", r.stderr
    text = md.read_text()
    assert "| 10.0% | 30.8% | 97.3% | 2.7% |" in text.splitlines()
    assert "| sensitivity | 0.8 |" in text and "| lr_positive | 4 |" in text and "| lr_negative | 0.25 |" in text
    assert plot.read_text().lstrip().startswith(("<?xml", "<svg"))
    r = run("diagnostic", *counts, "--format", "csv")
    import pandas as pd

    row = pd.read_csv(io.StringIO(r.stdout)).iloc[0]
    assert row["prevalence"] == 0.1
    assert row["ppv"] == pytest.approx(0.08 / 0.26, rel=1e-9, abs=0) and row["npv"] == pytest.approx(0.72 / 0.74, rel=1e-9, abs=0)
    # a plot format matplotlib is not asked to guess; nothing is written
    line = one_error(run("diagnostic", *counts, "--plot", str(tmp_path / "d.jpg")))
    assert line == f"rlsepi: error: --plot '{tmp_path / 'd.jpg'}': give a .png, .svg or .pdf file"


# --- rlsepi serve: refused before any server starts ------------------------------------------


def test_serve_refusals_before_listening(tmp_path):
    import socket

    assert one_error(run("serve", "--host", "0.0.0.0")) == (
        "rlsepi: error: --host 0.0.0.0 would make the page reachable from other machines; use the default "
        "127.0.0.1, or add --allow-remote if that is what you want")
    assert one_error(run("serve", "--model-name", "M1")) == "rlsepi: error: --model-name needs --model FILE"
    assert one_error(run("serve", "--port", "70000")) == "rlsepi: error: --port must be 1-65535, got 70000"
    assert one_error(run("serve", "--model", str(tmp_path / "m.json"))) == (
        f"rlsepi: error: model file '{tmp_path / 'm.json'}' does not exist")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        assert one_error(run("serve", "--host", "localhost", "--port", str(port))) == (
            f"rlsepi: error: cannot listen on localhost:{port} (Address already in use); choose another --port")


# --- rlsepi simulate / fit: refused combinations ------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["simulate", "--n", "10", "--out", "d/", "--plink", "p"],
         "rlsepi: error: --plink writes from a single file; use --out FILE.parquet with --plink"),
        (["simulate", "--n", "10", "--out", "c.parquet", "--scheduler", "local:1"],
         "rlsepi: error: --scheduler writes a Parquet dataset; give a folder: --out c/"),
        (["simulate", "--n", "10", "--out", "c.parquet", "--partition-blocks", "2"],
         "rlsepi: error: --partition-blocks is for a dataset folder (--out DIR/)"),
        (["simulate", "--n", "10", "--out", "c.csv"],
         "rlsepi: error: output 'c.csv' must end in .parquet (or give a folder, DIR/, for a dataset)"),
        (["fit", "nowhere", "--scheduler", "local:1"], "rlsepi: error: cohort 'nowhere' does not exist"),
    ],
)
def test_simulate_and_fit_refused_combinations(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert one_error(run(*args)) == message
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_fit_out_of_core_refuses_in_memory_only_options(tmp_path):
    folder = tmp_path / "ds"
    folder.mkdir()
    for flag in (["--formula", "rls ~ female"], ["--profile"]):
        assert one_error(run("fit", str(folder), *flag)) == (
            f"rlsepi: error: {flag[0]} is not available out of core (--scheduler or a dataset folder); "
            "fit in memory for it")


def test_simulate_plink_files_match_the_cohort(tmp_path):
    import pandas as pd

    from rlsepi.io import read_cohort

    out, prefix = tmp_path / "c.parquet", tmp_path / "g"
    r = run("simulate", "--n", "300", "--seed", "4", "--out", str(out), "--plink", str(prefix), "--quiet")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    df = read_cohort(out)
    fam = pd.read_csv(f"{prefix}.fam", sep=r"\s+", header=None)
    bim = pd.read_csv(f"{prefix}.bim", sep=r"\s+", header=None)
    # PLINK .fam: sex 1 male 2 female, phenotype 2 case 1 control; .bed: magic bytes, then ceil(300 / 4) bytes a variant
    assert len(fam) == 300
    assert (fam[4].to_numpy() == (df["sex"] == "female").map({True: 2, False: 1}).to_numpy()).all()
    assert (fam[5].to_numpy() == df["rls"].astype(bool).map({True: 2, False: 1}).to_numpy()).all()
    assert list(bim[1]) == ["rs2300478", "rs9357271", "rs1975197", "rs4626664"]
    bed = (tmp_path / "g.bed").read_bytes()
    assert bed[:3] == bytes([0x6C, 0x1B, 0x01]) and len(bed) == 3 + 4 * 75


# --- rlsepi.power_simulation: refusals and the CSV/JSON of a simulated power ----------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda ps: ps.simulate_power(49, term="female"), "n must be at least 50 people, got 49"),
        (lambda ps: ps.simulate_power(100, term="female", replicates=1), "replicates must be at least 2, got 1"),
        (lambda ps: ps.search_n(0.8, term="female", replicates=1), "replicates must be at least 2, got 1"),
        (lambda ps: ps.simulate_power(100, term="female", model="M7"), ("model must be one of M0, M1, M2, M3, true "
         "or a formula such as 'rls ~ female + age10', got 'M7'")),
        (lambda ps: ps.search_n(0.8, term="prs_sd", model="rls ~ female"), ("term 'prs_sd' is not in model rls ~ "
         "female; its terms are female")),
    ],
)
def test_power_simulation_refusals(call, message):
    from rlsepi import power_simulation as ps

    with pytest.raises(RLSEpiError) as exc:
        call(ps)
    assert str(exc.value) == message


def test_power_simulate_json_and_csv_with_true_locus_effect(tmp_path):
    # model 'true' is the generating model: the truth of a locus term is log of its published per-allele OR
    # (parameters.py: rs2300478, MEIS1, OR 1.68; Winkelmann 2011)
    args = ["power", "simulate", "--term", "rs2300478", "--model", "true", "--n", "400", "--replicates", "6",
            "--seed", "3", "--workers", "1", "--quiet"]
    r = run(*args, "--format", "json")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    doc = json.loads(r.stdout)
    assert doc["command"] == "power" and doc["n"] == 400 and doc["replicates"] == 6 and doc["seed"] == 3
    assert doc["truth"] == pytest.approx(math.log(1.68), rel=1e-9, abs=0)  # JSON keeps 10 significant digits
    ok = doc["replicates"] - doc["failed"]
    assert doc["power_mcse"] == pytest.approx(math.sqrt(doc["power"] * (1 - doc["power"]) / ok), rel=1e-8, abs=0)
    assert doc["bias"] == pytest.approx(doc["mean_estimate"] - doc["truth"], abs=1e-9)
    csv = run(*args, "--format", "csv").stdout.splitlines()
    assert csv[0].split(",")[:4] == ["n", "replicates", "seed", "term"] and csv[1].startswith("400,6,3,rs2300478,")


# --- rlsepi.cli: the exit contract for what a command raises --------------------------------------


@pytest.mark.parametrize(
    ("exc", "code", "line"),
    [
        (KeyboardInterrupt(), 130, "rlsepi: interrupted; nothing was written"),
        (MemoryError(), 2, "rlsepi: error: out of memory; use a smaller input or --n, or a machine with more memory"),
        (OSError(28, "No space left on device", "/x/c.parquet"), 2,
         "rlsepi: error: No space left on device '/x/c.parquet'; free some space or write elsewhere"),
        (PermissionError(13, "Permission denied", "/x"), 2, ("rlsepi: error: Permission denied '/x'; check the path "
         "and its permissions")),
        (OSError(5, "Input/output error"), 3, None),
        (ValueError("boom\nsecond line"), 3, None),
    ],
)
def test_cli_exit_codes_for_what_a_command_raises(exc, code, line, monkeypatch):
    from rlsepi import __version__
    from rlsepi.cli import BUG_REPORT
    from rlsepi.commands import params as params_cmd

    def boom(args):
        raise exc

    monkeypatch.delenv("RLSEPI_DEBUG", raising=False)
    monkeypatch.setattr(params_cmd, "run", boom)
    r = run("params")
    assert r.returncode == code
    if line is None:  # a bug: one line naming the exception, never a traceback without --debug
        detail = " ".join(str(exc).split()) if not isinstance(exc, OSError) else str(exc)
        line = (f"rlsepi: bug: unexpected {type(exc).__name__}: {detail}. This is a bug in rlsepi {__version__}, "
                f"not in your input; {BUG_REPORT}")
    assert r.stderr.splitlines() == [line]
    # with --debug the same line, and the traceback of a bug or an environment error
    r = run("--debug", "params")
    assert r.returncode == code and line in r.stderr.splitlines()
    assert ("Traceback (most recent call last):" in r.stderr) == (code == 3 or isinstance(exc, OSError))


# --- rlsepi.cohort: the true odds ratios are the published ones; refusals -------------------------


def test_outcome_model_odds_ratios_are_the_published_parameters():
    from rlsepi import cohort
    from rlsepi.parameters import load_parameters

    params = load_parameters(None)
    model = cohort.solve_model(params)
    ors = model.odds_ratios()
    # parameters.py: ferritin.low_or 1.55 below 50 ug/L; per-allele ORs of Winkelmann 2011 / Schormair 2008
    assert ors["ferritin<=50"] == pytest.approx(1.55, rel=1e-9, abs=0)
    assert ors["rs2300478"] == pytest.approx(1.68, rel=1e-9, abs=0)
    assert ors["rs9357271"] == pytest.approx(1.47, rel=1e-9, abs=0)
    assert ors["rs1975197"] == pytest.approx(1.29, rel=1e-9, abs=0)
    assert ors["rs4626664"] == pytest.approx(1.44, rel=1e-9, abs=0)
    assert ors["female"] == pytest.approx(math.exp(model.female), rel=1e-12, abs=0) and ors["female"] > 1
    # the model stored in a cohort's metadata comes back as the same model
    assert cohort.OutcomeModel.from_dict(json.loads(json.dumps(model.to_dict()))) == model


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rng": -1}, "seed must be a non-negative integer, got -1"),
        ({"rng": True}, "seed must be a non-negative integer, got True"),
        ({"workers": 0}, "workers must be at least 1, got 0"),
        ({"batch_blocks": -1}, "batch_blocks must be at least 1, got -1"),
    ],
)
def test_iter_blocks_refusals(kwargs, message):
    from rlsepi import cohort

    with pytest.raises(RLSEpiError) as exc:
        next(iter(cohort.iter_blocks(100, **kwargs)))
    assert str(exc.value) == message


# --- rlsepi.risk_models: derive_columns refusals; DeLong's AUC by hand ------------------------------


def _risk_frame(n: int = 40):
    import numpy as np
    import pandas as pd

    i = np.arange(n)
    df = pd.DataFrame({"rls": i % 4 == 0, "age": 30 + i % 40, "sex": np.where(i % 2 == 0, "female", "male"),
                       "pregnant": False, "trimester": np.nan, "ferritin": 40.0 + i})
    for k, rs in enumerate(("rs2300478", "rs9357271", "rs1975197", "rs4626664")):
        df[rs] = (i + k) % 3
    return df


@pytest.mark.parametrize(
    ("change", "kwargs", "message"),
    [
        (None, {"ferritin": "log10"}, "ferritin coding must be 'log2' or 'cut', got 'log10'"),
        (None, {"age": "cubic"}, "age coding must be 'quadratic' or 'spline', got 'cubic'"),
        ("drop_trimester", {}, "column 'trimester' is missing; the risk models need it (empty when not pregnant)"),
        ("drop_locus", {}, ("column 'rs4626664' is missing; the columns are: rls, age, sex, pregnant, trimester, "
         "ferritin, rs2300478, rs9357271, rs1975197; map your column name with --column rs4626664=YOURS")),
        ("same_age", {"age": "spline"}, "age has too few distinct values for a 4-knot spline; use --age quadratic"),
        ("same_genotypes", {}, "the polygenic score does not vary in these rows; it cannot be standardised"),
    ],
)
def test_derive_columns_refusals(change, kwargs, message):
    from rlsepi.risk_models import derive_columns

    df = _risk_frame()
    if change == "drop_trimester":
        df = df.drop(columns="trimester")
    elif change == "drop_locus":
        df = df.drop(columns="rs4626664")
    elif change == "same_age":
        df["age"] = 50
    elif change == "same_genotypes":
        for rs in ("rs2300478", "rs9357271", "rs1975197", "rs4626664"):
            df[rs] = 1
    with pytest.raises(DataValidationError) as exc:
        derive_columns(df, **kwargs)
    assert str(exc.value) == message


def test_delong_auc_by_hand_and_refusal():
    import numpy as np

    from rlsepi.risk_models import delong

    # by hand: cases score 0.9, 0.6; non-cases 0.7, 0.2, 0.1. Of the 2 x 3 = 6 pairs the case scores higher in 5
    # (0.9 beats all three, 0.6 beats 0.2 and 0.1): AUC = 5/6
    y = np.array([True, True, False, False, False])
    auc, _ = delong(y, np.array([0.9, 0.6, 0.7, 0.2, 0.1]))
    assert float(np.ravel(auc)[0]) == pytest.approx(5 / 6, rel=1e-12, abs=0)
    with pytest.raises(DataValidationError, match=r"^the AUC needs both events and non-events$"):
        delong(np.zeros(4, dtype=bool), np.arange(4.0))


# --- rlsepi.diagnostic: intervals against R, post-test probability by hand ------------------------


def test_binomial_ci_against_r_and_refusals():
    import pandas as pd

    from rlsepi.diagnostic import binomial_ci

    ref = pd.read_csv(__import__("pathlib").Path(__file__).parent / "reference" / "diagnostic" / "binom_more.csv"
                      ).set_index("case")  # binom.test and prop.test(correct = FALSE): binom_more.R
    assert binomial_ci(8, 10) == pytest.approx(tuple(ref.loc["exact_8_10_95"]), rel=1e-9, abs=0)
    assert binomial_ci(8, 10, method="wilson", alpha=0.10) == pytest.approx(tuple(ref.loc["wilson_8_10_90"]), rel=1e-9, abs=0)
    assert all(math.isnan(v) for v in binomial_ci(0, 0))  # no one: no interval
    with pytest.raises(RLSEpiError, match=r"^interval method must be 'exact' or 'wilson', got 'wald'$"):
        binomial_ci(8, 10, method="wald")


def test_post_test_probability_by_hand():
    from rlsepi.diagnostic import post_test_probability

    # odds form of Bayes: pre-test 20% is odds 0.25; LR 4 gives odds 1, probability 0.5
    assert post_test_probability(0.2, 4.0) == pytest.approx(0.5, rel=1e-12, abs=0)
    assert post_test_probability(1.0, 0.1) == 1.0  # certainty stays certain
    with pytest.raises(RLSEpiError, match=r"^likelihood ratio must be 0 or more, got -1.0$"):
        post_test_probability(0.2, -1.0)


def test_study_synthetic_data_has_the_reported_summaries_exactly():
    from rlsepi.study import load_study, synthetic_data

    spec = load_study({"groups": {"a": {"n": 10}, "b": {"n": 1}},
                       "summaries": [{"name": "bmi", "group": "a", "mean": "27.4", "sd": "3.1"},
                                     {"name": "bmi", "group": "b", "mean": "30", "sd": "1"}]})
    df = synthetic_data(spec, rng=1)
    bmi = df.loc[df["group"] == "a", "bmi"]
    assert len(bmi) == 10 and list(df["group"].unique()) == ["a"]  # one person has no SD: group b is left out
    assert bmi.mean() == pytest.approx(27.4, rel=1e-12, abs=0) and bmi.std(ddof=1) == pytest.approx(3.1, rel=1e-12, abs=0)
    only_r = load_study({"groups": {"a": {"n": 10}},
                         "tests": [{"kind": "correlation", "name": "r", "group": "a", "r": 0.3}]})
    with pytest.raises(DataValidationError, match=r"^the study has no means or counts to draw synthetic data from$"):
        synthetic_data(only_r, rng=1)


@pytest.mark.parametrize(
    ("args", "case", "key", "rel"),
    [
        (["proportions", "--p1", "0.095", "--p0", "0.057"], "twoprop_n", "n_total", 1e-9),  # epi.sscohortc
        (["means", "--delta", "0.12", "--sd", "0.243"], "t_n", "group1", 1e-7),  # power.t.test
        (["correlation", "--r", "0.128", "--n", "69"], "r_power", "power", 1e-9),  # pwr.r.test
    ],
)
def test_power_designs_from_the_command_line_match_r(args, case, key, rel):
    import pandas as pd

    ref = pd.read_csv(__import__("pathlib").Path(__file__).parent / "reference" / "power" / "power_r.csv")
    expected = float(ref.loc[ref["case"] == case, "value"].iloc[0])  # tests/reference/power/power.R
    r = run("power", *args, "--format", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    got = doc["groups"][key] if key == "group1" else doc[key]
    assert got == pytest.approx(expected, rel=rel, abs=0)


def test_fit_of_a_dataset_folder_equals_the_in_memory_fit(tmp_path):
    # the out-of-core IRLS over partitions and statsmodels on the whole table are two independent fits of the
    # same likelihood: the M0 coefficients and SEs must agree
    import pandas as pd

    ds, single = tmp_path / "ds", tmp_path / "c.parquet"
    assert run("simulate", "--n", "3000", "--seed", "1", "--out", f"{ds}/", "--quiet").returncode == 0
    assert run("simulate", "--n", "3000", "--seed", "1", "--out", str(single), "--quiet").returncode == 0
    ooc, mem = run("fit", str(ds), "--format", "csv"), run("fit", str(single), "--format", "csv")
    assert ooc.returncode == 0 and mem.returncode == 0, (ooc.stderr[-300:], mem.stderr[-300:])
    a = pd.read_csv(io.StringIO(ooc.stdout)).query("model == 'M0'").set_index("term")
    b = pd.read_csv(io.StringIO(mem.stdout)).query("model == 'M0' and kind == 'coefficient'").set_index("name")
    assert list(a.index) == ["const", "female", "age10", "age10_sq"] and list(b.index) == list(a.index)
    assert a["estimate"].to_numpy() == pytest.approx(b["estimate"].to_numpy(), rel=1e-6, abs=0)
    assert a["se"].to_numpy() == pytest.approx(b["se"].to_numpy(), rel=1e-6, abs=0)


@pytest.mark.parametrize(
    ("counts", "kwargs", "message"),
    [
        ((2.5, 1, 1, 1), {}, "count tp must be a whole number, got 2.5"),
        ((2, "x", 1, 1), {}, "count fp must be a whole number, got 'x'"),
        ((2, 1, -1, 1), {}, "count fn must be 0 or more, got -1"),
        ((2, 0, 1, 0), {}, "no one without the disease (tn + fp = 0): specificity cannot be estimated"),
        ((2, 1, 1, 1), {"alpha": 1.0}, "alpha must lie between 0 and 1 (exclusive), got 1"),
    ],
)
def test_from_counts_refusals(counts, kwargs, message):
    from rlsepi.diagnostic import from_counts

    with pytest.raises(RLSEpiError) as exc:
        from_counts(*counts, **kwargs)
    assert str(exc.value) == message
