"""Every published number rlsepi uses, once, with its source.

The values are frozen dataclasses. Each field carries, in its metadata, the citation, a
status code and the range of values that make sense, so that a user's override file can be
checked key by key. Status codes follow ``shared/reference/rls-literature.md``:

``V``  read in the primary source; ``V2`` from a secondary source; ``D`` arithmetic on
verified numbers; ``A`` a modelling assumption of rlsepi, not a published figure (change it
freely; it is configurable precisely because no source pins it down).

Override any value from a TOML file (``rlsepi simulate --params my.toml``)::

    [targets.prevalence]
    value = 0.09

    [loci.rs2300478]
    odds_ratio = 1.8

``rlsepi params`` prints the full default set in that format.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlsepi.errors import ParameterError

__all__ = [
    "Target",
    "Targets",
    "Locus",
    "Population",
    "Pregnancy",
    "Ferritin",
    "Severity",
    "AgeCurve",
    "Parameters",
    "DEFAULT_LOCI",
    "EXTENDED_LOCI",
    "STANDARD_POPULATIONS",
    "DEFAULT",
    "load_parameters",
    "parameters_from_mapping",
    "FERRITIN_RESOLUTION",
]

# --- citations ------------------------------------------------------------------------
ALLEN_2005 = "Allen RP et al. 2005, Arch Intern Med 165:1286 (REST general population study)"
BERGER_2004 = "Berger K et al. 2004, Arch Intern Med 164:196 (SHIP)"
SONG_2024 = "Song P et al. 2024, J Glob Health 14:04113"
BROSTROM_2023 = "Broström A et al. 2023, J Sleep Res 32(3) (meta-analysis: women 4.7% vs men 2.8%)"
WINKELMANN_2011 = "Winkelmann J et al. 2011, PLoS Genet 7:e1002171 (PMID 21779176)"
SCHORMAIR_2008 = "Schormair B et al. 2008, Nat Genet 40:946 (PMID 18660810)"
CHEN_2018 = "Chen SJ et al. 2018, Sleep Med Rev 40:43 (meta-analysis of RLS in pregnancy)"
NHANES_FERRITIN = "CDC NHANES 1999-2002 serum ferritin by age and sex (geometric means)"
DANISH_FERRITIN = "Danish population survey of serum ferritin in women (medians by age)"
MEI_2011 = "Mei Z et al. 2011, Am J Clin Nutr 93:1312 (iron deficiency in US pregnant women)"
LI_2015 = "Li Y et al. 2015, Sleep Med 16:1413 (Wisconsin Sleep Cohort; ferritin <=50 ug/L)"
HOGL_2005 = "Högl B et al. 2005, Neurology 64:1920 (community RLS severity)"
IRLSSG_2003 = "Walters AS et al. (IRLSSG) 2003, Sleep Med 4:121 (IRLS rating scale)"
ESP_2013 = "Eurostat 2013, Revision of the European Standard Population (ESP 2013)"
WHO_2001 = "Ahmad OB et al. 2001, Age standardization of rates: a new WHO standard, GPE Discussion Paper 31"
US_2000 = "Klein RJ, Schoenborn CA 2001, Age adjustment using the 2000 projected U.S. population, Healthy People 2010 Stat Notes 20"
AASM_2024 = "Winkelman JW et al. 2024/2025, AASM clinical practice guideline for RLS; IRLSSG iron guidance"
WHO_ID_THRESHOLD = "WHO 2020 guideline on ferritin: ferritin <15 ug/L indicates iron deficiency in adults"


def _param(
    default: Any,
    *,
    source: str,
    status: str,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    unit: str = "",
) -> Any:
    """A dataclass field with its citation and allowed range in the metadata."""
    meta = {
        "source": source,
        "status": status,
        "low": low,
        "high": high,
        "low_open": low_open,
        "high_open": high_open,
        "unit": unit,
    }
    if isinstance(default, (list, dict)):
        raise TypeError("parameter defaults must be immutable")
    return field(default=default, metadata=meta)


def _range_text(meta: Mapping[str, Any]) -> str:
    lo, hi = meta["low"], meta["high"]
    left = "(" if meta["low_open"] else "["
    right = ")" if meta["high_open"] else "]"
    lo_s = "-inf" if lo is None else f"{lo:g}"
    hi_s = "inf" if hi is None else f"{hi:g}"
    unit = f" {meta['unit']}" if meta["unit"] else ""
    return f"{left}{lo_s}, {hi_s}{right}{unit}"


def _in_range(x: float, meta: Mapping[str, Any]) -> bool:
    lo, hi = meta["low"], meta["high"]
    if not math.isfinite(x):
        return False
    if lo is not None and (x < lo or (meta["low_open"] and x == lo)):
        return False
    if hi is not None and (x > hi or (meta["high_open"] and x == hi)):
        return False
    return True


def _check_fields(obj: Any, prefix: str) -> None:
    """Check every ranged numeric field (and every element of numeric tuples)."""
    for f in dataclasses.fields(obj):
        meta = f.metadata
        if not meta or (meta.get("low") is None and meta.get("high") is None):
            continue
        value = getattr(obj, f.name)
        values = value if isinstance(value, tuple) else (value,)
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not _in_range(float(v), meta):
                raise ParameterError(
                    f"parameter '{prefix}{f.name}' = {value!r} is not allowed; "
                    f"allowed range {_range_text(meta)}"
                )


# --- targets --------------------------------------------------------------------------

_TARGET_KINDS = {
    # kind: (low, high, open at both ends?, unit)
    "proportion": (0.0, 1.0, True, "proportion"),
    "odds_ratio": (0.0, None, True, "odds ratio"),
    "age": (18.0, 99.0, False, "years"),
}


@dataclass(frozen=True)
class Target:
    """A figure the synthetic cohort must reproduce, with its acceptance band.

    A check passes when the estimate from a simulated cohort lies in ``[low, high]``.
    """

    value: float
    low: float
    high: float
    kind: str
    source: str

    def check(self, prefix: str) -> None:
        if self.kind not in _TARGET_KINDS:
            raise ParameterError(
                f"parameter '{prefix}kind' = {self.kind!r} is not allowed; "
                f"allowed: {', '.join(_TARGET_KINDS)}"
            )
        lo, hi, is_open, unit = _TARGET_KINDS[self.kind]
        meta = {"low": lo, "high": hi, "low_open": is_open, "high_open": is_open, "unit": unit}
        for name in ("value", "low", "high"):
            x = getattr(self, name)
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not _in_range(float(x), meta):
                raise ParameterError(
                    f"parameter '{prefix}{name}' = {x!r} is not allowed; "
                    f"allowed range {_range_text(meta)}"
                )
        if not self.low <= self.value <= self.high:
            raise ParameterError(
                f"parameter '{prefix}value' = {self.value!r} lies outside its own band "
                f"[{self.low:g}, {self.high:g}]; set low <= value <= high"
            )

    def contains(self, estimate: float) -> bool:
        """Whether an estimate lies inside the acceptance band."""
        return bool(self.low <= estimate <= self.high)


@dataclass(frozen=True)
class Targets:
    """Acceptance targets for adults of European ancestry (literature page, section 1)."""

    prevalence: Target = Target(
        0.080, 0.07, 0.10, "proportion",
        f"review figure 7-10%; {ALLEN_2005}: 7.2%; {BERGER_2004}: 10.6%; {SONG_2024}: Europe 7.6% (V)",
    )
    clinically_significant: Target = Target(
        0.027, 0.02, 0.03, "proportion", f"{ALLEN_2005}: 2.7% (V)"
    )
    female_male_or: Target = Target(
        1.75, 1.5, 2.0, "odds_ratio",
        f"review figure 1.5-2.0; {BROSTROM_2023}, OR about 1.71 (V, D). Crude (marginal) OR.",
    )
    peak_age: Target = Target(
        60.0, 50.0, 70.0, "age",
        "review: prevalence rises through middle life and peaks at 50-70 (V); "
        f"{WINKELMANN_2011}: up to 10% above 65. Judged by 5-year age band.",
    )
    pregnancy_trimester1: Target = Target(0.08, 0.05, 0.11, "proportion", f"{CHEN_2018}: 8% (V)")
    pregnancy_trimester2: Target = Target(0.16, 0.13, 0.19, "proportion", f"{CHEN_2018}: 16% (V)")
    pregnancy_trimester3: Target = Target(0.22, 0.19, 0.25, "proportion", f"{CHEN_2018}: 22% (V)")

    def check(self, prefix: str) -> None:
        for f in dataclasses.fields(self):
            getattr(self, f.name).check(f"{prefix}{f.name}.")
        if self.clinically_significant.value >= self.prevalence.value:
            raise ParameterError(
                f"parameter '{prefix}clinically_significant.value' = "
                f"{self.clinically_significant.value:g} must be below "
                f"'{prefix}prevalence.value' = {self.prevalence.value:g}: clinically "
                "significant RLS is a subset of RLS"
            )

    @property
    def pregnancy(self) -> tuple[Target, Target, Target]:
        """The three trimester targets, in order."""
        return (self.pregnancy_trimester1, self.pregnancy_trimester2, self.pregnancy_trimester3)


# --- risk loci ------------------------------------------------------------------------


@dataclass(frozen=True)
class Locus:
    """A GWAS lead SNP: ``odds_ratio`` is per copy of ``effect_allele``.

    ``other_allele`` is ``None`` where the literature page does not verify it.
    """

    rsid: str
    gene: str
    chrom: str
    pos_grch37: int
    pos_grch38: int
    effect_allele: str
    other_allele: str | None
    eaf: float = _param(0.5, source="", status="", low=0.0, high=1.0, low_open=True, high_open=True,
                        unit="effect-allele frequency")
    # the range is what the solver is tested to solve (tests/test_parameter_limits.py), not a published figure
    odds_ratio: float = _param(1.0, source="", status="", low=0.01, high=50.0, unit="per allele")
    or_ci: tuple[float, float] | None = None
    source: str = ""

    @property
    def weight(self) -> float:
        """ln(OR) per effect allele: the PRS weight and the simulator's log-odds effect."""
        return math.log(self.odds_ratio)

    def check(self, prefix: str) -> None:
        _check_fields(self, prefix)
        for name in ("effect_allele", "other_allele"):
            allele = getattr(self, name)
            if allele is None and name == "other_allele":
                continue
            if not isinstance(allele, str) or not allele or set(allele.upper()) - set("ACGT"):
                raise ParameterError(
                    f"parameter '{prefix}{name}' = {allele!r} is not allowed; "
                    "give the allele as letters A, C, G, T"
                )


DEFAULT_LOCI: tuple[Locus, ...] = (
    Locus("rs2300478", "MEIS1", "2", 66781453, 66554321, "G", "T", 0.24, 1.68, (1.57, 1.81),
          f"{WINKELMANN_2011} (V); other allele verified"),
    Locus("rs9357271", "BTBD9", "6", 38365873, 38398097, "T", "C", 0.76, 1.47, None,
          f"{WINKELMANN_2011} (V; the catalogued CI is defective); other allele verified"),
    Locus("rs1975197", "PTPRD", "9", 8846955, 8846955, "A", "G", 0.16, 1.29, (1.19, 1.40),
          f"{WINKELMANN_2011} (V); {SCHORMAIR_2008} reports the same allele as T on the other strand"),
    Locus("rs4626664", "PTPRD", "9", 9261737, 9261737, "A", "G", 0.12, 1.44, (1.31, 1.59),
          f"{SCHORMAIR_2008} (V); other allele verified"),
)
"""The default score: MEIS1, BTBD9 and both PTPRD signals (literature page, section 2)."""

EXTENDED_LOCI: tuple[Locus, ...] = DEFAULT_LOCI + (
    Locus("rs12593813", "MAP2K5/SKOR1", "15", 68036852, 67744514, "G", "A", 0.68, 1.41, (1.32, 1.52),
          f"{WINKELMANN_2011} (V)"),
    Locus("rs3104767", "TOX3", "16", 52624738, 52590826, "G", None, 0.58, 1.35, (1.27, 1.43),
          f"{WINKELMANN_2011} (V); other allele unverified"),
    Locus("rs6747972", "2p14", "2", 68070225, 67843093, "A", None, 0.44, 1.23, (1.16, 1.31),
          f"{WINKELMANN_2011} (V); other allele unverified"),
)
"""The default score plus MAP2K5/SKOR1, TOX3 and 2p14 (Winkelmann 2011)."""


# --- population -----------------------------------------------------------------------

# Standard populations: (lower bound of each age band, weight). The last band is open.
STANDARD_POPULATIONS: dict[str, dict[str, Any]] = {
    "esp2013": {
        "source": ESP_2013,
        "bands": (
            (0, 5000), (5, 5500), (10, 5500), (15, 5500), (20, 6000), (25, 6000), (30, 6500),
            (35, 7000), (40, 7000), (45, 7000), (50, 7000), (55, 6500), (60, 6000), (65, 5500),
            (70, 5000), (75, 4000), (80, 2500), (85, 1500), (90, 800), (95, 200),
        ),
    },
    "who2000": {
        # WHO World Standard Population 2000-2025, in percent as published (the table's
        # rounded percentages add up to 100.035; weights are normalised before use).
        "source": f"{WHO_2001}, Table 4 (WHO World Standard 2000-2025); as tabulated by SEER "
                  "(seer.cancer.gov/stdpopulations/world.who.html)",
        "bands": (
            (0, 8.86), (5, 8.69), (10, 8.60), (15, 8.47), (20, 8.22), (25, 7.93), (30, 7.61),
            (35, 7.15), (40, 6.59), (45, 6.04), (50, 5.37), (55, 4.55), (60, 3.72), (65, 2.96),
            (70, 2.21), (75, 1.52), (80, 0.91), (85, 0.44), (90, 0.15), (95, 0.04), (100, 0.005),
        ),
    },
    "us2000": {
        # The 2000 U.S. standard population (Census P25-1130 projections), persons, in the
        # 19 age groups SEER publishes (0, 1-4 merged here into 0-4: 3,794,901 + 15,191,619).
        "source": f"{US_2000}; 5-year groups from Census P25-1130 as tabulated by SEER "
                  "(seer.cancer.gov/stdpopulations/stdpop.19ages.html)",
        "bands": (
            (0, 18986520), (5, 19919840), (10, 20056779), (15, 19819518), (20, 18257225),
            (25, 17722067), (30, 19511370), (35, 22179956), (40, 22479229), (45, 19805793),
            (50, 17224359), (55, 13307234), (60, 10654272), (65, 9409940), (70, 8725574),
            (75, 7414559), (80, 4900234), (85, 4259173),
        ),
    },
}
"""Standard populations for age structure and direct standardisation, with citations."""


@dataclass(frozen=True)
class Population:
    """Who is in a synthetic cohort.

    Single years of age are drawn from the 5-year bands of ``standard`` (ESP 2013 by
    default), uniformly within a band and truncated to ``[min_age, max_age]``; the open
    top band is taken as ``95..max_age``.
    """

    standard: str = "esp2013"
    min_age: int = _param(18, source="adults", status="A", low=18, high=99, unit="years")
    max_age: int = _param(99, source="ESP 2013 top band 95+ closed at 99", status="A", low=18, high=120,
                          unit="years")
    female_share: float = _param(0.5, source="equal shares at every age", status="A",
                                 low=0.0, high=1.0, low_open=True, high_open=True)

    def check(self, prefix: str) -> None:
        _check_fields(self, prefix)
        if self.standard not in STANDARD_POPULATIONS:
            raise ParameterError(
                f"parameter '{prefix}standard' = {self.standard!r} is not allowed; "
                f"allowed: {', '.join(sorted(STANDARD_POPULATIONS))}"
            )
        if self.max_age - self.min_age < 20:
            raise ParameterError(
                f"parameters '{prefix}min_age' = {self.min_age} and '{prefix}max_age' = {self.max_age} "
                "leave fewer than 20 years of age; the age curve needs a wider range"
            )


@dataclass(frozen=True)
class Pregnancy:
    """Who is pregnant, and in which trimester.

    A woman of age ``a`` is pregnant with probability ``fertility(a) * gestation_weeks / 52``
    (births per woman-year times the length of a pregnancy in years); her trimester is drawn
    in proportion to the trimesters' lengths in weeks. Fertility rates are an illustrative
    modelling assumption in the range of recent EU age-specific fertility, not a cited figure.
    Each 5-year rate is placed at its band's midpoint (17.5, 22.5, ...) and ``fertility(a)``
    follows the broken line through them, falling to 0 at ``max_age + 1``
    (:func:`rlsepi.cohort.fertility_rate`, status A): continuous, so that no step in
    fertility puts a bump in prevalence.
    """

    min_age: int = _param(18, source="reproductive age in the simulator", status="A", low=12, high=60,
                          unit="years")
    max_age: int = _param(49, source="reproductive age in the simulator", status="A", low=12, high=60,
                          unit="years")
    # births per woman-year for the 5-year bands starting 15, 20, ..., 45
    fertility_band_starts: tuple[int, ...] = (15, 20, 25, 30, 35, 40, 45)
    fertility: tuple[float, ...] = _param(
        (0.020, 0.045, 0.085, 0.105, 0.055, 0.012, 0.001),
        source="illustrative age-specific fertility in the range of EU figures, at band midpoints, "
        "joined by straight lines (A)", status="A",
        low=0.0, high=0.5, unit="births per woman-year",
    )
    gestation_weeks: float = _param(40.0, source="obstetric convention", status="V2", low=30, high=45,
                                    unit="weeks")
    trimester_weeks: tuple[float, ...] = _param(
        (13.0, 14.0, 13.0), source="obstetric convention (weeks 1-13, 14-27, 28-40)", status="V2",
        low=0.0, low_open=True, unit="weeks",
    )

    def check(self, prefix: str) -> None:
        _check_fields(self, prefix)
        if len(self.fertility) != len(self.fertility_band_starts):
            raise ParameterError(
                f"parameter '{prefix}fertility' has {len(self.fertility)} values; "
                f"give one per band in '{prefix}fertility_band_starts' ({len(self.fertility_band_starts)})"
            )
        if len(self.trimester_weeks) != 3:
            raise ParameterError(f"parameter '{prefix}trimester_weeks' must have 3 values, got {len(self.trimester_weeks)}")
        if self.min_age > self.max_age:
            raise ParameterError(f"parameter '{prefix}min_age' = {self.min_age} exceeds '{prefix}max_age' = {self.max_age}")


@dataclass(frozen=True)
class Ferritin:
    """Serum ferritin (µg/L): log-normal, by sex, age and pregnancy; and its RLS effect.

    The published figures are for age groups. Each group's figure is placed at an anchor
    age inside the group (its midpoint, or the age a survey reports); the log-median and
    the log-SD follow the broken line through the anchors (constant before the first and
    after the last), smoothed with a Gaussian kernel of SD ``age_curve.input_smoothing_sd``
    years (:func:`rlsepi.cohort.smooth_interpolate`). This interpolation is a modelling
    assumption (status A): the sources give group values, not curves, and a step at a group
    boundary (the male log-SD used to jump from 0.76 to 0.99 at 60) or a sharp bend (women's
    ferritin stopping its rise at 60) puts a bump or a shoulder in the prevalence curve by
    age. In pregnancy the log-SD is that of non-pregnant women of the same age, and the
    median is set so that the share below ``deficiency_threshold`` equals the
    published iron-deficiency prevalence of the trimester. Ferritin raises RLS risk as a
    step: odds ratio ``low_or`` at or below ``low_threshold`` µg/L.
    """

    male_anchor_ages: tuple[float, ...] = _param(
        (40.0, 75.0), source=f"{NHANES_FERRITIN}: groups 20-59 and >=60, anchored at 40 (midpoint of 20-59) "
        "and 75 (midpoint of 60-89); Gaussian-smoothed broken line between them (A)", status="A", low=0.0, unit="years",
    )
    male_median: tuple[float, ...] = _param(
        (137.0, 127.0), source=f"{NHANES_FERRITIN}: 129-145 at 20-59 (midpoint, D), 127 at >=60 (V)",
        status="V", low=0.0, low_open=True, unit="µg/L",
    )
    male_log_sd: tuple[float, ...] = _param(
        (0.76, 0.99), source=f"{NHANES_FERRITIN}: 0.68-0.84 at 20-59 (midpoint), 0.99 at >=60 (D)",
        status="D", low=0.0, low_open=True, unit="ln µg/L",
    )
    female_anchor_ages: tuple[float, ...] = _param(
        (35.0, 50.0, 60.0), source=f"{DANISH_FERRITIN}: ages 30-40 (midpoint 35), 50 and 60; smooth "
        "broken line between them, Gaussian-smoothed (A)", status="A", low=0.0, unit="years",
    )
    female_median: tuple[float, ...] = _param(
        (38.0, 54.0, 84.0), source=f"{DANISH_FERRITIN}: 38 at 30-40, 54 at 50, 84 at 60 (V)",
        status="V", low=0.0, low_open=True, unit="µg/L",
    )
    female_log_sd: tuple[float, ...] = _param(
        (0.95, 0.85, 0.70), source=f"{DANISH_FERRITIN} (D)", status="D", low=0.0, low_open=True,
        unit="ln µg/L",
    )
    pregnancy_deficiency: tuple[float, ...] = _param(
        (0.069, 0.143, 0.295), source=f"{MEI_2011}: 6.9% / 14.3% / 29.5% by trimester (V)", status="V",
        low=0.0, high=1.0, low_open=True, high_open=True,
    )
    deficiency_threshold: float = _param(
        15.0, source=f"{WHO_ID_THRESHOLD}; mapping Mei's iron deficiency onto it is an assumption",
        status="A", low=0.0, low_open=True, unit="µg/L",
    )
    low_threshold: float = _param(50.0, source=f"{LI_2015} (V)", status="V", low=0.0, low_open=True,
                                  unit="µg/L")
    low_or: float = _param(
        1.55, source=f"{LI_2015}: OR 1.55 for ferritin <=50 (for periodic limb movements; "
        "population RLS studies are mixed) (V)", status="V", low=0.01, high=5.0, unit="odds ratio",
    )

    clinical_cuts: tuple[float, ...] = _param(
        (50.0, 75.0), source=f"{AASM_2024}: iron treatment at ferritin <=75 ug/L (V2); augmentation risk "
        "higher at 50-75 (review)", status="V2", low=0.0, low_open=True, unit="µg/L",
    )

    def check(self, prefix: str) -> None:
        _check_fields(self, prefix)
        if len(self.clinical_cuts) != 2 or self.clinical_cuts[0] >= self.clinical_cuts[1]:
            raise ParameterError(f"parameter '{prefix}clinical_cuts' must be two increasing values (µg/L)")
        for sex in ("male", "female"):
            ages = getattr(self, f"{sex}_anchor_ages")
            for name in ("median", "log_sd"):
                vals = getattr(self, f"{sex}_{name}")
                if len(vals) != len(ages):
                    raise ParameterError(
                        f"parameter '{prefix}{sex}_{name}' has {len(vals)} values; give one per "
                        f"age in '{prefix}{sex}_anchor_ages' ({len(ages)})"
                    )
            if list(ages) != sorted(ages) or len(set(ages)) != len(ages):
                raise ParameterError(f"parameter '{prefix}{sex}_anchor_ages' must be strictly increasing")
        if len(self.pregnancy_deficiency) != 3:
            raise ParameterError(f"parameter '{prefix}pregnancy_deficiency' must have 3 values (one per trimester)")


@dataclass(frozen=True)
class Severity:
    """IRLS severity of cases (0-40; bands mild 1-10, moderate 11-20, severe 21-30, very
    severe 31-40), and who is clinically significant.

    A case's band is drawn from the community proportions; the score is uniform within the
    band. Clinically significant cases are the most severe cases, in the share
    ``clinically_significant / prevalence`` of the targets.
    """

    mild: float = _param(0.338, source=f"{HOGL_2005}: 33.8% mild (V); bands {IRLSSG_2003}", status="V",
                         low=0.0, high=1.0)
    moderate: float = _param(0.446, source=f"{HOGL_2005}: 44.6% moderate (V)", status="V", low=0.0, high=1.0)
    severe: float = _param(0.216, source=f"{HOGL_2005}: 21.6% severe (V)", status="V", low=0.0, high=1.0)
    very_severe_share: float = _param(
        0.25, source="share of Högl's severe cases scoring 31-40", status="A", low=0.0, high=1.0,
    )

    def check(self, prefix: str) -> None:
        _check_fields(self, prefix)
        total = self.mild + self.moderate + self.severe
        if abs(total - 1.0) > 1e-9:
            raise ParameterError(
                f"parameters '{prefix}mild', '{prefix}moderate' and '{prefix}severe' add up to "
                f"{total:g}; they are shares of cases and must add up to 1"
            )


@dataclass(frozen=True)
class AgeCurve:
    """Shape of the age curve: log-odds quadratic in age, and how age-group inputs are smoothed.

    The centre of the quadratic (solved so that the expected single-year prevalence is
    highest at the target peak age) and its curvature (solved so that prevalence at
    ``young_age`` is ``young_to_peak_ratio`` times the prevalence at the peak) are both
    solved numerically. The ratio is a modelling assumption: no published age-by-sex table
    was found (literature page, U); the review figures say only that prevalence rises
    through middle life and peaks at 50-70. The default is the largest round ratio for
    which the peak at 60 is a clear maximum rather than a shoulder: women's ferritin rises
    steeply from 50 to 60 (Danish survey), which lowers women's prevalence there and
    flattens the curve before 60 unless the age curve itself is peaked enough.

    ``input_smoothing_sd`` is the width of the Gaussian kernel that turns the published
    ferritin figures by age group into smooth curves in age
    (:func:`rlsepi.cohort.smooth_interpolate`): a modelling assumption (A), chosen as the
    half-width of a 10-year age group.
    """

    young_age: float = _param(25.0, source="reference age for the curvature", status="A", low=18, high=40,
                              unit="years")
    young_to_peak_ratio: float = _param(
        0.20, source="prevalence at 25 relative to the peak; rises through middle life (review)",
        status="A", low=0.01, high=0.7,
    )
    input_smoothing_sd: float = _param(
        5.0, source="Gaussian smoothing of age-group figures into curves in age", status="A",
        low=1.0, high=20.0, unit="years",
    )


MIN_PEAK_AFTER_YOUNG_AGE = 20.0
"""Years the target peak age must lie above ``age_curve.young_age`` for the age curve to be
solvable (found by testing the solver with the default parameters: 20 solves, 15 does not; an
implementation limit). Some peak ages further up can still fail the solver's check that the
curve peaks there (e.g. 50 with the defaults): that is refused with a ParameterError."""


# --- everything -----------------------------------------------------------------------


@dataclass(frozen=True)
class Parameters:
    """The complete parameter set of a synthetic cohort."""

    targets: Targets = Targets()
    population: Population = Population()
    pregnancy: Pregnancy = Pregnancy()
    ferritin: Ferritin = Ferritin()
    severity: Severity = Severity()
    age_curve: AgeCurve = AgeCurve()
    loci: tuple[Locus, ...] = DEFAULT_LOCI

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "loci":
                for locus in value:
                    locus.check(f"loci.{locus.rsid}.")
                rsids = [locus.rsid for locus in value]
                if len(set(rsids)) != len(rsids):
                    raise ParameterError("parameter 'loci' names an rsID twice; give each locus once")
            elif hasattr(value, "check"):
                value.check(f"{f.name}.")
            else:
                _check_fields(value, f"{f.name}.")
        if self.pregnancy.max_age < self.population.min_age:
            raise ParameterError("parameter 'pregnancy.max_age' lies below 'population.min_age': nobody could be pregnant")
        if not self.population.min_age <= self.targets.peak_age.value <= self.population.max_age:
            raise ParameterError(
                f"parameter 'targets.peak_age.value' = {self.targets.peak_age.value:g} lies outside "
                f"the population's ages [{self.population.min_age}, {self.population.max_age}]"
            )
        if self.targets.peak_age.value < self.age_curve.young_age + MIN_PEAK_AFTER_YOUNG_AGE:
            raise ParameterError(
                f"parameter 'targets.peak_age.value' = {self.targets.peak_age.value:g} must lie at least "
                f"{MIN_PEAK_AFTER_YOUNG_AGE:g} years above 'age_curve.young_age' = {self.age_curve.young_age:g} "
                "for the age curve to be solvable; lower young_age or raise the peak age"
            )
        if self.targets.clinically_significant.value >= self.targets.prevalence.value:
            raise ParameterError(
                f"parameter 'targets.clinically_significant.value' = {self.targets.clinically_significant.value:g} "
                f"must be below 'targets.prevalence.value' = {self.targets.prevalence.value:g}: clinically "
                "significant cases are a subset of cases"
            )

    def to_dict(self) -> dict[str, Any]:
        """A plain nested mapping (loci keyed by rsID), the shape of the TOML file."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "loci":
                out["loci"] = {
                    locus.rsid: {k: v for k, v in dataclasses.asdict(locus).items() if k != "rsid" and v is not None}
                    for locus in value
                }
            else:
                out[f.name] = dataclasses.asdict(value)
        return _tuples_to_lists(out)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys): stored in Parquet metadata, hashed for provenance."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    def digest(self) -> str:
        """SHA-256 of the canonical JSON, to name a parameter set briefly."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    def to_toml(self) -> str:
        """The full parameter set as TOML, loadable with :func:`load_parameters`."""
        import tomli_w

        return tomli_w.dumps(self.to_dict())


def _tuples_to_lists(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _tuples_to_lists(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_tuples_to_lists(v) for v in x]
    return x


DEFAULT = Parameters()
"""The published defaults."""


# --- overrides ------------------------------------------------------------------------


def _replace(obj: Any, mapping: Mapping[str, Any], prefix: str) -> Any:
    """A copy of dataclass ``obj`` with the keys of ``mapping`` replaced, recursively."""
    if not isinstance(mapping, Mapping):
        raise ParameterError(f"parameter '{prefix.rstrip('.')}' must be a table, got {mapping!r}")
    fields = {f.name: f for f in dataclasses.fields(obj)}
    changes: dict[str, Any] = {}
    for key, value in mapping.items():
        if key not in fields:
            raise ParameterError(
                f"unknown parameter '{prefix}{key}'; allowed keys here: {', '.join(fields)}"
            )
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            changes[key] = _replace(current, value, f"{prefix}{key}.")
        elif isinstance(current, tuple) or (current is None and isinstance(value, list)):
            if not isinstance(value, list):
                raise ParameterError(f"parameter '{prefix}{key}' must be a list, got {value!r}")
            changes[key] = tuple(value)
        else:
            if isinstance(value, (dict, list)):
                raise ParameterError(f"parameter '{prefix}{key}' must be a single value, got {value!r}")
            if isinstance(current, (int, float)) and not isinstance(current, bool):
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ParameterError(f"parameter '{prefix}{key}' must be a number, got {value!r}")
                value = type(current)(value) if isinstance(current, float) else value
            elif isinstance(current, str) and not isinstance(value, str):
                raise ParameterError(f"parameter '{prefix}{key}' must be text, got {value!r}")
            changes[key] = value
    return dataclasses.replace(obj, **changes)


_LOCUS_REQUIRED = ("gene", "chrom", "pos_grch37", "pos_grch38", "effect_allele", "eaf", "odds_ratio")


def _replace_loci(loci: tuple[Locus, ...], mapping: Any) -> tuple[Locus, ...]:
    if not isinstance(mapping, Mapping):
        raise ParameterError("parameter 'loci' must be a table of tables keyed by rsID ([loci.rs2300478])")
    by_id = {locus.rsid: locus for locus in loci}
    out = list(loci)
    for rsid, values in mapping.items():
        if rsid in by_id:
            new = _replace(by_id[rsid], values, f"loci.{rsid}.")
            out[out.index(by_id[rsid])] = new
            continue
        if not isinstance(values, Mapping):
            raise ParameterError(f"parameter 'loci.{rsid}' must be a table")
        missing = [k for k in _LOCUS_REQUIRED if k not in values]
        if missing:
            raise ParameterError(
                f"new locus 'loci.{rsid}' lacks {', '.join(missing)}; a locus not in the defaults "
                f"needs all of: {', '.join(_LOCUS_REQUIRED)}"
            )
        template = Locus(rsid, "", "", 0, 0, "A", None)
        out.append(_replace(template, values, f"loci.{rsid}."))
    return tuple(out)


def parameters_from_mapping(mapping: Mapping[str, Any], base: Parameters = DEFAULT) -> Parameters:
    """Apply a nested mapping of overrides (the TOML layout) to ``base``.

    Raises
    ------
    ParameterError
        For an unknown key, a value of the wrong type or a value outside its range; the
        message names the key and the allowed range.
    """
    mapping = dict(mapping)
    loci_map = mapping.pop("loci", None)
    fields = {f.name for f in dataclasses.fields(base)}
    unknown = [k for k in mapping if k not in fields]
    if unknown:
        raise ParameterError(
            f"unknown parameter '{unknown[0]}'; allowed top-level keys: {', '.join(sorted(fields))}"
        )
    changes: dict[str, Any] = {}
    for key, value in mapping.items():
        changes[key] = _replace(getattr(base, key), value, f"{key}.")
    if loci_map is not None:
        changes["loci"] = _replace_loci(base.loci, loci_map)
    return dataclasses.replace(base, **changes)


def load_parameters(path: str | Path | None) -> Parameters:
    """The default parameters, overridden by the TOML file at ``path`` (if given)."""
    if path is None:
        return DEFAULT
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParameterError(f"parameter file '{p}' does not exist") from None
    except IsADirectoryError:
        raise ParameterError(f"parameter file '{p}' is a folder; give a TOML file") from None
    except OSError as exc:
        raise ParameterError(f"parameter file '{p}' cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ParameterError(f"parameter file '{p}' is not UTF-8 text (byte {exc.start + 1}); "
                             "save it as UTF-8") from None
    try:
        mapping = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ParameterError(f"parameter file '{p}' is not valid TOML: {exc}") from None
    try:
        return parameters_from_mapping(mapping)
    except ParameterError as exc:
        raise ParameterError(f"{p}: {exc}") from None


# --- study design: figures used by rlsepi.diagnostic, rlsepi.power and the examples ----------
# (plain constants, not simulator parameters: they do not change the synthetic cohort)

PLMS_SOURCE = ("clinical review of RLS diagnosis (illustrative accuracy of a PLMS index >= 15/h on one night of "
               "polysomnography; in practice 34-42% of patients exceed 15/h (Shin 2016) and 33-61% of older adults "
               "without RLS do (MrOS; Wisconsin Sleep Cohort)); shared/reference/rls-literature.md, status V")
PLMS_SENSITIVITY = 0.80
"""Illustrative sensitivity of a PLMS index >= 15/h for RLS (see :data:`PLMS_SOURCE`)."""
PLMS_SPECIFICITY = 0.70
"""Illustrative specificity of a PLMS index >= 15/h for RLS (see :data:`PLMS_SOURCE`)."""
SLEEP_CLINIC_PREVALENCE = 0.40
"""Pre-test probability of RLS among patients referred to a sleep clinic: an illustrative value
(status A, a modelling assumption named in issue 14, not a published figure)."""
PARK_2023 = ("Park et al. 2023, Sleep 46:zsad239 (DTI-ALPS glymphatic index in 69 RLS patients vs 51 controls); "
             "the numbers are in examples/park2023_dti_alps.toml")

# --- measurement precision ------------------------------------------------------------

MAYO_FERRITIN = ("Mayo Clinic Laboratories, test FERR1 'Ferritin, Serum' (electrochemiluminescence "
                 "immunoassay): reference values and results in whole mcg/L (= µg/L = ng/mL), e.g. "
                 "31-409 mcg/L for men; ARUP test 0070065 likewise in whole ng/mL")

FERRITIN_RESOLUTION = 1.0
"""µg/L: simulated serum ferritin is stored as a laboratory reports it, to the nearest whole
µg/L (and at least 1 µg/L, the smallest whole value a report shows). Status ``V2`` (laboratory
reporting practice, not a study figure). Source: :data:`MAYO_FERRITIN`.

Storing the reported value, not the full double, also makes the cohort file the same on every
CPU: ``exp`` differs between numpy's vector kernels in the last bits (about 1e-13 µg/L), far
below this resolution."""
