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
    assert all(s.variants["citation"].str.len() > 0) if "citation" in s.variants else True


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
