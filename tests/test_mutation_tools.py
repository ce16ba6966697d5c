"""The mutation-testing tools (`make mutate`): the score, its interval, and the seeded sample."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


score_tool = _load("mutation_score")
sample_tool = _load("mutation_sample")


def test_each_exit_code_is_counted_where_it_belongs():
    # mutmut 3.8.1's codes: 1 killed, 36 timeout, 37 type check, 0 survived, 33/5 no tests,
    # None not checked, 2 interrupted, -11 segfault
    codes = {"m.a_1": 1, "m.a_2": 36, "m.a_3": 37, "m.a_4": 0, "m.a_5": 0, "m.a_6": 33, "m.a_7": 5,
             "m.a_8": None, "m.a_9": 2, "m.a_10": -11}
    c, survivors = score_tool.classify(codes, equivalent={"m.a_5"})
    assert dict(c) == {"mutants": 10, "killed": 3, "equiv": 1, "survived": 1, "untested": 2,
                       "not run": 2, "other": 1, "checked": 8}
    # not killed and not equivalent: the survivor and the two no-test mutants
    assert survivors == ["m.a_4", "m.a_6", "m.a_7"]
    # killed / (checked - equivalent) = 3 / 7: a mutant no test reaches counts against the score
    assert score_tool.score(c, interval=False) == "42.9%"


def test_the_sample_score_carries_the_wilson_interval_of_r():
    # 145 killed of 150 scored (2 equivalent left out): R's prop.test(145, 150, correct = FALSE)
    # gives 0.9243482038-0.9856795681 (tests/reference/mutation/wilson.R)
    c = score_tool.Counter(killed=145, survived=5, equiv=2, checked=152)
    assert score_tool.score(c, interval=True) == "96.7% (92.4-98.6)"
    assert score_tool.score(score_tool.Counter(), interval=True) == "-"


def test_equivalent_names_are_the_first_word_of_each_line(tmp_path):
    f = tmp_path / "eq.txt"
    f.write_text("# comment\nm.a_1  # reason\n\n  m.b_2 reason words\n", encoding="utf-8")
    assert score_tool.equivalent_names(f) == {"m.a_1", "m.b_2"}
    assert score_tool.equivalent_names(tmp_path / "absent.txt") == set()


def test_the_sample_is_seeded_uniform_and_never_larger_than_the_module():
    mutants = {"m": [f"m.f_{i}" for i in range(1000)], "small": ["small.g_1", "small.g_2"]}
    first = sample_tool.draw(mutants, 100, seed=5)
    assert first == sample_tool.draw(mutants, 100, seed=5)
    assert first != sample_tool.draw(mutants, 100, seed=6)
    assert len(first["m"]) == len(set(first["m"])) == 100 and set(first["m"]) <= set(mutants["m"])
    assert first["small"] == ["small.g_1", "small.g_2"]
    # uniform: over 400 draws of 100 of 1000, each mutant is drawn with probability 0.1; the
    # 1000 counts are Binomial(400, 0.1) (mean 40, SD 6), all within 40 +/- 6 SD
    counts = dict.fromkeys(mutants["m"], 0)
    for seed in range(400):
        for name in sample_tool.draw({"m": mutants["m"]}, 100, seed)["m"]:
            counts[name] += 1
    assert 4 < min(counts.values()) and max(counts.values()) < 76
    assert sum(counts.values()) == 40_000


def test_the_sampler_writes_its_sample_and_the_scorer_reads_only_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mutants" / "rlsepi").mkdir(parents=True)
    names = {f"rlsepi.m.x_f__mutmut_{i}": (1 if i % 10 else 0) for i in range(1, 201)}
    (tmp_path / "mutants" / "rlsepi" / "m.py.meta").write_text(json.dumps({"exit_code_by_key": names}))
    assert sample_tool.main(["50", "--seed", "3"]) == 0
    printed = capsys.readouterr().out.split()
    drawn = json.loads((tmp_path / "mutants" / "sample.json").read_text())
    assert drawn["seed"] == 3 and drawn["n"] == 50 and drawn["population"] == {"rlsepi.m": 200}
    assert printed == drawn["names"]["rlsepi.m"] and len(printed) == 50
    assert score_tool.main(["--sample"]) == 0
    out = capsys.readouterr().out
    killed = sum(names[n] == 1 for n in printed)
    row = next(line for line in out.splitlines() if line.startswith("rlsepi.m "))
    assert row.split()[1:4] == ["50", "0", "50"] and int(row.split()[4]) == killed
    assert f"{100 * killed / 50:.1f}% (" in row
    assert sample_tool.main(["0"]) == 2
    assert sample_tool.main(["5", "--module", "rlsepi.nope"]) == 2


def test_the_scorer_without_a_sample_file_says_how_to_draw_one(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mutants").mkdir()
    (tmp_path / "mutants" / "m.py.meta").write_text(json.dumps({"exit_code_by_key": {"m.x_1": 1}}))
    assert score_tool.main(["--sample"]) == 1
    assert "tools/mutation_sample.py N" in capsys.readouterr().err


def test_shrinking_draws_from_the_sample_itself_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mutants").mkdir()
    first = {"a": [f"a.f_{i}" for i in range(150)], "b": [f"b.g_{i}" for i in range(150)]}
    (tmp_path / "mutants" / "sample.json").write_text(json.dumps({"seed": 1, "n": 150, "names": first}))
    assert sample_tool.main(["60", "--shrink", "--seed", "2", "--module", "a"]) == 0
    drawn = json.loads((tmp_path / "mutants" / "sample.json").read_text())
    assert len(drawn["names"]["a"]) == 60 and set(drawn["names"]["a"]) <= set(first["a"])
    assert drawn["names"]["a"] == sample_tool.draw({"a": first["a"]}, 60, 2)["a"]
    assert drawn["names"]["b"] == first["b"] and drawn["shrunk"] == {"a": {"n": 60, "seed": 2}}
    assert len(capsys.readouterr().out.split()) == 210
    assert sample_tool.main(["60", "--shrink"]) == 2  # which module is not said


def test_the_rerun_judges_each_mutant_by_its_tests_in_a_fork(tmp_path):
    # a tiny mutated package as mutmut lays it out: f() returns 2 unless a mutant is switched on
    # (MUTANT_UNDER_TEST); mutant 1 makes it 3 (a test checks 2: killed), mutant 2 changes
    # nothing the test sees (survives), mutant 3 never returns (stopped at the time limit)
    import subprocess
    import sys

    m = tmp_path / "mutants"
    (m / "tests").mkdir(parents=True)
    (m / "toy.py").write_text(
        "import os, time\n"
        "def f():\n"
        "    name = os.environ.get('MUTANT_UNDER_TEST', '')\n"
        "    if name.endswith('_1'):\n        return 3\n"
        "    if name.endswith('_3'):\n        time.sleep(60)\n"
        "    return 2\n")
    (m / "tests" / "test_toy.py").write_text("import toy\n\ndef test_f():\n    assert toy.f() == 2\n")
    (m / "mutmut-stats.json").write_text(json.dumps({
        "tests_by_mangled_function_name": {"toy.x_f": ["tests/test_toy.py::test_f"]},
        "duration_by_test": {"tests/test_toy.py::test_f": 0.01}}))
    names = ["toy.x_f__mutmut_1", "toy.x_f__mutmut_2", "toy.x_f__mutmut_3", "toy.x_g__mutmut_1"]
    done = subprocess.run([sys.executable, str(TOOLS / "mutation_rerun.py"), "--timeout", "5", *names],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    # 1 killed, 0 survived, 36 timeout, 33 no tests (x_g has none)
    assert json.loads((m / "rerun.json").read_text()) == {
        "toy.x_f__mutmut_1": 1, "toy.x_f__mutmut_2": 0, "toy.x_f__mutmut_3": 36, "toy.x_g__mutmut_1": 33}
    # nothing to re-run (no suspicious mutant, none named) runs nothing
    again = subprocess.run([sys.executable, str(TOOLS / "mutation_rerun.py")], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 0 and "no mutant to re-run" in again.stdout
