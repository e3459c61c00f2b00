"""The compiled DAX twin is DaxFS state by state.

The same random operation sequence (PTE and PMD read and write faults, loads and stores
through mappings, shared extents by reflink and dedupe, CoW by write faults and write(2),
truncate, punch, zero, unshare, memory failure, unlink, munmap) runs on :class:`sim.dax.DaxFS`
over the reference filesystem and on the compiled twin over the compiled filesystem, for
every built-in design. After every operation both give the same outcome (errno) and the same
state: the DAX entries and their marks per file, the page tables of every mapping, the
struct pages (``mapping``, ``index``, folio orders) and the whole statistics array of the
memmap (counters, warnings per site, gauges, share histogram), plus the files' sizes.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sim.dax import DaxFS
from sim.dax import compiled as T
from sim.fs import FsError
from sim.fs.compiled import ERRNO_OF, fs_create, fs_new, fs_reset
from sim.memmap import VARIANTS
from sim.memmap.fault_rules import RULES_5_19, RULES_6_0, RULES_6_2, RULES_6_15
from sim.memmap.layout import SITES

PAGE = 4096
PMD = 512
NSLOTS = 3
NBLOCKS = 4096
DESIGNS = tuple(T.DESIGNS)
_ERRNAME = {v: k for k, v in ERRNO_OF.items()} | {T.SIGBUS: "SIGBUS"}
_TWINS: dict[tuple, tuple] = {}
#: Fault rules besides each design's own: the generations' and three that no kernel has.
RULES = (
    RULES_5_19,
    RULES_6_0,
    RULES_6_2,
    dataclasses.replace(RULES_6_2, generation="x1", dirty="always", clear_dirty_first=False),
    dataclasses.replace(RULES_6_0, generation="x2", flag="shared", invalidate_remapped=True),
    RULES_6_15,
    dataclasses.replace(RULES_6_15, generation="x3", break_layout="none"),
)


def _twin(code: int, rules):
    """The compiled states of design ``code`` under ``rules`` (None: the design's), made
    once and reset between examples."""
    key = (code, None if rules is None else rules.pack())
    t = _TWINS.get(key)
    if t is None:
        t = _TWINS[key] = (
            fs_new(NBLOCKS, NSLOTS),
            T.dax_new(NBLOCKS, NSLOTS, code, key[1]),
        )
    else:
        fs_reset(t[0])
        T.dax_reset(t[1])
    return t


# ---------------------------------------------------------------------- strategies
slot = st.integers(0, NSLOTS - 1)
byte = st.sampled_from([0x61, 0x62, 0x00])
pages = st.integers(0, 12).map(lambda x: x * PAGE)
BIG = (1 << 63) - 1
weird = st.sampled_from([(-1, PAGE), (0, -1), (BIG, 1), (BIG - PAGE, 2 * PAGE), (1 << 40, PAGE)])
offlen = st.one_of(
    st.tuples(pages, st.integers(1, 6).map(lambda x: x * PAGE)),
    st.tuples(st.integers(0, 12 * PAGE), st.integers(0, 3 * PAGE)),
    weird,
)
big = st.sampled_from([(0, PMD * PAGE), (PMD * PAGE, PMD * PAGE)])  # 2 MiB extents: PMD faults
vsel = st.one_of(st.integers(0, 1), st.integers(0, 7))  # mostly the prefix's two mappings

op = st.one_of(
    st.tuples(st.just("create"), slot),
    st.tuples(st.just("pwrite"), slot, st.one_of(offlen, offlen, big), byte),
    st.tuples(
        st.just("truncate"),
        slot,
        st.one_of(
            st.integers(0, 12 * PAGE + 1),
            pages,
            st.sampled_from([PMD * PAGE, 1 << 40, (1 << 63) - 2, -1]),
        ),
    ),
    st.tuples(st.just("punch"), slot, offlen),
    st.tuples(st.just("zero"), slot, offlen, st.booleans()),
    st.tuples(st.just("unshare"), slot, offlen),
    st.tuples(
        st.just("clone"),
        slot,
        slot,
        st.one_of(
            st.just((0, 0, 0)),
            st.tuples(pages, pages, st.integers(0, 6).map(lambda x: x * PAGE)),
            st.tuples(st.just(0), st.just(0), st.just(PMD * PAGE)),
        ),
    ),
    st.tuples(
        st.just("dedupe"),
        slot,
        slot,
        st.tuples(pages, pages, st.integers(0, 4).map(lambda x: x * PAGE)),
    ),
    st.tuples(st.just("unlink"), slot),
    st.tuples(
        st.just("mmap"),
        slot,
        st.one_of(
            st.tuples(st.integers(0, 4), st.integers(1, 16)),
            st.sampled_from([(0, PMD), (PMD, PMD), (PMD - 8, 16)]),
        ),
    ),
    st.tuples(st.just("fault"), vsel, st.integers(0, PMD - 1), st.booleans()),
    st.tuples(st.just("fault"), vsel, st.integers(0, 15), st.booleans()),
    st.tuples(st.just("fault"), vsel, st.integers(0, 2), st.booleans()),
    st.tuples(st.just("mread"), vsel, st.integers(0, 2 * PAGE), st.integers(1, 3 * PAGE)),
    st.tuples(st.just("mread"), vsel, st.integers(0, 16 * PAGE), st.integers(1, 3 * PAGE)),
    st.tuples(st.just("mwrite"), vsel, st.integers(0, 16 * PAGE), st.integers(1, 3 * PAGE), byte),
    st.tuples(st.just("hwpoison"), vsel, st.integers(0, 16 * PAGE), st.integers(1, 2 * PAGE)),
    st.tuples(st.just("munmap"), vsel),
)

#: Sequences start from nothing, or from a file and its reflinked copy (16 pages or 2 MiB),
#: each mapped whole (mappings 0 and 1): shared extents from the first op on.
prefix = st.sampled_from(
    [
        [],
        [
            ("pwrite", 0, (0, 16 * PAGE), 0x61),
            ("clone", 1, 0, (0, 0, 0)),
            ("mmap", 0, (0, 16)),
            ("mmap", 1, (0, 16)),
        ],
        [
            ("pwrite", 0, (0, PMD * PAGE), 0x61),
            ("clone", 1, 0, (0, 0, 0)),
            ("mmap", 0, (0, PMD)),
            ("mmap", 1, (0, PMD)),
        ],
    ]
)
ops = st.tuples(prefix, st.lists(op, min_size=1, max_size=40)).map(lambda t: t[0] + t[1])


# ---------------------------------------------------------------------- the two sides
class Pair:
    """DaxFS and the twin driven by the same calls; ``step`` applies one op to both and
    returns the two outcomes (errno name or None), or None when the op does not apply."""

    def __init__(self, design: str, rules=None):
        self.code = DESIGNS.index(design)
        self.py = DaxFS(NBLOCKS, design, accounting=False, generation=rules)
        self.fsst, self.st = _twin(self.code, rules)
        self.ino: dict[int, int] = {}  # slot -> python inode
        self.maps: list[tuple[int, int, int]] = []  # (slot, python vid, twin vid)

    def _py(self, fn, *a, **k):
        try:
            fn(*a, **k)
        except FsError as exc:
            return exc.errno
        return None

    @staticmethod
    def _tw(err: int):
        return None if err == 0 else _ERRNAME.get(int(err), f"errno {int(err)}")

    def _create(self, s: int) -> None:
        """open(O_CREAT) of ``f{s}`` on both sides when it does not exist (as the hunt's
        ops select their file)."""
        if s not in self.ino:
            self.ino[s] = self.py.fs.open(f"f{s}", create=True)
            fs_create(self.fsst, s)

    def _mmap(self, s: int, pg: int, npg: int) -> None:
        self._create(s)
        pv = self.py.mmap(1, self.ino[s], pg * PAGE, npg * PAGE)
        tv = T.dax_mmap(self.st, s, pg * PAGE, npg * PAGE)
        self.maps.append((s, pv, tv))

    def _map(self, k: int):
        """Mapping ``k``; when there are not that many, a new one: of ``f{k % 3}``, 16 pages
        or 2 MiB."""
        if k >= len(self.maps):
            self._mmap(k % NSLOTS, 0, PMD if k & 4 else 16)
            return self.maps[-1]
        return self.maps[k]

    def step(self, o):
        py, stt, fsst = self.py, self.st, self.fsst
        buf, res = stt.ibuf, stt.res
        stt.scal[T.S_NTOUCH] = 0
        kind = o[0]
        if kind == "create":
            self._create(o[1])
            return None, None
        if kind in ("fault", "mread", "mwrite", "hwpoison", "munmap"):
            s, pv, tv = m = self._map(o[1])
            vma = py.vmas[pv]
            if kind == "munmap":
                self.maps.remove(m)
                py.munmap(pv)
                T.dax_munmap(stt, tv)
                return None, None
            if kind == "fault":
                idx = vma.pgoff + o[2] % vma.npages
                a = self._py(py.fault, pv, idx, write=o[3])
                b = T.dax_fault(stt, fsst, tv, idx, o[3], res)
                return a, self._tw(b)
            span = vma.npages * PAGE
            off = o[2] % span
            ln = min(o[3], span - off)
            off += vma.pgoff * PAGE
            if kind == "mread":
                return self._py(py.mread, pv, off, ln), self._tw(
                    T.dax_mread(stt, fsst, tv, off, ln, res)
                )
            if kind == "mwrite":
                return self._py(py.mwrite, pv, off, ln, o[4]), self._tw(
                    T.dax_mwrite(stt, fsst, tv, off, ln, o[4], res)
                )
            return self._py(py.memory_failure, pv, off, ln), self._tw(
                T.dax_memory_failure(stt, fsst, tv, off, ln, res)
            )
        s = o[1]
        if kind == "unlink" and s not in self.ino:
            return None
        self._create(s)
        ino = self.ino[s]
        if kind == "pwrite":
            (off, ln), b = o[2], o[3]
            return self._py(py.pwrite, ino, off, ln, b), self._tw(
                T.dax_pwrite(stt, fsst, s, off, ln, b, buf)
            )
        if kind == "truncate":
            return self._py(py.truncate, ino, o[2]), self._tw(
                T.dax_truncate(stt, fsst, s, o[2], buf)
            )
        if kind == "punch":
            off, ln = o[2]
            return self._py(py.punch, ino, off, ln), self._tw(
                T.dax_punch(stt, fsst, s, off, ln, buf)
            )
        if kind == "zero":
            (off, ln), keep = o[2], o[3]
            return self._py(py.zero_range, ino, off, ln, keep_size=keep), self._tw(
                T.dax_zero_range(stt, fsst, s, off, ln, keep, buf)
            )
        if kind == "unshare":
            off, ln = o[2]
            return self._py(py.unshare, ino, off, ln), self._tw(
                T.dax_unshare(stt, fsst, s, off, ln, buf)
            )
        if kind in ("clone", "dedupe"):
            src = o[2]
            self._create(src)
            soff, doff, ln = o[3]
            if kind == "clone":
                a = self._py(py.clone, ino, self.ino[src], soff, doff, ln)
                b = T.dax_clone(stt, fsst, s, src, soff, doff, ln, buf)
            else:
                a = self._py(py.dedupe, ino, self.ino[src], soff, doff, ln)
                b = T.dax_dedupe(stt, fsst, s, src, soff, doff, ln, buf)
            return a, self._tw(b)
        if kind == "unlink":  # as the hunt does: the file's mappings go first
            for m in [m for m in self.maps if m[0] == s]:
                self.maps.remove(m)
                py.munmap(m[1])
                T.dax_munmap(stt, m[2])
            del self.ino[s]
            return self._py(py.unlink, f"f{s}"), self._tw(T.dax_unlink(stt, fsst, s))
        if kind == "mmap":
            if len(self.maps) >= 8:
                return None
            self._mmap(s, *o[2])
            return None, None
        raise AssertionError(kind)

    # ------------------------------------------------------------------ state
    def py_state(self):
        py = self.py
        files = {}
        for s, ino in sorted(self.ino.items()):
            a = py.spaces.get(ino)
            ents = dict(a.xa.entries) if a is not None else {}
            marks = {i: m for i, m in a.xa.marks.items() if m} if a is not None else {}
            wide = dict(a.xa.wide) if a is not None else {}
            files[s] = (ino, py.fs.size(ino), ents, marks, wide)
        tables = []
        for _s, pv, _tv in self.maps:
            vma = py.vmas[pv]
            tables.append(
                (
                    {i: (p, bool(w)) for i, (p, w) in vma.ptes.items()},
                    {c: (p, bool(w)) for c, (p, w) in vma.pmds.items()},
                )
            )
        mm = py.mm
        return files, tables, mm.mapping, mm.index, mm._order, mm._stats  # noqa: SLF001

    def twin_state(self):
        stt, fsst = self.st, self.fsst
        files = {}
        for s in sorted(self.ino):
            hi = int(stt.xmax[s])
            xv = stt.xv[s, :hi]
            ents = {int(i): int(xv[i]) for i in np.flatnonzero(xv >= 0)}
            xm = stt.xm[s]
            marks = {i: int(xm[i] & T.MARKS) for i in ents if xm[i] & T.MARKS}
            wide = {i: i + int(xm[i] >> T.WIDE_SHIFT) - 1 for i in ents if xm[i] >> T.WIDE_SHIFT}
            files[s] = (int(fsst.ino[s]), int(fsst.size[s]), ents, marks, wide)
        tables = []
        for _s, _pv, tv in self.maps:
            pg = int(stt.vm[tv, 1])
            ptes = {
                pg + int(j): (int(stt.vpte[tv, j]), bool(stt.vptw[tv, j]))
                for j in np.flatnonzero(stt.vptw[tv] >= 0)
            }
            c = int(stt.vm[tv, 4])
            pmds = {c: (int(stt.vm[tv, 5]), bool(stt.vm[tv, 6]))} if c >= 0 else {}
            tables.append((ptes, pmds))
        return files, tables, stt.mapping, stt.index, stt.order, stt.stats

    def assert_same(self, where: str) -> None:
        pf, pt, pm, pi, po, ps = self.py_state()
        tf, tt, tm, ti, to, ts = self.twin_state()
        assert pf == tf, f"{where}: entries/marks/sizes differ"
        assert pt == tt, f"{where}: page tables differ"
        for name, a, b in (("mapping", pm, tm), ("index", pi, ti), ("order", po, to)):
            bad = np.flatnonzero(np.asarray(a) != np.asarray(b))
            assert not bad.size, f"{where}: {name} differs at pfns {bad[:8].tolist()}"
        bad = np.flatnonzero(ps != ts)
        assert not bad.size, f"{where}: memmap stats differ at slots {bad[:8].tolist()}"


def run_ops(design: str, ops, rules=None) -> None:
    """Apply ``ops`` to both sides, comparing after each (stops at a twin overflow)."""
    pair = Pair(design, rules)
    for k, o in enumerate(ops):
        out = pair.step(o)
        if pair.st.scal[T.S_OVERFLOW] or pair.fsst.scal[2]:
            return  # beyond the twin's capacities: the hunt reruns such episodes in Python
        if out is None:
            continue
        where = f"op {k} {o!r}"
        assert out[0] == out[1], f"{where}: DaxFS {out[0]} vs twin {out[1]}"
        pair.assert_same(where)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(design=st.sampled_from(DESIGNS), ops=ops)
@example(  # PMD read faults through both files of a shared 2 MiB extent, a PMD CoW write
    # fault, write-back by a reflink, memory failure of a shared page, unlink
    design="folio-share",
    ops=[
        ("pwrite", 0, (0, PMD * PAGE), 0x61),
        ("clone", 1, 0, (0, 0, 0)),
        ("mmap", 0, (0, PMD)),
        ("mmap", 1, (0, PMD)),
        ("fault", 0, 3, False),
        ("fault", 1, 3, False),
        ("fault", 1, 7, True),
        ("clone", 2, 1, (0, 0, 0)),
        ("hwpoison", 0, 5 * PAGE, PAGE),
        ("unlink", 1),
    ],
)
@example(  # PTE faults under a PMD entry, a CoW write(2), then truncates to extreme sizes
    design="cow-index",
    ops=[
        ("pwrite", 0, (0, PMD * PAGE), 0x61),
        ("clone", 1, 0, (0, 0, 0)),
        ("mmap", 0, (0, PMD)),
        ("mmap", 1, (PMD - 8, 16)),
        ("fault", 0, 0, False),
        ("fault", 1, 2, True),
        ("mwrite", 0, 3 * PAGE, 100, 0x62),
        ("pwrite", 1, (PAGE, PAGE), 0x63),
        ("truncate", 1, (1 << 63) - 2),
        ("truncate", 0, 3 * PAGE + 1),
        ("truncate", 0, 0),
    ],
)
def test_twin_equals_daxfs_after_every_op(design, ops):
    run_ops(design, ops)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    design=st.sampled_from(("page-share", "folio-share", "cow-index")),
    rules=st.sampled_from(RULES),
    ops=ops,
)
def test_twin_follows_the_same_fault_rules(design, rules, ops):
    """Under any fault rules (a design's own or an override) the twin reads the same rules."""
    run_ops(design, ops, rules)


def test_twin_packs_each_designs_rules():
    for code, name in enumerate(DESIGNS):
        st_ = T.dax_new(64, 1, code)
        assert st_.scal[T.S_RULES] == VARIANTS[name].fault_rules.pack()


def test_twin_leaves_the_stale_pte_of_a_cow_write():
    """6.0-6.1 (``invalidate_remapped`` False: ``dax_iomap_iter`` invalidates IOMAP_F_NEW
    ranges only): write(2) CoW'ing a mapped shared block leaves the entry and the PTE on the
    old block, in the twin as in DaxFS; 6.2+ (f80e1668888f) removes both."""
    for design, stale in (("cow-index", True), ("page-share", False)):
        pair = Pair(design)
        for o in (
            ("pwrite", 0, (0, 4 * PAGE), 0x61),
            ("clone", 1, 0, (0, 0, 0)),
            ("mmap", 1, (0, 4)),
            ("fault", 0, 0, False),
        ):
            pair.step(o)
        old = pair.py.fs.bmap(pair.ino[1], 0, 1)[0].pblock
        pair.step(("pwrite", 1, (0, PAGE), 0x62))
        pair.assert_same(design)
        _files, tables, *_ = pair.twin_state()
        assert tables[0][0].get(0) == ((old, False) if stale else None)


def test_twin_counts_the_folio_put_refcount_warn():
    """dax_folio_put's refcount check, in the twin as in DaxFS: a CoW write(2) deletes the
    entry of a folio the mapping still maps (invalidate_inode_pages2_range unmaps after):
    7.1+ warns for an order-0 folio, 6.15-7.0 only for an order-9 one; the zap of a PMD
    whose folio was reset under it writes the second struct page's mapping word, which a
    later shared fault there turns into Shared(2)."""
    slot = T._W_PUT_REF  # noqa: SLF001
    for design, npg, warns in (
        ("folio-share-reset", 16, 1),
        ("folio-share", 16, 0),
        ("folio-share", PMD, 1),
        ("folio-share-reset", PMD, 1),
        ("page-share", PMD, 0),
    ):
        pair = Pair(design)
        for o in (
            ("pwrite", 0, (0, npg * PAGE), 0x61),
            ("clone", 1, 0, (0, 0, 0)),
            ("mmap", 1, (0, npg)),
            ("fault", 0, 0, False),
        ):
            pair.step(o)
        old = pair.py.fs.bmap(pair.ino[1], 0, 1)[0].pblock
        pair.step(("pwrite", 1, (0, PAGE), 0x62))
        pair.assert_same(design)
        assert int(pair.st.stats[slot]) == warns, design
        clobbered = npg == PMD and design.startswith("folio")
        assert int(pair.st.mapping[old + 1]) == (T.CLOBBERED_MAPPING if clobbered else 0)
        pair.step(("fault", 0, 1, False))  # page 1 still shared by f0 and f1
        pair.assert_same(design)
        if clobbered:
            assert (int(pair.st.mapping[old + 1]), int(pair.st.index[old + 1])) == (0, 2)


@given(design=st.sampled_from(("folio-share", "folio-share-reset")), ops=st.lists(op, max_size=12))
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
def test_twin_refuses_an_order0_pmd_folio_as_daxfs_does(design, ops):
    """FaultRules.pmd_folio_order (v6.15+ vmf_insert_folio_pmd): f1's PTE fault makes the
    shared extent's first folio order 0, f2's PMD read is refused on both sides (SIGBUS, the
    entry stored and associated, the WARN counted at the same site), and so is the next; the
    states stay equal through whatever follows."""
    pair = Pair(design)
    head = [
        ("pwrite", 0, (0, PMD * PAGE), 0x61),
        ("clone", 1, 0, (0, 0, 0)),
        ("mmap", 1, (0, 16)),  # mapping 0: f1, 16 pages (PTE faults only)
        ("mmap", 0, (0, PMD)),  # mapping 1: f0 whole (PMD faults)
        ("fault", 0, 0, False),
    ]
    for o in head:
        pair.step(o)
    pair.assert_same("prefix")
    for k in range(2):
        out = pair.step(("mread", 1, (k + 1) * PAGE, 1))
        assert out == ("SIGBUS", "SIGBUS")
        pair.assert_same(f"refused read {k}")
    site = T._WARN0 + SITES.index("pmd_folio_order")  # noqa: SLF001
    assert pair.st.stats[site] == 2
    for k, o in enumerate(ops):
        out = pair.step(o)
        if pair.st.scal[T.S_OVERFLOW] or pair.fsst.scal[2]:
            return
        if out is None:
            continue
        assert out[0] == out[1], f"op {k} {o!r}: DaxFS {out[0]} vs twin {out[1]}"
        pair.assert_same(f"op {k} {o!r}")


@pytest.mark.parametrize("design", ["page-share", "folio-share", "folio-share-reset"])
def test_twin_stores_a_pte_entry_in_the_pmd_slot_as_daxfs_does(design):
    """DaxXArray.store_in_slot: f0's PTE faults under its own PMD entry (mapped before 6.15,
    refused on a folio design from 6.15) store their order-0 entries in the PMD's slot; the
    second finds and replaces the first (page 0's share drops to 1) and f0's eviction finds
    511 pages counted (clear_inode's BUG_ON) on both sides."""
    pair = Pair(design)
    for o in (
        ("pwrite", 0, (0, PMD * PAGE), 0x61),
        ("clone", 1, 0, (0, 0, 0)),
        ("mmap", 1, (0, 16)),  # mapping 0: f1, 16 pages (PTE faults only)
        ("fault", 0, 0, False),
        ("mmap", 0, (0, PMD)),  # mapping 1: f0 whole (a PMD fault)
        ("mread", 1, 0, 1),
        ("munmap", 1),
        ("mmap", 0, (0, 16)),  # mapping 1 again: f0, 16 pages
        ("mread", 1, 0, 1),
    ):
        pair.step(o)
    pair.assert_same("first PTE fault")
    pfn = pair.py.fs.iomap(pair.ino[0], 0, 1)[1]
    assert int(pair.st.index[pfn]) == 2
    pair.step(("mread", 1, PAGE, 1))
    pair.assert_same("second PTE fault")
    assert int(pair.st.xv[0, 0]) == (pfn + 1) << T.DAX_SHIFT
    assert int(pair.st.index[pfn]) == 1
    site = T._WARN0 + SITES.index("clear_inode_nrpages")  # noqa: SLF001
    pair.step(("unlink", 0))
    pair.assert_same("eviction")
    assert int(pair.st.stats[site]) == 1
