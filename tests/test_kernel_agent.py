"""The guest agent (sim/kernel/agent/daxio.c) run on the host's own kernel, without a guest.

The agent is compiled as it is for the initramfs (``gcc -static -O2 -Wall``) and runs
programs built by :mod:`sim.kernel.program` on an XFS filesystem (reflink, rmapbt) on a loop
device; the checks are evaluated by :func:`sim.kernel.run.evaluate`. Expectations are the
xfstests golden values the conformance scripts carry (kernel truth), facts of the format's
README, or what daxsim's runner computes for the same script, never values copied from the
agent. DAX itself (and MADV_HWPOISON, which would poison a page of the host) needs the guest:
those lines run in tests/test_kernel_guest.py.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from kernel_helpers import every_line_script

from sim.errors import InputError
from sim.kernel.program import build_program
from sim.kernel.run import evaluate, parse_reports, prepare_scripts, unmount_error
from sim.xfsio.parse import parse_script
from sim.xfsio.runner import run_script

ROOT = Path(__file__).resolve().parents[1]
AGENT_SRC = ROOT / "sim" / "kernel" / "agent" / "daxio.c"
CONFORMANCE = ROOT.parent / "shared" / "conformance" / "xfstests"
if not CONFORMANCE.is_dir():
    CONFORMANCE = Path("/work/shared/conformance/xfstests")


@pytest.fixture(scope="module")
def agent(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("agent") / "daxio"
    r = subprocess.run(
        ["gcc", "-static", "-O2", "-Wall", "-Werror", "-o", str(out), str(AGENT_SRC)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def loopdev(tmp_path_factory):
    """A 400 MiB sparse image on a loop device (the agent runs mkfs.xfs on it)."""
    if os.geteuid() != 0 or shutil.which("losetup") is None or shutil.which("mkfs.xfs") is None:
        pytest.fail("the agent's host tests need root, losetup and mkfs.xfs (make setup)")
    d = tmp_path_factory.mktemp("loop")
    img = d / "scratch.img"
    with open(img, "wb") as fh:
        fh.truncate(400 << 20)
    dev = subprocess.run(
        ["losetup", "--find", "--show", str(img)], capture_output=True, text=True, check=True
    ).stdout.strip()
    mnt = d / "mnt"
    mnt.mkdir()
    yield dev, str(mnt)
    subprocess.run(["umount", str(mnt)], capture_output=True)
    subprocess.run(["losetup", "-d", dev], capture_output=True)


def _run(agent, loopdev, text: str, name: str = "t.xfsio"):
    dev, mnt = loopdev
    cmds = parse_script(text, name)
    prog = build_program(cmds, filename=name, dev=dev, mnt=mnt, mount_opts="-")
    pf = Path(mnt).parent / "prog"
    pf.write_bytes(prog)
    r = subprocess.run([str(agent), str(pf)], capture_output=True, text=True, timeout=600)
    reports = parse_reports(r.stdout)
    return evaluate(cmds, reports, name), r


CASES = [
    "generic-110.xfsio",  # same_mapping, md5
    "generic-122.xfsio",  # dedupe of differing data: EBADE
    "generic-134.xfsio",  # EOF-block clone
    "generic-140.xfsio",  # mmap CoW with mwrite
    "generic-146.xfsio",  # fpunch
    "generic-148.xfsio",  # truncate
    "generic-151.xfsio",  # @statfs, @expect_free_delta, @unlink-free deletes
    "generic-181.xfsio",  # reflink LEN 0
    "generic-259.xfsio",  # fzero
    "generic-264.xfsio",  # funshare
    "generic-515.xfsio",  # @scratch_dev_fill, @mkfs size=, falloc -k
    "generic-517.xfsio",  # dedupe of an unaligned EOF
    "generic-518.xfsio",  # clone EINVAL
]


@pytest.mark.parametrize("case", CASES)
def test_conformance_case_passes_on_the_host_kernel(agent, loopdev, case):
    """The xfstests golden checks of the case hold when the agent runs it on XFS, and the
    files at the end have the md5 daxsim computes for the same script."""
    text = (CONFORMANCE / case).read_text()
    res, proc = _run(agent, loopdev, text, case)
    assert proc.returncode == 0, proc.stderr
    assert res.error is None
    failed = [c.describe(case) for c in res.checks if not c.ok and not c.model]
    assert failed == []
    assert res.counts()["checks_passed"] > 0
    sim = run_script(text, case, variant="page-share")
    fs = sim.dax.fs
    assert set(res.md5) == set(fs.paths())
    for path, md5 in res.md5.items():
        assert md5 == fs.md5(fs.lookup(path)), path
        assert res.sizes[path] == fs.size(fs.lookup(path)), path


def test_pwrite_defaults_are_xfs_io_defaults(agent, loopdev):
    """pwrite without -S writes 0xcd (seed 0xcdcdcdcd) in buffers of one fs block; -b sets the
    buffer (one pwrite(2) per buffer); mwrite without -S stores 'X'."""
    text = "open -f a\npwrite 0 10000\npwrite -b 2m 16384 3m\nmmap 0 4096\nmwrite 0 10\n"
    res, proc = _run(agent, loopdev, text)
    reps = {(r["line"], r["op"]): r for r in parse_reports(proc.stdout)}
    assert reps[(2, "pwrite")]["ops"] == -(-10000 // 4096)
    assert reps[(3, "pwrite")]["ops"] == -(-(3 << 20) // (2 << 20))
    want = bytearray(b"\xcd" * 10000)
    want[:10] = b"X" * 10
    want += b"\0" * (16384 - 10000) + b"\xcd" * (3 << 20)
    assert res.md5["a"] == hashlib.md5(bytes(want)).hexdigest()


def test_errno_and_sigbus_follow_the_runner_rules(agent, loopdev):
    """A load of a whole page past EOF is a SIGBUS the agent survives; @expect_errno consumes
    a pending failure; a failure nobody expects is a failed check at its line."""
    text = (
        "open -f a\npwrite 0 100\nmmap -r 0 8192\nmread 4096 1\n@expect_errno SIGBUS\n"
        "mread 0 100\nopen b\n@expect_errno ENOENT\nreflink a 0 0 3\n"
        "@expect_md5 a " + hashlib.md5(b"\xcd" * 100).hexdigest() + "\n"
    )
    res, proc = _run(agent, loopdev, text)
    assert proc.returncode == 0
    assert res.sigbus
    by_kind = [(c.line, c.kind, c.ok) for c in res.checks]
    assert (5, "expect_errno", True) in by_kind
    assert (8, "expect_errno", True) in by_kind
    assert (9, "command", False) in by_kind  # FICLONERANGE of 3 bytes mid-file: EINVAL
    assert (10, "expect_md5", True) in by_kind
    sim = run_script(text, "t.xfsio")
    assert [(c.line, c.kind, c.ok) for c in sim.result.checks] == by_kind


def test_bytes_of_the_last_read(agent, loopdev):
    """@expect_bytes reads the bytes of the previous pread or mread."""
    text = (
        "open -f a\npwrite -S 0x41 0 4096\npwrite -S 0x42 4096 4096\n"
        "pread -v 4090 12\n@expect_bytes 4094 41414242\nmmap -r 0 8192\nmread 4092 8\n"
        "@expect_bytes 4092 4141414142424242\n@expect_bytes 4092 42\n"
    )
    res, _ = _run(agent, loopdev, text)
    got = [(c.line, c.ok) for c in res.checks]
    assert got == [(5, True), (8, True), (9, False)]
    sim = run_script(text, "t.xfsio")
    assert [(c.line, c.ok) for c in sim.result.checks] == got


def test_cycle_mount_and_unlink_and_final_extents(agent, loopdev):
    """After @cycle_mount the files persist; @unlink removes one; the end report lists every
    file with FIEMAP extents covering its data, shared flags on reflinked blocks."""
    text = (
        "open -f a\npwrite -S 0x61 0 65536\nclose\nopen -f b\nreflink a\nclose\n"
        "@cycle_mount\nopen -f c\npwrite 0 4096\nclose\n@unlink c\n"
        "@model_shared_blocks b 16/16\n"
    )
    res, _ = _run(agent, loopdev, text)
    assert sorted(res.md5) == ["a", "b"]
    assert res.md5["a"] == res.md5["b"] == hashlib.md5(b"a" * 65536).hexdigest()
    for p in ("a", "b"):
        assert sum(e[2] for e in res.extents[p]) == 65536
        assert all(e[3] & 0x2000 for e in res.extents[p])  # FIEMAP_EXTENT_SHARED
    assert [(c.kind, c.ok, c.model) for c in res.checks] == [("model_shared_blocks", True, True)]
    assert res.counts()["checks_passed"] == 0


def test_bad_program_is_refused(agent, tmp_path):
    p = tmp_path / "p"
    p.write_text("open f a\n")
    r = subprocess.run([str(agent), str(p)], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stdout == ""


def test_program_refuses_a_mapping_that_cannot_exist(tmp_path):
    cmds = parse_script("open -f a\nmmap 0 4096\nmmap 1\n", "x.xfsio")
    with pytest.raises(InputError) as e:
        build_program(cmds, filename="x.xfsio")
    assert e.value.where == "x.xfsio:3"
    cmds = parse_script("open -f a\nmread 0 1\n", "y.xfsio")
    with pytest.raises(InputError):
        build_program(cmds, filename="y.xfsio")


def test_prepare_scripts_parses_everything_first(tmp_path):
    good = tmp_path / "good.xfsio"
    good.write_text("open -f a\n")
    bad = tmp_path / "bad.xfsio"
    bad.write_text("open -f a\npwrite 0\n")
    with pytest.raises(InputError) as e:
        prepare_scripts([good, bad])
    assert e.value.where == f"{bad}:2"
    out = prepare_scripts([good, good], pause=True)
    assert [o[1] for o in out] == ["s000-good", "s001-good"]
    assert b" pause s000-good\n" in out[0][3]
    # a second pause before the @mkfs: the page state the script starts from
    assert out[0][3].startswith(
        b"setup /dev/pmem0 /mnt/scratch dax=always\n0 pause s000-good@start\n0 mkfs 0 -1\n"
    )
    assert prepare_scripts([good])[0][3].startswith(
        b"setup /dev/pmem0 /mnt/scratch dax=always\n0 mkfs 0 -1\n"
    )


def test_every_line_type_on_the_host_kernel(agent, loopdev):
    """The script with every line type (but @hwpoison, which needs the guest) passes its
    checks, computed from the format's README, and each check has daxsim's outcome."""
    text = every_line_script(poison=False)
    res, proc = _run(agent, loopdev, text, "every.xfsio")
    assert proc.returncode == 0, proc.stderr
    assert res.error is None
    assert [c.describe("every") for c in res.checks if not c.ok] == []
    sim = run_script(text, "every.xfsio", variant="page-share")
    k = [(c.line, c.kind, c.ok) for c in res.checks]
    d = [(c.line, c.kind, c.ok) for c in sim.result.checks if c.kind != "expect_invariant"]
    assert k == d
    assert res.unobserved == [
        f"every.xfsio:{len(text.splitlines()) - 1}: @expect_invariant no_warnings holds"
    ]


def test_a_failed_unmount_at_the_end_is_the_scripts_error():
    """The agent reports its unmount like any command (report_err: ok false and the errno);
    a filesystem left mounted would be evicted later, its warnings in another kernel log."""
    ok = parse_reports(
        '{"line": 3, "op": "final", "ok": true}\n{"line": 3, "op": "umount", "ok": true}\n'
    )
    busy = parse_reports('{"line": 3, "op": "umount", "ok": false, "errno": "EBUSY"}\n')
    assert unmount_error(ok) is None
    assert unmount_error(busy) == "the unmount at the end failed (EBUSY)"
