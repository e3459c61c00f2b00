"""Block contents as interned run lists.

The content of one 4 KiB block is a tuple of byte runs ``((offset, length, byte), ...)``
covering the block, with adjacent equal bytes merged. Each distinct content is interned once
and named by a small int64 *content id*; id 0 is the all-zero block. File and device
structures store content ids only, so a multi-GiB file of pattern writes costs a few runs.
"""

from __future__ import annotations

from sim.constants import BLOCK_SIZE

__all__ = ["ContentStore", "ZERO_CID"]

#: Content id of an all-zero block.
ZERO_CID = 0


class ContentStore:
    """Interning table of block contents, with a bounded cache of their bytes.

    Parameters
    ----------
    block_size : int
        Bytes per block.
    cache_entries : int
        Maximum number of materialised block buffers kept.
    """

    def __init__(self, block_size: int = BLOCK_SIZE, cache_entries: int = 4096):
        self.block_size = block_size
        self._runs: list[tuple[tuple[int, int, int], ...]] = []
        self._ids: dict[tuple, int] = {}
        self._bytes: dict[int, bytes] = {}
        self._overlay: dict[tuple[int, int, int, int], int] = {}
        self._uniform: dict[int, int] = {}  # byte -> content id of a block full of it
        self._cache_entries = cache_entries
        self.intern(((0, block_size, 0),))

    def __len__(self) -> int:
        return len(self._runs)

    def intern(self, runs) -> int:
        """Content id of a run list (normalised: sorted, merged, covering the block)."""
        norm: list[tuple[int, int, int]] = []
        for off, ln, b in runs:
            if ln <= 0:
                continue
            if norm and norm[-1][2] == b and norm[-1][0] + norm[-1][1] == off:
                o, l0, _ = norm[-1]
                norm[-1] = (o, l0 + ln, b)
            else:
                norm.append((off, ln, b))
        key = tuple(norm)
        cid = self._ids.get(key)
        if cid is None:
            cid = len(self._runs)
            self._runs.append(key)
            self._ids[key] = cid
        return cid

    def uniform(self, byte: int) -> int:
        """Content id of a block filled with ``byte``."""
        cid = self._uniform.get(byte)
        if cid is None:
            cid = self._uniform[byte] = self.intern(((0, self.block_size, byte & 0xFF),))
        return cid

    def runs(self, cid: int) -> tuple[tuple[int, int, int], ...]:
        """Run list of a content id."""
        return self._runs[cid]

    def uniform_byte(self, cid: int) -> int | None:
        """The byte of a uniform block, or None."""
        r = self._runs[cid]
        return r[0][2] if len(r) == 1 else None

    def overlay(self, cid: int, a: int, b: int, byte: int) -> int:
        """Content id after writing ``byte`` over bytes ``[a, b)`` of block ``cid``."""
        if a <= 0 and b >= self.block_size:
            return self.uniform(byte)
        key = (cid, a, b, byte)
        out = self._overlay.get(key)
        if out is not None:
            return out
        new = []
        for off, ln, v in self._runs[cid]:
            e = off + ln
            if off < a:
                new.append((off, min(e, a) - off, v))
            if e > b:
                s = max(off, b)
                new.append((s, e - s, v))
        new.append((a, b - a, byte & 0xFF))
        new.sort()
        out = self.intern(new)
        if len(self._overlay) < 1 << 16:
            self._overlay[key] = out
        return out

    def is_zero(self, cid: int, a: int = 0, b: int | None = None) -> bool:
        """Whether bytes ``[a, b)`` of block ``cid`` are all zero."""
        if b is None:
            b = self.block_size
        for off, ln, v in self._runs[cid]:
            if v != 0 and off < b and off + ln > a:
                return False
        return True

    def data(self, cid: int) -> bytes:
        """The block's bytes (cached)."""
        d = self._bytes.get(cid)
        if d is None:
            d = b"".join(bytes([v]) * ln for _, ln, v in self._runs[cid])
            if len(self._bytes) >= self._cache_entries:
                self._bytes.pop(next(iter(self._bytes)))
            self._bytes[cid] = d
        return d

    def contains_byte(self, cid: int, byte: int, a: int = 0, b: int | None = None) -> bool:
        """Whether ``byte`` occurs in bytes ``[a, b)`` of block ``cid``."""
        if b is None:
            b = self.block_size
        return any(v == byte and off < b and off + ln > a for off, ln, v in self._runs[cid])
