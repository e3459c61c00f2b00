"""Limits are checked before they bite: every size and count either runs (lazily, within
memory) or is refused up front with the memory it would need and the limit (exit 2), never a
numpy ``ArrayMemoryError`` or unbounded growth. Nothing here allocates huge memory: the large
devices are mapped lazily and the refusals come before any allocation."""

from __future__ import annotations

import dataclasses
import json

import pytest

from sim.cli import main
from sim.errors import InputError
from sim.limits import physical_memory_bytes
from sim.memmap import MemMap
from sim.memmap.memmap import MAX_ARRAY_BYTES, memmap_bytes
from sim.scenario import load_scenario
from sim.scenario.schema import DeviceConfig

DEVICE_MAX = next(f for f in dataclasses.fields(DeviceConfig) if f.name == "size").metadata["max"]
GENERATOR_SCENARIOS = ("vm-clones", "containers", "db-snapshots", "dedupe", "backup")


def test_the_documented_maximum_device_runs(tmp_path, capsys):
    out = tmp_path / "o"
    argv = ["run", "vm-clones", "--quiet", "--out", str(out), "--set", f"device.size={DEVICE_MAX}"]
    argv += ["--set", "run.operations=40", "--set", "output.plots=false"]
    assert main(argv) == 0, capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["scenario"]["device"]["size"] == DEVICE_MAX == 1 << 50


def test_a_petabyte_filesystem_in_an_xfsio_script(tmp_path, capsys):
    argv = ["xfsio", "-c", "@mkfs size=1p", "-c", "open -f a", "-c", "pwrite -S 0x61 512t 64k"]
    argv += ["-c", "pread 512t 64k", "--summary-out", str(tmp_path / "s.json")]
    assert main(argv) == 0, capsys.readouterr()
    assert json.loads((tmp_path / "s.json").read_text())["variant"]


def test_a_device_past_the_address_space_is_refused_with_need_and_limit(capsys):
    assert main(["xfsio", "-c", "open -f a", "--device-size", "1e"]) == 2
    err = capsys.readouterr().err
    assert "--device-size" in err and "limit" in err and f"{MAX_ARRAY_BYTES:,}" in err
    assert "Traceback" not in err
    with pytest.raises(InputError, match="limit"):
        MemMap(MAX_ARRAY_BYTES // 16 + 1)
    assert memmap_bytes(DEVICE_MAX // 4096) <= MAX_ARRAY_BYTES  # 1 PiB: 4 TiB of arrays


def test_pagestate_on_2_to_the_40_pages(tmp_path, capsys):
    trace = tmp_path / "t.csv"
    trace.write_text("op,pfn,npages,mapping,index,flag\nassociate,1099511627000,1,1,0,0\n")
    argv = ["pagestate", str(trace), "--variant", "page-share", "--pages", str(2**40)]
    assert main(argv + ["--summary-out", str(tmp_path / "s.json")]) == 0
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["pages"] == 2**40 and summary["operations"] == 1
    # The page-state dump reads every page: refused past its limit, before the replay.
    assert main(argv + ["--state-out", str(tmp_path / "st.csv")]) == 2
    err = capsys.readouterr().err
    assert "--pages" in err and "limit" in err and not (tmp_path / "st.csv").exists()


def test_microbench_requests_past_memory_are_refused(capsys):
    n = 10**12
    assert 16 * n > physical_memory_bytes()  # 16 TB: no machine running this test has it
    assert main(["microbench", "--requests", str(n)]) == 2
    err = capsys.readouterr().err
    assert "--requests" in err and "would need" in err and "limit" in err
    assert "Traceback" not in err


def test_a_million_clones_are_refused_with_need_and_limit(capsys):
    argv = ["run", "vm-clones", "--set", "workload.clones=1000000", "--out", "/nonexistent/x"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "workload.clones" in err and "would need" in err and "limit" in err


def _maxima(scenario: str):
    sc = load_scenario(scenario)
    for f in dataclasses.fields(sc.workload.params):
        top = f.metadata.get("max")
        if isinstance(top, int) and not isinstance(top, bool):
            yield f"workload.{f.name}", top


@pytest.mark.parametrize("scenario", GENERATOR_SCENARIOS)
def test_every_count_key_at_its_maximum_is_refused_or_fits_in_memory(scenario):
    tried = 0
    for key, top in _maxima(scenario):
        tried += 1
        try:
            sc = load_scenario(scenario, [f"{key}={top}"])
        except InputError as exc:
            msg = str(exc)
            assert "limit" in msg or "device.size" in msg or "allowed" in msg, (key, msg)
            continue
        estimate = getattr(sc.workload.params, "memory_bytes", None)
        if estimate is not None:
            assert estimate()[0] <= physical_memory_bytes(), key
    assert tried


@pytest.mark.parametrize("scenario", GENERATOR_SCENARIOS)
def test_every_size_key_at_the_device_maximum_is_refused_or_fits(scenario):
    sc = load_scenario(scenario)
    for f in dataclasses.fields(sc.workload.params):
        if f.metadata.get("kind") != "size":
            continue
        key = f"workload.{f.name}"
        try:
            load_scenario(scenario, [f"{key}={DEVICE_MAX}"])
        except InputError as exc:
            assert "device.size" in str(exc) or "limit" in str(exc) or "allowed" in str(exc)


@pytest.mark.parametrize(
    ("scenario", "key"),
    [
        ("dedupe", "workload.file_size"),
        ("backup", "workload.file_size_max"),
        ("db-snapshots", "workload.db_size"),
    ],
)
def test_a_size_that_fits_the_device_but_not_the_memory_is_refused(scenario, key):
    sets = [f"device.size={DEVICE_MAX}", f"{key}={DEVICE_MAX // 16}"]
    if scenario == "backup":
        sets.append("workload.file_size_min=4096")
    with pytest.raises(InputError) as e:
        load_scenario(scenario, sets)
    msg = str(e.value)
    assert "would need" in msg and "limit" in msg and key in msg


def test_an_mkfs_past_the_address_space_names_its_line(capsys):
    assert main(["xfsio", "-c", "open -f a", "-c", "@mkfs size=1e"]) == 2
    err = capsys.readouterr().err
    assert "-c:2: @mkfs" in err and "limit" in err and "Traceback" not in err
