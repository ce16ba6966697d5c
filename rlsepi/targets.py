"""Does a cohort reproduce the published targets?

:func:`check_targets` estimates each target from a cohort with the estimators of
:mod:`rlsepi.prevalence` and compares the estimate with the target's band. The command line
(``rlsepi check``) and the report both use it; neither computes anything itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from rlsepi import prevalence
from rlsepi.errors import DataValidationError
from rlsepi.parameters import DEFAULT, Parameters, Target

__all__ = ["TargetResult", "TargetCheck", "check_targets"]


@dataclass(frozen=True)
class TargetResult:
    """One target: the published value and band, and the cohort's estimate with its CI."""

    name: str
    label: str
    target: float
    low: float
    high: float
    estimate: float
    ci_lower: float
    ci_upper: float
    n: int
    method: str
    in_band: bool
    kind: str = "proportion"
    conclusive: bool = True
    """Whether the whole confidence interval lies inside the band. An estimate inside the band
    whose interval reaches outside it is not a pass: the cohort is too small to tell."""

    @property
    def passed(self) -> bool:
        """The estimate and its whole interval lie inside the band."""
        return self.in_band and self.conclusive

    @property
    def result(self) -> str:
        """``pass``, ``FAIL`` (the estimate is outside the band, or could not be made) or
        ``too few to tell`` (inside the band, but the interval reaches outside it)."""
        return "FAIL" if not self.in_band else ("pass" if self.conclusive else "too few to tell")

    def to_dict(self) -> dict[str, object]:
        return {**self.__dict__, "passed": self.passed, "result": self.result}


@dataclass(frozen=True)
class TargetCheck:
    """All targets; ``passed`` is true when every estimate and its whole interval lie inside
    its band."""

    results: tuple[TargetResult, ...]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failed(self) -> list[str]:
        """Targets whose estimate lies outside the band (or could not be made)."""
        return [r.name for r in self.results if not r.in_band]

    @property
    def inconclusive(self) -> list[str]:
        """Targets whose estimate lies inside the band but whose interval reaches outside it."""
        return [r.name for r in self.results if r.in_band and not r.conclusive]

    @property
    def verdict(self) -> str:
        if self.passed:
            return "all targets reproduced"
        parts = []
        if self.failed:
            parts.append(f"targets missed: {', '.join(self.failed)}")
        if self.inconclusive:
            parts.append(f"too few people to tell (the 95% CI reaches outside the band): {', '.join(self.inconclusive)}")
        return "; ".join(parts)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([r.to_dict() for r in self.results])

    def summary(self) -> str:
        rows = []
        formats = {"proportion": "{:.2%}", "odds_ratio": "{:.2f}", "age": "{:.1f}"}
        for r in self.results:
            fmt = formats[r.kind].format
            rows.append({
                "target": r.label, "published": fmt(r.target), "band": f"{fmt(r.low)}-{fmt(r.high)}",
                "estimate": fmt(r.estimate), "95% CI": f"{fmt(r.ci_lower)}-{fmt(r.ci_upper)}",
                "n": r.n, "result": r.result,
            })
        return pd.DataFrame(rows).to_string(index=False) + f"\n{self.verdict}"


def _result(name: str, label: str, t: Target, est: float, lo: float, hi: float, n: int,
            method: str) -> TargetResult:
    # an estimate that could not be made (NaN) lies in no band: that target is missed
    conclusive = bool(t.contains(lo) and t.contains(hi))
    return TargetResult(name, label, t.value, t.low, t.high, float(est), float(lo), float(hi), int(n), method,
                        t.contains(est), t.kind, conclusive)


def check_targets(
    df: pd.DataFrame,
    params: Parameters = DEFAULT,
    *,
    alpha: float = 0.05,
    freq: str | None = None,
) -> TargetCheck:
    """Estimate every target from a cohort and compare it with its band.

    Parameters
    ----------
    df : DataFrame
        A cohort table with ``age``, ``sex``, ``pregnant``, ``trimester``, ``rls`` and
        ``rls_clinically_significant``.
    params : Parameters
        The targets and bands.
    freq : str, optional
        A column of counts: ``df`` is a table of counts (each row stands for that many
        people), as :func:`rlsepi.distributed.cell_counts` reduces a dataset to. The results
        are those of the rows it summarises.

    Notes
    -----
    Prevalences use Wilson intervals; the female:male odds ratio is crude with Woolf's
    interval; the age of peak prevalence is the age at which a local quadratic logistic
    fit on single years of age is highest (:func:`rlsepi.prevalence.peak_age`, consistent
    for the target's definition: the age at which the expected single-year prevalence is
    highest), with its Fieller interval (the ages whose local slope is not significantly
    non-zero; its coverage over seeds: that function's Notes). The label also names the 5-year band
    with the highest crude prevalence, for display only.
    """
    t = params.targets
    out = []
    p = prevalence.crude(df, outcome="rls", alpha=alpha, freq=freq)
    out.append(_result("prevalence", "RLS prevalence", t.prevalence, p.prevalence, p.ci_lower, p.ci_upper, p.n,
                       "wilson"))
    p = prevalence.crude(df, outcome="rls_clinically_significant", alpha=alpha, freq=freq)
    out.append(_result("clinically_significant", "clinically significant RLS", t.clinically_significant,
                       p.prevalence, p.ci_lower, p.ci_upper, p.n, "wilson"))
    o = prevalence.odds_ratio(df, exposure="sex", exposed="female", outcome="rls", alpha=alpha, freq=freq)
    n_all = len(df) if freq is None else int(df[freq].sum())
    out.append(_result("female_male_or", "female:male odds ratio (crude)", t.female_male_or, o.estimate,
                       o.ci_lower, o.ci_upper, n_all, "woolf"))
    band = prevalence.peak_band(df, outcome="rls", alpha=alpha, n_boot=0, freq=freq)
    try:
        pk = prevalence.peak_age(df, outcome="rls", alpha=alpha, freq=freq)
    except DataValidationError as exc:
        # the ages cannot give a smooth peak (none inside the ages observed, too few distinct
        # ages): that target is missed (exit 1), named, and the other targets are still judged
        why = ("no peak inside the ages observed" if "does not rise and fall with age" in str(exc)
               else f"not estimable: {exc}")
        out.append(_result("peak_age", f"age of peak prevalence (top band {band.band}; {why})", t.peak_age,
                           np.nan, np.nan, np.nan, n_all, "local quadratic"))
    else:
        out.append(_result("peak_age", f"age of peak prevalence (top band {band.band})", t.peak_age, pk.age,
                           pk.ci_lower, pk.ci_upper, n_all, f"{pk.model}, {pk.method}"))
    pregnant = df[df["pregnant"].astype(bool)]
    for k, target in enumerate(t.pregnancy, start=1):
        sub = pregnant[pregnant["trimester"] == k]
        if len(sub) == 0 or (freq is not None and int(sub[freq].sum()) == 0):
            out.append(_result(f"pregnancy_trimester{k}", f"prevalence in trimester {k}", target, np.nan, np.nan,
                               np.nan, 0, "wilson"))
            continue
        p = prevalence.crude(sub, outcome="rls", alpha=alpha, freq=freq)
        out.append(_result(f"pregnancy_trimester{k}", f"prevalence in trimester {k}", target, p.prevalence,
                           p.ci_lower, p.ci_upper, p.n, "wilson"))
    return TargetCheck(tuple(out))
