"""Seeded random search for invariant violations.

The search runs *episodes*: a fresh filesystem (:class:`~sim.hunt.session.Session`), up to
``episode_len`` random ops over ``nfiles`` files and their mappings, then a teardown that
unlinks every file (so "nothing left behind" and the free-block baseline are checked at a
quiescent point in every episode). Every invariant is checked after every op (see
:mod:`sim.hunt.invariants` for which are per-op and which quiescent). Episode ``e`` draws from
``np.random.default_rng(SeedSequence(seed, spawn_key=(e,)))``, so a run is reproducible from
its seed and the op budget; a wall-time budget only decides where it stops.

The first violation of each invariant is kept with the ops of its episode up to the op that
broke it (the shrinker's input) and the global count of checked ops at that point.
"""

from __future__ import annotations

import bisect
import functools
import time
from dataclasses import dataclass, field

import numpy as np

from sim.errors import InputError
from sim.hunt.designs import load_variant
from sim.hunt.invariants import ALL_NAMES, Violation
from sim.hunt.session import DEFAULT_NBLOCKS, OP_KINDS, PAGE, Op, Session

__all__ = ["Finding", "HuntResult", "hunt", "parse_ops", "OP_ALIASES", "generate_op", "Draws"]

#: Accepted names in ``--ops`` (besides the kinds themselves).
OP_ALIASES = {
    "reflink": "clone", "clone_range": "clone", "read": "mread", "write": "mwrite",
    "read_fault": "mread", "write_fault": "mwrite", "write2": "pwrite", "fpunch": "punch",
    "fzero": "zero", "funshare": "unshare", "memory_failure": "hwpoison", "poison": "hwpoison",
    "remap": "munmap", "re-mmap": "munmap",
}
_WEIGHTS = {"pwrite": 3.0, "clone": 3.0, "dedupe": 1.0, "mread": 4.0, "mwrite": 3.0,
            "truncate": 1.0, "punch": 1.0, "zero": 1.0, "unshare": 1.0, "unlink": 0.7,
            "hwpoison": 1.0, "munmap": 2.0}
#: File range most ops land in (blocks); a 2 MiB write now and then makes PMD faults possible.
SMALL_BLOCKS = 8
PMD_BYTES = 512 * PAGE


def parse_ops(text: str | None) -> tuple[str, ...]:
    """``"clone,read,write"`` -> op kinds (InputError on an unknown name)."""
    if not text:
        return OP_KINDS
    out = []
    for t in (x.strip() for x in text.split(",")):
        if not t:
            continue
        k = OP_ALIASES.get(t, t)
        if k not in OP_KINDS:
            raise InputError(f"unknown op {t!r}; valid: {', '.join(OP_KINDS)} "
                             f"(aliases: {', '.join(sorted(OP_ALIASES))})", where="--ops")
        if k not in out:
            out.append(k)
    if not out:
        raise InputError("no op kinds given", where="--ops")
    return tuple(out)


@dataclass
class Finding:
    """The first violation of one invariant."""

    invariant: str
    violation: Violation
    ops_to_find: int
    ops: list
    episode: int
    shrunk: object = None  # ShrinkResult, set by the shrinker


@dataclass
class HuntResult:
    """Outcome of one hunt on one design."""

    variant: str
    seed: int
    ops_run: int
    episodes: int
    seconds: float
    findings: dict = field(default_factory=dict)
    names: tuple = ALL_NAMES
    nblocks: int = DEFAULT_NBLOCKS


@functools.lru_cache(maxsize=64)
def _cum_weights(kinds: tuple) -> list:
    return np.cumsum([_WEIGHTS[k] for k in kinds]).tolist()


class Draws:
    """Uniform draws from a numpy Generator, fetched ``block`` at a time (one vectorised
    call per block instead of one per draw); reproducible from the Generator's seed.

    ``integers(n)`` is uniform on ``[0, n)``, ``integers(lo, hi)`` on ``[lo, hi)``.
    """

    __slots__ = ("rng", "block", "buf", "i")

    def __init__(self, rng: np.random.Generator, block: int = 256):
        self.rng = rng
        self.block = int(block)
        self.buf: list = []
        self.i = 0

    def random(self) -> float:
        i = self.i
        if i >= len(self.buf):
            self.buf = self.rng.random(self.block).tolist()
            i = 0
        self.i = i + 1
        return self.buf[i]

    def integers(self, lo: int, hi: int | None = None) -> int:
        if hi is None:
            lo, hi = 0, lo
        return min(lo + int(self.random() * (hi - lo)), hi - 1)


@functools.lru_cache(maxsize=16)
def _files(nfiles: int) -> tuple:
    return tuple(f"f{i}" for i in range(nfiles))


def _size(sess: Session, path: str) -> int:
    fs = sess.dax.fs
    return fs.size(fs.lookup(path)) if fs.exists(path) else -1


def _shared_pages(sess: Session, path: str, size: int) -> list[int]:
    """File pages of ``path`` (inside EOF) whose block has a refcount above 1."""
    fs = sess.dax.fs
    nb = -(-size // PAGE)
    if nb <= 0:
        return []
    f, n, p, _st, c = fs.bmap_arrays(fs.lookup(path), 0, nb)
    out: list[int] = []
    for fi, ni in zip(f[c > 1].tolist(), n[c > 1].tolist(), strict=True):
        out.extend(range(fi, min(fi + ni, nb)))
        if len(out) > 4096:
            break
    return out


def generate_op(rng, sess: Session, kinds, nfiles: int) -> Op | None:
    """One random op for the session's current state (None if the drawn kind cannot apply).

    ``rng`` is a :class:`Draws` (a numpy Generator is wrapped in one)."""
    if not isinstance(rng, Draws):
        rng = Draws(rng, block=16)
    cw = _cum_weights(tuple(kinds))
    k = kinds[min(bisect.bisect_right(cw, rng.random() * cw[-1]), len(kinds) - 1)]
    files = _files(nfiles)
    # sizes from the content model (equal to the filesystem's while data_integrity holds,
    # which the search checks after every op)
    cf = sess.model.content.files
    sizes = {f: len(cf[f]) if f in cf else -1 for f in files}
    live = [f for f in files if sizes[f] >= 0]
    nonempty = [f for f in live if sizes[f] > 0]
    path = files[int(rng.integers(nfiles))]
    byte = int(rng.integers(0x61, 0x7b))
    ri = rng.integers
    if k == "pwrite":
        if rng.random() < 0.08:
            return Op("pwrite", path, (0, PMD_BYTES, byte))
        if rng.random() < 0.7:
            return Op("pwrite", path, (int(ri(SMALL_BLOCKS)) * PAGE, int(ri(1, 9)) * PAGE, byte))
        return Op("pwrite", path, (int(ri(SMALL_BLOCKS * PAGE)), int(ri(1, 3 * PAGE)), byte))
    if k in ("truncate", "punch", "zero", "unshare"):
        if not live:
            return None
        path = live[int(ri(len(live)))]
        size = sizes[path]
        if k == "truncate":
            v = int(ri(SMALL_BLOCKS * PAGE + 1))
            return Op(k, path, ((v // PAGE) * PAGE if rng.random() < 0.5 else v,))
        top = max(size, PAGE) + 2 * PAGE
        if rng.random() < 0.6:
            off = int(ri(top // PAGE)) * PAGE
            ln = int(ri(1, 9)) * PAGE
        else:
            off = int(ri(top))
            ln = int(ri(1, 3 * PAGE))
        if k == "zero":
            return Op(k, path, (off, ln, int(rng.random() < 0.5)))
        return Op(k, path, (off, ln))
    if k in ("clone", "dedupe"):
        if not nonempty:
            return None
        src = nonempty[int(ri(len(nonempty)))]
        others = [f for f in files if f != src]
        dst = others[int(ri(len(others)))] if others and rng.random() < 0.85 else src
        ssize = sizes[src]
        if k == "clone":
            if dst != src and rng.random() < 0.3:
                return Op("clone", dst, (0, 0, 0), src)  # whole file (FICLONE-like)
            soff = int(ri(-(-ssize // PAGE))) * PAGE
            full = (ssize - soff) // PAGE
            ln = 0 if full == 0 or rng.random() < 0.3 else int(ri(1, min(full, 8) + 1)) * PAGE
            doff = int(ri(SMALL_BLOCKS)) * PAGE
            if dst == src:  # same file: keep the ranges apart
                doff = soff + max(ln, ssize - soff) + int(ri(4)) * PAGE
                doff = -(-doff // PAGE) * PAGE
            return Op("clone", dst, (soff, doff, ln), src)
        dsize = sizes[dst]
        if dsize <= 0 or dst == src:
            return None
        nb = min(ssize, dsize) // PAGE
        if nb == 0:
            return None
        soff = int(ri(nb)) * PAGE
        doff = soff if rng.random() < 0.5 else int(ri(nb)) * PAGE
        room = min(ssize - soff, dsize - doff) // PAGE
        if room <= 0:
            return None
        return Op("dedupe", dst, (soff, doff, int(ri(1, min(room, 8) + 1)) * PAGE), src)
    if k in ("mread", "mwrite", "hwpoison"):
        if not nonempty:
            return None
        path = nonempty[int(ri(len(nonempty)))]
        size = sizes[path]
        maps = [m for m in sess.mappings() if m[0] == path]
        shared = _shared_pages(sess, path, size) if rng.random() < 0.5 else []
        if shared:  # aim at a block another file (or offset) also references
            pg = shared[int(ri(len(shared)))]
            cover = [m for m in maps if m[1] <= pg * PAGE < m[1] + m[2]]
            if cover and rng.random() < 0.6:
                _, moff, mlen = cover[int(ri(len(cover)))]
            else:
                moff, mlen = pg * PAGE, int(ri(1, 5)) * PAGE
            if k == "hwpoison":
                return Op(k, path, (moff, mlen, pg * PAGE, PAGE))
            if k == "mread":
                return Op(k, path, (moff, mlen, pg * PAGE, int(ri(1, PAGE))))
            return Op(k, path, (moff, mlen, pg * PAGE, int(ri(1, PAGE)), byte))
        if size >= PMD_BYTES and rng.random() < 0.5:
            moff, mlen = 0, PMD_BYTES
        elif maps and rng.random() < 0.6:
            _, moff, mlen = maps[int(ri(len(maps)))]
        else:
            moff = int(ri(-(-size // PAGE))) * PAGE
            mlen = int(ri(1, 17)) * PAGE
        lo, hi = moff // PAGE, min(moff + mlen, size + PAGE - 1) // PAGE
        if hi <= lo:
            return None
        pg = int(ri(lo, hi))
        if k == "hwpoison":
            return Op(k, path, (moff, mlen, pg * PAGE, PAGE * int(ri(1, 3))))
        off = pg * PAGE + (int(ri(PAGE)) if rng.random() < 0.3 else 0)
        ln = int(ri(1, 2 * PAGE))
        if k == "mread":
            return Op(k, path, (moff, mlen, off, ln))
        return Op(k, path, (moff, mlen, off, ln, byte))
    if k == "munmap":
        maps = sess.mappings()
        if not maps:
            return None
        p, moff, mlen = maps[int(ri(len(maps)))]
        return Op("munmap", p, (moff, mlen))
    if k == "unlink":
        if not live:
            return None
        return Op("unlink", live[int(ri(len(live)))])
    raise ValueError(k)


def _rederive(variant, ops, name: str, nblocks: int, v: Violation) -> Violation:
    """The violation as a session with snapshots sees it after the last of ``ops`` (the
    "before" words of explanations; the search runs without snapshots)."""
    sess = Session(variant, nblocks=nblocks, paranoid=True)
    for op in ops:
        sess.apply(op)
    w = sess.check_one(name, full=True)
    return w if w is not None and w.invariant == v.invariant else v


#: Checked in full before each episode's teardown (a quiescent point with every file still
#: there); after the teardown (no file left) :meth:`Session.check` checks everything in full.
_QUIESCENT = ("no_warnings", "data_integrity", "refcount_conservation")


def hunt(variant, *, seed: int = 0, budget_ops: int | None = 2000, time_s: float | None = None,
         kinds=None, nfiles: int = 3, names=ALL_NAMES, episode_len: int = 24,
         nblocks: int = DEFAULT_NBLOCKS, progress=None, paranoid: bool = False) -> HuntResult:
    """Search one design for violations of ``names``.

    Parameters
    ----------
    variant : str or Variant
    seed : int
        Entropy of the SeedSequence.
    budget_ops : int or None
        Stop after this many checked ops (None: no op limit).
    time_s : float or None
        Stop after this many seconds (None: no time limit). At least one limit is needed.
    kinds : sequence of str, optional
        Op kinds to draw from (default: all of :data:`~sim.hunt.session.OP_KINDS`).
    nfiles : int
        Files the ops range over.
    names : sequence of str
        Invariants (and limits) to check.
    episode_len : int
        Random ops per episode before the teardown unlinks.
    nblocks : int
        Device size in blocks.
    progress : callable, optional
        Called as ``progress(ops_run)`` after each episode.
    paranoid : bool
        Check every invariant in full after every op (the reference the incremental checks
        are tested against; the same findings, much slower).

    Returns
    -------
    HuntResult
    """
    if budget_ops is None and time_s is None:
        raise InputError("give an op budget or a time budget", where="--budget/--time")
    if nfiles < 1:
        raise InputError(f"need at least one file, got {nfiles}", where="--files")
    kinds = tuple(kinds) if kinds else OP_KINDS
    names = tuple(names)
    vname = load_variant(variant).name
    t0 = time.perf_counter()
    ops_run = 0
    episode = 0
    findings: dict[str, Finding] = {}
    files = [f"f{i}" for i in range(nfiles)]
    todo = list(names)

    def out_of_budget() -> bool:
        if budget_ops is not None and ops_run >= budget_ops:
            return True
        return time_s is not None and time.perf_counter() - t0 >= time_s

    def found(v: Violation, ops: list) -> None:
        v = _rederive(variant, ops, v.invariant, nblocks, v)
        findings[v.invariant] = Finding(v.invariant, v.with_op(len(ops) - 1), ops_run,
                                        list(ops), episode)

    while not out_of_budget() and len(findings) < len(names):
        rng = Draws(np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(episode,))))
        sess = Session(variant, nblocks=nblocks, snapshot=False, paranoid=paranoid)
        ops: list[Op] = []
        draws = 0
        teardown = False
        exists = sess.dax.fs.exists
        while not out_of_budget():
            if not teardown and draws >= episode_len:
                teardown = True
                if ops and not paranoid:  # quiescent point: everything in full
                    todo = [n for n in _QUIESCENT if n in names and n not in findings]
                    for v in sess.check(todo, full=True):
                        found(v, ops)
            if teardown:
                live = [f for f in files if exists(f)]
                if not live:
                    break
                op = Op("unlink", live[0])
            else:
                draws += 1
                op = generate_op(rng, sess, kinds, nfiles)
                if op is None:
                    continue
            if not sess.apply(op):
                continue
            ops.append(op)
            ops_run += 1
            if len(todo) + len(findings) != len(names):
                todo = [n for n in names if n not in findings]
            for v in sess.check(todo):
                found(v, ops)
            if len(findings) == len(names):
                break
        episode += 1
        if progress is not None:
            progress(ops_run)
    return HuntResult(vname, int(seed), ops_run, episode, time.perf_counter() - t0, findings,
                      names, nblocks)
