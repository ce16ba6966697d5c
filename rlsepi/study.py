"""Re-check a published study from its reported summary statistics.

A study is described in a small TOML file (see ``examples/park2023_dti_alps.toml``): groups
with their sizes, and the reported comparisons of means (mean and SD per group), of counts,
and correlations, each with the p-value(s) the paper reports and the tests it says it may
have used. :func:`check_study`:

- recomputes every test from the summary statistics: Student's and Welch's t from means and
  SDs, chi-square (Pearson's, the 'N - 1' chi-square of Campbell 2007, Yates') and Fisher's exact test from counts, a
  correlation's t test from r and n;
- because the reported numbers are rounded, gives the **range** of p-values the rounding
  allows (every combination of the rounding limits of the means, SDs or r), and flags a
  reported p-value whose own rounding interval lies outside that range under every test the
  paper may have used (as statcheck does), and a decision error when the two sides of alpha
  differ; it also flags p-values for one test that the paper reports differently in two places;
- checks means of integer data against the group size (GRIM: Brown & Heathers 2017),
  percentages against their counts, and the means and SDs of subgroups against the whole group;
- gives the power the design had for its own observed effect, and the sample size a
  replication needs for the power asked for;
- draws individual-level synthetic data with exactly the reported means and SDs
  (:func:`synthetic_data`).

Numbers in a study file should be written as strings when their trailing zeros matter
(``mean = ["0.610", "0.629"]``): TOML numbers lose them, and the rounding interval is read
from the digits as written.

References
----------
Nuijten MB et al. (2016). The prevalence of statistical reporting errors in psychology
(1985-2013). Behav Res Methods 48:1205 (statcheck).
Brown NJL, Heathers JAJ (2017). The GRIM test. Soc Psychol Personal Sci 8:363.
Campbell I (2007). Chi-squared and Fisher-Irwin tests of two-by-two tables with small sample
recommendations. Stat Med 26:3661.
Hoenig JM, Heisey DM (2001). The abuse of power: the pervasive fallacy of power calculations
for data analysis. Am Stat 55:19.
"""

from __future__ import annotations

import itertools
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from rlsepi.errors import DataValidationError

__all__ = [
    "Reported",
    "StudyCheck",
    "load_study",
    "check_study",
    "read_study",
    "p_range_means",
    "p_counts",
    "p_range_correlation",
    "grim",
    "synthetic_data",
    "MEAN_TESTS",
    "COUNT_TESTS",
]

MEAN_TESTS = ("student", "welch")
"""Tests recomputable from means and SDs."""
COUNT_TESTS = ("chi2", "chi2-n1", "chi2-yates", "fisher")
"""Tests recomputable from counts: Pearson's chi-square, the 'N - 1' chi-square (Campbell 2007; MedCalc's
chi-square), chi-square with Yates' correction, Fisher's exact test."""
UNRECOMPUTABLE = ("mann-whitney",)
"""Tests a paper may name that summary statistics cannot reproduce."""


# --- reported numbers with their rounding -----------------------------------------------------


@dataclass(frozen=True)
class Reported:
    """A reported number and the interval its rounding allows.

    ``"0.008"`` is [0.0075, 0.0085]; ``"<0.001"`` is [0, 0.001]; ``57`` as an integer is
    [56.5, 57.5].
    """

    text: str
    value: float
    low: float
    high: float
    decimals: int

    @classmethod
    def parse(cls, x: Any, what: str) -> Reported:
        if isinstance(x, bool) or not isinstance(x, (int, float, str)):
            raise DataValidationError(f"{what}: expected a number or a string such as \"0.008\", got {x!r}")
        text = str(x).strip().replace("−", "-")
        if text.startswith(("<", "≤")):
            bound = cls.parse(text.lstrip("<≤= "), what)
            return cls(text, bound.value, 0.0, bound.value, bound.decimals)
        try:
            d = Decimal(text)
        except InvalidOperation:
            raise DataValidationError(f"{what}: '{text}' is not a number") from None
        if not d.is_finite():
            raise DataValidationError(f"{what}: '{text}' is not a finite number")
        exp = d.as_tuple().exponent
        decimals = max(0, -int(exp)) if isinstance(exp, int) else 0
        half = 0.5 * 10.0**-decimals
        v = float(d)
        return cls(text, v, v - half, v + half, decimals)


def _p(x: Any, what: str) -> Reported:
    r = Reported.parse(x, what)
    if not 0 <= r.value <= 1:
        raise DataValidationError(f"{what}: a p-value must lie between 0 and 1, got {r.text}")
    return r


# --- the tests --------------------------------------------------------------------------


def _t_p(m1: float, s1: float, n1: int, m2: float, s2: float, n2: int, test: str) -> float:
    return float(stats.ttest_ind_from_stats(m1, s1, n1, m2, s2, n2, equal_var=(test == "student")).pvalue)


def p_range_means(m1: Reported, s1: Reported, n1: int, m2: Reported, s2: Reported, n2: int, test: str
                  ) -> tuple[float, float, float]:
    """p at the reported values, and its min and max over the rounding intervals.

    The p-value falls as ``|m1 - m2|`` grows and as the SDs shrink; the extremes are found
    over every combination of the rounding limits (and at ``m1 = m2`` when the intervals of the
    means overlap).
    """
    point = _t_p(m1.value, s1.value, n1, m2.value, s2.value, n2, test)
    ps = []
    for a, b, c, d in itertools.product((m1.low, m1.high), (s1.low, s1.high), (m2.low, m2.high), (s2.low, s2.high)):
        if b > 0 and d > 0:
            ps.append(_t_p(a, b, n1, c, d, n2, test))
    if m1.low <= m2.high and m2.low <= m1.high:
        ps.append(1.0)
    return point, min(ps), max(ps)


def p_counts(x1: int, n1: int, x2: int, n2: int, test: str) -> float:
    """p of a 2x2 comparison of counts ``x1 / n1`` vs ``x2 / n2``."""
    t = np.array([[x1, n1 - x1], [x2, n2 - x2]])
    if test == "fisher":
        return float(stats.fisher_exact(t).pvalue)
    if (t.sum(axis=0) == 0).any():
        return 1.0
    if test == "chi2-n1":
        big_n = t.sum()
        chi2 = float(stats.chi2_contingency(t, correction=False).statistic)
        return float(stats.chi2.sf(chi2 * (big_n - 1) / big_n, 1))
    return float(stats.chi2_contingency(t, correction=(test == "chi2-yates")).pvalue)


def _r_p(r: float, n: int) -> float:
    r = min(max(r, -0.999999999), 0.999999999)
    t = r * math.sqrt((n - 2) / (1 - r * r))
    return float(2 * stats.t.sf(abs(t), n - 2))


def p_range_correlation(r: Reported, n: int) -> tuple[float, float, float]:
    """p of Pearson's r (t test on n - 2 df) at the reported r and over its rounding interval."""
    point = _r_p(r.value, n)
    ends = [_r_p(r.low, n), _r_p(r.high, n)]
    if r.low <= 0 <= r.high:
        ends.append(1.0)
    return point, min(ends), max(ends)


def grim(mean: Reported, n: int, *, items: int = 1) -> str:
    """GRIM: can a mean with these decimals arise from ``n`` integer values?

    Returns ``consistent``, ``inconsistent`` or ``not informative`` (when ``n * items >=
    10 ** decimals`` every mean is possible).
    """
    k = n * items
    if k >= 10**mean.decimals:
        return "not informative"
    lo, hi = math.floor(mean.low * k), math.ceil(mean.high * k)
    for total in range(lo, hi + 1):
        if mean.low - 1e-12 <= total / k <= mean.high + 1e-12:
            return "consistent"
    return "inconsistent"


# --- reading a study file ---------------------------------------------------------------


def _int(x: Any, what: str, *, low: int = 0) -> int:
    if isinstance(x, bool) or not isinstance(x, int):
        if isinstance(x, float) and x.is_integer():
            x = int(x)
        else:
            raise DataValidationError(f"{what}: expected a whole number, got {x!r}")
    if x < low:
        raise DataValidationError(f"{what}: must be at least {low}, got {x}")
    return int(x)


def _list(entry: Mapping[str, Any], key: str, what: str, length: int = 2) -> list[Any]:
    v = entry.get(key)
    if not isinstance(v, list) or len(v) != length:
        raise DataValidationError(f"{what}: '{key}' must be a list of {length} values (one per group), got {v!r}")
    return v


def read_study(path: str | Path) -> dict[str, Any]:
    """Read a study TOML file (raises a one-line DataValidationError when it is not valid TOML)."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise DataValidationError(f"study file '{p}' is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise DataValidationError(f"study file '{p}' is not UTF-8 text (byte {exc.start + 1}); save it as UTF-8") from None
    except OSError as exc:
        raise DataValidationError(f"cannot read study file '{p}': {exc.strerror}") from None


def load_study(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a study description (the parsed TOML) and return it normalised.

    Raises DataValidationError naming the entry for anything that contradicts itself: a
    group used but not defined, more cases than people, an SD of 0 or less, a negative n, a
    p-value outside [0, 1], a test the checker does not know.
    """
    known = {"study", "groups", "tests", "summaries"}
    extra = set(doc) - known
    if extra:
        raise DataValidationError(f"unknown section(s) {', '.join(sorted(extra))}; a study file has [study], "
                                  "[groups.NAME], [[tests]] and [[summaries]]")
    meta = dict(doc.get("study", {}))
    alpha = meta.get("alpha", 0.05)
    if not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise DataValidationError(f"[study] alpha must lie between 0 and 1 (exclusive), got {alpha!r}")
    target = meta.get("replication_power", 0.9)
    if not isinstance(target, (int, float)) or not 0 < target < 1:
        raise DataValidationError(f"[study] replication_power must lie between 0 and 1 (exclusive), got {target!r}")
    raw_groups = doc.get("groups")
    if not isinstance(raw_groups, Mapping) or not raw_groups:
        raise DataValidationError("the study has no groups; add e.g. [groups.cases] n = 69")
    groups: dict[str, dict[str, Any]] = {}
    for name, g in raw_groups.items():
        if not isinstance(g, Mapping) or "n" not in g:
            raise DataValidationError(f"[groups.{name}] needs n (the number of people)")
        groups[name] = {"n": _int(g["n"], f"[groups.{name}] n", low=1), "label": str(g.get("label", name)),
                        "parts": list(g.get("parts", []))}
    for name, g in groups.items():
        for part in g["parts"]:
            if part not in groups:
                raise DataValidationError(f"[groups.{name}] parts: group '{part}' is not defined")
        if g["parts"]:
            total = sum(groups[p]["n"] for p in g["parts"])
            if total != g["n"]:
                raise DataValidationError(f"[groups.{name}] n = {g['n']} but its parts "
                                          f"({', '.join(g['parts'])}) add up to {total}")
    tests = doc.get("tests", [])
    if not isinstance(tests, list):
        raise DataValidationError("'tests' must be an array of tables: [[tests]]")
    out = []
    for i, t in enumerate(tests, start=1):
        out.append(_load_test(t, i, groups))
    summaries = []
    raw_summaries = doc.get("summaries", [])
    if not isinstance(raw_summaries, list):
        raise DataValidationError("'summaries' must be an array of tables: [[summaries]]")
    for i, t in enumerate(raw_summaries, start=1):
        what = f"summary {i} ('{t.get('name', '')}')" if isinstance(t, Mapping) else f"summary {i}"
        if not isinstance(t, Mapping) or t.get("group") not in groups:
            raise DataValidationError(f"{what}: needs a group defined in [groups]")
        m, sd = Reported.parse(t.get("mean"), f"{what} mean"), Reported.parse(t.get("sd"), f"{what} sd")
        if sd.value <= 0:
            raise DataValidationError(f"{what}: an SD must be greater than 0, got {sd.text}")
        items = t.get("items", 1 if t.get("integer") else 0)
        summaries.append({"name": str(t.get("name", f"summary {i}")), "group": t["group"], "mean": m, "sd": sd,
                          "integer": bool(t.get("integer", False)),
                          "items": _int(items, f"{what} items") if items else 0})
    return {"study": meta, "alpha": float(alpha), "replication_power": float(target), "groups": groups, "tests": out,
            "summaries": summaries}


def _reported_ps(t: Mapping[str, Any], what: str) -> list[tuple[Reported, str]]:
    raw = t.get("p")
    if raw is None:
        return []
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for j, item in enumerate(items):
        if isinstance(item, Mapping):
            if "value" not in item:
                raise DataValidationError(f"{what}: each reported p needs a value, e.g. {{ value = \"0.008\", "
                                          "source = \"Table 2\" }")
            out.append((_p(item["value"], f"{what} p"), str(item.get("source", f"report {j + 1}"))))
        else:
            out.append((_p(item, f"{what} p"), str(t.get("source", "paper"))))
    return out


def _load_test(t: Any, i: int, groups: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(t, Mapping):
        raise DataValidationError(f"test {i}: expected a table")
    kind = t.get("kind")
    name = str(t.get("name", f"test {i}"))
    what = f"test {i} ('{name}')"
    out: dict[str, Any] = {"name": name, "kind": kind, "reported": _reported_ps(t, what),
                           "note": str(t.get("note", ""))}
    if kind == "means":
        g = _list(t, "groups", what)
        for x in g:
            if x not in groups:
                raise DataValidationError(f"{what}: group '{x}' is not defined in [groups]")
        means = [Reported.parse(x, f"{what} mean") for x in _list(t, "mean", what)]
        sds = [Reported.parse(x, f"{what} sd") for x in _list(t, "sd", what)]
        for s in sds:
            if s.value <= 0:
                raise DataValidationError(f"{what}: an SD must be greater than 0, got {s.text}")
        allowed = [str(x) for x in t.get("tests", ["student", "welch"])]
        for a in allowed:
            if a not in MEAN_TESTS + UNRECOMPUTABLE:
                raise DataValidationError(f"{what}: unknown test '{a}' for means; use {', '.join(MEAN_TESTS + UNRECOMPUTABLE)}")
        items = t.get("items", 1 if t.get("integer") else 0)
        out.update(groups=g, mean=means, sd=sds, tests=allowed, integer=bool(t.get("integer", False)),
                   items=_int(items, f"{what} items") if items else 0)
    elif kind == "counts":
        g = _list(t, "groups", what)
        for x in g:
            if x not in groups:
                raise DataValidationError(f"{what}: group '{x}' is not defined in [groups]")
        counts = [_int(x, f"{what} count") for x in _list(t, "count", what)]
        for x, c in zip(g, counts):
            if c > groups[x]["n"]:
                raise DataValidationError(f"{what}: {c} people counted in group '{x}', which has only "
                                          f"{groups[x]['n']}; the study contradicts itself")
        pct = t.get("percent")
        percents = [Reported.parse(x, f"{what} percent") for x in _list(t, "percent", what)] if pct is not None else []
        allowed = [str(x) for x in t.get("tests", list(COUNT_TESTS))]
        for a in allowed:
            if a not in COUNT_TESTS:
                raise DataValidationError(f"{what}: unknown test '{a}' for counts; use {', '.join(COUNT_TESTS)}")
        out.update(groups=g, count=counts, percent=percents, tests=allowed)
    elif kind == "correlation":
        grp = t.get("group")
        if grp not in groups:
            raise DataValidationError(f"{what}: group '{grp}' is not defined in [groups]")
        r = Reported.parse(t.get("r"), f"{what} r")
        if not -1 < r.value < 1:
            raise DataValidationError(f"{what}: r must lie strictly between -1 and 1, got {r.text}")
        n = groups[grp]["n"]
        if n < 4:
            raise DataValidationError(f"{what}: a correlation needs at least 4 people, group '{grp}' has {n}")
        out.update(group=grp, r=r, tests=["pearson"])
    else:
        raise DataValidationError(f"{what}: kind must be 'means', 'counts' or 'correlation', got {kind!r}")
    return out


# --- checking -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StudyCheck:
    """The re-check of a study.

    Attributes
    ----------
    title : str
    tests : DataFrame
        One row per reported p-value and recomputable test: ``name, kind, comparison,
        reported_p, source, test, p_recomputed, p_min, p_max, consistent, decision_error``.
    verdicts : DataFrame
        One row per reported p-value: ``name, comparison, reported_p, source, verdict``
        (``consistent``, ``inconsistent``, ``decision error`` or ``not recomputable``).
    checks : DataFrame
        GRIM, percentages and subgroup checks: ``name, check, result, detail``.
    design : DataFrame
        One row per comparison: the observed effect, the power the design had for it, and
        the sample size of a replication at ``replication_power``.
    flags : list of str
        Everything that does not add up, one sentence each.
    alpha, replication_power : float
    """

    title: str
    tests: pd.DataFrame
    verdicts: pd.DataFrame
    checks: pd.DataFrame
    design: pd.DataFrame
    flags: list[str] = field(default_factory=list)
    alpha: float = 0.05
    replication_power: float = 0.9

    def to_frame(self) -> pd.DataFrame:
        return self.tests.copy()

    def to_dict(self) -> dict[str, Any]:
        def rec(df: pd.DataFrame) -> list[dict[str, Any]]:
            return df.astype(object).where(df.notna(), None).to_dict(orient="records")

        return {"title": self.title, "alpha": self.alpha, "replication_power": self.replication_power,
                "flags": list(self.flags), "verdicts": rec(self.verdicts), "tests": rec(self.tests),
                "checks": rec(self.checks), "design": rec(self.design)}

    def summary(self) -> str:
        n_bad = int((self.verdicts["verdict"] != "consistent").sum()) if len(self.verdicts) else 0
        return (f"{self.title}: {len(self.verdicts)} reported p-values re-checked, {n_bad} not consistent or not "
                f"recomputable; {len(self.flags)} flag(s)")


def _fmt(p: float) -> str:
    """4 decimals from 0.0001 up, scientific notation below (never a bare "<1e-4")."""
    if p >= 1e-4:
        return f"{p:.4f}"
    return "<1e-308" if p < 1e-308 else f"{p:.3g}"


def _comparison(t: Mapping[str, Any], groups: Mapping[str, Any]) -> str:
    if t["kind"] == "correlation":
        return f"r = {t['r'].text} in {groups[t['group']]['label']} (n = {groups[t['group']]['n']})"
    a, b = t["groups"]
    if t["kind"] == "means":
        return (f"{groups[a]['label']} {t['mean'][0].text} ± {t['sd'][0].text} (n = {groups[a]['n']}) vs "
                f"{groups[b]['label']} {t['mean'][1].text} ± {t['sd'][1].text} (n = {groups[b]['n']})")
    return (f"{groups[a]['label']} {t['count'][0]}/{groups[a]['n']} vs {groups[b]['label']} "
            f"{t['count'][1]}/{groups[b]['n']}")


def _recompute(t: Mapping[str, Any], groups: Mapping[str, Any]) -> dict[str, tuple[float, float, float]]:
    if t["kind"] == "means":
        (a, b), (m1, m2), (s1, s2) = t["groups"], t["mean"], t["sd"]
        return {test: p_range_means(m1, s1, groups[a]["n"], m2, s2, groups[b]["n"], test)
                for test in t["tests"] if test in MEAN_TESTS}
    if t["kind"] == "counts":
        (a, b), (x1, x2) = t["groups"], t["count"]
        out = {}
        for test in t["tests"]:
            p = p_counts(x1, groups[a]["n"], x2, groups[b]["n"], test)
            out[test] = (p, p, p)
        return out
    return {"pearson": p_range_correlation(t["r"], groups[t["group"]]["n"])}


def _design_row(t: Mapping[str, Any], groups: Mapping[str, Any], alpha: float, target: float) -> dict[str, Any]:
    from rlsepi import power as pw
    from rlsepi.errors import RLSEpiError

    if t["kind"] == "correlation":
        where = f"in {groups[t['group']]['label']}"
    else:
        where = " vs ".join(groups[g]["label"] for g in t["groups"])
    row: dict[str, Any] = {"name": t["name"], "kind": t["kind"], "comparison": where}
    try:
        if t["kind"] == "means":
            (a, b), (m1, m2), (s1, s2) = t["groups"], t["mean"], t["sd"]
            n1, n2 = groups[a]["n"], groups[b]["n"]
            sp = math.sqrt(((n1 - 1) * s1.value**2 + (n2 - 1) * s2.value**2) / (n1 + n2 - 2))
            delta = m1.value - m2.value
            row.update(effect=f"difference {delta:+.4g}, Cohen's d {delta / sp:+.3f}",
                       power=_power_t_unequal(abs(delta), sp, n1, n2, alpha))
            rep = pw.two_means(delta, sp, power=target, alpha=alpha)
            row.update(replication_n_per_group=math.ceil(rep.groups["group1"] - 1e-9),
                       replication_n_total=2 * math.ceil(rep.groups["group1"] - 1e-9))
        elif t["kind"] == "counts":
            (a, b), (x1, x2) = t["groups"], t["count"]
            n1, n2 = groups[a]["n"], groups[b]["n"]
            p1, p0 = x1 / n1, x2 / n2
            row["effect"] = f"proportions {p1:.3f} vs {p0:.3f}"
            pwr_now = pw.two_proportions(p1, p0, n=n1 + n2, ratio=n1 / n2, alpha=alpha)
            rep = pw.two_proportions(p1, p0, power=target, ratio=n1 / n2, alpha=alpha)
            row.update(power=pwr_now.power, replication_n_total=rep.n_required)
        else:
            n = groups[t["group"]]["n"]
            r = t["r"].value
            row["effect"] = f"r {r:+.3f}"
            row["power"] = pw.correlation(r, n=n, alpha=alpha).power
            rep = pw.correlation(r, power=target, alpha=alpha)
            row["replication_n_total"] = math.ceil(rep.n_total - 1e-9)
    except RLSEpiError as exc:
        row["effect"] = row.get("effect", "")
        row["note"] = f"no power: {exc}"
    return row


def _power_t_unequal(delta: float, sd: float, n1: int, n2: int, alpha: float) -> float:
    """Power of Student's two-sample t test with unequal groups (noncentral t, two-sided)."""
    if delta == 0:
        return alpha
    df = n1 + n2 - 2
    ncp = delta / (sd * math.sqrt(1 / n1 + 1 / n2))
    crit = stats.t.isf(alpha / 2, df)
    return float(stats.nct.sf(crit, df, ncp) + stats.nct.cdf(-crit, df, ncp))


def _checks(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    groups = spec["groups"]
    rows = []
    seen: set[tuple[str, str]] = set()
    for t in spec["tests"]:
        if t["kind"] == "means" and t["integer"]:
            for g, m in zip(t["groups"], t["mean"]):
                if (t["name"], g) in seen:
                    continue
                seen.add((t["name"], g))
                n = groups[g]["n"]
                res = grim(m, n, items=t["items"] or 1)
                rows.append({"name": t["name"], "check": "GRIM", "result": res,
                             "detail": f"mean {m.text} of {n} integer values"
                             + (f" ({t['items']} items)" if t["items"] > 1 else "")})
        if t["kind"] == "counts" and t["percent"]:
            for g, c, pc in zip(t["groups"], t["count"], t["percent"]):
                if (t["name"], g) in seen:
                    continue
                seen.add((t["name"], g))
                n = groups[g]["n"]
                exact = 100 * c / n
                if pc.low - 1e-9 <= exact <= pc.high + 1e-9:
                    res = "consistent"
                else:
                    unit = 10.0**-pc.decimals
                    truncated = math.floor(exact / unit + 1e-9) * unit
                    res = "truncated, not rounded" if abs(truncated - pc.value) < unit / 2 else "inconsistent"
                rows.append({"name": t["name"], "check": "percentage", "result": res,
                             "detail": f"{pc.text}% reported for {c}/{n} = {exact:.3f}%"})
    for sm in spec.get("summaries", []):
        if sm["integer"]:
            n = groups[sm["group"]]["n"]
            rows.append({"name": sm["name"], "check": "GRIM", "result": grim(sm["mean"], n, items=sm["items"] or 1),
                         "detail": f"mean {sm['mean'].text} of {n} integer values"})
    # subgroup means and SDs against the whole group, where every part is reported with the whole
    stats_by: dict[tuple[str, str], tuple[Reported, Reported]] = {}
    for t in spec["tests"]:
        if t["kind"] == "means":
            for x, m, sd in zip(t["groups"], t["mean"], t["sd"]):
                stats_by.setdefault((t["name"], x), (m, sd))
    for sm in spec.get("summaries", []):
        stats_by.setdefault((sm["name"], sm["group"]), (sm["mean"], sm["sd"]))
    for name, g in groups.items():
        if not g["parts"]:
            continue
        for var in dict.fromkeys(k[0] for k in stats_by):
            if (var, name) not in stats_by or not all((var, p) in stats_by for p in g["parts"]):
                continue
            rows.append(_subgroup_check(var, name, g, groups, stats_by))
    return rows


def _subgroup_check(var: str, name: str, g: Mapping[str, Any], groups: Mapping[str, Any],
                    stats_by: Mapping[tuple[str, str], tuple[Reported, Reported]]) -> dict[str, Any]:
    parts = g["parts"]
    ns = np.array([groups[p]["n"] for p in parts], dtype=float)
    means = [stats_by[(var, p)][0] for p in parts]
    sds = [stats_by[(var, p)][1] for p in parts]
    whole_m, whole_s = stats_by[(var, name)]
    big_n = ns.sum()
    lows = np.array([m.low for m in means])
    highs = np.array([m.high for m in means])
    mean_lo = float(ns @ lows / big_n)
    mean_hi = float(ns @ highs / big_n)

    def between(mm: np.ndarray) -> float:
        mm = np.asarray(mm, dtype=float)
        return float(ns @ np.square(mm - ns @ mm / big_n))

    # The between-group sum of squares is convex in the subgroup means: its maximum over the box of
    # rounding intervals is at a corner, its minimum is found by a bounded convex minimisation (it is
    # 0 when the intervals share a value, and need not be at a corner).
    between_max = max(between(np.array(mm)) for mm in itertools.product(*zip(lows, highs)))
    from scipy.optimize import minimize
    between_min = float(minimize(between, (lows + highs) / 2, bounds=list(zip(lows, highs)),
                                 method="L-BFGS-B", options={"ftol": 1e-15, "gtol": 1e-12}).fun)
    between_min = max(0.0, min(between_min, between(np.clip(np.full(len(ns), lows.max()), lows, highs))))
    within_lo = float((ns - 1) @ np.square([s.low for s in sds]))
    within_hi = float((ns - 1) @ np.square([s.high for s in sds]))
    sd_vals = [math.sqrt((within_lo + between_min) / (big_n - 1)), math.sqrt((within_hi + between_max) / (big_n - 1))]
    # Reported values sit on rounding boundaries (0.6105 is both "0.610" and "0.611"), so touching
    # intervals are consistent: compare with a tolerance far below any reported digit.
    tol = 1e-9 * max(1.0, abs(whole_m.value), abs(whole_s.value))
    ok_m = mean_lo <= whole_m.high + tol and whole_m.low - tol <= mean_hi
    ok_s = min(sd_vals) <= whole_s.high + tol and whole_s.low - tol <= max(sd_vals)
    res = "consistent" if ok_m and ok_s else "inconsistent"
    gaps = []
    if not ok_m:
        gaps.append(f"mean off by {max(mean_lo - whole_m.high, whole_m.low - mean_hi):.2g}")
    if not ok_s:
        gaps.append(f"SD off by {max(min(sd_vals) - whole_s.high, whole_s.low - max(sd_vals)):.2g}")
    return {"name": var, "check": f"subgroups of {name}", "result": res,
            "detail": (f"{' + '.join(parts)} imply a mean of {mean_lo:.4g} to {mean_hi:.4g} and an SD of "
                       f"{min(sd_vals):.4g} to {max(sd_vals):.4g}; reported {whole_m.text} ± {whole_s.text}"
                       + (f" ({', '.join(gaps)} beyond rounding)" if gaps else ""))}


def check_study(spec: Mapping[str, Any]) -> StudyCheck:
    """Re-check a study (a dict from :func:`load_study`); see the module docstring.

    Examples
    --------
    >>> spec = load_study({"groups": {"a": {"n": 69}, "b": {"n": 51}}, "tests": [{
    ...     "kind": "means", "name": "index", "groups": ["a", "b"], "mean": ["1.481", "1.601"],
    ...     "sd": ["0.241", "0.245"], "p": "0.008", "tests": ["student"]}]})
    >>> res = check_study(spec)
    >>> round(float(res.tests["p_recomputed"].iloc[0]), 4), res.verdicts["verdict"].iloc[0]
    (0.0085, 'consistent')
    """
    groups, alpha = spec["groups"], spec["alpha"]
    rows, verdicts, flags = [], [], []
    for t in spec["tests"]:
        comp = _comparison(t, groups)
        rec = _recompute(t, groups)
        unrec = [x for x in t["tests"] if x in UNRECOMPUTABLE]
        for rep, source in t["reported"]:
            ok_any, decision_all = False, True
            for test, (p, lo, hi) in rec.items():
                consistent = lo <= rep.high + 1e-12 and rep.low - 1e-12 <= hi
                decision = (rep.high < alpha or (rep.value < alpha)) != (p < alpha)
                ok_any |= consistent
                decision_all &= decision and not consistent
                rows.append({"name": t["name"], "kind": t["kind"], "comparison": comp, "reported_p": rep.text,
                             "source": source, "test": test, "p_recomputed": p, "p_min": lo, "p_max": hi,
                             "consistent": consistent, "decision_error": decision and not consistent})
            if ok_any:
                verdict = "consistent"
            elif unrec:
                verdict = "not recomputable"
            elif rec and decision_all:
                verdict = "decision error"
            else:
                verdict = "inconsistent"
            verdicts.append({"name": t["name"], "comparison": comp, "reported_p": rep.text, "source": source,
                             "verdict": verdict})
            if verdict in ("inconsistent", "decision error"):
                ranges = "; ".join(f"{k} {_fmt(v[1])} to {_fmt(v[2])}" for k, v in rec.items())
                flags.append(f"{t['name']}: reported p = {rep.text} ({source}) is outside what the rounded numbers "
                             f"allow under every test the paper may have used ({ranges})"
                             + (" and on the other side of alpha" if verdict == "decision error" else ""))
            elif verdict == "not recomputable":
                flags.append(f"{t['name']}: reported p = {rep.text} ({source}) fits none of the recomputable tests; "
                             f"the paper may have used {', '.join(unrec)}, which summary statistics cannot reproduce")
        texts = {rep.text for rep, _ in t["reported"]}
        if len(texts) > 1:
            where = ", ".join(f"p = {rep.text} ({src})" for rep, src in t["reported"])
            flags.append(f"{t['name']}: the paper reports the same comparison with different p-values: {where}")
    checks = _checks(spec)
    for c in checks:
        if c["result"] not in ("consistent", "not informative"):
            flags.append(f"{c['name']}: {c['check']} {c['result']}: {c['detail']}")
    design = pd.DataFrame([_design_row(t, groups, alpha, spec["replication_power"]) for t in spec["tests"]])
    title = str(spec["study"].get("title", "study"))
    return StudyCheck(title=title, tests=pd.DataFrame(rows), verdicts=pd.DataFrame(verdicts),
                      checks=pd.DataFrame(checks, columns=["name", "check", "result", "detail"]), design=design,
                      flags=flags, alpha=alpha, replication_power=spec["replication_power"])


# --- synthetic data -----------------------------------------------------------------------


def synthetic_data(spec: Mapping[str, Any], *, rng: np.random.Generator | int | None = None) -> pd.DataFrame:
    """Individual-level data with exactly the reported mean and SD of every compared variable.

    One row per person of each group that appears in a ``means`` comparison (a person's
    values for different variables are independent draws: the correlations between variables
    are not reported and not reproduced). Each column of a group is a normal sample
    standardised to mean 0 and SD 1 (divisor n - 1) and rescaled, so that the group's mean and
    SD equal the reported values to floating-point precision. Groups and counts from
    ``counts`` comparisons become 0/1 columns with exactly the reported counts (in random order).

    Parameters
    ----------
    spec : dict
        From :func:`load_study`.
    rng : Generator, int or None
    """
    gen = np.random.default_rng(rng)
    groups = spec["groups"]
    values: dict[str, dict[str, np.ndarray]] = {}
    for t in spec["tests"]:
        if t["kind"] == "means":
            for g, m, s in zip(t["groups"], t["mean"], t["sd"]):
                n = groups[g]["n"]
                if t["name"] in values.get(g, {}) or n < 2:
                    continue
                z = gen.standard_normal(n)
                z = (z - z.mean()) / z.std(ddof=1)
                values.setdefault(g, {})[t["name"]] = m.value + s.value * z
        elif t["kind"] == "counts":
            for g, c in zip(t["groups"], t["count"]):
                n = groups[g]["n"]
                if t["name"] in values.get(g, {}):
                    continue
                x = np.zeros(n)
                x[:c] = 1.0
                values.setdefault(g, {})[t["name"]] = gen.permutation(x)
    for sm in spec.get("summaries", []):
        g, n = sm["group"], groups[sm["group"]]["n"]
        if sm["name"] in values.get(g, {}) or n < 2:
            continue
        z = gen.standard_normal(n)
        values.setdefault(g, {})[sm["name"]] = sm["mean"].value + sm["sd"].value * (z - z.mean()) / z.std(ddof=1)
    frames = []
    for g, cols in values.items():
        n = groups[g]["n"]
        frames.append(pd.DataFrame({"group": g, "person": np.arange(1, n + 1), **cols}))
    if not frames:
        raise DataValidationError("the study has no means or counts to draw synthetic data from")
    return pd.concat(frames, ignore_index=True)
