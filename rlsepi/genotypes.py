"""Genotype readers: one reader per format behind one small interface.

A :class:`Genotypes` says who (``samples``), which variants (``variants``: ``id``, ``chrom``,
``pos``, ``a1``, ``a2``) and reads blocks of counts of each variant's ``a1`` allele
(``read(indices)``). Adding a format means adding a reader here and a branch in
:func:`read_genotypes`; matching and scoring (:mod:`rlsepi.polygenic`) do not change.

Formats: a cohort table (one int8 column per rsID), PLINK 1 ``.bed/.bim/.fam`` (bed-reader, and
the packed bytes for the compiled kernels of :mod:`rlsepi._kernels`), PLINK 2
``.pgen/.pvar/.psam`` (pgenlib: hard calls, dosages, multi-allelic), BGEN 1.2 with its
``.sample`` (:mod:`rlsepi._bgen`), and VCF/BCF through htslib (cyvcf2). Multi-allelic sites
appear once per ALT allele, and the reader counts REF itself when asked (``count_a2``).
"""

from __future__ import annotations

import gzip
import io
import re
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from rlsepi.errors import DataValidationError, RLSEpiError
from rlsepi.io import atomic_output, check_output_path
from rlsepi.parameters import DEFAULT_LOCI, EXTENDED_LOCI, Locus

__all__ = ["Genotypes", "read_genotypes", "cohort_genotypes", "plink_genotypes", "pgen_genotypes", "bgen_genotypes",
           "vcf_genotypes", "write_bed", "write_plink"]


try:  # ISA-L's gzip reader: the same bytes as the gzip module's, about 3 times faster
    from isal import igzip as _gzip
    from isal.isal_zlib import error as _IsalError
except ImportError:  # pragma: no cover - isal is a dependency
    _gzip, _IsalError = gzip, zlib.error  # type: ignore[misc]

DECOMPRESS_ERRORS: tuple[type[BaseException], ...] = (zlib.error, gzip.BadGzipFile, EOFError, _IsalError)
"""What reading a corrupt or truncated gzip file through :func:`_open_text` may raise."""


def _open_text(path: Path) -> io.TextIOBase:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(_gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


def _norm_chr(x: Any) -> str:
    s = str(x).strip()
    if s.lower().startswith("chr"):
        s = s[3:]
    s = s.upper()
    return {"23": "X", "24": "Y", "25": "XY", "26": "MT", "M": "MT"}.get(s, s)


def _norm_chr_all(values: Sequence[Any]) -> np.ndarray:
    """:func:`_norm_chr` of every value, computed once per distinct value."""
    arr = pd.Series(list(values), dtype=object).astype(str)
    table = {u: _norm_chr(u) for u in arr.unique()}
    return arr.map(table).to_numpy(dtype=object)


def _build_name(text: str | None) -> str | None:
    if not text:
        return None
    t = text.strip().lower()
    if t in ("grch37", "hg19", "37"):
        return "GRCh37"
    if t in ("grch38", "hg38", "38"):
        return "GRCh38"
    if t in ("", "nr", "na", "none"):
        return None
    return text.strip()



# --- genotypes ------------------------------------------------------------------------

ReadFn = Callable[[np.ndarray, "np.ndarray | None"], np.ndarray]


@dataclass(frozen=True)
class Genotypes:
    """A genotype source: who, which variants, and a block reader of allele counts.

    This is the one interface every format's reader implements (see the module docstring).

    Attributes
    ----------
    samples : DataFrame
        One row per person; the first column is the output ID (``IID`` or ``person_id``).
    variants : DataFrame
        ``id``, ``chrom``, ``pos``, ``a1``, ``a2`` (``a2`` empty when unknown) and
        ``multiallelic`` (bool). A multi-allelic site appears once per alternate allele, with
        ``a1`` that allele and ``a2`` the reference allele; then ``2 - count(a1)`` is *not* the
        count of ``a2``, so the scorer asks the reader for the ``a2`` count itself.
    read : callable
        ``read(indices, count_a2)`` -> ndarray of shape (n_samples, len(indices)): counts of
        ``a1`` (or of ``a2`` where the boolean mask ``count_a2`` is true) in [0, 2], as floats
        with NaN for missing calls or as integers with negative values for missing calls
        (see :func:`_as_float`). ``count_a2`` may be None (all ``a1``).
    founders : ndarray of bool
        People used to compute sample allele frequencies (plink2 uses founders).
    kind : str
        ``cohort``, ``plink``, ``pgen``, ``bgen`` or ``vcf``.
    build : str or None
        Genome build of ``pos`` when known (given, or from the file's header).
    source : str
    read_packed : callable, optional
        PLINK 1 only: ``read_packed(indices)`` -> uint8 array (len(indices), ceil(n/4)) of the
        ``.bed`` bytes of those variants, scored in place by :mod:`rlsepi._kernels`.
    read_rows : callable, optional
        ``read_rows(indices, count_a2)`` -> float32/float64 array (len(indices), n_samples): the same
        counts as ``read`` but variant-major (the natural layout of PLINK 2 and BGEN), negative
        or NaN for missing; scored by :mod:`rlsepi._kernels` without a transposed copy.
    """

    samples: pd.DataFrame = field(repr=False)
    variants: pd.DataFrame = field(repr=False)
    read: ReadFn = field(repr=False)
    founders: np.ndarray = field(repr=False)
    kind: str = ""
    build: str | None = None
    source: str = ""
    read_packed: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False)
    read_rows: ReadFn | None = field(default=None, repr=False)

    @property
    def n_samples(self) -> int:
        return len(self.samples)


def _as_float(g: np.ndarray) -> np.ndarray:
    """Genotype block as float64 with NaN for missing (integer blocks mark missing as < 0)."""
    g = np.asarray(g)
    if np.issubdtype(g.dtype, np.integer):
        out = g.astype(np.float64)
        out[g < 0] = np.nan
        return out
    out = np.asarray(g, dtype=np.float64)
    if (out < 0).any():
        out = np.where(out < 0, np.nan, out)
    return out


def _biallelic(read_a1: Callable[[np.ndarray], np.ndarray]) -> ReadFn:
    """A reader for files without multi-allelic sites: the ``a2`` count is ``2 - a1``."""

    def read(idx: np.ndarray, count_a2: np.ndarray | None = None) -> np.ndarray:
        g = read_a1(np.asarray(idx, dtype=np.intp))
        if count_a2 is None or not np.any(count_a2):
            return g
        g = _as_float(g)
        g[:, np.asarray(count_a2, dtype=bool)] = 2.0 - g[:, np.asarray(count_a2, dtype=bool)]
        return g

    return read


def _check_samples(ids: Sequence[str], where: str) -> None:
    s = pd.Series(list(ids), dtype=object)
    dup = s[s.duplicated()]
    if len(dup):
        raise DataValidationError(
            f"{where} has {len(dup)} duplicate sample ID{'s' if len(dup) > 1 else ''} (e.g. {dup.iloc[0]!r}); "
            "sample IDs must be unique, rename them (e.g. with bcftools reheader)"
        )


def _header_build(lines: Sequence[str]) -> str | None:
    """Genome build named by VCF/pvar ``##reference`` or ``##contig=<...assembly=...>`` lines."""
    found: set[str] = set()
    for line in lines:
        low = line.lower()
        if not (low.startswith("##reference") or (low.startswith("##contig") and "assembly=" in low)
                or low.startswith("##assembly")):
            continue
        if re.search(r"grch37|hg19|b37|hs37|human_g1k_v37|hs37d5|ncbi37", low):
            found.add("GRCh37")
        elif re.search(r"grch38|hg38|b38|hs38|ncbi38", low):
            found.add("GRCh38")
    return found.pop() if len(found) == 1 else None


def _given_or_header_build(given: str | None, header: str | None, where: str) -> str | None:
    g = _build_name(given)
    if g and header and g != header:
        raise DataValidationError(
            f"--build {g} was given but {where} says its positions are {header}; drop --build or check the file"
        )
    return g or header


def cohort_genotypes(df: pd.DataFrame, *, loci: Sequence[Locus] = EXTENDED_LOCI) -> Genotypes:
    """Genotypes from a cohort table: one column per rsID counting that locus's effect allele.

    Parameters
    ----------
    df : DataFrame
        The cohort; genotype columns are those named like an rsID.
    loci : sequence of Locus
        The loci the columns may be, which say which allele each column counts.

    Raises
    ------
    DataValidationError
        A genotype column that is not one of ``loci`` (its allele is unknown), or values
        other than 0, 1, 2 or missing.
    """
    from rlsepi.schema import describe_rows, is_rsid

    known = {locus.rsid: locus for locus in loci}
    cols = [c for c in df.columns if is_rsid(str(c))]
    unknown = [c for c in cols if c not in known]
    if unknown:
        raise DataValidationError(
            f"cohort genotype column{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown[:5]))} "
            f"{'are' if len(unknown) > 1 else 'is'} not a locus rlsepi knows ({', '.join(known)}), so which allele "
            "it counts is unknown; drop or rename the column, or give the genotypes as a PLINK .bed or VCF"
        )
    mats = []
    for c in cols:
        g = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        bad = df[c].notna().to_numpy() & ~np.isin(g, [0.0, 1.0, 2.0])
        if bad.any():
            raise DataValidationError(
                f"column '{c}' has {describe_rows(bad)} with values other than 0, 1, 2 or empty; "
                "genotype columns count the effect allele"
            )
        mats.append(g)
    matrix = np.column_stack(mats) if mats else np.zeros((len(df), 0))
    variants = pd.DataFrame({
        "id": cols,
        "chrom": [known[c].chrom for c in cols],
        "pos": np.array([known[c].pos_grch37 for c in cols], dtype=np.int64),
        "a1": [known[c].effect_allele for c in cols],
        "a2": [known[c].other_allele or "" for c in cols],
        "multiallelic": np.zeros(len(cols), dtype=bool),
    })
    ids = df["person_id"].to_numpy() if "person_id" in df.columns else np.asarray(df.index)
    samples = pd.DataFrame({"person_id": ids})
    return Genotypes(samples=samples, variants=variants, read=_biallelic(lambda idx: matrix[:, idx]),
                     founders=np.ones(len(df), dtype=bool), kind="cohort", build="GRCh37", source="cohort")


def _bed_prefix(path: str | Path) -> Path:
    p = Path(path)
    if p.suffix.lower() in (".bed", ".bim", ".fam"):
        return p.with_suffix("")
    return p


def _read_table(path: Path, what: str, **kwargs: Any) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, UnicodeDecodeError, OSError, EOFError) as exc:
        raise DataValidationError(f"cannot read {what} '{path}': {str(exc).splitlines()[0]}") from None


def plink_genotypes(path: str | Path, *, build: str | None = None) -> Genotypes:
    """A PLINK 1 binary fileset (``.bed`` path or prefix), read lazily in blocks of variants.

    Raises
    ------
    DataValidationError
        A missing file, a ``.bed`` that is not SNP-major PLINK 1, or whose size does not
        match the number of variants in ``.bim`` and people in ``.fam``.
    """
    prefix = _bed_prefix(path)
    files = {ext: Path(f"{prefix}.{ext}") for ext in ("bed", "bim", "fam")}
    for ext, f in files.items():
        if not f.exists():
            raise DataValidationError(f"PLINK fileset '{prefix}' has no .{ext} file ('{f}' does not exist)")
    fam = _read_table(files["fam"], "PLINK .fam", sep=r"\s+", header=None, usecols=range(6),
                      names=["FID", "IID", "PAT", "MAT", "SEX", "PHENO"])
    bim = _read_table(files["bim"], "PLINK .bim", sep=r"\s+", header=None,
                      names=["chrom", "id", "cm", "pos", "a1", "a2"])
    _check_samples((fam["FID"] + "\t" + fam["IID"]).tolist(), f"'{files['fam']}'")
    n, m = len(fam), len(bim)
    expected = 3 + m * ((n + 3) // 4)
    size = files["bed"].stat().st_size
    with open(files["bed"], "rb") as fh:
        magic = fh.read(3)
    if magic != b"\x6c\x1b\x01":
        raise DataValidationError(
            f"'{files['bed']}' is not a SNP-major PLINK 1 .bed file (first bytes {magic.hex()}, expected 6c1b01)"
        )
    if size != expected:
        raise DataValidationError(
            f"'{files['bed']}' has {size:,} bytes but {m:,} variants (.bim) x {n:,} people (.fam) need "
            f"{expected:,}; the .bed, .bim and .fam files do not belong together"
        )
    variants = pd.DataFrame({
        "id": bim["id"].to_numpy(), "chrom": _norm_chr_all(bim["chrom"]),
        "pos": _positions(bim["pos"], files["bim"]),
        "a1": bim["a1"].str.upper().replace({"0": "", ".": ""}).to_numpy(),
        "a2": bim["a2"].str.upper().replace({"0": "", ".": ""}).to_numpy(),
        "multiallelic": np.zeros(m, dtype=bool),
    })
    founders = ((fam["PAT"] == "0") & (fam["MAT"] == "0")).to_numpy()
    bed_path = str(files["bed"])
    state: dict[str, Any] = {}

    def read_a1(idx: np.ndarray) -> np.ndarray:
        from bed_reader import open_bed

        if "bed" not in state:
            state["bed"] = open_bed(bed_path, iid_count=n, sid_count=m, count_A1=True, skip_format_check=True)
        if idx.size == 0:
            return np.zeros((n, 0))
        # int8 (missing = -127) is several times faster to read than float64
        return state["bed"].read(index=np.s_[:, idx], dtype="int8", order="F")

    row_bytes = (n + 3) // 4

    def read_packed(idx: np.ndarray) -> np.ndarray:
        """The .bed rows of sorted variant indices, read with pread (no memory map: only the block is resident)."""
        import os

        idx = np.asarray(idx, dtype=np.int64)
        out = np.empty((idx.size, row_bytes), dtype=np.uint8)
        if idx.size == 0:
            return out
        # runs of nearby rows are read at once (gaps up to 64 rows are read and dropped)
        order = np.argsort(idx, kind="stable")
        srt = idx[order]
        cuts = np.flatnonzero(np.diff(srt) > 64) + 1
        fd = os.open(bed_path, os.O_RDONLY)
        try:
            for part in np.split(np.arange(idx.size), cuts):
                lo, hi = int(srt[part[0]]), int(srt[part[-1]])
                buf = os.pread(fd, (hi - lo + 1) * row_bytes, 3 + lo * row_bytes)
                rows = np.frombuffer(buf, dtype=np.uint8).reshape(hi - lo + 1, row_bytes)
                out[order[part]] = rows[srt[part] - lo]
        finally:
            os.close(fd)
        return out

    samples = pd.DataFrame({"IID": fam["IID"].to_numpy(), "FID": fam["FID"].to_numpy()})
    return Genotypes(samples=samples, variants=variants, read=_biallelic(read_a1), founders=founders, kind="plink",
                     build=_build_name(build), source=str(prefix), read_packed=read_packed)


def _positions(col: pd.Series, path: Path | str) -> np.ndarray:
    pos = pd.to_numeric(col, errors="coerce")
    bad = pos.isna() | (pos < 0)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataValidationError(
            f"'{path}' has {int(bad.sum())} variants whose position is not a non-negative integer "
            f"(variant {i + 1}: {col.iloc[i]!r}); fix or remove those lines"
        )
    return pos.astype(np.int64).to_numpy()


def _split_sites(chrom: Sequence[str], pos: np.ndarray, ids: Sequence[str], ref: Sequence[str],
                 alt: Sequence[str]) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """One variant per alternate allele: (variants table, site index, allele index of a1)."""
    alt_u = pd.Series(list(alt), dtype=object).astype(str).str.upper()
    if not alt_u.str.contains(",", regex=False).any():  # all biallelic: the same table, built column-wise
        m = len(alt_u)
        chroms = _norm_chr_all(chrom)
        id_s = pd.Series(list(ids), dtype=object).astype(str)
        no_id = id_s.isin([".", ""]).to_numpy()
        pos64 = np.asarray(pos, dtype=np.int64)
        id_arr = id_s.to_numpy(dtype=object)
        if no_id.any():
            id_arr[no_id] = [f"{c}:{p}" for c, p in zip(np.asarray(list(chrom), dtype=object)[no_id], pos64[no_id])]
        variants = pd.DataFrame({
            "id": id_arr, "chrom": chroms, "pos": pos64,
            "a1": alt_u.where(~alt_u.isin([".", "*"]), "").to_numpy(dtype=object),
            "a2": pd.Series(list(ref), dtype=object).astype(str).str.upper().to_numpy(dtype=object),
            "multiallelic": np.zeros(m, dtype=bool),
        })
        return variants, np.arange(m, dtype=np.int64), np.ones(m, dtype=np.int64)
    rows, site, allele = [], [], []
    for s, (c, p, vid, r, a) in enumerate(zip(chrom, pos, ids, ref, alt)):
        alts = [x for x in str(a).upper().split(",")]
        multi = len(alts) > 1
        vid = vid if vid not in (".", "") else f"{c}:{p}"
        for k, x in enumerate(alts, start=1):
            rows.append((vid, _norm_chr(c), int(p), "" if x in (".", "*") else x, str(r).upper(), multi))
            site.append(s)
            allele.append(k)
    variants = pd.DataFrame(rows, columns=["id", "chrom", "pos", "a1", "a2", "multiallelic"])
    return variants, np.asarray(site, dtype=np.int64), np.asarray(allele, dtype=np.int64)


def vcf_genotypes(path: str | Path, *, field_: Literal["auto", "GT", "DS"] = "auto",
                  build: str | None = None) -> Genotypes:
    """A VCF or BCF (``.vcf``, ``.vcf.gz``, ``.vcf.bgz``, ``.bcf``) read through htslib (cyvcf2).

    ``GT`` hard calls or ``DS`` alternate-allele dosages. Multi-allelic sites become one
    variant per alternate allele; the reference allele is counted itself (not as 2 minus
    one alternate allele), as plink2 does. Haploid calls count as homozygous. With
    ``field_="auto"``, ``DS`` is used where the FORMAT has it. The genome build is taken
    from ``##reference`` / ``##contig=<...,assembly=...>`` when they name one.

    Raises
    ------
    DataValidationError
        Not a VCF/BCF, duplicate sample IDs, a non-integer POS, records with fewer sample
        columns than the header, calls like ``X/Y`` or allele indices beyond the ALT count,
        no ``GT``/``DS`` in a record's FORMAT, or a truncated file.
    """
    p = Path(path)
    if not p.exists():
        raise DataValidationError(f"VCF '{p}' does not exist")
    header_lines, samples = _vcf_header(p)
    _check_samples(samples, f"VCF '{p}'")
    # sites: a fast text pass over the first 5 columns (no sample columns are parsed here)
    chrom, pos, ids, ref, alt = [], [], [], [], []
    if p.name.lower().endswith(".bcf"):
        vcf = _open_vcf(p)
        try:
            for rec in vcf:
                chrom.append(rec.CHROM)
                pos.append(rec.POS)
                ids.append(rec.ID or ".")
                ref.append(rec.REF)
                alt.append(",".join(rec.ALT) if rec.ALT else ".")
                _check_format(rec.FORMAT or [], f"VCF '{p}' record {rec.CHROM}:{rec.POS} ({rec.ID or '.'})")
        except DataValidationError:
            raise
        except Exception as exc:  # noqa: BLE001 - htslib errors surface as several exception types
            raise DataValidationError(f"cannot read VCF '{p}' after {len(pos)} records: {_first_line(exc)}") from None
    else:
        # text VCF: check every record before htslib sees it (htslib crashes on some malformed GT values)
        _scan_text_vcf(p, len(samples), chrom, pos, ids, ref, alt)
    variants, site_of, allele_of = _split_sites(chrom, np.asarray(pos, dtype=np.int64), ids, ref, alt)
    n = len(samples)

    stream: dict[str, Any] = {}

    def read(idx: np.ndarray, count_a2: np.ndarray | None = None) -> np.ndarray:
        """One streaming pass over the file for the requested variants (memory: this block only)."""
        idx = np.asarray(idx, dtype=np.intp)
        a2 = np.zeros(idx.size, bool) if count_a2 is None else np.asarray(count_a2, dtype=bool)
        out = np.full((n, idx.size), np.nan)
        wanted: dict[int, list[tuple[int, int]]] = {}
        for col, i in enumerate(idx):
            wanted.setdefault(int(site_of[i]), []).append((col, 0 if a2[col] else int(allele_of[i])))
        if not wanted:
            return out
        last = max(wanted)
        # blocks come in file order: continue the open pass when we can, else start again
        if stream.get("next", 1 << 62) > min(wanted):
            # htslib decompresses BGZF blocks in a second thread while this one decodes records
            stream["it"], stream["next"] = iter(_open_vcf(p, threads=2)), 0
        try:
            while stream["next"] <= last:
                rec = next(stream["it"])
                s = stream["next"]
                stream["next"] += 1
                if s in wanted:
                    for col, k in wanted[s]:
                        out[:, col] = _vcf_counts(rec, k, n, field_, p)
        except DataValidationError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise DataValidationError(f"cannot read VCF '{p}': {_first_line(exc)}") from None
        return out

    hb = _header_build(header_lines)
    return Genotypes(samples=pd.DataFrame({"IID": samples}), variants=variants, read=read,
                     founders=np.ones(n, dtype=bool), kind="vcf",
                     build=_given_or_header_build(build, hb, f"the header of '{p}'"), source=str(p))


_NOT_GT = re.compile(r":[^\t]*")  # everything after GT in a sample column
_GT_CHARS = str.maketrans("", "", "0123456789./|\t")
_GT_CHARS_BI = str.maketrans("", "", "01./|\t")


def _check_format(fmt: Sequence[str], where: str) -> None:
    if "GT" not in fmt and "DS" not in fmt:
        raise DataValidationError(
            f"{where} has neither GT nor DS in FORMAT ({':'.join(fmt) or 'none'}); rlsepi scores hard calls (GT) "
            "or dosages (DS)"
        )


def _scan_text_vcf(p: Path, n: int, chrom: list, pos: list, ids: list, ref: list, alt: list) -> None:
    """Sites of a text VCF, checking column counts, POS and GT syntax of every record."""
    line_no = 0
    try:
        with _open_text(p) as fh:
            for line in fh:
                line_no += 1
                if line.startswith("#"):
                    continue
                f = line.rstrip("\r\n").split("\t", 9)
                where = f"VCF '{p}' line {line_no}"
                if len(f) < 10 or f[9].count("\t") != n - 1:
                    got = max(len(f) - 9, 0) + (f[9].count("\t") if len(f) == 10 else 0)
                    raise DataValidationError(
                        f"{where} ({':'.join(f[:2])}) has {got} sample columns but the header names {n}; "
                        "the file is truncated or malformed"
                    )
                if not f[1].isdigit():
                    raise DataValidationError(f"{where} has POS {f[1]!r}, not a positive integer")
                fmt = f[8].split(":")
                _check_format(fmt, f"{where} ({f[0]}:{f[1]})")
                if fmt[0] == "GT":
                    gts = _NOT_GT.sub("", f[9]) if len(fmt) > 1 else f[9]
                    biallelic = "," not in f[4]
                    if gts.translate(_GT_CHARS_BI if biallelic else _GT_CHARS):
                        bad = next(t for t in gts.split("\t") if t.translate(_GT_CHARS_BI if biallelic else _GT_CHARS)
                                   or not t)
                        raise DataValidationError(
                            f"{where} ({f[0]}:{f[1]}, {f[2]}) has the call {bad!r}"
                            + (" with a single ALT allele" if biallelic and bad.translate(_GT_CHARS) == "" else "")
                            + "; GT values are allele indices like 0/1, 1|0 or ./."
                        )
                chrom.append(f[0])
                pos.append(int(f[1]))
                ids.append(f[2])
                ref.append(f[3])
                alt.append(f[4])
    except (UnicodeDecodeError, OSError, *DECOMPRESS_ERRORS) as exc:
        raise DataValidationError(f"cannot read VCF '{p}' at line {line_no + 1}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _vcf_header(p: Path) -> tuple[list[str], list[str]]:
    """The ``##`` lines and sample IDs, read as text (plain, gzip/bgzip) or through htslib (BCF)."""
    with open(p, "rb") as fh:
        magic = fh.read(5)
    if magic[:3] == b"BCF" or p.name.lower().endswith(".bcf"):
        # records keep their reader alive; closing it explicitly under a live record crashes htslib
        v = _open_vcf(p)
        lines = v.raw_header.splitlines()
        return [x for x in lines if x.startswith("##")], list(v.samples)
    lines: list[str] = []
    try:
        with _open_text(p) as fh:
            for line in fh:
                if line.startswith("##"):
                    lines.append(line.rstrip("\r\n"))
                    continue
                if line.startswith("#CHROM"):
                    cols = line.rstrip("\r\n").split("\t")
                    if cols[:8] != ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO"]:
                        raise DataValidationError(
                            f"VCF '{p}' has a malformed #CHROM line (columns must be tab-separated #CHROM POS ID "
                            "REF ALT QUAL FILTER INFO [FORMAT samples...])"
                        )
                    return lines, cols[9:]
                break
    except (UnicodeDecodeError, OSError, *DECOMPRESS_ERRORS) as exc:
        raise DataValidationError(f"cannot read VCF '{p}': {_first_line(exc)} (not a text, gzip or BCF file?)") from None
    raise DataValidationError(f"VCF '{p}' has no #CHROM header line before its first record")


def _open_vcf(p: Path, *, threads: int = 1) -> Any:
    try:
        from cyvcf2 import VCF
    except ImportError:  # pragma: no cover - a dependency
        raise RLSEpiError("reading VCF/BCF needs cyvcf2 (pip install cyvcf2)") from None
    import os

    # htslib prints its own warnings to stderr; our errors say what went wrong
    os.environ.setdefault("HTS_LOG_LEVEL", "error")
    try:
        return VCF(str(p), gts012=False, strict_gt=True, threads=threads if threads > 1 else None)
    except Exception as exc:  # noqa: BLE001
        raise DataValidationError(f"cannot open VCF '{p}': {_first_line(exc)}") from None


_ALT_COPIES = np.array([0.0, 1.0, np.nan, 2.0])
_REF_COPIES = np.array([2.0, 1.0, np.nan, 0.0])


def _vcf_counts(rec: Any, k: int, n: int, field_: str, p: Path) -> np.ndarray:
    """Copies of allele ``k`` (0 = REF) per sample, NaN where missing; DS where asked/present."""
    fmt = rec.FORMAT or []
    where = f"VCF '{p}' record {rec.CHROM}:{rec.POS} ({rec.ID or '.'})"
    if (field_ == "GT" and "GT" not in fmt) or (field_ == "DS" and "DS" not in fmt):
        raise DataValidationError(f"{where} has no {field_} in FORMAT ({':'.join(fmt)})")
    if "GT" not in fmt and "DS" not in fmt:
        raise DataValidationError(
            f"{where} has neither GT nor DS in FORMAT ({':'.join(fmt)}); rlsepi scores hard calls (GT) or dosages (DS)"
        )
    n_alt = len(rec.ALT)
    if "DS" in fmt and field_ in ("DS", "auto"):
        ds = rec.format("DS")
        if ds is None or ds.shape[0] != n:
            raise DataValidationError(f"{where} has DS for {0 if ds is None else ds.shape[0]} of {n} samples")
        ds = np.asarray(ds, dtype=np.float64)
        ds = np.where((ds < -1e30) | (ds > 1e30), np.nan, ds)  # htslib's missing / vector-end floats
        if ds.ndim == 1:
            ds = ds[:, None]
        if ds.shape[1] < n_alt:
            raise DataValidationError(f"{where} has {ds.shape[1]} DS values per sample for {n_alt} ALT alleles")
        bad = np.isfinite(ds) & ((ds < 0) | (ds > 2))
        if bad.any():
            i = int(np.flatnonzero(bad.any(axis=1))[0])
            raise DataValidationError(f"{where} sample {i + 1} has DS {ds[i].tolist()} outside [0, 2]")
        if k == 0:
            return 2.0 - ds[:, :n_alt].sum(axis=1)
        return ds[:, k - 1]
    if n_alt == 1 and k in (0, 1):
        # biallelic: htslib's genotype classes (0 hom-ref, 1 het, 2 unknown, 3 hom-alt), already in C; the
        # text scan has refused allele indices above 1. Half-calls (./1) are unknown, as plink2 --vcf-half-call m
        t = np.asarray(rec.gt_types)
        if t.shape[0] != n:
            raise DataValidationError(f"{where} has calls for {t.shape[0]} of {n} samples")
        return (_ALT_COPIES if k == 1 else _REF_COPIES)[t]
    gt = rec.genotype
    if gt is None:
        raise DataValidationError(f"{where} has no genotype values")
    arr = np.asarray(gt.array(), dtype=np.int64)[:, :-1]  # drop the phase column
    if arr.shape[0] != n:
        raise DataValidationError(f"{where} has calls for {arr.shape[0]} of {n} samples")
    valid = arr >= 0  # -1 missing, -2 vector end (haploid)
    if (arr > n_alt).any():
        i = int(np.flatnonzero((arr > n_alt).any(axis=1))[0])
        raise DataValidationError(
            f"{where} sample {i + 1} has allele index {int(arr[i].max())} but the record has {n_alt} ALT "
            f"allele{'s' if n_alt != 1 else ''}; fix the GT values"
        )
    ploidy = (arr != -2).sum(axis=1)
    called = (arr >= 0).sum(axis=1)
    missing = (called < ploidy) | (ploidy == 0) | (ploidy > 2)
    copies = ((arr == k) & valid).sum(axis=1).astype(np.float64) * np.where(ploidy == 1, 2.0, 1.0)
    copies[missing] = np.nan
    return copies


def _pgen_hardcalls_only(path: Path) -> bool:
    """Whether a ``.pgen`` can hold no dosages, from its header (PGEN format, plink2's pgenlib).

    Byte 2 is the storage mode: 0x01 (PLINK 1 layout) and 0x02 (fixed-width hard calls) hold
    none. In the variable-width modes 0x10/0x11, the low 4 bits of byte 11 say how variant
    record types are stored: values below 4 (4-bit types) and 8-11 (fixed tables without the
    dosage bits) cannot mark a dosage track. Anything else may hold dosages (answer False).
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
    except OSError:
        return False
    if len(head) < 3 or head[:2] != b"\x6c\x1b":
        return False
    if head[2] in (0x01, 0x02):
        return True
    if head[2] in (0x10, 0x11) and len(head) == 12:
        return (head[11] & 15) < 4 or 8 <= (head[11] & 15) <= 11
    return False


def pgen_genotypes(path: str | Path, *, build: str | None = None, dosages: bool = True) -> Genotypes:
    """A PLINK 2 fileset (``.pgen``/``.pvar``/``.psam``, path to any of them or the prefix) read with
    ``pgenlib``, the PLINK authors' reader: hard calls and dosages, multi-allelic sites.

    Parameters
    ----------
    dosages : bool
        Read dosages where stored (hard calls otherwise), as ``plink2 --score`` does.

    Raises
    ------
    DataValidationError
        A missing file, an unreadable ``.pvar``/``.psam``, duplicate sample IDs, or a
        ``.pgen`` whose counts do not match them.
    """
    prefix = Path(path)
    if prefix.suffix.lower() in (".pgen", ".pvar", ".psam"):
        prefix = prefix.with_suffix("")
    files = {ext: Path(f"{prefix}.{ext}") for ext in ("pgen", "pvar", "psam")}
    for ext, f in files.items():
        if not f.exists():
            raise DataValidationError(f"PLINK 2 fileset '{prefix}' has no .{ext} file ('{f}' does not exist)")
    hdr: list[str] = []
    with _open_text(files["pvar"]) as fh:
        for line in fh:
            if line.startswith("##"):
                hdr.append(line.rstrip("\r\n"))
                continue
            break
    pvar = _read_table(files["pvar"], "PLINK 2 .pvar", sep="\t", skiprows=len(hdr))
    if not len(pvar.columns) or pvar.columns[0] != "#CHROM":  # a .bim-like pvar without header
        pvar = _read_table(files["pvar"], "PLINK 2 .pvar", sep=r"\s+", header=None,
                           names=["#CHROM", "ID", "CM", "POS", "ALT", "REF"])
    need = [c for c in ("#CHROM", "POS", "ID", "REF", "ALT") if c not in pvar.columns]
    if need:
        raise DataValidationError(f"'{files['pvar']}' has no {', '.join(need)} column(s)")
    psam = _read_table(files["psam"], "PLINK 2 .psam", sep=r"\s+")
    if psam.columns[0] not in ("#FID", "#IID", "FID", "IID"):  # .fam-like psam
        psam = _read_table(files["psam"], "PLINK 2 .psam", sep=r"\s+", header=None, usecols=range(6),
                           names=["FID", "IID", "PAT", "MAT", "SEX", "PHENO"])
    psam.columns = [c.lstrip("#") for c in psam.columns]
    _check_samples(psam["IID"].tolist() if "FID" not in psam.columns
                   else (psam["FID"] + "\t" + psam["IID"]).tolist(), f"'{files['psam']}'")
    variants, site_of, allele_of = _split_sites(pvar["#CHROM"].tolist(), _positions(pvar["POS"], files["pvar"]),
                                                pvar["ID"].tolist(), pvar["REF"].tolist(), pvar["ALT"].tolist())
    n, m_sites = len(psam), len(pvar)
    try:
        import pgenlib
    except ImportError:  # pragma: no cover - a dependency
        raise RLSEpiError("reading .pgen needs pgenlib (pip install pgenlib)") from None
    try:
        # multi-allelic sites need the allele index offsets, or pgenlib misreads them
        n_alleles = pvar["ALT"].str.count(",").to_numpy(dtype=np.int64) + 2
        offsets = (np.concatenate([[0], np.cumsum(n_alleles)]).astype(np.uintp) if (n_alleles > 2).any() else None)
        r = pgenlib.PgenReader(str(files["pgen"]).encode(), raw_sample_ct=n, allele_idx_offsets=offsets)
        got = r.get_variant_ct()
    except Exception as exc:  # noqa: BLE001
        raise DataValidationError(f"cannot read '{files['pgen']}': {_first_line(exc)}") from None
    if got != m_sites:
        raise DataValidationError(
            f"'{files['pgen']}' holds {got:,} variants but '{files['pvar']}' lists {m_sites:,}; the files do not belong together"
        )
    lock = __import__("threading").Lock()

    def read(idx: np.ndarray, count_a2: np.ndarray | None = None) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.intp)
        a2 = np.zeros(idx.size, bool) if count_a2 is None else np.asarray(count_a2, dtype=bool)
        allele = np.where(a2, 0, allele_of[idx])
        out = np.empty((n, idx.size), dtype=np.float64 if dosages else np.int8)
        for k in np.unique(allele):
            cols = np.flatnonzero(allele == k)
            sites = site_of[idx[cols]].astype(np.uint32)
            buf = np.empty((sites.size, n), dtype=out.dtype)
            with lock:
                if dosages:
                    r.read_dosages_list(sites, buf, allele_idx=int(k))
                else:
                    r.read_list(sites, buf, allele_idx=int(k))
            out[:, cols] = buf.T
        if dosages:
            out[out < 0] = np.nan  # -9 marks a missing dosage
        return out

    # A file that cannot hold dosages is read as int8 hard calls: pgenlib then skips the dosage
    # decoding, and the rows are a quarter of the float32 ones.
    hard_only = _pgen_hardcalls_only(files["pgen"])

    def read_rows(idx: np.ndarray, count_a2: np.ndarray | None = None) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.intp)
        a2 = np.zeros(idx.size, bool) if count_a2 is None else np.asarray(count_a2, dtype=bool)
        allele = np.where(a2, 0, allele_of[idx])
        # float32 holds hard calls and plink2's 1/16384 dosage steps exactly, at half the memory traffic
        dtype = np.int8 if hard_only else np.float32
        out = np.empty((idx.size, n), dtype=dtype)
        for k in np.unique(allele):
            rows_k = np.flatnonzero(allele == k)
            buf = out if rows_k.size == idx.size else np.empty((rows_k.size, n), dtype=dtype)
            with lock:
                if hard_only:
                    r.read_list(site_of[idx[rows_k]].astype(np.uint32), buf, allele_idx=int(k))
                else:
                    r.read_dosages_list(site_of[idx[rows_k]].astype(np.uint32), buf, allele_idx=int(k))
            if buf is not out:
                out[rows_k] = buf
        return out  # -9 marks a missing call or dosage

    founders = np.ones(n, dtype=bool)
    if "PAT" in psam.columns and "MAT" in psam.columns:
        founders = ((psam["PAT"] == "0") & (psam["MAT"] == "0")).to_numpy()
    id_cols = {"IID": psam["IID"].to_numpy()}
    if "FID" in psam.columns:
        id_cols["FID"] = psam["FID"].to_numpy()
    return Genotypes(samples=pd.DataFrame(id_cols), variants=variants, read=read, founders=founders, kind="pgen",
                     read_rows=read_rows if dosages else None,
                     build=_given_or_header_build(build, _header_build(hdr), f"the header of '{files['pvar']}'"),
                     source=str(prefix))


def bgen_genotypes(path: str | Path, *, sample: str | Path | None = None, build: str | None = None) -> Genotypes:
    """A BGEN 1.2 file (layout 2, zlib or uncompressed; UK Biobank's imputed format) with its
    ``.sample`` file: expected counts (dosages) of each variant's second allele.

    For a biallelic variant with alleles (A, B) and probabilities P(AA), P(AB), P(BB), the
    dosage of B is P(AB) + 2 P(BB); ``a1`` is B and ``a2`` A (plink2 ``--bgen ... ref-first``).
    Variants with more than two alleles or non-diploid samples are refused.

    Parameters
    ----------
    sample : path, optional
        The ``.sample`` file (default: the ``.bgen`` path with ``.sample``); optional when
        the ``.bgen`` stores sample identifiers.
    """
    from rlsepi import _bgen

    p = Path(path)
    if p.suffix.lower() != ".bgen" and Path(f"{p}.bgen").exists():
        p = Path(f"{p}.bgen")
    if not p.exists():
        raise DataValidationError(f"BGEN file '{p}' does not exist")
    if sample is not None and not Path(sample).is_file():
        raise DataValidationError(f"sample file '{sample}' does not exist" if not Path(sample).exists()
                                  else f"sample file '{sample}' is a folder; give the .sample file")
    sample_path = Path(sample) if sample is not None else p.with_suffix(".sample")
    index = _bgen.read_index(p)
    ids = index.sample_ids
    if sample_path.exists():
        ids = _bgen.read_sample_file(sample_path)
        if len(ids) != index.n_samples:
            raise DataValidationError(
                f"'{sample_path}' lists {len(ids):,} samples but '{p}' holds {index.n_samples:,}; they do not belong together"
            )
    elif ids is None:
        raise DataValidationError(f"'{p}' stores no sample IDs and '{sample_path}' does not exist; give its .sample file")
    _check_samples(ids, f"'{sample_path if sample_path.exists() else p}'")
    variants = pd.DataFrame({
        "id": [r if r not in ("", ".") else v for r, v in zip(index.rsids, index.varids)],
        "chrom": [_norm_chr(c) for c in index.chroms], "pos": index.positions,
        "a1": [a[1] if len(a) == 2 else "" for a in index.alleles],
        "a2": [a[0] if len(a) == 2 else "" for a in index.alleles],
        "multiallelic": np.array([len(a) > 2 for a in index.alleles]),
    })
    n = index.n_samples

    def read(idx: np.ndarray, count_a2: np.ndarray | None = None) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.intp)
        return _bgen.read_dosages(index, idx, count_a2).T

    def read_rows(idx: np.ndarray, count_a2: np.ndarray | None = None) -> np.ndarray:
        return _bgen.read_dosages(index, np.asarray(idx, dtype=np.intp), count_a2)

    return Genotypes(samples=pd.DataFrame({"IID": list(ids)}), variants=variants, read=read,
                     founders=np.ones(n, dtype=bool), kind="bgen", build=_build_name(build), source=str(p),
                     read_rows=read_rows)


_CONVERT = ("convert it with plink2, e.g. 'plink2 --vcf FILE --make-pgen --out PREFIX' (or --bcf, --bgen FILE "
            "ref-first --sample FILE.sample, --bfile, --23file) and give PREFIX")


def read_genotypes(path: str | Path, *, build: str | None = None,
                   vcf_field: Literal["auto", "GT", "DS"] = "auto", sample: str | Path | None = None) -> Genotypes:
    """Open genotypes by file type.

    ``path`` is a cohort table (``.parquet``/``.csv``/``.tsv``), a VCF/BCF, a ``.bgen``, any
    file of a PLINK 1 (``.bed/.bim/.fam``) or PLINK 2 (``.pgen/.pvar/.psam``) fileset, or a
    prefix naming one of them (``--bfile``/``--pfile``/``--bgen``-like). ``sample`` is a BGEN
    file's Oxford ``.sample`` file when it does not sit beside the ``.bgen`` (refused for other
    formats, whose sample IDs are in their own files).
    """
    p = Path(path)
    name = p.name.lower()
    if sample is not None:
        is_bgen = name.endswith(".bgen") or (not p.exists() and Path(f"{p}.bgen").exists()
                                             and not Path(f"{p}.pgen").exists() and not Path(f"{p}.bed").exists())
        if not is_bgen:
            raise DataValidationError(
                f"a sample file (--sample '{sample}') is only read with BGEN genotypes; '{p}' is not a .bgen file "
                "(its sample IDs are in its own files): drop --sample"
            )
        return bgen_genotypes(p, sample=sample, build=build)
    if name.endswith((".vcf", ".vcf.gz", ".vcf.bgz", ".bcf")):
        return vcf_genotypes(p, field_=vcf_field, build=build)
    if name.endswith((".pgen", ".pvar", ".psam")):
        return pgen_genotypes(p, build=build)
    if name.endswith((".bed", ".bim", ".fam")):
        return plink_genotypes(p, build=build)
    if name.endswith(".bgen"):
        return bgen_genotypes(p, build=build)
    if name.endswith((".parquet", ".pq", ".csv", ".tsv", ".csv.gz", ".tsv.gz", ".txt")):
        from rlsepi.io import read_cohort

        return cohort_genotypes(read_cohort(p))
    if not p.exists():
        kinds = [(ext, fn) for ext, fn in ((".pgen", pgen_genotypes), (".bed", plink_genotypes),
                                          (".bgen", bgen_genotypes)) if Path(f"{p}{ext}").exists()]
        if len(kinds) > 1:
            raise DataValidationError(
                f"'{p}' names several filesets ({', '.join(p.name + e for e, _ in kinds)}); give the file itself"
            )
        if kinds:
            return kinds[0][1](p, build=build)
        raise DataValidationError(f"genotype file '{p}' does not exist (nor '{p}.pgen', '{p}.bed' or '{p}.bgen')")
    raise DataValidationError(
        f"cannot tell the format of '{p}'; rlsepi reads cohorts (.parquet/.csv), PLINK 1 (.bed), PLINK 2 (.pgen), "
        f"BGEN 1.2 (.bgen) and VCF/BCF; {_CONVERT}"
    )


# --- PLINK writer ---------------------------------------------------------------------

_BED_CODE = np.array([3, 2, 0, 1], dtype=np.uint8)  # A1 count 0,1,2 -> 11,10,00; missing (index 3) -> 01


def write_bed(prefix: str | Path, dosages: np.ndarray | Iterator[np.ndarray], variants: pd.DataFrame,
              samples: pd.DataFrame, *, force: bool = False) -> Path:
    """Write a PLINK 1 binary fileset atomically from counts of each variant's ``a1``.

    Parameters
    ----------
    prefix : path
        Writes ``prefix.bed``, ``prefix.bim``, ``prefix.fam``.
    dosages : ndarray (n_samples, n_variants) or iterator of such blocks of variants
        Counts 0, 1, 2 of ``a1``; negative or NaN is missing (integer blocks avoid a
        conversion to float).
    variants : DataFrame
        ``chrom``, ``id``, ``pos``, ``a1``, ``a2`` (optional ``cm``).
    samples : DataFrame
        ``IID`` (optional ``FID``, ``PAT``, ``MAT``, ``SEX`` 1/2/0, ``PHENO``).
    """
    prefix = Path(prefix)
    paths = {ext: Path(f"{prefix}.{ext}") for ext in ("bed", "bim", "fam")}
    for pth in paths.values():
        check_output_path(pth, force=force)
    n = len(samples)
    fam = pd.DataFrame({
        "FID": samples["FID"] if "FID" in samples else samples["IID"], "IID": samples["IID"],
        "PAT": samples.get("PAT", 0), "MAT": samples.get("MAT", 0), "SEX": samples.get("SEX", 0),
        "PHENO": samples.get("PHENO", -9),
    })
    bim = pd.DataFrame({
        "chrom": variants["chrom"].astype(str), "id": variants["id"].astype(str),
        "cm": variants["cm"] if "cm" in variants else 0, "pos": variants["pos"].astype(np.int64),
        "a1": variants["a1"].replace({"": "0"}).fillna("0"), "a2": variants["a2"].replace({"": "0"}).fillna("0"),
    })
    blocks = [dosages] if isinstance(dosages, np.ndarray) else dosages
    written = 0
    with atomic_output(paths["bed"], force=force) as fh:
        fh.write(b"\x6c\x1b\x01")
        for blk in blocks:
            blk = np.asarray(blk)
            if blk.ndim != 2 or blk.shape[0] != n:
                raise RLSEpiError(f"genotype block has shape {blk.shape}; expected ({n}, variants)")
            if np.issubdtype(blk.dtype, np.integer):
                idx = np.where((blk >= 0) & (blk <= 2), blk, 3).astype(np.uint8)
            else:
                g = np.asarray(blk, dtype=float)
                idx = np.where(np.isfinite(g) & (g >= 0), np.rint(np.nan_to_num(g, nan=-1)), 3)
                idx = np.clip(idx, 0, 3).astype(np.uint8)
            codes = _BED_CODE[idx.T]  # (m, n)
            pad = (-n) % 4
            if pad:
                codes = np.concatenate([codes, np.zeros((codes.shape[0], pad), np.uint8)], axis=1)
            c = codes.reshape(codes.shape[0], -1, 4)
            packed = (c[..., 0] | (c[..., 1] << 2) | (c[..., 2] << 4) | (c[..., 3] << 6)).astype(np.uint8)
            fh.write(packed.tobytes())
            written += blk.shape[1]
        if written != len(bim):
            raise RLSEpiError(f"wrote {written} variants to the .bed but the .bim lists {len(bim)}")
    with atomic_output(paths["bim"], force=force, mode="w") as fh:
        bim.to_csv(fh, sep="\t", header=False, index=False, lineterminator="\n")
    with atomic_output(paths["fam"], force=force, mode="w") as fh:
        fam.to_csv(fh, sep=" ", header=False, index=False, lineterminator="\n")
    return paths["bed"]


def write_plink(df: pd.DataFrame, prefix: str | Path, loci: Sequence[Locus] = DEFAULT_LOCI, *,
                force: bool = False) -> Path:
    """Write a cohort's genotypes as a PLINK 1 binary fileset with real allele letters.

    Each locus becomes a ``.bim`` row (GRCh37 position, A1 = effect allele, A2 = other
    allele, ``0`` when unknown); ``.fam`` has FID = IID = ``person_id``, sex 2 for
    female and 1 for male, and phenotype 2 for ``rls`` cases, 1 for controls (-9 if absent).
    """
    present = [locus for locus in loci if locus.rsid in df.columns]
    if not present:
        raise DataValidationError(f"the cohort has none of the genotype columns {', '.join(l.rsid for l in loci)}")
    ids = df["person_id"].astype(str) if "person_id" in df.columns else pd.Series(df.index.astype(str))
    sex = (df["sex"].astype(str).map({"female": 2, "male": 1}).fillna(0).astype(int)
           if "sex" in df.columns else 0)
    pheno = (df["rls"].astype(bool).map({True: 2, False: 1}) if "rls" in df.columns else -9)
    samples = pd.DataFrame({"IID": ids.to_numpy(), "SEX": np.asarray(sex), "PHENO": np.asarray(pheno)})
    variants = pd.DataFrame({
        "chrom": [l.chrom for l in present], "id": [l.rsid for l in present],
        "pos": [l.pos_grch37 for l in present], "a1": [l.effect_allele for l in present],
        "a2": [l.other_allele or "0" for l in present],
    })
    g = np.column_stack([pd.to_numeric(df[l.rsid], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
                         for l in present])
    return write_bed(prefix, g, variants, samples, force=force)
