"""Descriptive tables: "Table 1" of a cohort by RLS status, and quantile groups.

Table 1 follows STROBE's advice for descriptive tables: counts with percentages, means
with SDs for roughly symmetric variables and medians with interquartile ranges for skewed
ones, and no significance tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rlsepi.errors import DataValidationError
from rlsepi.parameters import DEFAULT, Parameters
from rlsepi.schema import is_rsid

__all__ = ["TableOne", "table_one", "quantile_groups", "roc_points", "calibration_points"]


@dataclass(frozen=True)
class TableOne:
    """Characteristics of a cohort by group.

    ``table`` has one row per characteristic and the columns ``characteristic``,
    ``statistic`` (what the numbers are), then one column per group and ``overall``; each
    cell holds the numbers (``values``: a tuple) and ``text`` columns hold them formatted.
    """

    rows: tuple[dict, ...]
    groups: tuple[str, ...]
    by: str

    def to_frame(self) -> pd.DataFrame:
        out = []
        for r in self.rows:
            row = {"characteristic": r["characteristic"], "statistic": r["statistic"]}
            for g in (*self.groups, "overall"):
                row[g] = r["text"][g]
            out.append(row)
        return pd.DataFrame(out)

    def summary(self) -> str:
        return self.to_frame().to_string(index=False)


def _fmt_count(k: int, n: int) -> str:
    return f"{k:,} ({100 * k / n:.1f}%)" if n else "0"


def table_one(df: pd.DataFrame, *, by: str = "rls", labels: Sequence[str] = ("no RLS", "RLS"),
              params: Parameters = DEFAULT) -> TableOne:
    """Table 1 of ``df`` by the boolean column ``by`` (false group first).

    Rows: people; age (mean, SD); women; pregnant (of women of reproductive age,
    ``params.pregnancy``); serum ferritin (median, IQR) and ferritin at or below the risk
    threshold (``params.ferritin.low_threshold``, 50 µg/L by default); effect-allele
    frequency of each genotype column; IRLS score of cases (median, IQR), when those
    columns are present.

    Examples
    --------
    >>> from rlsepi.io import read_cohort
    >>> df = read_cohort("data/synthetic/cohort_20k.parquet")
    >>> t = table_one(df)
    >>> t.to_frame().columns.tolist()
    ['characteristic', 'statistic', 'no RLS', 'RLS', 'overall']
    >>> t.to_frame().iloc[0]["RLS"] == f"{int(df['rls'].sum()):,}"
    True
    """
    if by not in df.columns:
        raise DataValidationError(f"column '{by}' is missing; cannot describe the cohort by it")
    flag = df[by].astype(bool).to_numpy()
    parts = {labels[0]: df[~flag], labels[1]: df[flag], "overall": df}
    rows: list[dict] = []

    def add(name: str, statistic: str, fn) -> None:
        values, text = {}, {}
        for g, sub in parts.items():
            values[g], text[g] = fn(sub)
        rows.append({"characteristic": name, "statistic": statistic, "values": values, "text": text})

    add("people", "n", lambda s: ((len(s),), f"{len(s):,}"))
    if "age" in df:
        add("age, years", "mean (SD)", lambda s: ((float(s["age"].mean()), float(s["age"].std())),
                                                 f"{s['age'].mean():.1f} ({s['age'].std():.1f})"))
    if "sex" in df:
        add("women", "n (%)", lambda s: ((int((s["sex"] == "female").sum()), len(s)),
                                         _fmt_count(int((s["sex"] == "female").sum()), len(s))))
    lo_age, hi_age = params.pregnancy.min_age, params.pregnancy.max_age
    if "pregnant" in df and "sex" in df and "age" in df:
        def preg(s: pd.DataFrame):
            women = s[(s["sex"] == "female") & s["age"].between(lo_age, hi_age)]
            k = int(women["pregnant"].astype(bool).sum())
            return (k, len(women)), _fmt_count(k, len(women))
        add(f"pregnant (women {lo_age}-{hi_age})", "n (%)", preg)
    if "ferritin" in df:
        def fer(s: pd.DataFrame):
            q = s["ferritin"].quantile([0.5, 0.25, 0.75]).to_numpy()
            return tuple(float(x) for x in q), f"{q[0]:.0f} [{q[1]:.0f}-{q[2]:.0f}]"
        add("serum ferritin, µg/L", "median [IQR]", fer)
        cut = params.ferritin.low_threshold

        def low(s: pd.DataFrame):
            k = int((s["ferritin"] <= cut).sum())
            return (k, len(s)), _fmt_count(k, len(s))
        add(f"ferritin <= {cut:g} µg/L", "n (%)", low)
    for col in df.columns:
        if is_rsid(str(col)):
            add(f"{col} effect allele", "frequency",
                lambda s, c=col: ((float(s[c].mean() / 2),), f"{s[c].mean() / 2:.3f}"))
    if "irls_score" in df:
        def irls(s: pd.DataFrame):
            x = s["irls_score"].dropna().astype(float)
            if x.empty:
                return (), "-"
            q = x.quantile([0.5, 0.25, 0.75]).to_numpy()
            return tuple(float(v) for v in q), f"{q[0]:.0f} [{q[1]:.0f}-{q[2]:.0f}]"
        add("IRLS score (cases)", "median [IQR]", irls)
    return TableOne(tuple(rows), tuple(labels), by)


def quantile_groups(x: pd.Series | np.ndarray, *, q: int = 5, name: str = "quantile") -> pd.Series:
    """Label each value with its quantile group, ``"Q1"`` (lowest) upwards.

    Groups are cut at the empirical quantiles (pandas ``qcut``). A short score has few
    distinct values, so cut points can coincide: those groups are merged and fewer than
    ``q`` groups come back, each still labelled in order; the category names carry the
    score range, e.g. ``"Q1 (-0.10 to 0.25)"``.

    Examples
    --------
    >>> quantile_groups(pd.Series([1, 2, 3, 4, 5, 6]), q=3).astype(str).tolist()
    ['Q1 (1 to 2)', 'Q1 (1 to 2)', 'Q2 (3 to 4)', 'Q2 (3 to 4)', 'Q3 (5 to 6)', 'Q3 (5 to 6)']
    """
    s = pd.Series(np.asarray(x, dtype=float), index=getattr(x, "index", None))
    if s.isna().any():
        raise DataValidationError(f"{int(s.isna().sum())} values are missing; quantile groups need every value")
    codes = pd.qcut(s, q, labels=False, duplicates="drop").astype(int)
    ranges = s.groupby(codes).agg(["min", "max"])
    labels = {c: f"Q{i + 1} ({r['min']:.4g} to {r['max']:.4g})" for i, (c, r) in enumerate(ranges.iterrows())}
    cat = pd.Categorical(codes.map(labels), categories=list(labels.values()), ordered=True)
    return pd.Series(cat, index=s.index, name=name)


def roc_points(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates of the ROC curve (scikit-learn's ``roc_curve``)."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(np.asarray(y), np.asarray(p), drop_intermediate=True)
    return fpr, tpr


def calibration_points(y: np.ndarray, p: np.ndarray, *, groups: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Mean predicted risk and observed prevalence in ``groups`` quantile groups of the
    predicted risk (scikit-learn's ``calibration_curve``, quantile strategy)."""
    from sklearn.calibration import calibration_curve

    obs, pred = calibration_curve(np.asarray(y), np.asarray(p), n_bins=groups, strategy="quantile")
    return pred, obs
