"""The remaining gaps of issue 10: ``--sample`` for BGEN, an empirical ``--reference`` for combined
(multi-accession) scoring files, and a genome build mismatch reported as its own error.

Known answers: plink2's ``.sscore`` files in ``tests/reference/plink2/real/`` (made by
``make_reference.sh`` there); the reference mean and SD are computed here from plink2's SUMs.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rlsepi import polygenic as pg
from rlsepi.cli import main
from rlsepi.errors import DataValidationError

REAL = Path(__file__).parent / "reference" / "plink2" / "real"


def _one_error_line(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("rlsepi: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _plain_score(tmp_path: Path) -> Path:
    t = pd.read_csv(REAL / "multi_alt.tsv", sep="\t").rename(columns={"ID": "rsID", "A1": "effect_allele",
                                                                      "W": "effect_weight"})
    t.to_csv(tmp_path / "s.tsv", sep="\t", index=False)
    return tmp_path / "s.tsv"


def test_bgen_sample_file_elsewhere(tmp_path, capsys):
    # the .bgen alone in its folder; its .sample, elsewhere and with other IDs, given with --sample
    shutil.copy(REAL / "multi2.bgen", tmp_path / "g.bgen")
    elsewhere = tmp_path / "meta"
    elsewhere.mkdir()
    lines = (REAL / "multi2.sample").read_text().splitlines()
    renamed = lines[:2] + [" ".join(f"x{w}" if k < 2 else w for k, w in enumerate(x.split())) for x in lines[2:]]
    (elsewhere / "people.sample").write_text("\n".join(renamed) + "\n")
    score = _plain_score(tmp_path)
    args = ["prs", str(tmp_path / "g.bgen"), "--score", str(score), "--palindromic", "keep", "--min-overlap", "0",
            "--quiet"]
    assert main([*args, "--out", str(tmp_path / "o.tsv"), "--sample", str(elsewhere / "people.sample")]) == 0
    ours = pd.read_csv(tmp_path / "o.tsv", sep="\t", comment="#")
    theirs = pd.read_csv(REAL / "multi2_bgen_alt.sscore", sep="\t")
    assert ours["IID"].astype(str).tolist() == [f"x{i}" for i in theirs["#IID"].astype(str)]
    np.testing.assert_allclose(ours["SUM"], theirs["SCORE1_SUM"], rtol=2e-5, atol=1e-5)
    np.testing.assert_array_equal(ours["ALLELE_CT"], theirs["ALLELE_CT"])
    # the same through the Dask path's client-side code (no cluster: blocks scored here)
    from rlsepi import distributed

    res = distributed.score_file(tmp_path / "g.bgen", pg.read_scoring_file(score), client=None, palindromic="keep",
                                 min_overlap=0, sample=elsewhere / "people.sample")
    np.testing.assert_allclose(res.scores["SUM"], theirs["SCORE1_SUM"], rtol=2e-5, atol=1e-5)
    # refused: a missing sample file, and --sample with genotypes that are not BGEN
    assert main([*args, "--out", str(tmp_path / "o2.tsv"), "--sample", str(tmp_path / "none.sample")]) == 2
    assert f"sample file '{tmp_path / 'none.sample'}' does not exist" in _one_error_line(capsys)
    assert main(["prs", str(REAL / "multi2.pgen"), "--score", str(score), "--out", str(tmp_path / "o3.tsv"),
                 "--sample", str(elsewhere / "people.sample"), "--quiet"]) == 2
    assert "only read with BGEN genotypes" in _one_error_line(capsys)
    assert not (tmp_path / "o2.tsv").exists() and not (tmp_path / "o3.tsv").exists()


def test_combined_file_with_an_empirical_reference_file(tmp_path):
    # target and reference: the same 300 people, so each accession's z is (SUM - mean) / sd of its own SUMs,
    # with mean and sd from plink2's SUMs of that accession (sd with n - 1)
    score = pg.read_scoring_file(REAL / "combined.txt.gz")
    res = pg.score_file(REAL / "combined37.vcf", score, reference_file=REAL / "combined37.pgen", palindromic="keep")
    for acc in ("PGS000001", "PGS000002"):
        theirs = pd.read_csv(REAL / f"combined_{acc}.sscore", sep="\t")["SCORE1_SUM"].to_numpy()
        ref = res.references[f"{acc}:effect_weight"]
        assert ref.kind == "empirical"
        np.testing.assert_allclose(ref.mean, theirs.mean(), rtol=2e-5, atol=1e-5)
        np.testing.assert_allclose(ref.sd, theirs.std(ddof=1), rtol=2e-5, atol=1e-5)
        np.testing.assert_allclose(res.scores[f"{acc}_z"], (theirs - theirs.mean()) / theirs.std(ddof=1), atol=1e-4)
    # the Dask path's client-side code gives the same references
    from rlsepi import distributed

    d = distributed.score_file(REAL / "combined37.vcf", score, client=None, reference_file=REAL / "combined37.pgen",
                               palindromic="keep")
    for acc in ("PGS000001", "PGS000002"):
        np.testing.assert_allclose(d.scores[f"{acc}_percentile"], res.scores[f"{acc}_percentile"], rtol=1e-12)


def test_combined_file_reference_on_the_command_line(tmp_path, capsys):
    out = tmp_path / "o.tsv"
    assert main(["prs", str(REAL / "combined37.vcf"), "--score", str(REAL / "combined.txt.gz"), "--reference",
                 str(REAL / "combined37.pgen"), "--palindromic", "keep", "--out", str(out), "--quiet"]) == 0
    head = [x for x in out.read_text().splitlines() if x.startswith("#")]
    assert sum("reference[PGS00000" in x and "empirical, 300 people" in x for x in head) == 2


def _mismatched_score(tmp_path: Path, with_rsid: int) -> Path:
    """PGS004255's rows (pgs38.vcf is GRCh38 and names its variants chr:pos:ref:alt) declared as GRCh37:
    the first ``with_rsid`` rows carry the genotypes' IDs, the others only their positions."""
    t = pd.read_csv(REAL / "pgs004255_dom.tsv", sep="\t")
    parts = t["ID"].str.split(":", expand=True)
    s = pd.DataFrame({"rsID": np.where(np.arange(len(t)) < with_rsid, t["ID"], ""), "chr_name": parts[0],
                      "chr_position": parts[1], "effect_allele": t["A1"], "effect_weight": t["W"]})
    p = tmp_path / f"s{with_rsid}.tsv"
    p.write_text("#genome_build=GRCh37\n" + s.to_csv(sep="\t", index=False))
    return p


def test_build_mismatch_is_its_own_error(tmp_path, capsys):
    g = pg.read_genotypes(REAL / "pgs38.vcf")
    assert g.build == "GRCh38"
    score = pg.read_scoring_file(_mismatched_score(tmp_path, 10))
    with pytest.raises(DataValidationError) as e:
        pg.score_genotypes(g, score, palindromic="keep")
    msg = str(e.value)
    assert msg.startswith("genome build mismatch: the scoring file's positions are GRCh37 but the genotypes' are "
                          "GRCh38, so 20 of 30 scoring-file rows could not be matched by position and only 10 "
                          "matched by ID"), msg
    assert "harmonised to GRCh38" in msg and "only 10 of 30 scoring-file variants matched" not in msg
    # enough of the score matched by ID: scored, with a warning naming the rows left out
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        res = pg.score_genotypes(g, score, palindromic="keep", min_overlap=0.1)
    assert any("20 scoring-file rows without a matching ID were not matched by position: score build GRCh37 != "
               "genotype build GRCh38" in str(x.message) for x in w)
    assert int((res.match_log["status"] == "used").sum()) == 10
    # on the command line: one line, exit 2
    assert main(["prs", str(REAL / "pgs38.vcf"), "--score", str(_mismatched_score(tmp_path, 10)), "--out",
                 str(tmp_path / "o.tsv"), "--palindromic", "keep", "--quiet"]) == 2
    assert _one_error_line(capsys).startswith("rlsepi: error: genome build mismatch: ")
    # the genotypes' build unknown and the score in two builds: not called a mismatch; the error asks for --build
    bed = tmp_path / "g"
    pg.write_bed(bed, np.array([[0, 1], [2, 1]]), pd.DataFrame({"chrom": ["1", "1"], "id": ["a", "b"],
                                                                "pos": [10, 20], "a1": ["A", "C"], "a2": ["G", "T"]}),
                 pd.DataFrame({"IID": ["p1", "p2"]}))
    two = tmp_path / "two.tsv"
    two.write_text("#genome_build=GRCh37\n#HmPOS_build=GRCh38\nchr_name\tchr_position\teffect_allele\teffect_weight\t"
                   "hm_chr\thm_pos\n1\t10\tA\t0.5\t1\t15\n1\t20\tC\t0.5\t1\t25\n")
    with pytest.raises(DataValidationError, match=r"^only 0 of 2 .*genotypes' build is unknown; give --build"):
        pg.score_genotypes(pg.read_genotypes(f"{bed}.bed"), pg.read_scoring_file(two))


def test_build_mismatch_warning_once_with_a_reference(tmp_path, capsys):
    # the reference (pgs38.pgen, GRCh38 in its .pvar header) and the target lose the same 20 rows: one warning, not two
    score = _mismatched_score(tmp_path, 10)
    assert main(["prs", str(REAL / "pgs38.vcf"), "--score", str(score), "--reference", str(REAL / "pgs38.pgen"),
                 "--palindromic", "keep", "--min-overlap", "0.1", "--out", str(tmp_path / "o.tsv"), "--quiet"]) == 0
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("rlsepi: warning:")]
    assert lines == [("rlsepi: warning: 20 scoring-file rows without a matching ID were not matched by position: "
                      "score build GRCh37 != genotype build GRCh38")], lines
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        pg.score_file(REAL / "pgs38.vcf", pg.read_scoring_file(score), reference_file=REAL / "pgs38.pgen",
                      palindromic="keep", min_overlap=0.1)
    assert sum("not matched by position" in str(x.message) for x in w) == 1


def test_reference_only_warning_names_the_reference(tmp_path):
    # a warning only the reference raised says so; one both raised is given once, unprefixed; both before an error
    score = pg.read_scoring_file(REAL / "PGS004255_hmPOS_GRCh38.txt.gz")
    res = pg.score_genotypes(pg.read_genotypes(REAL / "pgs38.pgen"), score, palindromic="keep")

    def scorer(texts: list[str], fail: bool = False):
        def run(kw):
            for t in texts:
                warnings.warn(t, stacklevel=2)
            if fail:
                raise DataValidationError("stop")
            return res
        return run

    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        pg.score_with_empirical_reference(score, "ref.bed", {}, score_reference=scorer(["a", "b"]),
                                          score_target=scorer(["b", "c"]))
    assert [str(x.message) for x in w] == ["reference 'ref.bed': a", "b", "c"]
    with warnings.catch_warnings(record=True) as w, pytest.raises(DataValidationError, match="stop"):
        warnings.simplefilter("always")
        pg.score_with_empirical_reference(score, "ref.bed", {}, score_reference=scorer(["a"]),
                                          score_target=scorer(["a", "c"], fail=True))
    assert [str(x.message) for x in w] == ["a", "c"]
