"""The committed synthetic cohort regenerates bit for bit from its seed."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from rlsepi import __version__, cohort
from rlsepi.cohort import write_cohort
from rlsepi.io import read_metadata
from rlsepi.parameters import DEFAULT, FERRITIN_RESOLUTION

DATA = Path(__file__).resolve().parents[1] / "data" / "synthetic"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_committed_cohort_regenerates_identically(tmp_path):
    committed = DATA / "cohort_20k.parquet"
    meta = read_metadata(committed)
    assert meta["version"] == __version__, "rlsepi's version changed: regenerate the cohort and its data card"
    assert meta["parameters"] == DEFAULT.to_dict()
    out = tmp_path / "again.parquet"
    write_cohort(out, meta["n"], seed=meta["seed"], command=meta["command"])
    assert sha(out) == sha(committed)


def test_stored_values_are_at_their_stated_precision():
    committed = DATA / "cohort_20k.parquet"
    meta = read_metadata(committed)
    assert meta["precision"] == {"ferritin_resolution_ug_per_l": FERRITIN_RESOLUTION,
                                 "model_significant_digits": cohort.MODEL_DIGITS}
    # the model in the metadata is the one the simulator uses, to the last bit
    assert meta["model"] == cohort.solve_model(DEFAULT).to_dict()
    floats = [meta["model"][k] for k in ("intercept", "female", "age_peak", "age_curvature", "ferritin_low",
                                         "clinically_significant_share")]
    floats += meta["model"]["trimester"] + list(meta["model"]["loci"].values())
    assert all(len(f"{abs(x):e}".split("e")[0].replace(".", "").rstrip("0")) <= cohort.MODEL_DIGITS
               for x in floats)
    ferritin = pq.read_table(committed, columns=["ferritin"])["ferritin"].to_numpy()
    assert np.array_equal(ferritin, np.rint(ferritin)) and ferritin.min() >= 1.0


def test_data_card_states_the_file_and_its_provenance():
    card = (DATA / "README.md").read_text()
    meta = read_metadata(DATA / "cohort_20k.parquet")
    assert re.search(rf"file SHA-256 \| `{sha(DATA / 'cohort_20k.parquet')}`", card)
    assert f"| seed | {meta['seed']} |" in card
    assert DEFAULT.digest() in card
    assert meta["command"].replace(" --out FILE", "") in card
    assert f"{cohort.MODEL_DIGITS} significant digits" in card and "whole µg/L" in card
