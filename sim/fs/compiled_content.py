"""The hunt's content model as numba kernels over flat arrays.

The exact behaviour of :class:`sim.hunt.model.BytesContentModel` (the bytes reference of
:class:`~sim.hunt.model.ContentModel`: write(2) and fallocate semantics only, no blocks, no
sharing, no CoW) for files named by *slot*: slot ``k`` is the path ``f"f{k}"``.

A file is ``exists[k]`` (0/1), ``size[k]`` bytes and the first ``size[k]`` bytes of its
pages, kept as page descriptors (:mod:`sim.fs.compiled_pages`: ``pu[k, i]`` the byte of a
uniform page ``i``, or -1 and its bytes in ``data[k, i]``), so writing, zeroing and copying
whole pages of one byte costs a word per page. Pages are not cleared when a file shrinks, is
unlinked or the state is reset; instead every growth (``pwrite`` / ``truncate`` / ``zero``
with extend / ``extend_to`` / ``clone`` past EOF) zeroes the bytes between the old and the
new size, exactly as ``BytesContentModel`` extends its ``bytearray`` with zeros, so a stale
byte past a file's size can never be observed.

Every operation, like the Python one, creates the file when it does not exist (``clone``
creates its destination only when it copies at least one byte). A size above the row
capacity (``scal[1]`` bytes) is not representable: the operation then changes nothing, sets
the overflow flag ``scal[0] = 1`` and returns -1 (the engine falls back to Python for the
episode). Otherwise operations return 0. Offsets and lengths are the hunt's: non-negative.
"""

from __future__ import annotations

import numpy as np
from numba.experimental import structref

from sim.fs.compiled_pages import PAGE, pg_copy, pg_copy_part, pg_fill, pg_get
from sim.fs.compiled_state import StateType, state_class
from sim.jit import njit

__all__ = [
    "ContentState",
    "content_new",
    "content_reset",
    "cm_create",
    "cm_unlink",
    "cm_pwrite",
    "cm_store",
    "cm_truncate",
    "cm_zero",
    "cm_extend_to",
    "cm_clone",
    "cm_equal",
    "cm_bytes",
    "cm_page",
    "OVERFLOW",
]

#: Index in ``ContentState.scal`` of the overflow flag.
OVERFLOW = 0


@structref.register
class ContentStateType(StateType):
    """numba type of :class:`ContentState`."""


ContentState = state_class(
    "ContentState",
    (
        "exists",
        "size",
        "pu",
        "data",
        "scal",
    ),
    ContentStateType,
    __name__,
    """Arrays of the content model (a record passed to every kernel).

    Attributes
    ----------
    exists : ndarray of shape (nslots,), int64
        1 when file ``f{k}`` exists.
    size : ndarray of shape (nslots,), int64
        Its size in bytes (0 when it does not exist).
    pu : ndarray of shape (nslots, cap_pages), int64
        Page descriptors (uniform byte, or -1: the bytes are in ``data``).
    data : ndarray of shape (nslots, cap_pages, 4096), uint8
        Bytes of the mixed pages (past the file's size: stale, never read).
    scal : ndarray of shape (4,), int64
        ``scal[0]``: overflow flag (a size above the capacity was asked for); ``scal[1]``:
        the capacity in bytes.
    """,
)


def content_new(nslots: int, cap_bytes: int = 8 << 20) -> ContentState:
    """A content model with ``nslots`` file slots of at most ``cap_bytes`` bytes, no file.

    Parameters
    ----------
    nslots : int
        Number of files (slot ``k`` is path ``f{k}``).
    cap_bytes : int
        Largest representable file size (the rows are allocated lazily by the OS: pages
        never written as bytes cost nothing).

    Returns
    -------
    ContentState
    """
    nslots = int(nslots)
    cap_bytes = int(cap_bytes)
    if nslots < 1 or cap_bytes < 0:
        raise ValueError(f"bad content model shape ({nslots}, {cap_bytes})")
    npg = max(1, -(-cap_bytes // PAGE))
    scal = np.zeros(4, np.int64)
    scal[1] = cap_bytes
    return ContentState(
        np.zeros(nslots, np.int64),
        np.zeros(nslots, np.int64),
        np.zeros((nslots, npg), np.int64),
        np.zeros((nslots, npg, PAGE), np.uint8),
        scal,
    )


@njit(cache=True)
def content_reset(st):  # pragma: no cover - compiled
    """Forget every file and clear the overflow flag (pages are left as they are: growth
    zeroes).

    Parameters
    ----------
    st : ContentState
    """
    st.exists[:] = 0
    st.size[:] = 0
    st.scal[0] = 0


@njit(cache=True)
def _fill(st, slot, a, b, v):  # pragma: no cover - compiled
    """Bytes ``[a, b)`` of file ``slot`` := ``v`` (inside the capacity)."""
    if b <= a:
        return
    u = st.pu[slot]
    d = st.data[slot]
    for pg in range(a // PAGE, (b - 1) // PAGE + 1):
        base = pg * PAGE
        pg_fill(u, d, pg, max(a, base) - base, min(b, base + PAGE) - base, v)


@njit(cache=True)
def _grow(st, slot, new):  # pragma: no cover - compiled
    """Extend file ``slot`` with zeros to ``new`` bytes (no-op when not larger; the caller
    checked the capacity)."""
    old = st.size[slot]
    if new > old:
        _fill(st, slot, old, new, 0)
        st.size[slot] = new


@njit(cache=True)
def _over(st, new):  # pragma: no cover - compiled
    """True (and the overflow flag set) when ``new`` bytes exceed the capacity."""
    if new > st.scal[1]:
        st.scal[0] = 1
        return True
    return False


@njit(cache=True)
def _touch(st, slot):  # pragma: no cover - compiled
    """Create file ``slot`` (empty) unless it exists (``BytesContentModel._f``)."""
    if st.exists[slot] == 0:
        st.exists[slot] = 1
        st.size[slot] = 0


@njit(cache=True)
def cm_create(st, slot):  # pragma: no cover - compiled
    """Create file ``slot`` (empty) unless it exists.

    Returns
    -------
    int
        0.
    """
    _touch(st, slot)
    return 0


@njit(cache=True)
def cm_unlink(st, slot):  # pragma: no cover - compiled
    """Remove file ``slot`` (no-op when absent).

    Returns
    -------
    int
        0.
    """
    st.exists[slot] = 0
    st.size[slot] = 0
    return 0


@njit(cache=True)
def cm_pwrite(st, slot, off, length, byte):  # pragma: no cover - compiled
    """write(2) of ``length`` bytes of ``byte`` at ``off`` (extends the file; creates it).

    Returns
    -------
    int
        0, or -1 when ``off + length`` exceeds the capacity (nothing changed, flag set).
    """
    if length > 0 and _over(st, off + length):
        return -1
    _touch(st, slot)
    if length <= 0:
        return 0
    _grow(st, slot, off + length)
    _fill(st, slot, off, off + length, byte)
    return 0


@njit(cache=True)
def cm_store(st, slot, off, length, byte):  # pragma: no cover - compiled
    """A store through a mapping: bytes ``[off, off + length)`` inside EOF := ``byte``
    (never extends; creates the file).

    Returns
    -------
    int
        0.
    """
    _touch(st, slot)
    end = min(off + length, st.size[slot])
    if end > off:
        _fill(st, slot, off, end, byte)
    return 0


@njit(cache=True)
def cm_truncate(st, slot, size):  # pragma: no cover - compiled
    """Set the size of file ``slot`` to ``size`` (growth exposes zeros; creates the file).

    Returns
    -------
    int
        0, or -1 when ``size`` exceeds the capacity (nothing changed, flag set).
    """
    if _over(st, size):
        return -1
    _touch(st, slot)
    if size < st.size[slot]:
        st.size[slot] = size
    else:
        _grow(st, slot, size)
    return 0


@njit(cache=True)
def cm_zero(st, slot, off, length, extend):  # pragma: no cover - compiled
    """punch (``extend`` false) and zero range (``extend`` true unless ``-k``): zeros over
    ``[off, off + length)`` inside EOF, then with ``extend`` the size grows to
    ``off + length``. Creates the file.

    Returns
    -------
    int
        0, or -1 when extending past the capacity (nothing changed, flag set).
    """
    ext = extend != 0
    if ext and _over(st, off + length):
        return -1
    _touch(st, slot)
    end = min(off + length, st.size[slot])
    if end > off:
        _fill(st, slot, off, end, 0)
    if ext:
        _grow(st, slot, off + length)
    return 0


@njit(cache=True)
def cm_extend_to(st, slot, size):  # pragma: no cover - compiled
    """fallocate-style size extension to ``size`` (never shrinks; creates the file).

    Returns
    -------
    int
        0, or -1 when ``size`` exceeds the capacity (nothing changed, flag set).
    """
    if _over(st, size):
        return -1
    _touch(st, slot)
    _grow(st, slot, size)
    return 0


@njit(cache=True)
def _copy_page_piece(st, dst, d, src, s, n, tmp_u, tmp_d):  # pragma: no cover - compiled
    """Bytes ``[d, d + n)`` of ``dst`` := bytes ``[s, s + n)`` of ``src`` with both inside
    one page each (through a scratch row when both are the same page)."""
    pd, a = d // PAGE, d % PAGE
    ps, b = s // PAGE, s % PAGE
    if dst == src and pd == ps:
        pg_copy(tmp_u, tmp_d, 0, st.pu[src], st.data[src], ps)
        pg_copy_part(st.pu[dst], st.data[dst], pd, a, tmp_u, tmp_d, 0, b, n)
    else:
        pg_copy_part(st.pu[dst], st.data[dst], pd, a, st.pu[src], st.data[src], ps, b, n)


@njit(cache=True)
def cm_clone(st, dst, src, src_off, dst_off, length):  # pragma: no cover - compiled
    """FICLONERANGE that succeeded: ``length`` bytes (0: to the source EOF; clipped to it)
    of ``src`` from ``src_off`` copied to ``dst`` at ``dst_off`` (extending it; ``dst`` is
    created only when at least one byte is copied). ``src == dst`` copies as memmove does.

    Returns
    -------
    int
        0; -1 when ``dst_off + n`` exceeds the capacity (nothing changed, flag set); -2 when
        ``src`` does not exist (the Python model raises KeyError; nothing changed).
    """
    if st.exists[src] == 0:
        return -2
    ssize = st.size[src]
    n = ssize - src_off if length == 0 else min(length, ssize - src_off)
    if n <= 0:
        return 0
    if _over(st, dst_off + n):
        return -1
    _touch(st, dst)
    _grow(st, dst, dst_off + n)  # beyond the old EOF: never overlaps the source bytes
    tmp_u = np.zeros(1, np.int64)
    tmp_d = np.zeros((1, PAGE), np.uint8)
    # pieces that stay inside one page on both sides, walked backwards when the destination
    # lies after the source in the same file (memmove)
    backward = dst == src and dst_off > src_off
    pos = n if backward else 0
    while (pos > 0) if backward else (pos < n):
        if backward:
            e = pos
            d_in = (dst_off + e - 1) % PAGE + 1
            s_in = (src_off + e - 1) % PAGE + 1
            k = min(e, d_in, s_in)
            _copy_page_piece(st, dst, dst_off + e - k, src, src_off + e - k, k, tmp_u, tmp_d)
            pos -= k
        else:
            d_room = PAGE - (dst_off + pos) % PAGE
            s_room = PAGE - (src_off + pos) % PAGE
            k = min(n - pos, d_room, s_room)
            _copy_page_piece(st, dst, dst_off + pos, src, src_off + pos, k, tmp_u, tmp_d)
            pos += k
    return 0


@njit(cache=True)
def cm_page(st, slot, pg):  # pragma: no cover - compiled
    """Descriptor of page ``pg`` of file ``slot`` (uniform byte, or -1: bytes)."""
    return st.pu[slot, pg]


@njit(cache=True)
def cm_equal(st, slot, off, length, other):  # pragma: no cover - compiled
    """Whether bytes ``[off, off + length)`` of file ``slot`` equal ``other[:length]``.

    False when the file does not exist, the range is not inside EOF or ``other`` is shorter
    than ``length`` (``RunFile.matches``).

    Parameters
    ----------
    st : ContentState
    slot, off, length : int
    other : ndarray of uint8

    Returns
    -------
    bool
    """
    if st.exists[slot] == 0 or off < 0 or length < 0:
        return False
    if off + length > st.size[slot] or other.shape[0] < length:
        return False
    u = st.pu[slot]
    d = st.data[slot]
    for i in range(length):
        j = off + i
        if pg_get(u, d, j // PAGE, j % PAGE) != other[i]:
            return False
    return True


def cm_bytes(st: ContentState, slot: int) -> bytes | None:
    """The bytes of file ``slot`` (None when it does not exist); plain Python (tests)."""
    if not st.exists[slot]:
        return None
    n = int(st.size[slot])
    out = bytearray()
    for pg in range(-(-n // PAGE)):
        v = int(st.pu[slot, pg])
        k = min(PAGE, n - pg * PAGE)
        out += bytes([v]) * k if v >= 0 else st.data[slot, pg, :k].tobytes()
    return bytes(out)
