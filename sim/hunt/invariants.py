"""The invariants ``daxsim hunt`` checks, vectorised over the memmap and the live DAX entries.

Seven invariants (:data:`INVARIANT_NAMES`) plus one *known limit* (:data:`LIMIT_NAMES`); each
check returns None or a :class:`Violation`. :func:`evaluate` works from a
:class:`~sim.dax.DaxFS` and an optional :class:`~sim.hunt.model.HuntModel`.

When each is checked (by :mod:`sim.hunt.search` through :meth:`Session.check`)
-----------------------------------------------------------------------------
Per op the checks are *incremental*; at quiescent points (before each episode's teardown,
with every file still there, and whenever no file is left) and in paranoid mode
(``hunt(..., paranoid=True)``, the tests' reference) every invariant is evaluated in full by
the functions below. The tests prove that the incremental search finds what the paranoid one
finds, after the same ops.

=========================  =====================================================================
association_truth          after every operation (the kernel holds the entry lock and xa_lock
                           around associate/disassociate, so the state is consistent between
                           file-level operations), on the pages the op touched
                           (:mod:`sim.hunt.incremental`: struct pages its work records name,
                           pages of DAX entries added or removed, folio blocks whose order
                           changed); a hit is re-derived by the full check
                           (:func:`check_association`); in full with no file left
nothing_left_behind        at quiescent points: after an operation that leaves no file
no_warnings                after every operation whose work records report a warning (raw
                           count > 0 at any WARN or BUG site, whichever sites the design
                           lists: ``MemMap.warning_total``; the latched WARN_ON_ONCE view is
                           reported alongside); in full at quiescent points
memory_failure             after every memory failure (``@hwpoison``): the rmap path
memory_failure_fallback    same moment: the ``page->mapping`` fallback (known limit, see below)
data_integrity             after every operation that can change data (not after mread,
                           munmap, @hwpoison): the size of the file it wrote, every byte of
                           the range it can have changed, and that the same files exist;
                           every byte of every file at quiescent points; the shrinker checks
                           every file after every op. Bytes are compared as constant-byte
                           runs (``FileSystem.byte_runs``, exactly what read(2) returns,
                           against the content model's runs: :func:`runs_match`); the bytes
                           are read only to name the first differing one. Loads too: every
                           PTE and PMD of a mapping of the file maps the block the file has
                           there (:func:`stale_mapping`; a MAP_SHARED mapping reads what
                           read(2) reads), which holds without a content model (a replayed
                           reproducer checks it)
refcount_conservation      at quiescent points: extent references vs refcount records and the
                           free count before the teardown; the free-count baseline once no
                           file is left (a whole-tree check, ``FileSystem.check_invariants``,
                           decided on the run maps' list forms for a small filesystem); after
                           the teardown :func:`check_all_empty` evaluates the other
                           invariants from one look at the clean state (no entry, no word,
                           no warning, no model file) and falls back to :func:`check_all`
no_sigbus                  after every mread/mwrite that got SIGBUS (the hunt's accesses stay
                           inside EOF, so every SIGBUS is a legal access refused: from v6.15
                           ``vmf_insert_folio_pmd()`` on an order-0 folio); in full at
                           quiescent points (DaxFS's ``pmd_sigbus`` count)
=========================  =====================================================================

Association truth: what "agrees" means per design
--------------------------------------------------
For every page let ``E(p)`` be the live real DAX entries ``(address_space, index)`` that map it
(zero and empty entries excluded; a PMD entry maps 512 pages at ``index + (p - pfn)``; stale
entries the <= v6.1 write paths leave behind count, because the kernel still holds them) and
``k = |E(p)|``. The design's page state must read:

* **single owner** (``single-owner``, v4.17-v5.19; also any design with neither a flag nor
  folios). Source: the code's own comment "TODO: for reflink+dax we need a way to associate a
  single page with multiple address_space instances" and ``WARN_ON_ONCE(page->mapping)``.
  k=0: ``(NULL, 0)``; k=1: ``(M, idx)`` of that entry; **k>=2: cannot agree** (the design
  cannot represent a second owner: violated).
* **flag + count** (``cow-index`` v6.0-6.1, ``page-share`` v6.2-6.14; any design with
  ``flag_sentinel``). Sources: seed commit 6061b69b9a55 ("page->mapping is no longer to used
  for rmap but for marking that this dax page is shared ... use page->index as refcount, and
  clear page->mapping to the initial state when page->index is decreased to 0"), and
  16900426586032 ("introduce page->share for fsdax in reflink mode": ``page->share`` counts the
  sharers, ``PAGE_MAPPING_DAX_SHARED`` marks them). k=0: ``(NULL, 0)``; k=1: ``(M, idx)`` or
  ``(FLAG, 1)``; k>=2: ``(FLAG, k)``.
* **folio share** (``folio-share`` v6.15+, ``folio-share-reset``; any design with ``folio``).
  Source: 38607c62b34b ``dax_folio_is_shared() := !folio->mapping && folio->share`` and the
  comment that a page "can be shared between files and still read not shared until it is
  mapped into a second address space". State per folio (an order-9 folio is one unit: a PMD
  entry is one folio; its tail pages must read (0, 0)); k = entries that map any page of the
  folio. k=0: Unowned ``(NULL, 0)``; k=1: Owned ``(M, idx)`` of that entry, or Shared(1);
  k>=2: Shared(k) = ``(NULL, k)``. A stale share word (``(NULL, idx)`` with no entry, the
  "phantom") reads as Shared(idx) and disagrees.

Memory failure
--------------
Truth for a poisoned page: the ``(file, offset)`` pairs of live entries mapping it whose file
block map still points at it (entries the filesystem no longer backs with that block are
stale bookkeeping, not users of the page). ``memory_failure`` (an invariant) is violated when
the **rmap** path (the filesystem's reverse map, rmapbt present) misses one of them.
``memory_failure_fallback`` applies the same test to the ``page->mapping`` fallback (no rmapbt,
``mf_generic_kill_procs``): it can name at most one owner and none on a flagged or Shared
page, so a miss there is a **known limit of the design**, not a simulator defect; it is
reported with status ``limit`` in its own column, never as a violation of the design.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim.constants import (
    DAX_EMPTY,
    DAX_PMD,
    DAX_SHIFT,
    DAX_ZERO_PAGE,
    PAGE_SIZE,
    PMD_ORDER,
)
from sim.constants import PMD_NR_PAGES as PMD_NPAGES
from sim.memmap.layout import BUG_SITES, FLAG_SENTINEL, PHANTOM_TAG

__all__ = [
    "INVARIANT_NAMES",
    "LIMIT_NAMES",
    "ALL_NAMES",
    "Violation",
    "evaluate",
    "check_all",
    "check_all_empty",
    "association_rule",
    "page_coverage",
    "describe_state",
    "runner_invariants",
    "runs_match",
    "stale_mapping",
]

INVARIANT_NAMES: tuple[str, ...] = (
    "association_truth",
    "nothing_left_behind",
    "no_warnings",
    "memory_failure",
    "data_integrity",
    "refcount_conservation",
    "no_sigbus",
)
#: Checks whose failure is a known limit of a design (status ``limit``, not ``violated``).
LIMIT_NAMES: tuple[str, ...] = ("memory_failure_fallback",)
ALL_NAMES: tuple[str, ...] = INVARIANT_NAMES + LIMIT_NAMES

_I64 = np.int64


@dataclass(frozen=True)
class Violation:
    """One broken invariant.

    Attributes
    ----------
    invariant : str
        Name from :data:`ALL_NAMES`.
    message : str
        One-line explanation.
    pfn : int
        The page (folio head for folio designs), -1 when the invariant is not about a page.
    before, after : tuple of (int, int) or None
        ``(mapping, index)`` words of that page before and after the operation (normalised:
        mapping 0 = NULL, -1 = the design's flag, >= 1 = an address_space id).
    expected : str
        What the page should read.
    op_index : int
        Index of the operation in the sequence (-1 when unknown); set by the search.
    limit : bool
        True for a known limit of the design (``memory_failure_fallback``).
    detail : dict
        Extra facts (warning sites, owners found / missed, ...).
    """

    invariant: str
    message: str
    pfn: int = -1
    before: tuple | None = None
    after: tuple | None = None
    expected: str = ""
    op_index: int = -1
    limit: bool = False
    detail: dict = field(default_factory=dict)

    def with_op(self, op_index: int) -> "Violation":
        """This violation attributed to the op at ``op_index``."""
        return Violation(
            self.invariant,
            self.message,
            self.pfn,
            self.before,
            self.after,
            self.expected,
            op_index,
            self.limit,
            self.detail,
        )


# ------------------------------------------------------------------------------ helpers
def association_rule(variant) -> str:
    """``"folio"``, ``"flag"`` or ``"single"``: which definition of "agrees" applies.

    A design may force one with a class attribute ``hunt_rule``.
    """
    rule = getattr(variant, "hunt_rule", None)
    if rule in ("folio", "flag", "single"):
        return rule
    if getattr(variant, "folio", False):
        return "folio"
    if getattr(variant, "flag_sentinel", False):
        return "flag"
    return "single"


def _norm_mapping(m: np.ndarray) -> np.ndarray:
    """Raw memmap mapping words with the folio kernels' internal phantom tag shown as NULL."""
    return np.where(m == PHANTOM_TAG, 0, m)


def _orders(mm) -> np.ndarray:
    """Folio order per 512-page block (int8, read-only ``MemMap.folio_orders``); zeros for
    designs without folios."""
    if not getattr(mm.variant, "folio", False):
        return np.zeros(max(1, -(-mm.npages // PMD_NPAGES)), dtype=np.int8)
    return mm.folio_orders


def page_coverage(entries: dict, npages: int):
    """Per page: how many live entries map it and, summed over them, mapping and index.

    Parameters
    ----------
    entries : dict of str to ndarray of shape (E,), int64
        ``mapping``, ``index``, ``pfn``, ``npages`` (as :meth:`DaxFS.entries` returns).
    npages : int
        Pages of the device.

    Returns
    -------
    k, msum, isum : ndarray of shape (npages,), int64
        Entry count per page; for pages with ``k == 1`` ``msum`` is the entry's mapping and
        ``isum`` the file index at which it maps the page.
    """
    pfn, n = entries["pfn"], entries["npages"]
    if pfn.shape[0] == 0:
        z = np.zeros(npages, _I64)
        return z, z.copy(), np.arange(npages, dtype=_I64)
    end = np.minimum(pfn + n, npages)
    pos = np.concatenate([pfn, end])
    k = np.bincount(
        pos, weights=np.concatenate([np.ones_like(pfn), -np.ones_like(pfn)]), minlength=npages + 1
    )
    # float64 sums of int64 ids and offsets below 2**53 are exact; back to int64 at once
    ms = np.bincount(
        pos, weights=np.concatenate([entries["mapping"], -entries["mapping"]]), minlength=npages + 1
    )
    d = entries["index"] - pfn
    off = np.bincount(pos, weights=np.concatenate([d, -d]), minlength=npages + 1)
    k = np.cumsum(k[:npages]).astype(_I64)
    ms = np.cumsum(ms[:npages]).astype(_I64)
    isum = np.cumsum(off[:npages]).astype(_I64) + np.arange(npages, dtype=_I64)
    return k, ms, isum


def _path(dfs, mid: int) -> str:
    for ino, a in dfs.spaces.items():
        if a.mid == mid:
            p = dfs.fs.path_of(ino)
            return p if p is not None else f"ino {ino} (unlinked)"
    p = dfs.fs.path_of(int(mid)) if int(mid) in dfs.fs.inodes else None
    return p if p is not None else f"ino {mid} (unlinked)"


def describe_state(dfs, rule: str, mapping: int, index: int, *, phantom: bool = False) -> str:
    """Human-readable page state: ``Owned(f1, index 3)``, ``(FLAG, 2)``, ``Shared(3)``."""
    mapping, index = int(mapping), int(index)
    flag = "COW" if dfs.rules.flag == "cow" else "SHARED"
    if mapping == 0 and index == 0:
        return "(NULL, 0) unowned"
    if mapping >= 1:
        return f"({_path(dfs, mapping)}, index {index}) owned"
    if mapping == FLAG_SENTINEL:
        return f"(PAGE_MAPPING_DAX_{flag}, count {index})"
    if rule == "folio":
        tag = " [stale word: phantom]" if phantom else ""
        return f"(NULL, share {index}) Shared({index}){tag}"
    return f"(mapping {mapping}, index {index})"


def _expected_text(dfs, rule: str, k: int, m1: int, i1: int) -> str:
    if k == 0:
        return "(NULL, 0): no entry maps it"
    if k == 1:
        own = f"({_path(dfs, m1)}, index {i1})"
        if rule == "single":
            return f"{own}: one entry maps it"
        if rule == "flag":
            return f"{own} or (FLAG, 1): one entry maps it"
        return f"Owned{own} or Shared(1): one entry maps it"
    if rule == "single":
        return f"{k} owners, which one page->mapping cannot hold"
    if rule == "flag":
        return f"(FLAG, {k}): {k} entries map it"
    return f"Shared({k}) = (NULL, {k}): {k} entries map it"


def _before_after(dfs, model, pfn: int):
    mm = dfs.mm
    after = (int(_norm_mapping(mm.mapping[pfn : pfn + 1])[0]), int(mm.index[pfn]))
    before = None
    if model is not None and getattr(model, "prev_mapping", None) is not None:
        before = (
            int(_norm_mapping(model.prev_mapping[pfn : pfn + 1])[0]),
            int(model.prev_index[pfn]),
        )
    return before, after


def _owners_text(dfs, ms_list) -> str:
    return ", ".join(f"({_path(dfs, m)}, {i})" for m, i in ms_list) or "none"


# ------------------------------------------------------------------------------ checks
def _sparse_coverage(entries: dict):
    """:func:`page_coverage` on the covered pages only: ``(pages, k, msum, isum)``."""
    pfn, n = entries["pfn"], entries["npages"]
    if pfn.shape[0] == 0:
        z = np.zeros(0, _I64)
        return z, z, z, z
    starts = np.cumsum(n) - n
    eid = np.repeat(np.arange(pfn.shape[0]), n)
    page = pfn[eid] + (np.arange(int(n.sum()), dtype=_I64) - starts[eid])
    o = np.argsort(page, kind="stable")
    page, eid = page[o], eid[o]
    uniq, first, cnt = np.unique(page, return_index=True, return_counts=True)
    ms = np.add.reduceat(entries["mapping"][eid], first)
    isum = np.add.reduceat(entries["index"][eid] + (page - pfn[eid]), first)
    return uniq, cnt.astype(_I64), ms.astype(_I64), isum.astype(_I64)


def _association_bad(dfs, e, rule):
    """Pages (folio heads) that disagree: ``(pages, bad, k, msum, isum)`` over the candidate
    pages only -- pages with a non-zero word, pages some entry maps, and order-9 heads --
    which is every page that can disagree (a page at (0, 0) with no entry agrees)."""
    mm = dfs.mm
    upages, ucnt, ums, uis = _sparse_coverage(e)
    cand = np.flatnonzero((mm.mapping != 0) | (mm.index != 0))
    orders = _orders(mm) if rule == "folio" else None
    big_blocks = np.flatnonzero(orders == PMD_ORDER) if orders is not None else np.zeros(0, _I64)
    heads = (big_blocks * PMD_NPAGES).astype(_I64)
    P = np.union1d(np.union1d(cand, upages), heads).astype(_I64)
    pos = np.searchsorted(upages, P)
    posc = np.minimum(pos, max(upages.shape[0] - 1, 0))
    hit = (
        (pos < upages.shape[0]) & (upages[posc] == P)
        if upages.shape[0]
        else np.zeros(P.shape[0], dtype=bool)
    )
    k = np.where(hit, ucnt[posc] if upages.shape[0] else 0, 0)
    ms = np.where(hit, ums[posc] if upages.shape[0] else 0, 0)
    isum = np.where(hit, uis[posc] if upages.shape[0] else 0, P)
    m = _norm_mapping(mm.mapping[P])
    i = mm.index[P]
    if rule == "folio":
        tail_bad = np.zeros(P.shape[0], dtype=bool)
        if big_blocks.shape[0]:
            # an order-9 folio is one unit: count the entries that map any of its pages
            nb = orders.shape[0]
            blk = e["pfn"] // PMD_NPAGES
            inbig = orders[blk] == PMD_ORDER if blk.shape[0] else np.zeros(0, dtype=bool)
            eb = blk[inbig]
            bk = np.bincount(eb, minlength=nb).astype(_I64)
            bm = np.zeros(nb, _I64)
            bi = np.zeros(nb, _I64)
            np.add.at(bm, eb, e["mapping"][inbig])
            np.add.at(bi, eb, e["index"][inbig])
            pb = P // PMD_NPAGES
            in_big = orders[pb] == PMD_ORDER
            is_head = in_big & (P % PMD_NPAGES == 0)
            is_tail = in_big & ~is_head
            k = np.where(is_head, bk[pb], np.where(is_tail, 0, k))
            ms = np.where(is_head, bm[pb], ms)
            isum = np.where(is_head, bi[pb], isum)
            tail_bad = is_tail & ((m != 0) | (i != 0))
            m = np.where(is_tail, 0, m)
            i = np.where(is_tail, 0, i)
        owned_ok = (m == ms) & (i == isum)
        shared_k = (m == 0) & (i == k)
        ok = np.where(k == 0, (m == 0) & (i == 0), np.where(k == 1, owned_ok | shared_k, shared_k))
        bad = ~ok | tail_bad
    elif rule == "flag":
        owned_ok = (m == ms) & (i == isum)
        flag_k = (m == FLAG_SENTINEL) & (i == k)
        bad = ~np.where(k == 0, (m == 0) & (i == 0), np.where(k == 1, owned_ok | flag_k, flag_k))
    else:
        bad = ~np.where(k == 0, (m == 0) & (i == 0), (k == 1) & (m == ms) & (i == isum))
    return P, bad, k, ms, isum


def check_association(dfs, model=None) -> Violation | None:
    """Association truth (see the module docstring for the per-design definition).

    Vectorised over the candidate pages (non-zero words, entry-mapped pages, order-9 heads),
    which on a device of N pages costs one pass over the memmap words plus work proportional
    to the pages in use.
    """
    mm = dfs.mm
    rule = association_rule(mm.variant)
    e = dfs.entries()
    if e["pfn"].shape[0] == 0 and not (mm.index.any() or mm.mapping.any()):
        return None  # no entry and every page at (NULL, 0): every page agrees
    P, bad, kk_, mm_, ii_ = _association_bad(dfs, e, rule)
    sel_bad = np.flatnonzero(bad)
    if sel_bad.size == 0:
        return None
    j = int(sel_bad[0])
    p = int(P[j])
    kp, m1, i1 = int(kk_[j]), int(mm_[j]), int(ii_[j])
    hits = P[sel_bad]
    before, after = _before_after(dfs, model, p)
    phantom = bool(mm.mapping[p] == PHANTOM_TAG)
    big_head = (
        rule == "folio" and p % PMD_NPAGES == 0 and int(_orders(mm)[p // PMD_NPAGES]) == PMD_ORDER
    )
    if big_head:  # an order-9 folio: the entries in its block
        sel = e["pfn"] // PMD_NPAGES == p // PMD_NPAGES
        owners = [(int(a), int(b)) for a, b in zip(e["mapping"][sel], e["index"][sel], strict=True)]
    else:
        sel = (e["pfn"] <= p) & (p < e["pfn"] + e["npages"])
        cols = zip(e["mapping"][sel], e["index"][sel], e["pfn"][sel], strict=True)
        owners = [(int(a), int(b) + (p - int(c))) for a, b, c in cols]
    exp = _expected_text(dfs, rule, kp, m1, i1)
    msg = (
        f"pfn {p} reads {describe_state(dfs, rule, *after, phantom=phantom)} but "
        f"{kp} live entr{'y maps' if kp == 1 else 'ies map'} it "
        f"[{_owners_text(dfs, owners)}]; expected {exp}"
    )
    return Violation(
        "association_truth",
        msg,
        p,
        before,
        after,
        exp,
        detail={"pages_disagreeing": int(hits.size), "entries": kp, "rule": rule},
    )


def check_nothing_left_behind(dfs, model=None) -> Violation | None:
    """With every file unlinked and gone (no orphan still open or mapped), every page is
    back at (NULL, 0)."""
    if dfs.fs.inodes:
        return None
    mm = dfs.mm
    if not (mm.index.any() or mm.mapping.any()):
        return None
    hits = np.flatnonzero((mm.mapping != 0) | (mm.index != 0))
    p = int(hits[0])
    rule = association_rule(mm.variant)
    before, after = _before_after(dfs, model, p)
    phantom = bool(mm.mapping[p] == PHANTOM_TAG)
    msg = (
        f"every file is unlinked but {hits.size} page(s) are not at (NULL, 0); first pfn {p} "
        f"reads {describe_state(dfs, rule, *after, phantom=phantom)} "
        f"(residue {mm.residue_pages()}, phantoms {mm.phantom_pages()})"
    )
    return Violation(
        "nothing_left_behind",
        msg,
        p,
        before,
        after,
        "(NULL, 0)",
        detail={
            "pages": int(hits.size),
            "residue": int(mm.residue_pages()),
            "phantoms": int(mm.phantom_pages()),
        },
    )


def _changed_page(dfs, model) -> int:
    if model is None or getattr(model, "prev_mapping", None) is None:
        return -1
    mm = dfs.mm
    ch = np.flatnonzero((mm.mapping != model.prev_mapping) | (mm.index != model.prev_index))
    return int(ch[0]) if ch.size else -1


def check_no_warnings(dfs, model=None) -> Violation | None:
    """No WARN or BUG site fired (raw count); the latched WARN_ON_ONCE view is reported too.

    A ``BUG_ON`` the model counts (:data:`~sim.memmap.layout.BUG_SITES`: clear_inode's at an
    eviction) is one of these sites, named as a BUG in the message."""
    w = dfs.mm.warnings
    total = sum(w.values())
    if total == 0:
        return None
    latched = dfs.mm.warnings_latched
    fired = {s: c for s, c in w.items() if c}
    p = _changed_page(dfs, model)
    before, after = _before_after(dfs, model, p) if p >= 0 else (None, None)
    bugs = ", ".join(f"{s} raw {c}" for s, c in fired.items() if s in BUG_SITES)
    sites = ", ".join(
        f"{s} raw {c} latched {latched.get(s, 0)}" for s, c in fired.items() if s not in BUG_SITES
    )
    parts = [f"WARN_ON_ONCE fired: {sites}"] if sites else []
    if bugs:  # the kernels' task dies there (clear_inode: the unmount never returns)
        parts.append(f"kernel BUG: {bugs}")
    msg = "; ".join(parts) + (f"; first page changed by the operation: pfn {p}" if p >= 0 else "")
    return Violation(
        "no_warnings",
        msg,
        p,
        before,
        after,
        "no warning on a legal sequence",
        detail={"raw": dict(w), "latched": dict(latched)},
    )


def check_no_sigbus(dfs, model=None) -> Violation | None:
    """No load or store inside a file's size got SIGBUS: a bus error on a legal access is a
    defect the process sees. The model's one cause: ``vmf_insert_folio_pmd()`` refusing a
    folio not of order 9 (``FaultRules.pmd_folio_order``, v6.15+), counted by DaxFS as
    ``pmd_sigbus``."""
    n = int(dfs.stats.get("pmd_sigbus", 0))
    if n == 0:
        return None
    return Violation(
        "no_sigbus",
        f"{n} PMD fault(s) inside EOF ended in SIGBUS: vmf_insert_folio_pmd() refused a folio "
        f"not of order 9 (dax_associate_entry's shared branch kept an order-0 folio)",
        expected="a legal load or store completes",
        detail={"pmd_sigbus": n},
    )


def _poison_truth(dfs, pfns):
    """Per poisoned pfn: the (ino, file_page) of live, non-stale entries mapping it.

    A walk of the in-core xarrays (a hunt episode holds a few dozen entries: cheaper than
    building :meth:`DaxFS.entries` arrays), each owner confirmed by the file's block map."""
    want = {int(p) for p in pfns}
    hits: dict = {p: [] for p in want}
    lo, hi = min(want), max(want)
    for a in dfs.spaces.values():
        for idx, value in a.xa.entries.items():
            if value & (DAX_ZERO_PAGE | DAX_EMPTY):
                continue
            pfn = value >> DAX_SHIFT
            n = PMD_NPAGES if value & DAX_PMD else 1
            if pfn > hi or pfn + n <= lo:
                continue
            for p in want:
                if pfn <= p < pfn + n:
                    hits[p].append((a.ino, idx + (p - pfn)))
    fs = dfs.fs
    inodes = fs.inodes
    out = {}
    for p, cand in hits.items():
        owners = {
            (ino, idx) for ino, idx in cand if ino in inodes and fs.iomap(ino, idx, 1)[1] == p
        }
        out[p] = sorted(owners)
    return out


def _poison_truth_cached(dfs, model, pfns):
    """:func:`_poison_truth`, kept in ``model.poison_truth`` when the model has that slot
    (:class:`~sim.hunt.model.HuntModel`: the session clears it before each round of checks,
    so both memory-failure checks of one operation walk the entries once)."""
    if model is None or not hasattr(model, "poison_truth"):
        return _poison_truth(dfs, pfns)
    got = model.poison_truth
    if got is not None and got[0] == pfns:
        return got[1]
    truth = _poison_truth(dfs, pfns)
    model.poison_truth = (list(pfns), truth)
    return truth


def _fallback_found(dfs, p: int):
    mm = dfs.mm
    mo = mm.page_owner(p)
    if mo < 1:
        return []
    head = mm.folio(p)[0]
    return [(dfs._ino_of(mo), mm.page(head)[1] + (p - head))]  # noqa: SLF001


def _check_mf(dfs, model, fallback: bool) -> Violation | None:
    res = getattr(model, "poison", None) if model is not None else None
    pfns = list(res.pfns) if res is not None else sorted(dfs.hwpoisoned)
    if not pfns:
        return None
    truth = _poison_truth_cached(dfs, model, pfns)
    rule = association_rule(dfs.mm.variant)
    for p in pfns:
        want = truth[int(p)]
        if not want:
            continue
        if fallback:
            found = res.fallback_owners.get(p) if res is not None else None
            found = _fallback_found(dfs, p) if found is None else found
        else:
            found = res.rmap_owners.get(p) if res is not None else None
            found = [(int(a), int(b)) for a, b in dfs.fs.rmap(p)] if found is None else found
        missed = [o for o in want if o not in set(map(tuple, found))]
        if not missed:
            continue
        after = (int(_norm_mapping(dfs.mm.mapping[p : p + 1])[0]), int(dfs.mm.index[p]))
        before, _ = _before_after(dfs, model, p)
        path = "page->mapping fallback" if fallback else "rmap path"
        name = lambda o: f"({dfs.fs.path_of(o[0]) or o[0]}, page {o[1]})"  # noqa: E731
        msg = (
            f"memory failure on pfn {p}: the {path} found "
            f"[{', '.join(map(name, found)) or 'none'}] but "
            f"[{', '.join(map(name, want))}] map it; missed "
            f"[{', '.join(map(name, missed))}] (page reads "
            f"{describe_state(dfs, rule, *after)})"
        )
        if fallback:
            msg += "; a known limit of the design without rmapbt, not a simulator defect"
        return Violation(
            "memory_failure_fallback" if fallback else "memory_failure",
            msg,
            int(p),
            before,
            after,
            "every owner found",
            limit=fallback,
            detail={"found": list(found), "truth": want, "missed": missed},
        )
    return None


def check_memory_failure(dfs, model=None) -> Violation | None:
    """The rmap path finds every (file, offset) whose live entry maps the poisoned page."""
    return _check_mf(dfs, model, False)


def check_memory_failure_fallback(dfs, model=None) -> Violation | None:
    """Same test for the ``page->mapping`` fallback (a miss is a known limit)."""
    return _check_mf(dfs, model, True)


#: ``runs_match`` asks the filesystem for at most this many bytes at a time: 64 blocks, the
#: range its list fast path serves (a 2 MiB range costs ~3x more in one vectorised call).
_RUN_WINDOW = 64 * PAGE_SIZE


def runs_match(fs, ino: int, want, a: int, b: int) -> bool:
    """Whether read(2) of bytes ``[a, b)`` of ``ino`` equals the content model's bytes there.

    Compares the filesystem's coalesced constant-byte runs (``byte_runs_list``, or
    ``byte_runs``: exactly what read(2) returns) with the model file's runs
    (:meth:`~sim.hunt.model.RunFile.pieces`, coalesced here too), window by window of at
    most :data:`_RUN_WINDOW` bytes, so no byte is materialised on either side. ``want``
    must be at least ``b`` bytes long; bytes past the file's EOF read as missing (a
    mismatch).
    """
    byte_runs = getattr(fs, "byte_runs_list", None)
    if byte_runs is None:
        arrays = fs.byte_runs

        def byte_runs(i, o, n):
            lens, vals = arrays(i, o, n)
            return lens.tolist(), vals.tolist()

    pieces = want.pieces
    lo = a
    while lo < b:
        hi = lo - lo % PAGE_SIZE + _RUN_WINDOW
        if hi > b:
            hi = b
        lens, vals = byte_runs(ino, lo, hi - lo)
        got = pieces(lo, hi)
        if len(got) == 1:  # one run (most ranges): no list building
            x, y, v = got[0]
            if len(lens) != 1 or vals[0] != v or lens[0] != y - x:
                return False
        else:
            ln: list = []
            vs: list = []
            for x, y, v in got:
                if vs and vs[-1] == v:
                    ln[-1] += y - x
                else:
                    ln.append(y - x)
                    vs.append(v)
            if not (vs == vals and ln == lens):
                return False
        lo = hi
    return True


def stale_mapping(dfs, inos=None):
    """The first page a mapping maps somewhere else than the block its file has there, with
    other bytes in it.

    A PTE or PMD must map the file's current block (the zero page over a hole or an unwritten
    extent): then loads through the ``MAP_SHARED`` mapping read what read(2) reads. 6.0-6.1
    break it (the 6.0 data corruption): a write(2) that CoWs a mapped shared block leaves the
    PTE on the old block (``FaultRules.invalidate_remapped`` False), and the mapping reads
    that block whoever owns it later. A page mapped elsewhere whose block holds the same
    4 KiB as the file's reads the same bytes, which no load can tell: not reported.

    Parameters
    ----------
    dfs : sim.dax.DaxFS
    inos : iterable of int, optional
        Only the mappings of these inodes (default: every mapping).

    Returns
    -------
    tuple of (int, int, int, int) or None
        ``(vid, file page, mapped pfn, the file's pfn)`` (pfn -1: the zero page / none).
    """
    from sim.fs import WRITTEN

    fs = dfs.fs
    want = None if inos is None else set(inos)
    zero = fs.contents.uniform(0)

    def differ(pfn: int, cur: int) -> bool:
        a = fs.block_content_id(pfn) if pfn >= 0 else zero
        return a != (fs.block_content_id(cur) if cur >= 0 else zero)

    for vid, vma in sorted(dfs.vmas.items()):
        if want is not None and vma.ino not in want:
            continue
        if not (vma.ptes or vma.pmds) or fs.path_of(vma.ino) is None:
            continue
        for idx, (pfn, _w) in sorted(vma.ptes.items()):
            st, pb, _n, _sh = fs.iomap(vma.ino, idx, 1)
            cur = pb if st == WRITTEN else -1
            if pfn != cur and differ(pfn, cur):
                return vid, idx, pfn, cur
        for c, (pfn, _w) in sorted(vma.pmds.items()):
            st, pb, n, _sh = fs.iomap(vma.ino, c, PMD_NPAGES)
            if n == PMD_NPAGES and (pb == pfn if st == WRITTEN else pfn < 0):
                continue
            for i in range(PMD_NPAGES):  # the first page that differs
                st, pb, _n, _sh = fs.iomap(vma.ino, c + i, 1)
                cur = pb if st == WRITTEN else -1
                mapped = pfn + i if pfn >= 0 else -1
                if mapped != cur and differ(mapped, cur):
                    return vid, c + i, mapped, cur
    return None


def _check_loads(dfs, inos=None) -> Violation | None:
    """:func:`stale_mapping` as a ``data_integrity`` violation."""
    hit = stale_mapping(dfs, inos)
    if hit is None:
        return None
    vid, idx, pfn, cur = hit
    ino = dfs.vmas[vid].ino
    path = dfs.fs.path_of(ino)
    old = f"pfn {pfn}" if pfn >= 0 else "the zero page"
    msg = (
        f"{path}: mapping {vid} maps file block {idx} to {old}, the file has "
        f"{'pfn ' + str(cur) if cur >= 0 else 'no block'} there: a load reads other bytes "
        f"than read(2)"
    )
    return Violation(
        "data_integrity",
        msg,
        pfn if pfn >= 0 else -1,
        detail={"path": path, "offset": idx * PAGE_SIZE, "stale_mapping": vid},
    )


def check_data_integrity(dfs, model=None) -> Violation | None:
    """Every file reads what the plain content model holds (no write leaks between files),
    and every mapping maps its file's blocks (:func:`stale_mapping`; also without a model)."""
    cm = getattr(model, "content", None) if model is not None else None
    if cm is None:
        return _check_loads(dfs)
    fs = dfs.fs
    live = set(fs.paths())
    only = getattr(model, "touched", None)
    for path in cm.paths() if only is None else [p for p in only if p in cm.files]:
        if path not in live:
            return Violation("data_integrity", f"{path} exists in the model but not in the fs")
        ino = fs.lookup(path)
        want = cm.files[path]
        if fs.size(ino) != len(want):
            return Violation(
                "data_integrity",
                f"{path}: size {fs.size(ino)}, model {len(want)}",
                detail={"path": path},
            )
        if hasattr(want, "pieces"):
            same = runs_match(fs, ino, want, 0, len(want))
            if not same:  # the message names the first differing byte: read(2) it
                got = fs.pread(ino, 0, len(want))
                same = want.matches(got)
        else:
            got = fs.pread(ino, 0, len(want)) if want else b""
            same = got == want
        if not same:
            a = np.frombuffer(got, np.uint8)
            b = np.frombuffer(bytes(want), np.uint8)
            off = int(np.flatnonzero(a != b)[0])
            _f, _n, pb, _st, _c = fs.bmap_arrays(ino, off // PAGE_SIZE, 1)
            p = int(pb[0]) if pb.shape[0] else -1
            msg = (
                f"{path} byte {off} reads 0x{a[off]:02x}, model 0x{b[off]:02x} "
                f"(file block {off // PAGE_SIZE}, pfn {p})"
            )
            return Violation("data_integrity", msg, p, detail={"path": path, "offset": off})
    for path in sorted(live - set(cm.paths())):
        return Violation("data_integrity", f"{path} exists in the fs but not in the model")
    if only is not None:
        return _check_loads(dfs, [fs.lookup(p) for p in only if p in live])
    return _check_loads(dfs)


def check_refcount_conservation(dfs, model=None) -> Violation | None:
    """Block refcounts equal the number of extent references; free count back to baseline
    once no file is left (no name and no orphan: an unlinked inode still open or mapped keeps
    its blocks until ``xfs_inactive``)."""
    fs = dfs.fs
    try:
        fs.check_invariants()
    except AssertionError as exc:
        return Violation(
            "refcount_conservation", f"refcount records disagree with extent references: {exc}"
        )
    if not fs.inodes:
        base = getattr(model, "baseline_free", None) if model is not None else None
        base = fs.nblocks if base is None else base
        free = fs.free_blocks()
        if free != base:
            return Violation(
                "refcount_conservation",
                f"every file unlinked but {free} blocks "
                f"free, baseline {base} ({base - free} leaked)",
                detail={"free": free, "baseline": base},
            )
    return None


_CHECKS = {
    "association_truth": check_association,
    "nothing_left_behind": check_nothing_left_behind,
    "no_warnings": check_no_warnings,
    "memory_failure": check_memory_failure,
    "memory_failure_fallback": check_memory_failure_fallback,
    "data_integrity": check_data_integrity,
    "refcount_conservation": check_refcount_conservation,
    "no_sigbus": check_no_sigbus,
}


def evaluate(name: str, dfs, model=None) -> Violation | None:
    """Evaluate one invariant on a DaxFS.

    Parameters
    ----------
    name : str
        One of :data:`ALL_NAMES`.
    dfs : sim.dax.DaxFS
    model : HuntModel, optional
        Content model, baseline, snapshot before the last operation and last memory failure.
        Without it ``data_integrity`` holds trivially, explanations have no "before", and the
        memory-failure checks probe every page poisoned so far (``dfs.hwpoisoned``) against
        the current state.

    Returns
    -------
    Violation or None

    Raises
    ------
    KeyError
        For an unknown name.
    """
    return _CHECKS[name](dfs, model)


def check_all(dfs, model, names, *, poisoned: bool) -> list[Violation]:
    """Evaluate ``names`` after one operation (memory-failure checks only when ``poisoned``)."""
    out = []
    for n in names:
        if n.startswith("memory_failure") and not poisoned:
            continue
        v = _CHECKS[n](dfs, model)
        if v is not None:
            out.append(v)
    return out


def check_all_empty(dfs, model, names, *, poisoned: bool) -> list[Violation]:
    """:func:`check_all` for a filesystem with no file left (the quiescent point after an
    episode's teardown), the same list, with a fast path for the clean state.

    With no file, every invariant but ``refcount_conservation`` holds exactly when no live
    DAX entry exists, every memmap word is (0, 0), no warning was counted and the content
    model holds no file (then ``association_truth``, ``nothing_left_behind``,
    ``no_warnings`` and ``data_integrity`` return None); ``refcount_conservation`` is
    evaluated as always (on an empty filesystem it is a few µs: see
    ``FileSystem.check_invariants``). Anything else -- a word left behind, an entry, a
    warning, a model file, a memory failure to check -- runs :func:`check_all` itself,
    which names the violation.
    """
    fs = dfs.fs
    cm = getattr(model, "content", None) if model is not None else None
    mm = dfs.mm
    clean = (
        not fs.inodes
        and not (poisoned and any(n.startswith("memory_failure") for n in names))
        and (cm is None or not cm.files)
        and all(not a.xa.entries for a in dfs.spaces.values())
        and mm.warning_total() == 0
        and not dfs.stats.get("pmd_sigbus", 0)
        and not (np.count_nonzero(mm.index) or np.count_nonzero(mm.mapping))
    )
    if not clean:
        return check_all(dfs, model, names, poisoned=poisoned)
    if "refcount_conservation" in names:
        v = check_refcount_conservation(dfs, model)
        if v is not None:
            return [v]
    return []


def runner_invariants() -> dict:
    """The invariants ``@expect_invariant NAME`` may name in a replayed reproducer.

    The xfs_io runner's own (:data:`sim.xfsio.runner.INVARIANTS`, which keep their function
    where the names meet) and every hunt invariant, each evaluated on ``runner.dax`` with the
    runner's last memory failure (``runner.last_poison``).  Pass it as the runner's
    ``invariants``.

    Returns
    -------
    dict
        A new dict of name to ``fn(runner) -> bool`` (True: the invariant holds).
    """
    from sim.xfsio.runner import INVARIANTS

    invariants = dict(INVARIANTS)

    def make(name):
        def fn(runner) -> bool:
            model = HuntModelLite(getattr(runner, "last_poison", None))
            return evaluate(name, runner.dax, model) is None

        fn.__name__ = f"hunt_{name}"
        return fn

    for n in ALL_NAMES:
        invariants.setdefault(n, make(n))
    return invariants


class HuntModelLite:
    """The part of :class:`~sim.hunt.model.HuntModel` an xfs_io replay can supply."""

    content = None
    baseline_free = None
    prev_mapping = None
    prev_index = None

    def __init__(self, last_poison=None):
        self.poison = last_poison[2] if last_poison else None
