"""Generic reading and atomic writing; provenance metadata.

This module imports nothing of rlsepi but its errors: the simulator's writer lives with the
simulator (:func:`rlsepi.cohort.write_cohort`), so imports run one way (cohort -> io).

Every file rlsepi writes goes to a temporary file in the destination folder first and is
renamed into place only when complete, so a user never meets a half-written file, and an
existing file is never replaced unless ``force=True``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from rlsepi import __version__
from rlsepi.errors import DataValidationError, OutputExistsError, RLSEpiError

if TYPE_CHECKING:  # pandas and pyarrow are imported where used, so that the CLI starts fast
    import pandas as pd

__all__ = [
    "atomic_output",
    "check_output_path",
    "table_to_frame",
    "read_cohort",
    "read_metadata",
    "provenance_metadata",
    "file_sha256",
    "to_jsonable",
    "round_significant",
    "round_floats",
    "METADATA_PREFIX",
]

METADATA_PREFIX = "rlsepi."


def check_output_path(path: str | Path, *, force: bool = False) -> Path:
    """Refuse an output path that exists (unless ``force``) or whose folder is not writable."""
    p = Path(path)
    if p.exists() and p.is_dir():
        raise OutputExistsError(f"output '{p}' is a folder; give a file name")
    if p.exists() and not force:
        raise OutputExistsError(f"output file '{p}' already exists; use --force to overwrite it")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise RLSEpiError(f"cannot write '{p}': folder '{parent}' does not exist; create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise RLSEpiError(f"cannot write '{p}': folder '{parent}' is not writable")
    return p


@contextlib.contextmanager
def atomic_output(path: str | Path, *, force: bool = False, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; rename it to ``path`` only if the block succeeds.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_output(d / "x.txt", mode="w") as fh:
    ...     _ = fh.write("hello")
    >>> (d / "x.txt").read_text()
    'hello'
    """
    p = check_output_path(path, force=force)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent if str(p.parent) else ".")
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual mode
        if p.exists() and not force:  # appeared while we were writing
            raise OutputExistsError(f"output file '{p}' already exists; use --force to overwrite it")
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def provenance_metadata(**fields: Any) -> dict[bytes, bytes]:
    """Key-value metadata (``rlsepi.*``) for a Parquet file; values JSON-encoded."""
    meta = {"version": __version__, **fields}
    return {f"{METADATA_PREFIX}{k}".encode(): json.dumps(v, sort_keys=True).encode() for k, v in meta.items()}


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The ``rlsepi.*`` provenance of a Parquet cohort (empty for other files)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    try:
        raw = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataValidationError(f"'{path}' is not a readable Parquet file: {exc}") from None
    out = {}
    for k, v in raw.items():
        key = k.decode(errors="replace")
        if key.startswith(METADATA_PREFIX):
            out[key[len(METADATA_PREFIX):]] = json.loads(v)
    return out


def read_cohort(path: str | Path, *, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a cohort from Parquet, CSV or TSV (by extension; ``.gz`` allowed for text).

    Parquet cohorts written by rlsepi keep their dtypes and carry their provenance in
    ``df.attrs["rlsepi"]``.
    """
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = Path(path)
    if not p.exists():
        raise DataValidationError(f"input file '{p}' does not exist")
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    ext = suffixes[-1] if suffixes else ""
    try:
        if ext in (".parquet", ".pq"):
            table = pq.read_table(p, columns=columns)
            df = table_to_frame(table)
            df.attrs["rlsepi"] = read_metadata(p)
            return df
        if ext in (".csv", ".tsv", ".txt"):
            sep = "\t" if ext in (".tsv", ".txt") else ","
            return pd.read_csv(p, sep=sep, usecols=columns)
    except (pa.ArrowInvalid, OSError, pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataValidationError(f"cannot read '{p}': {first}") from None
    raise DataValidationError(
        f"cannot tell the format of '{p}' from its extension; use .parquet, .csv or .tsv"
    )


def table_to_frame(table: Any) -> pd.DataFrame:
    """Arrow cohort table to pandas with the registry's dtypes (category sex, nullable trimester)."""
    import pandas as pd
    import pyarrow as pa

    df = table.to_pandas(types_mapper={pa.int8(): pd.Int8Dtype()}.get)
    for col in df.columns:
        if str(df[col].dtype) == "Int8" and col not in ("trimester", "irls_score"):
            df[col] = df[col].astype(np.int8)
    if "sex" in df.columns:
        df["sex"] = df["sex"].astype(pd.CategoricalDtype(["female", "male"]))
    return df


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (for provenance)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def to_jsonable(x: Any) -> Any:
    """numpy scalars and arrays to plain Python, for json.dumps."""
    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return x


def round_significant(x: float, digits: int) -> float:
    """``x`` rounded to ``digits`` significant decimal digits (non-finite values unchanged).

    The one rounding rule of every stored number that is computed in floating point (the
    solved model in a cohort's metadata, the floats of ``summary.json``). Differences
    between CPUs (numpy's vector ``exp``/``log``, BLAS summation order) live in the last
    few bits; rounding well above them gives the same decimal on every machine, except
    when a value falls within that tiny difference of a rounding boundary.
    Python's decimal formatting is correctly rounded, so the result does not depend on the
    platform.

    Examples
    --------
    >>> round_significant(0.1234567891, 6)
    0.123457
    >>> round_significant(-2.68024272126730e-05, 3)
    -2.68e-05
    """
    x = float(x)
    if not math.isfinite(x) or x == 0.0:
        return x
    return float(f"{x:.{digits - 1}e}")


def round_floats(x: Any, digits: int) -> Any:
    """Every float in a nested structure of dicts, lists and tuples rounded by
    :func:`round_significant` (numpy scalars and arrays converted; ints and bools kept)."""
    def walk(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: walk(u) for k, u in v.items()}
        if isinstance(v, list):
            return [walk(u) for u in v]
        if isinstance(v, float):
            return round_significant(v, digits)
        return v

    return walk(to_jsonable(x))
