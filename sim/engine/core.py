"""SimPy engine over work records.

Each CPU is a SimPy process that runs its stream of ``(op, WorkRecord)`` items. The
uncontended work of every operation is priced up front, in one batch, by
:class:`sim.timing.cost.CostModel` (cache hierarchy, faults, atomics, TLB shootdowns, device
copies). The engine then yields only where a shared resource is taken:

1. the fault or syscall entry (``entry`` cycles);
2. the DAX entry locks of the record (``("entry", mapping, index)``), in order, held until
   the operation ends: a waiter sleeps until the holder releases (the kernel's
   ``wait_entry_unlocked``);
3. the device channel for the operation's data accesses (``device`` cycles): per direction
   a FIFO multi-server queue whose capacity is the number of single-thread streams the
   device sustains at full per-thread bandwidth (aggregate / one-thread bandwidth from the
   media model: about 3 writers and 15 readers on 6 optane-gen1 DIMMs); extra streams
   queue. A transfer that starts while ``k`` transfers of its direction are admitted (in
   service or queued, itself included) takes ``stretch[k]`` times its uncontended time,
   so that ``k`` concurrent streams get the device bandwidth the media model gives ``k``
   threads (:func:`concurrency_bandwidth`): past the contention point of optane-gen1 (the
   iMC's head-of-line blocking and XPBuffer thrashing of :mod:`sim.timing.media`) more
   writers get less in total, where DRAM stays flat;
4. the mapping's ``xa_lock`` (``("xa_lock", mapping)``) for the xarray work (``xarray``
   cycles: node lines and lock operations);
5. the rest (metadata lines, PTE installs, TLB shootdowns) under the entry locks.

Locks and channels are kept as the times they free up (a lock or channel is taken at
``max(now, free time)``, in arrival order), so a free one costs no event and the process
yields only to reach the time where it next touches something shared: one SimPy event per
uncontended operation, one more for device work, none for an operation that takes no lock
and no channel. Contention, queueing and tail latency still emerge from the interleaving
of the CPU processes. ``Engine._timing_events`` is the earlier one-event-per-step form
(``simpy.Resource`` channels, releases as timeouts), kept as the reference the tests
compare against: same start and end of every operation. Time is integer CPU cycles.
"""

from __future__ import annotations

import gc
import heapq
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import repeat

import numpy as np
import simpy

from sim.constants import PAGE_SIZE
from sim.errors import InputError
from sim.timing.cost import CostModel, RecordBatch
from sim.timing.profiles import Profile, load_profile
from sim.work import WorkRecord

__all__ = [
    "Engine",
    "EngineResult",
    "LockTable",
    "concurrency_bandwidth",
    "run_engine",
    "run_functional",
    "run_timing",
]

# The media model's threads standing for the engine's k concurrent device transfers:
# sequential 4 KiB accesses, each thread in its own 2 GiB region, which is where S1's
# thread sweeps (the curves the media model is compared with) place them: on six DIMMs
# interleaved at 4 KiB thread i starts on DIMM 2i mod 6, so past 6 threads they share
# DIMMs in convoys and the iMC's in-order write ingress makes the curve fall as S1's does.
# Passed explicitly, not left to simulate's default. Other placements were measured
# (BENCHMARKS.md, issue 18): threads staggered over the DIMMs (thread i on DIMM i mod n)
# never collide and the write curve stays flat (13.3 GB/s to 16 threads); random 4 KiB
# pages, as an allocator spreads them, reach only ~9-10 GB/s from 4 threads and fall past
# 12 (S1's random 4 KiB ntstores, data/alignment.csv, also peak at 12), which puts the
# engine's CoW knee at 12 CPUs.
_DEVICE_ACCESS = ("seq", PAGE_SIZE)


def _device_region_bytes(profile: Profile, k: int) -> int | None:
    """2 GiB per thread, or simulate's default when the interleave set is smaller."""
    from sim.timing.media import THREAD_REGION_BYTES

    r = k * THREAD_REGION_BYTES
    return r if r <= profile["dimm.count"] * profile["dimm.capacity_bytes"] else None


# thread counts at which the device's bandwidth is simulated; between them it is
# interpolated linearly
_CURVE_POINTS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 48, 64, 96, 128)


@lru_cache(maxsize=32)
def _curve(name: str, overrides: tuple, write: bool, top: int) -> tuple[float, ...]:
    """Bandwidth of 1..``top`` threads, ``top`` in ``_CURVE_POINTS`` or beyond them."""
    from sim.timing.media import simulate

    prof = load_profile(name, dict(overrides))
    op = "ntstore" if write else "load"
    pts = [k for k in _CURVE_POINTS if k < top] + [top]
    bw = [
        simulate(
            prof,
            op,
            *_DEVICE_ACCESS,
            k,
            region_bytes=_device_region_bytes(prof, k),
            requests=max(24_000, 3_000 * k),
        ).bandwidth_gbps
        for k in pts
    ]
    return tuple(float(x) for x in np.interp(np.arange(1, top + 1), pts, bw))


def concurrency_bandwidth(profile: Profile, *, write: bool, streams: int) -> np.ndarray:
    """Device bandwidth (GB/s) of 1..``streams`` concurrent streams of 4 KiB page transfers.

    Element ``k - 1`` is what the media model (:func:`sim.timing.media.simulate`, ntstore
    for ``write``, else loads, on the profile's interleave set) gives ``k`` threads of
    sequential 4 KiB accesses placed as S1's thread sweeps place them (``_DEVICE_ACCESS``);
    simulated at a few thread counts and interpolated between them, cached per profile.
    """
    if streams < 1:
        raise InputError("need at least one stream", str(streams))
    key = tuple(sorted((k, str(v)) for k, v in profile.overrides.items()))
    top = next((k for k in _CURVE_POINTS if k >= streams), int(streams))
    return np.array(_curve(profile.name, key, bool(write), top)[:streams])


Stream = Sequence[tuple[str, WorkRecord]]


@dataclass
class EngineResult:
    """Per-operation timings and resource utilisation of one run.

    Attributes
    ----------
    mode : str
        ``"functional"`` or ``"timing"``.
    freq_ghz : float
        Clock of the cycles.
    cpu, start_cycles, end_cycles, work_cycles : ndarray of shape (N,)
        int64 per operation, in stream order (CPU 0's operations first).
    ops : list of str
        Operation type per operation.
    makespan_cycles : int
        Time at which the last CPU finished.
    utilisation : dict of str to float
        Busy fraction over the makespan: ``xa_lock`` (mean over mappings), ``entry_lock``
        (mean over entries taken), ``media_read``/``media_write`` (mean over channels).
    timeseries : list of dict
        Samples ``{"cycles": t, "ops_done": n, "faults_done": f}`` every
        ``sample_cycles`` (timing mode, when asked).
    struct_page_cycles : ndarray of shape (N,)
        int64 cycles of each operation's struct-page lines (part of its work, as priced
        by :meth:`sim.timing.cost.CostModel.price_parts`); empty when not priced.
    """

    mode: str
    freq_ghz: float
    cpu: np.ndarray
    start_cycles: np.ndarray
    end_cycles: np.ndarray
    work_cycles: np.ndarray
    ops: list
    makespan_cycles: int
    utilisation: dict = field(default_factory=dict)
    timeseries: list = field(default_factory=list)
    struct_page_cycles: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def stats(self) -> dict:
        """Run summary: makespan (cycles, ns), utilisation figures, lock waits."""
        out = {
            "makespan_cycles": int(self.makespan_cycles),
            "makespan_ns": float(self.makespan_cycles / self.freq_ghz),
        }
        out.update(self.utilisation)
        return out

    @property
    def latency_cycles(self) -> np.ndarray:
        """Per-operation latency (end - start), int64 cycles."""
        return self.end_cycles - self.start_cycles

    @property
    def latency_ns(self) -> np.ndarray:
        """Per-operation latency in ns."""
        return self.latency_cycles / self.freq_ghz

    @property
    def wait_cycles(self) -> np.ndarray:
        """Time spent waiting for shared resources (latency - uncontended work)."""
        return self.latency_cycles - self.work_cycles

    def by_op(self) -> dict[str, dict[str, float]]:
        """Latency statistics per operation type (count, mean/p50/p99/max in cycles and ns)."""
        out: dict[str, dict[str, float]] = {}
        ops = np.asarray(self.ops, dtype=object)
        lat = self.latency_cycles
        for name in sorted(set(self.ops)):
            sel = lat[ops == name]
            out[name] = {
                "count": int(sel.size),
                "mean_cycles": float(sel.mean()),
                "p50_cycles": float(np.percentile(sel, 50)),
                "p99_cycles": float(np.percentile(sel, 99)),
                "max_cycles": int(sel.max()),
                "mean_ns": float(sel.mean() / self.freq_ghz),
                "p99_ns": float(np.percentile(sel, 99) / self.freq_ghz),
            }
        return out

    def to_records(self) -> list[dict]:
        """One dict per operation (``pandas.DataFrame(result.to_records())``)."""
        lat = self.latency_cycles
        return [
            {
                "cpu": int(self.cpu[i]),
                "op": self.ops[i],
                "start_cycles": int(self.start_cycles[i]),
                "end_cycles": int(self.end_cycles[i]),
                "latency_cycles": int(lat[i]),
                "latency_ns": float(lat[i] / self.freq_ghz),
                "work_cycles": int(self.work_cycles[i]),
            }
            for i in range(lat.size)
        ]


class LockTable:
    """Mutexes keyed by name, with FIFO waiters, on a SimPy environment.

    A free lock is taken without any event; a contended one returns a SimPy event that
    succeeds when the holder hands the lock over (``release``), like the kernel's DAX
    entry lock and its wait queue. Busy time is accumulated for utilisation.
    """

    __slots__ = ("env", "held", "since", "busy", "taken", "contended")

    def __init__(self, env: simpy.Environment):
        self.env = env
        self.held: dict = {}  # key -> deque of waiting events
        self.since: dict = {}  # key -> time the current holder got it
        self.busy = 0
        self.taken: set = set()
        self.contended = 0

    def acquire(self, key):
        """Take ``key``; return None when it was free, else an event to yield on."""
        q = self.held.get(key)
        if q is None:
            self.held[key] = deque()
            self.since[key] = self.env.now
            self.taken.add(key)
            return None
        ev = self.env.event()
        q.append(ev)
        self.contended += 1
        return ev

    def release(self, key) -> None:
        """Release ``key``: hand it to the oldest waiter or free it."""
        now = self.env.now
        self.busy += now - self.since[key]
        q = self.held[key]
        if q:
            self.since[key] = now
            q.popleft().succeed()
        else:
            del self.held[key]
            del self.since[key]


def _flatten(streams: Sequence[Stream]):
    counts, ops, recs = [], [], []
    for k, s in enumerate(streams):
        s = s if isinstance(s, list) else list(s)
        try:
            ok = not s or set(map(len, s)) == {2}
        except TypeError:
            ok = False
        if ok and s:
            o, r = zip(*s, strict=True)
            ok = all(map(isinstance, r, repeat(WorkRecord)))
        if not ok:
            raise InputError("stream items must be (op, WorkRecord) pairs", f"cpu{k}")
        counts.append(len(s))
        if s:
            ops.extend(map(str, o))
            recs.extend(r)
    cpu = np.repeat(np.arange(len(counts), dtype=np.int64), np.asarray(counts, dtype=np.int64))
    return cpu, ops, recs


def _interleaved_order(cpu: np.ndarray) -> np.ndarray:
    """Round-robin order over CPUs (i-th op of every CPU, then the (i+1)-th ...)."""
    if cpu.size == 0:
        return np.zeros(0, dtype=np.int64)
    first = np.zeros(cpu.max() + 2, dtype=np.int64)
    counts = np.bincount(cpu)
    first[1 : counts.size + 1] = np.cumsum(counts)
    rank = np.arange(cpu.size) - first[cpu]
    return np.lexsort((cpu, rank))


@contextmanager
def _gc_paused():
    """Pause the cyclic garbage collector for the duration of a run.

    A run allocates a few short-lived containers per operation (plan tuples, SimPy
    events); with hundreds of thousands of work records alive, every generation-2
    collection those allocations trigger walks all of them, which costs more than the run
    itself (measured: ``_plan`` over 40,000 records 0.6 s with the collector, 0.1 s
    without). Reference counting still frees everything the run drops; the collector's
    previous state is restored on exit.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _plan(recs, entry_c, xa_c, dev_c, rest_c) -> list:
    """Per operation: (index, entry, entry-lock keys, device, write?, xa_lock keys, xarray,
    rest, faults); without an xa_lock the xarray work is part of the rest."""
    plan = []
    app = plan.append
    for i, r in enumerate(recs):
        ents = []
        xas = []
        for lk in r.locks:
            if not lk:
                continue
            kind = lk[0]
            if kind == "entry":
                key = tuple(lk[1:])
                if key not in ents:
                    ents.append(key)
            elif kind == "xa_lock":
                key = lk[1:]
                if key not in xas:
                    xas.append(key)
        xc = xa_c[i]
        app(
            (
                i,
                entry_c[i],
                ents,
                dev_c[i],
                1 if r.pmem_write else 0,
                xas,
                xc,
                rest_c[i] if xas else rest_c[i] + xc,
                r.faults,
            )
        )
    return plan


class Engine:
    """Prices and runs per-CPU operation streams.

    Parameters
    ----------
    profile : Profile or str
        Hardware profile.
    cpus : int
        CPUs of the machine; streams may use fewer.
    memmap : {"dram", "pmem"}
        Where the struct pages live.
    cost : CostModel, optional
        Use this cost model (its profile, memmap and cpus win over the other arguments).
    """

    def __init__(
        self,
        profile: Profile | str = "optane-gen1",
        *,
        cpus: int = 8,
        memmap: str = "dram",
        cost: CostModel | None = None,
    ):
        if cost is not None:
            profile, cpus, memmap = cost.profile, cost.cpus, cost.memmap
        if isinstance(profile, str):
            profile = load_profile(profile)
        self.profile = profile
        self.cpus = int(cpus)
        self.memmap = memmap
        self.cost = cost if cost is not None else CostModel(profile, memmap=memmap, cpus=self.cpus)
        agg = self._aggregate_streams()
        self.media_read_streams, self.media_write_streams = agg
        self.stretch = (self._stretch(False), self._stretch(True))

    def _stretch(self, write: bool) -> list[float]:
        """``stretch[k]`` for ``k = 0 .. cpus`` admitted transfers of one direction: 1 up
        to the channel count ``c``, then ``c * B(1) / B(k)`` (at least 1), so that ``k``
        streams share the bandwidth ``B(k)`` the media model gives ``k`` threads."""
        c = self.media_write_streams if write else self.media_read_streams
        bw = concurrency_bandwidth(self.profile, write=write, streams=self.cpus)
        out = [1.0] * (self.cpus + 1)
        for k in range(c + 1, self.cpus + 1):
            out[k] = max(1.0, float(c * bw[0] / bw[k - 1]))
        return out

    def _aggregate_streams(self) -> tuple[int, int]:
        from sim.timing.media import simulate

        p = self.profile
        # aggregate / single-thread bandwidth of the interleave set, from the media model
        rb1 = 1.0 / self.cost.dev_read[1]
        wb1 = 1.0 / self.cost.dev_write[1]
        n = p["dimm.count"]
        acc = _DEVICE_ACCESS
        kr, kw = max(4, 4 * n), max(2, n)
        rbn = simulate(
            p, "load", *acc, kr, region_bytes=_device_region_bytes(p, kr), requests=60_000
        ).bandwidth_gbps
        wbn = simulate(
            p, "ntstore", *acc, kw, region_bytes=_device_region_bytes(p, kw), requests=60_000
        ).bandwidth_gbps
        f = p.freq_ghz
        r = max(1, int(round(rbn / (rb1 * f))))
        w = max(1, int(round(wbn / (wb1 * f))))
        return r, w

    # ----------------------------------------------------------------------------------
    def _price(self, streams):
        cpu, ops, recs = _flatten(streams)
        if cpu.size and cpu.max() >= self.cpus:
            raise InputError(f"{cpu.max() + 1} streams but the engine has {self.cpus} CPUs", "cpus")
        order = _interleaved_order(cpu)
        self.cost.reset()  # every run starts with cold caches: runs are reproducible
        batch = RecordBatch.from_records([recs[i] for i in order])
        parts_o = self.cost.price_parts(batch, cpu=cpu[order])
        parts = {}
        for k, v in parts_o.items():
            a = np.empty_like(v)
            a[order] = v
            parts[k] = a
        return cpu, ops, recs, parts

    def run(
        self,
        streams: Sequence[Stream],
        *,
        mode: str = "timing",
        sample_cycles: int | None = None,
        on_op: Callable[[int, str, int, int], None] | None = None,
    ) -> EngineResult:
        """Run ``streams`` (one sequence of ``(op, WorkRecord)`` per CPU).

        Parameters
        ----------
        mode : {"timing", "functional"}
        sample_cycles : int, optional
            Timing mode: sample the counters every this many cycles into ``timeseries``.
        on_op : callable, optional
            Called as ``on_op(cpu, op, start_cycles, end_cycles)`` after each operation.
        """
        if mode not in ("timing", "functional"):
            raise InputError("mode must be 'timing' or 'functional'", str(mode))
        with _gc_paused():
            cpu, ops, recs, parts = self._price(streams)
            if mode == "functional":
                res = self._functional(cpu, ops, parts, on_op)
            else:
                res = self._timing(cpu, ops, recs, parts, sample_cycles, on_op)
        res.struct_page_cycles = parts["struct_page"]
        return res

    def _functional(self, cpu, ops, parts, on_op):
        total = parts["total"]
        start = np.zeros_like(total)
        end = np.zeros_like(total)
        for k in np.unique(cpu):
            sel = np.flatnonzero(cpu == k)
            e = np.cumsum(total[sel])
            end[sel] = e
            start[sel] = e - total[sel]
        if on_op is not None:
            for i in range(total.size):
                on_op(int(cpu[i]), ops[i], int(start[i]), int(end[i]))
        return EngineResult(
            "functional",
            self.profile.freq_ghz,
            cpu,
            start,
            end,
            total.copy(),
            ops,
            int(end.max()) if end.size else 0,
        )

    def _timing(self, cpu, ops, recs, parts, sample_cycles, on_op):
        """The SimPy run. Locks and device channels are FIFO servers kept as timestamps.

        A lock or channel is taken at ``max(now, time it frees)``; a process yields only
        when it must wait or when the time it reaches matters to other CPUs, so an
        uncontended operation costs one SimPy event (two with device work):

        * device channel (capacity ``c`` per direction): a min-heap of the ``c`` times the
          channels free up; a request starts on the earliest, FIFO in arrival order, and
          the process sleeps until its transfer ends (one timeout covers queueing and
          transfer), exactly as a ``simpy.Resource`` of capacity ``c`` would serve it;
        * xa_lock: held for the known ``xarray`` cycles, so taking it sets the time it
          frees and the waiting is folded into the operation's final sleep;
        * DAX entry lock: held until the operation ends, a time known only once the
          operation has taken its xa_lock; until then later arrivals queue and are woken
          by one timeout at the release (only a contended lock costs events);
        * an operation that takes no lock and no channel costs no event at all: its time
          is added to the CPU's clock and the next operation's sleep covers it.

        The result equals :meth:`_timing_events` (the one-event-per-step reference).
        """
        env = simpy.Environment()
        n = cpu.size
        start = [0] * n
        end = [0] * n
        entry_c = parts["entry"].tolist()
        xa_c = parts["xarray"].tolist()
        dev_c = parts["device"].tolist()
        rest_c = (parts["lines"] + parts["tlb"] + parts["pte"]).tolist()
        plan = _plan(recs, entry_c, xa_c, dev_c, rest_c)
        chan = ([0] * self.media_read_streams, [0] * self.media_write_streams)
        # end times of the transfers admitted per direction (in service or queued)
        admitted: tuple[list, list] = ([], [])
        stretch = self.stretch
        cmin = (self.media_read_streams, self.media_write_streams)
        heappop = heapq.heappop
        heappush = heapq.heappush
        busy = [0, 0]
        done = [0, 0]
        # xa_lock: key -> time it frees; entry lock: key -> time it frees (int) or, while
        # the holder's end is unknown, a deque of waiting events
        xa_free: dict = {}
        ent: dict = {}
        ent_since: dict = {}
        xa_busy = xa_waits = ent_busy = ent_waits = 0
        xa_taken: set = set()
        timeout = env.timeout
        heapreplace = heapq.heapreplace
        track = on_op is not None or bool(sample_cycles)

        def handoff(key, waiters):
            def cb(_ev):
                ent_since[key] = env.now
                waiters.popleft().succeed()
                if not waiters:
                    ent[key] = None  # held by the woken process, nobody queued

            return cb

        def finish(i, t0, nf):
            def cb(_ev):
                done[0] += 1
                done[1] += nf
                if on_op is not None:
                    on_op(int(cpu[i]), ops[i], int(t0), int(env.now))

            return cb

        def cpu_proc(items):
            nonlocal xa_busy, xa_waits, ent_busy, ent_waits
            carry = 0
            for i, ec, ents, dc, w, xas, xc, rest, nf in items:
                t0 = env.now + carry
                start[i] = t0
                if not (ents or dc or xas or track):
                    # touches nothing shared: its time depends on this CPU alone, no event
                    carry += ec + rest
                    end[i] = t0 + ec + rest
                    done[0] += 1
                    done[1] += nf
                    continue
                yield timeout(carry + ec)
                # DAX entry locks, in order, held until the operation ends
                for key in ents:
                    st = ent.get(key, 0)
                    now = env.now
                    if st.__class__ is int:
                        if st > now:  # freeing at a known time: claim it, sleep until then
                            ent_waits += 1
                            ent[key] = None
                            ent_since[key] = st
                            yield timeout(st - now)
                        else:
                            ent[key] = None
                            ent_since[key] = now
                    else:  # held, release time unknown: queue
                        ent_waits += 1
                        if st is None:
                            st = ent[key] = deque()
                        ev = env.event()
                        st.append(ev)
                        yield ev
                now = env.now
                if dc:
                    h = chan[w]
                    adm = admitted[w]
                    while adm and adm[0] <= now:
                        heappop(adm)
                    d = dc if len(adm) < cmin[w] else int(dc * stretch[w][len(adm) + 1] + 0.5)
                    s = h[0] if h[0] > now else now
                    heapreplace(h, s + d)
                    heappush(adm, s + d)
                    busy[w] += d
                    yield timeout(s + d - now)
                    now = env.now
                t = now
                if xas:
                    for key in xas:
                        f = xa_free.get(key, 0)
                        if f > t:
                            xa_waits += 1
                            t = f
                        xa_busy -= t  # held from now, also while taking the next key
                        xa_taken.add(key)
                    for key in xas:
                        xa_free[key] = t + xc
                        xa_busy += t + xc
                    e = t + xc + rest
                else:
                    e = t + rest
                end[i] = e
                for key in reversed(ents):
                    st = ent[key]
                    ent_busy += e - ent_since[key]
                    if st is None:
                        ent[key] = e
                    else:  # waiters: the oldest gets it at e, later arrivals keep queueing
                        timeout(e - now).callbacks.append(handoff(key, st))
                if track:
                    timeout(e - now).callbacks.append(finish(i, t0, nf))
                else:
                    done[0] += 1
                    done[1] += nf
                carry = e - now

        series: list = []
        for k in np.unique(cpu):
            env.process(cpu_proc([plan[i] for i in np.flatnonzero(cpu == k).tolist()]))
        if sample_cycles:

            def sampler():
                while done[0] < n:
                    series.append(
                        {"cycles": int(env.now), "ops_done": done[0], "faults_done": done[1]}
                    )
                    yield env.timeout(int(sample_cycles))
                series.append({"cycles": int(env.now), "ops_done": done[0], "faults_done": done[1]})

            env.process(sampler())
        env.run()
        start = np.asarray(start, dtype=np.int64)
        end = np.asarray(end, dtype=np.int64)
        makespan = int(end.max()) if n else 0
        span = max(1, makespan)
        util = {
            "xa_lock": xa_busy / span / max(1, len(xa_taken)),
            "entry_lock": ent_busy / span / max(1, len(ent)),
            "media_read": busy[0] / span / self.media_read_streams,
            "media_write": busy[1] / span / self.media_write_streams,
            "xa_locks": len(xa_taken),
            "entry_locks": len(ent),
            "xa_lock_waits": xa_waits,
            "entry_lock_waits": ent_waits,
        }
        work = parts["total"].copy()
        return EngineResult(
            "timing", self.profile.freq_ghz, cpu, start, end, work, ops, makespan, util, series
        )

    def _timing_events(self, cpu, ops, recs, parts, sample_cycles, on_op):
        """Reference run: ``simpy.Resource`` channels, lock releases as timeouts (kept to
        check :meth:`_timing` against; about three events per operation)."""
        env = simpy.Environment()
        n = cpu.size
        start = [0] * n
        end = [0] * n
        entry_c = parts["entry"].tolist()
        xa_c = parts["xarray"].tolist()
        dev_c = parts["device"].tolist()
        rest_c = (parts["lines"] + parts["tlb"] + parts["pte"]).tolist()
        xa_locks = LockTable(env)
        entry_locks = LockTable(env)
        busy = [0, 0]
        media = (
            simpy.Resource(env, capacity=self.media_read_streams),
            simpy.Resource(env, capacity=self.media_write_streams),
        )
        done = [0, 0]
        stretch = self.stretch
        plan = _plan(recs, entry_c, xa_c, dev_c, rest_c)
        timeout = env.timeout
        e_acq = entry_locks.acquire
        e_rel = entry_locks.release
        x_acq = xa_locks.acquire
        x_rel = xa_locks.release

        def release_xa(keys):
            def cb(_ev):
                for key in reversed(keys):
                    x_rel(key)

            return cb

        def finish(i, t0, ents, nf):
            def cb(_ev):
                for key in reversed(ents):
                    e_rel(key)
                done[0] += 1
                done[1] += nf
                if on_op is not None:
                    on_op(int(cpu[i]), ops[i], int(t0), int(env.now))

            return cb

        def cpu_proc(items):
            # After the last shared resource of an operation is taken, the rest of its work
            # is uncontended: the process schedules the lock releases as callbacks at their
            # times and sleeps once until the next operation's first lock.
            carry = 0
            for i, ec, ents, dc, w, xas, xc, rest, nf in items:
                t0 = env.now + carry
                start[i] = t0
                yield timeout(carry + ec)
                for key in ents:
                    ev = e_acq(key)
                    if ev is not None:
                        yield ev
                if dc:
                    res = media[w]
                    k = res.count + len(res.queue) + 1
                    d = dc if k <= res.capacity else int(dc * stretch[w][k] + 0.5)
                    req = res.request()
                    if not req.triggered:
                        yield req
                    t1 = env.now
                    yield timeout(d)
                    res.release(req)
                    busy[w] += env.now - t1
                if xas:
                    for key in xas:
                        ev = x_acq(key)
                        if ev is not None:
                            yield ev
                    timeout(xc).callbacks.append(release_xa(xas))
                    tail = xc + rest
                else:
                    tail = rest
                end[i] = env.now + tail
                if ents or on_op is not None or sample_cycles:
                    timeout(tail).callbacks.append(finish(i, t0, ents, nf))
                else:
                    done[0] += 1
                    done[1] += nf
                carry = tail

        series: list = []
        for k in np.unique(cpu):
            env.process(cpu_proc([plan[i] for i in np.flatnonzero(cpu == k).tolist()]))
        if sample_cycles:

            def sampler():
                while done[0] < n:
                    series.append(
                        {"cycles": int(env.now), "ops_done": done[0], "faults_done": done[1]}
                    )
                    yield env.timeout(int(sample_cycles))
                series.append({"cycles": int(env.now), "ops_done": done[0], "faults_done": done[1]})

            env.process(sampler())
        env.run()
        start = np.asarray(start, dtype=np.int64)
        end = np.asarray(end, dtype=np.int64)
        makespan = int(end.max()) if n else 0
        span = max(1, makespan)
        util = {
            "xa_lock": xa_locks.busy / span / max(1, len(xa_locks.taken)),
            "entry_lock": entry_locks.busy / span / max(1, len(entry_locks.taken)),
            "media_read": busy[0] / span / self.media_read_streams,
            "media_write": busy[1] / span / self.media_write_streams,
            "xa_locks": len(xa_locks.taken),
            "entry_locks": len(entry_locks.taken),
            "xa_lock_waits": xa_locks.contended,
            "entry_lock_waits": entry_locks.contended,
        }
        work = parts["total"].copy()
        return EngineResult(
            "timing", self.profile.freq_ghz, cpu, start, end, work, ops, makespan, util, series
        )


def run_engine(model: CostModel, records: Sequence[WorkRecord], cpus) -> EngineResult:
    """Run ``records`` in timing mode, record ``i`` on CPU ``cpus[i] % model.cpus``.

    The result's per-operation arrays are in the order of ``records`` (not grouped by CPU);
    each CPU runs its records in their order in the list.
    """
    recs = list(records)
    cpu = np.asarray(cpus, dtype=np.int64) % model.cpus
    if cpu.shape != (len(recs),):
        raise InputError("need one CPU index per record", "cpus")
    eng = Engine(cost=model)
    streams: list[list] = [[] for _ in range(model.cpus)]
    for r, c in zip(recs, cpu.tolist(), strict=True):
        streams[c].append((r.op, r))
    res = eng.run(streams, mode="timing")
    # the engine lists operations CPU by CPU; put them back in record order
    order = np.argsort(cpu, kind="stable")
    inv = np.empty_like(order)
    inv[order] = np.arange(order.size)
    return EngineResult(
        res.mode,
        res.freq_ghz,
        res.cpu[inv],
        res.start_cycles[inv],
        res.end_cycles[inv],
        res.work_cycles[inv],
        [res.ops[i] for i in inv.tolist()],
        res.makespan_cycles,
        res.utilisation,
        res.timeseries,
        res.struct_page_cycles[inv],
    )


def run_functional(
    streams: Sequence[Stream],
    profile: Profile | str = "optane-gen1",
    *,
    cpus: int | None = None,
    memmap: str = "dram",
) -> EngineResult:
    """Price each operation in isolation (no SimPy); per-CPU time is the running sum."""
    ncpu = cpus if cpus is not None else max(1, len(streams))
    return Engine(profile, cpus=ncpu, memmap=memmap).run(streams, mode="functional")


def run_timing(
    streams: Sequence[Stream],
    profile: Profile | str = "optane-gen1",
    *,
    cpus: int | None = None,
    memmap: str = "dram",
    sample_cycles: int | None = None,
) -> EngineResult:
    """Run the SimPy engine over the streams."""
    ncpu = cpus if cpus is not None else max(1, len(streams))
    return Engine(profile, cpus=ncpu, memmap=memmap).run(
        streams, mode="timing", sample_cycles=sample_cycles
    )
