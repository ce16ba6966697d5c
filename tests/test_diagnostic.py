"""Test accuracy, predictive values and likelihood ratios against epiR epi.tests
(tests/reference/diagnostic/diagnostic.R) and hand calculations."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rlsepi import diagnostic as dg
from rlsepi.cli import main
from rlsepi.errors import RLSEpiError
from rlsepi.parameters import PLMS_SENSITIVITY, PLMS_SPECIFICITY

REF = Path(__file__).parent / "reference" / "diagnostic" / "epi_tests.csv"
MAP = {"ap": "apparent_prevalence", "tp": "true_prevalence", "se": "sensitivity", "sp": "specificity",
       "diag.ac": "accuracy", "pv.pos": "ppv", "pv.neg": "npv", "lr.pos": "lr_positive", "lr.neg": "lr_negative",
       "diag.or": "diagnostic_or"}


def _reference() -> pd.DataFrame:
    ref = pd.read_csv(REF, dtype=str, skipinitialspace=True)
    ref = ref.apply(lambda c: c.str.strip())
    for c in ("tp", "fp", "fn", "tn"):
        ref[c] = ref[c].astype(int)
    for c in ("est", "lower", "upper"):
        ref[c] = ref[c].astype(float)
    return ref[ref["statistic"].isin(MAP)]


ROWS = list(_reference().itertuples(index=False))


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r.table}-{r.method}-{r.statistic}")
def test_matches_epir_epi_tests(row):
    d = dg.from_counts(row.tp, row.fp, row.fn, row.tn).table.set_index("measure").loc[MAP[row.statistic]]
    lo, hi = (d.exact_lower, d.exact_upper) if row.method == "exact" else (d.wilson_lower, d.wilson_upper)
    if math.isinf(row.est):
        # a zero cell: epiR gives (NaN, Inf); rlsepi gives an infinite estimate and no interval
        assert math.isinf(d.estimate) and math.isnan(lo) and math.isnan(hi)
        return
    assert d.estimate == pytest.approx(row.est, abs=1e-9)
    assert lo == pytest.approx(row.lower, abs=1e-9)
    assert hi == pytest.approx(row.upper, abs=1e-9)


def test_reference_covers_both_interval_methods_and_four_tables():
    ref = _reference()
    assert set(ref["method"]) == {"exact", "wilson"} and ref["table"].nunique() == 4


def test_plms_example_by_hand():
    # Se 0.80, Sp 0.70. At 8%: PPV = 0.8*0.08 / (0.8*0.08 + 0.3*0.92) = 0.064/0.34 = 0.188235...
    # At 40%: PPV = 0.32 / (0.32 + 0.18) = 0.64; NPV = 0.42 / (0.42 + 0.08) = 0.84. LR+ = 0.8/0.3, LR- = 0.2/0.7.
    pv = dg.from_accuracy(PLMS_SENSITIVITY, PLMS_SPECIFICITY, [0.08, 0.40])
    assert pv.table["ppv"].tolist() == pytest.approx([0.064 / 0.34, 0.64], abs=1e-12)
    assert pv.table["npv"].tolist() == pytest.approx([0.644 / 0.66, 0.84], abs=1e-12)
    assert pv.lr_positive == pytest.approx(8 / 3) and pv.lr_negative == pytest.approx(2 / 7)


def test_post_test_probability_is_bayes_in_odds_form():
    for p in (0.01, 0.08, 0.4, 0.9):
        ppv, npv = dg.predictive_values(0.8, 0.7, p)
        assert dg.post_test_probability(p, 0.8 / 0.3) == pytest.approx(ppv[0], abs=1e-12)
        assert dg.post_test_probability(p, 0.2 / 0.7) == pytest.approx(1 - npv[0], abs=1e-12)


@pytest.mark.parametrize("call, match", [
    (lambda: dg.from_counts(-1, 2, 3, 4), "tp must be 0 or more"),
    (lambda: dg.from_counts(0, 2, 0, 4), "no one with the disease"),
    (lambda: dg.from_accuracy(0.4, 0.5, 0.1), "not above 1"),
    (lambda: dg.from_accuracy(1.4, 0.5, 0.1), "sensitivity must lie between 0 and 1"),
    (lambda: dg.predictive_values(0.8, 0.7, [0.1, 1.5]), "every prevalence"),
])
def test_bad_input_refused(call, match):
    with pytest.raises(RLSEpiError, match=match):
        call()


def test_cli_default_is_the_plms_example(capsys, tmp_path):
    assert main(["diagnostic", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["prevalence"] for r in doc["by_prevalence"]] == [0.08, 0.40]
    assert [r["ppv"] for r in doc["by_prevalence"]] == pytest.approx([0.064 / 0.34, 0.64], abs=1e-12)
    assert "PLMS" in doc["source"]
    plot = tmp_path / "ppv.png"
    assert main(["diagnostic", "--tp", "80", "--fp", "30", "--fn", "20", "--tn", "70", "--plot", str(plot)]) == 0
    assert plot.read_bytes()[:4] == b"\x89PNG"
    assert "sensitivity 0.800" in capsys.readouterr().out


def test_plot_returns_axes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = dg.plot_predictive_values(0.8, 0.7, marks=[0.08, 0.4])
    ppv_line = ax.get_lines()[0].get_ydata()
    assert np.all(np.diff(ppv_line) > 0)  # PPV rises with prevalence
    plt.close(ax.figure)


@pytest.mark.parametrize("argv", [
    ["diagnostic", "--tp", "1", "--fp", "2"],
    ["diagnostic", "--sensitivity", "0.8"],
    ["diagnostic", "--sensitivity", "1.2", "--specificity", "0.7"],
    ["diagnostic", "--prevalence", "0.1,2"],
    ["diagnostic", "--tp", "0", "--fp", "2", "--fn", "0", "--tn", "4"],
])
def test_cli_bad_input_exit_2(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("rlsepi")
