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
    for fmt, chunk in (("%.6g", 20_000), ("%.10g", 7)):  # 7: written in 43 chunks of rows
        want, got = io.StringIO(), io.StringIO()
        df.to_csv(want, sep="\t", index=False, float_format=fmt, lineterminator="\n")
        write_tsv(got, df, float_format=fmt, chunk_rows=chunk)
        assert got.getvalue() == want.getvalue()


def test_write_tsv_empty_frame_and_nullable_columns() -> None:
    df = pd.DataFrame({"a": pd.array([1, None, 3], dtype="Int64"), "b": pd.array([0.5, None, 2.0], dtype="Float64"),
                       "c": pd.array(["x", None, "z"], dtype="string")})
    for frame in (df, df.iloc[:0]):
        want, got = io.StringIO(), io.StringIO()
        frame.to_csv(want, sep="\t", index=False, float_format="%.6g", lineterminator="\n")
        write_tsv(got, frame, float_format="%.6g")
        assert got.getvalue() == want.getvalue()


def test_bgen_compiled_decoder_equals_the_formula_at_every_bit_depth(tmp_path) -> None:
    import pytest

    from rlsepi import _bgen
    from rlsepi import genotypes as gt
    from rlsepi.errors import DataValidationError
    from tests.test_prs_readers_more import _bgen_bytes

    rng = np.random.default_rng(11)
    n = 7
    for bits in (1, 5, 8, 12, 16, 23, 32):
        for phased in (False, True):
            scale = (1 << bits) - 1
            probs = []
            for _ in range(4):
                if phased:
                    row = [(int(rng.integers(0, scale + 1)), int(rng.integers(0, scale + 1))) for _ in range(n)]
                else:
                    a = rng.integers(0, scale + 1, n)
                    row = [(int(x), int(rng.integers(0, scale - x + 1))) for x in a]
                probs.append(row)
            p = tmp_path / f"b{bits}{int(phased)}.bgen"
            p.write_bytes(_bgen_bytes(probs, bits=bits, phased=phased, compression=int(bits % 2 == 0),
                                      ids=[f"s{i}" for i in range(n)], missing=((2, 3), (0, 6))))
            g = gt.read_genotypes(p)
            got = g.read_rows(np.arange(4), np.array([False, True, False, True]))
            # the dosage of the second allele: 2 - p1 - p2 (phased haplotypes) or 2 - 2 P(AA) - P(AB)
            v = np.array(probs, dtype=np.float64) / scale  # (4, n, 2)
            dose = 2.0 - v[..., 0] - v[..., 1] if phased else 2.0 - 2.0 * v[..., 0] - v[..., 1]
            dose[[1, 3]] = 2.0 - dose[[1, 3]]
            dose[2, 3] = dose[0, 6] = np.nan
            np.testing.assert_allclose(got, dose, rtol=1e-15, atol=1e-15, equal_nan=True)
            # and bit for bit what the per-variant numpy decoder (the path without numba) gives
            index = _bgen.read_index(p)
            for j, want in enumerate((False, True, False, True)):
                o, c = int(index.offsets[j]), int(index.lengths[j])
                raw = p.read_bytes()[o:o + c]
                np.testing.assert_array_equal(got[j], _bgen._decode(index, raw, j, want))
    # a genotype block whose probabilities are cut short is refused by name, not read past its end
    data = bytearray(_bgen_bytes([[(1, 2)] * 4], bits=8, compression=0, ids=list("abcd")))
    c_at = len(data) - (4 + 10 + 4 + 8)
    struct_c = int.from_bytes(data[c_at:c_at + 4], "little")
    data[c_at:c_at + 4] = (struct_c - 3).to_bytes(4, "little")
    p = tmp_path / "short.bgen"
    p.write_bytes(bytes(data[:-3]))
    with pytest.raises(DataValidationError, match=r"genotype block of variant 1 \(v1\) is truncated or corrupt"):
        gt.read_genotypes(p).read_rows(np.array([0]), None)


def test_corrupt_gzip_read_through_isal_is_one_line_error(tmp_path, capsys) -> None:
    import gzip

    from rlsepi.cli import main

    text = "rsID\teffect_allele\teffect_weight\n" + "".join(f"rs{i}\tA\t0.{i % 9 + 1}\n" for i in range(3000))
    data = bytearray(gzip.compress(text.encode(), mtime=0))
    data[len(data) // 2: len(data) // 2 + 40] = bytes(40)  # a damaged stretch in the deflate stream
    (tmp_path / "s.txt.gz").write_bytes(bytes(data))
    vcf = tmp_path / "g.vcf.gz"
    head = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ta\n"
    body = "".join(f"1\t{i + 1}\trs{i}\tA\tC\t.\t.\t.\tGT\t0/1\n" for i in range(3000))
    g = bytearray(gzip.compress((head + body).encode(), mtime=0))
    g[len(g) // 2: len(g) // 2 + 40] = bytes(40)
    vcf.write_bytes(bytes(g))
    for args in (["prs", str(vcf), "--score", str(tmp_path / "s.txt.gz")],
                 ["prs", str(vcf), "--vcf-field", "GT"]):
        assert main([*args, "--out", str(tmp_path / "o.tsv"), "--quiet"]) == 2
        err = capsys.readouterr().err
        lines = err.splitlines()  # a damaged stream is refused by its CRC, or earlier by what it decodes to
        assert len(lines) == 1 and lines[0].startswith("rlsepi: error: ") and "Traceback" not in err, err


def test_bgen_block_that_inflates_to_another_size_is_refused(tmp_path) -> None:
    import struct

    import pytest

    from rlsepi import genotypes as gt
    from rlsepi.errors import DataValidationError
    from tests.test_prs_readers_more import _bgen_bytes

    data = bytearray(_bgen_bytes([[(1, 2)] * 4, [(3, 4)] * 4], bits=8, compression=1, ids=list("abcd")))
    g = gt.read_genotypes(_write_bytes(tmp_path / "ok.bgen", bytes(data)))
    np.testing.assert_allclose(g.read_rows(np.array([1]), None)[0], 2 - 2 * 3 / 255 - 4 / 255, rtol=1e-15)
    from rlsepi import _bgen

    off = int(_bgen.read_index(tmp_path / "ok.bgen").offsets[1])
    c, d = struct.unpack_from("<II", data, off)
    struct.pack_into("<I", data, off + 4, d + 1)  # D, the stated decompressed size, one byte too many
    bad = gt.read_genotypes(_write_bytes(tmp_path / "bad.bgen", bytes(data)))
    with pytest.raises(DataValidationError, match=r"variant 2 \(v2\) does not decompress to its stated size"):
        bad.read_rows(np.array([0, 1]), None)
    data[off + 8 + 2:off + 8 + 12] = bytes(10)  # damaged deflate stream
    worse = gt.read_genotypes(_write_bytes(tmp_path / "worse.bgen", bytes(data)))
    with pytest.raises(DataValidationError, match=r"variant 2 \(v2\) does not decompress"):
        worse.read_rows(np.array([1]), None)


def _write_bytes(path, data: bytes):
    path.write_bytes(data)
    return path


def test_bgen_index_reads_long_ids_and_alleles_across_its_window(tmp_path) -> None:
    # the index reads the identifying data through a 64 KiB window of the file: an ID of 5,000 and an
    # allele of 70,000 letters cross it; the genotypes after them are still found
    import struct
    import zlib

    from rlsepi import genotypes as gt

    n = 3
    out = [struct.pack("<I", 20), struct.pack("<III", 20, 3, n) + b"bgen" + struct.pack("<I", 1 | (2 << 2))]
    long_allele = b"A" * 70_000
    variants = [(b"v1", b"rs1", b"A", b"G"), (b"x" * 5000, b"rs2", long_allele, b"T"), (b"v3", b"rs3", b"C", b"G")]
    for j, (vid, rsid, a, b) in enumerate(variants):
        ident = (struct.pack("<H", len(vid)) + vid + struct.pack("<H", len(rsid)) + rsid + struct.pack("<H", 1) + b"1"
                 + struct.pack("<IH", 100 * (j + 1), 2) + struct.pack("<I", len(a)) + a + struct.pack("<I", len(b)) + b)
        probs = bytes([255, 0, 0, 255, 0, 0]) if j != 1 else bytes([0, 0, 0, 255, 255, 0])
        data = struct.pack("<IHBB", n, 2, 2, 2) + bytes([2] * n) + bytes([0, 8]) + probs
        comp = zlib.compress(data)
        out.append(ident + struct.pack("<II", len(comp) + 4, len(data)) + comp)
    p = tmp_path / "long.bgen"
    p.write_bytes(b"".join(out))
    (tmp_path / "long.sample").write_text("ID_1 ID_2 missing\n0 0 0\na a 0\nb b 0\nc c 0\n")
    g = gt.read_genotypes(p)
    assert g.variants["id"].tolist() == ["rs1", "rs2", "rs3"] and g.variants["pos"].tolist() == [100, 200, 300]
    assert g.variants["a2"].tolist()[1] == "A" * 70_000 and g.variants["a1"].tolist() == ["G", "T", "G"]
    # dosage of the second allele: 2 - 2 P(AA) - P(AB) per person, by hand
    np.testing.assert_array_equal(g.read_rows(np.arange(3), None), [[0, 1, 2], [2, 1, 0], [0, 1, 2]])
