"""Every malformed input is exit status 2 with a message, never a traceback: input that is not
UTF-8, lines longer than a reader holds, error messages quoting huge input (cut to a few
hundred characters), and a full disk while writing (the half-written output removed)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest

from sim.cli import main
from sim.errors import MAX_LINE_BYTES

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scenarios" / "scripts" / "clone-cow.xfsio"
TRACE = "op,pfn,npages,mapping,index,flag\n" + "associate,3,1,1,0,0\n" * 200


def _inputs(tmp_path: Path, body: bytes) -> dict[str, list[str]]:
    """One command per input language, each reading ``body`` as its file."""
    scen = tmp_path / "s.toml"
    scen.write_bytes(b"[run]\nseed = 1\n" + body)
    script = tmp_path / "s.xfsio"
    script.write_bytes(b"open -f a\n" + body)
    sweep = tmp_path / "w.toml"
    sweep.write_bytes(
        b'base = "' + str(ROOT / "scenarios" / "vm-clones.toml").encode() + b'"\n' + body
    )
    return {
        "run": ["run", str(scen), "--out", str(tmp_path / "o")],
        "show-config": ["show-config", str(scen)],
        "xfsio": ["xfsio", str(script)],
        "sweep": ["sweep", str(sweep), "--out", str(tmp_path / "o")],
    }


@pytest.mark.parametrize("command", ["run", "show-config", "xfsio", "sweep"])
def test_input_that_is_not_utf8_is_exit_2_naming_the_line(tmp_path, capsys, command):
    argv = _inputs(tmp_path, b"# caf\xe9 \xff\n")[command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "not UTF-8" in err and (":3:" in err or ":2:" in err), err
    assert "Traceback" not in err and not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", ["run", "show-config", "xfsio", "sweep"])
def test_a_line_longer_than_a_reader_holds_is_refused(tmp_path, capsys, command):
    argv = _inputs(tmp_path, b"# " + b"x" * (MAX_LINE_BYTES + 10) + b"\n")[command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "longer than" in err and "Traceback" not in err
    assert len(err) < 1000


def test_messages_quote_a_few_hundred_characters_of_huge_input(tmp_path, capsys):
    huge = "z" * 300_000
    assert main(["xfsio", "-c", "open -f a", "-c", f"pwrite 0 9{huge}"]) == 2
    err = capsys.readouterr().err
    assert "300,001 characters" in err and len(err) < 1200
    trace = tmp_path / "t.csv"
    trace.write_text("op,pfn,npages,mapping,index,flag," + "y" * 300_000 + "\n")
    assert main(["pagestate", str(trace), "--variant", "page-share", "--pages", "64"]) == 2
    err = capsys.readouterr().err
    assert "header must be" in err and len(err) < 1200
    trace.write_text(TRACE + "associate," + "7" * 300_000 + "z,1,1,0,0\n")
    assert main(["pagestate", str(trace), "--variant", "page-share", "--pages", "64"]) == 2
    err = capsys.readouterr().err
    assert ":202" in err and len(err) < 1200


# -- a full disk ---------------------------------------------------------------------------


@contextlib.contextmanager
def _full_disk(where: Path):
    """A tiny tmpfs at ``where``, filled up by a user's file (needs root for mount)."""
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(where)], check=True)
    try:
        filler = where / "filler.bin"
        with open(filler, "wb", buffering=0) as fh, contextlib.suppress(OSError):
            while True:
                fh.write(b"\xaa" * 4096)
        yield filler
    finally:
        subprocess.run(["umount", str(where)], check=True)


FULL = {
    "run": lambda d, t: (
        ["run", "vm-clones", "--quiet", "--out", str(d / "res")]
        + ["--set", "device.size='64MiB'", "--set", "workload.image_size='256KiB'"]
        + ["--set", "workload.accesses_per_vm=64", "--set", "workload.clones=1"]
    ),
    "xfsio": lambda d, t: ["xfsio", str(SCRIPT), "--quiet", "--summary-out", str(d / "s.json")],
    "hunt": lambda d, t: (
        ["hunt", "--variant", "page-share", "--budget", "10", "--quiet"]
        + ["--engine", "python", "--out", str(d / "h")]
    ),
    "pagestate": lambda d, t: (
        ["pagestate", str(t), "--variant", "page-share", "--pages", "64"]
        + ["--state-out", str(d / "st.csv")]
    ),
}


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
@pytest.mark.parametrize("command", sorted(FULL))
def test_a_full_disk_is_exit_2_and_leaves_only_what_was_there(tmp_path, capsys, command):
    trace = tmp_path / "t.csv"
    trace.write_text(TRACE)
    disk = tmp_path / "disk"
    with _full_disk(disk) as filler:
        size = filler.stat().st_size
        assert main(FULL[command](disk, trace)) == 2
        err = capsys.readouterr().err
        assert "No space left on device" in err and "Traceback" not in err
        assert [p.name for p in disk.iterdir()] == ["filler.bin"]
        assert filler.stat().st_size == size


def test_a_trace_row_longer_than_a_block_is_refused_without_holding_it(tmp_path, capsys):
    trace = tmp_path / "t.csv"
    with open(trace, "w") as fh:
        fh.write(TRACE + "associate," + "1" * (9 << 20) + ",1,1,0,0\n")
    assert main(["pagestate", str(trace), "--variant", "page-share", "--pages", "64"]) == 2
    err = capsys.readouterr().err
    # Refused at the block that cannot hold it, or at the field it cannot convert: either
    # way a short message, the row never held whole.
    assert ("a line longer than" in err or "t.csv:202" in err) and len(err) < 1000
