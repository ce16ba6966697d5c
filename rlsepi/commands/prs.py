"""``rlsepi prs GENOTYPES --out FILE``: polygenic risk scores that match ``plink2 --score``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rlsepi.commands import fraction
from rlsepi.distributed import parse_scheduler
from rlsepi.errors import RLSEpiError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prs", help="polygenic risk scores (same numbers as plink2 --score)",
        description="Score each person in GENOTYPES with a PGS Catalog scoring file (default: the bundled RLS "
        "score of MEIS1, BTBD9 and two PTPRD signals). GENOTYPES is a cohort (.parquet/.csv with one column per "
        "rsID), a PLINK 1 .bed, a PLINK 2 .pgen (hard calls and dosages, multi-allelic), a BGEN 1.2 .bgen (with its "
        ".sample beside it, or --sample), a VCF/BCF (.vcf, .vcf.gz, .vcf.bgz, .bcf; GT or DS), or a prefix naming one fileset. Writes SUM, AVG, ALLELE_CT, "
        "DENOM and NAMED_ALLELE_DOSAGE_SUM as plink2 defines them, plus z and percentile against a reference "
        "distribution (a TSV starts with '#' lines naming the score, the imputation, the reference and the "
        "coverage; Parquet keeps them in its metadata), and a match log (FILE without extension + .matchlog.tsv) saying what happened to each "
        "scoring-file row. Exit 2 when too little of the score matches (--min-overlap) or the input is bad.",
    )
    p.add_argument("genotypes", type=Path, help="cohort file, .bed, .pgen, .bgen, VCF/BCF, or a fileset prefix")
    p.add_argument("--score", type=Path, metavar="FILE",
                   help="PGS Catalog scoring file (gzipped or not, harmonised or not) or a TSV with rsID and/or "
                   "chr/pos, effect_allele, other_allele and weight columns (default: the bundled RLS score)")
    p.add_argument("--extended", action="store_true",
                   help="use the bundled extended score (adds MAP2K5/SKOR1, TOX3 and 2p14) instead of the default")
    p.add_argument("--weights", metavar="COL[,COL]", help="weight columns to score (default: effect_weight and "
                   "every effect_weight_* column)")
    p.add_argument("--out", required=True, type=Path, metavar="FILE", help="output scores, .tsv or .parquet")
    p.add_argument("--force", action="store_true", help="overwrite FILE and its match log if they exist")
    p.add_argument("--min-overlap", type=fraction(closed=True), default=0.75, metavar="SHARE",
                   help="fail (exit 2) when the matched share of total |weight| is below SHARE (default 0.75)")
    p.add_argument("--imputation", choices=["mean-sample", "mean-score", "none"], default="mean-sample",
                   help="missing genotypes: 2 x the sample effect-allele frequency (plink2 default), 2 x the "
                   "scoring file's frequency, or none (plink2 no-mean-imputation)")
    p.add_argument("--no-mean-imputation", dest="imputation", action="store_const", const="none",
                   help="same as --imputation none")
    p.add_argument("--palindromic", choices=["exclude", "keep", "frequency"], default="exclude",
                   help="A/T and C/G variants: leave out (default), keep the letters as given (as plink2 does), "
                   "or resolve the strand by comparing allele frequencies (those near 0.5 are left out)")
    p.add_argument("--duplicates", choices=["resolve", "skip"], default="resolve",
                   help="several genotype variants with the matched ID/position: keep the one whose alleles fit "
                   "(default) or skip them all (plink2 ignore-dup-ids)")
    p.add_argument("--read-freq", type=Path, metavar="FILE.afreq",
                   help="allele frequencies for mean imputation from a plink2 --freq file (as plink2 --read-freq); "
                   "needed below 50 founders")
    p.add_argument("--reference", metavar="FILE",
                   help="genotypes of a reference cohort for z and percentile (empirical); default: analytic, "
                   "from the effect-allele frequencies under Hardy-Weinberg equilibrium")
    p.add_argument("--build", choices=["GRCh37", "GRCh38"],
                   help="genome build of the genotypes' positions (default: from the VCF/pvar header where it says, "
                   "else unknown: positions of a harmonised score are then not compared, only IDs)")
    p.add_argument("--sample", type=Path, metavar="FILE.sample",
                   help="the Oxford .sample file of a BGEN GENOTYPES (default: the .bgen's name with .sample, or the "
                   "sample IDs stored in the .bgen); as plink2 --sample")
    p.add_argument("--vcf-field", choices=["auto", "GT", "DS"], default="auto",
                   help="VCF genotype field (default: DS where present, else GT)")
    p.add_argument("--scheduler", type=parse_scheduler, default=None, metavar="local[:N]|tcp://HOST:PORT",
                   help="score on a Dask cluster (local:N local worker processes, or a running 'dask scheduler'): "
                   "the variants are split into blocks across the workers and their partial sums added, giving the "
                   "same scores as one process. Matching, coverage and the reference run here; with tcp:// the "
                   "workers open the genotype file at the same path (a shared file system)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(run=run)


def _is_cohort(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith((".parquet", ".pq", ".csv", ".tsv", ".csv.gz", ".tsv.gz", ".txt"))


def run(args: argparse.Namespace) -> int:
    from rlsepi import polygenic as pg

    if args.out.suffix.lower() not in (".tsv", ".txt", ".parquet", ".pq"):
        raise RLSEpiError(f"output '{args.out}' must end in .tsv or .parquet")
    from rlsepi.commands import check_outputs

    check_outputs([args.out], inputs=[args.genotypes, args.score, Path(args.reference) if args.reference else None,
                                      args.sample], force=args.force)
    if _is_cohort(args.genotypes):  # a cohort goes through the schema like in every other command
        from rlsepi.commands import require_file
        from rlsepi.io import read_cohort
        from rlsepi.schema import validate

        df = read_cohort(require_file(args.genotypes, "cohort file"))
        if len(df) == 0:
            raise RLSEpiError(f"cohort file '{args.genotypes}' has a header but no rows; give one row per person")
        validate(df)
        from rlsepi.schema import is_rsid

        if not any(is_rsid(str(c)) for c in df.columns):
            raise RLSEpiError(f"cohort file '{args.genotypes}' has no genotype columns (named by rsID, e.g. "
                              "rs2300478, holding 0/1/2 copies of the effect allele); its columns are: "
                              f"{', '.join(map(str, df.columns[:8]))}")
    if args.score is not None and args.extended:
        raise RLSEpiError("give either --score or --extended, not both")
    if args.score is not None:
        if not args.score.exists():
            raise RLSEpiError(f"scoring file '{args.score}' does not exist")
        weights = [w.strip() for w in args.weights.split(",")] if args.weights else None
        score = pg.read_scoring_file(args.score, weights=weights)
    else:
        score = pg.extended_score() if args.extended else pg.default_score()
    options = {"reference_file": args.reference, "vcf_field": args.vcf_field, "build": args.build, "sample": args.sample,
               "imputation": args.imputation, "palindromic": args.palindromic, "duplicates": args.duplicates,
               "min_overlap": args.min_overlap, "freq": pg.read_afreq(args.read_freq) if args.read_freq else None}
    if args.scheduler is None:
        result = pg.score_file(args.genotypes, score, **options)
    else:
        from rlsepi import distributed

        pg.read_genotypes(args.genotypes, build=args.build, vcf_field=args.vcf_field,  # bad input: before a cluster
                          sample=args.sample)
        with distributed.connect(args.scheduler, quiet=args.quiet) as client:
            result = distributed.score_file(args.genotypes, score, client=client,
                                            progress=not args.quiet and sys.stderr.isatty(), **options)
    out, log = pg.write_scores(result, args.out, force=args.force)
    if not args.quiet:
        print(result.summary(), file=sys.stderr)
        print(f"wrote {out} and {log}", file=sys.stderr)
    return 0
