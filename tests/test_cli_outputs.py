"""Every command that writes results checks, before it runs anything, that it can: an
``--out`` or ``--summary-out`` under a file, or on a filesystem that refuses new entries
(``/proc``, which refuses root too), is a clean error naming the option, exit status 2, no
traceback, nothing written. A file output's missing parent directory is created."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim.cli import main

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scenarios" / "scripts" / "clone-cow.xfsio"


def _commands(out: str) -> list[list[str]]:
    return [
        ["run", "--quiet", "--out", out],
        ["compare", "--out", out],
        ["sweep", str(ROOT / "scenarios" / "sweeps" / "clone-farm.toml"), "--out", out],
        ["hunt", "--variant", "page-share", "--budget", "10", "--quiet", "--out", out],
        ["xfsio", str(SCRIPT), "--summary-out", out + "/s.json"],
    ]


@pytest.mark.parametrize("i", range(5))
def test_an_output_under_a_file_is_a_clean_error(tmp_path, capsys, i):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    argv = _commands(str(blocker / "out"))[i]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--summary-out" in err or "--out" in err
    assert "is not a directory" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs procfs (Linux)")
@pytest.mark.parametrize("i", range(5))
def test_an_output_on_a_filesystem_that_refuses_it_is_a_clean_error(capsys, i):
    assert main(_commands("/proc/daxsim-out")[i]) == 2
    err = capsys.readouterr().err
    assert "cannot create /proc/daxsim-out" in err and "Traceback" not in err


def test_summary_out_creates_its_parent(tmp_path, capsys):
    dest = tmp_path / "a" / "b" / "s.json"
    assert main(["xfsio", str(SCRIPT), "--summary-out", str(dest)]) == 0
    assert json.loads(dest.read_text())["variant"]
    assert [p.name for p in dest.parent.iterdir()] == ["s.json"]  # no probe or temp file left
