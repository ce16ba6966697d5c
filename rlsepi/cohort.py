"""The synthetic cohort simulator.

Covariates come first (age, sex, pregnancy and trimester, serum ferritin, genotypes at the
score's loci), then the outcome model:

.. math::

    \\operatorname{logit} P(\\text{RLS}) = \\beta_0 + \\beta_F\\,\\text{female}
        - \\gamma\\left(\\frac{\\text{age} - a_c}{10}\\right)^2
        + \\sum_j \\ln(\\text{OR}_j)\\, g_j
        + \\ln(\\text{OR}_\\text{fer})\\,[\\text{ferritin} \\le 50]
        + \\beta_{T(k)}\\,[\\text{trimester} = k]

The per-allele odds ratios and the ferritin odds ratio are published figures. The other
seven numbers (:math:`\\beta_0, \\beta_F, a_c, \\gamma, \\beta_{T1}, \\beta_{T2}, \\beta_{T3}`)
are solved with :func:`scipy.optimize.root` so that, in expectation over the covariate
distribution, the *marginal* figures equal the targets: the prevalence, the crude
female:male odds ratio, the peak of prevalence by age, the prevalence at age 25 relative to
the peak, and the prevalence in each trimester. Expectations are exact finite sums: ages
and genotypes are discrete and ferritin enters through a normal CDF.

Reproducibility: people are generated in blocks of :data:`BLOCK_SIZE`; block ``i`` draws
from its own stream, the ``i``-th child of the seed's :class:`numpy.random.SeedSequence`.
The cohort is therefore the same whatever the batch size or number of worker processes.

Precision: the same seed gives the same bytes on every CPU. Serum ferritin is stored as a
laboratory reports it (whole µg/L, :data:`rlsepi.parameters.FERRITIN_RESOLUTION`) and the
outcome is drawn from that stored value; the solved coefficients are rounded to
:data:`MODEL_DIGITS` significant digits, and the simulator uses the rounded values, which
are exactly those in a cohort file's metadata. The last bits of numpy's vectorised
``exp``/``log`` and of BLAS sums differ between CPUs; they do not reach these digits.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy import optimize, special, stats

from rlsepi import __version__
from rlsepi.errors import ParameterError, RLSEpiError
from rlsepi.io import METADATA_PREFIX, atomic_output, provenance_metadata, round_significant, table_to_frame
from rlsepi.parameters import DEFAULT, FERRITIN_RESOLUTION, STANDARD_POPULATIONS, Parameters

__all__ = [
    "BLOCK_SIZE",
    "MODEL_DIGITS",
    "ferritin_as_reported",
    "reported_ferritin_cut",
    "OutcomeModel",
    "CovariateDistribution",
    "covariate_distribution",
    "solve_model",
    "expected_figures",
    "expected_prevalence_by_age",
    "smooth_interpolate",
    "fertility_rate",
    "simulate",
    "iter_blocks",
    "arrow_schema",
    "seed_sequence",
    "age_distribution",
    "pregnancy_probability",
    "ferritin_log_params",
    "genetic_distribution",
    "irls_score_probabilities",
    "clinical_significance_cutoff",
    "table_to_frame",
    "write_cohort",
]

BLOCK_SIZE = 65_536
"""People per random stream and per Parquet row group. Part of the reproducibility contract:
changing it changes every cohort."""

MODEL_DIGITS = 10
"""Significant digits of the solved coefficients (stored in a cohort's metadata and used by the
simulator). Five orders of magnitude above the CPU differences of the solver's arithmetic
(about 1e-15 relative), and the expected figures stay within 1e-9 of the targets."""

_STATES = 4  # 0 not pregnant, 1-3 trimester


# --- covariate distribution -----------------------------------------------------------


@dataclass(frozen=True)
class CovariateDistribution:
    """The exact joint distribution of the covariates, on a grid.

    Attributes
    ----------
    ages : ndarray, shape (A,)
        Single years of age.
    age_prob : ndarray, shape (A,)
        P(age).
    female_share : float
    state_prob : ndarray, shape (A, 2, 4)
        P(state | age, sex); sex 0 = male, 1 = female; state 0 = not pregnant, 1-3 trimester.
    fer_mu, fer_sigma : ndarray, shape (A, 2, 4)
        Mean and SD of ln(ferritin) given age, sex and state.
    genetic_values, genetic_prob : ndarray, shape (G,)
        Distinct values of the genetic log-odds sum and their probabilities under
        Hardy-Weinberg equilibrium (loci independent).
    """

    ages: np.ndarray
    age_prob: np.ndarray
    female_share: float
    state_prob: np.ndarray
    fer_mu: np.ndarray
    fer_sigma: np.ndarray
    genetic_values: np.ndarray
    genetic_prob: np.ndarray

    def low_ferritin_prob(self, threshold: float) -> np.ndarray:
        """P(reported ferritin <= threshold | age, sex, state), shape (A, 2, 4).

        Ferritin is reported to whole µg/L (:func:`ferritin_as_reported`), so this is the
        probability that the unrounded log-normal value lies below
        :func:`reported_ferritin_cut` (50.5 for a threshold of 50).
        """
        cut = reported_ferritin_cut(threshold)
        if cut <= 0.0:
            return np.zeros_like(self.fer_mu)
        return stats.norm.cdf((math.log(cut) - self.fer_mu) / self.fer_sigma)

    def cell_mass(self) -> np.ndarray:
        """P(age, sex, state), shape (A, 2, 4)."""
        sex = np.array([1.0 - self.female_share, self.female_share])
        return self.age_prob[:, None, None] * sex[None, :, None] * self.state_prob


def age_distribution(params: Parameters) -> tuple[np.ndarray, np.ndarray]:
    """Single ages and their probabilities from the standard population's 5-year bands."""
    pop = params.population
    bands = STANDARD_POPULATIONS[pop.standard]["bands"]
    ages = np.arange(pop.min_age, pop.max_age + 1)
    weight = np.zeros(ages.size)
    for i, (lower, w) in enumerate(bands):
        upper = bands[i + 1][0] - 1 if i + 1 < len(bands) else max(pop.max_age, lower)
        years = upper - lower + 1
        inside = (ages >= lower) & (ages <= upper)
        weight[inside] = w / years
    if weight.sum() <= 0:
        raise ParameterError("the standard population gives no weight to the ages asked for")
    return ages, weight / weight.sum()


def smooth_interpolate(x: np.ndarray | float, xp: Any, fp: Any, *, sd: float) -> np.ndarray:
    """A smooth curve through age-group figures: the broken line through ``(xp, fp)`` (held
    constant before the first and after the last point), smoothed with a Gaussian kernel of
    standard deviation ``sd`` (years).

    Notes
    -----
    The broken line is :math:`f(x) = f_0 + \\sum_k \\Delta_k\\,(x - x_k)_+` with :math:`\\Delta_k`
    the change of slope at :math:`x_k`; its convolution with :math:`N(0, s^2)` is, exactly,
    :math:`f_0 + \\sum_k \\Delta_k\\, s\\,[z_k\\Phi(z_k) + \\phi(z_k)]` with :math:`z_k = (x - x_k)/s`.
    The result is infinitely differentiable, monotone wherever the figures are, and stays
    within their range; it departs from a figure only where the broken line bends there
    (by at most :math:`0.4\\,|\\Delta_k|\\,s`). A step-free, kink-free input keeps the
    expected prevalence curve by age smooth, so that its peak is a well-defined maximum.
    ``sd = 0`` gives the broken line itself.
    """
    xp = np.asarray(xp, dtype=float)
    fp = np.asarray(fp, dtype=float)
    x = np.asarray(x, dtype=float)
    if xp.size == 1:
        return np.full(x.shape, fp[0])
    slopes = np.concatenate([[0.0], np.diff(fp) / np.diff(xp), [0.0]])
    bends = np.diff(slopes)  # change of slope at each point
    if sd <= 0:
        return np.interp(x, xp, fp)
    z = (x[..., None] - xp) / sd
    ramp = sd * (z * special.ndtr(z) + np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi))
    return fp[0] + ramp @ bends


def fertility_rate(ages: np.ndarray | float, params: Parameters) -> np.ndarray:
    """Births per woman-year at each (possibly fractional) age.

    The published 5-year rates are placed at their bands' midpoints, with 0 one year after
    ``pregnancy.max_age``, and joined by straight lines (:func:`smooth_interpolate` with
    ``sd = 0``): continuous, with no step at the end of the reproductive ages (a Gaussian
    smoothing would spread fertility past ``max_age`` and leave a step there). The rate is
    0 outside the reproductive ages.
    """
    preg = params.pregnancy
    mids = np.asarray(preg.fertility_band_starts, dtype=float) + 2.5
    rates = np.asarray(preg.fertility, dtype=float)
    end = float(preg.max_age + 1)
    keep = mids < end
    xp, fp = np.append(mids[keep], end), np.append(rates[keep], 0.0)
    a = np.asarray(ages, dtype=float)
    rate = smooth_interpolate(a, xp, fp, sd=0.0)
    return np.where((a >= preg.min_age) & (a < end), rate, 0.0)


def pregnancy_probability(ages: np.ndarray, params: Parameters) -> np.ndarray:
    """P(pregnant | woman of this age): fertility rate times the length of a pregnancy in years."""
    return fertility_rate(ages, params) * params.pregnancy.gestation_weeks / 52.0


def trimester_probabilities(params: Parameters) -> np.ndarray:
    weeks = np.asarray(params.pregnancy.trimester_weeks, dtype=float)
    return weeks / weeks.sum()


def ferritin_log_params(ages: np.ndarray, female: np.ndarray, state: np.ndarray,
                        params: Parameters) -> tuple[np.ndarray, np.ndarray]:
    """Mean and SD of ln(ferritin) for each person (or grid cell).

    Non-pregnant: the log-median and log-SD follow a smooth curve in age through the anchor
    ages (:func:`smooth_interpolate`, ``age_curve.input_smoothing_sd``), so that no step or
    kink in ferritin puts a bump in the prevalence curve. Pregnant in trimester k: the log-SD of non-pregnant women
    of that age, and the median that puts the published share of trimester k below the
    iron-deficiency threshold.
    """
    fer = params.ferritin
    ages = np.asarray(ages, dtype=float)
    w = params.age_curve.input_smoothing_sd
    mu_m = smooth_interpolate(ages, fer.male_anchor_ages, np.log(fer.male_median), sd=w)
    sd_m = smooth_interpolate(ages, fer.male_anchor_ages, fer.male_log_sd, sd=w)
    mu_f = smooth_interpolate(ages, fer.female_anchor_ages, np.log(fer.female_median), sd=w)
    sd_f = smooth_interpolate(ages, fer.female_anchor_ages, fer.female_log_sd, sd=w)
    mu = np.where(female, mu_f, mu_m)
    sd = np.where(female, sd_f, sd_m)
    z_def = stats.norm.ppf(np.asarray(fer.pregnancy_deficiency))  # z of the deficient share
    state = np.asarray(state)
    pregnant = state > 0
    if np.any(pregnant):
        mu_preg = math.log(fer.deficiency_threshold) - sd * z_def[np.clip(state - 1, 0, 2)]
        mu = np.where(pregnant, mu_preg, mu)
    return mu, sd


def ferritin_as_reported(ferritin: np.ndarray) -> np.ndarray:
    """Serum ferritin as a laboratory reports it: to the nearest whole µg/L, at least 1 µg/L.

    The resolution is :data:`rlsepi.parameters.FERRITIN_RESOLUTION`; halves round to even
    (:func:`numpy.rint`, exact and the same on every CPU).

    Examples
    --------
    >>> ferritin_as_reported(np.array([0.2, 14.5, 15.5, 50.49, 50.5, 137.2]))
    array([  1.,  14.,  16.,  50.,  50., 137.])
    """
    step = FERRITIN_RESOLUTION
    return np.maximum(np.rint(np.asarray(ferritin, dtype=float) / step) * step, step)


def reported_ferritin_cut(threshold: float) -> float:
    """The unrounded ferritin below which the reported value is ``<= threshold`` (µg/L).

    A reported value ``r <= threshold`` means ``r <= floor(threshold)`` (whole µg/L), which
    holds exactly when the unrounded value is below ``floor(threshold) + 0.5``; a threshold
    below the smallest reported value (1 µg/L) is never met (cut 0). Ties at the half have
    probability zero.

    Examples
    --------
    >>> reported_ferritin_cut(50.0), reported_ferritin_cut(50.7), reported_ferritin_cut(0.5)
    (50.5, 50.5, 0.0)
    """
    step = FERRITIN_RESOLUTION
    whole = math.floor(threshold / step) * step
    return whole + step / 2 if whole >= step else 0.0


def genetic_distribution(params: Parameters, *, weights: Sequence[float] | None = None,
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of sum_j ln(OR_j) g_j and their probabilities (HWE, independent loci).

    The exact enumeration of :func:`rlsepi.polygenic.analytic_reference` (equal sums merged).
    ``weights`` (one per locus of ``params``) replace the ln(OR) of the parameters, e.g. the
    rounded weights of an :class:`OutcomeModel`.
    """
    from rlsepi.polygenic import analytic_reference

    w = [locus.weight for locus in params.loci] if weights is None else [float(x) for x in weights]
    values = np.array([[0.0, x, 2 * x] for x in w]).reshape(-1, 3)
    ref = analytic_reference(values, np.array([locus.eaf for locus in params.loci]))
    if ref.kind != "analytic-exact":
        raise ParameterError(
            f"{len(params.loci)} loci are too many to enumerate genotype combinations exactly; "
            "the simulator supports scores of up to about 11 loci"
        )
    return ref.values, ref.probs


def covariate_distribution(params: Parameters = DEFAULT, *, ages: np.ndarray | None = None) -> CovariateDistribution:
    """The exact covariate distribution implied by ``params``.

    With ``ages`` (any real ages, not necessarily whole), the distribution *given* each of
    those ages: ``age_prob`` is then uniform and only the conditional parts (state,
    ferritin) matter. The solver uses this to differentiate the expected prevalence curve.
    """
    if ages is None:
        ages, age_prob = age_distribution(params)
    else:
        ages = np.asarray(ages, dtype=float)
        age_prob = np.full(ages.size, 1.0 / ages.size)
    state_prob = np.zeros((ages.size, 2, _STATES))
    state_prob[:, 0, 0] = 1.0
    p_preg = pregnancy_probability(ages, params)
    tri = trimester_probabilities(params)
    state_prob[:, 1, 0] = 1.0 - p_preg
    state_prob[:, 1, 1:] = p_preg[:, None] * tri[None, :]
    a = np.broadcast_to(ages[:, None, None], state_prob.shape)
    female = np.broadcast_to(np.array([False, True])[None, :, None], state_prob.shape)
    state = np.broadcast_to(np.arange(_STATES)[None, None, :], state_prob.shape)
    mu, sd = ferritin_log_params(a, female, state, params)
    gv, gp = genetic_distribution(params)
    return CovariateDistribution(
        ages=ages, age_prob=age_prob, female_share=params.population.female_share,
        state_prob=state_prob, fer_mu=mu, fer_sigma=sd, genetic_values=gv, genetic_prob=gp,
    )


# --- the outcome model ----------------------------------------------------------------


@dataclass(frozen=True)
class OutcomeModel:
    """The generating logistic model of a synthetic cohort (true effects on the log-odds scale).

    Attributes
    ----------
    intercept : float
        Log-odds for a man at the age-curve peak, no risk alleles, ferritin > threshold.
    female : float
        Conditional log odds ratio, women vs men.
    age_peak : float
        Age at which the *conditional* log-odds peak (the marginal peak is the target).
    age_curvature : float
        gamma: the log-odds fall by gamma * ((age - age_peak) / 10)**2.
    trimester : tuple of float
        Log odds ratios for trimesters 1-3 against not pregnant.
    ferritin_low : float
        Log odds ratio for ferritin <= ``ferritin_threshold``.
    ferritin_threshold : float
        µg/L.
    loci : tuple of (rsid, weight)
        ln(OR) per effect allele.
    clinically_significant_share : float
        Share of cases that are clinically significant.
    """

    intercept: float
    female: float
    age_peak: float
    age_curvature: float
    trimester: tuple[float, float, float]
    ferritin_low: float
    ferritin_threshold: float
    loci: tuple[tuple[str, float], ...]
    clinically_significant_share: float

    def age_effect(self, age: np.ndarray | float) -> np.ndarray:
        """The age term of the log-odds."""
        return -self.age_curvature * ((np.asarray(age, dtype=float) - self.age_peak) / 10.0) ** 2

    def linear_predictor(self, df: pd.DataFrame) -> np.ndarray:
        """Log-odds of RLS for each row of a cohort table."""
        eta = (
            self.intercept
            + self.female * (df["sex"].astype(str).to_numpy() == "female")
            + self.age_effect(df["age"].to_numpy())
            + self.ferritin_low * (df["ferritin"].to_numpy() <= self.ferritin_threshold)
        )
        tri = df["trimester"].fillna(0).astype(int).to_numpy()
        eta = eta + np.concatenate([[0.0], self.trimester])[tri]
        for rsid, weight in self.loci:
            eta = eta + weight * df[rsid].to_numpy()
        return np.asarray(eta, dtype=float)

    def odds_ratios(self) -> dict[str, float]:
        """The true conditional odds ratios, by term."""
        out = {"female": math.exp(self.female), f"ferritin<={self.ferritin_threshold:g}": math.exp(self.ferritin_low)}
        out.update({f"trimester{k + 1}": math.exp(b) for k, b in enumerate(self.trimester)})
        out.update({rsid: math.exp(w) for rsid, w in self.loci})
        return out

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["trimester"] = list(self.trimester)
        d["loci"] = {rsid: w for rsid, w in self.loci}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OutcomeModel:
        d = dict(d)
        d["trimester"] = tuple(d["trimester"])
        d["loci"] = tuple(d["loci"].items())
        return cls(**d)


def _cell_probabilities(theta: np.ndarray, dist: CovariateDistribution, params: Parameters,
                        b_fer: float | None = None) -> np.ndarray:
    """E[P(RLS) | age, sex, state] on the grid, shape (A, 2, 4), for unknowns theta."""
    b0, bf, a_c, log_gamma, t1, t2, t3 = theta
    gamma = math.exp(log_gamma)
    age_term = -gamma * ((dist.ages - a_c) / 10.0) ** 2
    eta = (
        b0
        + age_term[:, None, None]
        + np.array([0.0, bf])[None, :, None]
        + np.array([0.0, t1, t2, t3])[None, None, :]
    )
    b_fer = math.log(params.ferritin.low_or) if b_fer is None else b_fer
    q = dist.low_ferritin_prob(params.ferritin.low_threshold)
    eg = eta[..., None] + dist.genetic_values  # (A, 2, 4, G)
    p_high = special.expit(eg) @ dist.genetic_prob
    p_low = special.expit(eg + b_fer) @ dist.genetic_prob
    return q * p_low + (1.0 - q) * p_high


def _by_age(p: np.ndarray, dist: CovariateDistribution) -> np.ndarray:
    """E[P(RLS) | age] from the cell probabilities: averaged over sex and state at each age."""
    mass = dist.cell_mass()
    return (mass * p).sum(axis=(1, 2)) / mass.sum(axis=(1, 2))


_PEAK_STEP = 1e-3
"""Half-width (years) of the central difference that puts the slope of the expected curve at 0."""


def _peak_grid(params: Parameters) -> np.ndarray:
    """The ages where the solver needs the conditional curve: young age, peak - h, peak, peak + h."""
    peak = params.targets.peak_age.value
    return np.array([params.age_curve.young_age, peak - _PEAK_STEP, peak, peak + _PEAK_STEP])


def _figures_from_cells(p: np.ndarray, dist: CovariateDistribution, p_aux: np.ndarray,
                        aux: CovariateDistribution) -> dict[str, float]:
    mass = dist.cell_mass()
    prevalence = float((mass * p).sum())
    by_sex = (mass * p).sum(axis=(0, 2)) / mass.sum(axis=(0, 2))
    odds = by_sex / (1 - by_sex)
    young, below, at, above = _by_age(p_aux, aux)
    out = {
        "prevalence": prevalence,
        "female_male_or": float(odds[1] / odds[0]),
        "logit_slope_at_peak": float((special.logit(above) - special.logit(below)) / (2 * _PEAK_STEP)),
        "prevalence_at_young_age": float(young),
        "prevalence_at_peak_age": float(at),
    }
    for k in range(1, 4):
        cell = mass[:, 1, k]
        out[f"pregnancy_trimester{k}"] = float((cell * p[:, 1, k]).sum() / cell.sum())
    return out


def _residuals(theta: np.ndarray, dist: CovariateDistribution, aux: CovariateDistribution,
               params: Parameters) -> np.ndarray:
    f = _figures_from_cells(_cell_probabilities(theta, dist, params), dist,
                            _cell_probabilities(theta, aux, params), aux)
    t = params.targets
    return np.array([
        special.logit(f["prevalence"]) - special.logit(t.prevalence.value),
        math.log(f["female_male_or"]) - math.log(t.female_male_or.value),
        f["logit_slope_at_peak"],
        math.log(f["prevalence_at_young_age"] / f["prevalence_at_peak_age"])
        - math.log(params.age_curve.young_to_peak_ratio),
        *(special.logit(f[f"pregnancy_trimester{k}"]) - special.logit(t.pregnancy[k - 1].value) for k in (1, 2, 3)),
    ])


def solve_model(params: Parameters = DEFAULT) -> OutcomeModel:
    """Solve the intercept, sex effect, age curve and trimester effects for the targets.

    Notes
    -----
    Seven equations in seven unknowns, on the log-odds scale: the marginal prevalence, the
    crude female:male odds ratio, a zero slope of the expected single-year prevalence curve
    :math:`P(a) = E[P(\\text{RLS}) \\mid \\text{age} = a]` at the target peak age (a central
    difference of :math:`\\operatorname{logit} P` over :math:`\\pm 0.001` years; the covariates
    are smooth in age, so :math:`P` is defined at fractional ages), the prevalence at
    ``age_curve.young_age`` relative to the prevalence at the peak age, and the prevalence
    in each trimester. The sex, age and trimester effects are conditional on ferritin and
    pregnancy, which themselves differ by sex and age, so they are not the marginal
    figures; the solver accounts for that exactly. Ferritin enters as its reported value
    (whole µg/L, see :func:`reported_ferritin_cut`). The returned coefficients are rounded
    to :data:`MODEL_DIGITS` significant digits, so that they are the same on every CPU. That
    the zero slope is the one maximum of :math:`P` over the population's ages is checked by
    :func:`expected_figures` (``peak_age``) and by the tests.

    Raises
    ------
    ParameterError
        When the targets cannot be reached together with these parameters.
    """
    dist = covariate_distribution(params)
    aux = covariate_distribution(params, ages=_peak_grid(params))
    t = params.targets
    start = np.array([
        special.logit(t.prevalence.value) + 0.3, math.log(t.female_male_or.value), t.peak_age.value,
        math.log(0.08), 0.5, 1.0, 1.5,
    ])
    try:
        with np.errstate(all="ignore"):
            sol = optimize.root(_residuals, start, args=(dist, aux, params), method="hybr", options={"xtol": 1e-13})
            resid = _residuals(sol.x, dist, aux, params) if sol.success else None
    except (ValueError, ZeroDivisionError, OverflowError, FloatingPointError) as exc:
        # the search reached prevalences of exactly 0 or 1: these targets cannot be met together
        raise ParameterError(
            "the outcome model cannot reach these targets together (the solver met a prevalence of 0 or 1: "
            f"{exc}); check the targets, age_curve, ferritin.low_or and loci odds ratios for consistency"
        ) from None
    if resid is not None and not np.all(np.isfinite(resid)):
        resid = None
    if resid is None or np.max(np.abs(resid)) > 1e-9:
        raise ParameterError(
            "the outcome model cannot reach these targets together "
            f"({' '.join(sol.message.split())}); check the targets and age_curve parameters for consistency"
        )
    b0, bf, a_c, log_gamma, t1, t2, t3 = (float(x) for x in sol.x)

    def r(x: float) -> float:  # the stored value: the same on every CPU (see MODEL_DIGITS)
        return round_significant(x, MODEL_DIGITS)

    model = OutcomeModel(
        intercept=r(b0), female=r(bf), age_peak=r(a_c), age_curvature=r(math.exp(log_gamma)),
        trimester=(r(t1), r(t2), r(t3)),
        ferritin_low=r(math.log(params.ferritin.low_or)), ferritin_threshold=params.ferritin.low_threshold,
        loci=tuple((locus.rsid, r(locus.weight)) for locus in params.loci),
        clinically_significant_share=r(t.clinically_significant.value / t.prevalence.value),
    )
    try:
        peak = _argmax_curve(model, params)
    except ValueError as exc:  # brentq found no sign change: no smooth maximum near the best year
        raise ParameterError(f"with these parameters the expected prevalence curve has no smooth peak near "
                             f"'targets.peak_age.value' = {t.peak_age.value:g} ({exc}); change the age_curve "
                             "parameters or the peak age") from None
    if abs(peak - t.peak_age.value) > 1e-6:  # another, higher maximum elsewhere
        raise ParameterError(
            f"with these parameters the expected prevalence curve is highest at age {peak:.2f}, not at "
            f"'targets.peak_age.value' = {t.peak_age.value:g}: the covariates' own age trends outweigh "
            "the age curve; change the peak age or age_curve.young_to_peak_ratio"
        )
    return model


def _theta(model: OutcomeModel) -> np.ndarray:
    return np.array([
        model.intercept, model.female, model.age_peak, math.log(model.age_curvature), *model.trimester,
    ])


def expected_prevalence_by_age(model: OutcomeModel, params: Parameters = DEFAULT, *,
                               ages: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The expected single-year prevalence curve :math:`P(a) = E[P(\\text{RLS}) \\mid \\text{age} = a]`.

    Exact sums over sex, pregnancy state, ferritin (normal CDF) and genotypes. ``ages``
    defaults to the population's whole years; fractional ages are allowed (the covariates
    are smooth in age). Returns ``(ages, P)``.
    """
    dist = _model_distribution(model, params, ages=None if ages is None else np.atleast_1d(np.asarray(ages, float)))
    return dist.ages, _by_age(_cell_probabilities(_theta(model), dist, params, b_fer=model.ferritin_low), dist)


def _model_distribution(model: OutcomeModel, params: Parameters, *,
                        ages: np.ndarray | None = None) -> CovariateDistribution:
    """The covariate distribution with the model's own (stored, rounded) locus weights."""
    weights = dict(model.loci)
    gv, gp = genetic_distribution(params, weights=[weights[locus.rsid] for locus in params.loci])
    return dataclasses.replace(covariate_distribution(params, ages=ages), genetic_values=gv, genetic_prob=gp)


def _argmax_curve(model: OutcomeModel, params: Parameters) -> float:
    """Age (real) at which the expected prevalence curve is highest over the population's ages:
    the best whole year, then the root of the curve's slope (central difference of the
    log-odds) within a year either side of it."""
    ages, p = expected_prevalence_by_age(model, params)
    i = int(np.argmax(p))
    if i == 0 or i == ages.size - 1:
        return float(ages[i])

    def slope(a: float) -> float:
        _, q = expected_prevalence_by_age(model, params, ages=np.array([a - _PEAK_STEP, a + _PEAK_STEP]))
        return float((special.logit(q[1]) - special.logit(q[0])) / (2 * _PEAK_STEP))

    lo, hi = float(ages[i - 1]), float(ages[i + 1])
    return float(optimize.brentq(slope, lo, hi, xtol=1e-10))


def expected_figures(model: OutcomeModel, params: Parameters = DEFAULT) -> dict[str, float]:
    """The marginal figures that ``model`` implies in expectation (exact sums).

    Keys: ``prevalence``, ``clinically_significant``, ``female_male_or``,
    ``pregnancy_trimester1..3``, ``peak_age`` (the age, to 1e-8 years, at which the expected
    single-year prevalence is highest), ``peak_age_band`` (lower bound of the 5-year band
    with the highest expected prevalence), ``prevalence_at_young_age``,
    ``prevalence_at_peak_age``, ``logit_slope_at_peak``.
    """
    # the model's own (stored, rounded) effects, exactly as the simulator uses them
    dist = _model_distribution(model, params)
    aux = _model_distribution(model, params, ages=_peak_grid(params))
    theta = _theta(model)
    p = _cell_probabilities(theta, dist, params, b_fer=model.ferritin_low)
    p_aux = _cell_probabilities(theta, aux, params, b_fer=model.ferritin_low)
    out = _figures_from_cells(p, dist, p_aux, aux)
    out["clinically_significant"] = out["prevalence"] * model.clinically_significant_share
    mass = dist.cell_mass()
    band = (dist.ages // 5) * 5
    lows = np.unique(band)
    by_band = [float((mass[band == b] * p[band == b]).sum() / mass[band == b].sum()) for b in lows]
    out["peak_age_band"] = float(lows[int(np.argmax(by_band))])
    out["peak_age"] = _argmax_curve(model, params)
    return out


# --- severity ---------------------------------------------------------------------------


def irls_score_probabilities(params: Parameters) -> np.ndarray:
    """P(IRLS total = s) for s = 0..40 among cases (uniform within each band)."""
    sev = params.severity
    p = np.zeros(41)
    p[1:11] = sev.mild / 10
    p[11:21] = sev.moderate / 10
    p[21:31] = sev.severe * (1 - sev.very_severe_share) / 10
    p[31:41] = sev.severe * sev.very_severe_share / 10
    return p


def clinical_significance_cutoff(params: Parameters, share: float) -> tuple[int, float]:
    """Score s* and tie fraction: a case is clinically significant when IRLS > s*, or
    IRLS == s* with probability ``frac``; then P(significant | case) == share exactly.

    s* is the lowest score with P(score > s*) < share, so 0 < frac <= 1 for any share in (0, 1]
    (P(score > s* - 1) >= share); a share outside (0, 1] is refused.
    """
    if not 0.0 < share <= 1.0:
        raise ParameterError(f"the clinically significant share of cases must lie in (0, 1], got {share!r}")
    p = irls_score_probabilities(params)
    tail = np.cumsum(p[::-1])[::-1]  # P(score >= s)
    above = np.append(tail[1:], 0.0)  # P(score > s)
    s_star = int(np.nonzero(above < share)[0][0])
    # p[s*] > 0 but for rounding in the tail sums when share is 1 (then s* = 0, which no case scores)
    frac = (share - above[s_star]) / p[s_star] if p[s_star] > 0 else 0.0
    return s_star, min(frac, 1.0)


# --- simulation -------------------------------------------------------------------------


def seed_sequence(rng: np.random.Generator | np.random.SeedSequence | int | None) -> np.random.SeedSequence:
    """The root SeedSequence for a cohort (SPEC 7: a Generator, a seed or None)."""
    if isinstance(rng, np.random.SeedSequence):
        return rng
    if isinstance(rng, np.random.Generator):
        return np.random.SeedSequence(rng.integers(0, 2**63, size=4).tolist())
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng >= 0):
        return np.random.SeedSequence(None if rng is None else int(rng))
    raise RLSEpiError(f"seed must be a non-negative integer, got {rng!r}")


def _block_seed(root: np.random.SeedSequence, index: int) -> np.random.SeedSequence:
    # exactly the index-th child that root.spawn() would give, without mutating root
    return np.random.SeedSequence(root.entropy, spawn_key=tuple(root.spawn_key) + (index,),
                                  pool_size=root.pool_size)


@dataclass(frozen=True)
class _Plan:
    """Everything a worker needs to generate any block (picklable)."""

    params: Parameters
    model: OutcomeModel
    n: int
    entropy: Any
    spawn_key: tuple[int, ...]


def arrow_schema(params: Parameters) -> pa.Schema:
    """The Arrow schema of a synthetic cohort (see the column registry in :mod:`rlsepi.schema`)."""
    fields = [
        pa.field("person_id", pa.int64(), nullable=False),
        pa.field("age", pa.int16(), nullable=False),
        pa.field("sex", pa.dictionary(pa.int8(), pa.string()), nullable=False),
        pa.field("pregnant", pa.bool_(), nullable=False),
        pa.field("trimester", pa.int8()),
        pa.field("ferritin", pa.float64(), nullable=False),
    ]
    fields += [pa.field(locus.rsid, pa.int8(), nullable=False) for locus in params.loci]
    fields += [
        pa.field("rls", pa.bool_(), nullable=False),
        pa.field("rls_clinically_significant", pa.bool_(), nullable=False),
        pa.field("irls_score", pa.int8()),
    ]
    return pa.schema(fields)


_SEX_DICTIONARY = pa.array(["female", "male"], type=pa.string())


def _generate_block(plan: _Plan, index: int) -> pa.RecordBatch:
    """People ``index * BLOCK_SIZE`` onwards, from block ``index``'s own stream."""
    params, model = plan.params, plan.model
    start = index * BLOCK_SIZE
    n = min(BLOCK_SIZE, plan.n - start)
    root = np.random.SeedSequence(plan.entropy, spawn_key=plan.spawn_key)
    rng = np.random.default_rng(_block_seed(root, index))

    ages_grid, age_prob = age_distribution(params)
    cum = np.cumsum(age_prob)
    cum[-1] = 1.0
    age = ages_grid[np.searchsorted(cum, rng.random(n), side="right")]
    female = rng.random(n) < params.population.female_share
    p_preg = pregnancy_probability(ages_grid, params)[age - ages_grid[0]]
    pregnant = female & (rng.random(n) < p_preg)
    tri_cum = np.cumsum(trimester_probabilities(params))
    tri_cum[-1] = 1.0
    trimester = np.where(pregnant, np.searchsorted(tri_cum, rng.random(n), side="right") + 1, 0)
    mu, sd = ferritin_log_params(age, female, trimester, params)
    # stored and used as a laboratory reports it: the same bytes on every CPU (exp's last bits differ)
    ferritin = ferritin_as_reported(np.exp(mu + sd * rng.standard_normal(n)))
    genotypes = {locus.rsid: rng.binomial(2, locus.eaf, n).astype(np.int8) for locus in params.loci}

    eta = (
        model.intercept + model.female * female + model.age_effect(age)
        + model.ferritin_low * (ferritin <= model.ferritin_threshold)
        + np.concatenate([[0.0], model.trimester])[trimester]
    )
    for rsid, weight in model.loci:
        eta += weight * genotypes[rsid]
    rls = rng.random(n) < special.expit(eta)

    score_cum = np.cumsum(irls_score_probabilities(params))
    score_cum[-1] = 1.0
    score = np.searchsorted(score_cum, rng.random(n), side="right")
    s_star, frac = clinical_significance_cutoff(params, model.clinically_significant_share)
    significant = rls & ((score > s_star) | ((score == s_star) & (rng.random(n) < frac)))

    columns: list[pa.Array] = [
        pa.array(np.arange(start + 1, start + n + 1, dtype=np.int64)),
        pa.array(age.astype(np.int16)),
        pa.DictionaryArray.from_arrays(pa.array(np.where(female, 0, 1).astype(np.int8)), _SEX_DICTIONARY),
        pa.array(pregnant),
        pa.array(trimester.astype(np.int8), mask=~pregnant),
        pa.array(ferritin),
    ]
    columns += [pa.array(genotypes[locus.rsid]) for locus in params.loci]
    columns += [pa.array(rls), pa.array(significant), pa.array(score.astype(np.int8), mask=~rls)]
    return pa.RecordBatch.from_arrays(columns, schema=arrow_schema(params))


def _check_n(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise RLSEpiError(f"the number of people must be a positive whole number, got {n!r}")
    return int(n)


def iter_blocks(
    n: int,
    *,
    rng: np.random.Generator | np.random.SeedSequence | int | None = None,
    params: Parameters = DEFAULT,
    model: OutcomeModel | None = None,
    workers: int = 1,
    batch_blocks: int | None = None,
) -> Iterator[pa.RecordBatch]:
    """Generate a cohort of ``n`` people block by block, in order.

    Memory holds at most ``batch_blocks`` blocks at a time (default: 2 per worker). The
    blocks are the same whatever ``workers`` and ``batch_blocks`` are.
    """
    n = _check_n(n)
    if workers < 1:
        raise RLSEpiError(f"workers must be at least 1, got {workers}")
    root = seed_sequence(rng)
    model = model or solve_model(params)
    plan = _Plan(params=params, model=model, n=n, entropy=root.entropy, spawn_key=tuple(root.spawn_key))
    n_blocks = -(-n // BLOCK_SIZE)
    batch = batch_blocks or 2 * workers
    if batch < 1:
        raise RLSEpiError(f"batch_blocks must be at least 1, got {batch}")
    if workers == 1 or n_blocks == 1:
        for i in range(n_blocks):
            yield _generate_block(plan, i)
        return
    yield from _blocks_in_workers(plan, n_blocks, workers=min(workers, os.cpu_count() or 1),
                                  ahead=max(batch, workers))


def _blocks_in_workers(plan: _Plan, n_blocks: int, *, workers: int, ahead: int) -> Iterator[pa.RecordBatch]:
    """Blocks in order from worker processes, each with its own pipe (no lock shared between
    processes, so stopping a worker at any moment cannot deadlock the others). Block ``i`` is
    made by worker ``i % workers``; at most ``ahead`` blocks are requested before being read.
    On any exit but the normal end (an error, Ctrl-C, SIGTERM, an abandoned generator) the
    workers are terminated at once."""
    import multiprocessing

    ctx = multiprocessing.get_context()
    procs, conns = [], []
    finished = False
    try:
        for _ in range(workers):
            parent_end, child_end = ctx.Pipe()
            proc = ctx.Process(target=_worker_loop, args=(child_end, plan), daemon=True)
            proc.start()
            child_end.close()
            procs.append(proc)
            conns.append(parent_end)
        sent = 0
        for i in range(n_blocks):
            while sent < n_blocks and sent < i + ahead:
                conns[sent % workers].send(sent)
                sent += 1
            try:
                yield conns[i % workers].recv()
            except EOFError:
                raise RuntimeError(f"simulation worker {i % workers} ended unexpectedly") from None
        for conn in conns:
            conn.send(None)
        finished = True
    finally:
        for proc in procs:
            if not finished and proc.is_alive():
                proc.terminate()
        for proc in procs:
            proc.join(timeout=10)
        for conn in conns:
            conn.close()


def _worker_loop(conn: Any, plan: _Plan) -> None:
    """A simulation worker: make the blocks asked for until told to stop (``None``)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent stops workers with SIGTERM
    try:
        while True:
            index = conn.recv()
            if index is None:
                return
            conn.send(_generate_block(plan, index))
    except (EOFError, BrokenPipeError):  # the parent is gone: stop quietly
        return


def simulate(
    n: int,
    *,
    rng: np.random.Generator | np.random.SeedSequence | int | None = None,
    params: Parameters = DEFAULT,
    workers: int = 1,
) -> pd.DataFrame:
    """Simulate a synthetic cohort in memory.

    Parameters
    ----------
    n : int
        Number of people.
    rng : Generator, SeedSequence, int or None
        Seed of the cohort; the same seed gives the same people as
        :func:`write_cohort` writes to Parquet.
    params : Parameters
        The published figures and targets (see :mod:`rlsepi.parameters`).
    workers : int
        Worker processes (does not change the result).

    Returns
    -------
    DataFrame
        One row per person with the columns of :mod:`rlsepi.schema`; the solved
        :class:`OutcomeModel` is in ``df.attrs["model"]``.

    Examples
    --------
    >>> df = simulate(2000, rng=1)
    >>> df.columns[:6].tolist()
    ['person_id', 'age', 'sex', 'pregnant', 'trimester', 'ferritin']
    >>> bool(df["rls_clinically_significant"].le(df["rls"]).all())
    True
    """
    model = solve_model(params)
    batches = list(iter_blocks(n, rng=rng, params=params, model=model, workers=workers))
    table = pa.Table.from_batches(batches, schema=arrow_schema(params))
    df = table_to_frame(table)
    df.attrs["model"] = model.to_dict()
    return df


def write_cohort(
    path: str | Path,
    n: int,
    *,
    seed: int,
    params: Parameters | None = None,
    command: str | None = None,
    workers: int = 1,
    batch_blocks: int | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Simulate a cohort and stream it to a Parquet file, one row group per block.

    The file's key-value metadata holds the package version, the seed, the full parameter
    set, the solved generating model (as the simulator used it, rounded to
    :data:`MODEL_DIGITS` significant digits), the precision of the stored values and the
    command that regenerates it. Memory stays bounded by ``batch_blocks`` blocks whatever
    ``n`` is. The same seed gives the same bytes on every CPU. For a Parquet dataset written by
    a Dask cluster, see :func:`rlsepi.distributed.write_dataset` (same rows).

    Returns
    -------
    dict
        The metadata written (decoded).
    """
    import json

    import pyarrow.parquet as pq

    params = params or DEFAULT
    model = solve_model(params)
    schema, meta = cohort_schema(n, seed=seed, params=params, model=model, command=command)
    blocks = iter_blocks(n, rng=seed, params=params, model=model, workers=workers, batch_blocks=batch_blocks)
    with atomic_output(path, force=force) as fh:
        with pq.ParquetWriter(fh, schema, **parquet_options(params)) as writer:
            for batch in blocks:
                writer.write_batch(batch, row_group_size=BLOCK_SIZE)
    return {k.decode()[len(METADATA_PREFIX):]: json.loads(v) for k, v in meta.items()}


def cohort_schema(n: int, *, seed: int, params: Parameters, model: OutcomeModel,
                  command: str | None = None) -> tuple[pa.Schema, dict[bytes, bytes]]:
    """The Arrow schema of a written cohort with its provenance metadata (and that metadata)."""
    meta = provenance_metadata(
        seed=seed, n=int(n), parameters=params.to_dict(), model=model.to_dict(),
        command=command or f"rlsepi simulate --n {int(n)} --seed {seed}",
        block_size=BLOCK_SIZE,
        precision={"ferritin_resolution_ug_per_l": FERRITIN_RESOLUTION, "model_significant_digits": MODEL_DIGITS},
    )
    return arrow_schema(params).with_metadata(meta), meta


def parquet_options(params: Parameters) -> dict[str, Any]:
    """Writer options shared by the single file and the dataset (same encodings, same bytes)."""
    # Dictionary-encode only the small-domain columns: on person_id and ferritin (all values
    # distinct) it costs half the write time and makes the file larger.
    small_domain = ["age", "sex", "trimester", "irls_score", *(locus.rsid for locus in params.loci)]
    return {"compression": "zstd", "use_dictionary": small_domain}
