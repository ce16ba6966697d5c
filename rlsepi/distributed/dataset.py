"""Parquet datasets: the simulator's blocks written as one file per partition, reading a
dataset or a single file in partitions, people per cell reduced over partitions, and
``person_id`` checked for repeats across partitions.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rlsepi.distributed.cluster import _key_prefix, _run
from rlsepi.errors import DataValidationError, OutputExistsError, RLSEpiError

if TYPE_CHECKING:
    import pandas as pd
    from distributed import Client

    from rlsepi.parameters import Parameters

DEFAULT_PARTITION_BLOCKS = 16
"""Simulator blocks (of 65,536 people) per dataset file: about 1M people, 20-30 MB per file."""

ROW_GROUPS_PER_TASK = 16
"""Row groups of a single Parquet file read by one task."""

FREQ = "__people__"
"""Name of the people-per-cell column of a :class:`CellCounts` table."""


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
    allow_duplicate_ids: bool = False


def _count_partition(job: _CountJob) -> tuple[pd.DataFrame, Any, dict[str, Any] | None]:
    import warnings

    from rlsepi.errors import DataQualityWarning
    from rlsepi.schema import harmonise

    df = job.part.read(job.read)
    ids = _id_summary(df, job.columns.get("person_id", "person_id"))
    with warnings.catch_warnings():  # repeated IDs, when allowed, are counted once for all partitions
        warnings.simplefilter("ignore", DataQualityWarning)
        df, report = harmonise(df, columns=job.columns, codes=job.codes, require=job.require, boolean=job.boolean,
                               allow_duplicate_ids=job.allow_duplicate_ids)
    absent = [c for c in job.keep if c not in df.columns]
    if absent:
        raise DataValidationError(f"column '{absent[0]}' is missing in '{job.part.path}'; the columns are: "
                                  f"{', '.join(map(str, df.columns))}")
    return _group(df, list(job.keep)), report, ids


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
    allow_duplicate_ids: bool = False,
    progress: bool = False,
) -> CellCounts:
    """People per combination of ``keep`` columns, over every partition of a file or dataset.

    Each partition is read (only the columns needed), harmonised like an in-memory cohort
    (:func:`rlsepi.schema.harmonise` with ``columns``, ``codes``, ``require``, ``boolean``)
    and grouped; the per-partition tables are summed. The cell table holds everything a
    count-based estimator needs, so prevalences, their intervals, standardisation, the
    crude and Mantel-Haenszel odds ratios and the target check computed from it equal the
    in-memory results (identical counts).

    ``person_id`` must be unique in the whole dataset, as in memory (:func:`check_unique_ids`
    compares partitions; ``allow_duplicate_ids`` turns a repeat into one counted warning).

    Keep continuous columns out of ``keep``: the table has one row per distinct combination.
    """
    columns = dict(columns or {})
    keep = tuple(dict.fromkeys(keep))
    need = tuple(dict.fromkeys((*keep, *require)))
    # also read the columns of the rules between columns (pregnancy only in women of
    # reproductive age, trimester exactly when pregnant) wherever the data has them, so that a
    # dataset is refused for what an in-memory cohort is refused for
    read = tuple(columns.get(c, c) for c in dict.fromkeys((*need, *PLAUSIBILITY_COLUMNS)))
    parts = partitions(path)
    jobs = [_CountJob(p, read, keep, columns, dict(codes or {}), tuple(dict.fromkeys(require)), tuple(boolean),
                      allow_duplicate_ids) for p in parts]
    results = _run(client, _count_partition, jobs, progress=progress, key=_key_prefix("counts"))
    check_unique_ids(parts, [r[2] for r in results], client=client, column=columns.get("person_id", "person_id"),
                     allow_duplicate_ids=allow_duplicate_ids)
    import pandas as pd

    cells = pd.concat([r[0] for r in results], ignore_index=True)
    cells = _group(cells, list(keep), cells[FREQ].to_numpy())
    return CellCounts(cells, _combine_reports([r[1] for r in results]), len(parts))


# --- person_id unique across partitions ----------------------------------------------------

ID_BUCKET_ROWS = 8_000_000
"""IDs one task compares when partitions' ID ranges overlap (64 MB of 8-byte IDs)."""

_ID_CUTS = 65


def _id_summary(raw: pd.DataFrame, column: str) -> dict[str, Any] | None:
    """A partition's ``person_id`` values in brief: count, range, evenly spaced order statistics,
    and how many rows repeat a value of the same partition (None when the column is absent or empty)."""
    if column not in raw.columns:
        return None
    a = np.sort(_id_values(raw[column]))
    if a.size == 0:
        return None
    distinct = 1 + int(np.count_nonzero(a[1:] != a[:-1]))
    cuts = a[np.linspace(0, a.size - 1, _ID_CUTS).round().astype(np.intp)]
    return {"n": int(a.size), "lo": a[0], "hi": a[-1], "cuts": cuts, "numeric": a.dtype != object,
            "repeated": int(a.size - distinct)}


def _id_values(s: pd.Series, *, text: bool = False) -> np.ndarray:
    """Non-missing IDs as int64, float64 or (for text, or when ``text``) str objects."""
    import pandas as pd

    s = s.dropna()
    if not text and pd.api.types.is_integer_dtype(s.dtype):
        return s.to_numpy(dtype=np.int64)
    if not text and pd.api.types.is_float_dtype(s.dtype):
        return s.to_numpy(dtype=np.float64)
    return _as_text(s.to_numpy())


def _as_text(a: np.ndarray) -> np.ndarray:
    """IDs as text, whole numbers without a decimal point (so 17, 17.0 and '17' are one ID)."""
    out = np.empty(len(a), dtype=object)
    for i, v in enumerate(a):
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            v = int(v)
        out[i] = str(v).strip()
    return out


@dataclass(frozen=True)
class _IdBucketJob:
    parts: tuple[tuple[int, Partition], ...]  # (index, partition) whose ID ranges meet the bucket
    column: str
    bounds: np.ndarray  # bucket k holds bounds[k - 1] <= id < bounds[k]
    bucket: int
    text: bool


def _ids_in_bucket(job: _IdBucketJob) -> dict[str, Any]:
    """IDs of one value range that occur in more than one partition: how many, and the first few."""
    import pandas as pd

    values, owner = [], []
    for index, part in job.parts:
        raw = part.read([job.column])
        v = _id_values(raw[job.column], text=job.text) if job.column in raw.columns else np.empty(0)
        inside = np.searchsorted(job.bounds, v, side="right") == job.bucket
        values.append(v[inside])
        owner.append(np.full(int(inside.sum()), index))
    pairs = pd.DataFrame({"id": np.concatenate(values) if values else [],
                          "part": np.concatenate(owner) if owner else []}).drop_duplicates()
    counts = pairs["id"].value_counts(sort=False)
    shared = counts[counts > 1].index
    first = sorted(shared.tolist())[:3]
    where = {v: sorted(pairs.loc[pairs["id"] == v, "part"].astype(int).tolist()) for v in first}
    return {"shared": int(len(shared)), "first": first, "where": where}


def _overlapping_groups(items: Sequence[tuple[int, dict[str, Any]]]) -> list[list[tuple[int, dict[str, Any]]]]:
    """Partitions whose [lowest, highest] ID ranges overlap, chained into groups (sweep by lowest)."""
    order = sorted(items, key=lambda t: t[1]["lo"])
    groups: list[list[tuple[int, dict[str, Any]]]] = []
    hi = None
    for item in order:
        if groups and item[1]["lo"] <= hi:
            groups[-1].append(item)
            hi = max(hi, item[1]["hi"])
        else:
            groups.append([item])
            hi = item[1]["hi"]
    return [g for g in groups if len(g) > 1]


def check_unique_ids(
    parts: Sequence[Partition],
    summaries: Sequence[dict[str, Any] | None],
    *,
    client: Client | None = None,
    column: str = "person_id",
    allow_duplicate_ids: bool = False,
    bucket_rows: int = ID_BUCKET_ROWS,
) -> None:
    """Refuse (or, with ``allow_duplicate_ids``, count in one warning) ``person_id`` values that
    occur in more than one partition.

    Parameters
    ----------
    parts : the partitions, and ``summaries`` their :func:`_id_summary` (from a pass that read
        them anyway).

    Notes
    -----
    Partitions whose ID ranges do not overlap cannot share an ID; a dataset written by
    :func:`write_dataset` (consecutive IDs) is cleared by the ranges alone. Where ranges
    overlap, the IDs of those partitions are split into value ranges of about ``bucket_rows``
    IDs (bounds from each partition's evenly spaced order statistics), and one task per range
    reads the ID column of the partitions that reach into it and finds the values held by more
    than one: memory per task is bounded by ``bucket_rows``, whatever the number of rows.
    """
    import warnings

    from rlsepi.errors import DataQualityWarning

    items = [(i, s) for i, s in enumerate(summaries) if s is not None]
    within = sum(s["repeated"] for _, s in items)
    text = not all(s["numeric"] for _, s in items)
    if text:  # some partition holds text IDs: compare every ID as text
        items = [(i, {**s, "lo": _as_text(np.array([s["lo"]], dtype=object))[0],
                      "hi": _as_text(np.array([s["hi"]], dtype=object))[0],
                      "cuts": _as_text(np.asarray(s["cuts"], dtype=object))}) for i, s in items]
    jobs = []
    for group in _overlapping_groups(items):
        total = sum(s["n"] for _, s in group)
        buckets = max(1, -(-total // max(1, bucket_rows)))
        cuts = np.concatenate([np.asarray(s["cuts"]) for _, s in group])
        weight = np.concatenate([np.full(len(s["cuts"]), s["n"] / len(s["cuts"])) for _, s in group])
        order = np.argsort(cuts, kind="stable")
        cum = np.cumsum(weight[order])
        at = np.searchsorted(cum, cum[-1] * np.arange(1, buckets) / buckets)
        bounds = np.unique(cuts[order][np.minimum(at, len(cuts) - 1)])
        edges = [None, *bounds.tolist(), None]
        for k in range(len(bounds) + 1):
            lo, hi = edges[k], edges[k + 1]
            reach = tuple((i, parts[i]) for i, s in group
                          if (lo is None or s["hi"] >= lo) and (hi is None or s["lo"] < hi))
            if len(reach) > 1:
                jobs.append(_IdBucketJob(reach, column, bounds, k, text))
    found = _run(client, _ids_in_bucket, jobs, key=_key_prefix("ids")) if jobs else []
    shared = sum(f["shared"] for f in found)
    if shared and not allow_duplicate_ids:
        first = next(f for f in found if f["shared"])
        v = first["first"][0]
        files = " and ".join(f"'{Path(parts[i].path).name}'" + (f" (row groups {parts[i].row_groups[0]}-"
                                                                f"{parts[i].row_groups[-1]})" if parts[i].row_groups
                                                                else "")
                             for i in first["where"][v][:2])
        raise DataValidationError(
            f"column '{column}' has {shared:,} {'value' if shared == 1 else 'values'} that occur in more than one "
            f"partition (first {v!r}, in {files}); each person must appear once: remove the repeated rows, or "
            "pass --allow-duplicate-ids to count each row as a person")
    if (shared or within) and allow_duplicate_ids:
        warnings.warn(f"column '{column}' repeats IDs: {within:,} rows repeat an ID of their own partition and "
                      f"{shared:,} IDs occur in more than one partition; each row is counted as a person "
                      "(--allow-duplicate-ids)", DataQualityWarning, stacklevel=3)
