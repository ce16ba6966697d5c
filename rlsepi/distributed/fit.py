"""Logistic models fitted out of core by IRLS (reducing X'WX and X'W(y - p) over partitions at
every iteration), and the nested risk models M0-M3 on a dataset.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rlsepi.distributed.cluster import _key_prefix, _run
from rlsepi.distributed.dataset import (
    Partition,
    _id_summary,
    check_unique_ids,
    partitions,
)
from rlsepi.errors import DataValidationError

if TYPE_CHECKING:
    import pandas as pd
    from distributed import Client

    from rlsepi.parameters import Parameters


# --- logistic regression by IRLS over partitions ------------------------------------------


FIT_CACHE_BYTES = 2 << 30
"""Bytes of design matrices one process (a Dask worker, or this one) keeps between IRLS passes
(at most a quarter of a worker's memory limit); partitions beyond it are re-read every pass."""


@dataclass(frozen=True)
class _Cache:
    """Which fit a cached partition belongs to, and the cache's size limit in bytes."""

    token: str
    budget: int


_CACHE: dict[Any, Any] = {}
_CACHE_STATE: dict[str, Any] = {"token": None, "bytes": 0}
_CACHE_LOCK = threading.Lock()


def _nbytes(value: Any) -> int:
    """Bytes of the arrays in ``value`` (nested tuples, lists, dicts), each buffer counted once."""
    seen: dict[int, int] = {}

    def walk(v: Any) -> None:
        if isinstance(v, np.ndarray):
            base = v
            while isinstance(base.base, np.ndarray):
                base = base.base
            seen[id(base)] = base.nbytes
        elif isinstance(v, (tuple, list)):
            for x in v:
                walk(x)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)

    walk(value)
    return sum(seen.values())


def _cache_limit(budget: int) -> int:
    try:
        from distributed import get_worker

        limit = get_worker().memory_manager.memory_limit
    except (ImportError, ValueError, AttributeError):
        return budget
    return min(budget, int(limit) // 4) if limit else budget


def _cache_get(cache: _Cache | None, key: Any) -> Any:
    """The cached value of ``key`` for this fit (None when absent)."""
    if cache is None:
        return None
    with _CACHE_LOCK:
        return _CACHE.get(key) if _CACHE_STATE["token"] == cache.token else None


def _cache_put(cache: _Cache | None, key: Any, value: Any) -> None:
    """Keep ``value`` for the next pass when it fits in the budget (a new fit empties the cache)."""
    if cache is None:
        return
    size = _nbytes(value)
    with _CACHE_LOCK:
        if _CACHE_STATE["token"] != cache.token:
            _CACHE.clear()
            _CACHE_STATE.update(token=cache.token, bytes=0)
        if key in _CACHE:
            _CACHE_STATE["bytes"] -= _nbytes(_CACHE.pop(key))
        if _CACHE_STATE["bytes"] + size <= _cache_limit(cache.budget):
            _CACHE[key] = value
            _CACHE_STATE["bytes"] += size


def _clear_cache() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()
        _CACHE_STATE.update(token=None, bytes=0)


@contextlib.contextmanager
def _fit_cache(client: Client | None, budget: int) -> Iterator[_Cache | None]:
    """A cache for one fit, emptied on every process afterwards (None when ``budget`` is 0)."""
    import uuid

    if budget <= 0:
        yield None
        return
    try:
        yield _Cache(uuid.uuid4().hex, int(budget))
    finally:
        _clear_cache()
        if client is not None:
            with contextlib.suppress(Exception):  # a worker lost meanwhile has nothing left to free
                client.run(_clear_cache)


@dataclass(frozen=True)
class LogisticFit:
    """A logistic model fitted out of core by IRLS.

    Attributes
    ----------
    name, terms : the model and its design columns (``const`` first).
    params, bse : maximum-likelihood coefficients and model-based standard errors.
    llf : log-likelihood at the estimate.
    n, events : rows and cases used.
    iterations : IRLS iterations (each one pass over every partition).
    converged : whether the largest coefficient step fell below the tolerance (or, for a
        model with separation, the log-likelihood stopped changing).
    dropped : terms left out because the data cannot estimate them, and why.
    extreme : rows whose fitted probability is within 1e-10 of 0 or 1.
    """

    name: str
    terms: tuple[str, ...]
    params: np.ndarray
    bse: np.ndarray
    llf: float
    n: int
    events: int
    iterations: int
    converged: bool
    alpha: float = 0.05
    formula: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)
    extreme: int = 0

    @property
    def deviance(self) -> float:
        return -2.0 * self.llf

    @property
    def aic(self) -> float:
        return -2.0 * self.llf + 2 * len(self.params)

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd
        from scipy import stats

        z = stats.norm.ppf(1 - self.alpha / 2)
        b, se = self.params, self.bse
        lo, hi = b - z * se, b + z * se
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            return pd.DataFrame({
                "term": list(self.terms), "estimate": b, "se": se, "z": b / se,
                "p_value": 2 * stats.norm.sf(np.abs(b / se)), "ci_lower": lo, "ci_upper": hi,
                "odds_ratio": np.exp(b), "or_lower": np.exp(lo), "or_upper": np.exp(hi), "ci_method": "wald",
            })

    def summary(self) -> str:
        head = (f"{self.name}: {self.formula or ' + '.join(self.terms)}; n = {self.n:,}, events = {self.events:,}; "
                f"log-likelihood {self.llf:.3f}, AIC {self.aic:.1f}; {self.iterations} IRLS iterations"
                + ("" if self.converged else " (NOT converged)"))
        return head + "\n" + self.to_frame()[["term", "estimate", "se", "odds_ratio", "or_lower", "or_upper"]] \
            .to_string(index=False, float_format=lambda v: f"{v:.4g}")


@dataclass(frozen=True)
class _IRLSJob:
    part: Partition
    design: Callable[[pd.DataFrame], tuple[np.ndarray, list[np.ndarray]]]
    read: tuple[str, ...]
    betas: tuple[np.ndarray, ...]
    keep: tuple[tuple[int, ...] | None, ...] = ()
    cache: _Cache | None = None


def _partition_design(job: _IRLSJob) -> tuple[np.ndarray, list[np.ndarray]]:
    """``design(partition)``, from this process's cache when an earlier pass left it there.

    A design with a ``load(partition, cache)`` method keeps what it needs itself (the nested
    models keep compact columns and rebuild the matrix each pass); any other design's matrices
    are kept as they are.
    """
    load = getattr(job.design, "load", None)
    if load is not None:
        y, Xs = load(job.part, job.cache)
        return np.ascontiguousarray(y, dtype=np.float64), [np.asfortranarray(X, dtype=np.float64) for X in Xs]
    key = ("design", job.part)
    hit = _cache_get(job.cache, key)
    if hit is not None:
        return hit
    y, Xs = job.design(job.part.read(job.read))
    y = np.ascontiguousarray(y, dtype=np.float64)
    Xs = [np.asfortranarray(X, dtype=np.float64) for X in Xs]
    _cache_put(job.cache, key, (y, Xs))
    return y, Xs


def _compact(a: np.ndarray) -> np.ndarray:
    """``a`` in the smallest of int8, int16 and float64 that holds every value exactly."""
    for t in (np.int8, np.int16):
        info = np.iinfo(t)
        if a.size == 0 or (np.all(np.isfinite(a)) and info.min <= a.min() and a.max() <= info.max):
            small = a.astype(t)
            if np.array_equal(small, a):
                return small
    return a


def _model_matrix(X: np.ndarray, keep: tuple[int, ...] | None) -> np.ndarray:
    if keep is None:
        return X
    k = len(keep)
    return X[:, :k] if keep == tuple(range(k)) else X[:, list(keep)]  # a prefix is a view (no copy)


def _irls_partition(job: _IRLSJob) -> list[tuple[Any, ...]]:
    """For each model at its current coefficients: X'WX, X'(y - p), log-likelihood, n, events and
    the rows with a fitted probability within 1e-10 of 0 or 1."""
    from scipy import special

    y, Xs = _partition_design(job)
    out = []
    for m, b in enumerate(job.betas):
        X = _model_matrix(Xs[m], job.keep[m] if job.keep else None)
        eta = X @ b
        p = special.expit(eta)
        w = p * (1.0 - p)
        extreme = int(np.count_nonzero((p < 1e-10) | (p > 1 - 1e-10)))
        out.append((X.T @ (X * w[:, None]), X.T @ (y - p), float(np.sum(y * eta - np.logaddexp(0.0, eta))),
                    int(len(y)), int(y.sum()), extreme))
    return out


def _design_partition(job: _IRLSJob) -> dict[str, Any]:
    """What :func:`rlsepi.schema.inestimable_from_sums` and the separation check need of the
    partition's (shared, nested models') design matrix: X'X, column sums, minima, maxima, which
    columns are 0/1, and the events where each is 1."""
    y, Xs = _partition_design(job)
    X, n = Xs[0], len(y)
    return {"gram": X.T @ X, "sums": X.sum(axis=0), "n": n, "events": float(y.sum()),
            "lowest": X.min(axis=0) if n else np.full(X.shape[1], np.inf),
            "highest": X.max(axis=0) if n else np.full(X.shape[1], -np.inf),
            "binary": ((X == 0) | (X == 1)).all(axis=0), "y_ones": y @ X}


def _combine_design(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    acc = {k: np.array(v) for k, v in items[0].items()}
    for d in items[1:]:
        for k in ("gram", "sums", "n", "events", "y_ones"):
            acc[k] = acc[k] + d[k]
        acc["lowest"] = np.minimum(acc["lowest"], d["lowest"])
        acc["highest"] = np.maximum(acc["highest"], d["highest"])
        acc["binary"] = acc["binary"] & d["binary"]
    return acc


def _empty_cells(stats_: dict[str, Any], names: Sequence[str], keep: Sequence[int]) -> list[tuple[str, int, int, int]]:
    """Binary terms with a level that has no events or only events: (term, level, rows, events)."""
    n, events = int(stats_["n"]), int(round(float(stats_["events"])))
    out = []
    for j in keep:
        if names[j] == "const" or not stats_["binary"][j]:
            continue
        ones, ev1 = int(round(float(stats_["sums"][j]))), int(round(float(stats_["y_ones"][j])))
        for v, rows, ev in ((0, n - ones, events - ev1), (1, ones, ev1)):
            if rows and (ev == 0 or ev == rows):
                out.append((names[j], v, rows, ev))
    return out


def _newton_step(H: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``H^-1 g`` by a Cholesky factor of H scaled to a unit diagonal (no warning for scale alone)."""
    from scipy import linalg

    d = np.sqrt(np.diag(H))
    if not np.all(d > 0) or not np.all(np.isfinite(H)):
        raise linalg.LinAlgError("not positive definite")
    c = linalg.cho_factor(H / d[:, None] / d[None, :], check_finite=False)
    return linalg.cho_solve(c, g / d, check_finite=False) / d


def fit_logistic(
    path: str | Path,
    design: Callable[[pd.DataFrame], tuple[np.ndarray, list[np.ndarray]]],
    terms: Sequence[Sequence[str]],
    *,
    read: Sequence[str],
    names: Sequence[str] | None = None,
    client: Client | None = None,
    tol: float = 1e-11,
    maxiter: int = 50,
    alpha: float = 0.05,
    progress: bool = False,
    start: Sequence[np.ndarray] | None = None,
    parts: Sequence[Partition] | None = None,
    keep: Sequence[Sequence[int] | None] | None = None,
    separated: Sequence[bool] | None = None,
    cache_bytes: int = FIT_CACHE_BYTES,
) -> list[LogisticFit]:
    """Fit several logistic models at once by IRLS, one pass over the partitions per iteration.

    Parameters
    ----------
    path : path
        A Parquet file or dataset folder.
    design : callable
        ``design(partition_frame) -> (y, [X_1, X_2, ...])``: the outcome (0/1 floats) and each
        model's design matrix for one partition's rows. Must be picklable (a module-level
        function or a frozen dataclass instance) when a client is used.
    terms : sequence of sequences of str
        Each model's column names.
    read : sequence of str
        Columns the design needs from the file.
    start : sequence of arrays, optional
        Starting coefficients of each model (zeros by default). Starting from a fit on one
        partition saves about half the passes; the estimate does not depend on it.
    parts : sequence of Partition, optional
        Fit these partitions only (default: all of ``path``).
    keep : sequence, optional
        Per model, the columns of its design matrix to use (None: all); ``terms`` name them.
    separated : sequence of bool, optional
        Models known to have (quasi-)complete separation: their fit stops when the
        log-likelihood stops changing (relative change below 1e-13), since a coefficient
        diverges.
    cache_bytes : int
        Design matrices kept per process between passes (see :data:`FIT_CACHE_BYTES`); 0
        re-reads every partition on every pass.

    Notes
    -----
    Each iteration sends each worker the current coefficients (a few numbers per model) and
    gets back, per partition and model, :math:`X^\\top W X` (p x p), :math:`X^\\top (y - p)` and
    the log-likelihood; the Newton step :math:`\\beta \\leftarrow \\beta + (X^\\top W X)^{-1}
    X^\\top (y - p)`, with :math:`W = \\mathrm{diag}(p(1-p))`, is the IRLS step. The fit stops
    when every coefficient moves less than ``tol``, and the standard errors come from the
    information matrix at the estimate (one more pass). The result is the maximum-likelihood
    estimate, equal to an in-memory IRLS fit up to floating-point summation order.

    Each partition is read and its design built once: the matrices stay in the memory of the
    process that built them (up to ``cache_bytes``) and later passes go to the same worker,
    so a pass costs two matrix products per model and partition.
    """
    with _fit_cache(client, cache_bytes) as cache:
        return _fit_logistic(path, design, terms, read=read, names=names, client=client, tol=tol, maxiter=maxiter,
                             alpha=alpha, progress=progress, start=start, parts=parts, keep=keep,
                             separated=separated, cache=cache)


def _fit_logistic(path: str | Path, design: Callable[[pd.DataFrame], tuple[np.ndarray, list[np.ndarray]]],
                  terms: Sequence[Sequence[str]], *, read: Sequence[str], names: Sequence[str] | None,
                  client: Client | None, tol: float, maxiter: int, alpha: float, progress: bool,
                  start: Sequence[np.ndarray] | None, parts: Sequence[Partition] | None,
                  keep: Sequence[Sequence[int] | None] | None, separated: Sequence[bool] | None,
                  cache: _Cache | None) -> list[LogisticFit]:
    parts = list(parts) if parts is not None else partitions(path)
    keep_ = tuple(None if k is None else tuple(int(i) for i in k) for k in keep) if keep is not None else ()
    betas = [np.zeros(len(t)) for t in terms] if start is None else [np.array(b, dtype=float) for b in start]
    sep = list(separated) if separated is not None else [False] * len(terms)
    done = [False] * len(terms)
    iters = [0] * len(terms)
    last_llf = [math.nan] * len(terms)
    names = list(names or [f"M{i}" for i in range(len(terms))])
    stats_: list[Any] = []
    for it in range(maxiter + 1):
        jobs = [_IRLSJob(p, design, tuple(read), tuple(betas), keep_, cache) for p in parts]
        results = _run(client, _irls_partition, jobs, progress=progress and it == 0, key=_key_prefix(f"irls{it}"),
                       pin=True)
        stats_ = [tuple(_sum(r[m] for r in results)) for m in range(len(terms))]
        if all(done) or it == maxiter:
            break
        for m, (H, g, llf, _, _, _) in enumerate(stats_):
            if done[m]:
                continue
            if sep[m] and abs(llf - last_llf[m]) <= 1e-13 * max(1.0, abs(llf)):
                done[m] = True  # the log-likelihood no longer changes: stop at these coefficients
                continue
            last_llf[m] = llf
            try:
                step = _newton_step(H, g)
            except (np.linalg.LinAlgError, ValueError):
                raise DataValidationError(
                    f"model {names[m]}: the information matrix is singular (a constant or duplicated "
                    "column, or separation); it cannot be fitted") from None
            betas[m] = betas[m] + step
            iters[m] += 1
            if np.max(np.abs(step)) < tol:
                done[m] = True
    fits = []
    for m, (H, _, llf, n, events, extreme) in enumerate(stats_):
        with np.errstate(invalid="ignore", divide="ignore"):
            try:
                d = np.sqrt(np.diag(H))
                inv = np.linalg.inv(H / d[:, None] / d[None, :]) / d[:, None] / d[None, :]
                bse = np.sqrt(np.diag(inv))
            except np.linalg.LinAlgError:
                bse = np.full(len(betas[m]), np.inf)
        fits.append(LogisticFit(names[m], tuple(terms[m]), betas[m], bse, float(llf), int(n), int(events),
                                iters[m], done[m], alpha=alpha, extreme=int(extreme)))
    return fits


def _sum(items: Iterator[tuple[Any, ...]]) -> tuple[Any, ...]:
    acc: list[Any] | None = None
    for item in items:
        # copy the first: arrays that crossed the network are read-only, which scipy's solve refuses
        acc = [np.array(x) for x in item] if acc is None else [a + b for a, b in zip(acc, item)]
    assert acc is not None
    return tuple(acc)


def wald_lr(small: LogisticFit, big: LogisticFit) -> dict[str, float]:
    """Likelihood-ratio test of a model against a larger one that nests it."""
    from scipy import stats

    lr = max(0.0, 2 * (big.llf - small.llf))
    df = len(big.params) - len(small.params)
    return {"smaller": small.name, "larger": big.name, "lr_statistic": lr, "df": df,
            "lr_p_value": float(stats.chi2.sf(lr, df)) if df > 0 else math.nan}


# --- the nested risk models (M0-M3) out of core ----------------------------------------------


@functools.lru_cache(maxsize=1)
def not_out_of_core() -> str:
    """What the out-of-core fit leaves out, and how big an in-memory sample is enough for it."""
    from rlsepi.parameters import DEFAULT
    from rlsepi.risk_models import hanley_mcneil_se

    prevalence, auc = DEFAULT.targets.prevalence.value, 0.62  # 0.62: about the AUC of M0 on the synthetic cohort
    se = {n: hanley_mcneil_se(auc, prevalence * n, (1 - prevalence) * n) for n in (1_000_000, 100_000)}
    return (
        "AUC with its DeLong interval and test, the Brier score, and cross-validated AUC and calibration are "
        "not computed out of core: DeLong's method needs every person's fitted risk ranked against every "
        "other's, and cross-validation refits on row subsets. Fit a sample in memory for them (rlsepi fit "
        f"without --scheduler): by Hanley and McNeil's formula at an AUC of {auc:g} and {prevalence:.0%} prevalence, "
        f"a sample of 1,000,000 people gives the AUC a standard error of about {se[1_000_000]:.2g}, and 100,000 "
        f"people about {se[100_000]:.2g}"
    )


@dataclass(frozen=True)
class _NestedDesign:
    """Per-partition design of M0-M3 under one global spec (picklable, runs on workers)."""

    columns: dict[str, str]
    codes: dict[str, dict[str, str]]
    need: tuple[str, ...]
    ferritin: str
    params: Any
    spec: Any = None  # the global ModelSpec (None in the summary pass)
    models: tuple[tuple[str, ...], ...] = ()
    allow_duplicate_ids: bool = False

    def frame(self, raw: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
        import warnings

        from rlsepi.errors import DataQualityWarning
        from rlsepi.risk_models import derive_columns
        from rlsepi.schema import harmonise

        with warnings.catch_warnings():  # repeated IDs, when allowed, are counted once for all partitions
            warnings.simplefilter("ignore", DataQualityWarning)
            df, report = harmonise(raw, columns=self.columns, codes=self.codes, require=self.need,
                                   allow_duplicate_ids=self.allow_duplicate_ids)
            frame, _, dropped = derive_columns(df.drop(columns=["person_id"], errors="ignore"),
                                               ferritin=self.ferritin, age="quadratic", params=self.params)
        dropped = {**{f"missing {k}": int(v) for k, v in report.missing.items() if v}, **dropped}
        return frame, dropped

    def read_columns(self) -> list[str]:
        """The file's names of the columns the design needs (and ``person_id``, for its check)."""
        return [self.columns.get(c, c) for c in (*self.need, "trimester", "person_id")]

    def union(self) -> tuple[str, ...]:
        """Every model's columns, in order of first appearance."""
        return tuple(dict.fromkeys(c for cols in self.models for c in cols))

    def base(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """The columns of the frame that the design is built from, kept between passes: 0/1
        columns and whole-year ages as int8 (exactly their values), so about 22 bytes a person
        with log2 ferritin instead of the matrix's 80. The age terms and the standardised score
        are rebuilt from ``age``, ``prs`` and the spec each pass."""
        ferritin = ["ferritin_halving"] if self.ferritin == "log2" else ["ferritin_lt50", "ferritin_50_75"]
        cols = ["rls", "female", "age", "prs", *ferritin, "trimester1", "trimester2", "trimester3"]
        return {c: _compact(frame[c].to_numpy(dtype=np.float64)) for c in cols}

    def matrices(self, base: Mapping[str, np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """The outcome and the design of every column of :meth:`union` (const first, column-major)."""
        from rlsepi.risk_models import age_terms

        cols = dict(base)
        cols.update(age_terms(base["age"], self.spec))
        cols["prs_sd"] = (base["prs"] - self.spec.prs_mean) / self.spec.prs_sd
        names = self.union()
        X = np.empty((len(base["rls"]), 1 + len(names)), dtype=np.float64, order="F")
        X[:, 0] = 1.0
        for j, c in enumerate(names, start=1):
            X[:, j] = cols[c]
        return np.ascontiguousarray(base["rls"], dtype=np.float64), [X] * len(self.models)

    def load(self, part: Partition, cache: _Cache | None) -> tuple[np.ndarray, list[np.ndarray]]:
        """:meth:`matrices` of a partition, from the columns an earlier pass left in this process's
        cache (the partition is read again only when they are not there)."""
        base = _cache_get(cache, ("frame", part))
        if base is None:
            base = self.base(self.frame(part.read(self.read_columns()))[0])
            _cache_put(cache, ("frame", part), base)
        return self.matrices(base)

    def __call__(self, raw: pd.DataFrame) -> tuple[np.ndarray, list[np.ndarray]]:
        return self.matrices(self.base(self.frame(raw)[0]))


@dataclass(frozen=True)
class _SummaryJob:
    part: Partition
    design: _NestedDesign
    cache: _Cache | None


def _summary_partition(job: _SummaryJob) -> dict[str, Any]:
    raw = job.part.read(job.design.read_columns())
    ids = _id_summary(raw, job.design.columns.get("person_id", "person_id"))
    frame, dropped = job.design.frame(raw)
    del raw
    prs = frame["prs"].to_numpy(dtype=float)
    n = len(prs)
    mean = float(prs.mean()) if n else 0.0
    out = {"n": n, "mean": mean, "m2": float(((prs - mean) ** 2).sum()), "events": int(frame["rls"].sum()),
           "ages": frame["age"].value_counts(), "dropped": dropped, "ids": ids}
    _cache_put(job.cache, ("frame", job.part), job.design.base(frame))
    return out


def _percentile_from_counts(values: np.ndarray, counts: np.ndarray, q: Sequence[float]) -> tuple[float, ...]:
    """``np.percentile(x, q)`` (linear) of the data with ``counts[i]`` copies of ``values[i]``."""
    order = np.argsort(values)
    v, c = np.asarray(values, dtype=float)[order], np.asarray(counts)[order]
    cum = np.cumsum(c)
    n = int(cum[-1])
    out = []
    for qq in q:
        h = (n - 1) * qq / 100.0
        lo = math.floor(h)
        t = h - lo
        a = v[np.searchsorted(cum, lo, side="right")]
        b = v[np.searchsorted(cum, min(lo + 1, n - 1), side="right")]
        out.append(float(a + (b - a) * t if t < 0.5 else b - (b - a) * (1 - t)))
    return tuple(out)


@dataclass(frozen=True)
class NestedFitOutOfCore:
    """M0-M3 fitted out of core: coefficients, log-likelihoods, likelihood-ratio tests.

    ``not_computed`` says which metrics of :class:`rlsepi.risk_models.NestedFit` need
    individual rows and were left out; ``warnings`` holds what the data cannot support
    (dropped terms, separation, non-convergence, few events), each once.
    """

    models: tuple[LogisticFit, ...]
    specs: tuple[Any, ...]
    comparisons: tuple[dict[str, Any], ...]
    n: int
    events: int
    dropped: dict[str, int]
    settings: dict[str, Any]
    not_computed: str = field(default_factory=not_out_of_core)
    warnings: tuple[str, ...] = ()
    model_warnings: tuple[tuple[str, ...], ...] = ()

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.concat([m.to_frame().assign(model=m.name) for m in self.models], ignore_index=True)

    def to_dict(self) -> dict[str, Any]:
        models = []
        for k, (m, spec) in enumerate(zip(self.models, self.specs)):
            models.append({
                "name": m.name, "formula": spec.formula(),
                "coefficients": m.to_frame().to_dict(orient="records"),
                "metrics": {"n": m.n, "events": m.events, "parameters": len(m.params), "loglik": m.llf,
                            "deviance": m.deviance, "aic": m.aic, "irls_iterations": m.iterations,
                            "converged": m.converged},
                "dropped_terms": dict(m.dropped),
                "warnings": list(self.model_warnings[k]) if self.model_warnings else [],
                "spec": spec.to_dict(),
            })
        return {"n": self.n, "events": self.events, "dropped": dict(self.dropped), "settings": dict(self.settings),
                "models": models, "comparisons": [dict(c) for c in self.comparisons],
                "warnings": list(self.warnings), "not_computed": self.not_computed}

    def summary(self) -> str:
        lines = [f"Nested logistic models, out of core: n = {self.n:,}, events = {self.events:,}"]
        lines += [f"Warning: {w}" for w in self.warnings]
        for m, spec in zip(self.models, self.specs):
            lines.append(f"{m.name}: rls ~ {' + '.join(t for t in m.terms if t != 'const')}  "
                         f"(log-likelihood {m.llf:.3f}, AIC {m.aic:.1f})")
            for r in m.to_frame().itertuples():
                if r.term != "const":
                    lines.append(f"  {r.term:<18} OR {r.odds_ratio:8.3f}  ({r.or_lower:.3f}-{r.or_upper:.3f})  "
                                 f"p {r.p_value:.3g}")
        for c in self.comparisons:
            if c["df"] == 0:
                lines.append(f"{c['larger']} vs {c['smaller']}: the same model (every term {c['larger']} adds was "
                             "dropped as inestimable); no test")
                continue
            lines.append(f"{c['larger']} vs {c['smaller']}: LR chi2 {c['lr_statistic']:.2f} on {c['df']} df, "
                         f"p {c['lr_p_value']:.3g}")
        lines.append(f"Not computed: {self.not_computed}.")
        return "\n".join(lines)


def fit_nested(
    path: str | Path,
    *,
    client: Client | None = None,
    ferritin: str = "log2",
    age: str = "quadratic",
    columns: dict[str, str] | None = None,
    codes: dict[str, dict[str, str]] | None = None,
    params: Parameters | None = None,
    alpha: float = 0.05,
    allow_duplicate_ids: bool = False,
    cache_bytes: int = FIT_CACHE_BYTES,
    progress: bool = False,
) -> NestedFitOutOfCore:
    """The nested models M0-M3 of :func:`rlsepi.risk_models.fit_nested`, out of core.

    A first pass reads each partition once, checks it (as an in-memory cohort is checked,
    with ``person_id`` unique across partitions too) and reduces what the design needs from
    all rows (the PRS mean and SD, and the age distribution for spline knots); a second finds
    the terms the data cannot estimate (dropped, with a warning, as in memory) and binary
    terms with no events or only events at a level (separation); then :func:`fit_logistic`
    fits the four models together. Each partition's rows stay in its worker's memory between
    passes (up to ``cache_bytes`` per process). Coefficients equal the in-memory fit to
    about 1e-10.

    Warnings (:mod:`rlsepi.risk_models` categories) are issued once each and kept in the
    result's ``warnings``.
    """
    import warnings as warnings_

    import pandas as pd

    from rlsepi.errors import InestimableTermWarning
    from rlsepi.parameters import DEFAULT
    from rlsepi.risk_models import (
        SPLINE_CENTILES,
        ModelSpec,
        fit_diagnostics,
        nested_specs,
        same_model_message,
        score_weights,
    )
    from rlsepi.schema import inestimable_from_sums

    if ferritin not in ("log2", "cut"):
        raise DataValidationError(f"ferritin coding must be 'log2' or 'cut', got '{ferritin}'")
    if age not in ("quadratic", "spline"):
        raise DataValidationError(f"age coding must be 'quadratic' or 'spline', got '{age}'")
    params = params or DEFAULT
    weights = score_weights(params)
    need = ("rls", "age", "sex", "pregnant", "ferritin", *weights)
    columns = dict(columns or {})
    design = _NestedDesign(columns, dict(codes or {}), need, ferritin, params,
                           allow_duplicate_ids=allow_duplicate_ids)
    parts = partitions(path)
    with _fit_cache(client, cache_bytes) as cache:
        summaries = _run(client, _summary_partition, [_SummaryJob(p, design, cache) for p in parts],
                         key=_key_prefix("fit-summary"), progress=progress, pin=True)
        check_unique_ids(parts, [s["ids"] for s in summaries], client=client,
                         column=columns.get("person_id", "person_id"), allow_duplicate_ids=allow_duplicate_ids)
        n = sum(s["n"] for s in summaries)
        if n == 0:
            raise DataValidationError("no complete rows are left to fit the risk models")
        mean = sum(s["n"] * s["mean"] for s in summaries) / n
        m2 = sum(s["m2"] + s["n"] * (s["mean"] - mean) ** 2 for s in summaries)
        sd = math.sqrt(m2 / (n - 1)) if n > 1 else 0.0
        if not sd > 0:
            raise DataValidationError("the polygenic score does not vary in these rows; it cannot be standardised")
        ages = pd.concat([s["ages"] for s in summaries]).groupby(level=0).sum()
        knots: tuple[float, ...] = ()
        if age == "spline":
            knots = _percentile_from_counts(ages.index.to_numpy(dtype=float), ages.to_numpy(), SPLINE_CENTILES)
            if len(set(knots)) < 4:
                raise DataValidationError("age has too few distinct values for a 4-knot spline; use --age quadratic")
        full = ModelSpec(age=age, age_knots=knots, ferritin=ferritin, prs_mean=mean, prs_sd=sd,
                         score_weights=weights, pregnancy=True)
        specs = nested_specs(full)
        cols = [tuple(s.columns()) for s in specs.values()]
        design = dataclasses.replace(design, spec=full, models=tuple(cols))
        union = ("const", *design.union())
        pos = {c: j for j, c in enumerate(union)}
        read = design.read_columns()
        # what the data can estimate, and separation, from sums over partitions (as in memory)
        probe = [_IRLSJob(p, design, tuple(read), (), (), cache) for p in parts]
        dstats = _combine_design(_run(client, _design_partition, probe, key=_key_prefix("fit-design"), pin=True))
        messages: list[list[tuple[type[Warning], str]]] = []
        drops: list[dict[str, str]] = []
        keep: list[tuple[int, ...]] = []
        terms: list[tuple[str, ...]] = []
        empty: list[list[tuple[str, int, int, int]]] = []
        for name, c in zip(specs, cols):
            idx = [pos[t] for t in ("const", *c)]
            sub = {"gram": dstats["gram"][np.ix_(idx, idx)], "sums": dstats["sums"][idx],
                   "lowest": dstats["lowest"][idx], "highest": dstats["highest"][idx]}
            drop = inestimable_from_sums(["const", *c], n=int(dstats["n"]), **sub)
            drops.append(drop)
            messages.append([(InestimableTermWarning,
                              f"{name}: term '{t}' dropped from the model: {why}; the data cannot estimate its "
                              "effect, so no odds ratio is reported for it") for t, why in drop.items()])
            kept = [j for j, t in zip(idx, ("const", *c)) if t not in drop]
            if len(kept) == 1 and len(idx) > 1:
                raise DataValidationError(f"{name}: no term of the model can be estimated from these data")
            keep.append(tuple(kept))
            terms.append(tuple(union[j] for j in kept))
            empty.append(_empty_cells(dstats, union, kept))
        separated = [bool(e) for e in empty]
        # warm start from the first partition alone: 3-4 passes over all instead of 7-8 (from zeros
        # when that partition alone cannot estimate a term, e.g. it holds no one pregnant)
        start = None
        if len(parts) > 1:
            with contextlib.suppress(DataValidationError):
                first = _fit_logistic(path, design, terms, read=read, names=None, client=client, tol=1e-6,
                                      maxiter=25, alpha=alpha, progress=False, start=None, parts=parts[:1],
                                      keep=keep, separated=separated, cache=cache)
                # a model that separated in that partition starts from zeros (its coefficients run off)
                start = [f.params if f.converged and np.all(np.abs(f.params) < 15) else np.zeros(len(f.params))
                         for f in first]
        fits = _fit_logistic(path, design, terms, read=read, names=list(specs), client=client, tol=1e-11,
                             maxiter=50, alpha=alpha, progress=progress, start=start,
                             parts=parts, keep=keep, separated=separated, cache=cache)
    fits = [dataclasses.replace(f, dropped=d) for f, d in zip(fits, drops)]
    for k, f in enumerate(fits):
        messages[k] += fit_diagnostics(f.name, terms=f.terms, params=f.params, empty_cells=empty[k],
                                       converged=f.converged, iterations=50, perfect=False, extreme=f.extreme > 0,
                                       events=f.events, n=f.n)
    for msgs in messages:
        for cat, text in msgs:
            warnings_.warn(text, cat, stacklevel=2)
    dropped: dict[str, int] = {}
    for s in summaries:
        for k, v in s["dropped"].items():
            dropped[k] = dropped.get(k, 0) + int(v)
    comparisons = tuple(wald_lr(fits[i - 1], fits[i]) for i in range(1, len(fits)))
    same = [same_model_message(c["smaller"], c["larger"], list(fits[i + 1].dropped))
            for i, c in enumerate(comparisons) if c["df"] == 0]
    for text in same:  # as in memory: the comparison is named, not tested on 0 df
        warnings_.warn(text, InestimableTermWarning, stacklevel=2)
    settings = {"ferritin": ferritin, "age": age, "ci": "wald", "alpha": alpha, "partitions": len(parts),
                "out_of_core": True}
    return NestedFitOutOfCore(tuple(fits), tuple(specs.values()), comparisons, n,
                              sum(s["events"] for s in summaries), {k: v for k, v in dropped.items() if v}, settings,
                              warnings=tuple(text for msgs in messages for _, text in msgs) + tuple(same),
                              model_warnings=tuple(tuple(text for _, text in msgs) for msgs in messages))
