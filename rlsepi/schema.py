"""The column registry: one place that says what each cohort column is and what it may hold.

Validation of user cohorts and the documentation of the cohort table both come from
:data:`COLUMNS`. Genotype columns are named by rsID (``rs`` followed by digits) and hold the
count of that variant's effect allele, 0, 1 or 2.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from rlsepi.errors import DataQualityWarning, DataValidationError

__all__ = [
    "Column", "COLUMNS", "RSID", "is_rsid", "validate", "describe_rows",
    "harmonise", "DropReport", "parse_codes", "parse_columns", "SEX_CODES", "BOOLEAN_CODES",
    "check_plausible", "require_analysable", "MIN_ROWS", "inestimable_terms",
]

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


def missing_columns_message(missing: Sequence[str], columns: Iterable[object]) -> str:
    """One line naming every missing column at once (not the first of several), the columns
    the file has, and the fix."""
    columns = [str(c) for c in columns]
    have = ", ".join(columns)
    if len(columns) == 1:
        sep = next((s for s in (";", "\t", "|") if s in columns[0]), None)
        if sep is not None:
            shown = "tabs" if sep == "\t" else f"'{sep}'"
            return (f"the file has one column, '{columns[0][:60]}…', so it is separated by {shown}, not commas; "
                    "save it as comma-separated CSV (or Parquet)")
    if len(missing) == 1:
        return (f"column '{missing[0]}' is missing; the columns are: {have}; "
                f"map your column name with --column {missing[0]}=YOURS")
    names = ", ".join(f"'{c}'" for c in missing[:-1]) + f" and '{missing[-1]}'"
    return (f"columns {names} are missing; the columns are: {have}; "
            f"map your column names with --column NAME=YOURS (once for each)")


def validate(df: pd.DataFrame, *, require: tuple[str, ...] = (), allow_duplicate_ids: bool = False,
             params: Any = None) -> pd.DataFrame:
    """Check a cohort table against the registry; return it unchanged when valid.

    Only the columns present (and those in ``require``) are checked: ranges, numbers that
    are not finite, codes, genotypes, and the rules between columns of
    :func:`check_plausible` (pregnancy, trimester, duplicate ``person_id``).

    Raises
    ------
    DataValidationError
        One line naming the column, how many rows and which, and the fix.
    """
    missing = [c for c in require if c not in df.columns]
    if missing:
        raise DataValidationError(missing_columns_message(missing, df.columns))
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
        infinite = present & np.isinf(v)
        if infinite.any():
            raise DataValidationError(
                f"column '{name}' has {describe_rows(infinite)} that are infinite; {col.fix or 'correct them'}"
            )
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
    check_plausible(df, allow_duplicate_ids=allow_duplicate_ids, params=params)
    return df


def _as_flag(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(known, true) masks of a yes/no column as read or harmonised; unknown codes refused."""
    s = series
    if s.dtype == bool:
        v = s.to_numpy()
        return np.ones(len(s), dtype=bool), v
    if str(s.dtype) == "boolean":
        known = s.notna().to_numpy()
        return known, s.fillna(False).to_numpy(dtype=bool)
    keys = s.map(lambda v: None if _is_missing(v) else _code_key(v))
    known = keys.notna().to_numpy()
    codes = keys[known]
    unknown = ~codes.isin(list(BOOLEAN_CODES)).to_numpy()
    if unknown.any():
        mask = np.zeros(len(s), dtype=bool)
        mask[np.flatnonzero(known)[unknown]] = True
        seen = ", ".join(repr(str(v)) for v in pd.unique(s[mask])[:3])
        raise DataValidationError(
            f"column '{series.name}' has {describe_rows(mask)} with codes not understood ({seen}); understood: "
            f"0/1, yes/no, y/n, true/false; map them with --code {series.name}:{str(s[mask].iloc[0]).strip()}=yes"
        )
    true = np.zeros(len(s), dtype=bool)
    true[known] = codes.map(BOOLEAN_CODES).to_numpy(dtype=bool)
    return known, true


def check_plausible(df: pd.DataFrame, *, allow_duplicate_ids: bool = False, params: Any = None) -> None:
    """The rules between columns that no real cohort breaks.

    - ``person_id`` is unique (with ``allow_duplicate_ids`` a :class:`DataQualityWarning`
      counts the duplicates instead);
    - only women are pregnant, and only at the reproductive ages of
      ``params.pregnancy`` (``min_age``..``max_age``, :mod:`rlsepi.parameters`);
    - a trimester is given exactly when the person is pregnant.

    Raises
    ------
    DataValidationError
        One line naming the column, how many rows and which, and the fix.
    """
    if "person_id" in df.columns:
        ids = df["person_id"]
        dup = (ids.duplicated(keep=False) & ids.notna()).to_numpy()
        if dup.any():
            n_ids = int(ids[dup].nunique())
            text = (f"column 'person_id' has {describe_rows(dup)} sharing {n_ids} "
                    f"{'value' if n_ids == 1 else 'values'} (first {ids[dup].iloc[0]!r})")
            if not allow_duplicate_ids:
                raise DataValidationError(
                    f"{text}; each person must appear once: remove the repeated rows, or pass "
                    "--allow-duplicate-ids to count each row as a person"
                )
            import warnings

            warnings.warn(f"{text}; each row is counted as a person (--allow-duplicate-ids)", DataQualityWarning,
                          stacklevel=3)
    if "pregnant" not in df.columns:
        return
    known, pregnant = _as_flag(df["pregnant"])
    if "sex" in df.columns:
        sex = df["sex"].astype("string").str.strip().str.lower()
        male = sex.isin(["male", "m", "man", "men", "1"]).fillna(False).to_numpy()
        bad = pregnant & male
        if bad.any():
            raise DataValidationError(
                f"column 'pregnant' is yes for {describe_rows(bad)} of men; correct the sex or the pregnancy "
                "of these rows (or map the codes with --code)"
            )
    if "age" in df.columns:
        if params is None:
            from rlsepi.parameters import DEFAULT as params
        lo, hi = params.pregnancy.min_age, params.pregnancy.max_age
        age = pd.to_numeric(df["age"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        bad = pregnant & ((age < lo) | (age > hi + 1 - 1e-9))
        if bad.any():
            raise DataValidationError(
                f"column 'pregnant' is yes for {describe_rows(bad)} aged outside the reproductive ages {lo}-{hi} "
                "(parameters pregnancy.min_age, pregnancy.max_age); correct these rows or change the ages with --params"
            )
    if "trimester" in df.columns:
        tri = df["trimester"]
        has_tri = tri.notna().to_numpy().copy()
        if tri.dtype == object or pd.api.types.is_string_dtype(tri.dtype):  # text such as 'NA' is missing too
            has_tri &= ~tri.map(_is_missing).to_numpy(dtype=bool)
        bad = has_tri & known & ~pregnant
        if bad.any():
            raise DataValidationError(
                f"column 'trimester' is given for {describe_rows(bad)} that are not pregnant; trimester must be "
                "empty when 'pregnant' is no"
            )
        bad = pregnant & ~has_tri
        if bad.any():
            raise DataValidationError(
                f"column 'trimester' is empty for {describe_rows(bad)} that are pregnant; give the trimester "
                "(1, 2 or 3) of each pregnancy"
            )


MIN_ROWS = 2
"""Fewest people an analysis command accepts (an implementation choice, not a published figure).
Small cohorts are otherwise allowed: each estimator refuses or warns by name when its cells are
too small; a cohort of one person cannot have both a case and a non-case."""


def require_analysable(df: pd.DataFrame, *, outcome: str = "rls", min_rows: int = MIN_ROWS,
                       report: DropReport | None = None) -> None:
    """Refuse a cohort too small to analyse, or whose outcome has no cases or no non-cases.

    Raises
    ------
    DataValidationError
        Naming the count and the fix.
    """
    after = f" after dropping rows with missing values ({report.summary()})" if report and report.n_dropped else ""
    if len(df) < min_rows:
        raise DataValidationError(
            f"the cohort has {len(df)} {'row' if len(df) == 1 else 'rows'}{after}; at least {min_rows} people are "
            "needed for any estimate; give a larger cohort"
        )
    if outcome in df.columns:
        y = df[outcome]
        cases = int(y.astype(bool).sum()) if y.notna().all() else int(y.fillna(False).astype(bool).sum())
        if cases == 0 or cases == len(df):
            what = "no cases" if cases == 0 else "no non-cases (every row is a case)"
            raise DataValidationError(
                f"column '{outcome}' has {what} among {len(df)} rows{after}; prevalence intervals, odds ratios, the "
                f"peak age and risk models need both; check the codes of '{outcome}' (map them with --code "
                f"{outcome}:CODE=yes)"
            )


# --- harmonising a user's cohort -------------------------------------------------------

MISSING_CODES = frozenset({"", "na", "n/a", "nan", "none", "null", ".", "missing", "<na>"})
"""Text that means "no value" in any column (compared after stripping and lower-casing)."""

SEX_CODES: dict[str, str] = {
    "female": "female", "male": "male", "f": "female", "m": "male", "w": "female",
    "woman": "female", "man": "male", "women": "female", "men": "male",
    # 1/2 as in NHANES (RIAGENDR) and PLINK: 1 = male, 2 = female
    "1": "male", "2": "female",
}
"""Sex codes understood without help (case-insensitive). 0/1 is ambiguous and must be mapped."""

BOOLEAN_CODES: dict[str, bool] = {
    "1": True, "0": False, "true": True, "false": False, "t": True, "f": False,
    "yes": True, "no": False, "y": True, "n": False,
}
"""Codes understood for yes/no columns (case-insensitive)."""

BOOLEAN_COLUMNS = ("rls", "rls_clinically_significant", "pregnant")
NUMERIC_COLUMNS = ("age", "ferritin", "trimester", "irls_score")


@dataclass(frozen=True)
class DropReport:
    """What :func:`harmonise` did to a cohort: rows in, rows used, rows dropped and why.

    Attributes
    ----------
    n_input : int
        Rows read.
    n_used : int
        Rows kept (no missing value in any required column).
    missing : dict
        For each required column, the number of input rows with no value there. A row
        missing two columns counts under both, so these may add up to more than
        ``n_input - n_used``.
    renamed : dict
        Canonical column name -> the user's column name it was read from.
    recoded : dict
        Column -> {code as found in the file: value used}, for every column recoded.
    """

    n_input: int
    n_used: int
    missing: dict[str, int]
    renamed: dict[str, str]
    recoded: dict[str, dict[str, Any]]

    @property
    def n_dropped(self) -> int:
        """Rows dropped for a missing value in a required column."""
        return self.n_input - self.n_used

    def to_frame(self) -> pd.DataFrame:
        """One row per required column: how many rows had no value there."""
        return pd.DataFrame({"column": list(self.missing), "rows_missing": list(self.missing.values())})

    def to_dict(self) -> dict[str, Any]:
        return {"rows_input": self.n_input, "rows_used": self.n_used, "rows_dropped": self.n_dropped,
                "missing_by_column": dict(self.missing), "renamed": dict(self.renamed),
                "recoded": {k: {str(a): b for a, b in v.items()} for k, v in self.recoded.items()}}

    def summary(self) -> str:
        text = f"{self.n_used} of {self.n_input} rows used"
        parts = [f"{k}: {v}" for k, v in self.missing.items() if v]
        if self.n_dropped:
            text += f"; {self.n_dropped} dropped for missing values ({', '.join(parts)})"
        return text


def _code_key(v: Any) -> str:
    """A value as a comparable code: stripped, lower-case text; 1.0 -> '1'; True -> 'true'."""
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return str(v).strip().lower()


def _is_missing(v: Any) -> bool:
    try:
        if pd.isna(v):
            return True
    except (TypeError, ValueError):
        pass
    return isinstance(v, str) and v.strip().lower() in MISSING_CODES


def parse_codes(specs: Sequence[str]) -> dict[str, dict[str, str]]:
    """Parse ``COLUMN:CODE=VALUE`` texts (the CLI's ``--code``) into a codes mapping.

    Examples
    --------
    >>> parse_codes(["sex:1=male", "sex:2=female", "rls:Y=yes"])
    {'sex': {'1': 'male', '2': 'female'}, 'rls': {'Y': 'yes'}}
    """
    out: dict[str, dict[str, str]] = {}
    for spec in specs:
        col, sep, rest = spec.partition(":")
        code, eq, value = rest.partition("=")
        if not sep or not eq or not col.strip() or not code.strip():
            raise DataValidationError(
                f"cannot read the code mapping '{spec}'; write COLUMN:CODE=VALUE, e.g. sex:1=male"
            )
        out.setdefault(col.strip(), {})[code.strip()] = value.strip()
    return out


def parse_columns(specs: Sequence[str]) -> dict[str, str]:
    """Parse ``NAME=YOURS`` texts (the CLI's ``--column``) into a column mapping.

    Examples
    --------
    >>> parse_columns(["sex=gender", "rls=rls_dx"])
    {'sex': 'gender', 'rls': 'rls_dx'}
    """
    out: dict[str, str] = {}
    for spec in specs:
        name, eq, theirs = spec.partition("=")
        if not eq or not name.strip() or not theirs.strip():
            raise DataValidationError(
                f"cannot read the column mapping '{spec}'; write NAME=YOURS, e.g. sex=gender"
            )
        out[name.strip()] = theirs.strip()
    return out


def _recode(series: pd.Series, name: str, explicit: Mapping[str, Any], auto: Mapping[str, Any],
            understood: str) -> tuple[pd.Series, dict[str, Any]]:
    """Map each value through explicit codes (exact text first, then case-insensitive), then
    the automatic codes; missing codes become NA. Unknown codes raise one clear error."""
    exact = {str(k).strip(): v for k, v in explicit.items()}
    loose = {_code_key(k): v for k, v in explicit.items()}
    uniques = pd.unique(series.dropna()) if len(series) else []
    table: dict[Any, Any] = {}
    used: dict[str, Any] = {}
    unknown: list[Any] = []
    for u in uniques:
        key = _code_key(u)
        raw = str(u).strip()
        if raw in exact:
            value = exact[raw]
        elif key in loose:
            value = loose[key]
        elif _is_missing(u):
            value = None
        elif key in auto:
            value = auto[key]
        else:
            unknown.append(u)
            continue
        if isinstance(value, str) and value.strip().lower() in MISSING_CODES:
            value = None
        if isinstance(value, str) and auto and _code_key(value) in auto:
            value = auto[_code_key(value)]  # explicit target given as a code, e.g. rls:Y=yes
        table[u] = value
        used[raw] = value
    if unknown:
        bad = series.isin(unknown).to_numpy()
        seen = ", ".join(repr(str(u)) for u in unknown[:4])
        first = str(unknown[0]).strip()
        example = "female" if name == "sex" else "yes"
        raise DataValidationError(
            f"column '{name}' has {describe_rows(bad)} with codes not understood ({seen}); "
            f"understood: {understood}; map them with --code {name}:{first}={example}"
        )
    # every value that is not NA is one of `uniques`, so a lookup of the (few) unique values
    # maps the column: vectorised, instead of a Python call per row
    mapped = series.map(table).astype(object)
    return mapped.where(mapped.notna(), None), used


def harmonise(
    df: pd.DataFrame,
    *,
    columns: Mapping[str, str] | None = None,
    codes: Mapping[str, Mapping[str, Any]] | None = None,
    require: Sequence[str] = (),
    check: bool = True,
    boolean: Sequence[str] = (),
    must_exist: Sequence[str] = (),
    allow_duplicate_ids: bool = False,
    params: Any = None,
) -> tuple[pd.DataFrame, DropReport]:
    """Bring a user's cohort to the cohort table: names, codes, types; drop incomplete rows.

    Parameters
    ----------
    df : DataFrame
        The cohort as read (see :func:`rlsepi.io.read_cohort`).
    columns : mapping, optional
        Canonical name -> the user's column name, e.g. ``{"sex": "gender", "rls": "rls_dx"}``.
    codes : mapping, optional
        Column -> {code in the file: value}, e.g. ``{"sex": {"1": "male", "2": "female"}}``.
        Applied before the automatic codes; a value of ``"NA"`` marks a code as missing.
    require : sequence of str
        Columns the analysis needs. They must exist; rows with no value in any of them are
        dropped and counted per column in the :class:`DropReport`.
    check : bool
        Run :func:`validate` on the result (ages, ferritin, genotypes, ...).
    boolean : sequence of str
        Further columns to read as yes/no like ``rls`` (e.g. another outcome).
    must_exist : sequence of str
        Columns that must exist but may be empty in some rows (e.g. ``trimester``).
    allow_duplicate_ids : bool
        Count repeated ``person_id`` values as a warning instead of refusing them.
    params : Parameters, optional
        Source of the reproductive ages (default :data:`rlsepi.parameters.DEFAULT`).

    Returns
    -------
    (DataFrame, DropReport)
        ``sex`` as category female/male; yes/no columns (``rls``, ``pregnant``, ...) as bool
        (nullable ``boolean`` where values are missing and the column is not required);
        numeric registry columns as numbers. Other columns are kept, recoded by ``codes``.

    Raises
    ------
    DataValidationError
        A mapped column does not exist, a code is not understood, or a value is out of range:
        one line naming the column, the first rows and the fix.

    Notes
    -----
    Codes understood without help (case-insensitive): sex ``F/M``, ``female/male``,
    ``woman/man``, and ``1/2`` with 1 = male, 2 = female (NHANES, PLINK); yes/no columns
    ``0/1``, ``yes/no``, ``y/n``, ``true/false``, ``t/f``. Empty cells and ``NA``, ``N/A``,
    ``.``, ``null`` are missing values.

    Examples
    --------
    >>> raw = pd.DataFrame({"Age": [40, 51, 66], "gender": ["F", "m", "F"], "dx": ["yes", "no", None]})
    >>> df, report = harmonise(raw, columns={"age": "Age", "sex": "gender", "rls": "dx"},
    ...                        require=["age", "sex", "rls"])
    >>> df["sex"].tolist(), df["rls"].tolist()
    (['female', 'male'], [True, False])
    >>> report.summary()
    '2 of 3 rows used; 1 dropped for missing values (rls: 1)'
    """
    columns = dict(columns or {})
    codes = {k: dict(v) for k, v in (codes or {}).items()}
    present = [str(c) for c in df.columns]
    renames: dict[str, str] = {}
    for name, theirs in columns.items():
        if theirs not in present:
            raise DataValidationError(
                f"column mapping '{name}={theirs}': the file has no column '{theirs}'; "
                f"its columns are: {', '.join(present)}"
            )
        if name != theirs and name in present and name not in columns.values():
            raise DataValidationError(
                f"column mapping '{name}={theirs}': the file already has a column '{name}'; "
                f"rename or drop one of them"
            )
        renames[theirs] = name
    if len(set(renames.values())) != len(renames):
        raise DataValidationError("two columns are mapped to the same name; give each name once with --column")
    out = df.rename(columns=renames).copy()
    for col in codes:
        if col not in out.columns:
            raise DataValidationError(
                f"code mapping for column '{col}': there is no such column; "
                f"the columns are: {', '.join(map(str, out.columns))}"
            )
    missing_cols = [c for c in (*require, *must_exist) if c not in out.columns]
    if missing_cols:
        raise DataValidationError(missing_columns_message(missing_cols, out.columns))
    recoded: dict[str, dict[str, Any]] = {}
    for col in out.columns:
        name = str(col)
        explicit = codes.get(name, {})
        if name == "sex":
            s, used = _recode(out[col], name, explicit, SEX_CODES,
                              "F/M, female/male, 1/2 (1 = male, 2 = female)")
            bad_target = [v for v in used.values() if v not in ("female", "male", None)]
            if bad_target:
                raise DataValidationError(
                    f"code mapping for column 'sex' gives {bad_target[0]!r}; map codes to female or male"
                )
            out[col] = pd.Categorical(s, categories=["female", "male"])
            recoded[name] = used
        elif name in BOOLEAN_COLUMNS or name in boolean:
            if out[col].dtype == bool and not explicit:
                continue
            s, used = _recode(out[col], name, explicit, BOOLEAN_CODES, "0/1, yes/no, y/n, true/false")
            bad_target = [v for v in used.values() if v not in (True, False, None)]
            if bad_target:
                raise DataValidationError(
                    f"column '{name}' must be yes/no; code mapping gives {bad_target[0]!r}; "
                    f"map codes to yes or no"
                )
            out[col] = s.astype("boolean")
            recoded[name] = used
        elif name in NUMERIC_COLUMNS:
            s = out[col]
            if explicit:
                loose = {_code_key(k): v for k, v in explicit.items()}
                s = s.map(lambda v: loose.get(_code_key(v), v) if not _is_missing(v) else v)
            if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
                s = s.map(lambda v: np.nan if _is_missing(v) else v)
            values = pd.to_numeric(s, errors="coerce")
            nonnum = s.notna().to_numpy() & values.isna().to_numpy()
            if nonnum.any():
                seen = ", ".join(repr(str(v)) for v in pd.unique(s[nonnum])[:3])
                raise DataValidationError(
                    f"column '{name}' has {describe_rows(nonnum)} that are not numbers ({seen}); "
                    f"{COLUMNS[name].fix or 'correct them or leave them empty'}"
                )
            out[col] = values
        elif explicit:
            out[col] = out[col].map(lambda v: explicit.get(str(v).strip(), v))
            recoded[name] = explicit
    if check:  # before dropping, so that row numbers are those of the file
        validate(out, allow_duplicate_ids=allow_duplicate_ids, params=params)
    n_input = len(out)
    if n_input == 0:
        raise DataValidationError("the cohort file has a header but no rows; give a file with one row per person")
    missing: dict[str, int] = {}
    keep = np.ones(n_input, dtype=bool)
    for col in require:
        na = out[col].isna().to_numpy()
        missing[col] = int(na.sum())
        if na.all():
            raise DataValidationError(
                f"column '{col}' is empty in all {n_input} rows; the analysis needs it; check that --column maps "
                f"'{col}' to the right column of your file"
            )
        keep &= ~na
    out = out.loc[keep].reset_index(drop=True)
    for col in require:
        if str(out[col].dtype) == "boolean":
            out[col] = out[col].astype(bool)
    report = DropReport(n_input, int(keep.sum()), missing, {v: k for k, v in renames.items()}, recoded)
    return out, report


# --- what a model can estimate ---------------------------------------------------------


def inestimable_terms(X: pd.DataFrame, *, tol: float = 1e-9) -> dict[str, str]:
    """Terms of a design the data cannot estimate, in column order: term -> why.

    A term is inestimable when it does not vary, or when it is (to within ``tol`` of its
    centred sum of squares) a linear combination of the terms before it, i.e. the design
    is not of full rank. The intercept ``const`` is always kept.

    Examples
    --------
    >>> X = pd.DataFrame({"const": 1.0, "female": [1.0, 1, 1, 1], "a": [0.0, 1, 2, 3], "b": [0.0, 2, 4, 6]})
    >>> inestimable_terms(X)
    {'female': 'it does not vary (every row has female = 1)', 'b': 'it is a linear combination of a (the design is not of full rank)'}
    """
    A = X.to_numpy(dtype=float)
    return inestimable_from_sums([str(c) for c in X.columns], gram=A.T @ A, sums=A.sum(axis=0), n=len(A),
                                 lowest=A.min(axis=0) if len(A) else np.full(A.shape[1], np.nan),
                                 highest=A.max(axis=0) if len(A) else np.full(A.shape[1], np.nan), tol=tol)


def inestimable_from_sums(names: Sequence[str], *, gram: np.ndarray, sums: np.ndarray, n: int, lowest: np.ndarray,
                          highest: np.ndarray, tol: float = 1e-9) -> dict[str, str]:
    """:func:`inestimable_terms` from sums that add over row subsets: ``X'X``, column sums, rows,
    column minima and maxima (what an out-of-core pass reduces over partitions)."""
    out: dict[str, str] = {}
    kept: list[int] = []
    for j, name in enumerate(names):
        if name == "const":
            kept.append(j)
            continue
        if n == 0 or lowest[j] == highest[j]:
            value = f"{lowest[j]:g}" if n else "nothing"
            out[name] = f"it does not vary (every row has {name} = {value})"
            continue
        centred_ss = float(gram[j, j] - sums[j] ** 2 / n)
        if kept:
            g_kk = gram[np.ix_(kept, kept)]
            g_kj = gram[kept, j]
            beta = np.linalg.lstsq(g_kk, g_kj, rcond=None)[0]
            rss = float(gram[j, j] - g_kj @ beta)
            if rss <= tol * centred_ss:
                partners = [names[k] for k, b in zip(kept, beta) if names[k] != "const" and abs(b) > 1e-8]
                text = ", ".join(partners) if partners else "the intercept"
                out[name] = f"it is a linear combination of {text} (the design is not of full rank)"
                continue
        kept.append(j)
    return out
