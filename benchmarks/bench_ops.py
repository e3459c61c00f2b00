"""Per-operation cost of the functional model (sim.fs + sim.dax), a script.

(a) ops/s of a seeded random mixed stream of small file-level operations through
    :class:`sim.dax.DaxFS` (clone range, PTE read/write faults, 4 KiB mwrite, 1-block pwrite,
    truncate, punch, zero range, unshare, dedupe, unlink/recreate, munmap/re-mmap) on a few
    files of up to 4 MiB over a 256 MiB device, per op kind and overall;
(b) functional wall time of the default scenario per kernel design (``sim.runner.simulate``
    with ``variant=``);
(c) with ``--xfsio-steps``: the cost of ``XfsioRunner.step`` and below per op kind of the
    hunt's mix. The xfs_io commands of seeded hunt episodes are recorded once (through
    ``sim.hunt``), then replayed on fresh runners; per kind, the best of ``--rounds`` rounds
    of CPU time per op (the hunt's own work and its checks are not timed).

Usage::

    .venv/bin/python benchmarks/bench_ops.py                 # parts (a) and (b)
    .venv/bin/python benchmarks/bench_ops.py --ops 20000 --no-scenario
    .venv/bin/python benchmarks/bench_ops.py --profile       # cProfile of part (a)
    .venv/bin/python benchmarks/bench_ops.py --xfsio-steps --variant page-share
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PAGE = 4096
DEVICE_BLOCKS = (256 << 20) // PAGE
MAX_PAGES = 1024  # 4 MiB files
NFILES = 4
KINDS = (
    "read_fault",
    "write_fault",
    "mwrite",
    "pwrite",
    "clone",
    "truncate",
    "punch",
    "zero",
    "unshare",
    "dedupe",
    "unlink",
    "remap",
)
WEIGHTS = (20, 15, 15, 15, 8, 3, 5, 4, 4, 4, 1, 2)
DESIGNS = ("single-owner", "cow-index", "page-share", "folio-share")


class Stream:
    """The mixed stream: a DaxFS, its files and one PTE-only mapping per file."""

    def __init__(self, seed: int, variant: str = "folio-share"):
        import numpy as np

        from sim.dax import DaxFS

        self.rng = np.random.default_rng(seed)
        self.d = DaxFS(DEVICE_BLOCKS, variant)
        self.ino: list[int] = []
        self.vid: list[int] = []
        for f in range(NFILES):
            ino = self.d.open(f"f{f}", create=True)[0]
            self.ino.append(ino)
            if f == 0:
                self.d.pwrite(ino, 0, 256 * PAGE, 0x41)
            else:
                self.d.clone(ino, self.ino[0])
            self.vid.append(self.d.mmap(1 + f, ino, 0, MAX_PAGES * PAGE, huge=False))

    def _pages(self, f: int) -> int:
        return -(-self.d.fs.size(self.ino[f]) // PAGE)

    def args(self, kind: str):
        """Draw the arguments of one operation (outside the timed region)."""
        r = self.rng
        f = int(r.integers(NFILES))
        g = int((f + 1 + r.integers(NFILES - 1)) % NFILES)
        npg = max(self._pages(f), 1)
        if kind in ("read_fault", "write_fault"):
            return f, int(r.integers(npg))
        if kind == "mwrite":
            return f, int(r.integers(npg)) * PAGE, PAGE, int(r.integers(256))
        if kind == "pwrite":
            return f, int(r.integers(MAX_PAGES)) * PAGE, PAGE, int(r.integers(256))
        if kind in ("clone", "dedupe"):
            spg = max(self._pages(g), 1)
            n = int(r.integers(1, 17))
            so = int(r.integers(spg))
            n = max(1, min(n, spg - so))
            do = so if kind == "dedupe" else int(r.integers(MAX_PAGES - n))
            return f, g, so * PAGE, do * PAGE, n * PAGE
        if kind == "truncate":
            return f, int(r.integers(64, MAX_PAGES)) * PAGE + int(r.integers(2)) * 100
        if kind in ("punch", "zero", "unshare"):
            o = int(r.integers(npg * PAGE))
            return f, o, int(r.integers(1, 9)) * PAGE - int(r.integers(2)) * 300
        if kind in ("unlink", "remap"):
            return (f,)
        raise ValueError(kind)

    def run(self, kind: str, a) -> None:
        d = self.d
        if kind == "read_fault":
            d.fault(self.vid[a[0]], a[1], write=False)
        elif kind == "write_fault":
            d.fault(self.vid[a[0]], a[1], write=True)
        elif kind == "mwrite":
            d.mwrite(self.vid[a[0]], a[1], a[2], a[3])
        elif kind == "pwrite":
            d.pwrite(self.ino[a[0]], a[1], a[2], a[3])
        elif kind == "clone":
            d.clone(self.ino[a[0]], self.ino[a[1]], a[2], a[3], a[4])
        elif kind == "dedupe":
            d.dedupe(self.ino[a[0]], self.ino[a[1]], a[2], a[3], a[4])
        elif kind == "truncate":
            d.truncate(self.ino[a[0]], a[1])
        elif kind == "punch":
            d.punch(self.ino[a[0]], a[1], a[2])
        elif kind == "zero":
            d.zero_range(self.ino[a[0]], a[1], a[2], keep_size=True)
        elif kind == "unshare":
            d.unshare(self.ino[a[0]], a[1], a[2])
        elif kind == "unlink":
            f = a[0]
            d.munmap(self.vid[f])
            d.unlink(f"f{f}")
            ino = d.open(f"f{f}", create=True)[0]
            self.ino[f] = ino
            d.clone(ino, self.ino[(f + 1) % NFILES])
            d.pwrite(ino, 0, 16 * PAGE, 0x55)
            self.vid[f] = d.mmap(1 + f, ino, 0, MAX_PAGES * PAGE, huge=False)
        elif kind == "remap":
            f = a[0]
            d.munmap(self.vid[f])
            self.vid[f] = d.mmap(1 + f, self.ino[f], 0, MAX_PAGES * PAGE, huge=False)


def bench_stream(nops: int, seed: int, variant: str = "folio-share", warmup: int = 300):
    """Run ``nops`` operations (after ``warmup`` untimed ones on another DaxFS: imports,
    numba kernels); returns ``{kind: (count, seconds, errors)}``."""
    import numpy as np

    from sim.fs import FsError

    if warmup:
        bench_stream(warmup, seed + 1000, variant, warmup=0)
    s = Stream(seed, variant)
    p = np.asarray(WEIGHTS, dtype=np.float64)
    kinds = s.rng.choice(len(KINDS), size=nops, p=p / p.sum())
    out = {k: [0, 0.0, 0] for k in KINDS}
    pc = time.process_time  # CPU time: the machine may be shared
    for ki in kinds.tolist():
        kind = KINDS[ki]
        a = s.args(kind)
        t0 = pc()
        try:
            s.run(kind, a)
        except FsError:
            out[kind][2] += 1
        out[kind][1] += pc() - t0
        out[kind][0] += 1
    s.d.fs.check_invariants()
    return out


def record_hunt_steps(variant: str, episodes: int = 60, ops: int = 24) -> list:
    """Per episode, ``[(kind, [Command, ...]), ...]``: the xfs_io commands of each applied op
    of seeded hunt episodes (the mix of ``hunt_breakdown``: 3 files, 32 MiB device)."""
    import numpy as np

    from sim.hunt.search import Draws, generate_op
    from sim.hunt.session import OP_KINDS, Session

    out = []
    for ep in range(episodes):
        rng = Draws(np.random.default_rng(np.random.SeedSequence(0, spawn_key=(ep,))))
        s = Session(variant, snapshot=False)
        rec = []
        for _ in range(ops):
            op = generate_op(rng, s, OP_KINDS, 3)
            if op is None or not s.apply(op):
                continue
            a, b = s.op_lines[-1]
            rec.append((op.kind, s.commands[a - 1 : b - 1]))
            s.check()
        out.append(rec)
    return out


def bench_xfsio_steps(variant: str, rounds: int = 5, episodes: int = 60) -> dict:
    """``{kind: best µs per op}`` of replaying :func:`record_hunt_steps` on bare runners."""
    from sim.hunt.session import DEFAULT_NBLOCKS, PAGE
    from sim.memmap import get_variant
    from sim.xfsio.runner import XfsioRunner

    eps = record_hunt_steps(variant, episodes)
    v = get_variant(variant)
    pc = time.process_time
    best: dict = {}
    for rnd in range(rounds + 1):  # round 0 warms up (imports, numba dispatch)
        t: dict = {}
        n: dict = {}
        for ops in eps:
            r = XfsioRunner(v, device_bytes=DEFAULT_NBLOCKS * PAGE, check_model=False)
            for kind, cmds in ops:
                t0 = pc()
                for c in cmds:
                    r.step(c)
                t[kind] = t.get(kind, 0.0) + pc() - t0
                n[kind] = n.get(kind, 0) + 1
        t["all"], n["all"] = sum(t.values()), sum(n.values())
        if rnd:
            for k in t:
                best[k] = min(best.get(k, float("inf")), t[k] / n[k] * 1e6)
    return best


def bench_scenario(designs=DESIGNS):
    """Functional wall time of the default scenario per design."""
    from sim.runner import make_stream, simulate
    from sim.scenario import load_scenario

    sc = load_scenario("default", [])
    stream, _meta = make_stream(sc)
    rows = []
    for v in designs:
        t0 = time.perf_counter()
        c0 = time.process_time()
        out = simulate(sc, variant=v, stream=stream)
        rows.append(
            (
                v,
                out.summary["operations"],
                out.summary["wall_time_functional_s"],
                out.summary["wall_time_pricing_s"],
                time.perf_counter() - t0,
                time.process_time() - c0,
            )
        )
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", type=int, default=20000, help="operations in the mixed stream")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-stream", action="store_true")
    ap.add_argument("--no-scenario", action="store_true")
    ap.add_argument("--profile", action="store_true", help="cProfile part (a), top 40 by tottime")
    ap.add_argument(
        "--xfsio-steps",
        action="store_true",
        help="only part (c): XfsioRunner.step per op kind of the hunt's mix",
    )
    ap.add_argument("--variant", default="page-share", help="design of part (c)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds of part (c) (best is kept)")
    args = ap.parse_args(argv)
    if args.xfsio_steps:
        best = bench_xfsio_steps(args.variant, args.rounds)
        print(
            f"(c) XfsioRunner.step and below, hunt mix, {args.variant}: best of "
            f"{args.rounds} rounds, CPU µs per op"
        )
        print("  ".join(f"{k} {v:.1f}" for k, v in best.items()))
        return 0
    if args.profile:
        import cProfile
        import pstats

        pr = cProfile.Profile()
        pr.enable()
        bench_stream(args.ops, args.seed)
        pr.disable()
        pstats.Stats(pr).sort_stats("tottime").print_stats(40)
        return 0
    t0 = time.process_time()
    k = 0
    for i in range(2_000_000):
        k += i
    print(
        f"calibration: pure-Python loop of 2e6 additions = {time.process_time() - t0:.3f} s cpu "
        f"(about 0.08-0.10 s on an idle modern x86 core)"
    )
    if not args.no_stream:
        c0 = time.process_time()
        res = bench_stream(args.ops, args.seed)
        cpu = time.process_time() - c0
        print(
            f"(a) mixed stream: {args.ops} ops, seed {args.seed}, device 256 MiB, "
            f"{NFILES} files <= 4 MiB (cpu {cpu:.2f} s incl. setup/arg draws)"
        )
        print(f"{'op':<12} {'count':>7} {'errors':>7} {'us/op':>9} {'ops/s':>10}")
        tot_n = tot_t = 0
        for k in KINDS:
            n, t, e = res[k]
            tot_n += n
            tot_t += t
            if n:
                print(f"{k:<12} {n:>7} {e:>7} {t / n * 1e6:>9.1f} {n / t:>10.0f}")
        print(
            f"{'overall':<12} {tot_n:>7} {'':>7} {tot_t / tot_n * 1e6:>9.1f} {tot_n / tot_t:>10.0f}"
        )
    if not args.no_scenario:
        print("(b) default scenario (functional mode) per design")
        print(
            f"{'design':<14} {'ops':>6} {'functional s':>13} {'pricing s':>10} "
            f"{'total s':>8} {'cpu s':>7}"
        )
        for v, n, fs_, pr_, tot, cpu in bench_scenario():
            print(f"{v:<14} {n:>6} {fs_:>13.2f} {pr_:>10.2f} {tot:>8.2f} {cpu:>7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
