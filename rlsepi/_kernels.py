"""Compiled kernels (numba) that score PLINK 1 packed genotypes without decoding them to floats.

A ``.bed`` byte holds four people's 2-bit codes (low bits first): ``00`` two copies of A1,
``01`` missing, ``10`` one copy, ``11`` none. Each variant's contribution to every output is
a table over the four codes, so a block is scored by one pass over its bytes, in parallel
over people (each thread owns a range of bytes, hence of people: no shared writes).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_CODES = np.arange(256)[:, None] >> (2 * np.arange(4))[None, :] & 3  # (256, 4) codes of each byte
LUT_A1 = np.where(_CODES == 0, 2, np.where(_CODES == 2, 1, 0)).sum(axis=1).astype(np.float64)
"""A1 copies among the four people of a byte (missing counts 0)."""
LUT_MISS = (_CODES == 1).sum(axis=1).astype(np.int64)
"""Missing calls among the four people of a byte."""


@njit(parallel=True, cache=True)
def bed_counts(packed, founder, all_founders, n, lut_a1, lut_miss):  # pragma: no cover - compiled
    """Per variant: A1 copies and called count among founders, and missing count among everyone."""
    b = packed.shape[0]
    full = n // 4
    nb = packed.shape[1]
    a1 = np.zeros(b)
    called_f = np.zeros(b)
    missing = np.zeros(b, dtype=np.int64)
    for j in prange(b):
        c_a1 = 0.0
        c_f = 0.0
        c_m = 0
        if all_founders:
            for q in range(full):
                byte = packed[j, q]
                c_a1 += lut_a1[byte]
                c_m += lut_miss[byte]
            c_f = full * 4.0 - c_m
            q_start = full
        else:
            q_start = 0
        for q in range(q_start, nb):
            byte = packed[j, q]
            for s in range(4):
                i = 4 * q + s
                if i >= n:
                    break
                code = (byte >> (2 * s)) & 3
                if code == 1:
                    c_m += 1
                elif founder[i]:
                    c_f += 1.0
                    c_a1 += 2.0 if code == 0 else (1.0 if code == 2 else 0.0)
        a1[j] = c_a1
        called_f[j] = c_f
        missing[j] = c_m
    return a1, called_f, missing


@njit(parallel=True, cache=True)
def bed_accumulate(packed, table, n, out, n_chunks):  # pragma: no cover - compiled
    """``out[i, k] += table[j, code_ij, k]`` over the variants j of a block.

    ``table`` is (variants, 4, k) float64, ``out`` (n, k) float64 (the weights' sums, then the
    named-allele dosage and the missing count as extra columns).
    """
    b = packed.shape[0]
    nb = packed.shape[1]
    kk = table.shape[2]
    step = (nb + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        q0 = c * step
        q1 = min(nb, q0 + step)
        for j in range(b):
            for q in range(q0, q1):
                byte = packed[j, q]
                base = 4 * q
                if base + 4 <= n:
                    c0 = byte & 3
                    c1 = (byte >> 2) & 3
                    c2 = (byte >> 4) & 3
                    c3 = byte >> 6
                    for k in range(kk):
                        out[base, k] += table[j, c0, k]
                        out[base + 1, k] += table[j, c1, k]
                        out[base + 2, k] += table[j, c2, k]
                        out[base + 3, k] += table[j, c3, k]
                else:
                    for s in range(n - base):
                        code = (byte >> (2 * s)) & 3
                        for k in range(kk):
                            out[base + s, k] += table[j, code, k]


@njit(parallel=True, cache=True)
def dosage_counts(rows, founder):  # pragma: no cover - compiled
    """Per variant of variant-major dosages (negative = missing): founders' dosage sum and called
    count, and everyone's missing count."""
    b = rows.shape[0]
    n = rows.shape[1]
    total = np.zeros(b)
    called_f = np.zeros(b)
    missing = np.zeros(b, dtype=np.int64)
    for j in prange(b):
        t = 0.0
        c = 0.0
        mi = 0
        for i in range(n):
            x = rows[j, i]
            if x < 0.0 or x != x:
                mi += 1
            elif founder[i]:
                t += x
                c += 1.0
        total[j] = t
        called_f[j] = c
        missing[j] = mi
    return total, called_f, missing


@njit(parallel=True, cache=True)
def dosage_accumulate(rows, knots, miss, out, n_chunks):  # pragma: no cover - compiled
    """``out[i, k] += f_jk(x_ij)``, f piecewise linear through ``knots[j, 0..2, k]`` at x = 0, 1, 2;
    a missing x (negative or NaN) adds ``miss[j, k]``."""
    b = rows.shape[0]
    n = rows.shape[1]
    kk = knots.shape[2]
    step = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        i0 = c * step
        i1 = min(n, i0 + step)
        for j in range(b):
            for i in range(i0, i1):
                x = rows[j, i]
                if x < 0.0 or x != x:
                    for k in range(kk):
                        out[i, k] += miss[j, k]
                elif x <= 1.0:
                    for k in range(kk):
                        out[i, k] += knots[j, 0, k] + (knots[j, 1, k] - knots[j, 0, k]) * x
                else:
                    for k in range(kk):
                        out[i, k] += knots[j, 1, k] + (knots[j, 2, k] - knots[j, 1, k]) * (x - 1.0)


@njit(parallel=True, cache=True)
def bed_accumulate3(packed, table, n, out, n_chunks, tile):  # pragma: no cover - compiled
    """:func:`bed_accumulate` for one weight (``table`` (variants, 4, 3)): each thread sums a
    tile of variants for four people in registers and adds them to ``out`` once per tile,
    instead of a load and a store of ``out`` per variant."""
    b = packed.shape[0]
    nb = packed.shape[1]
    step = (nb + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        q0 = c * step
        q1 = min(nb, q0 + step)
        for j0 in range(0, b, tile):
            j1 = min(b, j0 + tile)
            for q in range(q0, q1):
                a0 = 0.0
                a1 = 0.0
                a2 = 0.0
                b0 = 0.0
                b1 = 0.0
                b2 = 0.0
                c0 = 0.0
                c1 = 0.0
                c2 = 0.0
                d0 = 0.0
                d1 = 0.0
                d2 = 0.0
                for j in range(j0, j1):
                    byte = packed[j, q]
                    x = byte & 3
                    a0 += table[j, x, 0]
                    a1 += table[j, x, 1]
                    a2 += table[j, x, 2]
                    x = (byte >> 2) & 3
                    b0 += table[j, x, 0]
                    b1 += table[j, x, 1]
                    b2 += table[j, x, 2]
                    x = (byte >> 4) & 3
                    c0 += table[j, x, 0]
                    c1 += table[j, x, 1]
                    c2 += table[j, x, 2]
                    x = byte >> 6
                    d0 += table[j, x, 0]
                    d1 += table[j, x, 1]
                    d2 += table[j, x, 2]
                base = 4 * q
                out[base, 0] += a0
                out[base, 1] += a1
                out[base, 2] += a2
                if base + 1 < n:
                    out[base + 1, 0] += b0
                    out[base + 1, 1] += b1
                    out[base + 1, 2] += b2
                if base + 2 < n:
                    out[base + 2, 0] += c0
                    out[base + 2, 1] += c1
                    out[base + 2, 2] += c2
                if base + 3 < n:
                    out[base + 3, 0] += d0
                    out[base + 3, 1] += d1
                    out[base + 3, 2] += d2


@njit(parallel=True, cache=True)
def dosage_accumulate3(rows, coef, out, n_chunks, tile):  # pragma: no cover - compiled
    """:func:`dosage_accumulate` for one weight, without branches and summing a tile of variants per
    person in registers before adding to ``out``.

    ``coef`` (variants, 4, 3) holds per output the value at 0 copies, the slopes on [0, 1] and
    [1, 2], and the missing value: f(x) = c0 + s01 min(x, 1) + s12 max(x - 1, 0).
    """
    b = rows.shape[0]
    n = rows.shape[1]
    step = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        i0 = c * step
        i1 = min(n, i0 + step)
        for j0 in range(0, b, tile):
            j1 = min(b, j0 + tile)
            for i in range(i0, i1):
                s0 = 0.0
                s1 = 0.0
                s2 = 0.0
                for j in range(j0, j1):
                    x = np.float64(rows[j, i])
                    bad = not (x >= 0.0)  # negative or NaN: missing
                    lo = min(x, 1.0)
                    hi = max(x - 1.0, 0.0)
                    v0 = coef[j, 0, 0] + coef[j, 1, 0] * lo + coef[j, 2, 0] * hi
                    v1 = coef[j, 0, 1] + coef[j, 1, 1] * lo + coef[j, 2, 1] * hi
                    v2 = coef[j, 0, 2] + coef[j, 1, 2] * lo + coef[j, 2, 2] * hi
                    s0 += coef[j, 3, 0] if bad else v0
                    s1 += coef[j, 3, 1] if bad else v1
                    s2 += coef[j, 3, 2] if bad else v2
                out[i, 0] += s0
                out[i, 1] += s1
                out[i, 2] += s2


@njit(parallel=True, cache=True)
def hardcall_accumulate3(rows, table, out, n_chunks, tile):  # pragma: no cover - compiled
    """Variant-major int8 hard calls (0, 1, 2; negative = missing) for one weight:
    ``out[i, :] += table[j, x_ij, :]`` with ``table`` (variants, 4, 3), row 3 for missing;
    a table lookup, without the branches of the piecewise-linear kernel.

    Two people at a time: their sums are independent chains of additions, so the processor
    overlaps them; each person's additions keep their order (the same sums as one at a time).
    """
    b = rows.shape[0]
    n = rows.shape[1]
    step = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        i0 = c * step
        i1 = min(n, i0 + step)
        for j0 in range(0, b, tile):
            j1 = min(b, j0 + tile)
            i = i0
            while i + 1 < i1:
                s0 = 0.0
                s1 = 0.0
                s2 = 0.0
                t0 = 0.0
                t1 = 0.0
                t2 = 0.0
                for j in range(j0, j1):
                    x = np.int64(rows[j, i])
                    x = (x & 3) | ((x >> 7) & 3)  # 0, 1, 2 stay; a negative code becomes 3
                    y = np.int64(rows[j, i + 1])
                    y = (y & 3) | ((y >> 7) & 3)
                    s0 += table[j, x, 0]
                    s1 += table[j, x, 1]
                    s2 += table[j, x, 2]
                    t0 += table[j, y, 0]
                    t1 += table[j, y, 1]
                    t2 += table[j, y, 2]
                out[i, 0] += s0
                out[i, 1] += s1
                out[i, 2] += s2
                out[i + 1, 0] += t0
                out[i + 1, 1] += t1
                out[i + 1, 2] += t2
                i += 2
            if i < i1:
                s0 = 0.0
                s1 = 0.0
                s2 = 0.0
                for j in range(j0, j1):
                    x = np.int64(rows[j, i])
                    x = (x & 3) | ((x >> 7) & 3)
                    s0 += table[j, x, 0]
                    s1 += table[j, x, 1]
                    s2 += table[j, x, 2]
                out[i, 0] += s0
                out[i, 1] += s1
                out[i, 2] += s2


@njit(parallel=True, cache=True)
def hardcall_counts(rows, founder):  # pragma: no cover - compiled
    """:func:`dosage_counts` for int8 hard calls (negative = missing), without branches."""
    b = rows.shape[0]
    n = rows.shape[1]
    f = founder.astype(np.int64)
    total = np.zeros(b)
    called_f = np.zeros(b)
    missing = np.zeros(b, dtype=np.int64)
    for j in prange(b):
        t = 0
        c = 0
        mi = 0
        for i in range(n):
            x = np.int64(rows[j, i])
            code = (x & 3) | ((x >> 7) & 3)
            m = (code + 1) >> 2  # 1 for missing (code 3)
            t += (code - 3 * m) * f[i]
            c += (1 - m) * f[i]
            mi += m
        total[j] = t
        called_f[j] = c
        missing[j] = mi
    return total, called_f, missing


BGEN8 = np.arange(256, dtype=np.float64) / 255.0
"""Each 8-bit BGEN probability v as v / 255 (computed by the same division as the kernels')."""


@njit(cache=True, inline="always")
def _bgen_dose(r0, r1, scale, phased, want_a2, ploidy):  # pragma: no cover - compiled
    """One sample's dosage from its two stored values (see :func:`bgen_decode`)."""
    a = r0 / scale
    c = r1 / scale
    if phased:
        d = 2.0 - a - c
    else:
        d = 2.0 - 2.0 * a - c
    if want_a2:
        d = 2.0 - d
    if ploidy >= 128:
        d = np.nan
    return d


@njit(parallel=True, cache=True)
def bgen_decode(data, starts, ends, n, want_a2, out):  # pragma: no cover - compiled
    """Decode decompressed BGEN 1.2 layout-2 genotype blocks of biallelic diploid variants into
    dosages of the second allele (the first where ``want_a2``), NaN where missing, in parallel
    over variants; exactly the arithmetic of :func:`rlsepi._bgen._decode`.

    ``data[starts[j]:ends[j]]`` is variant j's uncompressed block. Returns per variant 0 (decoded),
    1 (not biallelic diploid: refused by the caller with a message) or 2 (block too short).
    """
    b = starts.shape[0]
    status = np.zeros(b, dtype=np.int64)
    for j in prange(b):
        s = starts[j]
        if ends[j] - s < 10 + n:
            status[j] = 2
            continue
        n2 = (np.int64(data[s]) | (np.int64(data[s + 1]) << 8) | (np.int64(data[s + 2]) << 16)
              | (np.int64(data[s + 3]) << 24))
        k = np.int64(data[s + 4]) | (np.int64(data[s + 5]) << 8)
        if n2 != n or k != 2 or data[s + 6] != 2 or data[s + 7] != 2:
            status[j] = 1
            continue
        phased = data[s + 8 + n]
        bits = np.int64(data[s + 9 + n])
        start = s + 10 + n
        if bits < 1 or bits > 32 or ends[j] - start < (2 * n * bits + 7) // 8:
            status[j] = 2
            continue
        scale = np.float64((np.int64(1) << bits) - 1)
        want = want_a2[j]
        for i in range(n):
            out[j, i] = _bgen_value(data, start, bits, i, scale, phased, want, data[s + 8 + i])
    return status


@njit(cache=True, inline="always")
def _bgen_value(data, start, bits, i, scale, phased, want_a2, ploidy):  # pragma: no cover - compiled
    """Sample i's dosage in a decompressed BGEN block whose probabilities start at ``start``."""
    if bits == 8:  # v / 255 from a table: the same doubles as the division, without dividing
        a = BGEN8[data[start + 2 * i]]
        c = BGEN8[data[start + 2 * i + 1]]
        if phased:
            d = 2.0 - a - c
        else:
            d = 2.0 - 2.0 * a - c
        if want_a2:
            d = 2.0 - d
        if ploidy >= 128:
            d = np.nan
        return d
    elif bits == 16:
        q = start + 4 * i
        r0 = np.float64(np.int64(data[q]) | (np.int64(data[q + 1]) << 8))
        r1 = np.float64(np.int64(data[q + 2]) | (np.int64(data[q + 3]) << 8))
    else:
        v0 = np.int64(0)
        v1 = np.int64(0)
        p0 = 2 * i * bits
        for t in range(bits):
            pos = p0 + t
            v0 |= np.int64((data[start + (pos >> 3)] >> (pos & 7)) & 1) << t
            pos = p0 + bits + t
            v1 |= np.int64((data[start + (pos >> 3)] >> (pos & 7)) & 1) << t
        r0 = np.float64(v0)
        r1 = np.float64(v1)
    return _bgen_dose(r0, r1, scale, phased, want_a2, ploidy)
