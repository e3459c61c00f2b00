"""Hardware profiles: typed parameters, presets, overrides, cycle conversion."""

from __future__ import annotations

import dataclasses

import pytest

from sim.errors import InputError
from sim.timing.profiles import PARAMS, PRESETS, load_profile, profile_names, profile_table


def test_every_param_has_unit_description_and_valid_default():
    names = [p.name for p in PARAMS]
    assert len(names) == len(set(names))
    for p in PARAMS:
        assert "." in p.name and p.description
        assert p.coerce(p.default, p.name) == p.default
    for key in (
        "media.t_read_ns",
        "cpu.freq_ghz",
        "imc.wpq_entries",
        "rmw.buffer_lines",
        "ait.buffer_entries",
        "cache.l3_bytes",
    ):
        assert key in names


def test_default_is_optane_gen1_cascade_lake():
    p = load_profile()
    assert p.name == "optane-gen1" and profile_names()[0] == "optane-gen1"
    assert p["cpu.freq_ghz"] == 2.2 and p["dimm.count"] == 6
    assert p["dimm.interleave_bytes"] == 4096
    assert p["rmw.buffer_lines"] * p["rmw.line_bytes"] == 16 << 10
    assert p["ait.buffer_entries"] * p["ait.block_bytes"] == 16 << 20


def test_presets_override_only_some_defaults():
    base = load_profile()
    for name in PRESETS:
        prof = load_profile(name)
        changed = [k for k in base.values if base.values[k] != prof.values[k]]
        assert len(changed) == len(PRESETS[name][1])
    assert load_profile("optane-gen2")["persist.domain"] == "eadr"
    assert load_profile("cxl")["persist.domain"] == "none"
    assert load_profile("cxl")["media.kind"] == "cxl"


def test_ns_converted_to_integer_cycles_once():
    p = load_profile()
    assert p.cycles("media.t_read_ns") == round(75 * 2.2)
    assert isinstance(p.cycles("media.migration_ns"), int)
    q = load_profile(overrides={"cpu.freq_ghz": 1.0})
    assert q.cycles("media.t_read_ns") == 75
    with pytest.raises(InputError):
        p.cycles("dimm.count")


def test_unknown_key_suggests_closest():
    with pytest.raises(InputError) as exc:
        load_profile(overrides={"media.t_raed_ns": 80})
    assert "media.t_read_ns" in str(exc.value)
    with pytest.raises(InputError) as exc:
        load_profile("optane-gen3")
    assert "optane-gen" in str(exc.value)


@pytest.mark.parametrize(
    "key,value",
    [
        ("imc.wpq_entries", 0),
        ("imc.wpq_entries", 1.5),
        ("cpu.freq_ghz", "fast"),
        ("media.kind", "flash"),
        ("persist.domain", 3),
        ("rmw.line_bytes", 384),
        ("media.t_read_ns", -1.0),
        ("dimm.count", True),
    ],
)
def test_bad_values_are_input_errors(key, value):
    with pytest.raises(InputError) as exc:
        load_profile(overrides={key: value})
    assert exc.value.where == key


def test_string_overrides_are_parsed():
    p = load_profile(
        overrides={"imc.wpq_entries": "32", "media.t_read_ns": "80.5", "media.kind": "dram"}
    )
    assert p["imc.wpq_entries"] == 32 and p["media.t_read_ns"] == 80.5
    assert p.overrides == {"imc.wpq_entries": "32", "media.t_read_ns": "80.5", "media.kind": "dram"}


def test_profile_table_lists_every_param():
    rows = profile_table(load_profile("dram"))
    assert len(rows) == len(PARAMS)
    key, value, unit, desc = rows[0]
    assert key == "cpu.freq_ghz" and value == 2.2 and unit == "GHz" and desc
    assert ("media.kind", "dram") in [(r[0], r[1]) for r in rows]


def test_profile_is_frozen():
    p = load_profile()
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.name = "x"
    with pytest.raises(TypeError):
        p.values["cpu.freq_ghz"] = 3.0
