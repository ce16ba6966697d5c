"""Compiled kernels (numba) that score PLINK 1 packed genotypes without decoding them to floats.

A ``.bed`` byte holds four people's 2-bit codes (low bits first): ``00`` two copies of A1,
``01`` missing, ``10`` one copy, ``11`` none. Each variant's contribution to every output is
a table over the four codes, so a block is scored by one pass over its bytes, in parallel
over people (each thread owns a range of bytes, hence of people: no shared writes).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

A1_COPIES = np.array([2.0, np.nan, 1.0, 0.0])
"""A1 copies of the four 2-bit ``.bed`` codes (code 1 is missing)."""


@njit(parallel=True, cache=True)
def bed_counts(packed, founder, n):  # pragma: no cover - compiled
    """Per variant: A1 copies and called count among founders, and missing count among everyone."""
    b = packed.shape[0]
    nb = packed.shape[1]
    a1 = np.zeros(b)
    called_f = np.zeros(b)
    missing = np.zeros(b, dtype=np.int64)
    for j in prange(b):
        c_a1 = 0.0
        c_f = 0.0
        c_m = 0
        for q in range(nb):
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
def bed_accumulate(packed, table, dtable, n, sums, dsum, nmiss, n_chunks):  # pragma: no cover - compiled
    """``sums[i, k] += table[j, code_ij, k]``, ``dsum[i] += dtable[j, code_ij]`` and missing counts."""
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
                for s in range(4):
                    i = 4 * q + s
                    if i >= n:
                        break
                    code = (byte >> (2 * s)) & 3
                    for k in range(kk):
                        sums[i, k] += table[j, code, k]
                    dsum[i] += dtable[j, code]
                    if code == 1:
                        nmiss[i] += 1
