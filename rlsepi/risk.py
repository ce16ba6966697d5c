"""Logistic risk models and illustrative individual absolute risk.

This module holds the individual risk calculation (:func:`individual_risk`); the nested
logistic models and their metrics live in :mod:`rlsepi.risk_models`, the simulation study
of their properties in :mod:`rlsepi.risk_validate`, and the model representation both use in
:mod:`rlsepi.linear_risk`. Their public names are re-exported here, so
``from rlsepi import risk; risk.fit_nested(df)`` works; none of them imports this module.

Individual risk is the probability of RLS under a logistic model, given what is known about
one person. Anything not given (age, sex, pregnancy, trimester, ferritin, any genotype) is
averaged over the population's covariate distribution (:func:`rlsepi.cohort.covariate_distribution`),
*conditional on what is known*:

.. math::

    P(\\text{RLS} \\mid x_\\text{known}) =
      \\sum_{\\text{cells}} w(\\text{cell} \\mid x_\\text{known})
      \\int \\sum_{s} P(S_u = s)\\,
      \\operatorname{expit}\\big(\\eta(\\text{cell}, f, s)\\big)\\, dF(f \\mid \\text{cell})

where a *cell* is (age, sex, pregnancy state), ``S_u`` the score contribution of the unknown
genotypes (exact, Hardy-Weinberg, independent loci) and ``f`` ferritin (log-normal within a
cell). A known ferritin re-weights the cells by its log-normal density (Bayes' rule), so an
unknown age given a known ferritin is averaged over the ages such a ferritin is typical of.
For a step ferritin effect the integral is an exact sum of normal CDFs; for a log-linear
effect it uses 48-point Gauss-Hermite quadrature (error far below 1e-10 here).

Because the averaging is over the same distribution the generating model was calibrated on,
the individual risks average to the population prevalence (law of total expectation); the
tests check this on a simulated population. Odds are never scaled by a per-SD odds ratio.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

from rlsepi import cohort
from rlsepi.errors import DataValidationError
from rlsepi.linear_risk import LinearRiskModel, generating_risk_model
from rlsepi.parameters import DEFAULT, Locus, Parameters

# the nested models and the simulation study live in their own modules; their public names are
# available from here too (risk.fit_nested, risk.simulation_study, ...). Imports run one way:
# risk -> risk_validate -> risk_models -> linear_risk.
from rlsepi.risk_models import (
    Comparison,
    ModelFit,
    NestedFit,
    NestedLogistic,
    delong,
    fit_nested,
    load_risk_model,
    scoring_file_for,
)
from rlsepi.risk_validate import SimulationStudy, simulation_study

__all__ = [
    "IndividualRisk",
    "LinearRiskModel",
    "individual_risk",
    "generating_risk_model",
    "parse_genotype",
    "input_errors",
    "CAVEATS",
    "Comparison",
    "ModelFit",
    "NestedFit",
    "NestedLogistic",
    "delong",
    "fit_nested",
    "load_risk_model",
    "SimulationStudy",
    "simulation_study",
]

CAVEATS: tuple[str, ...] = (
    "This is an illustration from a statistical model, not a diagnosis: RLS is diagnosed by a "
    "clinician from symptoms.",
    "The genetic effect sizes come from genome-wide studies of people of European ancestry and may "
    "not apply to other ancestries.",
    "The model leaves out many known influences (family history, kidney disease, medications, "
    "other genes), so a real person's risk can differ a lot.",
)
"""Plain-language caveats printed with every individual risk."""

_GH_NODES = 48


@functools.lru_cache(maxsize=8)
def _solved(params: Parameters) -> cohort.OutcomeModel:
    return cohort.solve_model(params)


@functools.lru_cache(maxsize=8)
def _distribution(params: Parameters) -> cohort.CovariateDistribution:
    return cohort.covariate_distribution(params)


# --- inputs ---------------------------------------------------------------------------


def _locus(rsid: str, params: Parameters, score: Mapping[str, float]) -> Locus:
    by_id = {locus.rsid: locus for locus in params.loci}
    if rsid not in score or rsid not in by_id:
        raise DataValidationError(
            f"variant '{rsid}' is not in the score; the score's variants are {', '.join(score)}"
        )
    return by_id[rsid]


def parse_genotype(rsid: str, value: str | int, *, params: Parameters = DEFAULT,
                   score: Mapping[str, float] | None = None) -> int:
    """The count of the effect allele in a genotype given as two alleles (``"GT"``) or a count.

    Parameters
    ----------
    rsid : str
        The variant; must be in the score.
    value : str or int
        Two allele letters in either order (``"GT"``, ``"G/T"``, ``"tg"``) or the effect-allele
        count 0, 1 or 2. Alleles of the other strand (``"CA"`` for a G/T variant) are read by
        their complement, unless the variant is A/T or C/G (then the strand is ambiguous).
    params : Parameters
        Source of each variant's effect and other allele.
    score : mapping, optional
        The score's variants (default: every locus of ``params``).

    Raises
    ------
    DataValidationError
        The variant is not in the score, or the alleles are not that variant's.

    Examples
    --------
    >>> parse_genotype("rs2300478", "GT")
    1
    >>> parse_genotype("rs2300478", "gg")
    2
    >>> parse_genotype("rs2300478", "CC")  # the other strand of GG
    2
    """
    score = score if score is not None else {locus.rsid: locus.weight for locus in params.loci}
    locus = _locus(rsid, params, score)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if value not in (0, 1, 2):
            raise DataValidationError(f"genotype count for {rsid} must be 0, 1 or 2, got {value}")
        return int(value)
    text = str(value).strip().upper().replace("/", "").replace("|", "")
    if text in ("0", "1", "2"):
        return int(text)
    allowed = {locus.effect_allele.upper()}
    if locus.other_allele:
        allowed.add(locus.other_allele.upper())
    expected = f"{locus.effect_allele}/{locus.other_allele}" if locus.other_allele else f"{locus.effect_allele} (effect)"
    if len(text) != 2 or set(text) - set("ACGT"):
        raise DataValidationError(
            f"genotype '{value}' for {rsid} is not two allele letters; give e.g. "
            f"{locus.effect_allele}{locus.other_allele or locus.effect_allele}"
        )
    if locus.other_allele is None:
        # only the effect allele is verified: any other base counts as a non-effect allele
        return sum(a == locus.effect_allele.upper() for a in text)
    if set(text) - allowed:
        flipped = text.translate(_COMPLEMENT)
        palindromic = allowed == set("".join(allowed).translate(_COMPLEMENT))
        if palindromic or set(flipped) - allowed:
            why = " (an A/T or C/G variant cannot be read from the other strand)" if palindromic else ""
            raise DataValidationError(
                f"genotype '{value}' for {rsid} has alleles that are not this variant's; "
                f"its alleles are {expected}{why}"
            )
        text = flipped  # the other strand: unambiguous because the variant is not A/T or C/G
    return sum(a == locus.effect_allele.upper() for a in text)


_COMPLEMENT = str.maketrans("ACGT", "TGCA")


def _check_inputs(age: float | None, sex: str | None, pregnant: bool | None, trimester: int | None,
                  ferritin: float | None, params: Parameters) -> tuple[int | None, int | None, tuple[int, ...]]:
    """Validate; return (age index, sex index, allowed pregnancy states)."""
    pop, preg = params.population, params.pregnancy
    age_i: int | None = None
    if age is not None:
        if not math.isfinite(float(age)) or not pop.min_age <= age <= pop.max_age:
            raise DataValidationError(
                f"age {age:g} is outside the adult range of the model ({pop.min_age}-{pop.max_age} years)"
            )
        age_i = int(math.floor(age))
    sex_i: int | None = None
    if sex is not None:
        s = str(sex).strip().lower()
        if s not in ("female", "male", "f", "m"):
            raise DataValidationError(f"sex must be 'female' or 'male', got '{sex}'")
        sex_i = 1 if s in ("female", "f") else 0
    if trimester is not None:
        if trimester not in (1, 2, 3):
            raise DataValidationError(f"trimester must be 1, 2 or 3, got {trimester}")
        if pregnant is False:
            raise DataValidationError("a trimester was given for someone who is not pregnant")
        pregnant = True
    if pregnant:
        if sex_i == 0:
            raise DataValidationError("pregnancy was given for a man; pregnancy applies to women only")
        if age_i is not None and not preg.min_age <= age_i <= preg.max_age:
            raise DataValidationError(
                f"pregnancy at age {age_i} is outside the model's reproductive ages ({preg.min_age}-{preg.max_age})"
            )
    if ferritin is not None and not (math.isfinite(float(ferritin)) and ferritin > 0):
        raise DataValidationError(f"ferritin must be a positive number in µg/L, got {ferritin:g}")
    cannot_be_pregnant = sex_i == 0 or (age_i is not None and not preg.min_age <= age_i <= preg.max_age)
    if pregnant is None and cannot_be_pregnant:
        pregnant = False  # known from sex or age: nothing to average over
    if pregnant is None:
        states: tuple[int, ...] = (0, 1, 2, 3)
    elif pregnant:
        states = (trimester,) if trimester is not None else (1, 2, 3)
    else:
        states = (0,)
    return age_i, sex_i, states


def input_errors(*, age: float | None = None, sex: str | None = None, pregnant: bool | None = None,
                 trimester: int | None = None, ferritin: float | None = None,
                 genotypes: Mapping[str, str | int] | None = None, model: LinearRiskModel | None = None,
                 params: Parameters = DEFAULT) -> dict[str, str]:
    """Every problem with the inputs of :func:`individual_risk`, one message per field.

    The same rules as :func:`individual_risk` (which stops at the first), checked field by
    field so that a form can show each message beside its field. Keys are ``age``, ``sex``,
    ``trimester`` (not 1-3), ``pregnant`` (pregnancy that does not fit the other inputs),
    ``ferritin`` and ``genotypes.RSID``. Empty when
    :func:`individual_risk` would accept the inputs.

    Examples
    --------
    >>> input_errors(age=10, sex="male", pregnant=True, genotypes={"rs2300478": "GA"})
    ... # doctest: +NORMALIZE_WHITESPACE
    {'age': 'age 10 is outside the adult range of the model (18-99 years)',
     'pregnant': 'pregnancy was given for a man; pregnancy applies to women only',
     'genotypes.rs2300478': "genotype 'GA' for rs2300478 has alleles that are not this variant's; its
     alleles are G/T"}
    """
    errors: dict[str, str] = {}

    def check(key: str, **kw: Any) -> bool:
        args = {"age": None, "sex": None, "pregnant": None, "trimester": None, "ferritin": None} | kw
        try:
            _check_inputs(args["age"], args["sex"], args["pregnant"], args["trimester"], args["ferritin"], params)
        except DataValidationError as exc:
            errors.setdefault(key, str(exc))
            return False
        return True

    age_ok = age is None or check("age", age=age)
    sex_ok = sex is None or check("sex", sex=sex)
    if ferritin is not None:
        check("ferritin", ferritin=ferritin)
    if trimester is not None and not check("trimester", trimester=trimester):
        trimester = None
    if pregnant is not None or trimester is not None:
        check("pregnant", age=age if age_ok else None, sex=sex if sex_ok else None, pregnant=pregnant,
              trimester=trimester)
    weights = dict(model.score_weights) if model is not None else {}
    known_variants = weights or {locus.rsid: locus.weight for locus in params.loci}
    for rsid, value in (genotypes or {}).items():
        try:
            parse_genotype(rsid, value, params=params, score=known_variants)
        except DataValidationError as exc:
            errors[f"genotypes.{rsid}"] = str(exc)
    return errors


# --- the averaging engine -------------------------------------------------------------


def _score_distribution(rsids: list[str], weights: Mapping[str, float],
                        params: Parameters) -> tuple[np.ndarray, np.ndarray]:
    """Exact distribution of sum_j w_j g_j over ``rsids`` (HWE, independent loci)."""
    return _score_distribution_cached(tuple((r, float(weights[r])) for r in rsids), params)


@functools.lru_cache(maxsize=256)
def _score_distribution_cached(items: tuple[tuple[str, float], ...],
                               params: Parameters) -> tuple[np.ndarray, np.ndarray]:
    rsids = [r for r, _ in items]
    weights = dict(items)
    by_id = {locus.rsid: locus for locus in params.loci}
    subset = []
    for rsid in rsids:
        if rsid not in by_id:
            raise DataValidationError(f"variant '{rsid}' of the score has no allele frequency in the parameters")
        subset.append(dataclasses.replace(by_id[rsid], odds_ratio=math.exp(weights[rsid])))
    return cohort.genetic_distribution(dataclasses.replace(params, loci=tuple(subset)))


def _average(lm: LinearRiskModel, dist: cohort.CovariateDistribution, params: Parameters, *,
             age_i: int | None, sex_i: int | None, states: tuple[int, ...], ferritin: float | None,
             score_known: float, unknown_loci: list[str]) -> float:
    """P(RLS | what is known), exact over the covariate grid."""
    mass = dist.cell_mass().copy()  # (A, 2, 4)
    keep = np.zeros_like(mass, dtype=bool)
    a_sel = slice(None) if age_i is None else (dist.ages == age_i)
    s_sel = slice(None) if sex_i is None else sex_i
    sub = np.zeros(mass.shape, dtype=bool)
    sub[a_sel, s_sel, :] = True
    keep[:, :, list(states)] = True
    keep &= sub
    mass = np.where(keep, mass, 0.0)
    ages = dist.ages[:, None, None].astype(float)
    female = np.array([0.0, 1.0])[None, :, None]
    state = np.arange(4)[None, None, :]
    base = np.broadcast_to(lm.base(ages, female, state), mass.shape)

    if ferritin is not None:
        logf = math.log(ferritin)
        mass = mass * stats.norm.pdf(logf, dist.fer_mu, dist.fer_sigma)
        fer_w = np.ones(mass.shape + (1,))
        fer_eff = np.broadcast_to(np.asarray(lm.ferritin_effect(np.array([ferritin])), dtype=float),
                                  mass.shape + (1,))
    elif lm.ferritin_breaks is not None:
        edges = np.log(np.asarray(lm.ferritin_breaks, dtype=float))
        cdf = stats.norm.cdf((edges[None, None, None, :] - dist.fer_mu[..., None]) / dist.fer_sigma[..., None])
        cdf = np.concatenate([np.zeros(mass.shape + (1,)), cdf, np.ones(mass.shape + (1,))], axis=-1)
        fer_w = np.diff(cdf, axis=-1)
        bounds = np.concatenate([[0.0], np.asarray(lm.ferritin_breaks, float), [np.inf]])
        # one interior point per bin (the effect is constant inside a bin)
        inner = np.where(np.isinf(bounds[1:]), bounds[:-1] * 2 + 1, (bounds[:-1] + bounds[1:]) / 2)
        fer_eff = np.broadcast_to(np.asarray(lm.ferritin_effect(inner), dtype=float), fer_w.shape)
    else:
        x, w = np.polynomial.hermite.hermgauss(_GH_NODES)
        logf = dist.fer_mu[..., None] + math.sqrt(2.0) * dist.fer_sigma[..., None] * x
        fer_w = np.broadcast_to(w / math.sqrt(math.pi), logf.shape)
        fer_eff = np.asarray(lm.ferritin_effect(np.exp(logf)), dtype=float)

    total = mass.sum()
    if not total > 0:
        raise DataValidationError("nobody in the model population matches these inputs")
    if unknown_loci:
        g_val, g_prob = _score_distribution(unknown_loci, lm.score_weights, params)
    else:
        g_val, g_prob = np.zeros(1), np.ones(1)
    eta0 = lm.score_const + lm.score_coef * (score_known + g_val)  # (G,)
    cells = mass > 0
    eta = (base[cells][:, None, None] + fer_eff[cells][:, :, None] + eta0[None, None, :])
    p = special.expit(eta) @ g_prob  # (cells, nodes)
    return float(np.sum(mass[cells] * np.sum(fer_w[cells] * p, axis=1)) / total)


# --- result ---------------------------------------------------------------------------


@dataclass(frozen=True)
class IndividualRisk:
    """An illustrative absolute risk of RLS for one person.

    Attributes
    ----------
    probability : float
        P(RLS) given the inputs (unknown inputs averaged over the population).
    average_probability : float
        P(RLS) for people of the same age and sex (everything else averaged).
    relative_risk : float
        ``probability / average_probability``.
    per_100, average_per_100 : int
        The two probabilities as "N out of 100 people", rounded.
    prs : float or None
        The person's score ``sum_j w_j g_j`` (ln-OR weights), when every genotype is known.
    prs_z : float or None
        The score in SDs from the population mean (Hardy-Weinberg expectation).
    prs_percentile : float or None
        Percentage of the population with a lower score (ties counted half).
    inputs : dict
        The inputs as understood (genotypes as effect-allele counts).
    averaged_over : tuple of str
        The inputs that were unknown and were averaged over.
    ignored : tuple of str
        Inputs given but not used by the model.
    model : str
        Which model gave the numbers.
    caveats : tuple of str
    probability_lower, probability_upper : float or None
        For a fitted model with its covariance matrix: the 95% interval of ``probability``
        from the uncertainty of the coefficients (delta method on the log-odds scale);
        ``None`` for the generating model, whose coefficients are known.
    """

    probability: float
    average_probability: float
    relative_risk: float
    per_100: int
    average_per_100: int
    prs: float | None
    prs_z: float | None
    prs_percentile: float | None
    inputs: dict[str, Any]
    averaged_over: tuple[str, ...]
    ignored: tuple[str, ...]
    model: str
    caveats: tuple[str, ...] = field(default=CAVEATS)
    probability_lower: float | None = None
    probability_upper: float | None = None

    @property
    def statement(self) -> str:
        """The "N out of 100 people like this" sentence."""
        def count(k: int) -> str:
            return "fewer than 1" if k == 0 else f"about {k}"

        return (f"{count(self.per_100).capitalize()} out of 100 people like this would have RLS, compared with "
                f"{count(self.average_per_100)} out of 100 {self._peers()}.")

    def _peers(self) -> str:
        age, sex = self.inputs.get("age"), self.inputs.get("sex")
        who = {"female": "women", "male": "men", None: "adults"}[sex]
        return f"{who} aged {age:g}" if age is not None else f"{who} of all adult ages"

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready."""
        d = dataclasses.asdict(self)
        d["averaged_over"] = list(self.averaged_over)
        d["ignored"] = list(self.ignored)
        d["caveats"] = list(self.caveats)
        d["statement"] = self.statement
        return d

    def to_frame(self) -> pd.DataFrame:
        """One row per quantity (``quantity``, ``value``)."""
        keys = ("probability", "average_probability", "relative_risk", "per_100", "average_per_100",
                "prs", "prs_z", "prs_percentile")
        return pd.DataFrame({"quantity": keys, "value": [getattr(self, k) for k in keys]})

    def summary(self) -> str:
        """Plain-language text for a genetic counsellor."""
        lines = [
            f"Illustrative risk of restless legs syndrome ({self.model})",
            f"  this person:          {100 * self.probability:.1f}%",
            f"  {self._peers() + ':':<22}{100 * self.average_probability:.1f}%",
            f"  relative risk:        {self.relative_risk:.2f} times the average",
        ]
        if self.probability_lower is not None and self.probability_upper is not None:
            lines.insert(2, f"  95% interval:         {100 * self.probability_lower:.1f}% to "
                            f"{100 * self.probability_upper:.1f}% (uncertainty of the fitted coefficients)")
        if self.prs is not None:
            lines.append(f"  polygenic score:      {self.prs:.3f} (z = {self.prs_z:+.2f}, "
                         f"percentile {self.prs_percentile:.1f})")
        else:
            lines.append("  polygenic score:      not computed (not every genotype was given)")
        lines += ["", self.statement]
        if self.averaged_over:
            lines.append("Not given, so averaged over the population (given what was known): "
                         + ", ".join(self.averaged_over) + ".")
        if self.ignored:
            lines.append("Given but not part of this model: " + ", ".join(self.ignored) + ".")
        lines += ["", "Please note:"] + [f"  - {c}" for c in self.caveats]
        return "\n".join(lines)


# --- the calculation ------------------------------------------------------------------


def individual_risk(
    *,
    age: float | None = None,
    sex: str | None = None,
    pregnant: bool | None = None,
    trimester: int | None = None,
    ferritin: float | None = None,
    genotypes: Mapping[str, str | int] | None = None,
    model: LinearRiskModel | cohort.OutcomeModel | None = None,
    params: Parameters = DEFAULT,
) -> IndividualRisk:
    """Illustrative absolute risk of RLS for one person; unknown inputs are averaged over.

    Parameters
    ----------
    age : float, optional
        Age in completed years, within the population's adult range.
    sex : {'female', 'male'}, optional
    pregnant : bool, optional
        ``None`` when unknown. A trimester implies pregnancy.
    trimester : {1, 2, 3}, optional
    ferritin : float, optional
        Serum ferritin in µg/L (> 0).
    genotypes : mapping, optional
        rsID to genotype (two alleles like ``"GT"``, or the effect-allele count).
    model : LinearRiskModel or OutcomeModel, optional
        Default: the calibrated generating model of ``params``. A model fitted with
        :func:`rlsepi.risk_models.fit_nested` is loaded with
        :func:`rlsepi.risk_models.load_risk_model`.
    params : Parameters
        The population whose covariate distribution fills in unknown inputs, and the
        source of allele frequencies and alleles.

    Returns
    -------
    IndividualRisk

    Raises
    ------
    DataValidationError
        Age outside the adult range, pregnancy for a man or outside reproductive ages,
        ferritin <= 0, a variant not in the score, alleles not the variant's.

    Notes
    -----
    See the module docstring for the averaging formula. The PRS percentile is the mid-rank
    percentile of the person's score in the exact Hardy-Weinberg distribution of the score.

    Examples
    --------
    >>> r = individual_risk(age=34, sex="female", pregnant=True, trimester=3, ferritin=20)
    >>> 0 < r.probability < 1
    True
    >>> r.averaged_over
    ('genotypes',)
    """
    if model is None:
        lm = generating_risk_model(_solved(params))
    elif isinstance(model, cohort.OutcomeModel):
        lm = generating_risk_model(model)
    else:
        lm = model
    age_i, sex_i, states = _check_inputs(age, sex, pregnant, trimester, ferritin, params)
    weights = dict(lm.score_weights)
    counts: dict[str, int] = {}
    known_variants = weights or {locus.rsid: locus.weight for locus in params.loci}
    for rsid, value in (genotypes or {}).items():
        counts[rsid] = parse_genotype(rsid, value, params=params, score=known_variants)
    dist = _distribution(params)
    unknown = [r for r in weights if r not in counts]
    score_known = float(sum(weights[r] * c for r, c in counts.items() if r in weights))

    p = _average(lm, dist, params, age_i=age_i, sex_i=sex_i, states=states, ferritin=ferritin,
                 score_known=score_known, unknown_loci=unknown)
    interval = _delta_interval(lm, p, lambda m: _average(m, dist, params, age_i=age_i, sex_i=sex_i, states=states,
                                                         ferritin=ferritin, score_known=score_known,
                                                         unknown_loci=unknown))
    p_avg = _average(lm, dist, params, age_i=age_i, sex_i=sex_i, states=(0, 1, 2, 3), ferritin=None,
                     score_known=0.0, unknown_loci=list(weights))

    prs = prs_z = prs_pct = None
    if weights and not unknown:
        prs, prs_z, prs_pct = _score_position({r: counts[r] for r in weights}, params)

    explicit_preg = trimester is not None or pregnant is not None
    given_preg = explicit_preg or states == (0,)  # a man, or a woman outside reproductive ages
    averaged = []
    if age is None:
        averaged.append("age")
    if sex is None:
        averaged.append("sex")
    if not given_preg:
        averaged.append("pregnancy")
    elif pregnant and trimester is None:
        averaged.append("trimester")
    if ferritin is None:
        averaged.append("ferritin")
    if unknown:
        averaged.append("genotypes" if len(unknown) == len(weights) else "genotypes of " + ", ".join(unknown))
    averaged_used = tuple(a for a in averaged if _uses(lm, a))
    ignored = []
    if explicit_preg and "pregnancy" not in lm.uses:
        ignored.append("pregnancy")
    if ferritin is not None and "ferritin" not in lm.uses:
        ignored.append("ferritin")
    if counts and "genotypes" not in lm.uses:
        ignored.append("genotypes")

    inputs = {
        "age": None if age is None else float(age),
        "sex": None if sex_i is None else ("female" if sex_i == 1 else "male"),
        "pregnant": True if trimester is not None else (False if states == (0,) else pregnant),
        "trimester": trimester,
        "ferritin": None if ferritin is None else float(ferritin),
        "genotypes": counts,
    }
    caveats = CAVEATS
    if lm.name != "generating model":
        caveats = CAVEATS + (
            "Unknown inputs and the average for the same age and sex come from the covariate distribution of "
            "rlsepi's synthetic population, not from the cohort the model was fitted on.",
        )
    return IndividualRisk(
        caveats=caveats,
        probability=p, average_probability=p_avg, relative_risk=p / p_avg,
        per_100=int(round(100 * p)), average_per_100=int(round(100 * p_avg)),
        prs=prs, prs_z=prs_z, prs_percentile=prs_pct, inputs=inputs,
        averaged_over=averaged_used, ignored=tuple(ignored), model=lm.name,
        probability_lower=None if interval is None else interval[0],
        probability_upper=None if interval is None else interval[1],
    )


def _delta_interval(lm: LinearRiskModel, p: float,
                    average: Callable[[LinearRiskModel], float]) -> tuple[float, float] | None:
    """95% interval of ``p`` from the covariance of a fitted model's coefficients.

    Delta method on the log-odds scale: ``se = sqrt(g' V g)`` with ``g`` the gradient of
    ``logit(p)`` in the coefficients (central differences; ``p`` is smooth in them), and the
    interval ``expit(logit(p) -/+ 1.96 se)``. For a person whose every input is known,
    ``logit(p)`` is the linear predictor and this is R's ``predict(se.fit = TRUE)`` interval.
    """
    if lm.covariance is None or lm.with_coefficients is None or not lm.coefficients:
        return None
    beta = np.asarray(lm.coefficients, dtype=float)
    cov = np.asarray(lm.covariance, dtype=float)
    grad = np.zeros(len(beta))
    for j in range(len(beta)):
        h = 1e-4 * max(1.0, math.sqrt(max(cov[j, j], 0.0)))
        up, down = beta.copy(), beta.copy()
        up[j] += h
        down[j] -= h
        grad[j] = (special.logit(average(lm.with_coefficients(up)))
                   - special.logit(average(lm.with_coefficients(down)))) / (2 * h)
    var = float(grad @ cov @ grad)
    if not (math.isfinite(var) and var >= 0):
        return None
    z = float(stats.norm.ppf(0.975))
    eta = float(special.logit(p))
    return float(special.expit(eta - z * math.sqrt(var))), float(special.expit(eta + z * math.sqrt(var)))


def _uses(lm: LinearRiskModel, averaged: str) -> bool:
    key = "pregnancy" if averaged == "trimester" else averaged.split(" ")[0]
    # age and sex also shape the distribution of the other inputs, so they always matter
    return key in ("age", "sex") or key in lm.uses


def _score_position(counts: Mapping[str, int], params: Parameters) -> tuple[float, float, float]:
    """(SUM, z, percentile) of a complete genotype from :func:`rlsepi.polygenic.score_cohort`
    (analytic Hardy-Weinberg reference, mid-distribution percentile)."""
    return _score_position_cached(tuple(sorted(counts.items())), params)


@functools.lru_cache(maxsize=1024)
def _score_position_cached(counts: tuple[tuple[str, int], ...], params: Parameters) -> tuple[float, float, float]:
    from rlsepi import polygenic

    row = pd.DataFrame({rs: pd.array([c], dtype="int8") for rs, c in counts})
    s = polygenic.score_cohort(row, scoring_file_for(params), imputation="none").iloc[0]
    return float(s["SUM"]), float(s["z"]), float(s["percentile"])
