"""Sample size and power: closed forms for the designs of an RLS study, and power by simulation.

Closed forms (each returns a :class:`PowerResult`; give ``n`` to get the power, or ``power`` to
get the sample size):

=============================  ===================================================================
:func:`prevalence_precision`   a prevalence to an absolute or relative precision (simple random
                               sampling; design effect, finite population, imperfect test)
:func:`two_proportions`        two proportions, cross-sectional or cohort (risk ratio)
:func:`case_control`           an unmatched case-control study of an odds ratio, k controls per case
:func:`two_means`              a two-sample t-test of means (noncentral t)
:func:`correlation`            a Pearson correlation (Fisher z)
:func:`genetic_association`    one variant, additive / dominant / recessive coding, case-control or
                               population sample, any alpha (e.g. 5e-8)
=============================  ===================================================================

Known answers: R's epiR ``epi.sssimpleestb``, ``epi.sscohortc``, ``epi.sscc``, ``power.t.test``
and pwr ``pwr.r.test`` in ``tests/reference/power/`` (agreement to 1e-6); the genetic one
against a hand calculation written down there.

Power by simulation under the calibrated RLS model is in :mod:`rlsepi.power_simulation`.

References
----------
Fleiss JL, Levin B, Paik MC (2003). Statistical Methods for Rates and Proportions, 3rd ed.
Woodward M (2014). Epidemiology: Study Design and Data Analysis, 3rd ed. (sample size chapter).
Humphry RW, Cameron A, Gunn GJ (2004). Prev Vet Med 65:173 (prevalence with an imperfect test).
Cohen J (1988). Statistical Power Analysis for the Behavioral Sciences, 2nd ed., chapter 3.
Armitage P (1955). Tests for linear trends in proportions and frequencies. Biometrics 11:375.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from rlsepi.errors import RLSEpiError
from rlsepi.parameters import DEFAULT, Parameters

__all__ = [
    "PowerResult",
    "prevalence_precision",
    "two_proportions",
    "case_control",
    "two_means",
    "correlation",
    "genetic_association",
    "genotype_frequencies",
    "prevalence_by_sex",
    "planning_summary",
]


# --- validation -------------------------------------------------------------------------


def _prob(name: str, x: float, *, closed: bool = False) -> float:
    x = float(x)
    ok = (0.0 <= x <= 1.0) if closed else (0.0 < x < 1.0)
    if not (math.isfinite(x) and ok):
        raise RLSEpiError(f"{name} must lie between 0 and 1{'' if closed else ' (exclusive)'}, got {x:g}")
    return x


def _positive(name: str, x: float) -> float:
    x = float(x)
    if not (math.isfinite(x) and x > 0):
        raise RLSEpiError(f"{name} must be greater than 0, got {x:g}")
    return x


def _one_of(n: float | None, power: float | None) -> None:
    if (n is None) == (power is None):
        raise RLSEpiError("give exactly one of n (to get the power) and power (to get the sample size)")


def _sided(sided: int) -> int:
    if sided not in (1, 2):
        raise RLSEpiError(f"sided must be 1 or 2, got {sided}")
    return sided


def _z(alpha: float, sided: int) -> float:
    return float(stats.norm.isf(_prob("alpha", alpha) / _sided(sided)))


# --- the result -------------------------------------------------------------------------


@dataclass(frozen=True)
class PowerResult:
    """A closed-form sample size or power.

    Attributes
    ----------
    design : str
        Which design (``prevalence``, ``two-proportions``, ``case-control``, ``two-means``,
        ``correlation``, ``genetic-association``).
    solved_for : {'n', 'power'}
    n_total : float
        People in the study (fractional: round up to plan).
    groups : dict
        People per group (e.g. ``cases`` and ``controls``), fractional.
    power : float
        Power (the one asked for, or the one computed); ``nan`` for a precision design.
    alpha : float
    sided : int
    inputs : dict
        The design's inputs.
    method : str
        The formula in one line, and the R function it matches.
    """

    design: str
    solved_for: str
    n_total: float
    groups: Mapping[str, float]
    power: float
    alpha: float
    sided: int
    inputs: Mapping[str, Any]
    method: str

    @property
    def n_required(self) -> int:
        """The total sample size rounded up per group (what to recruit)."""
        if not self.groups:
            return math.ceil(self.n_total - 1e-9)
        return int(sum(math.ceil(v - 1e-9) for v in self.groups.values()))

    def to_dict(self) -> dict[str, Any]:
        return {"design": self.design, "solved_for": self.solved_for, "n_total": self.n_total,
                "n_required": self.n_required, "groups": dict(self.groups), "power": self.power,
                "alpha": self.alpha, "sided": self.sided, "inputs": dict(self.inputs), "method": self.method}

    def to_frame(self) -> pd.DataFrame:
        row = {"design": self.design, "solved_for": self.solved_for, "n_total": self.n_total,
               "n_required": self.n_required, **{f"n_{k}": v for k, v in self.groups.items()},
               "power": self.power, "alpha": self.alpha, "sided": self.sided,
               **{k: v for k, v in self.inputs.items() if isinstance(v, (int, float, str))}}
        return pd.DataFrame([row])

    def summary(self) -> str:
        inputs = ", ".join(f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}" for k, v in self.inputs.items())
        groups = "; ".join(f"{k} {math.ceil(v - 1e-9):,}" for k, v in self.groups.items())
        if self.design == "prevalence":
            head = f"{self.n_required:,} people ({self.n_total:.2f} before rounding up)"
        elif self.solved_for == "n":
            head = f"{self.n_required:,} people ({groups}) for {100 * self.power:.0f}% power"
        else:
            head = f"power {100 * self.power:.1f}% with {self.n_total:,.0f} people ({groups})"
        return f"{self.design}: {head}; {inputs}; alpha {self.alpha:g} ({self.sided}-sided). {self.method}"


def _solve_n(power_of_n: Callable[[float], float], target: float, lo: float) -> float:
    """Smallest n with power_of_n(n) = target (power increasing in n)."""
    _prob("power", target)
    f = lambda n: power_of_n(n) - target
    if f(lo) >= 0:
        return lo
    hi = max(2 * lo, 16.0)
    while f(hi) < 0:
        hi *= 4
        if hi > 1e13:
            raise RLSEpiError("no sample size below 1e13 reaches that power; the effect is too small")
    return float(optimize.brentq(f, lo, hi, xtol=1e-12, rtol=4 * np.finfo(float).eps, maxiter=500))


# --- a prevalence to a precision --------------------------------------------------------


def prevalence_precision(prevalence: float, *, precision: float, relative: bool = False, alpha: float = 0.05,
                         design_effect: float = 1.0, population: float | None = None, sensitivity: float = 1.0,
                         specificity: float = 1.0) -> PowerResult:
    """People needed to estimate a prevalence to ± ``precision`` (simple random sampling).

    Parameters
    ----------
    prevalence : float
        Expected true prevalence P, in (0, 1).
    precision : float
        Half-width of the confidence interval: absolute (0.005 = ± 0.5 points) or, with
        ``relative=True``, a fraction of P.
    relative : bool
    alpha : float
        1 - confidence level.
    design_effect : float
        Multiplies n (cluster sampling); 1 for simple random sampling.
    population : float, optional
        Size of a finite population (finite population correction).
    sensitivity, specificity : float
        Of the test that classifies people (1 and 1: a perfect test).

    Notes
    -----
    With apparent prevalence ``AP = Se P + (1 - Sp)(1 - P)`` and ``e`` the absolute half-width,
    ``n = (z / e)^2 AP (1 - AP) / (Se + Sp - 1)^2`` (Humphry et al. 2004), times the design
    effect, then ``n N / (n + N - 1)`` for a finite population of N. This is epiR
    ``epi.sssimpleestb`` (with ``nfractional = TRUE``) times the design effect.

    Examples
    --------
    >>> round(prevalence_precision(0.08, precision=0.005).n_total, 1)
    11309.3
    """
    p = _prob("prevalence", prevalence)
    e = _positive("precision", precision)
    se, sp = _prob("sensitivity", sensitivity, closed=True), _prob("specificity", specificity, closed=True)
    deff = _positive("design_effect", design_effect)
    if se + sp <= 1:
        raise RLSEpiError(f"sensitivity + specificity must exceed 1, got {se + sp:g}; the test carries no information")
    e_abs = e * p if relative else e
    if not relative and e >= min(p, 1 - p) and e >= 0.5:
        raise RLSEpiError(f"precision {e:g} is wider than the prevalence scale; give e.g. 0.005 for ± 0.5 points")
    z = _z(alpha, 2)
    ap = se * p + (1 - sp) * (1 - p)
    n = (z / e_abs) ** 2 * ap * (1 - ap) / (se + sp - 1) ** 2 * deff
    if population is not None:
        big_n = _positive("population", population)
        n = n * big_n / (n + big_n - 1)
    inputs = {"prevalence": p, "precision": e, "relative": str(relative).lower(), "design_effect": deff,
              "sensitivity": se, "specificity": sp}
    if population is not None:
        inputs["population"] = float(population)
    return PowerResult("prevalence", "n", float(n), {}, float("nan"), alpha, 2, inputs,
                       "n = (z/e)^2 AP(1-AP)/(Se+Sp-1)^2 x deff (epiR epi.sssimpleestb)")


# --- two proportions --------------------------------------------------------------------


def two_proportions(p1: float, p0: float, *, n: float | None = None, power: float | None = None,
                    ratio: float = 1.0, alpha: float = 0.05, sided: int = 2, design_effect: float = 1.0) -> PowerResult:
    """Two proportions (cross-sectional or cohort): risk ``p1`` in the exposed, ``p0`` in the unexposed.

    Parameters
    ----------
    p1, p0 : float
        Outcome risk (or prevalence) in the exposed and the unexposed.
    n : float, optional
        Total people (exposed + unexposed); give it to get the power.
    power : float, optional
        Give it to get the sample size.
    ratio : float
        Exposed per unexposed person (``r`` of epiR).
    alpha, sided : float, int
    design_effect : float

    Notes
    -----
    With ``lambda = p1 / p0``, ``pc = p0 (r lambda + 1) / (r + 1)``:
    ``n = (r + 1) / (r (lambda - 1)^2 p0^2) [z_a sqrt((r + 1) pc (1 - pc)) + z_b sqrt(p1 (1 - p1) + r p0 (1 - p0))]^2``
    (normal approximation without continuity correction, Fleiss 2003; Woodward 2014), times the
    design effect: epiR ``epi.sscohortc`` with ``nfractional = TRUE``.

    Examples
    --------
    >>> r = two_proportions(0.095, 0.057, power=0.8)
    >>> r.n_required > 1000
    True
    """
    a, b = _prob("p1", p1), _prob("p0", p0)
    if a == b:
        raise RLSEpiError("p1 equals p0: there is no difference to detect")
    r = _positive("ratio", ratio)
    deff = _positive("design_effect", design_effect)
    _one_of(n, power)
    za = _z(alpha, sided)
    lam = a / b
    pc = b * (r * lam + 1) / (r + 1)
    v1 = lam * b * (1 - lam * b) + r * b * (1 - b)

    def power_of(total: float) -> float:
        n_eff = total / deff
        t1 = b * abs(lam - 1) * math.sqrt(n_eff * r)
        t2 = za * (r + 1) * math.sqrt(pc * (1 - pc))
        return float(stats.norm.cdf((t1 - t2) / math.sqrt((r + 1) * v1)))

    if power is not None:
        zb = float(stats.norm.ppf(_prob("power", power)))
        n0 = (r + 1) / (r * (lam - 1) ** 2 * b**2) * (za * math.sqrt((r + 1) * pc * (1 - pc)) + zb * math.sqrt(v1)) ** 2
        total, pw, solved = n0 * deff, float(power), "n"
    else:
        total, solved = _positive("n", n), "power"
        pw = power_of(total)
    groups = {"exposed": total * r / (r + 1), "unexposed": total / (r + 1)}
    return PowerResult("two-proportions", solved, float(total), groups, pw, alpha, sided,
                       {"p1": a, "p0": b, "risk_ratio": lam, "odds_ratio": (a / (1 - a)) / (b / (1 - b)),
                        "ratio": r, "design_effect": deff},
                       "normal approximation, pooled variance under H0 (epiR epi.sscohortc)")


# --- case-control -----------------------------------------------------------------------


def case_control(odds_ratio: float, p0: float, *, n: float | None = None, power: float | None = None,
                 controls_per_case: float = 1.0, alpha: float = 0.05, sided: int = 2,
                 design_effect: float = 1.0) -> PowerResult:
    """An unmatched case-control study of an odds ratio.

    Parameters
    ----------
    odds_ratio : float
        The odds ratio to detect.
    p0 : float
        Prevalence of exposure among controls.
    n : float, optional
        Total people (cases + controls); give it to get the power.
    power : float, optional
        Give it to get the sample size.
    controls_per_case : float
        ``r`` of epiR.
    alpha, sided, design_effect

    Notes
    -----
    Exposure among cases ``p1 = OR p0 / (1 + (OR - 1) p0)``; ``Pc`` the pooled exposure
    prevalence; ``n = (r + 1)(1 + (OR - 1) p0)^2 / (r p0^2 (1 - p0)^2 (OR - 1)^2) [z_a sqrt((r + 1)
    Pc (1 - Pc)) + z_b sqrt(OR p0 (1 - p0) / (1 + (OR - 1) p0)^2 + r p0 (1 - p0))]^2`` total, a
    share ``1 / (r + 1)`` of them cases (the case count times the design effect): epiR
    ``epi.sscc(method = "unmatched", fleiss = FALSE, nfractional = TRUE)``.
    """
    psi = _positive("odds_ratio", odds_ratio)
    if psi == 1:
        raise RLSEpiError("odds_ratio is 1: there is no effect to detect")
    q = _prob("p0", p0)
    r = _positive("controls_per_case", controls_per_case)
    deff = _positive("design_effect", design_effect)
    _one_of(n, power)
    za = _z(alpha, sided)
    den = 1 + (psi - 1) * q
    pc = (q / (r + 1)) * (r * psi / den + 1)
    var1 = psi * q * (1 - q) / den**2 + r * q * (1 - q)
    if power is not None:
        zb = float(stats.norm.ppf(_prob("power", power)))
        base = ((r + 1) * den**2 / (r * q**2 * (q - 1) ** 2 * (psi - 1) ** 2)
                * (za * math.sqrt((r + 1) * pc * (1 - pc)) + zb * math.sqrt(var1)) ** 2)
        cases = base / (1 + r) * deff
        controls = r * cases
        total, pw, solved = cases + controls, float(power), "n"
    else:
        total, solved = _positive("n", n), "power"
        m = abs((psi - 1) * (q - 1) / den)
        zb = (m * q * math.sqrt(total * r) / math.sqrt(r + 1) - za * math.sqrt((r + 1) * pc * (1 - pc))) / math.sqrt(var1)
        pw = float(stats.norm.cdf(zb))
        cases = total / (1 + r) * deff
        controls = total - cases
    return PowerResult("case-control", solved, float(total), {"cases": cases, "controls": controls}, pw, alpha,
                       sided, {"odds_ratio": psi, "p0": q, "p1": psi * q / den, "controls_per_case": r,
                               "design_effect": deff},
                       "normal approximation for two proportions of exposure (epiR epi.sscc, unmatched)")


# --- two means --------------------------------------------------------------------------


def two_means(delta: float, sd: float, *, n: float | None = None, power: float | None = None, alpha: float = 0.05,
              sided: int = 2, strict: bool = False) -> PowerResult:
    """A two-sample t-test of equal means with equal group sizes and a common SD.

    Parameters
    ----------
    delta : float
        Difference in means to detect.
    sd : float
        Common standard deviation (> 0).
    n : float, optional
        People **per group**; give it to get the power.
    power : float, optional
        Give it to get the people per group.
    alpha, sided
    strict : bool
        Two-sided only: add the probability of rejecting in the wrong tail (R's ``strict``).

    Notes
    -----
    ``power = P(T' > t_{1 - alpha/s, 2(n-1)})`` with ``T'`` noncentral t on ``2(n - 1)`` df and
    noncentrality ``sqrt(n / 2) |delta| / sd`` (R ``power.t.test``, two-sample); n solved by
    Brent's method.
    """
    d = abs(float(delta))
    if not (math.isfinite(d) and d > 0):
        raise RLSEpiError(f"delta must be a non-zero difference, got {delta}")
    s = _positive("sd", sd)
    _one_of(n, power)
    _prob("alpha", alpha)
    _sided(sided)

    def power_of(m: float) -> float:
        df = 2 * (m - 1)
        ncp = math.sqrt(m / 2) * d / s
        crit = stats.t.isf(alpha / sided, df)
        pw = stats.nct.sf(crit, df, ncp)
        if strict and sided == 2:
            pw += stats.nct.cdf(-crit, df, ncp)
        return float(pw)

    if power is not None:
        per, pw, solved = _solve_n(power_of, float(power), 2.0 + 1e-10), float(power), "n"
    else:
        per, solved = _positive("n", n), "power"
        if per < 2:
            raise RLSEpiError(f"n must be at least 2 per group, got {per:g}")
        pw = power_of(per)
    return PowerResult("two-means", solved, 2 * per, {"group1": per, "group2": per}, pw, alpha, sided,
                       {"delta": float(delta), "sd": s, "cohen_d": d / s},
                       "noncentral t, 2(n-1) df (R power.t.test, two-sample)")


# --- a correlation ----------------------------------------------------------------------


def correlation(r: float, *, n: float | None = None, power: float | None = None, alpha: float = 0.05,
                sided: int = 2) -> PowerResult:
    """A test that a Pearson correlation is zero.

    Notes
    -----
    The critical correlation ``r_c = sqrt(t^2 / (t^2 + n - 2))`` with ``t`` the critical t on
    ``n - 2`` df; on Fisher's z scale with the bias term ``r / (2 (n - 1))``:
    ``power = Phi((z_r - z_c) sqrt(n - 3)) + Phi((-z_r - z_c) sqrt(n - 3))`` (two-sided; Cohen
    1988; pwr ``pwr.r.test``). n solved by Brent's method.
    """
    rho = float(r)
    if not (math.isfinite(rho) and 0 < abs(rho) < 1):
        raise RLSEpiError(f"r must lie strictly between -1 and 1 and not be 0, got {r}")
    rho = abs(rho)
    _one_of(n, power)
    _prob("alpha", alpha)
    _sided(sided)

    def power_of(m: float) -> float:
        t = stats.t.isf(alpha / sided, m - 2)
        rc = math.sqrt(t**2 / (t**2 + m - 2))
        zr = math.atanh(rho) + rho / (2 * (m - 1))
        zc = math.atanh(rc)
        pw = stats.norm.cdf((zr - zc) * math.sqrt(m - 3))
        if sided == 2:
            pw += stats.norm.cdf((-zr - zc) * math.sqrt(m - 3))
        return float(pw)

    if power is not None:
        m, pw, solved = _solve_n(power_of, float(power), 4.0 + 1e-10), float(power), "n"
    else:
        m, solved = _positive("n", n), "power"
        if m < 4:
            raise RLSEpiError(f"n must be at least 4 for a correlation, got {m:g}")
        pw = power_of(m)
    return PowerResult("correlation", solved, m, {}, pw, alpha, sided, {"r": float(r)},
                       "Fisher z with bias term (pwr pwr.r.test)")


# --- a genetic association --------------------------------------------------------------

_CODINGS = {"additive": (0.0, 1.0, 2.0), "dominant": (0.0, 1.0, 1.0), "recessive": (0.0, 0.0, 1.0)}


def genotype_frequencies(eaf: float, odds_ratio: float, prevalence: float, model: str = "additive"
                         ) -> dict[str, np.ndarray]:
    """Genotype frequencies (0, 1, 2 effect alleles) in the population, in cases and in controls.

    Hardy-Weinberg in the population; ``logit P(D | g) = b0 + x(g) ln(OR)`` with ``x`` the
    coding of ``model``; ``b0`` solved so that the population prevalence is ``prevalence``.
    """
    q = _prob("eaf", eaf)
    psi = _positive("odds_ratio", odds_ratio)
    k = _prob("prevalence", prevalence)
    if model not in _CODINGS:
        raise RLSEpiError(f"genetic model must be one of {', '.join(_CODINGS)}, got '{model}'")
    x = np.array(_CODINGS[model])
    pg = np.array([(1 - q) ** 2, 2 * q * (1 - q), q**2])
    b0 = optimize.brentq(lambda b: float(pg @ special.expit(b + x * math.log(psi))) - k, -50, 50, xtol=1e-14)
    f = special.expit(b0 + x * math.log(psi))
    return {"population": pg, "penetrance": f, "cases": pg * f / k, "controls": pg * (1 - f) / (1 - k), "x": x}


def genetic_association(eaf: float, odds_ratio: float, *, prevalence: float, model: str = "additive",
                        design: str = "case-control", controls_per_case: float = 1.0, n: float | None = None,
                        power: float | None = None, alpha: float = 5e-8) -> PowerResult:
    """One variant: power of the 1-df trend test with the coding of ``model``.

    Parameters
    ----------
    eaf : float
        Effect-allele frequency in the population.
    odds_ratio : float
        Per effect allele (additive) or of carriers (dominant) or of homozygotes (recessive)
        against the rest; the same coding is tested.
    prevalence : float
        Population prevalence of the disease (fixes the penetrances).
    model : {'additive', 'dominant', 'recessive'}
    design : {'case-control', 'population'}
        ``case-control``: ``n`` is cases + controls with ``controls_per_case``; ``population``:
        ``n`` people sampled at random, of whom a share ``prevalence`` are cases.
    n, power
        Give one.
    alpha : float
        Two-sided significance level (5e-8 genome-wide).

    Notes
    -----
    With ``x`` the genotype score, ``mu1, s1^2`` and ``mu0, s0^2`` its mean and variance in cases
    and controls, ``n1`` cases and ``n0`` controls, and ``s^2`` its variance in the pooled sample
    (the null variance of the Armitage trend test):
    ``power = Phi((|mu1 - mu0| - z s sqrt(1/n1 + 1/n0)) / sqrt(s1^2/n1 + s0^2/n0)) + Phi((-|mu1 - mu0| - z s
    sqrt(1/n1 + 1/n0)) / sqrt(s1^2/n1 + s0^2/n0))``, ``z = Phi^{-1}(1 - alpha/2)``. The worked
    example is in ``tests/reference/power/genetic_hand.md``.
    """
    if design not in ("case-control", "population"):
        raise RLSEpiError(f"design must be 'case-control' or 'population', got '{design}'")
    fr = genotype_frequencies(eaf, odds_ratio, prevalence, model)
    _one_of(n, power)
    z = _z(alpha, 2)
    x = fr["x"]
    k = prevalence
    share1 = k if design == "population" else 1 / (1 + _positive("controls_per_case", controls_per_case))
    mu1, mu0 = float(fr["cases"] @ x), float(fr["controls"] @ x)
    v1, v0 = float(fr["cases"] @ x**2) - mu1**2, float(fr["controls"] @ x**2) - mu0**2
    pooled = share1 * fr["cases"] + (1 - share1) * fr["controls"]
    vp = float(pooled @ x**2) - float(pooled @ x) ** 2
    delta = abs(mu1 - mu0)
    if delta == 0 or vp == 0:
        raise RLSEpiError("the genotype score does not differ between cases and controls; nothing to detect")

    def power_of(total: float) -> float:
        n1, n0 = share1 * total, (1 - share1) * total
        s_null = math.sqrt(vp * (1 / n1 + 1 / n0))
        s_alt = math.sqrt(v1 / n1 + v0 / n0)
        return float(stats.norm.cdf((delta - z * s_null) / s_alt) + stats.norm.cdf((-delta - z * s_null) / s_alt))

    if power is not None:
        total, pw, solved = _solve_n(power_of, float(power), 4.0), float(power), "n"
    else:
        total, solved = _positive("n", n), "power"
        pw = power_of(total)
    return PowerResult("genetic-association", solved, float(total),
                       {"cases": share1 * total, "controls": (1 - share1) * total}, pw, alpha, 2,
                       {"eaf": float(eaf), "odds_ratio": float(odds_ratio), "prevalence": float(prevalence),
                        "model": model, "design": design,
                        "case_score_mean": mu1, "control_score_mean": mu0},
                       "Armitage trend test, normal approximation with null and alternative variances")


def prevalence_by_sex(params: Parameters = DEFAULT) -> dict[str, float]:
    """Exact expected RLS prevalence in women and in men, and the share of women, under the
    calibrated model (for closed-form designs that mirror a simulation)."""
    from rlsepi import cohort

    model = cohort.solve_model(params)
    dist = cohort.covariate_distribution(params)
    theta = np.array([model.intercept, model.female, model.age_peak, math.log(model.age_curvature), *model.trimester])
    p = cohort._cell_probabilities(theta, dist, params)
    mass = dist.cell_mass()
    by_sex = (mass * p).sum(axis=(0, 2)) / mass.sum(axis=(0, 2))
    return {"female": float(by_sex[1]), "male": float(by_sex[0]), "female_share": float(dist.female_share)}


EXAMPLE_COHORT_N = 20_000
"""People in the shipped example cohort (``data/synthetic/cohort_20k.parquet``)."""


def planning_summary(params: Parameters = DEFAULT, *, n: int | None = None, precision: float = 0.005,
                     alpha: float = 0.05, genome_wide: float = 5e-8) -> dict[str, Any]:
    """The report's "planning a study" numbers (JSON-ready).

    - People needed to estimate the RLS prevalence to ± ``precision`` (simple random sampling).
    - Power of a population sample the size of the example cohort (and of ``n``, the report's
      cohort) to detect the crude female:male difference (two proportions at the model's exact
      expected prevalence by sex, ``alpha``) and each locus of ``params`` (additive trend test at
      ``genome_wide``).
    """
    k = params.targets.prevalence.value
    prev = prevalence_precision(k, precision=precision, alpha=alpha)
    ps = prevalence_by_sex(params)
    ratio = ps["female_share"] / (1 - ps["female_share"])
    sizes = [("the example cohort", EXAMPLE_COHORT_N)]
    if n is not None and n != EXAMPLE_COHORT_N:
        sizes.append(("this report's cohort", int(n)))
    rows = []
    for label, size in sizes:
        rows.append({"study": label, "n": size, "effect": "female:male difference in prevalence",
                     "alpha": alpha,
                     "power": two_proportions(ps["female"], ps["male"], n=size, ratio=ratio, alpha=alpha).power})
        for loc in params.loci:
            rows.append({"study": label, "n": size, "effect": f"{loc.gene} {loc.rsid} (OR {loc.odds_ratio:g} per allele)",
                         "alpha": genome_wide,
                         "power": genetic_association(loc.eaf, loc.odds_ratio, prevalence=k, design="population",
                                                      n=size, alpha=genome_wide).power})
    need_sex = two_proportions(ps["female"], ps["male"], power=0.9, ratio=ratio, alpha=alpha).n_required
    return {"prevalence": k, "precision": precision, "alpha": alpha, "n_for_precision": prev.n_required,
            "prevalence_female": ps["female"], "prevalence_male": ps["male"], "n_sex_difference_90": need_sex,
            "power": rows}
