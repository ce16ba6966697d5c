"""Polygenic risk scores: allele matching, scoring, standardisation and percentiles; the public
face of PRS (genotype readers live in :mod:`rlsepi.genotypes`, scoring files in
:mod:`rlsepi.scorefiles`, and both are re-exported here).

The score of a person is computed exactly as ``plink2 --score`` computes it on the same
files (see :func:`score_genotypes` for the definitions of ``SUM``, ``AVG``,
``ALLELE_CT``, ``DENOM`` and ``NAMED_ALLELE_DOSAGE_SUM``), after harmonising the
scoring file's alleles to the genotypes' alleles: alleles as given, swapped,
strand-flipped or both; palindromic A/T and C/G variants are left out by default.

Genotypes come from :mod:`rlsepi.genotypes` (a cohort table, PLINK 1, PLINK 2 pgen, BGEN 1.2,
VCF/BCF), scoring files from :mod:`rlsepi.scorefiles` (PGS Catalog files, harmonised,
dosage-weight-only or combined; plain tables).

The default score (MEIS1, BTBD9 and both PTPRD signals) is bundled as a PGS Catalog
format 2.0 scoring file generated from :data:`rlsepi.parameters.DEFAULT_LOCI` by
:func:`scoring_file_text`; the numbers live only in :mod:`rlsepi.parameters`.

Examples
--------
>>> from rlsepi.cohort import simulate
>>> df = simulate(500, rng=3)
>>> prs = score_cohort(df)
>>> prs.columns[:5].tolist()
['SUM', 'AVG', 'ALLELE_CT', 'DENOM', 'NAMED_ALLELE_DOSAGE_SUM']
>>> bool(prs["percentile"].between(0, 100).all())
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from rlsepi.errors import DataValidationError, RLSEpiError
from rlsepi.genotypes import (
    Genotypes,
    _as_float,
    _build_name,
    cohort_genotypes,
    bgen_genotypes,
    pgen_genotypes,
    plink_genotypes,
    read_genotypes,
    vcf_genotypes,
    write_bed,
    write_plink,
)
from rlsepi.io import atomic_output, check_output_path, write_tsv
from rlsepi.scorefiles import (
    BUNDLED_SCORES,
    ScoringFile,
    default_score,
    extended_score,
    read_scoring_file,
    scoring_file_text,
    write_scoring_file,
)

__all__ = [
    "ScoringFile",
    "Genotypes",
    "ReferenceDistribution",
    "PRSResult",
    "default_score",
    "extended_score",
    "scoring_file_text",
    "write_scoring_file",
    "read_scoring_file",
    "read_genotypes",
    "cohort_genotypes",
    "plink_genotypes",
    "vcf_genotypes",
    "match_variants",
    "check_overlap",
    "score_genotypes",
    "score_cohort",
    "score_file",
    "analytic_reference",
    "empirical_reference",
    "write_plink",
    "write_bed",
    "write_scores",
    "read_afreq",
    "pgen_genotypes",
    "bgen_genotypes",
    "BUNDLED_SCORES",
]

Imputation = Literal["mean-sample", "mean-score", "none"]
Palindromic = Literal["exclude", "keep", "frequency"]

IMPUTATION_TEXT = {
    "mean-sample": "missing genotypes imputed as 2 x the sample effect-allele frequency (plink2 default)",
    "mean-score": "missing genotypes imputed as 2 x the scoring file's effect-allele frequency",
    "none": "no mean imputation: missing genotypes contribute nothing (plink2 no-mean-imputation)",
}

MIN_FOUNDERS_FOR_FREQ = 50
"""Fewest founders whose allele frequencies rlsepi uses (for mean imputation, palindromic strand);
plink2 refuses to compute frequencies for imputation from fewer than 50 founders."""

_COMPLEMENT = str.maketrans("ACGT", "TGCA")
_PALINDROMIC = ({"A", "T"}, {"C", "G"})

# --- matching -------------------------------------------------------------------------


def _comp(a: str) -> str:
    return a.translate(_COMPLEMENT)


def _is_snv(a: str) -> bool:
    return len(a) == 1 and a in "ACGT"


def _orient(e: str, o: str, a1: str, a2: str) -> list[str]:
    """Every consistent way of reading score alleles (e, o) against genotype alleles (a1, a2)."""
    out = []
    if e == a1 and (not o or not a2 or o == a2):
        out.append("direct")
    if (e == a2 and a2) and (not o or o == a1):
        out.append("swapped")
    elif not a2 and o and o == a1 and e != a1:
        out.append("swapped")
    if _is_snv(e) and (not o or _is_snv(o)):
        ce, co = _comp(e), _comp(o) if o else ""
        if ce == a1 and (not co or not a2 or co == a2) and e != a1:
            out.append("flipped")
        if a2 and ce == a2 and (not co or co == a1) and e != a2:
            out.append("flipped_swapped")
    return out


def _palindromic(a: str, b: str) -> bool:
    return bool(a and b) and {a, b} in _PALINDROMIC


def _match_simple(col_rs: np.ndarray, col_e: np.ndarray, col_o: np.ndarray, gids: list[str], a1s: list[str],
                  a2s: list[str], multi_gv: np.ndarray | None, by_id: Mapping[str, list[int]]
                  ) -> tuple[np.ndarray, pd.DataFrame]:
    """The common rows, matched at once: an rsID carried by exactly one biallelic genotype variant whose
    alleles fit as given or swapped, not palindromic, and no other row with the same variant and
    effect allele. Every other row goes through the row-by-row rules of :func:`match_variants`."""
    pos = np.fromiter(((c[0] if len(c) == 1 else -1) if (c := by_id.get(r)) else -1 for r in col_rs),
                      dtype=np.int64, count=len(col_rs))
    a1 = np.asarray(a1s, dtype=object)
    a2 = np.asarray(a2s, dtype=object)
    safe = np.where(pos >= 0, pos, 0)
    g1, g2 = a1[safe], a2[safe]
    e, o = col_e.astype(object), col_o.astype(object)
    direct = (e == g1) & ((o == "") | (g2 == "") | (o == g2))
    swapped = (e == g2) & (g2 != "") & ((o == "") | (o == g1))
    pair = np.char.add(np.asarray(g1, dtype=str), np.asarray(g2, dtype=str))
    pal = np.isin(pair, ["AT", "TA", "CG", "GC"])
    multi = multi_gv[safe] if multi_gv is not None else np.zeros(len(col_rs), bool)
    ok = (pos >= 0) & (direct ^ swapped) & ~pal & ~multi & (g2 != "")
    ok &= ~pd.DataFrame({"pos": pos, "e": e}).duplicated(keep=False).to_numpy()
    t = np.flatnonzero(ok)
    d = direct[t]
    log = pd.DataFrame({
        "matched_by": "rsID", "variant_index": pos[t], "genotype_id": np.asarray(gids, dtype=object)[pos[t]],
        "genotype_alleles": np.char.add(np.char.add(g1[t].astype(str), "/"), g2[t].astype(str)).astype(object),
        "orientation": np.where(d, "direct", "swapped"), "effect_is_a1": d, "status": "used",
        "reason": np.where(d, "", "effect allele is the genotypes' second allele"),
    })
    return ok, log


def _position_columns(score: ScoringFile, gbuild: str | None) -> tuple[str, str, str]:
    """Which of the score's position columns are in the genotypes' build: (chromosome column, position
    column, note); empty columns and a note saying why when none is (rows then match by ID only)."""
    v = score.variants
    if gbuild and score.genome_build and gbuild != score.genome_build:
        if "hm_pos" in v.columns and score.hm_build == gbuild:
            return "hm_chr", "hm_pos", ""
        return "", "", f"score build {score.genome_build} != genotype build {gbuild}"
    if gbuild and not score.genome_build and "hm_pos" in v.columns and score.hm_build == gbuild:
        return "hm_chr", "hm_pos", ""
    if (not gbuild and "hm_pos" in v.columns and score.hm_build and score.genome_build
            and score.hm_build != score.genome_build):
        # author and harmonised positions are in different builds and the genotypes do not say theirs:
        # matching by either could pick wrong variants, so only IDs are compared
        return "", "", (f"the score has {score.genome_build} and {score.hm_build} positions and the genotypes' "
                        "build is unknown; give --build")
    return "chr_name", "chr_position", ""


def check_overlap(score: ScoringFile, genotypes: Genotypes, log: pd.DataFrame, *, min_overlap: float,
                  build: str | None = None) -> pd.DataFrame:
    """The coverage table of a match log; raise when any weight's matched share of |weight| is
    below ``min_overlap``.

    When rows were left unmatched because the score's positions are in another genome build than
    the genotypes' (and the score has no harmonised positions in theirs), that is the error, on its
    own: the builds, how many rows could only have matched by position, and how to fix it. (When
    the genotypes' build is unknown, the error names the reasons and asks for ``--build``.)
    Otherwise the error names the commonest reasons rows were excluded. When the overlap is
    enough but rows were lost to a build mismatch, a warning says how many.
    """
    import warnings

    cov = _coverage(score, log)
    low = cov[cov["share_abs_weight"] < min_overlap]
    gbuild = _build_name(build) or genotypes.build
    _, _, note = _position_columns(score, gbuild)
    lost = int(log["reason"].str.contains("positions not compared", regex=False).sum()) if note else 0
    if len(low) and lost and gbuild:  # a known mismatch (an unknown build is named in the error below)
        r = low.iloc[0]
        raise DataValidationError(
            f"genome build mismatch: the scoring file's positions are {score.genome_build} but the genotypes' are "
            f"{gbuild}, so {lost} of {r.variants_total} scoring-file rows could not be matched by position and only "
            f"{r.variants_used} matched by ID ({r.share_abs_weight:.1%} of the total |{r.weight}|, below --min-overlap "
            f"{min_overlap:g}); use the scoring file harmonised to {gbuild} (PGS Catalog hm_chr/hm_pos), or genotypes "
            f"in {score.genome_build}"
        )
    if len(low):
        r = low.iloc[0]
        top = log.loc[log["status"] == "excluded", "reason"].value_counts()
        why = "; ".join(f"{k} {reason}" for reason, k in top.head(3).items())
        raise DataValidationError(
            f"only {r.variants_used} of {r.variants_total} scoring-file variants matched the genotypes, "
            f"{r.share_abs_weight:.1%} of the total |{r.weight}|, below --min-overlap {min_overlap:g} "
            f"(excluded: {why}); check the genome build and variant IDs, or lower --min-overlap"
        )
    if lost:
        warnings.warn(f"{lost} scoring-file rows without a matching ID were not matched by position: {note}",
                      stacklevel=3)
    return cov


def match_variants(
    score: ScoringFile,
    genotypes: Genotypes,
    *,
    palindromic: Palindromic = "exclude",
    duplicates: Literal["resolve", "skip"] = "resolve",
    build: str | None = None,
    sample_freq: Callable[[np.ndarray], np.ndarray] | None = None,
) -> pd.DataFrame:
    """Match each scoring-file row to a genotype variant and orient its alleles.

    Rows are matched by rsID where the genotypes have that ID, otherwise by chromosome and
    position (using the harmonised ``hm_chr``/``hm_pos`` when the scoring file's own build
    differs from the genotypes' build and the harmonised build matches). Alleles may be as
    given, swapped, strand-flipped or both.

    Parameters
    ----------
    palindromic : {"exclude", "keep", "frequency"}
        A/T and C/G variants cannot be told from their strand flip. ``exclude`` leaves them
        out; ``keep`` reads the letters as given (what plink2 does); ``frequency`` compares the
        scoring file's effect-allele frequency with the sample's and leaves out variants
        with either frequency in [0.4, 0.6].
    duplicates : {"resolve", "skip"}
        When several genotype variants carry the matched ID or position (multi-allelic
        sites split into biallelic records, or duplicated IDs), ``resolve`` keeps the one
        variant whose alleles are consistent with the row and skips the row when there are
        several; ``skip`` leaves such rows out (plink2 ``ignore-dup-ids``).
    build : str, optional
        Build of the genotypes' positions (default: the genotypes' own, else the score's).
    sample_freq : callable, optional
        ``sample_freq(variant_indices)`` -> frequencies of ``a1``; needed for
        ``palindromic="frequency"`` (called once, for the palindromic candidates).

    Returns
    -------
    DataFrame
        The match log: one row per scoring-file row with ``status`` (``used`` or
        ``excluded``), ``reason``, ``matched_by``, ``variant_index`` (-1 if none),
        ``genotype_id``, ``genotype_alleles``, ``orientation`` and ``effect_is_a1``.
        Duplicate rows in the scoring file (same variant and effect allele) are excluded
        after the first.
    """
    if duplicates not in ("resolve", "skip"):  # any other word would silently act as "resolve"
        raise RLSEpiError(f"duplicates must be resolve or skip, got {duplicates!r}")
    v = score.variants
    gv = genotypes.variants
    gbuild = _build_name(build) or genotypes.build
    by_id: dict[str, list[int]] = {}
    for i, vid in enumerate(gv["id"].astype(str).tolist()):
        by_id.setdefault(vid, []).append(i)
    lazy: dict[str, Any] = {}  # built only when a row needs them (most rows match by ID at once)

    def by_pos() -> dict[tuple[str, int], list[int]]:
        if "by_pos" not in lazy:
            table: dict[tuple[str, int], list[int]] = {}
            for i, key in enumerate(gpos()):
                table.setdefault(key, []).append(i)
            lazy["by_pos"] = table
        return lazy["by_pos"]

    def gpos() -> list[tuple[str, int]]:
        if "gpos" not in lazy:
            lazy["gpos"] = list(zip(gv["chrom"].astype(str).to_numpy().tolist(), gv["pos"].to_numpy().tolist()))
        return lazy["gpos"]
    pos_chr, pos_pos, pos_note = _position_columns(score, gbuild)

    a1s, a2s = gv["a1"].astype(str).tolist(), gv["a2"].astype(str).tolist()
    gids = gv["id"].astype(str).tolist()
    multi_gv = gv["multiallelic"].to_numpy(dtype=bool) if "multiallelic" in gv.columns else None
    recs = []
    seen: dict[tuple[int, str], int] = {}
    n_rows = len(v)
    col_rs = v["rsID"].astype(str).to_numpy()
    col_hm = v["hm_rsID"].astype(str).to_numpy() if "hm_rsID" in v.columns else np.full(n_rows, "")
    col_e = v["effect_allele"].astype(str).to_numpy()
    col_o = v["other_allele"].fillna("").astype(str).to_numpy()
    col_c = v[pos_chr].astype(str).to_numpy() if pos_chr else np.full(n_rows, "")
    col_p = v[pos_pos].to_numpy(dtype=np.int64) if pos_chr else np.full(n_rows, -1)
    col_f = v["allelefrequency_effect"].to_numpy(dtype=float)
    col_row = v["row"].to_numpy()
    pal_freq: dict[int, float] = {}
    if palindromic == "frequency" and sample_freq is not None:
        wanted_ids = set(col_rs) | set(col_hm)
        wanted_pos = set(zip(col_c, col_p.tolist())) if pos_chr else set()
        pal_idx = np.array([i for i in range(len(gids)) if _palindromic(a1s[i], a2s[i])
                            and (gids[i] in wanted_ids or (str(gv["chrom"].iat[i]), int(gv["pos"].iat[i])) in wanted_pos)],
                           dtype=np.intp)
        if pal_idx.size:
            pal_freq = dict(zip(pal_idx.tolist(), np.asarray(sample_freq(pal_idx), dtype=float).tolist()))
    fast, fast_log = _match_simple(col_rs, col_e, col_o, gids, a1s, a2s, multi_gv, by_id)
    fast_rows = np.flatnonzero(fast)  # matched as given or swapped: the key's allele is the effect allele itself
    seen.update(zip(zip(fast_log["variant_index"].to_numpy().tolist(), col_e[fast_rows].tolist()),
                    col_row[fast_rows].tolist()))
    recs = [None] * n_rows  # type: ignore[list-item]
    for t in np.flatnonzero(~fast).tolist():
        rec: dict[str, Any] = {"matched_by": "", "variant_index": -1, "genotype_id": "", "genotype_alleles": "",
                               "orientation": "", "effect_is_a1": False, "status": "excluded", "reason": ""}
        e, o = col_e[t], col_o[t]
        cands: list[int] = []
        for rs in (col_rs[t], col_hm[t]):
            if rs and rs in by_id:
                cands, rec["matched_by"] = by_id[rs], "rsID"
                break
        if not cands and pos_chr:
            c, pos = col_c[t], int(col_p[t])
            if c and pos >= 0 and (c, pos) in by_pos():
                cands, rec["matched_by"] = by_pos()[(c, pos)], "chr:pos"
        if not cands:
            rec["reason"] = "not in genotypes" + (f" (positions not compared: {pos_note})" if pos_note else "")
            recs[t] = rec
            continue
        options = [(i, _orient(e, o, a1s[i], a2s[i])) for i in cands]
        consistent = [(i, ori) for i, ori in options if ori]
        if len(consistent) > 1 and multi_gv is not None and all(
                multi_gv[i] and "swapped" in ori and a2s[i] == a2s[consistent[0][0]]
                and gpos()[i] == gpos()[consistent[0][0]] for i, ori in consistent):
            # one multi-allelic site split per ALT, effect allele = its REF: every record counts REF
            consistent = consistent[:1]
        if len(consistent) > 1:
            # letters that match as written beat a strand flip (a multi-allelic site's other ALT may be the
            # complement of the effect allele)
            literal = [(i, [o for o in ori if o in ("direct", "swapped")]) for i, ori in consistent
                       if {"direct", "swapped"} & set(ori)]
            if len(literal) == 1:
                consistent = literal
        if len(cands) > 1 and (duplicates == "skip" or len(consistent) > 1):
            rec["reason"] = (f"{len(cands)} genotype variants share this "
                             f"{'ID' if rec['matched_by'] == 'rsID' else 'position'}"
                             + ("" if duplicates == "skip" else f" and {len(consistent)} fit its alleles"))
            recs[t] = rec
            continue
        if not consistent:
            i = cands[0]
            rec.update(variant_index=i, genotype_id=gids[i], genotype_alleles=f"{a1s[i]}/{a2s[i] or '?'}",
                       reason=f"alleles {e}/{o or '?'} do not fit the genotypes' {a1s[i]}/{a2s[i] or '?'}"
                       + (" (multi-allelic site)" if len(cands) > 1 else ""))
            recs[t] = rec
            continue
        i, ori = consistent[0]
        rec.update(variant_index=i, genotype_id=gids[i], genotype_alleles=f"{a1s[i]}/{a2s[i] or '?'}")
        pal = _palindromic(a1s[i], a2s[i]) or (not a2s[i] and _palindromic(e, o))
        if pal:
            as_given = "direct" if "direct" in ori else "swapped"
            if palindromic == "exclude":
                rec["reason"] = "palindromic (A/T or C/G): strand cannot be told; use palindromic='keep' or 'frequency'"
                recs[t] = rec
                continue
            if palindromic == "keep":
                ori = [as_given]
            else:
                f_score = float(col_f[t])
                if not np.isfinite(f_score) or i not in pal_freq:
                    rec["reason"] = "palindromic and the scoring file gives no effect-allele frequency"
                    recs[t] = rec
                    continue
                f_a1 = pal_freq[i]
                f_e = f_a1 if as_given == "direct" else 1 - f_a1
                if not np.isfinite(f_e) or 0.4 <= f_score <= 0.6 or 0.4 <= f_e <= 0.6:
                    rec["reason"] = (f"palindromic with frequency near 0.5 (score {f_score:.3f}, "
                                     f"sample {f_e:.3f}); strand cannot be told")
                    recs[t] = rec
                    continue
                if (f_score > 0.5) == (f_e > 0.5):
                    ori = [as_given]
                else:
                    ori = ["flipped_swapped" if as_given == "direct" else "flipped"]
        orientation = ori[0]
        key = (i, e if orientation in ("direct", "swapped") else _comp(e))
        if key in seen:
            rec.update(orientation=orientation,
                       reason=f"duplicate of scoring-file row {seen[key]} (same variant and effect allele)")
            recs[t] = rec
            continue
        seen[key] = int(col_row[t])
        rec.update(orientation=orientation, effect_is_a1=orientation in ("direct", "flipped"), status="used",
                   reason="" if orientation == "direct" else {
                       "swapped": "effect allele is the genotypes' second allele",
                       "flipped": "strand flipped", "flipped_swapped": "strand flipped and swapped"}[orientation])
        recs[t] = rec
    slow = np.flatnonzero(~fast)
    log = pd.DataFrame([recs[t] for t in slow], index=slow,
                       columns=["matched_by", "variant_index", "genotype_id", "genotype_alleles", "orientation",
                                "effect_is_a1", "status", "reason"])
    if fast.any():
        log = pd.concat([log, fast_log.set_index(np.flatnonzero(fast))]).sort_index()
    log = log.reset_index(drop=True)
    cols = ["row", "rsID", "chr_name", "chr_position", "effect_allele", "other_allele"]
    out = pd.concat([v[cols].reset_index(drop=True), log], axis=1)
    for w in score.weight_names:
        out[w] = v[w].to_numpy()
    return out


# --- scoring --------------------------------------------------------------------------


def _model_values(v: pd.DataFrame, weight: str) -> np.ndarray:
    """Per-variant contributions at dosage 0, 1, 2: shape (m, 3)."""
    w = v[weight].to_numpy(dtype=float)
    vals = np.column_stack([np.zeros_like(w), w, 2 * w])
    dom = v["is_dominant"].to_numpy(dtype=bool)  # both columns are in every ScoringFile (scorefiles.read_scoring_file)
    rec = v["is_recessive"].to_numpy(dtype=bool)
    vals[dom] = np.column_stack([np.zeros(dom.sum()), w[dom], w[dom]])
    vals[rec] = np.column_stack([np.zeros(rec.sum()), np.zeros(rec.sum()), w[rec]])
    if all(f"dosage_{k}_weight" in v.columns for k in range(3)):
        d = v[[f"dosage_{k}_weight" for k in range(3)]].to_numpy(dtype=float)
        given = np.isfinite(d).all(axis=1)
        vals[given] = d[given]
    vals[~np.isfinite(vals)] = 0.0
    return vals


def _abs_weight(v: pd.DataFrame, weight: str) -> np.ndarray:
    vals = _model_values(v, weight)
    return np.abs(vals - vals[:, :1]).max(axis=1)


@dataclass(frozen=True)
class ReferenceDistribution:
    """The distribution of the score ``SUM`` in a reference population.

    ``kind`` is ``analytic-exact`` (every genotype combination enumerated under
    Hardy-Weinberg equilibrium with independent loci), ``analytic-normal`` (the same
    mean and variance, normal approximation, for long scores) or ``empirical`` (the
    scores of a reference cohort).

    Notes
    -----
    ``z = (SUM - mean) / sd``. The percentile is the mid-distribution percentile
    ``100 * (P(S < s) + P(S = s) / 2)``, so a score exactly at the median of a symmetric
    discrete distribution is at the 50th percentile; for ``analytic-normal`` it is
    ``100 * Phi(z)``.
    """

    kind: str
    mean: float
    sd: float
    values: np.ndarray = field(repr=False)
    probs: np.ndarray = field(repr=False)
    description: str = ""

    def to_frame(self) -> pd.DataFrame:
        """The distinct sums and their probabilities (empty for ``analytic-normal``)."""
        return pd.DataFrame({"SUM": self.values, "probability": self.probs})

    def summary(self) -> str:
        return f"{self.description or self.kind}: mean {self.mean:.6g}, sd {self.sd:.6g}"

    def z(self, s: np.ndarray) -> np.ndarray:
        """``(s - mean) / sd``."""
        s = np.asarray(s, dtype=float)
        return (s - self.mean) / self.sd if self.sd > 0 else np.full(s.shape, np.nan)

    def percentile(self, s: np.ndarray) -> np.ndarray:
        """Mid-distribution percentile of each sum (0-100)."""
        s = np.asarray(s, dtype=float)
        if self.kind == "analytic-normal":
            from scipy.special import ndtr

            return 100 * ndtr(self.z(s))
        tol = 1e-9 * max(1.0, float(np.abs(self.values).max(initial=0.0)))
        cum = np.concatenate([[0.0], np.cumsum(self.probs)])
        below = cum[np.searchsorted(self.values, s - tol, side="left")]
        upto = cum[np.searchsorted(self.values, s + tol, side="right")]
        out = 100 * (below + (upto - below) / 2)
        return np.where(np.isfinite(s), out, np.nan)


def analytic_reference(values: np.ndarray, freqs: np.ndarray, *, max_states: int = 200_000,
                       description: str = "") -> ReferenceDistribution:
    """Distribution of ``SUM`` under Hardy-Weinberg equilibrium with independent loci.

    Parameters
    ----------
    values : ndarray, shape (m, 3)
        Each variant's contribution at 0, 1 and 2 copies of its effect allele.
    freqs : ndarray, shape (m,)
        Effect-allele frequencies.
    max_states : int
        Enumerate exactly (merging equal sums) while each next locus can make at most this
        many sums (3 x the distinct sums so far); otherwise use the normal approximation with
        the exact mean and variance.

    Notes
    -----
    Per locus, P(g) = (1-p)^2, 2p(1-p), p^2; the sum's mean is sum_j E_j and its variance
    sum_j Var_j. With 4 loci there are 3^4 = 81 combinations.
    """
    values = np.asarray(values, dtype=float).reshape(-1, 3)
    p = np.asarray(freqs, dtype=float)
    if np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise DataValidationError("effect-allele frequencies for the analytic reference must lie in [0, 1]")
    gp = np.column_stack([(1 - p) ** 2, 2 * p * (1 - p), p**2])
    means = (values * gp).sum(axis=1)
    var = ((values - means[:, None]) ** 2 * gp).sum(axis=1)
    mean, sd = float(means.sum()), float(math.sqrt(var.sum()))
    sums, probs = np.zeros(1), np.ones(1)
    for j in range(values.shape[0]):
        if sums.size * 3 > max_states:
            return ReferenceDistribution("analytic-normal", mean, sd, np.zeros(0), np.zeros(0),
                                         description or "analytic, normal approximation under HWE")
        sums = (sums[:, None] + values[j][None, :]).ravel()
        probs = (probs[:, None] * gp[j][None, :]).ravel()
        keep = probs > 0
        sums, probs = sums[keep], probs[keep]
        r = np.round(sums, 10)
        uniq, inv = np.unique(r, return_inverse=True)
        probs = np.bincount(inv, weights=probs)
        sums = uniq
    return ReferenceDistribution("analytic-exact", mean, sd, sums, probs / probs.sum(),
                                 description or f"analytic, exact enumeration of {values.shape[0]} loci under HWE")


def empirical_reference(sums: np.ndarray, *, description: str = "") -> ReferenceDistribution:
    """The reference distribution of a reference cohort's score sums (NaN dropped)."""
    s = np.sort(np.asarray(sums, dtype=float)[np.isfinite(sums)])
    if s.size < 2:
        raise DataValidationError("the reference cohort has fewer than 2 people with a score")
    uniq, counts = np.unique(s, return_counts=True)
    return ReferenceDistribution("empirical", float(s.mean()), float(s.std(ddof=1)), uniq, counts / counts.sum(),
                                 description or f"empirical, {s.size:,} reference people")


@dataclass(frozen=True)
class PRSResult:
    """Scores per person, the match log and coverage of one scoring run.

    Attributes
    ----------
    scores : DataFrame
        One row per person: the ID column, then per weight ``SUM``, ``AVG``, ``z``,
        ``percentile`` (prefixed ``<name>_`` when several weights are scored, where
        ``effect_weight_<name>`` is the weight column) and
        ``ALLELE_CT``, ``DENOM``, ``NAMED_ALLELE_DOSAGE_SUM``.
    match_log : DataFrame
        What happened to each scoring-file row (see :func:`match_variants`).
    coverage : DataFrame
        Per weight: variants matched and total, share of variants, share of total |weight|.
    imputation : str
    references : dict of str to ReferenceDistribution
    score_name : str
    """

    scores: pd.DataFrame = field(repr=False)
    match_log: pd.DataFrame = field(repr=False)
    coverage: pd.DataFrame = field(repr=False)
    imputation: str
    references: Mapping[str, ReferenceDistribution] = field(repr=False)
    score_name: str = ""
    n_samples: int = 0

    def to_frame(self) -> pd.DataFrame:
        """The scores per person (a copy)."""
        return self.scores.copy()

    def summary(self) -> str:
        lines = [f"PRS {self.score_name!r} for {self.n_samples:,} people"]
        for row in self.coverage.itertuples(index=False):
            lines.append(f"  {row.weight}: {row.variants_used}/{row.variants_total} variants "
                         f"({row.share_variants:.1%}), {row.share_abs_weight:.1%} of total |weight|")
        lines.append(f"  imputation: {IMPUTATION_TEXT[self.imputation]}")
        for w, ref in self.references.items():
            lines.append(f"  reference for {w}: {ref.description} (mean {ref.mean:.4g}, sd {ref.sd:.4g})")
        counts = self.match_log["reason"].where(self.match_log["status"] == "excluded").value_counts()
        for reason, k in counts.items():
            lines.append(f"  excluded {k}: {reason}")
        return "\n".join(lines)


def _label(weight: str) -> str:
    """Output prefix of a weight column: ``effect_weight_X`` and ``weight_X`` -> ``X``."""
    for pre in ("effect_weight_", "weight_"):
        if weight.startswith(pre) and len(weight) > len(pre):
            return weight[len(pre):]
    return weight


def _coverage(score: ScoringFile, log: pd.DataFrame) -> pd.DataFrame:
    used = (log["status"] == "used").to_numpy()
    rows = []
    for w in score.weight_names:
        aw = _abs_weight(score.variants, w)
        rows.append({"weight": w, "variants_used": int(used.sum()), "variants_total": len(log),
                     "share_variants": float(used.mean()) if len(log) else 0.0,
                     "share_abs_weight": float(aw[used].sum() / aw.sum()) if aw.sum() > 0 else float(used.mean())})
    return pd.DataFrame(rows)


_TILE = 64
"""Variants summed in registers before a person's accumulator is updated (compiled kernels)."""


def _packed_kernels() -> Any:
    try:
        from rlsepi import _kernels
    except ImportError:  # numba missing: the numpy path gives the same numbers, slower
        return None
    return _kernels


def _score_packed(kernels: Any, genotypes: Genotypes, vidx: np.ndarray, eff_a1: np.ndarray, vals: np.ndarray,
                  is_dom: np.ndarray, is_rec: np.ndarray, founders: np.ndarray, imputation: str,
                  score_freq: np.ndarray, f_ext: np.ndarray | None, sums: np.ndarray, dosage_sum: np.ndarray,
                  nonmiss: np.ndarray, eff_freq: np.ndarray, imputed: np.ndarray, *, block_bytes: int) -> None:
    """Score PLINK 1 packed genotypes with per-variant tables over the four 2-bit codes (see :mod:`rlsepi._kernels`).

    Hard calls only take 0, 1 or 2 copies, so the table holds each weight's exact contribution at
    that dosage (additive, dominant, recessive or dosage weights alike) and, for the missing
    code, the expected contribution under HWE at the imputation frequency (plink2's w 2 f for
    additive weights), or 0 without imputation.
    """
    import os

    n = genotypes.n_samples
    m = vidx.size
    kw = vals.shape[0]
    nb = (n + 3) // 4
    order = np.argsort(vidx, kind="stable")
    block = max(1, min(m, int(block_bytes // max(nb, 1) // 4)))
    founder = np.ascontiguousarray(founders, dtype=np.bool_)
    all_founders = bool(founder.all())
    n_chunks = max(1, min(nb, 4 * (os.cpu_count() or 1)))
    # one accumulator: the k weights' sums, then the named-allele dosage, then the missing count
    acc = np.zeros((n, kw + 2))
    for lo in range(0, m, block):
        sel = order[lo:lo + block]
        b = sel.size
        packed = genotypes.read_packed(vidx[sel])
        a1c, called_f, miss = kernels.bed_counts(packed, founder, all_founders, n, kernels.LUT_A1, kernels.LUT_MISS)
        with np.errstate(invalid="ignore", divide="ignore"):
            f_a1 = a1c / (2.0 * called_f)
        sw = ~eff_a1[sel]
        f_sample = np.where(sw, 1.0 - f_a1, f_a1)
        eff_freq[sel] = f_sample
        imputed[sel] = miss
        if imputation == "mean-sample":
            f_imp = np.nan_to_num(f_sample if f_ext is None else f_ext[sel], nan=0.5)
        elif imputation == "mean-score":
            f_imp = np.nan_to_num(np.where(np.isfinite(score_freq[sel]), score_freq[sel], f_sample), nan=0.5)
        else:
            f_imp = None
        # effect-allele copies of codes 00, 10, 11 (A1 copies 2, 1, 0; effect = A2 reverses them)
        d_codes = {0: np.where(sw, 0, 2), 2: np.ones(b, dtype=np.int64), 3: np.where(sw, 2, 0)}
        v = vals[:, sel, :]  # (k, b, 3)
        cols = np.arange(b)
        table = np.zeros((b, 4, kw + 2))
        for code, d in d_codes.items():
            table[:, code, :kw] = v[:, cols, d].T
            table[:, code, kw] = np.where(is_dom[sel], np.minimum(d, 1), np.where(is_rec[sel], np.maximum(d - 1, 0), d))
        table[:, 1, kw + 1] = 1.0
        if f_imp is not None:
            hwe = np.stack([(1 - f_imp) ** 2, 2 * f_imp * (1 - f_imp), f_imp**2])  # (3, b)
            table[:, 1, :kw] = np.einsum("kbd,db->bk", v, hwe)
        if kw == 1:  # the usual single weight: four people's sums stay in registers over a tile of variants
            kernels.bed_accumulate3(packed, table, n, acc, n_chunks, _TILE)
        else:
            kernels.bed_accumulate(packed, table, n, acc, n_chunks)
    sums += acc[:, :kw]
    dosage_sum += acc[:, kw]
    nonmiss += m - np.rint(acc[:, kw + 1]).astype(np.int64)


def _score_rows(kernels: Any, genotypes: Genotypes, vidx: np.ndarray, eff_a1: np.ndarray, count_a2: np.ndarray,
                vals: np.ndarray, is_dom: np.ndarray, is_rec: np.ndarray, founders: np.ndarray, imputation: str,
                score_freq: np.ndarray, f_ext: np.ndarray | None, sums: np.ndarray, dosage_sum: np.ndarray,
                nonmiss: np.ndarray, eff_freq: np.ndarray, imputed: np.ndarray, *, block_bytes: int) -> None:
    """Score variant-major dosage rows (``Genotypes.read_rows``) with the piecewise-linear kernel.

    A contribution at effect dosage d is linear between the values at 0, 1 and 2 copies (exact for
    additive weights and hard calls; the interpolation of :func:`score_genotypes` for fractional
    dosages of dominant, recessive and dosage-weight rows). Rows count ``a1`` (``a2`` where
    ``count_a2``), so an effect allele that is the counted allele's partner reads the knots reversed.
    """
    import os

    n = genotypes.n_samples
    m = vidx.size
    kw = vals.shape[0]
    order = np.argsort(vidx, kind="stable")
    block = max(1, min(m, int(block_bytes // (8 * max(n, 1)))))
    founder = np.ascontiguousarray(founders, dtype=np.bool_)
    n_chunks = max(1, min(n, 4 * (os.cpu_count() or 1)))
    acc = np.zeros((n, kw + 2))
    for lo in range(0, m, block):
        sel = order[lo:lo + block]
        b = sel.size
        rows = genotypes.read_rows(vidx[sel], count_a2[sel])
        if rows.dtype not in (np.int8, np.float32, np.float64) or not rows.flags.c_contiguous:
            rows = np.ascontiguousarray(rows, dtype=np.float64)
        if rows.dtype == np.int8:
            tot, called_f, miss = kernels.hardcall_counts(rows, founder)
        else:
            tot, called_f, miss = kernels.dosage_counts(rows, founder)
        with np.errstate(invalid="ignore", divide="ignore"):
            f_cnt = tot / (2.0 * called_f)  # frequency of the counted allele among founders
        sw = ~eff_a1[sel]
        f_sample = np.where(sw, 1.0 - f_cnt, f_cnt)
        eff_freq[sel] = f_sample
        imputed[sel] = miss
        if imputation == "mean-sample":
            f_imp = np.nan_to_num(f_sample if f_ext is None else f_ext[sel], nan=0.5)
        elif imputation == "mean-score":
            f_imp = np.nan_to_num(np.where(np.isfinite(score_freq[sel]), score_freq[sel], f_sample), nan=0.5)
        else:
            f_imp = None
        v = vals[:, sel, :]  # (k, b, 3) at effect dosage 0, 1, 2
        knots = np.zeros((b, 3, kw + 2))
        eff_d = np.arange(3.0)
        for x in range(3):  # counted-allele dosage x -> effect dosage x, or 2 - x when swapped
            d = np.where(sw, 2 - x, x)
            knots[:, x, :kw] = v[:, np.arange(b), d].T
            knots[:, x, kw] = np.where(is_dom[sel], np.minimum(eff_d[d], 1), np.where(is_rec[sel], np.maximum(eff_d[d] - 1, 0),
                                                                                      eff_d[d]))
        missrow = np.zeros((b, kw + 2))
        missrow[:, kw + 1] = 1.0
        if f_imp is not None:
            hwe = np.stack([(1 - f_imp) ** 2, 2 * f_imp * (1 - f_imp), f_imp**2])  # (3, b)
            missrow[:, :kw] = np.einsum("kbd,db->bk", v, hwe)
        if kw == 1 and rows.dtype == np.int8:  # hard calls: a lookup in the knots (row 3: missing)
            kernels.hardcall_accumulate3(rows, np.concatenate([knots, missrow[:, None, :]], axis=1), acc, n_chunks,
                                         _TILE)
        elif kw == 1:
            coef = np.stack([knots[:, 0], knots[:, 1] - knots[:, 0], knots[:, 2] - knots[:, 1], missrow], axis=1)
            kernels.dosage_accumulate3(rows, coef, acc, n_chunks, _TILE)
        else:
            kernels.dosage_accumulate(rows, knots, missrow, acc, n_chunks)
    sums += acc[:, :kw]
    dosage_sum += acc[:, kw]
    nonmiss += m - np.rint(acc[:, kw + 1]).astype(np.int64)


def reference_distributions(reference: Any, weights: Sequence[str], vals: np.ndarray, score_freq: np.ndarray,
                            sample_freq: np.ndarray) -> dict[str, ReferenceDistribution]:
    """The reference distribution of each weight column: the one given (for all columns, or per
    column in a mapping), or the analytic one from the scoring file's effect-allele frequencies,
    the sample's where the file has none (``vals``: per column, the value of 0/1/2 copies)."""
    refs: dict[str, ReferenceDistribution] = {}
    for k, w in enumerate(weights):
        if isinstance(reference, ReferenceDistribution):
            refs[w] = reference
        elif isinstance(reference, Mapping):
            if w not in reference:
                raise RLSEpiError(f"no reference distribution for weight '{w}'")
            refs[w] = reference[w]
        else:
            f = np.where(np.isfinite(score_freq), score_freq, sample_freq)
            src = ("scoring-file effect-allele frequencies" if np.isfinite(score_freq).all()
                   else "sample effect-allele frequencies" if not np.isfinite(score_freq).any()
                   else "scoring-file frequencies, the sample's where absent")
            if not np.isfinite(f).all():
                f = np.nan_to_num(f, nan=0.0)
            ref = analytic_reference(vals[k], f)
            refs[w] = ReferenceDistribution(ref.kind, ref.mean, ref.sd, ref.values, ref.probs,
                                            f"{ref.description}, from {src}")
    return refs


def score_genotypes(
    genotypes: Genotypes,
    score: ScoringFile | None = None,
    *,
    imputation: Imputation = "mean-sample",
    palindromic: Palindromic = "exclude",
    duplicates: Literal["resolve", "skip"] = "resolve",
    min_overlap: float = 0.75,
    reference: Literal["analytic"] | ReferenceDistribution | Mapping[str, ReferenceDistribution] = "analytic",
    build: str | None = None,
    block_bytes: int = 1 << 26,
    freq: Mapping[tuple[str, str], float] | None = None,
) -> PRSResult:
    """Score genotypes with a scoring file, as ``plink2 --score`` does.

    Parameters
    ----------
    genotypes : Genotypes
        From :func:`read_genotypes`, :func:`plink_genotypes`, :func:`vcf_genotypes` or
        :func:`cohort_genotypes`.
    score : ScoringFile, optional
        Default :func:`default_score`.
    imputation : {"mean-sample", "mean-score", "none"}
        Missing genotypes count as 2 x the effect-allele frequency of the sample (plink2's
        default; computed from founders' non-missing calls), of the scoring file
        (``allelefrequency_effect``; the sample's where the file has none), or not at all.
    palindromic, duplicates, build
        See :func:`match_variants`.
    min_overlap : float
        Fail when the matched share of total |weight| is below this for any weight.
    reference : "analytic", ReferenceDistribution or mapping of weight to one
        For ``z`` and ``percentile``: analytic under HWE from the scoring file's
        effect-allele frequencies (the sample's where absent), or empirical.
    block_bytes : int
        Memory for one block of genotypes (float64); variants are streamed in blocks.
    freq : mapping of (variant ID, allele) to frequency, optional
        External allele frequencies (:func:`read_afreq`, plink2's ``--read-freq``) used instead of
        the sample's for mean imputation; needed when the sample has fewer than
        :data:`MIN_FOUNDERS_FOR_FREQ` founders.

    Returns
    -------
    PRSResult

    Notes
    -----
    For person i and scored (matched) variants j with effect-allele dosage d_ij and
    weight w_j (plink2's definitions, ``--score ... cols=+scoresums,+denom``):

    - ``SUM`` = sum_j w_j d_ij over non-missing calls, plus, with mean imputation,
      sum_j w_j 2 f_j over missing calls (f_j the effect-allele frequency);
    - ``ALLELE_CT`` = 2 x the number of scored variants with a non-missing call;
    - ``DENOM`` = 2 x the number of scored variants with mean imputation, else ``ALLELE_CT``;
    - ``AVG`` = ``SUM`` / ``DENOM`` (plink2's ``SCORE_AVG``);
    - ``NAMED_ALLELE_DOSAGE_SUM`` = sum_j d_ij over non-missing calls (imputed calls
      do not count), with d_ij transformed to min(d, 1) on dominant and max(d - 1, 0) on
      recessive rows, as plink2's ``dominant``/``recessive`` modifiers do.

    Dominant and recessive rows (``is_dominant``/``is_recessive``) contribute w_j min(d, 1)
    and w_j max(d - 1, 0); rows with ``dosage_0_weight``, ``dosage_1_weight`` and
    ``dosage_2_weight`` contribute those values (linearly interpolated for fractional
    dosages). A missing call is imputed as the expected contribution under HWE at f_j,
    which for additive weights is plink2's w_j 2 f_j.

    Raises
    ------
    DataValidationError
        When the matched share of |weight| is below ``min_overlap``.
    """
    score = score or default_score()
    if _accessions(score):
        return _score_accessions(genotypes, score, imputation=imputation, palindromic=palindromic,
                                 duplicates=duplicates, min_overlap=min_overlap, reference=reference, build=build,
                                 block_bytes=block_bytes, freq=freq)
    if imputation not in IMPUTATION_TEXT:
        raise RLSEpiError(f"imputation must be one of {', '.join(IMPUTATION_TEXT)}, got {imputation!r}")
    if palindromic not in ("exclude", "keep", "frequency"):
        raise RLSEpiError(f"palindromic must be exclude, keep or frequency, got {palindromic!r}")
    n = genotypes.n_samples
    founders = genotypes.founders if genotypes.founders.any() else np.ones(n, dtype=bool)

    def a1_freq(idx: np.ndarray) -> np.ndarray:
        out = np.full(idx.size, np.nan)
        step = max(1, int(block_bytes // (8 * max(n, 1))))
        for lo in range(0, idx.size, step):
            g = _as_float(genotypes.read(idx[lo:lo + step], None))[founders]
            called = np.isfinite(g).sum(axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[lo:lo + step] = np.nansum(g, axis=0) / (2.0 * called)
        return out

    if palindromic == "frequency" and int(founders.sum()) < MIN_FOUNDERS_FOR_FREQ:
        raise DataValidationError(
            f"--palindromic frequency would resolve strands from allele frequencies of only {int(founders.sum())} "
            f"founders (at least {MIN_FOUNDERS_FOR_FREQ} are needed); use --palindromic exclude (or keep)"
        )
    log = match_variants(score, genotypes, palindromic=palindromic, duplicates=duplicates, build=build,
                         sample_freq=a1_freq)
    cov = check_overlap(score, genotypes, log, min_overlap=min_overlap, build=build)
    used = log[log["status"] == "used"].reset_index(drop=True)
    vrows = score.variants.set_index("row").loc[used["row"].to_numpy()].reset_index()
    vidx = used["variant_index"].to_numpy(dtype=np.intp)
    eff_a1 = used["effect_is_a1"].to_numpy(dtype=bool)
    # at a multi-allelic site the effect allele may be REF while a1 is one ALT: 2 - count(a1) is then
    # not the REF count, so the reader counts REF itself (as plink2 does)
    multi_site = (genotypes.variants["multiallelic"].to_numpy(dtype=bool)[vidx]
                  if "multiallelic" in genotypes.variants else np.zeros(len(used), dtype=bool))
    count_a2 = ~eff_a1 & multi_site
    eff_a1 = eff_a1 | count_a2
    m = len(used)
    weights = list(score.weight_names)
    vals = np.stack([_model_values(vrows, w) for w in weights])  # (k, m, 3)
    score_freq = vrows["allelefrequency_effect"].to_numpy(dtype=float)
    f_ext = None
    if freq is not None:
        gv = genotypes.variants
        letters = np.where(used["effect_is_a1"].to_numpy(dtype=bool), gv["a1"].to_numpy()[vidx], gv["a2"].to_numpy()[vidx])
        keys = list(zip(gv["id"].astype(str).to_numpy()[vidx], letters))
        absent = [k for k in keys if k not in freq]
        if absent:
            raise DataValidationError(
                f"the frequency file has no frequency for {len(absent)} scored variants (e.g. {absent[0][0]} allele "
                f"{absent[0][1]}); make it from the same genotypes with 'plink2 --freq'"
            )
        f_ext = np.array([freq[k] for k in keys], dtype=float)
    is_dom = vrows["is_dominant"].to_numpy(dtype=bool)
    is_rec = vrows["is_recessive"].to_numpy(dtype=bool)

    sums = np.zeros((n, len(weights)))
    nonmiss = np.zeros(n, dtype=np.int64)
    dosage_sum = np.zeros(n)
    eff_freq = np.full(m, np.nan)
    imputed = np.zeros(m, dtype=np.int64)
    slopes1 = vals[:, :, 1] - vals[:, :, 0]  # (k, m)
    slopes2 = vals[:, :, 2] - vals[:, :, 1]
    linear = np.all(np.abs(slopes1 - slopes2) <= 1e-15 * np.maximum(1.0, np.abs(slopes1)), axis=0)
    fvec = founders.astype(float)
    n_founders = float(fvec.sum())
    block = max(1, min(m, int(block_bytes // (8 * max(n, 1)))))
    kernels = _packed_kernels() if (genotypes.read_packed is not None or genotypes.read_rows is not None) and m else None
    if kernels is not None and genotypes.read_packed is None:
        # variant-major dosages (PLINK 2, BGEN) scored by a compiled kernel, without a transposed float copy
        groups = []
        _score_rows(kernels, genotypes, vidx, eff_a1, count_a2, vals, is_dom, is_rec, founders, imputation,
                    score_freq, f_ext, sums, dosage_sum, nonmiss, eff_freq, imputed, block_bytes=block_bytes)
    elif kernels is not None:
        # PLINK 1 bytes scored in place by a compiled kernel: no decoded or float copy of the genotypes
        groups = []
        _score_packed(kernels, genotypes, vidx, eff_a1, vals, is_dom, is_rec, founders, imputation, score_freq,
                      f_ext, sums, dosage_sum, nonmiss, eff_freq, imputed, block_bytes=block_bytes)
    else:
        buf = np.empty((n, block), dtype=np.float64, order="F")
        # linear (additive) variants first, then the others; each group read in file order
        groups = [np.flatnonzero(linear), np.flatnonzero(~linear)]
    for is_linear, members in zip((True, False), groups):
        members = members[np.argsort(vidx[members], kind="stable")]
        for lo in range(0, members.size, block):
            sel = members[lo:lo + block]
            raw = np.asarray(genotypes.read(vidx[sel], count_a2[sel]))  # count of a1 (a2 where count_a2); NaN or < 0 missing
            b = sel.size
            # one reused Fortran-order buffer: fresh allocations per block cost more in page
            # faults than the arithmetic
            g = buf[:, :b]
            np.copyto(g, raw, casting="unsafe")
            # missing calls are few: keep their coordinates, not a dense indicator matrix
            src = raw if np.issubdtype(raw.dtype, np.integer) else g
            flat_src = src.reshape(-1, order="F") if src.flags.f_contiguous else src.T.reshape(-1)
            flat = np.flatnonzero(flat_src < 0 if src is raw else np.isnan(flat_src))
            mc, mr = np.divmod(flat, n)
            del raw, src, flat_src
            g[mr, mc] = 0.0
            sw = ~eff_a1[sel]  # effect allele is a2: d = 2 - g
            sign = np.where(sw, -1.0, 1.0)
            # founders' a1 frequency -> effect-allele frequency
            fmiss = np.bincount(mc, weights=fvec[mr], minlength=b)
            with np.errstate(invalid="ignore", divide="ignore"):
                f_a1 = (fvec @ g) / (2.0 * (n_founders - fmiss))
            f_sample = np.where(sw, 1.0 - f_a1, f_a1)
            eff_freq[sel] = f_sample
            imputed[sel] = np.bincount(mc, minlength=b)
            nonmiss += b - np.bincount(mr, minlength=n)
            # a variant without any call has no sample frequency: plink2 imputes 2 x 0.5
            if imputation == "mean-sample":
                f_imp = np.nan_to_num(f_sample if f_ext is None else f_ext[sel], nan=0.5)
            elif imputation == "mean-score":
                f_imp = np.nan_to_num(np.where(np.isfinite(score_freq[sel]), score_freq[sel], f_sample), nan=0.5)
            else:
                f_imp = None
            # effect-allele dosage on called genotypes: d = sign * g + 2 * sw
            if is_linear:
                # contribution a0 + s d on called genotypes = (a0 + 2 s sw) + (s sign) g; a missing call
                # contributes a0 + 2 s f with imputation, nothing without
                a0 = vals[:, sel, 0]  # (k, b)
                s1 = slopes1[:, sel]
                base = a0 + 2.0 * s1 * sw
                prod = g @ np.column_stack([sign, (s1 * sign).T])  # (n, 1 + k): one pass for all weights
                dosage_sum += prod[:, 0] + 2.0 * sw.sum() - np.bincount(mr, weights=2.0 * sw[mc], minlength=n)
                corr = (2.0 * s1 * f_imp - 2.0 * s1 * sw) if f_imp is not None else -base
                sums += prod[:, 1:] + base.sum(axis=1)
                for k in range(len(weights)):
                    sums[:, k] += np.bincount(mr, weights=corr[k, mc], minlength=n)
            else:
                d = np.where(sw[None, :], 2.0 - g, g)
                d[mr, mc] = 0.0
                lo_part, hi_part = np.minimum(d, 1.0), np.maximum(d - 1.0, 0.0)
                # plink2 sums the transformed dosage of dominant (min(d, 1)) and recessive (max(d - 1, 0)) rows
                dm, rc = is_dom[sel], is_rec[sel]
                dosage_sum += d @ (~dm & ~rc).astype(float) + lo_part @ dm.astype(float) + hi_part @ rc.astype(float)
                for k in range(len(weights)):
                    a = vals[k, sel]
                    part = a[:, 0].sum() + lo_part @ slopes1[k, sel] + hi_part @ slopes2[k, sel]
                    part -= np.bincount(mr, weights=a[mc, 0], minlength=n)
                    if f_imp is not None:
                        f = f_imp
                        exp = a[:, 0] * (1 - f) ** 2 + a[:, 1] * 2 * f * (1 - f) + a[:, 2] * f**2
                        part += np.bincount(mr, weights=exp[mc], minlength=n)
                    sums[:, k] += part
    if imputation == "mean-sample" and f_ext is None and imputed.sum() > 0 and n_founders < MIN_FOUNDERS_FOR_FREQ:
        raise DataValidationError(
            f"{int(imputed.sum())} missing genotypes would be mean-imputed from allele frequencies of only "
            f"{int(n_founders)} founders (plink2 refuses below {MIN_FOUNDERS_FOR_FREQ}); give frequencies from a larger "
            "sample (--read-freq FILE.afreq), use --imputation mean-score or --no-mean-imputation"
        )
    allele_ct = 2 * nonmiss
    denom = np.full(n, 2 * m) if imputation != "none" else allele_ct

    return assemble_result(genotypes.samples, score, weights, log, cov, reference=reference, vals=vals,
                           score_freq=score_freq, eff_freq=eff_freq, imputed=imputed, sums=sums,
                           dosage_sum=dosage_sum, allele_ct=allele_ct, denom=denom, imputation=imputation)


def assemble_result(samples: pd.DataFrame, score: ScoringFile, weights: Sequence[str], log: pd.DataFrame,
                    cov: pd.DataFrame, *, reference: Any, vals: np.ndarray, score_freq: np.ndarray,
                    eff_freq: np.ndarray, imputed: np.ndarray, sums: np.ndarray, dosage_sum: np.ndarray,
                    allele_ct: np.ndarray, denom: np.ndarray, imputation: str) -> PRSResult:
    """The :class:`PRSResult` from the accumulated sums (one process or summed over Dask blocks):
    plink2's columns per weight, z and percentile against each weight's reference
    distribution, and the match log with each used variant's sample frequency and imputations."""
    n = len(samples)
    refs = reference_distributions(reference, weights, vals, score_freq, eff_freq)
    id_col = samples.columns[0]
    out = pd.DataFrame({id_col: samples[id_col].to_numpy()})
    multi = len(weights) > 1
    for k, w in enumerate(weights):
        pre = f"{_label(w)}_" if multi else ""
        out[f"{pre}SUM"] = sums[:, k]
        out[f"{pre}AVG"] = np.where(denom > 0, sums[:, k] / np.maximum(denom, 1), np.nan)  # never / 0
    out["ALLELE_CT"] = allele_ct
    out["DENOM"] = denom
    out["NAMED_ALLELE_DOSAGE_SUM"] = dosage_sum
    for k, w in enumerate(weights):
        pre = f"{_label(w)}_" if multi else ""
        out[f"{pre}z"] = refs[w].z(sums[:, k])
        out[f"{pre}percentile"] = refs[w].percentile(sums[:, k])
    log = log.copy()
    log["sample_effect_freq"] = np.nan
    log["n_imputed"] = 0
    pos = np.flatnonzero(log["status"].to_numpy() == "used")
    log.loc[pos, "sample_effect_freq"] = eff_freq
    log.loc[pos, "n_imputed"] = imputed if imputation != "none" else 0
    nocall = pos[imputed == n] if n else pos[:0]
    if nocall.size:
        note = ("no calls: imputed as 2 x 0.5 copies, as plink2 does" if imputation != "none"
                else "no calls: contributes nothing")
        log.loc[nocall, "reason"] = [f"{r}; {note}" if r else note for r in log.loc[nocall, "reason"]]
    log["imputation"] = imputation
    return PRSResult(scores=out, match_log=log, coverage=cov, imputation=imputation, references=refs,
                     score_name=score.name, n_samples=n)


def _accessions(score: ScoringFile) -> list[str]:
    """The accessions of a combined long-format scoring file (several scores in one), else []."""
    if "accession" not in score.variants.columns or score.variants["accession"].nunique() <= 1:
        return []
    return [str(a) for a in score.variants["accession"].unique()]


def _score_accessions(genotypes: Genotypes, score: ScoringFile, **kwargs: Any) -> PRSResult:
    """A combined long-format file: each accession scored on its own (its own ALLELE_CT, DENOM, ...)."""
    from dataclasses import replace

    parts, logs, covs, refs = [], [], [], {}
    id_col = genotypes.samples.columns[0]
    given = kwargs.get("reference")
    for acc, rows in score.variants.groupby("accession", sort=False):
        sub = replace(score, name=str(acc), variants=rows.reset_index(drop=True))
        if isinstance(given, Mapping):  # each accession its own entry (not the previous accession's)
            kwargs = {**kwargs, "reference": given.get(str(acc), "analytic")}
        r = score_genotypes(genotypes, sub, **kwargs)
        sc = r.scores.drop(columns=[id_col])
        parts.append(sc.add_prefix(f"{acc}_"))
        logs.append(r.match_log.assign(accession=str(acc)))
        covs.append(r.coverage.assign(weight=[f"{acc}:{w}" for w in r.coverage["weight"]]))
        refs.update({f"{acc}:{w}": ref for w, ref in r.references.items()})
    scores = pd.concat([genotypes.samples[[id_col]].reset_index(drop=True)] + parts, axis=1)
    return PRSResult(scores=scores, match_log=pd.concat(logs, ignore_index=True),
                     coverage=pd.concat(covs, ignore_index=True), imputation=kwargs["imputation"], references=refs,
                     score_name=score.name, n_samples=genotypes.n_samples)


def read_afreq(path: str | Path) -> dict[tuple[str, str], float]:
    """Allele frequencies from a plink2 ``--freq`` file (``.afreq``): (variant ID, allele) -> frequency.

    Every allele is listed: each ALT with its ``ALT_FREQS`` value and REF with 1 minus their sum.
    """
    p = Path(path)
    try:
        t = pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, EOFError) as exc:
        raise DataValidationError(f"cannot read frequency file '{p}': {str(exc).splitlines()[0]}") from None
    need = [c for c in ("ID", "REF", "ALT", "ALT_FREQS") if c not in t.columns]
    if need:
        raise DataValidationError(
            f"'{p}' is not a plink2 .afreq file (no {', '.join(need)} column); make one with 'plink2 --freq'"
        )
    out: dict[tuple[str, str], float] = {}
    for row, (vid, ref, alt, fr) in enumerate(zip(t["ID"], t["REF"], t["ALT"], t["ALT_FREQS"]), start=1):
        try:
            fs = [float(x) for x in fr.split(",")]
        except ValueError:
            raise DataValidationError(f"'{p}' row {row} ({vid}) has ALT_FREQS {fr!r}, not numbers") from None
        alts = alt.upper().split(",")
        if len(fs) != len(alts) or not all(0.0 <= f <= 1.0 or math.isnan(f) for f in fs):
            raise DataValidationError(f"'{p}' row {row} ({vid}) has ALT_FREQS {fr!r} for ALT {alt!r}")
        for a, f in zip(alts, fs):
            out[(vid, a)] = f
        out[(vid, ref.upper())] = max(0.0, 1.0 - sum(fs)) if not any(map(math.isnan, fs)) else math.nan
    return out


def score_cohort(df: pd.DataFrame, score: ScoringFile | None = None, *, imputation: Imputation = "mean-sample",
                 min_overlap: float = 0.75, reference: Any = "analytic") -> pd.DataFrame:
    """PRS of every person in a cohort table, indexed like ``df``.

    Parameters
    ----------
    df : DataFrame
        A cohort with one int8 column per locus (count of that locus's effect allele).
    score : ScoringFile, optional
        Default :func:`default_score` (the four default loci, ln(OR) weights).
    imputation, min_overlap, reference
        See :func:`score_genotypes`.

    Returns
    -------
    DataFrame
        Columns ``SUM``, ``AVG``, ``ALLELE_CT``, ``DENOM``, ``NAMED_ALLELE_DOSAGE_SUM``,
        ``z``, ``percentile`` (weight-prefixed when the score has several weights); the
        percentile is against the analytic HWE distribution unless ``reference`` says
        otherwise. The :class:`PRSResult` is in ``.attrs["prs"]``.
    """
    res = score_genotypes(cohort_genotypes(df), score, imputation=imputation, min_overlap=min_overlap,
                          reference=reference)
    out = res.scores.drop(columns=res.scores.columns[0])
    out.index = df.index
    out.attrs["prs"] = res
    return out


def score_file(genotypes: str | Path, score: ScoringFile | str | Path | None = None, *,
               reference_file: str | Path | None = None, vcf_field: Literal["auto", "GT", "DS"] = "auto",
               build: str | None = None, sample: str | Path | None = None, **kwargs: Any) -> PRSResult:
    """Score a genotype file (any format of :func:`read_genotypes`); optional empirical reference from another file.

    ``sample`` is the ``.sample`` file of a BGEN ``genotypes`` (not of the reference, whose own
    ``.sample`` sits beside it). A combined scoring file (several accessions) is scored per
    accession, each against the reference's scores of the same accession. Other keyword
    arguments go to :func:`score_genotypes`.
    """
    if score is None:
        score = default_score()
    elif not isinstance(score, ScoringFile):
        score = read_scoring_file(score)
    if reference_file is not None:
        return score_with_empirical_reference(
            score, reference_file, kwargs,
            score_reference=lambda kw: score_genotypes(
                read_genotypes(reference_file, build=build, vcf_field=vcf_field), score, build=build, **kw),
            score_target=lambda kw: score_genotypes(
                read_genotypes(genotypes, build=build, vcf_field=vcf_field, sample=sample), score, build=build, **kw))
    return score_genotypes(read_genotypes(genotypes, build=build, vcf_field=vcf_field, sample=sample), score,
                           build=build, **kwargs)


def score_with_empirical_reference(score: ScoringFile, reference_file: str | Path, kwargs: dict[str, Any], *,
                                   score_reference: Callable[[dict[str, Any]], PRSResult],
                                   score_target: Callable[[dict[str, Any]], PRSResult]) -> PRSResult:
    """Score the reference file, turn its SUMs into an empirical reference for each weight, and
    score the target against it; refuse when the two match different scoring-file rows.

    ``score_reference(kw)`` and ``score_target(kw)`` score one file with keyword arguments ``kw``
    (in one process, or on a cluster: :func:`rlsepi.distributed.score_file`). A warning both
    raise (the same text, e.g. rows lost to a genome-build mismatch, which the two files share
    since they match the same rows) is given once.
    """
    import warnings

    raised: list[warnings.WarningMessage] = []
    n_ref: int | None = None  # how many of ``raised`` came from the reference
    try:
        with warnings.catch_warnings(record=True) as raised:  # the caller's filters still apply ("error" raises)
            ref_res = score_reference({k: v for k, v in kwargs.items() if k != "reference"})
            n_ref = len(raised)
            result = _score_target_with_reference(score, reference_file, kwargs, ref_res, score_target)
    finally:  # after an error too
        n_ref = len(raised) if n_ref is None else n_ref
        texts = [str(w.message) for w in raised]
        seen: set[str] = set()
        for i, w in enumerate(raised):
            if texts[i] in seen:
                continue
            seen.add(texts[i])
            message = w.message
            if i < n_ref and texts[i] not in texts[n_ref:]:  # the reference's own: say so
                message = w.category(f"reference '{reference_file}': {texts[i]}")
            warnings.warn_explicit(message, w.category, w.filename, w.lineno)
    return result


def _score_target_with_reference(score: ScoringFile, reference_file: str | Path, kwargs: dict[str, Any],
                                 ref_res: PRSResult, score_target: Callable[[dict[str, Any]], PRSResult]) -> PRSResult:
    """The second half of :func:`score_with_empirical_reference`: the target against the reference's SUMs."""
    multi = len(score.weight_names) > 1
    description = f"empirical, {ref_res.n_samples:,} people in {reference_file}"

    def per_weight(prefix: str) -> dict[str, ReferenceDistribution]:
        return {w: empirical_reference(ref_res.scores[f"{prefix}{_label(w)}_SUM" if multi else f"{prefix}SUM"].to_numpy(),
                                       description=description)
                for w in score.weight_names}

    accessions = _accessions(score)
    reference: dict[str, Any]
    if accessions:  # a combined file: each accession against the reference's scores of the same accession
        reference = {acc: per_weight(f"{acc}_") for acc in accessions}
    else:
        reference = per_weight("")
    result = score_target({**kwargs, "reference": reference})
    used_ref = set(ref_res.match_log.loc[ref_res.match_log["status"] == "used", "row"])
    used = set(result.match_log.loc[result.match_log["status"] == "used", "row"])
    if used != used_ref:
        diff = sorted(used ^ used_ref)
        raise DataValidationError(
            f"the reference '{reference_file}' and the genotypes match different scoring-file rows "
            f"({len(diff)} differ, e.g. row {diff[0]}), so their scores are not comparable; "
            "give a reference with the same variants, or use the analytic reference"
        )
    return result


def write_scores(result: PRSResult, path: str | Path, *, force: bool = False) -> tuple[Path, Path]:
    """Write the scores (TSV, or Parquet by extension) and the match log beside them, atomically.

    The match log goes to ``<path without extension>.matchlog.tsv``. The first lines of a
    TSV output are ``#`` comments saying the score, the imputation and the references.
    """
    p = Path(path)
    stem = p.name[: -len("".join(p.suffixes))] if p.suffixes else p.name
    log_path = p.with_name(f"{stem}.matchlog.tsv")
    check_output_path(p, force=force)
    check_output_path(log_path, force=force)
    notes = [f"score={result.score_name}", f"imputation={result.imputation}: {IMPUTATION_TEXT[result.imputation]}"]
    notes += [f"reference[{w}]={ref.description}; mean={ref.mean!r}; sd={ref.sd!r}" for w, ref in result.references.items()]
    notes += [f"coverage[{r.weight}]={r.variants_used}/{r.variants_total} variants; "
              f"{r.share_abs_weight:.6f} of total |weight|" for r in result.coverage.itertuples(index=False)]
    if p.suffix.lower() in (".parquet", ".pq"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        from rlsepi.io import provenance_metadata

        table = pa.Table.from_pandas(result.scores, preserve_index=False)
        table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                               **provenance_metadata(prs_notes=notes)})
        with atomic_output(p, force=force) as fh:
            pq.write_table(table, fh)
    else:
        with atomic_output(p, force=force, mode="w") as fh:
            for line in notes:
                fh.write(f"# {line}\n")
            write_tsv(fh, result.scores, float_format="%.10g")
    with atomic_output(log_path, force=force, mode="w") as fh:
        write_tsv(fh, result.match_log, float_format="%.6g")
    return p, log_path
