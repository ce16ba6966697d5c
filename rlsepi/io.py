"""Generic reading and atomic writing; provenance metadata.

This module imports nothing of rlsepi but its errors: the simulator's writer lives with the
simulator (:func:`rlsepi.cohort.write_cohort`), so imports run one way (cohort -> io).

Every file rlsepi writes goes to a temporary file in the destination folder first and is
renamed into place only when complete, so a user never meets a half-written file, and an
existing file is never replaced unless ``force=True``.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import math
import os
import shutil
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
    "output_group",
    "OutputGroup",
    "check_free_space",
    "check_memory",
    "estimated_cohort_bytes",
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


class OutputGroup:
    """The outputs of one command, committed together: see :func:`output_group`."""

    def __init__(self, force: bool) -> None:
        self.force = force
        self.staged: dict[Path, str] = {}  # final path -> temporary file holding its bytes

    def staged_path(self, path: str | Path) -> Path:
        """The temporary file that holds ``path``'s bytes until the group commits."""
        return Path(self.staged[Path(path)])

    def _commit(self) -> None:
        for final in self.staged:
            if final.exists() and not self.force:  # appeared while we were writing
                raise OutputExistsError(f"output file '{final}' already exists; use --force to overwrite it")
        for final, tmp in list(self.staged.items()):
            os.replace(tmp, final)
            del self.staged[final]

    def _discard(self) -> None:
        for tmp in self.staged.values():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        self.staged.clear()


_GROUP: contextvars.ContextVar[OutputGroup | None] = contextvars.ContextVar("rlsepi_output_group", default=None)


@contextlib.contextmanager
def output_group(*, force: bool = False) -> Iterator[OutputGroup]:
    """Commit every file written with :func:`atomic_output` inside the block together, or none.

    Inside the block each output stays in its temporary file; when the block ends without
    an error, all are renamed into place one after another; on any error (or Ctrl-C, or
    SIGTERM through :mod:`rlsepi.cli`) all temporary files are removed and no output appears.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> try:
    ...     with output_group():
    ...         with atomic_output(d / "a.txt", mode="w") as fh:
    ...             _ = fh.write("a")
    ...         raise RuntimeError("the second output failed")
    ... except RuntimeError:
    ...     pass
    >>> sorted(p.name for p in d.iterdir())
    []
    """
    group = OutputGroup(force)
    token = _GROUP.set(group)
    try:
        yield group
        group._commit()
    except BaseException:
        group._discard()
        raise
    finally:
        _GROUP.reset(token)


@contextlib.contextmanager
def atomic_output(path: str | Path, *, force: bool = False, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; rename it to ``path`` only if the block succeeds.

    Inside :func:`output_group` the rename waits until the whole group succeeds.

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
    group = _GROUP.get()
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual mode
        if group is not None:
            if p in group.staged:
                raise RLSEpiError(f"output '{p}' is written twice by one command; this is a bug")
            group.staged[p] = tmp
            return
        if p.exists() and not force:  # appeared while we were writing
            raise OutputExistsError(f"output file '{p}' already exists; use --force to overwrite it")
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_tsv(fh: IO[str], df: pd.DataFrame, *, float_format: str = "%.10g", chunk_rows: int = 20_000) -> None:
    """Write ``df`` as tab-separated text, byte for byte as ``df.to_csv(fh, sep="\\t", index=False,
    float_format=float_format, lineterminator="\\n")`` writes it, several times faster.

    Floating-point columns go through ``float_format`` (missing values empty), booleans are
    ``True``/``False``, other values ``str``; fields are quoted as the csv module's minimal quoting
    does. pandas formats every float through a Python callback; here each column is formatted in
    one list comprehension and the rows written by the csv module (C).
    """
    import csv

    writer = csv.writer(fh, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow([str(c) for c in df.columns])
    for lo in range(0, len(df), chunk_rows):  # in chunks: the text of a whole large table is never held at once
        part = df.iloc[lo:lo + chunk_rows]
        writer.writerows(zip(*(_tsv_column(part[name], float_format) for name in part.columns)))


def _tsv_column(s: pd.Series, float_format: str) -> list[str]:
    """One column's fields as :func:`write_tsv` writes them."""
    kind = s.dtype.kind
    if kind == "f":
        vals = s.to_numpy(dtype=np.float64, na_value=np.nan)
        text = [float_format % x for x in vals.tolist()]
        for i in np.flatnonzero(np.isnan(vals)).tolist():
            text[i] = ""
        return text
    if kind in "iub" and not s.hasnans:
        return [str(x) for x in s.tolist()]
    values = s.astype(object).tolist()
    if s.hasnans:
        values = [None if m else x for x, m in zip(values, s.isna().tolist())]
    return ["" if x is None else x if type(x) is str else str(x) for x in values]


def estimated_cohort_bytes(n: int, n_loci: int) -> int:
    """A generous estimate of a simulated cohort's Parquet size (about 11 bytes a person with
    four loci are written; this allows 16 plus one per locus, and 1 MiB of metadata)."""
    return int(n) * (16 + int(n_loci)) + (1 << 20)


def check_free_space(path: str | Path, needed: int, *, what: str = "the output") -> None:
    """Refuse to start writing ``needed`` bytes into ``path``'s folder when it has less free space."""
    p = Path(path)
    folder = p.parent if str(p.parent) else Path(".")
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # cannot tell: let the write itself report
    if needed > free:
        raise RLSEpiError(
            f"{what} needs about {_bytes(needed)} but folder '{folder}' has {_bytes(free)} free; "
            "use a smaller --n or write elsewhere"
        )


def check_memory(needed: int, *, what: str = "the analysis") -> None:
    """Refuse to start a computation that needs more than the machine's physical memory."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return  # cannot tell (not POSIX): let the computation report
    if needed > total:
        raise RLSEpiError(f"{what} needs about {_bytes(needed)} of memory but this machine has {_bytes(total)}; "
                          "use a smaller --n")


def _bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n} bytes"  # pragma: no cover


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


def read_cohort(path: str | Path, *, columns: list[str] | None = None, fmt: str | None = None) -> pd.DataFrame:
    """Read a cohort from Parquet, CSV or TSV (by extension, or ``fmt``; ``.gz`` allowed for text).

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
    ext = f".{fmt}" if fmt else (suffixes[-1] if suffixes else "")
    if p.is_dir():
        raise DataValidationError(f"input '{p}' is a folder; give a cohort file")
    try:
        if ext in (".parquet", ".pq"):
            table = pq.read_table(p, columns=columns)
            meta = read_metadata(p)
            # rlsepi's own cohorts get the registry's dtypes; a user's Parquet file is read as it is
            # and coded by rlsepi.schema.harmonise like a CSV (no code silently turned into NA)
            df = table_to_frame(table) if meta and "sex" in table.column_names else table.to_pandas()
            df.attrs["rlsepi"] = meta
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
