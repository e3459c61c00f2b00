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
            assert (p.name, p.opts, p.args, p.text, p.line) == (
                cmd.name,
                cmd.opts,
                cmd.args,
                cmd.text,
                cmd.line,
            )
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


def test_entry_hook_coverage_through_pmd_entries_and_eviction():
    """The coverage folded in from ``DaxFS.entry_hook`` equals the one rebuilt from every
    xarray after each op, PMD entries and the eviction of a mapped, shared file included;
    a hook already installed keeps being called."""
    from sim.hunt import Op

    for variant in ("page-share", "folio-share"):
        s = Session(variant, nblocks=2048)
        m2 = 2 << 20
        ops = [
            Op("pwrite", "f0", (0, m2, 0x61)),
            Op("mread", "f0", (0, m2, 4096, 1)),
            Op("clone", "f1", (0, 0, 0), "f0"),
            Op("mread", "f1", (0, m2, 0, 1)),
            Op("mread", "f1", (8192, 4096, 8192, 1)),
            Op("mwrite", "f1", (0, m2, 0, 1, 0x62)),
            Op("pwrite", "f0", (0, 4096, 0x63)),
            Op("unlink", "f1"),
            Op("unlink", "f0"),
        ]
        for op in ops[:2]:
            assert s.apply(op)
        seen: list = []
        s.tracker.detach()
        s.dax.entry_hook = lambda *a, seen=seen: seen.append(a)
        tr = Tracker(s.dax)  # folds in the PMD entry already there; chains the hook above
        s.tracker = tr
        _coverage_matches(tr)
        assert tr.nentries == 1
        for op in ops[2:]:
            assert s.apply(op)
            _coverage_matches(tr)
            assert tr.nentries == s.dax.entries()["pfn"].shape[0]
        assert s.dax.stats["pmd_faults"] >= 1
        assert tr.nentries == 0 and not tr.K.any() and not tr.BK.any()
        assert seen and any(new is None for *_x, new in seen)  # erases reached the old hook
        s.close()
        assert (
            s.dax.entry_hook is not None and getattr(s.dax.entry_hook, "__self__", None) is not tr
        )


@pytest.mark.parametrize("variant", DESIGNS + [ForgetsOwner])
def test_incremental_hunt_equals_paranoid_hunt(variant):
    """The search with incremental checks finds what checking everything after every op
    finds, after the same number of ops."""
    for seed in (0, 3):
        a = hunt(variant, seed=seed, budget_ops=160)
        b = hunt(variant, seed=seed, budget_ops=160, paranoid=True)
        assert a.ops_run == b.ops_run
        assert {k: (f.ops_to_find, f.ops) for k, f in a.findings.items()} == {
            k: (f.ops_to_find, f.ops) for k, f in b.findings.items()
        }
        for k, f in a.findings.items():
            assert f.violation.message == b.findings[k].violation.message


# ----------------------------------------------------------------------- content model
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from sim.hunt.model import BytesContentModel, ContentModel  # noqa: E402

_N = st.integers(0, 40)
_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("pwrite"), st.sampled_from("ab"), _N, _N, st.integers(0, 3)),
        st.tuples(st.just("store"), st.sampled_from("ab"), _N, _N, st.integers(0, 3)),
        st.tuples(st.just("truncate"), st.sampled_from("ab"), _N),
        st.tuples(st.just("zero"), st.sampled_from("ab"), _N, _N, st.booleans()),
        st.tuples(st.just("extend_to"), st.sampled_from("ab"), _N),
        st.tuples(st.just("clone"), st.sampled_from("ab"), st.sampled_from("ab"), _N, _N, _N),
    ),
    max_size=30,
)


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


# ----------------------------------------------------------------------- workers
def _result_key(r):
    return (
        r.ops_run,
        r.episodes,
        list(r.findings),
        {
            k: (
                f.ops_to_find,
                f.ops,
                f.episode,
                f.violation.message,
                f.violation.before,
                f.violation.after,
                f.violation.op_index,
            )
            for k, f in r.findings.items()
        },
    )


@pytest.mark.parametrize(
    "variant,budget,names",
    [
        ("cow-index", 700, None),  # stops at the budget, mid-episode
        ("folio-share", 400, None),
        (ForgetsOwner, 500, ("association_truth", "no_warnings")),
        ("single-owner", 5000, ("association_truth",)),  # stops once everything is found
    ],
)
def test_workers_give_the_same_result(variant, budget, names):
    kw = {} if names is None else {"names": names}
    a = hunt(variant, seed=2, budget_ops=budget, **kw)
    b = hunt(variant, seed=2, budget_ops=budget, workers=2, **kw)
    assert _result_key(a) == _result_key(b)
    assert a.findings  # the comparison covers findings, not only op counts
    if names == ("association_truth",):
        assert a.ops_run < budget


def test_workers_with_a_time_budget_stop_and_replay():
    r = hunt("folio-share", seed=3, budget_ops=None, time_s=0.5, workers=2)
    assert r.ops_run > 0 and r.episodes >= 1
    for name, f in r.findings.items():
        s = Session("folio-share")
        for op in f.ops:
            s.apply(op)
        assert s.check_one(name) is not None


# ----------------------------------------------------------------------- data check
@pytest.fixture
def broken_fs(monkeypatch):
    """A filesystem whose long writes land one wrong byte in the middle of the range (far
    from both ends: a check of the first and last page would not see it)."""
    from sim.fs import FileSystem

    real = FileSystem.pwrite

    def pwrite(self, ino, off, length, byte):
        ch = real(self, ino, off, length, byte)
        if length >= 16 * 4096:
            self.store(ino, off + length // 2 + 5, 1, byte ^ 0x01)
        return ch

    monkeypatch.setattr(FileSystem, "pwrite", pwrite)


def test_byte_run_data_check_catches_a_corrupted_byte(broken_fs):
    from sim.hunt import Op

    s = Session("page-share", snapshot=False)
    assert s.apply(Op("pwrite", "f0", (0, 8192, 0x61)))
    assert s.check() == []
    assert s.apply(Op("pwrite", "f0", (4096, 2 << 20, 0x62)))
    bad = (2 << 20) // 2 + 5 + 4096
    v = [v for v in s.check() if v.invariant == "data_integrity"]
    assert v and f"byte {bad} reads 0x63, model 0x62" in v[0].message
    # the incremental search finds it at the op that corrupted, as the paranoid one does
    # (on the Python stack: the corruption is patched into it, not into the compiled engine)
    a = hunt("page-share", seed=0, budget_ops=300, names=("data_integrity",), compiled=False)
    b = hunt("page-share", seed=0, budget_ops=300, names=("data_integrity",), paranoid=True)
    fa = a.findings["data_integrity"]
    assert fa.ops[-1].kind == "pwrite" and fa.ops[-1].args[1] >= 16 * 4096
    assert (fa.ops_to_find, fa.ops) == (
        b.findings["data_integrity"].ops_to_find,
        b.findings["data_integrity"].ops,
    )


def test_runs_match_against_read_bytes():
    """``runs_match`` (byte runs) agrees with comparing the bytes read(2) returns."""
    from sim.hunt.invariants import runs_match

    n = 0
    for s in _episodes("page-share", 9, n_episodes=2, n_ops=25):
        fs = s.dax.fs
        for path, want in s.model.content.files.items():
            ino = fs.lookup(path)
            size = len(want)
            for a, b in ((0, size), (size // 3, size), (0, size // 2 + 1)):
                if b <= a:
                    continue
                assert runs_match(fs, ino, want, a, b) == want.matches(fs.pread(ino, a, b - a), a)
                n += 1
            if size:  # a model that differs in one byte no longer matches
                other = s.model.content.copy().files[path]
                other.assign(size - 1, size, want.read(size - 1, size)[0] ^ 1)
                assert not runs_match(fs, ino, other, 0, size)
    assert n > 40
