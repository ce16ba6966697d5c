"""More value and refusal checks for the PRS readers (issue 15: genotypes, BGEN, scoring files, scoring).

Known answers are hand calculations written beside each test (tiny files made in tmp_path) or
plink2 run on the same tiny files (``plink2 --export A`` dosages); error tests check the exact
one-line message. The BGEN files are written here from the BGEN 1.2 specification
(https://www.well.ox.ac.uk/~gav/bgen_format/spec/latest.html) and plink2 reads them too, which
checks the writer against an independent reader.
"""

from __future__ import annotations

import gzip
import math
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rlsepi import _bgen
from rlsepi import genotypes as gt
from rlsepi import polygenic as pg
from rlsepi import scorefiles as sf
from rlsepi.consumer import read_consumer_genotypes
from rlsepi.errors import DataValidationError, RLSEpiError
from rlsepi.parameters import DEFAULT_LOCI

REAL = Path(__file__).parent / "reference" / "plink2" / "real"
PLINK2 = shutil.which("plink2")
needs_plink2 = pytest.mark.skipif(PLINK2 is None, reason="plink2 not installed")

VCF_HEAD = ("##fileformat=VCFv4.2\n##FORMAT=<ID=GT,Number=1,Type=String,Description=\"Genotype\">\n"
            "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2\tS3\n")
# three people, two biallelic sites; ALT copies by hand: rs1 = 0, 1, 2; rs2 = 1, missing, 2
VCF_BODY = ("1\t100\trs1\tA\tC\t.\tPASS\t.\tGT\t0/0\t0/1\t1/1\n"
            "1\t200\trs2\tG\tT\t.\tPASS\t.\tGT\t1/0\t./.\t1/1\n")


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _plink2(*args: str) -> None:
    subprocess.run([PLINK2, "--silent", "--threads", "1", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def pfile(tmp_path_factory) -> Path:
    """The VCF above as a PLINK 2 fileset made by plink2 (prefix)."""
    if PLINK2 is None:
        pytest.skip("plink2 not installed")
    d = tmp_path_factory.mktemp("pfile")
    vcf = _write(d / "t.vcf", VCF_HEAD + VCF_BODY)
    _plink2("--vcf", str(vcf), "--make-pgen", "--out", str(d / "t"))
    return d / "t"


# --- BGEN 1.2 writer from the specification ---------------------------------------------------

def _bgen_bytes(probs: list[list[tuple[int, int]]], *, bits: int = 8, phased: bool = False, compression: int = 1,
                ids: list[str] | None = None, layout: int = 2, missing: tuple[tuple[int, int], ...] = (),
                n_alleles: int = 2) -> bytes:
    """A BGEN 1.2 file: ``probs[variant][sample]`` are the two stored integers of B bits
    (unphased: P(AA), P(AB); phased: P(haplotype 1 is A), P(haplotype 2 is A)), scaled by 2^B - 1."""
    n, m = len(probs[0]), len(probs)
    flags = compression | (layout << 2) | ((1 << 31) if ids else 0)
    header = struct.pack("<III", 20, m, n) + b"bgen" + struct.pack("<I", flags)
    sample = b""
    if ids:
        body = b"".join(struct.pack("<H", len(s)) + s.encode() for s in ids)
        sample = struct.pack("<II", 8 + len(body), n) + body
    out = [struct.pack("<I", len(header) + len(sample)), header, sample]
    for j, row in enumerate(probs):
        vid = f"v{j + 1}".encode()
        rsid = f"rs{j + 1}".encode()
        ident = (struct.pack("<H", len(vid)) + vid + struct.pack("<H", len(rsid)) + rsid + struct.pack("<H", 1) + b"1"
                 + struct.pack("<IH", 1000 * (j + 1), n_alleles)
                 + b"".join(struct.pack("<I", 1) + a for a in (b"A", b"G", b"T")[:n_alleles]))
        ploidy = bytes(0x82 if (j, i) in missing else 2 for i in range(n))
        vals = [q for pair in row for q in pair]
        bitlist = [(q >> b) & 1 for q in vals for b in range(bits)]
        packed = np.packbits(np.array(bitlist, dtype=np.uint8), bitorder="little").tobytes()
        data = struct.pack("<IHBB", n, n_alleles, 2, 2) + ploidy + bytes([int(phased), bits]) + packed
        if compression == 1:
            comp = zlib.compress(data)
            block = struct.pack("<II", len(comp) + 4, len(data)) + comp
        else:
            block = struct.pack("<I", len(data)) + data
        out.append(ident + block)
    return b"".join(out)


def _sample_file(path: Path, ids: list[str]) -> Path:
    return _write(path, "ID_1 ID_2 missing\n0 0 0\n" + "".join(f"{i} {i} 0\n" for i in ids))


# bits = 3 (scale 7). Unphased (P(AA), P(AB)) -> dosage of G = P(AB) + 2 P(BB) = 2 - 2 P(AA) - P(AB):
#   (7, 0) -> 0; (0, 7) -> 1; (0, 0) -> 2; (1, 2) -> 2 - 2/7 - 2/7 = 10/7
# Phased (P(hap1 = A), P(hap2 = A)) -> dosage of G = 2 - p1 - p2:
#   (7, 0) -> 1; (3, 7) -> 2 - 3/7 - 1 = 4/7; (0, 0) -> 2; (7, 7) -> 0
UNPHASED = [(7, 0), (0, 7), (0, 0), (1, 2)]
UNPHASED_DOSE = [0.0, 1.0, 2.0, 10 / 7]
PHASED = [(7, 0), (3, 7), (0, 0), (7, 7)]
PHASED_DOSE = [1.0, 4 / 7, 2.0, 0.0]


@pytest.mark.parametrize("bits,phased,compression", [(3, False, 0), (3, True, 1), (16, False, 1), (8, True, 0)])
def test_bgen_bit_depths_phasing_and_storage_read_by_hand(tmp_path, bits, phased, compression):
    scale = (1 << bits) - 1  # 16 bits: 65535 is not a multiple of 7, so the stored values are rounded
    tol = 0 if scale % 7 == 0 else 2 / scale
    rows = PHASED if phased else UNPHASED
    expected = PHASED_DOSE if phased else UNPHASED_DOSE
    probs = [[(round(a * scale / 7), round(b * scale / 7)) for a, b in rows]]
    p = tmp_path / "x.bgen"
    p.write_bytes(_bgen_bytes(probs, bits=bits, phased=phased, compression=compression, ids=["a", "b", "c", "d"]))
    g = gt.read_genotypes(p)
    assert g.samples["IID"].tolist() == ["a", "b", "c", "d"]
    assert g.variants[["id", "a1", "a2"]].values.tolist() == [["rs1", "G", "A"]]
    np.testing.assert_allclose(g.read(np.array([0]))[:, 0], expected, rtol=1e-12, atol=tol)  # column-major
    # the first allele where asked: 2 - dosage
    np.testing.assert_allclose(g.read_rows(np.array([0]), np.array([True]))[0], 2 - np.array(expected), rtol=1e-12,
                               atol=tol)


@needs_plink2
@pytest.mark.parametrize("phased", [False, True])
def test_bgen_written_here_reads_as_plink2_reads_it(tmp_path, phased):
    # two variants, one missing call; plink2 --export A prints the dosage of the counted allele
    probs = [PHASED if phased else UNPHASED, [(0, 0), (7, 0), (0, 7), (2, 2)]]
    p = tmp_path / "x.bgen"
    p.write_bytes(_bgen_bytes(probs, bits=3, phased=phased, compression=0, missing=((1, 3),)))
    _sample_file(tmp_path / "x.sample", ["a", "b", "c", "d"])
    _plink2("--bgen", str(p), "ref-first", "--sample", str(tmp_path / "x.sample"), "--export", "A",
            "--out", str(tmp_path / "o"))
    raw = pd.read_csv(tmp_path / "o.raw", sep="\t")
    assert raw.columns[6:].tolist() == ["rs1_A", "rs2_A"]  # plink2 counts the first allele (A) here
    theirs = 2.0 - raw.iloc[:, 6:].to_numpy(dtype=float)
    ours = gt.read_genotypes(tmp_path / "x").read(np.array([0, 1]))  # prefix: x -> x.bgen
    np.testing.assert_allclose(ours, theirs, atol=1e-4, equal_nan=True)
    assert np.isnan(ours[3, 1])


def test_bgen_refusals(tmp_path):
    good = _bgen_bytes([UNPHASED], bits=3, ids=["a", "b", "c", "d"])
    hint = _bgen._HINT
    cases = {
        "trunc": (good[:10], "truncated"),
        "magic": (good[:16] + b"xxxx" + good[20:], "magic b'xxxx'"),
        "layout1": (_bgen_bytes([UNPHASED], bits=3, layout=1), "layout 1 (only layout 2, BGEN 1.2/1.3, is read)"),
        "zstd": (_bgen_bytes([UNPHASED], bits=3, compression=2), "zstd compression (only zlib or none is read)"),
        "cut": (good[:-5], "truncated or corrupt at variant 1 of 1"),
    }
    for name, (data, what) in cases.items():
        p = tmp_path / f"{name}.bgen"
        p.write_bytes(data)
        with pytest.raises(DataValidationError) as e:
            gt.bgen_genotypes(p)
        assert str(e.value) == f"'{p}' is not a readable BGEN 1.2 file: {what}; {hint}", name
    # sample block that disagrees with the header: N = 4 in the header, 3 in the block
    bad = bytearray(good)
    struct.pack_into("<I", bad, 4 + 20 + 4, 3)
    p = tmp_path / "nsample.bgen"
    p.write_bytes(bytes(bad))
    with pytest.raises(DataValidationError, match=r"its sample block lists 3 samples but the header 4"):
        gt.bgen_genotypes(p)


def test_bgen_tri_allelic_variant_and_sample_files_refused(tmp_path):
    p = tmp_path / "tri.bgen"
    p.write_bytes(_bgen_bytes([[(7, 0)] * 2], bits=3, n_alleles=3))  # refused at its header, before the probabilities
    _sample_file(tmp_path / "tri.sample", ["a", "b"])
    g = gt.bgen_genotypes(p)
    assert g.variants["multiallelic"].tolist() == [True] and g.variants["a1"].tolist() == [""]
    with pytest.raises(DataValidationError) as e:
        g.read(np.array([0]))
    assert str(e.value) == (f"'{p}' variant 1 (v1) has 3 alleles and ploidy 2-2; rlsepi reads biallelic diploid "
                            f"BGEN variants; {_bgen._HINT}")
    assert g.read(np.array([], dtype=int)).shape == (2, 0)
    # no IDs in the file, no .sample
    q = tmp_path / "noids.bgen"
    q.write_bytes(_bgen_bytes([UNPHASED], bits=3))
    with pytest.raises(DataValidationError) as e:
        gt.bgen_genotypes(q)
    assert str(e.value) == (f"'{q}' stores no sample IDs and '{tmp_path / 'noids.sample'}' does not exist; "
                            "give its .sample file")
    # a .sample with 3 people for 4 in the file
    s3 = _sample_file(tmp_path / "three.sample", ["a", "b", "c"])
    with pytest.raises(DataValidationError) as e:
        gt.bgen_genotypes(q, sample=s3)
    assert str(e.value) == f"'{s3}' lists 3 samples but '{q}' holds 4; they do not belong together"
    notox = _write(tmp_path / "bad.sample", "FID IID\n1 1\n")
    with pytest.raises(DataValidationError) as e:
        gt.bgen_genotypes(q, sample=notox)
    assert str(e.value) == (f"'{notox}' is not an Oxford .sample file (its first two lines must be 'ID_1 ID_2 ...' "
                            "and '0 0 ...')")
    binary = tmp_path / "bin.sample"
    binary.write_bytes(b"\xff\xfe\x00ID")
    with pytest.raises(DataValidationError, match=r"^cannot read sample file '.*bin\.sample': "):
        gt.bgen_genotypes(q, sample=binary)
    missing = tmp_path / "nothere.bgen"
    with pytest.raises(DataValidationError) as e:
        gt.bgen_genotypes(missing)
    assert str(e.value) == f"BGEN file '{missing}' does not exist"


def test_bgen_many_variants_read_in_two_threads_equal_hand_values(tmp_path):
    # 5 variants cycling the 4 hand-computed people; read_dosages splits them over 2 threads
    probs = [UNPHASED[k:] + UNPHASED[:k] for k in (0, 1, 2, 3, 0)]
    p = tmp_path / "five.bgen"
    p.write_bytes(_bgen_bytes(probs, bits=3, ids=list("abcd")))
    g = gt.read_genotypes(p)
    got = g.read_rows(np.arange(5), None)
    for j, k in enumerate((0, 1, 2, 3, 0)):
        np.testing.assert_allclose(got[j], UNPHASED_DOSE[k:] + UNPHASED_DOSE[:k], rtol=1e-12)


# --- PLINK 1 ------------------------------------------------------------------------------------

def _bed(tmp_path: Path, name: str = "b") -> Path:
    """4 people x 2 variants written by write_bed; A1 counts by hand."""
    g = np.array([[0, 2], [1, -1], [2, 1], [0, 0]], dtype=np.int8)
    variants = pd.DataFrame({"chrom": ["chr23", "1"], "id": ["rsA", "rsB"], "pos": [10, 20], "a1": ["A", "C"],
                             "a2": ["G", "T"]})
    samples = pd.DataFrame({"IID": ["p1", "p2", "p3", "p4"]})
    return gt.write_bed(tmp_path / name, g, variants, samples)


def test_plink_reader_values_chromosome_names_and_empty_blocks(tmp_path):
    bed = _bed(tmp_path)
    g = gt.read_genotypes(bed, build="hg19")
    assert g.build == "GRCh37" and g.variants["chrom"].tolist() == ["X", "1"]  # chr23 -> X
    got = gt._as_float(g.read(np.array([0, 1])))
    np.testing.assert_array_equal(got, [[0, 2], [1, np.nan], [2, 1], [0, 0]])
    # the a2 count of a biallelic site is 2 - a1
    np.testing.assert_array_equal(g.read(np.array([1]), np.array([True]))[:, 0], [0, np.nan, 1, 2])
    assert g.read(np.array([], dtype=int)).shape == (4, 0)
    assert g.read_packed(np.array([], dtype=int)).shape == (0, 1)
    assert gt.plink_genotypes(bed, build="NA").build is None
    assert gt.plink_genotypes(bed, build="T2T-CHM13").build == "T2T-CHM13"


def test_plink_reader_refusals(tmp_path):
    bed = _bed(tmp_path)
    prefix = tmp_path / "b"
    bed.write_bytes(b"\x6c\x1b\x00" + bed.read_bytes()[3:])
    with pytest.raises(DataValidationError) as e:
        gt.plink_genotypes(prefix)
    assert str(e.value) == f"'{bed}' is not a SNP-major PLINK 1 .bed file (first bytes 6c1b00, expected 6c1b01)"
    _bed(tmp_path, "c")
    (tmp_path / "c.bim").write_text("1\trsA\t0\tten\tA\tG\n1\trsB\t0\t20\tC\tT\n")
    with pytest.raises(DataValidationError) as e:
        gt.plink_genotypes(tmp_path / "c.bed")
    assert str(e.value) == (f"'{tmp_path / 'c.bim'}' has 1 variants whose position is not a non-negative integer "
                            "(variant 1: 'ten'); fix or remove those lines")
    (tmp_path / "c.fam").write_bytes(b"p1 p1 0 0 \xff\xfe 1\n")
    with pytest.raises(DataValidationError, match=r"^cannot read PLINK \.fam '.*c\.fam': 'utf-8' codec can't decode"):
        gt.plink_genotypes(tmp_path / "c")
    (tmp_path / "c.bim").unlink()
    with pytest.raises(DataValidationError) as e:
        gt.plink_genotypes(tmp_path / "c")
    assert str(e.value) == f"PLINK fileset '{tmp_path / 'c'}' has no .bim file ('{tmp_path / 'c.bim'}' does not exist)"


def test_write_bed_and_write_plink_refusals(tmp_path):
    v = pd.DataFrame({"chrom": ["1"], "id": ["r"], "pos": [1], "a1": ["A"], "a2": ["G"]})
    s = pd.DataFrame({"IID": ["a", "b"]})
    with pytest.raises(RLSEpiError) as e:
        gt.write_bed(tmp_path / "w", np.zeros((3, 1)), v, s)
    assert str(e.value) == "genotype block has shape (3, 1); expected (2, variants)"
    with pytest.raises(RLSEpiError) as e:
        gt.write_bed(tmp_path / "w2", np.zeros((2, 2)), v, s)
    assert str(e.value) == "wrote 2 variants to the .bed but the .bim lists 1"
    with pytest.raises(DataValidationError) as e:
        gt.write_plink(pd.DataFrame({"person_id": [1]}), tmp_path / "w3", DEFAULT_LOCI[:1])
    assert str(e.value) == f"the cohort has none of the genotype columns {DEFAULT_LOCI[0].rsid}"


def test_read_genotypes_missing_prefix_refused(tmp_path):
    with pytest.raises(DataValidationError) as e:
        gt.read_genotypes(tmp_path / "none")
    p = tmp_path / "none"
    assert str(e.value) == f"genotype file '{p}' does not exist (nor '{p}.pgen', '{p}.bed' or '{p}.bgen')"


def test_cohort_reader_counts_other_allele_as_two_minus(tmp_path):
    rs = DEFAULT_LOCI[0].rsid
    g = gt.cohort_genotypes(pd.DataFrame({"person_id": [1, 2, 3], rs: [0, 2, None]}))
    np.testing.assert_array_equal(g.read(np.array([0]), np.array([True]))[:, 0], [2.0, 0.0, np.nan])
    # float blocks with negative missing codes (as pgenlib's -9) become NaN
    np.testing.assert_array_equal(gt._as_float(np.array([[-9.0, 1.5]])), [[np.nan, 1.5]])


# --- VCF ----------------------------------------------------------------------------------------

def test_vcf_refusals(tmp_path):
    with pytest.raises(DataValidationError) as e:
        gt.vcf_genotypes(tmp_path / "no.vcf")
    assert str(e.value) == f"VCF '{tmp_path / 'no.vcf'}' does not exist"
    v = _write(tmp_path / "h.vcf", VCF_HEAD.replace("\n", "\n##reference=GRCh37\n", 1) + VCF_BODY)
    with pytest.raises(DataValidationError) as e:
        gt.vcf_genotypes(v, build="hg38")
    assert str(e.value) == (f"--build GRCh38 was given but the header of '{v}' says its positions are GRCh37; "
                            "drop --build or check the file")
    s = _write(tmp_path / "s.tsv", "rsID\teffect_allele\tother_allele\teffect_weight\nrs1\tC\tA\t1\n")
    with pytest.raises(DataValidationError) as e:  # score_file (prs --build) gives the build to the reader too
        pg.score_file(v, s, build="hg38")
    assert str(e.value) == (f"--build GRCh38 was given but the header of '{v}' says its positions are GRCh37; "
                            "drop --build or check the file")
    g = gt.vcf_genotypes(v, field_="DS")
    with pytest.raises(DataValidationError) as e:
        g.read(np.array([0]))
    assert str(e.value) == f"VCF '{v}' record 1:100 (rs1) has no DS in FORMAT (GT)"
    # a truncated gzip: the header is readable, the records are not
    rng = np.random.default_rng(15)  # random calls compress poorly: the cut falls far past the header
    calls = rng.choice(["0/0", "0/1", "1/1"], size=(4000, 3))
    body = "".join(f"1\t{i + 1}\tr{i}\tA\tC\t.\t.\t.\tGT\t" + "\t".join(c) + "\n" for i, c in enumerate(calls))
    data = gzip.compress((VCF_HEAD + body).encode())
    z = tmp_path / "cut.vcf.gz"
    z.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataValidationError, match=r"^cannot read VCF '.*cut\.vcf\.gz' at line \d+: Compressed file "
                                                  r"ended before the end-of-stream marker was reached$"):
        gt.vcf_genotypes(z)
    junk = tmp_path / "junk.bcf"
    junk.write_bytes(b"BCF\x02\x02 not really")
    with pytest.raises(DataValidationError, match=r"^cannot open VCF '.*junk\.bcf': "):
        gt.vcf_genotypes(junk)


DS_HEAD = ("##fileformat=VCFv4.2\n##FORMAT=<ID=DS,Number=A,Type=Float,Description=\"Dosage\">\n"
           "##FORMAT=<ID=GT,Number=1,Type=String,Description=\"Genotype\">\n"
           "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2\n")


def test_vcf_dosages_ref_count_and_out_of_range(tmp_path):
    # DS is the ALT dosage; REF copies = 2 - DS (hand): 0.25 -> 1.75, 1.5 -> 0.5
    v = _write(tmp_path / "d.vcf", DS_HEAD + "1\t5\trs5\tA\tG\t.\t.\t.\tGT:DS\t0/0:0.25\t1/1:1.5\n"
               "1\t6\trs6\tA\tG\t.\t.\t.\tGT:DS\t0/0:2.5\t0/1:1\n")
    g = gt.vcf_genotypes(v)
    np.testing.assert_allclose(g.read(np.array([0]))[:, 0], [0.25, 1.5])
    np.testing.assert_allclose(g.read(np.array([0]), np.array([True]))[:, 0], [1.75, 0.5])
    with pytest.raises(DataValidationError) as e:
        g.read(np.array([1]))
    assert str(e.value) == f"VCF '{v}' record 1:6 (rs6) sample 1 has DS [2.5] outside [0, 2]"


def test_vcf_allele_index_beyond_alt_count_refused(tmp_path):
    v = _write(tmp_path / "m.vcf", VCF_HEAD.replace("\tS3", "")
               + "1\t7\trs7\tA\tC,G\t.\t.\t.\tGT\t0/1\t0/2\n"
               + "1\t8\trs8\tA\tC,G\t.\t.\t.\tGT\t0/3\t1/1\n")
    g = gt.vcf_genotypes(v)
    # rs7: copies of G (ALT 2) by hand: 0, 1
    np.testing.assert_array_equal(g.read(np.array([1]))[:, 0], [0.0, 1.0])
    with pytest.raises(DataValidationError) as e:
        g.read(np.array([3]))
    assert str(e.value) == (f"VCF '{v}' record 1:8 (rs8) sample 1 has allele index 3 but the record has 2 ALT "
                            "alleles; fix the GT values")


# --- PLINK 2 ------------------------------------------------------------------------------------

def test_pgen_read_hard_calls_and_dosages_by_hand(pfile):
    # ALT copies from the VCF by hand: rs1 = 0, 1, 2; rs2 = 1, missing, 2
    g = gt.pgen_genotypes(pfile)
    np.testing.assert_array_equal(g.read(np.array([0, 1])), [[0, 1], [1, np.nan], [2, 2]])
    np.testing.assert_array_equal(g.read(np.array([1]), np.array([True]))[:, 0], [1, np.nan, 0])
    hard = gt.pgen_genotypes(pfile, dosages=False)
    assert hard.read_rows is None
    np.testing.assert_array_equal(gt._as_float(hard.read(np.array([0, 1]))), [[0, 1], [1, np.nan], [2, 2]])


@needs_plink2
def test_pgen_headerless_pvar_and_fam_like_psam(pfile, tmp_path):
    for ext in ("pgen",):
        shutil.copy(f"{pfile}.{ext}", tmp_path / f"t.{ext}")
    # .bim-like pvar (chrom, id, cm, pos, ALT, REF) and .fam-like psam (FID IID PAT MAT SEX PHENO)
    (tmp_path / "t.pvar").write_text("1\trs1\t0\t100\tC\tA\n1\trs2\t0\t200\tT\tG\n")
    (tmp_path / "t.psam").write_text("f1 S1 0 0 1 -9\nf1 S2 S1 0 2 -9\nf3 S3 0 0 0 -9\n")
    g = gt.pgen_genotypes(tmp_path / "t.pvar")
    assert g.samples.columns.tolist() == ["IID", "FID"] and g.samples["FID"].tolist() == ["f1", "f1", "f3"]
    assert g.founders.tolist() == [True, False, True]
    assert g.variants[["id", "a1", "a2"]].values.tolist() == [["rs1", "C", "A"], ["rs2", "T", "G"]]
    np.testing.assert_array_equal(g.read(np.array([0]))[:, 0], [0, 1, 2])


@needs_plink2
def test_pgen_refusals(pfile, tmp_path):
    def copy(name: str) -> Path:
        for ext in ("pgen", "pvar", "psam"):
            shutil.copy(f"{pfile}.{ext}", tmp_path / f"{name}.{ext}")
        return tmp_path / name

    p = copy("a")
    (tmp_path / "a.psam").unlink()
    with pytest.raises(DataValidationError) as e:
        gt.pgen_genotypes(p)
    assert str(e.value) == f"PLINK 2 fileset '{p}' has no .psam file ('{p}.psam' does not exist)"
    p = copy("b")
    (tmp_path / "b.pvar").write_text("#CHROM\tPOS\tID\tREF\n1\t100\trs1\tA\n1\t200\trs2\tG\n")
    with pytest.raises(DataValidationError) as e:
        gt.pgen_genotypes(p)
    assert str(e.value) == f"'{p}.pvar' has no ALT column(s)"
    p = copy("c")
    last = Path(f"{p}.pvar").read_text().splitlines()[-1].split("\t")
    with open(f"{p}.pvar", "a") as fh:
        fh.write("\t".join(["1", "300", "rs3", "A", "C"] + last[5:]) + "\n")
    with pytest.raises(DataValidationError) as e:
        gt.pgen_genotypes(p)
    assert str(e.value) == (f"'{p}.pgen' holds 2 variants but '{p}.pvar' lists 3; the files do not belong together")
    p = copy("d")
    Path(f"{p}.pgen").write_bytes(b"not a pgen file at all")
    with pytest.raises(DataValidationError, match=rf"^cannot read '{p}\.pgen': "):
        gt.pgen_genotypes(p)


# --- scoring files ------------------------------------------------------------------------------

def test_written_scoring_file_reads_back_with_parameters_weights(tmp_path):
    p = sf.write_scoring_file(tmp_path / "mine.txt.gz", DEFAULT_LOCI)
    assert p.read_bytes()[:2] == b"\x1f\x8b"  # gzip by the name
    s = sf.read_scoring_file(p)
    assert s.n_variants == len(DEFAULT_LOCI) and s.name == "mine"
    assert s.variants["rsID"].tolist() == [locus.rsid for locus in DEFAULT_LOCI]
    np.testing.assert_allclose(s.variants["effect_weight"], [math.log(locus.odds_ratio) for locus in DEFAULT_LOCI],
                               rtol=1e-12)
    frame = s.to_frame()
    frame.loc[0, "rsID"] = "changed"
    assert s.variants.loc[0, "rsID"] == DEFAULT_LOCI[0].rsid  # to_frame is a copy
    text = s.summary()
    assert text.startswith(f"score 'mine': {len(DEFAULT_LOCI)} variants, trait ") and text.endswith(f"(from {p})")
    assert "weights effect_weight" in text


def test_extended_score_has_the_extended_loci():
    from rlsepi.parameters import EXTENDED_LOCI

    s = sf.extended_score()
    assert s.variants["rsID"].tolist() == [locus.rsid for locus in EXTENDED_LOCI]
    np.testing.assert_allclose(s.variants["effect_weight"], [math.log(locus.odds_ratio) for locus in EXTENDED_LOCI],
                               rtol=1e-12)


def test_plain_tables_beta_alias_and_or_column(tmp_path):
    b = _write(tmp_path / "b.tsv", "SNP\tA1\tA2\tBETA\nrs1\tc\tA\t0.5\nrs2\tT\tG\t-0.25\n")
    s = sf.read_scoring_file(b)
    assert s.weight_names == ("effect_weight",)
    assert s.variants[["rsID", "effect_allele", "other_allele"]].values.tolist() == [["rs1", "C", "A"], ["rs2", "T", "G"]]
    np.testing.assert_array_equal(s.variants["effect_weight"], [0.5, -0.25])
    o = _write(tmp_path / "o.tsv", "rsid\teffect_allele\tOR\nrs1\tC\t2\nrs2\tT\t0.5\n")
    np.testing.assert_allclose(sf.read_scoring_file(o).variants["effect_weight"], [math.log(2), math.log(0.5)])
    z = _write(tmp_path / "z.tsv", "rsid\teffect_allele\tOR\nrs1\tC\t2\nrs2\tT\t0\n")
    with pytest.raises(DataValidationError) as e:
        sf.read_scoring_file(z)
    assert str(e.value) == f"scoring file '{z}' column 'OR' has values <= 0; odds ratios must be positive"


@pytest.mark.parametrize("text,message", [
    ("effect_allele\teffect_weight\nA\t1\n",
     ("scoring file '{p}' has neither an rsID column nor chr_name/chr_position columns; the columns are: "
      "effect_allele, effect_weight")),
    ("rsID\teffect_allele\teffect_weight\teffect_type\nrs1\tA\t1\tadditive\nrs2\tC\t1\tcodominant\n",
     ("scoring file '{p}' column 'effect_type' has 1 values other than additive, dominant or recessive "
      "(data row 2: 'codominant')")),
    ("rsID\teffect_allele\teffect_weight\taccession\nrs1\tA\t1\tPGS1\nrs2\tC\t1\t \n",
     "scoring file '{p}' data row 2 has an empty 'accession'"),
    ("chr_name\tchr_position\teffect_allele\teffect_weight\n1\t100\tA\t1\n1\t1e2x\tC\t1\n",
     "scoring file '{p}' column 'chr_position' has 1 non-numeric positions (data row 2)"),
])
def test_scoring_file_refusals(tmp_path, text, message):
    p = _write(tmp_path / "s.tsv", text)
    with pytest.raises(DataValidationError) as e:
        sf.read_scoring_file(p)
    assert str(e.value) == message.format(p=p)


def test_missing_scoring_file_refused(tmp_path):
    with pytest.raises(DataValidationError) as e:
        sf.read_scoring_file(tmp_path / "none.txt")
    assert str(e.value) == f"scoring file '{tmp_path / 'none.txt'}' does not exist"


# --- consumer raw-data files --------------------------------------------------------------------

def test_consumer_header_without_hash_and_path_refusals(tmp_path):
    text = b"rsid\tchromosome\tposition\tgenotype\nrs2300478\t2\t66554321\tGT\nrs9357271\t6\t38473851\tTT\n"
    got = read_consumer_genotypes(text, rsids=["rs2300478", "rs9357271"])
    assert got.layout == "23andMe" and got.genotypes == {"rs2300478": "GT", "rs9357271": "TT"}
    p = tmp_path / "g.txt"
    p.write_bytes(text)
    with pytest.raises(DataValidationError) as e:
        read_consumer_genotypes(p, rsids=["rs1"], max_bytes=10)
    assert str(e.value) == f"the genotype file has {len(text):,} bytes, more than the limit of 10"
    with pytest.raises(DataValidationError) as e:
        read_consumer_genotypes(tmp_path / "absent.txt", rsids=["rs1"])
    assert str(e.value) == f"cannot read genotype file '{tmp_path / 'absent.txt'}': No such file or directory"
    # a UTF-16 byte-order mark on an odd number of bytes is not UTF-16, and not UTF-8 either
    with pytest.raises(DataValidationError) as e:
        read_consumer_genotypes(b"\xff\xfers1", rsids=["rs1"])
    assert str(e.value) == "the genotype file is not UTF-8 text (byte 0); give the raw-data .txt file of the test"


# --- matching and scoring -----------------------------------------------------------------------

def _two_variant_bed(tmp_path: Path) -> gt.Genotypes:
    """4 people; rsA A/? (second allele unknown, '0' in the .bim), rsB A/G.
    A1 counts: rsA = 0, 1, 2, 1; rsB = 2, 1, 0, 0."""
    g = np.array([[0, 2], [1, 1], [2, 0], [1, 0]], dtype=np.int8)
    v = pd.DataFrame({"chrom": ["1", "1"], "id": ["rsA", "rsB"], "pos": [10, 20], "a1": ["A", "A"],
                      "a2": ["", "G"]})
    gt.write_bed(tmp_path / "two", g, v, pd.DataFrame({"IID": ["p1", "p2", "p3", "p4"]}))
    return gt.read_genotypes(tmp_path / "two.bed")


def test_swap_against_unknown_second_allele_and_summary(tmp_path):
    geno = _two_variant_bed(tmp_path)
    # rsA: effect G, other A against A/? -> swapped: G copies = 2 - A copies = 2, 1, 0, 1
    # rsB: effect C, other G against A/G fits no orientation -> excluded; rsZ not in the genotypes
    s = _write(tmp_path / "s.tsv", "rsID\teffect_allele\tother_allele\teffect_weight\n"
               "rsA\tG\tA\t0.5\nrsB\tC\tG\t0.25\nrsZ\tT\tC\t0.25\n")
    res = pg.score_genotypes(geno, pg.read_scoring_file(s), min_overlap=0, imputation="none")
    log = res.match_log.set_index("rsID")
    assert log.loc["rsA", "orientation"] == "swapped" and not log.loc["rsA", "effect_is_a1"]
    assert log.loc["rsB", "reason"] == "alleles C/G do not fit the genotypes' A/G"
    np.testing.assert_allclose(res.scores["SUM"], [1.0, 0.5, 0.0, 0.5])
    assert res.to_frame()["SUM"].tolist() == res.scores["SUM"].tolist()
    text = res.summary().splitlines()
    assert text[0] == "PRS 's' for 4 people"
    # 1 of 3 variants, |weight| 0.5 of 1.0
    assert text[1] == "  effect_weight: 1/3 variants (33.3%), 50.0% of total |weight|"
    assert text[2] == f"  imputation: {pg.IMPUTATION_TEXT['none']}"
    assert "  excluded 1: not in genotypes" in text and "  excluded 1: alleles C/G do not fit the genotypes' A/G" in text
    # no frequency in the file: the sample's G frequency at rsA is 1 - 4/8 = 0.5, so SUM = 0, 0.5, 1 with
    # 1/4, 1/2, 1/4: mean 0.5, sd sqrt(2 x 0.25 x 0.5^2) = 0.3536
    assert text[3] == ("  reference for effect_weight: analytic, exact enumeration of 1 loci under HWE, "
                       "from sample effect-allele frequencies (mean 0.5, sd 0.3536)")
    # the match log: the documented columns, then the run's annotations; the unknown second allele shown as '?'
    assert list(res.match_log.columns) == [
        "row", "rsID", "chr_name", "chr_position", "effect_allele", "other_allele", "matched_by", "variant_index",
        "genotype_id", "genotype_alleles", "orientation", "effect_is_a1", "status", "reason", "effect_weight",
        "sample_effect_freq", "n_imputed", "imputation"]
    assert log["genotype_alleles"].tolist() == ["A/?", "A/G", ""]
    assert log["matched_by"].tolist() == ["rsID", "rsID", ""] and log["variant_index"].tolist() == [0, 1, -1]
    # a frequency for rsA only (0.3) and rsB's G from the sample (1 - 3/8): mean 2 x 0.3 x 0.5 + 2 x 0.625 = 1.55,
    # variance 0.25 x 2 x 0.3 x 0.7 + 2 x 0.625 x 0.375 = 0.57375
    s = _write(tmp_path / "f.tsv", "rsID\teffect_allele\tother_allele\teffect_weight\tallelefrequency_effect\n"
               "rsA\tG\tA\t0.5\t0.3\nrsB\tG\tA\t1\t\n")
    res = pg.score_genotypes(geno, pg.read_scoring_file(s), imputation="none")
    ref = res.references["effect_weight"]
    assert ref.description.endswith(", from scoring-file frequencies, the sample's where absent")
    assert (ref.mean, ref.sd) == (pytest.approx(1.55, rel=1e-14, abs=0), pytest.approx(math.sqrt(0.57375), rel=1e-14, abs=0))
    # both swapped, rsA row by row (unknown second allele), rsB at once (the common case): the same words
    assert res.match_log["orientation"].tolist() == ["swapped", "swapped"]
    assert res.match_log["reason"].tolist() == ["effect allele is the genotypes' second allele"] * 2


def test_palindromic_frequency_without_score_frequency_is_excluded(tmp_path):
    geno = _two_variant_bed(tmp_path)
    s = _write(tmp_path / "p.tsv", "rsID\teffect_allele\tother_allele\teffect_weight\nrsA\tA\tT\t1\nrsB\tA\tG\t1\n")
    log = pg.match_variants(pg.read_scoring_file(s), geno, palindromic="frequency",
                            sample_freq=lambda idx: np.full(idx.size, 0.2)).set_index("rsID")
    assert log.loc["rsA", "status"] == "excluded"
    assert log.loc["rsA", "reason"] == "palindromic and the scoring file gives no effect-allele frequency"
    assert log.loc["rsB", "status"] == "used"


def test_harmonised_positions_used_when_only_they_are_in_the_genotype_build(tmp_path):
    geno = _two_variant_bed(tmp_path)  # build given below: GRCh37
    # no genome_build; chr_position is from another build, hm_pos (GRCh37) is rsB's position 20
    s = _write(tmp_path / "h.tsv", "#HmPOS_build=GRCh37\nchr_name\tchr_position\teffect_allele\tother_allele\t"
               "effect_weight\thm_chr\thm_pos\n1\t999\tG\tA\t1\t1\t20\n")
    log = pg.match_variants(pg.read_scoring_file(s), geno, build="GRCh37")
    assert log["status"].tolist() == ["used"] and log["genotype_id"].tolist() == ["rsB"]
    assert log["matched_by"].tolist() == ["chr:pos"]
    # the author's positions in the genotypes' build (GRCh37), harmonised ones in another (GRCh38): the author's
    s = _write(tmp_path / "a.tsv", "#genome_build=GRCh37\n#HmPOS_build=GRCh38\nchr_name\tchr_position\teffect_allele\t"
               "other_allele\teffect_weight\thm_chr\thm_pos\n1\t20\tG\tA\t1\t1\t999\n")
    log = pg.match_variants(pg.read_scoring_file(s), geno, build="GRCh37")
    assert log[["status", "genotype_id", "matched_by"]].values.tolist() == [["used", "rsB", "chr:pos"]]


def test_scoring_option_refusals(tmp_path):
    geno = _two_variant_bed(tmp_path)
    s = pg.read_scoring_file(_write(tmp_path / "s.tsv", "rsID\teffect_allele\teffect_weight\nrsB\tA\t1\n"))
    with pytest.raises(RLSEpiError) as e:
        pg.score_genotypes(geno, s, imputation="median")
    assert str(e.value) == f"imputation must be one of {', '.join(pg.IMPUTATION_TEXT)}, got 'median'"
    with pytest.raises(RLSEpiError) as e:
        pg.score_genotypes(geno, s, palindromic="guess")
    assert str(e.value) == "palindromic must be exclude, keep or frequency, got 'guess'"
    with pytest.raises(RLSEpiError) as e:  # a misspelt 'skip' used to act as 'resolve' without a word
        pg.score_genotypes(geno, s, duplicates="skipp")
    assert str(e.value) == "duplicates must be resolve or skip, got 'skipp'"
    with pytest.raises(RLSEpiError) as e:
        pg.score_genotypes(geno, s, reference={"other": pg.empirical_reference(np.array([0.0, 1.0]))},
                           imputation="none")
    assert str(e.value) == "no reference distribution for weight 'effect_weight'"
    with pytest.raises(DataValidationError) as e:
        pg.score_genotypes(geno, s, freq={("rsA", "A"): 0.5})
    assert str(e.value) == ("the frequency file has no frequency for 1 scored variants (e.g. rsB allele A); make it "
                            "from the same genotypes with 'plink2 --freq'")


def test_analytic_and_empirical_reference_by_hand():
    # one locus, weights 0, w, 2w at p = 0.5: P = 1/4, 1/2, 1/4; mean w, sd w / sqrt(2)
    ref = pg.analytic_reference(np.array([0.0, 0.4, 0.8]), np.array([0.5]))
    f = ref.to_frame()
    np.testing.assert_allclose(f["SUM"], [0.0, 0.4, 0.8])
    np.testing.assert_allclose(f["probability"], [0.25, 0.5, 0.25])
    assert ref.summary() == f"{ref.description}: mean 0.4, sd {0.4 / math.sqrt(2):.6g}"
    with pytest.raises(DataValidationError) as e:
        pg.analytic_reference(np.array([0.0, 1.0, 2.0]), np.array([1.5]))
    assert str(e.value) == "effect-allele frequencies for the analytic reference must lie in [0, 1]"
    with pytest.raises(DataValidationError) as e:
        pg.empirical_reference(np.array([1.0, np.nan]))
    assert str(e.value) == "the reference cohort has fewer than 2 people with a score"
    # a monomorphic locus (p = 0: always 0 copies, contributes 0) beside one at p = 0.5 with weight 0.5:
    # sums 0, 0.5, 1 with 1/4, 1/2, 1/4; mean 0.5, variance 2 x 0.25 x 0.5^2 = 0.125
    ref = pg.analytic_reference(np.array([[0.0, 1.0, 2.0], [0.0, 0.5, 1.0]]), np.array([0.0, 0.5]))
    assert (ref.kind, ref.description) == ("analytic-exact", "analytic, exact enumeration of 2 loci under HWE")
    np.testing.assert_allclose(ref.to_frame().to_numpy(), [[0.0, 0.25], [0.5, 0.5], [1.0, 0.25]], rtol=1e-15, atol=0)
    assert (ref.mean, ref.sd) == (pytest.approx(0.5, rel=1e-15, abs=0), pytest.approx(math.sqrt(0.125), rel=1e-15, abs=0))
    # max_states: 2 loci of 3 distinct values each make 3 x 3 = 9 sums: enumerated up to max_states = 9,
    # the normal approximation (same mean 1 + 10 = 11 and variance 0.5 x 1 + 0.5 x 100 = 50.5) below
    two = np.array([[0.0, 1.0, 2.0], [0.0, 10.0, 20.0]])
    exact = pg.analytic_reference(two, np.array([0.5, 0.5]), max_states=9)
    assert exact.kind == "analytic-exact" and exact.values.tolist() == [0, 1, 2, 10, 11, 12, 20, 21, 22]
    approx = pg.analytic_reference(two, np.array([0.5, 0.5]), max_states=8)
    assert (approx.kind, approx.description) == ("analytic-normal", "analytic, normal approximation under HWE")
    assert (approx.mean, approx.sd) == (pytest.approx(11.0, rel=1e-15, abs=0),
                                        pytest.approx(math.sqrt(50.5), rel=1e-15, abs=0))
    assert approx.percentile(np.array([11.0]))[0] == pytest.approx(50.0, rel=1e-15, abs=0)
    # no spread (every reference person has the same sum): z is undefined, the percentile is the middle
    flat = pg.empirical_reference(np.array([1.0, 1.0]))
    assert flat.sd == 0.0
    assert np.isnan(flat.z(np.array([1.0, 2.0]))).all()
    np.testing.assert_array_equal(flat.percentile(np.array([0.5, 1.0, 2.0])), [0.0, 50.0, 100.0])


def test_weight_labels():
    assert [pg._label(w) for w in ("effect_weight", "effect_weight_PGS1", "weight_b", "weight_")] == [
        "effect_weight", "PGS1", "b", "weight_"]


@pytest.mark.parametrize("imputation,s2", [("mean-score", 2.0), ("none", 1.0)])
def test_imputation_by_hand_on_every_scoring_path(pfile, tmp_path, imputation, s2):
    # ALT copies: rs1 (C) = 0, 1, 2; rs2 (T) = 1, missing, 2. Weights 1 and 2, score frequency of T 0.25.
    # SUM: S1 = 0 + 2 = 2; S3 = 2 + 4 = 6; S2 = 1 + 2 x (2 x 0.25) = 2 (mean-score) or 1 + 0 = 1 (none)
    s = pg.read_scoring_file(_write(tmp_path / "w.tsv", "rsID\teffect_allele\tother_allele\teffect_weight\t"
                                    "allelefrequency_effect\nrs1\tC\tA\t1\t0.1\nrs2\tT\tG\t2\t0.25\n"))
    pgen = gt.pgen_genotypes(pfile)
    vcf = gt.vcf_genotypes(pfile.with_name("t.vcf"))
    as_ints = gt.Genotypes(samples=pgen.samples, variants=pgen.variants, read=pgen.read, founders=pgen.founders,
                           kind="pgen", read_rows=lambda idx, a2: pgen.read_rows(idx, a2).astype(np.int16))
    for g in (pgen, vcf, as_ints):  # compiled variant-major kernel, numpy path, non-float rows
        res = pg.score_genotypes(g, s, imputation=imputation, min_overlap=0)
        np.testing.assert_allclose(res.scores["SUM"], [2.0, s2, 6.0], rtol=1e-12, err_msg=g.kind)


def test_combined_file_with_a_reference_per_accession():
    # PGS000002 gets an explicit reference; PGS000001 falls back to the analytic one (it used to inherit the
    # reference of the accession scored before it). SUMs as plink2's.
    score = pg.read_scoring_file(REAL / "combined.txt.gz")
    emp = pg.empirical_reference(np.array([0.0, 1.0, 2.0]))
    res = pg.score_genotypes(pg.read_genotypes(REAL / "combined37.vcf"), score, palindromic="keep",
                             reference={"PGS000002": emp})
    assert res.references["PGS000002:effect_weight"] is emp
    assert res.references["PGS000001:effect_weight"].kind.startswith("analytic")
    for acc in ("PGS000001", "PGS000002"):
        ref = pd.read_csv(REAL / f"combined_{acc}.sscore", sep="\t")
        np.testing.assert_allclose(res.scores[f"{acc}_SUM"], ref["SCORE1_SUM"], rtol=2e-5, atol=1e-5)
    # z against the empirical reference: (SUM - 1) / 1 (mean 1, sd 1 of 0, 1, 2)
    np.testing.assert_allclose(res.scores["PGS000002_z"], res.scores["PGS000002_SUM"] - 1.0, rtol=1e-12)


def test_read_afreq_values_and_refusals(tmp_path):
    ok = _write(tmp_path / "ok.afreq", "#CHROM\tID\tREF\tALT\tALT_FREQS\tOBS_CT\n1\tr1\tA\tC,G\t0.25,0.5\t8\n")
    # REF = 1 - 0.25 - 0.5 = 0.25 by hand
    assert pg.read_afreq(ok) == {("r1", "C"): 0.25, ("r1", "G"): 0.5, ("r1", "A"): 0.25}
    cases = {
        "cols": ("#CHROM\tID\tREF\tALT\n1\tr1\tA\tC\n",
                 "'{p}' is not a plink2 .afreq file (no ALT_FREQS column); make one with 'plink2 --freq'"),
        "text": ("ID\tREF\tALT\tALT_FREQS\nr1\tA\tC\thalf\n", "'{p}' row 1 (r1) has ALT_FREQS 'half', not numbers"),
        "range": ("ID\tREF\tALT\tALT_FREQS\nr1\tA\tC\t1.5\n", "'{p}' row 1 (r1) has ALT_FREQS '1.5' for ALT 'C'"),
        "count": ("ID\tREF\tALT\tALT_FREQS\nr1\tA\tC,G\t0.5\n", "'{p}' row 1 (r1) has ALT_FREQS '0.5' for ALT 'C,G'"),
    }
    for name, (text, message) in cases.items():
        p = _write(tmp_path / f"{name}.afreq", text)
        with pytest.raises(DataValidationError) as e:
            pg.read_afreq(p)
        assert str(e.value) == message.format(p=p), name
    with pytest.raises(DataValidationError, match=r"^cannot read frequency file '.*absent\.afreq': "):
        pg.read_afreq(tmp_path / "absent.afreq")


def test_bcf_without_gt_or_ds_and_ds_shorter_than_alt_refused(tmp_path):
    from cyvcf2 import VCF, Writer

    src = _write(tmp_path / "ad.vcf", "##fileformat=VCFv4.2\n##contig=<ID=1>\n"
                 "##FORMAT=<ID=AD,Number=R,Type=Integer,Description=\"depth\">\n"
                 "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n1\t5\trs5\tA\tG\t.\t.\t.\tAD\t3,4\n")
    template = VCF(str(src))
    bcf = tmp_path / "ad.bcf"
    w = Writer(str(bcf), template, mode="wb")
    for rec in template:
        w.write_record(rec)
    w.close()
    with pytest.raises(DataValidationError) as e:
        gt.vcf_genotypes(bcf)
    assert str(e.value) == (f"VCF '{bcf}' record 1:5 (rs5) has neither GT nor DS in FORMAT (AD); rlsepi scores hard "
                            "calls (GT) or dosages (DS)")
    # one DS value (Number=1) at a site with two ALT alleles: which ALT it is for cannot be told
    v = _write(tmp_path / "ds1.vcf", "##fileformat=VCFv4.2\n##contig=<ID=1>\n"
               "##FORMAT=<ID=DS,Number=1,Type=Float,Description=\"dosage\">\n"
               "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n1\t5\trs5\tA\tG,T\t.\t.\t.\tDS\t0.5\n")
    with pytest.raises(DataValidationError) as e:
        gt.vcf_genotypes(v).read(np.array([0]))
    assert str(e.value) == f"VCF '{v}' record 1:5 (rs5) has 1 DS values per sample for 2 ALT alleles"


def test_unknown_genotype_format_refused(tmp_path):
    p = _write(tmp_path / "geno.dat", "x\n")
    with pytest.raises(DataValidationError) as e:
        gt.read_genotypes(p)
    assert str(e.value) == (f"cannot tell the format of '{p}'; rlsepi reads cohorts (.parquet/.csv), PLINK 1 (.bed), "
                            f"PLINK 2 (.pgen), BGEN 1.2 (.bgen) and VCF/BCF; {gt._CONVERT}")
