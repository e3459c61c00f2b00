"""No command touches what the user owns: an output directory holding files daxsim did not
write is refused (exit 2) whatever the flags; an earlier daxsim output is replaced only with
``--overwrite`` and then only daxsim's files go; a file output naming a directory or a user's
file is refused. Every test leaves a user file where the command points and checks it byte for
byte afterwards."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sim.cli import main
from sim.errors import InputError
from sim.results.outputs import MARK, output_dir

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scenarios" / "scripts" / "clone-cow.xfsio"
TINY = [
    "--set",
    "device.size='64MiB'",
    "--set",
    "workload.image_size='256KiB'",
    "--set",
    "workload.accesses_per_vm=64",
    "--set",
    "workload.clones=1",
    "--set",
    "output.plots=false",
]
USER_BYTES = b"my notes\x00\xff, not daxsim's\n"


def _user_dir(tmp_path: Path, name: str = "mine") -> tuple[Path, Path]:
    d = tmp_path / name
    d.mkdir()
    f = d / "notes.txt"
    f.write_bytes(USER_BYTES)
    return d, f


def _listing(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


WRITERS = {
    "run": lambda d: ["run", "vm-clones", "--quiet", "--out", str(d), *TINY],
    "compare": lambda d: ["compare", "vm-clones", "--quiet", "--out", str(d), *TINY],
    "sweep": lambda d: [
        "sweep",
        str(ROOT / "scenarios" / "sweeps" / "tiny.toml"),
        "--quiet",
        "--out",
        str(d),
    ],
    "kernel compare": lambda d: [
        "kernel",
        "compare",
        str(SCRIPT),
        "--kernels",
        "6.1",
        "--out",
        str(d),
    ],
    "hunt": lambda d: [
        "hunt",
        "--variant",
        "page-share",
        "--budget",
        "10",
        "--engine",
        "python",
        "--quiet",
        "--out",
        str(d),
    ],
}


@pytest.mark.parametrize("command", sorted(WRITERS))
@pytest.mark.parametrize("overwrite", [False, True])
def test_a_directory_of_user_files_is_refused_and_left_as_it_was(
    tmp_path, capsys, command, overwrite
):
    d, _f = _user_dir(tmp_path)
    (d / "sub").mkdir()
    (d / "sub" / "data.bin").write_bytes(b"\x01\x02")
    before = _listing(d)
    argv = WRITERS[command](d) + (["--overwrite"] if overwrite and command != "sweep" else [])
    # (kernel compare refuses the directory before it looks for a kernel: none is needed)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "Traceback" not in err
    assert _listing(d) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no temporary left


def test_run_replaces_its_earlier_results_only_with_overwrite_and_keeps_user_files(
    tmp_path, capsys
):
    out = tmp_path / "res"
    assert main(WRITERS["run"](out)) == 0
    mark = json.loads((out / MARK).read_text())
    assert mark["kind"] == "results" and "summary.parquet" in mark["files"]
    umask = os.umask(0)
    os.umask(umask)
    for f in mark["files"]:  # the modes of files the user creates, not mkstemp's 0600
        assert (out / f).stat().st_mode & 0o777 == 0o666 & ~umask, f
    (out / "notes.txt").write_bytes(USER_BYTES)
    (out / "plots").mkdir()
    (out / "plots" / "mine.png").write_bytes(b"png?")
    first = (out / "summary.parquet").stat().st_mtime_ns
    assert main(WRITERS["run"](out)) == 2  # an earlier output: needs --overwrite
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "summary.parquet").stat().st_mtime_ns == first
    assert main(WRITERS["run"](out) + ["--set", "run.seed=7", "--overwrite"]) == 0
    assert (out / "notes.txt").read_bytes() == USER_BYTES
    assert (out / "plots" / "mine.png").read_bytes() == b"png?"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 7  # the new results are in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res"]


def test_compare_over_a_run_directory_is_refused(tmp_path, capsys):
    out = tmp_path / "h"
    out.mkdir()
    (out / MARK).write_text(json.dumps({"kind": "hunt", "files": [MARK]}))
    assert main(WRITERS["compare"](out) + ["--overwrite"]) == 2
    assert "holds daxsim hunt output" in capsys.readouterr().err


def test_hunt_overwrite_keeps_the_users_files(tmp_path, capsys):
    out = tmp_path / "hunt"
    assert main(WRITERS["hunt"](out)) == 0
    assert (out / "hunt.parquet").is_file()
    (out / "mine.xfsio").write_bytes(USER_BYTES)
    assert main(WRITERS["hunt"](out)) == 2
    assert main(WRITERS["hunt"](out) + ["--overwrite"]) == 0
    assert (out / "mine.xfsio").read_bytes() == USER_BYTES
    assert (out / "hunt.parquet").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hunt"]


def test_plot_leaves_user_files_of_a_results_directory(tmp_path, capsys):
    out = tmp_path / "res"
    assert main(WRITERS["run"](out)) == 0
    (out / "notes.txt").write_bytes(USER_BYTES)
    (out / "plots").mkdir()
    (out / "plots" / "mine.png").write_bytes(b"png?")
    assert main(["plot", str(out)]) == 0
    assert (out / "notes.txt").read_bytes() == USER_BYTES
    assert (out / "plots" / "mine.png").read_bytes() == b"png?"
    # The plots are daxsim's now: a later --overwrite replaces them, not the user's.
    assert "plots/overview.png" in json.loads((out / MARK).read_text())["files"]
    assert main(WRITERS["run"](out) + ["--overwrite"]) == 0
    assert (out / "plots" / "mine.png").read_bytes() == b"png?"
    assert not (out / "plots" / "overview.png").exists()  # plots=false this time


def test_a_user_file_where_a_new_output_goes_is_never_replaced(tmp_path):
    final = tmp_path / "o"
    with output_dir(final, kind="results") as tmp:
        (tmp / "a.txt").write_text("daxsim 1")
    (final / "b.txt").write_bytes(USER_BYTES)  # the user's, at a name the next output uses
    with pytest.raises(InputError, match="not a file daxsim wrote"):
        with output_dir(final, kind="results", overwrite=True) as tmp:
            (tmp / "a.txt").write_text("daxsim 2")
            (tmp / "b.txt").write_text("daxsim 2")
    assert (final / "a.txt").read_text() == "daxsim 1"
    assert (final / "b.txt").read_bytes() == USER_BYTES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"]


def test_a_mark_naming_files_outside_its_directory_removes_nothing_there(tmp_path):
    outside = tmp_path / "precious.txt"
    outside.write_bytes(USER_BYTES)
    final = tmp_path / "o"
    final.mkdir()
    (final / MARK).write_text(json.dumps({"kind": "results", "files": ["../precious.txt"]}))
    with output_dir(final, kind="results", overwrite=True) as tmp:
        (tmp / "a.txt").write_text("x")
    assert outside.read_bytes() == USER_BYTES


FILE_WRITERS = {
    "xfsio --summary-out": lambda f: ["xfsio", str(SCRIPT), "--quiet", "--summary-out", str(f)],
    "pagestate --state-out": lambda f: [
        "pagestate",
        str(_trace(f)),
        "--variant",
        "page-share",
        "--pages",
        "64",
        "--state-out",
        str(f),
    ],
    "pagestate --summary-out": lambda f: [
        "pagestate",
        str(_trace(f)),
        "--variant",
        "page-share",
        "--pages",
        "64",
        "--summary-out",
        str(f),
    ],
}


FILE_WRITERS["kernel run --json"] = lambda f: [
    "kernel",
    "run",
    str(SCRIPT),
    "--kernel",
    "6.1",
    "--json",
    str(f),
]
FILE_WRITERS["kernel compare --json"] = lambda f: [
    "kernel",
    "compare",
    str(SCRIPT),
    "--kernels",
    "6.1",
    "--out",
    str(f.parent.parent / "cmp"),
    "--json",
    str(f),
]
#: Writers whose output needs a real kernel (refusals are checked before any is looked up).
NEEDS_KERNEL = {"kernel run --json", "kernel compare --json"}


def _trace(near: Path) -> Path:
    t = near.parent.parent / "trace.csv"
    t.write_text("op,pfn,npages,mapping,index,flag\nassociate,3,1,1,0,0\n")
    return t


@pytest.mark.parametrize("option", sorted(FILE_WRITERS))
def test_a_file_option_naming_a_directory_is_refused(tmp_path, capsys, option):
    d, _f = _user_dir(tmp_path)
    before = _listing(d)
    assert main(FILE_WRITERS[option](d)) == 2
    err = capsys.readouterr().err
    assert "is a directory" in err and "Traceback" not in err
    assert _listing(d) == before


@pytest.mark.parametrize("option", sorted(FILE_WRITERS))
@pytest.mark.parametrize("overwrite", [False, True])
def test_a_file_option_naming_a_users_file_leaves_it(tmp_path, capsys, option, overwrite):
    d, f = _user_dir(tmp_path)
    argv = FILE_WRITERS[option](f) + (["--overwrite"] if overwrite else [])
    assert main(argv) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert f.read_bytes() == USER_BYTES
    assert sorted(p.name for p in d.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("option", sorted(set(FILE_WRITERS) - NEEDS_KERNEL))
def test_a_file_option_replaces_its_own_earlier_file_only_with_overwrite(tmp_path, option):
    d = tmp_path / "o"
    d.mkdir()
    f = d / "out.file"
    assert main(FILE_WRITERS[option](f)) == 0
    first = f.read_bytes()
    assert main(FILE_WRITERS[option](f)) == 2
    assert main(FILE_WRITERS[option](f) + ["--overwrite"]) == 0
    assert f.read_bytes() == first  # same input, same output
    assert sorted(p.name for p in d.iterdir()) == ["out.file"]
