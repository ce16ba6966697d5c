"""Cohorts beyond one machine: Parquet datasets and out-of-core analyses on a Dask cluster.

Three things live here:

- :func:`connect`: ``local[:N]`` starts a local cluster of N worker processes (its dashboard
  address goes to the error stream); ``tcp://host:port`` joins a running ``dask scheduler``.
- :func:`write_dataset`: the simulator's blocks written as a Parquet dataset, one file per
  partition of blocks, written by the worker that generated them, plus ``_metadata``. Its
  rows are those of :func:`rlsepi.cohort.write_cohort` for the same seed and ``n``, with the
  same Arrow types and encodings, whatever the number of workers or partitions.
- out-of-core reductions over the partitions of a dataset folder or a single Parquet file:
  :func:`cell_counts` (people per combination of a few discrete columns, from which every
  count-based estimate of :mod:`rlsepi.prevalence` and :mod:`rlsepi.targets` follows exactly)
  and :func:`fit_logistic` (maximum likelihood by IRLS, reducing X'WX and X'W(y - p) over
  partitions at every iteration).

Without a client, every function here runs the same tasks in this process, one partition at a
time: the results do not depend on where they ran.

Nothing here imports dask at module level, so ``import rlsepi`` stays fast.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rlsepi.errors import DataValidationError, OutputExistsError, RLSEpiError

if TYPE_CHECKING:
    import pandas as pd
    from distributed import Client

    from rlsepi.parameters import Parameters

__all__ = [
    "parse_scheduler",
    "connect",
    "write_dataset",
    "Partition",
    "partitions",
    "cell_counts",
    "CellCounts",
    "fit_logistic",
    "LogisticFit",
    "FREQ",
    "DEFAULT_PARTITION_BLOCKS",
    "score_genotypes",
    "score_file",
    "PRS_BLOCK_VARIANTS",
]

DEFAULT_PARTITION_BLOCKS = 16
"""Simulator blocks (of 65,536 people) per dataset file: about 1M people, 20-30 MB per file."""

ROW_GROUPS_PER_TASK = 16
"""Row groups of a single Parquet file read by one task."""

FREQ = "__people__"
"""Name of the people-per-cell column of a :class:`CellCounts` table."""


# --- the cluster ---------------------------------------------------------------------------


def parse_scheduler(text: str) -> str:
    """argparse type: ``local``, ``local:N`` (N >= 1) or ``tcp://host:port``."""
    import argparse

    t = text.strip()
    if t == "local":
        return "local:2"
    if t.startswith("local:"):
        try:
            n = int(t.split(":", 1)[1])
        except ValueError:
            n = 0
        if n < 1:
            raise argparse.ArgumentTypeError(f"expected local:N with N a whole number >= 1, got '{text}'")
        return f"local:{n}"
    if t.startswith(("tcp://", "tls://")) and ":" in t.split("://", 1)[1]:
        return t
    raise argparse.ArgumentTypeError(
        f"expected local, local:N or tcp://HOST:PORT (a running 'dask scheduler'), got '{text}'"
    )


@contextlib.contextmanager
def connect(address: str | None, *, quiet: bool = False, timeout: float | None = None) -> Iterator[Client | None]:
    """A Dask client for ``address`` (None: no client; everything runs in this process).

    ``local:N`` starts a cluster of N single-threaded worker processes on loopback and prints
    its dashboard address to the error stream (unless ``quiet``); it is closed on exit.
    ``tcp://host:port`` connects to a running scheduler and leaves it running.
    """
    if address is None:
        yield None
        return
    import logging

    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.ERROR)  # its INFO lines are not for our users
    if address.startswith("local:"):
        n = int(address.split(":", 1)[1])
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR) as cluster, \
                Client(cluster) as client:
            if not quiet:
                print(f"rlsepi: local Dask cluster, {n} worker process(es); dashboard {client.dashboard_link}",
                      file=sys.stderr)
            yield client
        return
    if timeout is None:  # dask's connect timeout (DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT), 30 s by default
        import dask
        from dask.utils import parse_timedelta

        timeout = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), default="s")
    try:
        client = Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise RLSEpiError(f"cannot reach the Dask scheduler at {address} ({type(exc).__name__}); "
                          "start one with 'dask scheduler' or use --scheduler local:N") from None
    try:
        if not quiet:
            n = len(client.scheduler_info(n_workers=-1).get("workers", {})) if _accepts_n_workers(client) \
                else len(client.scheduler_info().get("workers", {}))
            print(f"rlsepi: Dask scheduler {address}, {n} worker(s)", file=sys.stderr)
        yield client
    finally:
        client.close()


def _accepts_n_workers(client: Client) -> bool:
    import inspect

    return "n_workers" in inspect.signature(client.scheduler_info).parameters


def _run(client: Client | None, fn: Callable[..., Any], items: Sequence[Any], *, progress: bool = False,
         key: str = "rlsepi") -> list[Any]:
    """``[fn(x) for x in items]``, on the cluster when there is one (results in order).

    Tasks are deterministic, so a task that Dask reruns after losing a worker gives the same
    result.
    """
    if client is None:
        return [fn(x) for x in items]
    futures = client.map(fn, list(items), pure=False, key=[f"{key}-{i}" for i in range(len(items))])
    if progress:
        from distributed import progress as show

        with contextlib.redirect_stdout(sys.stderr):  # dask draws its bar on stdout, which holds our results
            show(futures, notebook=False)
        print(file=sys.stderr)
    try:
        return client.gather(futures)
    finally:
        for f in futures:
            f.release()


def _key_prefix(name: str) -> str:
    import uuid

    return f"rlsepi-{name}-{uuid.uuid4().hex[:8]}"


# --- writing a dataset ---------------------------------------------------------------------


@dataclass(frozen=True)
class _PartitionJob:
    plan: Any
    schema: Any
    options: dict[str, Any]
    folder: str
    index: int
    blocks: tuple[int, int]  # first block, one past the last

    @property
    def name(self) -> str:
        return f"part-{self.index:05d}.parquet"


def _write_partition(job: _PartitionJob) -> Any:
    """Generate blocks ``job.blocks`` and write them as one file; runs on a worker."""
    import json

    import pyarrow.parquet as pq

    from rlsepi import cohort
    from rlsepi.io import METADATA_PREFIX

    first, stop = job.blocks
    rows = min(stop * cohort.BLOCK_SIZE, job.plan.n) - first * cohort.BLOCK_SIZE
    extra = {f"{METADATA_PREFIX}partition".encode(): json.dumps(
        {"index": job.index, "first_block": first, "blocks": stop - first,
         "first_person_id": first * cohort.BLOCK_SIZE + 1, "rows": rows}, sort_keys=True).encode()}
    schema = job.schema.with_metadata({**job.schema.metadata, **extra})
    final = Path(job.folder) / job.name
    tmp = Path(job.folder) / f".{job.name}.{os.getpid()}.tmp"  # a rerun after a lost worker never collides
    collector: list[Any] = []
    try:
        with pq.ParquetWriter(tmp, schema, metadata_collector=collector, **job.options) as writer:
            for i in range(first, stop):
                writer.write_batch(cohort._generate_block(job.plan, i), row_group_size=cohort.BLOCK_SIZE)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    md = collector[0]
    md.set_file_path(job.name)
    return md


def write_dataset(
    path: str | Path,
    n: int,
    *,
    seed: int,
    params: Parameters | None = None,
    command: str | None = None,
    client: Client | None = None,
    partition_blocks: int = DEFAULT_PARTITION_BLOCKS,
    force: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Simulate a cohort into a Parquet dataset folder, one file per partition of blocks.

    Parameters
    ----------
    path : path
        The dataset folder; it must not exist (unless ``force``). It is built in a hidden
        temporary folder beside it and renamed into place only when every partition and the
        ``_metadata`` summary are written, so a partial dataset never has the final name.
    n, seed, params, command
        As for :func:`rlsepi.cohort.write_cohort`; the rows are the same.
    client : distributed.Client, optional
        Workers generate and write their own partitions (the folder must be on a file
        system they share with the client); only each file's footer comes back.
        Without a client, the partitions are written here one after another.
    partition_blocks : int
        Blocks of 65,536 people per file (does not change the rows).
    force : bool
        Replace an existing dataset folder.

    Returns
    -------
    dict
        The provenance written in every file (decoded).

    Notes
    -----
    Person ``i`` is in block ``(i - 1) // 65536``, whose random stream is that block's own
    child of the seed, so which worker writes which partition cannot change any value.
    Memory per worker is one block plus the Parquet writer's buffers of one row group.
    """
    import json

    import pyarrow.parquet as pq

    from rlsepi import cohort
    from rlsepi.io import METADATA_PREFIX
    from rlsepi.parameters import DEFAULT

    n = cohort._check_n(n)
    if partition_blocks < 1:
        raise RLSEpiError(f"partition_blocks must be at least 1, got {partition_blocks}")
    final = Path(path)
    if final.exists() and not force:
        raise OutputExistsError(f"output '{final}' already exists; use --force to replace it")
    if final.exists() and not final.is_dir():
        raise OutputExistsError(f"output '{final}' is a file; a dataset is written to a folder")
    parent = final.parent if str(final.parent) else Path(".")
    if not parent.is_dir():
        raise RLSEpiError(f"cannot write '{final}': folder '{parent}' does not exist; create it first")
    params = params or DEFAULT
    model = cohort.solve_model(params)
    schema, meta = cohort.cohort_schema(n, seed=seed, params=params, model=model, command=command)
    root = cohort.seed_sequence(seed)
    plan = cohort._Plan(params=params, model=model, n=n, entropy=root.entropy, spawn_key=tuple(root.spawn_key))
    n_blocks = -(-n // cohort.BLOCK_SIZE)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        jobs = [_PartitionJob(plan, schema, cohort.parquet_options(params), str(tmp), k,
                              (lo, min(lo + partition_blocks, n_blocks)))
                for k, lo in enumerate(range(0, n_blocks, partition_blocks))]
        footers = _run(client, _write_partition, jobs, progress=progress, key=_key_prefix("simulate"))
        for leftover in tmp.glob(".part-*.tmp"):  # from a worker killed mid-partition (rerun elsewhere)
            leftover.unlink(missing_ok=True)
        pq.write_metadata(schema, tmp / "_common_metadata")
        pq.write_metadata(schema, tmp / "_metadata", metadata_collector=footers)
        if final.exists():  # force: swap, then remove the old one
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=parent))
            os.replace(final, old / "x")
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {k.decode()[len(METADATA_PREFIX):]: json.loads(v) for k, v in meta.items()}


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


# --- reading partitions --------------------------------------------------------------------


@dataclass(frozen=True)
class Partition:
    """One unit of out-of-core work: a Parquet file, or some of its row groups."""

    path: str
    row_groups: tuple[int, ...] | None = None

    def read(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The partition's rows (only ``columns`` that the file has) with the registry's dtypes."""
        import pyarrow.parquet as pq

        from rlsepi.io import table_to_frame

        f = pq.ParquetFile(self.path)
        names = set(f.schema_arrow.names)
        cols = None if columns is None else [c for c in dict.fromkeys(columns) if c in names]
        table = f.read(columns=cols) if self.row_groups is None else f.read_row_groups(self.row_groups, columns=cols)
        return table_to_frame(table)


def dataset_files(path: str | Path) -> list[Path]:
    """The data files of a Parquet dataset folder, in order (``_metadata`` and hidden files left out)."""
    p = Path(path)
    files = sorted(f for f in p.rglob("*.parquet") if not f.name.startswith(("_", ".")))
    if not files:
        raise DataValidationError(f"folder '{p}' holds no .parquet files; give a Parquet dataset folder or a file")
    return files


def partitions(path: str | Path, *, row_groups_per_task: int = ROW_GROUPS_PER_TASK) -> list[Partition]:
    """Split a dataset folder (one partition per file) or a Parquet file (by row groups)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = Path(path)
    if not p.exists():
        raise DataValidationError(f"input '{p}' does not exist")
    if p.is_dir():
        return [Partition(str(f)) for f in dataset_files(p)]
    if p.suffix.lower() not in (".parquet", ".pq"):
        raise DataValidationError(
            f"'{p}': --scheduler reads Parquet files and Parquet dataset folders; convert the file first "
            "(e.g. pandas.read_csv(...).to_parquet('cohort.parquet'))"
        )
    try:
        n_rg = pq.ParquetFile(p).num_row_groups
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataValidationError(f"'{p}' is not a readable Parquet file: {str(exc).splitlines()[0]}") from None
    if n_rg == 0:
        return [Partition(str(p))]
    return [Partition(str(p), tuple(range(lo, min(lo + row_groups_per_task, n_rg))))
            for lo in range(0, n_rg, row_groups_per_task)]


def read_provenance(path: str | Path) -> dict[str, Any]:
    """The ``rlsepi.*`` provenance of a Parquet file or of a dataset folder's first file."""
    from rlsepi.io import read_metadata

    p = Path(path)
    meta = read_metadata(dataset_files(p)[0] if p.is_dir() else p)
    meta.pop("partition", None)
    return meta


# --- counts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CellCounts:
    """People per combination of some columns, reduced over every partition.

    Attributes
    ----------
    cells : DataFrame
        One row per combination that occurs, the columns, and :data:`FREQ` (people).
        Pass it, with ``freq=FREQ``, to the count-based estimators of :mod:`rlsepi.prevalence`
        and to :func:`rlsepi.targets.check_targets`.
    report : DropReport
        Rows read, used and dropped (summed over partitions).
    partitions : int
    """

    cells: pd.DataFrame
    report: Any
    partitions: int

    @property
    def n(self) -> int:
        return int(self.cells[FREQ].sum())

    def to_frame(self) -> pd.DataFrame:
        return self.cells.rename(columns={FREQ: "people"})

    def summary(self) -> str:
        return (f"{self.n:,} people in {len(self.cells):,} cells of {', '.join(c for c in self.cells.columns if c != FREQ)}"
                f" from {self.partitions} partition(s); {self.report.summary()}")


PLAUSIBILITY_COLUMNS = ("person_id", "sex", "age", "pregnant", "trimester")
"""Columns read with every count so that :func:`rlsepi.schema.check_plausible` sees them."""


@dataclass(frozen=True)
class _CountJob:
    part: Partition
    read: tuple[str, ...]
    keep: tuple[str, ...]
    columns: dict[str, str]
    codes: dict[str, dict[str, str]]
    require: tuple[str, ...]
    boolean: tuple[str, ...]


def _count_partition(job: _CountJob) -> tuple[pd.DataFrame, Any]:
    from rlsepi.schema import harmonise

    df = job.part.read(job.read)
    df, report = harmonise(df, columns=job.columns, codes=job.codes, require=job.require, boolean=job.boolean)
    absent = [c for c in job.keep if c not in df.columns]
    if absent:
        raise DataValidationError(f"column '{absent[0]}' is missing in '{job.part.path}'; the columns are: "
                                  f"{', '.join(map(str, df.columns))}")
    return _group(df, list(job.keep)), report


def _group(df: pd.DataFrame, keep: list[str], freq: Any = None) -> pd.DataFrame:
    import pandas as pd

    w = np.ones(len(df), dtype=np.int64) if freq is None else np.asarray(freq, dtype=np.int64)
    g = pd.DataFrame({**{c: df[c] for c in keep}, FREQ: w}).groupby(keep, observed=True, sort=True, dropna=False)
    return g[FREQ].sum().reset_index()


def _combine_reports(reports: list[Any]) -> Any:
    from rlsepi.schema import DropReport

    first = reports[0]
    missing = {k: sum(r.missing.get(k, 0) for r in reports) for k in first.missing}
    recoded: dict[str, dict[str, Any]] = {}
    for r in reports:
        for col, m in r.recoded.items():
            recoded.setdefault(col, {}).update(m)
    return DropReport(sum(r.n_input for r in reports), sum(r.n_used for r in reports), missing,
                      dict(first.renamed), recoded)


def cell_counts(
    path: str | Path,
    keep: Sequence[str],
    *,
    client: Client | None = None,
    columns: dict[str, str] | None = None,
    codes: dict[str, dict[str, str]] | None = None,
    require: Sequence[str] = (),
    boolean: Sequence[str] = (),
    progress: bool = False,
) -> CellCounts:
    """People per combination of ``keep`` columns, over every partition of a file or dataset.

    Each partition is read (only the columns needed), harmonised like an in-memory cohort
    (:func:`rlsepi.schema.harmonise` with ``columns``, ``codes``, ``require``, ``boolean``)
    and grouped; the per-partition tables are summed. The cell table holds everything a
    count-based estimator needs, so prevalences, their intervals, standardisation, the
    crude and Mantel-Haenszel odds ratios and the target check computed from it equal the
    in-memory results (identical counts).

    Keep continuous columns out of ``keep``: the table has one row per distinct combination.
    """
    columns = dict(columns or {})
    keep = tuple(dict.fromkeys(keep))
    need = tuple(dict.fromkeys((*keep, *require)))
    # also read the columns of the rules between columns (pregnancy only in women of
    # reproductive age, trimester exactly when pregnant) wherever the data has them, so that a
    # dataset is refused for what an in-memory cohort is refused for; duplicate person_id is
    # checked within each partition only
    read = tuple(columns.get(c, c) for c in dict.fromkeys((*need, *PLAUSIBILITY_COLUMNS)))
    parts = partitions(path)
    jobs = [_CountJob(p, read, keep, columns, dict(codes or {}), tuple(dict.fromkeys(require)), tuple(boolean))
            for p in parts]
    results = _run(client, _count_partition, jobs, progress=progress, key=_key_prefix("counts"))
    import pandas as pd

    cells = pd.concat([r[0] for r in results], ignore_index=True)
    cells = _group(cells, list(keep), cells[FREQ].to_numpy())
    return CellCounts(cells, _combine_reports([r[1] for r in results]), len(parts))


# --- logistic regression by IRLS over partitions ------------------------------------------


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
    converged : whether the largest coefficient step fell below the tolerance.
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
        with np.errstate(over="ignore"):
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


def _irls_partition(job: _IRLSJob) -> list[tuple[np.ndarray, np.ndarray, float, int, int]]:
    """For each model at its current coefficients: X'WX, X'(y - p), log-likelihood, n, events."""
    from scipy import special

    y, designs = job.design(job.part.read(job.read))
    out = []
    for X, b in zip(designs, job.betas):
        eta = X @ b
        p = special.expit(eta)
        w = p * (1 - p)
        out.append(((X * w[:, None]).T @ X, X.T @ (y - p), float(np.sum(y * eta - np.logaddexp(0, eta))),
                    int(len(y)), int(y.sum())))
    return out


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

    Notes
    -----
    Each iteration sends each worker the current coefficients (a few numbers per model) and
    gets back, per partition and model, :math:`X^\\top W X` (p x p), :math:`X^\\top (y - p)` and
    the log-likelihood; the Newton step :math:`\\beta \\leftarrow \\beta + (X^\\top W X)^{-1}
    X^\\top (y - p)`, with :math:`W = \\mathrm{diag}(p(1-p))`, is the IRLS step. The fit stops
    when every coefficient moves less than ``tol``, and the standard errors come from the
    information matrix at the estimate (one more pass). The result is the maximum-likelihood
    estimate, equal to an in-memory IRLS fit up to floating-point summation order.
    """
    from scipy import linalg

    parts = list(parts) if parts is not None else partitions(path)
    betas = [np.zeros(len(t)) for t in terms] if start is None else [np.array(b, dtype=float) for b in start]
    done = [False] * len(terms)
    iters = [0] * len(terms)
    names = list(names or [f"M{i}" for i in range(len(terms))])
    stats_: list[Any] = []
    for it in range(maxiter + 1):
        jobs = [_IRLSJob(p, design, tuple(read), tuple(betas)) for p in parts]
        results = _run(client, _irls_partition, jobs, progress=progress, key=_key_prefix(f"irls{it}"))
        stats_ = [tuple(_sum(r[m] for r in results)) for m in range(len(terms))]
        if all(done):
            break
        for m, (H, g, _, _, _) in enumerate(stats_):
            if done[m]:
                continue
            try:
                step = linalg.solve(H, g, assume_a="pos")
            except (linalg.LinAlgError, ValueError):
                raise DataValidationError(
                    f"model {names[m]}: the information matrix is singular (a constant or duplicated "
                    "column, or separation); it cannot be fitted") from None
            betas[m] = betas[m] + step
            iters[m] += 1
            if np.max(np.abs(step)) < tol:
                done[m] = True
    fits = []
    for m, (H, _, llf, n, events) in enumerate(stats_):
        bse = np.sqrt(np.diag(np.linalg.inv(H)))
        fits.append(LogisticFit(names[m], tuple(terms[m]), betas[m], bse, float(llf), int(n), int(events),
                                iters[m], done[m], alpha=alpha))
    return fits


def _sum(items: Iterator[tuple[np.ndarray, np.ndarray, float, int, int]]) -> tuple[Any, ...]:
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


NOT_OUT_OF_CORE = (
    "AUC with its DeLong interval and test, the Brier score, and cross-validated AUC and calibration are "
    "not computed out of core: DeLong's method needs every person's fitted risk ranked against every "
    "other's, and cross-validation refits on row subsets. Fit a sample in memory for them (rlsepi fit "
    "without --scheduler): by Hanley and McNeil's formula at an AUC of 0.62 and 8% prevalence, a sample "
    "of 1,000,000 people gives the AUC a standard error of about 0.0011, and 100,000 people about 0.0035"
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

    def frame(self, raw: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
        from rlsepi.risk_models import age_terms, derive_columns
        from rlsepi.schema import harmonise

        df, report = harmonise(raw, columns=self.columns, codes=self.codes, require=self.need)
        frame, _, dropped = derive_columns(df, ferritin=self.ferritin, age="quadratic", params=self.params)
        dropped = {**{f"missing {k}": int(v) for k, v in report.missing.items() if v}, **dropped}
        if self.spec is not None:
            for name, col in age_terms(frame["age"].to_numpy(), self.spec).items():
                frame[name] = col
            frame["prs_sd"] = (frame["prs"] - self.spec.prs_mean) / self.spec.prs_sd
        return frame, dropped

    def read_columns(self) -> list[str]:
        """The file's names of the columns the design needs."""
        return [self.columns.get(c, c) for c in (*self.need, "trimester")]

    def __call__(self, raw: pd.DataFrame) -> tuple[np.ndarray, list[np.ndarray]]:
        frame, _ = self.frame(raw)
        y = frame["rls"].to_numpy(dtype=float)
        ones = np.ones((len(frame), 1))
        return y, [np.hstack([ones, frame[list(cols)].to_numpy(dtype=float)]) for cols in self.models]


def _summary_partition(job: tuple[Partition, _NestedDesign]) -> dict[str, Any]:
    part, design = job
    frame, dropped = design.frame(part.read(design.read_columns()))
    prs = frame["prs"].to_numpy(dtype=float)
    n = len(prs)
    mean = float(prs.mean()) if n else 0.0
    return {"n": n, "mean": mean, "m2": float(((prs - mean) ** 2).sum()), "events": int(frame["rls"].sum()),
            "ages": frame["age"].value_counts(), "dropped": dropped}


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
    individual rows and were left out.
    """

    models: tuple[LogisticFit, ...]
    specs: tuple[Any, ...]
    comparisons: tuple[dict[str, Any], ...]
    n: int
    events: int
    dropped: dict[str, int]
    settings: dict[str, Any]
    not_computed: str = NOT_OUT_OF_CORE

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.concat([m.to_frame().assign(model=m.name) for m in self.models], ignore_index=True)

    def to_dict(self) -> dict[str, Any]:
        models = []
        for m, spec in zip(self.models, self.specs):
            models.append({
                "name": m.name, "formula": spec.formula(),
                "coefficients": m.to_frame().to_dict(orient="records"),
                "metrics": {"n": m.n, "events": m.events, "parameters": len(m.params), "loglik": m.llf,
                            "deviance": m.deviance, "aic": m.aic, "irls_iterations": m.iterations,
                            "converged": m.converged},
                "warnings": [] if m.converged else [f"{m.name}: IRLS did not converge"],
                "spec": spec.to_dict(),
            })
        return {"n": self.n, "events": self.events, "dropped": dict(self.dropped), "settings": dict(self.settings),
                "models": models, "comparisons": [dict(c) for c in self.comparisons],
                "not_computed": self.not_computed}

    def summary(self) -> str:
        lines = [f"Nested logistic models, out of core: n = {self.n:,}, events = {self.events:,}"]
        for m, spec in zip(self.models, self.specs):
            lines.append(f"{m.name}: {spec.formula()}  (log-likelihood {m.llf:.3f}, AIC {m.aic:.1f})")
            for r in m.to_frame().itertuples():
                if r.term != "const":
                    lines.append(f"  {r.term:<18} OR {r.odds_ratio:8.3f}  ({r.or_lower:.3f}-{r.or_upper:.3f})  "
                                 f"p {r.p_value:.3g}")
        for c in self.comparisons:
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
    progress: bool = False,
) -> NestedFitOutOfCore:
    """The nested models M0-M3 of :func:`rlsepi.risk_models.fit_nested`, out of core.

    A first pass reduces what the design needs from all rows (the PRS mean and SD, and the
    age distribution for spline knots); then :func:`fit_logistic` fits the four models
    together. Coefficients equal the in-memory fit to about 1e-10.
    """
    import pandas as pd

    from rlsepi.parameters import DEFAULT
    from rlsepi.risk_models import SPLINE_CENTILES, ModelSpec, nested_specs, score_weights

    if ferritin not in ("log2", "cut"):
        raise DataValidationError(f"ferritin coding must be 'log2' or 'cut', got '{ferritin}'")
    if age not in ("quadratic", "spline"):
        raise DataValidationError(f"age coding must be 'quadratic' or 'spline', got '{age}'")
    params = params or DEFAULT
    weights = score_weights(params)
    need = ("rls", "age", "sex", "pregnant", "ferritin", *weights)
    design = _NestedDesign(dict(columns or {}), dict(codes or {}), need, ferritin, params)
    parts = partitions(path)
    summaries = _run(client, _summary_partition, [(p, design) for p in parts], key=_key_prefix("fit-summary"),
                     progress=progress)
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
    terms = [("const", *c) for c in cols]
    # warm start from the first partition alone: 3-4 passes over all instead of 7-8
    first = fit_logistic(path, design, terms, read=design.read_columns(), parts=parts[:1], tol=1e-6, client=client)
    fits = fit_logistic(path, design, terms, read=design.read_columns(), names=list(specs), client=client,
                        alpha=alpha, progress=progress, start=[f.params for f in first], parts=parts)
    dropped: dict[str, int] = {}
    for s in summaries:
        for k, v in s["dropped"].items():
            dropped[k] = dropped.get(k, 0) + int(v)
    comparisons = tuple(wald_lr(fits[i - 1], fits[i]) for i in range(1, len(fits)))
    settings = {"ferritin": ferritin, "age": age, "ci": "wald", "alpha": alpha, "partitions": len(parts),
                "out_of_core": True}
    return NestedFitOutOfCore(tuple(fits), tuple(specs.values()), comparisons, n,
                              sum(s["events"] for s in summaries), {k: v for k, v in dropped.items() if v}, settings)


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
        info = client.scheduler_info(n_workers=-1) if _accepts_n_workers(client) else client.scheduler_info()
        n_workers = max(1, len(info.get("workers", {})))
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
    refs: dict[str, Any] = {}
    for k, w in enumerate(weights):
        if isinstance(reference, pg.ReferenceDistribution):
            refs[w] = reference
        elif isinstance(reference, Mapping):
            if w not in reference:
                raise RLSEpiError(f"no reference distribution for weight '{w}'")
            refs[w] = reference[w]
        else:
            f = np.where(np.isfinite(score_freq), score_freq, eff)
            src = ("scoring-file effect-allele frequencies" if np.isfinite(score_freq).all()
                   else "sample effect-allele frequencies" if not np.isfinite(score_freq).any()
                   else "scoring-file frequencies, the sample's where absent")
            if not np.isfinite(f).all():
                f = np.nan_to_num(f, nan=0.0)
            ref = pg.analytic_reference(vals[k], f)
            refs[w] = pg.ReferenceDistribution(ref.kind, ref.mean, ref.sd, ref.values, ref.probs,
                                               f"{ref.description}, from {src}")
    id_col = g.samples.columns[0]
    out = pd.DataFrame({id_col: g.samples[id_col].to_numpy()})
    for k, w in enumerate(weights):
        pre = f"{pg._label(w)}_" if multi else ""
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"{pre}SUM"] = acc[sum_cols[k]]
            out[f"{pre}AVG"] = np.where(denom > 0, acc[sum_cols[k]] / np.maximum(denom, 1), np.nan)
    out["ALLELE_CT"] = allele_ct
    out["DENOM"] = denom
    out["NAMED_ALLELE_DOSAGE_SUM"] = acc["NAMED_ALLELE_DOSAGE_SUM"]
    for k, w in enumerate(weights):
        pre = f"{pg._label(w)}_" if multi else ""
        out[f"{pre}z"] = refs[w].z(acc[sum_cols[k]])
        out[f"{pre}percentile"] = refs[w].percentile(acc[sum_cols[k]])
    log = log.copy()
    log["sample_effect_freq"] = np.nan
    log["n_imputed"] = 0
    pos = np.flatnonzero(log["status"].to_numpy() == "used")
    log.loc[pos, "sample_effect_freq"] = eff
    log.loc[pos, "n_imputed"] = n_imp if imputation != "none" else 0
    nocall = pos[n_imp == n] if n else pos[:0]
    if nocall.size:
        note = ("no calls: imputed as 2 x 0.5 copies, as plink2 does" if imputation != "none"
                else "no calls: contributes nothing")
        log.loc[nocall, "reason"] = [f"{r}; {note}" if r else note for r in log.loc[nocall, "reason"]]
    log["imputation"] = imputation
    return pg.PRSResult(scores=out, match_log=log, coverage=cov, imputation=imputation, references=refs,
                        score_name=score.name, n_samples=n)


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
