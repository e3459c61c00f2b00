"""The plain content model the hunt compares the filesystem against, and per-op snapshots.

:class:`ContentModel` keeps every file as constant-byte runs (no blocks, no sharing, no CoW): a
write to one file can only ever change that file's bytes. If the simulated reflink filesystem
ever disagrees with it, a write leaked into another file (or was lost), which is what the
``data_integrity`` invariant reports.

:class:`HuntModel` bundles what the invariants need beyond a :class:`~sim.dax.DaxFS`: the
content model, the free-block baseline, a snapshot of the memmap before the last operation
(for "state before / after" in explanations) and the last memory-failure result.
"""

from __future__ import annotations

import bisect

import numpy as np

__all__ = ["ContentModel", "RunFile", "BytesContentModel", "HuntModel"]


def _fill(buf: bytearray, a: int, b: int, byte: int) -> None:
    """``buf[a:b] = byte`` without building a temporary bytes object."""
    view = np.frombuffer(buf, dtype=np.uint8)  # a byte store, not arithmetic
    view[a:b] = byte & 0xFF
    del view  # release the export so the bytearray can grow again


class RunFile:
    """One file of :class:`ContentModel`: ``size`` bytes as constant-byte runs.

    ``starts[i]`` is the first byte of run ``i`` (``starts[0] == 0`` when the file is not
    empty) and ``vals[i]`` its byte; run ``i`` ends where run ``i + 1`` starts (the last one
    at ``size``). Every op of the hunt writes one byte value over a range, so a file is a
    handful of runs whatever its size. ``bytes(f)``, ``len(f)``, ``f[a:b]`` (bytes) and
    ``f == bytes`` behave as for the bytes the file holds.
    """

    __slots__ = ("starts", "vals", "size")

    def __init__(self):
        self.starts: list[int] = []
        self.vals: list[int] = []
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def __bool__(self) -> bool:
        return self.size > 0

    def __bytes__(self) -> bytes:
        return self.read(0, self.size)

    def __eq__(self, other) -> bool:
        if isinstance(other, RunFile):
            return bytes(self) == bytes(other)
        if isinstance(other, (bytes, bytearray, memoryview)):
            return len(other) == self.size and bytes(self) == bytes(other)
        return NotImplemented

    __hash__ = None

    def __getitem__(self, sl):
        if not isinstance(sl, slice) or sl.step not in (None, 1):
            raise TypeError("RunFile supports [a:b] slices only")
        a, b, _ = sl.indices(self.size)
        return self.read(a, b)

    def read(self, a: int, b: int) -> bytes:
        """Bytes ``[a, b)`` (inside the file)."""
        if b <= a:
            return b""
        S, V = self.starts, self.vals
        i = bisect.bisect_right(S, a) - 1
        out = []
        n = len(S)
        while i < n and S[i] < b:
            e = S[i + 1] if i + 1 < n else self.size
            lo, hi = max(a, S[i]), min(b, e)
            if hi > lo:
                out.append(_BYTE[V[i]] * (hi - lo))
            i += 1
        return b"".join(out)

    def matches(self, data: bytes, a: int = 0) -> bool:
        """Whether ``data`` equals bytes ``[a, a + len(data))`` of the file.

        Compared run by run against cached 64 KiB patterns (``bytes.startswith`` at an
        offset: a memcmp, no allocation; building a 2 MiB file's bytes costs milliseconds of
        fresh-page faults)."""
        b = a + len(data)
        if b > self.size:
            return False
        step = _CHUNK
        sw = data.startswith
        for lo, hi, v in self.pieces(a, b):
            pat = _PATTERN.get(v)
            if pat is None:
                pat = _PATTERN[v] = _BYTE[v] * step
            pos, end = lo - a, hi - a
            while end - pos >= step:
                if not sw(pat, pos):
                    return False
                pos += step
            if end > pos and not sw(pat[: end - pos], pos):
                return False
        return True

    def pieces(self, a: int, b: int) -> list:
        """``(start, end, byte)`` of the runs over ``[a, b)``, clipped to it."""
        if b <= a:
            return []
        S, V = self.starts, self.vals
        i = bisect.bisect_right(S, a) - 1
        out = []
        n = len(S)
        while i < n and S[i] < b:
            e = S[i + 1] if i + 1 < n else self.size
            lo, hi = max(a, S[i]), min(b, e)
            if hi > lo:
                out.append((lo, hi, V[i]))
            i += 1
        return out

    def resize(self, size: int) -> None:
        """Truncate, or extend with zeros."""
        S, V = self.starts, self.vals
        if size < self.size:
            k = bisect.bisect_left(S, size)  # runs starting at or past the new EOF go
            del S[k:]
            del V[k:]
        elif size > self.size:
            if not V or V[-1] != 0:
                S.append(self.size)
                V.append(0)
        self.size = size

    def assign(self, a: int, b: int, byte: int) -> None:
        """Bytes ``[a, b)`` (inside the file) := ``byte``."""
        b = min(b, self.size)
        if b <= a:
            return
        byte &= 0xFF
        S, V = self.starts, self.vals
        i = bisect.bisect_right(S, a) - 1
        j = bisect.bisect_right(S, b - 1) - 1  # run holding byte b - 1
        ins_s, ins_v = [a], [byte]
        if b < self.size and (j + 1 >= len(S) or S[j + 1] != b):
            ins_s.append(b)
            ins_v.append(V[j])
        lo = i if S[i] == a else i + 1
        S[lo : j + 1] = ins_s
        V[lo : j + 1] = ins_v
        # coalesce equal neighbours around the edit
        k = min(lo + len(ins_s), len(S) - 1)
        while k >= max(lo, 1):
            if V[k] == V[k - 1]:
                del S[k]
                del V[k]
            k -= 1


_BYTE = [bytes((b,)) for b in range(256)]
_CHUNK = 1 << 16
_PATTERN: dict = {}  # byte -> _CHUNK bytes of it (read-only cache)


class ContentModel:
    """Every file's bytes as constant-byte runs (:class:`RunFile`; semantics of write(2) and
    fallocate only: no blocks, no sharing, no CoW).

    Sizes are bytes. Bytes past EOF are never kept: growing a file exposes zeros, as the
    filesystem's zeroing of the old EOF block guarantees.
    """

    def __init__(self):
        self.files: dict[str, RunFile] = {}

    # -------------------------------------------------------------- helpers
    def _f(self, path: str) -> RunFile:
        f = self.files.get(path)
        if f is None:
            f = self.files[path] = RunFile()
        return f

    @staticmethod
    def _grow(buf: RunFile, size: int) -> None:
        if size > buf.size:
            buf.resize(size)

    # -------------------------------------------------------------- operations
    def create(self, path: str) -> None:
        """Create ``path`` empty if it does not exist."""
        self._f(path)

    def unlink(self, path: str) -> None:
        """Remove ``path`` (nothing if absent)."""
        self.files.pop(path, None)

    def pwrite(self, path: str, off: int, length: int, byte: int) -> None:
        """Write ``length`` bytes of value ``byte`` at ``off``, extending the file."""
        buf = self._f(path)
        if length <= 0:
            return
        self._grow(buf, off + length)
        buf.assign(off, off + length, byte)

    def store(self, path: str, off: int, length: int, byte: int) -> None:
        """A store through a mapping: inside EOF only (never extends)."""
        self._f(path).assign(off, off + length, byte)

    def truncate(self, path: str, size: int) -> None:
        """Set the size of ``path`` to ``size`` (new bytes read as zero)."""
        self._f(path).resize(size)

    def zero(self, path: str, off: int, length: int, *, extend: bool) -> None:
        """punch (extend=False) and zero range (extend unless -k): zeros inside EOF."""
        buf = self._f(path)
        buf.assign(off, off + length, 0)
        if extend:
            self._grow(buf, off + length)

    def extend_to(self, path: str, size: int) -> None:
        """fallocate-style size extension (unshare without -k)."""
        self._grow(self._f(path), size)

    def clone(self, dst: str, src: str, src_off: int, dst_off: int, length: int) -> None:
        """FICLONERANGE that succeeded; ``length`` 0 = to the source EOF."""
        s = self.files[src]
        n = s.size - src_off if length == 0 else min(length, s.size - src_off)
        if n <= 0:
            return
        pieces = s.pieces(src_off, src_off + n)
        d = self._f(dst)
        self._grow(d, dst_off + n)
        for a, b, v in pieces:
            d.assign(a - src_off + dst_off, b - src_off + dst_off, v)

    # -------------------------------------------------------------- views
    def size(self, path: str) -> int:
        """The size of ``path`` in bytes."""
        return self.files[path].size

    def paths(self) -> list[str]:
        """All file names, sorted."""
        return sorted(self.files)

    def copy(self) -> "ContentModel":
        """An independent copy of the model."""
        c = ContentModel()
        for k, v in self.files.items():
            f = RunFile()
            f.starts, f.vals, f.size = list(v.starts), list(v.vals), v.size
            c.files[k] = f
        return c


class BytesContentModel:
    """The same model as plain ``bytearray`` s (the obviously right one: the tests check
    :class:`ContentModel` against it)."""

    def __init__(self):
        self.files: dict[str, bytearray] = {}

    def _f(self, path: str) -> bytearray:
        return self.files.setdefault(path, bytearray())

    @staticmethod
    def _grow(buf: bytearray, size: int) -> None:
        if size > len(buf):
            buf.extend(bytes(size - len(buf)))

    def create(self, path: str) -> None:
        """Create ``path`` empty if it does not exist."""
        self._f(path)

    def unlink(self, path: str) -> None:
        """Remove ``path`` (nothing if absent)."""
        self.files.pop(path, None)

    def pwrite(self, path: str, off: int, length: int, byte: int) -> None:
        """Write ``length`` bytes of value ``byte`` at ``off``, extending the file."""
        buf = self._f(path)
        if length <= 0:
            return
        self._grow(buf, off + length)
        _fill(buf, off, off + length, byte)

    def store(self, path: str, off: int, length: int, byte: int) -> None:
        """Store ``byte`` through a mapping: only the bytes inside EOF change."""
        buf = self._f(path)
        end = min(off + length, len(buf))
        if end > off:
            _fill(buf, off, end, byte)

    def truncate(self, path: str, size: int) -> None:
        """Set the size of ``path`` to ``size`` (new bytes read as zero)."""
        buf = self._f(path)
        if size < len(buf):
            del buf[size:]
        else:
            self._grow(buf, size)

    def zero(self, path: str, off: int, length: int, *, extend: bool) -> None:
        """Punch (extend=False) or zero range (extend unless -k): zeros inside EOF."""
        buf = self._f(path)
        end = min(off + length, len(buf))
        if end > off:
            _fill(buf, off, end, 0)
        if extend:
            self._grow(buf, off + length)

    def extend_to(self, path: str, size: int) -> None:
        """Grow ``path`` to ``size`` bytes if it is shorter."""
        self._grow(self._f(path), size)

    def clone(self, dst: str, src: str, src_off: int, dst_off: int, length: int) -> None:
        """Reflink ``length`` bytes (0: to the source's EOF) of ``src`` into ``dst``."""
        s = self.files[src]
        n = len(s) - src_off if length == 0 else min(length, len(s) - src_off)
        if n <= 0:
            return
        data = bytes(s[src_off : src_off + n])
        d = self._f(dst)
        self._grow(d, dst_off + n)
        d[dst_off : dst_off + n] = data


class HuntModel:
    """What the invariants read beyond the DaxFS.

    Attributes
    ----------
    content : ContentModel or None
        The plain content model (None: ``data_integrity`` cannot be judged and holds).
    baseline_free : int or None
        Free blocks right after mkfs (None: the device size).
    prev_mapping, prev_index : ndarray of shape (npages,), int64, or None
        The memmap words before the last operation (for explanations).
    poison : MemoryFailureResult or None
        The result of the last operation when it was a memory failure.
    poison_truth : tuple or None
        ``(pfns, truth)``: the owners of the poisoned pfns the memory-failure checks derived
        after the last operation (shared by both; the session resets it before each check).
    """

    def __init__(self, content: ContentModel | None = None, baseline_free: int | None = None):
        self.content = content
        self.baseline_free = baseline_free
        self.prev_mapping: np.ndarray | None = None
        self.prev_index: np.ndarray | None = None
        self.poison = None
        self.poison_truth = None
        #: files ``data_integrity`` reads (None: every file)
        self.touched: list[str] | None = None

    def snapshot(self, dfs) -> None:
        """Remember the memmap words before an operation."""
        mm = dfs.mm
        if self.prev_mapping is None or self.prev_mapping.shape != mm.mapping.shape:
            self.prev_mapping = mm.mapping.copy()
            self.prev_index = mm.index.copy()
        else:
            np.copyto(self.prev_mapping, mm.mapping)
            np.copyto(self.prev_index, mm.index)
