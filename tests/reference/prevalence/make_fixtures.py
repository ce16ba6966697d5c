"""Regenerate the cohort fixtures that make_reference.R and the tests read.

Run from the repository root:  .venv/bin/python tests/reference/prevalence/make_fixtures.py
The files are committed, so R and Python read the same bytes; rerun only on purpose.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rlsepi.cohort import simulate

SEED = 20261122
DATA = Path(__file__).resolve().parents[2] / "data"


def small() -> pd.DataFrame:
    """100 people at three ages, counts chosen to check by eye.

    age 22: women 2/20, men 1/20; age 47: women 5/20, men 2/20; age 72: women 4/10, men 1/10.
    """
    rows = []
    for age, sex, n, cases in [(22, "female", 20, 2), (22, "male", 20, 1), (47, "female", 20, 5),
                               (47, "male", 20, 2), (72, "female", 10, 4), (72, "male", 10, 1)]:
        rows += [{"age": age, "sex": sex, "rls": int(i < cases)} for i in range(n)]
    df = pd.DataFrame(rows)
    df.insert(0, "person_id", range(1, len(df) + 1))
    return df


def messy(df: pd.DataFrame) -> pd.DataFrame:
    """The small cohort as a user might hand it over: other names, other codes, 3 incomplete rows."""
    out = pd.DataFrame({
        "id": df["person_id"], "Age": df["age"],
        "gender": df["sex"].map({"female": "F", "male": "M"}),
        "rls_dx": df["rls"].map({1: "yes", 0: "no"}),
    })
    extra = pd.DataFrame({"id": [101, 102, 103], "Age": [50, None, 60], "gender": [None, "F", "M"],
                          "rls_dx": ["yes", "no", ""]})
    return pd.concat([out, extra], ignore_index=True)


def main() -> None:
    DATA.mkdir(exist_ok=True)
    s = small()
    s.to_csv(DATA / "prevalence_small.csv", index=False)
    messy(s).to_csv(DATA / "prevalence_messy.csv", index=False)
    sim = simulate(5000, rng=SEED)
    cols = ["person_id", "age", "sex", "pregnant", "trimester", "ferritin", "rls", "rls_clinically_significant"]
    sim = sim[cols].copy()
    for c in ("pregnant", "rls", "rls_clinically_significant"):
        sim[c] = sim[c].astype(int)
    sim["ferritin"] = sim["ferritin"].round(2)
    sim.to_csv(DATA / f"cohort_5000_seed{SEED}.csv", index=False)




def standards() -> None:
    """The bundled standard populations as a CSV that make_reference.R reads (input, not expected values)."""
    from rlsepi.parameters import STANDARD_POPULATIONS

    rows = [{"standard": k, "age_lower": lo, "weight": w}
            for k, v in STANDARD_POPULATIONS.items() for lo, w in v["bands"]]
    pd.DataFrame(rows).to_csv(Path(__file__).with_name("standards.csv"), index=False)


if __name__ == "__main__":
    main()
    standards()
