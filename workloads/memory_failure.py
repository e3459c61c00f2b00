"""``memory-failure``: another workload with pmem pages poisoned while they are mapped."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.constants import DEFAULT_CPU_FREQ_GHZ
from workloads.ops import OP_BYTES, PAGE_SIZE, Op, make_ops, op_counts
from workloads.params import param
from workloads.registry import WorkloadSpec, register
from workloads.registry import generate as run_generator
from workloads.vm_clones import VmClonesParams

__all__ = ["MemoryFailureParams", "generate"]

_DEFAULT_BASE = WorkloadSpec(
    "vm-clones", VmClonesParams(clones=8, image_size=16 << 20, accesses_per_vm=2048)
)


@dataclass(frozen=True)
class MemoryFailureParams:
    """Parameters of ``memory-failure``."""

    base: WorkloadSpec = param(
        _DEFAULT_BASE,
        "the wrapped workload: a table with 'generator' and that generator's parameters",
        kind="workload",
    )
    poisons: int = param(
        8,
        "pages poisoned (MADV_HWPOISON through the mapping of a process that just faulted them)",
        unit="count",
        min=0,
        max=10_000_000,
    )

    def written_bytes(self) -> tuple[int, str] | None:
        """What the wrapped workload writes before it shares anything (see its params)."""
        inner = getattr(self.base.params, "written_bytes", None)
        if inner is None:
            return None
        got = inner()
        return None if got is None else (got[0], got[1].replace("workload.", "workload.base."))

    def memory_bytes(self) -> tuple[int, str] | None:
        """Most memory a run takes: the wrapped workload's and the poisons' operations."""
        inner = getattr(self.base.params, "memory_bytes", None)
        got = inner() if inner is not None else None
        if got is None:
            return self.poisons * OP_BYTES, "workload.poisons"
        keys = got[1].replace("workload.", "workload.base.")
        return got[0] + self.poisons * OP_BYTES, f"{keys}, workload.poisons"


@register(
    "memory-failure",
    MemoryFailureParams,
    "any workload with pmem pages poisoned at "
    "random faulted pages; reports the owners each design finds",
)
def generate(
    params: MemoryFailureParams, rng, *, cpus: int = 1, cycles_per_ns: float = DEFAULT_CPU_FREQ_GHZ
):
    """Generate the base workload, then insert POISON rows.

    The base stream is generated from a child seed of ``rng``; ``poisons`` fault rows are
    chosen uniformly without replacement, and right after each one a POISON of one random
    4 KiB page inside that fault's range is inserted, by the same pid on the same cpu at the
    same time (the mapping is known to exist there, so the poison is legal and lands on a
    page that is mapped).

    Returns
    -------
    stream : ndarray of dtype OP_DTYPE
    meta : dict
        The base meta, plus ``base_generator``, ``poison_rows`` (row numbers of the POISON
        rows in the returned stream) and ``counts``.
    """
    rng = np.random.default_rng(rng)
    base_seed, pick_seed = rng.spawn(2)
    base, meta = run_generator(params.base, base_seed, cpus=cpus, cycles_per_ns=cycles_per_ns)
    faults = np.flatnonzero((base["op"] == Op.READ_FAULT) | (base["op"] == Op.WRITE_FAULT))
    n = min(params.poisons, len(faults))
    at = np.sort(pick_seed.choice(faults, size=n, replace=False)) if n else np.zeros(0, np.int64)
    src = base[at]
    pages = np.maximum(src["length_bytes"] // PAGE_SIZE, 1)
    page = (pick_seed.random(n) * pages).astype(np.int64)
    rows = make_ops(
        Op.POISON,
        pid=src["pid"],
        cpu=src["cpu"],
        file=src["file"],
        offset_bytes=src["offset_bytes"] + page * PAGE_SIZE,
        length_bytes=PAGE_SIZE,
        t_cycles=src["t_cycles"],
    )
    stream = np.insert(base, at + 1, rows)
    meta = dict(meta)
    meta.update(
        base_generator=params.base.generator,
        poison_rows=(at + 1 + np.arange(n)).tolist(),
        counts=op_counts(stream),
    )
    return stream, meta
