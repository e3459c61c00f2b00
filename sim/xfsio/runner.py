"""Execute parsed xfs_io scripts on a :class:`sim.dax.DaxFS` with xfs_io's interactive
semantics (file table and current file, mapping table and current mapping) plus the ``@``
harness lines of ``shared/conformance/xfstests/README.md``.

Checks: every ``@expect_*`` line is a *content* check (kernel truth: md5, ranges, errno,
free-block deltas, SIGBUS); ``@final``, ``@model_shared_blocks`` and ``@expect_poison_owners``
are *model* checks (reference-model values), counted separately. A command that fails without
an ``@expect_errno`` right after it is a failed check at its line.

``INVARIANTS`` maps a name to ``fn(runner) -> bool`` (True = holds); ``@expect_invariant NAME
violated|holds`` evaluates one of the runner's ``invariants`` (by default these; the commands
that replay the hunt's reproducers pass :func:`sim.hunt.invariants.runner_invariants`, these
and every hunt invariant).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.constants import DEFAULT_DESIGN, PAGE_SIZE
from sim.dax import DaxFS
from sim.errors import InputError
from sim.fs import BLOCK_SIZE, FsError
from sim.fs.filesystem import metadata_blocks

__all__ = [
    "XfsioRunner",
    "Check",
    "RunResult",
    "INVARIANTS",
    "DEFAULT_DEVICE_BYTES",
    "RIG_STRIPE_UNIT_BYTES",
    "run_script",
    "stripe_unit_blocks",
]

#: Device size when ``@mkfs`` gives none (the memmap is 16 B per block: 16 MiB).
DEFAULT_DEVICE_BYTES = 4 << 30
#: The stripe unit of ``@mkfs`` on the real-kernel rig (``mkfs.xfs -d su=2m,sw=1``,
#: sim/kernel/agent/daxio.c): what ``daxsim xfsio`` and ``daxsim kernel compare`` give daxsim.
RIG_STRIPE_UNIT_BYTES = 2 << 20
#: xfs_io's ``pwrite`` buffer when ``-b`` gives none (io/pwrite.c: 4096 bytes).
PWRITE_BUFFER_BYTES = 4096
PAGE = PAGE_SIZE
_PID = 1  # the xfs_io process
#: Bytes a ``pread -v`` may print (and the runner keep for ``@expect_bytes``).
_MAX_PRINTED = 1 << 30
#: Bytes an md5 check or ``md5sum`` may hash (16 GiB, ~30 s): an md5 has no shortcut over a
#: sparse file's zeros, and the md5 of an 8 EiB file would never finish.
_MAX_HASHED = 1 << 34


@dataclass
class Check:
    """One evaluated check line."""

    line: int
    kind: str
    ok: bool
    expected: str
    found: str
    model: bool = False
    text: str = ""

    def describe(self, filename: str = "") -> str:
        """One line saying where the check is and what it expected and found."""
        where = f"{filename}:{self.line}" if filename else f"line {self.line}"
        tag = " (model-derived)" if self.model else ""
        return f"{where}: {self.kind}{tag} failed: expected {self.expected}, found {self.found}"


@dataclass
class RunResult:
    """Outcome of one script run."""

    checks: list = field(default_factory=list)
    commands: int = 0

    @property
    def failed(self) -> list:
        """The failed checks written in the script."""
        return [c for c in self.checks if not c.ok and not c.model]

    @property
    def model_failed(self) -> list:
        """The failed checks derived from the content model."""
        return [c for c in self.checks if not c.ok and c.model]

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return not any(not c.ok for c in self.checks)

    def counts(self) -> dict:
        """Passed and failed checks, written and model-derived."""
        return {
            "checks_passed": sum(1 for c in self.checks if c.ok and not c.model),
            "checks_failed": sum(1 for c in self.checks if not c.ok and not c.model),
            "model_checks_passed": sum(1 for c in self.checks if c.ok and c.model),
            "model_checks_failed": sum(1 for c in self.checks if not c.ok and c.model),
        }


# ---------------------------------------------------------------------- invariants
def _inv_no_residue(r: "XfsioRunner") -> bool:
    return r.dax.mm.residue_pages() == 0


def _inv_no_phantom(r: "XfsioRunner") -> bool:
    return r.dax.mm.phantom_pages() == 0


def _inv_no_warnings(r: "XfsioRunner") -> bool:
    return sum(r.dax.mm.warnings.values()) == 0


def _inv_memory_failure_owners(r: "XfsioRunner") -> bool:
    """Every memory failure's page->mapping fallback found the owners the rmap found."""
    for res in r.poison_results:
        for pfn, owners in res.rmap_owners.items():
            if sorted(owners) != sorted(res.fallback_owners.get(pfn, [])):
                return False
    return True


def _inv_nothing_left_behind(r: "XfsioRunner") -> bool:
    """With no file left (no name, no orphan still open or mapped), every struct page is
    back at (NULL, 0)."""
    if r.dax.fs.inodes:
        return True
    pfn, _m, _i = r.dax.mm.state()
    return pfn.size == 0


#: name -> fn(runner) -> bool (True when the invariant holds).
INVARIANTS: dict = {
    "no_residue": _inv_no_residue,
    "no_phantom": _inv_no_phantom,
    "no_warnings": _inv_no_warnings,
    "memory_failure_owners": _inv_memory_failure_owners,
    "nothing_left_behind": _inv_nothing_left_behind,
}


def _cvt(x, where: str) -> int:
    """An int, or a size string by cvtnum rules."""
    if isinstance(x, int):
        return x
    from sim.xfsio.parse import cvtnum

    try:
        v = cvtnum(str(x))
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"bad number {x!r}", where=where) from exc
    if v is None or v < 0 and not str(x).startswith("-"):
        raise InputError(f"bad number {x!r}", where=where)
    return int(v)


def _byte(x, where: str) -> int:
    if isinstance(x, int):
        return x & 0xFF
    try:
        return int(str(x), 0) & 0xFF
    except ValueError as exc:
        raise InputError(f"bad byte {x!r}", where=where) from exc


class XfsioRunner:
    """Runs xfs_io commands on a DaxFS.

    Parameters
    ----------
    variant : str
        Memmap design variant.
    rmap : bool
        Filesystem with rmapbt (memory failure through the reverse map).
    device_bytes : int
        Device size when ``@mkfs`` gives none.
    filename : str
        Script name for messages.
    check_model : bool
        Evaluate the model-derived lines.
    fs_class : type, optional
        Filesystem implementation of every device the runner makes (``DaxFS(fs_class=)``;
        default :class:`~sim.fs.FileSystem`).
    stripe_unit_bytes : int, optional
        The stripe unit of every filesystem the runner makes (``mkfs.xfs -d su=``; 0 = none,
        :data:`RIG_STRIPE_UNIT_BYTES` = the rig's ``@mkfs``); ``pwrite`` then writes in
        buffers of ``-b`` bytes as xfs_io does, since each write(2) allocates on its own.
    """

    def __init__(
        self,
        variant: str = DEFAULT_DESIGN,
        *,
        rmap: bool = True,
        device_bytes: int = DEFAULT_DEVICE_BYTES,
        filename: str = "<script>",
        check_model: bool = True,
        generation: str | None = None,
        record_hook=None,
        fs_class=None,
        invariants=None,
        stripe_unit_bytes: int = 0,
    ):
        self.record_hook = record_hook
        self.stripe_unit_blocks = stripe_unit_blocks(stripe_unit_bytes)
        self.invariants = INVARIANTS if invariants is None else invariants
        self.fs_class = fs_class
        self.variant = variant
        self.rmap = rmap
        self.generation = generation
        self.device_bytes = int(device_bytes)
        self.filename = filename
        self.check_model = check_model
        self.fill_byte = None
        self.totals: dict = {}
        self.dax = self._mkfs(self.device_bytes)
        self.files: list[tuple[str, int, bool]] = []  # (path, ino, read-only)
        self.cur = -1
        self.maps: list[int] = []
        self.curmap = -1
        self.samples: dict[str, int] = {}
        self.pending_error: tuple | None = None  # (line, text, FsError)
        self.last_error: FsError | None = None
        self.last_read: bytes = b""
        self.last_poison = None
        self.poison_results: list = []
        self.result = RunResult()
        self.output: list[str] = []
        self.records = 0
        self.exact_free_delta: list = []
        self.last_read_off = 0
        self._fns: dict = {}  # command name -> bound handler (looked up once)

    # ------------------------------------------------------------------ fs lifecycle
    def _mkfs(self, size_bytes: int) -> DaxFS:
        if getattr(self, "dax", None) is not None:
            self._fold_totals()
        nblocks = max(1, int(size_bytes) // BLOCK_SIZE)
        if self.stripe_unit_blocks and metadata_blocks(self.stripe_unit_blocks) >= nblocks:
            raise InputError(
                f"a device of {nblocks} blocks has no data block after the "
                f"{metadata_blocks(self.stripe_unit_blocks)} that mkfs keeps with a stripe "
                f"unit of {self.stripe_unit_blocks} blocks"
            )
        d = DaxFS(
            nblocks,
            self.variant,
            fill_byte=self.fill_byte,
            rmap=self.rmap,
            generation=self.generation,
            fs_class=self.fs_class,
            stripe_unit_blocks=self.stripe_unit_blocks,
        )
        d.record_hook = self.record_hook
        return d

    def _fold_totals(self) -> None:
        """Accumulate the counters of a DaxFS that is about to be replaced."""
        d = self.dax
        s = self._dax_counters(d)
        for k, v in s.items():
            if isinstance(v, int):
                self.totals[k] = self.totals.get(k, 0) + v

    @staticmethod
    def _dax_counters(d: DaxFS) -> dict:
        mm = d.mm
        c = mm.counters
        w = mm.warnings
        out = {
            "warnings": int(sum(w.values())),
            "residue_pages": int(mm.residue_pages()),
            "phantom_pages": int(mm.phantom_pages()),
            "share_inc": int(c.get("share_inc", 0)),
            "share_dec": int(c.get("share_dec", 0)),
        }
        for k in (
            "cow_pages",
            "cow_bytes",
            "blocks_allocated",
            "blocks_freed",
            "refcount_changes",
            "faults",
            "pmd_faults",
            "pte_faults",
            "pmd_fallbacks",
            "entries_inserted",
            "entries_removed",
            "stale_entries_left",
        ):
            out[k] = int(d.stats.get(k, 0))
        for k, v in w.items():
            out[f"warn_{k}"] = int(v)
        return out

    def summary(self) -> dict:
        """Counters of the whole run (all filesystems of the script)."""
        out = dict(self.result.counts())
        cur = self._dax_counters(self.dax)
        tot = dict(self.totals)
        for k, v in cur.items():
            tot[k] = tot.get(k, 0) + v
        # residue/phantom describe the final memmap, not a sum
        tot["residue_pages"] = cur["residue_pages"]
        tot["phantom_pages"] = cur["phantom_pages"]
        out.update(tot)
        out["warnings_latched"] = {k: int(v) for k, v in self.dax.mm.warnings_latched.items()}
        out["warnings_by_site"] = {k: int(v) for k, v in self.dax.mm.warnings.items()}
        out["variant"] = self.dax.variant
        out["generation"] = self.dax.gen
        out["commands"] = self.result.commands
        out["failed"] = [c.describe(self.filename) for c in self.result.failed]
        out["model_failed"] = [c.describe(self.filename) for c in self.result.model_failed]
        return out

    # ------------------------------------------------------------------ helpers
    def _where(self, cmd) -> str:
        return f"{self.filename}:{cmd.line}"

    def _num(self, x, cmd) -> int:
        """:func:`_cvt` of an argument of ``cmd`` (the location string only built on error)."""
        if x.__class__ is int:
            return x
        return _cvt(x, self._where(cmd))

    def _check(self, cmd, kind: str, ok: bool, expected, found, *, model: bool = False) -> None:
        self.result.checks.append(
            Check(
                cmd.line, kind, bool(ok), str(expected), str(found), model, getattr(cmd, "text", "")
            )
        )

    def _cur_file(self, cmd, *, write: bool = False) -> int:
        if self.cur < 0 or not self.files:
            raise InputError(f"{cmd.name}: no file open", where=self._where(cmd))
        path, ino, ro = self.files[self.cur]
        if write and ro:
            raise FsError("EBADF", f"{cmd.name}: {path} is open read-only")
        return ino

    def _cur_map(self, cmd) -> int:
        if self.curmap < 0 or not self.maps:
            raise InputError(f"{cmd.name}: no current mapping", where=self._where(cmd))
        return self.maps[self.curmap]

    def _ino(self, path: str) -> int:
        return self.dax.fs.lookup(path)

    def _nargs(self, cmd, lo: int, hi: int | None = None) -> tuple:
        a = tuple(cmd.args)
        if len(a) < lo or (hi is not None and len(a) > hi):
            want = f"{lo}" if hi == lo else f"{lo}..{hi if hi is not None else 'n'}"
            raise InputError(
                f"{cmd.name}: expected {want} arguments, got {len(a)}", where=self._where(cmd)
            )
        return a

    # ------------------------------------------------------------------ driver
    def run(self, commands) -> RunResult:
        """Execute ``commands`` (from :func:`sim.xfsio.parse.parse_script`)."""
        for cmd in commands:
            self.step(cmd)
        self._flush_pending()
        return self.result

    def _flush_pending(self) -> None:
        if self.pending_error is not None:
            line, text, err = self.pending_error
            self.result.checks.append(
                Check(
                    line, "command", False, "success", f"{err.errno} ({err.message})", False, text
                )
            )
            self.pending_error = None

    def close(self) -> None:
        """Drop the handler cache (bound methods: a reference cycle through the runner), so a
        finished runner, its DaxFS and their arrays are freed at once by reference counting;
        the cache refills on demand if the runner is stepped again."""
        self._fns.clear()

    def step(self, cmd) -> None:
        """Execute one command."""
        name = cmd.name
        if isinstance(self.last_read, tuple) and name != "@expect_bytes":
            self.last_read = b""  # an un-printed read's bytes are only for the next lines
        if name == "@expect_errno":
            a = self._nargs(cmd, 1, 1)
            want = str(a[0])
            if self.pending_error is None:
                self._check(cmd, "expect_errno", False, want, "success")
            else:
                got = self.pending_error[2].errno
                self._check(cmd, "expect_errno", got == want, want, got)
            self.pending_error = None
            return
        if (
            name == "@expect_sigbus"
            and self.pending_error is not None
            and self.pending_error[2].errno == "SIGBUS"
        ):
            self._check(cmd, "expect_sigbus", True, "SIGBUS", "SIGBUS (fault beyond EOF)")
            self.pending_error = None
            return
        if self.pending_error is not None:
            self._flush_pending()
        self.result.commands += 1
        fn = self._fns.get(name)
        if fn is None:
            fn = getattr(self, "_c_" + name.lstrip("@").replace("-", "_"), None)
            if fn is None:
                raise InputError(f"unknown command {name!r}", where=self._where(cmd))
            self._fns[name] = fn
        try:
            fn(cmd)
            self.last_error = None
        except FsError as err:
            self.last_error = err
            self.pending_error = (cmd.line, getattr(cmd, "text", name), err)

    # ------------------------------------------------------------------ files
    def _c_open(self, cmd) -> None:
        a = self._nargs(cmd, 1, 1)
        path = str(a[0])
        o = cmd.opts
        # the open file keeps the inode until ``close`` (an unlinked one too)
        ino, _wr = self.dax.open(path, create=bool(o.get("f")), trunc=bool(o.get("t")), hold=True)
        self.files.append((path, ino, bool(o.get("r"))))
        self.cur = len(self.files) - 1

    def _c_close(self, cmd) -> None:
        if not self.files:
            raise FsError("EBADF", "close: no open file")
        self.dax.close(self.files[self.cur][1])
        del self.files[self.cur]
        if self.cur >= len(self.files):
            self.cur = len(self.files) - 1

    def _c_file(self, cmd) -> None:
        a = self._nargs(cmd, 0, 1)
        if a:
            n = _cvt(a[0], self._where(cmd))
            if not 0 <= n < len(self.files):
                raise InputError(f"file {n}: no such entry", where=self._where(cmd))
            self.cur = n
        else:
            self._c_files(cmd)

    def _c_files(self, cmd) -> None:
        for i, (p, ino, _ro) in enumerate(self.files):
            mark = "*" if i == self.cur else " "
            self.output.append(f"{mark}[{i:03d}] {p} (ino {ino})")

    def _c_pwrite(self, cmd) -> None:
        a = self._nargs(cmd, 2, 2)
        ino = self._cur_file(cmd, write=True)
        o = cmd.opts
        seed = o.get("S", 0xCDCDCDCD)
        byte = seed & 0xFF if seed.__class__ is int else _byte(seed, self._where(cmd))
        off, ln = self._num(a[0], cmd), self._num(a[1], cmd)
        buf = None
        if self.stripe_unit_blocks:  # one write(2) per buffer (io/pwrite.c)
            buf = self._num(o["b"], cmd) if "b" in o else PWRITE_BUFFER_BYTES
            if buf <= 0:
                raise InputError(
                    f"pwrite -b {buf}: expected a positive buffer size", where=self._where(cmd)
                )
        self.dax.pwrite(ino, off, ln, byte, buffer_bytes=buf)
        if o.get("W") or o.get("w"):
            self.dax.fsync(ino)
        self.output.append(f"wrote {ln}/{ln} bytes at offset {off}")

    def _c_pread(self, cmd) -> None:
        a = self._nargs(cmd, 2, 2)
        ino = self._cur_file(cmd)
        off, ln = self._num(a[0], cmd), self._num(a[1], cmd)
        if cmd.opts.get("v"):  # xfs_io prints the bytes: keep them for later @expect_bytes
            n = max(0, min(off + ln, self.dax.fs.size(ino)) - off) if ln >= 0 else 0
            if n > _MAX_PRINTED:
                raise InputError(
                    f"pread -v of {n} bytes: more than the runner keeps to print "
                    f"({_MAX_PRINTED} bytes); drop -v or read less",
                    where=self._where(cmd),
                )
            self.last_read, _wr = self.dax.pread(ino, off, ln)
        else:  # nothing printed: the work of the read; its bytes only for the next lines
            self.dax.read(ino, off, ln)
            self.last_read = (ino, off, ln)
        self.last_read_off = off

    def _c_truncate(self, cmd) -> None:
        a = self._nargs(cmd, 1, 1)
        self.dax.truncate(self._cur_file(cmd, write=True), self._num(a[0], cmd))

    def _range_args(self, cmd) -> tuple[int, int]:
        a = self._nargs(cmd, 2, 2)
        return self._num(a[0], cmd), self._num(a[1], cmd)

    def _c_falloc(self, cmd) -> None:
        off, ln = self._range_args(cmd)
        ino = self._cur_file(cmd, write=True)
        self.dax.fallocate(ino, off, ln, keep_size=bool(cmd.opts.get("k")))

    def _c_fpunch(self, cmd) -> None:
        off, ln = self._range_args(cmd)
        self.dax.punch(self._cur_file(cmd, write=True), off, ln)

    def _c_fzero(self, cmd) -> None:
        off, ln = self._range_args(cmd)
        ino = self._cur_file(cmd, write=True)
        self.dax.zero_range(ino, off, ln, keep_size=bool(cmd.opts.get("k")))

    def _c_funshare(self, cmd) -> None:
        off, ln = self._range_args(cmd)
        self.dax.unshare(self._cur_file(cmd, write=True), off, ln)

    def _c_reflink(self, cmd) -> None:
        a = tuple(cmd.args)
        if len(a) not in (1, 4):
            raise InputError("reflink: expected SRC or SRC SOFF DOFF LEN", where=self._where(cmd))
        dst = self._cur_file(cmd, write=True)
        src = self._ino(str(a[0]))
        if len(a) == 1:
            self.dax.clone(dst, src, 0, 0, 0)
        else:
            num = self._num
            self.dax.clone(dst, src, num(a[1], cmd), num(a[2], cmd), num(a[3], cmd))

    def _c_dedupe(self, cmd) -> None:
        a = self._nargs(cmd, 4, 4)
        dst = self._cur_file(cmd, write=True)
        src = self._ino(str(a[0]))
        ln = self._num(a[3], cmd)
        self.dax.dedupe(dst, src, self._num(a[1], cmd), self._num(a[2], cmd), ln)
        self.output.append(f"deduped {ln}/{ln} bytes")

    def _c_fsync(self, cmd) -> None:
        ino = self._cur_file(cmd)
        self.dax.fs.fsync(ino)
        self.dax.fsync(ino)

    _c_fdatasync = _c_fsync

    def _c_stat(self, cmd) -> None:
        ino = self._cur_file(cmd)
        fs = self.dax.fs
        self.output.append(f'fd.path = "{self.files[self.cur][0]}"')
        self.output.append(f"stat.ino = {ino}")
        self.output.append(f"stat.size = {fs.size(ino)}")

    def _c_md5sum(self, cmd) -> None:
        ino = self._cur_file(cmd)
        self.output.append(f"{self._md5(cmd, ino)}  {self.files[self.cur][0]}")

    # ------------------------------------------------------------------ mappings
    def _c_mmap(self, cmd) -> None:
        a = tuple(cmd.args)
        if len(a) == 1 and not cmd.opts:
            n = self._num(a[0], cmd)
            if not 0 <= n < len(self.maps):
                raise InputError(f"mmap {n}: no such mapping", where=self._where(cmd))
            self.curmap = n
            return
        if len(a) == 0:
            for i, vid in enumerate(self.maps):
                v = self.dax.vmas[vid]
                mark = "*" if i == self.curmap else " "
                self.output.append(f"{mark}{i}: 0x{v.va_start:x} - pgoff {v.pgoff} len {v.npages}p")
            return
        if len(a) != 2:
            raise InputError("mmap: expected OFF LEN or N", where=self._where(cmd))
        o = cmd.opts
        # PROT_WRITE unless only other protections are given
        writable = bool(o.get("w")) or not (o.get("r") or o.get("x"))
        ino = self._cur_file(cmd, write=writable)
        vid = self.dax.mmap(
            _PID, ino, self._num(a[0], cmd), self._num(a[1], cmd), writable=writable
        )
        self.maps.append(vid)
        self.curmap = len(self.maps) - 1

    def _map_range(self, cmd) -> tuple[int, int, int]:
        vid = self._cur_map(cmd)
        a = tuple(cmd.args)
        v = self.dax.vmas[vid]
        if len(a) == 0:
            return vid, v.pgoff * PAGE, v.npages * PAGE
        if len(a) != 2:
            raise InputError(f"{cmd.name}: expected OFF LEN", where=self._where(cmd))
        off, ln = self._num(a[0], cmd), self._num(a[1], cmd)
        start, end = v.pgoff * PAGE, (v.pgoff + v.npages) * PAGE
        if off < start or off + ln > end:
            raise FsError("EFAULT", f"{cmd.name}: range [{off}, {off + ln}) outside the mapping")
        return vid, off, ln

    def _c_mread(self, cmd) -> None:
        vid, off, ln = self._map_range(cmd)
        self.dax.mread(vid, off, ln)
        if cmd.opts.get("v"):  # xfs_io prints the bytes: capture them now
            self.last_read = self.dax.load(vid, off, ln)
        else:  # nothing printed: read only if the very next line is an @expect_bytes
            self.last_read = (None, vid, off, ln)
        self.last_read_off = off

    def _c_mwrite(self, cmd) -> None:
        vid, off, ln = self._map_range(cmd)
        if not self.dax.vmas[vid].writable:
            raise FsError("EACCES", "mwrite: mapping is read-only (SIGSEGV)")
        seed = cmd.opts.get("S", 0x58)
        byte = seed & 0xFF if seed.__class__ is int else _byte(seed, self._where(cmd))
        self.dax.mwrite(vid, off, ln, byte)

    def _c_msync(self, cmd) -> None:
        vid, off, ln = self._map_range(cmd)
        self.dax.fsync(self.dax.vmas[vid].ino, off, ln)

    def _c_munmap(self, cmd) -> None:
        vid = self._cur_map(cmd)
        self.dax.munmap(vid)
        del self.maps[self.curmap]
        if self.curmap >= len(self.maps):
            self.curmap = len(self.maps) - 1

    # ------------------------------------------------------------------ harness
    def _c_mkfs(self, cmd) -> None:
        size = int(cmd.opts["size"]) if "size" in cmd.opts else self.device_bytes
        self.files.clear()
        self.maps.clear()
        self.cur = self.curmap = -1
        self.samples.clear()
        try:
            self.dax = self._mkfs(size)
        except InputError as exc:  # a device past what the struct-page arrays can map
            raise InputError(f"@mkfs size={size}: {exc.message}", where=self._where(cmd)) from None

    def _c_cycle_mount(self, cmd) -> None:
        # as the agent's close_all: every mapping unmapped, then every file closed, in
        # table order (the last reference of an unlinked file evicts it), then the unmount
        for vid in self.maps:
            self.dax.munmap(vid)
        for _path, ino, _ro in self.files:
            self.dax.close(ino)
        self.maps.clear()
        self.curmap = -1
        self.files.clear()
        self.cur = -1
        self.dax.unmount()

    def _c_sync(self, cmd) -> None:
        for ino in list(self.dax.spaces):
            self.dax.fsync(ino)

    def _c_unlink(self, cmd) -> None:
        a = self._nargs(cmd, 1, 1)
        self.dax.unlink(str(a[0]))

    def _c_scratch_dev_fill(self, cmd) -> None:
        a = self._nargs(cmd, 1, 1)
        self.fill_byte = _byte(a[0], self._where(cmd))

    def _c_hwpoison(self, cmd) -> None:
        vid, off, ln = self._map_range(cmd)
        res, _wr = self.dax.memory_failure(vid, off, ln)
        self.last_poison = (vid, off, res)
        self.poison_results.append(res)

    def _c_statfs(self, cmd) -> None:
        a = self._nargs(cmd, 1, 1)
        self.samples[str(a[0])] = self.dax.fs.free_blocks()

    # ------------------------------------------------------------------ checks
    def _c_expect_md5(self, cmd) -> None:
        a = self._nargs(cmd, 2, 2)
        path, want = str(a[0]), str(a[1]).lower()
        try:
            got = self._md5(cmd, self._ino(path))
        except FsError as err:
            got = err.errno
        self._check(cmd, "expect_md5", got == want, f"{path} md5 {want}", got)

    def _md5(self, cmd, ino: int, off: int = 0, length: int | None = None) -> str:
        """``fs.md5`` of a file (``length`` None: ``off`` to EOF) or of a raw range; an
        InputError naming the line when it would hash more than :data:`_MAX_HASHED` bytes."""
        n = max(self.dax.fs.size(ino) - off, 0) if length is None else length
        if n > _MAX_HASHED:
            raise InputError(
                f"{cmd.name}: md5 of {n} bytes: more than the runner hashes "
                f"({_MAX_HASHED} bytes; an md5 has no shortcut over a sparse "
                f"file's zeros)",
                where=self._where(cmd),
            )
        return self.dax.fs.md5(ino, off, length)

    def _c_expect_range_md5(self, cmd) -> None:
        a = self._nargs(cmd, 4, 4)
        w = self._where(cmd)
        path, want = str(a[0]), str(a[3]).lower()
        try:
            got = self._md5(cmd, self._ino(path), _cvt(a[1], w), _cvt(a[2], w))
        except FsError as err:
            got = err.errno
        self._check(cmd, "expect_range_md5", got == want, f"{path} [{a[1]}+{a[2]}] md5 {want}", got)

    def _same_diff(self, cmd, word) -> bool:
        s = str(word)
        if s not in ("same", "differ"):
            raise InputError(f"{cmd.name}: expected same|differ, got {s!r}", where=self._where(cmd))
        return s == "same"

    def _c_expect_cmp(self, cmd) -> None:
        a = self._nargs(cmd, 3, 3)
        want_same = self._same_diff(cmd, a[2])
        fs = self.dax.fs
        try:
            ia, ib = self._ino(str(a[0])), self._ino(str(a[1]))
            sa, sb = fs.size(ia), fs.size(ib)
            same = sa == sb and fs.compare(ia, 0, ib, 0, sa)
            found = "same" if same else "differ"
        except FsError as err:
            same, found = None, err.errno
        self._check(
            cmd,
            "expect_cmp",
            same is not None and same == want_same,
            f"{a[0]} {a[1]} {a[2]}",
            found,
        )

    def _c_expect_range(self, cmd) -> None:
        a = self._nargs(cmd, 6, 6)
        w = self._where(cmd)
        want_same = self._same_diff(cmd, a[5])
        fs = self.dax.fs
        try:
            same = fs.compare(
                self._ino(str(a[0])),
                _cvt(a[1], w),
                self._ino(str(a[2])),
                _cvt(a[3], w),
                _cvt(a[4], w),
            )
            found = "same" if same else "differ"
        except FsError as err:
            same, found = None, err.errno
        self._check(
            cmd,
            "expect_range",
            same is not None and same == want_same,
            " ".join(str(x) for x in a),
            found,
        )

    def _c_expect_bytes(self, cmd) -> None:
        a = self._nargs(cmd, 2, 2)
        w = self._where(cmd)
        off = _cvt(a[0], w)
        want = str(a[1]).lower()
        rel = off - self.last_read_off
        n = len(want) // 2
        lr = self.last_read
        if rel < 0:
            got = ""
        elif isinstance(lr, tuple) and len(lr) == 4:  # an un-printed mread: the loads' bytes
            _none, vid, _off, ln = lr
            got = self.dax.load(vid, off, min(n, ln - rel)).hex() if rel < ln else ""
        elif isinstance(lr, tuple):  # an un-printed read: read just the bytes asked for
            ino, _off, ln = lr
            got = self.dax.fs.pread(ino, off, min(n, ln - rel)).hex() if rel < ln else ""
        else:
            got = lr[rel : rel + n].hex()
        self._check(cmd, "expect_bytes", got == want, want, got or "(no data)")

    def _c_expect_same_mapping(self, cmd) -> None:
        a = self._nargs(cmd, 2, 2)
        fs = self.dax.fs
        try:
            ia, ib = self._ino(str(a[0])), self._ino(str(a[1]))
            na = -(-fs.size(ia) // BLOCK_SIZE)
            nb = -(-fs.size(ib) // BLOCK_SIZE)
            ma = [
                (e.fblock, e.pblock, e.nblocks, e.state) for e in (fs.bmap(ia, 0, na) if na else [])
            ]
            mb = [
                (e.fblock, e.pblock, e.nblocks, e.state) for e in (fs.bmap(ib, 0, nb) if nb else [])
            ]
            ok = na == nb and ma == mb
            found = "same mapping" if ok else f"{len(ma)} vs {len(mb)} extents differ"
        except FsError as err:
            ok, found = False, err.errno
        self._check(cmd, "expect_same_mapping", ok, f"{a[0]} and {a[1]} share every block", found)

    def _c_expect_free_delta(self, cmd) -> None:
        a = self._nargs(cmd, 3, 3)
        w = self._where(cmd)
        sa, sb, d = str(a[0]), str(a[1]), int(a[2])
        for smp in (sa, sb):
            if smp not in self.samples:
                raise InputError(f"@expect_free_delta: no @statfs sample {smp}", where=w)
        got = self.samples[sa] - self.samples[sb]
        tolf = float(cmd.opts.get("tol", 0.0))
        # xfstests _within_tolerance: free(Sa) within +-tol of the expected absolute count
        slack = tolf * abs(self.samples[sb] + d)
        self._check(
            cmd,
            "expect_free_delta",
            abs(got - d) <= slack,
            f"free({sa})-free({sb}) = {d:+d} (tol {tolf:.0%})",
            f"{got:+d}",
        )
        self.exact_free_delta.append((cmd.line, got == d))

    def _c_expect_sigbus(self, cmd) -> None:
        got = self.last_poison is not None and self.last_poison[2].sigbus_poisoner
        self._check(
            cmd, "expect_sigbus", got, "SIGBUS to the poisoner", "SIGBUS" if got else "no SIGBUS"
        )

    def _c_expect_poison_owners(self, cmd) -> None:
        a = self._nargs(cmd, 1)
        w = self._where(cmd)
        if self.last_poison is None:
            self._check(
                cmd,
                "expect_poison_owners",
                False,
                " ".join(map(str, a[1:])),
                "no @hwpoison before",
                model=True,
            )
            return
        vid, off0, res = self.last_poison
        pageoff = _cvt(a[0], w)
        want = sorted(f"{p}:{o}" for p, o in a[1:])
        v = self.dax.vmas.get(vid)
        idx = pageoff // PAGE
        pfn = v.lookup(idx)[0] if v is not None and v.lookup(idx) is not None else None
        if pfn is None:
            # the poison unmapped it: find the pfn among the poisoned ones
            k = idx - off0 // PAGE
            pfn = res.pfns[k] if 0 <= k < len(res.pfns) else None
        owners = (res.rmap_owners if self.dax.rmap else res.fallback_owners).get(pfn, [])
        got = sorted(f"{self.dax.fs.path_of(ino) or ino}:{fb * PAGE}" for ino, fb in owners)
        self._check(
            cmd,
            "expect_poison_owners",
            got == want,
            " ".join(want),
            " ".join(got) or "(none)",
            model=True,
        )

    def _c_final(self, cmd) -> None:
        if not self.check_model:
            return
        kv = cmd.opts
        path = str(cmd.args[0]) if cmd.args else ""
        fs = self.dax.fs
        try:
            ino = self._ino(path)
            found = [f"size={fs.size(ino)}"]
            want = []
            ok = True
            if "size" in kv:
                want.append(f"size={kv['size']}")
                ok &= fs.size(ino) == int(kv["size"])
            if "md5" in kv:
                got = self._md5(cmd, ino)
                want.append(f"md5={kv['md5']}")
                found.append(f"md5={got}")
                ok &= got == str(kv["md5"]).lower()
        except FsError as err:
            ok, want, found = False, [path], [err.errno]
        self._check(cmd, "final", ok, f"{path} " + " ".join(want), " ".join(found), model=True)

    def _c_model_shared_blocks(self, cmd) -> None:
        if not self.check_model:
            return
        a = self._nargs(cmd, 3, 3)
        path = str(a[0])
        fs = self.dax.fs
        try:
            ino = self._ino(path)
            nb = -(-fs.size(ino) // BLOCK_SIZE)
            ext = fs.bmap(ino, 0, nb) if nb else []
            shared = sum(e.nblocks for e in ext if e.shared)
            mapped = sum(e.nblocks for e in ext if e.pblock >= 0)
            got = f"{shared}/{mapped}"
        except FsError as err:
            got = err.errno
        want = f"{a[1]}/{a[2]}"
        self._check(cmd, "model_shared_blocks", got == want, f"{path} {want}", got, model=True)

    def _c_expect_invariant(self, cmd) -> None:
        a = self._nargs(cmd, 2, 2)
        name, word = str(a[0]), str(a[1])
        if word not in ("violated", "holds"):
            raise InputError(
                "@expect_invariant: expected NAME violated|holds", where=self._where(cmd)
            )
        fn = self.invariants.get(name)
        if fn is None:
            raise InputError(
                f"@expect_invariant: unknown invariant {name!r} "
                f"(known: {', '.join(sorted(self.invariants))})",
                where=self._where(cmd),
            )
        holds = bool(fn(self))
        self._check(
            cmd,
            "expect_invariant",
            holds == (word == "holds"),
            f"{name} {word}",
            f"{name} {'holds' if holds else 'violated'}",
        )


def stripe_unit_blocks(stripe_unit_bytes: int, where: str = "--stripe-unit") -> int:
    """The stripe unit in blocks of ``stripe_unit_bytes`` (``mkfs.xfs -d su=``).

    Parameters
    ----------
    stripe_unit_bytes : int
        0 (none) or a positive multiple of the 4 KiB block.
    where : str, optional
        The option or key named in the error.

    Returns
    -------
    int

    Raises
    ------
    InputError
        Negative or not a multiple of the block size (mkfs.xfs refuses such a ``su=``).
    """
    su = int(stripe_unit_bytes)
    if su < 0 or su % BLOCK_SIZE:
        raise InputError(
            f"stripe unit {su}: expected 0 (none) or a positive multiple of the "
            f"{BLOCK_SIZE}-byte block",
            where=where,
        )
    return su // BLOCK_SIZE


def run_script(
    text: str, filename: str = "<script>", variant: str = DEFAULT_DESIGN, **kw
) -> XfsioRunner:
    """Parse and run a script; returns the runner (``.result``, ``.summary()``)."""
    from sim.xfsio.parse import parse_script

    cmds = parse_script(text, filename)
    r = XfsioRunner(variant, filename=filename, **kw)
    r.run(cmds)
    return r
