"""Hunt throughput: checked file-level operations per second, and time to the first violation.

Run as a script for the figures recorded in BENCHMARKS.md::

    .venv/bin/python benchmarks/bench_hunt.py [--ops 2000] [--seed 0] [--workers 2]
                                              [--workers-ops 20000]
                                              [--repeat 3] [--profile]

or with pytest-benchmark (``make bench``). Figures:

- ``checked ops/s`` per design: ``hunt(..., budget_ops=N)`` with every invariant checked
  (violations found early do not stop the run: the search continues until the budget, checking
  what is not yet found; numba compilation is warmed up first and excluded), in this process,
  with the compiled episode engine (the default);
- ``Python episodes``: the share of episodes the compiled engine handed back to the Python
  stack (a possible violation), and ``--engine python``: the rate without the engine;
- ``--workers 2``: the same hunt with ``workers=2`` (episodes in two worker processes, the
  same result; pool start-up included) over ``--workers-ops`` ops (default 20,000: the
  start-up of the pool is amortised as in a real search);
- the same with only the page-state invariants (``association_truth``, ``no_warnings``,
  ``nothing_left_behind``) to separate the check cost from the fs/dax cost;
- time (and checked ops) to the first violation for cow-index and folio-share, first
  violation of any invariant and of ``nothing_left_behind``;
- with ``--python-split``, for the Python path: ``no checks``, the same op stream applied
  with no invariant evaluated; ``op µs`` / ``fs-query µs`` / ``hunt µs``: per checked op,
  the time inside the session's command execution (``XfsioRunner.step``: the fs/dax
  operation itself), in the filesystem queries the hunt makes itself
  (content reads of the data check, the refcount check at quiescent points, block maps
  for op generation: they shrink with the filesystem's per-call cost),
  and everything else (the hunt's own overhead: op generation, command building, the
  incremental checks, episode set-up); ``in check()`` is the time spent in
  ``Session.check`` (its fs queries included); ``episode µs``: per episode, the fixed work
  (a fresh ``Session`` plus the full checks at its two quiescent points);
- ``--profile``: cProfile of a page-share hunt, top functions by own time, grouped by layer.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sim.fs import FileSystem  # noqa: E402
from sim.hunt.search import Draws, generate_op, hunt  # noqa: E402
from sim.hunt.session import OP_KINDS, Session  # noqa: E402
from sim.xfsio.runner import XfsioRunner  # noqa: E402

PAGE_STATE = ("association_truth", "no_warnings", "nothing_left_behind")


def _unchecked(variant: str, n: int, seed: int) -> float:
    """ops/s of the same generator with no invariant evaluated."""
    done = 0
    ep = 0
    t0 = time.perf_counter()
    while done < n:
        rng = Draws(np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(ep,))))
        s = Session(variant, snapshot=False, record=False)
        for _ in range(24):
            op = generate_op(rng, s, OP_KINDS, 3)
            if op is not None and s.apply(op):
                done += 1
        s.close()
        ep += 1
    return done / (time.perf_counter() - t0)


#: Filesystem queries the hunt itself makes (checks, op generation), timed apart.
_FS_QUERIES = (
    "pread",
    "byte_runs",
    "byte_runs_list",
    "bmap_arrays",
    "shared_rows",
    "check_invariants",
    "md5",
    "rmap",
    "iomap",
)


def _split(variant: str, n: int, seed: int) -> tuple:
    """``(checked ops/s, op µs, fs-query µs, hunt µs, check µs, episode µs)``: per checked op
    the command execution (``XfsioRunner.step``: the fs/dax op), the filesystem queries the hunt
    makes outside it (content reads of the data check, the refcount check, block maps for op
    generation), the rest of the loop (the hunt's own Python and numpy work), and of all that
    the part spent in ``Session.check``; per *episode* the fixed work: a fresh ``Session``
    and the checks at its two quiescent points (before the teardown and after it)."""
    acc = {"step": 0.0, "check": 0.0, "fsq": 0.0, "depth": 0, "episode": 0.0}
    step0, check0, init0 = XfsioRunner.step, Session.check, Session.__init__
    fs0 = {(FileSystem, m): FileSystem.__dict__[m] for m in _FS_QUERIES if m in FileSystem.__dict__}

    def step(self, *a):
        t = time.perf_counter()
        acc["depth"] += 1
        try:
            return step0(self, *a)
        finally:
            acc["depth"] -= 1
            acc["step"] += time.perf_counter() - t

    def check(self, *a, **k):
        t = time.perf_counter()
        try:
            return check0(self, *a, **k)
        finally:
            dt = time.perf_counter() - t
            acc["check"] += dt
            if k.get("full") or not self.dax.fs.names:  # a quiescent point
                acc["episode"] += dt

    def init(self, *a, **k):
        t = time.perf_counter()
        try:
            return init0(self, *a, **k)
        finally:
            acc["episode"] += time.perf_counter() - t

    def wrap(fn):
        def w(self, *a, **k):
            if acc["depth"]:
                return fn(self, *a, **k)
            t = time.perf_counter()
            acc["depth"] += 1
            try:
                return fn(self, *a, **k)
            finally:
                acc["depth"] -= 1
                acc["fsq"] += time.perf_counter() - t

        return w

    XfsioRunner.step, Session.check, Session.__init__ = step, check, init
    for (c, m), fn in fs0.items():
        setattr(c, m, wrap(fn))
    try:
        r = hunt(variant, seed=seed, budget_ops=n, compiled=False)
    finally:
        XfsioRunner.step, Session.check, Session.__init__ = step0, check0, init0
        for (c, m), fn in fs0.items():
            setattr(c, m, fn)
    k = 1e6 / r.ops_run
    op_us, fsq_us = acc["step"] * k, acc["fsq"] * k
    return (
        r.ops_run / r.seconds,
        op_us,
        fsq_us,
        r.seconds * k - op_us - fsq_us,
        acc["check"] * k,
        acc["episode"] * 1e6 / max(1, r.episodes),
    )


def _warm() -> None:
    for v in ("single-owner", "cow-index", "page-share", "folio-share", "folio-share-reset"):
        hunt(v, seed=99, budget_ops=40)


def _rate(variant: str, n: int, seed: int, **kw) -> float:
    return _run(variant, n, seed, **kw)[0]


def _run(variant: str, n: int, seed: int, **kw) -> tuple[float, float]:
    """``(checked ops/s, share of episodes run on the Python stack)``."""
    r = hunt(variant, seed=seed, budget_ops=n, **kw)
    return r.ops_run / r.seconds, r.episodes_python / max(1, r.episodes)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2, help="workers of the parallel column")
    ap.add_argument(
        "--workers-ops",
        type=int,
        default=20000,
        help="op budget of the parallel column (the pool start-up is amortised "
        "over it, as in a real search)",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measure every figure this many times; print the median",
    )
    ap.add_argument("--profile", action="store_true")
    ap.add_argument(
        "--python-split",
        action="store_true",
        help="also the Python path's split: no checks, op / fs-query / hunt / "
        "check µs per op, episode µs",
    )
    a = ap.parse_args(argv)
    _warm()
    med = lambda xs: float(np.median(xs))  # noqa: E731
    rep = range(max(1, a.repeat))
    print(
        f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {a.ops} ops per design; "
        f"median of {len(rep)}; --workers {a.workers} column: {a.workers_ops} ops; "
        f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    wcol = f"--workers {a.workers}"
    print(
        f"{'design':20s} {'checked ops/s':>14s} {wcol:>12s} {'page-state only':>16s} "
        f"{'Python episodes':>16s} {'--engine python':>16s}"
    )
    for v in ("single-owner", "cow-index", "page-share", "folio-share", "folio-share-reset"):
        runs = [_run(v, a.ops, a.seed) for _ in rep]
        r1, back = med([x[0] for x in runs]), med([x[1] for x in runs])
        rw = med([_rate(v, a.workers_ops, a.seed, workers=a.workers) for _ in rep])
        r2 = med([_rate(v, a.ops, a.seed, names=PAGE_STATE) for _ in rep])
        rp = med([_rate(v, a.ops, a.seed, compiled=False) for _ in rep])
        print(f"{v:20s} {r1:14.0f} {rw:12.0f} {r2:16.0f} {back:15.1%} {rp:16.0f}")
    if a.python_split:
        print(
            f"\nPython path: {'design':20s} {'no checks':>10s} {'op µs':>8s} "
            f"{'fs-query µs':>12s} {'hunt µs':>8s} {'in check()':>11s} {'episode µs':>11s}"
        )
        for v in ("single-owner", "cow-index", "page-share", "folio-share", "folio-share-reset"):
            u = med([_unchecked(v, a.ops, a.seed) for _ in rep])
            sp = [_split(v, a.ops, a.seed) for _ in rep]
            op_us, fsq_us, hunt_us, chk_us, ep_us = (med([x[i] for x in sp]) for i in range(1, 6))
            print(
                f"{'':13s}{v:20s} {u:10.0f} {op_us:8.1f} {fsq_us:12.1f} {hunt_us:8.1f} "
                f"{chk_us:11.1f} {ep_us:11.1f}"
            )
    print(f"load after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("\ntime to first violation (median of seeds 0..4)")
    for v in ("cow-index", "folio-share"):
        for name in (None, "nothing_left_behind"):
            ts, ns = [], []
            for seed in range(5):
                names = (
                    (name,)
                    if name
                    else (
                        "association_truth",
                        "nothing_left_behind",
                        "no_warnings",
                        "memory_failure",
                        "data_integrity",
                        "refcount_conservation",
                    )
                )
                t0 = time.perf_counter()
                r = hunt(v, seed=seed, budget_ops=5000, names=names)
                first = min((f.ops_to_find for f in r.findings.values()), default=None)
                # hunt() stops at the budget or when every name is found; re-run to the first
                if first is None:
                    continue
                t0 = time.perf_counter()
                hunt(v, seed=seed, budget_ops=first, names=names)
                ts.append(time.perf_counter() - t0)
                ns.append(first)
            label = name or "any invariant"
            if ts:
                print(
                    f"{v:12s} {label:22s} {np.median(ts) * 1e3:8.1f} ms  "
                    f"{int(np.median(ns)):5d} ops (found in {len(ts)}/5 seeds)"
                )
    if a.profile:
        pr = cProfile.Profile()
        pr.enable()
        hunt("page-share", seed=a.seed, budget_ops=a.ops)
        pr.disable()
        st = pstats.Stats(pr)
        st.sort_stats("tottime").print_stats(25)
    return 0


# ---------------------------------------------------------------------------- pytest-benchmark
def test_bench_hunt_page_share(benchmark):
    _warm()
    r = benchmark.pedantic(lambda: hunt("page-share", seed=0, budget_ops=500), rounds=3)
    assert r.ops_run == 500


def test_bench_hunt_page_share_two_workers(benchmark):
    _warm()
    r = benchmark.pedantic(lambda: hunt("page-share", seed=0, budget_ops=2000, workers=2), rounds=3)
    assert r.ops_run == 2000


def test_bench_first_violation_folio_share(benchmark):
    _warm()
    r = benchmark.pedantic(
        lambda: hunt("folio-share", seed=0, budget_ops=2000, names=("nothing_left_behind",)),
        rounds=3,
    )
    assert "nothing_left_behind" in r.findings


if __name__ == "__main__":
    sys.exit(main())
