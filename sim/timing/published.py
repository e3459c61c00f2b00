"""Published Optane DC PMM (gen1) bandwidth curves the media model is compared with.

Every curve is the FAST'20 measurement data of NVSL/OptaneStudy (``shared/docs/pmem-timing.md``
source S1: 2 x Xeon 8260, 6 x 256 GB Optane DC per socket, DDR4-2666, LATTester, hardware
prefetchers off), read from the repository's ``graphs/*.csv`` (the data of the paper's
figures) and checked against its raw sweep ``data/bandwidth.csv``:

* Thread sweeps: 256 B sequential per-thread streams (the ``StrideBW`` rows of
  ``data/bandwidth.csv`` with access = stride = 256 B match these curves).
  ``graphs/04-bandwidth_thcount_optane.csv`` (6 DIMMs interleaved) labels its columns
  ``Read, Write(clwb), Write(ntstore)`` where the one-DIMM file has ``Read,
  Write(ntstore), Write(clwb)``: the two write columns of the interleaved file are swapped.
  The raw rows decide it: interleaved ``NTStore`` at 1/2/3/4 threads ran at 4.31/8.65/
  12.36/13.25 GB/s, which is the column labelled clwb (4.13/8.19/11.81/12.50), while
  ``Store+Flush`` ran at 1.13/2.24 GB/s at 1/2 threads, near the column labelled ntstore
  (1.42/2.85); and the paper has ntstore saturating at 4 threads with a 13.9 GB/s maximum.
  Here the columns are given under their corrected names.
* Size sweeps: random accesses of the given size. The figure data do not record the thread
  count; the ``RandBW`` rows of ``data/bandwidth.csv`` that match the curves best (mean
  relative difference over the sizes) are 16-20 threads for reads (4-6 %), 6 threads for
  ntstore (3 %) and 12-20 threads for store+clwb (11-12 %): the comparison uses 16, 6 and
  12 threads.
* One-DIMM random loads by thread count, 64 / 128 / 256 B: not figure data but the
  ``RandBW`` rows of ``data/bandwidth.csv`` (``lpmem``, ``Load``, not interleaved, local;
  the mean of the 1-7 runs at each thread count). They fall with threads for 128 and
  256 B but not for 64 B, without any prefetcher (``prefetching=0``, random addresses).

Placement: LATTester's default align mode (``ALIGN_PERTHREAD``) gives thread ``i`` its own
2 GiB working set at ``i * 2 GiB`` of the namespace (``src/kernel/lattester.h``:
``PERTHREAD_WORKSET = 1 << 31``; ``src/kernel/lat.c``, ``latencyfs_new_threads``), for the
strided (thread sweep) and the random-size tasks alike. On 6 DIMMs interleaved at 4 KiB,
2 GiB is 524,288 interleave blocks, 2 more than a multiple of 6, so thread ``i`` starts on
DIMM ``2i mod 6``: the threads start lined up on three of the six DIMMs, 1/3 of the threads
on each. :func:`compare` places the model's threads the same way
(:meth:`Curve.region_bytes`).

Steady state: S1 runs every point for 5 s (``30_stridebw.sh``), so :func:`compare` simulates
:data:`STEADY_REQUESTS` requests per point, a count at which every point of every curve is
within 2% of a run four times longer (BENCHMARKS.md, issue 18). Shorter runs overstate
some points: LATTester's placement starts the threads in convoys that take a long run to
settle (six DIMMs, ntstore, 24 threads: 10.44 GB/s at 120,000 requests, 11.45 at 480,000
with the model of 2026-12-07 10:00 UTC).

``FITTED`` lists the points the model's parameters were set from
(``tests/test_media_calibration.py``, and the six-DIMM ntstore points at 16-24 threads for
the media write time, ``media.t_write_ns``); every other point is checked only.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.timing.media import THREAD_REGION_BYTES, simulate

__all__ = ["Curve", "CURVES", "FITTED", "STEADY_REQUESTS", "THREAD_REGION_BYTES", "compare"]


#: 64 B requests per point at which every published point's model bandwidth is within 2%
#: of a run four times longer (measured, BENCHMARKS.md issue 18).
STEADY_REQUESTS = 480_000


@dataclass(frozen=True)
class Curve:
    """One published curve.

    Attributes
    ----------
    name : str
        Short label.
    op : {"load", "ntstore", "clwb"}
    pattern : {"seq", "rand"}
    dimms : int
        1 (one DIMM, not interleaved) or 6 (interleaved at 4 KiB).
    vary : {"threads", "size"}
        What the x values are.
    fixed : int
        The other coordinate: the access size (thread sweeps) or the thread count (size
        sweeps).
    points : tuple of (int, float)
        (x, GB/s).
    source : str
        File of S1 the points were read from.
    """

    name: str
    op: str
    pattern: str
    dimms: int
    vary: str
    fixed: int
    points: tuple[tuple[int, float], ...]
    source: str

    def args(self, x: int) -> tuple[str, str, int, int, int]:
        """``(op, pattern, size_bytes, threads, dimms)`` of point ``x`` for the media model."""
        if self.vary == "threads":
            return self.op, self.pattern, self.fixed, x, self.dimms
        return self.op, self.pattern, x, self.fixed, self.dimms

    def region_bytes(self, x: int) -> int:
        """Region of point ``x`` for the media model: one :data:`THREAD_REGION_BYTES`
        working set per thread, one after the other, as LATTester places them."""
        return self.args(x)[3] * THREAD_REGION_BYTES


_TH = (1, 2, 4, 6, 8, 12, 16, 20, 24)
_NI = "graphs/04-bandwidth_thcount_optane_ni.csv"
_IL = "graphs/04-bandwidth_thcount_optane.csv (write columns swapped, see above)"
_SZ = "graphs/05-bandwidth_accesssize_optane.csv"
_RB = "data/bandwidth.csv (RandBW, lpmem, Load, 1 DIMM, mean of the runs)"
_RB_TH = (1, 2, 4, 6, 8, 12, 24)


def _pick(xs, ys):
    d = dict(zip(range(1, len(ys) + 1), ys, strict=True))
    return tuple((x, d[x]) for x in xs)


# every thread count 1..24, as published
_NI_LOAD = (2.92, 5.66, 6.45, 6.52, 6.51, 6.50, 6.50, 6.46, 6.39, 6.29, 6.14, 5.91)
_NI_LOAD += (5.60, 5.25, 4.97, 4.73, 4.59, 4.30, 4.16, 4.10, 4.02, 3.97, 3.91, 3.89)
_NI_NT = (2.22, 2.21, 2.21, 2.20, 2.12, 1.96, 1.73, 1.53, 1.37, 1.25, 1.16, 1.12)
_NI_NT += (1.02, 0.98, 0.94, 0.94, 0.93, 0.84, 0.89, 0.86, 0.84, 0.78, 0.81, 0.80)
_NI_CL = (1.44, 1.79, 1.79, 1.71, 1.64, 1.55, 1.48, 1.40, 1.30, 1.21, 1.12, 1.08)
_NI_CL += (1.06, 0.98, 0.96, 0.88, 0.90, 0.84, 0.89, 0.85, 0.82, 0.84, 0.81, 0.82)
_IL_LOAD = (2.88, 5.75, 8.94, 11.63, 14.31, 16.63, 18.94, 21.13, 23.25, 24.94, 26.88, 28.75)
_IL_LOAD += (30.56, 32.13, 33.69, 34.88, 35.69, 36.56, 37.06, 37.19, 37.25, 37.63, 37.56, 37.56)
_IL_NT = (4.13, 8.19, 11.81, 12.50, 12.50, 12.31, 12.25, 12.00, 11.81, 11.63, 11.38, 10.69)
_IL_NT += (10.56, 10.00, 9.38, 10.00, 9.56, 9.00, 9.13, 8.75, 7.88, 8.25, 8.19, 7.50)
_IL_CL = (1.42, 2.85, 4.33, 5.75, 7.23, 8.50, 9.63, 9.98, 9.90, 9.75, 9.63, 9.50)
_IL_CL += (9.21, 8.85, 8.75, 8.67, 8.25, 8.25, 8.31, 7.92, 7.88, 7.79, 7.67, 7.50)

CURVES: tuple[Curve, ...] = (
    Curve("1-DIMM load", "load", "seq", 1, "threads", 256, _pick(_TH, _NI_LOAD), _NI),
    Curve(
        "1-DIMM random load 256 B",
        "load",
        "rand",
        1,
        "threads",
        256,
        tuple(zip(_RB_TH, (2.61, 4.74, 6.47, 6.44, 6.00, 4.76, 3.38), strict=True)),
        _RB,
    ),
    Curve(
        "1-DIMM random load 128 B",
        "load",
        "rand",
        1,
        "threads",
        128,
        tuple(zip(_RB_TH, (1.85, 3.11, 3.37, 3.37, 3.32, 2.96, 2.15), strict=True)),
        _RB,
    ),
    Curve(
        "1-DIMM random load 64 B",
        "load",
        "rand",
        1,
        "threads",
        64,
        tuple(zip(_RB_TH, (1.48, 1.66, 1.70, 1.69, 1.66, 1.69, 1.54), strict=True)),
        _RB,
    ),
    Curve("1-DIMM ntstore", "ntstore", "seq", 1, "threads", 256, _pick(_TH, _NI_NT), _NI),
    Curve("1-DIMM clwb", "clwb", "seq", 1, "threads", 256, _pick(_TH, _NI_CL), _NI),
    Curve("6-DIMM load", "load", "seq", 6, "threads", 256, _pick(_TH, _IL_LOAD), _IL),
    Curve("6-DIMM ntstore", "ntstore", "seq", 6, "threads", 256, _pick(_TH, _IL_NT), _IL),
    Curve("6-DIMM clwb", "clwb", "seq", 6, "threads", 256, _pick(_TH, _IL_CL), _IL),
    Curve(
        "6-DIMM load by size",
        "load",
        "rand",
        6,
        "size",
        16,
        (
            (64, 9.67),
            (256, 33.65),
            (1024, 32.29),
            (2048, 29.33),
            (4096, 25.98),
            (16384, 29.33),
            (65536, 33.79),
        ),
        _SZ,
    ),
    Curve(
        "6-DIMM ntstore by size",
        "ntstore",
        "rand",
        6,
        "size",
        6,
        (
            (64, 3.17),
            (256, 12.19),
            (1024, 11.35),
            (2048, 10.52),
            (4096, 9.44),
            (16384, 10.96),
            (65536, 12.17),
        ),
        _SZ,
    ),
    Curve(
        "6-DIMM clwb by size",
        "clwb",
        "rand",
        6,
        "size",
        12,
        (
            (64, 2.75),
            (256, 9.48),
            (1024, 8.92),
            (2048, 8.25),
            (4096, 7.69),
            (16384, 8.69),
            (65536, 9.50),
        ),
        _SZ,
    ),
)

#: (curve name, x) of the points the model's parameters were set from
#: (``tests/test_media_calibration.py``, ``media.t_write_ns``); the rest are checked only.
FITTED: frozenset[tuple[str, int]] = frozenset(
    [("1-DIMM load", t) for t in (1, 4, 8, 16, 24)]
    + [("1-DIMM ntstore", t) for t in (1, 2, 4, 12, 16, 24)]
    + [("1-DIMM clwb", t) for t in (1, 2)]
    # media.t_write_ns (BENCHMARKS.md, issue 18)
    + [("6-DIMM ntstore", t) for t in (16, 20, 24)]
)


def compare(profile, names: tuple[str, ...] = (), *, requests: int = STEADY_REQUESTS) -> list[dict]:
    """The model next to every published point.

    Parameters
    ----------
    profile : Profile
        Hardware profile to simulate (the curves were measured on ``optane-gen1``).
    names : tuple of str
        Curves whose name contains one of these (case-insensitive); all when empty.
    requests : int
        64 B requests simulated per point (default :data:`STEADY_REQUESTS`, steady state).

    Returns
    -------
    list of dict
        One per point: ``curve``, ``vary``, ``x``, ``published_gbps``, ``model_gbps``,
        ``error`` (model / published - 1), ``fitted`` and ``source``.
    """
    want = [n.lower() for n in names]
    rows = []
    for c in CURVES:
        if want and not any(w in c.name.lower() for w in want):
            continue
        for x, pub in c.points:
            op, pat, size, th, dimms = c.args(x)
            region = c.region_bytes(x)
            if region > dimms * profile["dimm.capacity_bytes"]:
                region = None  # a device too small for LATTester's layout: the default
            got = simulate(
                profile, op, pat, size, th, dimms=dimms, region_bytes=region, requests=requests
            )
            rows.append(
                {
                    "curve": c.name,
                    "vary": c.vary,
                    "x": x,
                    "published_gbps": pub,
                    "model_gbps": round(got.bandwidth_gbps, 4),
                    "error": round(got.bandwidth_gbps / pub - 1, 4),
                    "fitted": (c.name, x) in FITTED,
                    "source": c.source,
                }
            )
    return rows
