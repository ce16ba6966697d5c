"""Polygenic scores on a Dask cluster: the matched variants in blocks across workers, partial
sums added on the client (the same SUM and AVG as :func:`rlsepi.polygenic.score_genotypes`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rlsepi.distributed.cluster import (
    _key_prefix,
    _run,
    _worker_addresses,
)
from rlsepi.errors import DataValidationError, RLSEpiError

if TYPE_CHECKING:
    from distributed import Client



# --- polygenic scores: variants in blocks across workers ----------------------------------------

PRS_BLOCK_VARIANTS = 20_000
"""Matched variants scored by one task (at least one block per worker)."""

_GENOTYPES_CACHE: dict[tuple[Any, ...], Any] = {}
_SCORE_LOCK = __import__("threading").Lock()


def _open_genotypes(path: str, build: str | None, vcf_field: str, sample: str | None = None) -> Any:
    """The genotype reader of ``path``, opened once per worker process (reopened when the file changes)."""
    from rlsepi.genotypes import read_genotypes

    try:
        st = os.stat(path)
        stamp: tuple[Any, ...] = (st.st_size, st.st_mtime_ns)
    except OSError:  # a prefix: read_genotypes finds the fileset (or says what is missing)
        stamp = ()
    key = (path, build, vcf_field, sample, *stamp)
    g = _GENOTYPES_CACHE.get(key)
    if g is None:
        g = read_genotypes(path, build=build, vcf_field=vcf_field, sample=sample)  # type: ignore[arg-type]
        _GENOTYPES_CACHE.clear()  # one file per worker at a time: readers hold open handles and tables
        _GENOTYPES_CACHE[key] = g
    return g


@dataclass(frozen=True)
class _FreqJob:
    path: str
    build: str | None
    vcf_field: str
    indices: np.ndarray
    block_bytes: int
    sample: str | None = None


def _a1_freq_block(job: _FreqJob) -> np.ndarray:
    """Founders' frequency of ``a1`` at some variants (what :func:`rlsepi.polygenic.score_genotypes`
    uses to resolve palindromic strands); runs on a worker."""
    from rlsepi.genotypes import _as_float

    g = _open_genotypes(job.path, job.build, job.vcf_field, job.sample)
    n = g.n_samples
    founders = g.founders if g.founders.any() else np.ones(n, dtype=bool)
    idx = np.asarray(job.indices, dtype=np.intp)
    out = np.full(idx.size, np.nan)
    step = max(1, int(job.block_bytes // (8 * max(n, 1))))
    for lo in range(0, idx.size, step):
        with _SCORE_LOCK:  # a VCF reader streams through one open file: one reader call at a time per process
            x = _as_float(g.read(idx[lo:lo + step], None))[founders]
        called = np.isfinite(x).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[lo:lo + step] = np.nansum(x, axis=0) / (2.0 * called)
    return out


@dataclass(frozen=True)
class _PRSJob:
    path: str
    build: str | None
    vcf_field: str
    score: Any  # a ScoringFile holding only this block's matched rows
    options: dict[str, Any]
    freq: dict[tuple[str, str], float] | None
    sample: str | None = None


def _score_block(job: _PRSJob) -> dict[str, Any]:
    """Partial scores of one block of matched variants, per person; runs on a worker.

    The worker opens the same file, matches the block's rows again (the client sent only rows it
    matched, so every row matches the same variant in the same orientation) and scores them with
    :func:`rlsepi.polygenic.score_genotypes`. One block at a time per process: the compiled
    kernels already use every core the process has.
    """
    from rlsepi.polygenic import ReferenceDistribution, score_genotypes

    g = _open_genotypes(job.path, job.build, job.vcf_field, job.sample)
    dummy = ReferenceDistribution("empirical", 0.0, 1.0, np.zeros(1), np.ones(1), "not used")
    with _SCORE_LOCK:
        res = score_genotypes(g, job.score, min_overlap=0.0, reference=dummy, build=job.build, freq=job.freq,
                              **job.options)
    sc, log = res.scores, res.match_log
    used = log["status"].to_numpy() == "used"
    if int(used.sum()) != len(job.score.variants):
        raise RLSEpiError(f"a worker matched {int(used.sum())} of the {len(job.score.variants)} scoring-file rows "
                          "the client matched; this is a bug in rlsepi")
    sums = [c for c in sc.columns if c.endswith("SUM")]  # each weight's SUM and NAMED_ALLELE_DOSAGE_SUM
    return {"sums": {c: sc[c].to_numpy(dtype=np.float64) for c in sums},
            "allele_ct": sc["ALLELE_CT"].to_numpy(dtype=np.int64), "denom": sc["DENOM"].to_numpy(dtype=np.int64),
            "rows": log.loc[used, "row"].to_numpy(), "eff_freq": log.loc[used, "sample_effect_freq"].to_numpy(float),
            "n_imputed": log.loc[used, "n_imputed"].to_numpy(np.int64)}


def _map_reduce(client: Client | None, fn: Callable[..., Any], items: Sequence[Any], combine: Callable[[Any], None],
                *, progress: bool = False, key: str = "rlsepi") -> None:
    """``combine(fn(x))`` for every item, in any order, as results arrive (only one result held at a time)."""
    if client is None:
        for x in items:
            combine(fn(x))
        return
    from distributed import as_completed

    futures = client.map(fn, list(items), pure=False, key=[f"{key}-{i}" for i in range(len(items))])
    try:
        if progress:
            from distributed import progress as show

            with contextlib.redirect_stdout(sys.stderr):
                show(futures, notebook=False)
            print(file=sys.stderr)
        for fut in as_completed(futures):
            combine(fut.result())
            fut.release()
    finally:
        for f in futures:
            f.release()


def score_genotypes(
    genotypes: str | Path,
    score: Any = None,
    *,
    client: Client | None = None,
    imputation: str = "mean-sample",
    palindromic: str = "exclude",
    duplicates: str = "resolve",
    min_overlap: float = 0.75,
    reference: Any = "analytic",
    build: str | None = None,
    vcf_field: str = "auto",
    sample: str | Path | None = None,
    freq: dict[tuple[str, str], float] | None = None,
    block_variants: int = PRS_BLOCK_VARIANTS,
    block_bytes: int = 1 << 26,
    progress: bool = False,
) -> Any:
    """:func:`rlsepi.polygenic.score_genotypes` of a genotype file, its variants split across workers.

    Parameters
    ----------
    genotypes : path
        Any file of :func:`rlsepi.genotypes.read_genotypes`. With a ``tcp://`` cluster the workers
        open the same path, so it must be on a file system they share with the client.
    score : ScoringFile, optional
        Default :func:`rlsepi.polygenic.default_score`.
    client : distributed.Client, optional
        Without one, the same blocks are scored here one after another.
    imputation, palindromic, duplicates, min_overlap, reference, build, freq, block_bytes
        As for :func:`rlsepi.polygenic.score_genotypes`.
    sample : path, optional
        The ``.sample`` file of a BGEN ``genotypes`` (default: beside it); the workers read it too.
    block_variants : int
        Matched variants per task (the blocks are at least as many as the workers).

    Returns
    -------
    PRSResult
        The same scores as :func:`rlsepi.polygenic.score_genotypes`: identical ``ALLELE_CT``
        and ``DENOM``, and ``SUM``, ``AVG``, ``NAMED_ALLELE_DOSAGE_SUM`` equal up to the order of
        floating-point summation (about 1e-12 relative).

    Notes
    -----
    What needs the whole score runs on the client, which reads only the variant table: matching
    (duplicates, multi-allelic sites), the coverage threshold, and the reference distribution
    for ``z`` and ``percentile``. Palindromic strands resolved by frequency need the founders'
    allele frequencies of the palindromic candidates: workers compute them, block by block,
    before matching. Each worker then gets a block of matched rows (file order, so it reads a
    contiguous part of the file), reads only those variants through the genotype reader and
    returns per person its partial ``SUM`` per weight, ``NAMED_ALLELE_DOSAGE_SUM``,
    ``ALLELE_CT`` and ``DENOM``, with each variant's sample frequency and imputed count. The
    client adds the partial sums (they are additive over variants: each variant's mean
    imputation uses its own frequency, over every person) and divides ``SUM`` by ``DENOM``
    for ``AVG``. What crosses the network per block is the block's scoring rows and 8 bytes x
    (weights + 3) per person.
    """
    import pandas as pd

    from rlsepi import polygenic as pg

    score = score or pg.default_score()
    if not isinstance(score, pg.ScoringFile):
        score = pg.read_scoring_file(score)
    opts: dict[str, Any] = {"client": client, "imputation": imputation, "palindromic": palindromic,
                            "duplicates": duplicates, "min_overlap": min_overlap, "build": build,
                            "vcf_field": vcf_field, "sample": sample, "freq": freq, "block_variants": block_variants,
                            "block_bytes": block_bytes, "progress": progress}
    if "accession" in score.variants.columns and score.variants["accession"].nunique() > 1:
        # a combined long-format file: each accession scored on its own, as polygenic does
        parts, logs, covs, refs = [], [], [], {}
        res = None
        for acc, rows in score.variants.groupby("accession", sort=False):
            sub = dataclasses.replace(score, name=str(acc), variants=rows.reset_index(drop=True))
            ref = reference.get(str(acc), "analytic") if isinstance(reference, Mapping) else reference
            res = score_genotypes(genotypes, sub, reference=ref, **opts)
            id_col = res.scores.columns[0]
            parts.append(res.scores.drop(columns=[id_col]).add_prefix(f"{acc}_"))
            logs.append(res.match_log.assign(accession=str(acc)))
            covs.append(res.coverage.assign(weight=[f"{acc}:{w}" for w in res.coverage["weight"]]))
            refs.update({f"{acc}:{w}": r for w, r in res.references.items()})
        assert res is not None
        scores = pd.concat([res.scores[[res.scores.columns[0]]]] + parts, axis=1)
        return pg.PRSResult(scores=scores, match_log=pd.concat(logs, ignore_index=True),
                            coverage=pd.concat(covs, ignore_index=True), imputation=imputation, references=refs,
                            score_name=score.name, n_samples=res.n_samples)
    if imputation not in pg.IMPUTATION_TEXT:
        raise RLSEpiError(f"imputation must be one of {', '.join(pg.IMPUTATION_TEXT)}, got {imputation!r}")
    if palindromic not in ("exclude", "keep", "frequency"):
        raise RLSEpiError(f"palindromic must be exclude, keep or frequency, got {palindromic!r}")
    path = str(genotypes)
    sample_path = None if sample is None else str(sample)
    g = pg.read_genotypes(path, build=build, vcf_field=vcf_field, sample=sample_path)  # type: ignore[arg-type]
    n = g.n_samples
    founders = g.founders if g.founders.any() else np.ones(n, dtype=bool)
    if palindromic == "frequency" and int(founders.sum()) < pg.MIN_FOUNDERS_FOR_FREQ:
        raise DataValidationError(
            f"--palindromic frequency would resolve strands from allele frequencies of only {int(founders.sum())} "
            f"founders (at least {pg.MIN_FOUNDERS_FOR_FREQ} are needed); use --palindromic exclude (or keep)"
        )
    n_workers = 1
    if client is not None:
        n_workers = max(1, len(_worker_addresses(client)))
    block_variants = max(1, int(block_variants))

    def blocks_of(m: int) -> list[slice]:
        size = max(1, min(block_variants, -(-m // n_workers)))
        return [slice(lo, min(lo + size, m)) for lo in range(0, m, size)]

    def sample_freq(idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.intp)
        order = np.argsort(idx, kind="stable")
        jobs = [_FreqJob(path, build, vcf_field, idx[order[s]], block_bytes, sample_path) for s in blocks_of(idx.size)]
        out = np.full(idx.size, np.nan)
        out[order] = np.concatenate(_run(client, _a1_freq_block, jobs, key=_key_prefix("prs-freq")))
        return out

    log = pg.match_variants(score, g, palindromic=palindromic, duplicates=duplicates,  # type: ignore[arg-type]
                            build=build, sample_freq=sample_freq)
    cov = pg.check_overlap(score, g, log, min_overlap=min_overlap, build=build)
    used = log[log["status"] == "used"].reset_index(drop=True)
    m = len(used)
    weights = list(score.weight_names)
    multi = len(weights) > 1
    sum_cols = [f"{pg._label(w)}_SUM" if multi else "SUM" for w in weights]
    acc: dict[str, np.ndarray] = {c: np.zeros(n) for c in (*sum_cols, "NAMED_ALLELE_DOSAGE_SUM")}
    allele_ct = np.zeros(n, dtype=np.int64)
    denom = np.zeros(n, dtype=np.int64) if imputation == "none" else np.full(n, 2 * m, dtype=np.int64)
    eff_freq = pd.Series(np.nan, index=used["row"].to_numpy())
    imputed = pd.Series(0, index=used["row"].to_numpy(), dtype=np.int64)
    if m:
        order = np.argsort(used["variant_index"].to_numpy(), kind="stable")  # file order: contiguous reads
        gid = g.variants["id"].astype(str).to_numpy()
        jobs = []
        for s in blocks_of(m):
            rows = used["row"].to_numpy()[order[s]]
            sub = dataclasses.replace(score, variants=score.variants[score.variants["row"].isin(rows)]
                                      .reset_index(drop=True))
            fsub = None
            if freq is not None:
                ids = set(gid[used["variant_index"].to_numpy()[order[s]]])
                fsub = {k: v for k, v in freq.items() if k[0] in ids}
            jobs.append(_PRSJob(path, build, vcf_field, sub,
                                {"imputation": imputation, "palindromic": palindromic, "duplicates": duplicates,
                                 "block_bytes": block_bytes}, fsub, sample_path))

        def combine(part: dict[str, Any]) -> None:
            for c, x in part["sums"].items():
                acc[c] += x
            nonlocal allele_ct
            allele_ct += part["allele_ct"]
            if imputation == "none":
                denom[:] += part["denom"]
            eff_freq.loc[part["rows"]] = part["eff_freq"]
            imputed.loc[part["rows"]] = part["n_imputed"]

        _map_reduce(client, _score_block, jobs, combine, progress=progress, key=_key_prefix("prs"))
    eff = eff_freq.loc[used["row"].to_numpy()].to_numpy(dtype=float)
    n_imp = imputed.loc[used["row"].to_numpy()].to_numpy(dtype=np.int64)

    # the reference distributions need the whole score (as in polygenic.score_genotypes)
    vrows = score.variants.set_index("row").loc[used["row"].to_numpy()].reset_index()
    vals = np.stack([pg._model_values(vrows, w) for w in weights]) if weights else np.zeros((0, m, 3))
    score_freq = vrows["allelefrequency_effect"].to_numpy(dtype=float)
    sums = np.column_stack([acc[c] for c in sum_cols]) if weights else np.zeros((n, 0))
    return pg.assemble_result(g.samples, score, weights, log, cov, reference=reference, vals=vals,
                              score_freq=score_freq, eff_freq=eff, imputed=n_imp, sums=sums,
                              dosage_sum=acc["NAMED_ALLELE_DOSAGE_SUM"], allele_ct=allele_ct, denom=denom,
                              imputation=imputation)


def score_file(
    genotypes: str | Path,
    score: Any = None,
    *,
    client: Client | None = None,
    reference_file: str | Path | None = None,
    **kwargs: Any,
) -> Any:
    """:func:`rlsepi.polygenic.score_file` on a cluster: :func:`score_genotypes` of ``genotypes``
    (and of ``reference_file`` for an empirical reference), keyword arguments as there."""
    from rlsepi import polygenic as pg

    if score is None:
        score = pg.default_score()
    elif not isinstance(score, pg.ScoringFile):
        score = pg.read_scoring_file(score)
    sample = kwargs.pop("sample", None)  # the target's .sample file; a reference BGEN has its own beside it
    if reference_file is None:
        return score_genotypes(genotypes, score, client=client, sample=sample, **kwargs)
    return pg.score_with_empirical_reference(
        score, reference_file, kwargs,
        score_reference=lambda kw: score_genotypes(reference_file, score, client=client, **kw),
        score_target=lambda kw: score_genotypes(genotypes, score, client=client, sample=sample, **kw))
