"""The one representation of a logistic risk model that individual risk works with.

:class:`LinearRiskModel` writes a model as functions of the covariates individual risk needs.
Both the calibrated generating model (:func:`generating_risk_model`, here) and a model fitted
by :func:`rlsepi.risk_models.fit_nested` (:func:`rlsepi.risk_models.load_risk_model`) become
one, and :func:`rlsepi.risk.individual_risk` averages over it. Living in its own module, it
lets imports run one way: ``risk_models`` and ``risk`` import it; it imports neither.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from rlsepi import cohort

__all__ = ["LinearRiskModel", "generating_risk_model"]


@dataclass(frozen=True)
class LinearRiskModel:
    """A logistic model written as functions of the covariates individual risk needs.

    ``eta = base(age, female, state) + ferritin_effect(ferritin) + score_coef * S + score_const``
    where ``state`` is 0 (not pregnant) or the trimester and ``S = sum_j w_j g_j`` is the
    weighted count of effect alleles over ``score_weights``.

    Attributes
    ----------
    name : str
        Shown in the output (``"generating model"``, ``"M3"``, ...).
    base : callable
        ``base(age, female, state) -> ndarray`` (broadcasting arrays).
    ferritin_effect : callable
        Log-odds contribution of ferritin in µg/L (array in, array out).
    ferritin_breaks : tuple of float or None
        Break points when the ferritin effect is a step function (integrated exactly);
        ``None`` for a smooth effect (Gauss-Hermite quadrature).
    score_weights : mapping of rsID to weight
        Weight per effect allele.
    score_coef, score_const : float
        The score enters as ``score_coef * S + score_const``.
    uses : frozenset of str
        The inputs that change the risk (``age``, ``sex``, ``pregnancy``, ``ferritin``,
        ``genotypes``); other inputs are accepted and checked but do not matter.
    coefficients : tuple of float
        For a fitted model: its coefficients (empty for the generating model, which is known).
    covariance : ndarray or None
        For a fitted model: the covariance matrix of ``coefficients``.
    with_coefficients : callable or None
        For a fitted model: the same model with other coefficients (for the delta method).
    """

    name: str
    base: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    ferritin_effect: Callable[[np.ndarray], np.ndarray]
    ferritin_breaks: tuple[float, ...] | None
    score_weights: Mapping[str, float]
    score_coef: float
    score_const: float
    uses: frozenset[str] = frozenset({"age", "sex", "pregnancy", "ferritin", "genotypes"})
    coefficients: tuple[float, ...] = ()
    covariance: np.ndarray | None = field(default=None, compare=False, repr=False)
    with_coefficients: Callable[[Sequence[float]], LinearRiskModel] | None = field(default=None, compare=False,
                                                                                   repr=False)


def generating_risk_model(model: cohort.OutcomeModel) -> LinearRiskModel:
    """The calibrated generating model of the synthetic cohort as a :class:`LinearRiskModel`."""
    states = np.concatenate([[0.0], model.trimester])

    def base(age: np.ndarray, female: np.ndarray, state: np.ndarray) -> np.ndarray:
        return model.intercept + model.female * female + model.age_effect(age) + states[state]

    def fer(f: np.ndarray) -> np.ndarray:
        return model.ferritin_low * (np.asarray(f) <= model.ferritin_threshold)

    return LinearRiskModel(
        name="generating model", base=base, ferritin_effect=fer,
        # the cohort stores ferritin to whole µg/L: "reported <= 50" is "unrounded < 50.5"
        ferritin_breaks=(cohort.reported_ferritin_cut(model.ferritin_threshold),),
        score_weights=dict(model.loci), score_coef=1.0, score_const=0.0,
    )
