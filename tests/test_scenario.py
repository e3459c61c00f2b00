"""Scenario files: loading, defaults, sizes, errors with file and key, overrides, seeds."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest

from sim.errors import InputError
from sim.scenario import (
    DEFAULT_SCENARIO,
    SCENARIO_DIR,
    build_stream,
    load_scenario,
    parse_duration_ns,
    parse_set,
    parse_size,
    resolve_rng,
    scenario_from_dict,
    scenario_keys,
    seed_sequence,
)
from workloads.ops import validate_stream
from workloads.params import ParamError
from workloads.registry import generator_names

SHIPPED = sorted(SCENARIO_DIR.glob("*.toml"))


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_one_scenario_per_generator_and_a_default():
    names = {p.stem for p in SHIPPED}
    assert "default" in names
    assert set(generator_names()) <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_scenario_loads_and_generates(path):
    sc = load_scenario(path)
    assert sc.name == path.stem and sc.path == str(path.resolve())
    assert sc.description
    if sc.workload.generator != "xfsio":
        assert sc.workload.generator == path.stem or path.stem in ("default", "tib-clone-farm")
    stream, meta = build_stream(sc)
    if sc.workload.generator == "xfsio":
        assert Path(meta["xfsio_script"]).is_file() and len(stream) == 0
    else:
        assert len(stream) > 0
        validate_stream(stream)
        assert stream["cpu"].max() < sc.run.cpus
    json.dumps(sc.to_dict())  # JSON-serialisable


def test_default_scenario_is_a_vm_clone_farm():
    sc = load_scenario(None)
    assert sc.path == str(DEFAULT_SCENARIO.resolve()) and sc.name == "default"
    w = sc.workload.params
    assert sc.workload.generator == "vm-clones"
    assert w.clones >= 8 and w.write_fraction > 0 and w.stop_fraction > 0
    assert load_scenario("vm-clones").name == "vm-clones"  # a bare name finds scenarios/


def test_defaults_filled_in(tmp_path):
    sc = load_scenario(write(tmp_path, ""))
    d = sc.to_dict()
    assert d["run"] == {
        "seed": 0,
        "mode": "functional",
        "operations": 0,
        "duration_ns": 0,
        "cpus": 4,
        "allow_errors": False,
    }
    assert d["device"] == {"size": 8 << 30, "memmap": "pmem", "stripe_unit": 0}
    assert d["hardware"] == {"profile": "optane-gen1", "overrides": {}}
    assert d["variant"] == {"name": "folio-share"}
    assert d["output"] == {"plots": True}
    assert d["workload"]["generator"] == "vm-clones" and d["workload"]["clones"] == 16
    flat = sc.flat()
    assert set(flat) <= set(scenario_keys(sc))
    assert flat["workload.image_size"] == 64 << 20


def test_to_dict_roundtrip():
    for path in SHIPPED:
        sc = load_scenario(path, ["hardware.overrides.media.t_read_ns=150"])
        again = scenario_from_dict(sc.to_dict(), name=sc.name)
        assert again.to_dict() == sc.to_dict()
        assert again.workload == sc.workload and again.run == sc.run


@pytest.mark.parametrize(
    "text, expect",
    [
        (4096, 4096),
        (0, 0),
        ("4096", 4096),
        ("64k", 64 << 10),
        ("64K", 64 << 10),
        ("2M", 2 << 20),
        ("8GiB", 8 << 30),
        ("8gib", 8 << 30),
        ("1TiB", 1 << 40),
        ("3t", 3 << 40),
        ("0x1000", 4096),
        ("512B", 512),
        (" 16 MiB ", 16 << 20),
    ],
)
def test_parse_size(text, expect):
    assert parse_size(text) == expect


@pytest.mark.parametrize(
    "text, match",
    [
        ("8GB", "GiB"),
        ("64kB", "KiB"),
        ("1.5GiB", "cannot parse"),
        ("-1", "cannot parse"),
        (-1, ">= 0"),
        (True, "expected a size"),
        (1.5, "expected a size"),
        ("abc", "cannot parse"),
        ("iB", "cannot parse"),
        ("12iB", "needs a prefix"),
        ("8 GiB extra", "cannot parse"),
    ],
)
def test_parse_size_rejects(text, match):
    with pytest.raises(ParamError, match=match):
        parse_size(text)


def test_parse_duration():
    assert parse_duration_ns(100) == 100
    assert parse_duration_ns("10ms") == 10_000_000
    assert parse_duration_ns("250us") == 250_000
    assert parse_duration_ns("1.5s") == 1_500_000_000
    assert parse_duration_ns("7ns") == 7
    for bad in ("10 min", -1, "ms", 2.5):
        with pytest.raises(ParamError):
            parse_duration_ns(bad)


def test_size_keys_in_a_file(tmp_path):
    sc = load_scenario(write(tmp_path, '[device]\nsize = "1GiB"\n[workload]\nimage_size = 65536\n'))
    assert sc.device.size == 1 << 30 and sc.workload.params.image_size == 65536
    with pytest.raises(InputError) as e:
        load_scenario(write(tmp_path, '[device]\nsize = "8GB"\n'))
    assert "device.size" in str(e.value) and "8GiB" in str(e.value)
    assert e.value.where == str(tmp_path / "s.toml")
    with pytest.raises(InputError, match="multiple of 4096"):
        load_scenario(write(tmp_path, '[workload]\nimage_size = "6000"\n'))


def test_unknown_key_suggests_the_closest(tmp_path):
    p = write(tmp_path, '[workload]\ngenerator = "vm-clones"\nclonse = 4\n')
    with pytest.raises(InputError) as e:
        load_scenario(p)
    assert e.value.where == str(p)
    assert e.value.message.startswith("workload.clonse:")
    assert "did you mean 'workload.clones'?" in e.value.message
    with pytest.raises(InputError, match="did you mean 'device.memmap'"):
        load_scenario(write(tmp_path, '[device]\nmemap = "dram"\n'))
    with pytest.raises(InputError, match="unknown section; did you mean 'workload'"):
        load_scenario(write(tmp_path, "[wrkload]\nclones = 4\n"))
    with pytest.raises(InputError, match="unknown key for generator 'dedupe'"):
        load_scenario(write(tmp_path, '[workload]\ngenerator = "dedupe"\nclones = 4\n'))
    with pytest.raises(InputError, match="did you mean 'vm-clones'"):
        load_scenario(write(tmp_path, '[workload]\ngenerator = "vm-clone"\n'))


@pytest.mark.parametrize(
    "text, key, allowed",
    [
        ('[run]\nseed = "x"\n', "run.seed", "an integer"),
        ("[run]\ncpus = 2.5\n", "run.cpus", "an integer"),
        ('[run]\nmode = "fast"\n', "run.mode", '"functional", "timing"'),
        ("[output]\nplots = 1\n", "output.plots", "true or false"),
        ('[workload]\nzipf_s = "big"\n', "workload.zipf_s", "a number"),
        ("[workload]\nclones = true\n", "workload.clones", "an integer"),
        ("[device]\nsize = [1]\n", "device.size", "a size"),
        ("run = 3\n", "run", "table"),
        ("[hardware]\noverrides = 3\n", "hardware.overrides", "table"),
    ],
)
def test_wrong_type(tmp_path, text, key, allowed):
    p = write(tmp_path, text)
    with pytest.raises(InputError) as e:
        load_scenario(p)
    assert e.value.where == str(p)
    assert e.value.message.startswith(f"{key}:")
    assert allowed in e.value.message


@pytest.mark.parametrize(
    "text, key",
    [
        ("[run]\ncpus = 0\n", "run.cpus"),
        ("[run]\nseed = -1\n", "run.seed"),
        ('[device]\nsize = "1MiB"\n', "device.size"),
        ("[workload]\nwrite_fraction = 1.5\n", "workload.write_fraction"),
        ("[workload]\nclones = 0\n", "workload.clones"),
        ('[workload]\ngenerator = "backup"\nfile_size_min = "2MiB"\n', "workload.file_size_min"),
    ],
)
def test_out_of_range(tmp_path, text, key):
    with pytest.raises(InputError) as e:
        load_scenario(write(tmp_path, text))
    assert e.value.message.startswith(f"{key}:")
    assert "allowed:" in e.value.message


def test_variant_and_profile_checked_against_registries(tmp_path):
    assert load_scenario(None, ["variant.name=v6.0"]).variant.name == "cow-index"
    with pytest.raises(InputError, match="did you mean 'cow-index'") as e:
        load_scenario(write(tmp_path, '[variant]\nname = "cow-indx"\n'))
    assert e.value.message.startswith("variant.name:")
    with pytest.raises(InputError, match="hardware.profile: unknown profile") as e:
        load_scenario(write(tmp_path, '[hardware]\nprofile = "optane-gen9"\n'))
    sc = load_scenario(
        write(
            tmp_path,
            '[hardware]\nprofile = "cxl"\n'
            "[hardware.overrides]\nmedia.t_read_ns = 90\n"
            '"cpu.freq_ghz" = 3\n',
        )
    )
    assert sc.hardware.overrides == {"media.t_read_ns": 90.0, "cpu.freq_ghz": 3.0}
    with pytest.raises(InputError) as e:
        load_scenario(write(tmp_path, '[hardware.overrides]\n"media.t_red_ns" = 9\n'))
    assert e.value.message.startswith("hardware.overrides.media.t_red_ns:")
    assert "hardware.overrides.media.t_read_ns" in e.value.message


def test_not_toml(tmp_path):
    p = write(tmp_path, "[run\nseed = 1\n")
    with pytest.raises(InputError, match="not valid TOML") as e:
        load_scenario(p)
    assert e.value.where == str(p)
    with pytest.raises(InputError, match="cannot read"):
        load_scenario(tmp_path / "missing.toml")


def test_set_overrides():
    sc = load_scenario(
        None,
        [
            "workload.clones=4",
            "device.size=2GiB",
            "run.mode=timing",
            'variant.name="page-share"',
            "output.plots=false",
            "run.duration_ns=10ms",
            "hardware.overrides.media.t_read_ns=99",
        ],
    )
    assert sc.workload.params.clones == 4 and sc.device.size == 2 << 30
    assert sc.run.mode == "timing" and sc.variant.name == "page-share"
    assert sc.output.plots is False and sc.run.duration_ns == 10_000_000
    assert sc.hardware.overrides == {"media.t_read_ns": 99.0}
    # Switching generator resets the generator's parameters; later keys set the new ones.
    sc = load_scenario(None, ["workload.generator=dedupe", "workload.files=3"])
    assert sc.workload.generator == "dedupe" and sc.workload.params.files == 3
    assert parse_set("a.b = [1, 2]") == ("a.b", [1, 2])
    assert parse_set("a.b=cow-index") == ("a.b", "cow-index")


@pytest.mark.parametrize(
    "item, where, key",
    [
        ("workload.clones=abc", "--set workload.clones=abc", "workload.clones"),
        ("workload.clones=-3", "--set workload.clones=-3", "workload.clones"),
        ("workload.clonse=3", "--set workload.clonse=3", "workload.clonse"),
        ("device.size=8GB", "--set device.size=8GB", "device.size"),
        ("variant.name=nope", "--set variant.name=nope", "variant.name"),
        ("workload.generator=nope", "--set workload.generator=nope", "workload.generator"),
        (
            "hardware.overrides.media.t_read_ns=x",
            "--set hardware.overrides.media.t_read_ns=x",
            "hardware.overrides.media.t_read_ns",
        ),
    ],
)
def test_bad_set(item, where, key):
    with pytest.raises(InputError) as e:
        load_scenario(None, [item])
    assert e.value.message.startswith(f"{key}:")
    assert e.value.where == where


def test_set_generator_switch_resets_file_params():
    # default.toml sets clones etc.; switching generator drops them instead of failing.
    sc = load_scenario(None, ["workload.generator=backup"])
    assert sc.workload.generator == "backup"


def test_set_malformed():
    with pytest.raises(InputError, match="section.key=value"):
        load_scenario(None, ["workload.clones"])
    with pytest.raises(InputError):
        load_scenario(None, ["=3"])


def test_with_overrides_for_sweeps():
    base = load_scenario("vm-clones")
    sc = base.with_overrides(
        {
            "workload.clones": 4,
            "variant.name": "cow-index",
            "device.memmap": "dram",
            "hardware.overrides.media.t_read_ns": 80,
        }
    )
    assert sc.workload.params.clones == 4 and sc.variant.name == "cow-index"
    assert sc.device.memmap == "dram" and sc.hardware.overrides["media.t_read_ns"] == 80
    assert base.workload.params.clones == 32 and base.hardware.overrides == {}
    assert sc.name == base.name
    with pytest.raises(InputError) as e:
        base.with_overrides({"workload.clones": "many"})
    assert e.value.where.startswith("override workload.clones=")
    with pytest.raises(InputError, match="did you mean 'workload.zipf_s'"):
        base.with_overrides({"workload.zipf": 1.0})
    # Nested keys of a wrapped workload.
    mf = load_scenario("memory-failure").with_overrides({"workload.base.clones": 3})
    assert mf.workload.params.base.params.clones == 3


def test_every_listed_key_can_be_overridden_with_its_value():
    for path in SHIPPED:
        sc = load_scenario(path)
        keys = scenario_keys(sc)
        assert len(keys) == len(set(keys))
        flat = sc.flat()
        for k in keys:
            if k in flat:
                assert sc.with_overrides({k: flat[k]}).to_dict() == sc.to_dict(), k
    assert "hardware.overrides.media.t_read_ns" in scenario_keys()
    assert "workload.clones" in scenario_keys()
    assert "workload.base.clones" in scenario_keys(load_scenario("memory-failure"))


def test_seeds():
    sc = load_scenario(None)
    a = resolve_rng(sc, 3).integers(0, 2**62, 4)
    b = np.random.default_rng(np.random.SeedSequence(sc.run.seed, spawn_key=(3,))).integers(
        0, 2**62, 4
    )
    assert (a == b).all()
    assert seed_sequence(sc).spawn_key == () and seed_sequence(sc, 5).spawn_key == (5,)
    small = sc.with_overrides({"workload.clones": 3, "workload.accesses_per_vm": 50})
    s1, _ = build_stream(small, 1)
    s2, _ = build_stream(small, 1)
    s3, _ = build_stream(small, 2)
    assert s1.tobytes() == s2.tobytes() and s1.tobytes() != s3.tobytes()
    s4, _ = build_stream(small.with_overrides({"run.seed": 1}), 1)
    assert s4.tobytes() != s1.tobytes()


def test_xfsio_script_relative_to_the_scenario(tmp_path):
    (tmp_path / "w.xfsio").write_text("open -f -t a\n")
    sc = load_scenario(write(tmp_path, '[workload]\ngenerator = "xfsio"\nscript = "w.xfsio"\n'))
    assert sc.workload.params.script == str(tmp_path / "w.xfsio")
    p = write(tmp_path, '[workload]\ngenerator = "xfsio"\nscript = "nope.xfsio"\n')
    with pytest.raises(InputError) as e:
        load_scenario(p)
    assert e.value.where == str(p) and e.value.message.startswith("workload.script:")


def test_timing_duration_in_toml(tmp_path):
    sc = load_scenario(write(tmp_path, '[run]\nduration_ns = "2ms"\noperations = 1000\n'))
    assert sc.run.duration_ns == 2_000_000 and sc.run.operations == 1000
    assert tomllib.loads('x = "2ms"')["x"] == "2ms"


def test_set_marks_the_files_description_as_changed():
    """The file's description describes the file; after --set it says which keys changed."""
    plain = load_scenario("vm-clones")
    changed = load_scenario("vm-clones", ["workload.clones=4", "device.size='1GiB'"])
    assert changed.description == (
        f"{plain.description} (--set changed workload.clones, device.size)"
    )
    assert changed.to_dict()["description"] == changed.description
    own = load_scenario("vm-clones", ["description='four clones'", "workload.clones=4"])
    assert own.description == "four clones"
