"""Genotype readers: one reader per format behind one small interface.

A :class:`Genotypes` says who (``samples``), which variants (``variants``: ``id``, ``chrom``,
``pos``, ``a1``, ``a2``) and reads blocks of counts of each variant's ``a1`` allele
(``read(indices)``). Adding a format means adding a reader here and a branch in
:func:`read_genotypes`; matching and scoring (:mod:`rlsepi.polygenic`) do not change.

Formats: a cohort table (one int8 column per rsID), PLINK 1 ``.bed/.bim/.fam``, and VCF.
"""

from __future__ import annotations

import gzip
import io
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from rlsepi.errors import DataValidationError, RLSEpiError
from rlsepi.io import atomic_output, check_output_path
from rlsepi.parameters import DEFAULT_LOCI, EXTENDED_LOCI, Locus

__all__ = ["Genotypes", "read_genotypes", "cohort_genotypes", "plink_genotypes", "vcf_genotypes",
           "write_bed", "write_plink"]


def _open_text(path: Path) -> io.TextIOBase:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


def _norm_chr(x: Any) -> str:
    s = str(x).strip()
    if s.lower().startswith("chr"):
        s = s[3:]
    s = s.upper()
    return {"23": "X", "24": "Y", "25": "XY", "26": "MT", "M": "MT"}.get(s, s)


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


@dataclass(frozen=True)
class Genotypes:
    """A genotype source: who, which variants, and a block reader of allele counts.

    Attributes
    ----------
    samples : DataFrame
        One row per person; the first column is the output ID (``IID`` or ``person_id``).
    variants : DataFrame
        ``id``, ``chrom``, ``pos``, ``a1``, ``a2`` (``a2`` empty when unknown). Dosages count ``a1``.
    read : callable
        ``read(indices) -> ndarray`` of shape (n_samples, len(indices)): counts of ``a1`` in
        [0, 2], as floats with NaN for missing calls or as integers with negative values
        for missing calls (see :func:`_as_float`).
    founders : ndarray of bool
        People used to compute sample allele frequencies (plink2 uses founders).
    kind : str
        ``cohort``, ``plink`` or ``vcf``.
    build : str or None
        Genome build of ``pos`` when known.
    source : str
    """

    samples: pd.DataFrame = field(repr=False)
    variants: pd.DataFrame = field(repr=False)
    read: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    founders: np.ndarray = field(repr=False)
    kind: str = ""
    build: str | None = None
    source: str = ""

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
    return np.asarray(g, dtype=np.float64)


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
    })
    ids = df["person_id"].to_numpy() if "person_id" in df.columns else np.asarray(df.index)
    samples = pd.DataFrame({"person_id": ids})
    return Genotypes(samples=samples, variants=variants, read=lambda idx: matrix[:, np.asarray(idx, dtype=int)],
                     founders=np.ones(len(df), dtype=bool), kind="cohort", build="GRCh37", source="cohort")


def _bed_prefix(path: str | Path) -> Path:
    p = Path(path)
    if p.suffix.lower() in (".bed", ".bim", ".fam"):
        return p.with_suffix("")
    return p


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
    try:
        fam = pd.read_csv(files["fam"], sep=r"\s+", header=None, dtype=str, usecols=range(6),
                          names=["FID", "IID", "PAT", "MAT", "SEX", "PHENO"])
        bim = pd.read_csv(files["bim"], sep=r"\s+", header=None, dtype=str,
                          names=["chrom", "id", "cm", "pos", "a1", "a2"])
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataValidationError(f"cannot read PLINK fileset '{prefix}': {str(exc).splitlines()[0]}") from None
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
        "id": bim["id"].to_numpy(), "chrom": bim["chrom"].map(_norm_chr).to_numpy(),
        "pos": pd.to_numeric(bim["pos"], errors="coerce").fillna(-1).astype(np.int64).to_numpy(),
        "a1": bim["a1"].str.upper().replace({"0": "", ".": ""}).to_numpy(),
        "a2": bim["a2"].str.upper().replace({"0": "", ".": ""}).to_numpy(),
    })
    founders = ((fam["PAT"] == "0") & (fam["MAT"] == "0")).to_numpy()
    bed_path = str(files["bed"])
    state: dict[str, Any] = {}

    def read(idx: np.ndarray) -> np.ndarray:
        from bed_reader import open_bed

        if "bed" not in state:
            state["bed"] = open_bed(bed_path, iid_count=n, sid_count=m, count_A1=True, skip_format_check=True)
        idx = np.asarray(idx, dtype=np.intp)
        if idx.size == 0:
            return np.zeros((n, 0))
        # int8 (missing = -127) is several times faster to read than float64
        return state["bed"].read(index=np.s_[:, idx], dtype="int8", order="F")

    samples = pd.DataFrame({"IID": fam["IID"].to_numpy(), "FID": fam["FID"].to_numpy()})
    return Genotypes(samples=samples, variants=variants, read=read, founders=founders, kind="plink",
                     build=_build_name(build), source=str(prefix))


def vcf_genotypes(path: str | Path, *, field_: Literal["auto", "GT", "DS"] = "auto",
                  build: str | None = None) -> Genotypes:
    """A VCF (``.vcf`` or ``.vcf.gz``): ``GT`` hard calls or ``DS`` alternate-allele dosages.

    Multi-allelic sites become one variant per alternate allele (counting that allele), so
    a scoring-file row is matched to the alternate allele it names. Haploid calls are
    counted as homozygous. With ``field_="auto"``, ``DS`` is used where the FORMAT has it.

    Raises
    ------
    DataValidationError
        No ``#CHROM`` header, or no ``GT``/``DS`` in the FORMAT of a record.
    """
    p = Path(path)
    if not p.exists():
        raise DataValidationError(f"VCF '{p}' does not exist")
    samples: list[str] = []
    var_rows: list[tuple[str, str, int, str, str, int, int]] = []  # id, chrom, pos, a1 (ALT k), a2 (REF), line, k
    data_line = -1
    with _open_text(p) as fh:
        for line in fh:
            if line.startswith("##"):
                continue
            if line.startswith("#CHROM"):
                samples = line.rstrip("\r\n").split("\t")[9:]
                continue
            if not samples:
                raise DataValidationError(f"VCF '{p}' has no #CHROM header line before its first record")
            data_line += 1
            f = line.split("\t", 9)
            if len(f) < 10:
                continue
            chrom, pos, vid, ref, alt, fmt = f[0], f[1], f[2], f[3].upper(), f[4].upper(), f[8].split(":")
            if "GT" not in fmt and "DS" not in fmt:
                raise DataValidationError(
                    f"VCF '{p}' record {chrom}:{pos} ({vid}) has neither GT nor DS in FORMAT ({f[8]}); "
                    "rlsepi scores hard calls (GT) or dosages (DS)"
                )
            for k, a in enumerate(alt.split(","), start=1):
                var_rows.append((vid if vid != "." else f"{chrom}:{pos}", _norm_chr(chrom), int(pos),
                                 "" if a == "." else a, ref, data_line, k))
    if not samples:
        raise DataValidationError(f"VCF '{p}' has no #CHROM header line")
    variants = pd.DataFrame(var_rows, columns=["id", "chrom", "pos", "a1", "a2", "line", "alt_index"])
    n = len(samples)
    line_of = variants["line"].to_numpy()
    alt_of = variants["alt_index"].to_numpy()

    def parse(f: list[str], k: int) -> np.ndarray:
        fmt = f[8].split(":")
        if (field_ == "GT" and "GT" not in fmt) or (field_ == "DS" and "DS" not in fmt):
            raise DataValidationError(f"VCF '{p}' record {f[0]}:{f[1]} has no {field_} in FORMAT ({f[8]})")
        use_ds = "DS" in fmt and field_ in ("DS", "auto")
        out = np.full(n, np.nan)
        j = fmt.index("DS" if use_ds else "GT")
        for s_, entry in enumerate(f[9:]):
            parts = entry.split(":")
            if j >= len(parts):
                continue
            v = parts[j]
            if use_ds:
                vals = v.split(",")
                if k - 1 < len(vals) and vals[k - 1] not in (".", ""):
                    try:
                        out[s_] = float(vals[k - 1])
                    except ValueError:
                        raise DataValidationError(
                            f"VCF '{p}' record {f[0]}:{f[1]} sample {samples[s_]} has DS {v!r}, not a number"
                        ) from None
            else:
                alleles = re.split(r"[/|]", v)
                if len(alleles) not in (1, 2) or any(a in (".", "") for a in alleles):
                    continue
                out[s_] = sum(1 for a in alleles if a == str(k)) * (2 // len(alleles))
        return out

    def read(idx: np.ndarray) -> np.ndarray:
        """One streaming pass over the file for the requested variants (memory: this block only)."""
        idx = np.asarray(idx, dtype=int)
        out = np.full((n, idx.size), np.nan)
        wanted: dict[int, list[tuple[int, int]]] = {}
        for col, i in enumerate(idx):
            wanted.setdefault(int(line_of[i]), []).append((col, int(alt_of[i])))
        if not wanted:
            return out
        last = max(wanted)
        li = -1
        with _open_text(p) as fh:
            for line in fh:
                if line.startswith("#"):
                    continue
                li += 1
                if li in wanted:
                    f = line.rstrip("\r\n").split("\t")
                    for col, k in wanted[li]:
                        out[:, col] = parse(f, k)
                if li >= last:
                    break
        return out

    return Genotypes(samples=pd.DataFrame({"IID": samples}), variants=variants[["id", "chrom", "pos", "a1", "a2"]],
                     read=read, founders=np.ones(n, dtype=bool), kind="vcf", build=_build_name(build), source=str(p))


def read_genotypes(path: str | Path, *, build: str | None = None,
                   vcf_field: Literal["auto", "GT", "DS"] = "auto") -> Genotypes:
    """Open genotypes by file type: cohort (.parquet/.csv/.tsv), PLINK (.bed or prefix), VCF."""
    p = Path(path)
    name = p.name.lower()
    if name.endswith((".vcf", ".vcf.gz", ".vcf.bgz")):
        return vcf_genotypes(p, field_=vcf_field, build=build)
    if name.endswith((".bed", ".bim", ".fam")) or (not p.exists() and Path(f"{p}.bed").exists()):
        return plink_genotypes(p, build=build)
    if name.endswith((".parquet", ".pq", ".csv", ".tsv", ".csv.gz", ".tsv.gz", ".txt")):
        from rlsepi.io import read_cohort

        df = read_cohort(p)
        g = cohort_genotypes(df)
        return g
    if not p.exists():
        raise DataValidationError(f"genotype file '{p}' does not exist (nor '{p}.bed')")
    raise DataValidationError(
        f"cannot tell the format of '{p}'; give a cohort (.parquet/.csv), a PLINK .bed (or its prefix) or a VCF"
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
