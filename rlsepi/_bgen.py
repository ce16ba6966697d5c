"""BGEN 1.2 (layout 2) parsing for :func:`rlsepi.genotypes.bgen_genotypes`.

The layout follows the BGEN specification (Band & Marchini, https://www.well.ox.ac.uk/~gav/bgen_format/):
a 4-byte offset, a header block (``L_H``, ``M``, ``N``, magic, free data, flags), an
optional sample-identifier block, then per variant its identifying data and a genotype
block (zlib-compressed, or stored) holding ploidy/missingness bytes and ``B``-bit
probabilities. zstd compression (flag 2) and layout 1 are refused with a conversion hint.

Reading: the index is one pass over the identifying data through a window of the file; blocks
are read in runs, inflated by ISA-L (``isal``, zlib's format, faster, releasing the GIL) in two
threads straight into one buffer, and decoded by :func:`rlsepi._kernels.bgen_decode`. The
per-variant numpy :func:`_decode` is the path without numba (and the tests' second opinion).
"""

from __future__ import annotations

import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rlsepi.errors import DataValidationError

_HINT = "convert it with 'plink2 --bgen FILE ref-first --sample FILE.sample --export bgen-1.2 bits=8 --out NEW'"


@dataclass(frozen=True)
class BgenIndex:
    path: Path
    n_samples: int
    compression: int
    sample_ids: list[str] | None
    offsets: np.ndarray  # file offset of each variant's genotype block (at its C field)
    varids: list[str]
    rsids: list[str]
    chroms: list[str]
    positions: np.ndarray
    alleles: list[list[str]]
    lengths: np.ndarray  # bytes of each genotype block after its offset (the C field and C bytes)


def _bad(p: Path, what: str) -> DataValidationError:
    return DataValidationError(f"'{p}' is not a readable BGEN 1.2 file: {what}; {_HINT}")


def read_index(p: Path) -> BgenIndex:
    """One pass over the variants' identifying data (the genotype blocks are skipped)."""
    size = p.stat().st_size
    with open(p, "rb") as fh:
        def rd(k: int) -> bytes:
            b = fh.read(k)
            if len(b) != k:
                raise _bad(p, "truncated")
            return b

        offset, = struct.unpack("<I", rd(4))
        l_h, m, n = struct.unpack("<III", rd(12))
        magic = rd(4)
        if magic not in (b"bgen", b"\x00\x00\x00\x00") or l_h < 20:
            raise _bad(p, f"magic {magic!r}")
        rd(l_h - 20)
        flags, = struct.unpack("<I", rd(4))
        compression, layout = flags & 3, (flags >> 2) & 15
        if layout != 2:
            raise _bad(p, f"layout {layout} (only layout 2, BGEN 1.2/1.3, is read)")
        if compression not in (0, 1):
            raise _bad(p, "zstd compression (only zlib or none is read)")
        sample_ids = None
        if flags >> 31:
            l_si, n2 = struct.unpack("<II", rd(8))
            if n2 != n:
                raise _bad(p, f"its sample block lists {n2} samples but the header {n}")
            sample_ids = []
            for _ in range(n):
                k, = struct.unpack("<H", rd(2))
                sample_ids.append(rd(k).decode("utf-8", "replace"))
        pos_ = offset + 4
        offsets = np.empty(m, dtype=np.int64)
        lengths = np.empty(m, dtype=np.int64)
        positions = np.empty(m, dtype=np.int64)
        varids, rsids, chroms, alleles = [], [], [], []
        # the identifying data sit between the genotype blocks: read through a window of the file
        # (pread), never the whole file (a UK Biobank chromosome is tens of GB)
        fd = fh.fileno()
        win, w0 = b"", 0

        def refill(q: int, k: int) -> int:
            """Move the window to file offset w0 + q, holding at least k bytes; the new q (0)."""
            nonlocal win, w0
            w0 += q
            win = os.pread(fd, max(1 << 16, k), w0)
            if len(win) < k:
                raise struct.error("past the end")
            return 0

        j = 0
        try:
            for j in range(m):
                q = pos_ - w0
                if q + 4096 > len(win):
                    q = refill(q, 0)
                fields = []
                for _ in range(3):  # variant ID, rsID, chromosome
                    k, = struct.unpack_from("<H", win, q)
                    if q + 2 + k + 16 > len(win):
                        q = refill(q, 2 + k + 16)
                    fields.append(win[q + 2:q + 2 + k].decode())
                    q += 2 + k
                varids.append(fields[0])
                rsids.append(fields[1])
                chroms.append(fields[2])
                bp, n_al = struct.unpack_from("<IH", win, q); q += 6
                al = []
                for _ in range(n_al):
                    if q + 4 > len(win):
                        q = refill(q, 4)
                    k, = struct.unpack_from("<I", win, q)
                    if q + 4 + k + 4 > len(win):
                        q = refill(q, 4 + k + 4)
                    al.append(win[q + 4:q + 4 + k].decode().upper())
                    q += 4 + k
                alleles.append(al)
                positions[j] = bp
                if q + 4 > len(win):
                    q = refill(q, 4)
                c, = struct.unpack_from("<I", win, q)
                offsets[j] = w0 + q
                lengths[j] = 4 + c
                pos_ = w0 + q + 4 + c
                if pos_ > size:
                    raise struct.error("past the end")
        except (struct.error, UnicodeDecodeError):
            raise _bad(p, f"truncated or corrupt at variant {j + 1} of {m}") from None
    return BgenIndex(p, n, compression, sample_ids, offsets, varids, rsids, chroms, positions, alleles, lengths)


def read_sample_file(p: Path) -> list[str]:
    """Sample IDs (``ID_2``, else ``ID_1``) of an Oxford ``.sample`` file."""
    try:
        lines = [x.split() for x in p.read_text().splitlines() if x.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataValidationError(f"cannot read sample file '{p}': {exc}") from None
    if len(lines) < 2 or lines[0][:1] not in (["ID_1"], ["ID"]) or lines[1][:1] != ["0"]:
        raise DataValidationError(f"'{p}' is not an Oxford .sample file (its first two lines must be 'ID_1 ID_2 ...' and '0 0 ...')")
    col = 1 if len(lines[0]) > 1 and lines[0][1] == "ID_2" else 0
    return [row[col] for row in lines[2:]]


def _decode(idx_: BgenIndex, raw: bytes, j: int, want_a2: bool) -> np.ndarray:
    n = idx_.n_samples
    buf = memoryview(raw)
    if idx_.compression == 1:
        c, d = struct.unpack_from("<II", buf, 0)
        body = zlib.decompress(buf[8:4 + c], bufsize=d)
    else:
        c, = struct.unpack_from("<I", buf, 0)
        body = bytes(buf[4:4 + c])
    n2, k, pmin, pmax = struct.unpack_from("<IHBB", body, 0)
    if n2 != n or k != 2 or pmin != 2 or pmax != 2:
        raise DataValidationError(
            f"'{idx_.path}' variant {j + 1} ({idx_.varids[j]}) has {k} alleles and ploidy {pmin}-{pmax}; "
            f"rlsepi reads biallelic diploid BGEN variants; {_HINT}"
        )
    ploidy = np.frombuffer(body, dtype=np.uint8, count=n, offset=8)
    phased, bits = body[8 + n], body[9 + n]
    start = 10 + n
    nvals = 2 * n
    if bits == 8:
        v = np.frombuffer(body, dtype=np.uint8, count=nvals, offset=start).astype(np.float64)
    elif bits == 16:
        v = np.frombuffer(body, dtype="<u2", count=nvals, offset=start).astype(np.float64)
    else:
        nbytes = (nvals * bits + 7) // 8
        allbits = np.unpackbits(np.frombuffer(body, dtype=np.uint8, count=nbytes, offset=start), bitorder="little")
        v = allbits[: nvals * bits].reshape(nvals, bits).astype(np.float64) @ (2.0 ** np.arange(bits))
    v = v.reshape(n, 2) / float((1 << bits) - 1)
    if phased:  # P(haplotype carries the first allele), for each of two haplotypes
        dose_b = 2.0 - v[:, 0] - v[:, 1]
    else:  # P(AA), P(AB): dosage of B = P(AB) + 2 P(BB)
        dose_b = 2.0 - 2.0 * v[:, 0] - v[:, 1]
    out = 2.0 - dose_b if want_a2 else dose_b
    out[ploidy >= 128] = np.nan
    return out


def _refuse(idx_: BgenIndex, j: int, body: bytes | memoryview) -> DataValidationError:
    """The error for variant j whose block is not biallelic diploid (or is too short)."""
    if len(body) >= 8:
        n2, k, pmin, pmax = struct.unpack_from("<IHBB", body, 0)
        if n2 != idx_.n_samples or k != 2 or pmin != 2 or pmax != 2:
            return DataValidationError(
                f"'{idx_.path}' variant {j + 1} ({idx_.varids[j]}) has {k} alleles and ploidy {pmin}-{pmax}; "
                f"rlsepi reads biallelic diploid BGEN variants; {_HINT}"
            )
    return _bad(idx_.path, f"the genotype block of variant {j + 1} ({idx_.varids[j]}) is truncated or corrupt")


def _read_blocks(idx_: BgenIndex, variants: np.ndarray) -> tuple[bytes, np.ndarray]:
    """The raw genotype blocks of ``variants`` (in the given order) and where each starts in the
    returned bytes; runs of nearby variants are read with one ``pread`` each."""
    import os

    offs = idx_.offsets[variants]
    lens = idx_.lengths[variants]
    order = np.argsort(offs, kind="stable")
    so, se = offs[order], offs[order] + lens[order]
    # a new read where the gap to the next wanted block exceeds 1 MiB
    cuts = np.flatnonzero(so[1:] - se[:-1] > (1 << 20)) + 1
    parts: list[bytes] = []
    starts = np.empty(variants.size, dtype=np.int64)
    base = 0
    fd = os.open(idx_.path, os.O_RDONLY)
    try:
        for run in np.split(np.arange(variants.size), cuts):
            lo, hi = int(so[run[0]]), int(se[run].max())
            data = os.pread(fd, hi - lo, lo)
            if len(data) != hi - lo:
                raise _bad(idx_.path, "truncated")
            parts.append(data)
            starts[order[run]] = base + (so[run] - lo)
            base += hi - lo
    finally:
        os.close(fd)
    return (parts[0] if len(parts) == 1 else b"".join(parts)), starts


@dataclass(frozen=True)
class DecodedBlocks:
    """Decompressed genotype blocks of some variants: ``data[starts[j]:ends[j]]`` is variant j's,
    ``want_a2[j]`` whether its first allele is counted (see :mod:`rlsepi._kernels`)."""

    index: BgenIndex
    variants: np.ndarray
    data: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    want_a2: np.ndarray

    def check(self, status: np.ndarray) -> None:
        """Raise for the first variant a kernel could not decode (status 1: not biallelic diploid; 2: short)."""
        bad = np.flatnonzero(status)
        if bad.size:
            col = int(bad[0])
            raise _refuse(self.index, int(self.variants[col]),
                          self.data[self.starts[col]:self.ends[col]].tobytes())


def inflate(idx_: BgenIndex, variants: np.ndarray, count_a2: np.ndarray | None, *, threads: int = 2) -> DecodedBlocks:
    """The blocks of (at least one of) ``variants`` read in runs and decompressed in ``threads`` threads (ISA-L's
    inflate, or zlib's: both release the GIL, so both cores work)."""
    a2 = np.zeros(variants.size, bool) if count_a2 is None else np.ascontiguousarray(count_a2, dtype=bool)
    raw, starts = _read_blocks(idx_, variants)
    lens = idx_.lengths[variants]
    if idx_.compression != 1:
        return DecodedBlocks(idx_, variants, np.frombuffer(raw, dtype=np.uint8), starts + 4, starts + lens, a2)
    try:  # ISA-L's inflate: the same bytes as zlib's, faster, and it releases the GIL
        from isal.isal_zlib import decompress as _inflate, error as _inflate_error
    except ImportError:  # pragma: no cover - isal is a dependency
        _inflate, _inflate_error = zlib.decompress, zlib.error
    view = memoryview(raw)
    # each block's decompressed size (its D field) places it in one output buffer, so the blocks are
    # copied there as they are inflated and never held twice
    sizes = np.fromiter((struct.unpack_from("<I", view, int(o) + 4)[0] for o in starts), dtype=np.int64,
                        count=variants.size)
    bstart = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    data = np.empty(int(sizes.sum()), dtype=np.uint8)

    def work(cols: range) -> None:
        for col in cols:
            s = int(starts[col])
            c, d = struct.unpack_from("<II", view, s)
            try:
                body = _inflate(view[s + 8:s + 4 + c], bufsize=max(d, 1))
            except (zlib.error, _inflate_error):
                body = b""
            if len(body) != d:
                raise _bad(idx_.path, f"variant {int(variants[col]) + 1} ({idx_.varids[int(variants[col])]}) does "
                           "not decompress to its stated size")
            data[bstart[col]:bstart[col] + d] = np.frombuffer(body, dtype=np.uint8)

    step = max(1, (variants.size + threads - 1) // threads)
    chunks = [range(lo, min(lo + step, variants.size)) for lo in range(0, variants.size, step)]
    if len(chunks) == 1 or threads <= 1:
        for ch in chunks:
            work(ch)
    else:
        with ThreadPoolExecutor(threads) as ex:
            list(ex.map(work, chunks))
    return DecodedBlocks(idx_, variants, data, bstart, bstart + sizes, a2)


def read_dosages(idx_: BgenIndex, variants: np.ndarray, count_a2: np.ndarray | None, *, threads: int = 2) -> np.ndarray:
    """Dosages of the second allele (or the first where ``count_a2``), variant-major: (len(variants), n_samples).

    The blocks are decompressed by :func:`inflate` and decoded by a compiled kernel
    (:func:`rlsepi._kernels.bgen_decode`), in parallel over variants; without numba, by
    :func:`_decode` per variant.
    """
    n = idx_.n_samples
    out = np.empty((variants.size, n), dtype=np.float64)
    if variants.size == 0:
        return out
    try:
        from rlsepi._kernels import bgen_decode
    except ImportError:  # pragma: no cover - numba is a dependency; the slow path gives the same numbers
        a2 = np.zeros(variants.size, bool) if count_a2 is None else np.asarray(count_a2, dtype=bool)
        raw, starts = _read_blocks(idx_, variants)
        lens = idx_.lengths[variants]
        for col in range(variants.size):
            s = int(starts[col])
            out[col] = _decode(idx_, raw[s:s + int(lens[col])], int(variants[col]), bool(a2[col]))
        return out
    blocks = inflate(idx_, variants, count_a2, threads=threads)
    blocks.check(bgen_decode(blocks.data, blocks.starts, blocks.ends, n, blocks.want_a2, out))
    return out
