"""The hunt's fast paths against their references: commands built without parsing, incremental
association truth, incremental search vs the paranoid (full-after-every-op) search."""

from __future__ import annotations

import numpy as np
import pytest

from sim.hunt import Session
from sim.hunt.incremental import Tracker
from sim.hunt.invariants import _orders, check_association, page_coverage
from sim.hunt.search import Draws, generate_op, hunt
from sim.hunt.session import OP_KINDS
from sim.memmap.layout import PMD_NPAGES
from sim.xfsio.parse import parse_command, parse_script
from sim.xfsio.runner import XfsioRunner
from tests.test_hunt import ForgetsOwner

DESIGNS = ["single-owner", "cow-index", "page-share", "folio-share", "folio-share-reset"]


def _episodes(variant, seed, n_episodes=3, n_ops=30, nfiles=3, nblocks=2048):
    """Random sessions (a generator of (session, applied op count) after every applied op)."""
    for ep in range(n_episodes):
        rng = Draws(np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(ep,))))
        s = Session(variant, nblocks=nblocks)
        for _ in range(n_ops):
            op = generate_op(rng, s, OP_KINDS, nfiles)
            if op is not None and s.apply(op):
                yield s


@pytest.mark.parametrize("variant", ["cow-index", "folio-share"])
def test_built_commands_equal_parsed_text(variant):
    n = 0
    for s in _episodes(variant, 5, n_episodes=2):
        for line, cmd in zip(s.lines[1:], s.commands, strict=True):
            p = parse_command(line, "<t>", cmd.line)
            assert (p.name, p.opts, p.args, p.text, p.line) == \
                (cmd.name, cmd.opts, cmd.args, cmd.text, cmd.line)
            n += 1
    assert n > 50


@pytest.mark.parametrize("variant", DESIGNS)
def test_rendered_script_replays_to_the_live_state(variant):
    """The text a session records, parsed and replayed by the xfs_io runner, leaves the same
    memmap words, file contents and free space as the live session."""
    done = 0
    for ep in range(3):
        rng = Draws(np.random.default_rng(np.random.SeedSequence(21, spawn_key=(ep,))))
        s = Session(variant, nblocks=2048)
        for _ in range(40):
            op = generate_op(rng, s, OP_KINDS, 3)
            if op is not None:
                s.apply(op)
        r = XfsioRunner(s.variant, filename="<replay>", check_model=False, device_bytes=1 << 20)
        r.run(parse_script("\n".join(s.lines) + "\n", "<replay>"))
        assert not r.result.failed, [c.describe() for c in r.result.failed]
        a, b = s.dax, r.dax
        assert np.array_equal(a.mm.mapping, b.mm.mapping)
        assert np.array_equal(a.mm.index, b.mm.index)
        assert a.fs.paths() == b.fs.paths()
        for p in a.fs.paths():
            assert a.fs.md5(a.fs.lookup(p)) == b.fs.md5(b.fs.lookup(p))
        assert a.fs.free_blocks() == b.fs.free_blocks()
        assert a.mm.warnings == b.mm.warnings
        done += len(s.op_lines)
    assert done > 60


def _coverage_matches(tr: Tracker) -> None:
    dfs = tr.dfs
    e = dfs.entries()
    k, ms, isum = page_coverage(e, dfs.mm.npages)
    P = np.arange(dfs.mm.npages, dtype=np.int64)
    assert np.array_equal(tr.K, k)
    assert np.array_equal(tr.MS[k > 0], ms[k > 0])
    one = k == 1
    assert np.array_equal((tr.D + P)[one], isum[one])
    blk = e["pfn"] // PMD_NPAGES
    nb = tr.BK.shape[0]
    assert np.array_equal(tr.BK, np.bincount(blk, minlength=nb))
    for got, w in ((tr.BM, e["mapping"]), (tr.BI, e["index"])):
        assert np.array_equal(got, np.bincount(blk, weights=w, minlength=nb).astype(np.int64))


@pytest.mark.parametrize("small_set", [48, 0], ids=["python", "vector"])
@pytest.mark.parametrize("variant", DESIGNS + [ForgetsOwner])
def test_tracker_finds_the_first_violation_the_full_check_finds(variant, small_set):
    """Per op: the coverage the tracker keeps equals the one rebuilt from every xarray, and
    in every episode the first op the full check fails at is the first op the incremental
    check fails at."""
    episodes = 0
    for seed in (1, 2):
        for ep in range(4):
            rng = Draws(np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(ep,))))
            s = Session(variant, nblocks=2048, snapshot=False)
            first_full = first_inc = None
            for i in range(30):
                op = generate_op(rng, s, OP_KINDS, 3)
                if op is None or not s.apply(op):
                    continue
                inc = s.tracker.first_bad(small_set=small_set) >= 0
                _coverage_matches(s.tracker)
                full = check_association(s.dax) is not None
                if first_full is None and full:
                    first_full = i
                if first_inc is None and inc:
                    first_inc = i
                if first_full is not None:
                    break
            assert first_full == first_inc, (seed, ep, first_full, first_inc)
            episodes += first_full is not None
    if variant in ("single-owner", "cow-index", "folio-share", ForgetsOwner):
        assert episodes >= 1  # the comparison saw violations, not only clean runs


def test_folio_order_changes_mark_the_block_dirty():
    s = Session("folio-share", nblocks=2048)
    from sim.hunt import Op

    assert s.apply(Op("pwrite", "f0", (0, 2 << 20, 0x61)))
    assert s.apply(Op("mread", "f0", (0, 2 << 20, 0, 1)))
    s.tracker.sync()
    order = np.array(_orders(s.dax.mm))
    assert (order == 9).any()
    s.tracker.begin()
    assert s.apply(Op("unlink", "f0"))
    s.tracker.sync()
    blk = int(np.flatnonzero(order == 9)[0])
    assert set(range(blk * 512, blk * 512 + 512)) <= s.tracker.pages
    assert s.tracker.first_bad() == -1


@pytest.mark.parametrize("variant", DESIGNS + [ForgetsOwner])
def test_incremental_hunt_equals_paranoid_hunt(variant):
    """The search with incremental checks finds what checking everything after every op
    finds, after the same number of ops."""
    for seed in (0, 3):
        a = hunt(variant, seed=seed, budget_ops=160)
        b = hunt(variant, seed=seed, budget_ops=160, paranoid=True)
        assert a.ops_run == b.ops_run
        assert {k: (f.ops_to_find, f.ops) for k, f in a.findings.items()} == \
            {k: (f.ops_to_find, f.ops) for k, f in b.findings.items()}
        for k, f in a.findings.items():
            assert f.violation.message == b.findings[k].violation.message


# ----------------------------------------------------------------------- content model
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from sim.hunt.model import BytesContentModel, ContentModel  # noqa: E402

_N = st.integers(0, 40)
_OPS = st.lists(st.one_of(
    st.tuples(st.just("pwrite"), st.sampled_from("ab"), _N, _N, st.integers(0, 3)),
    st.tuples(st.just("store"), st.sampled_from("ab"), _N, _N, st.integers(0, 3)),
    st.tuples(st.just("truncate"), st.sampled_from("ab"), _N),
    st.tuples(st.just("zero"), st.sampled_from("ab"), _N, _N, st.booleans()),
    st.tuples(st.just("extend_to"), st.sampled_from("ab"), _N),
    st.tuples(st.just("clone"), st.sampled_from("ab"), st.sampled_from("ab"), _N, _N, _N),
), max_size=30)


@settings(max_examples=200, deadline=None)
@given(_OPS)
def test_run_content_model_equals_bytes_model(ops):
    a, b = ContentModel(), BytesContentModel()
    for m in (a, b):
        m.create("a")
        m.create("b")
    for op in ops:
        k = op[0]
        for m in (a, b):
            if k == "pwrite":
                m.pwrite(op[1], op[2], op[3], op[4])
            elif k == "store":
                m.store(op[1], op[2], op[3], op[4])
            elif k == "truncate":
                m.truncate(op[1], op[2])
            elif k == "zero":
                m.zero(op[1], op[2], op[3], extend=op[4])
            elif k == "extend_to":
                m.extend_to(op[1], op[2])
            else:
                _k, dst, src, so, do, n = op
                if so < len(m.files[src]):
                    m.clone(dst, src, so, do, n)
        for p in "ab":
            f = a.files[p]
            assert bytes(f) == bytes(b.files[p]) and len(f) == len(b.files[p])
            assert f == b.files[p]
            assert all(f.vals[i] != f.vals[i + 1] for i in range(len(f.vals) - 1))
            assert f[3:17] == bytes(b.files[p][3:17])
            raw = bytes(b.files[p])
            assert f.matches(raw) and f.matches(b"")
            assert f.matches(raw[2:9], 2) == (len(raw) >= 2)
            assert not f.matches(raw + b"\0")
            if raw:
                assert not f.matches(raw[:-1] + bytes([raw[-1] ^ 1]))
    c = a.copy()
    assert all(bytes(c.files[p]) == bytes(a.files[p]) for p in "ab")
