"""File-level operations of the hunt and the session that runs them as xfs_io lines.

An :class:`Op` is a small immutable record (``kind``, ``path``, integer ``args``, ``src``).
A :class:`Session` turns each op into the xfs_io lines of
``shared/conformance/xfstests/README.md`` (selecting the file and the mapping the way xfs_io's
interactive file and mapping tables need), and executes them through
:class:`sim.xfsio.runner.XfsioRunner`, so what the hunt ran and what ``daxsim xfsio`` replays
from the written reproducer are the same commands on the same code path. Each command is
built directly as the :class:`~sim.xfsio.parse.Command` its line parses to (no text parsing
per op; the tests parse every line and compare, and replay recorded scripts to the same
memmap words and file contents). A command that fails gets an ``@expect_errno`` line right
after it.

Op kinds and their ``args`` (bytes):

============  ==============================  =============================================
kind          args                            xfs_io
============  ==============================  =============================================
pwrite        off, len, byte                  ``pwrite -S 0xBB OFF LEN``
truncate      size                            ``truncate SIZE``
punch         off, len                        ``fpunch OFF LEN``
zero          off, len, keep                  ``fzero [-k] OFF LEN``
unshare       off, len                        ``funshare OFF LEN``
clone         src_off, dst_off, len (src)     ``reflink SRC SOFF DOFF LEN`` (LEN 0 = to EOF)
dedupe        src_off, dst_off, len (src)     ``dedupe SRC SOFF DOFF LEN``
mread         map_off, map_len, off, len      ``mmap -rw MOFF MLEN`` if needed, ``mread``
mwrite        map_off, map_len, off, len, b   ``mwrite -S 0xBB OFF LEN`` (write faults)
hwpoison      map_off, map_len, off, len      ``@hwpoison OFF LEN`` (memory failure)
munmap        map_off, map_len                ``mmap N`` + ``munmap`` (a later access re-maps
                                              and re-faults)
unlink        -                               its mappings unmapped, then ``@unlink PATH``
============  ==============================  =============================================

A 2 MiB-aligned 2 MiB mapping window over a 2 MiB extent faults at PMD size; other windows at
PTE size. Ops whose preconditions no longer hold (a file or mapping that is gone, a range past
EOF) are skipped, which keeps every subsequence of a sequence runnable (the shrinker needs it).
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.fs import FsError
from sim.hunt.designs import load_variant
from sim.hunt.incremental import Tracker
from sim.hunt.invariants import (
    ALL_NAMES,
    check_all,
    check_association,
    check_data_integrity,
    check_no_warnings,
    evaluate,
)
from sim.hunt.model import ContentModel, HuntModel
from sim.xfsio.parse import Command, parse_command
from sim.xfsio.runner import XfsioRunner

__all__ = ["Op", "Session", "OP_KINDS", "PAGE", "DEFAULT_NBLOCKS"]

PAGE = 4096
#: Device size of a hunt (32 MiB: room for a few 2 MiB files and their CoW copies).
DEFAULT_NBLOCKS = 8192
OP_KINDS = ("pwrite", "truncate", "punch", "zero", "unshare", "clone", "dedupe", "mread",
            "mwrite", "hwpoison", "munmap", "unlink")
_MAP_KINDS = ("mread", "mwrite", "hwpoison")
#: Ops that change neither file data nor block maps (read faults fill holes with the zero page).
_NO_DATA_KINDS = ("mread", "munmap", "hwpoison")


@dataclass(frozen=True)
class Op:
    """One file-level operation (see the module docstring for ``args`` per kind)."""

    kind: str
    path: str
    args: tuple = ()
    src: str = ""

    def replace_args(self, args: tuple) -> "Op":
        return Op(self.kind, self.path, tuple(int(a) for a in args), self.src)

    def __str__(self) -> str:
        s = f" {self.src}" if self.src else ""
        return f"{self.kind} {self.path}{s} {' '.join(map(str, self.args))}".rstrip()


_NOOPTS: dict = {}
#: Per op, ``data_integrity`` reads a touched range up to this long whole; a longer one at
#: its first and last page (every byte of every file is read at quiescent points).
_WHOLE_RANGE = 8 * PAGE


class Session:
    """A fresh simulated filesystem under one design, driven op by op.

    Parameters
    ----------
    variant : str or Variant
        Design (name, alias, ``module:Class``, ``file.py:Class`` or an instance).
    nblocks : int
        Device size in 4 KiB blocks.
    rmap : bool
        rmapbt present (memory failure acts through the reverse map).
    filename : str
        Name used in messages.
    snapshot : bool
        Keep the memmap words before every op (the "before" of explanations; two array
        copies per op). The search turns it off and re-derives a finding's explanation by
        replaying its ops.
    paranoid : bool
        :meth:`check` evaluates every invariant in full after every op (every page, every
        file, the whole refcount tree) instead of incrementally.

    Attributes
    ----------
    lines : list of str
        Every xfs_io line run so far (the first is ``@mkfs size=...``).
    op_lines : list of (int, int)
        Per applied op, the slice of :attr:`lines` it produced.
    commands : list of Command
        The :class:`~sim.xfsio.parse.Command` of every line after the first, exactly as
        :func:`~sim.xfsio.parse.parse_command` parses that line (built directly, never parsed).
    model : HuntModel
    tracker : Tracker
        Incremental association truth (:mod:`sim.hunt.incremental`).
    """

    def __init__(self, variant, *, nblocks: int = DEFAULT_NBLOCKS, rmap: bool = True,
                 filename: str = "<hunt>", snapshot: bool = True, paranoid: bool = False):
        self.variant = load_variant(variant)
        self.nblocks = int(nblocks)
        self.filename = filename
        self.snapshot = bool(snapshot)
        self.paranoid = bool(paranoid)
        self.runner = XfsioRunner(self.variant, device_bytes=self.nblocks * PAGE,
                                  filename=filename, check_model=False, rmap=rmap)
        # the runner already made this device; the line makes `daxsim xfsio` do the same
        self.lines: list[str] = [f"@mkfs size={self.nblocks * PAGE}"]
        self.commands: list = []
        self.op_lines: list[tuple[int, int]] = []
        self.model = HuntModel(ContentModel(), baseline_free=self.dax.fs.free_blocks())
        self.tracker = Tracker(self.dax)
        self.last_errno: str | None = None
        self.last_path = ""
        self.last_kind = ""
        self._poisoned = False
        self._range: tuple[int, int] | None = None  # bytes of last_path the op can change

    @property
    def dax(self):
        return self.runner.dax

    # ------------------------------------------------------------------ stepping
    def _step(self, name: str, args: tuple, text: str, opts: dict = _NOOPTS) -> str | None:
        """Run one command built directly (``text`` is what parses to it)."""
        self.lines.append(text)
        cmd = Command(len(self.lines), name, dict(opts) if opts else {}, args, text)
        self.commands.append(cmd)
        r = self.runner
        r.step(cmd)
        pend = r.pending_error
        if pend is None:
            return None
        err = pend[2]
        fix = f"@expect_errno {err.errno}"
        self.lines.append(fix)
        cmd = parse_command(fix, self.filename, len(self.lines))
        self.commands.append(cmd)
        r.step(cmd)
        return err.errno

    def _select_file(self, path: str) -> None:
        fs = self.dax.fs
        if not fs.exists(path):
            self._step("open", (path,), f"open -f {path}", {"f": True})
            self.model.content.create(path)
            return
        ino = fs.lookup(path)
        r = self.runner
        if r.cur >= 0 and r.files[r.cur][0] == path and r.files[r.cur][1] == ino:
            return
        self._step("open", (path,), f"open {path}")

    def _find_map(self, path: str, moff: int, mlen: int) -> int | None:
        fs = self.dax.fs
        if not fs.exists(path):
            return None
        ino = fs.lookup(path)
        vmas = self.dax.vmas
        pg, npg = moff // PAGE, mlen // PAGE
        for j, vid in enumerate(self.runner.maps):
            v = vmas.get(vid)
            if (v is not None and v.ino == ino and v.pgoff == pg and v.npages == npg
                    and moff % PAGE == 0 and mlen % PAGE == 0):
                return j
        return None

    def _select_map(self, j: int) -> None:
        if self.runner.curmap != j:
            self._step("mmap", (j,), f"mmap {j}")

    def mappings(self) -> list[tuple[str, int, int]]:
        """``(path, map_off, map_len)`` of every live mapping, in the mapping table's order."""
        out = []
        vmas = self.dax.vmas
        path_of = self.dax.fs.path_of
        for vid in self.runner.maps:
            v = vmas.get(vid)
            if v is not None:
                out.append((path_of(v.ino) or "", v.pgoff * PAGE, v.npages * PAGE))
        return out

    # ------------------------------------------------------------------ ops
    def apply(self, op: Op) -> bool:
        """Run one op; False when it was skipped (preconditions gone: nothing ran)."""
        start = len(self.lines)
        if self.snapshot:
            self.model.snapshot(self.dax)
        self.tracker.begin()
        self._poisoned = False
        self._range = None
        self.last_errno = None
        self.last_path = op.path
        self.last_kind = op.kind
        try:
            ran = self._apply(op)
        except FsError as err:  # a lookup the runner does not catch (e.g. a vanished source)
            self.last_errno = err.errno
            ran = len(self.lines) > start
        if ran:
            self.op_lines.append((start, len(self.lines)))
        else:
            del self.commands[start - 1:]
            del self.lines[start:]
        return ran

    def _apply(self, op: Op) -> bool:
        fs = self.dax.fs
        cm = self.model.content
        k, path, a = op.kind, op.path, op.args
        if k == "unlink":
            if not fs.exists(path):
                return False
            ino = fs.lookup(path)
            maps = self.runner.maps
            for j in range(len(maps) - 1, -1, -1):
                v = self.dax.vmas.get(maps[j])
                if v is not None and v.ino == ino:
                    self._select_map(j)
                    self._step("munmap", (), "munmap")
            self._step("@unlink", (path,), f"@unlink {path}")
            cm.unlink(path)
            return True
        if k == "munmap":
            j = self._find_map(path, a[0], a[1])
            if j is None:
                return False
            self._select_map(j)
            self._step("munmap", (), "munmap")
            return True
        if k in _MAP_KINDS:
            if not fs.exists(path):
                return False
            size = fs.size(fs.lookup(path))
            moff, mlen, off, ln = a[0], a[1], a[2], a[3]
            lim = min(moff + mlen, size if k == "mwrite" else -(-size // PAGE) * PAGE)
            off = max(off, moff)
            end = min(off + ln, lim)
            if end <= off:
                return False
            ln = end - off
            j = self._find_map(path, moff, mlen)
            if j is None:
                self._select_file(path)
                self._step("mmap", (moff, mlen), f"mmap -rw {moff} {mlen}",
                           {"r": True, "w": True})
            else:
                self._select_map(j)
            if k == "mread":
                err = self._step("mread", (off, ln), f"mread {off} {ln}")
            elif k == "mwrite":
                err = self._step("mwrite", (off, ln), f"mwrite -S 0x{a[4]:02x} {off} {ln}",
                                 {"S": a[4]})
                self._range = (off, end)
                if err is None:
                    cm.store(path, off, ln, a[4])
            else:
                err = self._step("@hwpoison", (off, ln), f"@hwpoison {off} {ln}")
                self._poisoned = err is None
            self.last_errno = err
            return True
        old = len(cm.files[path]) if path in cm.files else 0
        if k in ("clone", "dedupe"):
            if not fs.exists(op.src) or fs.size(fs.lookup(op.src)) == 0:
                return False
            self._select_file(path)
            soff, doff, ln = a
            verb = "reflink" if k == "clone" else "dedupe"
            err = self._step(verb, (op.src, soff, doff, ln), f"{verb} {op.src} {soff} {doff} {ln}")
            if err is None and k == "clone":
                cm.clone(path, op.src, soff, doff, ln)
            self._range = (min(doff, old), doff + ln if ln else -1)
            self.last_errno = err
            return True
        self._select_file(path)
        if k == "pwrite":
            off, ln, b = a
            err = self._step("pwrite", (off, ln), f"pwrite -S 0x{b:02x} {off} {ln}", {"S": b})
            if err is None:
                cm.pwrite(path, off, ln, b)
            self._range = (min(off, old), off + ln)
        elif k == "truncate":
            err = self._step("truncate", (a[0],), f"truncate {a[0]}")
            if err is None:
                cm.truncate(path, a[0])
            self._range = (min(old, a[0]), -1)
        elif k == "punch":
            err = self._step("fpunch", (a[0], a[1]), f"fpunch {a[0]} {a[1]}")
            if err is None:
                cm.zero(path, a[0], a[1], extend=False)
            self._range = (min(a[0], old), a[0] + a[1])
        elif k == "zero":
            if a[2]:
                err = self._step("fzero", (a[0], a[1]), f"fzero -k {a[0]} {a[1]}", {"k": True})
            else:
                err = self._step("fzero", (a[0], a[1]), f"fzero {a[0]} {a[1]}")
            if err is None:
                cm.zero(path, a[0], a[1], extend=not a[2])
            self._range = (min(a[0], old), a[0] + a[1])
        elif k == "unshare":
            err = self._step("funshare", (a[0], a[1]), f"funshare {a[0]} {a[1]}")
            if err is None:
                cm.extend_to(path, a[0] + a[1])
            self._range = (min(a[0], old), a[0] + a[1])
        else:
            raise ValueError(f"unknown op kind {k!r}")
        self.last_errno = err
        return True

    # ------------------------------------------------------------------ checks
    def _quiescent(self) -> bool:
        return not self.runner.dax.fs.paths()

    def check(self, names=ALL_NAMES, *, full: bool = False) -> list:
        """Evaluate ``names`` after the last op.

        Memory-failure checks run only after a poison. Incremental by default (see
        :mod:`sim.hunt.invariants` for what each check covers per op); every invariant in
        full when ``full``, in paranoid mode, or at a quiescent point (no file left).
        """
        dfs = self.dax
        model = self.model
        model.poison = self.runner.last_poison[2] if self._poisoned else None
        if full or self.paranoid or self._quiescent():
            model.touched = None
            if not full and not self.paranoid and self.last_kind in _NO_DATA_KINDS:
                names = [n for n in names if n not in ("data_integrity", "refcount_conservation")]
            out = check_all(dfs, model, names, poisoned=self._poisoned)
            if "association_truth" in names:
                self.tracker.sync()  # keep the coverage in step for later incremental checks
            return out
        out = []
        nodata = self.last_kind in _NO_DATA_KINDS
        tr = self.tracker
        for n in names:
            if n == "association_truth":
                v = check_association(dfs, model) if tr.first_bad() >= 0 else None
            elif n == "no_warnings":
                v = check_no_warnings(dfs, model) if tr.warnings else None
            elif n == "data_integrity":
                v = None if nodata else self._check_data_range()
            elif n == "refcount_conservation":
                v = None  # full at quiescent points (before the teardown and after it)
            elif n.startswith("memory_failure") and not self._poisoned:
                v = None
            else:
                v = evaluate(n, dfs, model)
            if v is not None:
                out.append(v)
        return out

    def _check_data_range(self):
        """``data_integrity`` of the bytes the last op can have changed (the file it wrote,
        its size and the op's range); the full check when anything disagrees (its message)."""
        cm = self.model.content
        fs = self.dax.fs
        path = self.last_path
        full = False
        if len(fs.paths()) != len(cm.files):
            full = True
        elif path in cm.files:
            want = cm.files[path]
            if not fs.exists(path):
                full = True
            else:
                ino = fs.lookup(path)
                size = len(want)
                if fs.size(ino) != size:
                    full = True
                elif self._range is not None:
                    lo, hi = self._range
                    lo = max(0, lo - lo % PAGE)
                    hi = size if hi < 0 else min(size, -(-hi // PAGE) * PAGE)
                    # the first and the last page of the range (where range bugs show);
                    # every byte of every file at the next quiescent point
                    small = hi - lo <= _WHOLE_RANGE
                    for a in ((lo,) if small else (lo, hi - PAGE)):
                        b = hi if small else a + PAGE
                        if b > a and not want.matches(fs.pread(ino, a, b - a), a):
                            full = True
                            break
        elif fs.exists(path):
            full = True
        if not full:
            return None
        self.model.touched = None
        return check_data_integrity(self.dax, self.model)

    def check_one(self, name: str, *, full: bool = True):
        """Evaluate one invariant after the last op (every file by default)."""
        if name.startswith("memory_failure") and not self._poisoned:
            return None
        self.model.poison = self.runner.last_poison[2] if self._poisoned else None
        self.model.touched = None if full else [self.last_path]
        return evaluate(name, self.dax, self.model)
