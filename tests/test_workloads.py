"""Workload generators: determinism, legality, and the properties each one promises."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.errors import InputError
from workloads.access import first_touch_faults, zipf_ranks
from workloads.ops import ARG_PMD, OP_DTYPE, PAGE_SIZE, PMD_SIZE, Op, validate_stream
from workloads.params import ParamError
from workloads.registry import (
    WorkloadSpec,
    build_workload,
    generate,
    generator_names,
    get_generator,
)

# Small parameter sets, so that many seeds run quickly.
SMALL = {
    "vm-clones": {
        "clones": 6,
        "image_size": 4 << 20,
        "accesses_per_vm": 300,
        "pmd_fraction": 0.3,
        "stop_fraction": 0.5,
    },
    "containers": {
        "layers": 4,
        "layer_size": 1 << 20,
        "images": 3,
        "layers_per_image": 2,
        "containers": 8,
        "accesses_per_container": 200,
        "pmd_fraction": 0.2,
    },
    "db-snapshots": {
        "db_size": 2 << 20,
        "updates": 1500,
        "snapshot_every": 200,
        "keep_snapshots": 2,
    },
    "dedupe": {"files": 3, "file_size": 256 << 10, "distinct_blocks": 6},
    "backup": {
        "files": 12,
        "file_size_max": 64 << 10,
        "rounds": 3,
        "keep_backups": 1,
        "modify_fraction": 0.5,
        "delete_fraction": 0.2,
        "verify_fraction": 0.5,
    },
    "memory-failure": {
        "poisons": 5,
        "base": {
            "generator": "vm-clones",
            "clones": 4,
            "image_size": 2 << 20,
            "accesses_per_vm": 200,
        },
    },
}


def spec(name: str, **extra) -> WorkloadSpec:
    return build_workload({"generator": name, **SMALL[name], **extra})


def test_every_generator_is_registered():
    assert generator_names() == [
        "vm-clones",
        "containers",
        "db-snapshots",
        "dedupe",
        "backup",
        "memory-failure",
        "xfsio",
    ]
    with pytest.raises(InputError, match="did you mean 'vm-clones'"):
        get_generator("vm-clone")


@pytest.mark.parametrize("name", sorted(SMALL))
def test_same_seed_same_stream_other_seed_other_stream(name):
    a, meta_a = generate(spec(name), 123, cpus=3)
    b, meta_b = generate(spec(name), 123, cpus=3)
    c, _ = generate(spec(name), 124, cpus=3)
    assert a.dtype == OP_DTYPE and len(a) > 0
    assert a.tobytes() == b.tobytes()
    assert meta_a == meta_b
    assert len(a) != len(c) or a.tobytes() != c.tobytes()
    # A SeedSequence and a Generator made from the same seed give the same stream.
    d, _ = generate(spec(name), np.random.default_rng(np.random.SeedSequence(123)), cpus=3)
    assert d.tobytes() == a.tobytes()


@pytest.mark.parametrize("name", sorted(SMALL))
def test_streams_are_legal_for_many_seeds(name):
    for seed in range(25):
        stream, meta = generate(spec(name), seed, cpus=1 + seed % 4)
        summary = validate_stream(stream)
        assert summary["counts"] == meta["counts"]
        assert (stream["cpu"] < 1 + seed % 4).all()
        assert len(meta["file_names"]) == int(stream["file"].max()) + 1
        assert len(set(meta["file_names"])) == len(meta["file_names"])


@settings(max_examples=120, deadline=None)
@given(
    clones=st.integers(1, 8),
    pages=st.integers(1, 1200),
    accesses=st.integers(0, 400),
    wf=st.floats(0, 1),
    pmd=st.floats(0, 1),
    stop=st.floats(0, 1),
    s=st.floats(0, 3),
    seed=st.integers(0, 2**32),
    cpus=st.integers(1, 5),
)
def test_vm_clones_legal_for_any_params(clones, pages, accesses, wf, pmd, stop, s, seed, cpus):
    sp = build_workload(
        {
            "generator": "vm-clones",
            "clones": clones,
            "image_size": pages * PAGE_SIZE,
            "accesses_per_vm": accesses,
            "write_fraction": wf,
            "pmd_fraction": pmd,
            "stop_fraction": stop,
            "zipf_s": s,
            "image_chunk": 64 << 10,
        }
    )
    stream, meta = generate(sp, seed, cpus=cpus)
    validate_stream(stream)
    faults = stream[(stream["op"] == Op.READ_FAULT) | (stream["op"] == Op.WRITE_FAULT)]
    # Only first touches and first writes fault: no (pid, offset, kind) twice.
    key = np.stack([faults["pid"], faults["offset_bytes"], faults["op"]], axis=1)
    assert len(np.unique(key, axis=0)) == len(faults)
    assert len(meta["stopped"]) == round(stop * clones)


def test_vm_clones_shape():
    base = SMALL["vm-clones"]
    s, meta = generate(
        build_workload(
            {
                "generator": "vm-clones",
                **base,
                "write_fraction": 0.0,
                "pmd_fraction": 0.0,
                "stop_fraction": 0.0,
            }
        ),
        1,
    )
    c = validate_stream(s)["counts"]
    assert "WRITE_FAULT" not in c and "UNLINK" not in c and "MUNMAP" not in c
    assert c["CLONE"] == base["clones"] and c["MMAP"] == base["clones"]
    assert (s["length_bytes"][s["op"] == Op.READ_FAULT] == PAGE_SIZE).all()
    s, meta = generate(
        build_workload(
            {
                "generator": "vm-clones",
                **base,
                "pmd_fraction": 1.0,
                "stop_fraction": 1.0,
                "write_fraction": 1.0,
            }
        ),
        1,
    )
    f = s[(s["op"] == Op.READ_FAULT) | (s["op"] == Op.WRITE_FAULT)]
    assert ((f["arg"] & ARG_PMD) != 0).all() and (f["offset_bytes"] % PMD_SIZE == 0).all()
    assert (f["op"] == Op.WRITE_FAULT).all()
    assert (s["arg"][s["op"] == Op.MMAP] & ARG_PMD != 0).all()  # huge-aligned mappings
    assert validate_stream(s)["live_files"] == [0]  # only the golden image is left
    assert meta["stopped"] == list(range(base["clones"]))


def test_vm_clones_write_fraction_and_zipf_skew():
    sp = build_workload(
        {
            "generator": "vm-clones",
            "clones": 4,
            "image_size": 16 << 20,
            "accesses_per_vm": 4000,
            "write_fraction": 0.3,
            "zipf_s": 1.2,
        }
    )
    s, _ = generate(sp, 9)
    wf = s[s["op"] == Op.WRITE_FAULT]
    assert (wf["arg"] >> 8 & 0xFF).min() > 0  # a stored pattern byte
    # A skewed working set touches far fewer distinct pages than accesses.
    rf = s[s["op"] == Op.READ_FAULT]
    assert len(rf) < 4 * 4000 * 0.5


def test_zipf_ranks_and_first_touch():
    rng = np.random.default_rng(0)
    r = zipf_ranks(rng, 100, 20000, 0.0)
    assert r.min() == 0 and r.max() == 99
    assert abs(np.bincount(r, minlength=100).std() / 200) < 0.2  # ~uniform
    r = zipf_ranks(rng, 100, 20000, 2.0)
    assert np.bincount(r)[0] > 0.5 * 20000
    inst = np.array([0, 0, 0, 0, 1, 1])
    unit = np.array([5, 5, 5, 7, 5, 5])
    wr = np.array([False, False, True, True, True, False])
    idx, w = first_touch_faults(inst, unit, wr, 10)
    assert idx.tolist() == [0, 2, 3, 4]
    assert w.tolist() == [False, True, True, True]


def test_containers_layers_and_check():
    s, meta = generate(spec("containers"), 3)
    p = SMALL["containers"]
    clones = s[s["op"] == Op.CLONE]
    ranged = clones[clones["arg"] == 0]
    assert len(ranged) == p["images"] * p["layers_per_image"]
    assert (ranged["src"] < p["layers"]).all()
    assert all(len(set(x)) == p["layers_per_image"] for x in meta["image_layers"])
    with pytest.raises(ParamError) as e:
        build_workload({"generator": "containers", "layers": 2, "layers_per_image": 3})
    assert e.value.key == "workload.layers_per_image"


def test_db_snapshots_keeps_n():
    s, meta = generate(spec("db-snapshots"), 4)
    p = SMALL["db-snapshots"]
    n_snap = -(-p["updates"] // p["snapshot_every"])
    assert len(meta["snapshots"]) == n_snap
    live = validate_stream(s)["live_files"]
    assert live == [0] + meta["snapshots"][-p["keep_snapshots"] :]


def _block_contents(stream, nfiles, nblocks):
    content = np.zeros((nfiles, nblocks), np.int64)
    for r in stream[stream["op"] == Op.WRITE]:
        b0 = r["offset_bytes"] // PAGE_SIZE
        content[r["file"], b0 : b0 + r["length_bytes"] // PAGE_SIZE] = r["arg"]
    return content


@pytest.mark.parametrize("via", ["mmap", "pwrite"])
def test_dedupe_pairs_identical_blocks(via):
    s, meta = generate(spec("dedupe", overwrite_via=via), 5)
    p = SMALL["dedupe"]
    nb = p["file_size"] // PAGE_SIZE
    first_dedupe = int(np.flatnonzero(s["op"] == Op.DEDUPE)[0])
    content = _block_contents(s[:first_dedupe], p["files"], nb)
    assert content.min() >= 1 and content.max() <= p["distinct_blocks"]
    dd = s[s["op"] == Op.DEDUPE]
    assert len(dd) == meta["dedupe_calls"] > 0
    shared = 0
    for r in dd:
        n = r["length_bytes"] // PAGE_SIZE
        d0, s0 = r["offset_bytes"] // PAGE_SIZE, r["src_offset_bytes"] // PAGE_SIZE
        assert (content[r["file"], d0 : d0 + n] == content[r["src"], s0 : s0 + n]).all()
        shared += n
    assert shared == meta["duplicate_blocks"] == content.size - len(np.unique(content))
    after = s[first_dedupe:]
    kind = Op.WRITE_FAULT if via == "mmap" else Op.WRITE
    assert (after["op"] == kind).sum() == p["files"] * round(0.1 * nb)


def test_backup_generations():
    s, meta = generate(spec("backup"), 6)
    p = SMALL["backup"]
    assert len(meta["generations"]) == p["rounds"]
    live = set(validate_stream(s)["live_files"])
    assert set(meta["generations"][-1]) <= live
    assert not set(meta["generations"][0]) & live  # older generations unlinked
    assert (s["op"] == Op.CLONE).sum() == p["rounds"] * p["files"]


def test_memory_failure_poisons_follow_faults():
    s, meta = generate(spec("memory-failure"), 7)
    rows = np.flatnonzero(s["op"] == Op.POISON)
    assert rows.tolist() == meta["poison_rows"] and len(rows) == 5
    for i in rows:
        f, p = s[i - 1], s[i]
        assert f["op"] in (Op.READ_FAULT, Op.WRITE_FAULT)
        assert (f["pid"], f["file"], f["t_cycles"]) == (p["pid"], p["file"], p["t_cycles"])
        assert f["offset_bytes"] <= p["offset_bytes"] < f["offset_bytes"] + f["length_bytes"]
    # Without the poisons, the stream is the base workload's stream for the same child seed.
    base = np.delete(s, rows)
    assert validate_stream(base)["counts"].get("POISON") is None
    assert meta["base_generator"] == "vm-clones"


def test_memory_failure_base_defaults_merge():
    sp = build_workload({"generator": "memory-failure", "base": {"clones": 2}})
    assert sp.params.base.generator == "vm-clones"
    assert sp.params.base.params.clones == 2
    assert sp.params.base.params.image_size == 16 << 20  # the default base's value is kept
    sp = build_workload({"generator": "memory-failure", "base": {"generator": "dedupe"}})
    assert sp.params.base.params == get_generator("dedupe").params()
    with pytest.raises(ParamError) as e:
        build_workload({"generator": "memory-failure", "base": {"clonez": 2}})
    assert e.value.key == "workload.base.clonez" and "workload.base.clones" in str(e.value)


def test_xfsio_generator_carries_the_script(tmp_path):
    script = tmp_path / "w.xfsio"
    script.write_text("open -f -t a\npwrite 0 4k\n")
    sp = build_workload({"generator": "xfsio", "script": "w.xfsio"}, base_dir=str(tmp_path))
    stream, meta = generate(sp, 0)
    assert len(stream) == 0 and meta["xfsio_script"] == str(script)
    with pytest.raises(ParamError, match="no such file"):
        build_workload({"generator": "xfsio", "script": "nope.xfsio"}, base_dir=str(tmp_path))


def test_params_are_frozen_with_documented_fields():
    for name in generator_names():
        cls = get_generator(name).params
        assert dataclasses.is_dataclass(cls)
        for f in dataclasses.fields(cls):
            assert f.metadata["help"], (name, f.name)
        obj = cls()
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, dataclasses.fields(cls)[0].name, 1)
