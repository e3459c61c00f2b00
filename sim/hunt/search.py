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

Episodes are independent: checks change no state, so the ops of episode ``e`` and the first
violation of each invariant in it do not depend on what other episodes found. ``workers=N``
runs episodes in ``N`` processes (``concurrent.futures.ProcessPoolExecutor``, forked so they
inherit the imports and compiled kernels; this process runs the first episode itself) and
merges them in episode order exactly as one process would have met them: the op budget
cuts the last episode where one process would have stopped, and the search stops right
after the check that finds the last invariant. With an op budget the result (findings,
their ops, ``ops_to_find``, ``ops_run``, ``episodes``) is therefore the same for any number
of workers; with a time budget only where it stops differs (workers run whole episodes).
"""

from __future__ import annotations

import bisect
import functools
import gc
import time
from dataclasses import dataclass, field

import numpy as np

from sim.constants import PMD_SIZE
from sim.errors import InputError
from sim.hunt.invariants import ALL_NAMES, Violation
from sim.hunt.rng import EpisodeStreams
from sim.hunt.session import DEFAULT_NBLOCKS, OP_KINDS, PAGE, Op, Session
from sim.memmap.variants import get_variant

__all__ = ["Finding", "HuntResult", "hunt", "parse_ops", "OP_ALIASES", "generate_op", "Draws"]

#: Accepted names in ``--ops`` (besides the kinds themselves).
OP_ALIASES = {
    "reflink": "clone",
    "clone_range": "clone",
    "read": "mread",
    "write": "mwrite",
    "read_fault": "mread",
    "write_fault": "mwrite",
    "write2": "pwrite",
    "fpunch": "punch",
    "fzero": "zero",
    "funshare": "unshare",
    "memory_failure": "hwpoison",
    "poison": "hwpoison",
    "remap": "munmap",
    "re-mmap": "munmap",
}
_WEIGHTS = {
    "pwrite": 3.0,
    "clone": 3.0,
    "dedupe": 1.0,
    "mread": 4.0,
    "mwrite": 3.0,
    "truncate": 1.0,
    "punch": 1.0,
    "zero": 1.0,
    "unshare": 1.0,
    "unlink": 0.7,
    "hwpoison": 1.0,
    "munmap": 2.0,
}
#: File range most ops land in (blocks); a 2 MiB write now and then makes PMD faults possible.
SMALL_BLOCKS = 8
PMD_BYTES = PMD_SIZE


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
            raise InputError(
                f"unknown op {t!r}; valid: {', '.join(OP_KINDS)} "
                f"(aliases: {', '.join(sorted(OP_ALIASES))})",
                where="--ops",
            )
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
    #: Episodes run on the Python stack (all of them without the compiled engine; with it,
    #: those it handed back: a possible violation, or an overflow of its capacities).
    episodes_python: int = 0


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
        """A uniform float on ``[0, 1)``."""
        i = self.i
        if i >= len(self.buf):
            self.buf = self.rng.random(self.block).tolist()
            i = 0
        self.i = i + 1
        return self.buf[i]

    def integers(self, lo: int, hi: int | None = None) -> int:
        """A uniform integer on ``[0, lo)`` or ``[lo, hi)``."""
        if hi is None:
            lo, hi = 0, lo
        i = self.i
        buf = self.buf
        if i >= len(buf):
            buf = self.buf = self.rng.random(self.block).tolist()
            i = 0
        self.i = i + 1
        v = lo + int(buf[i] * (hi - lo))
        return v if v < hi else hi - 1


@functools.lru_cache(maxsize=16)
def _files(nfiles: int) -> tuple:
    return tuple(f"f{i}" for i in range(nfiles))


def _size(sess: Session, path: str) -> int:
    fs = sess.dax.fs
    return fs.size(fs.lookup(path)) if fs.exists(path) else -1


def _shared_pages(sess: Session, path: str, size: int) -> list[int]:
    """File pages of ``path`` (inside EOF) whose block has a refcount above 1 (at most
    4096 + one block-map row's worth: the list stops after the row that passes 4096)."""
    fs = sess.dax.fs
    nb = -(-size // PAGE)
    if nb <= 0:
        return []
    out: list[int] = []
    for fi, ni in fs.shared_rows(fs.lookup(path), 0, nb):
        out.extend(range(fi, min(fi + ni, nb)))
        if len(out) > 4096:
            break
    return out


def generate_op(rng, sess: Session, kinds, nfiles: int) -> Op | None:
    """One random op for the session's current state (None if the drawn kind cannot apply).

    ``rng`` is a :class:`Draws` (a numpy Generator is wrapped in one).  The kind is drawn
    first, then a file and a pattern byte; each family of system calls draws the rest in its
    own function (the compiled generator, :mod:`sim.hunt.jit.generate`, draws the same
    numbers in the same order)."""
    if type(rng) is not Draws:
        rng = rng if isinstance(rng, Draws) else Draws(rng, block=16)
    cw = _cum_weights(kinds if type(kinds) is tuple else tuple(kinds))
    nk = len(kinds)
    ki = bisect.bisect_right(cw, rng.random() * cw[-1])
    k = kinds[ki if ki < nk else nk - 1]
    files = _files(nfiles)
    ri = rng.integers
    path = files[ri(nfiles)]
    byte = ri(0x61, 0x7B)
    if k == "pwrite":
        return _gen_pwrite(rng, path, byte)
    # sizes from the content model (equal to the filesystem's while data_integrity holds,
    # which the search checks after every op)
    cf = sess.model.content.files
    if k == "munmap":
        return _gen_munmap(rng, sess)
    live = [f for f in files if f in cf]
    if k == "unlink":
        if not live:
            return None
        return Op("unlink", live[ri(len(live))])
    if k in ("truncate", "punch", "zero", "unshare"):
        return _gen_setattr_fallocate(rng, k, live, cf)
    nonempty = [f for f in live if cf[f].size > 0]
    if not nonempty:
        return None
    if k in ("clone", "dedupe"):
        return _gen_remap(rng, k, files, nonempty, cf)
    if k in ("mread", "mwrite", "hwpoison"):
        return _gen_fault(rng, sess, k, nonempty, cf, byte)
    raise ValueError(k)


def _gen_pwrite(rng, path: str, byte: int) -> Op:
    """``pwrite`` (``dax_iomap_rw``): a whole PMD, a few blocks, or an unaligned range."""
    ri = rng.integers
    if rng.random() < 0.08:
        return Op("pwrite", path, (0, PMD_BYTES, byte))
    if rng.random() < 0.7:
        return Op("pwrite", path, (ri(SMALL_BLOCKS) * PAGE, ri(1, 9) * PAGE, byte))
    return Op("pwrite", path, (ri(SMALL_BLOCKS * PAGE), ri(1, 3 * PAGE), byte))


def _gen_munmap(rng, sess: Session) -> Op | None:
    """``munmap`` of one live mapping (None without one)."""
    maps = sess.mappings()
    if not maps:
        return None
    p, moff, mlen = maps[rng.integers(len(maps))]
    return Op("munmap", p, (moff, mlen))


def _gen_setattr_fallocate(rng, k: str, live: list, cf: dict) -> Op | None:
    """``truncate`` (``xfs_setattr_size``) or ``fallocate`` punch, zero range, unshare
    (``xfs_file_fallocate``) on a live file, around and past its EOF."""
    ri = rng.integers
    if not live:
        return None
    path = live[ri(len(live))]
    size = cf[path].size
    if k == "truncate":
        v = ri(SMALL_BLOCKS * PAGE + 1)
        return Op(k, path, ((v // PAGE) * PAGE if rng.random() < 0.5 else v,))
    top = max(size, PAGE) + 2 * PAGE
    if rng.random() < 0.6:
        off = ri(top // PAGE) * PAGE
        ln = ri(1, 9) * PAGE
    else:
        off = ri(top)
        ln = ri(1, 3 * PAGE)
    if k == "zero":
        return Op(k, path, (off, ln, int(rng.random() < 0.5)))
    return Op(k, path, (off, ln))


def _gen_remap(rng, k: str, files: tuple, nonempty: list, cf: dict) -> Op | None:
    """FICLONE/FICLONERANGE (``xfs_reflink_remap_range``) or FIDEDUPERANGE
    (``vfs_dedupe_file_range``) from a non-empty file, mostly into another one."""
    ri = rng.integers
    src = nonempty[ri(len(nonempty))]
    others = [f for f in files if f != src]
    dst = others[ri(len(others))] if others and rng.random() < 0.85 else src
    ssize = cf[src].size
    if k == "clone":
        if dst != src and rng.random() < 0.3:
            return Op("clone", dst, (0, 0, 0), src)  # whole file (FICLONE-like)
        soff = ri(-(-ssize // PAGE)) * PAGE
        full = (ssize - soff) // PAGE
        ln = 0 if full == 0 or rng.random() < 0.3 else ri(1, min(full, 8) + 1) * PAGE
        doff = ri(SMALL_BLOCKS) * PAGE
        if dst == src:  # same file: keep the ranges apart
            doff = soff + max(ln, ssize - soff) + ri(4) * PAGE
            doff = -(-doff // PAGE) * PAGE
        return Op("clone", dst, (soff, doff, ln), src)
    dsize = cf[dst].size if dst in cf else -1
    if dsize <= 0 or dst == src:
        return None
    nb = min(ssize, dsize) // PAGE
    if nb == 0:
        return None
    soff = ri(nb) * PAGE
    doff = soff if rng.random() < 0.5 else ri(nb) * PAGE
    room = min(ssize - soff, dsize - doff) // PAGE
    if room <= 0:
        return None
    return Op("dedupe", dst, (soff, doff, ri(1, min(room, 8) + 1) * PAGE), src)


def _gen_fault(rng, sess: Session, k: str, nonempty: list, cf: dict, byte: int) -> Op | None:
    """A read or write fault (``dax_iomap_fault``) or a memory failure (``memory_failure``)
    through a mapping of a non-empty file, half the time aimed at a shared block."""
    ri = rng.integers
    path = nonempty[ri(len(nonempty))]
    size = cf[path].size
    maps = sess.mappings(path)
    shared = _shared_pages(sess, path, size) if rng.random() < 0.5 else ()
    if shared:  # aim at a block another file (or offset) also references
        pg = shared[ri(len(shared))]
        cover = [m for m in maps if m[1] <= pg * PAGE < m[1] + m[2]]
        if cover and rng.random() < 0.6:
            _, moff, mlen = cover[ri(len(cover))]
        else:
            moff, mlen = pg * PAGE, ri(1, 5) * PAGE
        if k == "hwpoison":
            return Op(k, path, (moff, mlen, pg * PAGE, PAGE))
        if k == "mread":
            return Op(k, path, (moff, mlen, pg * PAGE, ri(1, PAGE)))
        return Op(k, path, (moff, mlen, pg * PAGE, ri(1, PAGE), byte))
    head = False
    if size >= PMD_BYTES and rng.random() < 0.5:
        moff, mlen = 0, PMD_BYTES
    elif maps and rng.random() < 0.6:
        _, moff, mlen = maps[ri(len(maps))]
    else:
        moff = ri(-(-size // PAGE)) * PAGE
        mlen = ri(1, 17) * PAGE
        head = rng.random() < 0.25
        if head:
            # now and then a small window at a 2 MiB boundary, accessed at its first page:
            # its PTE fault makes the order-0 folio that a PMD fault of another file over the
            # same blocks then finds (vmf_insert_folio_pmd's SIGBUS from v6.15)
            moff -= moff % PMD_BYTES
    lo, hi = moff // PAGE, min(moff + mlen, size + PAGE - 1) // PAGE
    if hi <= lo:
        return None
    pg = lo if head else ri(lo, hi)
    if k == "hwpoison":
        return Op(k, path, (moff, mlen, pg * PAGE, PAGE * ri(1, 3)))
    off = pg * PAGE + (ri(PAGE) if rng.random() < 0.3 else 0)
    ln = ri(1, 2 * PAGE)
    if k == "mread":
        return Op(k, path, (moff, mlen, off, ln))
    return Op(k, path, (moff, mlen, off, ln, byte))


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


@dataclass
class _Job:
    """What every episode of one hunt shares (picklable: sent to worker processes)."""

    variant: object
    seed: int
    kinds: tuple
    nfiles: int
    names: tuple
    episode_len: int
    nblocks: int
    paranoid: bool
    #: Design code of the compiled engine (:mod:`sim.hunt.jit`), None: Python episodes only.
    compiled: int | None = None


@dataclass
class _Episode:
    """One episode's outcome, independent of what other episodes found.

    ``events`` are ``(j, quiescent, violation)``: the first violation of each checked name
    in the episode, after its ``j``-th applied op (``quiescent``: found by the full check
    before the teardown, which runs after op ``j``'s own checks). ``ops`` holds the applied
    ops when there is an event (the findings' prefixes), else it is empty.
    """

    index: int
    nops: int
    events: list
    ops: list
    python: bool = True  # run on the Python stack (False: vouched for by the compiled engine)


def _run_episode(
    job: _Job,
    e: int,
    todo,
    *,
    max_ops: int | None = None,
    deadline: float | None = None,
    streams: EpisodeStreams | None = None,
) -> _Episode:
    """Run episode ``e``, checking the names in ``todo`` after every op.

    Checks change no state, so the ops an episode runs and the first violation of each
    name in it do not depend on which other names are checked: an episode's events are the
    same in any worker, whatever the others found (the merge keeps the new ones). Stops
    early after ``max_ops`` ops, at ``deadline`` (``time.perf_counter()``), or once every
    name of ``todo`` is found. ``streams`` (of ``job.seed``) makes the episode's generator,
    the stream of ``default_rng(SeedSequence(job.seed, spawn_key=(e,)))``, cheaper.
    """
    if streams is None:
        streams = EpisodeStreams(job.seed)
    if job.compiled is not None and (deadline is None or clock_ok(deadline)):
        from sim.hunt.jit.episode import CLEAN  # the engine loads with its first episode

        status, nops = _compiled(job).run(
            streams.generator(e), [n for n in job.names if n in todo], max_ops
        )
        if status == CLEAN:
            return _Episode(e, nops, [], [], False)
        # a possible violation (or an overflow): the Python stack runs the episode
    rng = Draws(streams.generator(e))
    sess = Session(
        job.variant,
        nblocks=job.nblocks,
        snapshot=False,
        paranoid=job.paranoid,
        record=False,
    )
    todo = [n for n in job.names if n in todo]
    ops: list[Op] = []
    events: list = []
    files = _files(job.nfiles)
    exists = sess.dax.fs.exists
    kinds, nfiles, paranoid = job.kinds, job.nfiles, job.paranoid
    draws = 0
    teardown = False
    clock = time.perf_counter
    try:
        while todo:
            if max_ops is not None and len(ops) >= max_ops:
                break
            if deadline is not None and clock() >= deadline:
                break
            if not teardown and draws >= job.episode_len:
                teardown = True
                if ops and not paranoid:  # quiescent point: everything in full
                    q = [n for n in _QUIESCENT if n in todo]
                    if q:
                        for v in sess.check(q, full=True):
                            events.append((len(ops), True, v))
                            todo.remove(v.invariant)
                        if not todo:
                            break
            if teardown:
                op = None
                for f in files:
                    if exists(f):
                        op = Op("unlink", f)
                        break
                if op is None:
                    break
            else:
                draws += 1
                op = generate_op(rng, sess, kinds, nfiles)
                if op is None:
                    continue
            if not sess.apply(op):
                continue
            ops.append(op)
            for v in sess.check(todo):
                events.append((len(ops), False, v))
                todo.remove(v.invariant)
    finally:
        sess.close()
    return _Episode(e, len(ops), events, ops if events else [])


def clock_ok(deadline: float) -> bool:
    return time.perf_counter() < deadline


@functools.lru_cache(maxsize=4)
def _compiled_states(design: int, nblocks: int, nfiles: int, kinds: tuple, episode_len: int):
    from sim.hunt.jit.engine import CompiledEpisodes

    return CompiledEpisodes(design, nblocks, nfiles, kinds, episode_len)


def _compiled(job: _Job):
    """This process's compiled states for ``job`` (made once, reused by every episode)."""
    return _compiled_states(job.compiled, job.nblocks, job.nfiles, job.kinds, job.episode_len)


def _run_chunk(job: _Job, first: int, count: int, todo) -> list:
    """Episodes ``first .. first + count - 1`` run whole (a worker process's task)."""
    streams = EpisodeStreams(job.seed)
    return [_run_episode(job, e, todo, streams=streams) for e in range(first, first + count)]


class _Merge:
    """Folds episodes, in episode order, into what one sequential search finds.

    The sequential search stops before an op once ``budget_ops`` ops ran, and right after
    the check that finds the last name; a violation after op ``j`` of an episode counts
    when that op ran within the budget, a quiescent one when the budget still allowed
    another op (the check runs at the top of the loop).
    """

    def __init__(self, job: _Job, budget_ops: int | None):
        self.job = job
        self.budget = budget_ops
        self.ops_run = 0
        self.episodes = 0
        self.episodes_python = 0
        self.findings: dict[str, Finding] = {}
        self.done = not job.names

    def todo(self) -> list:
        return [n for n in self.job.names if n not in self.findings]

    def add(self, ep: _Episode) -> None:
        base = self.ops_run
        budget = self.budget
        self.episodes = ep.index + 1
        self.episodes_python += ep.python
        names = self.job.names
        end = base + ep.nops
        for j, quiescent, v in ep.events:
            at = base + j
            if budget is not None and (at > budget or (quiescent and at >= budget)):
                break
            if v.invariant in self.findings:
                continue
            ops = ep.ops[:j]
            w = _rederive(self.job.variant, ops, v.invariant, self.job.nblocks, v)
            self.findings[w.invariant] = Finding(
                w.invariant, w.with_op(j - 1), at, list(ops), ep.index
            )
            if len(self.findings) == len(names):
                end = at
                self.done = True
                break
        if budget is not None and end >= budget:
            end = budget
            self.done = True
        self.ops_run = end


def _fork_context():
    import multiprocessing

    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")  # workers inherit imports and compiled kernels
    return multiprocessing.get_context()


def _first_submit(ex, *args):
    """The first submit, which forks the workers: with the objects of this process frozen
    out of the cyclic garbage collector meanwhile, so that a collection in a worker does not
    write to (and copy) every page it inherited. (Under :func:`hunt`, which has frozen the
    objects that existed before the search, the ones made since are frozen too and stay
    frozen until :func:`hunt` unfreezes them all.)"""
    was_frozen = gc.get_freeze_count() > 0
    freeze = gc.isenabled()
    if freeze:
        gc.freeze()
    try:
        return ex.submit(_run_chunk, *args)
    finally:
        if freeze and not was_frozen:
            gc.unfreeze()


def _hunt_pool(
    job: _Job,
    merge: _Merge,
    workers: int,
    deadline: float | None,
    progress,
    budget_ops: int | None,
    start: int,
) -> None:
    """Episodes from ``start`` on, in chunks on ``workers`` processes, merged in episode
    order.

    With an op budget, episodes are submitted only while the ones in flight may still be
    needed (estimated from the mean ops per episode so far), in chunks that shrink towards
    the end, so little work past the budget is thrown away.
    """
    import concurrent.futures as cf

    pending: dict = {}  # first episode -> (future, count)
    inflight = 0
    # episodes per task: compiled episodes take ~0.3 ms, Python ones ~3 ms; a task should
    # outweigh its round trip through the pool
    chunk = 64 if job.compiled is not None else 8
    next_ep = start
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=_fork_context()) as ex:
        try:
            while not merge.done:
                if deadline is not None and time.perf_counter() >= deadline:
                    break
                while True:
                    if budget_ops is None:
                        if len(pending) >= 2 * workers:
                            break
                        count = chunk // 2
                    else:
                        per_ep = max(1.0, merge.ops_run / max(1, merge.episodes))
                        need = int(-(-(budget_ops - merge.ops_run) // per_ep)) + 1 - inflight
                        if need <= 0 and pending:
                            break
                        count = max(1, min(chunk, need // (2 * workers)))
                        if len(pending) >= 2 * workers:
                            break
                    if not pending and next_ep == start:
                        fut = _first_submit(ex, job, next_ep, count, tuple(merge.todo()))
                    else:
                        fut = ex.submit(_run_chunk, job, next_ep, count, tuple(merge.todo()))
                    pending[next_ep] = (fut, count)
                    inflight += count
                    next_ep += count
                first = min(pending)
                fut, count = pending.pop(first)
                if deadline is not None:
                    try:
                        eps = fut.result(timeout=max(0.0, deadline - time.perf_counter()))
                    except cf.TimeoutError:
                        break
                else:
                    eps = fut.result()
                inflight -= count
                for ep in eps:
                    merge.add(ep)
                    if progress is not None:
                        progress(merge.ops_run)
                    if merge.done:
                        break
        finally:
            for fut, _count in pending.values():
                fut.cancel()


def hunt(
    variant,
    *,
    seed: int = 0,
    budget_ops: int | None = 2000,
    time_s: float | None = None,
    kinds=None,
    nfiles: int = 3,
    names=ALL_NAMES,
    episode_len: int = 24,
    nblocks: int = DEFAULT_NBLOCKS,
    progress=None,
    paranoid: bool = False,
    workers: int = 1,
    compiled: bool | None = None,
) -> HuntResult:
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
        Op kinds to draw from (default: all of :data:`~sim.hunt.session.OP_KINDS`); must
        include ``pwrite`` (the only op that creates a file).
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
    workers : int
        Processes running episodes (1: this process). Episodes are merged in episode order,
        so with an op budget the result (findings, their ops, ``ops_to_find``, ``ops_run``,
        ``episodes``) is the same for any number of workers; with a time budget only where
        it stops differs (workers run whole episodes).
    compiled : bool or None
        Run each episode first in the compiled engine (:mod:`sim.hunt.jit`: the same
        episode, every check, in numba), which says whether it is clean; an episode it
        cannot vouch for (a possible violation, an overflow of its capacities) is run on the
        Python stack as always, so the result is the same either way. None: when the
        design is built in, the device and file count fit the engine
        (:func:`sim.hunt.jit.engine.engine_for`) and not ``paranoid``.

    Returns
    -------
    HuntResult
    """
    if budget_ops is None and time_s is None:
        raise InputError("give an op budget or a time budget", where="--budget/--time")
    if nfiles < 1:
        raise InputError(f"need at least one file, got {nfiles}", where="--files")
    if int(workers) < 1:
        raise InputError(f"expected at least one worker, got {workers}", where="--workers")
    kinds = tuple(kinds) if kinds else OP_KINDS
    if "pwrite" not in kinds:
        raise InputError(
            "the op kinds must include pwrite (the only op that creates a file)", where="--ops"
        )
    names = tuple(names)
    vname = get_variant(variant).name
    design = None
    if compiled is None or compiled:
        from sim.hunt.jit.engine import engine_for

        design = engine_for(variant, nblocks, nfiles)
        if compiled is None and paranoid:
            design = None
        if compiled and design is None:
            raise InputError(
                f"the compiled engine does not run {vname!r} with "
                f"{nfiles} files on {nblocks} blocks",
                where="--engine",
            )
    job = _Job(
        variant,
        int(seed),
        kinds,
        int(nfiles),
        names,
        int(episode_len),
        int(nblocks),
        bool(paranoid),
        design,
    )
    if design is not None:  # compiled (or loaded from numba's cache) before the clock starts
        from sim.jit import compile_notice

        with compile_notice(
            "daxsim hunt: the episode engine (--engine python skips it)",
            helper="sim.hunt.jit.engine:compile_helper_targets",
        ):
            _compiled(job).warm()
    t0 = time.perf_counter()
    deadline = None if time_s is None else t0 + float(time_s)
    merge = _Merge(job, budget_ops)
    streams = EpisodeStreams(job.seed)
    e = 0
    # The objects that exist now (modules, compiled kernels: ~1e5) are frozen out of the
    # cyclic collector for the search, so the full collections the episodes' allocations
    # trigger now and then do not traverse them all (tens of ms each); restored at the end.
    freeze = gc.isenabled() and gc.get_freeze_count() == 0
    if freeze:
        gc.freeze()
    try:
        # this process runs the first episode even with workers (it warms up what they
        # inherit)
        while not merge.done and (deadline is None or time.perf_counter() < deadline):
            left = None if budget_ops is None else budget_ops - merge.ops_run
            merge.add(
                _run_episode(job, e, merge.todo(), max_ops=left, deadline=deadline, streams=streams)
            )
            if progress is not None:
                progress(merge.ops_run)
            e += 1
            if workers > 1:
                break
        if workers > 1 and not merge.done:
            _hunt_pool(job, merge, int(workers), deadline, progress, budget_ops, e)
    finally:
        if freeze:
            gc.unfreeze()
    return HuntResult(
        vname,
        int(seed),
        merge.ops_run,
        merge.episodes,
        time.perf_counter() - t0,
        merge.findings,
        names,
        nblocks,
        merge.episodes_python,
    )
