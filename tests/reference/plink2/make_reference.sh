#!/bin/sh
# Known answers for tests/test_polygenic.py::test_committed_plink2_reference.
# Inputs: written by tests/test_polygenic.py::make_fixture(Path("."), seed=20241122)
#   (run from this folder:  ../../../.venv/bin/python -c 'import sys; sys.path.insert(0, "../.."); \
#    from pathlib import Path; import test_polygenic as t; t.make_fixture(Path("."))')
# Outputs: made by PLINK v2.00a3.5 AVX2 (9 Aug 2022) (Debian package plink2) with exactly:
set -e
plink2 --bfile geno --score plink2_score.tsv 1 2 header-read ignore-dup-ids list-variants \
  cols=+scoresums,+denom --score-col-nums 3-4 --threads 1 --memory 1024 --out plink2_mean
plink2 --bfile geno --score plink2_score.tsv 1 2 header-read ignore-dup-ids list-variants \
  no-mean-imputation cols=+scoresums,+denom --score-col-nums 3-4 --threads 1 --memory 1024 --out plink2_nomi
rm -f plink2_mean.log plink2_nomi.log
