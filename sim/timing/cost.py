"""Pricing of work records: :class:`CostModel` turns a ``WorkRecord`` into CPU cycles.

What a record costs (all in integer cycles of ``cpu.freq_ghz``):

* **Metadata cache lines** (``lines_read``/``lines_written`` per structure): every line goes
  through a set-associative LRU L1/L2 (per CPU) and shared L3 (:mod:`sim.timing.cache`);
  a miss costs the memory latency of the medium that holds the structure. Each structure
  lives in its own region of the simulated address space (key ``k`` -> ``base + 64 k``), so
  the same key is always the same address and locality / working-set size change the cost.
  ``struct_page`` lines (key = pfn: one struct page is one 64 B line) live in the memmap,
  on the device itself (``memmap="pmem"``, ndctl ``--map=dev``) or in DRAM (``--map=mem``);
  the other structures are in DRAM. Stores are cached stores (read for ownership, then the
  line is dirty); a dirty line evicted from the L3 charges its write-back as the device
  time it consumes, on pmem a 64 B partial-XPLine write (read-modify-write in the
  XPBuffer) shared over the interleave set. ``mapping``, ``index`` and ``share`` are plain
  stores in every design (``dax_associate_entry``/``dax_disassociate_entry``); the record's
  ``atomics`` (page/folio refcount and mapcount updates, which only the refcounted folios of
  v6.15+ take at fault and unmap) charge ``kernel.atomic_cycles`` each, with the
  struct-page lines.
* **Memmap placement effect** (pmem-timing section 6): a cold struct-page miss costs the
  random pmem load latency, 305 ns on optane-gen1, instead of ~101.5 ns in DRAM: about
  +200 ns (~450 cycles) per cold struct-page line, plus the partial-line write-back of each
  dirtied line (~(39.4 + 115.3) / 6 = 26 ns of device time). Neighbouring struct pages share
  an XPLine (4 per 256 B), so a second touch of the same XPLine costs the XPBuffer hit
  latency (169 ns) instead.
* **Locks**: ``kernel.lock_cycles`` per lock taken (uncontended; contention is the engine's).
* **Faults**: ``kernel.fault_overhead_ns`` per fault (exception entry, dispatch, return);
  operations without a fault pay ``kernel.op_overhead_ns`` (syscall entry/exit).
* **PTE/PMD installs**: ``kernel.pte_install_ns`` per page mapped.
* **TLB shootdowns**: ``kernel.tlb_shootdown_base_ns + (cpus - 1) *
  kernel.tlb_shootdown_per_cpu_ns`` per shootdown when ``cpus > 1``, otherwise one per-CPU
  cost (a local flush).
* **Data accesses on the device** (``pmem_read``/``pmem_write``: CoW copies, zeroing,
  read/write): ``latency + size / bandwidth`` of one thread on the device, both taken from
  the media model (:func:`sim.timing.media.simulate`, sequential, 1 thread, the profile's
  interleave set) at construction. A CoW copy is its read plus its write. ``memcpy_bytes``
  without device accesses is priced at ``kernel.memcpy_dram_gbps``.

Two paths give identical results: :meth:`CostModel.price` (one record) and
:meth:`CostModel.price_batch` on a :class:`RecordBatch` (structure-of-arrays; build it with
:meth:`RecordBatch.from_records` or directly from arrays), priced with array operations and
one compiled pass over all line accesses.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from sim.constants import PAGE_SIZE
from sim.errors import InputError
from sim.timing.cache import CacheState, access_records
from sim.timing.profiles import Profile, load_profile
from sim.work import STRUCTURES, WorkRecord

__all__ = ["CostModel", "RecordBatch", "STRUCT_BASE"]

#: Base byte address of each structure's region (1 TiB apart).
STRUCT_BASE = {s: (i + 1) << 40 for i, s in enumerate(STRUCTURES)}
_STRUCT_ID = {s: i for i, s in enumerate(STRUCTURES)}
_BASE_ARR = np.array([STRUCT_BASE[s] for s in STRUCTURES], dtype=np.int64)
_SP = _STRUCT_ID["struct_page"]
_XA = _STRUCT_ID["xarray_node"]


@dataclass
class RecordBatch:
    """A batch of work records as flat int64 arrays (structure of arrays).

    Attributes
    ----------
    n : int
        Number of records.
    faults, pages_mapped, tlb_shootdowns, memcpy_bytes, nlocks, atomics : ndarray of shape (n,)
        Per-record counts.
    line_rec, line_struct, line_key, line_write : ndarray of shape (L,)
        Every cache-line access in order: record index, structure index in
        :data:`sim.work.STRUCTURES`, key, 1 for a write.
    pm_rec, pm_size, pm_write : ndarray of shape (M,)
        Every device data access: record index, size in bytes, 1 for a write.
    ops : list of str
        Operation name per record.
    """

    n: int
    faults: np.ndarray
    pages_mapped: np.ndarray
    tlb_shootdowns: np.ndarray
    memcpy_bytes: np.ndarray
    nlocks: np.ndarray
    atomics: np.ndarray
    line_rec: np.ndarray
    line_struct: np.ndarray
    line_key: np.ndarray
    line_write: np.ndarray
    pm_rec: np.ndarray
    pm_size: np.ndarray
    pm_write: np.ndarray
    ops: list

    @classmethod
    def from_records(cls, records, *, locks_out: list | None = None) -> "RecordBatch":
        """Flatten ``WorkRecord`` objects (reads of a record before its writes).

        If ``locks_out`` is a list, each record's ``locks`` list is appended to it.

        One pass over the records with a few C-level calls per record (flat int lists,
        reshaped into arrays once); the result equals a key-by-key flattening
        (``tests/test_timing_cache.py``).
        """
        records = records if isinstance(records, list) else list(records)
        n = len(records)
        ops = [r.op for r in records]
        if locks_out is not None:
            locks_out.extend([r.locks for r in records])
        # one pass, few calls per record: flat int lists, reshaped once
        counts: list = []  # faults, pages_mapped, tlb_shootdowns, memcpy_bytes, nlocks, atomics
        groups: list = []  # record, structure, write, number of keys
        keys: list = []
        pm: list = []  # record, size, write
        sid_of = _STRUCT_ID
        cext = counts.extend
        gext = groups.extend
        kext = keys.extend
        try:
            for i, r in enumerate(records):
                cext(
                    (
                        r.faults,
                        r.pages_mapped,
                        r.tlb_shootdowns,
                        r.memcpy_bytes,
                        len(r.locks),
                        r.atomics,
                    )
                )
                for s, ks in r.lines_read.items():
                    kext(ks)
                    gext((i, sid_of[s], 0, len(ks)))
                for s, ks in r.lines_written.items():
                    kext(ks)
                    gext((i, sid_of[s], 1, len(ks)))
                if r.pmem_read:
                    for acc in r.pmem_read:
                        pm.extend((i, acc[1], 0))
                if r.pmem_write:
                    for acc in r.pmem_write:
                        pm.extend((i, acc[1], 1))
        except KeyError as exc:
            raise InputError(
                f"unknown structure {exc.args[0]!r}; valid: {', '.join(STRUCTURES)}", r.op
            ) from None
        c = np.array(counts, dtype=np.int64).reshape(n, 6).T
        g = np.array(groups, dtype=np.int64).reshape(-1, 4).T
        m = np.array(pm, dtype=np.int64).reshape(-1, 3).T
        glen = g[3]
        return cls(
            n=n,
            faults=c[0].copy(),
            pages_mapped=c[1].copy(),
            tlb_shootdowns=c[2].copy(),
            memcpy_bytes=c[3].copy(),
            nlocks=c[4].copy(),
            atomics=c[5].copy(),
            line_rec=np.repeat(g[0], glen),
            line_struct=np.repeat(g[1], glen),
            line_key=np.array(keys, dtype=np.int64),
            line_write=np.repeat(g[2], glen),
            pm_rec=m[0].copy(),
            pm_size=m[1].copy(),
            pm_write=m[2].copy(),
            ops=ops,
        )


@lru_cache(maxsize=16)
def _device_curve(name: str, overrides: tuple) -> tuple[float, float, float, float]:
    """(read latency ns, read GB/s, write latency ns, write GB/s) of one thread, sequential."""
    from sim.timing.media import simulate

    prof = load_profile(name, dict(overrides))
    rl = simulate(prof, "load", "seq", 64, 1, requests=4_000, idle=True).latency_ns[400:].mean()
    wl = simulate(prof, "ntstore", "seq", 64, 1, requests=4_000, idle=True).latency_ns[400:].mean()
    rb = simulate(prof, "load", "seq", PAGE_SIZE, 1, requests=40_000).bandwidth_gbps
    wb = simulate(prof, "ntstore", "seq", PAGE_SIZE, 1, requests=40_000).bandwidth_gbps
    return float(rl), float(rb), float(wl), float(wb)


class CostModel:
    """Price work records in CPU cycles on a hardware profile.

    Parameters
    ----------
    profile : Profile or str
        Hardware profile (or its name).
    memmap : {"dram", "pmem"}
        Where the struct pages of the device live (ndctl ``--map=mem`` / ``--map=dev``).
    cpus : int
        CPUs of the machine (private L1/L2 each; remote CPUs of a TLB shootdown).

    Notes
    -----
    The cache state persists across calls: records priced one after the other see each
    other's cache footprint, as consecutive operations on one machine do.
    """

    def __init__(
        self, profile: Profile | str = "optane-gen1", *, memmap: str = "dram", cpus: int = 1
    ):
        if isinstance(profile, str):
            profile = load_profile(profile)
        if memmap not in ("dram", "pmem"):
            raise InputError("memmap must be 'dram' or 'pmem'", str(memmap))
        if int(cpus) < 1:
            raise InputError("cpus must be at least 1", str(cpus))
        self.profile = profile
        self.memmap = memmap
        self.cpus = int(cpus)
        p = profile
        v = p.values
        c = p.cycles
        optane = v["media.kind"] == "optane"
        dram_miss = c("cpu.uncore_read_ns") + c("dram.row_miss_ns")
        if optane:
            pm_rand = (
                c("rmw.read_ns") + c("ait.miss_ns") + c("media.t_read_ns") + c("cpu.uncore_read_ns")
            )
            pm_xpb = c("rmw.read_ns") + c("cpu.uncore_read_ns")
            pm_ait = pm_rand - c("ait.miss_ns") + c("ait.hit_ns")
            wb_pm = (c("media.read_occupancy_ns") + c("media.write_occupancy_ns")) // max(
                1, v["dimm.count"]
            )
        else:
            pm_rand = pm_xpb = pm_ait = dram_miss + c("cxl.extra_ns")
            wb_pm = c("dram.write_occupancy_ns") // max(1, v["dimm.count"])
        self.line_bytes = int(v["rmw.line_bytes"]) if optane else 64
        self.block_bytes = int(v["ait.block_bytes"]) if optane else 4096
        self.lat = np.array(
            [
                v["cache.l1_cycles"],
                v["cache.l2_cycles"],
                v["cache.l3_cycles"],
                dram_miss,
                pm_rand,
                pm_xpb,
                pm_ait,
                c("dram.write_occupancy_ns"),
                wb_pm,
            ],
            dtype=np.int64,
        )
        # device data path, from the media model
        rl, rb, wl, wb = _device_curve(p.name, tuple(sorted(p.overrides.items())))
        f = p.freq_ghz
        self.dev_read = (rl * f, f / rb)  # (cycles, cycles per byte)
        self.dev_write = (wl * f, f / wb)
        self.fault_cycles = c("kernel.fault_overhead_ns")
        self.op_cycles = c("kernel.op_overhead_ns")
        self.pte_cycles = c("kernel.pte_install_ns")
        self.lock_cycles = int(v["kernel.lock_cycles"])
        self.atomic_cycles = int(v["kernel.atomic_cycles"])
        if self.cpus > 1:
            self.tlb_cycles = c("kernel.tlb_shootdown_base_ns") + (self.cpus - 1) * c(
                "kernel.tlb_shootdown_per_cpu_ns"
            )
        else:
            self.tlb_cycles = c("kernel.tlb_shootdown_per_cpu_ns")
        self.memcpy_cpb = f / float(v["kernel.memcpy_dram_gbps"])
        self.cache = CacheState(p, self.cpus)
        self._sp_medium = 1 if memmap == "pmem" else 0

    def reset(self) -> None:
        """Forget the cache contents (cold caches)."""
        self.cache = CacheState(self.profile, self.cpus)

    # ----------------------------------------------------------------------------------
    def price(self, record: WorkRecord, *, cpu: int = 0) -> int:
        """Cycles of one record (updates the cache state)."""
        return int(self.price_batch(RecordBatch.from_records([record]), cpu=cpu)[0])

    def price_many(self, records, *, cpu=0) -> np.ndarray:
        """Cycles of each record, priced in order; ``cpu`` is an int or an array per record."""
        return self.price_batch(RecordBatch.from_records(records), cpu=cpu)

    def price_batch(self, batch: RecordBatch, *, cpu=0) -> np.ndarray:
        """Cycles of each record of ``batch`` (int64 array of shape (n,)).

        Line accesses are walked through the cache hierarchy in one compiled pass; every
        other component is an array expression over the records.
        """
        parts = self.price_parts(batch, cpu=cpu)
        return parts["total"]

    def price_parts(self, batch: RecordBatch, *, cpu=0) -> dict[str, np.ndarray]:
        """Cycles of each record split by component (int64 arrays of shape (n,)).

        Keys: ``entry`` (fault or syscall entry/exit), ``xarray`` (xarray-node lines and the
        locks), ``lines`` (every other metadata line, atomics included), ``device`` (data
        accesses on the device and CPU copies), ``tlb`` (shootdowns), ``pte`` (installs) and
        ``total`` (their sum, rounded once). ``struct_page`` is the share of ``lines`` spent
        on struct-page lines (the memmap: ``dax_associate_entry``/``dax_disassociate_entry``
        and the folio work), not a separate term of ``total``.
        """
        n = batch.n
        cpu_rec = np.broadcast_to(np.asarray(cpu, dtype=np.int64), (n,))
        if n and (cpu_rec.min() < 0 or cpu_rec.max() >= self.cpus):
            raise InputError(f"cpu index out of range 0..{self.cpus - 1}", str(cpu))
        if batch.line_key.size:
            if batch.line_key.min() < 0:
                raise InputError("negative cache-line key", "lines")
            xa, lines, sp = access_records(
                self.cache,
                n,
                batch.line_rec,
                batch.line_struct,
                batch.line_key,
                batch.line_write,
                cpu_rec,
                _BASE_ARR,
                _SP,
                _XA,
                self._sp_medium,
                self.lat,
                self.line_bytes,
                self.block_bytes,
            )
        else:
            xa = np.zeros(n, dtype=np.int64)
            lines = np.zeros(n, dtype=np.int64)
            sp = np.zeros(n, dtype=np.int64)
        atomics = batch.atomics * self.atomic_cycles
        sp = sp + atomics
        lines = lines + atomics
        device = np.zeros(n, dtype=np.float64)
        if batch.pm_size.size:
            rc0, rcb = self.dev_read
            wc0, wcb = self.dev_write
            c0 = np.where(batch.pm_write == 1, wc0, rc0)
            cb = np.where(batch.pm_write == 1, wcb, rcb)
            device += np.bincount(batch.pm_rec, weights=c0 + batch.pm_size * cb, minlength=n)
            has_dev = np.bincount(batch.pm_rec, minlength=n) > 0
        else:
            has_dev = np.zeros(n, dtype=bool)
        device += np.where(has_dev, 0.0, batch.memcpy_bytes * self.memcpy_cpb)
        entry = np.where(batch.faults > 0, batch.faults * self.fault_cycles, self.op_cycles)
        pte = batch.pages_mapped * self.pte_cycles
        tlb = batch.tlb_shootdowns * self.tlb_cycles
        parts = {
            "entry": np.rint(entry).astype(np.int64),
            "xarray": xa + batch.nlocks * self.lock_cycles,
            "lines": lines,
            "device": np.rint(device).astype(np.int64),
            "tlb": np.asarray(tlb, dtype=np.int64),
            "pte": np.asarray(pte, dtype=np.int64),
            "struct_page": sp,
        }
        parts["total"] = (
            parts["entry"]
            + parts["xarray"]
            + parts["lines"]
            + parts["device"]
            + parts["tlb"]
            + parts["pte"]
        )
        return parts

    def cycles_to_ns(self, cycles):
        """Convert cycles to ns on this profile's clock."""
        return np.asarray(cycles) / self.profile.freq_ghz
