"""The remap prep writes back both ranges before a reflink or dedupe
(``__generic_remap_file_range_prep`` → ``filemap_write_and_wait_range`` →
``dax_writeback_mapping_range``): DIRTY entries are cleaned and their PTEs write-protected.

Found by ``daxsim hunt`` (``--episode-len 96``): without the write-back, a writable PTE made
before the clone let the next store land in the now-shared block, and a DIRTY entry survived
the (non-truncating) invalidation of a later ``funshare``, leaving a stale association.
"""

from __future__ import annotations

import hashlib

import pytest

from sim.dax.xarray_dax import MARK_DIRTY, MARK_TOWRITE
from sim.hunt.invariants import check_association
from sim.hunt.model import HuntModel
from sim.xfsio.runner import run_script

VARIANTS = ["single-owner", "cow-index", "page-share", "folio-share", "folio-share-reset"]


def _md5(parts) -> str:
    return hashlib.md5(b"".join(bytes([b]) * n for b, n in parts)).hexdigest()


STORE_AFTER_CLONE = """\
@mkfs size=32m
open -f f0
pwrite -S 0x61 0 8192
mmap -rw 0 8192
mwrite -S 0x62 0 10
open -f f1
reflink f0 0 0 0
mmap 0
mwrite -S 0x63 0 10
@expect_md5 f1 {f1}
@expect_md5 f0 {f0}
"""


@pytest.mark.parametrize("variant", VARIANTS)
def test_store_through_a_mapping_made_before_a_reflink_cows(variant):
    """The clone keeps the bytes of the source at the time of the clone; the store after it
    write-faults (the PTE was write-protected by the write-back) and CoWs the source page."""
    script = STORE_AFTER_CLONE.format(
        f1=_md5([(0x62, 10), (0x61, 8182)]), f0=_md5([(0x63, 10), (0x61, 8182)])
    )
    r = run_script(script, "t", variant)
    assert r.result.ok, [c.describe() for c in r.result.failed]
    assert r.dax.stats["cow_pages"] == 1


FUNSHARE_AFTER_SELF_CLONE = """\
@mkfs size=32m
open -f f0
truncate 24576
open -f f1
reflink f0 0 0 0
mmap -rw 16384 4096
mwrite -S 0x62 16384 1
reflink f1 8192 28672 0
funshare 12288 24576
mmap -rw 24576 53248
mread 36864 7915
"""


@pytest.mark.parametrize("variant", ["page-share", "folio-share", "folio-share-reset"])
def test_funshare_after_clone_of_a_dirty_page_leaves_no_stale_entry(variant):
    """The hunt's reproducer (6.2+ paths): page 4's DIRTY entry is cleaned by the clone's
    write-back, so funshare's invalidation removes it and the fault at index 9 (the same
    block) is the block's only association: no WARN, association truth holds."""
    r = run_script(FUNSHARE_AFTER_SELF_CLONE, "t", variant)
    assert r.result.ok, [c.describe() for c in r.result.failed]
    assert sum(r.dax.mm.warnings.values()) == 0
    assert check_association(r.dax, HuntModel()) is None
    assert sorted(r.dax.xarray(r.dax.fs.lookup("f1")).entries) == [9, 10]


@pytest.mark.parametrize("variant", ["single-owner", "cow-index"])
def test_funshare_leaves_the_entry_stale_before_6_2(variant):
    """<= 6.1 paths do not invalidate remapped entries (kernel-semantics.md 2.2): page 4's
    entry keeps the old block, so the fault at index 9 finds the page owned and WARNs."""
    r = run_script(FUNSHARE_AFTER_SELF_CLONE, "t", variant)
    assert r.result.ok, [c.describe() for c in r.result.failed]
    assert r.dax.mm.warnings["associate_mapping_set"] == 1
    assert sorted(r.dax.xarray(r.dax.fs.lookup("f1")).entries) == [4, 9, 10]


def test_clone_cleans_dirty_entries_of_both_ranges_only():
    """DIRTY/TOWRITE are cleared on the source and destination ranges, not elsewhere."""
    script = """\
@mkfs size=32m
open -f a
pwrite -S 0x61 0 32k
mmap -rw 0 32k
mwrite -S 0x62 0 32k
open -f b
pwrite -S 0x63 0 32k
reflink a 0 16384 8192
"""
    r = run_script(script, "t", "page-share")
    assert r.result.ok
    d = r.dax
    ino = d.fs.lookup("a")
    marks = d.xarray(ino).marks
    dirty = sorted(i for i, m in marks.items() if m & (MARK_DIRTY | MARK_TOWRITE))
    assert dirty == [2, 3, 4, 5, 6, 7]  # pages 0-1 were the clone's source range
