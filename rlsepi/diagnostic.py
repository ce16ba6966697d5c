"""What a test result means: accuracy, predictive values, likelihood ratios, post-test probability.

From a 2x2 table of counts (:func:`from_counts`, with exact Clopper-Pearson and Wilson intervals)
or from a sensitivity and a specificity (:func:`from_accuracy`), and a prevalence or a range of
prevalences: the positive and negative predictive values (PPV, NPV), the likelihood ratios, and
the post-test probability. :func:`plot_predictive_values` draws PPV and NPV against prevalence.

Known answers: epiR ``epi.tests`` in ``tests/reference/diagnostic/`` (agreement to 1e-9).

References
----------
Altman DG, Bland JM (1994). Diagnostic tests 2: predictive values. BMJ 309:102.
Simel DL, Samsa GP, Matchar DB (1991). Likelihood ratios with confidence: sample size
estimation for diagnostic test studies. J Clin Epidemiol 44:763.
Deeks JJ, Altman DG (2004). Diagnostic tests 4: likelihood ratios. BMJ 329:168.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from rlsepi.errors import RLSEpiError

__all__ = [
    "DiagnosticTable",
    "PredictiveValues",
    "from_counts",
    "from_accuracy",
    "predictive_values",
    "post_test_probability",
    "binomial_ci",
    "plot_predictive_values",
]


def binomial_ci(x: int, n: int, *, method: str = "exact", alpha: float = 0.05) -> tuple[float, float]:
    """Confidence interval of a proportion x / n: ``exact`` (Clopper-Pearson) or ``wilson``."""
    if n <= 0:
        return float("nan"), float("nan")
    if method == "exact":
        lo = 0.0 if x == 0 else float(stats.beta.ppf(alpha / 2, x, n - x + 1))
        hi = 1.0 if x == n else float(stats.beta.isf(alpha / 2, x + 1, n - x))
        return lo, hi
    if method == "wilson":
        z = float(stats.norm.isf(alpha / 2))
        p = x / n
        centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
        half = z / (1 + z**2 / n) * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
        return max(0.0, centre - half), min(1.0, centre + half)
    raise RLSEpiError(f"interval method must be 'exact' or 'wilson', got '{method}'")


def _prob(name: str, x: float) -> float:
    x = float(x)
    if not (math.isfinite(x) and 0.0 <= x <= 1.0):
        raise RLSEpiError(f"{name} must lie between 0 and 1, got {x:g}")
    return x


def predictive_values(sensitivity: float, specificity: float, prevalence: float | Sequence[float] | np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """PPV and NPV at each prevalence (Bayes' theorem).

    Notes
    -----
    ``PPV = Se P / (Se P + (1 - Sp)(1 - P))``, ``NPV = Sp (1 - P) / (Sp (1 - P) + (1 - Se) P)``.
    """
    se, sp = _prob("sensitivity", sensitivity), _prob("specificity", specificity)
    p = np.atleast_1d(np.asarray(prevalence, dtype=float))
    if not np.all((p >= 0) & (p <= 1)):
        raise RLSEpiError("every prevalence must lie between 0 and 1")
    with np.errstate(invalid="ignore", divide="ignore"):
        ppv = se * p / (se * p + (1 - sp) * (1 - p))
        npv = sp * (1 - p) / (sp * (1 - p) + (1 - se) * p)
    return ppv, npv


def post_test_probability(pretest: float, likelihood_ratio: float) -> float:
    """Post-test probability from a pre-test probability and a likelihood ratio (odds form of Bayes)."""
    p = _prob("pre-test probability", pretest)
    if not (math.isfinite(likelihood_ratio) and likelihood_ratio >= 0):
        raise RLSEpiError(f"likelihood ratio must be 0 or more, got {likelihood_ratio}")
    if p == 1:
        return 1.0
    odds = p / (1 - p) * likelihood_ratio
    return odds / (1 + odds)


@dataclass(frozen=True)
class PredictiveValues:
    """PPV, NPV and post-test probabilities at given prevalences.

    Attributes
    ----------
    sensitivity, specificity : float
    lr_positive, lr_negative : float
    table : DataFrame
        One row per prevalence: ``prevalence, ppv, npv, post_test_positive, post_test_negative``
        (``post_test_positive`` equals the PPV; ``post_test_negative = 1 - NPV``), and, when the
        accuracy came from counts, ``ppv_lower, ppv_upper, npv_lower, npv_upper``: the values at
        the limits of the sensitivity's and specificity's exact intervals (a range, not a
        confidence interval).
    """

    sensitivity: float
    specificity: float
    lr_positive: float
    lr_negative: float
    table: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def summary(self) -> str:
        lines = [f"sensitivity {self.sensitivity:.3f}, specificity {self.specificity:.3f}: LR+ {self.lr_positive:.2f}, "
                 f"LR- {self.lr_negative:.2f}"]
        for r in self.table.itertuples():
            lines.append(f"at prevalence {100 * r.prevalence:.1f}%: a positive result means a {100 * r.ppv:.1f}% "
                         f"probability of disease (PPV), a negative one {100 * r.post_test_negative:.1f}% "
                         f"(NPV {100 * r.npv:.1f}%)")
        return "\n".join(lines)


@dataclass(frozen=True)
class DiagnosticTable:
    """Accuracy of a test from a 2x2 table of counts.

    Attributes
    ----------
    tp, fp, fn, tn : int
        True positives (test + disease +), false positives, false negatives, true negatives.
    alpha : float
    table : DataFrame
        One row per measure: ``measure, estimate, exact_lower, exact_upper, wilson_lower,
        wilson_upper``. Proportions (apparent and true prevalence, sensitivity, specificity,
        PPV, NPV, accuracy) have both intervals; the likelihood ratios and the diagnostic odds
        ratio have log-scale Wald intervals (Simel et al. 1991) in both pairs of columns.
    """

    tp: int
    fp: int
    fn: int
    tn: int
    alpha: float
    table: pd.DataFrame

    @property
    def sensitivity(self) -> float:
        return self.tp / (self.tp + self.fn)

    @property
    def specificity(self) -> float:
        return self.tn / (self.tn + self.fp)

    def estimate(self, measure: str) -> float:
        return float(self.table.set_index("measure").loc[measure, "estimate"])

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def summary(self) -> str:
        t = self.table.set_index("measure")
        level = f"{100 * (1 - self.alpha):g}%"
        parts = []
        for m in ("sensitivity", "specificity", "ppv", "npv", "lr_positive", "lr_negative"):
            r = t.loc[m]
            parts.append(f"{m} {r.estimate:.3f} ({level} CI {r.exact_lower:.3f}-{r.exact_upper:.3f})")
        return (f"TP {self.tp}, FP {self.fp}, FN {self.fn}, TN {self.tn}: " + "; ".join(parts)
                + " (exact intervals for proportions, log-scale for ratios)")


def _check_counts(tp: int, fp: int, fn: int, tn: int) -> tuple[int, int, int, int]:
    out = []
    for name, v in (("tp", tp), ("fp", fp), ("fn", fn), ("tn", tn)):
        if isinstance(v, float) and not float(v).is_integer() or isinstance(v, bool):
            raise RLSEpiError(f"count {name} must be a whole number, got {v}")
        try:
            iv = int(v)
        except (TypeError, ValueError):
            raise RLSEpiError(f"count {name} must be a whole number, got {v!r}") from None
        if iv < 0:
            raise RLSEpiError(f"count {name} must be 0 or more, got {iv}")
        out.append(iv)
    tp, fp, fn, tn = out
    if tp + fn == 0:
        raise RLSEpiError("no one with the disease (tp + fn = 0): sensitivity cannot be estimated")
    if tn + fp == 0:
        raise RLSEpiError("no one without the disease (tn + fp = 0): specificity cannot be estimated")
    return tp, fp, fn, tn


def _ratio_ci(est: float, var_log: float, z: float) -> tuple[float, float]:
    if not (math.isfinite(est) and est > 0 and math.isfinite(var_log)):
        return float("nan"), float("nan")
    s = math.sqrt(var_log)
    return est * math.exp(-z * s), est * math.exp(z * s)


def from_counts(tp: int, fp: int, fn: int, tn: int, *, alpha: float = 0.05) -> DiagnosticTable:
    """Sensitivity, specificity, predictive values and likelihood ratios from a 2x2 table.

    Parameters
    ----------
    tp, fp, fn, tn : int
        Counts: test positive with disease, test positive without, test negative with, test
        negative without.
    alpha : float
        1 - confidence level.

    Notes
    -----
    Proportions get exact (Clopper-Pearson) and Wilson score intervals. ``LR+ = Se / (1 - Sp)``
    with ``var ln LR+ = 1/tp - 1/(tp + fn) + 1/fp - 1/(fp + tn)``; ``LR- = (1 - Se) / Sp`` with
    ``var ln LR- = 1/fn - 1/(tp + fn) + 1/tn - 1/(fp + tn)`` (Simel et al. 1991); the diagnostic
    odds ratio ``tp tn / (fp fn)`` with Woolf's ``var ln DOR = 1/tp + 1/fp + 1/fn + 1/tn``. The
    predictive values here are those of the table's own prevalence (a cross-sectional
    sample); for another prevalence use :func:`from_accuracy`.

    Examples
    --------
    >>> d = from_counts(80, 30, 20, 70)
    >>> round(d.estimate("lr_positive"), 4)
    2.6667
    """
    tp, fp, fn, tn = _check_counts(tp, fp, fn, tn)
    a = _prob("alpha", alpha)
    if not 0 < a < 1:
        raise RLSEpiError(f"alpha must lie between 0 and 1 (exclusive), got {a:g}")
    n = tp + fp + fn + tn
    z = float(stats.norm.isf(a / 2))
    rows = []
    for name, x, m in (("apparent_prevalence", tp + fp, n), ("true_prevalence", tp + fn, n),
                       ("sensitivity", tp, tp + fn), ("specificity", tn, tn + fp), ("ppv", tp, tp + fp),
                       ("npv", tn, tn + fn), ("accuracy", tp + tn, n)):
        est = x / m if m else float("nan")
        lo, hi = binomial_ci(x, m, method="exact", alpha=a)
        wl, wh = binomial_ci(x, m, method="wilson", alpha=a)
        rows.append((name, est, lo, hi, wl, wh))
    se, sp = tp / (tp + fn), tn / (tn + fp)
    with np.errstate(divide="ignore", invalid="ignore"):
        lrp = se / (1 - sp) if sp < 1 else float("inf")
        lrn = (1 - se) / sp if sp > 0 else float("inf")
        dor = (tp * tn) / (fp * fn) if fp * fn > 0 else float("inf")
    v_lrp = 1 / tp - 1 / (tp + fn) + 1 / fp - 1 / (fp + tn) if tp > 0 and fp > 0 else float("nan")
    v_lrn = 1 / fn - 1 / (tp + fn) + 1 / tn - 1 / (fp + tn) if fn > 0 and tn > 0 else float("nan")
    v_dor = 1 / tp + 1 / fp + 1 / fn + 1 / tn if min(tp, fp, fn, tn) > 0 else float("nan")
    for name, est, v in (("lr_positive", lrp, v_lrp), ("lr_negative", lrn, v_lrn), ("diagnostic_or", dor, v_dor)):
        lo, hi = _ratio_ci(est, v, z)
        rows.append((name, est, lo, hi, lo, hi))
    table = pd.DataFrame(rows, columns=["measure", "estimate", "exact_lower", "exact_upper", "wilson_lower",
                                        "wilson_upper"])
    return DiagnosticTable(tp, fp, fn, tn, a, table)


def from_accuracy(sensitivity: float, specificity: float, prevalence: float | Sequence[float], *,
                  counts: DiagnosticTable | None = None) -> PredictiveValues:
    """PPV, NPV, likelihood ratios and post-test probabilities at one or more prevalences.

    Parameters
    ----------
    sensitivity, specificity : float
    prevalence : float or sequence of float
        Pre-test probabilities (the prevalence in the setting where the test is used).
    counts : DiagnosticTable, optional
        When the accuracy came from counts: adds the PPV and NPV at the limits of the exact
        intervals of sensitivity and specificity (``ppv_lower`` etc.).

    Examples
    --------
    >>> pv = from_accuracy(0.80, 0.70, [0.08, 0.40])
    >>> [round(x, 4) for x in pv.table["ppv"]]
    [0.1882, 0.64]
    """
    se, sp = _prob("sensitivity", sensitivity), _prob("specificity", specificity)
    if se + sp <= 1:
        raise RLSEpiError(f"sensitivity + specificity = {se + sp:g} is not above 1: a positive result would not "
                          "raise the probability of disease; check the two values")
    p = np.atleast_1d(np.asarray(prevalence, dtype=float))
    ppv, npv = predictive_values(se, sp, p)
    lrp = se / (1 - sp) if sp < 1 else float("inf")
    lrn = (1 - se) / sp
    table = pd.DataFrame({"prevalence": p, "ppv": ppv, "npv": npv, "post_test_positive": ppv,
                          "post_test_negative": 1 - npv})
    if counts is not None:
        t = counts.table.set_index("measure")
        se_lo, se_hi = t.loc["sensitivity", ["exact_lower", "exact_upper"]]
        sp_lo, sp_hi = t.loc["specificity", ["exact_lower", "exact_upper"]]
        table["ppv_lower"] = predictive_values(se_lo, sp_lo, p)[0]
        table["ppv_upper"] = predictive_values(se_hi, sp_hi, p)[0]
        table["npv_lower"] = predictive_values(se_lo, sp_lo, p)[1]
        table["npv_upper"] = predictive_values(se_hi, sp_hi, p)[1]
    return PredictiveValues(se, sp, float(lrp), float(lrn), table)


def plot_predictive_values(sensitivity: float, specificity: float, *, marks: Sequence[float] = (),
                           ax: Any = None, title: str | None = None) -> Any:
    """PPV and NPV against prevalence (0-100%), with vertical marks at ``marks``; returns the Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    grid = np.linspace(0.001, 0.999, 400)
    ppv, npv = predictive_values(sensitivity, specificity, grid)
    ax.plot(100 * grid, 100 * ppv, label="PPV: P(disease | positive)", color="#b2182b")
    ax.plot(100 * grid, 100 * npv, label="NPV: P(no disease | negative)", color="#2166ac")
    for m in marks:
        mp, mn = predictive_values(sensitivity, specificity, m)
        ax.axvline(100 * m, color="0.6", lw=0.8, ls="--")
        ax.annotate(f"{100 * m:g}%: PPV {100 * mp[0]:.0f}%, NPV {100 * mn[0]:.0f}%", (100 * m, 100 * mp[0]),
                    xytext=(5, -12), textcoords="offset points", fontsize=8)
    ax.set_xlabel("prevalence (pre-test probability), %")
    ax.set_ylabel("predictive value, %")
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.set_title(title or f"sensitivity {sensitivity:g}, specificity {specificity:g}")
    ax.legend(loc="lower center", fontsize=8)
    return ax
