"""Nested logistic risk models for RLS and their metrics.

The four nested models (all on the same complete-case rows):

======  ==============================================================================
M0      age (quadratic or restricted cubic spline) + sex
M1      M0 + polygenic score per SD
M2      M1 + ferritin (``log2``: per halving; or ``cut``: <50, 50-75, >75 µg/L)
M3      M2 + pregnancy by trimester (reference: not pregnant)
======  ==============================================================================

plus, optionally, one model from a user formula over the same derived columns. For each model:
odds ratios with 95% Wald CIs (profile-likelihood on request) and p-values; the AUC with its
DeLong CI; the Brier score; and, from seeded stratified k-fold cross-validation, the AUC,
Brier score and calibration intercept and slope of out-of-fold predictions (apparent
calibration of a maximum-likelihood logistic model is 0 and 1 by construction, so it is not
reported). Between consecutive models: the likelihood-ratio test and the AUC difference with
DeLong's test for correlated ROC curves.

Derived columns (defined in :data:`DEFINITIONS`): ``female``; ``age10 = (age - 50) / 10``;
``age10_sq = age10**2``; ``age_rcs1``, ``age_rcs2`` (restricted cubic spline, Harrell's
parameterisation, knots at the 5th, 35th, 65th and 95th centiles of age); ``prs_sd`` (the
polygenic score standardised by the analysis rows' mean and SD); ``ferritin_halving =
-log2(ferritin)``; ``ferritin_lt50``, ``ferritin_50_75``; ``trimester1..3``.

Known answers: coefficients, SEs, AUCs and DeLong CIs are compared with R's ``glm`` and
``pROC`` in ``tests/reference/risk/``.

References
----------
DeLong ER, DeLong DM, Clarke-Pearson DL (1988). Comparing the areas under two or more
correlated receiver operating characteristic curves. Biometrics 44:837-845.
Sun X, Xu W (2014). Fast implementation of DeLong's algorithm. IEEE Signal Process Lett 21:1389.
Van Calster B et al. (2019). Calibration: the Achilles heel of predictive analytics. BMC Med 17:230.
Harrell FE (2015). Regression Modeling Strategies, 2nd ed., section 2.4.5 (restricted cubic splines).
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from rlsepi.errors import DataValidationError, InestimableTermWarning, SmallCellWarning
from rlsepi.linear_risk import LinearRiskModel
from rlsepi.schema import inestimable_terms
from rlsepi.parameters import DEFAULT, Parameters

__all__ = [
    "RiskModelWarning",
    "SeparationWarning",
    "NonConvergenceWarning",
    "FewEventsWarning",
    "ModelSpec",
    "ModelFit",
    "Comparison",
    "NestedFit",
    "NestedLogistic",
    "fit_nested",
    "derive_columns",
    "delong",
    "delong_difference",
    "hanley_mcneil_se",
    "load_risk_model",
    "scoring_file_for",
    "score_weights",
    "strict_json",
    "DEFINITIONS",
    "AGE_CENTRE",
    "MIN_EVENTS_PER_PARAMETER",
]

AGE_CENTRE = 50.0
"""Centre of the age terms (years): ``age10 = (age - AGE_CENTRE) / 10``."""

SPLINE_CENTILES = (5.0, 35.0, 65.0, 95.0)
"""Knot centiles of the restricted cubic spline in age (Harrell's default for 4 knots)."""

MIN_EVENTS_PER_PARAMETER = 10.0
"""Fewer events (or non-events) per estimated coefficient than this triggers a warning
(the rule of thumb of Peduzzi P et al. 1996, J Clin Epidemiol 49:1373)."""

FERRITIN_CUTS = DEFAULT.ferritin.clinical_cuts
"""Clinical cut-points (µg/L): <50, 50-75, >75 (reference); cited in :mod:`rlsepi.parameters`."""

DEFINITIONS: dict[str, str] = {
    "female": "1 for women, 0 for men",
    "age10": f"(age - {AGE_CENTRE:g}) / 10",
    "age10_sq": "age10 ** 2",
    "age_rcs1": "restricted cubic spline term 1 in age (years), Harrell's form, knots t1..t4: "
                "[(age-t1)+^3 - (age-t3)+^3 (t4-t1)/(t4-t3) + (age-t4)+^3 (t3-t1)/(t4-t3)] / (t4-t1)^2",
    "age_rcs2": "as age_rcs1 with t2 in place of t1",
    "prs_sd": "(PRS - mean) / SD over the analysis rows; PRS = sum of ln(OR) x effect-allele count",
    "ferritin_halving": "-log2(ferritin): its odds ratio is per halving of ferritin",
    "ferritin_lt50": "1 if ferritin < 50 µg/L (reference > 75)",
    "ferritin_50_75": "1 if 50 <= ferritin <= 75 µg/L (reference > 75)",
    "trimester1": "1 if pregnant in trimester 1 (reference: not pregnant)",
    "trimester2": "1 if pregnant in trimester 2",
    "trimester3": "1 if pregnant in trimester 3",
}


class RiskModelWarning(UserWarning):
    """Base class of the warnings a model fit raises (also recorded in the result)."""


class SeparationWarning(RiskModelWarning):
    """Complete or quasi-complete separation: some odds ratio is not estimable (infinite)."""


class NonConvergenceWarning(RiskModelWarning):
    """The fit did not converge."""


class FewEventsWarning(RiskModelWarning, SmallCellWarning):
    """Too few events per estimated coefficient for stable estimates."""


# --- the design ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSpec:
    """How a model's columns are built from a cohort: enough to rebuild them for one person.

    Attributes
    ----------
    age : {'quadratic', 'spline'}
    age_knots : tuple of float
        Spline knots in years (empty for quadratic).
    ferritin : {'log2', 'cut'} or None
        Ferritin coding, ``None`` when the model has no ferritin.
    prs_mean, prs_sd : float or None
        Standardisation of the score, ``None`` when the model has no PRS.
    score_weights : mapping of rsID to ln(OR) per effect allele
    pregnancy : bool
        Whether the model has trimester terms.
    """

    age: str = "quadratic"
    age_knots: tuple[float, ...] = ()
    ferritin: str | None = None
    prs_mean: float | None = None
    prs_sd: float | None = None
    score_weights: Mapping[str, float] = field(default_factory=dict)
    pregnancy: bool = False

    def age_columns(self) -> list[str]:
        return ["age10", "age10_sq"] if self.age == "quadratic" else ["age10", "age_rcs1", "age_rcs2"]

    def columns(self) -> list[str]:
        cols = ["female", *self.age_columns()]
        if self.prs_sd is not None:
            cols.append("prs_sd")
        if self.ferritin == "log2":
            cols.append("ferritin_halving")
        elif self.ferritin == "cut":
            cols += ["ferritin_lt50", "ferritin_50_75"]
        if self.pregnancy:
            cols += ["trimester1", "trimester2", "trimester3"]
        return cols

    def formula(self) -> str:
        return "rls ~ " + " + ".join(self.columns())

    def to_dict(self) -> dict[str, Any]:
        return {
            "age": self.age, "age_centre": AGE_CENTRE, "age_knots": list(self.age_knots),
            "ferritin": self.ferritin, "ferritin_cuts": list(FERRITIN_CUTS) if self.ferritin == "cut" else None,
            "prs_mean": self.prs_mean, "prs_sd": self.prs_sd, "score_weights": dict(self.score_weights),
            "pregnancy": self.pregnancy,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelSpec:
        if float(d.get("age_centre", AGE_CENTRE)) != AGE_CENTRE:
            raise DataValidationError("the model file centres age differently from this version of rlsepi")
        return cls(age=d["age"], age_knots=tuple(d.get("age_knots") or ()), ferritin=d.get("ferritin"),
                   prs_mean=d.get("prs_mean"), prs_sd=d.get("prs_sd"),
                   score_weights=dict(d.get("score_weights") or {}), pregnancy=bool(d.get("pregnancy")))


def _rcs(age: np.ndarray, knots: Sequence[float]) -> np.ndarray:
    """Harrell's restricted cubic spline terms (k - 2 of them) in ``age``."""
    t = np.asarray(knots, dtype=float)
    k = t.size
    x = np.asarray(age, dtype=float)
    norm = (t[-1] - t[0]) ** 2
    cols = []
    for j in range(k - 2):
        term = (np.maximum(x - t[j], 0) ** 3
                - np.maximum(x - t[k - 2], 0) ** 3 * (t[k - 1] - t[j]) / (t[k - 1] - t[k - 2])
                + np.maximum(x - t[k - 1], 0) ** 3 * (t[k - 2] - t[j]) / (t[k - 1] - t[k - 2]))
        cols.append(term / norm)
    return np.column_stack(cols)


def age_terms(age: np.ndarray, spec: ModelSpec) -> dict[str, np.ndarray]:
    """The age columns of ``spec`` for an array of ages."""
    age = np.asarray(age, dtype=float)
    a10 = (age - AGE_CENTRE) / 10.0
    if spec.age == "quadratic":
        return {"age10": a10, "age10_sq": a10**2}
    r = _rcs(age, spec.age_knots)
    return {"age10": a10, "age_rcs1": r[:, 0], "age_rcs2": r[:, 1]}


def ferritin_terms(ferritin: np.ndarray, coding: str | None) -> dict[str, np.ndarray]:
    """The ferritin columns for an array of ferritin values (µg/L)."""
    f = np.asarray(ferritin, dtype=float)
    if coding == "log2":
        return {"ferritin_halving": -np.log2(f)}
    if coding == "cut":
        lo, hi = FERRITIN_CUTS
        return {"ferritin_lt50": (f < lo).astype(float), "ferritin_50_75": ((f >= lo) & (f <= hi)).astype(float)}
    return {}


def scoring_file_for(params: Parameters) -> Any:
    """The :mod:`rlsepi.polygenic` scoring file of ``params``' loci (the bundled default when
    they are the default loci)."""
    from rlsepi import polygenic
    from rlsepi.parameters import DEFAULT_LOCI

    if tuple(params.loci) == DEFAULT_LOCI:
        return polygenic.default_score()
    return _custom_score(tuple(params.loci))


@functools.lru_cache(maxsize=4)
def _custom_score(loci: tuple[Any, ...]) -> Any:
    import tempfile

    from rlsepi import polygenic

    with tempfile.TemporaryDirectory() as d:
        path = polygenic.write_scoring_file(Path(d) / "score.txt", loci, name="rlsepi_parameters")
        return polygenic.read_scoring_file(path)


def score_weights(params: Parameters) -> dict[str, float]:
    """rsID to weight (ln OR per effect allele) of the scoring file of ``params``."""
    score = scoring_file_for(params)
    v = score.variants
    return dict(zip(v["rsID"], v[score.weight_names[0]].astype(float)))


def _score_sum(df: pd.DataFrame, params: Parameters) -> np.ndarray:
    """PRS SUM per row from :func:`rlsepi.polygenic.score_cohort`, of complete rows (the caller's
    :func:`rlsepi.schema.harmonise` has dropped, and counted, the rows missing a genotype)."""
    from rlsepi import polygenic

    weights = score_weights(params)
    missing = [rs for rs in weights if rs not in df.columns]
    if missing:
        raise DataValidationError(
            f"the cohort has no genotype column for {', '.join(missing)}; the score needs every variant"
        )
    genos = df[[c for c in df.columns if c == "person_id" or c in weights]]
    return polygenic.score_cohort(genos, scoring_file_for(params), imputation="none")["SUM"].to_numpy(dtype=float)


def derive_columns(df: pd.DataFrame, *, ferritin: str = "log2", age: str = "quadratic",
                   params: Parameters = DEFAULT) -> tuple[pd.DataFrame, ModelSpec, dict[str, int]]:
    """The analysis frame: outcome, every derived column, complete cases only.

    Parameters
    ----------
    df : DataFrame
        A cohort with ``rls``, ``age``, ``sex``, ``pregnant``, ``trimester``, ``ferritin`` and the
        score's genotype columns.
    ferritin : {'log2', 'cut'}
    age : {'quadratic', 'spline'}
    params : Parameters
        Source of the score weights (ln OR per effect allele of each locus).

    Returns
    -------
    frame : DataFrame
        ``rls`` (0/1) and the derived columns of :data:`DEFINITIONS`, complete cases.
    spec : ModelSpec
        The full (M3) spec; PRS standardisation and spline knots from the analysis rows.
    dropped : dict
        Rows dropped, by reason.
    """
    if ferritin not in ("log2", "cut"):
        raise DataValidationError(f"ferritin coding must be 'log2' or 'cut', got '{ferritin}'")
    if age not in ("quadratic", "spline"):
        raise DataValidationError(f"age coding must be 'quadratic' or 'spline', got '{age}'")
    from rlsepi.schema import harmonise

    weights = score_weights(params)
    if "trimester" not in df.columns:
        raise DataValidationError("column 'trimester' is missing; the risk models need it (empty when not pregnant)")
    df, report = harmonise(df, require=("rls", "age", "sex", "pregnant", "ferritin", *weights))
    out = pd.DataFrame(index=df.index)
    out["rls"] = df["rls"].astype(float)
    out["female"] = (df["sex"].astype(str) == "female").astype(float)
    out["age"] = pd.to_numeric(df["age"]).to_numpy(dtype=float)
    preg = df["pregnant"].astype(bool).to_numpy()
    tri = pd.to_numeric(df["trimester"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    state = np.where(preg, tri, 0.0)
    for k in (1, 2, 3):
        out[f"trimester{k}"] = np.where(np.isnan(state), np.nan, (state == k).astype(float))
    out["ferritin"] = pd.to_numeric(df["ferritin"]).to_numpy(dtype=float)
    out["prs"] = _score_sum(df, params)

    dropped = {f"missing {k}": int(v) for k, v in report.missing.items() if v}
    bad = out["trimester1"].isna().to_numpy()
    if bad.any():
        dropped["pregnant with no trimester"] = int(bad.sum())
    out = out[~bad].copy()
    if len(out) == 0:
        raise DataValidationError("no complete rows are left to fit the risk models")
    knots: tuple[float, ...] = ()
    if age == "spline":
        knots = tuple(float(x) for x in np.percentile(out["age"], SPLINE_CENTILES))
        if len(set(knots)) < 4:
            raise DataValidationError("age has too few distinct values for a 4-knot spline; use --age quadratic")
    prs_mean = float(out["prs"].mean())
    prs_sd = float(out["prs"].std(ddof=1))
    if not prs_sd > 0:
        raise DataValidationError("the polygenic score does not vary in these rows; it cannot be standardised")
    spec = ModelSpec(age=age, age_knots=knots, ferritin=ferritin, prs_mean=prs_mean, prs_sd=prs_sd,
                     score_weights=weights, pregnancy=True)
    for name, col in age_terms(out["age"].to_numpy(), spec).items():
        out[name] = col
    for coding in ("log2", "cut"):
        for name, col in ferritin_terms(out["ferritin"].to_numpy(), coding).items():
            out[name] = col
    out["prs_sd"] = (out["prs"] - prs_mean) / prs_sd
    out["rls"] = out["rls"].astype(int)
    return out, spec, dropped


def nested_specs(full: ModelSpec) -> dict[str, ModelSpec]:
    """M0-M3 from the full spec."""
    base = ModelSpec(age=full.age, age_knots=full.age_knots, score_weights=full.score_weights)
    m1 = ModelSpec(age=full.age, age_knots=full.age_knots, prs_mean=full.prs_mean, prs_sd=full.prs_sd,
                   score_weights=full.score_weights)
    m2 = ModelSpec(**{**m1.__dict__, "ferritin": full.ferritin})
    m3 = ModelSpec(**{**m2.__dict__, "pregnancy": True})
    return {"M0": base, "M1": m1, "M2": m2, "M3": m3}


# --- fitting one model ----------------------------------------------------------------------


def _glm(y: np.ndarray, X: np.ndarray, offset: np.ndarray | None = None, start: np.ndarray | None = None) -> Any:
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = sm.GLM(y, X, family=sm.families.Binomial(), offset=offset).fit(
            method="IRLS", tol=1e-13, maxiter=200, start_params=start)
        # computed (and cached by statsmodels) here: after a separated fit, exp() of the huge
        # linear predictor overflows, and numpy's bare "overflow encountered in exp" would
        # reach the user beside the SeparationWarning that names the problem
        _ = res.fittedvalues
    res._rlsepi_perfect = any(issubclass(w.category, PerfectSeparationWarning) for w in caught)
    return res


@dataclass(frozen=True)
class _QuickFit:
    params: np.ndarray
    llf: float
    converged: bool
    hessian: np.ndarray | None = None

    @property
    def bse(self) -> np.ndarray:
        """Model-based SEs: square roots of the diagonal of the inverse information."""
        return np.sqrt(np.diag(np.linalg.inv(self.hessian)))


def _wald_se(X: np.ndarray, fitted: np.ndarray) -> np.ndarray:
    """Model-based SEs, sqrt(diag((X'WX)^-1)) with W = p(1 - p), by QR.

    The QR factor of the column-scaled W^(1/2) X gives the same numbers as inverting X'WX,
    but with rounding error of order eps * cond(X) instead of eps * cond(X)^2: statsmodels'
    ``bse`` differs between CPUs (numpy's vector ``exp``, BLAS thread count) by up to ~3e-9
    relative on the quadratic age models; this by ~1e-14, so the reported SEs, CIs and
    p-values are the same on every machine at the digits ``summary.json`` keeps.
    """
    from scipy import linalg

    a = X * np.sqrt(fitted * (1.0 - fitted))[:, None]
    scale = np.sqrt(np.einsum("ij,ij->j", a, a))
    scale[scale == 0] = 1.0
    r = np.linalg.qr(a / scale, mode="r")
    try:
        r_inv = linalg.solve_triangular(r, np.eye(X.shape[1]), check_finite=False)
    except linalg.LinAlgError:
        return np.full(X.shape[1], np.nan)
    return np.sqrt(np.einsum("ij,ij->i", r_inv, r_inv)) / scale


def _newton_logit(y: np.ndarray, X: np.ndarray, offset: np.ndarray | None = None,
                  start: np.ndarray | None = None, tol: float = 1e-10, maxiter: int = 50) -> _QuickFit:
    """Maximum-likelihood logistic fit by Newton-Raphson with Cholesky solves.

    Used for the many refits of cross-validation and profiling (the reported fits use
    statsmodels); the estimates are the same maximum-likelihood estimates.
    """
    off = np.zeros(len(y)) if offset is None else offset
    b = np.zeros(X.shape[1]) if start is None else np.array(start, dtype=float)
    if X.shape[1] == 0:
        eta = off
        return _QuickFit(b, float(np.sum(y * eta - np.logaddexp(0, eta))), True)
    converged = False
    for _ in range(maxiter):
        eta = X @ b + off
        p = special.expit(eta)
        grad = X.T @ (y - p)
        hess = (X * (p * (1 - p))[:, None]).T @ X
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            break
        b = b + step
        if np.max(np.abs(step)) < tol:
            converged = True
            break
    eta = X @ b + off
    p = special.expit(eta)
    hess = (X * (p * (1 - p))[:, None]).T @ X
    return _QuickFit(b, float(np.sum(y * eta - np.logaddexp(0, eta))), converged, hess)


def _empty_cells(y: np.ndarray, X: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Binary columns with a level that has no events or only events: (column, level, rows, events)."""
    out = []
    for j in range(1, X.shape[1]):
        x = X[:, j]
        if not np.isin(x, (0.0, 1.0)).all():
            continue
        for v in (0, 1):
            sel = x == v
            rows = int(sel.sum())
            ev = int(y[sel].sum())
            if rows and (ev == 0 or ev == rows):
                out.append((j, v, rows, ev))
    return out


def _diagnose(name: str, y: np.ndarray, X: pd.DataFrame, res: Any) -> list[tuple[type[Warning], str]]:
    """Separation, convergence and events-per-parameter checks."""
    p = np.asarray(res.fittedvalues)
    events = int(y.sum())
    return fit_diagnostics(
        name, terms=[str(c) for c in X.columns], params=np.asarray(res.params),
        empty_cells=[(str(X.columns[j]), v, rows, ev) for j, v, rows, ev in _empty_cells(y, X.to_numpy())],
        converged=getattr(res, "converged", True), iterations=200,
        perfect=getattr(res, "_rlsepi_perfect", False), extreme=bool(np.any((p < 1e-10) | (p > 1 - 1e-10))),
        events=events, n=len(y))


def fit_diagnostics(name: str, *, terms: Sequence[str], params: np.ndarray,
                    empty_cells: Sequence[tuple[str, int, int, int]], converged: bool, iterations: int,
                    perfect: bool, extreme: bool, events: int, n: int) -> list[tuple[type[Warning], str]]:
    """The warnings of a fitted logistic model, from what an in-memory or out-of-core fit knows.

    ``empty_cells`` holds (term, level, rows, events) of binary terms with a level that has
    no events or only events; ``extreme`` says whether some fitted probability is within
    1e-10 of 0 or 1; ``perfect`` whether the fitting routine reported perfect separation.
    """
    out: list[tuple[type[Warning], str]] = []
    if not converged:
        out.append((NonConvergenceWarning,
                    f"{name}: the fit did not converge in {iterations} iterations; estimates are unreliable"))
    cells = [f"'{term}' = {v} has {rows} rows and {'no' if ev == 0 else 'only'} events"
             for term, v, rows, ev in empty_cells]
    big = [c for c, b in zip(terms, np.asarray(params)) if c != "const" and abs(b) > 15]
    if cells or perfect or big or extreme:
        detail = "; ".join(cells) if cells else (f"huge coefficients for {', '.join(big)}" if big
                                                  else "fitted probabilities of 0 or 1")
        out.append((SeparationWarning,
                    f"{name}: (quasi-)complete separation ({detail}); the affected odds ratios are infinite "
                    "and their Wald CIs meaningless; combine categories or use a penalised fit"))
    k = len(terms) - 1
    few = int(min(events, n - events))
    if k > 0 and few / k < MIN_EVENTS_PER_PARAMETER:
        out.append((FewEventsWarning,
                    f"{name}: {few} events for {k} coefficients ({few / k:.1f} per coefficient, "
                    f"fewer than {MIN_EVENTS_PER_PARAMETER:g}); estimates may be biased and unstable"))
    return out


def _profile_ci(y: np.ndarray, X: np.ndarray, j: int, res: Any, level: float) -> tuple[float, float]:
    """Profile-likelihood CI of coefficient j: where the LR statistic reaches chi2_1(level)."""
    q = stats.chi2.ppf(level, 1)
    ll_max = float(res.llf)
    others = np.delete(X, j, axis=1)
    start = np.delete(np.asarray(res.params), j)
    b_hat, se = float(res.params[j]), float(res.bse[j])

    def excess(b: float) -> float:
        return 2 * (ll_max - _newton_logit(y, others, offset=b * X[:, j], start=start).llf) - q

    bounds = []
    for sign in (-1.0, 1.0):
        step = 2.0 * se
        edge = b_hat + sign * step
        tries = 0
        while excess(edge) < 0 and tries < 30:
            step *= 2
            edge = b_hat + sign * step
            tries += 1
        if tries == 30:
            bounds.append(sign * math.inf)
            continue
        bounds.append(optimize.brentq(excess, *sorted((b_hat, edge)), xtol=1e-10))
    return bounds[0], bounds[1]


# --- DeLong ------------------------------------------------------------------------------


def hanley_mcneil_se(auc: float, events: float, non_events: float) -> float:
    """The standard error of an AUC by Hanley & McNeil's (1982) formula, for planning: with
    :math:`Q_1 = A/(2-A)` and :math:`Q_2 = 2A^2/(1+A)`,
    :math:`SE^2 = [A(1-A) + (n_1-1)(Q_1-A^2) + (n_0-1)(Q_2-A^2)] / (n_1 n_0)`.

    Hanley JA, McNeil BJ (1982) Radiology 143:29-36.
    """
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (events - 1) * (q1 - auc**2) + (non_events - 1) * (q2 - auc**2)) / (events * non_events)
    return math.sqrt(var)


def delong_difference(auc: np.ndarray, cov: np.ndarray, i: int, j: int) -> tuple[float, float, float]:
    """Paired DeLong test of AUC ``i`` against AUC ``j`` (from :func:`delong` on the same people):
    the difference, its SE and the two-sided p-value ``2 * sf(|z|)`` (exact in the far tail,
    where ``2 * (1 - cdf)`` is 0); NaN p when the SE is 0. As pROC's ``roc.test(paired = TRUE)``."""
    d = float(auc[i] - auc[j])
    se = math.sqrt(max(float(cov[i, i] + cov[j, j] - 2 * cov[i, j]), 0.0))
    p = float(2 * stats.norm.sf(abs(d) / se)) if se > 0 else math.nan
    return d, se, p


def delong(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs and their DeLong covariance matrix for one or more scores on the same people.

    Parameters
    ----------
    y : array of 0/1
    scores : array, shape (k, n) or (n,)
        Higher score = more likely an event.

    Returns
    -------
    auc : ndarray, shape (k,)
    cov : ndarray, shape (k, k)

    Notes
    -----
    Sun & Xu's (2014) mid-rank algorithm: with ``m`` events and ``n`` non-events,
    ``V10_i = (R_i - R^X_i) / n`` for events and ``V01_j = 1 - (R_j - R^Y_j) / m`` for
    non-events, where ``R`` is the mid-rank among everyone and ``R^X``, ``R^Y`` within the
    group; ``cov = S10 / m + S01 / n``. Ties count one half, as in the Mann-Whitney statistic.
    """
    y = np.asarray(y).astype(bool)
    s = np.atleast_2d(np.asarray(scores, dtype=float))
    pos, neg = s[:, y], s[:, ~y]
    m, n = pos.shape[1], neg.shape[1]
    if m == 0 or n == 0:
        raise DataValidationError("the AUC needs both events and non-events")
    k = s.shape[0]
    auc = np.empty(k)
    v10 = np.empty((k, m))
    v01 = np.empty((k, n))
    for i in range(k):
        tz = stats.rankdata(np.concatenate([pos[i], neg[i]]))
        tx = stats.rankdata(pos[i])
        ty = stats.rankdata(neg[i])
        auc[i] = (tz[:m].sum() - m * (m + 1) / 2) / (m * n)
        v10[i] = (tz[:m] - tx) / n
        v01[i] = 1.0 - (tz[m:] - ty) / m
    s10 = np.atleast_2d(np.cov(v10)) if m > 1 else np.zeros((k, k))
    s01 = np.atleast_2d(np.cov(v01)) if n > 1 else np.zeros((k, k))
    return auc, s10 / m + s01 / n


# --- results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelFit:
    """One fitted logistic model: coefficients and performance.

    ``coefficients`` has one row per term: ``term, estimate, se, z, p_value, ci_lower,
    ci_upper`` (log-odds scale), ``odds_ratio, or_lower, or_upper`` and ``ci_method``.
    ``metrics`` holds ``n, events, parameters, loglik, deviance, aic, auc, auc_lower,
    auc_upper, auc_se, brier, cv_auc, cv_auc_sd, cv_brier, calibration_intercept,
    calibration_slope, cv_folds, cv_seed``. ``covariance`` is the model-based covariance
    matrix of the coefficients (terms by terms), for intervals of predictions.
    """

    name: str
    formula: str
    coefficients: pd.DataFrame
    metrics: dict[str, float]
    warnings: tuple[str, ...]
    spec: ModelSpec | None
    fitted: np.ndarray = field(repr=False)
    covariance: pd.DataFrame | None = field(default=None, repr=False)
    dropped_terms: Mapping[str, str] = field(default_factory=dict)
    """Terms left out because the data cannot estimate them: term -> why."""

    def odds_ratios(self) -> dict[str, float]:
        """Odds ratio by term."""
        c = self.coefficients
        return dict(zip(c["term"], c["odds_ratio"]))

    def to_frame(self) -> pd.DataFrame:
        """The coefficient table (a copy)."""
        return self.coefficients.copy()

    def summary(self) -> str:
        """Odds ratios and the main metrics as plain text."""
        lines = [f"{self.name}: {self.formula}"]
        for r in self.coefficients.itertuples():
            if r.term != "const":
                lines.append(f"  {r.term:<18} OR {r.odds_ratio:8.3f}  ({r.or_lower:.3f}-{r.or_upper:.3f})  "
                             f"p {_fmt_p(r.p_value)}")
        m = self.metrics
        lines.append(f"  AUC {m['auc']:.3f} ({m['auc_lower']:.3f}-{m['auc_upper']:.3f}), Brier {m['brier']:.4f}, "
                     f"CV AUC {m['cv_auc']:.3f}, CV calibration slope {m['calibration_slope']:.3f}")
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "formula": self.formula,
            "coefficients": self.coefficients.to_dict(orient="records"),
            "metrics": dict(self.metrics), "warnings": list(self.warnings),
            "spec": None if self.spec is None else self.spec.to_dict(),
            "covariance": None if self.covariance is None else {
                "terms": list(self.covariance.index), "matrix": self.covariance.to_numpy().tolist()},
            "dropped_terms": dict(self.dropped_terms),
        }


@dataclass(frozen=True)
class Comparison:
    """A larger model against the nested smaller one."""

    smaller: str
    larger: str
    lr_statistic: float
    df: int
    lr_p_value: float
    auc_difference: float
    auc_difference_lower: float
    auc_difference_upper: float
    auc_difference_p_value: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def to_frame(self) -> pd.DataFrame:
        """One row."""
        return pd.DataFrame([self.to_dict()])

    def summary(self) -> str:
        if self.df == 0:
            return (f"{self.larger} vs {self.smaller}: the same model (every term {self.larger} adds was dropped "
                    "as inestimable); no test")
        return (f"{self.larger} vs {self.smaller}: LR chi2 {self.lr_statistic:.2f} on {self.df} df, "
                f"p {_fmt_p(self.lr_p_value)}; AUC difference {self.auc_difference:+.4f} "
                f"({self.auc_difference_lower:+.4f} to {self.auc_difference_upper:+.4f}), "
                f"DeLong p {_fmt_p(self.auc_difference_p_value)}")


@dataclass(frozen=True)
class NestedFit:
    """The nested models M0-M3 (and a user model), their comparisons and warnings."""

    models: tuple[ModelFit, ...]
    comparisons: tuple[Comparison, ...]
    n: int
    events: int
    dropped: dict[str, int]
    settings: dict[str, Any]
    warnings: tuple[str, ...]
    data_range: dict[str, Any] = field(default_factory=dict)
    """What the analysis rows covered (sexes, ages, pregnancy states, ferritin): a model is
    not used for a person outside it (:func:`check_within_range`)."""

    def __getitem__(self, name: str) -> ModelFit:
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """Every coefficient, OR, CI and metric, with each model's formula (the JSON output)."""
        from rlsepi import __version__

        return {
            "rlsepi": {"version": __version__, "kind": "nested_logistic_models"},
            "n": self.n, "events": self.events, "dropped": dict(self.dropped), "settings": dict(self.settings),
            "definitions": DEFINITIONS, "warnings": list(self.warnings),
            "data_range": dict(self.data_range),
            "models": [m.to_dict() for m in self.models],
            "comparisons": [c.to_dict() for c in self.comparisons],
        }

    def to_frame(self) -> pd.DataFrame:
        """One long table: coefficients, metrics, formulas, warnings and comparisons (``kind`` says which)."""
        rows: list[dict[str, Any]] = []
        for m in self.models:
            for r in m.coefficients.to_dict(orient="records"):
                rows.append({"model": m.name, "kind": "coefficient", "name": r["term"], "estimate": r["estimate"],
                             "se": r["se"], "lower": r["ci_lower"], "upper": r["ci_upper"], "p_value": r["p_value"],
                             "odds_ratio": r["odds_ratio"], "or_lower": r["or_lower"], "or_upper": r["or_upper"]})
            for k, v in m.metrics.items():
                rows.append({"model": m.name, "kind": "metric", "name": k, "estimate": v})
            rows.append({"model": m.name, "kind": "formula", "name": m.formula})
        for w in self.warnings:
            rows.append({"model": w.split(":", 1)[0], "kind": "warning", "name": w})
        for c in self.comparisons:
            label = f"{c.larger} vs {c.smaller}"
            rows.append({"model": label, "kind": "comparison", "name": "lr_test", "estimate": c.lr_statistic,
                         "se": None, "p_value": c.lr_p_value, "df": c.df})
            rows.append({"model": label, "kind": "comparison", "name": "auc_difference", "estimate": c.auc_difference,
                         "lower": c.auc_difference_lower, "upper": c.auc_difference_upper,
                         "p_value": c.auc_difference_p_value})
        return pd.DataFrame(rows)

    def summary(self) -> str:
        """Markdown: one table of odds ratios per model, a metrics table and the comparisons."""
        out = [f"# Nested logistic models for RLS (n = {self.n:,}, events = {self.events:,})", ""]
        if self.dropped:
            out.append("Rows dropped: " + ", ".join(f"{v:,} ({k})" for k, v in self.dropped.items()) + ".")
            out.append("")
        for w in self.warnings:
            out.append(f"> **Warning:** {w}")
        if self.warnings:
            out.append("")
        for m in self.models:
            ci = m.coefficients["ci_method"].iloc[0] if len(m.coefficients) else "wald"
            out += [f"## {m.name}: `{m.formula}`", "",
                    f"| term | OR | 95% CI ({ci}) | p |", "|---|---:|---:|---:|"]
            for r in m.coefficients.itertuples():
                if r.term == "const":
                    continue
                out.append(f"| {r.term} | {r.odds_ratio:.3f} | {r.or_lower:.3f}–{r.or_upper:.3f} | {_fmt_p(r.p_value)} |")
            out.append("")
        out += ["## Performance", "",
                "| model | AUC (95% CI, DeLong) | Brier | CV AUC | CV calibration intercept | CV calibration slope |",
                "|---|---:|---:|---:|---:|---:|"]
        for m in self.models:
            x = m.metrics
            out.append(f"| {m.name} | {x['auc']:.3f} ({x['auc_lower']:.3f}–{x['auc_upper']:.3f}) | {x['brier']:.4f} | "
                       f"{x['cv_auc']:.3f} | {x['calibration_intercept']:.3f} | {x['calibration_slope']:.3f} |")
        if self.comparisons:
            out += ["", "## Nested comparisons", "",
                    "| comparison | LR χ² (df) | p | ΔAUC (95% CI) | p (DeLong) |", "|---|---:|---:|---:|---:|"]
            for c in self.comparisons:
                if c.df == 0:
                    out.append(f"| {c.larger} vs {c.smaller} | — (0) | — | — (the same model) | — |")
                    continue
                out.append(f"| {c.larger} vs {c.smaller} | {c.lr_statistic:.2f} ({c.df}) | {_fmt_p(c.lr_p_value)} | "
                           f"{c.auc_difference:+.4f} ({c.auc_difference_lower:+.4f} to {c.auc_difference_upper:+.4f}) | "
                           f"{_fmt_p(c.auc_difference_p_value)} |")
        out += ["", f"Cross-validation: {self.settings['cv_folds']}-fold stratified, seed {self.settings['seed']}. "
                "Calibration intercept and slope are of the out-of-fold predictions."]
        return "\n".join(out) + "\n"


def same_model_message(smaller: str, larger: str, dropped: Sequence[str]) -> str:
    """The warning for a nested comparison on 0 degrees of freedom (every added term dropped)."""
    return (f"{larger} vs {smaller}: no test; every term {larger} adds was dropped as "
            f"inestimable ({', '.join(dropped)}), so the two models are the same")


def _estimated_formula(formula: str, dropped: Mapping[str, str]) -> str:
    """The formula of the model actually fitted: ``formula`` without the terms dropped as
    inestimable (or, when they are not its written terms, with them named)."""
    if not dropped:
        return formula
    lhs, _, rhs = formula.partition("~")
    terms = [t.strip() for t in rhs.split("+")]
    if set(dropped) <= set(terms):
        return f"{lhs.strip()} ~ {' + '.join(t for t in terms if t not in dropped)}"
    return f"{formula} (not estimable, dropped: {', '.join(dropped)})"


def strict_json(x: Any) -> Any:
    """NaN and infinities to ``None`` (JSON has no such numbers; a warning in the same
    output says why a value is missing or infinite)."""
    if isinstance(x, dict):
        return {k: strict_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [strict_json(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _fmt_p(p: float) -> str:
    """4 decimals from 0.0001 up, scientific notation below (``2.58e-238``), never "0" or a
    bare "<0.0001": a p-value below double precision's range prints as ``<1e-308``."""
    if not math.isfinite(p):
        return "—"
    if p >= 1e-4:
        return f"{p:.4f}"
    return "<1e-308" if p < 1e-308 else f"{p:.3g}"


def _small_blas(n: int) -> Any:
    """One BLAS thread for the many small solves of a fit (threading overhead dominates
    below a few hundred thousand rows); unchanged for larger data."""
    if n >= 200_000:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


# --- the estimator ------------------------------------------------------------------------


class NestedLogistic:
    """Fit the nested logistic risk models M0-M3 (scikit-learn style).

    Parameters
    ----------
    ferritin : {'log2', 'cut'}
        Ferritin per halving, or the clinical cut-points <50 / 50-75 / >75 µg/L.
    age : {'quadratic', 'spline'}
    formula : str, optional
        An extra model, e.g. ``"rls ~ female + age10 + age10_sq + ferritin_lt50"``, over the
        derived columns (:data:`DEFINITIONS`); fitted on the same rows, not compared.
    profile : bool
        Profile-likelihood CIs instead of Wald CIs (slower).
    cv_folds : int
        Folds of the stratified cross-validation.
    random_state : int
        Seed of the cross-validation folds.
    alpha : float
        1 - confidence level.
    params : Parameters
        Source of the score weights.

    Attributes
    ----------
    result_ : NestedFit
    frame_ : DataFrame
        The analysis rows with the derived columns.

    Examples
    --------
    >>> from rlsepi.cohort import simulate
    >>> est = NestedLogistic(cv_folds=3).fit(simulate(3000, rng=2))
    >>> [m.name for m in est.result_.models]
    ['M0', 'M1', 'M2', 'M3']
    """

    def __init__(self, *, ferritin: str = "log2", age: str = "quadratic", formula: str | None = None,
                 profile: bool = False, cv_folds: int = 5, random_state: int = 0, alpha: float = 0.05,
                 params: Parameters = DEFAULT) -> None:
        self.ferritin = ferritin
        self.age = age
        self.formula = formula
        self.profile = profile
        self.cv_folds = cv_folds
        self.random_state = random_state
        self.alpha = alpha
        self.params = params

    def fit(self, df: pd.DataFrame) -> NestedLogistic:
        """Fit M0-M3 (and the user formula) to ``df``; the result is in ``result_``."""
        with _small_blas(len(df)):
            return self._fit(df)

    def _fit(self, df: pd.DataFrame) -> NestedLogistic:
        if not 0 < self.alpha < 1:
            raise DataValidationError(f"alpha must lie between 0 and 1, got {self.alpha}")
        if self.cv_folds < 2:
            raise DataValidationError(f"cv_folds must be at least 2, got {self.cv_folds}")
        frame, full, dropped = derive_columns(df, ferritin=self.ferritin, age=self.age, params=self.params)
        y = frame["rls"].to_numpy(dtype=float)
        events = int(y.sum())
        if events < self.cv_folds or len(y) - events < self.cv_folds:
            raise DataValidationError(
                f"{events} events among {len(y)} rows: too few events or non-events to fit and cross-validate"
            )
        folds = _folds(y, self.cv_folds, self.random_state)
        fits: list[ModelFit] = []
        all_warnings: list[str] = []
        for name, spec in nested_specs(full).items():
            X = _design(frame, spec.columns())
            fit = self._fit_one(name, spec.formula(), spec, y, X, folds)
            fits.append(fit)
            all_warnings += fit.warnings
        if self.formula:
            X, label = _formula_design(frame, self.formula)
            fit = self._fit_one("user", label, None, y, X, folds)
            fits.append(fit)
            all_warnings += fit.warnings
        comparisons = []
        z = stats.norm.ppf(1 - self.alpha / 2)
        nested = fits[:4]
        auc, cov = delong(y, np.vstack([f.fitted for f in nested]))
        for i in range(1, 4):
            small, big = nested[i - 1], nested[i]
            lr = max(0.0, 2 * (big.metrics["loglik"] - small.metrics["loglik"]))
            df_ = int(big.metrics["parameters"] - small.metrics["parameters"])
            d, se, p_d = delong_difference(auc, cov, i, i - 1)
            if df_ == 0:
                # every added term was dropped as inestimable (warned above): the two models are
                # the same model, and there is nothing to test
                msg = same_model_message(small.name, big.name, big.dropped_terms)
                all_warnings.append(msg)
                warnings.warn(msg, InestimableTermWarning, stacklevel=3)
                lr, d, se, p_d = math.nan, math.nan, math.nan, math.nan
            comparisons.append(Comparison(
                smaller=small.name, larger=big.name, lr_statistic=lr, df=df_, lr_p_value=float(stats.chi2.sf(lr, df_)),
                auc_difference=float(d), auc_difference_lower=float(d - z * se), auc_difference_upper=float(d + z * se),
                auc_difference_p_value=p_d,
            ))
        settings = {"ferritin": self.ferritin, "age": self.age, "formula": self.formula,
                    "ci": "profile" if self.profile else "wald", "alpha": self.alpha,
                    "cv_folds": self.cv_folds, "seed": self.random_state}
        self.frame_ = frame
        self.result_ = NestedFit(models=tuple(fits), comparisons=tuple(comparisons), n=len(y), events=events,
                                 dropped=dropped, settings=settings, warnings=tuple(all_warnings),
                                 data_range=data_range(frame))
        return self

    def _fit_one(self, name: str, formula: str, spec: ModelSpec | None, y: np.ndarray, X: pd.DataFrame,
                 folds: list[tuple[np.ndarray, np.ndarray]]) -> ModelFit:
        drop = inestimable_terms(X)
        issues: list[tuple[type[Warning], str]] = []
        for term, why in drop.items():
            msg = (f"{name}: term '{term}' dropped from the model: {why}; the data cannot estimate its effect, "
                   "so no odds ratio is reported for it")
            issues.append((InestimableTermWarning, msg))
            warnings.warn(msg, InestimableTermWarning, stacklevel=4)
        X = X.drop(columns=list(drop))
        formula = _estimated_formula(formula, drop)
        if X.shape[1] == 0:
            raise DataValidationError(f"{name}: no term of the model can be estimated from these data")
        res = _glm(y, X.to_numpy())
        issues += _diagnose(name, y, X, res)
        for cat, msg in issues:
            if cat is not InestimableTermWarning:
                warnings.warn(msg, cat, stacklevel=4)
        z = stats.norm.ppf(1 - self.alpha / 2)
        b = np.asarray(res.params)
        se = _wald_se(X.to_numpy(), np.asarray(res.fittedvalues))  # = res.bse, the same on every CPU
        if self.profile:
            ci = np.array([_profile_ci(y, X.to_numpy(), j, res, 1 - self.alpha) for j in range(X.shape[1])])
            lo, hi = ci[:, 0], ci[:, 1]
        else:
            lo, hi = b - z * se, b + z * se
        with np.errstate(over="ignore"):
            odds = np.exp(b), np.exp(lo), np.exp(hi)
        coef = pd.DataFrame({
            "term": list(X.columns), "estimate": b, "se": se, "z": b / se,
            "p_value": 2 * stats.norm.sf(np.abs(b / se)), "ci_lower": lo, "ci_upper": hi,
            "odds_ratio": odds[0], "or_lower": odds[1], "or_upper": odds[2],
            "ci_method": "profile" if self.profile else "wald",
        })
        p = np.asarray(res.fittedvalues)
        auc, cov = delong(y, p)
        auc_se = math.sqrt(cov[0, 0])
        # pROC's DeLong interval: normal on the AUC scale, clipped to [0, 1]
        metrics: dict[str, float] = {
            "n": int(len(y)), "events": int(y.sum()), "parameters": int(X.shape[1]),
            "loglik": float(res.llf), "deviance": float(res.deviance), "aic": float(res.aic),
            "auc": float(auc[0]), "auc_se": auc_se,
            "auc_lower": float(max(0.0, auc[0] - z * auc_se)), "auc_upper": float(min(1.0, auc[0] + z * auc_se)),
            "brier": float(np.mean((y - p) ** 2)),
        }
        metrics.update(_cross_validate(y, X.to_numpy(), folds))
        if metrics["cv_unstable_folds"]:
            msg = (f"{name}: in {metrics['cv_unstable_folds']} of {len(folds)} cross-validation folds the training "
                   "fit separated or did not converge (sparse categories); this model's cross-validated AUC, "
                   "Brier score and calibration are unreliable")
            issues.append((SeparationWarning, msg))
            warnings.warn(msg, SeparationWarning, stacklevel=4)
        metrics["cv_folds"] = len(folds)
        metrics["cv_seed"] = self.random_state
        cov = pd.DataFrame(np.asarray(res.cov_params()), index=list(X.columns), columns=list(X.columns))
        return ModelFit(name=name, formula=formula, coefficients=coef, metrics=metrics,
                        warnings=tuple(m for _, m in issues), spec=spec, fitted=p, covariance=cov,
                        dropped_terms=drop)


def data_range(frame: pd.DataFrame) -> dict[str, Any]:
    """What the analysis rows cover: sexes, ages, pregnancy states and ferritin (for the JSON model)."""
    female = frame["female"].to_numpy() if "female" in frame else np.array([])
    sexes = sorted({"female" if f == 1 else "male" for f in np.unique(female)})
    out: dict[str, Any] = {"sexes": sexes}
    if "age" in frame and len(frame):
        out["age"] = [float(frame["age"].min()), float(frame["age"].max())]
    if all(f"trimester{k}" in frame for k in (1, 2, 3)):
        state = sum(k * frame[f"trimester{k}"].to_numpy() for k in (1, 2, 3))
        out["pregnancy"] = sorted(int(s) for s in np.unique(state))  # 0 not pregnant, 1-3 trimester
    if "ferritin" in frame and len(frame):
        out["ferritin"] = [float(frame["ferritin"].min()), float(frame["ferritin"].max())]
    return out


def check_within_range(data: Mapping[str, Any], *, age: float | None, sex: str | None, pregnant: bool | None,
                       trimester: int | None, ferritin: float | None, uses: frozenset[str] = frozenset()) -> None:
    """Refuse a person outside the data a model was fitted on (its ``data_range``).

    A person left partly unknown is averaged over the whole population, so an unknown sex
    (or pregnancy) is refused too when the model saw only one sex (or no pregnancies).

    Raises
    ------
    DataValidationError
        Naming the input, the range the model covers and the fix.
    """
    if not data:
        return
    sexes = list(data.get("sexes") or [])
    people = {"female": "women", "male": "men"}
    if sexes and len(sexes) < 2:
        if sex is None:
            raise DataValidationError(f"the model was fitted on {people.get(sexes[0], sexes[0])} only; "
                                      f"give --sex {sexes[0]}")
        if sex not in sexes:
            raise DataValidationError(f"the model was fitted on {people.get(sexes[0], sexes[0])} only; it cannot give "
                                      f"a risk for {people.get(sex, sex)}")
    lo_hi = data.get("age")
    if lo_hi and age is not None and not lo_hi[0] <= age <= lo_hi[1] + 1:
        raise DataValidationError(f"age {age:g} lies outside the ages the model was fitted on "
                                  f"({lo_hi[0]:g}-{lo_hi[1]:g}); the model cannot give a risk there")
    states = data.get("pregnancy")
    if states is not None and "pregnancy" in uses:
        state = trimester if trimester is not None else (0 if pregnant is False or sex == "male" else None)
        if state is None and pregnant is True:
            wanted = [s for s in states if s > 0]
            if not wanted:
                raise DataValidationError("the model was fitted on no pregnant women; it cannot give a risk in pregnancy")
        elif state is not None and state not in states:
            what = "not pregnant" if state == 0 else f"in trimester {state}"
            raise DataValidationError(f"the model was fitted on nobody {what}; it cannot give a risk there")
    fer = data.get("ferritin")
    if fer and ferritin is not None and "ferritin" in uses and not fer[0] <= ferritin <= fer[1]:
        raise DataValidationError(f"ferritin {ferritin:g} µg/L lies outside the ferritin values the model was fitted "
                                  f"on ({fer[0]:g}-{fer[1]:g} µg/L); the model cannot give a risk there")


def _design(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    X = frame[columns].astype(float)
    X.insert(0, "const", 1.0)
    return X


def _formula_design(frame: pd.DataFrame, formula: str) -> tuple[pd.DataFrame, str]:
    """Design matrix of a user formula over the derived columns (intercept named 'const')."""
    import formulaic

    if "~" not in formula:
        raise DataValidationError(f"formula '{formula}' has no '~'; write e.g. 'rls ~ female + age10 + age10_sq'")
    lhs, rhs = formula.split("~", 1)
    if lhs.strip() != "rls":
        raise DataValidationError(f"the formula's outcome must be 'rls', got '{lhs.strip()}'")
    try:
        X = formulaic.model_matrix(rhs.strip(), frame)
    except Exception as exc:  # formulaic raises many kinds; turn them into one clear line
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataValidationError(f"cannot use formula '{formula}': {first}; the columns are "
                                  f"{', '.join(c for c in frame.columns if c != 'rls')}") from None
    X = pd.DataFrame(np.asarray(X, dtype=float), columns=list(X.columns), index=frame.index)
    if "Intercept" in X.columns:
        X = X.rename(columns={"Intercept": "const"})
        X = X[["const", *[c for c in X.columns if c != "const"]]]
    return X, f"rls ~ {rhs.strip()}"


def _folds(y: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import StratifiedKFold

    skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(skf.split(np.zeros(len(y)), y.astype(int)))


def _cross_validate(y: np.ndarray, X: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """Out-of-fold AUC (mean and SD over folds), Brier, calibration intercept and slope."""
    from sklearn.metrics import brier_score_loss, roc_auc_score

    lp = np.empty(len(y))
    aucs = []
    unstable = 0
    for train, test in folds:
        res = _newton_logit(y[train], X[train])
        lp[test] = X[test] @ res.params
        aucs.append(roc_auc_score(y[test], lp[test]))
        unstable += int(not res.converged or bool(np.any(np.abs(res.params[1:]) > 15))
                        or bool(_empty_cells(y[train], X[train])))
    p = special.expit(lp)
    # after folds that separated, the out-of-fold linear predictor holds huge values and the
    # recalibration fits overflow: that is already reported by name (cv_unstable_folds, and a
    # warning from the caller), so numpy's own overflow messages would only repeat it badly
    with np.errstate(over="ignore", invalid="ignore") if unstable else contextlib.nullcontext():
        slope = _newton_logit(y, np.column_stack([np.ones(len(y)), lp]))
        citl = _newton_logit(y, np.ones((len(y), 1)), offset=lp)
    return {
        "cv_auc": float(np.mean(aucs)), "cv_auc_sd": float(np.std(aucs, ddof=1)),
        "cv_brier": float(brier_score_loss(y, p)),
        "calibration_intercept": float(citl.params[0]), "calibration_slope": float(slope.params[1]),
        "cv_unstable_folds": unstable,
    }


def fit_nested(df: pd.DataFrame, *, ferritin: str = "log2", age: str = "quadratic", formula: str | None = None,
               profile: bool = False, cv_folds: int = 5, random_state: int = 0, alpha: float = 0.05,
               params: Parameters = DEFAULT) -> NestedFit:
    """Fit M0-M3 (and an optional user formula) and return the :class:`NestedFit`.

    A function wrapper of :class:`NestedLogistic`; see it for the parameters.
    """
    return NestedLogistic(ferritin=ferritin, age=age, formula=formula, profile=profile, cv_folds=cv_folds,
                          random_state=random_state, alpha=alpha, params=params).fit(df).result_


# --- a fitted model as an individual-risk model ----------------------------------------------


def load_risk_model(source: str | Path | Mapping[str, Any], *, name: str | None = None) -> LinearRiskModel:
    """A model saved by ``rlsepi fit --format json`` as a :class:`rlsepi.risk.LinearRiskModel`.

    Parameters
    ----------
    source : path or mapping
        The JSON file (or its parsed content). JSON only: models are never pickled.
    name : str, optional
        ``M0``..``M3``; default the largest of them in the file. User-formula models cannot
        be used (their columns cannot be rebuilt for one person).
    """
    if isinstance(source, Mapping):
        doc = source
    else:
        try:
            doc = json.loads(Path(source).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataValidationError(f"cannot read model file '{source}': {exc}") from None
    models = {m.get("name"): m for m in doc.get("models", []) if isinstance(m, Mapping)} if isinstance(doc, Mapping) else {}
    usable = [k for k in ("M0", "M1", "M2", "M3") if k in models and models[k].get("spec")]
    if not usable:
        raise DataValidationError("the model file holds no model M0-M3; write one with 'rlsepi fit --format json'")
    if name is None:
        name = usable[-1]
    if name not in usable:
        raise DataValidationError(f"model '{name}' cannot be used for individual risk; choose one of {', '.join(usable)}")
    m = models[name]
    try:
        spec = ModelSpec.from_dict(m["spec"])
        rows = list(m["coefficients"])
        terms = [str(r["term"]) for r in rows]
        raw = [r["estimate"] for r in rows]
        dropped = {str(k): str(v) for k, v in dict(m.get("dropped_terms") or {}).items()}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DataValidationError(f"model '{name}' in the file is incomplete or malformed ({type(exc).__name__}: "
                                  f"{exc}); write it again with 'rlsepi fit --format json'") from None
    bad = [t for t, v in zip(terms, raw) if not _finite_number(v)]
    if bad:
        raise DataValidationError(f"model '{name}' in the file has estimates that are not finite numbers "
                                  f"(terms {', '.join(bad[:3])}); write it again with 'rlsepi fit --format json'")
    coef = dict(zip(terms, (float(v) for v in raw)))
    expected = ["const", *spec.columns()]
    for term in dropped:  # the data could not estimate it: it is constant (or redundant) in the fitted data
        coef.setdefault(term, 0.0)
    if sorted(coef) != sorted(expected):
        raise DataValidationError(f"model '{name}' in the file has terms {sorted(coef)}, expected {expected}")
    terms = tuple(expected)
    covariance = None
    cov_doc = m.get("covariance")
    if isinstance(cov_doc, Mapping) and cov_doc.get("terms") is not None:
        try:
            listed = list(cov_doc["terms"])
            full = np.asarray(cov_doc["matrix"], dtype=float)
            # a dropped term was not estimated: no variance (its coefficient is fixed at 0)
            estimated = [t for t in terms if t not in dropped]
            order = [listed.index(t) for t in estimated]
            covariance = np.zeros((len(terms), len(terms)))
            pos = [terms.index(t) for t in estimated]
            covariance[np.ix_(pos, pos)] = full[np.ix_(order, order)]
        except OverflowError:  # an integer beyond the range of a float (JSON allows any number of digits)
            raise DataValidationError(f"model '{name}' in the file has a covariance matrix with numbers too large "
                                      "for a float; write it again with 'rlsepi fit --format json'") from None
        except (ValueError, TypeError, IndexError, KeyError):
            raise DataValidationError(f"model '{name}' in the file has a covariance matrix that does not match "
                                      f"its terms {list(terms)}") from None
        if not np.all(np.isfinite(covariance)):
            covariance = None  # a separated term: no interval rather than a wrong one

    def build(coef: dict[str, float]) -> LinearRiskModel:
        return _linear_model(name, spec, coef, terms, covariance, build)

    return build(coef)


def _finite_number(v: Any) -> bool:
    """Whether a JSON value is a finite number (not a bool, not text; an integer too large for
    a float, which JSON allows, is not finite)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        return math.isfinite(float(v))
    except OverflowError:
        return False


def _linear_model(name: str, spec: ModelSpec, coef: dict[str, float], terms: tuple[str, ...],
                  covariance: np.ndarray | None, build: Any) -> LinearRiskModel:
    tri = np.array([0.0] + [coef.get(f"trimester{k}", 0.0) for k in (1, 2, 3)])

    def base(age: np.ndarray, female: np.ndarray, state: np.ndarray) -> np.ndarray:
        shape = np.broadcast_shapes(np.shape(age), np.shape(female), np.shape(state))
        a = np.broadcast_to(np.asarray(age, dtype=float), shape)
        flat = age_terms(a.ravel(), spec)
        eta = coef["const"] + coef["female"] * np.broadcast_to(female, shape)
        eta = eta + sum(coef[k] * v.reshape(shape) for k, v in flat.items())
        return eta + tri[np.broadcast_to(state, shape)]

    def fer(f: np.ndarray) -> np.ndarray:
        terms = ferritin_terms(np.asarray(f, dtype=float), spec.ferritin)
        return sum((coef[k] * v for k, v in terms.items()), np.zeros(np.shape(f)))

    has_prs = spec.prs_sd is not None
    uses = {"age", "sex"}
    if has_prs:
        uses.add("genotypes")
    if spec.ferritin:
        uses.add("ferritin")
    if spec.pregnancy:
        uses.add("pregnancy")
    return LinearRiskModel(
        name=f"fitted model {name}", base=base, ferritin_effect=fer,
        ferritin_breaks=FERRITIN_CUTS if spec.ferritin == "cut" else (None if spec.ferritin else ()),
        score_weights=dict(spec.score_weights) if has_prs else {},
        score_coef=coef["prs_sd"] / spec.prs_sd if has_prs else 0.0,
        score_const=-coef["prs_sd"] * spec.prs_mean / spec.prs_sd if has_prs else 0.0,
        uses=frozenset(uses),
        coefficients=tuple(coef[t] for t in terms), covariance=covariance,
        with_coefficients=None if covariance is None else (lambda b: build(dict(zip(terms, map(float, b))))),
    )
