"""Bad genotype and scoring files: one-line error, exit 2, never a traceback (issue 10 part 1, issue 9 part 5)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlsepi import polygenic as pg
from rlsepi.cli import main
from rlsepi.errors import DataValidationError

HEAD = ('##fileformat=VCFv4.2\n##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ta\tb\n")
SCORE = "rsID\teffect_allele\teffect_weight\nrs1\tC\t1\n"


def _run(tmp_path: Path, vcf: str | bytes, score: str | bytes = SCORE, *extra: str) -> int:
    gv = tmp_path / ("g.vcf.gz" if isinstance(vcf, bytes) and vcf[:2] == b"\x1f\x8b" else "g.vcf")
    gv.write_bytes(vcf if isinstance(vcf, bytes) else vcf.encode())
    sf = tmp_path / "s.tsv"
    sf.write_bytes(score if isinstance(score, bytes) else score.encode())
    return main(["prs", str(gv), "--score", str(sf), "--out", str(tmp_path / "o.tsv"), "--force", "--quiet",
                 "--min-overlap", "0", *extra])


def _one_line_error(capsys: pytest.CaptureFixture, *words: str) -> str:
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("rlsepi: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(("record", "words"), [
    ("1\t100\trs1\tA\tC\t.\t.\t.\tGT\tX/Y\t0/1", ("rs1",)),
    ("1\t100\trs1\tA\tC\t.\t.\t.\tGT\t0/3\t0/1", ("'0/3'", "single ALT")),
    ("1\t100\trs1\tA\tC\t.\t.\t.\tGT\t0/1", ("1 sample columns", "names 2")),
    ("1\tabc\trs1\tA\tC\t.\t.\t.\tGT\t0/1\t0/0", ("VCF",)),
])
def test_bad_vcf_records(tmp_path, capsys, record, words):
    assert _run(tmp_path, HEAD + record + "\n") == 2
    _one_line_error(capsys, *words)


def test_duplicate_samples_truncated_and_binary_vcf(tmp_path, capsys):
    assert _run(tmp_path, HEAD.replace("\ta\tb\n", "\ta\ta\n") + "1\t100\trs1\tA\tC\t.\t.\t.\tGT\t0/1\t0/0\n") == 2
    _one_line_error(capsys, "duplicate sample ID")
    full = gzip.compress((HEAD + "1\t100\trs1\tA\tC\t.\t.\t.\tGT\t0/1\t0/0\n" * 50).encode())
    assert _run(tmp_path, full[: len(full) // 2]) == 2
    _one_line_error(capsys)
    assert _run(tmp_path, bytes(range(256))) == 2
    _one_line_error(capsys)


GOOD_VCF = HEAD + "1\t100\trs1\tA\tC\t.\t.\t.\tGT\t0/1\t1/1\n"


@pytest.mark.parametrize(("score", "extra", "words"), [
    ("rsID\teffect_allele\teffect_weight\nrs1\tC\tinf\n", (), ("infinite",)),
    ("rsID\teffect_allele\teffect_weight\nrs1\tC\t0\n", (), ("zero",)),
    ("rsID\teffect_allele\teffect_weight\nrs1\tC\t1e308\n", (), ("overflow",)),
    ("rsID\teffect_allele\teffect_weight\n", (), ("no variant rows",)),
    ("rsID\teffect_allele\teffect_weight\nrs1\tC\t1\n", ("--weights", "beta_x"), ("beta_x",)),
])
def test_bad_scoring_files(tmp_path, capsys, score, extra, words):
    assert _run(tmp_path, GOOD_VCF, score, *extra) == 2
    _one_line_error(capsys, *words)


def test_comma_separated_scoring_file_is_read(tmp_path):
    (tmp_path / "s.csv").write_text("rsID,effect_allele,effect_weight\nrs1,C,0.5\n")
    s = pg.read_scoring_file(tmp_path / "s.csv")
    assert s.variants["effect_weight"].tolist() == [0.5]


_FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])


@_FUZZ
@given(st.binary(max_size=400) | st.integers(0, len(GOOD_VCF)).map(lambda k: GOOD_VCF.encode()[:k]))
def test_fuzz_vcf_reader(tmp_path_factory, data):
    p = tmp_path_factory.mktemp("f") / "g.vcf"
    p.write_bytes(data)
    try:
        g = pg.read_genotypes(p)
        g.read([0] * min(1, len(g.variants)), None)
    except DataValidationError as exc:
        assert "\n" not in str(exc)


@_FUZZ
@given(st.binary(max_size=300) | st.integers(0, 60).map(lambda k: SCORE.encode()[:k])
       | st.integers(0, 60).map(lambda k: gzip.compress(SCORE.encode(), mtime=0)[:k]))
def test_fuzz_scoring_file_reader(tmp_path_factory, data):
    p = tmp_path_factory.mktemp("f") / "s.txt"
    p.write_bytes(data)
    try:
        pg.read_scoring_file(p)
    except DataValidationError as exc:
        assert "\n" not in str(exc)


def test_palindromic_frequency_refused_in_small_samples(tmp_path):
    vcf = HEAD + "1\t100\trs1\tA\tT\t.\t.\t.\tGT\t0/1\t1/1\n"
    (tmp_path / "g.vcf").write_text(vcf)
    (tmp_path / "s.tsv").write_text("rsID\teffect_allele\tother_allele\teffect_weight\tallelefrequency_effect\n"
                                    "rs1\tT\tA\t1\t0.2\n")
    with pytest.raises(DataValidationError, match="only 2 founders"):
        pg.score_file(tmp_path / "g.vcf", tmp_path / "s.tsv", palindromic="frequency", min_overlap=0)


def test_duplicate_ids_in_fam_refused(tmp_path):
    import numpy as np
    import pandas as pd

    pg.write_bed(tmp_path / "t", np.array([[0], [1]]), pd.DataFrame({"chrom": ["1"], "id": ["rs1"], "pos": [100],
                                                                       "a1": ["C"], "a2": ["A"]}),
                 pd.DataFrame({"IID": ["x", "x"]}))
    with pytest.raises(DataValidationError, match="duplicate sample ID"):
        pg.read_genotypes(tmp_path / "t.bed")
