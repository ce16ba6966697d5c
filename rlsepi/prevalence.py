"""Prevalence with confidence intervals, sex odds ratios and the age of peak prevalence.

Functions first: the data come first, everything after is keyword-only, and each returns a
small frozen result object with ``to_frame()`` and ``summary()``. Confidence intervals for
proportions come from :func:`statsmodels.stats.proportion.proportion_confint`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from rlsepi.errors import DataValidationError

__all__ = [
    "Prevalence",
    "PrevalenceTable",
    "OddsRatio",
    "PeakBand",
    "crude",
    "stratified",
    "age_band",
    "odds_ratio",
    "peak_band",
    "CI_METHODS",
]

CI_METHODS = {
    "wilson": "wilson",
    "exact": "beta",  # Clopper-Pearson
    "clopper-pearson": "beta",
    "jeffreys": "jeffreys",
    "agresti-coull": "agresti_coull",
}
"""Names rlsepi accepts for a binomial CI, and statsmodels' name for each."""


def _ci(cases: np.ndarray | int, n: np.ndarray | int, method: str, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    if method not in CI_METHODS:
        raise DataValidationError(f"unknown CI method '{method}'; choose one of {', '.join(CI_METHODS)}")
    cases = np.asarray(cases)
    n = np.asarray(n)
    lo, hi = proportion_confint(cases, n, alpha=alpha, method=CI_METHODS[method])
    return np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)


def _outcome(df: pd.DataFrame, outcome: str) -> pd.Series:
    if outcome not in df.columns:
        raise DataValidationError(f"column '{outcome}' is missing; the columns are: {', '.join(map(str, df.columns))}")
    y = df[outcome]
    if y.isna().any():
        raise DataValidationError(
            f"column '{outcome}' has {int(y.isna().sum())} missing values; drop or impute them first"
        )
    if y.dtype != bool:
        values = set(pd.unique(y))
        if not values <= {0, 1, True, False}:
            raise DataValidationError(f"column '{outcome}' must be 0/1 or true/false, got values {sorted(map(str, values))[:5]}")
        y = y.astype(bool)
    return y


@dataclass(frozen=True)
class Prevalence:
    """A proportion with its confidence interval."""

    n: int
    cases: int
    prevalence: float
    ci_lower: float
    ci_upper: float
    method: str
    alpha: float = 0.05

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{
            "n": self.n, "cases": self.cases, "prevalence": self.prevalence,
            "ci_lower": self.ci_lower, "ci_upper": self.ci_upper, "method": self.method,
        }])

    def summary(self) -> str:
        level = round(100 * (1 - self.alpha))
        return (f"{100 * self.prevalence:.2f}% ({level}% CI {100 * self.ci_lower:.2f}-{100 * self.ci_upper:.2f}%, "
                f"{self.method}); {self.cases} of {self.n}")


@dataclass(frozen=True)
class PrevalenceTable:
    """Prevalence by stratum: one row per combination of the ``by`` columns."""

    table: pd.DataFrame
    by: tuple[str, ...]
    method: str
    alpha: float = 0.05

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def summary(self) -> str:
        df = self.table.copy()
        df["prevalence"] = (100 * df["prevalence"]).map("{:.2f}%".format)
        df["95% CI"] = [f"{100 * lo:.2f}-{100 * hi:.2f}%" for lo, hi in zip(self.table["ci_lower"], self.table["ci_upper"])]
        return df.drop(columns=["ci_lower", "ci_upper", "method"]).to_string(index=False)


def crude(df: pd.DataFrame, *, outcome: str = "rls", method: str = "wilson", alpha: float = 0.05) -> Prevalence:
    """Crude prevalence of ``outcome`` with a binomial confidence interval.

    Parameters
    ----------
    df : DataFrame
        One row per person.
    outcome : str
        A boolean (or 0/1) column.
    method : {"wilson", "exact", "jeffreys", "agresti-coull"}
        Confidence interval; ``exact`` is Clopper-Pearson.
    alpha : float
        1 - confidence level.

    Notes
    -----
    Wilson's score interval: :math:`\\frac{\\hat p + z^2/2n \\pm z\\sqrt{\\hat p(1-\\hat p)/n + z^2/4n^2}}{1 + z^2/n}`.

    References
    ----------
    Wilson EB (1927) J Am Stat Assoc 22:209.

    Examples
    --------
    >>> import pandas as pd
    >>> crude(pd.DataFrame({"rls": [True] * 8 + [False] * 92})).summary()
    '8.00% (95% CI 4.11-15.01%, wilson); 8 of 100'
    """
    y = _outcome(df, outcome)
    n, cases = int(y.size), int(y.sum())
    if n == 0:
        raise DataValidationError("no rows to estimate a prevalence from")
    lo, hi = _ci(cases, n, method, alpha)
    return Prevalence(n, cases, cases / n, float(lo), float(hi), method, alpha)


def age_band(age: pd.Series | np.ndarray, *, width: int = 5, breaks: Sequence[int] | None = None) -> pd.Series:
    """Label ages with bands: ``"55-59"`` for width 5, or by explicit lower ``breaks``
    (the last band is open, e.g. ``"85+"``).

    Examples
    --------
    >>> age_band(pd.Series([18, 59, 60, 97])).tolist()
    ['15-19', '55-59', '60-64', '95-99']
    """
    a = pd.Series(age).astype(float)
    if breaks is None:
        lower = (np.floor(a / width) * width).astype(int)
        labels = [f"{lo}-{lo + width - 1}" for lo in lower]
        cats = [f"{lo}-{lo + width - 1}" for lo in sorted(set(lower))]
        return pd.Series(pd.Categorical(labels, categories=cats, ordered=True), index=a.index, name="age_band")
    edges = sorted(breaks)
    names = [f"{lo}-{hi - 1}" for lo, hi in zip(edges[:-1], edges[1:])] + [f"{edges[-1]}+"]
    cut = pd.cut(a, bins=[*edges, np.inf], right=False, labels=names)
    return pd.Series(cut, index=a.index, name="age_band")


def stratified(
    df: pd.DataFrame,
    by: str | Sequence[str],
    *,
    outcome: str = "rls",
    method: str = "wilson",
    alpha: float = 0.05,
) -> PrevalenceTable:
    """Prevalence in each stratum of ``by`` (``"age_band"`` is derived from ``age`` if absent).

    Returns the stratum columns, then ``n``, ``cases``, ``prevalence``, ``ci_lower``,
    ``ci_upper`` and ``method``; strata with nobody in them are left out.
    """
    by = (by,) if isinstance(by, str) else tuple(by)
    data = df
    if "age_band" in by and "age_band" not in df.columns:
        data = df.assign(age_band=age_band(df["age"]))
    for col in by:
        if col not in data.columns:
            raise DataValidationError(f"column '{col}' is missing; cannot stratify by it")
    y = _outcome(data, outcome)
    g = y.groupby([data[c] for c in by], observed=True, sort=True)
    out = pd.DataFrame({"n": g.size(), "cases": g.sum().astype(int)}).reset_index()
    out = out[out["n"] > 0].reset_index(drop=True)
    out["prevalence"] = out["cases"] / out["n"]
    lo, hi = _ci(out["cases"].to_numpy(), out["n"].to_numpy(), method, alpha)
    out["ci_lower"], out["ci_upper"], out["method"] = lo, hi, method
    return PrevalenceTable(out, by, method, alpha)


@dataclass(frozen=True)
class OddsRatio:
    """An odds ratio with its confidence interval and the 2x2 counts it came from."""

    estimate: float
    ci_lower: float
    ci_upper: float
    method: str
    exposed_cases: int
    exposed_noncases: int
    unexposed_cases: int
    unexposed_noncases: int
    label: str = "odds ratio"
    alpha: float = 0.05

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"measure": self.label, "estimate": self.estimate, "ci_lower": self.ci_lower,
                              "ci_upper": self.ci_upper, "method": self.method}])

    def summary(self) -> str:
        level = round(100 * (1 - self.alpha))
        return f"{self.label} {self.estimate:.3f} ({level}% CI {self.ci_lower:.3f}-{self.ci_upper:.3f}, {self.method})"


def odds_ratio(
    df: pd.DataFrame,
    *,
    exposure: str = "sex",
    exposed: object = "female",
    outcome: str = "rls",
    method: str = "woolf",
    alpha: float = 0.05,
) -> OddsRatio:
    """Crude odds ratio of ``outcome`` for ``exposure == exposed`` against everyone else.

    Notes
    -----
    Woolf's logit interval: :math:`\\exp(\\ln\\widehat{OR} \\pm z\\sqrt{1/a + 1/b + 1/c + 1/d})`.
    A table with a zero cell has no finite Woolf interval; rlsepi refuses it rather than
    adding an arbitrary 0.5.

    References
    ----------
    Woolf B (1955) Ann Hum Genet 19:251.
    """
    if method != "woolf":
        raise DataValidationError(f"unknown odds-ratio method '{method}'; available: woolf")
    y = _outcome(df, outcome)
    if exposure not in df.columns:
        raise DataValidationError(f"column '{exposure}' is missing")
    x = (df[exposure] == exposed).to_numpy()
    yv = y.to_numpy()
    a, b = int((x & yv).sum()), int((x & ~yv).sum())
    c, d = int((~x & yv).sum()), int((~x & ~yv).sum())
    if min(a, b, c, d) == 0:
        raise DataValidationError(
            f"the 2x2 table of '{exposure}' by '{outcome}' has an empty cell ({a}, {b}, {c}, {d}); "
            "the odds ratio is not finite"
        )
    log_or = math.log(a * d / (b * c))
    se = math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    z = stats.norm.ppf(1 - alpha / 2)
    return OddsRatio(math.exp(log_or), math.exp(log_or - z * se), math.exp(log_or + z * se), "woolf",
                     a, b, c, d, label=f"{exposure} {exposed} vs other odds ratio", alpha=alpha)


@dataclass(frozen=True)
class PeakBand:
    """The age band with the highest prevalence, and a bootstrap interval for its midpoint."""

    band: str
    lower: int
    upper: int
    midpoint: float
    ci_lower: float
    ci_upper: float
    prevalence: float
    n_boot: int
    table: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"peak_band": self.band, "midpoint": self.midpoint, "ci_lower": self.ci_lower,
                              "ci_upper": self.ci_upper, "prevalence": self.prevalence, "method": "bootstrap"}])

    def summary(self) -> str:
        return (f"peak prevalence in ages {self.band} ({100 * self.prevalence:.2f}%); 95% bootstrap interval of the "
                f"peak band's midpoint {self.ci_lower:g}-{self.ci_upper:g}")


def peak_band(
    df: pd.DataFrame,
    *,
    outcome: str = "rls",
    width: int = 5,
    n_boot: int = 2000,
    alpha: float = 0.05,
    rng: np.random.Generator | int | None = None,
) -> PeakBand:
    """The ``width``-year age band with the highest prevalence.

    The interval comes from a parametric bootstrap: each band's cases are redrawn as
    Binomial(n_band, p_band), the peak band is found again, and the ``alpha/2`` and
    ``1 - alpha/2`` quantiles of its midpoint are reported.
    """
    rng = np.random.default_rng(rng)
    table = stratified(df, "age_band", outcome=outcome).table if width == 5 else stratified(
        df.assign(age_band=age_band(df["age"], width=width)), "age_band", outcome=outcome).table
    lower = np.array([int(str(s).split("-")[0]) for s in table["age_band"]])
    mid = lower + (width - 1) / 2
    n = table["n"].to_numpy()
    p = table["prevalence"].to_numpy()
    best = int(np.argmax(p))
    boot = rng.binomial(n[None, :], p[None, :], size=(n_boot, n.size)) / n[None, :]
    mids = mid[np.argmax(boot, axis=1)]
    lo, hi = np.quantile(mids, [alpha / 2, 1 - alpha / 2])
    return PeakBand(str(table["age_band"].iloc[best]), int(lower[best]), int(lower[best] + width - 1),
                    float(mid[best]), float(lo), float(hi), float(p[best]), n_boot, table)
