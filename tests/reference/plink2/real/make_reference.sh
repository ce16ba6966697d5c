#!/bin/sh
# Known answers for tests/test_prs_formats.py, from PLINK v2.00a3.5 AVX2 (9 Aug 2022) (Debian package plink2).
# Inputs: ../../../../.venv/bin/python make_inputs.py (run from this folder), then exactly:
set -e
P="plink2 --threads 1 --memory 1024"
S="cols=+scoresums,+denom list-variants"
# multi-allelic VCF: PLINK 2 fileset (multi-allelic kept), BGEN 1.2 8-bit of its biallelic sites, and scores
$P --vcf multi.vcf --make-pgen --out multi
$P --pfile multi --export bcf --out multi_bcf
$P --pfile multi --export vcf bgz --out multi_bgz
$P --pfile multi --max-alleles 2 --export bgen-1.2 bits=8 ref-first --out multi2
$P --pfile multi --max-alleles 2 --make-pgen --out multi2
$P --pfile multi --score multi_ref.tsv 1 2 3 header $S --out multi_ref
$P --pfile multi --score multi_alt.tsv 1 2 3 header $S --out multi_alt
$P --pfile multi --score multi_ref.tsv 1 2 3 header no-mean-imputation $S --out multi_ref_nomi
$P --bgen multi2.bgen ref-first --sample multi2.sample --score multi_alt.tsv 1 2 3 header $S --out multi2_bgen_alt
$P --pfile multi2 --score multi_alt.tsv 1 2 3 header $S --out multi2_alt
# 20 people: plink2 refuses their own frequencies for mean imputation ("Error: This run requires decent allele
# frequencies"), so the frequencies of all 60 come from --read-freq
$P --pfile multi --freq --out multi
$P --pfile multi --keep keep20.txt --make-pgen --out small20
$P --pfile small20 --read-freq multi.afreq --score multi_ref.tsv 1 2 3 header $S --out small20_ref
# dosage-only PGS004255: SUM = sum_j dosage_0_weight_j + dominant (d1 - d0) + recessive (d2 - d1) terms
$P --vcf pgs38.vcf --make-pgen --out pgs38
$P --pfile pgs38 --score pgs004255_dom.tsv 1 2 3 header dominant $S --out pgs004255_dom
$P --pfile pgs38 --score pgs004255_rec.tsv 1 2 3 header recessive $S --out pgs004255_rec
# combined file: one plink2 run per accession
$P --vcf combined37.vcf --make-pgen --out combined37
for acc in PGS000001 PGS000002; do
  $P --pfile combined37 --score combined_$acc.tsv 1 2 3 header $S --out combined_$acc
done
# real exome calls (cyvcf2 test data), IDs chr:pos:ref:alt; half-calls (./0) read as missing, as rlsepi does
$P --vcf cyvcf2_test.vcf.gz --vcf-half-call missing --set-all-var-ids @:#:\$r:\$a --new-id-max-allele-len 1000 --make-pgen --out cyvcf2_test
$P --pfile cyvcf2_test --score real_score.tsv 3 4 6 header $S --out real
rm -f *.log
