"""The command line of issue 2: simulate, check, params; refused inputs; atomic writes."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from rlsepi import __version__
from rlsepi.cli import COMMANDS, main
from rlsepi.io import read_metadata


def run_process(*args: str) -> subprocess.CompletedProcess:
    """Run the command in a fresh process, as a user would."""
    return subprocess.run([sys.executable, "-m", "rlsepi.cli", *args], capture_output=True, text=True, timeout=300)


def run(*args: str) -> subprocess.CompletedProcess:
    """Run the command in this process (same code path as the console script, faster)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse: --help, --version, usage errors
            code = int(exc.code or 0)
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_version_and_help_for_every_command():
    r = run_process("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"rlsepi {__version__}"
    assert run("--help").returncode == 0
    for name in COMMANDS:
        r = run(name, "--help")
        assert r.returncode == 0, name
        assert "usage: rlsepi " + name in r.stdout


def test_simulate_writes_parquet_with_provenance(tmp_path):
    out = tmp_path / "c.parquet"
    r = run("simulate", "--n", "5000", "--seed", "7", "--out", str(out))
    assert r.returncode == 0, r.stderr
    meta = read_metadata(out)
    assert meta["seed"] == 7 and meta["n"] == 5000 and meta["version"] == __version__
    assert meta["command"] == "rlsepi simulate --n 5000 --seed 7 --out FILE"
    assert meta["parameters"]["targets"]["prevalence"]["value"] == 0.08
    assert set(meta["model"]) >= {"intercept", "female", "age_peak", "trimester", "loci"}
    assert pq.ParquetFile(out).metadata.num_rows == 5000


def test_same_seed_same_bytes_whatever_the_workers_and_batches(tmp_path):
    # 3 blocks of 65,536 people (the last one partial)
    outs = []
    for i, extra in enumerate(([], ["--workers", "2"], ["--workers", "2", "--batch-blocks", "1"], ["--batch-blocks", "3"])):
        out = tmp_path / f"c{i}.parquet"
        r = run("simulate", "--n", "150000", "--seed", "3", "--out", str(out), *extra)
        assert r.returncode == 0, r.stderr
        outs.append(sha(out))
    assert len(set(outs)) == 1
    assert pq.ParquetFile(tmp_path / "c0.parquet").metadata.num_row_groups == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--n", "0"], "must be greater than 0"),
        (["--n", "-3"], "must be greater than 0"),
        (["--n", "ten"], "expected a whole number"),
        (["--n", "100", "--seed", "-1"], "must be 0 or more"),
    ],
)
def test_simulate_refuses_bad_numbers(tmp_path, args, message):
    r = run_process("simulate", *args, "--out", str(tmp_path / "x.parquet"))
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.parquet").exists()


def test_simulate_refuses_to_overwrite_without_force(tmp_path):
    out = tmp_path / "c.parquet"
    out.write_bytes(b"precious")
    r = run("simulate", "--n", "100", "--out", str(out))
    assert r.returncode == 2 and "already exists; use --force" in r.stderr
    assert r.stderr.count("\n") == 1 and out.read_bytes() == b"precious"
    assert run("simulate", "--n", "100", "--out", str(out), "--force").returncode == 0
    assert pq.ParquetFile(out).metadata.num_rows == 100


@pytest.mark.parametrize("target", ["missing/c.parquet", "adir", "c.csv"])
def test_simulate_refuses_unwritable_or_wrong_outputs(tmp_path, target):
    (tmp_path / "adir").mkdir()
    r = run("simulate", "--n", "100", "--out", str(tmp_path / target))
    assert r.returncode == 2 and r.stderr.startswith("rlsepi: error: ")
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_simulate_leaves_nothing_behind_on_bad_parameters(tmp_path):
    params = tmp_path / "p.toml"
    params.write_text("[targets.prevalence]\nvalue = 1.5\n")
    r = run("simulate", "--n", "100", "--out", str(tmp_path / "c.parquet"), "--params", str(params))
    assert r.returncode == 2 and "'targets.prevalence.value' = 1.5 is not allowed" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.toml"]


def test_check_passes_on_a_calibrated_cohort_and_fails_on_a_miscalibrated_one(tmp_path):
    good = tmp_path / "good.parquet"
    assert main(["simulate", "--n", "1000000", "--seed", "11", "--out", str(good), "--quiet"]) == 0
    r = run("check", str(good))
    assert r.returncode == 0, r.stdout
    assert "all targets reproduced" in r.stdout and "FAIL" not in r.stdout

    # a cohort simulated for a prevalence of 13%, checked against the published 7-10% band
    params = tmp_path / "high.toml"
    params.write_text("[targets.prevalence]\nvalue = 0.13\nhigh = 0.15\n")
    bad = tmp_path / "bad.parquet"
    assert main(["simulate", "--n", "200000", "--out", str(bad), "--params", str(params), "--quiet"]) == 0
    defaults = tmp_path / "defaults.toml"
    defaults.write_text("")
    r = run("check", str(bad), "--params", str(defaults))
    assert r.returncode == 1
    assert "targets missed: prevalence" in r.stdout
    # judged against the parameters it was made with (stored in the file), it passes those
    r = run("check", str(bad), "--json")
    prevalence = next(t for t in json.loads(r.stdout)["targets"] if t["name"] == "prevalence")
    assert prevalence["target"] == 0.13 and prevalence["high"] == 0.15 and prevalence["passed"]


def test_check_refuses_a_file_that_is_not_a_cohort(tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("a,b\n1,2\n")
    r = run("check", str(f))
    # every missing column at once, in one line
    assert r.returncode == 2 and r.stderr == (
        "rlsepi: error: columns 'age', 'sex', 'pregnant', 'rls', 'rls_clinically_significant' and 'trimester' are "
        "missing; the columns are: a, b; map your column names with --column NAME=YOURS (once for each)\n")
    r = run("check", str(tmp_path / "nope.parquet"))
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_params_prints_loadable_toml_and_sources(tmp_path):
    r = run("params")
    assert r.returncode == 0 and "[targets.prevalence]" in r.stdout
    (tmp_path / "p.toml").write_text(r.stdout)
    assert run("params", "--params", str(tmp_path / "p.toml")).stdout == r.stdout
    r = run("params", "--sources")
    assert "Winkelmann" in r.stdout and "[A]" in r.stdout


def test_fit_on_women_only_reports_no_sex_effect_and_risk_refuses_men(tmp_path):
    """Issue 9 part 3: a term with no variation is dropped by name; the model keeps its data range."""
    from rlsepi.cohort import simulate

    df = simulate(3000, rng=5)
    women = df[df["sex"] == "female"]
    women.to_csv(tmp_path / "w.csv", index=False)
    model = tmp_path / "m.json"
    r = run("fit", str(tmp_path / "w.csv"), "--format", "json", "--out", str(model), "--cv-folds", "2")
    assert r.returncode == 0, r.stderr
    assert "rlsepi: warning: M0: term 'female' dropped from the model: it does not vary" in r.stderr
    doc = json.loads(model.read_text())
    for m in doc["models"]:
        assert "female" not in [c["term"] for c in m["coefficients"]]
        assert "female" in m["dropped_terms"]
    assert doc["data_range"]["sexes"] == ["female"]
    assert doc["data_range"]["age"] == [float(women["age"].min()), float(women["age"].max())]
    r = run("risk", "--model", str(model), "--sex", "male", "--age", "50")
    assert r.returncode == 2 and "fitted on women only" in r.stderr
    r = run("risk", "--model", str(model), "--sex", "female", "--age", "50", "--json")
    assert r.returncode == 0, r.stderr
    assert 0 < json.loads(r.stdout)["probability"] < 1


def test_the_program_exits_with_the_command_code_after_collecting_its_garbage(monkeypatch):
    # rlsepi.cli.run (the console script and python -m rlsepi.cli): main's exit code; the command's garbage is
    # collected first (a cycle's finalizer runs), then the rest frozen so that the shutdown does not walk it again
    import gc
    import weakref

    from rlsepi import cli

    finalized = []

    class Node:
        pass

    def command() -> int:
        a = Node()
        a.self = a  # cyclic garbage once the command returns
        weakref.finalize(a, finalized.append, "collected")
        return 1

    monkeypatch.setattr(cli, "main", command)
    before = gc.get_freeze_count()
    try:
        with pytest.raises(SystemExit) as e:
            cli.run()
        frozen = gc.get_freeze_count()
    finally:
        gc.unfreeze()
    assert e.value.code == 1 and finalized == ["collected"] and frozen > before
    # main itself, called in-process, freezes nothing
    assert run("params").returncode == 0 and gc.get_freeze_count() == 0
