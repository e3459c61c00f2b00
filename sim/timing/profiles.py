"""Hardware profiles: typed, documented timing parameters and named presets.

The parameter layer follows gem5's ``Param`` style (``src/mem/NVMInterface.py``): every
parameter has a dotted name, a type, a default with its unit and a one-line description.
A *profile* is the base model (``optane-gen1``) with some defaults overridden by a named
preset; it is never a copy of the table. Overrides naming an unknown key are an
:class:`~sim.errors.InputError` that suggests the closest valid key.

Every parameter given in nanoseconds is converted once, at load, to integer CPU cycles of
``cpu.freq_ghz`` (:meth:`Profile.cycles`). Memmap placement (``memmap="dram"|"pmem"``) is a
*device* setting passed to :class:`sim.timing.cost.CostModel`, not a profile field.

Sources of the defaults are in ``shared/docs/pmem-timing.md`` (section numbers in the
descriptions below).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from sim.constants import DEFAULT_CPU_FREQ_GHZ
from sim.errors import InputError

__all__ = [
    "Param",
    "PARAMS",
    "PRESETS",
    "Profile",
    "load_profile",
    "profile_names",
    "profile_table",
]


@dataclass(frozen=True)
class Param:
    """One typed hardware parameter.

    Attributes
    ----------
    name : str
        Dotted key, ``component.quantity_unit`` (``media.t_read_ns``).
    default : int, float, bool or str
        Value in the base model (``optane-gen1``).
    unit : str
        Unit of the value (``ns``, ``GHz``, ``bytes``, ``entries`` ...).
    description : str
        One-line description with its source.
    lo, hi : float, optional
        Inclusive bounds for numeric parameters.
    choices : tuple of str, optional
        Allowed values for string parameters.
    """

    name: str
    default: Any
    unit: str
    description: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()

    @property
    def type(self) -> type:
        """The parameter's type (that of its default)."""
        return type(self.default)

    def coerce(self, value: Any, where: str) -> Any:
        """Check ``value`` (or parse it from a string) and return it with this type."""
        t = self.type
        if isinstance(value, str) and t is not str:
            s = value.strip()
            try:
                if t is bool:
                    if s.lower() not in ("true", "false", "1", "0", "yes", "no"):
                        raise ValueError(s)
                    value = s.lower() in ("true", "1", "yes")
                elif t is int:
                    value = int(s, 0)
                else:
                    value = float(s)
            except ValueError:
                raise InputError(
                    f"{self.name} expects a {t.__name__} ({self.unit}), got {value!r}", where
                ) from None
        if t is bool:
            if not isinstance(value, bool):
                raise InputError(f"{self.name} expects true or false, got {value!r}", where)
        elif t is int:
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                else:
                    raise InputError(
                        f"{self.name} expects an integer ({self.unit}), got {value!r}", where
                    )
        elif t is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InputError(
                    f"{self.name} expects a number ({self.unit}), got {value!r}", where
                )
            value = float(value)
            if not math.isfinite(value):
                raise InputError(f"{self.name} must be finite, got {value!r}", where)
        elif t is str:
            if not isinstance(value, str) or (self.choices and value not in self.choices):
                raise InputError(
                    f"{self.name} must be one of {', '.join(self.choices)}, got {value!r}", where
                )
        if t in (int, float):
            if self.lo is not None and value < self.lo:
                raise InputError(f"{self.name} = {value} is below the minimum {self.lo:g}", where)
            if self.hi is not None and value > self.hi:
                raise InputError(f"{self.name} = {value} is above the maximum {self.hi:g}", where)
        return value


def _p(name, default, unit, description, lo=None, hi=None, choices=()):
    return Param(name, default, unit, description, lo, hi, tuple(choices))


#: Every parameter of the base model, in display order.
PARAMS: tuple[Param, ...] = (
    # --- CPU core and uncore ------------------------------------------------------------
    _p(
        "cpu.freq_ghz",
        DEFAULT_CPU_FREQ_GHZ,
        "GHz",
        "core clock; simulated time counts these cycles (S1: Xeon 8260)",
        0.5,
        6.0,
    ),
    _p(
        "cpu.load_window",
        12,
        "entries",
        "outstanding 64 B loads per thread: the core's L1D fill buffers (prefetchers off "
        "as in S1, whose 1-thread random loads need 10-12)",
        1,
        64,
    ),
    _p(
        "cpu.ntstore_window",
        28,
        "entries",
        "outstanding 64 B non-temporal stores per thread; they reach the DIMM in any "
        "order within the window",
        1,
        64,
    ),
    _p(
        "cpu.clwb_window",
        12,
        "entries",
        "store+clwb lines per thread between the read for ownership and the WPQ's "
        "acceptance of the write (store buffer: 56 stores = 28 store+clwb pairs on SKX)",
        1,
        64,
    ),
    _p(
        "cpu.rfo_window",
        4,
        "entries",
        "reads for ownership a store+clwb thread keeps outstanding (fill buffers), "
        "within its cpu.clwb_window lines",
        1,
        64,
    ),
    _p(
        "cpu.load_issue_ns",
        1.0,
        "ns",
        "minimum gap between two 64 B loads of one thread",
        0.0,
        1000.0,
    ),
    _p(
        "cpu.store_issue_ns",
        13.9,
        "ns",
        "minimum gap between two 64 B stores of one thread (DRAM 1-thread ntstore 4.6 GB/s, S1)",
        0.0,
        1000.0,
    ),
    _p(
        "cpu.issue_jitter_ns",
        5.0,
        "ns",
        "random delay (uniform 0..x, seeded) before a thread's next request: core-side noise",
        0.0,
        10000.0,
    ),
    _p(
        "cpu.uncore_read_ns",
        70.0,
        "ns",
        "load round trip core->LLC miss->iMC->core, device time excluded",
        0.0,
        10000.0,
    ),
    _p(
        "cpu.ntstore_ack_ns",
        90.4,
        "ns",
        "ntstore+sfence until the iMC WPQ (ADR) accepts it, idle (pmem-timing 1.1)",
        0.0,
        10000.0,
    ),
    _p(
        "cpu.clwb_ack_ns",
        62.3,
        "ns",
        "store+clwb+sfence of a cached line until the WPQ accepts it, idle (1.1)",
        0.0,
        10000.0,
    ),
    # --- memory controller --------------------------------------------------------------
    _p("imc.rpq_entries", 64, "entries", "read pending queue entries per channel", 1, 4096),
    _p(
        "imc.wpq_entries",
        64,
        "entries",
        "write pending queue entries per channel; a write is durable (ADR) once accepted",
        1,
        4096,
    ),
    _p(
        "imc.dimms_per_imc",
        6,
        "DIMMs",
        "DIMMs (channels) behind one in-order write ingress: 6, the socket's (S1: 2 iMCs x 3 "
        "channels, but data/alignment.csv costs the same whichever iMCs a thread's writes reach)",
        1,
        64,
    ),
    _p(
        "imc.in_order_writes",
        True,
        "",
        "the iMC moves writes into its channels' WPQs in arrival order, so a write "
        "waiting for a full WPQ holds back those behind it (head-of-line blocking, 1.6)",
    ),
    _p(
        "imc.read_admission",
        56,
        "loads",
        "a load waiting for a free RPQ slot is admitted from among the oldest this many "
        "waiting, uniformly (1: in issue order); fitted to the 1-DIMM load fall, 16-24 thr",
        1,
        1 << 20,
    ),
    _p(
        "imc.channel_gbps",
        21.3,
        "GB/s",
        "DDR-T/DDR4 channel transfer rate (2666 MT/s x 8 B)",
        0.1,
        1000.0,
    ),
    # --- DIMMs and interleaving ---------------------------------------------------------
    _p("dimm.count", 6, "DIMMs", "DIMMs in the interleave set (one per channel)", 1, 64),
    _p(
        "dimm.interleave_bytes",
        4096,
        "bytes",
        "interleave granularity across DIMMs (VANS stride_mapping(4096))",
        64,
        1 << 30,
    ),
    _p("dimm.capacity_bytes", 256 << 30, "bytes", "capacity of one DIMM", 1 << 20, 1 << 50),
    # --- on-DIMM RMW / write-combining buffer (XPBuffer) ---------------------------------
    _p(
        "rmw.buffer_lines",
        64,
        "lines",
        "XPBuffer entries of rmw.line_bytes (64 x 256 B = 16 KiB, VANS)",
        1,
        4096,
    ),
    _p(
        "rmw.line_bytes",
        256,
        "bytes",
        "XPLine: media access granularity (VANS static_assert)",
        64,
        4096,
    ),
    _p(
        "rmw.read_ns",
        99.4,
        "ns",
        "XPBuffer readout on a hit, DIMM side (169.4 ns seq load - uncore)",
        0.0,
        10000.0,
    ),
    _p(
        "rmw.prefetch_lines",
        4,
        "lines",
        "on-DIMM sequential prefetch depth (XPPrefetcher); 0 disables",
        0,
        64,
    ),
    _p(
        "rmw.prefetch_streams",
        32,
        "streams",
        "sequential streams the DIMM prefetcher tracks (LRU)",
        1,
        4096,
    ),
    _p(
        "rmw.pin_writeback",
        True,
        "",
        "an XPBuffer line being written back stays busy until the media write completes",
    ),
    _p(
        "rmw.writeback_entries",
        48,
        "entries",
        "media write queue per DIMM (lines being written back)",
        1,
        4096,
    ),
    # --- address indirection table buffer -----------------------------------------------
    _p(
        "ait.buffer_entries",
        4096,
        "entries",
        "AIT buffer entries of ait.block_bytes (4096 x 4 KiB = 16 MiB, VANS)",
        1,
        1 << 24,
    ),
    _p("ait.ways", 16, "ways", "associativity of the AIT buffer model (LRU per set)", 1, 16),
    _p(
        "ait.block_bytes",
        4096,
        "bytes",
        "AIT translation / wear-levelling granularity",
        256,
        1 << 20,
    ),
    _p("ait.hit_ns", 25.0, "ns", "AIT lookup on a hit, added to a media access", 0.0, 100000.0),
    _p("ait.miss_ns", 61.0, "ns", "AIT lookup on a miss (305 ns random load, 1.1)", 0.0, 100000.0),
    # --- 3D-XPoint media ------------------------------------------------------------------
    _p(
        "media.kind",
        "optane",
        "",
        "device medium: optane (XPBuffer, AIT, 256 B), dram or cxl (64 B, no buffer)",
        choices=("optane", "dram", "cxl"),
    ),
    _p(
        "media.t_read_ns",
        75.0,
        "ns",
        "media read latency of one XPLine (VANS nv_media 100 tCK)",
        0.0,
        1e6,
    ),
    _p(
        "media.t_write_ns",
        2750.0,
        "ns",
        "media write latency of one XPLine, FITTED to S1's six-DIMM ntstore at 16-24 threads "
        "(sources: VANS 225 ns, gem5 500 ns, Blocks & Files 1,050 ns)",
        0.0,
        1e6,
    ),
    _p(
        "media.read_occupancy_ns",
        39.4,
        "ns",
        "media read port busy time per XPLine (6.5 GB/s/DIMM peak, 1.3)",
        0.01,
        1e6,
    ),
    _p(
        "media.write_occupancy_ns",
        115.3,
        "ns",
        "media write port busy time per XPLine (2.22 GB/s/DIMM, 1.3)",
        0.01,
        1e6,
    ),
    _p(
        "media.read_write_interference_ns",
        7.7,
        "ns",
        "write-port time taken by each 64 B read served to the CPU "
        "(clwb 1.75 vs ntstore 2.21 GB/s, 1.4)",
        0.0,
        1e6,
    ),
    _p(
        "media.wear_threshold",
        896,
        "writes",
        "media writes to one AIT block between wear-levelling migrations (VANS)",
        1,
        1 << 40,
    ),
    _p(
        "media.migration_ns",
        51840.0,
        "ns",
        "wear-levelling migration stall of the DIMM (256 x 270 tCK = 51.84 us)",
        0.0,
        1e9,
    ),
    # --- DRAM (memmap in DRAM, dram/cxl media) --------------------------------------------
    _p(
        "dram.row_hit_ns",
        11.4,
        "ns",
        "DRAM access on an open row (81.4 ns seq load - uncore, 2.3)",
        0.0,
        10000.0,
    ),
    _p(
        "dram.row_miss_ns",
        31.5,
        "ns",
        "DRAM access on a row miss (101.5 ns random load - uncore)",
        0.0,
        10000.0,
    ),
    _p("dram.row_bytes", 8192, "bytes", "DRAM row (page) size per bank", 64, 1 << 20),
    _p("dram.banks", 16, "banks", "banks per channel (open-row state per bank)", 1, 1024),
    _p(
        "dram.read_occupancy_ns",
        3.66,
        "ns",
        "channel busy per 64 B read (105 GB/s over 6 channels, 2.3)",
        0.01,
        10000.0,
    ),
    _p(
        "dram.write_occupancy_ns",
        4.99,
        "ns",
        "channel busy per 64 B write (77 GB/s over 6 channels)",
        0.01,
        10000.0,
    ),
    _p("dram.ntstore_ack_ns", 86.9, "ns", "ntstore+sfence to DRAM, idle (1.1)", 0.0, 10000.0),
    _p("dram.clwb_ack_ns", 57.3, "ns", "store+clwb+sfence to DRAM, idle (1.1)", 0.0, 10000.0),
    _p(
        "cxl.extra_ns",
        0.0,
        "ns",
        "added to every device access by the CXL link and controller (70-150 ns, 2.2)",
        0.0,
        1e6,
    ),
    # --- persistence ----------------------------------------------------------------------
    _p(
        "persist.domain",
        "adr",
        "",
        "persistence domain: adr (WPQ), eadr (CPU caches), none (device)",
        choices=("adr", "eadr", "none"),
    ),
    # --- CPU caches (pmem-timing 5) ------------------------------------------------------
    _p("cache.l1_bytes", 32 << 10, "bytes", "L1D per core", 1024, 1 << 30),
    _p("cache.l1_ways", 8, "ways", "L1D associativity", 1, 64),
    _p("cache.l1_cycles", 4, "cycles", "L1D hit (AnandTech, Xeon 8280)", 1, 1000),
    _p("cache.l2_bytes", 1 << 20, "bytes", "L2 per core", 1024, 1 << 30),
    _p("cache.l2_ways", 16, "ways", "L2 associativity", 1, 64),
    _p("cache.l2_cycles", 14, "cycles", "L2 hit (Xeon 8280)", 1, 1000),
    _p("cache.l3_bytes", 33 << 20, "bytes", "shared L3 (24 cores x 1.375 MiB)", 1024, 1 << 34),
    _p("cache.l3_ways", 11, "ways", "L3 associativity", 1, 64),
    _p("cache.l3_cycles", 56, "cycles", "L3 hit (LMBench 54-56)", 1, 10000),
    # --- kernel path costs (pmem-timing 5) -----------------------------------------------
    _p(
        "kernel.fault_overhead_ns",
        450.0,
        "ns",
        "page-fault exception entry, handler dispatch, mmap_lock and return",
        0.0,
        1e6,
    ),
    _p(
        "kernel.op_overhead_ns",
        150.0,
        "ns",
        "syscall entry/exit for non-fault operations",
        0.0,
        1e6,
    ),
    _p(
        "kernel.pte_install_ns",
        40.0,
        "ns",
        "set_pte/set_pmd and rmap bookkeeping per page mapped",
        0.0,
        1e6,
    ),
    _p(
        "kernel.lock_cycles",
        40,
        "cycles",
        "uncontended spinlock acquire+release (lock cmpxchg, line in L1)",
        0,
        100000,
    ),
    _p(
        "kernel.atomic_cycles",
        20,
        "cycles",
        "extra cost of a locked RMW over a plain store (18-25, 5)",
        0,
        10000,
    ),
    _p(
        "kernel.tlb_shootdown_base_ns",
        1000.0,
        "ns",
        "TLB shootdown IPI round trip, base (5)",
        0.0,
        1e7,
    ),
    _p(
        "kernel.tlb_shootdown_per_cpu_ns",
        200.0,
        "ns",
        "TLB shootdown, per remote CPU (5)",
        0.0,
        1e7,
    ),
    _p(
        "kernel.memcpy_dram_gbps",
        11.0,
        "GB/s",
        "single-thread memcpy bandwidth DRAM->DRAM, cold (5)",
        0.1,
        1000.0,
    ),
)

_BY_NAME: dict[str, Param] = {p.name: p for p in PARAMS}

#: Named presets: (one-line description, overrides of the base model).
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "optane-gen1": (
        "Optane DC PMM 100 (gen1) on Cascade Lake 2.2 GHz, 6 DIMMs interleaved at 4 KiB, ADR",
        {},
    ),
    "optane-gen2": (
        "Optane PMem 200 (gen2): gen1 latencies, media bandwidth x1.2 (2.1), eADR",
        {
            "media.read_occupancy_ns": 39.4 / 1.2,
            "media.write_occupancy_ns": 115.3 / 1.2,
            "imc.channel_gbps": 25.6,
            "persist.domain": "eadr",
        },
    ),
    "cxl": (
        "CXL memory expander: DRAM + 100 ns link, 64 B granularity, no ADR (2.2)",
        {
            "media.kind": "cxl",
            "cxl.extra_ns": 100.0,
            "dimm.count": 2,
            "dimm.interleave_bytes": 256,
            "persist.domain": "none",
        },
    ),
    "dram": (
        "DRAM-emulated pmem (memmap=nn!ss) on the same platform: S1 DRAM numbers (2.3)",
        {"media.kind": "dram"},
    ),
}

_DEFAULT = "optane-gen1"


def _closest(word: str, options) -> str:
    m = difflib.get_close_matches(word, list(options), n=1, cutoff=0.0)
    return m[0] if m else ""


@dataclass(frozen=True)
class Profile:
    """A resolved hardware profile: every parameter of :data:`PARAMS` with its value.

    Use ``profile["media.t_read_ns"]`` for a value in its own unit and
    ``profile.cycles("media.t_read_ns")`` for a ``*_ns`` parameter as integer CPU cycles
    (converted once at load, rounded to nearest, at least 0).
    """

    name: str
    description: str
    values: Mapping[str, Any]
    overrides: Mapping[str, Any] = field(default_factory=dict)
    _cycles: Mapping[str, int] = field(default_factory=dict, repr=False, compare=False)

    def __getitem__(self, key: str) -> Any:
        try:
            return self.values[key]
        except KeyError:
            raise InputError(
                f"unknown parameter; did you mean {_closest(key, self.values)!r}?", key
            ) from None

    @property
    def freq_ghz(self) -> float:
        """The CPU clock in GHz."""
        return float(self.values["cpu.freq_ghz"])

    def cycles(self, key: str) -> int:
        """Integer CPU cycles of the ``*_ns`` parameter ``key``."""
        if key not in self._cycles:
            self[key]
            raise InputError("not a nanosecond parameter", key)
        return self._cycles[key]

    def ns_to_cycles(self, ns: float) -> int:
        """Convert a time in ns to integer cycles of this profile's clock."""
        return int(round(ns * self.freq_ghz))

    def cycles_to_ns(self, cycles):
        """Convert cycles (scalar or array) to ns."""
        return cycles / self.freq_ghz

    def key_figures(self) -> str:
        """One-line summary of the headline numbers of the device."""
        v = self.values
        kind = v["media.kind"]
        n = v["dimm.count"]
        if kind == "optane":
            rbw = n * v["rmw.line_bytes"] / v["media.read_occupancy_ns"]
            wbw = n * v["rmw.line_bytes"] / v["media.write_occupancy_ns"]
            rd = (
                v["cpu.uncore_read_ns"] + v["rmw.read_ns"] + v["ait.miss_ns"] + v["media.t_read_ns"]
            )
        else:
            rd = v["cpu.uncore_read_ns"] + v["dram.row_miss_ns"] + v["cxl.extra_ns"]
            rbw = n * 64 / v["dram.read_occupancy_ns"]
            wbw = n * 64 / v["dram.write_occupancy_ns"]
        return (
            f"{kind}, {n} x {v['dimm.interleave_bytes']} B interleave, "
            f"rand read {rd:.0f} ns, peak read {rbw:.1f} GB/s, write {wbw:.1f} GB/s, "
            f"persist {v['persist.domain']}"
        )


def profile_names() -> list[str]:
    """Names of the built-in profiles, default first."""
    return list(PRESETS)


def load_profile(name: str = _DEFAULT, overrides: Mapping[str, Any] | None = None) -> Profile:
    """Resolve a named profile, optionally with user overrides.

    Parameters
    ----------
    name : str
        One of :func:`profile_names`.
    overrides : mapping of str to value, optional
        ``{"media.t_read_ns": 80}``; values may be strings (``--set key=value``).

    Raises
    ------
    InputError
        Unknown profile or key (with the closest valid one), wrong type or out of range.
    """
    if name not in PRESETS:
        raise InputError(
            f"unknown profile; valid: {', '.join(PRESETS)} "
            f"(did you mean {_closest(name, PRESETS)!r}?)",
            name,
        )
    desc, preset = PRESETS[name]
    values = {p.name: p.default for p in PARAMS}
    values.update(preset)
    user = dict(overrides or {})
    for key, val in user.items():
        if key not in _BY_NAME:
            raise InputError(f"unknown parameter; did you mean {_closest(key, _BY_NAME)!r}?", key)
        values[key] = _BY_NAME[key].coerce(val, key)
    if values["rmw.line_bytes"] & (values["rmw.line_bytes"] - 1):
        raise InputError("must be a power of two", "rmw.line_bytes")
    if values["ait.block_bytes"] % values["rmw.line_bytes"]:
        raise InputError("must be a multiple of rmw.line_bytes", "ait.block_bytes")
    if values["dimm.interleave_bytes"] % 64:
        raise InputError("must be a multiple of 64", "dimm.interleave_bytes")
    freq = float(values["cpu.freq_ghz"])
    cyc = {k: max(0, int(round(float(v) * freq))) for k, v in values.items() if k.endswith("_ns")}
    return Profile(
        name=name,
        description=desc,
        values=MappingProxyType(values),
        overrides=MappingProxyType(user),
        _cycles=MappingProxyType(cyc),
    )


def profile_table(profile: Profile) -> list[tuple[str, Any, str, str]]:
    """Every parameter of ``profile`` as ``(key, value, unit, description)`` rows."""
    return [(p.name, profile.values[p.name], p.unit, p.description) for p in PARAMS]
