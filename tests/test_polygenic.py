"""Tests of rlsepi.polygenic: scoring files, harmonisation, scores against plink2 and hand
calculations, percentiles, the PLINK writer and the ``rlsepi prs`` command."""

from __future__ import annotations

import gzip
import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rlsepi import polygenic as pg
from rlsepi.errors import DataValidationError
from rlsepi.parameters import DEFAULT_LOCI, EXTENDED_LOCI

DATA = Path(pg.__file__).parent / "data"


# --- bundled scoring files ---------------------------------------------------------------


@pytest.mark.parametrize(("which", "loci"), [("default", DEFAULT_LOCI), ("extended", EXTENDED_LOCI)])
def test_bundled_scoring_file_is_generated_from_parameters(which: str, loci: tuple) -> None:
    bundled = (DATA / pg.BUNDLED_SCORES[which]).read_text()
    name = pg.BUNDLED_SCORES[which].removesuffix(".txt")
    assert bundled == pg.scoring_file_text(loci, name=name), (
        "regenerate with rlsepi.polygenic.write_scoring_file(..., force=True)")


def test_bundled_default_has_pgs_catalog_header_and_weights_from_parameters() -> None:
    text = (DATA / pg.BUNDLED_SCORES["default"]).read_text().splitlines()
    assert text[0].startswith("###PGS CATALOG SCORING FILE")
    for line in ("#format_version=2.0", "#trait_reported=Restless legs syndrome", "#trait_efo=EFO_0004270",
                 "#weight_type=log(OR)", "#genome_build=GRCh37", "#variants_number=4"):
        assert line in text
    s = pg.default_score()
    assert s.variants["rsID"].tolist() == [loc.rsid for loc in DEFAULT_LOCI]
    np.testing.assert_array_equal(s.variants["effect_weight"], [math.log(loc.odds_ratio) for loc in DEFAULT_LOCI])
    assert s.variants["effect_allele"].tolist() == [loc.effect_allele for loc in DEFAULT_LOCI]
    # every row of the file carries its locus' source from parameters.py (the file is read as text
    # here: the scoring-file reader keeps only the columns it scores with)
    rows = [line.split("\t") for line in text if not line.startswith("#")]
    header, body = rows[0], rows[1:]
    cited = {r[header.index("rsID")]: r[header.index("citation")] for r in body}
    assert set(cited) == {loc.rsid for loc in DEFAULT_LOCI}
    for loc in DEFAULT_LOCI:
        assert loc.source and loc.source.split(" (")[0] in cited[loc.rsid]


# --- scoring a cohort --------------------------------------------------------------------


def _cohort(rows: list[list[int | None]], loci=DEFAULT_LOCI) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=[loc.rsid for loc in loci], dtype="Int8")
    df.insert(0, "person_id", np.arange(1, len(df) + 1))
    return df


def test_score_cohort_sum_is_dosage_times_log_or() -> None:
    df = _cohort([[0, 0, 0, 0], [2, 1, 0, 1], [1, 2, 2, 0]])
    df.index = [10, 20, 30]
    out = pg.score_cohort(df)
    w = [math.log(loc.odds_ratio) for loc in DEFAULT_LOCI]
    expected = [0.0, 2 * w[0] + w[1] + w[3], w[0] + 2 * w[1] + 2 * w[2]]
    np.testing.assert_allclose(out["SUM"], expected, rtol=0, atol=1e-12)
    assert list(out.index) == [10, 20, 30]
    np.testing.assert_array_equal(out["ALLELE_CT"], [8, 8, 8])
    np.testing.assert_array_equal(out["DENOM"], [8, 8, 8])
    np.testing.assert_allclose(out["AVG"], np.array(expected) / 8)
    np.testing.assert_array_equal(out["NAMED_ALLELE_DOSAGE_SUM"], [0, 4, 5])


def test_score_cohort_on_simulated_cohort() -> None:
    from rlsepi.cohort import simulate

    df = simulate(2000, rng=11)
    out = pg.score_cohort(df)
    g = df[[loc.rsid for loc in DEFAULT_LOCI]].to_numpy(dtype=float)
    np.testing.assert_allclose(out["SUM"], g @ [loc.weight for loc in DEFAULT_LOCI], atol=1e-12)
    # z against the analytic HWE distribution: mean sum 2 p w, variance sum 2 p (1-p) w^2
    mean = sum(2 * loc.eaf * loc.weight for loc in DEFAULT_LOCI)
    sd = math.sqrt(sum(2 * loc.eaf * (1 - loc.eaf) * loc.weight**2 for loc in DEFAULT_LOCI))
    np.testing.assert_allclose(out["z"], (out["SUM"] - mean) / sd, atol=1e-12)
    # 2000 people drawn under HWE: the sample mean of z is near 0 and its SD near 1
    assert abs(out["z"].mean()) < 0.1 and abs(out["z"].std() - 1) < 0.1
    assert out["percentile"].between(0, 100).all()


def test_unknown_rsid_column_in_cohort_is_an_error() -> None:
    df = _cohort([[0, 0, 0, 0]])
    df["rs123"] = 1
    with pytest.raises(DataValidationError, match="rs123"):
        pg.score_cohort(df)


def test_cohort_genotype_out_of_range_is_an_error() -> None:
    df = _cohort([[0, 0, 0, 0], [3, 0, 0, 0]])
    with pytest.raises(DataValidationError, match="rs2300478.*row 2"):
        pg.score_cohort(df)


# --- hand calculations -------------------------------------------------------------------


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_analytic_percentile_two_loci_by_hand(tmp_path: Path) -> None:
    # Two loci with effect-allele frequency 0.5 and weights 1 and 2: S = g1 + 2 g2 with
    # P(g = 0, 1, 2) = 1/4, 1/2, 1/4. In sixteenths, the 9 combinations (g1, g2) -> S: P are
    # (0,0)->0:1 (1,0)->1:2 (2,0)->2:1 (0,1)->2:2 (1,1)->3:4 (2,1)->4:2 (0,2)->4:1 (1,2)->5:2 (2,2)->6:1.
    # Person (1,1), S = 3: P(S<3) = (1+2+1+2)/16 = 6/16, P(S=3) = 4/16 -> 100 (6 + 2)/16 = 50.
    # Person (1,2), S = 5: P(S<5) = 13/16, P(S=5) = 2/16 -> 100 (13 + 1)/16 = 87.5.
    # Person (0,0), S = 0: 100 (0 + 0.5)/16 = 3.125.
    # mean = 2(.5)(1) + 2(.5)(2) = 3; variance = 2(.25)(1) + 2(.25)(4) = 2.5.
    f = _write(tmp_path / "s.tsv", "rsID\teffect_allele\tother_allele\teffect_weight\tallelefrequency_effect\n"
               "rs2300478\tG\tT\t1\t0.5\nrs9357271\tT\tC\t2\t0.5\n")
    df = _cohort([[1, 1], [1, 2], [0, 0]], loci=DEFAULT_LOCI[:2])
    out = pg.score_cohort(df, pg.read_scoring_file(f))
    np.testing.assert_allclose(out["SUM"], [3, 5, 0])
    np.testing.assert_allclose(out["percentile"], [50, 87.5, 3.125], atol=1e-12)
    np.testing.assert_allclose(out["z"], [0, 2 / math.sqrt(2.5), -3 / math.sqrt(2.5)], atol=1e-12)
    assert out.attrs["prs"].references["effect_weight"].kind == "analytic-exact"


def test_default_score_reference_enumerates_81_combinations() -> None:
    ref = pg.default_score()
    res = pg.score_cohort(_cohort([[0, 0, 0, 0]]), ref).attrs["prs"].references["effect_weight"]
    assert res.kind == "analytic-exact"
    assert res.values.size == 81  # 3^4 distinct sums: the four ln(OR) are not commensurate
    assert res.probs.sum() == pytest.approx(1.0)
    # the lowest sum (no effect alleles) has probability prod (1 - p)^2
    assert res.probs[0] == pytest.approx(np.prod([(1 - loc.eaf) ** 2 for loc in DEFAULT_LOCI]))


def test_dominant_recessive_and_dosage_weights_by_hand(tmp_path: Path) -> None:
    # Row 1 additive w=1; row 2 dominant w=2 (contributes 2 if g >= 1); row 3 recessive
    # w=4 (contributes 4 if g == 2); row 4 dosage weights 0.5 / 1.5 / 0.25 for g = 0 / 1 / 2.
    # person A genotypes (2, 1, 1, 0): 2*1 + 2 + 0 + 0.5  = 4.5
    # person B genotypes (0, 2, 2, 1): 0 + 2 + 4 + 1.5    = 7.5
    # person C genotypes (1, 0, 2, 2): 1 + 0 + 4 + 0.25   = 5.25
    f = _write(tmp_path / "s.tsv",
               "rsID\teffect_allele\tother_allele\teffect_weight\tis_dominant\tis_recessive\t"
               "dosage_0_weight\tdosage_1_weight\tdosage_2_weight\n"
               "rs2300478\tG\tT\t1\tFalse\tFalse\t\t\t\n"
               "rs9357271\tT\tC\t2\tTrue\tFalse\t\t\t\n"
               "rs1975197\tA\tG\t4\tFalse\tTrue\t\t\t\n"
               "rs4626664\tA\tG\t0\tFalse\tFalse\t0.5\t1.5\t0.25\n")
    df = _cohort([[2, 1, 1, 0], [0, 2, 2, 1], [1, 0, 2, 2]])
    out = pg.score_cohort(df, pg.read_scoring_file(f), reference=pg.empirical_reference(np.array([0.0, 1.0])))
    np.testing.assert_allclose(out["SUM"], [4.5, 7.5, 5.25], atol=1e-12)
    # the analytic distribution of the dominant row alone with p = 0.5: values 0, 2 with
    # probabilities 1/4, 3/4 -> mean 1.5, variance 4 * 3/16 = 0.75
    ref = pg.analytic_reference(np.array([[0.0, 2.0, 2.0]]), np.array([0.5]))
    assert ref.mean == pytest.approx(1.5) and ref.sd == pytest.approx(math.sqrt(0.75))
    np.testing.assert_allclose(ref.percentile(np.array([0.0, 2.0])), [12.5, 62.5])


# --- agreement with plink2 --score -------------------------------------------------------

PLINK2 = shutil.which("plink2")
REFERENCE = Path(__file__).parent / "reference" / "plink2"
_NON_PALINDROMIC = [("A", "C"), ("A", "G"), ("C", "A"), ("C", "T"), ("G", "A"), ("G", "T"), ("T", "C"), ("T", "G")]


def _need_plink2() -> str:
    if PLINK2 is None:
        if os.environ.get("CI"):
            pytest.fail("plink2 is not on PATH but CI is set: install it (apt-get install plink2)")
        pytest.skip("plink2 is not on PATH")
    return PLINK2


def make_fixture(folder: Path, *, seed: int = 20241122, n: int = 80, missing: float = 0.06,
                 empty_person: bool = True) -> dict:
    """Small PLINK files and two scoring files describing the same score.

    ``rlsepi_score.txt.gz`` (PGS Catalog format, gzipped) has swapped and strand-flipped
    alleles, a palindromic A/T and C/G variant, a variant whose ID is duplicated in the .bim,
    and 5 variants absent from the genotypes; the .bim has 10 variants the score lacks.
    ``plink2_score.tsv`` is the same score harmonised by construction (original strand,
    only the rows that can be scored): what plink2 needs to compute the right answer.
    """
    rng = np.random.default_rng(seed)
    m = 40
    pairs = [_NON_PALINDROMIC[i] for i in rng.integers(0, len(_NON_PALINDROMIC), m)]
    pairs[5], pairs[6] = ("A", "T"), ("G", "C")
    ids = [f"rs{1000 + j}" for j in range(m)]
    ids[39], pairs[39] = ids[38], pairs[38]  # duplicate ID with the same alleles
    variants = pd.DataFrame({"chrom": [str(1 + (3 * j) // m) for j in range(m)], "id": ids,
                             "pos": [1000 * (j + 1) for j in range(m)],
                             "a1": [a for a, _ in pairs], "a2": [b for _, b in pairs]})
    freq = rng.uniform(0.1, 0.9, m)
    g = rng.binomial(2, freq, size=(n, m)).astype(float)
    g[rng.random((n, m)) < missing] = np.nan
    if empty_person:
        g[0, :] = np.nan  # one person with no calls at all
    samples = pd.DataFrame({"IID": [f"p{i}" for i in range(n)]})
    pg.write_bed(folder / "geno", g, variants, samples)

    rows = list(range(30)) + [38]
    truth = []
    for j in rows:
        a1, a2 = pairs[j]
        swap = bool(rng.integers(0, 2))
        e, o = (a2, a1) if swap else (a1, a2)
        truth.append({"rsID": ids[j], "chr_name": variants.chrom[j], "chr_position": variants.pos[j],
                      "effect_allele": e, "other_allele": o})
    for k in range(5):
        truth.append({"rsID": f"rs{9000 + k}", "chr_name": "4", "chr_position": 5000 + k,
                      "effect_allele": "A", "other_allele": "G"})
    truth = pd.DataFrame(truth)
    truth["W1"] = np.round(rng.normal(0, 0.03, len(truth)), 6)
    truth["W2"] = np.round(rng.normal(0, 0.03, len(truth)), 6)
    scorable = ~truth["rsID"].isin([ids[5], ids[6], ids[38]]) & ~truth["rsID"].str.startswith("rs9")
    truth[scorable][["rsID", "effect_allele", "W1", "W2"]].rename(
        columns={"rsID": "ID", "effect_allele": "A1"}).to_csv(folder / "plink2_score.tsv", sep="\t", index=False)
    ours = truth.copy()
    flip = scorable.to_numpy() & (rng.random(len(ours)) < 0.4)
    comp = str.maketrans("ACGT", "TGCA")
    ours.loc[flip, "effect_allele"] = ours.loc[flip, "effect_allele"].str.translate(comp)
    ours.loc[flip, "other_allele"] = ours.loc[flip, "other_allele"].str.translate(comp)
    header = ("###PGS CATALOG SCORING FILE\n#format_version=2.0\n#pgs_name=fixture\n"
              "#trait_reported=Restless legs syndrome\n#weight_type=beta\n#genome_build=GRCh37\n"
              f"#variants_number={len(ours)}\n")
    body = ours.rename(columns={"W1": "effect_weight_W1", "W2": "effect_weight_W2"}).to_csv(sep="\t", index=False)
    (folder / "rlsepi_score.txt.gz").write_bytes(gzip.compress((header + body).encode(), mtime=0))
    return {"prefix": folder / "geno", "n_scorable": int(scorable.sum()), "flipped": int(flip.sum()),
            "swapped": int((truth["effect_allele"] != truth["rsID"].map(dict(zip(ids, variants.a1)))).sum()),
            "genotypes": g}


def _run_plink2(folder: Path, *extra: str, score: str = "plink2_score.tsv", out: str = "plink2") -> pd.DataFrame:
    cmd = [_need_plink2(), "--bfile", "geno", "--score", score, "1", "2", "header-read", "ignore-dup-ids",
           "list-variants", "cols=+scoresums,+denom", *extra, "--score-col-nums", "3-4",
           "--threads", "1", "--memory", "1024", "--out", out]
    subprocess.run(cmd, cwd=folder, check=True, capture_output=True, text=True)
    return _read_sscore(folder / f"{out}.sscore")


def _read_sscore(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t").rename(columns={"#FID": "FID", "#IID": "IID"})


def _assert_agrees(ours: pd.DataFrame, theirs: pd.DataFrame) -> float:
    assert ours["IID"].tolist() == theirs["IID"].tolist()
    worst = 0.0
    for col in ("W1_SUM", "W2_SUM", "W1_AVG", "W2_AVG"):
        a, b = ours[col].to_numpy(float), theirs[col].to_numpy(float)
        assert np.array_equal(np.isnan(a), np.isnan(b)), col
        ok = ~np.isnan(a)
        # plink2 prints 6 significant digits; every |score| here is < 1, so rounding error < 5e-7
        assert np.all(np.abs(b[ok]) < 1)
        diff = float(np.max(np.abs(a[ok] - b[ok])))
        assert diff < 1e-6, (col, diff)
        worst = max(worst, diff)
    for col in ("ALLELE_CT", "DENOM", "NAMED_ALLELE_DOSAGE_SUM"):
        np.testing.assert_array_equal(ours[col].to_numpy(float), theirs[col].to_numpy(float), err_msg=col)
    return worst


@pytest.mark.parametrize("imputation", ["mean-sample", "none"])
def test_agrees_with_plink2_score(tmp_path: Path, imputation: str) -> None:
    _need_plink2()
    fx = make_fixture(tmp_path)
    res = pg.score_file(fx["prefix"], tmp_path / "rlsepi_score.txt.gz", imputation=imputation, min_overlap=0.5)
    theirs = _run_plink2(tmp_path, *(["no-mean-imputation"] if imputation == "none" else []))
    _assert_agrees(res.scores, theirs)
    # the variants plink2 used are exactly those our match log calls 'used'
    used = res.match_log.loc[res.match_log["status"] == "used", "rsID"].tolist()
    assert sorted(used) == sorted((tmp_path / "plink2.sscore.vars").read_text().split())
    assert len(used) == fx["n_scorable"]
    log = res.match_log
    assert (log["orientation"].isin(["flipped", "flipped_swapped"])).sum() == fx["flipped"] > 0
    assert (log["orientation"].isin(["swapped", "flipped_swapped"])).sum() > 0
    assert log.loc[log["rsID"].isin(["rs1005", "rs1006"]), "reason"].str.startswith("palindromic").all()
    assert log.loc[log["rsID"] == "rs1038", "reason"].str.contains("share this ID").all()
    assert (log["reason"] == "not in genotypes").sum() == 5


def test_palindromic_keep_agrees_with_plink2(tmp_path: Path) -> None:
    # With palindromic='keep' the A/T and C/G rows are read with their letters as given,
    # which is what plink2 does with them.
    _need_plink2()
    make_fixture(tmp_path)
    res = pg.score_file(tmp_path / "geno.bed", tmp_path / "rlsepi_score.txt.gz", palindromic="keep", min_overlap=0.5)
    _plink2_score_with(tmp_path, ["rs1005", "rs1006"], "plink2_pal.tsv")
    _assert_agrees(res.scores, _run_plink2(tmp_path, score="plink2_pal.tsv", out="pal"))


def _plink2_score_with(folder: Path, ids: list[str], name: str) -> None:
    """plink2_score.tsv plus the given rows of rlsepi_score.txt.gz, whose letters are not flipped."""
    sc = pd.read_csv(folder / "plink2_score.tsv", sep="\t")
    ours = pg.read_scoring_file(folder / "rlsepi_score.txt.gz").variants
    rows = ours[ours["rsID"].isin(ids)]
    extra = pd.DataFrame({"ID": rows["rsID"], "A1": rows["effect_allele"], "W1": rows["effect_weight_W1"],
                          "W2": rows["effect_weight_W2"]})
    pd.concat([sc, extra]).to_csv(folder / name, sep="\t", index=False)


@pytest.mark.parametrize("modifier", ["dominant", "recessive"])
def test_dominant_recessive_agree_with_plink2(tmp_path: Path, modifier: str) -> None:
    # No missing calls: plink2's dominant/recessive modifiers apply to the whole score.
    _need_plink2()
    make_fixture(tmp_path, missing=0.0, empty_person=False)
    p = tmp_path / "plink2_score.tsv"
    df = pd.read_csv(p, sep="\t")
    ours = pd.DataFrame({"rsID": df["ID"], "effect_allele": df["A1"], "effect_weight_W1": df["W1"],
                         "effect_weight_W2": df["W2"], f"is_{modifier}": True})
    ours.to_csv(tmp_path / "ours.tsv", sep="\t", index=False)
    res = pg.score_file(tmp_path / "geno", tmp_path / "ours.tsv", min_overlap=0.5)
    theirs = _run_plink2(tmp_path, modifier, out=modifier)
    assert np.all(np.abs(theirs[["W1_SUM", "W2_SUM"]].to_numpy()) < 1)  # 6 significant digits -> < 5e-7
    for col in ("W1_SUM", "W2_SUM"):
        np.testing.assert_allclose(res.scores[col], theirs[col], rtol=0, atol=1e-6)


def test_vcf_gt_and_ds_agree_with_plink2(tmp_path: Path) -> None:
    # The fixture's genotypes written as a VCF (GT, and DS with quarter dosages), scored by
    # rlsepi from the VCF and by plink2 from the same VCF.
    _need_plink2()
    fx = make_fixture(tmp_path)
    bim = pd.read_csv(tmp_path / "geno.bim", sep="\t", header=None, names=["c", "id", "cm", "pos", "a1", "a2"])
    g = fx["genotypes"]
    rng = np.random.default_rng(5)
    ds = np.clip(g + rng.choice([-0.25, 0.0, 0.25], size=g.shape), 0, 2)
    lines = ["##fileformat=VCFv4.2", '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
             '##FORMAT=<ID=DS,Number=A,Type=Float,Description="Dosage">',
             "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT"]
                       + [f"p{i}" for i in range(g.shape[0])])]
    gt_of = {0.0: "0/0", 1.0: "0/1", 2.0: "1/1"}
    for j, r in enumerate(bim.itertuples(index=False)):
        if j == 39:
            continue  # no duplicate IDs in the VCF
        cells = [(gt_of[g[i, j]] if np.isfinite(g[i, j]) else "./.") + ":" +
                 (f"{ds[i, j]:g}" if np.isfinite(ds[i, j]) else ".") for i in range(g.shape[0])]
        # REF = a2, ALT = a1, so ALT dosage counts the .bim's A1
        lines.append("\t".join([str(r.c), str(r.pos), r.id, r.a2, r.a1, ".", "PASS", ".", "GT:DS", *cells]))
    (tmp_path / "geno.vcf").write_text("\n".join(lines) + "\n")
    _plink2_score_with(tmp_path, ["rs1038"], "plink2_vcf.tsv")  # rs1038 is not duplicated in the VCF
    for fld, extra in (("GT", []), ("DS", ["dosage=DS"])):
        subprocess.run([_need_plink2(), "--vcf", "geno.vcf", *extra, "--make-pgen", "--out", f"v{fld}",
                        "--threads", "1", "--memory", "1024"], cwd=tmp_path, check=True, capture_output=True)
        subprocess.run([_need_plink2(), "--pfile", f"v{fld}", "--score", "plink2_vcf.tsv", "1", "2", "header-read",
                        "cols=+scoresums,+denom", "--score-col-nums", "3-4", "--threads", "1", "--memory", "1024",
                        "--out", f"v{fld}"], cwd=tmp_path, check=True, capture_output=True)
        theirs = _read_sscore(tmp_path / f"v{fld}.sscore")
        res = pg.score_file(tmp_path / "geno.vcf", tmp_path / "rlsepi_score.txt.gz", vcf_field=fld, min_overlap=0.5)
        _assert_agrees(res.scores, theirs)
        # the same pgen plink2 scored: hard calls are read as such only when its header rules dosages out
        from rlsepi.genotypes import _pgen_hardcalls_only

        assert _pgen_hardcalls_only(tmp_path / f"v{fld}.pgen") is (fld == "GT")
        res = pg.score_file(tmp_path / f"v{fld}.pgen", tmp_path / "rlsepi_score.txt.gz", min_overlap=0.5)
        _assert_agrees(res.scores, theirs)


# --- committed plink2 answers (run without plink2) ---------------------------------------


@pytest.mark.parametrize(("imputation", "stem"), [("mean-sample", "plink2_mean"), ("none", "plink2_nomi")])
def test_committed_plink2_reference(imputation: str, stem: str) -> None:
    # tests/reference/plink2/make_reference.sh holds the exact plink2 commands.
    res = pg.score_file(REFERENCE / "geno", REFERENCE / "rlsepi_score.txt.gz", imputation=imputation,
                        min_overlap=0.5)
    _assert_agrees(res.scores, _read_sscore(REFERENCE / f"{stem}.sscore"))
    used = res.match_log.loc[res.match_log["status"] == "used", "rsID"]
    assert sorted(used) == sorted((REFERENCE / f"{stem}.sscore.vars").read_text().split())


def test_fixture_generator_reproduces_committed_inputs(tmp_path: Path) -> None:
    make_fixture(tmp_path)
    for name in ("geno.bed", "geno.bim", "geno.fam", "plink2_score.tsv", "rlsepi_score.txt.gz"):
        assert (tmp_path / name).read_bytes() == (REFERENCE / name).read_bytes(), name


def test_simulate_plink_output_scores_like_the_cohort(tmp_path: Path) -> None:
    # rlsepi simulate --plink writes the same people; plink2 scores the .bed with the bundled
    # file like score_cohort scores the Parquet cohort.
    from rlsepi.cli import main
    from rlsepi.io import read_cohort

    assert main(["simulate", "--n", "300", "--seed", "3", "--out", str(tmp_path / "c.parquet"),
                 "--plink", str(tmp_path / "c"), "--quiet"]) == 0
    bim = pd.read_csv(tmp_path / "c.bim", sep="\t", header=None)
    assert bim[1].tolist() == [loc.rsid for loc in DEFAULT_LOCI]
    assert bim[4].tolist() == [loc.effect_allele for loc in DEFAULT_LOCI]
    assert bim[5].tolist() == [loc.other_allele for loc in DEFAULT_LOCI]
    cohort = read_cohort(tmp_path / "c.parquet")
    ours = pg.score_cohort(cohort)
    from_bed = pg.score_file(tmp_path / "c.bed").scores
    np.testing.assert_allclose(from_bed["SUM"], ours["SUM"], atol=1e-12)
    assert from_bed["IID"].astype(int).tolist() == cohort["person_id"].tolist()
    # the comparison with plink2: an explicit skip without it (a failure under CI=true), never a silent pass
    plink2 = _need_plink2()
    # plink2 does not skip '#' header lines, so give it the table without them
    lines = (DATA / pg.BUNDLED_SCORES["default"]).read_text().splitlines(keepends=True)
    (tmp_path / "bundled.tsv").write_text("".join(x for x in lines if not x.startswith("#")))
    subprocess.run([plink2, "--bfile", "c", "--score", "bundled.tsv",
                    "1", "4", "6", "header-read", "cols=+scoresums", "--threads", "1", "--memory", "1024",
                    "--out", "p"], cwd=tmp_path, check=True, capture_output=True)
    theirs = _read_sscore(tmp_path / "p.sscore")
    # plink2 prints 6 significant digits; sums are < 10 here, so rounding error < 5e-6
    np.testing.assert_allclose(ours["SUM"], theirs["effect_weight_SUM"], rtol=0, atol=5e-6)


# --- matching details ----------------------------------------------------------------------


def _tiny_bed(folder: Path, variants: list[tuple[str, str, int, str, str]], g: np.ndarray) -> Path:
    v = pd.DataFrame(variants, columns=["id", "chrom", "pos", "a1", "a2"])
    samples = pd.DataFrame({"IID": [f"s{i}" for i in range(g.shape[0])]})
    return pg.write_bed(folder / "t", g, v, samples)


def test_match_by_position_in_grch38_with_harmonised_columns(tmp_path: Path) -> None:
    # The .bim uses GRCh38 positions and non-rs IDs; the bundled file's hm_pos are GRCh38.
    g = np.array([[2, 1, 0, 1], [0, 0, 1, 2]], dtype=float)
    variants = [(f"{loc.chrom}:{loc.pos_grch38}", loc.chrom, loc.pos_grch38, loc.effect_allele, loc.other_allele)
                for loc in DEFAULT_LOCI]
    _tiny_bed(tmp_path, variants, g)
    res = pg.score_file(tmp_path / "t.bed", build="GRCh38")
    assert (res.match_log["matched_by"] == "chr:pos").all()
    w = np.array([loc.weight for loc in DEFAULT_LOCI])
    np.testing.assert_allclose(res.scores["SUM"], g @ w, atol=1e-12)
    # told the genotypes are GRCh37, the GRCh38 positions do not match (3 of 4 loci move)
    with pytest.raises(DataValidationError, match="min-overlap"):
        pg.score_file(tmp_path / "t.bed", build="GRCh37")


def test_multiallelic_split_records_resolved_by_alleles(tmp_path: Path) -> None:
    # rs1 is a multi-allelic site split into two records with the same ID: G/A and C/A.
    # The score names effect allele C (other A): only the second record fits, also on the
    # other strand (G/T would be the flip of C/A, and the first record is G/A, not G/T).
    g = np.array([[1, 2], [0, 1], [2, 0]], dtype=float)
    _tiny_bed(tmp_path, [("rs1", "1", 100, "G", "A"), ("rs1", "1", 100, "C", "A")], g)
    _write(tmp_path / "s.tsv", "rsID\teffect_allele\tother_allele\teffect_weight\nrs1\tC\tA\t0.5\n")
    res = pg.score_file(tmp_path / "t.bed", tmp_path / "s.tsv")
    np.testing.assert_allclose(res.scores["SUM"], 0.5 * g[:, 1])
    assert res.match_log["variant_index"].tolist() == [1]
    res = pg.score_file(tmp_path / "t.bed", tmp_path / "s.tsv", duplicates="skip", min_overlap=0)
    assert res.match_log["status"].tolist() == ["excluded"]


def test_palindromic_resolved_by_frequency(tmp_path: Path) -> None:
    # A/T variant; the sample's A frequency is 0.2 (counts 0,0,1,1,0 of A: 2 of 10 alleles, ten times).
    # Score 1 says effect A with frequency 0.2 -> letters as given. Score 2 says effect A
    # with frequency 0.8: the score's A is the sample's T -> flipped: dosage = 2 - count(A).
    # Score 3 has frequency 0.5: cannot tell, excluded. Ten copies of the 5 people: 50 founders,
    # the fewest whose frequencies are used.
    g = np.tile(np.array([[0], [0], [1], [1], [0]], dtype=float), (10, 1))
    _tiny_bed(tmp_path, [("rs1", "1", 100, "A", "T")], g)
    for f, expected in ((0.2, g[:, 0]), (0.8, 2 - g[:, 0])):
        _write(tmp_path / "s.tsv", f"rsID\teffect_allele\tother_allele\teffect_weight\tallelefrequency_effect\n"
               f"rs1\tA\tT\t1\t{f}\n")
        res = pg.score_file(tmp_path / "t", tmp_path / "s.tsv", palindromic="frequency")
        np.testing.assert_allclose(res.scores["SUM"], expected)
        with pytest.raises(DataValidationError, match="palindromic"):
            pg.score_file(tmp_path / "t", tmp_path / "s.tsv")  # excluded by default -> 0% overlap
    _write(tmp_path / "s.tsv", "rsID\teffect_allele\tother_allele\teffect_weight\tallelefrequency_effect\n"
           "rs1\tA\tT\t1\t0.5\n")
    res = pg.score_file(tmp_path / "t", tmp_path / "s.tsv", palindromic="frequency", min_overlap=0)
    assert res.match_log["reason"].str.contains("near 0.5").all()


def test_mean_imputation_from_scoring_file_frequency(tmp_path: Path) -> None:
    # One variant, weight 1, score frequency 0.3: a missing call counts 2 * 0.3 = 0.6.
    g = np.array([[2], [np.nan], [0]], dtype=float)
    _tiny_bed(tmp_path, [("rs1", "1", 100, "C", "A")], g)
    _write(tmp_path / "s.tsv", "rsID\teffect_allele\tother_allele\teffect_weight\tallelefrequency_effect\n"
           "rs1\tC\tA\t1\t0.3\n")
    res = pg.score_file(tmp_path / "t", tmp_path / "s.tsv", imputation="mean-score")
    np.testing.assert_allclose(res.scores["SUM"], [2, 0.6, 0])
    # the sample's own frequency from 2 called people is refused (plink2 needs 50 founders)
    with pytest.raises(DataValidationError, match="only 3 founders"):
        pg.score_file(tmp_path / "t", tmp_path / "s.tsv")


def test_vcf_multiallelic_and_haploid(tmp_path: Path) -> None:
    # Site with REF A, ALT C,G: the score's effect allele G counts ALT index 2.
    vcf = ("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ta\tb\tc\n"
           "1\t100\trs7\tA\tC,G\t.\t.\t.\tGT\t0/2\t1/2\t2|2\n")
    (tmp_path / "x.vcf").write_text(vcf)
    _write(tmp_path / "s.tsv", "rsID\teffect_allele\tother_allele\teffect_weight\nrs7\tG\tA\t1\n")
    res = pg.score_file(tmp_path / "x.vcf", tmp_path / "s.tsv")
    np.testing.assert_allclose(res.scores["SUM"], [1, 1, 2])
    assert res.scores["IID"].tolist() == ["a", "b", "c"]
    (tmp_path / "x.vcf.gz").write_bytes(gzip.compress(vcf.encode()))
    np.testing.assert_allclose(pg.score_file(tmp_path / "x.vcf.gz", tmp_path / "s.tsv").scores["SUM"], [1, 1, 2])


def test_harmonised_file_without_other_allele_uses_the_inferred_one(tmp_path: Path) -> None:
    # PGS Catalog harmonised columns: positions in GRCh38, other allele inferred. The .bim is
    # GRCh38 with IDs that are not rsIDs, so rows match by hm_chr:hm_pos; row 1 is on the other
    # strand (G/T written as C with inferred other allele A); row 2's "C/G" names two
    # candidates and is left unknown.
    g = np.array([[1.0, 2.0], [0.0, 1.0]])
    _tiny_bed(tmp_path, [("v1", "2", 500, "G", "T"), ("v2", "6", 700, "T", "C")], g)
    _write(tmp_path / "s.txt",
           "###PGS CATALOG SCORING FILE\n#format_version=2.0\n#genome_build=GRCh37\n#HmPOS_build=GRCh38\n"
           "rsID\tchr_name\tchr_position\teffect_allele\teffect_weight\thm_chr\thm_pos\thm_inferOtherAllele\n"
           "rs1\t2\t400\tC\t0.5\t2\t500\tA\n"
           "rs2\t6\t600\tT\t0.25\t6\t700\tC/G\n")
    assert pg.read_scoring_file(tmp_path / "s.txt").variants["other_allele"].tolist() == ["A", ""]
    res = pg.score_file(tmp_path / "t", tmp_path / "s.txt", build="GRCh38")
    assert (res.match_log["matched_by"] == "chr:pos").all()
    assert res.match_log["orientation"].tolist() == ["flipped", "direct"]
    np.testing.assert_allclose(res.scores["SUM"], 0.5 * g[:, 0] + 0.25 * g[:, 1])


# --- bad input: one-line errors, exit 2 ----------------------------------------------------


def _cli(*argv: str) -> int:
    from rlsepi.cli import main

    return main(list(argv))


@pytest.mark.parametrize(("content", "message"), [
    ("rsID\tother_allele\teffect_weight\nrs1\tA\t1\n", "no effect allele column"),
    ("rsID\teffect_allele\tother_allele\nrs1\tC\tA\n", "no weight column"),
    ("rsID\teffect_allele\tother_allele\teffect_weight\nrs1\tC\tA\tbig\n", "non-numeric"),
    ("rsID\teffect_allele\teffect_weight\tdosage_0_weight\tdosage_1_weight\tdosage_2_weight\n"
     "rs1\tC\t\t0\t1\t\n", "neither a 'effect_weight' value nor all three"),
])
def test_bad_scoring_files(tmp_path: Path, capsys: pytest.CaptureFixture, content: str, message: str) -> None:
    _tiny_bed(tmp_path, [("rs1", "1", 100, "C", "A")], np.array([[1.0]]))
    _write(tmp_path / "s.tsv", content)
    assert _cli("prs", str(tmp_path / "t.bed"), "--score", str(tmp_path / "s.tsv"), "--out", str(tmp_path / "o.tsv")) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "o.tsv").exists()


def test_bed_size_mismatch_and_vcf_without_gt(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _tiny_bed(tmp_path, [("rs2300478", "2", 66781453, "G", "T")], np.array([[1.0], [2.0]]))
    with open(tmp_path / "t.fam", "a") as fh:
        fh.write("x x 0 0 0 -9\nx2 x2 0 0 0 -9\nx3 x3 0 0 0 -9\nx4 x4 0 0 0 -9\nx5 x5 0 0 0 -9\n")
    assert _cli("prs", str(tmp_path / "t"), "--out", str(tmp_path / "o.tsv")) == 2
    assert "do not belong together" in capsys.readouterr().err
    (tmp_path / "x.vcf").write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ta\n"
                                    "2\t66781453\trs2300478\tT\tG\t.\t.\t.\tGQ\t30\n")
    assert _cli("prs", str(tmp_path / "x.vcf"), "--out", str(tmp_path / "o.tsv")) == 2
    assert "neither GT nor DS" in capsys.readouterr().err


def test_min_overlap_failure_explains(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # Only MEIS1 present: its |ln 1.68| is 34.7% of the default score's total |weight|.
    loc = DEFAULT_LOCI[0]
    _tiny_bed(tmp_path, [(loc.rsid, loc.chrom, loc.pos_grch37, loc.effect_allele, loc.other_allele)],
              np.array([[1.0], [0.0]]))
    assert _cli("prs", str(tmp_path / "t.bed"), "--out", str(tmp_path / "o.tsv")) == 2
    err = capsys.readouterr().err
    share = loc.weight / sum(x.weight for x in DEFAULT_LOCI)
    assert f"{share:.1%}" in err and "3 not in genotypes" in err
    assert _cli("prs", str(tmp_path / "t.bed"), "--out", str(tmp_path / "o.tsv"), "--min-overlap", "0.3",
                "--quiet") == 0
    out = pd.read_csv(tmp_path / "o.tsv", sep="\t", comment="#")
    np.testing.assert_allclose(out["SUM"], [loc.weight, 0])
    log = pd.read_csv(tmp_path / "o.matchlog.tsv", sep="\t")
    assert log["status"].tolist() == ["used", "excluded", "excluded", "excluded"]
    # refuses to overwrite without --force
    assert _cli("prs", str(tmp_path / "t.bed"), "--out", str(tmp_path / "o.tsv"), "--min-overlap", "0.3") == 2


def test_cli_parquet_output_with_empirical_reference(tmp_path: Path) -> None:
    from rlsepi.cohort import simulate
    from rlsepi.cohort import write_cohort

    write_cohort(tmp_path / "c.parquet", 400, seed=2)
    assert _cli("prs", str(tmp_path / "c.parquet"), "--out", str(tmp_path / "s.parquet"),
                "--reference", str(tmp_path / "c.parquet"), "--quiet") == 0
    s = pd.read_parquet(tmp_path / "s.parquet")
    assert s.columns[0] == "person_id"
    # against itself, the empirical mid-rank percentiles average exactly 50
    assert s["percentile"].mean() == pytest.approx(50.0)
    assert s["z"].mean() == pytest.approx(0.0, abs=1e-12)
    del simulate


def test_duplicate_scoring_rows_use_the_first(tmp_path: Path) -> None:
    # rs1 listed twice (second time on the other strand): the second row is excluded.
    g = np.array([[1.0], [2.0]])
    _tiny_bed(tmp_path, [("rs1", "1", 100, "C", "A")], g)
    _write(tmp_path / "s.tsv", "rsID\teffect_allele\tother_allele\teffect_weight\nrs1\tC\tA\t1\nrs1\tG\tT\t5\n")
    res = pg.score_file(tmp_path / "t", tmp_path / "s.tsv", min_overlap=0)
    np.testing.assert_allclose(res.scores["SUM"], [1, 2])
    assert res.match_log["status"].tolist() == ["used", "excluded"]
    assert "duplicate of scoring-file row 1" in res.match_log["reason"].iloc[1]


def test_empirical_reference_must_match_the_same_rows(tmp_path: Path) -> None:
    loci = DEFAULT_LOCI
    v = [(loc.rsid, loc.chrom, loc.pos_grch37, loc.effect_allele, loc.other_allele) for loc in loci]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _tiny_bed(tmp_path / "a", v, np.array([[0, 1, 2, 1], [1, 1, 1, 1], [2, 2, 0, 0]], dtype=float))
    _tiny_bed(tmp_path / "b", v[:3], np.array([[0, 1, 2], [1, 1, 1]], dtype=float))
    with pytest.raises(DataValidationError, match="not comparable"):
        pg.score_file(tmp_path / "a" / "t", reference_file=tmp_path / "b" / "t", min_overlap=0.5)
    res = pg.score_file(tmp_path / "a" / "t", reference_file=tmp_path / "a" / "t")
    # three distinct sums against themselves: mid-rank percentiles 100 * (rank - 1/2) / 3
    ranks = res.scores["SUM"].rank().to_numpy()
    np.testing.assert_allclose(res.scores["percentile"], 100 * (ranks - 0.5) / 3)


def test_harmonisation_invariants(tmp_path: Path) -> None:
    # With no missing calls: writing every row on the other strand leaves SUM unchanged, and
    # naming the other allele as effect allele with weight -w gives SUM - sum_j 2 w_j.
    rng = np.random.default_rng(8)
    m, n = 12, 30
    pairs = [_NON_PALINDROMIC[i] for i in rng.integers(0, len(_NON_PALINDROMIC), m)]
    g = rng.integers(0, 3, (n, m)).astype(float)
    _tiny_bed(tmp_path, [(f"rs{j + 1}", "1", 10 * (j + 1), a, b) for j, (a, b) in enumerate(pairs)], g)
    w = rng.normal(0, 1, m)
    comp = str.maketrans("ACGT", "TGCA")

    def score(rows: list[tuple[str, str, float]]) -> np.ndarray:
        text = "rsID\teffect_allele\tother_allele\teffect_weight\n" + "".join(
            f"rs{j + 1}\t{e}\t{o}\t{float(x)!r}\n" for j, (e, o, x) in enumerate(rows))
        _write(tmp_path / "s.tsv", text)
        return pg.score_file(tmp_path / "t", tmp_path / "s.tsv").scores["SUM"].to_numpy()

    base = score([(a, b, x) for (a, b), x in zip(pairs, w)])
    np.testing.assert_allclose(base, g @ w, atol=1e-12)
    np.testing.assert_allclose(score([(a.translate(comp), b.translate(comp), x) for (a, b), x in zip(pairs, w)]),
                               base, atol=1e-12)
    np.testing.assert_allclose(score([(b, a, -x) for (a, b), x in zip(pairs, w)]), base - 2 * w.sum(), atol=1e-12)


def test_normal_approximation_has_the_exact_moments() -> None:
    # 20 loci: more states than max_states -> normal approximation with mean sum 2 p w and
    # variance sum 2 p (1 - p) w^2 (additive weights).
    rng = np.random.default_rng(4)
    w, p = rng.normal(0, 0.2, 20), rng.uniform(0.05, 0.95, 20)
    values = np.column_stack([0 * w, w, 2 * w])
    ref = pg.analytic_reference(values, p, max_states=1000)
    assert ref.kind == "analytic-normal"
    assert ref.mean == pytest.approx(float((2 * p * w).sum()))
    assert ref.sd == pytest.approx(math.sqrt(float((2 * p * (1 - p) * w**2).sum())))
    assert ref.percentile(np.array([ref.mean]))[0] == pytest.approx(50.0)
    exact = pg.analytic_reference(values[:6], p[:6])
    assert exact.kind == "analytic-exact" and exact.values.size == 3**6


def test_parquet_output_records_imputation_and_coverage(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    df = _cohort([[0, 1, 2, None], [1, 1, 1, 1]])
    res = pg.score_genotypes(pg.cohort_genotypes(df), imputation="none")
    out, log = pg.write_scores(res, tmp_path / "s.parquet")
    meta = pq.read_schema(out).metadata
    notes = meta[b"rlsepi.prs_notes"].decode()
    assert "imputation=none" in notes and "coverage[effect_weight]=4/4" in notes
    s = pd.read_parquet(out)
    np.testing.assert_array_equal(s["ALLELE_CT"], [6, 8])
    np.testing.assert_array_equal(s["DENOM"], [6, 8])
    assert log.name == "s.matchlog.tsv" and log.exists()
    with pytest.raises(Exception, match="already exists"):
        pg.write_scores(res, tmp_path / "s.parquet")
