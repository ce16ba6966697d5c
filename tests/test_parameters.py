"""Published parameters: every number cited, defaults valid, overrides checked key by key."""

from __future__ import annotations

import dataclasses
import math

import pytest

from rlsepi.errors import ParameterError
from rlsepi.parameters import DEFAULT, Parameters, Target, load_parameters, parameters_from_mapping


def _ranged_fields(obj):
    for f in dataclasses.fields(obj):
        if f.metadata:
            yield f


def test_every_section_field_and_locus_has_a_source():
    for section in dataclasses.fields(DEFAULT):
        value = getattr(DEFAULT, section.name)
        if section.name == "loci":
            assert all(locus.source for locus in value)
            continue
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if isinstance(item, Target):
                assert item.source, f"{section.name}.{f.name} has no source"
            elif f.metadata:
                assert f.metadata["source"] and f.metadata["status"] in {"V", "V2", "D", "A"}, f.name


def test_default_loci_match_the_literature_page():
    # literature page, section 2 (Winkelmann 2011; Schormair 2008)
    got = {(l.rsid, l.gene, l.effect_allele, l.eaf, l.odds_ratio) for l in DEFAULT.loci}
    assert got == {
        ("rs2300478", "MEIS1", "G", 0.24, 1.68),
        ("rs9357271", "BTBD9", "T", 0.76, 1.47),
        ("rs1975197", "PTPRD", "A", 0.16, 1.29),
        ("rs4626664", "PTPRD", "A", 0.12, 1.44),
    }
    assert math.isclose(DEFAULT.loci[0].weight, math.log(1.68))


def test_toml_round_trip_gives_the_defaults(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(DEFAULT.to_toml())
    assert load_parameters(path) == DEFAULT


def test_override_from_toml(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text("[targets.prevalence]\nvalue = 0.09\n\n[loci.rs2300478]\nodds_ratio = 1.8\n")
    p = load_parameters(path)
    assert p.targets.prevalence.value == 0.09
    assert p.loci[0].odds_ratio == 1.8
    assert p.targets.female_male_or == DEFAULT.targets.female_male_or


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[targets.prevalance]\nvalue = 0.08\n", "unknown parameter 'targets.prevalance'"),
        ("[targets.prevalence]\nvalue = 1.5\n", "'targets.prevalence.value' = 1.5 is not allowed; allowed range (0, 1)"),
        ("[targets.female_male_or]\nvalue = -1.75\n", "'targets.female_male_or.value' = -1.75 is not allowed"),
        ("[targets.peak_age]\nvalue = 10\nlow = 5\n", "'targets.peak_age.value' = 10.0 is not allowed; allowed range [18, 99]"),
        ("[loci.rs2300478]\nodds_ratio = -2\n", "'loci.rs2300478.odds_ratio' = -2.0 is not allowed"),
        ("[loci.rs2300478]\neffect_allele = \"X\"\n", "'loci.rs2300478.effect_allele' = 'X' is not allowed"),
        ("[loci.rs123]\nodds_ratio = 1.2\n", "new locus 'loci.rs123' lacks gene"),
        ("[ferritin]\nlow_or = \"big\"\n", "'ferritin.low_or' must be a number"),
        ("[severity]\nmild = 0.5\n", "add up to"),
        ("wibble = 3\n", "unknown parameter 'wibble'"),
        ("[targets.prevalence\n", "is not valid TOML"),
    ],
)
def test_bad_overrides_are_refused_with_the_key_named(tmp_path, toml, message):
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(ParameterError) as err:
        load_parameters(path)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_target_value_must_lie_in_its_band():
    with pytest.raises(ParameterError, match="outside its own band"):
        parameters_from_mapping({"targets": {"prevalence": {"value": 0.12}}})


def test_new_locus_with_all_fields_is_added():
    p = parameters_from_mapping({"loci": {"rs999": {
        "gene": "X", "chrom": "1", "pos_grch37": 10, "pos_grch38": 11, "effect_allele": "A", "eaf": 0.3,
        "odds_ratio": 1.1}}})
    assert [l.rsid for l in p.loci][-1] == "rs999"


def test_missing_parameter_file_is_a_clear_error(tmp_path):
    with pytest.raises(ParameterError, match="does not exist"):
        load_parameters(tmp_path / "nope.toml")


def test_parameters_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT.targets.prevalence.value = 0.5  # type: ignore[misc]
    assert isinstance(DEFAULT, Parameters)
