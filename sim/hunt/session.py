"""File-level operations of the hunt and the session that runs them as xfs_io lines.

An :class:`Op` is a small immutable record (``kind``, ``path``, integer ``args``, ``src``).
A :class:`Session` turns each op into the xfs_io lines of
``shared/conformance/xfstests/README.md`` (selecting the file and the mapping the way xfs_io's
interactive file and mapping tables need), and executes them through
:class:`sim.xfsio.runner.XfsioRunner`, so what the hunt ran and what ``daxsim xfsio`` replays
from the written reproducer are the same commands on the same code path. Each command is
built directly as what its line parses to (a :class:`HuntCommand`: no text parsing per op,
and the line's text is rendered only when read, e.g. for a finding's reproducer; the tests
parse every line and compare, and replay recorded scripts to the same memmap words and file
contents). A command that fails gets an ``@expect_errno`` line right
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
unlink        -                               its mappings unmapped and its open entries
                                              closed (``file N`` + ``close``), then
                                              ``@unlink PATH``
============  ==============================  =============================================

A 2 MiB-aligned 2 MiB mapping window over a 2 MiB extent faults at PMD size; other windows at
PTE size. Ops whose preconditions no longer hold (a file or mapping that is gone, a range past
EOF) are skipped, which keeps every subsequence of a sequence runnable (the shrinker needs it).
"""

from __future__ import annotations

from typing import NamedTuple

from sim.constants import HUNT_KINDS, PAGE_SIZE, PMD_SIZE
from sim.fs import FsError
from sim.hunt.incremental import Tracker
from sim.hunt.invariants import (
    ALL_NAMES,
    check_all,
    check_all_empty,
    check_association,
    check_data_integrity,
    check_no_warnings,
    evaluate,
    runs_match,
    stale_mapping,
)
from sim.hunt.model import ContentModel, HuntModel
from sim.memmap.variants import get_variant
from sim.xfsio.parse import parse_command
from sim.xfsio.runner import XfsioRunner

__all__ = ["Op", "Session", "HuntCommand", "OP_KINDS", "PAGE", "DEFAULT_NBLOCKS"]

PAGE = PAGE_SIZE
#: Device size of a hunt (32 MiB: room for a few 2 MiB files and their CoW copies).
DEFAULT_NBLOCKS = 8192
#: The kinds the hunt draws (:data:`sim.constants.HUNT_KINDS`).
OP_KINDS = HUNT_KINDS
_MAP_KINDS = ("mread", "mwrite", "hwpoison")
#: Ops that change neither file data nor block maps (read faults fill holes with the zero page).
_NO_DATA_KINDS = ("mread", "munmap", "hwpoison")
#: Checked at quiescent points only (see :mod:`sim.hunt.invariants`).
_QUIESCENT_ONLY = ("refcount_conservation", "nothing_left_behind")
_MF_NAMES = ("memory_failure", "memory_failure_fallback")


class Op(NamedTuple):
    """One file-level operation (see the module docstring for ``args`` per kind); an
    immutable named tuple (cheap to build: the search makes one per op)."""

    kind: str
    path: str
    args: tuple = ()
    src: str = ""

    def replace_args(self, args: tuple) -> "Op":
        """This op with its integer arguments replaced by ``args``."""
        return Op(self.kind, self.path, tuple(int(a) for a in args), self.src)

    def __str__(self) -> str:
        s = f" {self.src}" if self.src else ""
        return f"{self.kind} {self.path}{s} {' '.join(map(str, self.args))}".rstrip()


_NOOPTS: dict = {}


class HuntCommand:
    """A command the session built: the attributes of :class:`~sim.xfsio.parse.Command`
    (``line``, ``name``, ``opts``, ``args``, ``text``), equal to what
    :func:`~sim.xfsio.parse.parse_command` makes of its line, with ``text`` rendered from a
    ``%`` format on first use (the search reads it only for the ops of a finding)."""

    __slots__ = ("line", "name", "opts", "args", "_fmt", "_fargs")

    def __init__(self, line: int, name: str, opts: dict, args: tuple, fmt: str, fargs=None):
        self.line = line
        self.name = name
        self.opts = opts
        self.args = args
        self._fmt = fmt
        self._fargs = fargs

    @property
    def text(self) -> str:
        """The command line as written in a script."""
        if self._fargs is not None:
            self._fmt = self._fmt % self._fargs
            self._fargs = None
        return self._fmt

    def __repr__(self) -> str:
        return (
            f"HuntCommand({self.line}, {self.name!r}, {self.opts!r}, {self.args!r}, {self.text!r})"
        )


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
    fs_class : type, optional
        :class:`~sim.fs.FileSystem` or a subclass of it (the tests pass one that mirrors
        every call); default :class:`~sim.fs.FileSystem`.
    record : bool
        Keep the commands (:attr:`lines`, :attr:`commands`, :attr:`op_lines`). The search
        turns it off: it keeps the ops, and a finding's lines come from replaying them in a
        recording session (the shrinker does). Without it the session runs the same
        commands through the same runner; only the command objects are not kept, and the
        DaxFS records no timing work (``DaxFS.accounting``: cache lines, locks and pmem
        traffic, which nothing in a search prices).

    Attributes
    ----------
    lines : list of str
        Every xfs_io line run so far (the first is ``@mkfs size=...``); a property that
        renders a new list.
    op_lines : list of (int, int)
        Per applied op, the slice of :attr:`lines` it produced.
    commands : list of HuntCommand
        The command of every line after the first, with the attributes
        :func:`~sim.xfsio.parse.parse_command` gives that line (built directly, never
        parsed).
    model : HuntModel
    tracker : Tracker
        Incremental association truth (:mod:`sim.hunt.incremental`).
    """

    def __init__(
        self,
        variant,
        *,
        nblocks: int = DEFAULT_NBLOCKS,
        rmap: bool = True,
        filename: str = "<hunt>",
        snapshot: bool = True,
        paranoid: bool = False,
        fs_class=None,
        record: bool = True,
    ):
        self.variant = get_variant(variant)
        self.nblocks = int(nblocks)
        self.filename = filename
        self.snapshot = bool(snapshot)
        self.paranoid = bool(paranoid)
        self.record = bool(record)
        self._nsteps = 0  # commands run (counted even when not recorded)
        self.runner = XfsioRunner(
            self.variant,
            device_bytes=self.nblocks * PAGE,
            filename=filename,
            check_model=False,
            rmap=rmap,
            fs_class=fs_class,
        )
        if not self.record:
            self.runner.dax.accounting = False
        # the runner already made this device; the line makes `daxsim xfsio` do the same
        self._mkfs_line = f"@mkfs size={self.nblocks * PAGE}"
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
        """The DaxFS the session's runner drives."""
        return self.runner.dax

    def close(self) -> None:
        """Detach the incremental tracker from the DaxFS (no further op is checked
        incrementally); lets the finished session be freed at once.

        The runner's handler cache (command name -> bound method: a reference cycle through
        the runner) is emptied too, so the runner, its DaxFS and their memmap arrays are
        freed by reference counting right here instead of by a later cyclic collection (the
        next session then reuses the same memory; the cache refills on demand if the
        runner is used again)."""
        self.tracker.detach()
        self.runner.close()

    # ------------------------------------------------------------------ stepping
    @property
    def lines(self) -> list[str]:
        """Every xfs_io line run so far (a new list; the first is ``@mkfs size=...``)."""
        if not self.record:
            raise ValueError("this session does not record its lines (record=False)")
        return [self._mkfs_line] + [c.text for c in self.commands]

    def _step(
        self, name: str, args: tuple, fmt: str, fargs=None, opts: dict = _NOOPTS
    ) -> str | None:
        """Run one command built directly (``fmt % fargs``, or ``fmt`` when ``fargs`` is
        None, is the line that parses to it) through :meth:`XfsioRunner.step`; its errno,
        or None. A recording session keeps the command and, when it fails, the
        ``@expect_errno`` line after it (run too, as the replayed script runs it)."""
        self._nsteps += 1
        r = self.runner
        if not self.record:
            r.step(HuntCommand(self._nsteps + 1, name, opts, args, fmt, fargs))
            r.output.clear()  # nothing prints the runner's output lines here
            pend = r.pending_error
            if pend is None:
                return None
            r.pending_error = None
            return pend[2].errno
        cmds = self.commands
        cmd = HuntCommand(len(cmds) + 2, name, dict(opts) if opts else {}, args, fmt, fargs)
        cmds.append(cmd)
        r.step(cmd)
        pend = r.pending_error
        if pend is None:
            return None
        err = pend[2]
        cmd = parse_command(f"@expect_errno {err.errno}", self.filename, len(cmds) + 2)
        cmds.append(cmd)
        r.step(cmd)
        return err.errno

    def _select_file(self, path: str) -> None:
        fs = self.dax.fs
        if not fs.exists(path):
            self._step("open", (path,), "open -f " + path, None, {"f": True})
            self.model.content.create(path)
            return
        ino = fs.lookup(path)
        r = self.runner
        if r.cur >= 0 and r.files[r.cur][0] == path and r.files[r.cur][1] == ino:
            return
        self._step("open", (path,), "open " + path)

    def _find_map(self, path: str, moff: int, mlen: int) -> int | None:
        fs = self.dax.fs
        if not fs.exists(path):
            return None
        ino = fs.lookup(path)
        vmas = self.dax.vmas
        pg, npg = moff // PAGE, mlen // PAGE
        for j, vid in enumerate(self.runner.maps):
            v = vmas.get(vid)
            if (
                v is not None
                and v.ino == ino
                and v.pgoff == pg
                and v.npages == npg
                and moff % PAGE == 0
                and mlen % PAGE == 0
            ):
                return j
        return None

    def _select_map(self, j: int) -> None:
        if self.runner.curmap != j:
            self._step("mmap", (j,), "mmap %d", (j,))

    def mappings(self, path: str | None = None) -> list[tuple[str, int, int]]:
        """``(path, map_off, map_len)`` of every live mapping (of ``path`` only, if given),
        in the mapping table's order."""
        out = []
        dfs = self.dax
        vmas = dfs.vmas
        path_of = dfs.fs.path_of
        if path is not None:
            fs = dfs.fs
            if not fs.exists(path):
                return out
            ino = fs.lookup(path)
            for vid in self.runner.maps:
                v = vmas.get(vid)
                if v is not None and v.ino == ino and path_of(ino) == path:
                    out.append((path, v.pgoff * PAGE, v.npages * PAGE))
            return out
        for vid in self.runner.maps:
            v = vmas.get(vid)
            if v is not None:
                out.append((path_of(v.ino) or "", v.pgoff * PAGE, v.npages * PAGE))
        return out

    # ------------------------------------------------------------------ ops
    def apply(self, op: Op) -> bool:
        """Run one op; False when it was skipped (preconditions gone: nothing ran)."""
        start = len(self.commands) + 1
        steps = self._nsteps
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
            ran = self._nsteps > steps
        if not self.record:
            return ran
        if ran:
            self.op_lines.append((start, len(self.commands) + 1))
        else:
            del self.commands[start - 1 :]
        return ran

    def _apply(self, op: Op) -> bool:
        fs = self.dax.fs
        cm = self.model.content
        k, path, a = op.kind, op.path, op.args
        if k == "unlink":
            if not fs.exists(path):
                return False
            ino = fs.lookup(path)
            r = self.runner
            maps = r.maps
            for j in range(len(maps) - 1, -1, -1):
                v = self.dax.vmas.get(maps[j])
                if v is not None and v.ino == ino:
                    self._select_map(j)
                    self._step("munmap", (), "munmap")
            # and closed: an open or mapped file outlives its unlink (an orphan until the
            # last reference goes), so the inode goes at the unlink only when neither holds
            files = r.files
            for j in range(len(files) - 1, -1, -1):
                if files[j][1] == ino:
                    if r.cur != j:
                        self._step("file", (j,), "file %d", (j,))
                    self._step("close", (), "close")
            self._step("@unlink", (path,), "@unlink " + path)
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
                self._step(
                    "mmap", (moff, mlen), "mmap -rw %d %d", (moff, mlen), {"r": True, "w": True}
                )
            else:
                self._select_map(j)
            if k == "mread":
                err = self._step("mread", (off, ln), "mread %d %d", (off, ln))
            elif k == "mwrite":
                err = self._step(
                    "mwrite", (off, ln), "mwrite -S 0x%02x %d %d", (a[4], off, ln), {"S": a[4]}
                )
                self._range = (off, end)
                if err is None:
                    cm.store(path, off, ln, a[4])
            else:
                err = self._step("@hwpoison", (off, ln), "@hwpoison %d %d", (off, ln))
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
            err = self._step(
                verb, (op.src, soff, doff, ln), "%s %s %d %d %d", (verb, op.src, soff, doff, ln)
            )
            if err is None and k == "clone":
                cm.clone(path, op.src, soff, doff, ln)
            self._range = (min(doff, old), doff + ln if ln else -1)
            self.last_errno = err
            return True
        self._select_file(path)
        if k == "pwrite":
            off, ln, b = a
            if off % PMD_SIZE == 0 and ln >= PMD_SIZE:
                # one 2 MiB buffer per write(2), as daxsim's pwrite allocates the range at
                # once: XFS then gives a 2 MiB-aligned extent a PMD can map (with xfs_io's
                # 4 KiB buffers its allocator need not), so a kernel replays the PMD faults
                err = self._step(
                    "pwrite",
                    (off, ln),
                    "pwrite -S 0x%02x -b %d %d %d",
                    (b, PMD_SIZE, off, ln),
                    {"S": b, "b": PMD_SIZE},
                )
            else:
                err = self._step(
                    "pwrite", (off, ln), "pwrite -S 0x%02x %d %d", (b, off, ln), {"S": b}
                )
            if err is None:
                cm.pwrite(path, off, ln, b)
            self._range = (min(off, old), off + ln)
        elif k == "truncate":
            err = self._step("truncate", (a[0],), "truncate %d", (a[0],))
            if err is None:
                cm.truncate(path, a[0])
            self._range = (min(old, a[0]), -1)
        elif k == "punch":
            err = self._step("fpunch", (a[0], a[1]), "fpunch %d %d", (a[0], a[1]))
            if err is None:
                cm.zero(path, a[0], a[1], extend=False)
            self._range = (min(a[0], old), a[0] + a[1])
        elif k == "zero":
            if a[2]:
                err = self._step("fzero", (a[0], a[1]), "fzero -k %d %d", (a[0], a[1]), {"k": True})
            else:
                err = self._step("fzero", (a[0], a[1]), "fzero %d %d", (a[0], a[1]))
            if err is None:
                cm.zero(path, a[0], a[1], extend=not a[2])
            self._range = (min(a[0], old), a[0] + a[1])
        elif k == "unshare":
            err = self._step("funshare", (a[0], a[1]), "funshare %d %d", (a[0], a[1]))
            if err is None:
                cm.extend_to(path, a[0] + a[1])
            self._range = (min(a[0], old), a[0] + a[1])
        else:
            raise ValueError(f"unknown op kind {k!r}")
        self.last_errno = err
        return True

    # ------------------------------------------------------------------ checks
    def _quiescent(self) -> bool:
        return not self.runner.dax.fs.inodes

    def check(self, names=ALL_NAMES, *, full: bool = False) -> list:
        """Evaluate ``names`` after the last op.

        Memory-failure checks run only after a poison. Incremental by default (see
        :mod:`sim.hunt.invariants` for what each check covers per op); every invariant in
        full when ``full``, in paranoid mode, or at a quiescent point (no file left).
        """
        dfs = self.runner.dax
        model = self.model
        poisoned = self._poisoned
        model.poison = self.runner.last_poison[2] if poisoned else None
        model.poison_truth = None
        if full or self.paranoid or not dfs.fs.inodes:
            model.touched = None
            if not full and not self.paranoid and self.last_kind in _NO_DATA_KINDS:
                names = [n for n in names if n not in ("data_integrity", "refcount_conservation")]
            if full or self.paranoid:
                out = check_all(dfs, model, names, poisoned=poisoned)
            else:  # no file left: the same list, cheap when clean
                out = check_all_empty(dfs, model, names, poisoned=poisoned)
            if "association_truth" in names:
                self.tracker.sync()  # keep the coverage in step for later incremental checks
            return out
        out = []
        tr = self.tracker
        for n in names:
            if n == "association_truth":
                if tr.first_bad() < 0:
                    continue
                v = check_association(dfs, model)
            elif n == "no_warnings":
                if not tr.warnings:
                    continue
                v = check_no_warnings(dfs, model)
            elif n == "data_integrity":
                if self.last_kind in _NO_DATA_KINDS:
                    continue
                v = self._check_data_range()
            elif n == "no_sigbus":
                if self.last_errno != "SIGBUS":
                    continue
                v = evaluate(n, dfs, model)
            elif n in _QUIESCENT_ONLY:
                # full at quiescent points (before the teardown and after it); nothing is
                # left behind while a file exists
                continue
            elif n in _MF_NAMES:
                if not poisoned:
                    continue
                v = evaluate(n, dfs, model)
            else:
                v = evaluate(n, dfs, model)
            if v is not None:
                out.append(v)
        return out

    def _check_data_range(self):
        """``data_integrity`` of the bytes the last op can have changed (the file it wrote,
        its size and the op's whole range, compared as byte runs); the full check when
        anything disagrees (its message)."""
        cm = self.model.content
        fs = self.dax.fs
        path = self.last_path
        full = False
        want = cm.files.get(path)
        if len(fs.names) != len(cm.files):
            full = True
        elif want is not None:
            ino = fs.lookup(path) if fs.exists(path) else None
            if ino is None:
                full = True
            else:
                size = want.size
                if fs.size(ino) != size:
                    full = True
                elif self._range is not None:
                    lo, hi = self._range
                    lo = max(0, lo - lo % PAGE)
                    hi = size if hi < 0 else min(size, -(-hi // PAGE) * PAGE)
                    full = hi > lo and not runs_match(fs, ino, want, lo, hi)
        elif fs.exists(path):
            full = True
        if not full and fs.exists(path) and stale_mapping(self.dax, [fs.lookup(path)]):
            full = True  # a mapping of the file no longer maps its blocks
        if not full:
            return None
        self.model.touched = None
        return check_data_integrity(self.dax, self.model)

    def check_one(self, name: str, *, full: bool = True):
        """Evaluate one invariant after the last op (every file by default)."""
        if name.startswith("memory_failure") and not self._poisoned:
            return None
        self.model.poison = self.runner.last_poison[2] if self._poisoned else None
        self.model.poison_truth = None
        self.model.touched = None if full else [self.last_path]
        return evaluate(name, self.dax, self.model)
