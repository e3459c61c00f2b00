"""``dedupe``: files with duplicate blocks, a dedupe pass that shares them, then overwrites."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.constants import DEFAULT_CPU_FREQ_GHZ
from workloads.access import StreamBuilder, fault_rows
from workloads.ops import ARG_WRITABLE, OP_BYTES, PAGE_SIZE, Op, make_ops, op_counts
from workloads.params import param
from workloads.registry import register

__all__ = ["DedupeParams", "generate"]


@dataclass(frozen=True)
class DedupeParams:
    """Parameters of ``dedupe``."""

    files: int = param(8, "files to deduplicate", unit="count", min=1, max=100_000)
    file_size: int = param(
        4 << 20, "size of each file", kind="size", min=PAGE_SIZE, align=PAGE_SIZE
    )
    distinct_blocks: int = param(
        16,
        "distinct block contents (each block is one pattern byte "
        "drawn from this many); fewer means more duplicates",
        unit="count",
        min=1,
        max=255,
    )
    read_fraction: float = param(
        0.5,
        "fraction of each file's pages read-faulted through a mapping after the dedupe pass",
        min=0.0,
        max=1.0,
    )
    overwrite_fraction: float = param(
        0.1,
        "fraction of each file's pages overwritten after the dedupe pass (CoW of shared blocks)",
        min=0.0,
        max=1.0,
    )
    overwrite_via: str = param(
        "mmap",
        "how overwrites are issued: write faults through the mapping, or pwrite",
        choices=("mmap", "pwrite"),
    )
    op_interval_ns: int = param(1_000, "simulated time between operations", kind="duration", min=0)

    def written_bytes(self) -> tuple[int, str]:
        """Bytes the workload writes before it shares anything, which the device must hold
        at once, and the keys they come from."""
        return self.files * self.file_size, "workload.files x workload.file_size"

    def memory_bytes(self) -> tuple[int, str]:
        """Most memory a run takes: per file page a write, a dedupe, a read fault and an
        overwrite at most, ``OP_BYTES`` each; and the keys it grows with."""
        ops = self.files * (-(-self.file_size // PAGE_SIZE) * 4 + 8)
        return ops * OP_BYTES, "workload.files x workload.file_size"


def _runs(mask_break: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start index and length of runs, where ``mask_break[i]`` starts a new run."""
    starts = np.flatnonzero(mask_break)
    lengths = np.diff(np.append(starts, len(mask_break)))
    return starts, lengths


@register(
    "dedupe",
    DedupeParams,
    "files with duplicate blocks; a FIDEDUPERANGE pass shares them; then overwrites",
)
def generate(
    params: DedupeParams, rng, *, cpus: int = 1, cycles_per_ns: float = DEFAULT_CPU_FREQ_GHZ
):
    """Generate the ``dedupe`` stream.

    Phase 1 (pid 0): every file is written block by block (runs of equal pattern coalesced
    into one WRITE); block contents are pattern bytes ``1..distinct_blocks``. Phase 2: for
    each block whose content occurred earlier (in (file, block) order), a FIDEDUPERANGE
    against that first occurrence; runs where both sides are consecutive are coalesced.
    Every dedupe is between identical data, so each one shares blocks. Phase 3: file ``i``
    is mapped writable by pid ``1 + i`` (cpu ``i % cpus``), which read-faults
    ``read_fraction`` of its pages and overwrites ``overwrite_fraction`` of them (write
    faults or pwrite), with new pattern bytes.

    Returns
    -------
    stream : ndarray of dtype OP_DTYPE
    meta : dict
        ``file_names``, ``dedupe_calls``, ``duplicate_blocks``, ``counts``.
    """
    rng = np.random.default_rng(rng)
    p = params
    nb = p.file_size // PAGE_SIZE
    nf = p.files
    dt = float(p.op_interval_ns)
    b = StreamBuilder()
    t = 0.0
    files = np.arange(nf, dtype=np.int64)
    b.add(make_ops(Op.CREATE, file=files), t)
    content = rng.integers(1, p.distinct_blocks + 1, size=(nf, nb)).astype(np.int64)
    flat = content.ravel()
    fid = np.repeat(files, nb)
    blk = np.tile(np.arange(nb, dtype=np.int64), nf)
    brk = np.ones(len(flat), bool)
    brk[1:] = (flat[1:] != flat[:-1]) | (blk[1:] == 0)
    st, ln = _runs(brk)
    tw = t + dt * (1 + np.arange(len(st)))
    b.add(
        make_ops(
            Op.WRITE,
            file=fid[st],
            offset_bytes=blk[st] * PAGE_SIZE,
            length_bytes=ln * PAGE_SIZE,
            arg=flat[st],
        ),
        tw,
    )
    t = float(tw[-1]) + dt
    b.add(make_ops(Op.FSYNC, file=files), t)
    # First occurrence of each content value, in (file, block) order.
    _, first = np.unique(flat, return_index=True)
    canon = np.empty(p.distinct_blocks + 1, np.int64)
    canon[flat[first]] = first
    src = canon[flat]
    dup = np.flatnonzero(src != np.arange(len(flat)))
    if len(dup):
        d_src = src[dup]
        brk = np.ones(len(dup), bool)
        brk[1:] = (
            (dup[1:] != dup[:-1] + 1)
            | (blk[dup[1:]] == 0)
            | (d_src[1:] != d_src[:-1] + 1)
            | (blk[d_src[1:]] == 0)
        )
        st, ln = _runs(brk)
        td = t + dt * (1 + np.arange(len(st)))
        b.add(
            make_ops(
                Op.DEDUPE,
                file=fid[dup[st]],
                offset_bytes=blk[dup[st]] * PAGE_SIZE,
                src=fid[d_src[st]],
                src_offset_bytes=blk[d_src[st]] * PAGE_SIZE,
                length_bytes=ln * PAGE_SIZE,
            ),
            td,
        )
        t = float(td[-1]) + dt
        n_calls = len(st)
    else:
        n_calls = 0
    # Phase 3: per-file readers/writers.
    pid = 1 + files
    cpu = files % cpus
    b.add(
        make_ops(Op.MMAP, pid=pid, cpu=cpu, file=files, length_bytes=p.file_size, arg=ARG_WRITABLE),
        t,
    )
    nr = int(round(p.read_fraction * nb))
    nw = int(round(p.overwrite_fraction * nb))
    order = np.argsort(rng.random((nf, nb)), axis=1)
    rpages = order[:, :nr]
    wpages = np.argsort(rng.random((nf, nb)), axis=1)[:, :nw]
    tr = t + dt * (1 + np.arange(nr))
    b.add(
        fault_rows(
            pid=np.repeat(pid, nr),
            cpu=np.repeat(cpu, nr),
            file=np.repeat(files, nr),
            offset_bytes=rpages.ravel() * PAGE_SIZE,
            length_bytes=PAGE_SIZE,
            write=False,
            pmd=False,
            pattern=0,
        ),
        np.tile(tr, nf),
    )
    t = t + dt * (nr + 1)
    tw = t + dt * (1 + np.arange(nw))
    newpat = (
        p.distinct_blocks + 1 + rng.integers(0, 255 - p.distinct_blocks, size=nf * nw)
        if p.distinct_blocks < 255
        else rng.integers(1, 256, size=nf * nw)
    )
    wf, wcpu, wpid = np.repeat(files, nw), np.repeat(cpu, nw), np.repeat(pid, nw)
    if p.overwrite_via == "mmap":
        b.add(
            fault_rows(
                pid=wpid,
                cpu=wcpu,
                file=wf,
                offset_bytes=wpages.ravel() * PAGE_SIZE,
                length_bytes=PAGE_SIZE,
                write=True,
                pmd=False,
                pattern=newpat,
            ),
            np.tile(tw, nf),
        )
    else:
        b.add(
            make_ops(
                Op.WRITE,
                pid=wpid,
                cpu=wcpu,
                file=wf,
                offset_bytes=wpages.ravel() * PAGE_SIZE,
                length_bytes=PAGE_SIZE,
                arg=newpat,
            ),
            np.tile(tw, nf),
        )
    t = t + dt * (nw + 1)
    b.add(make_ops(Op.FSYNC, pid=pid, cpu=cpu, file=files), t)
    stream = b.build(cycles_per_ns)
    return stream, {
        "file_names": [f"data{i:04d}" for i in range(nf)],
        "dedupe_calls": n_calls,
        "duplicate_blocks": int(len(dup)),
        "counts": op_counts(stream),
    }
