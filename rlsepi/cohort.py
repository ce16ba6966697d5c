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
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy import optimize, special, stats

from rlsepi import __version__
from rlsepi.errors import ParameterError, RLSEpiError
from rlsepi.parameters import DEFAULT, STANDARD_POPULATIONS, Parameters

__all__ = [
    "BLOCK_SIZE",
    "OutcomeModel",
    "CovariateDistribution",
    "covariate_distribution",
    "solve_model",
    "expected_figures",
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
]

BLOCK_SIZE = 65_536
"""People per random stream and per Parquet row group. Part of the reproducibility contract:
changing it changes every cohort."""

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
        """P(ferritin <= threshold | age, sex, state), shape (A, 2, 4)."""
        return stats.norm.cdf((math.log(threshold) - self.fer_mu) / self.fer_sigma)

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


def pregnancy_probability(ages: np.ndarray, params: Parameters) -> np.ndarray:
    """P(pregnant | woman of this age): fertility rate times the length of a pregnancy in years."""
    preg = params.pregnancy
    starts = np.asarray(preg.fertility_band_starts)
    rates = np.asarray(preg.fertility)
    idx = np.searchsorted(starts, ages, side="right") - 1
    in_band = (idx >= 0) & (ages < starts[-1] + 5)
    rate = np.where(in_band, rates[np.clip(idx, 0, len(rates) - 1)], 0.0)
    eligible = (ages >= preg.min_age) & (ages <= preg.max_age)
    return np.where(eligible, rate * preg.gestation_weeks / 52.0, 0.0)


def trimester_probabilities(params: Parameters) -> np.ndarray:
    weeks = np.asarray(params.pregnancy.trimester_weeks, dtype=float)
    return weeks / weeks.sum()


def ferritin_log_params(ages: np.ndarray, female: np.ndarray, state: np.ndarray,
                        params: Parameters) -> tuple[np.ndarray, np.ndarray]:
    """Mean and SD of ln(ferritin) for each person (or grid cell).

    Non-pregnant: the log-median and log-SD interpolated linearly in age between anchor
    ages (held constant outside). Pregnant in trimester k: the log-SD of non-pregnant women
    of that age, and the median that puts the published share of trimester k below the
    iron-deficiency threshold.
    """
    fer = params.ferritin
    ages = np.asarray(ages, dtype=float)
    mu_m = np.interp(ages, fer.male_anchor_ages, np.log(fer.male_median))
    sd_m = np.interp(ages, fer.male_anchor_ages, fer.male_log_sd)
    mu_f = np.interp(ages, fer.female_anchor_ages, np.log(fer.female_median))
    sd_f = np.interp(ages, fer.female_anchor_ages, fer.female_log_sd)
    mu = np.where(female, mu_f, mu_m)
    sd = np.where(female, sd_f, sd_m)
    z_def = stats.norm.ppf(np.asarray(fer.pregnancy_deficiency))  # z of the deficient share
    state = np.asarray(state)
    pregnant = state > 0
    if np.any(pregnant):
        mu_preg = math.log(fer.deficiency_threshold) - sd * z_def[np.clip(state - 1, 0, 2)]
        mu = np.where(pregnant, mu_preg, mu)
    return mu, sd


def genetic_distribution(params: Parameters) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of sum_j ln(OR_j) g_j and their probabilities (HWE, independent loci).

    The exact enumeration of :func:`rlsepi.polygenic.analytic_reference` (equal sums merged).
    """
    from rlsepi.polygenic import analytic_reference

    values = np.array([[0.0, locus.weight, 2 * locus.weight] for locus in params.loci]).reshape(-1, 3)
    ref = analytic_reference(values, np.array([locus.eaf for locus in params.loci]))
    if ref.kind != "analytic-exact":
        raise ParameterError(
            f"{len(params.loci)} loci are too many to enumerate genotype combinations exactly; "
            "the simulator supports scores of up to about 11 loci"
        )
    return ref.values, ref.probs


def covariate_distribution(params: Parameters = DEFAULT) -> CovariateDistribution:
    """The exact covariate distribution implied by ``params``."""
    ages, age_prob = age_distribution(params)
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


def _cell_probabilities(theta: np.ndarray, dist: CovariateDistribution, params: Parameters) -> np.ndarray:
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
    b_fer = math.log(params.ferritin.low_or)
    q = dist.low_ferritin_prob(params.ferritin.low_threshold)
    eg = eta[..., None] + dist.genetic_values  # (A, 2, 4, G)
    p_high = special.expit(eg) @ dist.genetic_prob
    p_low = special.expit(eg + b_fer) @ dist.genetic_prob
    return q * p_low + (1.0 - q) * p_high


def _figures_from_cells(p: np.ndarray, dist: CovariateDistribution, params: Parameters) -> dict[str, float]:
    mass = dist.cell_mass()
    prevalence = float((mass * p).sum())
    by_sex = (mass * p).sum(axis=(0, 2)) / mass.sum(axis=(0, 2))
    odds = by_sex / (1 - by_sex)
    by_age = (mass * p).sum(axis=(1, 2)) / mass.sum(axis=(1, 2))
    peak = params.targets.peak_age.value

    def band(lo: float, hi: float) -> float:
        sel = (dist.ages >= lo) & (dist.ages <= hi)
        return float((mass[sel] * p[sel]).sum() / mass[sel].sum())

    out = {
        "prevalence": prevalence,
        "female_male_or": float(odds[1] / odds[0]),
        "band_below_peak": band(peak - 5, peak - 1),
        "band_from_peak": band(peak, peak + 4),
        "prevalence_at_young_age": float(np.interp(params.age_curve.young_age, dist.ages, by_age)),
        "prevalence_at_peak_age": float(np.interp(peak, dist.ages, by_age)),
    }
    for k in range(1, 4):
        cell = mass[:, 1, k]
        out[f"pregnancy_trimester{k}"] = float((cell * p[:, 1, k]).sum() / cell.sum())
    return out


def _residuals(theta: np.ndarray, dist: CovariateDistribution, params: Parameters) -> np.ndarray:
    f = _figures_from_cells(_cell_probabilities(theta, dist, params), dist, params)
    t = params.targets
    return np.array([
        special.logit(f["prevalence"]) - special.logit(t.prevalence.value),
        math.log(f["female_male_or"]) - math.log(t.female_male_or.value),
        special.logit(f["band_below_peak"]) - special.logit(f["band_from_peak"]),
        math.log(f["prevalence_at_young_age"] / f["prevalence_at_peak_age"])
        - math.log(params.age_curve.young_to_peak_ratio),
        *(special.logit(f[f"pregnancy_trimester{k}"]) - special.logit(t.pregnancy[k - 1].value) for k in (1, 2, 3)),
    ])


def solve_model(params: Parameters = DEFAULT) -> OutcomeModel:
    """Solve the intercept, sex effect, age curve and trimester effects for the targets.

    Notes
    -----
    Seven equations in seven unknowns, on the log-odds scale: the marginal prevalence, the
    crude female:male odds ratio, equal expected prevalence in the 5-year bands either side
    of the target peak age (so the marginal curve peaks there), the prevalence at
    ``age_curve.young_age`` relative to the prevalence at the peak age, and the prevalence
    in each trimester. The sex, age and trimester effects are conditional on ferritin and
    pregnancy, which themselves differ by sex and age, so they are not the marginal
    figures; the solver accounts for that exactly.

    Raises
    ------
    ParameterError
        When the targets cannot be reached together with these parameters.
    """
    dist = covariate_distribution(params)
    t = params.targets
    start = np.array([
        special.logit(t.prevalence.value) + 0.3, math.log(t.female_male_or.value), t.peak_age.value,
        math.log(0.08), 0.5, 1.0, 1.5,
    ])
    sol = optimize.root(_residuals, start, args=(dist, params), method="hybr", options={"xtol": 1e-13})
    resid = _residuals(sol.x, dist, params) if sol.success else None
    if resid is None or np.max(np.abs(resid)) > 1e-9:
        raise ParameterError(
            "the outcome model cannot reach these targets together "
            f"({sol.message.strip()}); check the targets and age_curve parameters for consistency"
        )
    b0, bf, a_c, log_gamma, t1, t2, t3 = (float(x) for x in sol.x)
    return OutcomeModel(
        intercept=b0, female=bf, age_peak=a_c, age_curvature=math.exp(log_gamma), trimester=(t1, t2, t3),
        ferritin_low=math.log(params.ferritin.low_or), ferritin_threshold=params.ferritin.low_threshold,
        loci=tuple((locus.rsid, locus.weight) for locus in params.loci),
        clinically_significant_share=t.clinically_significant.value / t.prevalence.value,
    )


def expected_figures(model: OutcomeModel, params: Parameters = DEFAULT) -> dict[str, float]:
    """The marginal figures that ``model`` implies in expectation (exact sums).

    Keys: ``prevalence``, ``clinically_significant``, ``female_male_or``,
    ``pregnancy_trimester1..3``, ``peak_age_band`` (lower bound of the 5-year band with the
    highest expected prevalence), ``band_below_peak``, ``band_from_peak``,
    ``prevalence_at_young_age``, ``prevalence_at_peak_age``.
    """
    dist = covariate_distribution(params)
    theta = np.array([
        model.intercept, model.female, model.age_peak, math.log(model.age_curvature), *model.trimester,
    ])
    p = _cell_probabilities(theta, dist, params)
    out = _figures_from_cells(p, dist, params)
    out["clinically_significant"] = out["prevalence"] * model.clinically_significant_share
    mass = dist.cell_mass()
    band = (dist.ages // 5) * 5
    lows = np.unique(band)
    by_band = [float((mass[band == b] * p[band == b]).sum() / mass[band == b].sum()) for b in lows]
    out["peak_age_band"] = float(lows[int(np.argmax(by_band))])
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
    IRLS == s* with probability ``frac``; then P(significant | case) == share exactly."""
    p = irls_score_probabilities(params)
    tail = np.cumsum(p[::-1])[::-1]  # P(score >= s)
    above = np.append(tail[1:], 0.0)  # P(score > s)
    s_star = int(np.nonzero(above < share)[0][0])
    frac = (share - above[s_star]) / p[s_star] if p[s_star] > 0 else 0.0
    if not 0.0 <= frac <= 1.0 + 1e-12:
        raise ParameterError("the clinically significant share cannot be reached with these severity bands")
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
    ferritin = np.exp(mu + sd * rng.standard_normal(n))
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
    with ProcessPoolExecutor(max_workers=min(workers, os.cpu_count() or 1)) as pool:
        for lo in range(0, n_blocks, batch):
            idx = range(lo, min(lo + batch, n_blocks))
            yield from pool.map(_generate_block, itertools.repeat(plan, len(idx)), idx)


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
        :func:`rlsepi.io.write_cohort` writes to Parquet.
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


def table_to_frame(table: pa.Table) -> pd.DataFrame:
    """Arrow cohort table to pandas with the registry's dtypes (category sex, nullable trimester)."""
    df = table.to_pandas(types_mapper={pa.int8(): pd.Int8Dtype()}.get)
    for col in df.columns:
        if str(df[col].dtype) == "Int8" and col not in ("trimester", "irls_score"):
            df[col] = df[col].astype(np.int8)
    df["sex"] = df["sex"].astype(pd.CategoricalDtype(["female", "male"]))
    return df
