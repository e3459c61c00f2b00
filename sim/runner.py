"""Run a scenario: generate its operation stream, drive the functional model, price it.

This is the glue behind ``daxsim run``, ``daxsim compare`` and ``daxsim sweep``::

    stream = workload generator(scenario.workload, rng)      # numpy record array
    dfs    = DaxFS(device blocks, variant)                   # fs + dax + memmap
    for each row: WorkRecord = dfs.<op>(...)                 # functional model, in order
    cycles = CostModel.price_many(records)   (functional)    # timing model
           | engine.run(per-CPU streams)     (timing)
    -> tidy DataFrames -> results directory (atomic)

The functional state never depends on the mode; only the times do.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.constants import DEFAULT_CPU_FREQ_GHZ, PAGE_SIZE, OpKind
from sim.errors import InputError
from sim.fs import FsError
from sim.fs.filesystem import metadata_blocks
from sim.work import WorkRecord
from workloads.ops import ARG_KEEP_SIZE, ARG_PMD, ARG_WHOLE_FILE, ARG_WRITABLE

__all__ = [
    "RunOutput",
    "simulate",
    "run_scenario",
    "write_results",
    "op_label",
    "error_report",
    "OperationsFailed",
]

#: Time-series samples per run (plus the final state).
TIMESERIES_POINTS = 100

#: Failed operations a run keeps the description of (the first ones), for its report.
FIRST_ERRORS = 5


@dataclass
class RunOutput:
    """The tables of one simulated run (one variant, one hardware profile).

    Attributes
    ----------
    summary : dict
        Scalar metrics and the flattened scenario keys (one ``summary.parquet`` row).
    timeseries : DataFrame
        Counters sampled over the run: ``op_index``, ``t_cycles``, ``residue_pages``, ...
    latency : DataFrame
        One row per operation: ``op_index``, ``op``, ``cpu``, ``latency_cycles``, ``latency_ns``.
    pages : DataFrame
        Final page-state statistics: ``kind`` (shared, residue, phantom), ``share_degree``,
        ``pages``.
    memory_failure : DataFrame
        One row per poisoned pfn: owners found by each path.
    """

    summary: dict
    timeseries: pd.DataFrame
    latency: pd.DataFrame
    pages: pd.DataFrame
    memory_failure: pd.DataFrame
    meta: dict = field(default_factory=dict)
    #: Failed operations by errno name, and the first few described (``op N (kind): ERR: ...``).
    errors: dict = field(default_factory=dict)
    first_errors: list = field(default_factory=list)


def op_label(op_code: int, record: WorkRecord | None = None) -> str:
    """Name of an operation for the latency table; a write fault that copied is ``cow_fault``."""
    try:
        name = OpKind(int(op_code)).label
    except ValueError:
        name = f"op{op_code}"
    if name == "write_fault" and record is not None and record.memcpy_bytes > 0:
        return "cow_fault"
    return name


class _Driver:
    """Applies stream rows to a :class:`sim.dax.DaxFS`, one row at a time."""

    def __init__(self, dfs):
        self.dfs = dfs
        self.ino: dict[int, int] = {}
        self.path: dict[int, str] = {}
        self.vid: dict[tuple[int, int], int] = {}
        self.errors: dict[str, int] = {}
        self.first_errors: list[str] = []
        self.mf_rows: list[dict] = []

    def _err(self, exc: Exception, wr_op: str, op_index: int) -> WorkRecord:
        key = getattr(exc, "errno", None) or type(exc).__name__
        self.errors[str(key)] = self.errors.get(str(key), 0) + 1
        if len(self.first_errors) < FIRST_ERRORS:
            self.first_errors.append(f"op {op_index} ({wr_op}): {str(exc)[:200]}")
        return WorkRecord(wr_op)

    def apply(self, row, op_index: int) -> WorkRecord:
        """Apply stream row ``row`` (number ``op_index``) by its kind's system call.

        A failing call (FsError, PermissionError) is counted in ``errors`` by errno and
        costs an empty work record, as the kernel's early return would. A legal access that
        the design refuses with SIGBUS (from v6.15 ``vmf_insert_folio_pmd()`` refuses a
        folio not of order 9) is the design's defect, not the workload's error: it is counted
        in the summary's ``pmd_sigbus``, not in ``errors``.
        """
        op = int(row["op"])
        call = _SYSCALLS.get(op)
        if call is None:
            raise ValueError(f"stream row {op_index}: unknown op code {op}")
        refused = self.dfs.stats["pmd_sigbus"]
        try:
            return call(self, row, op_index)
        except (FsError, PermissionError) as exc:
            if getattr(exc, "errno", None) == "SIGBUS" and self.dfs.stats["pmd_sigbus"] > refused:
                return WorkRecord(op_label(op))
            return self._err(exc, op_label(op), op_index)

    # One method per system call (the kernel entry point it models in brackets); each takes
    # the stream row and its number.

    def _create(self, row, op_index: int) -> WorkRecord:
        """``open(O_CREAT|O_TRUNC)`` (``do_sys_open``)."""
        f = int(row["file"])
        path = f"f{f}"
        ino, wr = self.dfs.open(path, create=True, trunc=True)
        self.ino[f] = ino
        self.path[f] = path
        return wr

    def _pwrite(self, row, op_index: int) -> WorkRecord:
        """``pwrite`` (``dax_iomap_rw``) of the pattern byte ``arg & 0xff``."""
        ino = self.ino[int(row["file"])]
        arg = int(row["arg"])
        return self.dfs.pwrite(ino, int(row["offset_bytes"]), int(row["length_bytes"]), arg & 0xFF)

    def _pread(self, row, op_index: int) -> WorkRecord:
        """``pread`` (``dax_iomap_rw``)."""
        ino = self.ino[int(row["file"])]
        return self.dfs.read(ino, int(row["offset_bytes"]), int(row["length_bytes"]))

    def _clone(self, row, op_index: int) -> WorkRecord:
        """FICLONE or FICLONERANGE (``xfs_reflink_remap_range``)."""
        dst, src = self.ino[int(row["file"])], self.ino[int(row["src"])]
        if int(row["arg"]) & ARG_WHOLE_FILE:
            return self.dfs.clone(dst, src)
        soff, off, length = (int(row[k]) for k in _RANGE_FROM_SRC)
        return self.dfs.clone(dst, src, soff, off, length)

    def _dedupe(self, row, op_index: int) -> WorkRecord:
        """FIDEDUPERANGE (``xfs_file_remap_range`` with ``REMAP_FILE_DEDUP``)."""
        dst, src = self.ino[int(row["file"])], self.ino[int(row["src"])]
        soff, off, length = (int(row[k]) for k in _RANGE_FROM_SRC)
        return self.dfs.dedupe(dst, src, soff, off, length)

    def _mmap(self, row, op_index: int) -> WorkRecord:
        """``mmap(MAP_SHARED)`` (``xfs_file_mmap``), one mapping per (pid, file)."""
        f = int(row["file"])
        arg = int(row["arg"])
        key = (int(row["pid"]), f)
        self.vid[key] = self.dfs.mmap(
            key[0],
            self.ino[f],
            int(row["offset_bytes"]),
            int(row["length_bytes"]),
            writable=bool(arg & ARG_WRITABLE),
            huge=bool(arg & ARG_PMD),
        )
        return WorkRecord("mmap")

    def _munmap(self, row, op_index: int) -> WorkRecord:
        """``munmap`` of the process's mapping of the file."""
        return self.dfs.munmap(self.vid.pop((int(row["pid"]), int(row["file"]))))

    def _read_fault(self, row, op_index: int) -> WorkRecord:
        """Loads through the mapping: read faults (``dax_iomap_fault``)."""
        vid = self.vid[(int(row["pid"]), int(row["file"]))]
        return self.dfs.mread(vid, int(row["offset_bytes"]), int(row["length_bytes"]))

    def _write_fault(self, row, op_index: int) -> WorkRecord:
        """Stores through the mapping: write faults (``dax_iomap_fault``, CoW when shared)."""
        vid = self.vid[(int(row["pid"]), int(row["file"]))]
        byte = (int(row["arg"]) >> 8) & 0xFF
        return self.dfs.mwrite(vid, int(row["offset_bytes"]), int(row["length_bytes"]), byte)

    def _truncate(self, row, op_index: int) -> WorkRecord:
        """``ftruncate`` (``xfs_setattr_size``) to ``offset_bytes``."""
        return self.dfs.truncate(self.ino[int(row["file"])], int(row["offset_bytes"]))

    def _punch(self, row, op_index: int) -> WorkRecord:
        """``fallocate(PUNCH_HOLE)`` (``xfs_file_fallocate``)."""
        ino = self.ino[int(row["file"])]
        return self.dfs.punch(ino, int(row["offset_bytes"]), int(row["length_bytes"]))

    def _zero(self, row, op_index: int) -> WorkRecord:
        """``fallocate(ZERO_RANGE)`` (``xfs_file_fallocate``), KEEP_SIZE from ``arg``."""
        ino = self.ino[int(row["file"])]
        keep = bool(int(row["arg"]) & ARG_KEEP_SIZE)
        return self.dfs.zero_range(
            ino, int(row["offset_bytes"]), int(row["length_bytes"]), keep_size=keep
        )

    def _unshare(self, row, op_index: int) -> WorkRecord:
        """``fallocate(UNSHARE_RANGE)`` (``xfs_file_fallocate``)."""
        ino = self.ino[int(row["file"])]
        return self.dfs.unshare(ino, int(row["offset_bytes"]), int(row["length_bytes"]))

    def _fsync(self, row, op_index: int) -> WorkRecord:
        """``fsync`` (``dax_writeback_mapping_range``)."""
        return self.dfs.fsync(self.ino[int(row["file"])])

    def _unlink(self, row, op_index: int) -> WorkRecord:
        """``unlink`` (``do_unlinkat``), every mapping of the file gone first."""
        f = int(row["file"])
        wr = WorkRecord("unlink")
        for key in [k for k in self.vid if k[1] == f]:
            wr.merge(self.dfs.munmap(self.vid.pop(key)))
        wr.merge(self.dfs.unlink(self.path.pop(f)))
        del self.ino[f]
        return wr

    def _poison(self, row, op_index: int) -> WorkRecord:
        dfs = self.dfs
        f = int(row["file"])
        key = (int(row["pid"]), f)
        if f < 0 or key not in self.vid:
            return WorkRecord("poison")  # device-level poison of an unmapped range: nothing to find
        # The truth before the poison acts: every live DAX entry mapping each pfn.
        res, wr = dfs.memory_failure(
            self.vid[key], int(row["offset_bytes"]), int(row["length_bytes"])
        )
        for pfn in res.pfns:
            truth = {(int(m), int(i)) for m, i in dfs.entries_mapping_pfn(pfn)}
            rmap = {(dfs.mapping_id(ino), int(fb)) for ino, fb in res.rmap_owners.get(pfn, [])}
            fallback = {
                (dfs.mapping_id(ino), int(fb)) for ino, fb in res.fallback_owners.get(pfn, [])
            }
            self.mf_rows.append(
                {
                    "op_index": op_index,
                    "pfn": int(pfn),
                    "owners_true": len(truth | rmap),
                    "owners_rmap": len(rmap),
                    "owners_page_mapping": len(fallback),
                    "rmap_found_all": bool(truth <= rmap),
                    "sigbus_poisoner": bool(res.sigbus_poisoner),
                }
            )
        return wr


#: The stream columns of a remap, in the order of ``DaxFS.clone``/``dedupe``'s arguments.
_RANGE_FROM_SRC = ("src_offset_bytes", "offset_bytes", "length_bytes")

#: The system call of each operation kind.
_SYSCALLS = {
    OpKind.CREATE: _Driver._create,
    OpKind.WRITE: _Driver._pwrite,
    OpKind.READ: _Driver._pread,
    OpKind.CLONE: _Driver._clone,
    OpKind.DEDUPE: _Driver._dedupe,
    OpKind.MMAP: _Driver._mmap,
    OpKind.MUNMAP: _Driver._munmap,
    OpKind.READ_FAULT: _Driver._read_fault,
    OpKind.WRITE_FAULT: _Driver._write_fault,
    OpKind.TRUNCATE: _Driver._truncate,
    OpKind.PUNCH: _Driver._punch,
    OpKind.ZERO: _Driver._zero,
    OpKind.UNSHARE: _Driver._unshare,
    OpKind.FSYNC: _Driver._fsync,
    OpKind.UNLINK: _Driver._unlink,
    OpKind.POISON: _Driver._poison,
}


def _page_stats(mm) -> dict[str, int]:
    return {"residue_pages": int(mm.residue_pages()), "phantom_pages": int(mm.phantom_pages())}


def _variant_name(scenario, variant: str | None) -> str:
    return variant or scenario.variant.name


#: Functional mode prices work records in chunks of this many operations and then drops
#: them, so memory does not grow with the run (the cost model's cache state carries over).
PRICE_CHUNK = 4096


class _Pricer:
    """Turns work records into cycles: in chunks as they come (functional mode), or all at
    the end through the SimPy engine (timing mode, which needs every CPU's stream)."""

    def __init__(self, scenario, profile_name: str | None):
        from sim.timing import load_profile
        from sim.timing.cost import CostModel

        self.profile = load_profile(
            profile_name or scenario.hardware.profile, scenario.hardware.overrides or None
        )
        self.model = CostModel(
            self.profile, memmap=scenario.device.memmap, cpus=int(scenario.run.cpus)
        )
        self.functional = scenario.run.mode == "functional"
        self.pending: list[WorkRecord] = []
        self.pending_cpu: list[int] = []
        self.parts: list[np.ndarray] = []
        self.sp_parts: list[np.ndarray] = []
        self.faults = 0
        #: struct-page line accesses recorded (read or written), all operations
        self.struct_page_lines = 0
        self.engine_stats: dict = {}

    def add(self, wr: WorkRecord, cpu: int) -> None:
        self.faults += wr.faults
        for lines in (wr.lines_written, wr.lines_read):
            keys = lines.get("struct_page")
            if keys:
                self.struct_page_lines += len(keys)
        self.pending.append(wr)
        self.pending_cpu.append(cpu)
        if self.functional and len(self.pending) >= PRICE_CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            from sim.timing.cost import RecordBatch

            cpu = np.asarray(self.pending_cpu, dtype=np.int64) % self.model.cpus
            parts = self.model.price_parts(RecordBatch.from_records(self.pending), cpu=cpu)
            self.parts.append(np.asarray(parts["total"], dtype=np.int64))
            self.sp_parts.append(np.asarray(parts["struct_page"], dtype=np.int64))
            self.pending, self.pending_cpu = [], []

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """Cycles of every operation, in order, and the share of them spent on struct-page
        lines."""
        if self.functional:
            self._flush()
            if not self.parts:
                return np.zeros(0, np.int64), np.zeros(0, np.int64)
            return np.concatenate(self.parts), np.concatenate(self.sp_parts)
        from sim.engine import run_engine

        out = run_engine(self.model, self.pending, np.asarray(self.pending_cpu, dtype=np.int64))
        self.engine_stats = dict(out.stats)
        return (
            np.asarray(out.latency_cycles, dtype=np.int64),
            np.asarray(out.struct_page_cycles, dtype=np.int64),
        )


def simulate(
    scenario,
    *,
    variant: str | None = None,
    profile: str | None = None,
    seed_sequence: np.random.SeedSequence | None = None,
    stream: np.ndarray | None = None,
    progress: bool = False,
) -> RunOutput:
    """Simulate ``scenario`` under one design variant and one hardware profile.

    Parameters
    ----------
    scenario : sim.scenario.Scenario
        The resolved scenario.
    variant, profile : str, optional
        Override ``variant.name`` / ``hardware.profile`` (``compare`` runs one stream under many).
    seed_sequence : numpy.random.SeedSequence, optional
        Seeds the workload; default ``SeedSequence(scenario.run.seed)``.
    stream : ndarray, optional
        A pre-generated operation stream (``compare`` generates it once).
    progress : bool
        Show a tqdm progress bar over the operations.

    Returns
    -------
    RunOutput
    """
    from sim.jit import compile_notice

    # kernels compiled on first use (numba) are timed apart: not in the summary's wall times
    with compile_notice("daxsim: the memmap and timing kernels") as compiling:
        return _simulate(scenario, variant, profile, seed_sequence, stream, progress, compiling)


def _simulate(scenario, variant, profile, seed_sequence, stream, progress, compiling) -> RunOutput:
    """:func:`simulate`; ``compiling.seconds``: the time numba spent compiling so far."""
    from sim.dax import DaxFS

    t0 = time.perf_counter()
    vname = _variant_name(scenario, variant)
    meta: dict[str, Any] = {}
    if stream is None:
        stream, meta = make_stream(scenario, seed_sequence)
    if scenario.run.operations:
        stream = stream[: scenario.run.operations]
    if scenario.run.duration_ns:
        limit = int(scenario.run.duration_ns * DEFAULT_CPU_FREQ_GHZ)
        stream = stream[stream["t_cycles"] <= limit]
    nblocks = scenario.device.size // PAGE_SIZE
    su_blocks = scenario.device.stripe_unit // PAGE_SIZE
    if su_blocks and metadata_blocks(su_blocks) >= nblocks:
        raise InputError(
            f"device.stripe_unit = {scenario.device.stripe_unit}: leaves no data block on a "
            f"device of {scenario.device.size} bytes (mkfs keeps a stripe unit and the root "
            "inode chunk before the first one)"
        )
    pricer = _Pricer(scenario, profile)  # checks the profile before any work
    labels: list[str] = []
    ts_rows: list[dict] = []

    def sample(i: int, d) -> None:
        m = d.mm
        ts_rows.append(
            {
                "op_index": i + 1,
                **_page_stats(m),
                "share_inc": m.counters.get("share_inc", 0),
                "share_dec": m.counters.get("share_dec", 0),
                "warnings_raw": int(sum(m.warnings.values())),
                "live_entries": d.summary()["live_entries"],
            }
        )

    script = meta.get("xfsio_script") if len(stream) == 0 else None
    if script:
        dfs, drv = _run_xfsio_workload(
            script, vname, nblocks, pricer, labels, sample, scenario.device.stripe_unit
        )
        cpus = np.zeros(len(labels), dtype=np.int64)
    else:
        dfs = DaxFS(nblocks, vname, stripe_unit_blocks=scenario.device.stripe_unit // PAGE_SIZE)
        drv = _Driver(dfs)
        n = len(stream)
        every = max(1, n // TIMESERIES_POINTS)
        it = range(n)
        if progress:
            from tqdm import tqdm

            it = tqdm(
                it, desc=f"{scenario.name} [{vname}]", unit="op", leave=False, mininterval=0.5
            )
        cpu_col = stream["cpu"]
        for i in it:
            row = stream[i]
            wr = drv.apply(row, i)
            labels.append(op_label(int(row["op"]), wr))
            pricer.add(wr, int(cpu_col[i]))
            if i % every == 0 or i == n - 1:
                sample(i, dfs)
        cpus = stream["cpu"][:n].astype(np.int64)
    mm = dfs.mm
    n = len(labels)
    functional_s = time.perf_counter() - t0 - compiling.seconds
    cycles, sp_cycles = pricer.finish()
    prof, engine_stats = pricer.profile, pricer.engine_stats
    priced_s = time.perf_counter() - t0 - functional_s - compiling.seconds
    ns = prof.cycles_to_ns(cycles) if n else np.zeros(0)
    cum = np.cumsum(cycles) if n else np.zeros(0, np.int64)

    latency = pd.DataFrame(
        {
            "op_index": np.arange(n, dtype=np.int64),
            "op": pd.Series(labels, dtype="string"),
            "cpu": cpus,
            "latency_cycles": cycles.astype(np.int64),
            "latency_ns": np.asarray(ns, dtype=np.float64),
        }
    )
    timeseries = pd.DataFrame(ts_rows)
    if len(timeseries):
        idx = timeseries["op_index"].to_numpy() - 1
        timeseries.insert(1, "t_cycles", cum[idx].astype(np.int64))
    pages = page_table(mm)
    mf = pd.DataFrame(
        drv.mf_rows,
        columns=[
            "op_index",
            "pfn",
            "owners_true",
            "owners_rmap",
            "owners_page_mapping",
            "rmap_found_all",
            "sigbus_poisoner",
        ],
    )
    summary = summarise(scenario, vname, prof.name, dfs, pricer.faults, latency, mf, drv.errors)
    summary.update(struct_page_summary(sp_cycles, pricer.struct_page_lines, n))
    summary["wall_time_functional_s"] = round(functional_s, 6)
    summary["wall_time_pricing_s"] = round(priced_s, 6)
    summary.update({f"engine_{k}": v for k, v in engine_stats.items() if np.isscalar(v)})
    for df in (timeseries, latency, pages, mf):
        df.insert(0, "variant", vname)
        df.insert(1, "profile", prof.name)
    return RunOutput(
        summary,
        timeseries,
        latency,
        pages,
        mf,
        meta,
        errors=dict(getattr(drv, "errors", {})),
        first_errors=list(getattr(drv, "first_errors", [])),
    )


def _run_xfsio_workload(
    script: str,
    vname: str,
    nblocks: int,
    pricer: "_Pricer",
    labels: list,
    sample,
    stripe_unit_bytes: int = 0,
):
    """The ``xfsio`` generator: run the script through the xfs_io runner, pricing every
    operation's work record; returns the final DaxFS and a driver-like holder."""
    from sim.errors import read_text_input
    from sim.hunt.invariants import runner_invariants
    from sim.xfsio.parse import parse_script
    from sim.xfsio.runner import XfsioRunner

    text = read_text_input(script, "script")
    cmds = parse_script(text, Path(script).name)
    holder: dict = {}

    def hook(wr: WorkRecord) -> None:
        pricer.add(wr, 0)
        labels.append(wr.op)
        sample(len(labels) - 1, holder["runner"].dax)

    runner = XfsioRunner(
        vname,
        device_bytes=nblocks * PAGE_SIZE,
        filename=Path(script).name,
        record_hook=hook,
        invariants=runner_invariants(),
        stripe_unit_bytes=stripe_unit_bytes,
    )
    holder["runner"] = runner
    res = runner.run(cmds)
    drv = _Driver(runner.dax)
    drv.errors = {"failed_checks": len(res.failed)} if res.failed else {}
    drv.first_errors = [c.describe(Path(script).name)[:200] for c in res.failed[:FIRST_ERRORS]]
    return runner.dax, drv


def make_stream(scenario, seed_sequence: np.random.SeedSequence | None = None):
    """Generate the scenario's operation stream (seeded by ``seed_sequence``)."""
    from workloads.registry import generate

    ss = seed_sequence if seed_sequence is not None else np.random.SeedSequence(scenario.run.seed)
    return generate(scenario.workload, np.random.default_rng(ss), cpus=int(scenario.run.cpus))


def page_table(mm) -> pd.DataFrame:
    """Final share-degree histogram plus residue and phantom counts, tidy."""
    hist = np.asarray(mm.share_histogram(), dtype=np.int64)
    deg = np.nonzero(hist)[0]
    rows = [{"kind": "shared", "share_degree": int(d), "pages": int(hist[d])} for d in deg if d > 0]
    rows.append({"kind": "residue", "share_degree": 0, "pages": int(mm.residue_pages())})
    rows.append({"kind": "phantom", "share_degree": 0, "pages": int(mm.phantom_pages())})
    return pd.DataFrame(rows, columns=["kind", "share_degree", "pages"]).astype(
        {"share_degree": np.int64, "pages": np.int64}
    )


def summarise(
    scenario,
    vname: str,
    profile_name: str,
    dfs,
    faults: int,
    latency: pd.DataFrame,
    mf: pd.DataFrame,
    errors: dict,
) -> dict:
    """One row of scalar metrics, with the flattened scenario keys first.

    The design and the hardware profile the run used are ``variant`` and ``profile`` (the
    columns every other table of the run has), not ``variant.name`` and ``hardware.profile``:
    those scenario keys may name a design file or an alias rather than the design itself.
    """
    mm = dfs.mm
    flat = scenario.flat()
    skip = ("variant.name", "hardware.profile")
    row: dict[str, Any] = {
        k: v for k, v in flat.items() if k not in skip and (np.isscalar(v) or v is None)
    }
    row["variant"] = vname
    row["profile"] = profile_name
    n = len(latency)
    row["operations"] = n
    c = mm.counters
    for k in (
        "share_inc",
        "share_dec",
        "flag_set",
        "flag_clear",
        "owner_overwritten",
        "pages_reset",
        "associate_calls",
        "disassociate_calls",
        "page_updates",
    ):
        row[k] = int(c.get(k, 0))
    churn = (
        row["share_inc"]
        + row["share_dec"]
        + row["flag_set"]
        + row["flag_clear"]
        + row["owner_overwritten"]
    )
    row["churn"] = churn
    row["churn_per_op"] = churn / n if n else 0.0
    row["warnings_raw"] = int(sum(mm.warnings.values()))
    row["warnings_latched"] = int(sum(mm.warnings_latched.values()))
    for site in _all_warning_sites():  # every site of every design, so sweep rows line up
        row[f"warn_{site}"] = int(mm.warnings.get(site, 0))
    for site, v in mm.warnings.items():
        row[f"warn_{site}"] = int(v)
    row["residue_pages"] = int(mm.residue_pages())
    row["phantom_pages"] = int(mm.phantom_pages())
    hist = np.asarray(mm.share_histogram())
    row["share_degree_max"] = int(np.nonzero(hist)[0].max()) if hist.any() else 0
    st = dfs.summary()
    for k in (
        "cow_pages",
        "cow_bytes",
        "blocks_allocated",
        "blocks_freed",
        "pmd_faults",
        "pte_faults",
        "pmd_fallbacks",
        "pmd_sigbus",
        "live_entries",
    ):
        if k in st:
            row[k] = int(st[k])
    row["op_errors"] = int(sum(errors.values()))
    cyc = latency["latency_cycles"].to_numpy()
    row["cycles_total"] = int(cyc.sum())
    row["ns_total"] = float(latency["latency_ns"].sum())
    fault_ops = latency["op"].isin(["read_fault", "write_fault", "cow_fault"]).to_numpy()
    nf = int(faults)
    row["faults"] = nf  # page faults priced; cycles_per_fault divides by it
    row["cycles_per_fault"] = float(cyc[fault_ops].sum() / nf) if nf else 0.0
    cow = (latency["op"] == "cow_fault").to_numpy()
    row["cycles_per_cow_fault_op"] = float(cyc[cow].mean()) if cow.any() else 0.0
    row["mf_poisoned_pages"] = len(mf)
    row["mf_owners_true"] = int(mf["owners_true"].sum()) if len(mf) else 0
    row["mf_owners_rmap"] = int(mf["owners_rmap"].sum()) if len(mf) else 0
    row["mf_owners_page_mapping"] = int(mf["owners_page_mapping"].sum()) if len(mf) else 0
    return row


def struct_page_summary(sp_cycles: np.ndarray, sp_lines: int, operations: int) -> dict:
    """The struct-page share of the cost: cycles and line accesses, in total and per operation.

    Parameters
    ----------
    sp_cycles : ndarray of shape (operations,)
        int64 cycles each operation spent on struct-page lines
        (``CostModel.price_parts(...)["struct_page"]``).
    sp_lines : int
        struct-page line accesses (read or written) the work records name.
    operations : int
        Operations of the run.

    Returns
    -------
    dict
        ``struct_page_cycles``, ``struct_page_cycles_per_op``, ``struct_page_lines``,
        ``struct_page_lines_per_op``.
    """
    total = int(np.asarray(sp_cycles, dtype=np.int64).sum())
    return {
        "struct_page_cycles": total,
        "struct_page_cycles_per_op": total / operations if operations else 0.0,
        "struct_page_lines": int(sp_lines),
        "struct_page_lines_per_op": sp_lines / operations if operations else 0.0,
    }


def _all_warning_sites() -> list[str]:
    from sim.memmap import VARIANTS

    sites: dict[str, None] = {}
    for v in VARIANTS.values():
        sites.update(dict.fromkeys(v.warning_sites))
    return list(sites)


def write_results(
    out_dir: Path,
    outputs: list[RunOutput],
    scenario,
    *,
    seed: int | dict | None,
    plots: bool = True,
    extra_manifest: dict | None = None,
    overwrite: bool = False,
) -> None:
    """Write a results directory atomically from one or more runs (``compare`` gives many).

    ``out_dir`` must be absent or empty, or with ``overwrite`` an earlier results directory
    (only daxsim's files in it are replaced); anything else is an InputError.
    """
    from sim.results import atomic_output_dir, atomic_write_json, manifest, write_parquet

    out_dir = Path(out_dir)
    with atomic_output_dir(out_dir, overwrite=overwrite) as tmp:
        summary = pd.DataFrame([o.summary for o in outputs])
        write_parquet(summary, tmp / "summary.parquet")
        write_parquet(
            pd.concat([o.timeseries for o in outputs], ignore_index=True),
            tmp / "timeseries.parquet",
        )
        write_parquet(
            pd.concat([o.latency for o in outputs], ignore_index=True), tmp / "latency.parquet"
        )
        write_parquet(
            pd.concat([o.pages for o in outputs], ignore_index=True), tmp / "pages.parquet"
        )
        write_parquet(
            pd.concat([o.memory_failure for o in outputs], ignore_index=True),
            tmp / "memory_failure.parquet",
        )
        atomic_write_json(
            tmp / "manifest.json",
            manifest(
                scenario=scenario.to_dict(),
                seed=seed,
                extra={
                    "scenario_name": scenario.name,
                    "variants": [o.summary["variant"] for o in outputs],
                    **(extra_manifest or {}),
                },
            ),
        )
        if plots:
            from sim.report import write_plots

            write_plots(tmp)


def run_scenario(
    scenario,
    out_dir: Path,
    *,
    seed_sequence: np.random.SeedSequence | None = None,
    quiet: bool = True,
) -> dict:
    """Run one scenario and write its results directory at ``out_dir`` (atomically).

    Raises :class:`OperationsFailed` (and writes nothing) when operations failed that the
    scenario does not allow (``run.allow_errors``).

    Returns the summary row (scalar metrics), as ``daxsim sweep`` collects them.
    """
    out = simulate(scenario, seed_sequence=seed_sequence, progress=not quiet)
    report = error_report([out])
    if report is not None and not scenario.run.allow_errors:
        # A sweep's run whose operations failed is a failed run (its row says why), not a
        # row of numbers describing another workload; run.allow_errors keeps it.
        raise OperationsFailed(f"operations failed (run.allow_errors = false): {report}")
    seed = scenario.run.seed
    extra = {}
    if seed_sequence is not None:  # a sweep's run: the seed is (entropy, spawn_key), not run.seed
        seed = {"entropy": seed_sequence.entropy, "spawn_key": list(seed_sequence.spawn_key)}
        extra = {"seed_sequence": seed}
    write_results(
        Path(out_dir),
        [out],
        scenario,
        seed=seed,
        plots=bool(scenario.output.plots),
        extra_manifest=extra,
        overwrite=True,  # a sweep's run directory: the sweep removed any incomplete one
    )
    return out.summary


class OperationsFailed(RuntimeError):
    """A run's operations failed and its scenario does not allow it (``run.allow_errors``)."""


def error_report(outputs: list[RunOutput]) -> str | None:
    """What failed in ``outputs`` that the scenario did not allow, or None.

    The operations of a run fail (ENOSPC, EINVAL, ...) when the workload asks for what the
    filesystem refuses; unless the scenario says so (``run.allow_errors``) that is a run that
    went wrong, and its numbers describe a different workload. The text gives, per run, the
    count by errno and the first few failures.
    """
    lines = []
    for o in outputs:
        n = int(sum(o.errors.values()))
        if not n:
            continue
        ops = int(o.summary.get("operations", 0))
        by = ", ".join(f"{k} {v:,}" for k, v in sorted(o.errors.items(), key=lambda kv: -kv[1]))
        who = f"{o.summary.get('variant')} on {o.summary.get('profile')}"
        lines.append(f"{who}: {n:,} of {ops:,} operations failed ({by}); first:")
        lines += [f"  {e}" for e in o.first_errors]
    return "\n".join(lines) if lines else None


def resolve_variant(spec):
    """A design by name, alias, ``module:Class`` or ``path/file.py:Class``.

    Returns the canonical name for a built-in design and the :class:`~sim.memmap.Variant`
    object for a user's design (InputError when it cannot be found or loaded).
    """
    from sim.memmap import VARIANTS, get_variant

    v = get_variant(spec)
    return v.name if v.name in VARIANTS and type(v) is type(VARIANTS[v.name]) else v


def check_variant(spec: str) -> str:
    """A design's canonical name if it is registered, else ``spec`` itself once it loads.

    ``spec`` is anything :func:`sim.memmap.get_variant` accepts; the string returned names the
    design for :func:`simulate` (InputError when it cannot be found or loaded).
    """
    from sim.memmap import VARIANTS, get_variant

    v = get_variant(spec)
    return v.name if v.name in VARIANTS and type(v) is type(VARIANTS[v.name]) else str(spec)
