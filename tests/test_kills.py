"""Kills leave nothing behind: SIGTERM is handled like SIGINT (the half-written results go, exit
143); after a SIGKILL the next command writing into the same directory removes the temporaries
of processes that are gone, and only those."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sim.results.outputs import remove_stale_temps, temp_tag

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
    "output.plots=true",
]


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _start_ticks(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_bytes()
    return int(stat[stat.rindex(b")") + 2 :].split()[19])


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs procfs (Linux)")
def test_only_temporaries_of_gone_processes_are_removed(tmp_path):
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = _dead_pid()
        start = _start_ticks(live.pid)
        gone = [
            tmp_path / f".res.daxsim.tmp-{dead}-12345",  # a killed run's directory
            tmp_path / f".s.json.daxsim.tmp-{dead}-12345-ab_c9x",  # a killed file write
            tmp_path / f".res.daxsim.tmp-{live.pid}-{start + 1}",  # pid reused by another process
            tmp_path / f".old.tmp-{dead}",  # a results directory's temporary, older naming
        ]
        kept = [
            tmp_path / f".res.daxsim.tmp-{live.pid}-{start}",  # its owner still runs
            tmp_path / f".mine.daxsim.tmp-{temp_tag()}",  # ours
            tmp_path / f".notes.tmp-{dead}",  # a file named like the old directories
            tmp_path / "results.tmp-1",  # not hidden
            tmp_path / f".res.daxsim.tmp-{dead}-x",  # not the pattern
            tmp_path / "notes.txt",
        ]
        files = {gone[1], kept[1], kept[2], kept[5]}
        for p in gone + kept:
            if p in files:
                p.write_bytes(b"x")
            else:
                p.mkdir()
                (p / "summary.parquet").write_bytes(b"x")
        removed = remove_stale_temps(tmp_path)
        assert sorted(removed) == sorted(gone)
        assert sorted(tmp_path.iterdir()) == sorted(kept)
    finally:
        live.kill()
        live.wait()


def _run(parent: Path) -> subprocess.Popen:
    argv = [sys.executable, "-m", "sim", "run", "vm-clones", "--quiet", "--out"]
    return subprocess.Popen(
        argv + [str(parent / "res"), *TINY],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait_for_temp(proc: subprocess.Popen, parent: Path, min_files: int) -> Path:
    """Poll until the run's temporary results directory holds ``min_files`` files."""
    while proc.poll() is None:
        for p in parent.glob(".res.daxsim.tmp-*"):
            try:
                if sum(1 for _ in p.rglob("*")) >= min_files:
                    return p
            except FileNotFoundError:
                pass
        time.sleep(0.005)
    _, err = proc.communicate()
    pytest.fail(f"the run ended ({proc.returncode}) before writing: {err!r}")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs procfs (Linux)")
@pytest.mark.parametrize(
    ("sig", "min_files"),
    [
        (signal.SIGKILL, 0),  # as the temporary directory appears
        (signal.SIGKILL, 6),  # its tables written, plots being drawn
        (signal.SIGTERM, 0),
        (signal.SIGTERM, 6),
    ],
)
def test_a_killed_run_leaves_nothing_once_the_next_command_writes_there(tmp_path, sig, min_files):
    parent = tmp_path / "results"
    parent.mkdir()
    (parent / "notes.txt").write_text("mine")
    proc = _run(parent)
    temp = _wait_for_temp(proc, parent, min_files)
    proc.send_signal(sig)
    _, err_bytes = proc.communicate()
    rc, err = proc.returncode, err_bytes.decode()
    if sig == signal.SIGTERM:
        assert rc == 128 + signal.SIGTERM, err
        assert "terminated" in err and "Traceback" not in err
        # Handled like SIGINT: nothing half-written remains, at once.
        assert sorted(p.name for p in parent.iterdir()) == ["notes.txt"]
        return
    assert rc == -signal.SIGKILL
    assert temp.exists()  # SIGKILL cannot be handled: the temporary stays...
    done = subprocess.run(
        [sys.executable, "-m", "sim", "xfsio", str(SCRIPT), "--quiet"]
        + ["--summary-out", str(parent / "s.json")],
        cwd=ROOT,
        capture_output=True,
    )
    assert done.returncode == 0, done.stderr
    # ... until the next command writing into the same directory removes it.
    assert sorted(p.name for p in parent.iterdir()) == ["notes.txt", "s.json"]
    assert os.path.exists(parent / "notes.txt")
