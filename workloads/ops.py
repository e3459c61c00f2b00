"""The file-level operation stream every workload generator emits.

A stream is ONE numpy structured array of dtype :data:`OP_DTYPE`, one row per operation, in
issue order (``t_cycles`` is non-decreasing). A million faults is one array, not a million
objects. Rows name files by small integer ids (``file``, ``src``); ids are assigned by the
generator, start at 0, and are never reused (a ``CREATE`` names a new id). Processes are
integer ``pid``; a process has at most one mapping per file, identified by ``(pid, file)``.

Fields
------
op : int8
    Operation code, one of :class:`Op`.
cpu : int32
    CPU the operation is issued on (``0 <= cpu < run.cpus``).
pid : int32
    Issuing process; identifies the mapping together with ``file`` for ``MMAP``, ``MUNMAP``,
    faults and ``POISON``.
file : int32
    Target file id (the destination for ``CLONE`` and ``DEDUPE``); ``-1`` for a
    device-level ``POISON``.
src : int32
    Source file id of ``CLONE`` / ``DEDUPE``; ``-1`` otherwise.
offset_bytes : int64
    Byte offset in ``file`` (destination offset for ``CLONE`` / ``DEDUPE``; the new size for
    ``TRUNCATE``; a device byte address for a device-level ``POISON``).
length_bytes : int64
    Length of the range in bytes (``0`` for ``CLONE`` means "to source EOF").
src_offset_bytes : int64
    Byte offset in ``src`` for ``CLONE`` / ``DEDUPE``; ``0`` otherwise.
arg : int64
    Per-op argument: the pattern byte (``WRITE``, ``WRITE_FAULT``: bits 8..15), flags
    (``ARG_PMD``, ``ARG_WRITABLE``, ``ARG_WHOLE_FILE``, ``ARG_KEEP_SIZE``); see :class:`Op`.
t_cycles : int64
    Issue-time hint in CPU cycles of the modelled core, non-decreasing. The functional mode
    applies rows in array order; the timing mode issues each row no earlier than this time.

A prefix of a legal stream is legal, so a driver may stop after ``run.operations`` rows or at
``run.duration_ns`` of simulated time.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence

import numpy as np

from sim.constants import BLOCK_SIZE, PAGE_SIZE, PMD_SIZE, OpKind
from sim.errors import InputError

__all__ = [
    "OP_BYTES",
    "OP_DTYPE",
    "Op",
    "ARG_PMD",
    "ARG_WRITABLE",
    "ARG_WHOLE_FILE",
    "ARG_KEEP_SIZE",
    "PAGE_SIZE",
    "PMD_SIZE",
    "empty_stream",
    "make_ops",
    "concat",
    "sort_by_time",
    "op_counts",
    "validate_stream",
    "to_xfsio_lines",
    "from_xfsio_lines",
]

#: Memory one operation of a run takes at most, all tables together (its stream row, its
#: latency row and label, its share of the generator's draws): the unit of the estimates by
#: which a workload too large for the machine is refused before it is generated.
OP_BYTES = 256


#: Fault rows: a PMD (2 MiB) fault rather than a PTE fault. MMAP rows: the mapping is
#: huge-aligned (PMD colour of the address equals that of the file offset), so the kernel
#: tries PMD faults; without it the mapping is placed off PMD colour and every fault is a PTE.
ARG_PMD = 1
#: ``MMAP``: the mapping is writable (PROT_READ|PROT_WRITE, MAP_SHARED); else read-only.
ARG_WRITABLE = 2
#: ``CLONE``: whole-file FICLONE (offsets and length ignored); else FICLONERANGE.
ARG_WHOLE_FILE = 1
#: ``ZERO``: FALLOC_FL_KEEP_SIZE (do not extend EOF).
ARG_KEEP_SIZE = 1

OP_DTYPE = np.dtype(
    [
        ("op", np.int8),
        ("cpu", np.int32),
        ("pid", np.int32),
        ("file", np.int32),
        ("src", np.int32),
        ("offset_bytes", np.int64),
        ("length_bytes", np.int64),
        ("src_offset_bytes", np.int64),
        ("arg", np.int64),
        ("t_cycles", np.int64),
    ]
)


#: The operation codes of the ``op`` field: the one vocabulary of operation kinds.
Op = OpKind


_FIELD_DEFAULTS = {
    "op": 0,
    "cpu": 0,
    "pid": 0,
    "file": -1,
    "src": -1,
    "offset_bytes": 0,
    "length_bytes": 0,
    "src_offset_bytes": 0,
    "arg": 0,
    "t_cycles": 0,
}


def empty_stream(n: int = 0) -> np.ndarray:
    """Return a stream of ``n`` rows with every field at its neutral value.

    Parameters
    ----------
    n : int
        Number of rows.

    Returns
    -------
    ndarray of shape (n,), dtype OP_DTYPE
        ``file`` and ``src`` are -1, everything else 0.
    """
    out = np.zeros(n, dtype=OP_DTYPE)
    out["file"] = -1
    out["src"] = -1
    return out


def make_ops(op, n: int | None = None, **fields) -> np.ndarray:
    """Build rows from scalars and arrays, broadcast against each other (vectorised).

    Parameters
    ----------
    op : int or array_like
        Operation code(s), :class:`Op`.
    n : int, optional
        Number of rows; by default the broadcast length of the given fields.
    **fields
        Any field of :data:`OP_DTYPE` (scalar or array_like of shape (n,)); the rest get
        their neutral value (``file``/``src`` -1, others 0).

    Returns
    -------
    ndarray of shape (n,), dtype OP_DTYPE
    """
    unknown = set(fields) - set(OP_DTYPE.names)
    if unknown:
        raise TypeError(f"unknown stream field(s): {sorted(unknown)}")
    arrays = {k: np.asarray(v) for k, v in fields.items()}
    arrays["op"] = np.asarray(op)
    if n is None:
        n = (
            int(np.broadcast_shapes(*(a.shape for a in arrays.values()))[0])
            if any(a.ndim for a in arrays.values())
            else 1
        )
    out = empty_stream(n)
    for k, a in arrays.items():
        out[k] = np.broadcast_to(a, (n,))
    return out


def concat(parts: Sequence[np.ndarray]) -> np.ndarray:
    """Concatenate stream chunks (an empty list gives an empty stream)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty_stream(0)
    return np.concatenate(parts).astype(OP_DTYPE, copy=False)


def sort_by_time(stream: np.ndarray) -> np.ndarray:
    """Stable sort by ``t_cycles``: rows with equal times keep their relative order.

    Generators build each actor's rows in causal order with non-decreasing times and
    concatenate the actors; this interleaves them without breaking any actor's order.
    """
    order = np.argsort(stream["t_cycles"], kind="stable")
    return stream[order]


def op_counts(stream: np.ndarray) -> dict[str, int]:
    """Number of rows per operation name (only the names that occur)."""
    counts = np.bincount(stream["op"].astype(np.int64), minlength=len(Op) + 1)
    return {Op(i).name: int(c) for i, c in enumerate(counts) if c and i in Op._value2member_map_}


# --------------------------------------------------------------------------- validation


def _fail(i: int, stream: np.ndarray, msg: str) -> None:
    row = stream[i]
    try:
        name = Op(int(row["op"])).name
    except ValueError:
        name = str(int(row["op"]))
    raise InputError(
        f"illegal {name} (pid={int(row['pid'])} file={int(row['file'])} src={int(row['src'])} "
        f"offset={int(row['offset_bytes'])} length={int(row['length_bytes'])}): {msg}",
        where=f"stream row {i}",
    )


def validate_stream(stream: np.ndarray) -> dict:
    """Check that a stream is legal and return a summary of the final file state.

    Legal means: known op codes; non-decreasing ``t_cycles``; files created before use,
    never re-created and not used after ``UNLINK``; clone/dedupe sources exist; faults
    through an existing mapping of that process, inside the mapping and below EOF, page
    aligned, writes only through writable mappings, PMD faults 2 MiB aligned and 2 MiB long;
    no ``UNLINK`` of a mapped file; clone/dedupe offsets block aligned and ranges within the
    source EOF. Faults (the bulk) are checked vectorised between structural operations.

    Parameters
    ----------
    stream : ndarray of dtype OP_DTYPE

    Returns
    -------
    dict
        ``counts`` (rows per op name), ``live_files`` (sorted list of file ids),
        ``sizes_bytes`` (dict file id -> final size of the live files).

    Raises
    ------
    InputError
        At the first illegal row, ``where="stream row N"``.
    """
    if stream.dtype != OP_DTYPE:
        raise InputError(f"stream dtype is {stream.dtype}, expected OP_DTYPE", where="stream")
    n = len(stream)
    ops = stream["op"].astype(np.int64)
    bad = ~np.isin(ops, np.array([int(o) for o in Op]))
    if bad.any():
        _fail(int(np.flatnonzero(bad)[0]), stream, "unknown op code")
    t = stream["t_cycles"]
    if n and (t[0] < 0 or (np.diff(t) < 0).any()):
        i = 0 if t[0] < 0 else int(np.flatnonzero(np.diff(t) < 0)[0]) + 1
        _fail(i, stream, "t_cycles must be >= 0 and non-decreasing")
    cpu_bad = stream["cpu"] < 0
    if cpu_bad.any():
        _fail(int(np.flatnonzero(cpu_bad)[0]), stream, "negative cpu")

    nfiles = int(max(stream["file"].max(initial=-1), stream["src"].max(initial=-1))) + 1
    size = np.zeros(nfiles, dtype=np.int64)
    state = np.zeros(nfiles, dtype=np.int8)  # 0 never created, 1 live, 2 unlinked
    maps: dict[tuple[int, int], tuple[int, int, bool]] = {}
    is_fault = (ops == Op.READ_FAULT) | (ops == Op.WRITE_FAULT)
    structural = np.flatnonzero(~is_fault)

    def check_faults(lo: int, hi: int) -> None:
        if hi <= lo:
            return
        seg = stream[lo:hi]
        f = seg["file"].astype(np.int64)
        off = seg["offset_bytes"]
        ln = seg["length_bytes"]
        pmd = (seg["arg"] & ARG_PMD) != 0
        if (f < 0).any():
            _fail(lo + int(np.flatnonzero(f < 0)[0]), stream, "fault on file -1")
        live = state[f] == 1
        inside = off < size[f]
        aligned = (off % PAGE_SIZE == 0) & (ln > 0) & (off >= 0)
        pmd_ok = ~pmd | ((off % PMD_SIZE == 0) & (ln == PMD_SIZE))
        ok = live & inside & aligned & pmd_ok
        if not ok.all():
            j = int(np.flatnonzero(~ok)[0])
            why = (
                "file not live"
                if not live[j]
                else f"beyond EOF ({int(size[f[j]])} bytes)"
                if not inside[j]
                else "PMD fault must be 2 MiB aligned and 2 MiB long"
                if not pmd_ok[j]
                else "offset must be page aligned and length > 0"
            )
            _fail(lo + j, stream, why)
        key = seg["pid"].astype(np.int64) * max(nfiles, 1) + f
        uniq, inv = np.unique(key, return_inverse=True)
        m_lo = np.empty(len(uniq), np.int64)
        m_hi = np.empty(len(uniq), np.int64)
        m_w = np.empty(len(uniq), bool)
        m_huge = np.empty(len(uniq), bool)
        for u, k in enumerate(uniq.tolist()):
            m = maps.get((k // max(nfiles, 1), k % max(nfiles, 1)))
            if m is None:
                j = int(np.flatnonzero(inv == u)[0])
                _fail(lo + j, stream, "no mapping of this file by this pid")
            m_lo[u], m_hi[u], m_w[u], m_huge[u] = m[0], m[0] + m[1], m[2], m[3]
        in_map = (
            (off >= m_lo[inv])
            & (off + np.minimum(ln, PAGE_SIZE) <= m_hi[inv])
            & (~pmd | (off + ln <= m_hi[inv]))
        )
        wr_ok = (seg["op"] != Op.WRITE_FAULT) | m_w[inv]
        huge_ok = ~pmd | m_huge[inv]
        ok = in_map & wr_ok & huge_ok
        if not ok.all():
            j = int(np.flatnonzero(~ok)[0])
            _fail(
                lo + j,
                stream,
                "outside the mapping"
                if not in_map[j]
                else "write fault through a read-only mapping"
                if not wr_ok[j]
                else "PMD fault through a mapping that is not huge-aligned",
            )

    def need_live(i: int, f: int, what: str = "file") -> None:
        if f < 0 or f >= nfiles or state[f] != 1:
            st = "never created" if f < 0 or f >= nfiles or state[f] == 0 else "unlinked"
            _fail(i, stream, f"{what} {f} is {st}")

    prev = 0
    for i in structural.tolist():
        check_faults(prev, i)
        prev = i + 1
        r = stream[i]
        op = int(r["op"])
        f = int(r["file"])
        off = int(r["offset_bytes"])
        ln = int(r["length_bytes"])
        pid = int(r["pid"])
        if op == Op.CREATE:
            if f < 0 or state[f] != 0:
                _fail(i, stream, "CREATE needs a new file id (ids are never reused)")
            state[f] = 1
            size[f] = 0
            continue
        if op == Op.POISON and f == -1:
            if off < 0 or ln <= 0:
                _fail(i, stream, "device poison needs offset >= 0 and length > 0")
            continue
        need_live(i, f)
        if off < 0 or ln < 0:
            _fail(i, stream, "negative offset or length")
        if op == Op.WRITE:
            if ln <= 0 or not 0 <= int(r["arg"]) <= 255:
                _fail(i, stream, "WRITE needs length > 0 and a pattern byte 0..255")
            size[f] = max(size[f], off + ln)
        elif op in (Op.CLONE, Op.DEDUPE):
            s = int(r["src"])
            need_live(i, s, "source file")
            if op == Op.CLONE and int(r["arg"]) & ARG_WHOLE_FILE:
                if s == f:
                    _fail(i, stream, "whole-file clone onto itself")
                size[f] = size[s]
                continue
            soff = int(r["src_offset_bytes"])
            if off % PAGE_SIZE or soff % PAGE_SIZE or soff < 0:
                _fail(i, stream, "clone/dedupe offsets must be block aligned")
            if ln == 0:
                if op == Op.DEDUPE:
                    _fail(i, stream, "DEDUPE needs length > 0")
                ln = int(size[s]) - soff
            if soff + ln > size[s] or ln <= 0:
                _fail(i, stream, f"source range beyond source EOF ({int(size[s])} bytes)")
            if s == f and off < soff + ln and soff < off + ln:
                _fail(i, stream, "overlapping ranges in the same file")
            partial = ln % PAGE_SIZE != 0
            if op == Op.DEDUPE:
                if off + ln > size[f]:
                    _fail(i, stream, "DEDUPE destination range beyond EOF")
            else:
                if partial and (soff + ln != size[s] or off + ln < size[f]):
                    _fail(
                        i,
                        stream,
                        "unaligned clone length must end at source EOF and "
                        "reach the destination EOF",
                    )
                size[f] = max(size[f], off + ln)
        elif op == Op.MMAP:
            if (pid, f) in maps:
                _fail(i, stream, "this pid already maps this file")
            if off % PAGE_SIZE or ln <= 0:
                _fail(i, stream, "MMAP needs a page-aligned offset and length > 0")
            # The kernel rounds a mapping's length up to whole pages.
            maps[(pid, f)] = (
                off,
                -(-ln // PAGE_SIZE) * PAGE_SIZE,
                bool(int(r["arg"]) & ARG_WRITABLE),
                bool(int(r["arg"]) & ARG_PMD),
            )
        elif op == Op.MUNMAP:
            if maps.pop((pid, f), None) is None:
                _fail(i, stream, "MUNMAP without a mapping")
        elif op == Op.TRUNCATE:
            size[f] = off
        elif op in (Op.PUNCH, Op.UNSHARE):
            if ln <= 0:
                _fail(i, stream, "length must be > 0")
        elif op == Op.ZERO:
            if ln <= 0:
                _fail(i, stream, "length must be > 0")
            if not int(r["arg"]) & ARG_KEEP_SIZE:
                size[f] = max(size[f], off + ln)
        elif op == Op.UNLINK:
            if any(k[1] == f for k in maps):
                _fail(i, stream, "UNLINK of a file that is still mapped (MUNMAP first)")
            state[f] = 2
        elif op == Op.POISON:
            m = maps.get((pid, f))
            if m is None:
                _fail(i, stream, "POISON through a mapping that does not exist")
            if off % PAGE_SIZE or ln <= 0 or off >= size[f] or off < m[0] or off >= m[0] + m[1]:
                _fail(i, stream, "POISON needs a mapped, page-aligned offset below EOF")
        # FSYNC and READ need only a live file.
    check_faults(prev, n)
    live = np.flatnonzero(state == 1)
    return {
        "counts": op_counts(stream),
        "live_files": live.tolist(),
        "sizes_bytes": {int(f): int(size[f]) for f in live},
    }


# --------------------------------------------------------------------------- xfs_io scripts


def to_xfsio_lines(stream: np.ndarray, names: Sequence[str] | Mapping[int, str]) -> list[str]:
    """Render a (small) stream as xfs_io script lines (shared/conformance format).

    One xfs_io session runs every process's operations in stream order: the file table gets
    an ``open`` whenever the target file changes, and each ``(pid, file)`` mapping is one
    entry of the mapping table, selected with ``mmap N`` before it is used. A PMD fault
    becomes an ``mread``/``mwrite`` of 2 MiB, and ``ARG_PMD`` of an MMAP is dropped (xfs_io
    cannot choose; the kernel huge-aligns mappings of DAX files itself).

    Parameters
    ----------
    stream : ndarray of dtype OP_DTYPE
    names : sequence or mapping of int to str
        Path of each file id.

    Returns
    -------
    list of str
    """
    lines: list[str] = []
    current: int | None = None
    mtable: list[tuple[int, int]] = []
    cur_map: int | None = None

    def name(f: int) -> str:
        return shlex.quote(str(names[f]))

    def use_file(f: int, create: bool = False) -> None:
        nonlocal current
        if create:
            lines.append(f"open -f -t {name(f)}")
        elif current != f:
            lines.append(f"open {name(f)}")
        current = f

    def use_map(pid: int, f: int) -> bool:
        nonlocal cur_map
        if (pid, f) not in mtable:
            return False
        k = mtable.index((pid, f))
        if cur_map != k:
            lines.append(f"mmap {k}")
            cur_map = k
        return True

    for r in stream:
        op = int(r["op"])
        f, s, pid = int(r["file"]), int(r["src"]), int(r["pid"])
        off, ln, soff, arg = (
            int(r["offset_bytes"]),
            int(r["length_bytes"]),
            int(r["src_offset_bytes"]),
            int(r["arg"]),
        )
        if op == Op.CREATE:
            use_file(f, create=True)
        elif op == Op.WRITE:
            use_file(f)
            lines.append(f"pwrite -S 0x{arg & 0xFF:02x} {off} {ln}")
        elif op == Op.CLONE:
            use_file(f)
            if arg & ARG_WHOLE_FILE:
                lines.append(f"reflink {name(s)}")
            else:
                lines.append(f"reflink {name(s)} {soff} {off} {ln}")
        elif op == Op.DEDUPE:
            use_file(f)
            lines.append(f"dedupe {name(s)} {soff} {off} {ln}")
        elif op == Op.MMAP:
            use_file(f)
            lines.append(f"mmap {'-rw' if arg & ARG_WRITABLE else '-r'} {off} {ln}")
            mtable.append((pid, f))
            cur_map = len(mtable) - 1
        elif op == Op.MUNMAP:
            if use_map(pid, f):
                lines.append("munmap")
                mtable.pop(cur_map)
                cur_map = len(mtable) - 1 if mtable else None
        elif op in (Op.READ_FAULT, Op.WRITE_FAULT, Op.POISON) and f >= 0:
            if not use_map(pid, f):
                lines.append(f"# skipped: pid {pid} has no mapping of {names[f]}")
                continue
            if op == Op.READ_FAULT:
                lines.append(f"mread {off} {ln}")
            elif op == Op.WRITE_FAULT:
                lines.append(f"mwrite -S 0x{(arg >> 8) & 0xFF:02x} {off} {ln}")
            else:
                lines.append(f"@hwpoison {off} {ln}")
        elif op == Op.POISON:
            lines.append(f"# device poison at byte {off} length {ln} (no xfs_io form)")
        elif op == Op.TRUNCATE:
            use_file(f)
            lines.append(f"truncate {off}")
        elif op in (Op.PUNCH, Op.ZERO, Op.UNSHARE):
            use_file(f)
            cmd = Op(op).xfsio
            keep = " -k" if op == Op.ZERO and arg & ARG_KEEP_SIZE else ""
            lines.append(f"{cmd}{keep} {off} {ln}")
        elif op == Op.UNLINK:
            lines.append(f"@unlink {name(f)}")
            if current == f:
                current = None
        elif op == Op.FSYNC:
            use_file(f)
            lines.append("fsync")
        elif op == Op.READ:
            use_file(f)
            lines.append(f"pread {off} {ln}")
    return lines


_SUFFIX = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "b": BLOCK_SIZE, "s": 512}


def _cvtnum(tok: str, where: str) -> int:
    t = tok.strip().lower()
    try:
        if t.startswith("0x"):
            return int(t, 16)
        if t and t[-1] in _SUFFIX:
            return int(t[:-1]) * _SUFFIX[t[-1]]
        return int(t)
    except ValueError:
        raise InputError(f"not a number: {tok!r}", where=where) from None


def from_xfsio_lines(lines: Sequence[str], *, source: str = "<script>"):
    """Parse the xfs_io subset that :func:`to_xfsio_lines` writes back into a stream.

    Comment lines, blank lines and ``@expect*``/``@statfs``/``@final``/``@model*`` lines
    are ignored; every operation is issued by pid 1 on cpu 0 at time 0, and each mapping
    belongs to its own pid (1, 2, ...) so that one file may be mapped several times.

    Parameters
    ----------
    lines : sequence of str
    source : str
        Name used in error messages (``source:LINE``).

    Returns
    -------
    stream : ndarray of dtype OP_DTYPE
    names : list of str
        Path of each file id.

    Raises
    ------
    InputError
        On an unsupported command, ``where="source:LINE"``.
    """
    ids: dict[str, int] = {}
    names: list[str] = []
    rows: list[tuple] = []
    table: list[int] = []  # open file table (file ids)
    cur: int | None = None
    maps: list[tuple[int, int]] = []  # (pid, file)
    cur_map: int | None = None
    next_pid = 1

    def fid(path: str, create: bool, where: str) -> tuple[int, bool]:
        if path not in ids or ids[path] in unlinked:
            if not create:
                raise InputError(f"open of a file that does not exist: {path!r}", where=where)
            ids[path] = len(names)
            names.append(path)
            rows.append((Op.CREATE, 1, ids[path], -1, 0, 0, 0, 0))
            return ids[path], True
        return ids[path], False

    unlinked: set[int] = set()

    def need_cur(where: str) -> int:
        if cur is None:
            raise InputError("no open file", where=where)
        return cur

    def need_map(where: str) -> tuple[int, int]:
        if cur_map is None:
            raise InputError("no current mapping", where=where)
        return maps[cur_map]

    for lineno, raw in enumerate(lines, 1):
        where = f"{source}:{lineno}"
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = shlex.split(line)
        cmd, args = words[0], words[1:]
        flags = [a for a in args if a.startswith("-") and not a.lstrip("-").isdigit()]
        opt_s = None
        pos = []
        it = iter(args)
        for a in it:
            if a in ("-S", "-b"):
                v = next(it, None)
                if a == "-S":
                    opt_s = v
            elif a not in flags:
                pos.append(a)
        pat = (_cvtnum(opt_s, where) & 0xFF) if opt_s is not None else None
        if cmd == "open":
            f, created = fid(pos[0], "-f" in flags, where)
            table.append(f)
            cur = f
            if "-t" in flags and not created:
                rows.append((Op.TRUNCATE, 1, f, -1, 0, 0, 0, 0))
        elif cmd == "close":
            if table:
                table.remove(need_cur(where))
            cur = table[-1] if table else None
        elif cmd == "pwrite":
            rows.append(
                (
                    Op.WRITE,
                    1,
                    need_cur(where),
                    -1,
                    _cvtnum(pos[0], where),
                    _cvtnum(pos[1], where),
                    0,
                    0xCD if pat is None else pat,
                )
            )
        elif cmd == "pread":
            rows.append(
                (
                    Op.READ,
                    1,
                    need_cur(where),
                    -1,
                    _cvtnum(pos[0], where),
                    _cvtnum(pos[1], where),
                    0,
                    0,
                )
            )
        elif cmd in ("reflink", "dedupe"):
            s = ids.get(pos[0])
            if s is None:
                raise InputError(f"unknown source file {pos[0]!r}", where=where)
            if cmd == "reflink" and len(pos) == 1:
                rows.append((Op.CLONE, 1, need_cur(where), s, 0, 0, 0, ARG_WHOLE_FILE))
            else:
                soff, doff, ln = (_cvtnum(p, where) for p in pos[1:4])
                rows.append(
                    (
                        Op.CLONE if cmd == "reflink" else Op.DEDUPE,
                        1,
                        need_cur(where),
                        s,
                        doff,
                        ln,
                        soff,
                        0,
                    )
                )
        elif cmd == "mmap":
            if len(pos) == 1:
                k = int(pos[0])
                if not 0 <= k < len(maps):
                    raise InputError(f"no mapping {k}", where=where)
                cur_map = k
            else:
                writable = "-r" not in flags or "-rw" in flags or "-w" in flags
                f = need_cur(where)
                maps.append((next_pid, f))
                rows.append(
                    (
                        Op.MMAP,
                        next_pid,
                        f,
                        -1,
                        _cvtnum(pos[0], where),
                        _cvtnum(pos[1], where),
                        0,
                        ARG_WRITABLE if writable else 0,
                    )
                )
                next_pid += 1
                cur_map = len(maps) - 1
        elif cmd == "munmap":
            pid, f = need_map(where)
            rows.append((Op.MUNMAP, pid, f, -1, 0, 0, 0, 0))
            maps.pop(cur_map)
            cur_map = len(maps) - 1 if maps else None
        elif cmd in ("mread", "mwrite", "@hwpoison"):
            pid, f = need_map(where)
            op = Op.from_xfsio(cmd)
            a = ((ord("X") if pat is None else pat) << 8) if op == Op.WRITE_FAULT else 0
            rows.append((op, pid, f, -1, _cvtnum(pos[0], where), _cvtnum(pos[1], where), 0, a))
        elif cmd == "truncate":
            rows.append((Op.TRUNCATE, 1, need_cur(where), -1, _cvtnum(pos[0], where), 0, 0, 0))
        elif cmd in ("fpunch", "fzero", "funshare"):
            op = Op.from_xfsio(cmd)
            a = ARG_KEEP_SIZE if op == Op.ZERO and "-k" in flags else 0
            rows.append(
                (op, 1, need_cur(where), -1, _cvtnum(pos[0], where), _cvtnum(pos[1], where), 0, a)
            )
        elif cmd == "@unlink":
            f = ids.get(pos[0])
            if f is None:
                raise InputError(f"unknown file {pos[0]!r}", where=where)
            rows.append((Op.UNLINK, 1, f, -1, 0, 0, 0, 0))
            unlinked.add(f)
            table[:] = [x for x in table if x != f]
            if cur == f:
                cur = table[-1] if table else None
        elif cmd in ("fsync", "fdatasync"):
            rows.append((Op.FSYNC, 1, need_cur(where), -1, 0, 0, 0, 0))
        elif cmd in ("stat", "msync") or cmd.startswith(
            ("@expect", "@statfs", "@final", "@model", "@sync", "@cycle_mount", "@mkfs")
        ):
            continue
        else:
            raise InputError(f"unsupported xfs_io command {cmd!r}", where=where)
    out = empty_stream(len(rows))
    if rows:
        cols = list(zip(*rows, strict=True))
        for name, col in zip(
            ("op", "pid", "file", "src", "offset_bytes", "length_bytes", "src_offset_bytes", "arg"),
            cols,
            strict=True,
        ):
            out[name] = np.asarray([int(c) for c in col], dtype=np.int64)
    return out, names
