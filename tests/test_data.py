"""The committed synthetic cohort regenerates bit for bit from its seed."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from rlsepi import __version__
from rlsepi.cohort import write_cohort
from rlsepi.io import read_metadata
from rlsepi.parameters import DEFAULT

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


def test_data_card_states_the_file_and_its_provenance():
    card = (DATA / "README.md").read_text()
    meta = read_metadata(DATA / "cohort_20k.parquet")
    assert re.search(rf"file SHA-256 \| `{sha(DATA / 'cohort_20k.parquet')}`", card)
    assert f"| seed | {meta['seed']} |" in card
    assert DEFAULT.digest() in card
    assert meta["command"].replace(" --out FILE", "") in card
