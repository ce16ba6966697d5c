"""Inputs for the plink2 comparisons in tests/test_prs_formats.py (run from this folder).

Real public files, copied unchanged (licences in LICENSES.md):
  cyvcf2_test.vcf.gz            cyvcf2's tests/test.vcf.gz (real exome calls, GRCh37, 189 people, indels)
  PGS004255_hmPOS_GRCh38.txt.gz PGS Catalog dosage-only scoring file (pygscatalog test data)
  combined.txt.gz               pgscatalog-combine long-format file (several accessions; pygscatalog test data)

Made here (seeded, deterministic; no rlsepi code is used):
  multi.vcf           60 people x 30 sites on chr22, a third of them tri-allelic, 5% no-calls, site 6 with no calls
  multi_ref.tsv       weights on each site's REF allele (plink2 --score columns 1 2 3, header)
  multi_alt.tsv       weights on each site's last ALT allele
  keep20.txt          the first 20 people (a sample too small for its own frequencies)
  pgs38.vcf           300 people at the GRCh38 harmonised positions of PGS004255 (no missing calls)
  pgs004255_dom.tsv / pgs004255_rec.tsv: dosage weights as plink2 dominant + recessive terms (see make_reference.sh)
  combined37.vcf      300 people at the positions of combined.txt.gz, 2% no-calls
  combined_<ACC>.tsv  one plink2 scoring file per accession
  real_score.tsv      random weights on every ALT of cyvcf2_test.vcf.gz, by ID chr:pos:ref:alt
"""

import gzip

import numpy as np

rng = np.random.default_rng(20261124)
BASES = "ACGT"


def vcf(path, build, sites, n, calls):
    head = ["##fileformat=VCFv4.2", f"##reference={build}", '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
            "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t" + "\t".join(f"P{i + 1}" for i in range(n))]
    with open(path, "w") as fh:
        fh.write("\n".join(head) + "\n")
        for (c, p, vid, ref, alts), row in zip(sites, calls):
            fh.write(f"{c}\t{p}\t{vid}\t{ref}\t{','.join(alts)}\t.\tPASS\t.\tGT\t" + "\t".join(row) + "\n")


def draw(n, n_alleles, miss):
    p = rng.dirichlet(np.ones(n_alleles) * 2)
    a = rng.choice(n_alleles, size=(n, 2), p=p)
    out = [f"{x}/{y}" for x, y in a]
    for i in np.flatnonzero(rng.random(n) < miss):
        out[i] = "./."
    return out


def main() -> None:
    # 1. multi-allelic sites
    n = 60
    sites, calls = [], []
    for j in range(30):
        ref = BASES[rng.integers(4)]
        others = [b for b in BASES if b != ref]
        rng.shuffle(others)
        alts = others[: 2 if j % 3 == 0 else 1]
        sites.append(("22", 16050000 + 1000 * j, f"rs{900 + j}", ref, alts))
        calls.append(["./."] * n if j == 5 else draw(n, len(alts) + 1, 0.05))
    vcf("multi.vcf", "GRCh37", sites, n, calls)
    with open("keep20.txt", "w") as fh:
        fh.write("".join(f"P{i + 1}\n" for i in range(20)))
    with open("multi_ref.tsv", "w") as fr, open("multi_alt.tsv", "w") as fa:
        fr.write("ID\tA1\tW\n")
        fa.write("ID\tA1\tW\n")
        for c, p, vid, ref, alts in sites:
            fr.write(f"{vid}\t{ref}\t{rng.normal(0, 0.2):.6f}\n")
            fa.write(f"{vid}\t{alts[-1]}\t{rng.normal(0, 0.2):.6f}\n")

    # 2. dosage-only PGS004255 at its GRCh38 harmonised positions
    rows = [line.rstrip("\n").split("\t") for line in gzip.open("PGS004255_hmPOS_GRCh38.txt.gz", "rt") if not line.startswith("#")]
    h, rows = rows[0], rows[1:]
    col = {k: i for i, k in enumerate(h)}
    sites, calls = [], []
    with open("pgs004255_dom.tsv", "w") as fd, open("pgs004255_rec.tsv", "w") as fr:
        fd.write("ID\tA1\tW\n")
        fr.write("ID\tA1\tW\n")
        for k, r in enumerate(rows):
            c, p, ea, oa = r[col["hm_chr"]], int(r[col["hm_pos"]]), r[col["effect_allele"]], r[col["other_allele"]]
            ref, alt = (oa, ea) if k % 2 else (ea, oa)  # half the effect alleles are REF
            vid = f"{c}:{p}:{ref}:{alt}"
            sites.append((c, p, vid, ref, [alt]))
            calls.append(draw(300, 2, 0.0))
            d0, d1, d2 = (float(r[col[f"dosage_{i}_weight"]]) for i in range(3))
            fd.write(f"{vid}\t{ea}\t{d1 - d0!r}\n")
            fr.write(f"{vid}\t{ea}\t{d2 - d1!r}\n")
    order = sorted(range(len(sites)), key=lambda i: (sites[i][0], sites[i][1]))
    vcf("pgs38.vcf", "GRCh38", [sites[i] for i in order], 300, [calls[i] for i in order])

    # 3. combined long-format file (positions in GRCh37)
    rows = [line.rstrip("\n").split("\t") for line in gzip.open("combined.txt.gz", "rt")]
    h, rows = rows[0], rows[1:]
    col = {k: i for i, k in enumerate(h)}
    seen, sites, calls, per_acc = {}, [], [], {}
    for r in rows:
        c, p, ea, oa = r[col["chr_name"]], int(r[col["chr_position"]]), r[col["effect_allele"]], r[col["other_allele"]]
        key = (c, p)
        if key not in seen:
            seen[key] = f"{c}:{p}:{oa}:{ea}"
            sites.append((c, p, seen[key], oa, [ea]))
            calls.append(draw(300, 2, 0.02))
        per_acc.setdefault(r[col["accession"]], []).append((seen[key], ea, r[col["effect_weight"]]))
    order = sorted(range(len(sites)), key=lambda i: (int(sites[i][0]), sites[i][1]))
    vcf("combined37.vcf", "GRCh37", [sites[i] for i in order], 300, [calls[i] for i in order])
    for acc, rs in per_acc.items():
        with open(f"combined_{acc}.tsv", "w") as fh:
            fh.write("ID\tA1\tW\n")
            for vid, ea, w in rs:
                fh.write(f"{vid}\t{ea}\t{w}\n")

    # 4. random weights on the real exome VCF (every ALT allele, IDs as plink2 --set-all-var-ids @:#:$r:$a)
    with open("real_score.tsv", "w") as fh:
        fh.write("chr_name\tchr_position\tID\teffect_allele\tother_allele\teffect_weight\n")
        for line in gzip.open("cyvcf2_test.vcf.gz", "rt"):
            if line.startswith("#"):
                continue
            f = line.split("\t", 6)
            for alt in f[4].split(","):
                fh.write(f"{f[0]}\t{f[1]}\t{f[0]}:{f[1]}:{f[3]}:{alt}\t{alt}\t{f[3]}\t{rng.normal(0, 0.3):.6f}\n")


if __name__ == "__main__":
    main()
