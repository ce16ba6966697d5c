"""The bundled standard populations against copies typed from their published tables.

tests/reference/standards/ holds the tables as published (see its README for sources and
units); nothing there is written from rlsepi.parameters. Our bands are aggregated or
normalised to the published grouping and units, never the other way round.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rlsepi.parameters import STANDARD_POPULATIONS
from rlsepi.prevalence import standard_population

REF = Path(__file__).parent / "reference" / "standards"


def _ours(name: str) -> pd.DataFrame:
    return pd.DataFrame(list(STANDARD_POPULATIONS[name]["bands"]), columns=["age_lower", "weight"])


def _aggregate(ours: pd.DataFrame, lowers: list[int]) -> np.ndarray:
    """Sum our bands into the published groups given by their lower limits (ours must nest)."""
    edges = np.array(lowers)
    assert set(edges) <= set(ours["age_lower"]) | {1}, "published groups must be unions of our bands"
    idx = np.searchsorted(edges, ours["age_lower"].to_numpy(), side="right") - 1
    return np.bincount(idx, weights=ours["weight"].to_numpy(dtype=float), minlength=len(edges))


def test_esp2013_matches_eurostat_table() -> None:
    pub = pd.read_csv(REF / "esp2013.csv")
    assert pub["weight"].sum() == 100_000
    # we merge the published 0 and 1-4 groups into 0-4: compare on that grouping
    pub04 = pub.assign(age_lower=pub["age_lower"].where(pub["age_lower"] != 1, 0)).groupby("age_lower")["weight"].sum()
    ours = _ours("esp2013").set_index("age_lower")["weight"]
    assert ours.index.tolist() == pub04.index.tolist()
    assert ours.tolist() == pub04.tolist()  # integers, exactly


def test_who2000_matches_ahmad_2001_and_seer() -> None:
    pub = pd.read_csv(REF / "who2000.csv")
    ours = _ours("who2000")
    assert ours["age_lower"].tolist() == pub["age_lower"].tolist()
    np.testing.assert_array_equal(ours["weight"].to_numpy(), pub["percent"].to_numpy())
    # SEER*Stat's integers: the percentages normalised to a million and rounded; 90-94 raised by one
    per_million = np.rint(ours["weight"].to_numpy() / ours["weight"].sum() * 1e6)
    per_million[pub["age_lower"].to_numpy() == 90] += 1
    np.testing.assert_array_equal(per_million, pub["seer_stat_per_million"].to_numpy())
    assert pub["seer_stat_per_million"].sum() == 1_000_000


def test_us2000_matches_nvsr_table() -> None:
    pub = pd.read_csv(REF / "us2000_nvsr.csv")
    ours = _ours("us2000")
    # NVSR's groups are sums of the 5-year groups rounded to thousands: exact on that footing
    thousands = ours.assign(weight=np.rint(ours["weight"] / 1000) * 1000)
    agg = _aggregate(thousands, [0, 5, 15, 25, 35, 45, 55, 65, 75, 85])
    # NVSR's first two rows (under 1, 1-4) are our 0-4 band
    pub_pop = np.concatenate([[pub["population"].iloc[:2].sum()], pub["population"].iloc[2:].to_numpy()])
    np.testing.assert_array_equal(agg, pub_pop)
    pub_million = np.concatenate([[pub["standard_million"].iloc[:2].sum()], pub["standard_million"].iloc[2:]])
    assert np.abs(agg / agg.sum() * 1e6 - pub_million).max() < 1.5


def test_us2000_matches_klein_schoenborn_standard_million() -> None:
    pub = pd.read_csv(REF / "us2000_million.csv")
    assert pub["standard_million"].sum() == 1_000_000
    ours = _ours("us2000")
    # NCHS computed the million from populations in thousands; do the same with ours
    thousands = np.rint(ours["weight"].to_numpy() / 1000)
    mine = np.rint(thousands / thousands.sum() * 1e6)
    pub04 = np.concatenate([[pub["standard_million"].iloc[:2].sum()], pub["standard_million"].iloc[2:]])
    assert ours["age_lower"].tolist() == [0, *pub["age_lower"].iloc[2:].tolist()]
    # NCHS rounded so the total is exactly 1,000,000: at most 1 apart per group
    assert np.abs(mine - pub04).max() <= 1


@pytest.mark.parametrize("name", ["esp2013", "who2000", "us2000"])
def test_standard_population_serves_the_published_weights(name: str) -> None:
    bands, source = standard_population(name)
    ours = _ours(name)
    np.testing.assert_array_equal(bands["weight"].to_numpy(), ours["weight"].to_numpy())
    assert source == STANDARD_POPULATIONS[name]["source"]
