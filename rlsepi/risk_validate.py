"""A simulation study (ADEMP) of the logistic fit: does it recover the true effects?

Following Morris, White & Crowther (2019):

- **Aims**: check that rlsepi's logistic fit (the statsmodels IRLS fit behind
  :func:`rlsepi.risk_models.fit_nested`) estimates the conditional log odds ratios of the
  generating model without bias, with model SEs that match the empirical SE, and with 95%
  Wald CIs that cover the truth 95% of the time.
- **Data-generating mechanism**: ``replicates`` cohorts of ``n`` people from
  :func:`rlsepi.cohort.iter_blocks` with the calibrated generating model
  (:func:`rlsepi.cohort.solve_model`), each from its own spawned seed.
- **Estimands**: the true conditional log odds ratios: female; the age terms, ``age10 =
  (age - 50) / 10`` with true coefficient ``2 gamma (a_c - 50) / 10`` and ``age10_sq`` with
  ``-gamma`` (expanding ``-gamma ((age - a_c) / 10)^2``); ferritin <= threshold; trimesters
  1-3; each locus per effect allele.
- **Methods**: the correctly specified model (the generating model's terms exactly), fitted
  by maximum likelihood (Newton-Raphson; the same estimates and inverse-information SEs as
  the statsmodels fit, which the tests check against R's glm) with Wald CIs.
- **Performance measures**: bias, empirical SE, model SE (root mean squared SE), coverage,
  each with its Monte Carlo SE (Morris et al. 2019, table 6).

When a trimester cell of a replicate has no events its log odds ratio has no finite MLE: that
estimate is left out of that term's measures (``replicates_used`` counts the rest) and the
other terms are estimated by the limit of their MLE (the fit without those rows and that
column). A replicate whose fit does not converge is left out entirely (``excluded``).

With the default parameters and n = 20,000 the trimester cells hold only about 4-10 events
per replicate; there the MLE of a log odds ratio has a downward small-sample bias (roughly
-1 / (2 x expected events in the cell), the Jensen gap of the log of a small count), which the
study shows (about -0.09 for trimester 1 over 200 replicates) and which shrinks as n grows.

References
----------
Morris TP, White IR, Crowther MJ (2019). Using simulation studies to evaluate statistical
methods. Statistics in Medicine 38:2074-2102.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy import stats

from rlsepi import cohort
from rlsepi.errors import RLSEpiError
from rlsepi.parameters import DEFAULT, Parameters
from rlsepi.risk_models import AGE_CENTRE, _empty_cells, _newton_logit, _small_blas

__all__ = ["SimulationStudy", "simulation_study", "performance", "true_effects", "correct_design"]


def true_effects(model: cohort.OutcomeModel) -> dict[str, float]:
    """The estimands: true coefficients of the correctly specified model, by term."""
    g, a_c = model.age_curvature, model.age_peak
    out = {
        "female": model.female,
        "age10": 2 * g * (a_c - AGE_CENTRE) / 10.0,
        "age10_sq": -g,
        f"ferritin_le{model.ferritin_threshold:g}": model.ferritin_low,
    }
    out.update({f"trimester{k + 1}": b for k, b in enumerate(model.trimester)})
    out.update(dict(model.loci))
    return out


def correct_design(df: pd.DataFrame, model: cohort.OutcomeModel) -> pd.DataFrame:
    """Design matrix of the correctly specified model (intercept named ``const``)."""
    a10 = (df["age"].to_numpy(dtype=float) - AGE_CENTRE) / 10.0
    tri = df["trimester"].fillna(0).astype(int).to_numpy()
    X = pd.DataFrame({
        "const": 1.0,
        "female": (df["sex"].astype(str).to_numpy() == "female").astype(float),
        "age10": a10,
        "age10_sq": a10**2,
        f"ferritin_le{model.ferritin_threshold:g}": (df["ferritin"].to_numpy() <= model.ferritin_threshold).astype(float),
        **{f"trimester{k}": (tri == k).astype(float) for k in (1, 2, 3)},
        **{rsid: df[rsid].to_numpy(dtype=float) for rsid, _ in model.loci},
    })
    return X


def performance(estimates: np.ndarray, ses: np.ndarray, truth: float, *, level: float = 0.95) -> dict[str, float]:
    """Bias, empirical SE, model SE and coverage with Monte Carlo SEs (Morris et al. 2019).

    Parameters
    ----------
    estimates, ses : array, shape (R,)
        Point estimates and model SEs of one estimand over R replicates.
    truth : float
    level : float
        Confidence level of the Wald intervals ``estimate ± z SE``.

    Notes
    -----
    With ``R`` replicates, estimates ``b_i`` and SEs ``s_i``:
    bias ``= mean(b) - truth``, MCSE ``= EmpSE / sqrt(R)``;
    EmpSE ``= sd(b)`` (divisor R - 1), MCSE ``= EmpSE / sqrt(2 (R - 1))``;
    ModSE ``= sqrt(mean(s^2))``, MCSE ``= sqrt(var(s^2) / (4 R ModSE^2))`` (also the plain
    mean of ``s``, MCSE ``sd(s) / sqrt(R)``);
    coverage ``= mean(|b - truth| <= z s)``, MCSE ``= sqrt(cov (1 - cov) / R)``.
    """
    b = np.asarray(estimates, dtype=float)
    s = np.asarray(ses, dtype=float)
    r = b.size
    if r < 2:
        raise RLSEpiError("performance measures need at least 2 replicates")
    z = stats.norm.ppf(0.5 + level / 2)
    emp = float(np.std(b, ddof=1))
    mod = float(math.sqrt(np.mean(s**2)))
    cover = float(np.mean(np.abs(b - truth) <= z * s))
    return {
        "bias": float(b.mean() - truth), "bias_mcse": emp / math.sqrt(r),
        "empirical_se": emp, "empirical_se_mcse": emp / math.sqrt(2 * (r - 1)),
        "model_se": mod, "model_se_mcse": float(math.sqrt(np.var(s**2, ddof=1) / (4 * r * mod**2))),
        "mean_model_se": float(s.mean()), "mean_model_se_mcse": float(np.std(s, ddof=1) / math.sqrt(r)),
        "coverage": cover, "coverage_mcse": float(math.sqrt(cover * (1 - cover) / r)),
    }


@dataclass(frozen=True)
class SimulationStudy:
    """Result of :func:`simulation_study`.

    Attributes
    ----------
    table : DataFrame
        One row per estimand: ``term, true_log_or, true_or, replicates_used, bias, bias_mcse, empirical_se,
        empirical_se_mcse, model_se, model_se_mcse, mean_model_se, mean_model_se_mcse, coverage,
        coverage_mcse`` (``model_se`` is the root mean squared SE of Morris et al.).
    estimates : DataFrame
        Per replicate and term: ``replicate, term, estimate, se, usable``.
    replicates, n, seed : int
    excluded : int
        Replicates left out entirely (non-convergence).
    level : float
    """

    table: pd.DataFrame
    estimates: pd.DataFrame = field(repr=False)
    replicates: int
    n: int
    seed: int
    excluded: int
    level: float

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def to_dict(self) -> dict[str, Any]:
        return {
            "design": {
                "aims": "bias, SE and CI coverage of the logistic fit of the correctly specified model",
                "data_generating_mechanism": "rlsepi.cohort with the calibrated generating model",
                "estimands": "true conditional log odds ratios", "methods": "maximum likelihood (Newton-Raphson), Wald CIs",
                "performance_measures": "bias, empirical SE, model SE, coverage, each with Monte Carlo SE",
                "reference": "Morris TP, White IR, Crowther MJ (2019), Stat Med 38:2074",
            },
            "replicates": self.replicates, "n": self.n, "seed": self.seed, "excluded": self.excluded,
            "level": self.level, "results": self.table.to_dict(orient="records"),
        }

    def summary(self) -> str:
        lines = [
            f"# Simulation study of the logistic fit (ADEMP; {self.replicates} replicates of {self.n:,} people, "
            f"seed {self.seed})", "",
            f"Replicates left out entirely (non-convergence): {self.excluded}. A trimester log odds ratio has no "
            "finite estimate in a replicate with no events in that trimester; 'used' counts the rest. Bias and SEs "
            "are on the log odds ratio scale; Monte Carlo SEs in brackets.", "",
            "| term | true OR | used | bias | empirical SE | model SE | coverage |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in self.table.itertuples():
            lines.append(f"| {r.term} | {r.true_or:.3f} | {r.replicates_used} | {r.bias:+.4f} ({r.bias_mcse:.4f}) | "
                         f"{r.empirical_se:.4f} ({r.empirical_se_mcse:.4f}) | {r.model_se:.4f} ({r.model_se_mcse:.4f}) | "
                         f"{100 * r.coverage:.1f}% ({100 * r.coverage_mcse:.1f}) |")
        return "\n".join(lines) + "\n"


def _replicate(plan: tuple[Parameters, cohort.OutcomeModel, int, np.random.SeedSequence]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Estimates, SEs and a usable mask (per term) for one simulated cohort.

    A dummy whose level 1 has no events (quasi-complete separation, e.g. an empty
    trimester cell) has no finite MLE; the limit of the MLE of the other coefficients is the
    fit without those rows and that column, which is what is used here, and the dummy's own
    estimate is marked unusable in this replicate.
    """
    params, model, n, seed = plan
    batches = list(cohort.iter_blocks(n, rng=seed, params=params, model=model))
    df = cohort.table_to_frame(pa.Table.from_batches(batches, schema=cohort.arrow_schema(params)))
    X = correct_design(df, model).to_numpy()
    y = df["rls"].to_numpy(dtype=float)
    with _small_blas(n):
        return _fit_replicate(X, y)


def _fit_replicate(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    k = X.shape[1] - 1
    est, se = np.full(k, np.nan), np.full(k, np.nan)
    usable = np.zeros(k, dtype=bool)
    rows = np.ones(len(y), dtype=bool)
    cols = np.ones(X.shape[1], dtype=bool)
    for j, level, _, events in _empty_cells(y, X):
        if level == 0 or events != 0:  # not the sparse-dummy pattern: give up on this replicate
            return est, se, usable
        rows &= X[:, j] != 1
        cols[j] = False
    fit = _newton_logit(y[rows], X[rows][:, cols])
    if not fit.converged:
        return est, se, usable
    idx = np.flatnonzero(cols)[1:] - 1
    est[idx] = fit.params[1:]
    se[idx] = fit.bse[1:]
    usable[idx] = True
    return est, se, usable


def simulation_study(*, replicates: int = 200, n: int = 20_000, rng: int | np.random.SeedSequence | None = 0,
                     params: Parameters = DEFAULT, level: float = 0.95, workers: int = 1) -> SimulationStudy:
    """Run the ADEMP simulation study of the logistic fit (see the module docstring).

    Parameters
    ----------
    replicates : int
        Number of simulated cohorts (R).
    n : int
        People per cohort.
    rng : int or SeedSequence
        Seed; replicate ``i`` uses the ``i``-th spawned child, so results do not depend on
        ``workers``.
    params : Parameters
    level : float
        Confidence level of the Wald intervals.
    workers : int
        Worker processes.

    Returns
    -------
    SimulationStudy

    Examples
    --------
    >>> s = simulation_study(replicates=3, n=5000, rng=1)
    >>> s.table["term"].tolist()[:3]
    ['female', 'age10', 'age10_sq']
    """
    if replicates < 2:
        raise RLSEpiError(f"replicates must be at least 2, got {replicates}")
    if n < 100:
        raise RLSEpiError(f"n must be at least 100, got {n}")
    root = cohort.seed_sequence(rng)
    seed_value = int(root.entropy) if isinstance(root.entropy, int) else -1
    model = cohort.solve_model(params)
    truth = true_effects(model)
    plans = [(params, model, n, child) for child in root.spawn(replicates)]
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_replicate, plans))
    else:
        results = [_replicate(p) for p in plans]
    est = np.array([r[0] for r in results])
    se = np.array([r[1] for r in results])
    usable = np.array([r[2] for r in results])
    terms = list(truth)
    if usable.any(axis=1).sum() < 2:
        raise RLSEpiError("fewer than 2 replicates gave a usable fit; increase n")
    rows = []
    for j, term in enumerate(terms):
        ok = usable[:, j]
        if ok.sum() < 2:
            perf = dict.fromkeys(("bias", "bias_mcse", "empirical_se", "empirical_se_mcse", "model_se",
                                  "model_se_mcse", "mean_model_se", "mean_model_se_mcse", "coverage",
                                  "coverage_mcse"), float("nan"))
        else:
            perf = performance(est[ok, j], se[ok, j], truth[term], level=level)
        rows.append({"term": term, "true_log_or": truth[term], "true_or": math.exp(truth[term]),
                     "replicates_used": int(ok.sum()), **perf})
    long = pd.DataFrame({
        "replicate": np.repeat(np.arange(replicates), len(terms)), "term": terms * replicates,
        "estimate": est.ravel(), "se": se.ravel(), "usable": usable.ravel(),
    })
    return SimulationStudy(table=pd.DataFrame(rows), estimates=long, replicates=replicates, n=n, seed=seed_value,
                           excluded=int((~usable.any(axis=1)).sum()), level=level)
