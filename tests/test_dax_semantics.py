"""Fault, CoW, removal and memory-failure semantics of the fsdax layer per kernel generation
(kernel-semantics.md §1, §2, §4), checked on small xfs_io scripts and DaxFS calls."""

from __future__ import annotations

import pytest

from sim.dax import DaxFS
from sim.dax.fsdax import CLOBBERED_MAPPING
from sim.dax.xarray_dax import DAX_PMD, MARK_DIRTY, MARK_TOWRITE
from sim.xfsio.runner import INVARIANTS, run_script

VARIANTS = ["single-owner", "cow-index", "page-share", "folio-share"]
NB = 1 << 16  # 256 MiB device
PAGE = 4096

CLONE_COW_UNLINK = """\
@mkfs size=256m
open -f src
pwrite -S 0x61 0 64k
close
open -f -t dst
reflink src
mmap -rw 0 64k
mwrite -S 0x62 0 64k
munmap
close
@expect_md5 src {src_md5}
@unlink src
@unlink dst
"""


def _md5_of(byte: int, n: int) -> str:
    import hashlib

    return hashlib.md5(bytes([byte]) * n).hexdigest()


@pytest.mark.parametrize(
    "variant, residue, phantoms",
    [("single-owner", 0, 0), ("cow-index", 16, 0), ("page-share", 0, 0), ("folio-share", 0, 15)],
)
def test_clone_cow_every_page_then_unlink(variant, residue, phantoms):
    """16 CoW write faults then eviction: cow-index leaves the 16 CoW destinations at
    (COW, 0) (post-decrement, §1b); page-share balances (§1c); folio-share leaves a phantom
    Shared(idx) for every order-0 owner put with idx != 0 (§1d)."""
    r = run_script(CLONE_COW_UNLINK.format(src_md5=_md5_of(0x61, 65536)), "t", variant)
    assert r.result.ok, [c.describe() for c in r.result.failed]
    mm = r.dax.mm
    assert mm.residue_pages() == residue
    assert mm.phantom_pages() == phantoms
    assert r.dax.stats["cow_pages"] == 16
    assert INVARIANTS["no_residue"](r) == (residue == 0)
    assert INVARIANTS["nothing_left_behind"](r) == (residue == 0 and phantoms == 0)


READ_BOTH = """\
@mkfs size=256m
open -f a
pwrite -S 0x61 0 16k
close
open -f -t b
reflink a
close
@cycle_mount
open a
mmap -r 0 16k
mread 0 4096
open b
mmap -r 0 16k
mread 0 4096
"""


@pytest.mark.parametrize(
    "variant, warns",
    [("single-owner", True), ("cow-index", True), ("page-share", False), ("folio-share", False)],
)
def test_read_fault_shared_page_through_both_files(variant, warns):
    """Reads pass no flag <= 6.1 (second owner hits WARN_ON_ONCE(page->mapping)); 6.2+
    passes shared = IOMAP_F_SHARED on reads too."""
    r = run_script(READ_BOTH, "t", variant)
    w = r.dax.mm.warnings["associate_mapping_set"]
    assert (w > 0) == warns
    if warns:
        assert w == 1


@pytest.mark.parametrize("variant", VARIANTS)
def test_write_fault_after_clone_copies_one_page(variant):
    d = DaxFS(NB, variant)
    a, _ = d.open("a", create=True)
    d.pwrite(a, 0, 16 * 4096, 0x61)
    md5 = d.fs.md5(a)
    b, _ = d.open("b", create=True)
    d.clone(b, a, 0, 0, 0)
    vid = d.mmap(1, b, 0, 16 * 4096)
    wr = d.mwrite(vid, 5 * 4096 + 100, 10, 0x62)
    assert d.stats["cow_pages"] == 1
    assert wr.faults == 1 and wr.memcpy_bytes >= 4096
    assert sum(n for _, n in wr.pmem_read) >= 4096
    assert d.fs.md5(a) == md5
    assert d.fs.md5(b) != md5
    # only page 5 of b moved
    assert [e.nblocks for e in d.fs.bmap(b, 0, 16) if not e.shared] == [1]
    assert ("xa_lock", d.mapping_id(b)) in wr.locks
    assert wr.lines_written["struct_page"]


def _pmd_setup(variant):
    d = DaxFS(NB, variant)
    a, _ = d.open("a", create=True)
    d.pwrite(a, 0, 4 << 20, 0x61)
    ext = d.fs.bmap(a, 0, 512)
    assert len(ext) == 1 and ext[0].pblock % 512 == 0, "fresh fs allocates 2 MiB aligned"
    return d, a, ext[0].pblock


@pytest.mark.parametrize("variant", ["single-owner", "cow-index", "page-share"])
def test_pmd_fault_associates_512_consecutive_pages(variant):
    d, a, pfn = _pmd_setup(variant)
    vid = d.mmap(1, a, 0, 4 << 20)
    wr = d.mread(vid, 4096 * 3, 100)
    assert d.stats["pmd_faults"] == 1 and wr.faults == 1
    e = d.entries()
    assert list(e["npages"]) == [512] and int(e["pfn"][0]) == pfn and int(e["index"][0]) == 0
    mid = d.mapping_id(a)
    assert all(d.mm.page(pfn + i) == (mid, i) for i in range(512))
    assert len(set(wr.lines_written["struct_page"])) == 512
    assert d.xarray(a).lookup(300)[1] & DAX_PMD


def test_pmd_fault_folio_share_is_one_order9_folio():
    d, a, pfn = _pmd_setup("folio-share")
    vid = d.mmap(1, a, 0, 4 << 20)
    d.mread(vid, 0, 4096)
    head, order, mapping, index = d.mm.folio(pfn + 77)
    assert (head, order, mapping, index) == (pfn, 9, d.mapping_id(a), 0)


def test_a_mapping_smaller_than_its_region_falls_back_once_per_fresh_region():
    """``__handle_mm_fault`` tries the huge fault while the 2 MiB region has no page table
    (a DAX VMA is allowed in a page fault whatever its size) and ``dax_fault_check_fallback``
    sends the PMD range outside the VMA back as FALLBACK; once the PTE fault made the
    region's table, no PMD fault is tried there until the mapping goes."""
    d, a, _pfn = _pmd_setup("page-share")
    vid = d.mmap(1, a, 0, 1 << 20)
    d.mread(vid, 0, 1)
    assert (d.stats["pmd_fallbacks"], d.stats["pte_faults"]) == (1, 1)
    d.mread(vid, 8192, 1)  # same region, table there: straight to the PTE fault
    assert (d.stats["pmd_fallbacks"], d.stats["pte_faults"]) == (1, 2)
    d.munmap(vid)
    vid = d.mmap(1, a, 4096, 8192)  # a new mapping in a fresh region, off the region start
    d.mread(vid, 4096, 1)
    assert (d.stats["pmd_fallbacks"], d.stats["pte_faults"]) == (2, 3)
    # off the PMD colour (an address the caller fixed): a fallback too, once
    vid = d.mmap(1, a, 0, 4 << 20, huge=False)
    d.mread(vid, 0, 1)
    d.mread(vid, 4096, 1)
    assert (d.stats["pmd_fallbacks"], d.stats["pmd_faults"]) == (3, 0)


def test_pmd_fallbacks_vma_eof_and_extent():
    d, a, pfn = _pmd_setup("page-share")
    # VMA shorter than 2 MiB: PTE
    vid = d.mmap(1, a, 0, 1 << 20)
    d.mread(vid, 0, 4096)
    assert d.stats["pmd_faults"] == 0 and d.stats["pte_faults"] == 1
    # a PTE entry in the block makes a later PMD fault fall back (grab_mapping_entry conflict)
    vid2 = d.mmap(1, a, 0, 4 << 20)
    d.mread(vid2, 8192, 1)
    assert d.stats["pmd_faults"] == 0 and d.stats["pmd_fallbacks"] >= 1
    # second 2 MiB block: PMD
    d.mread(vid2, 2 << 20, 1)
    assert d.stats["pmd_faults"] == 1
    # EOF inside the block: PTE
    b, _ = d.open("b", create=True)
    d.pwrite(b, 0, (2 << 20) - 4096, 0x62)
    vb = d.mmap(1, b, 0, 2 << 20)
    d.mread(vb, 0, 1)
    assert d.stats["pmd_faults"] == 1


def test_pmd_cow_write_fault_copies_2mib():
    d, a, pfn = _pmd_setup("page-share")
    b, _ = d.open("b", create=True)
    d.clone(b, a, 0, 0, 0)
    vid = d.mmap(1, b, 0, 4 << 20)
    wr = d.mwrite(vid, 0, 10, 0x62)
    assert d.stats["pmd_faults"] == 1  # CoW destination allocated 2 MiB aligned
    assert d.stats["cow_pages"] == 512 and wr.memcpy_bytes >= 2 << 20
    assert d.entries()["npages"].tolist() == [512]
    assert d.fs.md5(a, 0, 4096) != d.fs.md5(b, 0, 4096)
    assert d.fs.compare(a, 10, b, 10, (4 << 20) - 10)


@pytest.mark.parametrize(
    "variant, dirty_on_read", [("single-owner", False), ("cow-index", True), ("page-share", False)]
)
def test_dirty_mark_on_read_fault(variant, dirty_on_read):
    """6.0/6.1 pass dirty = !sync, so read faults set PAGECACHE_TAG_DIRTY (§2.1)."""
    d = DaxFS(NB, variant)
    a, _ = d.open("a", create=True)
    d.pwrite(a, 0, 16384, 0x61)
    vid = d.mmap(1, a, 0, 16384)
    d.mread(vid, 0, 1)
    assert bool(d.xarray(a).get_mark(0) & MARK_DIRTY) == dirty_on_read
    d.mwrite(vid, 4096, 1, 0x62)
    assert d.xarray(a).get_mark(1) & MARK_DIRTY
    d.fsync(a)
    assert d.xarray(a).get_mark(1) == 0
    assert d.vmas[vid].ptes[1][1] is False  # write-protected by writeback


@pytest.mark.parametrize("variant, invalidated", [("cow-index", False), ("page-share", True)])
def test_pwrite_cow_invalidates_only_in_62(variant, invalidated):
    """write(2) to a shared, mapped page: 6.2+ invalidates the stale entry; 6.0 leaves it
    pointing at the old shared pfn."""
    d = DaxFS(NB, variant)
    a, _ = d.open("a", create=True)
    d.pwrite(a, 0, 16384, 0x61)
    b, _ = d.open("b", create=True)
    d.clone(b, a, 0, 0, 0)
    old = d.fs.bmap(b, 0, 1)[0].pblock
    vid = d.mmap(1, b, 0, 16384)
    d.mread(vid, 0, 1)
    assert d.xarray(b).lookup(0) is not None
    d.pwrite(b, 0, 100, 0x62)
    assert d.fs.bmap(b, 0, 1)[0].pblock != old
    ent = d.xarray(b).lookup(0)
    if invalidated:
        assert ent is None
        assert d.mm.page(old) == (0, 0)  # (SHARED,1) -> (NULL,0)
    else:
        assert ent is not None and ent[1] >> 4 == old
        assert d.stats["stale_entries_left"] == 1
    # 6.2+ (f80e1668888f): invalidate_inode_pages2_range unmaps the range, the next load
    # faults and reads the new bytes; 6.0-6.1 (dax_iomap_iter invalidates IOMAP_F_NEW ranges
    # only): the PTE stays on the old block and the load reads the old bytes
    assert d.vmas[vid].lookup(0) == (None if invalidated else (old, False))
    d.mread(vid, 0, 4)
    assert d.load(vid, 0, 4) == (b"bbbb" if invalidated else b"aaaa")
    assert d.fs.pread(b, 0, 4) == b"bbbb"


def test_stale_pte_reads_the_old_blocks_next_owner():
    """6.0-6.1: a PTE left on a block write(2) CoW'd away reads that block whoever owns it:
    the other file's later writes, and, once the block is freed and allocated to a third
    file, that file's bytes; the mapping's own file reads its new bytes through read(2)."""
    d = DaxFS(NB, "cow-index")
    a, _ = d.open("a", create=True)
    d.pwrite(a, 0, PAGE, 0x61)
    b, _ = d.open("b", create=True)
    d.clone(b, a, 0, 0, 0)
    old = d.fs.bmap(b, 0, 1)[0].pblock
    vid = d.mmap(1, b, 0, PAGE, writable=False)
    d.mread(vid, 0, PAGE)
    d.pwrite(b, 0, PAGE, 0x62)  # CoW: b moves, a keeps the old block alone
    d.pwrite(a, 0, 8, 0x63)  # overwrite in place (a's block is no longer shared)
    assert d.fs.bmap(a, 0, 1)[0].pblock == old
    d.mread(vid, 0, 16)
    assert d.load(vid, 0, 16) == b"c" * 8 + b"a" * 8
    d.unlink("a")  # the old block is free; the stale PTE still maps it
    c, _ = d.open("c", create=True)
    d.pwrite(c, 0, PAGE, 0x64)
    assert d.fs.bmap(c, 0, 1)[0].pblock == old  # first fit takes the freed block back
    assert d.load(vid, 0, 4) == b"dddd"  # b's mapping reads c's data
    assert d.fs.pread(b, 0, 4) == b"bbbb"
    d.munmap(vid)  # special PTEs up to 6.14: the zap touches no struct page, no WARN
    assert d.mm.warning_total() == 0


@pytest.mark.parametrize("variant", VARIANTS)
def test_truncate_and_punch_remove_entries(variant):
    d = DaxFS(NB, variant)
    a, _ = d.open("a", create=True)
    d.pwrite(a, 0, 16 * 4096, 0x61)
    vid = d.mmap(1, a, 0, 16 * 4096)
    d.mread(vid, 0, 16 * 4096)
    assert len(d.xarray(a)) == 16
    d.punch(a, 4096, 8192)
    # v6.15+ (folio-share): the punch breaks the file's layout and dax_break_layout deletes
    # every entry; up to v6.14 the layout break only unmaps, and the punch removes its range
    deleted = d.rules.break_layout == "unmap_delete"
    assert deleted == (variant == "folio-share")
    assert sorted(d.xarray(a).entries) == ([] if deleted else [0] + list(range(3, 16)))
    if not deleted:
        d.truncate(a, 5 * 4096 + 1)
        assert sorted(d.xarray(a).entries) == [0, 3, 4, 5]
    else:
        d.mread(vid, 0, 16 * 4096)  # re-faults: 14 pages, 2 holes; truncate deletes them all
        assert len(d.xarray(a)) == 16
        d.truncate(a, 5 * 4096 + 1)
        assert len(d.xarray(a)) == 0
    d.munmap(vid)
    d.unlink("a")
    # folio-share: every order-0 owner put leaves index (= share) stale (§1d)
    assert d.mm.state()[0].size == (15 if variant == "folio-share" else 0)
    assert d.mm.warnings["associate_mapping_set"] == 0


def test_hole_read_maps_zero_entry_without_struct_pages():
    d = DaxFS(NB, "page-share")
    a, _ = d.open("a", create=True)
    d.truncate(a, 16384)
    vid = d.mmap(1, a, 0, 16384)
    wr = d.mread(vid, 0, 16384)
    assert len(d.xarray(a)) == 4 and "struct_page" not in wr.lines_written
    assert d.entries()["pfn"].size == 0
    d.mwrite(vid, 4096, 1, 0x41)  # zero entry replaced by a real one
    e = d.entries()
    assert list(e["index"]) == [1]
    assert d.fs.pread(a, 4096, 1) == b"A"


@pytest.mark.parametrize("variant", ["single-owner", "page-share"])
def test_memory_failure_rmap_vs_page_mapping(variant):
    d = DaxFS(NB, variant)
    a, _ = d.open("a", create=True)
    d.pwrite(a, 0, 8192, 0x61)
    b, _ = d.open("b", create=True)
    d.clone(b, a, 0, 0, 0)
    va = d.mmap(1, a, 0, 8192)
    d.mread(va, 0, 4096)
    vb = d.mmap(2, b, 0, 8192)
    d.mread(vb, 0, 4096)
    res, wr = d.memory_failure(vb, 0, 4096)
    pfn = res.pfns[0]
    assert sorted(res.rmap_owners[pfn]) == [(a, 0), (b, 0)]
    if variant == "page-share":
        assert res.fallback_owners[pfn] == []  # (SHARED, 2): page->mapping is the flag
    else:
        assert res.fallback_owners[pfn] == [(b, 0)]  # the last owner overwrote the first
    assert res.sigbus_poisoner and (2, "BUS_MCEERR_AR") in res.signalled
    assert (1, "BUS_MCEERR_AO") not in res.signalled  # early kill off by default
    assert d.vmas[va].lookup(0) is None and d.vmas[vb].lookup(0) is None
    assert pfn in d.hwpoisoned


@pytest.mark.parametrize("variant", ["single-owner", "page-share"])
def test_memory_failure_by_file_offset_poisons_that_files_blocks(variant):
    """A media error over two pages of file a (``vid=None, ino=a``) poisons a's two blocks,
    though its first page is shared with b, which is the last owner its rmap lists (the
    owners' loop used to rebind ``ino`` and read the second page's block from b)."""
    d = DaxFS(NB, variant)
    a, _ = d.open("a", create=True)
    d.pwrite(a, 0, 8192, 0x61)
    b, _ = d.open("b", create=True)
    d.pwrite(b, 4096, 4096, 0x62)  # b's own second block
    d.clone(b, a, 0, 0, 4096)  # b's first page shares a's first block
    vb = d.mmap(2, b, 0, 8192)
    d.mread(vb, 0, 8192)
    want = [d.fs.iomap(a, i, 1)[1] for i in (0, 1)]
    assert want[1] != d.fs.iomap(b, 1, 1)[1]
    res, _ = d.memory_failure(None, 0, 8192, ino=a)
    assert res.pfns == want
    assert sorted(res.rmap_owners[want[0]]) == [(a, 0), (b, 0)]
    assert res.rmap_owners[want[1]] == [(a, 1)]


def test_memory_failure_without_rmap_on_shared_page_finds_nobody():
    d = DaxFS(NB, "page-share", rmap=False)
    a, _ = d.open("a", create=True)
    d.pwrite(a, 0, 4096, 0x61)
    b, _ = d.open("b", create=True)
    d.clone(b, a, 0, 0, 0)
    va = d.mmap(1, a, 0, 4096)
    d.mread(va, 0, 1)
    vb = d.mmap(1, b, 0, 4096)
    d.mread(vb, 0, 1)
    res, _ = d.memory_failure(vb, 0, 4096)
    assert res.errno == "EBUSY" and not res.sigbus_poisoner


@pytest.mark.parametrize("variant", VARIANTS)
def test_entries_arrays_find_sharers(variant):
    d = DaxFS(NB, variant)
    a, _ = d.open("a", create=True)
    d.pwrite(a, 0, 8192, 0x61)
    b, _ = d.open("b", create=True)
    d.clone(b, a, 0, 4096, 4096)
    p = d.fs.bmap(a, 0, 1)[0].pblock
    for ino, off in ((a, 0), (b, 4096)):
        v = d.mmap(1, ino, 0, 8192)
        d.mread(v, off, 1)
    got = sorted(d.entries_mapping_pfn(p))
    assert got == sorted([(d.mapping_id(a), 0), (d.mapping_id(b), 1)])


def test_unmount_evicts_everything():
    d = DaxFS(NB, "page-share")
    a, _ = d.open("a", create=True)
    d.pwrite(a, 0, 8192, 0x61)
    v = d.mmap(1, a, 0, 8192)
    d.mwrite(v, 0, 8192, 0x62)
    assert d.xarray(a).get_mark(0) & MARK_DIRTY and not d.xarray(a).get_mark(0) & MARK_TOWRITE
    wr = d.unmount()
    assert not d.vmas and not d.spaces and d.mm.state()[0].size == 0
    assert len(wr.lines_written["struct_page"]) == 2


@pytest.mark.parametrize("variant, survives", [("cow-index", True), ("page-share", False)])
def test_write2_into_hole_invalidates_zero_entry(variant, survives):
    """IOMAP_F_NEW invalidation (trunc=false) skips DIRTY entries; 6.0 dirtied the zero
    entry on the read fault, so it survives until the next fault replaces it."""
    d = DaxFS(NB, variant)
    a, _ = d.open("a", create=True)
    d.truncate(a, 8192)
    vid = d.mmap(1, a, 0, 8192)
    d.mread(vid, 0, 1)
    d.pwrite(a, 0, 10, 0x61)
    ent = d.xarray(a).lookup(0)
    assert (ent is not None) == survives
    assert d.vmas[vid].lookup(0) is None
    d.mread(vid, 0, 1)
    ent = d.xarray(a).lookup(0)
    assert ent is not None and ent[1] >> 4 == d.fs.bmap(a, 0, 1)[0].pblock


def _cow_write_under_mapping(design: str, npages: int) -> DaxFS:
    """f2 written (``npages`` pages: 512 is one PMD-mappable extent), reflinked into f1, f1
    mapped and read at page 0 (a PTE, or one PMD), then page 0 of f1 rewritten by write(2)."""
    d = DaxFS(NB, design)
    f2, _ = d.open("f2", create=True)
    d.pwrite(f2, 0, npages * PAGE, 0x61)
    f1, _ = d.open("f1", create=True)
    d.clone(f1, f2, 0, 0, 0)
    vid = d.mmap(1, f1, 0, npages * PAGE, writable=False)
    d.mread(vid, 0, 4)
    assert (d.stats["pmd_faults"], d.stats["pte_faults"]) == ((1, 0) if npages == 512 else (0, 1))
    d.pwrite(f1, 0, PAGE, 0x62)
    return d


@pytest.mark.parametrize(
    "design, npages, warns",
    [
        # 7.1+ dax_folio_put checks every folio it resets (7.3.4 fs/dax.c:452)
        ("folio-share-reset", 1, 1),
        ("folio-share-reset", 512, 1),
        # 6.15-7.0: an order-0 folio returns before the check; an order-9 one is checked
        ("folio-share", 1, 0),
        ("folio-share", 512, 1),
        # up to 6.14 fsdax PTEs/PMDs hold no page reference (pfn mappings)
        ("page-share", 1, 0),
        ("page-share", 512, 0),
        ("cow-index", 1, 0),
    ],
)
def test_folio_put_refcount_warns_when_a_mapping_outlives_the_entry(design, npages, warns):
    """write(2) CoW'ing a mapped block invalidates its entry (6.2+): invalidate_inode_pages2_range
    deletes the entry (the final put of the folio the mapping's PTE or PMD still references)
    before unmap_mapping_pages."""
    d = _cow_write_under_mapping(design, npages)
    assert d.mm.warnings.get("folio_put_refcount", 0) == warns


def test_folio_put_refcount_quiet_when_the_mapping_goes_first():
    """Paths that unmap before they delete (punch: truncate_pagecache_range) and a put that
    only drops a share leave the check quiet."""
    d = DaxFS(NB, "folio-share-reset")
    f2, _ = d.open("f2", create=True)
    d.pwrite(f2, 0, 4 * PAGE, 0x61)
    v2 = d.mmap(1, f2, 0, 4 * PAGE)
    d.mread(v2, 0, 4 * PAGE)
    d.punch(f2, 0, PAGE)
    f1, _ = d.open("f1", create=True)
    d.clone(f1, f2, 0, 0, 0)
    v1 = d.mmap(1, f1, 0, 4 * PAGE, writable=False)
    d.mread(v1, 0, 4 * PAGE)
    d.mread(v2, 0, 4 * PAGE)  # both files map the shared blocks: Shared(2)
    d.pwrite(f1, PAGE, PAGE, 0x62)  # f1's entry goes: a share dropped, not the final put
    assert d.mm.warnings["folio_put_refcount"] == 0


@pytest.mark.parametrize("design", ["folio-share", "folio-share-reset", "page-share"])
def test_pmd_zapped_after_its_folio_reset_clobbers_the_second_page(design):
    """6.15+: the invalidation resets the order-9 folio while the PMD maps it; the PMD's zap
    (folio_remove_rmap_pmd on what is now an order-0 folio) decrements _entire_mapcount in
    the second struct page's mapping word, so that page reads a mapping no file has and a
    later shared read fault counts it Shared(2), as 6.18 and 7.3 show
    (stale-pmd-cow-write.xfsio). Up to 6.14 a PMD holds no folio: nothing is written."""
    d = _cow_write_under_mapping(design, 512)
    f1 = d.fs.lookup("f1")
    pb = d.fs.bmap(d.fs.lookup("f2"), 1, 1)[0].pblock
    folio = design != "page-share"
    assert d.mm.page(pb) == ((CLOBBERED_MAPPING, 0) if folio else (0, 0))
    vid = next(iter(d.vmas))
    d.mread(vid, PAGE, 4)  # a PTE fault: page 1 is still shared with f2
    assert d.fs.bmap(f1, 1, 1)[0].pblock == pb
    assert d.mm.page(pb) == ((0, 2) if folio else (-1, 1))


def test_stale_mapping_is_a_data_integrity_violation_when_the_bytes_differ():
    """The hunt's load check (sim.hunt.invariants.stale_mapping): a mapping that maps a
    block its file no longer has there, holding other bytes, breaks data_integrity even
    without a content model (a replayed reproducer); the same stale page holding the same
    bytes reads the same and does not; 6.2+ leaves no stale mapping."""
    from sim.hunt.invariants import check_data_integrity, stale_mapping

    for design, byte, stale in (
        ("cow-index", 0x62, True),
        ("cow-index", 0x61, False),
        ("page-share", 0x62, False),
    ):
        d = DaxFS(NB, design)
        a, _ = d.open("a", create=True)
        d.pwrite(a, 0, 4 * PAGE, 0x61)
        b, _ = d.open("b", create=True)
        d.clone(b, a, 0, 0, 0)
        vid = d.mmap(1, b, 0, 4 * PAGE)
        d.mread(vid, PAGE, 4)
        d.pwrite(b, 0, 4 * PAGE, byte)
        hit = stale_mapping(d)
        assert (hit is not None) == stale, (design, byte)
        v = check_data_integrity(d)
        assert (v is not None) == stale
        if stale:
            assert hit[:2] == (vid, 1)
            assert v.detail["offset"] == PAGE and "a load reads" in v.message
