"""Replay of the conformance cases' content semantics directly on sim.fs.FileSystem.

A tiny throwaway driver (the real runner is sim.xfsio.runner, another area): mapping commands
are emulated with the DAX primitives (mwrite = cow_blocks + alloc_blocks + store), and the
model-derived lines (@final, @expect_poison_owners) are checked too. benchmarks/bench_fs.py
reuses :func:`replay`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.fs import BLOCK_SIZE, FileSystem, FsError
from sim.xfsio.parse import parse_script

CASES = Path(__file__).resolve().parents[1].parent / "shared" / "conformance" / "xfstests"

DEFAULT_BLOCKS = 1 << 28  # 1 TiB


class Replay:
    def __init__(self, nblocks: int = DEFAULT_BLOCKS):
        self.fill = None
        self.fs = FileSystem(nblocks)
        self.files: list[int] = []
        self.cur = -1
        self.maps: list[tuple[int, int, int]] = []
        self.last_error: str | None = None
        self.samples: dict[str, int] = {}
        self.failures: list[str] = []
        self.checks = 0
        self.poisoned: list[int] = []

    def fail(self, c, msg):
        self.failures.append(f"{c.line}: {c.text}: {msg}")

    def run(self, text: str, name: str = "script"):
        cmds = parse_script(text, name)
        for i, c in enumerate(cmds):
            nxt = cmds[i + 1] if i + 1 < len(cmds) else None
            try:
                self.last_error = None
                self.step(c)
            except FsError as e:
                self.last_error = e.errno
            if self.last_error and not (nxt and nxt.name == "@expect_errno"):
                self.fail(c, f"unexpected error {self.last_error}")
            if c.name == "@expect_errno":
                pass
        return self

    def step(self, c):
        fs, a, o = self.fs, c.args, c.opts
        cur = self.files[self.cur] if self.files else None
        n = c.name
        if n == "open":
            ino = fs.open(a[0], create=bool(o.get("f")), trunc=bool(o.get("t")))
            self.files.append(ino)
            self.cur = len(self.files) - 1
        elif n == "close":
            self.files.pop(self.cur)
            self.cur = min(self.cur, len(self.files) - 1)
        elif n == "pwrite":
            fs.pwrite(cur, a[0], a[1], o.get("S", 0xCDCDCDCD) & 0xFF)
        elif n == "truncate":
            fs.truncate(cur, a[0])
        elif n == "falloc":
            fs.fallocate(cur, a[0], a[1], keep_size=bool(o.get("k")))
        elif n == "fpunch":
            fs.punch(cur, a[0], a[1])
        elif n == "fzero":
            fs.zero_range(cur, a[0], a[1], keep_size=bool(o.get("k")))
        elif n == "funshare":
            fs.unshare(cur, a[0], a[1])
        elif n == "reflink":
            src = fs.lookup(a[0])
            if len(a) == 1:
                fs.clone(cur, src)
            else:
                fs.clone(cur, src, a[1], a[2], a[3])
        elif n == "dedupe":
            fs.dedupe(cur, fs.lookup(a[0]), a[1], a[2], a[3])
        elif n == "mmap":
            if len(a) == 2:
                self.maps.append((cur, a[0], a[1]))
        elif n == "munmap":
            self.maps.pop()
        elif n == "mwrite":
            ino = self.maps[-1][0]
            off, ln = a
            b0, b1 = off // BLOCK_SIZE, -(-(off + ln) // BLOCK_SIZE)
            fs.cow_blocks(ino, b0, b1 - b0)
            fs.alloc_blocks(ino, b0, b1 - b0)
            fs.store(ino, off, ln, o.get("S", ord("X")) & 0xFF)
        elif n == "@hwpoison":
            ino, moff, _ = self.maps[-1]
            self.poison_ino = ino
        elif n == "@expect_poison_owners":
            self.checks += 1
            ino = self.poison_ino
            pb = fs.bmap(ino, a[0] // BLOCK_SIZE, 1)[0].pblock
            got = sorted((fs.path_of(i), fb * BLOCK_SIZE) for i, fb in fs.rmap(pb))
            if got != sorted(a[1:]):
                self.fail(c, f"owners {got}")
        elif n == "@mkfs":
            nb = o["size"] // BLOCK_SIZE if "size" in o else DEFAULT_BLOCKS
            self.fs = FileSystem(nb, fill_byte=self.fill)
        elif n == "@scratch_dev_fill":
            self.fill = a[0]
            self.fs = FileSystem(self.fs.nblocks, fill_byte=a[0])
        elif n == "@unlink":
            fs.unlink(a[0])
        elif n == "@statfs":
            self.samples[a[0]] = fs.free_blocks()
        elif n == "@expect_free_delta":
            self.checks += 1
            d = self.samples[a[0]] - self.samples[a[1]]
            if d != a[2]:
                self.fail(c, f"delta {d}")
        elif n == "@expect_md5":
            self.checks += 1
            got = fs.md5(fs.lookup(a[0]))
            if got != a[1]:
                self.fail(c, f"md5 {got}")
        elif n == "@final":
            self.checks += 1
            ino = fs.lookup(a[0])
            if fs.size(ino) != o["size"]:
                self.fail(c, f"size {fs.size(ino)}")
            if "md5" in o and fs.md5(ino) != o["md5"]:
                self.fail(c, "md5 differs")
        elif n == "@expect_cmp":
            self.checks += 1
            x, y = fs.lookup(a[0]), fs.lookup(a[1])
            same = fs.size(x) == fs.size(y) and fs.compare(x, 0, y, 0, fs.size(x))
            if same != (a[2] == "same"):
                self.fail(c, f"same={same}")
        elif n == "@expect_range":
            self.checks += 1
            same = fs.compare(fs.lookup(a[0]), a[1], fs.lookup(a[2]), a[3], a[4])
            if same != (a[5] == "same"):
                self.fail(c, f"same={same}")
        elif n == "@expect_range_md5":
            self.checks += 1
            if fs.md5(fs.lookup(a[0]), a[1], a[2]) != a[3]:
                self.fail(c, "md5 differs")
        elif n == "@expect_same_mapping":
            self.checks += 1
            x, y = fs.lookup(a[0]), fs.lookup(a[1])
            nb = -(-max(fs.size(x), fs.size(y)) // BLOCK_SIZE)
            mx = [(e.fblock, e.pblock, e.nblocks) for e in fs.bmap(x, 0, nb)]
            my = [(e.fblock, e.pblock, e.nblocks) for e in fs.bmap(y, 0, nb)]
            if mx != my:
                self.fail(c, "mappings differ")
        elif n == "@expect_errno":
            self.checks += 1
            if self.prev_error != a[0]:
                self.fail(c, f"errno {self.prev_error}")
        # mread, msync, fsync, fdatasync, stat, @cycle_mount, @sync, @expect_sigbus: no change
        if n != "@expect_errno":
            self.prev_error = None
        self.fs.check_invariants() if self.check_every else None

    check_every = False

    def _wrap_errors(self):
        pass


def replay(text: str, name: str = "script", check_every: bool = False) -> Replay:
    r = Replay()
    r.check_every = check_every
    orig = r.step

    def step(c):
        try:
            orig(c)
        except FsError as e:
            r.prev_error = e.errno
            raise

    r.step = step
    return r.run(text, name)


def _cases():
    if not CASES.is_dir():
        return []
    return sorted(p.name for p in CASES.glob("*.xfsio"))


needs_shared = pytest.mark.skipif(
    not CASES.is_dir(), reason=f"{CASES} absent (../shared not mounted)"
)

# the two stress cases run in benchmarks/bench_fs.py; every other case runs here
_FAST = [c for c in _cases() if c not in ("xfs-265.xfsio", "generic-175.xfsio")]


@needs_shared
@pytest.mark.parametrize("case", _FAST)
def test_conformance_content(case):
    r = replay((CASES / case).read_text(), case, check_every=True)
    assert r.checks > 0
    assert r.failures == []


@needs_shared
def test_model_stats_match_reference_counters():
    # '# model-stats:' of a few cases (reference model, page-granular CoW): our counters agree
    for case in (
        "generic-110.xfsio",
        "generic-138.xfsio",
        "generic-148.xfsio",
        "generic-178.xfsio",
        "generic-253.xfsio",
        "generic-259.xfsio",
        "generic-264.xfsio",
        "generic-657.xfsio",
    ):
        text = (CASES / case).read_text()
        stats = dict(kv.split("=") for kv in text.split("# model-stats:")[1].split())
        c = replay(text, case).fs.counters()
        assert c["blocks_allocated"] == int(stats["alloc"]), case
        assert c["blocks_freed"] == int(stats["free"]), case
        assert c["refcount_increments"] == int(stats["ref_inc"]), case
        assert c["refcount_decrements"] == int(stats["ref_dec"]), case
        assert c["cow_blocks"] == int(stats["cow_blocks"]), case
        assert c["remap_blocks"] == int(stats["remap_blocks"]), case


@needs_shared
def test_replay_detects_a_wrong_md5():
    text = (
        (CASES / "generic-110.xfsio")
        .read_text()
        .replace("42d69d1a6d333a7ebdf64792a555e392", "0" * 32, 1)
    )
    assert replay(text, "x").failures
