"""Power by simulation under the calibrated RLS model.

"I will sample N people from this population, fit this model, and test this term":
:func:`simulate_power` draws ``n`` people from the calibrated RLS population
(:mod:`rlsepi.cohort`), fits a logistic model (M0-M3 of :mod:`rlsepi.risk_models`, the
correctly specified generating model, or a user formula) and tests one term with a Wald test,
``replicates`` times; :func:`search_n` searches over N for a target power. Closed forms are in
:mod:`rlsepi.power`; where one exists the two agree within Monte Carlo error
(``tests/test_power.py``).

References
----------
Morris TP, White IR, Crowther MJ (2019). Using simulation studies to evaluate statistical
methods. Stat Med 38:2074 (Monte Carlo standard errors).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from rlsepi.errors import RLSEpiError
from rlsepi.parameters import DEFAULT, Parameters
from rlsepi.power import _prob

__all__ = ["SimulatedPower", "simulate_power", "NSearch", "search_n", "MODELS"]

MODELS = ("M0", "M1", "M2", "M3", "true")
"""Named models for :func:`simulate_power`: the nested risk models and the generating model."""


@dataclass(frozen=True)
class SimulatedPower:
    """Power of a Wald test by simulation under the calibrated RLS model.

    Attributes
    ----------
    n, replicates, seed : int
    term, model : str
        The tested term and the model (``M0``-``M3``, ``true`` or a formula).
    alpha : float
    power, power_mcse : float
        Share of replicates with p < alpha, and its Monte Carlo SE ``sqrt(p (1 - p) / R)``.
    truth : float
        The true value of the coefficient (log odds ratio).
    truth_se : float
        SE of a pseudo-true value estimated in a reference cohort (0 for an exact truth): the
        bias is known only to within it as well as to within its Monte Carlo SE.
    truth_source : str
        ``exact`` (the generating model's coefficient, or the crude female:male log odds ratio
        in expectation) or a reference cohort's estimate (a pseudo-true value for a
        misspecified model), with its SE.
    mean_estimate, bias, bias_mcse, empirical_se, mean_model_se : float
    failed : int
        Replicates whose fit failed (no convergence, or the term could not be estimated);
        counted as non-rejections.
    estimates : DataFrame
        Per replicate: ``estimate, se, pvalue, reject``.
    """

    n: int
    replicates: int
    seed: int
    term: str
    model: str
    alpha: float
    power: float
    power_mcse: float
    truth: float
    truth_se: float
    truth_source: str
    mean_estimate: float
    bias: float
    bias_mcse: float
    empirical_se: float
    mean_model_se: float
    failed: int
    estimates: pd.DataFrame = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in (
            "n", "replicates", "seed", "term", "model", "alpha", "power", "power_mcse", "truth", "truth_se", "truth_source",
            "mean_estimate", "bias", "bias_mcse", "empirical_se", "mean_model_se", "failed")}

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([self.to_dict()])

    def summary(self) -> str:
        return (f"power {100 * self.power:.1f}% (Monte Carlo SE {100 * self.power_mcse:.1f}) to detect '{self.term}' "
                f"in {self.model} with {self.n:,} people at alpha {self.alpha:g} ({self.replicates} replicates, seed "
                f"{self.seed}); true log OR {self.truth:.4f} ({self.truth_source}), mean estimate "
                f"{self.mean_estimate:.4f}, bias {self.bias:+.4f} (MCSE {self.bias_mcse:.4f}"
                + (f"; the pseudo-true value's own SE is {self.truth_se:.4f}" if self.truth_se > 0 else "")
                + f"); {self.failed} failed fits")


@dataclass(frozen=True)
class _Plan:
    n: int
    term: str
    model: str
    alpha: float
    params: Parameters
    outcome_model: Any


def _design_matrix(df: pd.DataFrame, model: str, outcome_model: Any, params: Parameters) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from rlsepi import risk_models as rm

    if model == "true":
        from rlsepi.risk_validate import correct_design

        X = correct_design(df, outcome_model)
        return df["rls"].to_numpy(dtype=float), X.to_numpy(), list(X.columns)
    frame, spec = _derive(df, params)
    if model in ("M0", "M1", "M2", "M3"):
        cols = rm.nested_specs(spec)[model].columns()
        X = rm._design(frame, cols)
    else:
        X, _ = rm._formula_design(frame, model)
    return frame["rls"].to_numpy(dtype=float), X.to_numpy(), list(X.columns)


_WEIGHTS: dict[int, tuple[Parameters, dict[str, float]]] = {}


def _weights(params: Parameters) -> dict[str, float]:
    """Score weights of ``params`` (cached per parameter object: many replicates share one)."""
    from rlsepi.risk_models import score_weights

    hit = _WEIGHTS.get(id(params))
    if hit is None or hit[0] is not params:
        hit = (params, score_weights(params))
        _WEIGHTS[id(params)] = hit
    return hit[1]


def _derive(df: pd.DataFrame, params: Parameters) -> tuple[pd.DataFrame, Any]:
    """The derived columns of :func:`rlsepi.risk_models.derive_columns` (quadratic age, both
    ferritin codings) for a simulated cohort, which is complete and valid by construction, so
    the validation that dominates the cost for small samples is skipped. A test checks that the
    two agree."""
    from rlsepi import risk_models as rm

    out = pd.DataFrame(index=df.index)
    out["rls"] = df["rls"].to_numpy(dtype=float)
    out["female"] = (df["sex"].astype(str).to_numpy() == "female").astype(float)
    out["age"] = df["age"].to_numpy(dtype=float)
    state = np.where(df["pregnant"].to_numpy(dtype=bool), df["trimester"].fillna(0).to_numpy(dtype=float), 0.0)
    for k in (1, 2, 3):
        out[f"trimester{k}"] = (state == k).astype(float)
    out["ferritin"] = df["ferritin"].to_numpy(dtype=float)
    weights = _weights(params)
    out["prs"] = sum(w * df[rs].to_numpy(dtype=float) for rs, w in weights.items())
    prs_mean, prs_sd = float(out["prs"].mean()), float(out["prs"].std(ddof=1))
    if not prs_sd > 0:
        raise RLSEpiError("the polygenic score does not vary in this sample")
    spec = rm.ModelSpec(age="quadratic", age_knots=(), ferritin="log2", prs_mean=prs_mean, prs_sd=prs_sd,
                        score_weights=weights, pregnancy=True)
    for name, col in rm.age_terms(out["age"].to_numpy(), spec).items():
        out[name] = col
    for coding in ("log2", "cut"):
        for name, col in rm.ferritin_terms(out["ferritin"].to_numpy(), coding).items():
            out[name] = col
    out["prs_sd"] = (out["prs"] - prs_mean) / prs_sd
    out["rls"] = out["rls"].astype(int)
    return out, spec


def _columns_of(model: str, params: Parameters, outcome_model: Any) -> list[str]:
    from rlsepi import cohort

    df = cohort.simulate(2000, rng=0, params=params)
    return _design_matrix(df, model, outcome_model, params)[2]


def _one_replicate(plan: _Plan, seed: np.random.SeedSequence) -> tuple[float, float]:
    import pyarrow as pa

    from rlsepi import cohort
    from rlsepi.risk_models import _small_blas

    batches = list(cohort.iter_blocks(plan.n, rng=seed, params=plan.params, model=plan.outcome_model))
    df = cohort.table_to_frame(pa.Table.from_batches(batches, schema=cohort.arrow_schema(plan.params)))
    try:
        y, X, cols = _design_matrix(df, plan.model, plan.outcome_model, plan.params)
    except RLSEpiError:
        return float("nan"), float("nan")
    j = cols.index(plan.term)
    if np.ptp(X[:, j]) == 0:
        return float("nan"), float("nan")
    with _small_blas(plan.n):
        try:
            return _fit_term(y, X, j)
        except (np.linalg.LinAlgError, FloatingPointError, ValueError):
            return float("nan"), float("nan")


def _fit_term(y: np.ndarray, X: np.ndarray, j: int) -> tuple[float, float]:
    """Estimate and SE of column ``j`` of a logistic fit.

    A 0/1 column other than ``j`` whose level 1 has no rows, no events or only events (an
    empty or tiny trimester cell) has no finite MLE; the limit of the MLE of the other
    coefficients is the fit without those rows and that column, which is used here (as in
    :mod:`rlsepi.risk_validate`).
    """
    from rlsepi.risk_models import _newton_logit

    rows = np.ones(len(y), dtype=bool)
    cols = np.ones(X.shape[1], dtype=bool)
    for k in range(1, X.shape[1]):
        if k == j:
            continue
        x = X[:, k]
        if not np.isin(x, (0.0, 1.0)).all():
            continue
        one = rows & (x == 1)
        events = y[one].sum()
        if one.sum() == 0 or events == 0 or events == one.sum():
            rows &= x != 1
            cols[k] = False
    Xs = X[rows][:, cols]
    ys = y[rows]
    jj = int(cols[:j].sum())
    if np.ptp(Xs[:, jj]) == 0 or ys.sum() in (0, len(ys)):
        return float("nan"), float("nan")
    fit = _newton_logit(ys, Xs)
    if not fit.converged:
        return float("nan"), float("nan")
    se = float(fit.bse[jj])
    if not (math.isfinite(se) and 0 < se < 1e3):
        return float("nan"), float("nan")
    return float(fit.params[jj]), se


def _chunk(args: tuple[_Plan, list[np.random.SeedSequence]]) -> list[tuple[float, float]]:
    plan, seeds = args
    return [_one_replicate(plan, s) for s in seeds]


def _truth(model: str, term: str, cols: list[str], params: Parameters, outcome_model: Any, reference_n: int,
           rng: np.random.SeedSequence) -> tuple[float, float, str]:
    from rlsepi import cohort
    from rlsepi.risk_models import _newton_logit

    if model == "true":
        from rlsepi.risk_validate import true_effects

        return float(true_effects(outcome_model)[term]), 0.0, "exact: the generating model's coefficient"
    if cols == ["const", "female"]:
        fig = cohort.expected_figures(outcome_model, params)
        return math.log(fig["female_male_or"]), 0.0, "exact: the crude female:male log odds ratio in expectation"
    df = cohort.simulate(reference_n, rng=rng, params=params)
    y, X, c = _design_matrix(df, model, outcome_model, params)
    fit = _newton_logit(y, X)
    j = c.index(term)
    se = float(fit.bse[j])
    return float(fit.params[j]), se, (f"pseudo-true value: estimate in a reference cohort of {reference_n:,} people "
                                      f"(SE {se:.4f})")


def _run_replicates(plan: _Plan, seeds: list[np.random.SeedSequence], workers: int,
                    progress: Callable[[int, int], None] | None) -> list[tuple[float, float]]:
    total = len(seeds)
    size = max(1, min(25, total // (4 * max(workers, 1)) or 1))
    chunks = [seeds[i:i + size] for i in range(0, total, size)]
    out: list[tuple[float, float]] = []
    if workers > 1 and len(chunks) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as pool:
            for res in pool.map(_chunk, [(plan, c) for c in chunks]):
                out.extend(res)
                if progress:
                    progress(len(out), total)
    else:
        for c in chunks:
            out.extend(_chunk((plan, c)))
            if progress:
                progress(len(out), total)
    return out


def _check_model(model: str) -> str:
    model = model.strip()
    if model in MODELS or "~" in model:
        return model
    raise RLSEpiError(f"model must be one of {', '.join(MODELS)} or a formula such as 'rls ~ female + age10', "
                      f"got '{model}'")


def _set_up(term: str, model: str, replicates: int, params: Parameters, reference_n: int,
            rng: Any) -> tuple[str, Any, list[np.random.SeedSequence], float, float, str, int]:
    """What every power simulation needs first: the checked model and term, the solved outcome
    model, one seed per replicate and the true coefficient (from a seed of its own)."""
    from rlsepi import cohort

    if replicates < 2:
        raise RLSEpiError(f"replicates must be at least 2, got {replicates}")
    model = _check_model(model)
    outcome_model = cohort.solve_model(params)
    cols = _columns_of(model, params, outcome_model)
    if term not in cols[1:]:
        raise RLSEpiError(f"term '{term}' is not in model {model}; its terms are {', '.join(cols[1:])}")
    root = cohort.seed_sequence(rng)
    seed_value = int(root.entropy) if isinstance(root.entropy, int) else -1
    truth_seed, *seeds = root.spawn(replicates + 1)
    truth, truth_se, source = _truth(model, term, cols, params, outcome_model, reference_n, truth_seed)
    return model, outcome_model, seeds, truth, truth_se, source, seed_value


def simulate_power(n: int, *, term: str, model: str = "M1", replicates: int = 1000, alpha: float = 0.05,
                   params: Parameters = DEFAULT, rng: int | np.random.SeedSequence | None = 0, workers: int = 1,
                   reference_n: int = 200_000,
                   progress: Callable[[int, int], None] | None = None) -> SimulatedPower:
    """Power to detect ``term`` with ``n`` people drawn from the calibrated RLS population.

    Each replicate draws ``n`` people (:func:`rlsepi.cohort.iter_blocks`, its own spawned seed),
    fits ``model`` by maximum likelihood and rejects when the two-sided Wald p-value of
    ``term`` is below ``alpha``.

    Parameters
    ----------
    n : int
        People per simulated study.
    term : str
        A column of the model's design: e.g. ``prs_sd`` (M1-M3), ``female``, ``age10``,
        ``ferritin_halving`` (M2, M3), ``trimester3`` (M3), a locus such as ``rs2300478``
        (model ``true``), or a term of a formula.
    model : str
        ``M0``-``M3``, ``true`` (the correctly specified generating model) or a formula over
        the derived columns of :mod:`rlsepi.risk_models` (``rls ~ female + age10``).
    replicates : int
    alpha : float
    params : Parameters
    rng : int or SeedSequence
        Replicate ``i`` uses the ``i``-th spawned child: results do not depend on ``workers``.
    workers : int
        Worker processes.
    reference_n : int
        People in the reference cohort that gives the pseudo-true value when no exact truth
        exists (a misspecified model's coefficient is defined by the population it is fitted to).
    progress : callable, optional
        Called with (done, total) as replicates finish.

    Returns
    -------
    SimulatedPower
    """
    n = int(n)
    if n < 50:
        raise RLSEpiError(f"n must be at least 50 people, got {n}")
    _prob("alpha", alpha)
    model, outcome_model, seeds, truth, truth_se, source, seed_value = _set_up(
        term, model, replicates, params, reference_n, rng)
    plan = _Plan(n, term, model, alpha, params, outcome_model)
    res = np.array(_run_replicates(plan, seeds, workers, progress), dtype=float)
    return _summarise(plan, res, truth, truth_se, source, seed_value)


def _summarise(plan: _Plan, res: np.ndarray, truth: float, truth_se: float, source: str, seed: int) -> SimulatedPower:
    est, se = res[:, 0], res[:, 1]
    ok = np.isfinite(est) & np.isfinite(se)
    pval = np.full(len(est), np.nan)
    pval[ok] = 2 * stats.norm.sf(np.abs(est[ok] / se[ok]))
    reject = ok & (np.nan_to_num(pval, nan=1.0) < plan.alpha)
    r = len(est)
    pw = float(reject.mean())
    used = est[ok]
    emp = float(np.std(used, ddof=1)) if used.size > 1 else float("nan")
    return SimulatedPower(
        n=plan.n, replicates=r, seed=seed, term=plan.term, model=plan.model, alpha=plan.alpha, power=pw,
        power_mcse=math.sqrt(pw * (1 - pw) / r), truth=truth, truth_se=truth_se, truth_source=source,
        mean_estimate=float(used.mean()) if used.size else float("nan"),
        bias=float(used.mean() - truth) if used.size else float("nan"),
        bias_mcse=emp / math.sqrt(used.size) if used.size > 1 else float("nan"), empirical_se=emp,
        mean_model_se=float(se[ok].mean()) if used.size else float("nan"), failed=int((~ok).sum()),
        estimates=pd.DataFrame({"estimate": est, "se": se, "pvalue": pval, "reject": reject}))


@dataclass(frozen=True)
class NSearch:
    """Result of :func:`search_n`: the smallest N found to reach the target power.

    Attributes
    ----------
    target_power : float
    n : int
        The smallest N evaluated whose simulated power reached the target.
    result : SimulatedPower
        The simulation at that N.
    evaluations : DataFrame
        Every N tried: ``n, power, power_mcse``.
    """

    target_power: float
    n: int
    result: SimulatedPower
    evaluations: pd.DataFrame

    def to_dict(self) -> dict[str, Any]:
        return {"target_power": self.target_power, "n": self.n, "result": self.result.to_dict(),
                "evaluations": self.evaluations.to_dict(orient="records")}

    def to_frame(self) -> pd.DataFrame:
        return self.evaluations.copy()

    def summary(self) -> str:
        return (f"about {self.n:,} people reach {100 * self.target_power:.0f}% power: {self.result.summary()}. "
                f"N is known to within the Monte Carlo error of the power at neighbouring N "
                f"({len(self.evaluations)} values of N tried).")


def search_n(target_power: float, *, term: str, model: str = "M1", replicates: int = 500, alpha: float = 0.05,
             params: Parameters = DEFAULT, rng: int | None = 0, workers: int = 1, n_start: int = 500,
             n_max: int = 2_000_000, rel_tol: float = 0.05, reference_n: int = 200_000,
             progress: Callable[[int, int], None] | None = None) -> NSearch:
    """Search over N for the smallest sample reaching ``target_power`` (by simulation).

    Doubles N from ``n_start`` until the simulated power reaches the target, then bisects on
    log N until the bracket is within ``rel_tol``. Every N uses the same replicate seeds
    (common random numbers), so the simulated power is nearly monotone in N.

    Parameters
    ----------
    target_power : float
    term, model, replicates, alpha, params, rng, workers, reference_n
        As :func:`simulate_power`.
    n_start, n_max : int
    rel_tol : float
    progress : callable, optional
        Called with (done, total) replicates of the N being simulated.
    """
    _prob("target_power", target_power)
    model, outcome_model, seeds, truth, truth_se, source, seed_value = _set_up(
        term, model, replicates, params, reference_n, rng)
    cache: dict[int, SimulatedPower] = {}

    def run(m: int) -> SimulatedPower:
        if m not in cache:
            plan = _Plan(m, term, model, alpha, params, outcome_model)
            res = np.array(_run_replicates(plan, seeds, workers, progress), dtype=float)
            cache[m] = _summarise(plan, res, truth, truth_se, source, seed_value)
        return cache[m]

    lo, hi = 0, max(50, int(n_start))
    while run(hi).power < target_power:
        lo, hi = hi, hi * 2
        if hi > n_max:
            raise RLSEpiError(f"even {lo:,} people do not reach {target_power:g} power; raise n_max or test a larger effect")
    lo = max(lo, 50)
    while lo < hi and hi / lo > 1 + rel_tol and lo != hi:
        mid = int(round(math.sqrt(lo * hi)))
        if mid in (lo, hi):
            break
        if run(mid).power >= target_power:
            hi = mid
        else:
            lo = mid
    ev = pd.DataFrame([{"n": m, "power": s.power, "power_mcse": s.power_mcse} for m, s in sorted(cache.items())])
    return NSearch(target_power=target_power, n=hi, result=cache[hi], evaluations=ev)
