"""Prevalence with confidence intervals, sex odds ratios and the age of peak prevalence.

Functions first: the data come first, everything after is keyword-only, and each returns a
small frozen result object with ``to_frame()`` and ``summary()``. Confidence intervals for
proportions come from :func:`statsmodels.stats.proportion.proportion_confint`; the numbers
agree with R's epitools, epiR and stats packages (see ``tests/reference/prevalence``).

Functions
---------
crude, stratified, suppress
    Prevalence with a binomial CI (Wilson, Clopper-Pearson, Jeffreys, Agresti-Coull),
    optionally survey-weighted; small-cell suppression.
standardised, read_standard
    Direct age (or age-and-sex) standardisation with the Fay-Feuer gamma interval.
odds_ratio, mantel_haenszel, adjusted_odds_ratio
    Female:male odds ratio: crude (Woolf or conditional MLE with Fisher's exact interval),
    Mantel-Haenszel over age bands with the Breslow-Day test, and logistic regression.
peak_band, peak_age
    Age of peak prevalence: by age band, and from a smooth logistic curve in age.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from rlsepi.errors import DataValidationError, InestimableTermWarning, SmallCellWarning
from rlsepi.schema import describe_rows, inestimable_terms

__all__ = [
    "Prevalence",
    "PrevalenceTable",
    "Standardised",
    "OddsRatio",
    "MantelHaenszel",
    "ModelOddsRatio",
    "PeakBand",
    "PeakAge",
    "PEAK_MODELS",
    "LOCAL_BANDWIDTH",
    "crude",
    "stratified",
    "suppress",
    "age_band",
    "standardised",
    "standard_population",
    "read_standard",
    "odds_ratio",
    "conditional_odds_ratio",
    "mantel_haenszel",
    "adjusted_odds_ratio",
    "peak_band",
    "peak_age",
    "peak_age_from_counts",
    "format_pvalue",
    "CI_METHODS",
    "OR_METHODS",
]

CI_METHODS = {
    "wilson": "wilson",
    "exact": "beta",  # Clopper-Pearson
    "clopper-pearson": "beta",
    "jeffreys": "jeffreys",
    "agresti-coull": "agresti_coull",
}
"""Names rlsepi accepts for a binomial CI, and statsmodels' name for each."""

OR_METHODS = ("woolf", "exact")
"""Crude odds-ratio methods: Woolf's logit interval, or the conditional MLE with the exact
interval of :func:`fisher.test`."""


# --- helpers ---------------------------------------------------------------------------


def _z(alpha: float) -> float:
    if not 0 < alpha < 1:
        raise DataValidationError(f"alpha must lie between 0 and 1, got {alpha}")
    return float(stats.norm.ppf(1 - alpha / 2))


def _ci(cases: Any, n: Any, method: str, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    if method not in CI_METHODS:
        raise DataValidationError(f"unknown CI method '{method}'; choose one of {', '.join(CI_METHODS)}")
    _z(alpha)
    cases = np.asarray(cases, dtype=float)
    n = np.asarray(n, dtype=float)
    lo, hi = proportion_confint(cases, n, alpha=alpha, method=CI_METHODS[method])
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    # At x = 0 the lower limit is exactly 0 and at x = n the upper limit exactly 1: by definition
    # for Clopper-Pearson and Jeffreys (Brown, Cai and DasGupta 2001), algebraically for Wilson,
    # and by clipping for Agresti-Coull. statsmodels returns them with rounding error (a Wilson
    # lower limit of 2.8e-17 above an estimate of 0), so set them exactly.
    lo = np.where(cases == 0, 0.0, lo)
    hi = np.where(cases == n, 1.0, hi)
    # With survey weights the counts are effective (Kish) counts and need not be whole. Below
    # one effective case the Jeffreys lower limit can lie above the estimate (0.000242 for an
    # estimate of 0.000129 with 0.0002 effective cases), which no whole count gives: extend the
    # x = 0 rule to x < 1, and likewise at the upper end, so an interval always holds its estimate.
    if method == "jeffreys":
        lo = np.where(cases < 1, 0.0, lo)
        hi = np.where(n - cases < 1, 1.0, hi)
    return np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)


def _outcome(df: pd.DataFrame, outcome: str) -> pd.Series:
    if outcome not in df.columns:
        raise DataValidationError(f"column '{outcome}' is missing; the columns are: {', '.join(map(str, df.columns))}")
    y = df[outcome]
    if y.isna().any():
        raise DataValidationError(
            f"column '{outcome}' has {describe_rows(y.isna())} with missing values; drop them first "
            "(rlsepi.schema.harmonise does, and counts them)"
        )
    if y.dtype != bool:
        values = set(pd.unique(y))
        if not values <= {0, 1, True, False}:
            shown = sorted(map(str, values))[:5]
            raise DataValidationError(
                f"column '{outcome}' must be 0/1 or true/false, got values {shown}; map codes with --code"
            )
        y = y.astype(bool)
    return y


def _weights(df: pd.DataFrame, weights: str | None) -> np.ndarray | None:
    if weights is None:
        return None
    if weights not in df.columns:
        raise DataValidationError(f"weights column '{weights}' is missing; the columns are: "
                                  f"{', '.join(map(str, df.columns))}")
    w = pd.to_numeric(df[weights], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(w) | (w <= 0)
    if bad.any():
        raise DataValidationError(
            f"column '{weights}' has {describe_rows(bad)} that are not positive numbers; survey weights "
            "must be > 0 (drop people with weight 0 first)"
        )
    return w


def _freq(df: pd.DataFrame, freq: str | None) -> np.ndarray:
    """People each row stands for: 1 each, or the ``freq`` column of a table of counts.

    A table of counts (one row per combination of the columns, ``freq`` people in it, as
    :func:`rlsepi.distributed.cell_counts` makes) gives every count-based estimate exactly as
    the rows it summarises would.
    """
    if freq is None:
        return np.ones(len(df), dtype=np.int64)
    if freq not in df.columns:
        raise DataValidationError(f"frequency column '{freq}' is missing; the columns are: "
                                  f"{', '.join(map(str, df.columns))}")
    f = df[freq].to_numpy()
    if not np.issubdtype(f.dtype, np.integer) or (f < 0).any():
        raise DataValidationError(f"frequency column '{freq}' must hold whole numbers >= 0 (people per row)")
    return f.astype(np.int64)


def _no_weights_with_freq(weights: str | None, freq: str | None) -> None:
    if weights is not None and freq is not None:
        raise DataValidationError("survey weights need individual rows; they cannot be used with a table of counts")


def _weighted_ci(y: np.ndarray, w: np.ndarray, method: str, alpha: float) -> tuple[float, float, float, float]:
    """Weighted proportion and its CI from Kish's effective sample size."""
    p = float(np.sum(w * y) / np.sum(w))
    n_eff = float(np.sum(w) ** 2 / np.sum(w ** 2))
    lo, hi = _ci(p * n_eff, n_eff, method, alpha)
    return p, float(lo), float(hi), n_eff


def format_pvalue(p: float | None) -> str:
    """A p-value as text: 3 decimals from 0.001 up, scientific notation below (``2.58e-238``),
    never "0": a p-value that underflows double precision (below about 1e-308) prints as
    ``<1e-308``; NaN or None as a dash.

    Examples
    --------
    >>> [format_pvalue(p) for p in (0.5, 0.0123, 2.58e-238, 0.0)]
    ['0.500', '0.012', '2.58e-238', '<1e-308']
    """
    if p is None or not math.isfinite(p):
        return "—"
    if p >= 0.001:
        return f"{p:.3f}"
    if p < 1e-308:
        return "<1e-308"
    return f"{p:.3g}"


def _level(alpha: float) -> str:
    return f"{100 * (1 - alpha):g}%"


# --- prevalence ------------------------------------------------------------------------


@dataclass(frozen=True)
class Prevalence:
    """A proportion with its confidence interval.

    ``n`` and ``cases`` are counts of rows; with survey weights ``prevalence`` is the
    weighted proportion and ``n_effective`` Kish's effective sample size.
    """

    n: int
    cases: int
    prevalence: float
    ci_lower: float
    ci_upper: float
    method: str
    alpha: float = 0.05
    n_effective: float | None = None

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
        pct = lambda x: "—" if pd.isna(x) else f"{100 * x:.2f}%"  # noqa: E731
        df["prevalence"] = self.table["prevalence"].map(pct)
        df[f"{_level(self.alpha)} CI"] = [
            "—" if pd.isna(lo) else f"{100 * lo:.2f}-{100 * hi:.2f}%"
            for lo, hi in zip(self.table["ci_lower"], self.table["ci_upper"])
        ]
        return df.drop(columns=["ci_lower", "ci_upper", "method"]).to_string(index=False)


def crude(
    df: pd.DataFrame,
    *,
    outcome: str = "rls",
    method: str = "wilson",
    alpha: float = 0.05,
    weights: str | None = None,
    freq: str | None = None,
) -> Prevalence:
    """Crude prevalence of ``outcome`` with a binomial confidence interval.

    Parameters
    ----------
    df : DataFrame
        One row per person.
    outcome : str
        A boolean (or 0/1) column.
    method : {"wilson", "exact", "clopper-pearson", "jeffreys", "agresti-coull"}
        Confidence interval; ``exact`` is Clopper-Pearson.
    alpha : float
        1 - confidence level.
    weights : str, optional
        A column of survey weights (> 0).
    freq : str, optional
        A column of counts: each row stands for that many people with its values (a table
        of counts from :func:`rlsepi.distributed.cell_counts`); not with ``weights``.

    Notes
    -----
    Wilson's score interval:
    :math:`\\frac{\\hat p + z^2/2n \\pm z\\sqrt{\\hat p(1-\\hat p)/n + z^2/4n^2}}{1 + z^2/n}`.
    Clopper-Pearson: :math:`[B(\\alpha/2; x, n-x+1),\\ B(1-\\alpha/2; x+1, n-x)]` with ``B`` the
    beta quantile. Jeffreys: the same quantiles of :math:`\\mathrm{Beta}(x+1/2, n-x+1/2)`, with
    the lower limit 0 when :math:`x = 0` and the upper limit 1 when :math:`x = n` (Brown et al.).
    Agresti-Coull: the Wald interval around :math:`\\tilde p = (x + z^2/2)/(n + z^2)` with
    :math:`\\tilde n = n + z^2`.

    With survey weights :math:`w_i`, :math:`\\hat p = \\sum w_i y_i / \\sum w_i` and the
    interval is the chosen one evaluated at Kish's effective sample size
    :math:`n_\\text{eff} = (\\sum w_i)^2 / \\sum w_i^2` with :math:`\\hat p\\, n_\\text{eff}` cases
    (Korn and Graubard's approach without the degrees-of-freedom correction).

    References
    ----------
    Wilson EB (1927) J Am Stat Assoc 22:209. Clopper CJ, Pearson ES (1934) Biometrika 26:404.
    Brown LD, Cai TT, DasGupta A (2001) Stat Sci 16:101. Agresti A, Coull BA (1998) Am Stat 52:119.
    Kish L (1965) Survey Sampling. Korn EL, Graubard BI (1998) Surv Methodol 24:193.

    Examples
    --------
    >>> import pandas as pd
    >>> crude(pd.DataFrame({"rls": [True] * 8 + [False] * 92})).summary()
    '8.00% (95% CI 4.11-15.00%, wilson); 8 of 100'
    """
    _no_weights_with_freq(weights, freq)
    y = _outcome(df, outcome)
    f = _freq(df, freq)
    n, cases = int(f.sum()), int(f[y.to_numpy()].sum())
    if n == 0:
        raise DataValidationError("no rows to estimate a prevalence from")
    w = _weights(df, weights)
    if w is not None:
        p, lo, hi, n_eff = _weighted_ci(y.to_numpy(dtype=float), w, method, alpha)
        return Prevalence(n, cases, p, lo, hi, f"{method}, weighted (Kish n_eff)", alpha, n_eff)
    lo, hi = _ci(cases, n, method, alpha)
    return Prevalence(n, cases, cases / n, float(lo), float(hi), method, alpha)


def age_band(age: pd.Series | np.ndarray, *, width: int = 5, breaks: Sequence[int] | None = None) -> pd.Series:
    """Label ages with bands: ``"55-59"`` for width 5, or by explicit lower ``breaks``
    (the last band is open, e.g. ``"85+"``).

    Raises
    ------
    DataValidationError
        An age lies below the first break.

    Examples
    --------
    >>> age_band(pd.Series([18, 59, 60, 97])).tolist()
    ['15-19', '55-59', '60-64', '95-99']
    >>> age_band(pd.Series([18, 44, 45, 80]), breaks=[18, 45, 65]).tolist()
    ['18-44', '18-44', '45-64', '65+']
    """
    a = pd.Series(age).astype(float)
    if breaks is None:
        if width < 1:
            raise DataValidationError(f"age band width must be 1 year or more, got {width}")
        lower = (np.floor(a.to_numpy() / width) * width).astype(int)
        uniq, codes = np.unique(lower, return_inverse=True)
        cats = [f"{lo}-{lo + width - 1}" for lo in uniq]
        return pd.Series(pd.Categorical.from_codes(codes, categories=cats, ordered=True), index=a.index,
                         name="age_band")
    edges = sorted({int(b) for b in breaks})
    if not edges:
        raise DataValidationError("age breaks are empty; give lower band limits such as 18,30,45,60,75")
    below = (a < edges[0]).to_numpy()
    if below.any():
        raise DataValidationError(
            f"column 'age' has {describe_rows(below)} below the first age break {edges[0]}; "
            f"start the breaks at or below {int(a.min())}"
        )
    names = [f"{lo}-{hi - 1}" for lo, hi in zip(edges[:-1], edges[1:])] + [f"{edges[-1]}+"]
    cut = pd.cut(a, bins=[*edges, np.inf], right=False, labels=names)
    return pd.Series(cut, index=a.index, name="age_band")


def _with_age_band(df: pd.DataFrame, by: Sequence[str], width: int, breaks: Sequence[int] | None) -> pd.DataFrame:
    if "age_band" in by and ("age_band" not in df.columns or breaks is not None or width != 5):
        if "age" not in df.columns:
            raise DataValidationError("column 'age' is missing; it is needed for age bands")
        return df.assign(age_band=age_band(df["age"], width=width, breaks=breaks))
    return df


def stratified(
    df: pd.DataFrame,
    by: str | Sequence[str],
    *,
    outcome: str = "rls",
    method: str = "wilson",
    alpha: float = 0.05,
    weights: str | None = None,
    width: int = 5,
    breaks: Sequence[int] | None = None,
    freq: str | None = None,
) -> PrevalenceTable:
    """Prevalence in each stratum of ``by`` (``"age_band"`` is derived from ``age`` if absent).

    Parameters
    ----------
    df : DataFrame
        One row per person.
    by : str or sequence of str
        Stratum columns, any columns of ``df``; ``"age_band"`` is made from ``age`` with
        ``width``-year bands or the lower ``breaks``.
    outcome, method, alpha, weights, freq
        As for :func:`crude`.

    Returns
    -------
    PrevalenceTable
        The stratum columns, then ``n``, ``cases``, ``prevalence``, ``ci_lower``,
        ``ci_upper`` and ``method``; strata with nobody in them are left out.

    Notes
    -----
    Each stratum's interval is that of :func:`crude` applied to the stratum.

    Examples
    --------
    >>> d = pd.DataFrame({"sex": ["female"] * 4 + ["male"] * 4, "rls": [1, 1, 0, 0, 1, 0, 0, 0]})
    >>> stratified(d, "sex").table[["sex", "n", "cases", "prevalence"]].to_dict("records")
    [{'sex': 'female', 'n': 4, 'cases': 2, 'prevalence': 0.5}, {'sex': 'male', 'n': 4, 'cases': 1, 'prevalence': 0.25}]
    """
    by = (by,) if isinstance(by, str) else tuple(by)
    if not by:
        raise DataValidationError("give at least one column to stratify by")
    data = _with_age_band(df, by, width, breaks)
    for col in by:
        if col not in data.columns:
            raise DataValidationError(
                f"column '{col}' is missing; cannot stratify by it; the columns are: "
                f"{', '.join(map(str, data.columns))}"
            )
        na = data[col].isna().to_numpy()
        if na.any():
            raise DataValidationError(
                f"column '{col}' has {describe_rows(na)} with missing values; drop them first "
                "(rlsepi.schema.harmonise with require= does, and counts them)"
            )
    _no_weights_with_freq(weights, freq)
    y = _outcome(data, outcome)
    keys = [data[c] for c in by]
    f = pd.Series(_freq(data, freq), index=data.index)
    counts = pd.DataFrame({"n": f, "cases": f.where(y, 0)})
    g = counts.groupby(keys, observed=True, sort=True)
    out = g.sum().astype(int).reset_index()
    out = out[out["n"] > 0].reset_index(drop=True)
    w = _weights(data, weights)
    if w is None:
        out["prevalence"] = out["cases"] / out["n"]
        lo, hi = _ci(out["cases"].to_numpy(), out["n"].to_numpy(), method, alpha)
        label = method
    else:
        frame = pd.DataFrame({"y": y.to_numpy(dtype=float), "w": w})
        rows = []
        for _, sub in frame.groupby(keys, observed=True, sort=True):
            rows.append(_weighted_ci(sub["y"].to_numpy(), sub["w"].to_numpy(), method, alpha))
        out["prevalence"] = [r[0] for r in rows]
        lo, hi = np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
        label = f"{method}, weighted (Kish n_eff)"
    out["ci_lower"], out["ci_upper"], out["method"] = lo, hi, label
    return PrevalenceTable(out, by, label, alpha)


def suppress(table: PrevalenceTable, k: int) -> PrevalenceTable:
    """Small-cell suppression: blank the cases, prevalence and CI of strata with fewer than
    ``k`` people, or with between 1 and ``k - 1`` cases or non-cases.

    The stratum and its ``n`` stay (``n`` too is blanked when below ``k``); ``method`` says
    ``suppressed (<k)``. Counts of 0 are not suppressed.

    Examples
    --------
    >>> d = pd.DataFrame({"sex": ["female"] * 10 + ["male"] * 10, "rls": [1] * 2 + [0] * 8 + [1] * 5 + [0] * 5})
    >>> suppress(stratified(d, "sex"), 3).table["cases"].tolist()
    [nan, 5.0]
    """
    if k < 1:
        raise DataValidationError(f"--suppress-below must be 1 or more, got {k}")
    t = table.table.copy()
    n, cases = t["n"].to_numpy(), t["cases"].to_numpy()
    non = n - cases
    small = (n < k) | ((cases > 0) & (cases < k)) | ((non > 0) & (non < k))
    if small.any():
        for col in ("cases", "prevalence", "ci_lower", "ci_upper"):
            t[col] = t[col].astype(float)
            t.loc[small, col] = np.nan
        t["n"] = t["n"].astype(float)
        t.loc[small & (n < k), "n"] = np.nan
        t["method"] = t["method"].astype(object)
        t.loc[small, "method"] = f"suppressed (<{k})"
    return PrevalenceTable(t, table.by, table.method, table.alpha)


# --- direct standardisation ------------------------------------------------------------


_STANDARD_ALIASES = {"esp": "esp2013", "who": "who2000", "world": "who2000", "us": "us2000"}


def _canonical_standard(name: str) -> str:
    key = name.lower().replace(" ", "").replace("_", "")
    return _STANDARD_ALIASES.get(key, key)


def standard_population(standard: str | pd.DataFrame | Mapping[int, float]) -> tuple[pd.DataFrame, str]:
    """A standard population as a table with ``age_lower``, ``weight`` (and optional ``sex``),
    and its source.

    ``standard`` is a bundled name (``esp2013``, ``who2000``, ``us2000``; see
    :data:`rlsepi.parameters.STANDARD_POPULATIONS`), a mapping {lower age: weight}, or a
    table as :func:`read_standard` returns.
    """
    from rlsepi.parameters import STANDARD_POPULATIONS

    if isinstance(standard, str):
        key = _canonical_standard(standard)
        if key not in STANDARD_POPULATIONS:
            raise DataValidationError(
                f"unknown standard population '{standard}'; choose one of "
                f"{', '.join(sorted(STANDARD_POPULATIONS))} or give a weights file (CSV with age_lower,weight)"
            )
        entry = STANDARD_POPULATIONS[key]
        bands = pd.DataFrame(list(entry["bands"]), columns=["age_lower", "weight"])
        return bands, str(entry["source"])
    if isinstance(standard, Mapping):
        bands = pd.DataFrame({"age_lower": list(standard), "weight": list(standard.values())})
        return _check_standard(bands, "the standard"), "user weights"
    return _check_standard(standard.copy(), "the standard"), str(standard.attrs.get("source", "user weights"))


def _check_standard(t: pd.DataFrame, where: str) -> pd.DataFrame:
    for col in ("age_lower", "weight"):
        if col not in t.columns:
            raise DataValidationError(
                f"{where} has no column '{col}'; a weights file has columns age_lower,weight "
                "(and optionally sex), one row per age band"
            )
    t["age_lower"] = pd.to_numeric(t["age_lower"], errors="coerce")
    t["weight"] = pd.to_numeric(t["weight"], errors="coerce")
    bad = t["age_lower"].isna().to_numpy() | t["weight"].isna().to_numpy() | (t["weight"] < 0).to_numpy()
    if bad.any():
        raise DataValidationError(
            f"{where} has {describe_rows(bad)} where age_lower or weight is not a number >= 0; correct them"
        )
    if "sex" in t.columns:
        t["sex"] = t["sex"].astype(str).str.strip().str.lower().map(
            {"f": "female", "female": "female", "m": "male", "male": "male"})
        if t["sex"].isna().any():
            raise DataValidationError(f"{where}: column 'sex' must hold female or male")
        dup = t.duplicated(["age_lower", "sex"]).to_numpy()
    else:
        dup = t.duplicated(["age_lower"]).to_numpy()
    if dup.any():
        raise DataValidationError(f"{where} has {describe_rows(dup)} repeating an age band; give each band once")
    t["age_lower"] = t["age_lower"].astype(int)
    return t.sort_values([c for c in ("age_lower", "sex") if c in t.columns]).reset_index(drop=True)


def read_standard(path: str | Path) -> pd.DataFrame:
    """Read a standard population (weights) file: CSV or TSV with columns ``age_lower``
    (the lower limit of each age band, the last band open) and ``weight``, optionally ``sex``.

    Weights may be counts, proportions or percentages; they are normalised before use.
    """
    p = Path(path)
    if not p.exists():
        raise DataValidationError(f"standard population file '{p}' does not exist")
    sep = "\t" if p.suffix.lower() in (".tsv", ".txt") else ","
    try:
        t = pd.read_csv(p, sep=sep)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataValidationError(f"cannot read standard population file '{p}': {exc}") from None
    t.columns = [str(c).strip().lower() for c in t.columns]
    t = _check_standard(t, f"standard population file '{p.name}'")
    t.attrs["source"] = f"user weights file {p.name}"
    t.attrs["name"] = p.name
    return t


@dataclass(frozen=True)
class Standardised:
    """A directly standardised prevalence with its Fay-Feuer gamma interval.

    ``table`` holds, per stratum, ``n``, ``cases``, the stratum prevalence and the
    standard weight used (normalised to sum to 1). ``excluded`` lists the standard's age
    bands outside the cohort's age range, which were left out before normalising.
    """

    crude: float
    adjusted: float
    ci_lower: float
    ci_upper: float
    n: int
    cases: int
    standard: str
    source: str
    by: tuple[str, ...]
    table: pd.DataFrame
    excluded: tuple[str, ...] = ()
    method: str = "direct, Fay-Feuer gamma"
    alpha: float = 0.05

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{
            "standard": self.standard, "by": "+".join(self.by), "n": self.n, "cases": self.cases,
            "crude": self.crude, "prevalence": self.adjusted, "ci_lower": self.ci_lower,
            "ci_upper": self.ci_upper, "method": self.method,
        }])

    def summary(self) -> str:
        return (f"{'+'.join(self.by)}-standardised to {self.standard}: {100 * self.adjusted:.2f}% "
                f"({_level(self.alpha)} CI {100 * self.ci_lower:.2f}-{100 * self.ci_upper:.2f}%, {self.method}); "
                f"crude {100 * self.crude:.2f}%")


def _band_labels(lowers: Sequence[int]) -> list[str]:
    lowers = list(lowers)
    return [f"{lo}-{hi - 1}" for lo, hi in zip(lowers[:-1], lowers[1:])] + [f"{lowers[-1]}+"]


def fay_feuer(cases: np.ndarray, n: np.ndarray, weight: np.ndarray, *, alpha: float = 0.05) -> tuple[float, float, float]:
    """Directly standardised rate and its gamma interval (Fay and Feuer 1997).

    Parameters
    ----------
    cases, n : array
        Cases and people in each stratum (every ``n`` > 0).
    weight : array
        Standard weights (normalised here).

    Notes
    -----
    With :math:`w_j` the normalised weights, :math:`y = \\sum_j w_j c_j/n_j`,
    :math:`v = \\sum_j w_j^2 c_j/n_j^2` and :math:`w_M = \\max_j w_j/n_j`, the interval is
    :math:`[G^{-1}_{y^2/v,\\, v/y}(\\alpha/2),\\ G^{-1}_{(y+w_M)^2/(v+w_M^2),\\,(v+w_M^2)/(y+w_M)}(1-\\alpha/2)]`
    with :math:`G^{-1}_{k,\\theta}` the gamma quantile of shape ``k`` and scale ``θ``: the same
    computation as ``epitools::ageadjust.direct`` and ``epiR::epi.directadj``.

    References
    ----------
    Fay MP, Feuer EJ (1997) Confidence intervals for directly standardized rates: a method
    based on the gamma distribution. Stat Med 16:791-801.
    """
    cases = np.asarray(cases, dtype=float)
    n = np.asarray(n, dtype=float)
    w = np.asarray(weight, dtype=float)
    w = w / w.sum()
    dsr = float(np.sum(w * cases / n))
    var = float(np.sum(w ** 2 * cases / n ** 2))
    wm = float(np.max(w / n))
    lo = 0.0 if dsr == 0 else float(stats.gamma.ppf(alpha / 2, dsr ** 2 / var, scale=var / dsr))
    hi = float(stats.gamma.ppf(1 - alpha / 2, (dsr + wm) ** 2 / (var + wm ** 2), scale=(var + wm ** 2) / (dsr + wm)))
    return dsr, lo, hi


def standardised(
    df: pd.DataFrame,
    *,
    standard: str | pd.DataFrame | Mapping[int, float] = "esp2013",
    outcome: str = "rls",
    by_sex: bool = False,
    breaks: Sequence[int] | None = None,
    alpha: float = 0.05,
    freq: str | None = None,
) -> Standardised:
    """Directly age- (or age-and-sex-) standardised prevalence.

    Parameters
    ----------
    df : DataFrame
        One row per person with ``age`` (and ``sex`` for ``by_sex``).
    standard : str, DataFrame or mapping
        ``"esp2013"``, ``"who2000"`` or ``"us2000"`` (bundled, cited in
        :mod:`rlsepi.parameters`), a table from :func:`read_standard`, or {lower age: weight}.
    by_sex : bool
        Standardise for age and sex: strata are age band x sex, each weighted by the
        standard's weight for the band times one half (or by the standard's own ``sex``
        rows when it has them).
    breaks : sequence of int, optional
        Coarser age bands: lower limits taken from the standard's band limits; the standard's
        weights are summed within each.
    alpha : float
        1 - confidence level.
    freq : str, optional
        A column of counts (see :func:`crude`).

    Notes
    -----
    People are put in the standard's age bands. Bands wholly outside the cohort's ages
    (e.g. children in a cohort of adults) are left out and the remaining weights
    normalised; a band inside the cohort's age range with nobody in it is an error, since
    its weight would otherwise be silently dropped. The estimate and interval are those of
    :func:`fay_feuer`.

    References
    ----------
    Fay MP, Feuer EJ (1997) Stat Med 16:791. Ahmad OB et al. (2001) GPE Discussion Paper 31, WHO.

    Examples
    --------
    >>> d = pd.DataFrame({"age": [20] * 50 + [70] * 50, "rls": [1] * 5 + [0] * 45 + [1] * 15 + [0] * 35})
    >>> r = standardised(d, standard={20: 3, 70: 1})
    >>> round(r.adjusted, 4), round(r.crude, 4)
    (0.15, 0.2)
    """
    y = _outcome(df, outcome)
    if "age" not in df.columns:
        raise DataValidationError("column 'age' is missing; it is needed for age standardisation")
    std, source = standard_population(standard)
    if isinstance(standard, str):
        name = _canonical_standard(standard)
    elif isinstance(standard, pd.DataFrame):
        name = str(standard.attrs.get("name", "user weights"))
    else:
        name = "user weights"
    has_sex = "sex" in std.columns
    if has_sex and not by_sex:
        std = std.groupby("age_lower", as_index=False)["weight"].sum()
        has_sex = False
    lowers = sorted(std["age_lower"].unique())
    if breaks is not None:
        edges = sorted({int(b) for b in breaks})
        off = [b for b in edges if b not in lowers]
        if off:
            raise DataValidationError(
                f"age break {off[0]} is not a band limit of the standard; its limits are "
                f"{', '.join(map(str, lowers))}"
            )
        group = np.searchsorted(edges, std["age_lower"].to_numpy(), side="right") - 1
        std = std.assign(age_lower=np.where(group >= 0, np.asarray(edges)[np.maximum(group, 0)], -1))
        std = std[std["age_lower"] >= 0]
        keys = ["age_lower", "sex"] if has_sex else ["age_lower"]
        std = std.groupby(keys, as_index=False)["weight"].sum()
        lowers = edges
    age = pd.to_numeric(df["age"], errors="coerce").to_numpy(dtype=float)
    if np.isnan(age).any():
        raise DataValidationError(f"column 'age' has {describe_rows(np.isnan(age))} with missing values; drop them first")
    idx = np.searchsorted(lowers, age, side="right") - 1
    below = idx < 0
    if below.any():
        raise DataValidationError(
            f"column 'age' has {describe_rows(below)} below the standard's youngest band ({lowers[0]})"
        )
    labels = _band_labels(lowers)
    band_lower = np.asarray(lowers)[idx]
    if by_sex:
        if "sex" not in df.columns:
            raise DataValidationError("column 'sex' is missing; it is needed for age-and-sex standardisation")
        sex = df["sex"].astype(str).to_numpy()
        odd = ~np.isin(sex, ["female", "male"])
        if odd.any():
            raise DataValidationError(f"column 'sex' has {describe_rows(odd)} other than female/male")
        sexes = ["female", "male"]
    else:
        sex = np.full(len(df), "all")
        sexes = ["all"]
    f = _freq(df, freq)
    cells = pd.DataFrame({"age_lower": band_lower, "sex": sex, "n": f, "cases": f * y.to_numpy(dtype=np.int64)})
    counts = cells.groupby(["age_lower", "sex"])[["n", "cases"]].sum().reset_index()
    counts = counts[counts["n"] > 0]
    present_lowers = sorted(counts["age_lower"].unique())
    lo_i, hi_i = lowers.index(present_lowers[0]), lowers.index(present_lowers[-1])
    grid = pd.DataFrame([(lw, s) for lw in lowers[lo_i:hi_i + 1] for s in sexes], columns=["age_lower", "sex"])
    grid = grid.merge(counts, on=["age_lower", "sex"], how="left")
    empty = grid["n"].isna().to_numpy()
    if empty.any():
        first = grid.loc[empty].iloc[0]
        lab = labels[lowers.index(int(first["age_lower"]))]
        where = f"age band {lab}" + ("" if first["sex"] == "all" else f", {first['sex']}")
        raise DataValidationError(
            f"{int(empty.sum())} stratum(s) of the standard within the cohort's age range have nobody in "
            f"them (first: {where}); use wider age bands (--standard-breaks, e.g. 15,45,65) so that every band has people"
        )
    if has_sex:
        grid = grid.merge(std, on=["age_lower", "sex"], how="left")
    else:
        grid = grid.merge(std, on="age_lower", how="left")
        if by_sex:
            grid["weight"] = grid["weight"] / 2
    grid["weight"] = grid["weight"].fillna(0.0)
    if grid["weight"].sum() <= 0:
        raise DataValidationError("the standard gives no weight to the cohort's age bands")
    excluded = tuple(labels[i] for i in range(len(lowers)) if i < lo_i or i > hi_i)
    n = grid["n"].to_numpy(dtype=float)
    cases = grid["cases"].to_numpy(dtype=float)
    w = grid["weight"].to_numpy(dtype=float)
    dsr, lo, hi = fay_feuer(cases, n, w, alpha=alpha)
    table = pd.DataFrame({
        "age_band": [labels[lowers.index(int(a))] for a in grid["age_lower"]],
        **({"sex": grid["sex"]} if by_sex else {}),
        "n": n.astype(int), "cases": cases.astype(int), "prevalence": cases / n, "std_weight": w / w.sum(),
    })
    by = ("age", "sex") if by_sex else ("age",)
    n_all, cases_all = int(f.sum()), int((f * y.to_numpy(dtype=np.int64)).sum())
    return Standardised(cases_all / n_all, dsr, lo, hi, n_all, cases_all, str(name), source, by, table,
                        excluded, alpha=alpha)


# --- odds ratios -----------------------------------------------------------------------


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
    pvalue: float | None = None

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"measure": self.label, "estimate": self.estimate, "ci_lower": self.ci_lower,
                              "ci_upper": self.ci_upper, "method": self.method, "pvalue": self.pvalue}])

    def summary(self) -> str:
        level = round(100 * (1 - self.alpha))
        return f"{self.label} {self.estimate:.3f} ({level}% CI {self.ci_lower:.3f}-{self.ci_upper:.3f}, {self.method})"


def _two_by_two(df: pd.DataFrame, exposure: str, exposed: object, outcome: str) -> tuple[np.ndarray, np.ndarray]:
    y = _outcome(df, outcome)
    if exposure not in df.columns:
        raise DataValidationError(f"column '{exposure}' is missing; the columns are: {', '.join(map(str, df.columns))}")
    ex = df[exposure]
    if ex.isna().any():
        raise DataValidationError(f"column '{exposure}' has {describe_rows(ex.isna())} with missing values; drop them first")
    x = (ex.astype(object) == exposed).to_numpy()
    if x.all() or not x.any():
        raise DataValidationError(
            f"column '{exposure}': {'everyone' if x.all() else 'nobody'} is '{exposed}'; an odds ratio needs both groups"
        )
    return x, y.to_numpy()


def conditional_odds_ratio(a: int, b: int, c: int, d: int, *, alpha: float = 0.05) -> tuple[float, float, float, float]:
    r"""Conditional MLE of the odds ratio of ``[[a, b], [c, d]]``, its exact interval and Fisher's p-value.

    Returns
    -------
    (estimate, ci_lower, ci_upper, pvalue)

    Notes
    -----
    Given the margins, ``a`` follows Fisher's noncentral hypergeometric distribution with
    :math:`P(a = x) \propto \binom{a+c}{x}\binom{b+d}{a+b-x}\psi^x`. The estimate solves
    :math:`E_\psi[a] = a`; the limits solve :math:`P_\psi(A \ge a) = \alpha/2` and
    :math:`P_\psi(A \le a) = \alpha/2`; the two-sided p-value sums the null probabilities
    no larger than that of ``a`` (relative tolerance :math:`10^{-7}`). This is the algorithm of
    R's ``fisher.test``, solved on the log scale to machine precision; it costs
    :math:`O(\min(\text{margins}))` per step, so it stays fast for a million people.

    References
    ----------
    Fisher RA (1935) J R Stat Soc 98:39. Cornfield J (1956) Proc Third Berkeley Symp 4:135.
    Agresti A (2002) Categorical Data Analysis, 2nd ed., section 3.6.

    Examples
    --------
    >>> [round(v, 4) for v in conditional_odds_ratio(3, 1, 1, 3)]  # R: fisher.test(matrix(c(3, 1, 1, 3), 2))
    [6.4083, 0.2117, 626.2435, 0.4857]
    """
    from scipy.optimize import brentq

    m, n, k, x = a + c, b + d, a + b, a
    lo_s, hi_s = max(0, k - n), min(k, m)
    support = np.arange(lo_s, hi_s + 1, dtype=float)
    logdc = stats.hypergeom.logpmf(support, m + n, m, k)

    def dens(log_psi: float) -> np.ndarray:
        v = logdc + log_psi * support
        e = np.exp(v - v.max())
        return e / e.sum()

    def solve(f: Any) -> float:
        lo_b, hi_b = -1.0, 1.0
        while f(lo_b) > 0:
            lo_b *= 2
        while f(hi_b) < 0:
            hi_b *= 2
        return math.exp(brentq(f, lo_b, hi_b, xtol=1e-14, rtol=4 * np.finfo(float).eps, maxiter=500))

    if x == lo_s:
        est = 0.0
    elif x == hi_s:
        est = math.inf
    else:
        est = solve(lambda t: float(np.dot(support, dens(t))) - x)
    half = alpha / 2
    lower = 0.0 if x == lo_s else solve(lambda t: float(dens(t)[support >= x].sum()) - half)
    upper = math.inf if x == hi_s else solve(lambda t: half - float(dens(t)[support <= x].sum()))
    null = dens(0.0)
    p = float(min(1.0, null[null <= null[x - lo_s] * (1 + 1e-7)].sum()))
    return float(est), float(lower), float(upper), p


def odds_ratio(
    df: pd.DataFrame,
    *,
    exposure: str = "sex",
    exposed: object = "female",
    outcome: str = "rls",
    method: str = "woolf",
    alpha: float = 0.05,
    freq: str | None = None,
) -> OddsRatio:
    """Crude odds ratio of ``outcome`` for ``exposure == exposed`` against everyone else.

    Parameters
    ----------
    method : {"woolf", "exact"}
        ``woolf``: the sample odds ratio with Woolf's logit interval. ``exact``: the
        conditional maximum-likelihood estimate with the exact conditional interval and
        Fisher's exact p-value, as R's ``fisher.test`` gives them.

    Notes
    -----
    Woolf's logit interval: :math:`\\exp(\\ln\\widehat{OR} \\pm z\\sqrt{1/a + 1/b + 1/c + 1/d})`.
    A table with a zero cell has no finite Woolf interval; rlsepi refuses it rather than
    adding an arbitrary 0.5 (use ``exact``). The conditional MLE maximises the noncentral
    hypergeometric likelihood of ``a`` given the margins.

    References
    ----------
    Woolf B (1955) Ann Hum Genet 19:251. Fisher RA (1935) J R Stat Soc 98:39.
    Cornfield J (1956) Proc Third Berkeley Symp 4:135.

    Examples
    --------
    >>> d = pd.DataFrame({"sex": ["female"] * 100 + ["male"] * 100,
    ...                   "rls": [1] * 20 + [0] * 80 + [1] * 10 + [0] * 90})
    >>> odds_ratio(d).summary()
    'sex female vs other odds ratio 2.250 (95% CI 0.994-5.092, woolf)'
    """
    if method not in OR_METHODS:
        raise DataValidationError(f"unknown odds-ratio method '{method}'; available: {', '.join(OR_METHODS)}")
    z = _z(alpha)
    x, yv = _two_by_two(df, exposure, exposed, outcome)
    f = _freq(df, freq)
    a, b = int(f[x & yv].sum()), int(f[x & ~yv].sum())
    c, d = int(f[~x & yv].sum()), int(f[~x & ~yv].sum())
    label = f"{exposure} {exposed} vs other odds ratio"
    if method == "exact":
        est, lo, hi, p = conditional_odds_ratio(a, b, c, d, alpha=alpha)
        return OddsRatio(est, lo, hi, "conditional MLE, exact (Fisher)", a, b, c, d, label=label, alpha=alpha,
                         pvalue=p)
    if min(a, b, c, d) == 0:
        raise DataValidationError(
            f"the 2x2 table of '{exposure}' by '{outcome}' has an empty cell ({a}, {b}, {c}, {d}); "
            "the Woolf odds ratio is not finite; use the exact method"
        )
    log_or = math.log(a * d / (b * c))
    se = math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    p = float(2 * stats.norm.sf(abs(log_or / se)))
    return OddsRatio(math.exp(log_or), math.exp(log_or - z * se), math.exp(log_or + z * se), "woolf",
                     a, b, c, d, label=label, alpha=alpha, pvalue=p)


@dataclass(frozen=True)
class MantelHaenszel:
    """A Mantel-Haenszel odds ratio pooled over strata, with the Breslow-Day test.

    ``tables`` holds each stratum's counts; ``dropped`` the strata left out because they
    had nobody exposed, nobody unexposed, no cases or no non-cases (they carry no
    information on the odds ratio).
    """

    estimate: float
    ci_lower: float
    ci_upper: float
    mh_chi2: float
    mh_pvalue: float
    breslow_day: float
    breslow_day_df: int
    breslow_day_pvalue: float
    strata: str
    tables: pd.DataFrame
    dropped: tuple[str, ...] = ()
    label: str = "odds ratio"
    method: str = "Mantel-Haenszel (Robins-Breslow-Greenland CI)"
    alpha: float = 0.05

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"measure": self.label, "estimate": self.estimate, "ci_lower": self.ci_lower,
                              "ci_upper": self.ci_upper, "method": self.method, "pvalue": self.mh_pvalue,
                              "breslow_day_chi2": self.breslow_day, "breslow_day_df": self.breslow_day_df,
                              "breslow_day_pvalue": self.breslow_day_pvalue}])

    def summary(self) -> str:
        return (f"{self.label} adjusted for {self.strata} {self.estimate:.3f} ({_level(self.alpha)} CI "
                f"{self.ci_lower:.3f}-{self.ci_upper:.3f}, {self.method}); Breslow-Day chi2 "
                f"{self.breslow_day:.2f} on {self.breslow_day_df} df, p = {format_pvalue(self.breslow_day_pvalue)}")


def _mh_tables(use: pd.DataFrame, strata: str) -> pd.DataFrame:
    return use.reset_index().rename(columns={"s": strata, "a": "exposed_cases", "b": "exposed_noncases",
                                             "c": "unexposed_cases", "d": "unexposed_noncases"})


def mantel_haenszel(
    df: pd.DataFrame,
    *,
    strata: str = "age_band",
    exposure: str = "sex",
    exposed: object = "female",
    outcome: str = "rls",
    width: int = 5,
    breaks: Sequence[int] | None = None,
    alpha: float = 0.05,
    freq: str | None = None,
) -> MantelHaenszel:
    """Mantel-Haenszel odds ratio of ``outcome`` for ``exposure == exposed``, over ``strata``.

    Parameters
    ----------
    strata : str
        The stratum column; ``"age_band"`` is made from ``age`` (``width`` or ``breaks``).

    Notes
    -----
    :math:`\\widehat{OR}_{MH} = \\sum_k a_k d_k / n_k \\big/ \\sum_k b_k c_k / n_k`, with the
    Robins-Breslow-Greenland variance of its logarithm; the Mantel-Haenszel chi-squared
    (without continuity correction) and the Breslow-Day test of equal odds ratios across
    strata (without Tarone's adjustment), from :class:`statsmodels.stats.contingency_tables.StratifiedTable`;
    both p-values come from the chi-squared survival function, exact to the far tail
    (R agrees down to 1e-300, ``tests/reference/prevalence``).
    These agree with R's ``mantelhaen.test(correct = FALSE)`` and ``epiR::epi.2by2``.

    References
    ----------
    Mantel N, Haenszel W (1959) J Natl Cancer Inst 22:719. Robins J, Breslow N, Greenland S
    (1986) Biometrics 42:311. Breslow NE, Day NE (1980) Statistical Methods in Cancer Research I, IARC.
    """
    from statsmodels.stats.contingency_tables import StratifiedTable

    data = _with_age_band(df, (strata,), width, breaks)
    if strata not in data.columns:
        raise DataValidationError(f"column '{strata}' is missing; cannot stratify by it")
    x, yv = _two_by_two(data, exposure, exposed, outcome)
    s = data[strata]
    f = _freq(data, freq)
    frame = pd.DataFrame({"s": s.to_numpy(), "a": f * (x & yv), "b": f * (x & ~yv), "c": f * (~x & yv),
                          "d": f * (~x & ~yv)})
    tab = frame.groupby("s", observed=True, sort=True)[["a", "b", "c", "d"]].sum().astype(int)
    informative = ((tab["a"] + tab["b"]) > 0) & ((tab["c"] + tab["d"]) > 0) & \
                  ((tab["a"] + tab["c"]) > 0) & ((tab["b"] + tab["d"]) > 0)
    dropped = tuple(str(k) for k in tab.index[~informative.to_numpy()])
    use = tab[informative.to_numpy()]
    if len(use) == 0:
        raise DataValidationError(f"no stratum of '{strata}' has both groups and both outcomes")
    arr = np.stack([use[["a", "b"]].to_numpy().T, use[["c", "d"]].to_numpy().T]).astype(float)  # 2 x 2 x K
    st = StratifiedTable(arr)
    # statsmodels returns these p-values as 1 - chi2.cdf, which is 0 below about 1e-16; take
    # the statistics from it and the p-values from the chi-squared survival function
    mh_stat = float(st.test_null_odds(correction=False).statistic)
    mh_p = float(stats.chi2.sf(mh_stat, 1))
    n_k = use.sum(axis=1).to_numpy(dtype=float)
    numerator = float((use["a"] * use["d"] / n_k).sum())
    denominator = float((use["b"] * use["c"] / n_k).sum())
    if numerator == 0 or denominator == 0:
        # every stratum has a zero on one diagonal: the pooled odds ratio is 0 or infinite, and
        # neither the RGB variance nor the Breslow-Day test (which needs a finite pooled odds
        # ratio) exists; the Mantel-Haenszel test of no association still does
        side = ("exposed cases or unexposed non-cases" if numerator == 0
                else "unexposed cases or exposed non-cases")
        warnings.warn(f"the Mantel-Haenszel odds ratio over '{strata}' is {'0' if numerator == 0 else 'infinite'}: "
                      f"no stratum has both {side.replace(' or ', ' and ')}; its confidence interval and the "
                      "Breslow-Day test are not defined (use the exact conditional odds ratio)",
                      SmallCellWarning, stacklevel=2)
        estimate = 0.0 if numerator == 0 else math.inf
        return MantelHaenszel(estimate, math.nan, math.nan, mh_stat, mh_p, math.nan, len(use) - 1, math.nan, strata,
                              _mh_tables(use, strata), dropped, label=f"{exposure} {exposed} vs other odds ratio",
                              alpha=alpha)
    lo, hi = st.oddsratio_pooled_confint(alpha=alpha)
    if len(use) > 1:
        bd_stat = float(st.test_equal_odds(adjust=False).statistic)
        bd_p = float(stats.chi2.sf(bd_stat, len(use) - 1))
    else:
        bd_stat, bd_p = float("nan"), float("nan")
    return MantelHaenszel(float(st.oddsratio_pooled), float(lo), float(hi), mh_stat, mh_p, bd_stat, len(use) - 1, bd_p,
                          strata, _mh_tables(use, strata), dropped,
                          label=f"{exposure} {exposed} vs other odds ratio", alpha=alpha)


@dataclass(frozen=True)
class ModelOddsRatio:
    """An odds ratio from a logistic regression, with its Wald interval and the model's terms."""

    estimate: float
    ci_lower: float
    ci_upper: float
    pvalue: float
    adjusted_for: tuple[str, ...]
    n: int
    coefficients: pd.DataFrame
    label: str = "odds ratio"
    method: str = "logistic regression (Wald CI)"
    alpha: float = 0.05

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"measure": self.label, "estimate": self.estimate, "ci_lower": self.ci_lower,
                              "ci_upper": self.ci_upper, "method": f"{self.method}, adjusted for "
                              f"{', '.join(self.adjusted_for)}", "pvalue": self.pvalue}])

    def summary(self) -> str:
        return (f"{self.label} adjusted for {', '.join(self.adjusted_for)} {self.estimate:.3f} "
                f"({_level(self.alpha)} CI {self.ci_lower:.3f}-{self.ci_upper:.3f}, {self.method}); n = {self.n}")


def _design_column(data: pd.DataFrame, col: str) -> pd.DataFrame:
    s = data[col]
    if s.isna().any():
        raise DataValidationError(f"column '{col}' has {describe_rows(s.isna())} with missing values; drop them first")
    if s.dtype == bool or str(s.dtype) == "boolean":
        return pd.DataFrame({col: s.astype(float).to_numpy()}, index=data.index)
    if pd.api.types.is_numeric_dtype(s.dtype):
        return pd.DataFrame({col: s.astype(float).to_numpy()}, index=data.index)
    dummies = pd.get_dummies(s.astype("category"), prefix=col, drop_first=True, dtype=float)
    return dummies


def _fit_logit(X: np.ndarray, y: np.ndarray) -> Any:
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

    grouped = y.ndim == 2  # (cases, non-cases) per row: a saturated fit is not separation
    with warnings.catch_warnings():
        warnings.simplefilter("ignore" if grouped else "error", PerfectSeparationWarning)
        warnings.simplefilter("error", ConvergenceWarning)
        try:
            fit = sm.GLM(y, X, family=sm.families.Binomial()).fit(tol=1e-12, maxiter=200)
            mu = np.asarray(fit.fittedvalues)
            if grouped and (np.any(mu < 1e-10) or np.any(mu > 1 - 1e-10)):
                raise PerfectSeparationWarning("fitted probabilities of 0 or 1")
            return fit
        except (PerfectSeparationWarning, ConvergenceWarning, np.linalg.LinAlgError) as exc:
            raise DataValidationError(
                f"the logistic model cannot be fitted ({type(exc).__name__}); a covariate separates cases "
                "from non-cases or the design is singular; drop or merge covariates"
            ) from None


def adjusted_odds_ratio(
    df: pd.DataFrame,
    *,
    exposure: str = "sex",
    exposed: object = "female",
    outcome: str = "rls",
    adjust: Sequence[str] = ("age",),
    age_terms: str = "linear",
    alpha: float = 0.05,
) -> ModelOddsRatio:
    """Odds ratio for ``exposure == exposed`` from a logistic regression adjusted for ``adjust``.

    Parameters
    ----------
    adjust : sequence of str
        Covariates: numeric columns enter linearly, yes/no columns as 0/1, other columns as
        indicator variables (first level the reference).
    age_terms : {"linear", "quadratic"}
        How ``age`` enters when it is in ``adjust``.

    Notes
    -----
    :math:`\\operatorname{logit} P(Y=1) = \\beta_0 + \\beta_E E + \\sum_j \\gamma_j Z_j`, fitted by
    maximum likelihood (IRLS, :class:`statsmodels.api.GLM` with a binomial family);
    :math:`\\widehat{OR} = e^{\\hat\\beta_E}` with the Wald interval
    :math:`e^{\\hat\\beta_E \\pm z\\,\\widehat{se}}`, as R's ``glm`` with ``confint.default`` gives it.

    References
    ----------
    Hosmer DW, Lemeshow S, Sturdivant RX (2013) Applied Logistic Regression, 3rd ed. Wiley.
    """
    if age_terms not in ("linear", "quadratic"):
        raise DataValidationError(f"age_terms must be linear or quadratic, got '{age_terms}'")
    z = _z(alpha)
    x, yv = _two_by_two(df, exposure, exposed, outcome)
    parts = [pd.DataFrame({"const": 1.0, "exposed": x.astype(float)}, index=df.index)]
    for col in adjust:
        if col not in df.columns:
            raise DataValidationError(f"column '{col}' is missing; cannot adjust for it")
        if col == exposure:
            raise DataValidationError(f"column '{col}' is the exposure; do not adjust for it too")
        part = _design_column(df, col)
        if col == "age" and age_terms == "quadratic":
            part = part.assign(age_sq=part["age"] ** 2)
        parts.append(part)
    design = pd.concat(parts, axis=1)
    drop = inestimable_terms(design)
    if "exposed" in drop:
        raise DataValidationError(f"the {exposure} odds ratio cannot be estimated: '{exposure}' {drop['exposed'][3:]} "
                                  f"given {', '.join(adjust)}")
    for term, why in drop.items():  # an adjustment the data cannot estimate: left out, by name
        warnings.warn(f"adjustment term '{term}' left out of the logistic odds ratio: {why}", InestimableTermWarning,
                      stacklevel=2)
    design = design.drop(columns=list(drop))
    fit = _fit_logit(design.to_numpy(dtype=float), yv.astype(float))
    b, se = float(fit.params[1]), float(fit.bse[1])
    cells = pd.crosstab(x.astype(bool), yv.astype(bool)).reindex(index=[False, True], columns=[False, True],
                                                                 fill_value=0)
    if (cells.to_numpy() == 0).any() or not (math.isfinite(b) and math.isfinite(se)) or abs(b) > 15:
        raise DataValidationError(
            f"the logistic {exposure} odds ratio cannot be estimated: the outcome separates by '{exposure}' "
            f"(cases/non-cases: {exposed} {int(cells.loc[True, True])}/{int(cells.loc[True, False])}, other "
            f"{int(cells.loc[False, True])}/{int(cells.loc[False, False])}); use the exact odds ratio"
        )
    coefs = pd.DataFrame({"term": design.columns, "coef": fit.params, "se": fit.bse, "pvalue": fit.pvalues})
    return ModelOddsRatio(math.exp(b), math.exp(b - z * se), math.exp(b + z * se), float(fit.pvalues[1]),
                          tuple(adjust), int(len(yv)), coefs, label=f"{exposure} {exposed} vs other odds ratio",
                          alpha=alpha)


# --- age of peak prevalence ------------------------------------------------------------


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
    alpha: float = 0.05

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"peak_band": self.band, "midpoint": self.midpoint, "ci_lower": self.ci_lower,
                              "ci_upper": self.ci_upper, "prevalence": self.prevalence, "method": "bootstrap"}])

    def summary(self) -> str:
        if not np.isfinite(self.ci_lower):
            return f"peak prevalence in ages {self.band} ({100 * self.prevalence:.2f}%); no bootstrap interval"
        return (f"peak prevalence in ages {self.band} ({100 * self.prevalence:.2f}%); {_level(self.alpha)} bootstrap "
                f"interval of the peak band's midpoint {self.ci_lower:g}-{self.ci_upper:g}")


def peak_band(
    df: pd.DataFrame,
    *,
    outcome: str = "rls",
    width: int = 5,
    n_boot: int = 2000,
    alpha: float = 0.05,
    rng: np.random.Generator | int | None = None,
    freq: str | None = None,
) -> PeakBand:
    """The ``width``-year age band with the highest prevalence.

    Notes
    -----
    The interval comes from a parametric bootstrap: each band's cases are redrawn as
    Binomial(n_band, p_band), the peak band is found again, and the ``alpha/2`` and
    ``1 - alpha/2`` quantiles of its midpoint are reported.

    References
    ----------
    Efron B, Tibshirani RJ (1993) An Introduction to the Bootstrap. Chapman & Hall.
    """
    rng = np.random.default_rng(rng)
    table = stratified(df, "age_band", outcome=outcome, freq=freq).table if width == 5 else stratified(
        df.assign(age_band=age_band(df["age"], width=width)), "age_band", outcome=outcome, freq=freq).table
    lower = np.array([int(str(s).split("-")[0]) for s in table["age_band"]])
    mid = lower + (width - 1) / 2
    n = table["n"].to_numpy()
    p = table["prevalence"].to_numpy()
    best = int(np.argmax(p))
    if n_boot > 0:
        boot = rng.binomial(n[None, :], p[None, :], size=(n_boot, n.size)) / n[None, :]
        mids = mid[np.argmax(boot, axis=1)]
        lo, hi = np.quantile(mids, [alpha / 2, 1 - alpha / 2])
    else:  # no bootstrap asked for: no interval
        lo = hi = float("nan")
    return PeakBand(str(table["age_band"].iloc[best]), int(lower[best]), int(lower[best] + width - 1),
                    float(mid[best]), float(lo), float(hi), float(p[best]), n_boot, table, alpha)


@dataclass(frozen=True)
class PeakAge:
    """The age of peak prevalence from a smooth logistic curve in age, with its CI.

    ``curve`` holds the fitted prevalence at each whole year of age; ``bandwidth`` is the
    kernel SD (years) of the local model; ``boot_se`` the SD of the bootstrap estimates a
    bootstrap interval is built from (for the local model's bias-corrected interval, those of
    the bias-corrected peak; NaN when there was no bootstrap). ``interval`` names the kind of
    interval and ``method`` describes it in words; ``se`` is the local model's delta-method
    (sandwich) SE of the peak; ``bias`` is the local model's estimated smoothing bias (the
    estimate minus the Richardson bias-corrected peak; NaN for the other models).
    """

    age: float
    ci_lower: float
    ci_upper: float
    prevalence: float
    model: str
    n_boot: int
    n: int
    curve: pd.DataFrame = field(repr=False)
    boundary: bool = False
    alpha: float = 0.05
    bandwidth: float | None = None
    boot_se: float = float("nan")
    interval: str = "percentile"
    bias: float = float("nan")
    se: float = float("nan")
    method: str = ""

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"peak_age": self.age, "ci_lower": self.ci_lower, "ci_upper": self.ci_upper,
                              "prevalence": self.prevalence, "method": f"logistic {self.model}, {self.method}"}])

    def summary(self) -> str:
        edge = "; the peak lies at the edge of the ages observed" if self.boundary else ""
        ci = (f"{_level(self.alpha)} CI {self.ci_lower:.1f}-{self.ci_upper:.1f}, {self.method}"
              if np.isfinite(self.ci_lower) else "no interval")
        return (f"peak prevalence at age {self.age:.1f} ({ci}; logistic {self.model}), "
                f"{100 * self.prevalence:.2f}%{edge}")


_PEAK_CENTRE, _PEAK_SCALE = 50.0, 10.0
PEAK_MODELS = ("local", "quadratic", "spline")
"""Curves for :func:`peak_age`: local quadratic logistic (the default), global quadratic, cubic B-spline."""
LOCAL_BANDWIDTH = 4.0
"""Default bandwidth (SD of the Gaussian kernel, years) of the local quadratic peak estimator
(chosen for coverage at 1,000,000 people: see :func:`peak_age`'s Notes)."""
PEAK_INTERVALS = ("fieller", "normal", "bias-corrected")
"""Intervals of the local peak: Fieller-type test inversion of the local slope (the default,
no bootstrap), the estimate +- z bootstrap SEs, or bias-corrected with a bootstrap SE."""
_PEAK_INTERVAL_LABEL = {
    "fieller": "Fieller interval: the ages whose local slope is not significantly non-zero, sandwich SE",
    "bias-corrected": "bias-corrected (Richardson, bandwidths h and h/sqrt 2), bootstrap SE",
    "normal": "normal, bootstrap SE",
    "percentile": "bootstrap percentile",
}


def _peak_basis(age: np.ndarray, model: str, spline_df: int) -> Any:
    """A function mapping ages to the design matrix; spline knots and bounds come from ``age``
    (every person's age, as R's ``bs(age, df)`` places them)."""
    if model == "quadratic":
        def quad(x: np.ndarray) -> np.ndarray:
            a = (np.asarray(x, dtype=float) - _PEAK_CENTRE) / _PEAK_SCALE
            return np.column_stack([np.ones_like(a), a, a ** 2])
        return quad
    import patsy

    n_inner = spline_df - 3
    if n_inner < 0:
        raise DataValidationError(f"a cubic spline needs at least 3 degrees of freedom, got {spline_df}")
    knots = np.quantile(age, np.linspace(0, 1, n_inner + 2)[1:-1]) if n_inner else np.array([])
    lo, hi = float(np.min(age)), float(np.max(age))

    def spline(x: np.ndarray) -> np.ndarray:
        basis = patsy.bs(np.asarray(x, dtype=float), knots=list(knots), degree=3, lower_bound=lo, upper_bound=hi)
        return np.column_stack([np.ones(len(x)), np.asarray(basis)])
    return spline


def _peak_of(params: np.ndarray, grid: np.ndarray, Xg: np.ndarray, model: str) -> tuple[float, float]:
    if model == "quadratic":
        b0, b1, b2 = params
        if b2 >= 0:
            return float("nan"), float("nan")
        a = _PEAK_CENTRE + _PEAK_SCALE * (-b1 / (2 * b2))
        u = -b1 / (2 * b2)
        return float(a), float(1 / (1 + math.exp(-(b0 + b1 * u + b2 * u * u))))
    eta = Xg @ params
    i = int(np.argmax(eta))
    return float(grid[i]), float(1 / (1 + np.exp(-eta[i])))


def _safe_solve(info: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """Batched Newton step; NaN for the rows whose information matrix is singular."""
    try:
        return np.linalg.solve(info, grad[..., None])[..., 0]
    except np.linalg.LinAlgError:
        out = np.full(grad.shape, np.nan)
        for i in range(info.shape[0]):
            try:
                out[i] = np.linalg.solve(info[i], grad[i])
            except np.linalg.LinAlgError:
                pass
        return out


def _local_design(ages: np.ndarray, centre: np.ndarray, h: float, degree: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Design (B, A, degree + 1) of 1, v, v^2[, v^3] with v = (age - centre) / 10, and Gaussian
    kernel weights (B, A)."""
    d = ages[None, :] - centre[:, None]
    v = d / 10.0
    return np.stack([v ** j for j in range(degree + 1)], axis=-1), np.exp(-0.5 * (d / h) ** 2)


def _local_peaks(cases: np.ndarray, n: np.ndarray, ages: np.ndarray, start: np.ndarray, h: float,
                 *, degree: int = 2, max_iter: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Fixed points of the local quadratic logistic fit, for many count vectors at once.

    Row b of ``cases`` and ``n`` (shape (B, A)) is fitted by kernel-weighted binomial
    likelihood centred at ``c_b``; ``c_b`` moves to the vertex of its local parabola until it
    is the vertex (the local slope at ``c_b`` is 0). Newton steps for the coefficients and
    vertex steps for the centre alternate until both settle (the centre moves less than 1e-9
    years and the last Newton step of the coefficients is below 1e-8); where the local
    parabola is not concave the centre moves one bandwidth uphill. A centre held at the
    youngest or oldest age by the clip settles there only once its fit has converged (an
    early fit far from converged can point past the edge of a peak that lies just inside it).
    Returns the centres (NaN where the fit fails or never settles) and the fitted log-odds at
    them.
    """
    bsz = cases.shape[0]
    c = np.asarray(start, dtype=float).copy()
    beta = np.zeros((bsz, degree + 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        overall = cases.sum(axis=1) / n.sum(axis=1)
        beta[:, 0] = np.log(overall / (1 - overall))
    lo, hi = float(ages[0]), float(ages[-1])
    done = np.zeros(bsz, dtype=bool)
    for _ in range(max_iter):
        X, k = _local_design(ages, c, h, degree)
        nk, ck = n * k, cases * k
        for _newton in range(3):
            eta = np.einsum("bak,bk->ba", X, beta)
            mu = 1 / (1 + np.exp(-eta))
            w = nk * mu * (1 - mu)
            grad = np.einsum("ba,bak->bk", ck - nk * mu, X)
            info = np.einsum("ba,bai,baj->bij", w, X, X)
            update = _safe_solve(info, grad)
            beta = beta + update
        with np.errstate(invalid="ignore"):
            settled = np.max(np.abs(update), axis=1) < 1e-8
        b1, b2 = beta[:, 1], beta[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            # uphill: to the vertex of a concave local parabola, else one bandwidth up the slope;
            # a fit that failed (non-finite coefficients) stops where it is, as a failure
            step = np.where(b2 < 0, -10.0 * b1 / (2.0 * b2), np.where(b1 >= 0, h, -h))
            step = np.where(np.isfinite(b1) & np.isfinite(b2), step, np.nan)
        step = np.clip(step, -h, h)
        new = np.clip(c + step, lo, hi)
        # re-express the coefficients about the new centre (same parabola), so Newton starts close
        s = (new - c) / 10.0
        b3 = beta[:, 3] if degree == 3 else np.zeros(bsz)
        shifted = [beta[:, 0] + b1 * s + b2 * s * s + b3 * s ** 3, b1 + 2 * b2 * s + 3 * b3 * s * s, b2 + 3 * b3 * s]
        beta = np.column_stack(shifted + ([b3] if degree == 3 else []))
        done = (np.abs(new - c) < 1e-9) & settled
        c = new
        if np.all(done | ~np.isfinite(c)):
            break
    c = np.where(done, c, np.nan)
    return c, beta[:, 0]


def _local_start(cases: np.ndarray, n: np.ndarray, ages: np.ndarray, h: float) -> float:
    """Starting centre: the age where the kernel-smoothed crude prevalence is highest."""
    k = np.exp(-0.5 * ((ages[:, None] - ages[None, :]) / h) ** 2)
    smooth = (k @ cases) / (k @ n)
    return float(ages[int(np.nanargmax(smooth))])


def _local_curve(cases: np.ndarray, n: np.ndarray, ages: np.ndarray, grid: np.ndarray, h: float) -> np.ndarray:
    """The local quadratic logistic smoother: the fitted prevalence at each age of ``grid``."""
    X, k = _local_design(ages, grid, h)
    beta = _local_newton(X, n[None, :] * k, cases[None, :] * k, cases, n, maxiter=30, tol=1e-10)
    return 1 / (1 + np.exp(-beta[:, 0]))


def _local_newton(X: np.ndarray, nk: np.ndarray, ck: np.ndarray, cases: np.ndarray, n: np.ndarray, *,
                  maxiter: int, tol: float) -> np.ndarray:
    """Newton-Raphson for every local fit at once (one row of ``beta`` per centre), from the
    crude log-odds; a step that is NaN (a failed solve) ends it, as a small one does."""
    beta = np.zeros((X.shape[0], 3))
    beta[:, 0] = math.log(cases.sum() / (n.sum() - cases.sum()))
    for _ in range(maxiter):
        mu = 1 / (1 + np.exp(-np.einsum("bak,bk->ba", X, beta)))
        grad = np.einsum("ba,bak->bk", ck - nk * mu, X)
        info = np.einsum("ba,bai,baj->bij", nk * mu * (1 - mu), X, X)
        delta = _safe_solve(info, grad)
        beta = beta + delta
        if not np.nanmax(np.abs(delta), initial=0.0) >= tol:
            break
    return beta


def _local_slope(cases: np.ndarray, n: np.ndarray, ages: np.ndarray, centres: np.ndarray,
                 h: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The local quadratic logistic fit centred at each of ``centres`` (held fixed): its slope
    ``b1`` and curvature ``b2`` (log-odds per 10 years, per 100 years squared) and the
    sandwich SE of ``b1``.

    The kernel-weighted score :math:`\\sum_a k_a x_a (y_a - n_a\\mu_a)` has information
    :math:`H = X^T \\mathrm{diag}(k\\,n\\mu(1-\\mu)) X` and, the cases at each age being
    binomial, variance :math:`M = X^T \\mathrm{diag}(k^2 n\\mu(1-\\mu)) X`; so
    :math:`\\operatorname{Var}\\hat\\beta = H^{-1} M H^{-1}` (Fan, Heckman & Wand 1995).
    NaN where the fit fails.
    """
    X, k = _local_design(ages, centres, h)
    nk, ck = n[None, :] * k, cases[None, :] * k
    beta = _local_newton(X, nk, ck, cases, n, maxiter=60, tol=1e-11)
    mu = 1 / (1 + np.exp(-np.einsum("bak,bk->ba", X, beta)))
    v = nk * mu * (1 - mu)
    info = np.einsum("ba,bai,baj->bij", v, X, X)
    meat = np.einsum("ba,bai,baj->bij", v * k, X, X)
    # Var(b1) = e1' H^-1 M H^-1 e1, with H^-1 e1 solved (H is symmetric)
    e1 = np.zeros((centres.size, 3))
    e1[:, 1] = 1.0
    g = _safe_solve(info, e1)
    var1 = np.einsum("bi,bij,bj->b", g, meat, g)
    with np.errstate(invalid="ignore"):
        return beta[:, 1], beta[:, 2], np.sqrt(var1)


def _fieller_local(cases: np.ndarray, n: np.ndarray, ages: np.ndarray, est: float, h: float,
                   z: float) -> tuple[float, float, float, list[str]]:
    """The ages ``c`` whose local slope is not significantly non-zero, ``|b1(c)| <= z SE(b1(c))``:
    the connected set around the peak ``est`` (where ``b1 = 0``). Returns its limits, the
    delta-method SE of the peak and the sides ("below", "above") on which the slope never
    becomes significant before the youngest or oldest age (the limit is then that age)."""
    from scipy import optimize

    _, b2, se1 = _local_slope(cases, n, ages, np.array([est]), h)
    se = float(10.0 * se1[0] / (2.0 * abs(b2[0]))) if b2[0] < 0 else float("nan")
    if not (np.isfinite(se) and se > 0):
        return float("nan"), float("nan"), float("nan"), []

    def excess(c: np.ndarray, side: float) -> np.ndarray:
        # >= 0 where the slope is significantly positive (side -1, below the peak) or
        # negative (side +1, above it)
        s1, _, e = _local_slope(cases, n, ages, np.atleast_1d(np.asarray(c, dtype=float)), h)
        return -side * s1 / e - z

    limits, open_sides = [], []
    for side, edge, name in ((-1.0, float(ages[0]), "below"), (1.0, float(ages[-1]), "above")):
        # near points first (the limit is about z SEs away), then out to the edge
        near = est + side * se * np.arange(0.5, 4.01, 0.5)
        near = near[side * (near - edge) < 0]
        prev = est
        found = None
        for grid in (near, np.linspace(near[-1] if near.size else est, edge, 41)[1:]):
            if grid.size == 0:
                continue
            ex = excess(grid, side)
            hit = np.flatnonzero(ex >= 0)
            if hit.size:
                i = int(hit[0])
                found = (grid[i - 1] if i > 0 else prev, grid[i])
                break
            prev = float(grid[-1])
        if found is None:
            limits.append(edge)
            open_sides.append(name)
            continue
        a, b = sorted(found)
        limits.append(float(optimize.brentq(lambda c, sd=side: float(excess(c, sd)[0]), a, b, xtol=1e-10,
                                            rtol=1e-14)))
    return limits[0], limits[1], se, open_sides


def _fieller_quadratic(params: np.ndarray, cov: np.ndarray, z: float) -> tuple[float, float, float]:
    """Fieller's interval for the vertex :math:`u = -\\beta_1/2\\beta_2` of the global parabola
    (in ages), and the delta-method SE of the vertex: the :math:`u` with
    :math:`(\\hat\\beta_1 + 2\\hat\\beta_2 u)^2 \\le z^2 \\operatorname{Var}(\\hat\\beta_1 + 2\\hat\\beta_2 u)`,
    a bounded interval only when :math:`\\hat\\beta_2^2 > z^2 \\operatorname{Var}\\hat\\beta_2`
    (else NaN limits)."""
    _, b1, b2 = (float(x) for x in params)
    v11, v12, v22 = float(cov[1, 1]), float(cov[1, 2]), float(cov[2, 2])
    g = np.array([-1.0 / (2.0 * b2), b1 / (2.0 * b2 * b2)])
    se = _PEAK_SCALE * math.sqrt(max(float(g @ np.array([[v11, v12], [v12, v22]]) @ g), 0.0))
    a = 4.0 * (b2 * b2 - z * z * v22)
    b = 4.0 * (b1 * b2 - z * z * v12)
    c = b1 * b1 - z * z * v11
    disc = b * b - 4.0 * a * c
    if not (a > 0 and disc > 0):
        return float("nan"), float("nan"), se
    r = math.sqrt(disc)
    u_lo, u_hi = (-b - r) / (2.0 * a), (-b + r) / (2.0 * a)
    return _PEAK_CENTRE + _PEAK_SCALE * u_lo, _PEAK_CENTRE + _PEAK_SCALE * u_hi, se


def peak_age(
    df: pd.DataFrame,
    *,
    outcome: str = "rls",
    model: str = "local",
    bandwidth: float = LOCAL_BANDWIDTH,
    interval: str = "fieller",
    spline_df: int = 4,
    n_boot: int = 200,
    alpha: float = 0.05,
    rng: np.random.Generator | int | None = None,
    freq: str | None = None,
) -> PeakAge:
    """Age of peak prevalence from a smooth logistic curve in age, with its confidence interval.

    Parameters
    ----------
    model : {"local", "quadratic", "spline"}
        ``local`` (default): local quadratic logistic regression on single years of age
        (kernel-weighted binomial likelihood, Gaussian kernel of SD ``bandwidth`` years); the
        peak is the real age :math:`c` at which the local parabola fitted around :math:`c` has
        its vertex, i.e. where the locally fitted log-odds have slope 0 (a fixed point, found
        by alternating Newton and vertex steps). ``quadratic``: one global parabola,
        :math:`\\operatorname{logit} p = \\beta_0 + \\beta_1 u + \\beta_2 u^2` with
        :math:`u = (\\text{age} - 50)/10`; the peak is at :math:`50 - 10\\,\\beta_1 / 2\\beta_2`
        (requires :math:`\\beta_2 < 0`). ``spline``: a cubic B-spline with ``spline_df``
        degrees of freedom (R's ``bs(age, df)``; knots at quantiles), the peak the whole year
        of age with the highest fitted prevalence.
    bandwidth : float
        Kernel SD of the local model, in years (default :data:`LOCAL_BANDWIDTH`, 4).
    interval : {"fieller", "normal", "bias-corrected"}
        The interval. ``fieller`` (default; no bootstrap): for the local model, the ages :math:`c`
        at which the local slope is not significantly different from 0,
        :math:`|\\hat b_1(c)| \\le z\\,\\widehat{\\mathrm{SE}}(\\hat b_1(c))`, with the local fit
        centred at :math:`c` and its sandwich SE (see the Notes). ``normal``: the estimate
        +- z times its bootstrap SE. ``bias-corrected``: centred on the Richardson
        bias-corrected peak :math:`2\\hat c(h/\\sqrt 2) - \\hat c(h)`, +- z times the bootstrap
        SE of that corrected peak (both bandwidths fitted to the same resamples). The
        reported estimate is :math:`\\hat c(h)` in all three. For the ``quadratic`` model,
        ``fieller`` is Fieller's (1954) interval for :math:`-\\beta_1/2\\beta_2` (model-based
        covariance; no interval, with a warning, when the curvature is not significantly
        negative) and the other two give the bootstrap percentile interval, as the
        ``spline`` model always does.
    n_boot : int
        Bootstrap resamples of people (non-parametric) for the bootstrap intervals; 0 for
        none. Fieller intervals draw none.
    rng : Generator, int or None
        Seed of the bootstrap.
    freq : str, optional
        A column of counts: each row stands for that many people (a table of counts, as
        :func:`rlsepi.distributed.cell_counts` reduces a dataset to). The spline model's knots
        then come from the counts.

    Notes
    -----
    **The interval.** At the peak :math:`c^*` the local slope is 0, so a confidence set for
    the peak is the set of ages at which a test of "slope 0" does not reject: the local fit
    centred at :math:`c` has coefficients :math:`\\hat\\beta(c)` solving the kernel-weighted
    score :math:`\\sum_a k_a x_a (y_a - n_a\\mu_a) = 0`, with sandwich variance
    :math:`H^{-1} M H^{-1}`, :math:`H = X^T \\mathrm{diag}(k\\,n\\mu(1-\\mu)) X`,
    :math:`M = X^T \\mathrm{diag}(k^2 n\\mu(1-\\mu)) X` (the cases at each age are binomial);
    the interval is the connected set of ages around :math:`\\hat c` where
    :math:`|\\hat b_1(c)| / \\mathrm{SE}(\\hat b_1(c)) \\le z`, its limits found by root
    finding. For one global parabola this is exactly Fieller's interval for the ratio
    :math:`-\\beta_1/2\\beta_2`; like Fieller's, it is not symmetric, needs no bootstrap, and
    is honest when the curvature is poorly determined: where the slope is never
    significant before the youngest or oldest age the interval is open on that side, the
    limit reported is that age and a warning says so. ``se`` is the delta-method SE
    :math:`10\\,\\mathrm{SE}(\\hat b_1)/(2|\\hat b_2|)` at the peak.

    **Validation** (``tests/test_prevalence.py``; the full seed loop runs with
    ``make validate``). On the default synthetic population at 1,000,000 people (cases
    Binomial at each age, people Multinomial over ages, exactly as the simulator draws them;
    2,000 seeds, MCSE of a coverage 0.49%):

    ==============================================  ======  =====  ======  ========  =====
    interval, kernel SD                             mean    SD     bias    coverage  width
    ==============================================  ======  =====  ======  ========  =====
    Fieller, 4 years (the default)                  60.048  0.488  +0.048  94.55%    1.89
    Fieller, 5 years                                60.072  0.352  +0.072  94.15%    1.37
    normal from 400 bootstrap resamples, 5 years    60.072  0.352  +0.072  93.80%    1.37
    normal from 400 bootstrap resamples, 4 years    60.048  0.488  +0.048  93.75%    1.88
    ==============================================  ======  =====  ======  ========  =====

    Both SEs are calibrated (delta-method 0.480, bootstrap 0.481, against the SD 0.488), so
    the Fieller interval's 0.8 points of coverage over the normal interval on the same seeds
    come from its shape: the peak is a ratio (the vertex :math:`-b_1/2b_2`), its SE is
    proportional to :math:`1/|\\hat b_2|` and varies from seed to seed with the estimated
    curvature (SD 0.07), and a symmetric interval from that SE undercovers, as for any ratio
    of estimates; inverting the test of the slope, as Fieller's construction does, does not.
    What remains is the local model's smoothing bias, which grows as :math:`h^2` while the
    SD shrinks as :math:`(n h^3)^{-1/2}`: at 1,000,000 people the bias is 0.21 SD at a 5-year
    kernel (coverage limited to about 94.3%) and 0.11 SD at 4 years (about 94.8%; measured
    94.73%, MCSE 0.22%, over 10,000 other seeds), which is why the default kernel is 4 years
    (undersmoothing: Hall 1992). At a fixed bandwidth the ratio grows as
    :math:`\\sqrt n`: for cohorts well beyond 1,000,000 people pass a narrower ``bandwidth``
    (the bias/SD ratio is constant for :math:`h \\propto n^{-1/7}`). Richardson bias
    correction (``bias-corrected``) removes the bias (mean 60.001) but its SD is 0.86 at 5
    years, and its bootstrap interval covered 92.45% of 2,000 seeds. The 5-year band table
    (:func:`peak_band`) stays for display.

    The fit uses the cases and non-cases at each age (the same likelihood as one row per
    person); a bootstrap resample of people is drawn as multinomial counts over the
    age-by-outcome cells, which has the same distribution as drawing people with
    replacement and costs nothing per person. The spline's knots stay those of the full
    data in every resample. Resamples without a peak are left out.

    References
    ----------
    Fieller EC (1954) Some problems in interval estimation. J R Stat Soc B 16:175-185.
    Fan J, Heckman NE, Wand MP (1995) Local polynomial kernel regression for generalized
    linear models and quasi-likelihood functions. J Am Stat Assoc 90:141-150.
    Hall P (1992) Effect of bias estimation on coverage accuracy of bootstrap confidence
    intervals for a probability density. Ann Stat 20:675-694.
    Loader C (1999) Local Regression and Likelihood. Springer (local likelihood).
    Calonico S, Cattaneo MD, Farrell MH (2018) On the effect of bias estimation on coverage
    accuracy in nonparametric inference. J Am Stat Assoc 113:767-779.
    Fan J, Gijbels I (1996) Local Polynomial Modelling and Its Applications. Chapman & Hall.
    Efron B, Tibshirani RJ (1993) An Introduction to the Bootstrap. Chapman & Hall.
    de Boor C (1978) A Practical Guide to Splines. Springer.
    """
    if model not in PEAK_MODELS:
        raise DataValidationError(f"peak model must be one of {', '.join(PEAK_MODELS)}, got '{model}'")
    gen = np.random.default_rng(rng)
    y = _outcome(df, outcome).to_numpy(dtype=float)
    if "age" not in df.columns:
        raise DataValidationError("column 'age' is missing; it is needed for the age of peak prevalence")
    age = pd.to_numeric(df["age"], errors="coerce").to_numpy(dtype=float)
    if np.isnan(age).any():
        raise DataValidationError(f"column 'age' has {describe_rows(np.isnan(age))} with missing values; drop them first")
    # people with the same age are exchangeable here: fit on (age, cases, non-cases) cells,
    # which gives the same likelihood as one row per person, and resample people by drawing
    # the cell counts from a multinomial, which is the same as drawing people with replacement
    f = _freq(df, freq).astype(float)
    ages_u, inv = np.unique(age, return_inverse=True)
    cases = np.bincount(inv, weights=y * f, minlength=ages_u.size)
    n = np.bincount(inv, weights=f, minlength=ages_u.size)
    keep = n > 0
    return peak_age_from_counts(ages_u[keep], cases[keep], n[keep], model=model, bandwidth=bandwidth,
                                interval=interval, spline_df=spline_df, n_boot=n_boot, alpha=alpha, rng=gen,
                                person_ages=age if freq is None else None)


def peak_age_from_counts(
    ages: np.ndarray,
    cases: np.ndarray,
    n: np.ndarray,
    *,
    model: str = "local",
    bandwidth: float = LOCAL_BANDWIDTH,
    interval: str = "fieller",
    spline_df: int = 4,
    n_boot: int = 200,
    alpha: float = 0.05,
    rng: np.random.Generator | int | None = None,
    person_ages: np.ndarray | None = None,
) -> PeakAge:
    """:func:`peak_age` from counts: people ``n`` and cases ``cases`` at each distinct age.

    The same estimate and (for the same ``rng``) the same interval as :func:`peak_age` on the
    people these counts describe. ``person_ages`` (every person's age) places the B-spline's
    knots; without it they come from the counts.
    """
    if model not in PEAK_MODELS:
        raise DataValidationError(f"peak model must be one of {', '.join(PEAK_MODELS)}, got '{model}'")
    gen = np.random.default_rng(rng)
    ages_u = np.asarray(ages, dtype=float)
    cases = np.asarray(cases, dtype=float)
    non = np.asarray(n, dtype=float) - cases
    if ages_u.ndim != 1 or ages_u.shape != cases.shape or np.any(np.diff(ages_u) <= 0) or np.any(non < 0) \
            or np.any(cases < 0):
        raise DataValidationError("peak age from counts needs increasing distinct ages, and 0 <= cases <= n at each")
    if not (isinstance(bandwidth, (int, float)) and math.isfinite(bandwidth) and bandwidth > 0):
        raise DataValidationError(f"the peak bandwidth must be a positive number of years, got {bandwidth!r}")
    if interval not in PEAK_INTERVALS:
        raise DataValidationError(f"peak interval must be one of {', '.join(PEAK_INTERVALS)}, got '{interval}'")
    keep = (cases + non) > 0
    ages_u, cases, non = ages_u[keep], cases[keep], non[keep]
    age = person_ages if person_ages is not None else np.repeat(ages_u, (cases + non).astype(int))
    y_n = int(round(cases.sum() + non.sum()))
    grid = np.arange(math.floor(ages_u[0]), math.ceil(ages_u[-1]) + 1, dtype=float)
    if cases.sum() == 0 or non.sum() == 0:
        raise DataValidationError(f"the outcome has {'no' if cases.sum() == 0 else 'only'} cases; "
                                  "there is no age of peak prevalence")
    # Fieller intervals (local and quadratic models) need no bootstrap, and draw none
    boot = n_boot > 0 and not (model in ("local", "quadratic") and interval == "fieller")
    draws = gen.multinomial(y_n, np.concatenate([cases, non]) / y_n, size=n_boot) if boot else None
    k = ages_u.size
    if model == "local":
        if ages_u.size < 3:
            raise DataValidationError("the local peak needs at least 3 distinct ages")
        with np.errstate(all="ignore"):  # resamples that separate give NaN, counted below
            tot = cases + non
            start = _local_start(cases, tot, ages_u, bandwidth)
            c, eta = _local_peaks(cases[None, :], tot[None, :], ages_u, np.array([start]), bandwidth)
            est, p_peak = float(c[0]), float(1 / (1 + np.exp(-eta[0])))
            gap = float(np.max(np.diff(ages_u)))
            if not np.isfinite(est) and gap > 2 * bandwidth:
                raise DataValidationError(
                    f"the local peak fit failed: the ages observed are too far apart for a kernel SD of "
                    f"{bandwidth:g} years (largest gap {gap:g} years); pass a bandwidth of at least {gap / 2:g} "
                    "or use the quadratic model")
            boots = np.array([])
            if draws is not None:
                bc = draws[:, :k].astype(float)
                boots = _local_peaks(bc, bc + draws[:, k:], ages_u, np.full(n_boot, est if np.isfinite(est) else start),
                                     bandwidth)[0]
            # Richardson: the smoothing bias grows as h^2, so 2 theta(h/sqrt 2) - theta(h) removes
            # its leading term; the same resamples at both bandwidths give its bootstrap SE
            h2 = bandwidth / math.sqrt(2.0)
            c2 = _local_peaks(cases[None, :], tot[None, :], ages_u, np.array([est if np.isfinite(est) else start]),
                              h2)[0]
            centre = float(2.0 * c2[0] - est)
            if interval == "bias-corrected":
                if draws is not None:
                    b2 = _local_peaks(bc, bc + draws[:, k:], ages_u, np.full(n_boot, c2[0] if np.isfinite(c2[0])
                                                                              else start), h2)[0]
                    boots = 2.0 * b2 - boots
            curve_p = _local_curve(cases, tot, ages_u, grid, bandwidth)
    else:
        basis = _peak_basis(age, model, spline_df)
        X, Xg = basis(ages_u), basis(grid)
        fit = _fit_logit(X, np.column_stack([cases, non]))
        est, p_peak = _peak_of(np.asarray(fit.params), grid, Xg, model)
        boots = np.asarray(_classic_boot(draws, k, X, grid, Xg, model) if draws is not None else [])
        curve_p = 1 / (1 + np.exp(-(Xg @ np.asarray(fit.params))))
    if not np.isfinite(est):
        raise DataValidationError("prevalence does not rise and fall with age in these data (the fitted curve "
                                  "has no maximum inside the ages observed); there is no peak age")
    boundary = bool(est <= ages_u[0] + 1e-9 or est >= ages_u[-1] - 1e-9) if model == "local" else \
        bool(est <= grid[0] or est >= grid[-1])
    if boundary and model == "local":
        # the local fit ran into the youngest or oldest age: the curve only falls or only rises
        # over the ages observed, and an interval around an edge would be a confident
        # wrong number (it would even reach past the ages observed)
        raise DataValidationError(
            f"prevalence does not rise and fall with age in these data: the fitted curve is highest at the "
            f"{'youngest' if est <= ages_u[0] + 1e-9 else 'oldest'} age observed ({est:g}); there is no peak age")
    if boundary:
        warnings.warn("the fitted peak lies at the edge of the ages observed", SmallCellWarning, stacklevel=2)
    b = np.asarray(boots, dtype=float)
    b = b[np.isfinite(b)]
    if draws is not None and b.size < 0.9 * n_boot:
        warnings.warn(f"{n_boot - b.size} of {n_boot} bootstrap resamples have no peak; the interval is "
                      "unreliable", SmallCellWarning, stacklevel=2)
    boot_se = float(np.std(b, ddof=1)) if b.size > 1 else float("nan")
    kind, bias, se = "percentile", float("nan"), float("nan")
    if model == "local" and interval == "fieller":  # validated over seeds: see the Notes
        kind = interval
        bias = est - centre if np.isfinite(centre) else float("nan")
        with np.errstate(all="ignore"):
            lo, hi, se, open_sides = _fieller_local(cases, tot, ages_u, est, bandwidth, _z(alpha))
        if not np.isfinite(lo):
            warnings.warn("the local fit at the peak is not concave or its SE is not finite; the peak age has "
                          "no interval", SmallCellWarning, stacklevel=2)
        for name in open_sides:
            edge = ages_u[0] if name == "below" else ages_u[-1]
            warnings.warn(f"the {_level(alpha)} interval of the peak age is open {name}: the local slope is not "
                          f"significantly {'positive' if name == 'below' else 'negative'} at any age "
                          f"{'down to the youngest' if name == 'below' else 'up to the oldest'} observed, so the "
                          "limit reported is that "
                          f"age ({edge:g}); the data cannot bound the peak on that side", SmallCellWarning,
                          stacklevel=2)
    elif model == "quadratic" and interval == "fieller":
        kind = interval
        lo, hi, se = _fieller_quadratic(np.asarray(fit.params), np.asarray(fit.cov_params()), _z(alpha))
        if not np.isfinite(lo):
            warnings.warn("the curvature of the quadratic is not significantly negative, so Fieller's set for its "
                          "vertex is unbounded: the peak age has no interval", SmallCellWarning, stacklevel=2)
        elif lo < ages_u[0] or hi > ages_u[-1]:
            warnings.warn(f"the {_level(alpha)} interval of the peak age ({lo:.1f}-{hi:.1f}) reaches beyond the ages "
                          f"observed ({ages_u[0]:g}-{ages_u[-1]:g}): there it rests on the parabola's extrapolation",
                          SmallCellWarning, stacklevel=2)
    elif model == "local":  # bootstrap intervals (see the Notes for their coverage)
        z = _z(alpha)
        kind = interval
        bias = est - centre if np.isfinite(centre) else float("nan")
        if interval == "normal":
            centre = est
        lo, hi = (centre - z * boot_se, centre + z * boot_se) if b.size > 1 and np.isfinite(centre) \
            else (np.nan, np.nan)
    else:
        lo, hi = (float(np.quantile(b, alpha / 2)), float(np.quantile(b, 1 - alpha / 2))) if b.size else (np.nan, np.nan)
    curve = pd.DataFrame({"age": grid, "prevalence": curve_p})
    name = {"quadratic": "quadratic", "local": f"local quadratic (kernel SD {bandwidth:g} years)",
            "spline": f"B-spline (df={spline_df})"}[model]
    used = n_boot if draws is not None else 0
    method = ("Fieller interval for the vertex -b1/(2 b2), model-based covariance" if kind == "fieller"
              and model == "quadratic" else _PEAK_INTERVAL_LABEL[kind]) + (f" ({used} resamples)" if kind != "fieller"
                                                                           else "")
    return PeakAge(est, float(lo), float(hi), p_peak, name, used, y_n, curve, boundary, alpha,
                   float(bandwidth) if model == "local" else None, boot_se, kind, bias, float(se), method)


def _classic_boot(draws: np.ndarray, k: int, X: np.ndarray, grid: np.ndarray, Xg: np.ndarray,
                  model: str) -> list[float]:
    import statsmodels.api as sm

    boots = []
    for row in draws:
        c, nc = row[:k].astype(float), row[k:].astype(float)
        keep = (c + nc) > 0
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                params = sm.GLM(np.column_stack([c[keep], nc[keep]]), X[keep],
                                family=sm.families.Binomial()).fit(tol=1e-10, maxiter=100).params
        except (np.linalg.LinAlgError, ValueError):
            continue
        boots.append(_peak_of(np.asarray(params), grid, Xg, model)[0])
    return boots
