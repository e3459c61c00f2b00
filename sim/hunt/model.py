"""The plain content model the hunt compares the filesystem against, and per-op snapshots.

:class:`ContentModel` keeps every file as a ``bytearray`` (no blocks, no sharing, no CoW): a
write to one file can only ever change that file's bytes. If the simulated reflink filesystem
ever disagrees with it, a write leaked into another file (or was lost), which is what the
``data_integrity`` invariant reports.

:class:`HuntModel` bundles what the invariants need beyond a :class:`~sim.dax.DaxFS`: the
content model, the free-block baseline, a snapshot of the memmap before the last operation
(for "state before / after" in explanations) and the last memory-failure result.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ContentModel", "HuntModel"]


def _fill(buf: bytearray, a: int, b: int, byte: int) -> None:
    """``buf[a:b] = byte`` without building a temporary bytes object."""
    view = np.frombuffer(buf, dtype=np.uint8)  # a byte store, not arithmetic
    view[a:b] = byte & 0xFF
    del view  # release the export so the bytearray can grow again


class ContentModel:
    """Every file's bytes, as plain byte arrays (semantics of write(2) and fallocate only).

    Sizes are bytes. Bytes past EOF are never kept: growing a file exposes zeros, as the
    filesystem's zeroing of the old EOF block guarantees.
    """

    def __init__(self):
        self.files: dict[str, bytearray] = {}

    # -------------------------------------------------------------- helpers
    def _f(self, path: str) -> bytearray:
        return self.files.setdefault(path, bytearray())

    @staticmethod
    def _grow(buf: bytearray, size: int) -> None:
        if size > len(buf):
            buf.extend(bytes(size - len(buf)))

    # -------------------------------------------------------------- operations
    def create(self, path: str) -> None:
        self._f(path)

    def unlink(self, path: str) -> None:
        self.files.pop(path, None)

    def pwrite(self, path: str, off: int, length: int, byte: int) -> None:
        buf = self._f(path)
        if length <= 0:
            return
        self._grow(buf, off + length)
        _fill(buf, off, off + length, byte)

    def store(self, path: str, off: int, length: int, byte: int) -> None:
        """A store through a mapping: inside EOF only (never extends)."""
        buf = self._f(path)
        end = min(off + length, len(buf))
        if end > off:
            _fill(buf, off, end, byte)

    def truncate(self, path: str, size: int) -> None:
        buf = self._f(path)
        if size < len(buf):
            del buf[size:]
        else:
            self._grow(buf, size)

    def zero(self, path: str, off: int, length: int, *, extend: bool) -> None:
        """punch (extend=False) and zero range (extend unless -k): zeros inside EOF."""
        buf = self._f(path)
        end = min(off + length, len(buf))
        if end > off:
            _fill(buf, off, end, 0)
        if extend:
            self._grow(buf, off + length)

    def extend_to(self, path: str, size: int) -> None:
        """fallocate-style size extension (unshare without -k)."""
        self._grow(self._f(path), size)

    def clone(self, dst: str, src: str, src_off: int, dst_off: int, length: int) -> None:
        """FICLONERANGE that succeeded; ``length`` 0 = to the source EOF."""
        s = self.files[src]
        n = len(s) - src_off if length == 0 else min(length, len(s) - src_off)
        if n <= 0:
            return
        data = bytes(s[src_off:src_off + n])
        d = self._f(dst)
        self._grow(d, dst_off + n)
        d[dst_off:dst_off + n] = data

    # -------------------------------------------------------------- views
    def size(self, path: str) -> int:
        return len(self.files[path])

    def paths(self) -> list[str]:
        return sorted(self.files)

    def copy(self) -> "ContentModel":
        c = ContentModel()
        c.files = {k: bytearray(v) for k, v in self.files.items()}
        return c


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
    """

    def __init__(self, content: ContentModel | None = None, baseline_free: int | None = None):
        self.content = content
        self.baseline_free = baseline_free
        self.prev_mapping: np.ndarray | None = None
        self.prev_index: np.ndarray | None = None
        self.poison = None
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
