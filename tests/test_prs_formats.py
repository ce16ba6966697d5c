"""rlsepi prs against plink2 on real and made files in every genotype format (issue 10).

Known answers: tests/reference/plink2/real/*.sscore, made by make_reference.sh there from the
inputs of make_inputs.py (real public files: cyvcf2's exome VCF, PGS Catalog files from
pygscatalog's test data; licences in LICENSES.md). plink2 prints 6 significant digits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rlsepi import polygenic as pg
from rlsepi.errors import DataValidationError

REF = Path(__file__).parent / "reference" / "plink2" / "real"


def sscore(name: str) -> pd.DataFrame:
    return pd.read_csv(REF / f"{name}.sscore", sep="\t")


def plain(name: str, tmp_path: Path) -> pg.ScoringFile:
    """A plink2 --score file (ID, A1, W) as a scoring file."""
    return pg.read_scoring_file(REF / name, weights=["W"])


def close(ours: np.ndarray, theirs: np.ndarray, rel: float = 2e-5) -> None:
    np.testing.assert_allclose(np.asarray(ours, float), np.asarray(theirs, float), rtol=rel, atol=1e-5)


def check(res: pg.PRSResult, ref: pd.DataFrame, *, prefix: str = "") -> None:
    s = res.scores
    assert s.iloc[:, 0].astype(str).tolist() == ref["#IID"].astype(str).tolist()
    close(s[f"{prefix}SUM"], ref["SCORE1_SUM"])
    close(s[f"{prefix}AVG"], ref["SCORE1_AVG"])
    np.testing.assert_array_equal(s[f"{prefix}ALLELE_CT"], ref["ALLELE_CT"])
    np.testing.assert_array_equal(s[f"{prefix}DENOM"], ref["DENOM"])
    close(s[f"{prefix}NAMED_ALLELE_DOSAGE_SUM"], ref["NAMED_ALLELE_DOSAGE_SUM"])


@pytest.mark.parametrize("geno", ["multi.vcf", "multi.pgen", "multi"])
@pytest.mark.parametrize("which", ["ref", "alt"])
def test_multiallelic_effect_allele_counted_itself(geno, which, tmp_path):
    # REF as the effect allele at a tri-allelic site: plink2 counts REF copies, not 2 - one ALT
    res = pg.score_genotypes(pg.read_genotypes(REF / geno), plain(f"multi_{which}.tsv", tmp_path),
                             palindromic="keep", min_overlap=0)
    check(res, sscore(f"multi_{which}"))


def test_no_call_variant_imputed_as_plink2_and_logged(tmp_path):
    res = pg.score_genotypes(pg.read_genotypes(REF / "multi.vcf"), plain("multi_ref.tsv", tmp_path),
                             palindromic="keep", min_overlap=0)
    row = res.match_log[res.match_log["rsID"] == "rs905"].iloc[0]
    assert "no calls" in row["reason"] and row["n_imputed"] == 60
    res = pg.score_genotypes(pg.read_genotypes(REF / "multi.vcf"), plain("multi_ref.tsv", tmp_path),
                             palindromic="keep", min_overlap=0, imputation="none")
    check(res, sscore("multi_ref_nomi"))


@pytest.mark.parametrize("geno", ["multi_bcf.bcf", "multi_bgz.vcf.gz"])
def test_bcf_and_bgzipped_vcf_same_as_plink2(geno, tmp_path):
    # written by plink2 --export bcf / vcf bgz from the same genotypes
    res = pg.score_genotypes(pg.read_genotypes(REF / geno), plain("multi_ref.tsv", tmp_path),
                             palindromic="keep", min_overlap=0)
    check(res, sscore("multi_ref"))


@pytest.mark.parametrize("geno", ["multi2.bgen", "multi2"])
def test_bgen_and_biallelic_pgen_same_as_plink2(geno, tmp_path):
    g = pg.read_genotypes(REF / geno if geno.endswith(".bgen") else REF / "multi2.pgen")
    res = pg.score_genotypes(g, plain("multi_alt.tsv", tmp_path), palindromic="keep", min_overlap=0)
    ref = sscore("multi2_bgen_alt" if geno.endswith(".bgen") else "multi2_alt")
    check(res, ref)


def test_prefix_with_several_filesets_is_refused():
    with pytest.raises(DataValidationError, match="several filesets"):
        pg.read_genotypes(REF / "multi2")


def test_dosage_only_pgs_catalog_file():
    # PGS004255 has dosage_0/1/2_weight and no effect_weight; harmonised GRCh38 positions used because the
    # VCF header says GRCh38. plink2: SUM = sum_j d0_j + dominant (d1 - d0) + recessive (d2 - d1) scores
    score = pg.read_scoring_file(REF / "PGS004255_hmPOS_GRCh38.txt.gz")
    g = pg.read_genotypes(REF / "pgs38.vcf")
    assert g.build == "GRCh38"
    res = pg.score_genotypes(g, score, palindromic="keep")
    d0 = score.variants["dosage_0_weight"].sum()
    dom, rec = sscore("pgs004255_dom"), sscore("pgs004255_rec")
    close(res.scores["SUM"], d0 + dom["SCORE1_SUM"] + rec["SCORE1_SUM"])
    assert (res.match_log["status"] == "used").all()


def test_combined_file_scores_each_accession():
    score = pg.read_scoring_file(REF / "combined.txt.gz")
    res = pg.score_genotypes(pg.read_genotypes(REF / "combined37.vcf"), score, palindromic="keep")
    for acc in ("PGS000001", "PGS000002"):
        check(res, sscore(f"combined_{acc}"), prefix=f"{acc}_")
    assert set(res.match_log["accession"]) == {"PGS000001", "PGS000002"}


def test_real_exome_vcf_with_indels_and_half_calls():
    score = pg.read_scoring_file(REF / "real_score.tsv")
    res = pg.score_genotypes(pg.read_genotypes(REF / "cyvcf2_test.vcf.gz"), score, palindromic="keep")
    check(res, sscore("real"))


def test_build_mismatch_refused(tmp_path):
    # a GRCh38 genotype file and a score with GRCh37 positions only (no harmonised columns, no rsIDs)
    t = pd.read_csv(REF / "real_score.tsv", sep="\t").drop(columns="ID")
    f = tmp_path / "s.txt"
    f.write_text("#genome_build=GRCh37\n" + t.to_csv(sep="\t", index=False))
    with pytest.raises(DataValidationError, match="GRCh37.*GRCh38|GRCh38.*GRCh37"):
        pg.score_genotypes(pg.read_genotypes(REF / "pgs38.vcf"), pg.read_scoring_file(f))


def test_small_sample_mean_imputation_refused(tmp_path):
    lines = (REF / "multi.vcf").read_text().splitlines()
    keep = [";".join([])]  # noqa: F841 - the first 9 columns and 20 people
    cut = ["\t".join(x.split("\t")[:29]) for x in lines]
    (tmp_path / "small.vcf").write_text("\n".join(cut) + "\n")
    g = pg.read_genotypes(tmp_path / "small.vcf")
    with pytest.raises(DataValidationError, match="only 20 founders"):
        pg.score_genotypes(g, plain("multi_ref.tsv", tmp_path), palindromic="keep", min_overlap=0)
    res = pg.score_genotypes(g, plain("multi_ref.tsv", tmp_path), palindromic="keep", min_overlap=0,
                             imputation="none")
    assert res.n_samples == 20


@pytest.mark.parametrize("geno", ["pgs38.vcf", "pgs38.pgen"])  # decoded floats; variant-major rows (compiled kernel)
@pytest.mark.parametrize("model", ["dominant", "recessive"])
def test_dominant_recessive_rows_match_plink2_modifiers(model, geno, tmp_path):
    # the rows of pgs004255_<model>.tsv flagged is_<model>; plink2 scored them with its '<model>' modifier,
    # whose NAMED_ALLELE_DOSAGE_SUM is the transformed dosage
    t = pd.read_csv(REF / f"pgs004255_{model[:3]}.tsv", sep="\t")
    t = t.rename(columns={"ID": "rsID", "A1": "effect_allele", "W": "effect_weight"}).assign(**{f"is_{model}": "True"})
    t.to_csv(tmp_path / "s.tsv", sep="\t", index=False)
    res = pg.score_genotypes(pg.read_genotypes(REF / geno), pg.read_scoring_file(tmp_path / "s.tsv"),
                             palindromic="keep")
    check(res, sscore(f"pgs004255_{model[:3]}"))


def test_small_sample_with_external_frequencies_matches_plink2_read_freq(tmp_path):
    g = pg.read_genotypes(REF / "small20.pgen")
    with pytest.raises(DataValidationError, match="only 20 founders"):
        pg.score_genotypes(g, plain("multi_ref.tsv", tmp_path), palindromic="keep", min_overlap=0)
    res = pg.score_genotypes(g, plain("multi_ref.tsv", tmp_path), palindromic="keep", min_overlap=0,
                             freq=pg.read_afreq(REF / "multi.afreq"))
    check(res, sscore("small20_ref"))
