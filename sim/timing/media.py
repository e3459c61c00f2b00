"""The pmem device model: iMC queues, XPBuffer, AIT, 3D-XPoint media, wear levelling.

Structure (``shared/docs/pmem-timing.md`` sections 1.6 and 3, VANS):

``core -> iMC RPQ/WPQ (per channel) -> channel (read/write turnaround) -> XPBuffer (RMW /
write-combining, 256 B lines, LRU) -> AIT buffer (4 KiB blocks, set-associative LRU) ->
media (separate read and write ports with latency and occupancy) ; wear levelling``

* Addresses are interleaved across ``dimm.count`` DIMMs every ``dimm.interleave_bytes``;
  each DIMM has its own queues, buffer, AIT and media ports.
* Reads: an XPBuffer hit costs ``cpu.uncore_read_ns + rmw.read_ns``; a miss first reads the
  whole XPLine from the media (``ait.hit_ns``/``ait.miss_ns`` + ``media.t_read_ns``; the
  read port is busy ``media.read_occupancy_ns`` per line). The other 64 B parts of a line
  being read wait for it and are served from the buffer when it arrives (VANS, S2
  ``src/general/rmw.cpp``: reads to a pending entry are "patched" onto it). A miss that
  continues a sequential stream (line ``X-1`` present) prefetches ``rmw.prefetch_lines``
  lines ahead (within the AIT block); VANS has no prefetcher, but the one-thread sequential
  idle latency (169 ns against 305 ns random, S1) needs one. Prefetches for loads are
  issued only while the media read port is idle (they yield to demand reads), so random
  accesses of a few XPLines waste no media time on lines past their end under load (S1
  RandBW, one DIMM, 4 threads: 1 KiB 6.62 GB/s as 256 B; greedy prefetches read 1.48
  lines per line used there and gave 4.4). The reads for ownership of store+clwb keep the
  greedy prefetcher: the fit of its one-DIMM collapse (``cpu.rfo_window``, below) rests on
  it (yielding, 12 / 16 threads give 1.35 / 1.15 GB/s, published 1.08 / 0.88); one rule
  for both is left to do (BENCHMARKS.md, issue 18).
* Loads reach the DIMM in the order the iMC admits them, not in issue order. A load takes
  a slot of its channel's RPQ (``imc.rpq_entries``, held until the line's data leaves the
  DIMM) if one is free and no load is waiting; otherwise it waits, and each slot that
  frees goes to one of the ``imc.read_admission`` oldest waiting loads, chosen uniformly
  (seeded). The XPBuffer is looked up and filled when a load is admitted (the admission
  is its own event, so the buffer changes in arrival order). Under many threads the four
  64 B parts of an XPLine are then admitted far apart, other lines evict it in between,
  and its later parts read the media again. Why: S1's raw sweep (``data/bandwidth.csv``,
  RandBW, prefetchers off, one DIMM, LATTester placement) falls with threads for random
  loads, which no prefetcher touches: 256 B 6.47 / 4.76 / 3.38 GB/s at 4 / 12 / 24
  threads, 128 B 3.37 / 2.96 / 2.15, while 64 B (one part per line) stays at 1.70-1.54;
  at 24 threads a 256 B access reads 1.9 lines, a 128 B one 1.5. The parts of an XPLine
  are four cache lines, which the CPU homes on different LLC slices (CHAs) and sends to
  the iMC through separate queues (the hashing is Intel's, undocumented; the spread is
  the model's assumption). With ``imc.read_admission`` = 1 (issue order) the parts arrive
  together and nothing falls; the value (56) is fitted to the one-DIMM sequential load
  points at 16 and 24 threads (24 gives no fall, 96 falls to 3.1 GB/s at 24 threads).
  DRAM and CXL media, and reads for ownership, are admitted in issue order.
* Writes complete (are durable, ADR) when the iMC WPQ accepts them; the WPQ slot is held
  until the DIMM accepts the write into the XPBuffer. A line whose four 64 B parts are all
  written is written back whole (write combining); a partially written line that must be
  evicted is read, merged and written (read-modify-write). Write-backs go through a media
  write queue of ``rmw.writeback_entries``; when it is full the DIMM stops accepting
  writes, which fills the WPQ and stalls the threads. A line being written back stays busy
  in the XPBuffer until its media write completes (``rmw.pin_writeback``, VANS: only idle
  entries are evictable), so under a write backlog few entries are left for the lines
  still being combined. Every ``media.wear_threshold``
  media writes to one AIT block stall the DIMM for ``media.migration_ns`` (counted in 2^16
  counters per DIMM indexed by the block number folded onto 16 bits, so that separate
  regions, e.g. LATTester's per-thread 2 GiB working sets, do not share counters).
* A thread keeps at most ``window`` 64 B requests outstanding (loads: ``cpu.load_window``
  = 12, the core's L1D fill buffers, which bound a core's outstanding L1 misses when the
  hardware prefetchers are off, as in S1: Intel's optimization manual gives 10 per core
  for Nehalem through Haswell; for the Skylake-SP core of S1's Cascade Lake 10-12 is
  reported, not checked against a stored manual here. S1's one-thread random loads,
  2.6-2.7 GB/s at 256 B and 3.1-3.2 GB/s from 1 KiB, ``data/bandwidth.csv`` RandBW,
  need 10-12 in flight at 250-305 ns; 8 gave 1.7-1.8 GB/s) and its outstanding
  requests reach the DIMM in any order (write-combining buffer eviction, iMC scheduling):
  modelled as a seeded random permutation of each window of consecutive requests. With
  many threads the open (partially written) lines of all threads exceed the XPBuffer
  entries that are not busy writing back, lines are evicted before they are complete, and
  write bandwidth collapses gradually. Nothing is fitted per thread count.
* XPBuffer eviction: the least recently used idle clean line, else the least recently
  used idle dirty line (VANS, S2 ``rmw_controller::check_and_evict``: the LRU idle entry).
  The model once evicted fully read clean lines first; that protected the half-read lines
  of 256 B loads, which then fell as a cliff under many threads (none at 16 threads,
  3.3 GB/s at 24) instead of gradually.
* Store + clwb (``clwb``): a thread keeps at most ``cpu.rfo_window`` reads for ownership
  outstanding (fill buffers) within a window of ``cpu.clwb_window`` lines between a line's
  read for ownership and the WPQ's acceptance of its write (the store buffer, where the
  store and its clwb wait). LATTester's store+clwb loop (S1 ``src/kernel/memaccess.c``,
  ``stride_storeclwb``: ``vmovdqa64`` then ``clwb`` per 64 B, no fence in the loop, since
  ``SIZEBTST_FENCE`` is empty) lets a thread read lines ahead while the write-backs of
  earlier lines wait; Skylake-SP's store buffer holds 56 stores (Intel 64 and IA-32
  Optimization Reference Manual), i.e. 28 store+clwb pairs. Alone on a DIMM the writes
  keep up and a thread has about ``cpu.rfo_window`` lines open (the 1-2 thread points are
  unchanged); with many threads the writes wait, every thread holds up to
  ``cpu.clwb_window`` lines open in the XPBuffer (read, partly written), partial lines are
  evicted and written again, and store+clwb collapses as ntstore does (S1: 1-DIMM
  store+clwb 1.08 / 0.82 GB/s at 12 / 24 threads, the same as ntstore; ``data/bandwidth.csv``
  Store+Flush amplifies writes 1.09 / 1.42 / 1.48 at 4 / 6 / 8 threads). With one window
  for both (the model before) a thread never had more than 1.5 XPLines open, the buffer
  was thrashed only by the DIMM's prefetches, and the curve stayed at 1.3-1.4 GB/s.
* Head-of-line blocking on the way to the WPQs (``imc.in_order_writes``): the DIMMs are
  grouped ``imc.dimms_per_imc`` to one in-order write ingress, which moves writes into the
  DIMMs' WPQs in the order they arrive, so a write that waits for a slot in a full WPQ
  holds back every later write to the group's other DIMMs. On one DIMM this changes
  nothing. On an interleaved set it couples the DIMMs: a DIMM that many threads write at
  once (their streams line up on it, ``dimm.interleave_bytes`` at a time) backs up, the
  writes behind it wait, and the threads bunch further; bandwidth falls as writer threads
  grow past ~8 where the per-channel queues alone spread the threads evenly and kept it
  flat. The group is the whole socket (``imc.dimms_per_imc`` = 6), although S1's socket has
  two iMCs of three channels: S1 ``data/alignment.csv`` (random 4 KiB ntstores, six DIMMs,
  2 GiB per thread) falls from 9.99 GB/s at 6 threads to 7.76 at 24, which one ingress per
  iMC does not give (9.8, +26%) and one per socket does (8.3, +7%), and at 24 threads a
  thread's writes cost as much spread over one iMC's three DIMMs (9.41 GB/s) as over two
  DIMMs of two iMCs (9.37; one DIMM per thread: 12.49). Sources: FAST'20 (S1) attributes
  the interleaved write collapse to XPBuffer and iMC contention and advises limiting the
  writer threads per DIMM; PATS (DATE'22) measures head-of-line blocking in the CPU's
  memory controller when many threads access pmem. The real ingress is not one FIFO (a
  line goes through the mesh to its CHA, one per core); this is the model's reduction.
  How the threads line up depends on where their regions start: LATTester gives each
  thread a 2 GiB working set, so on six DIMMs interleaved at 4 KiB thread ``i`` starts on
  DIMM ``2i mod 6`` (:data:`THREAD_REGION_BYTES`, the default of
  :func:`simulate`; ``region_bytes`` places the threads ``region_bytes / threads`` apart).
  With one FIFO for the socket, threads that start on the same DIMM stay together: a
  placement that starts every thread on one DIMM collapses (8 threads: ~3 GB/s), which is
  why the default is no longer 1 GiB per DIMM.
* The media write time ``media.t_write_ns`` = 2,750 ns is FITTED, to S1's six-DIMM
  ntstore thread sweep at 16, 20 and 24 threads in steady state (``FITTED`` in
  :mod:`sim.timing.published`): it is 12x VANS's 225 ns (300 tCK), 5.5x gem5's NVM preset
  (500 ns) and 2.6x the 1,050 ns Blocks & Files quotes, the longest media write in the
  sources; no source measures Optane's media write time under load. A write-back holds
  its write-queue entry (``rmw.writeback_entries``) and, pinned, its XPBuffer entry until
  its write ends, while a new one starts every ``media.write_occupancy_ns``: with the long
  write a DIMM's queue holds writes in flight rather than writes waiting, so it stops
  accepting sooner, the socket's ingress backs up and the threads' convoys persist, and
  the media idle between convoys as S1's do (``data/bandwidth.csv``: six DIMMs at 22
  threads write 1.22x the CPU's bytes and the media idle ~25% of the time). With VANS's
  225 ns the model's media stay ~90% busy and 24 threads reach 10.5-11.5 GB/s in steady
  state (+41-53%); 1,050 ns gives +41%, 2,000 ns +30%, 2,750 ns +21%. On one DIMM a
  line's entries are held 48 x ``media.write_occupancy_ns`` (the write-back queue is
  full) however that time splits, so the one-DIMM curves do not move (within 0.01 GB/s).
  The engine's device curves (:mod:`sim.engine.core`) use S1's placement too.
* The AIT buffer is ``ait.buffer_entries`` blocks in sets of ``ait.ways`` (at most 16),
  LRU per set (VANS's AIT buffer, S2 ``src/general/ait.h``, is one LRU buffer keyed by
  block address, fully associative; the sets are the model's). The set of a block is its
  number with its bytes xor-ed onto the low byte, modulo the sets (``_ait_set``): a plain
  modulo put every LATTester thread (regions 2^19 blocks apart) in one set, so 24
  sequential streams thrashed one set of 16 ways while the others stayed empty.
* Reads served to the CPU take ``media.read_write_interference_ns`` of write-port time
  each (the DIMM controller serves one at a time): this is why store+clwb (a read for
  ownership per line) peaks at ~1.75 GB/s while ntstore reaches 2.2 GB/s.
* DRAM and CXL media have no XPBuffer and no AIT: 64 B granularity, an open-row state per
  bank, a channel occupancy per 64 B and (CXL) a fixed link latency.

The request loop is one numba ``njit`` kernel over an event heap: no Python per request,
no allocation and no reference counting per request (about 0.2-0.3 us per simulated 64 B
request; see "numba kernel" below). Time is integer CPU cycles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils
from numba.extending import intrinsic

from sim.errors import InputError
from sim.timing.profiles import Profile

__all__ = [
    "OPS",
    "PATTERNS",
    "THREAD_REGION_BYTES",
    "MediaResult",
    "simulate",
    "staggered_region_bytes",
]

#: LATTester's per-thread working set (``PERTHREAD_WORKSET``, ``ALIGN_PERTHREAD``), the
#: default placement of :func:`simulate`'s threads.
THREAD_REGION_BYTES = 2 << 30

OPS = ("load", "ntstore", "clwb")
PATTERNS = ("seq", "rand")

# Indices into the int64 parameter vector handed to the kernel.
(
    _KIND,
    _NDIMM,
    _IL,
    _LINE,
    _NLINES,
    _PF,
    _WBQ,
    _AITE,
    _AITW,
    _AITB,
    _AIT_HIT,
    _AIT_MISS,
    _T_READ,
    _T_WRITE,
    _OCC_R,
    _OCC_W,
    _WEAR,
    _MIG,
    _UNCORE,
    _RMW_READ,
    _ACK_NT,
    _ACK_CLWB,
    _RPQ,
    _WPQ,
    _BURST,
    _TURN,
    _ROW_HIT,
    _ROW_MISS,
    _ROW_BYTES,
    _BANKS,
    _EXTRA,
    _GAP,
    _STREAMS,
    _JITTER,
    _RWI,
    _PF_TOL,
    _PIN,
    _IMC_DIMMS,
    _HOL,
    _PF_YIELD,
    _POOL_ORDER,
    # derived once per run: divisors of the hot path as shifts (-1: not a power of two)
    _IL_SH,
    _NDIMM_SH,
    _LINE_SH,
    _FULL,
    _LPB,
    _LPB_SH,
    _NSETS,
    _NSETS_SH,
    _ROW_SH,
    _BANKS_SH,
    _HBITS,
    _POW2,
    _RFOW,
    _AIT_FILL,
) = range(55)
_NPARAM = 55

# Statistic indices returned by the kernel.
(
    S_MEDIA_READS,
    S_MEDIA_WRITES,
    S_RMW,
    S_BUF_HITS,
    S_BUF_MISSES,
    S_AIT_HITS,
    S_AIT_MISSES,
    S_MIGRATIONS,
    S_PREFETCH,
    S_PREFETCH_USED,
    S_END,
) = range(11)
_NSTAT = 11

# wear counters: a table of 2^16 per DIMM, indexed by the AIT block number's low 16 bits
# plus its higher bits times an odd constant (``_fold16``). A mask of the block number would
# alias blocks 2^16 apart (LATTester's 2 GiB per-thread regions are 2^19 blocks apart, so
# every thread would count on the same slots); adding the low bits keeps neighbouring blocks
# on neighbouring slots, so a sequential stream stays in the host's cache (a multiplicative
# hash of the whole number sent every block to a random line of the 3 MiB table and cost a
# host cache miss per media write). The constant spreads the starts of regions c * 2^16
# blocks apart (c = 1..16, 6..48 regions) at least 0.35 * 2^16 / regions slots apart, so
# that long runs do not share counters either: xor-ing the parts, as before, put region t
# of LATTester's layout at slot offset 8t, and over 480,000 requests 24 threads on one
# DIMM counted ~15 blocks on each slot and stalled for 256 migrations no block had earned
_WEAR_MUL = 56733
_WEAR_BITS = 16
_WEAR_SLOTS = 1 << _WEAR_BITS

# XPBuffer victim key: category (1 clean, 2 dirty) << 60 | lru << 12 | entry, so
# the smallest key of the idle entries is the victim of the original scan.
_E_BITS = 12
_MAX_LINES = 1 << _E_BITS
_CAT_SH = 60
_NOKEY = 3 << _CAT_SH
_HASH_MUL = np.int64(-7046029254386353131)  # 0x9E3779B97F4A7C15 (Fibonacci hashing)

# AIT LRU order (see _ait): at most 16 ways, 4 bits each in one word; the tie word holds
# clock << 5 | count (count <= 16)
_AIT_MAX_WAYS = 16
_AIT_TIE_BITS = 5
_AIT_TIE_MASK = (1 << _AIT_TIE_BITS) - 1
_NIB_ONES = np.int64(0x1111111111111111)
_NIB_HIGH = np.int64(-0x7777777777777778)  # 0x8888888888888888

# Event payload: request << 21 | window slot << 14 | thread << 1 | phase. A thread field of
# ``nthreads + d`` is DIMM ``d``'s read admission event (a slot of its RPQ frees).
_MAX_THREADS = 1 << 12
_MAX_WINDOW = 1 << 7
_PAY_T = 1
_PAY_R = 14
_PAY_G = 21
_T_MASK = (1 << (_PAY_R - _PAY_T)) - 1


def _log2(d: int) -> int:
    """log2 of ``d`` if it is a power of two, else -1 (the kernels then divide)."""
    return d.bit_length() - 1 if d > 0 and d & (d - 1) == 0 else -1


def _param_vector(profile: Profile, op: str, ndimms: int) -> np.ndarray:
    v = profile.values
    c = profile.cycles
    kind = {"optane": 0, "dram": 1, "cxl": 2}[v["media.kind"]]
    P = np.zeros(_NPARAM, dtype=np.int64)
    P[_KIND] = kind
    P[_NDIMM] = ndimms
    P[_IL] = v["dimm.interleave_bytes"]
    P[_LINE] = v["rmw.line_bytes"] if kind == 0 else 64
    P[_NLINES] = v["rmw.buffer_lines"]
    P[_PF] = v["rmw.prefetch_lines"]
    P[_WBQ] = v["rmw.writeback_entries"]
    P[_AITE] = v["ait.buffer_entries"]
    P[_AITW] = min(v["ait.ways"], v["ait.buffer_entries"])
    P[_AITB] = v["ait.block_bytes"]
    P[_AIT_HIT] = c("ait.hit_ns")
    P[_AIT_MISS] = c("ait.miss_ns")
    P[_T_READ] = c("media.t_read_ns")
    P[_T_WRITE] = c("media.t_write_ns")
    P[_OCC_R] = max(1, c("media.read_occupancy_ns"))
    P[_OCC_W] = max(1, c("media.write_occupancy_ns"))
    P[_WEAR] = v["media.wear_threshold"]
    P[_MIG] = c("media.migration_ns")
    P[_UNCORE] = c("cpu.uncore_read_ns")
    P[_RMW_READ] = c("rmw.read_ns")
    if kind == 0:
        P[_ACK_NT] = c("cpu.ntstore_ack_ns")
        P[_ACK_CLWB] = c("cpu.clwb_ack_ns")
    else:
        P[_ACK_NT] = c("dram.ntstore_ack_ns")
        P[_ACK_CLWB] = c("dram.clwb_ack_ns")
    P[_RPQ] = v["imc.rpq_entries"]
    P[_WPQ] = v["imc.wpq_entries"]
    P[_BURST] = max(1, profile.ns_to_cycles(64.0 / v["imc.channel_gbps"]))
    P[_TURN] = 0
    P[_ROW_HIT] = c("dram.row_hit_ns")
    P[_ROW_MISS] = c("dram.row_miss_ns")
    P[_ROW_BYTES] = v["dram.row_bytes"]
    P[_BANKS] = v["dram.banks"]
    P[_EXTRA] = c("cxl.extra_ns")
    if kind != 0:
        P[_OCC_R] = max(1, c("dram.read_occupancy_ns"))
        P[_OCC_W] = max(1, c("dram.write_occupancy_ns"))
    P[_STREAMS] = max(1, v["rmw.prefetch_streams"])
    P[_JITTER] = c("cpu.issue_jitter_ns")
    P[_RWI] = c("media.read_write_interference_ns")
    P[_PF_TOL] = 1
    P[_PIN] = 1 if v["rmw.pin_writeback"] else 0
    P[_IMC_DIMMS] = v["imc.dimms_per_imc"]
    P[_HOL] = 1 if v["imc.in_order_writes"] else 0
    P[_POOL_ORDER] = v["imc.read_admission"]
    # prefetches yield to demand loads; store+clwb keeps the greedy prefetcher (its
    # reads for ownership, see the module docstring)
    P[_PF_YIELD] = 1 if op == "load" else 0
    P[_GAP] = c("cpu.load_issue_ns") if op == "load" else c("cpu.store_issue_ns")
    line = int(P[_LINE])
    P[_IL_SH] = _log2(int(P[_IL]))
    P[_NDIMM_SH] = _log2(ndimms)
    P[_LINE_SH] = _log2(line)
    P[_FULL] = (1 << (line // 64)) - 1
    P[_LPB] = int(P[_AITB]) // line
    P[_LPB_SH] = _log2(int(P[_LPB]))
    P[_NSETS] = max(1, int(P[_AITE]) // int(P[_AITW]))
    P[_NSETS_SH] = _log2(int(P[_NSETS]))
    P[_ROW_SH] = _log2(int(P[_ROW_BYTES]))
    P[_BANKS_SH] = _log2(int(P[_BANKS]))
    # line -> entry hash table of at least 4 slots per XPBuffer entry
    P[_HBITS] = max(2, (4 * int(P[_NLINES]) - 1).bit_length())
    P[_POW2] = 1  # shifts for power-of-two access sizes and per-thread slices
    P[_RFOW] = v["cpu.rfo_window"]
    # the AIT order word's 4-bit fields past the ways hold 15 (see _ait)
    ways = int(P[_AITW])
    P[_AIT_FILL] = -(1 << (4 * ways)) if ways < _AIT_MAX_WAYS else 0
    return P


def _without_shortcuts(P: np.ndarray) -> np.ndarray:
    """Copy of ``P`` with every power-of-two shortcut off: the kernel then divides
    everywhere (the generic path that tests compare the shortcuts against)."""
    Q = P.copy()
    for i in (_IL_SH, _NDIMM_SH, _LINE_SH, _LPB_SH, _NSETS_SH, _ROW_SH, _BANKS_SH):
        Q[i] = -1
    Q[_POW2] = 0
    return Q


# --------------------------------------------------------------------------------------
# numba kernel
#
# ``_simulate`` allocates the state; ``_run`` is the request loop. ``_run`` and its
# helpers are compiled without numba's reference-counting runtime (``_nrt=False``: they
# allocate nothing), so touching the ~25 state arrays costs no atomic incref/decref per
# helper call (with the runtime these were half of the run time), and the helpers are
# inlined by LLVM (``forceinline``; numba-IR inlining gives the same code but 2.5 times
# the cold compile time). Divisions by run-time divisors use shifts and masks when the
# divisor is a power of two (``_div``/``_mod``), with the division as the fallback (e.g.
# a 3-DIMM interleave). The XPBuffer lookup is a hash table, its victim choice a minimum
# over precomputed keys, the iMC and write-back queues sorted rings: each chooses
# exactly what the linear scans and min-heaps they replace chose (the outputs are pinned
# bit for bit by tests/test_media_equivalence.py). The event heap is 4-ary (half the depth
# of a binary heap; its keys are unique, so it pops what any priority queue pops), and the
# first event an event schedules takes the handled event's root slot (one sift-down instead
# of a pop's and a push's). When a line turns dirty the kernel asks the host CPU to
# prefetch the line's wear counter and AIT set (``_host_prefetch``): its write-back, often
# much later, would otherwise stall on a host cache miss in a 3 MiB table (the largest
# single cost in random-write runs). The prefetcher's stream detector and-reduces its
# table before it searches it (a random read continues no stream). An AIT set's LRU state
# is one order word (4 bits a way) and one tie word instead of a timestamp per way: a
# lookup touches the set's 2 host cache lines of tags and one shared line of order words.
# --------------------------------------------------------------------------------------

_kernel = numba.njit(cache=True, _nrt=False)
_inline = numba.njit(cache=True, _nrt=False, forceinline=True)


@_inline
def _div(x, d, sh):
    """``x // d`` for ``x >= 0``: a shift when ``d == 1 << sh`` (``sh >= 0``)."""
    if sh >= 0:
        return x >> sh
    return x // d


@_inline
def _mod(x, d, sh):
    """``x % d`` for ``x >= 0``: a mask when ``d == 1 << sh`` (``sh >= 0``)."""
    if sh >= 0:
        return x & (d - 1)
    return x % d


@_inline
def _mix(x):
    # splitmix64 finaliser in wrapping int64 arithmetic, result >= 0
    x = x + np.int64(-7046029254386353131)
    x = (x ^ ((x >> 30) & np.int64(0x3FFFFFFFF))) * np.int64(-4658895280553007687)
    x = (x ^ ((x >> 27) & np.int64(0x1FFFFFFFFF))) * np.int64(-7723592293110705685)
    x = x ^ ((x >> 31) & np.int64(0x1FFFFFFFF))
    return x & np.int64(0x7FFFFFFFFFFFFFFF)


@_inline
def _heap_push(hk, hv, n, key, val):
    """Push (key, val) on the 4-ary min-heap ``hk[:n]``/``hv[:n]``; return the new size.

    Keys are unique (the event keys end in an issue sequence number), so the pops come out
    in the order of any other priority queue (a binary heap, ``heapq``); four children per
    node halve the depth of a binary heap, and the sift-down compares the four siblings
    pairwise (independent comparisons)."""
    i = n
    while i > 0:
        p = (i - 1) >> 2
        if hk[p] <= key:
            break
        hk[i] = hk[p]
        hv[i] = hv[p]
        i = p
    hk[i] = key
    hv[i] = val
    return n + 1


@_inline
def _heap_sift(hk, hv, n, k, v):
    """Put (k, v) in the vacant root of the 4-ary heap ``hk[:n]`` and sift it down."""
    i = 0
    while True:
        c = 4 * i + 1
        if c + 3 < n:  # four children: a tournament of two pairs
            a = hk[c]
            b = hk[c + 1]
            m1 = c + 1 if b < a else c
            k1 = min(a, b)
            a = hk[c + 2]
            b = hk[c + 3]
            m2 = c + 3 if b < a else c + 2
            k2 = min(a, b)
            m = m2 if k2 < k1 else m1
            mk = min(k1, k2)
        elif c < n:
            m = c
            mk = hk[c]
            for q in range(c + 1, n):
                if hk[q] < mk:
                    mk = hk[q]
                    m = q
        else:
            break
        if k <= mk:
            break
        hk[i] = mk
        hv[i] = hv[m]
        i = m
    hk[i] = k
    hv[i] = v


@_inline
def _heap_put(hk, hv, n, vacant, key, val):
    """Add (key, val) to the heap whose root event is being handled: into the root's slot
    if it is still ``vacant`` (one sift-down instead of a pop and a push), else a push.
    Returns the new size and False (the root is taken)."""
    if vacant:
        _heap_sift(hk, hv, n, key, val)
        return n, False
    return _heap_push(hk, hv, n, key, val), False


@_inline
def _heap_drop_root(hk, hv, n):
    """Remove the root of the heap (its slot vacant); return the new size."""
    n -= 1
    if n > 0:
        _heap_sift(hk, hv, n, hk[n], hv[n])
    return n


@intrinsic
def _host_prefetch(typingctx, arr, i, j):
    """Hint the host CPU to bring ``arr[i, j]`` into its caches (``llvm.prefetch``, for a
    write, high locality); no effect on any value (a prefetch never faults)."""
    sig = numba.types.void(arr, i, j)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(
            context, builder, aryty, ary, [args[1], args[2]], wraparound=False
        )
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
        rw, locality, data = ir.Constant(i32, 1), ir.Constant(i32, 3), ir.Constant(i32, 1)
        builder.call(fn, [builder.bitcast(ptr, i8p), rw, locality, data])
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _ctz(typingctx, x):
    """Trailing zero bits of ``x != 0`` (``llvm.cttz``)."""
    sig = x(x)

    def codegen(context, builder, signature, args):
        ity = ir.IntType(64)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ity, [ity, ir.IntType(1)]), "llvm.cttz.i64"
        )
        return builder.call(fn, [args[0], ir.Constant(ir.IntType(1), 1)])

    return sig, codegen


@_inline
def _qmin(q, d):
    """Smallest element of queue row ``q[d]`` (see :func:`_replace_min`)."""
    return q[d, 1 + q[d, 0]]


@_inline
def _replace_min(q, d, value):
    """Replace the smallest element of queue row ``q[d]`` by ``value``.

    A row is ``[head, x_0 .. x_(n-1)]``: the n values sorted circularly from ``head`` (a
    fixed-size multiset, like a min-heap but O(1) for the usual non-decreasing
    ``value``). The removed minimum's slot becomes the last position and ``value`` moves
    back from there past the larger values."""
    row = q[d, 1:]
    n = row.shape[0]
    p = q[d, 0]
    h = p + 1
    if h == n:
        h = 0
    q[d, 0] = h
    while p != h:
        pp = p - 1 if p > 0 else n - 1
        x = row[pp]
        if x <= value:
            break
        row[p] = x
        p = pp
    row[p] = value


@_inline
def _hslot(line, hbits):
    """Home slot of ``line`` in a table of ``2**hbits`` slots (Fibonacci hashing: the
    lines of different threads' slices differ only in high bits)."""
    return ((line * _HASH_MUL) >> (64 - hbits)) & ((np.int64(1) << hbits) - 1)


@_inline
def _find(ht, tag, d, line, hbits):
    """XPBuffer entry holding ``line`` on DIMM ``d``, or -1 (tags are unique per DIMM)."""
    hmask = (np.int64(1) << hbits) - 1
    h = _hslot(line, hbits)
    while True:
        v = ht[d, h]
        if v == 0:
            return -1
        if tag[d, v - 1] == line:
            return v - 1
        h = (h + 1) & hmask


@_inline
def _hinsert(ht, d, line, e, hbits):
    hmask = (np.int64(1) << hbits) - 1
    h = _hslot(line, hbits)
    while ht[d, h] != 0:
        h = (h + 1) & hmask
    ht[d, h] = e + 1


@_inline
def _hdelete(ht, tag, d, line, hbits):
    """Remove ``line`` (present) from the linear-probing table (backward-shift deletion)."""
    hmask = (np.int64(1) << hbits) - 1
    i = _hslot(line, hbits)
    while tag[d, ht[d, i] - 1] != line:
        i = (i + 1) & hmask
    j = i
    while True:
        j = (j + 1) & hmask
        v = ht[d, j]
        if v == 0:
            break
        k = _hslot(tag[d, v - 1], hbits)
        if i <= j:
            stay = i < k and k <= j
        else:
            stay = i < k or k <= j
        if not stay:
            ht[d, i] = v
            i = j
    ht[d, i] = 0


@_inline
def _victim_key(mask, lru, e):
    """Eviction order key of XPBuffer entry ``e``: clean < dirty, then LRU, then entry
    number (see :func:`_alloc`)."""
    cat = 2 if mask != 0 else 1
    return (cat << _CAT_SH) | (lru << _E_BITS) | e


@_inline
def _ait_set(P, blk):
    """AIT buffer set of block ``blk``: the block number with its bytes xor-ed down onto
    its low byte (prefix xor), modulo the number of sets. Neighbouring blocks go to
    neighbouring sets as with a plain modulo, but blocks a multiple of the set count apart
    (per-thread regions aligned to 2 GiB, 2^19 blocks) no longer all share one set."""
    x = blk ^ (blk >> 8)
    x = x ^ (x >> 16)
    x = x ^ (x >> 32)
    return _mod(x, P[_NSETS], P[_NSETS_SH])


@_inline
def _nibbles(n):
    """Mask of the low ``n`` 4-bit fields of a word, ``0 <= n <= 15``."""
    return (np.int64(1) << (4 * n)) - 1


@_inline
def _ait_touch(ait_lru, d, s, ways, w, p, clock):
    """Make way ``w``, at position ``p`` of set ``s``'s LRU order, the most recently used at
    ``clock`` (see :func:`_ait`)."""
    o = ait_lru[d, 2 * s]
    tie = ait_lru[d, 2 * s + 1]
    nt = tie & _AIT_TIE_MASK
    # take position p out: the ways above it move down one position
    o = (o & _nibbles(p)) | ((((o >> (4 * p)) >> 4) & _nibbles(ways - 1 - p)) << (4 * p))
    if p >= ways - nt:
        nt -= 1
    if clock != tie >> _AIT_TIE_BITS:
        # a later use than any other: the newest position
        ait_lru[d, 2 * s] = o | (w << (4 * (ways - 1)))
        ait_lru[d, 2 * s + 1] = clock << _AIT_TIE_BITS | 1
        return
    # used in the same event as the last nt ways of the order: among them by way number
    q = ways - 1 - nt
    while q < ways - 1 and (o >> (4 * q)) & 15 < w:
        q += 1
    up = np.int64(0)
    if q < ways - 1:
        up = ((o >> (4 * q)) & _nibbles(ways - 1 - q)) << (4 * (q + 1))
    ait_lru[d, 2 * s] = (o & _nibbles(q)) | (w << (4 * q)) | up
    ait_lru[d, 2 * s + 1] = clock << _AIT_TIE_BITS | (nt + 1)


@_inline
def _ait(P, ait_tag, ait_lru, d, blk, clock, st):
    """AIT buffer lookup of block ``blk``: set-associative, LRU within the set.

    The LRU order of set ``s`` is one word, ``ait_lru[d, 2 s]``: the ways from the least to
    the most recently used, four bits each (at most 16 ways). A use moves its way to the
    newest position, except that ways used in the same event (the same ``clock``) are
    ordered by way number; ``ait_lru[d, 2 s + 1]`` holds the clock of the set's last use and
    how many of the newest positions it stamped (``clock << 5 | count``). So the victim is
    the way of the smallest ``(clock of last use, way)``, as with a timestamp per way, with
    two words per set instead of 16 (the tags and the order of a set take 2 host cache
    lines and a sixteenth of one, where tags and timestamps took 4)."""
    ways = P[_AITW]
    s = _ait_set(P, blk)
    base = s * ways
    tags = ait_tag[d, base : base + ways]
    w = ways
    for k in range(ways):  # branch-free
        w = min(w, k if tags[k] == blk else ways)
    if w < ways:
        # its position: the lowest 4-bit field equal to w (the fields past the ways hold
        # 15, which no way < 15 equals; a zero field x satisfies (x - 1) & ~x & 8)
        x = (ait_lru[d, 2 * s] | P[_AIT_FILL]) ^ (w * _NIB_ONES)
        p = _ctz((x - _NIB_ONES) & ~x & _NIB_HIGH) >> 2
        _ait_touch(ait_lru, d, s, ways, w, p, clock)
        st[S_AIT_HITS] += 1
        return P[_AIT_HIT]
    v = ait_lru[d, 2 * s] & 15  # the least recently used way
    tags[v] = blk
    _ait_touch(ait_lru, d, s, ways, v, np.int64(0), clock)
    st[S_AIT_MISSES] += 1
    return P[_AIT_MISS]


@_inline
def _fold16(x):
    """``x >= 0`` folded onto 16 bits: its low 16 bits plus ``_WEAR_MUL`` times the rest."""
    return (x + (x >> 16) * _WEAR_MUL) & (_WEAR_SLOTS - 1)


@_inline
def _writeback(P, d, line, t_evt, t_data, wq, wport, rport, wear, st):
    """Queue a whole-line media write at ``t_evt`` (its data ready at ``t_data``); return
    the time the write queue admitted it."""
    ts = max(t_evt, _qmin(wq, d))  # earliest free write-queue slot
    ws = max(ts, t_data, wport[d])
    wport[d] = ws + P[_OCC_W]
    _replace_min(wq, d, ws + P[_T_WRITE])
    st[S_MEDIA_WRITES] += 1
    h = _fold16(_div(line, P[_LPB], P[_LPB_SH]))
    wear[d, h] += 1
    if wear[d, h] >= P[_WEAR]:
        wear[d, h] = 0
        st[S_MIGRATIONS] += 1
        stall_end = max(wport[d], ws) + P[_MIG]
        wport[d] = stall_end
        rport[d] = max(rport[d], stall_end)
    return ts


@_inline
def _media_read(P, d, line, t, rport, ait_tag, ait_lru, clock, st):
    ms = max(t, rport[d])
    rport[d] = ms + P[_OCC_R]
    st[S_MEDIA_READS] += 1
    blk = _div(line, P[_LPB], P[_LPB_SH])
    return ms + _ait(P, ait_tag, ait_lru, d, blk, clock, st) + P[_T_READ]


@_inline
def _alloc(
    P,
    d,
    X,
    t,
    tag,
    mask,
    filled,
    ready,
    lru,
    pf,
    vkey,
    nused,
    ht,
    wq,
    wport,
    rport,
    wear,
    ait_tag,
    ait_lru,
    clock,
    st,
    allow_dirty,
):
    """Find an XPBuffer entry for line X at time t; return (entry, time) or (-1, t).

    Victim order: a free entry (the lowest-numbered), the LRU clean line, then the LRU
    dirty line (written back;
    read-modify-write if it was only partly written and never filled); ties go to the
    lowest-numbered entry. Entries still busy at ``t`` are skipped; when every entry is
    busy the request waits for the first to become idle."""
    nl = tag.shape[1]
    e = nused[d]
    if e < nl:
        nused[d] = e + 1
    else:
        while True:
            keys = vkey[d]
            rd = ready[d]
            best = _NOKEY
            for i in range(nl):  # branch-free (vectorised)
                best = min(best, keys[i] if rd[i] <= t else _NOKEY)
            if best == _NOKEY:
                if not allow_dirty:
                    return -1, t
                soonest = rd[0]
                for i in range(1, nl):
                    soonest = min(soonest, rd[i])
                t = soonest
                continue
            e = best & (_MAX_LINES - 1)
            if best >> _CAT_SH == 2:
                if not allow_dirty:
                    return -1, t
                old = tag[d, e]
                t_data = t
                if filled[d, e] != 1 and mask[d, e] != P[_FULL]:
                    st[S_RMW] += 1
                    t_data = _media_read(P, d, old, t, rport, ait_tag, ait_lru, clock, st)
                t = max(t, _writeback(P, d, old, t, t_data, wq, wport, rport, wear, st))
            break
        _hdelete(ht, tag, d, tag[d, e], P[_HBITS])
    tag[d, e] = X
    _hinsert(ht, d, X, e, P[_HBITS])
    mask[d, e] = 0
    filled[d, e] = 0
    ready[d, e] = t
    pf[d, e] = 0
    lru[d, e] = clock
    vkey[d, e] = _victim_key(0, clock, e)
    return e, t


@_inline
def _stream(strm, strm_run, strm_lru, d, line, tol, clock):
    """Sequential-stream detector of the DIMM prefetcher (LRU table of streams): True when
    ``line`` continues (within two lines, any order) an ascending run of three lines.

    The first stream (lowest index) whose last line is in ``[line - 1, line + tol]``
    continues; otherwise the LRU stream (``strm_lru`` holds ``clock << 12 | index``, so
    ties go to the lowest index) restarts at ``line``."""
    last_row = strm[d]
    n = last_row.shape[0]
    lo = line - 1
    hi = line + tol
    # (x - lo) | (hi - x) is negative exactly when x is out of range: one and-reduction
    # (vectorised) says whether any stream continues, so a line that starts no stream
    # (random reads) costs no search for the first one that does
    out = np.int64(-1)
    for k in range(n):
        x = last_row[k]
        out &= (x - lo) | (hi - x)
    if out >= 0:
        i = n
        for k in range(n):  # branch-free: k, or k + n when x is out of range
            x = last_row[k]
            i = min(i, k + (((x - lo) | (hi - x)) >> 63 & n))
        last = last_row[i]
        if line > last:
            last_row[i] = line
            strm_run[d, i] += line - last
        strm_lru[d, i] = clock << _E_BITS | i
        return strm_run[d, i] >= 2
    lru_row = strm_lru[d]
    v = lru_row[0]
    for k in range(1, n):
        v = min(v, lru_row[k])
    v &= _MAX_LINES - 1
    last_row[v] = line
    strm_run[d, v] = 0
    lru_row[v] = clock << _E_BITS | v
    return False


@_inline
def _chan(P, d, t, direction, chanfree, chandir):
    s = max(t, chanfree[d])
    if chandir[d] != direction:
        s += P[_TURN]
        chandir[d] = direction
    chanfree[d] = s + P[_BURST]
    return s


@_inline
def _locate(P, addr):
    """(DIMM, DIMM-local address) of ``addr`` in the interleave set."""
    il = P[_IL]
    blk = _div(addr, il, P[_IL_SH])
    q = _div(blk, P[_NDIMM], P[_NDIMM_SH])
    return blk - q * P[_NDIMM], q * il + (addr - blk * il)


@_inline
def _dram_bank_row(P, local):
    rb = _div(local, P[_ROW_BYTES], P[_ROW_SH])
    row = _div(rb, P[_BANKS], P[_BANKS_SH])
    return rb - row * P[_BANKS], row


@_inline
def _prefetch(
    P,
    d,
    line,
    t,
    tag,
    mask,
    filled,
    ready,
    lru,
    pf,
    vkey,
    nused,
    ht,
    wq,
    wport,
    rport,
    wear,
    ait_tag,
    ait_lru,
    clock,
    st,
):
    if _find(ht, tag, d, line, P[_HBITS]) >= 0:
        return
    e, t2 = _alloc(
        P,
        d,
        line,
        t,
        tag,
        mask,
        filled,
        ready,
        lru,
        pf,
        vkey,
        nused,
        ht,
        wq,
        wport,
        rport,
        wear,
        ait_tag,
        ait_lru,
        clock,
        st,
        False,
    )
    if e < 0:
        return
    st[S_PREFETCH] += 1
    ready[d, e] = _media_read(P, d, line, t2, rport, ait_tag, ait_lru, clock, st)
    filled[d, e] = 1
    pf[d, e] = 1


@_inline
def _read(
    P,
    d,
    local,
    t,
    tag,
    mask,
    filled,
    ready,
    lru,
    pf,
    vkey,
    nused,
    ht,
    wq,
    wport,
    rport,
    wear,
    ait_tag,
    ait_lru,
    rpq,
    chanfree,
    chandir,
    openrow,
    strm,
    strm_run,
    strm_lru,
    st,
    clock,
):
    """One 64 B read of DIMM-local address ``local`` on DIMM ``d`` issued at ``t``; return
    the time its data reaches the core."""
    a1 = max(t, _qmin(rpq, d))  # earliest free RPQ entry
    if P[_KIND] != 0:
        bank, row = _dram_bank_row(P, local)
        s = max(a1, chanfree[d])
        chanfree[d] = s + P[_OCC_R]
        acc = P[_ROW_HIT] if openrow[d, bank] == row else P[_ROW_MISS]
        openrow[d, bank] = row
        st[S_MEDIA_READS] += 1
        done = s + acc + P[_EXTRA] + P[_UNCORE]
        _replace_min(rpq, d, done - P[_UNCORE])
        return done
    a1 = _chan(P, d, a1, 0, chanfree, chandir)
    line = _div(local, P[_LINE], P[_LINE_SH])
    full = P[_FULL]
    npf = P[_PF]
    # the stream table sees every read (hit or miss) before any prefetch is issued
    streaming = False
    if npf > 0:
        streaming = _stream(strm, strm_run, strm_lru, d, line, P[_PF_TOL], clock)
    e = _find(ht, tag, d, line, P[_HBITS])
    # prefetches yield to demand loads: issued only while the media read port is idle,
    # i.e. before this read books it
    pf_ok = P[_PF_YIELD] == 0 or rport[d] <= a1
    j0 = np.int64(1)
    j1 = np.int64(0)  # prefetch lines line + j0 .. line + j1 (same AIT block only)
    if e >= 0 and (filled[d, e] == 1 or mask[d, e] == full):
        tdata = max(a1, ready[d, e])
        st[S_BUF_HITS] += 1
        if pf[d, e] == 1:
            pf[d, e] = 0
            st[S_PREFETCH_USED] += 1
            j0 = npf
            j1 = npf
    else:
        st[S_BUF_MISSES] += 1
        if e < 0:
            e, a1 = _alloc(
                P,
                d,
                line,
                a1,
                tag,
                mask,
                filled,
                ready,
                lru,
                pf,
                vkey,
                nused,
                ht,
                wq,
                wport,
                rport,
                wear,
                ait_tag,
                ait_lru,
                clock,
                st,
                True,
            )
        tdata = _media_read(P, d, line, a1, rport, ait_tag, ait_lru, clock, st)
        ready[d, e] = tdata
        filled[d, e] = 1
        if streaming:
            j1 = npf
    if npf > 0 and j1 >= j0 and pf_ok:
        # line + j is in the same AIT block as line while its offset in the block is < lpb
        lpb = P[_LPB]
        j1 = min(j1, lpb - 1 - (line - _div(line, lpb, P[_LPB_SH]) * lpb))
        for j in range(j0, j1 + 1):
            _prefetch(
                P,
                d,
                line + j,
                a1,
                tag,
                mask,
                filled,
                ready,
                lru,
                pf,
                vkey,
                nused,
                ht,
                wq,
                wport,
                rport,
                wear,
                ait_tag,
                ait_lru,
                clock,
                st,
            )
    lru[d, e] = clock
    vkey[d, e] = _victim_key(mask[d, e], clock, e)
    # the DIMM controller returns read data and streams write-backs one at a time:
    # every 64 B read served to the CPU takes write-port time
    wport[d] = max(wport[d], a1) + P[_RWI]
    _replace_min(rpq, d, tdata + P[_RMW_READ])
    return tdata + P[_RMW_READ] + P[_UNCORE]


@_inline
def _write(
    P,
    d,
    local,
    t,
    ack,
    tag,
    mask,
    filled,
    ready,
    lru,
    pf,
    vkey,
    nused,
    ht,
    wq,
    wport,
    rport,
    wear,
    ait_tag,
    ait_lru,
    wpq,
    ingress,
    chanfree,
    chandir,
    openrow,
    wport_in,
    st,
    clock,
):
    """One 64 B write issued at ``t``; return the time the core sees it complete (the
    WPQ accepted it: durable under ADR) plus the acknowledgement ``ack``."""
    a1 = max(t, _qmin(wpq, d))  # earliest free WPQ entry
    if P[_HOL] != 0:
        # the iMC moves writes into its channels' WPQs in arrival order: a write waiting
        # for a slot of a full WPQ holds back the later writes to its other channels
        m = _div(d, P[_IMC_DIMMS], -1)
        a1 = max(a1, ingress[m])
        ingress[m] = a1
    if P[_KIND] != 0:
        bank, row = _dram_bank_row(P, local)
        s = max(a1, chanfree[d])
        chanfree[d] = s + P[_OCC_W]
        openrow[d, bank] = row
        st[S_MEDIA_WRITES] += 1
        _replace_min(wpq, d, s)
        return a1 + ack + P[_EXTRA]
    # the DIMM accepts writes in order: a write waits for the one before it
    acc = max(_chan(P, d, a1, 1, chanfree, chandir), wport_in[d])
    line = _div(local, P[_LINE], P[_LINE_SH])
    sub = _mod(local, P[_LINE], P[_LINE_SH]) >> 6
    full = P[_FULL]
    e = _find(ht, tag, d, line, P[_HBITS])
    if e < 0:
        st[S_BUF_MISSES] += 1
        e, acc = _alloc(
            P,
            d,
            line,
            acc,
            tag,
            mask,
            filled,
            ready,
            lru,
            pf,
            vkey,
            nused,
            ht,
            wq,
            wport,
            rport,
            wear,
            ait_tag,
            ait_lru,
            clock,
            st,
            True,
        )
    else:
        st[S_BUF_HITS] += 1
    if mask[d, e] == 0:
        # the line turns dirty: it will be written back (whole, or read-modify-written when
        # evicted), which updates the block's wear counter (a random slot of a table of
        # 2^16 per DIMM) and, for a read-modify-write, looks up its AIT set; start bringing
        # both into the host's caches now instead of stalling on them at the write-back
        blk = _div(line, P[_LPB], P[_LPB_SH])
        _host_prefetch(wear, d, _fold16(blk))
        aset = _ait_set(P, blk)
        abase = aset * P[_AITW]
        _host_prefetch(ait_tag, d, abase)
        _host_prefetch(ait_tag, d, abase + P[_AITW] - 1)
        _host_prefetch(ait_lru, d, 2 * aset)
    mask[d, e] |= 1 << sub
    pf[d, e] = 0
    lru[d, e] = clock
    if mask[d, e] == full:
        acc = max(acc, _writeback(P, d, line, acc, acc, wq, wport, rport, wear, st))
        mask[d, e] = 0
        filled[d, e] = 1
        if P[_PIN] != 0:
            # the entry is busy until its media write completes (VANS: not idle)
            ready[d, e] = max(ready[d, e], wport[d] - P[_OCC_W] + P[_T_WRITE])
        else:
            ready[d, e] = max(ready[d, e], acc)
    vkey[d, e] = _victim_key(mask[d, e], clock, e)
    _replace_min(wpq, d, acc)
    wport_in[d] = acc
    return a1 + ack


@_inline
def _address(
    n, r, t, size, nsub, nsub_sh, pattern, base, nacc, nacc_sh, seed, reorder, W, perm, rngs
):
    """Address of the n-th emitted 64 B request of thread t (``r = n % W``)."""
    if reorder:
        if r == 0:
            for i in range(W):
                perm[t, i] = i
            for i in range(W - 1, 0, -1):
                rngs[t] = _mix(rngs[t])
                j = rngs[t] % (i + 1)
                perm[t, i], perm[t, j] = perm[t, j], perm[t, i]
        j = n - r + perm[t, r]
    else:
        j = n
    k = _div(j, nsub, nsub_sh)
    sub = j - k * nsub
    if pattern == 0:
        off = _mod(k, nacc, nacc_sh) * size
    else:
        off = _mod(_mix(seed ^ (t << 40) ^ k), nacc, nacc_sh) * size
    return base[t] + off + sub * 64


@numba.njit(cache=True)
def _ait_arrays(P, ndimm):
    """The AIT buffers of ``ndimm`` DIMMs, empty: tags (-1, none) and per set the LRU order
    (ways 0, 1, .. from the oldest position) and tie word (every way used at clock 0);
    see :func:`_ait`."""
    optane = P[_KIND] == 0
    ways = P[_AITW] if optane else 1
    nsets = P[_NSETS] if optane else 1
    ait_tag = np.full((ndimm, nsets * ways), -1, dtype=np.int64)
    ait_lru = np.zeros((ndimm, 2 * nsets), dtype=np.int64)
    order = np.int64(0)
    for w in range(ways):
        order |= np.int64(w) << (4 * w)
    for i in range(nsets):
        ait_lru[:, 2 * i] = order
        ait_lru[:, 2 * i + 1] = ways
    return ait_tag, ait_lru


@numba.njit(cache=True)
def _simulate(P, op, pattern, size, nthreads, nreq, region, W, seed, reorder, rfo, lat, comp):
    ndimm = P[_NDIMM]
    nl = P[_NLINES] if P[_KIND] == 0 else 1
    tag = np.full((ndimm, nl), -1, dtype=np.int64)
    mask = np.zeros((ndimm, nl), dtype=np.int64)
    filled = np.zeros((ndimm, nl), dtype=np.int64)
    ready = np.zeros((ndimm, nl), dtype=np.int64)
    lru = np.zeros((ndimm, nl), dtype=np.int64)
    pf = np.zeros((ndimm, nl), dtype=np.int64)
    vkey = np.full((ndimm, nl), _NOKEY, dtype=np.int64)
    nused = np.zeros(ndimm, dtype=np.int64)
    ht = np.zeros((ndimm, np.int64(1) << P[_HBITS]), dtype=np.int64)
    wq = np.zeros((ndimm, 1 + P[_WBQ]), dtype=np.int64)  # queues: see _replace_min
    wport = np.zeros(ndimm, dtype=np.int64)
    rport = np.zeros(ndimm, dtype=np.int64)
    wear = np.zeros((ndimm, _WEAR_SLOTS if P[_KIND] == 0 else 1), dtype=np.int64)
    ait_tag, ait_lru = _ait_arrays(P, ndimm)
    rpq = np.zeros((ndimm, 1 + P[_RPQ]), dtype=np.int64)
    wpq = np.zeros((ndimm, 1 + P[_WPQ]), dtype=np.int64)
    ingress = np.zeros((ndimm + P[_IMC_DIMMS] - 1) // P[_IMC_DIMMS], dtype=np.int64)
    chanfree = np.zeros(ndimm, dtype=np.int64)
    chandir = np.zeros(ndimm, dtype=np.int64)
    openrow = np.full((ndimm, P[_BANKS]), -1, dtype=np.int64)
    strm = np.full((ndimm, P[_STREAMS]), -2, dtype=np.int64)
    strm_run = np.zeros((ndimm, P[_STREAMS]), dtype=np.int64)
    strm_lru = np.zeros((ndimm, P[_STREAMS]), dtype=np.int64)
    for i in range(P[_STREAMS]):
        strm_lru[:, i] = i  # lru 0, ties to the lowest index
    wport_in = np.zeros(ndimm, dtype=np.int64)
    st = np.zeros(_NSTAT, dtype=np.int64)

    base = np.zeros(nthreads, dtype=np.int64)
    perm = np.zeros((nthreads, W), dtype=np.int64)
    rngs = np.zeros(nthreads, dtype=np.int64)
    for t in range(nthreads):
        rngs[t] = _mix(seed * 1000003 + t)
    ring = np.zeros((nthreads, W), dtype=np.int64)  # completion time per slot
    ring_req = np.full((nthreads, W), -1, dtype=np.int64)  # request index held in slot
    issued = np.zeros(nthreads, dtype=np.int64)
    islot = np.zeros(nthreads, dtype=np.int64)  # issued % W
    last_issue = np.full(nthreads, -(np.int64(1) << 40), dtype=np.int64)
    pending = np.zeros(nthreads, dtype=np.int64)
    # event heap: key = time * 2^20 + sequence (FIFO ties), value = payload (see _MAX_*)
    cap = nthreads * (W + 2) + ndimm + 16
    hk = np.zeros(cap, dtype=np.int64)
    hv = np.zeros(cap, dtype=np.int64)
    # address of each outstanding read for ownership, by thread and window slot
    evaddr = np.zeros((nthreads, W) if rfo else (1, 1), dtype=np.int64)
    rfo_out = np.zeros(nthreads, dtype=np.int64)  # reads for ownership outstanding
    # loads waiting for an RPQ slot, per DIMM: a ring of (payload, address) from pool_head
    pooled = op == 0 and P[_KIND] == 0
    pcap = nthreads * W if pooled else 1
    pool_val = np.zeros((ndimm, pcap), dtype=np.int64)
    pool_addr = np.zeros((ndimm, pcap), dtype=np.int64)
    pool_head = np.zeros(ndimm, dtype=np.int64)
    pool_n = np.zeros(ndimm, dtype=np.int64)
    pool_rng = np.zeros(ndimm, dtype=np.int64)
    for d in range(ndimm):
        pool_rng[d] = _mix(seed * 1000003 + nthreads + d)
    _run(
        P,
        op,
        pattern,
        size,
        nthreads,
        nreq,
        region,
        W,
        seed,
        reorder,
        rfo,
        lat,
        comp,
        tag,
        mask,
        filled,
        ready,
        lru,
        pf,
        vkey,
        nused,
        ht,
        wq,
        wport,
        rport,
        wear,
        ait_tag,
        ait_lru,
        rpq,
        wpq,
        ingress,
        chanfree,
        chandir,
        openrow,
        strm,
        strm_run,
        strm_lru,
        wport_in,
        st,
        base,
        perm,
        rngs,
        ring,
        ring_req,
        issued,
        islot,
        last_issue,
        pending,
        hk,
        hv,
        evaddr,
        rfo_out,
        pooled,
        pool_val,
        pool_addr,
        pool_head,
        pool_n,
        pool_rng,
    )
    return st


@_inline
def _pow2_shift(enabled, n):
    """``log2(n)`` when power-of-two arithmetic is on (``enabled``) and ``n`` is a power of
    two, else -1 (see :func:`_div`, :func:`_mod`)."""
    sh = np.int64(-1)
    if enabled != 0 and n & (n - 1) == 0:
        sh = np.int64(0)
        while (np.int64(1) << sh) < n:
            sh += 1
    return sh


#: Low bits of an event key holding the issue sequence (ties pop in issue order).
_SEQ_BITS = 20


@_inline
def _issue_next(
    t,
    now,
    nreq,
    W,
    gap,
    jitter,
    issued,
    pending,
    islot,
    last_issue,
    ring,
    ring_req,
    rngs,
    hk,
    hv,
    nh,
    vacant,
    seq,
    rfo_out,
    rfo_win,
):
    """Schedule thread ``t``'s next request if it has one and its window of ``W``
    outstanding requests allows: no earlier than ``gap`` after its last issue, than ``now``
    (plus jitter), and than the completion of the request ``W`` before it.  Returns the
    heap's new size, whether its root slot is still vacant (see :func:`_heap_put`) and the
    next sequence number."""
    m = issued[t]
    if pending[t] == 0 and m < nreq:
        if jitter > 0:
            rngs[t] = _mix(rngs[t])
            now = now + rngs[t] % (jitter + 1)
        ms = islot[t]
        if (m < W or ring_req[t, ms] == m - W) and rfo_out[t] < rfo_win:
            nxt = max(last_issue[t] + gap, now)
            if m >= W:
                nxt = max(nxt, ring[t, ms])
            gm = t * nreq + m
            pay = gm << _PAY_G | ms << _PAY_R | t << _PAY_T
            smask = (np.int64(1) << _SEQ_BITS) - 1
            nh, vacant = _heap_put(hk, hv, nh, vacant, nxt << _SEQ_BITS | (seq & smask), pay)
            seq += 1
            pending[t] = 1
    return nh, vacant, seq


@_kernel
def _run(
    P,
    op,
    pattern,
    size,
    nthreads,
    nreq,
    region,
    W,
    seed,
    reorder,
    rfo,
    lat,
    comp,
    tag,
    mask,
    filled,
    ready,
    lru,
    pf,
    vkey,
    nused,
    ht,
    wq,
    wport,
    rport,
    wear,
    ait_tag,
    ait_lru,
    rpq,
    wpq,
    ingress,
    chanfree,
    chandir,
    openrow,
    strm,
    strm_run,
    strm_lru,
    wport_in,
    st,
    base,
    perm,
    rngs,
    ring,
    ring_req,
    issued,
    islot,
    last_issue,
    pending,
    hk,
    hv,
    evaddr,
    rfo_out,
    pooled,
    pool_val,
    pool_addr,
    pool_head,
    pool_n,
    pool_rng,
):
    nsub = max(1, size // 64)
    nsub_sh = _pow2_shift(P[_POW2], nsub)
    slice_b = (region // nthreads) // size * size
    nacc = max(1, slice_b // size)
    nacc_sh = _pow2_shift(P[_POW2], nacc)
    for t in range(nthreads):
        base[t] = t * slice_b
    nh = 0
    seq = np.int64(0)
    SH = _SEQ_BITS
    SMASK = (np.int64(1) << SH) - 1
    for t in range(nthreads):
        nh = _heap_push(hk, hv, nh, seq, (t * nreq) << _PAY_G | t << _PAY_T)
        pending[t] = 1
        seq += 1
    clock = np.int64(0)
    ack_nt = P[_ACK_NT]
    ack_cl = P[_ACK_CLWB]
    gap = P[_GAP]
    jitter = P[_JITTER]
    # store + clwb: a thread keeps at most rfo_win reads for ownership outstanding (fill
    # buffers) within its window of W lines between the read and the write's acceptance
    rfo_win = min(P[_RFOW], W) if rfo else W
    while nh > 0:
        # the earliest event; its slot stays in the heap until the first event this one
        # schedules takes it (or it is dropped at the end)
        key = hk[0]
        val = hv[0]
        vacant = True
        now = key >> SH
        clock += 1
        t = (val >> _PAY_T) & _T_MASK
        admit = t >= nthreads
        if admit:
            # a slot of DIMM d's RPQ frees: the iMC takes one of the loads waiting for it
            # (pool_order 1: any of them, uniformly; 0: the oldest) and sends it to the DIMM
            d = t - nthreads
            pc = pool_val.shape[1]
            h = pool_head[d]
            cnt = pool_n[d]
            if P[_POOL_ORDER] > 1 and cnt > 1:
                pool_rng[d] = _mix(pool_rng[d])
                j = h + pool_rng[d] % min(cnt, P[_POOL_ORDER])
                if j >= pc:
                    j -= pc
                pool_val[d, h], pool_val[d, j] = pool_val[d, j], pool_val[d, h]
                pool_addr[d, h], pool_addr[d, j] = pool_addr[d, j], pool_addr[d, h]
            wval = val
            val = pool_val[d, h]
            addr = pool_addr[d, h]
            pool_head[d] = 0 if h + 1 == pc else h + 1
            pool_n[d] = cnt - 1
            t = (val >> _PAY_T) & _T_MASK
            if cnt > 1:  # the next admission, when the next slot frees
                nxt = max(now, _qmin(rpq, d))
                nh, vacant = _heap_put(hk, hv, nh, vacant, nxt << SH | (seq & SMASK), wval)
                seq += 1
        phase = val & 1
        r = (val >> _PAY_R) & (_MAX_WINDOW - 1)  # n % W
        g = val >> _PAY_G  # request index in lat / comp
        n = g - t * nreq
        done = np.int64(-1)
        if admit:
            pass
        elif phase == 0:
            pending[t] = 0
            addr = _address(
                n,
                r,
                t,
                size,
                nsub,
                nsub_sh,
                pattern,
                base,
                nacc,
                nacc_sh,
                seed,
                reorder,
                W,
                perm,
                rngs,
            )
            issued[t] = n + 1
            islot[t] = 0 if r + 1 == W else r + 1
            last_issue[t] = now
            lat[g] = now  # issue time until the request completes
        else:
            addr = evaddr[t, r]
            rfo_out[t] -= 1
        d, local = _locate(P, addr)
        held = False
        if pooled and not admit and (pool_n[d] > 0 or _qmin(rpq, d) > now):
            # every RPQ slot is taken (or loads already wait): the load waits for a slot;
            # the DIMM sees it, and its XPBuffer changes, only when the iMC admits it
            pc = pool_val.shape[1]
            j = pool_head[d] + pool_n[d]
            if j >= pc:
                j -= pc
            pool_val[d, j] = val
            pool_addr[d, j] = addr
            pool_n[d] += 1
            if pool_n[d] == 1:
                wkey = max(now, _qmin(rpq, d)) << SH | (seq & SMASK)
                wpay = (nthreads + d) << _PAY_T
                nh, vacant = _heap_put(hk, hv, nh, vacant, wkey, wpay)
                seq += 1
            held = True
        if held:
            pass
        elif op == 0 or (rfo and phase == 0):
            rdone = _read(
                P,
                d,
                local,
                now,
                tag,
                mask,
                filled,
                ready,
                lru,
                pf,
                vkey,
                nused,
                ht,
                wq,
                wport,
                rport,
                wear,
                ait_tag,
                ait_lru,
                rpq,
                chanfree,
                chandir,
                openrow,
                strm,
                strm_run,
                strm_lru,
                st,
                clock,
            )
            if op == 0:
                done = rdone
            else:
                # read for ownership; the write-back is its own event once the line is owned
                evaddr[t, r] = addr
                rfo_out[t] += 1
                nh, vacant = _heap_put(hk, hv, nh, vacant, rdone << SH | (seq & SMASK), val | 1)
                seq += 1
        else:
            done = _write(
                P,
                d,
                local,
                now,
                ack_nt if op == 1 else ack_cl,
                tag,
                mask,
                filled,
                ready,
                lru,
                pf,
                vkey,
                nused,
                ht,
                wq,
                wport,
                rport,
                wear,
                ait_tag,
                ait_lru,
                wpq,
                ingress,
                chanfree,
                chandir,
                openrow,
                wport_in,
                st,
                clock,
            )
        if done >= 0:
            lat[g] = done - lat[g]
            comp[g] = done
            ring[t, r] = done
            ring_req[t, r] = n
        # a thread waiting for the completion of a load still held for an RPQ slot is
        # woken by that load's admission
        m = issued[t]
        if not pooled or m < W or ring_req[t, islot[t]] == m - W:
            nh, vacant, seq = _issue_next(
                t,
                now,
                nreq,
                W,
                gap,
                jitter,
                issued,
                pending,
                islot,
                last_issue,
                ring,
                ring_req,
                rngs,
                hk,
                hv,
                nh,
                vacant,
                seq,
                rfo_out,
                rfo_win,
            )
        if vacant:
            nh = _heap_drop_root(hk, hv, nh)
    st[S_END] = 0
    for g in range(comp.shape[0]):
        if comp[g] > st[S_END]:
            st[S_END] = comp[g]


# --------------------------------------------------------------------------------------
# Python API
# --------------------------------------------------------------------------------------


def _run_arrays(
    profile: Profile,
    op: str,
    pattern: str,
    size_bytes: int,
    threads: int,
    ndimm: int,
    region_bytes: int,
    requests: int,
    seed: int,
    idle: bool,
    *,
    shortcuts: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Run the kernel on checked arguments; return ``(P, stats, latency, completion)``
    (int64; latency and completion in cycles, one per 64 B request). ``shortcuts=False``
    runs the generic path (divisions instead of shifts and masks)."""
    if idle:
        window = 1
    else:
        window = profile[
            {"load": "cpu.load_window", "ntstore": "cpu.ntstore_window", "clwb": "cpu.clwb_window"}[
                op
            ]
        ]
    if window >= _MAX_WINDOW or threads > _MAX_THREADS:
        raise InputError("window or thread count too large for the kernel", str(window))
    P = _param_vector(profile, op, ndimm)
    for i, key in (
        (_NLINES, "rmw.buffer_lines"),
        (_AITW, "ait.ways"),
        (_STREAMS, "rmw.prefetch_streams"),
    ):
        if P[i] > _MAX_LINES:  # entry numbers are 12-bit fields of the kernel's LRU keys
            raise InputError(f"at most {_MAX_LINES} for the media model", key)
    if P[_KIND] == 0 and P[_AITW] > _AIT_MAX_WAYS:  # an AIT set's LRU order is one word
        raise InputError(f"at most {_AIT_MAX_WAYS} for the media model", "ait.ways")
    nreq = max(1, requests // threads)
    n = nreq * threads
    if n >= 1 << 40:
        raise InputError("at most 2^40 requests", str(requests))
    lat = np.zeros(n, dtype=np.int64)
    comp = np.zeros(n, dtype=np.int64)
    st = _simulate(
        P if shortcuts else _without_shortcuts(P),
        np.int64(OPS.index(op)),
        np.int64(PATTERNS.index(pattern)),
        np.int64(size_bytes),
        np.int64(threads),
        np.int64(nreq),
        np.int64(region_bytes),
        np.int64(window),
        np.int64(seed),
        not idle,
        (op == "clwb") and not idle,
        lat,
        comp,
    )
    return P, st, lat, comp


@dataclass(frozen=True)
class MediaResult:
    """Outcome of one simulated request stream.

    Attributes
    ----------
    latency_ns : ndarray of shape (N,)
        Latency of every 64 B request (issue to data return, or to WPQ acceptance for
        writes), float64 ns, ordered by thread then program order.
    bandwidth_gbps : float
        CPU bytes per second in steady state (requests completing after the first 20 %).
    requests : int
        64 B requests simulated.
    media_read_bytes, media_write_bytes : int
        Bytes read from and written to the media (whole XPLines, RMW included).
    cpu_read_bytes, cpu_write_bytes : int
        Bytes the CPU read (loads and RFOs) and wrote.
    stats : dict of str to int
        Counters: buffer hits/misses, AIT hits/misses, rmw, migrations, prefetches.
    elapsed_ns : float
        Simulated time of the whole run.
    """

    latency_ns: np.ndarray
    bandwidth_gbps: float
    requests: int
    media_read_bytes: int
    media_write_bytes: int
    cpu_read_bytes: int
    cpu_write_bytes: int
    stats: dict
    elapsed_ns: float

    @property
    def write_amplification(self) -> float:
        """Media bytes written per CPU byte written (0.0 when nothing was written)."""
        return self.media_write_bytes / self.cpu_write_bytes if self.cpu_write_bytes else 0.0

    @property
    def read_amplification(self) -> float:
        """Media bytes read per CPU byte read (0.0 when nothing was read)."""
        return self.media_read_bytes / self.cpu_read_bytes if self.cpu_read_bytes else 0.0

    def percentile_ns(self, q: float) -> float:
        """Latency percentile ``q`` (0-100) in ns."""
        return float(np.percentile(self.latency_ns, q)) if self.latency_ns.size else 0.0


_STAT_NAMES = (
    "media_reads",
    "media_writes",
    "rmw",
    "buffer_hits",
    "buffer_misses",
    "ait_hits",
    "ait_misses",
    "migrations",
    "prefetches",
    "prefetches_used",
    "end_cycles",
)


def staggered_region_bytes(profile: Profile, threads: int, *, dimms: int | None = None) -> int:
    """A region for :func:`simulate` that starts thread ``i`` on DIMM ``i mod dimms``.

    Each thread's slice is a whole number of interleave rounds (``dimms *
    dimm.interleave_bytes``) plus one interleave block, about 1 GiB (less when the
    interleave set is smaller than ``threads`` GiB), so consecutive threads start on
    consecutive DIMMs: many threads copying pages that an allocator spread over the device.

    Parameters
    ----------
    profile : Profile
        Hardware profile (``dimm.interleave_bytes``, ``dimm.capacity_bytes``).
    threads : int
        Issuing threads.
    dimms : int, optional
        Interleave set (default ``dimm.count``).

    Returns
    -------
    int
        ``region_bytes`` for :func:`simulate`.
    """
    ndimm = profile["dimm.count"] if dimms is None else int(dimms)
    il = int(profile["dimm.interleave_bytes"]) if ndimm > 1 else 64
    rnd = ndimm * il
    cap = ndimm * int(profile["dimm.capacity_bytes"])
    per = min(1 << 30, cap // max(1, threads) - il) // rnd * rnd + il
    if per < il or per * threads > cap:
        raise InputError("interleave set too small for that many threads", str(threads))
    return int(per * threads)


def simulate(
    profile: Profile,
    op: str,
    pattern: str,
    size_bytes: int,
    threads: int,
    *,
    dimms: int | None = None,
    region_bytes: int | None = None,
    requests: int = 200_000,
    seed: int = 0,
    idle: bool = False,
) -> MediaResult:
    """Simulate ``threads`` threads issuing ``op`` accesses on the modelled device.

    Parameters
    ----------
    profile : Profile
        Hardware profile.
    op : {"load", "ntstore", "clwb"}
        ``clwb`` is store + clwb: a read for ownership, then the line's write-back.
    pattern : {"seq", "rand"}
        Each thread works in its own ``region_bytes / threads`` slice, sequentially or at
        random ``size_bytes``-aligned offsets.
    size_bytes : int
        Access size (multiple of 64); an access is ``size_bytes / 64`` requests.
    threads : int
        Issuing threads.
    dimms : int, optional
        Interleave set (default ``dimm.count``); 1 is a single non-interleaved DIMM.
    region_bytes : int, optional
        Bytes the accesses are confined to; thread ``i`` starts at ``i * (region_bytes //
        threads)`` (rounded down to ``size_bytes``), so the region also decides on which
        DIMM each thread starts. A small region is a hotspot. Default: the placement of the
        calibration sources, LATTester's 2 GiB working set per thread
        (:data:`THREAD_REGION_BYTES`, ``threads * 2 GiB``: on six DIMMs
        interleaved at 4 KiB thread ``i`` starts on DIMM ``2i mod 6``); when that is larger
        than the interleave set, the staggered placement of :func:`staggered_region_bytes`
        (thread ``i`` on DIMM ``i mod dimms``). Before, the default spread the threads over
        1 GiB per DIMM, which started every thread on DIMM 0 at 2, 4, 8 and 16 threads.
    requests : int
        Total 64 B requests over all threads.
    seed : int
        Seed of the random pattern and of the arrival order within a thread's window.
    idle : bool
        LATTester idle latency: one request outstanding, program order, and for ``clwb``
        the line already cached (no read for ownership).
    """
    if op not in OPS:
        raise InputError(f"op must be one of {', '.join(OPS)}", op)
    if pattern not in PATTERNS:
        raise InputError(f"pattern must be one of {', '.join(PATTERNS)}", pattern)
    if size_bytes < 64 or size_bytes % 64:
        raise InputError("access size must be a positive multiple of 64 bytes", str(size_bytes))
    if threads < 1 or threads > 4096:
        raise InputError("threads must be between 1 and 4096", str(threads))
    ndimm = profile["dimm.count"] if dimms is None else int(dimms)
    if ndimm < 1 or ndimm > 64:
        raise InputError("dimms must be between 1 and 64", str(dimms))
    if region_bytes is None:
        region_bytes = threads * THREAD_REGION_BYTES
        if region_bytes > ndimm * profile["dimm.capacity_bytes"]:
            region_bytes = staggered_region_bytes(profile, threads, dimms=ndimm)
    region_bytes = int(region_bytes)
    if region_bytes < threads * size_bytes:
        raise InputError(
            f"region of {region_bytes} bytes is smaller than {threads} threads x {size_bytes} B",
            str(region_bytes),
        )
    if region_bytes > ndimm * profile["dimm.capacity_bytes"]:
        raise InputError("region is larger than the interleave set", str(region_bytes))
    if requests < threads:
        raise InputError("need at least one request per thread", str(requests))
    P, st, lat, comp = _run_arrays(
        profile, op, pattern, size_bytes, threads, ndimm, region_bytes, requests, seed, idle
    )
    n = lat.shape[0]
    freq = profile.freq_ghz
    k0 = int(0.2 * n)
    span = comp.max() - np.partition(comp, k0)[k0]  # order statistics: no full sort
    bw = (n - 1 - k0) * 64 / (span / freq) if span > 0 else 0.0
    line = P[_LINE]
    reads = n if op in ("load",) or (op == "clwb" and not idle) else 0
    writes = n if op != "load" else 0
    stats = {name: int(st[i]) for i, name in enumerate(_STAT_NAMES)}
    return MediaResult(
        latency_ns=lat / freq,
        bandwidth_gbps=float(bw),
        requests=n,
        media_read_bytes=int(st[S_MEDIA_READS] * line),
        media_write_bytes=int(st[S_MEDIA_WRITES] * line),
        cpu_read_bytes=reads * 64,
        cpu_write_bytes=writes * 64,
        stats=stats,
        elapsed_ns=float(st[S_END] / freq),
    )
