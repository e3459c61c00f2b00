"""The fault-path rules are data of the design (``Variant.fault_rules``): DaxFS follows the
rules a design holds, not its name."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from sim.dax import DaxFS
from sim.dax.xarray_dax import MARK_DIRTY
from sim.memmap import VARIANTS
from sim.memmap.fault_rules import (
    BREAK_LAYOUTS,
    CONDITIONS,
    GENERATIONS,
    RULES_6_0,
    RULES_6_2,
    RULES_BY_GENERATION,
    FaultRules,
    holds,
    packed_holds,
)
from sim.memmap.variants import PageShare

NB = 1 << 12
PAGE = 4096


class PageShareSeedPaths(PageShare):
    """page-share's struct pages under the v6.0 fault paths."""

    name = "page-share-seed-paths"
    aliases = ()
    fault_rules = RULES_6_0


def _shared_pair(dfs: DaxFS) -> tuple[int, int]:
    a = dfs.fs.open("a", create=True)
    dfs.pwrite(a, 0, 4 * PAGE, 0x61)
    b = dfs.fs.open("b", create=True)
    dfs.clone(b, a)
    return a, b


def _state(dfs: DaxFS):
    xs = {ino: (dict(sp.xa.entries), dict(sp.xa.marks)) for ino, sp in sorted(dfs.spaces.items())}
    return xs, dfs.mm.mapping.tolist(), dfs.mm.index.tolist(), dict(dfs.mm.warnings)


def _read_then_write_shared(dfs: DaxFS):
    a, b = _shared_pair(dfs)
    va = dfs.mmap(1, a, 0, 4 * PAGE, huge=False)
    vb = dfs.mmap(2, b, 0, 4 * PAGE, huge=False)
    dfs.fault(va, 0, write=False)
    dfs.fault(vb, 0, write=False)
    dfs.fault(vb, 1, write=True)
    return a, b


def test_builtin_designs_hold_their_generation_rules():
    """kernel-semantics.md §2.1: <= v5.19 single owner, v6.0-6.1 cow-index, v6.2-6.14
    page-share, v6.15+ the folio designs (real-kernels.md §2: layouts broken with deletion)."""
    want = {
        "single-owner": "5.19",
        "cow-index": "6.0",
        "page-share": "6.2",
        "folio-share": "6.15",
        "folio-share-reset": "6.15",
    }
    for name, v in VARIANTS.items():
        assert v.fault_rules is RULES_BY_GENERATION[want[name]]
        assert DaxFS(NB, name).rules is v.fault_rules


def test_design_rules_drive_the_fault_paths():
    """A design holding the v6.0 rules behaves as page-share with the 6.0 override, and not
    as page-share: the 6.0 read fault dirties its entry and passes no flag."""
    own = DaxFS(NB, PageShareSeedPaths())
    over = DaxFS(NB, "page-share", generation="6.0")
    plain = DaxFS(NB, "page-share")
    for d in (own, over, plain):
        _read_then_write_shared(d)
    assert own.gen == "6.0"
    assert _state(own) == _state(over)
    assert _state(own) != _state(plain)
    a = own.fs.lookup("a")
    assert own.xarray(a).marks[0] & MARK_DIRTY  # read fault, dirty under "always"
    assert not plain.xarray(a).marks.get(0, 0) & MARK_DIRTY


@pytest.mark.parametrize("clear_first", [False, True])
def test_clear_dirty_first_rule(clear_first):
    """write(2) over a CoW'd block invalidates its entry (``invalidate_remapped``); a DIRTY
    entry (a read fault under ``dirty="always"``) is skipped by that invalidation unless
    __dax_clear_dirty_range runs first (``clear_dirty_first``)."""
    rules = dataclasses.replace(RULES_6_2, dirty="always", clear_dirty_first=clear_first)
    dfs = DaxFS(NB, "page-share", generation=rules)
    a, b = _shared_pair(dfs)
    vb = dfs.mmap(2, b, 0, 4 * PAGE, huge=False)
    dfs.fault(vb, 2, write=False)
    assert dfs.xarray(b).marks[2] & MARK_DIRTY
    dfs.pwrite(b, 2 * PAGE, PAGE, 0x63)  # write(2) CoWs b's block 2
    assert dfs.stats["cow_pages"] >= 1
    assert (2 in dfs.xarray(b).entries) == (not clear_first)
    assert dfs.vmas[vb].lookup(2) is None or clear_first


@pytest.mark.parametrize("write, shared", list(itertools.product((False, True), repeat=2)))
def test_packed_rules_agree(write, shared):
    for code, cond in enumerate(CONDITIONS):
        assert packed_holds(code, write, shared) == holds(cond, write, shared)
    for g in GENERATIONS:
        r = RULES_BY_GENERATION[g]
        p = r.pack()
        for field, off in (("flag", 0), ("replace", 3), ("dirty", 6), ("towrite", 9)):
            assert packed_holds((p >> off) & 7, write, shared) == holds(
                getattr(r, field), write, shared
            )
        assert bool(p >> 12 & 1) == r.invalidate_remapped
        assert bool(p >> 13 & 1) == r.clear_dirty_first
        assert BREAK_LAYOUTS[p >> 14 & 3] == r.break_layout


def test_bad_condition_rejected():
    with pytest.raises(ValueError, match="not a condition"):
        FaultRules("x", "sometimes", "never", "write", "never", False, False)
    assert RULES_6_2.pack() != RULES_6_0.pack()
