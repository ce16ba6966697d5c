"""Consumer genetic tests' raw-data files: the genotypes of a few variants, read in memory.

The raw-data text files that consumer genetic tests give people list one variant per line:

==============  ===========================================================  =============
layout          columns                                                      genotype
==============  ===========================================================  =============
23andMe         ``rsid  chromosome  position  genotype`` (tab-separated)     ``AG``, ``--``
AncestryDNA     ``rsid  chromosome  position  allele1  allele2`` (tabs)      ``A G``, ``0 0``
==============  ===========================================================  =============

after comment lines starting with ``#`` (AncestryDNA also has a header line). Alleles are on
the forward strand of the reference genome; :func:`rlsepi.risk.parse_genotype` also accepts
the other strand where that is unambiguous. A no-call (``--``, ``0``) is reported as such and
the variant counts as unknown.

The file is never written anywhere: it is parsed from bytes already in memory and only the
requested variants are kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from rlsepi.errors import DataValidationError

__all__ = ["ConsumerGenotypes", "read_consumer_genotypes", "MAX_BYTES"]

MAX_BYTES = 64 * 1024 * 1024
"""Largest file read (a consumer raw-data file is about 15-25 MB)."""

_NO_CALL = {"--", "00", "0", "-", "", "NN", "NC"}
_RSID = re.compile(r"^(rs|i)\d+$", re.IGNORECASE)


@dataclass(frozen=True)
class ConsumerGenotypes:
    """The requested variants found in a consumer raw-data file.

    Attributes
    ----------
    layout : str
        ``"23andMe"`` or ``"AncestryDNA"``.
    genotypes : dict
        rsID to the two alleles as written in the file (``"AG"``), for the variants called.
    no_call : tuple of str
        Requested variants present in the file but not called.
    missing : tuple of str
        Requested variants absent from the file.
    variants : int
        Number of variant lines in the file.
    """

    layout: str
    genotypes: dict[str, str]
    no_call: tuple[str, ...]
    missing: tuple[str, ...]
    variants: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"layout": self.layout, "genotypes": dict(self.genotypes), "no_call": list(self.no_call),
                "missing": list(self.missing), "variants": self.variants}

    def to_frame(self) -> pd.DataFrame:
        """One row per requested variant: ``rsid``, ``status`` (found, no call, missing), ``genotype``."""
        rows = [{"rsid": r, "status": "found", "genotype": g} for r, g in self.genotypes.items()]
        rows += [{"rsid": r, "status": "no call", "genotype": None} for r in self.no_call]
        rows += [{"rsid": r, "status": "missing", "genotype": None} for r in self.missing]
        return pd.DataFrame(rows, columns=["rsid", "status", "genotype"])

    def summary(self) -> str:
        """One line per requested variant."""
        lines = [f"{self.layout} raw-data file, {self.variants:,} variants"]
        lines += [f"  {r}: {g}" for r, g in self.genotypes.items()]
        lines += [f"  {r}: not called in the file" for r in self.no_call]
        lines += [f"  {r}: not in the file" for r in self.missing]
        return "\n".join(lines)


def _decode(data: bytes) -> str:
    if data[:2] == b"\x1f\x8b" or data[:4] == b"PK\x03\x04":
        raise DataValidationError("the genotype file is compressed (zip or gzip); unzip it and give the .txt inside")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    if b"\x00" in data[:4096]:
        raise DataValidationError("the genotype file is not a text file; give the raw-data .txt file of the test")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataValidationError(
            f"the genotype file is not UTF-8 text (byte {exc.start}); give the raw-data .txt file of the test"
        ) from None


def read_consumer_genotypes(source: bytes | str | Path, *, rsids: Iterable[str],
                            max_bytes: int = MAX_BYTES) -> ConsumerGenotypes:
    """Read the genotypes of ``rsids`` from a 23andMe or AncestryDNA raw-data file.

    Parameters
    ----------
    source : bytes or path
        The file's content (already in memory) or its path.
    rsids : iterable of str
        The variants wanted (e.g. the score's).
    max_bytes : int
        Larger files are refused.

    Returns
    -------
    ConsumerGenotypes

    Raises
    ------
    DataValidationError
        Too large, compressed, not text, not one of the two layouts, a malformed line, or a
        requested variant given twice with different genotypes.

    Examples
    --------
    >>> text = b"# rsid\\tchromosome\\tposition\\tgenotype\\nrs2300478\\t2\\t66554321\\tGT\\n"
    >>> read_consumer_genotypes(text, rsids=["rs2300478", "rs9357271"]).genotypes
    {'rs2300478': 'GT'}
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            size = path.stat().st_size
            if size > max_bytes:
                raise DataValidationError(
                    f"the genotype file has {size:,} bytes, more than the limit of {max_bytes:,}")
            data = path.read_bytes()
        except OSError as exc:
            raise DataValidationError(f"cannot read genotype file '{source}': {exc.strerror or exc}") from None
    else:
        data = bytes(source)
    if len(data) > max_bytes:
        raise DataValidationError(f"the genotype file has {len(data):,} bytes, more than the limit of {max_bytes:,}")
    if not data.strip():
        raise DataValidationError("the genotype file is empty")
    text = _decode(data)

    wanted = {r.lower(): r for r in rsids}
    found: dict[str, str] = {}
    no_call: set[str] = set()
    layout: str | None = None
    fields = 0
    variants = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.rstrip("\r").split("\t")
        if layout is None:
            head = [p.strip().lower() for p in parts]
            if head[:5] == ["rsid", "chromosome", "position", "allele1", "allele2"]:
                layout, fields = "AncestryDNA", 5
                continue
            if head[:4] == ["rsid", "chromosome", "position", "genotype"]:
                layout, fields = "23andMe", 4
                continue
            if len(parts) in (4, 5) and _RSID.match(parts[0].strip()):
                layout, fields = ("23andMe", 4) if len(parts) == 4 else ("AncestryDNA", 5)
            else:
                raise DataValidationError(
                    f"line {number} of the genotype file is not a variant line; expected the 23andMe or "
                    "AncestryDNA raw-data layout (tab-separated rsid, chromosome, position, genotype)"
                )
        if len(parts) != fields:
            raise DataValidationError(
                f"line {number} of the genotype file has {len(parts)} tab-separated fields, expected {fields} "
                f"({layout} layout)"
            )
        variants += 1
        rsid = wanted.get(parts[0].strip().lower())
        if rsid is None:
            continue
        call = (parts[3] + parts[4] if fields == 5 else parts[3]).strip().upper()
        if call in _NO_CALL or set(call) <= {"-", "0", "N"}:
            if rsid not in found:
                no_call.add(rsid)
            continue
        if len(call) != 2 or set(call) - set("ACGT"):
            raise DataValidationError(
                f"line {number} of the genotype file gives {rsid} as '{call}', not two alleles A, C, G or T"
            )
        if rsid in found and found[rsid] != call:
            raise DataValidationError(
                f"the genotype file gives {rsid} twice with different genotypes ({found[rsid]}, {call})"
            )
        found[rsid] = call
        no_call.discard(rsid)
    if layout is None:
        raise DataValidationError("the genotype file has no variant lines")
    requested = list(wanted.values())
    return ConsumerGenotypes(
        layout=layout,
        genotypes={r: found[r] for r in requested if r in found},
        no_call=tuple(r for r in requested if r in no_call),
        missing=tuple(r for r in requested if r not in found and r not in no_call),
        variants=variants,
    )
