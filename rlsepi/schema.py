"""The column registry: one place that says what each cohort column is and what it may hold.

Validation of user cohorts and the documentation of the cohort table both come from
:data:`COLUMNS`. Genotype columns are named by rsID (``rs`` followed by digits) and hold the
count of that variant's effect allele, 0, 1 or 2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rlsepi.errors import DataValidationError

__all__ = ["Column", "COLUMNS", "RSID", "is_rsid", "validate", "describe_rows"]

RSID = re.compile(r"^rs[0-9]+$")


@dataclass(frozen=True)
class Column:
    """One column of the cohort table."""

    name: str
    dtype: str
    meaning: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    fix: str = ""


ADULT_AGE = (18, 120)

COLUMNS: dict[str, Column] = {c.name: c for c in (
    Column("person_id", "int64", "unique person identifier"),
    Column("age", "int", "age in completed years (adults only)", *ADULT_AGE,
           fix="rlsepi analyses adults; remove or correct these rows"),
    Column("sex", "category female/male", "sex", fix="map the codes with --code sex:F=female"),
    Column("pregnant", "bool", "currently pregnant; only ever true for women of reproductive age"),
    Column("trimester", "nullable int 1-3", "trimester of pregnancy; null when not pregnant", 1, 3,
           fix="trimester is 1, 2 or 3, and empty when not pregnant"),
    Column("ferritin", "float (µg/L)", "serum ferritin", 0, None, low_open=True,
           fix="ferritin is in µg/L and must be positive"),
    Column("rls", "bool", "meets the four essential diagnostic criteria of RLS"),
    Column("rls_clinically_significant", "bool",
           "subset of rls: symptoms at least twice a week with moderate or severe distress"),
    Column("irls_score", "nullable int 0-40", "IRLS severity total of cases; null for non-cases", 0, 40,
           fix="the IRLS total lies between 0 and 40"),
)}
"""The core columns. Genotype columns (``rs…``, int8 0/1/2) are added per score variant."""


def is_rsid(name: str) -> bool:
    """Whether a column name is a genotype column (an rsID)."""
    return bool(RSID.match(name))


def describe_rows(mask: np.ndarray | pd.Series, *, limit: int = 3) -> str:
    """'3 rows (rows 17, 204, 9911)': counts and the first row numbers (1-based data rows)."""
    idx = np.flatnonzero(np.asarray(mask))
    shown = ", ".join(str(i + 1) for i in idx[:limit])
    more = ", …" if idx.size > limit else ""
    noun = "row" if idx.size == 1 else "rows"
    return f"{idx.size} {noun} (row{'s' if idx.size > 1 else ''} {shown}{more})"


def validate(df: pd.DataFrame, *, require: tuple[str, ...] = ()) -> pd.DataFrame:
    """Check a cohort table against the registry; return it unchanged when valid.

    Only the columns present (and those in ``require``) are checked.

    Raises
    ------
    DataValidationError
        One line naming the column, how many rows and which, and the fix.
    """
    missing = [c for c in require if c not in df.columns]
    if missing:
        raise DataValidationError(
            f"column '{missing[0]}' is missing; the columns are: {', '.join(map(str, df.columns))}; "
            "map your column names with --column NAME=YOURS"
        )
    for name, col in COLUMNS.items():
        if name not in df.columns or (col.low is None and col.high is None):
            continue
        values = pd.to_numeric(df[name], errors="coerce")
        present = df[name].notna().to_numpy()
        nonnum = present & values.isna().to_numpy()
        if nonnum.any():
            raise DataValidationError(
                f"column '{name}' has {describe_rows(nonnum)} that are not numbers; {col.fix}"
            )
        v = values.to_numpy(dtype=float, na_value=np.nan)
        bad = np.zeros(len(df), dtype=bool)
        if col.low is not None:
            bad |= (v <= col.low) if col.low_open else (v < col.low)
        if col.high is not None:
            bad |= v > col.high
        bad &= present
        if bad.any():
            lo = "" if col.low is None else f"{'>' if col.low_open else '>='} {col.low:g}"
            hi = "" if col.high is None else f"<= {col.high:g}"
            allowed = " and ".join(x for x in (lo, hi) if x)
            raise DataValidationError(
                f"column '{name}' has {describe_rows(bad)} outside the allowed values ({allowed}); {col.fix}"
            )
    if "sex" in df.columns:
        sex = df["sex"].astype("string")
        bad = sex.notna().to_numpy() & ~sex.isin(["female", "male"]).fillna(False).to_numpy()
        if bad.any():
            seen = ", ".join(sorted(map(repr, sex[bad].unique()[:3])))
            raise DataValidationError(
                f"column 'sex' has {describe_rows(bad)} with codes other than female/male ({seen}); {COLUMNS['sex'].fix}"
            )
    for name in df.columns:
        if is_rsid(str(name)):
            g = pd.to_numeric(df[name], errors="coerce")
            bad = df[name].notna().to_numpy() & ~g.isin([0, 1, 2]).to_numpy()
            if bad.any():
                raise DataValidationError(
                    f"column '{name}' has {describe_rows(bad)} that are not 0, 1 or 2; genotype columns "
                    "count the effect allele"
                )
    return df
