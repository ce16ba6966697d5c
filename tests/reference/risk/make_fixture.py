"""Write the fixture cohort for the R known-answer tests of rlsepi.risk_models.

Run from the repository root:  .venv/bin/python tests/reference/risk/make_fixture.py
then:                           Rscript tests/reference/risk/glm_proc.R

cohort.csv   a simulated cohort (rlsepi.cohort.simulate, seed below), ferritin rounded to 0.01
weights.csv  the score's weights, ln(OR) per effect allele, from rlsepi.parameters
"""

from pathlib import Path

import pandas as pd

from rlsepi.cohort import simulate
from rlsepi.parameters import DEFAULT

N, SEED = 5000, 20261122
HERE = Path(__file__).parent


def main() -> None:
    df = simulate(N, rng=SEED)
    df["ferritin"] = df["ferritin"].round(2)
    cols = ["person_id", "age", "sex", "pregnant", "trimester", "ferritin",
            *[locus.rsid for locus in DEFAULT.loci], "rls"]
    df[cols].to_csv(HERE / "cohort.csv", index=False)
    pd.DataFrame({
        "rsid": [locus.rsid for locus in DEFAULT.loci],
        "effect_allele": [locus.effect_allele for locus in DEFAULT.loci],
        "weight": [repr(locus.weight) for locus in DEFAULT.loci],
    }).to_csv(HERE / "weights.csv", index=False)


if __name__ == "__main__":
    main()
