"""Cohorts beyond one machine: Parquet datasets and out-of-core analyses on a Dask cluster.

The package's modules import one way: :mod:`.cluster` <- :mod:`.dataset` <- :mod:`.fit`, and
:mod:`.cluster` <- :mod:`.prs`; every public name is here too. What lives here:

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

from rlsepi.distributed.cluster import connect, parse_scheduler
from rlsepi.distributed.dataset import (
    DEFAULT_PARTITION_BLOCKS,
    FREQ,
    ID_BUCKET_ROWS,
    PLAUSIBILITY_COLUMNS,
    ROW_GROUPS_PER_TASK,
    CellCounts,
    Partition,
    cell_counts,
    check_unique_ids,
    dataset_files,
    partitions,
    read_provenance,
    write_dataset,
)
from rlsepi.distributed.fit import (
    FIT_CACHE_BYTES,
    LogisticFit,
    NestedFitOutOfCore,
    fit_logistic,
    fit_nested,
    not_out_of_core,
    wald_lr,
)
from rlsepi.distributed.prs import PRS_BLOCK_VARIANTS, score_file, score_genotypes

__all__ = [
    "parse_scheduler",
    "connect",
    "write_dataset",
    "Partition",
    "partitions",
    "dataset_files",
    "read_provenance",
    "cell_counts",
    "CellCounts",
    "check_unique_ids",
    "fit_logistic",
    "LogisticFit",
    "fit_nested",
    "NestedFitOutOfCore",
    "wald_lr",
    "FREQ",
    "DEFAULT_PARTITION_BLOCKS",
    "ROW_GROUPS_PER_TASK",
    "PLAUSIBILITY_COLUMNS",
    "ID_BUCKET_ROWS",
    "FIT_CACHE_BYTES",
    "not_out_of_core",
    "score_genotypes",
    "score_file",
    "PRS_BLOCK_VARIANTS",
]
