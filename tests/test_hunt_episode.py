"""Per-episode work of the hunt made cheaper with identical results: the list-form refcount
check of ``FileSystem.check_invariants``, the clean-state fast path of the check after the
teardown (:func:`sim.hunt.invariants.check_all_empty`), sessions freed without a cyclic
collection, and the collector frozen during a search."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

from sim.fs.filesystem import FileSystem
from sim.hunt import Session
from sim.hunt.invariants import ALL_NAMES, check_all, check_all_empty
from sim.hunt.search import Draws, generate_op, hunt
from sim.hunt.session import OP_KINDS

VARIANTS = ("single-owner", "cow-index", "page-share", "folio-share", "folio-share-reset")


def _vectorised(fs: FileSystem):
    """``check_invariants`` with the list-form path turned off: None or the message."""
    fs._invariants_hold_small = lambda max_runs=512: False  # instance attribute shadows
    try:
        fs.check_invariants()
        return None
    except AssertionError as exc:
        return str(exc) or "failed"
    finally:
        del fs._invariants_hold_small


def _sessions(variant: str, seed: int, nops: int = 60):
    """A session after each of ``nops`` random ops (then after each teardown unlink)."""
    rng = Draws(np.random.default_rng(seed))
    s = Session(variant, snapshot=False)
    for _ in range(nops):
        op = generate_op(rng, s, OP_KINDS, 3)
        if op is not None and s.apply(op):
            yield s
    for f in ("f0", "f1", "f2"):
        if s.dax.fs.exists(f):
            from sim.hunt.session import Op

            s.apply(Op("unlink", f))
            yield s
    s.close()


@pytest.mark.parametrize("variant", ["page-share", "cow-index", "folio-share"])
def test_list_form_refcount_check_agrees_with_the_vectorised_one(variant):
    n = 0
    for seed in range(4):
        for s in _sessions(variant, seed):
            fs = s.dax.fs
            assert fs._invariants_hold_small() == (_vectorised(fs) is None)
            n += 1
    assert n > 100


def _corruptions(fs: FileSystem):
    """Ways to break refcount conservation on a copy of the state (each a callable)."""
    out = []
    R = fs.refc.lists()
    if R[0]:

        def bump_count(f):
            L = f.refc.lists()
            f.refc._l = [list(L[0]), list(L[1]), [c + 1 for c in L[2]]]
            f.refc._a = None

        out.append(bump_count)

        def drop_record(f):
            L = f.refc.lists()
            f.refc._l = [list(L[0][1:]), list(L[1][1:]), list(L[2][1:])]
            f.refc._a = None

        out.append(drop_record)

    def leak_free(f):
        f._nfree -= 1

    out.append(leak_free)

    def extra_record(f):
        L = f.refc.lists()
        f.refc._l = [list(L[0]) + [f.nblocks - 2], list(L[1]) + [1], list(L[2]) + [2]]
        f.refc._a = None

    out.append(extra_record)

    ino = next((i for i, ip in fs.inodes.items() if len(ip.ext)), None)
    if ino is not None:

        def free_a_referenced_block(f):
            ip = f.inodes[ino]
            p = ip.ext.lists()[2][0]
            L = f.free.lists()
            # the block moves to the free list while staying referenced, and the counts add up
            S = sorted(list(zip(L[0], L[1], strict=True)) + [(p, 1)])
            f.free._l = [[a for a, _ in S], [b for _, b in S]]
            f.free._a = None
            f._nfree += 1

        out.append(free_a_referenced_block)
    return out


def _copy_fs(fs: FileSystem) -> FileSystem:
    import copy

    return copy.deepcopy(fs)


@pytest.mark.parametrize("variant", ["page-share", "folio-share"])
def test_list_form_refcount_check_never_passes_a_broken_state(variant):
    """Broken states fail the list-form path and check_invariants raises what the
    vectorised check raises."""
    seen = 0
    for seed in range(3):
        for k, s in enumerate(_sessions(variant, seed, nops=40)):
            if k % 7:
                continue
            for corrupt in _corruptions(s.dax.fs):
                f = _copy_fs(s.dax.fs)
                corrupt(f)
                want = _vectorised(f)
                assert want is not None, corrupt.__name__
                assert not f._invariants_hold_small(), corrupt.__name__
                with pytest.raises(AssertionError) as ei:
                    f.check_invariants()
                assert (str(ei.value) or "failed") == want
                seen += 1
    assert seen > 20


def test_refcount_check_of_an_empty_and_a_fresh_filesystem():
    fs = FileSystem(64)
    assert fs._invariants_hold_small()
    fs.check_invariants()
    fs._nfree -= 1
    assert not fs._invariants_hold_small()
    with pytest.raises(AssertionError, match="used 0 \\+ free 63 \\+ metadata 0 != 64"):
        fs.check_invariants()


@pytest.mark.parametrize("variant", VARIANTS)
def test_check_all_empty_equals_check_all_after_every_teardown(variant):
    """After each teardown (clean or with residue, warnings, phantoms) the fast path returns
    what check_all returns."""
    from tests.test_hunt import ForgetsOwner

    dirty = 0
    for v in (variant, ForgetsOwner()):
        for seed in range(6):
            rng = Draws(np.random.default_rng(seed))
            s = Session(v, snapshot=False)
            for _ in range(30):
                op = generate_op(rng, s, OP_KINDS, 3)
                if op is not None:
                    s.apply(op)
            from sim.hunt.session import Op

            for f in ("f0", "f1", "f2"):
                s.apply(Op("unlink", f))
            assert not s.dax.fs.names
            for poisoned in (False, True):
                want = check_all(s.dax, s.model, ALL_NAMES, poisoned=poisoned)
                got = check_all_empty(s.dax, s.model, ALL_NAMES, poisoned=poisoned)
                assert [(x.invariant, x.message) for x in got] == [
                    (x.invariant, x.message) for x in want
                ]
                dirty += bool(want)
            s.close()
    if variant in ("single-owner", "cow-index", "folio-share"):
        assert dirty  # the comparison saw violations, not only clean states


def test_check_all_empty_reports_a_leaked_block():
    s = Session("page-share", snapshot=False)
    from sim.hunt.session import Op

    s.apply(Op("pwrite", "f0", (0, 8192, 0x61)))
    s.apply(Op("unlink", "f0"))
    assert check_all_empty(s.dax, s.model, ALL_NAMES, poisoned=False) == []
    s.model.baseline_free += 1
    got = check_all_empty(s.dax, s.model, ALL_NAMES, poisoned=False)
    assert [v.invariant for v in got] == ["refcount_conservation"]
    assert got[0].message == check_all(s.dax, s.model, ALL_NAMES, poisoned=False)[0].message


def test_closed_session_is_freed_without_the_cyclic_collector():
    s = Session("page-share", snapshot=False)
    from sim.hunt.session import Op

    s.apply(Op("pwrite", "f0", (0, 8192, 0x61)))
    s.apply(Op("mread", "f0", (0, 8192, 0, 100)))
    s.check()
    refs = [weakref.ref(s.runner), weakref.ref(s.dax), weakref.ref(s.dax.fs)]
    enabled = gc.isenabled()
    gc.disable()
    try:
        s.close()
        del s
        assert [r() for r in refs] == [None, None, None]
    finally:
        if enabled:
            gc.enable()


def test_hunt_restores_the_collector_state():
    before = gc.get_freeze_count()
    r = hunt("page-share", seed=3, budget_ops=60)
    assert r.ops_run == 60
    assert gc.get_freeze_count() == before
