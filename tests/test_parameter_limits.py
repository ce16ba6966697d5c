"""Every parameter range in parameters.py is one the solver can solve (issue 9, part 4).

Each ranged parameter is set, one at a time, to each end of its allowed range (just inside
an open end; 1e6 for an unbounded top). Either the value is refused by the parameter check
with a ParameterError, or ``solve_model`` solves it. No other exception, and no value that
passes validation but breaks the solver.
"""

from __future__ import annotations

import dataclasses
import re

import pytest

from rlsepi.cohort import solve_model
from rlsepi.errors import ParameterError
from rlsepi.parameters import DEFAULT, MIN_PEAK_AFTER_YOUNG_AGE, parameters_from_mapping


def _limit_cases() -> list[tuple[str, dict]]:
    cases = []
    for section in dataclasses.fields(DEFAULT):
        obj = getattr(DEFAULT, section.name)
        if section.name == "targets":
            continue
        if section.name == "loci":
            rsid = obj[0].rsid
            meta = {f.name: f.metadata for f in dataclasses.fields(obj[0])}
            for name in ("odds_ratio", "eaf"):
                for end in ("low", "high"):
                    v = _inside(meta[name], end)
                    cases.append((f"loci.{rsid}.{name}={v:g}", {"loci": {rsid: {name: v}}}))
            continue
        for f in dataclasses.fields(obj):
            m = f.metadata
            if not m or (m.get("low") is None and m.get("high") is None):
                continue
            default = getattr(obj, f.name)
            for end in ("low", "high"):
                v = _inside(m, end)
                if isinstance(default, int) and not isinstance(default, bool):
                    v = int(round(v))
                value = tuple(v for _ in default) if isinstance(default, tuple) else v
                cases.append((f"{section.name}.{f.name}={v:g}", {section.name: {f.name: value}}))
    return cases


def _inside(meta, end: str) -> float:
    lim = meta[end]
    if lim is None:
        return 1e6 if end == "high" else -1e6
    if meta[f"{end}_open"]:
        return lim + 1e-6 if end == "low" else lim - 1e-6
    return float(lim)


@pytest.mark.parametrize("label,mapping", _limit_cases(), ids=[c[0] for c in _limit_cases()])
def test_every_allowed_value_at_a_range_limit_solves(label, mapping):
    try:
        params = parameters_from_mapping(mapping)
    except ParameterError:
        return  # refused with a message: allowed
    model = solve_model(params)  # must not raise
    assert model.intercept == model.intercept  # a number, not NaN


@pytest.mark.parametrize("mapping", [
    {"loci": {"rs2300478": {"odds_ratio": 1e6}}},
    {"ferritin": {"low_or": 1e6}},
    {"age_curve": {"young_to_peak_ratio": 0.0001}},
    {"targets": {"peak_age": {"value": 40, "low": 18, "high": 60}}},
    {"targets": {"clinically_significant": {"value": 0.09, "low": 0.05, "high": 0.095}}},
])
def test_values_that_broke_the_solver_are_refused_by_name(mapping):
    key = next(iter(mapping))
    with pytest.raises(ParameterError, match=key):
        parameters_from_mapping(mapping)


def test_the_peak_age_limit_is_one_the_solver_meets():
    young = DEFAULT.age_curve.young_age
    peak = young + MIN_PEAK_AFTER_YOUNG_AGE
    params = parameters_from_mapping({"targets": {"peak_age": {"value": peak, "low": 18, "high": 99}}})
    assert solve_model(params).age_peak > 0


def test_targets_the_solver_cannot_meet_together_give_a_parameter_error():
    # each value is allowed alone; together they are impossible (prevalence 90% with trimester targets of 8-22%)
    params = parameters_from_mapping({"targets": {"prevalence": {"value": 0.9, "low": 0.5, "high": 0.95}}})
    with pytest.raises(ParameterError) as e:
        solve_model(params)
    # the whole message: what failed, why (the search met a prevalence of 0 or 1), and what to check
    assert re.fullmatch(r"the outcome model cannot reach these targets together \(the solver met a prevalence of 0 or 1: "
                        r"[^()]+\); check the targets, age_curve, ferritin\.low_or and loci odds ratios for consistency",
                        str(e.value)), str(e.value)
