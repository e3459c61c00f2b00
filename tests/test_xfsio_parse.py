"""The xfs_io script parser: every conformance file parses; malformed lines give FILE:LINE."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.errors import InputError
from sim.xfsio.parse import COMMANDS, Command, cvtnum, parse_command, parse_script

CASES = Path(__file__).resolve().parents[1].parent / "shared" / "conformance" / "xfstests"
needs_shared = pytest.mark.skipif(
    not CASES.is_dir(), reason=f"{CASES} absent (../shared not mounted)"
)


def one(text: str) -> Command:
    c = parse_command(text, "t.xfsio", 7)
    assert c is not None
    return c


def bad(text: str) -> str:
    with pytest.raises(InputError) as e:
        parse_command(text, "t.xfsio", 7)
    assert e.value.where == "t.xfsio:7"
    assert str(e.value).startswith("t.xfsio:7: ")
    return e.value.message


@pytest.mark.parametrize(
    "text,value",
    [
        ("0", 0),
        ("4096", 4096),
        ("0x1000", 4096),
        ("0X10", 16),
        ("64k", 65536),
        ("64K", 65536),
        ("1m", 1 << 20),
        ("1M", 1 << 20),
        ("2g", 2 << 30),
        ("1t", 1 << 40),
        ("1p", 1 << 50),
        ("1e", 1 << 60),
        ("3b", 3 * 4096),
        ("8s", 4096),
        ("010", 8),
        ("0x10k", 16384),
        ("-4096", -4096),
        ("256K", 262144),
        ("640K", 655360),
    ],
)
def test_cvtnum(text, value):
    assert cvtnum(text) == value


@pytest.mark.parametrize("text", ["", "k", "12q", "1kk", "0x", "08", "1.5k", "abc", "4 k", "1kb"])
def test_cvtnum_rejects_junk(text):
    with pytest.raises(ValueError):
        cvtnum(text)


def test_io_commands_and_options():
    c = one("pwrite -S 0x61 -b 65536 0 64k")
    assert (c.name, c.opts, c.args, c.line) == ("pwrite", {"S": 0x61, "b": 65536}, (0, 65536), 7)
    assert one("pwrite -S0x62 -b 1m 4096 1").opts == {"S": 0x62, "b": 1 << 20}
    assert one("pwrite 0 4096 -S 99").opts == {"S": 99}  # getopt permutes
    assert one("pwrite -S 0 -W 0 1").opts == {"S": 0, "W": True}
    assert one("mmap -rw 0 4096").opts == {"r": True, "w": True}
    assert one("mmap -r 0 4096").args == (0, 4096)
    assert one("mmap 1").args == (1,) and one("mmap 1").opts == {}
    assert one("mmap").args == ()
    assert one("mwrite -S 0x62 1048542 17").args == (1048542, 17)
    assert one("mread -v 0 4096").opts == {"v": True}
    assert one("mread").args == ()
    assert one("msync -s 0 4096").opts == {"s": True}
    assert one("open -f -t file1.2").args == ("file1.2",)
    assert one("open -f -t file1.2").opts == {"f": True, "t": True}
    assert one("open -ft x").opts == {"f": True, "t": True}
    assert one("reflink file1").args == ("file1",)
    assert one("reflink file1 65536 131072 0").args == ("file1", 65536, 131072, 0)
    assert one("dedupe bar 0 64K 131172").args == ("bar", 0, 65536, 131172)
    assert one("falloc -k 131072 65536").opts == {"k": True}
    assert one("fzero -k 0 1b").args == (0, 4096)
    assert one("truncate 2789376").args == (2789376,)
    for name in ("close", "munmap", "fsync", "fdatasync", "stat", "files"):
        assert one(name).name == name
    assert one("pread -v 0 17").opts == {"v": True}
    assert one('open -f "a b"').args == ("a b",)


def test_harness_lines():
    assert one("@mkfs").opts == {}
    assert one("@mkfs size=314572800").opts == {"size": 314572800}
    assert one("@scratch_dev_fill 0x58").args == (0x58,)
    assert one("@expect_md5 f 42D69D1A6D333A7EBDF64792A555E392").args == (
        "f",
        "42d69d1a6d333a7ebdf64792a555e392",
    )
    assert one("@expect_cmp a b same").args == ("a", "b", "same")
    assert one("@expect_range f1 0 f2 0 64k differ").args == ("f1", 0, "f2", 0, 65536, "differ")
    assert one("@expect_range_md5 f 4096 4k " + "a" * 32).args == ("f", 4096, 4096, "a" * 32)
    assert one("@expect_errno EBADE").args == ("EBADE",)
    assert one("@expect_bytes 0 6161").args == (0, "6161")
    assert one("@expect_bytes 16 61 62 63").args == (16, "616263")
    assert one("@expect_same_mapping a b").args == ("a", "b")
    c = one("@expect_free_delta S2 S1 -2000 tol=15%  # free blocks after reflink")
    assert c.args == ("S2", "S1", -2000) and c.opts == {"tol": 0.15}
    assert one("@expect_free_delta S3 S2 +0 tol=15%").args == ("S3", "S2", 0)
    c = one("@expect_poison_owners 4096 poisonfile:4096 testfile:4096")
    assert c.args == (4096, ("poisonfile", 4096), ("testfile", 4096))
    assert one("@model_shared_blocks f 3/16").args == ("f", 3, 16)
    c = one("@final file1 size=4294967296")
    assert c.args == ("file1",) and c.opts == {"size": 4294967296}
    c = one("@final a size=10 md5=" + "b" * 32)
    assert c.opts == {"size": 10, "md5": "b" * 32}
    assert one("@expect_invariant no_residue violated").args == ("no_residue", "violated")
    for name in ("@cycle_mount", "@sync", "@expect_sigbus"):
        assert one(name).args == ()
    assert one("@unlink file1.99").args == ("file1.99",)
    assert one("@hwpoison 0 8192").args == (0, 8192)
    assert one("@statfs S1").args == ("S1",)


def test_every_table_entry_is_known():
    for name in (
        "open",
        "close",
        "pwrite",
        "pread",
        "truncate",
        "falloc",
        "fpunch",
        "fzero",
        "funshare",
        "reflink",
        "dedupe",
        "mmap",
        "mread",
        "mwrite",
        "msync",
        "munmap",
        "fsync",
        "fdatasync",
        "stat",
        "files",
        "@mkfs",
        "@cycle_mount",
        "@sync",
        "@unlink",
        "@scratch_dev_fill",
        "@hwpoison",
        "@expect_md5",
        "@expect_cmp",
        "@expect_range",
        "@expect_range_md5",
        "@expect_errno",
        "@expect_bytes",
        "@expect_same_mapping",
        "@statfs",
        "@expect_free_delta",
        "@expect_poison_owners",
        "@expect_sigbus",
        "@model_shared_blocks",
        "@final",
        "@expect_invariant",
    ):
        assert name in COMMANDS


@pytest.mark.parametrize(
    "text,reason",
    [
        ("frobnicate 0 1", "unknown command"),
        ("pwrite 0 12q", "bad size suffix"),
        ("pwrite 0", "missing argument"),
        ("pwrite 0 1 2", "too many arguments"),
        ("pwrite -S", "needs a value"),
        ("pwrite -S zz 0 1", "not a number"),
        ("pwrite -y 0 1", "unknown option"),
        ("open", "missing argument"),
        ("close now", "too many"),
        ("truncate", "missing argument"),
        ("reflink a 0 0", "argument"),
        ("dedupe a 0 0", "missing argument"),
        ("mmap -rw 0", "argument"),
        ("mmap x", "argument"),
        ("@expect_md5 f xyz", "not an md5"),
        ("@expect_md5 f", "missing argument"),
        ("@expect_cmp a b maybe", "same or differ"),
        ("@expect_errno einval", "errno"),
        ("@expect_free_delta S1 S2 x tol=15%", "signed integer"),
        ("@expect_free_delta S1 S2 0 tol=15", "percentage"),
        ("@expect_poison_owners 0 file", "PATH:OFF"),
        ("@model_shared_blocks f 3", "N/M"),
        ("@final f md5=" + "a" * 32, "size="),
        ("@mkfs size=10q", "suffix"),
        ("@expect_invariant x maybe", "violated or holds"),
        ("@bogus", "unknown command"),
        ("open 'unterminated", "cannot split"),
    ],
)
def test_malformed_lines(text, reason):
    assert reason in bad(text)


def test_script_line_numbers_and_comments():
    text = "# header\n\nopen -f a\n  # indented comment\npwrite -S 0x61 0 4k\nclose\nbogus 1\n"
    with pytest.raises(InputError) as e:
        parse_script(text, "s.xfsio")
    assert str(e.value) == "s.xfsio:7: unknown command 'bogus'"
    cmds = parse_script(text.replace("bogus 1\n", ""), "s.xfsio")
    assert [(c.line, c.name) for c in cmds] == [(3, "open"), (5, "pwrite"), (6, "close")]
    assert cmds[1].text == "pwrite -S 0x61 0 4k"
    assert parse_command("   ", "s", 1) is None and parse_command("# x", "s", 1) is None


@pytest.mark.parametrize(
    ("text", "name", "args"),
    [
        (
            "@expect_free_delta S3 S2 -4000 tol=15%  # free blocks after nocow'ing some copies",
            "@expect_free_delta",
            ("S3", "S2", -4000),
        ),
        ('pwrite -S 0x61 0 4096  # "unbalanced', "pwrite", (0, 4096)),
        ("pwrite -S 0x61 0 4096\t#it's a tab", "pwrite", (0, 4096)),
        ("open -f 'a b'  # quoted name, then a comment's quote: '", "open", ("a b",)),
        ("open -f a#b", "open", ("a#b",)),  # a '#' inside a word is not a comment
    ],
)
def test_a_comment_after_whitespace_ends_the_line_whatever_it_holds(text, name, args):
    c = one(text)
    assert (c.name, c.args) == (name, args)


@needs_shared
def test_every_conformance_file_parses():
    files = sorted(CASES.glob("*.xfsio"))
    assert len(files) >= 28
    names = set()
    for f in files:
        cmds = parse_script(f.read_text(), f.name)
        assert cmds, f.name
        names.update(c.name for c in cmds)
        n_lines = sum(
            1 for ln in f.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")
        )
        assert len(cmds) == n_lines
    assert {
        "open",
        "pwrite",
        "reflink",
        "dedupe",
        "mmap",
        "mwrite",
        "@expect_md5",
        "@final",
        "@expect_poison_owners",
        "@expect_free_delta",
    } <= names
