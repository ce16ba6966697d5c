"""Reduced versions of the slow coverage validations, run by every `make test`.

`make validate` (RLSEPI_SLOW=1) runs the full ones: 200 cohorts of 100,000 in
test_cohort.py and 200 studies of 20,000 in test_risk.py. Here, 24 cohorts of 30,000: too
few for each coefficient's coverage alone, but pooled over the 13 coefficients (312
intervals) the coverage of the 95% Wald intervals is measured with a binomial SE of 1.2
points, so an interval that is too narrow by a fifth (true coverage ~ 0.89) fails.
(test_risk.py's small_study is the reduced version of the ADEMP study.)
"""

from __future__ import annotations

import math

import numpy as np

from rlsepi import cohort
from test_cohort import MODEL, _fit, _true_coefficients


def test_confidence_intervals_cover_reduced() -> None:
    reps, n = 24, 30_000
    truth = _true_coefficients(MODEL)
    covered = np.zeros((reps, len(truth)), dtype=bool)
    for r in range(reps):
        res = _fit(cohort.simulate(n, rng=30_000 + r))
        lo, hi = res.conf_int().loc[truth.index].T.values
        covered[r] = (lo <= truth.values) & (truth.values <= hi)
    pooled = covered.mean()
    se = math.sqrt(0.95 * 0.05 / covered.size)
    # one-sided at 3.5 SE below 95%, and not implausibly high either (intervals too wide)
    assert 0.95 - 3.5 * se <= pooled <= min(1.0, 0.95 + 3.5 * se), pooled
