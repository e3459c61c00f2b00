"""The numba pieces of the compiled hunt engine against the Python they transcribe.

* :mod:`sim.fs.compiled_content` against :class:`sim.hunt.model.BytesContentModel`: random op
  sequences, after each op the same files, sizes and bytes (overflow with a tiny capacity:
  -1 exactly when the Python would grow a file past it, and nothing changed).
* :func:`sim.hunt.jit.generate.generate_op` against :func:`sim.hunt.search.generate_op` on
  real search sessions: from the same draw position the same number of doubles consumed and
  the same op, through the shared-pages protocol.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.fs.compiled_content import (
    cm_bytes,
    cm_clone,
    cm_create,
    cm_equal,
    cm_extend_to,
    cm_pwrite,
    cm_store,
    cm_truncate,
    cm_unlink,
    cm_zero,
    content_new,
    content_reset,
)
from sim.hunt import search
from sim.hunt.jit.generate import (
    EXHAUSTED,
    K_CLONE,
    K_DEDUPE,
    K_HWPOISON,
    K_MREAD,
    K_MUNMAP,
    K_MWRITE,
    K_PUNCH,
    K_PWRITE,
    K_TRUNCATE,
    K_UNLINK,
    K_UNSHARE,
    K_ZERO,
    MAX_DRAWS,
    PMD_BYTES,
    SMALL_BLOCKS,
    WEIGHTS,
    generate_op,
    kind_arrays,
)
from sim.hunt.model import BytesContentModel
from sim.hunt.search import Draws, _cum_weights, _shared_pages
from sim.hunt.search import generate_op as py_generate_op
from sim.hunt.session import OP_KINDS, Session

DESIGNS = ("page-share", "cow-index", "folio-share")
NSLOTS = 3


# --------------------------------------------------------------------------- content model


def _py_apply(m: BytesContentModel, op) -> None:
    name, a = op[0], op[1:]
    if name == "create":
        m.create(f"f{a[0]}")
    elif name == "unlink":
        m.unlink(f"f{a[0]}")
    elif name == "pwrite":
        m.pwrite(f"f{a[0]}", a[1], a[2], a[3])
    elif name == "store":
        m.store(f"f{a[0]}", a[1], a[2], a[3])
    elif name == "truncate":
        m.truncate(f"f{a[0]}", a[1])
    elif name == "zero":
        m.zero(f"f{a[0]}", a[1], a[2], extend=a[3])
    elif name == "extend_to":
        m.extend_to(f"f{a[0]}", a[1])
    elif name == "clone":
        m.clone(f"f{a[0]}", f"f{a[1]}", a[2], a[3], a[4])
    else:
        raise AssertionError(name)


def _jit_apply(s, op) -> int:
    name, a = op[0], op[1:]
    if name == "create":
        return cm_create(s, a[0])
    if name == "unlink":
        return cm_unlink(s, a[0])
    if name == "pwrite":
        return cm_pwrite(s, a[0], a[1], a[2], a[3])
    if name == "store":
        return cm_store(s, a[0], a[1], a[2], a[3])
    if name == "truncate":
        return cm_truncate(s, a[0], a[1])
    if name == "zero":
        return cm_zero(s, a[0], a[1], a[2], a[3])
    if name == "extend_to":
        return cm_extend_to(s, a[0], a[1])
    if name == "clone":
        return cm_clone(s, a[0], a[1], a[2], a[3], a[4])
    raise AssertionError(name)


_slot = st.integers(0, NSLOTS - 1)
_off = st.integers(0, 48)
_len = st.integers(0, 40)
_byte = st.integers(0, 300)  # past 0xFF: masked, as _fill does
_cm_op = st.one_of(
    st.tuples(st.just("create"), _slot),
    st.tuples(st.just("unlink"), _slot),
    st.tuples(st.just("pwrite"), _slot, _off, _len, _byte),
    st.tuples(st.just("store"), _slot, _off, _len, _byte),
    st.tuples(st.just("truncate"), _slot, st.integers(0, 80)),
    st.tuples(st.just("zero"), _slot, _off, _len, st.booleans()),
    st.tuples(st.just("extend_to"), _slot, st.integers(0, 80)),
    st.tuples(st.just("clone"), _slot, _slot, _off, _off, _len),
    st.tuples(st.just("reset")),
)


def _same(s, m: BytesContentModel, probe) -> None:
    for k in range(NSLOTS):
        f = f"f{k}"
        assert bool(s.exists[k]) == (f in m.files)
        if f in m.files:
            ref = bytes(m.files[f])
            assert s.size[k] == len(ref)
            assert cm_bytes(s, k) == ref
            off, ln = probe
            other = np.frombuffer(ref[off : off + ln], np.uint8)
            inside = off + ln <= len(ref)
            assert cm_equal(s, k, off, ln, other) == inside
            if inside and ln > 0:
                flipped = other.copy()
                flipped[ln // 2] ^= 1
                assert not cm_equal(s, k, off, ln, flipped)
        else:
            assert s.size[k] == 0
            assert cm_bytes(s, k) is None
            assert not cm_equal(s, k, 0, 0, np.zeros(0, np.uint8))


def _run_content(ops, cap: int, probe) -> int:
    s = content_new(NSLOTS, cap)
    s.data[:] = 0xEE  # stale garbage everywhere: it must never show
    s.pu[:, ::2] = -1  # stale descriptors too: mixed pages (the garbage bytes) ...
    s.pu[:, 1::2] = 0x5A  # ... and uniform ones
    m = BytesContentModel()
    overflows = 0
    for op in ops:
        if op[0] == "reset":
            content_reset(s)
            m = BytesContentModel()
            assert s.scal[0] == 0
            _same(s, m, probe)
            continue
        if op[0] == "clone" and f"f{op[2]}" not in m.files:
            with pytest.raises(KeyError):
                _py_apply(m, op)
            before = (s.exists.copy(), s.size.copy())
            assert _jit_apply(s, op) == -2
            assert (s.exists == before[0]).all() and (s.size == before[1]).all()
            continue
        trial = BytesContentModel()
        trial.files = {k: bytearray(v) for k, v in m.files.items()}
        _py_apply(trial, op)
        grew_past = any(len(v) > cap for v in trial.files.values())
        before = (s.exists.copy(), s.size.copy(), s.scal[0])
        r = _jit_apply(s, op)
        if grew_past:  # not representable: nothing changed, flag set
            assert r == -1
            assert s.scal[0] == 1
            assert (s.exists == before[0]).all() and (s.size == before[1]).all()
            overflows += 1
        else:
            assert r == 0
            assert s.scal[0] == before[2]
            m = trial
        _same(s, m, probe)
    return overflows


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(_cm_op, max_size=40), probe=st.tuples(st.integers(0, 60), _len))
def test_content_model_matches_bytes_model(ops, probe):
    _run_content(ops, 256, probe)


# the same at page scale: whole pages of one byte (descriptors), partial pages, clones
# across page boundaries at equal and unequal alignments, within one file both ways
_P = 4096
_poff = st.one_of(
    st.integers(0, 6).map(lambda k: k * _P),
    st.integers(0, 6 * _P),
    st.sampled_from([_P - 1, _P + 1, 2 * _P - 7]),
)
_plen = st.one_of(st.integers(0, 4).map(lambda k: k * _P), st.integers(0, 3 * _P))
_pbyte = st.integers(0x61, 0x7A)  # never 0: a zero write would look like a hole
_cm_page_op = st.one_of(
    st.tuples(st.just("pwrite"), _slot, _poff, _plen, _pbyte),
    st.tuples(st.just("store"), _slot, _poff, _plen, _pbyte),
    st.tuples(st.just("truncate"), _slot, _poff),
    st.tuples(st.just("zero"), _slot, _poff, _plen, st.booleans()),
    st.tuples(st.just("extend_to"), _slot, _poff),
    st.tuples(st.just("clone"), _slot, _slot, _poff, _poff, _plen),
    st.tuples(st.just("unlink"), _slot),
    st.tuples(st.just("reset")),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=st.lists(_cm_page_op, max_size=30),
    probe=st.tuples(st.integers(0, 8 * _P), st.integers(0, 2 * _P)),
)
def test_content_model_matches_bytes_model_at_page_scale(ops, probe):
    _run_content(ops, 10 * _P, probe)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=st.lists(_cm_op, max_size=30),
    probe=st.tuples(st.integers(0, 60), _len),
    cap=st.integers(0, 40),
)
def test_content_model_overflow_with_a_tiny_cap(ops, probe, cap):
    _run_content(ops, cap, probe)


def test_content_model_overflow_flag_and_reset():
    s = content_new(2, 16)
    assert cm_pwrite(s, 0, 10, 7, 0x61) == -1 and s.scal[0] == 1 and s.exists[0] == 0
    assert cm_pwrite(s, 0, 10, 6, 0x61) == 0 and s.size[0] == 16
    assert cm_truncate(s, 1, 17) == -1 and s.exists[1] == 0
    assert cm_zero(s, 1, 10, 7, False) == 0 and s.size[1] == 0  # no growth: fine
    assert cm_zero(s, 1, 10, 7, True) == -1
    assert cm_extend_to(s, 1, 17) == -1
    assert cm_clone(s, 1, 0, 0, 1, 0) == -1  # 16 bytes at 1
    assert cm_clone(s, 1, 0, 0, 0, 0) == 0 and cm_bytes(s, 1) == cm_bytes(s, 0)
    content_reset(s)
    assert s.scal[0] == 0 and not s.exists.any() and not s.size.any()
    assert cm_truncate(s, 0, 16) == 0 and cm_bytes(s, 0) == bytes(16)  # stale 'a's zeroed


def test_clone_within_one_file_is_a_memmove():
    for so, do in ((0, 3), (3, 0), (2, 2), (0, 10)):
        s = content_new(1, 64)
        m = BytesContentModel()
        for k, b in enumerate(range(0x61, 0x69)):
            cm_pwrite(s, 0, k, 1, b)
            m.pwrite("f0", k, 1, b)
        assert cm_clone(s, 0, 0, so, do, 5) == 0
        m.clone("f0", "f0", so, do, 5)
        assert cm_bytes(s, 0) == bytes(m.files["f0"])


# --------------------------------------------------------------------------- generate_op


class _CountingGenerator:
    """A numpy Generator for :class:`Draws` that counts the blocks it hands out."""

    def __init__(self, seed: int):
        self.g = np.random.default_rng(seed)
        self.calls = 0

    def random(self, n):
        self.calls += 1
        return self.g.random(n)


def _consumed(d: Draws) -> int:
    calls = d.rng.calls
    return 0 if calls == 0 else (calls - 1) * d.block + d.i


def _slot_of(path: str) -> int:
    if not path:
        return -1
    assert path[0] == "f" and path[1:].isdigit(), path
    return int(path[1:])


def _expected(op) -> list | None:
    if op is None:
        return None
    args = list(op.args) + [0] * (5 - len(op.args))
    return [OP_KINDS.index(op.kind), _slot_of(op.path), _slot_of(op.src)] + args


def _state(sess: Session, nfiles: int):
    cf = sess.model.content.files
    ex = np.zeros(nfiles, np.int64)
    sz = np.zeros(nfiles, np.int64)
    for k in range(nfiles):
        f = f"f{k}"
        if f in cf:
            ex[k] = 1
            sz[k] = cf[f].size
    maps = sess.mappings()
    ms = np.array([_slot_of(p) for p, _, _ in maps] + [0], np.int64)
    mo = np.array([o for _, o, _ in maps] + [0], np.int64)
    ml = np.array([n for _, _, n in maps] + [0], np.int64)
    return ex, sz, ms, mo, ml, len(maps)


def _episode(variant: str, seed: int, kinds: tuple, nfiles: int, nops: int, stats: dict):
    """One search-like episode, both generators compared before every op."""
    cw, codes = kind_arrays(kinds)
    assert cw.tolist() == _cum_weights(kinds)
    u = np.random.default_rng(seed).random(MAX_DRAWS * nops + 300)
    d = Draws(_CountingGenerator(seed))
    sess = Session(variant, snapshot=False, record=False)
    out = np.zeros(8, np.int64)
    try:
        for _ in range(nops):
            pos = _consumed(d)
            op = py_generate_op(d, sess, kinds, nfiles)
            used = _consumed(d)
            assert d.buf[d.i - 1] == u[used - 1]  # the same doubles
            ex, sz, ms, mo, ml, nm = _state(sess, nfiles)
            shared = np.zeros(1, np.int64)
            nshared, sslot = -1, -1
            for attempt in range(3):
                out[:] = 12345
                r = generate_op(
                    u, pos, cw, codes, nfiles, ex, sz, ms, mo, ml, nm, shared, nshared, sslot, out
                )
                if r > -2:
                    break
                assert attempt == 0
                assert (out == 12345).all()  # no side effects
                s = -(r + 2)
                assert 0 <= s < nfiles and ex[s] and sz[s] > 0
                pages = _shared_pages(sess, f"f{s}", int(sz[s]))
                shared = np.array(pages + [0], np.int64)
                nshared, sslot = len(pages), s
                stats["shared_asks"] += 1
                stats["shared_nonempty"] += bool(pages)
                # a wrong slot is asked again
                if nfiles > 1:
                    w = (s + 1) % nfiles
                    assert (
                        generate_op(
                            u,
                            pos,
                            cw,
                            codes,
                            nfiles,
                            ex,
                            sz,
                            ms,
                            mo,
                            ml,
                            nm,
                            shared,
                            nshared,
                            w,
                            out,
                        )
                        == r
                    )
            assert r == used > pos
            want = _expected(op)
            if want is None:
                assert out[0] == -1
                stats["none"] += 1
            else:
                assert out.tolist() == want, (op, out.tolist())
                stats[op.kind] = stats.get(op.kind, 0) + 1
            # out of doubles anywhere before the last draw: -1, no side effects
            for m in {pos, pos + 1, (pos + used) // 2, used - 1}:
                if pos <= m < used:
                    before = out.copy()
                    assert (
                        generate_op(
                            u[:m],
                            pos,
                            cw,
                            codes,
                            nfiles,
                            ex,
                            sz,
                            ms,
                            mo,
                            ml,
                            nm,
                            shared,
                            nshared,
                            sslot,
                            out,
                        )
                        == EXHAUSTED
                    )
                    assert (out == before).all()
            assert (
                generate_op(
                    u[:used],
                    pos,
                    cw,
                    codes,
                    nfiles,
                    ex,
                    sz,
                    ms,
                    mo,
                    ml,
                    nm,
                    shared,
                    nshared,
                    sslot,
                    out,
                )
                == used
            )
            if op is not None:
                sess.apply(op)
    finally:
        sess.close()


def _new_stats() -> dict:
    return {"shared_asks": 0, "shared_nonempty": 0, "none": 0}


@pytest.mark.parametrize("variant", DESIGNS)
def test_generate_op_matches_python_all_kinds(variant):
    stats = _new_stats()
    for seed in range(20):
        _episode(variant, seed, OP_KINDS, 3, 60, stats)
    for k in OP_KINDS:  # every kind, the protocol and "cannot apply" were exercised
        assert stats.get(k, 0) > 0, (k, stats)
    assert stats["shared_nonempty"] > 0 and stats["none"] > 0, stats


def test_generate_op_matches_python_map_and_clone_heavy():
    stats = _new_stats()
    kinds = ("pwrite", "clone", "dedupe", "mread", "mwrite", "hwpoison", "munmap")
    for i, variant in enumerate(DESIGNS):
        for seed in range(6):
            _episode(variant, 1000 * i + seed, kinds, 1 + seed % 4, 40, stats)
    assert stats["shared_nonempty"] > 10, stats


@st.composite
def _kinds(draw):
    rest = draw(st.lists(st.sampled_from(OP_KINDS[1:]), unique=True, max_size=11))
    at = draw(st.integers(0, len(rest)))
    return tuple(rest[:at]) + ("pwrite",) + tuple(rest[at:])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**63),
    kinds=_kinds(),
    nfiles=st.integers(1, 4),
    variant=st.sampled_from(DESIGNS),
)
def test_generate_op_matches_python_hypothesis(seed, kinds, nfiles, variant):
    _episode(variant, seed, kinds, nfiles, 30, _new_stats())


def test_constants_agree_with_the_search():
    assert WEIGHTS == search._WEIGHTS
    assert (SMALL_BLOCKS, PMD_BYTES) == (search.SMALL_BLOCKS, search.PMD_BYTES)


def test_kind_codes():
    codes = (
        K_PWRITE,
        K_TRUNCATE,
        K_PUNCH,
        K_ZERO,
        K_UNSHARE,
        K_CLONE,
        K_DEDUPE,
        K_MREAD,
        K_MWRITE,
        K_HWPOISON,
        K_MUNMAP,
        K_UNLINK,
    )
    assert codes == tuple(range(len(OP_KINDS)))
    cw, c = kind_arrays(("mread", "pwrite"))
    assert c.tolist() == [K_MREAD, K_PWRITE] and cw.dtype == np.float64 and c.dtype == np.int64


def test_predrawn_doubles_are_the_draws_blocks():
    a = np.random.default_rng(7).random(1000)
    d = Draws(np.random.default_rng(7))
    assert [d.random() for _ in range(1000)] == a.tolist()


def test_pwrite_on_empty_state_and_exhaustion():
    cw, codes = kind_arrays(("pwrite",))
    z = np.zeros(4, np.int64)
    out = np.zeros(8, np.int64)
    u = np.array([0.5, 0.0, 0.99, 0.01])  # kind, f0, byte 0x7a, the 2 MiB write
    assert generate_op(u, 0, cw, codes, 2, z, z, z, z, z, 0, z, -1, -1, out) == 4
    assert out.tolist() == [K_PWRITE, 0, -1, 0, 512 * 4096, 0x7A, 0, 0]
    assert generate_op(u[:3], 0, cw, codes, 2, z, z, z, z, z, 0, z, -1, -1, out) == EXHAUSTED
