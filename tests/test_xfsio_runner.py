"""``daxsim xfsio`` and the script runner: exit status, failed-check reports, summaries,
malformed scripts, errno handling and invariants."""

from __future__ import annotations

import json

import pytest

from sim.cli import main
from sim.xfsio.runner import INVARIANTS, run_script

GOOD = """\
@mkfs size=64m
@statfs S1
open -f a
pwrite -S 0x61 0 64k
close
open -f -t b
reflink a
close
@statfs S2
@expect_free_delta S1 S2 16 tol=0%
@expect_same_mapping a b
@expect_cmp a b same
open b
pread -v 0 4
@expect_bytes 0 61616161
mmap -rw 0 64k
mwrite 4096 10
@expect_range a 4096 b 4096 10 differ
@expect_range a 0 b 0 4096 same
munmap
reflink a 0 4096 1000
@expect_errno EINVAL
close
@expect_md5 a 2d61aa54b58c2e94403fb092c3dbc027
@final a size=65536 md5=2d61aa54b58c2e94403fb092c3dbc027
@model_shared_blocks b 15/16
@expect_invariant no_warnings holds
"""


def test_runner_good_script_all_checks_hold():
    r = run_script(GOOD, "good.xfsio", "page-share")
    assert r.result.ok, [c.describe() for c in r.result.checks if not c.ok]
    n = r.result.counts()
    assert n["checks_passed"] == 9 and n["model_checks_passed"] == 2
    # mwrite default byte is 'X'
    assert r.dax.fs.pread(r.dax.fs.lookup("b"), 4096, 2) == b"XX"


def test_unexpected_error_and_missing_error_are_failed_checks():
    text = "open -f a\nreflink a 0 4096 1000\nclose\n@expect_errno EINVAL\n"
    r = run_script(text, "t.xfsio")
    f = r.result.failed
    assert [c.line for c in f] == [2, 4]
    assert "EINVAL" in f[0].found and f[1].found == "success"


def test_failed_checks_report_line_expected_found(capsys, tmp_path):
    p = tmp_path / "bad.xfsio"
    p.write_text(
        "open -f a\npwrite -S 0x61 0 4k\n@expect_md5 a 00000000000000000000000000000000\n"
        "@final a size=1 md5=00000000000000000000000000000000\n"
    )
    out = tmp_path / "s.json"
    rc = main(["xfsio", str(p), "--summary-out", str(out)])
    text = capsys.readouterr().out
    assert rc == 1
    assert "bad.xfsio:3: expect_md5 failed: expected a md5 0000" in text
    assert "bad.xfsio:4: final (model-derived) failed" in text
    s = json.loads(out.read_text())
    assert s["checks_failed"] == 1 and s["model_checks_failed"] == 1 and s["checks_passed"] == 0
    for k in (
        "warnings",
        "warnings_latched",
        "residue_pages",
        "phantom_pages",
        "share_inc",
        "share_dec",
        "cow_pages",
        "cow_bytes",
        "blocks_allocated",
        "blocks_freed",
    ):
        assert k in s
    assert s["blocks_allocated"] == 1


def test_cli_script_passes_and_quiet(capsys, tmp_path):
    p = tmp_path / "good.xfsio"
    p.write_text(GOOD)
    assert main(["xfsio", str(p), "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    out = tmp_path / "s.json"
    assert main(["xfsio", str(p), "--variant", "cow-index", "--summary-out", str(out)]) == 0
    s = json.loads(out.read_text())
    assert s["variant"] == "cow-index" and s["cow_pages"] == 1 and s["share_inc"] == 1


def test_cli_dash_c_commands(capsys):
    rc = main(
        ["xfsio", "-c", "open -f a", "-c", "pwrite -S 0x61 0 64k", "-c", "md5sum", "-c", "stat"]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert "2d61aa54b58c2e94403fb092c3dbc027  a" in out and "stat.size = 65536" in out


@pytest.mark.parametrize(
    "body, line, reason",
    [
        ("open -f a\nfrobnicate 1\n", 2, "unknown command"),
        ("open -f a\npwrite 0 1q\n", 2, "suffix"),
        ("open -f a\n\ntruncate\n", 3, "missing argument"),
        ("open -f a\npwrite 0 4k\nmread 0 4k\n", 3, "no current mapping"),
        ("pwrite 0 4k\n", 1, "no file open"),
    ],
)
def test_malformed_script_exit_2_with_file_line(body, line, reason, tmp_path, capsys):
    p = tmp_path / "m.xfsio"
    p.write_text(body)
    out = tmp_path / "s.json"
    rc = main(["xfsio", str(p), "--summary-out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    assert f"m.xfsio:{line}:" in err and reason in err
    assert not out.exists()
    assert not list(tmp_path.glob(".summary-*"))


def test_unknown_variant_is_input_error(tmp_path, capsys):
    p = tmp_path / "g.xfsio"
    p.write_text("open -f a\n")
    assert main(["xfsio", str(p), "--variant", "nope"]) == 2


def test_cycle_mount_residue_invariant():
    text = """\
@mkfs size=64m
open -f a
pwrite -S 0x61 0 16k
close
open -f -t b
reflink a
mmap -rw 0 16k
mwrite 0 16k
munmap
close
@cycle_mount
@expect_invariant no_residue {w}
"""
    assert run_script(text.format(w="violated"), "t", "cow-index").result.ok
    assert run_script(text.format(w="holds"), "t", "page-share").result.ok
    r = run_script(text.format(w="holds"), "t", "cow-index")
    assert [c.kind for c in r.result.failed] == ["expect_invariant"]


def test_invariant_registry_is_extensible():
    assert {
        "no_residue",
        "no_phantom",
        "no_warnings",
        "memory_failure_owners",
        "nothing_left_behind",
    } <= set(INVARIANTS)
    INVARIANTS["always_false_for_test"] = lambda r: False
    try:
        r = run_script("@expect_invariant always_false_for_test violated\n", "t")
        assert r.result.ok
    finally:
        del INVARIANTS["always_false_for_test"]


def test_mapping_table_select_and_file_table():
    text = """\
open -f a
pwrite -S 0x61 0 8k
mmap -r 0 4k
mmap -rw 0 8k
mmap 0
mread 0 4k
mmap 1
mwrite -S 0x62 4096 1
munmap
munmap
open -f b
close
pwrite -S 0x63 0 1
close
"""
    r = run_script(text, "t")
    assert r.result.ok, [c.describe() for c in r.result.failed]
    fs = r.dax.fs
    assert fs.pread(fs.lookup("a"), 0, 1) == b"c" and fs.pread(fs.lookup("a"), 4096, 1) == b"b"


def test_fault_beyond_eof_is_sigbus_and_readonly_open_refuses_writes():
    text = """\
open -f a
pwrite -S 0x61 0 4k
mmap -r 0 16k
mread 8192 1
@expect_sigbus
mread 0 1
munmap
close
open -r a
pwrite 0 1
@expect_errno EBADF
close
"""
    r = run_script(text, "t")
    assert r.result.ok, [c.describe() for c in r.result.checks if not c.ok]
    assert [c.kind for c in r.result.checks] == ["expect_sigbus", "expect_errno"]


HUGE_READ = """\
@mkfs size=64m
open -f a
pwrite -S 0x61 0 4096
truncate 1T
pread {v}0 1T
@expect_bytes 0 6161
@expect_bytes 4094 61610000
@expect_bytes 1099511627774 0000
"""


def test_pread_of_a_huge_sparse_file_reads_only_what_is_checked():
    """A 1 TiB read of a sparse file costs its block map: the bytes an @expect_bytes asks
    for are read, not the whole range (the runner used to build all of it: MemoryError)."""
    r = run_script(HUGE_READ.format(v=""), "huge.xfsio")
    assert r.result.ok, [c.describe() for c in r.result.checks if not c.ok]
    assert r.result.counts()["checks_passed"] == 3


def test_pread_v_past_the_print_limit_is_a_clean_error(tmp_path, capsys):
    p = tmp_path / "huge.xfsio"
    p.write_text(HUGE_READ.format(v="-v "))
    assert main(["xfsio", str(p)]) == 2
    err = capsys.readouterr().err
    assert "huge.xfsio:5" in err and "pread -v of 1099511627776 bytes" in err
    assert "Traceback" not in err


def test_read_bytes_outlive_later_commands_only_when_printed():
    """``pread -v`` bytes stay the previous read's for later @expect_bytes (README); an
    un-printed read's bytes are for the lines right after it only."""
    base = (
        "open -f a\npwrite -S 0x61 0 8192\npread {v}0 8192\npwrite -S 0x62 0 8192\n"
        "@expect_bytes 0 61\n"
    )
    assert run_script(base.format(v="-v "), "t.xfsio").result.ok
    r = run_script(base.format(v=""), "t.xfsio")
    (c,) = r.result.failed
    assert c.found == "(no data)"


def test_read_work_equals_pread_work():
    """DaxFS.read (the work of a read, no bytes) gives the record pread gives."""
    from sim.dax import DaxFS

    d = DaxFS(4096, "page-share")
    a, _ = d.open("a", create=True)
    d.pwrite(a, 4096, 3 * 4096 + 5, 0x61)
    b, _ = d.open("b", create=True)
    d.clone(b, a)
    for ino in (a, b):
        for off, ln in ((0, 1), (0, 1 << 20), (4095, 2), (5000, 9000), (1 << 20, 10), (16383, 4)):
            data, w1 = d.pread(ino, off, ln)
            w2 = d.read(ino, off, ln)
            assert (w1.pmem_read, w1.memcpy_bytes) == (w2.pmem_read, w2.memcpy_bytes)
            assert w2.memcpy_bytes == len(data)
