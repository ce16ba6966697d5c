"""Tests of rlsepi.prevalence."""

from __future__ import annotations

import pandas as pd
import pytest

from rlsepi import prevalence


def test_crude_counts() -> None:
    p = prevalence.crude(pd.DataFrame({"rls": [True] * 8 + [False] * 92}))
    assert (p.n, p.cases, p.prevalence) == (100, 8, 0.08)
    assert p.ci_lower < 0.08 < p.ci_upper
