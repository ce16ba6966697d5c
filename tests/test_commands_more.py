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
        (["prevalence", "--precision", "x"], "rlsepi power prevalence: error: argument --precision: expected a "
         "number, got 'x'; see 'rlsepi power prevalence --help'"),
        (["prevalence", "--precision", "0"], "rlsepi power prevalence: error: argument --precision: must be "
         "greater than 0, got 0; see 'rlsepi power prevalence --help'"),
        (["prevalence", "--precision", "inf"], "rlsepi power prevalence: error: argument --precision: must be "
         "greater than 0, got inf; see 'rlsepi power prevalence --help'"),
        (["means", "--delta", "big", "--sd", "1"], "rlsepi power means: error: argument --delta: expected a "
         "number, got 'big'; see 'rlsepi power means --help'"),
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
    assert doc["n_total"] == pytest.approx(11309.2547681235, rel=1e-9)
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
