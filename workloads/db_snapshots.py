"""``db-snapshots``: a database file updated through mmap, reflink-snapshotted every N updates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.constants import DEFAULT_CPU_FREQ_GHZ
from workloads.access import StreamBuilder, fault_rows, first_touch_faults, zipf_ranks
from workloads.ops import ARG_WHOLE_FILE, ARG_WRITABLE, OP_BYTES, PAGE_SIZE, Op, op_counts
from workloads.params import param
from workloads.registry import register
from workloads.vm_clones import write_image

__all__ = ["DbSnapshotsParams", "generate"]


@dataclass(frozen=True)
class DbSnapshotsParams:
    """Parameters of ``db-snapshots``."""

    db_size: int = param(
        64 << 20, "size of the database file", kind="size", min=PAGE_SIZE, align=PAGE_SIZE
    )
    updates: int = param(
        20_000,
        "page updates (stores through the writable mapping)",
        unit="count",
        min=0,
        max=100_000_000,
    )
    snapshot_every: int = param(
        2_000, "a reflink snapshot (FICLONE) after every this many updates", unit="count", min=1
    )
    keep_snapshots: int = param(3, "snapshots kept; older ones are unlinked", unit="count", min=1)
    zipf_s: float = param(0.8, "Zipf exponent of page update popularity", min=0.0, max=10.0)
    snapshot_read_fraction: float = param(
        0.1,
        "fraction of each new snapshot's pages a backup reader maps and read-faults",
        min=0.0,
        max=1.0,
    )
    update_interval_ns: int = param(1_000, "mean time between updates", kind="duration", min=0)

    def written_bytes(self) -> tuple[int, str]:
        """Bytes the workload writes before it shares anything, which the device must hold
        at once, and the keys they come from."""
        return self.db_size, "workload.db_size"

    def memory_bytes(self) -> tuple[int, str]:
        """Most memory a run of these parameters takes (its operations at ``OP_BYTES`` each),
        and the keys it grows with."""
        ops = self.updates + self.db_size // PAGE_SIZE
        return ops * OP_BYTES, "workload.updates, workload.db_size"


@register(
    "db-snapshots",
    DbSnapshotsParams,
    "a database file updated through mmap, reflink "
    "snapshots every N updates, old snapshots deleted",
)
def generate(
    params: DbSnapshotsParams, rng, *, cpus: int = 1, cycles_per_ns: float = DEFAULT_CPU_FREQ_GHZ
):
    """Generate the ``db-snapshots`` stream.

    File 0 is the database (written by pid 0 at t = 0, then mapped writable by pid 1 on cpu
    0). Updates are Zipf-distributed pages; within one epoch of ``snapshot_every`` updates
    only the first store to a page faults (the snapshot write-protects the file, so each
    epoch faults again, CoW on the now-shared blocks). After each epoch: FSYNC, CREATE
    snapshot, FICLONE, and the oldest snapshot beyond ``keep_snapshots`` is unlinked. A
    reader (pid 2, cpu ``1 % cpus``) maps each new snapshot read-only, read-faults a random
    ``snapshot_read_fraction`` of its pages over the next epoch, and unmaps it.

    Returns
    -------
    stream : ndarray of dtype OP_DTYPE
    meta : dict
        ``file_names``, ``snapshots`` (file ids), ``counts``.
    """
    rng = np.random.default_rng(rng)
    p = params
    npages = p.db_size // PAGE_SIZE
    b = StreamBuilder()
    write_image(
        b, file=0, size_bytes=p.db_size, chunk_bytes=min(1 << 20, p.db_size), pattern0=0, t_ns=0.0
    )
    b.op(Op.MMAP, 0.0, pid=1, file=0, length_bytes=p.db_size, arg=ARG_WRITABLE)
    n_epochs = -(-p.updates // p.snapshot_every)
    hot = rng.permutation(npages).astype(np.int64)
    page = hot[zipf_ranks(rng, npages, p.updates, p.zipf_s)]
    epoch = np.arange(p.updates, dtype=np.int64) // p.snapshot_every
    t_upd = 1.0 + np.cumsum(rng.exponential(float(p.update_interval_ns), p.updates))
    idx, _ = first_touch_faults(epoch, page, np.ones(p.updates, bool), npages)
    b.add(
        fault_rows(
            pid=1,
            cpu=0,
            file=0,
            offset_bytes=page[idx] * PAGE_SIZE,
            length_bytes=PAGE_SIZE,
            write=True,
            pmd=False,
            pattern=(epoch[idx] + 1) % 255 + 1,
        ),
        t_upd[idx],
    )
    epoch_end = (
        np.array([t_upd[min((e + 1) * p.snapshot_every, p.updates) - 1] for e in range(n_epochs)])
        + 0.5
    )
    epoch_len = np.diff(np.concatenate([[1.0], epoch_end]))
    snaps = []
    rcpu = 1 % cpus
    for e in range(n_epochs):
        f = 1 + e
        t = float(epoch_end[e])
        snaps.append(f)
        b.op(Op.FSYNC, t, pid=1, file=0)
        b.op(Op.CREATE, t, pid=1, file=f)
        b.op(Op.CLONE, t, pid=1, file=f, src=0, arg=ARG_WHOLE_FILE)
        if len(snaps) > p.keep_snapshots:
            b.op(Op.UNLINK, t, pid=1, file=snaps[-p.keep_snapshots - 1])
        nread = int(round(p.snapshot_read_fraction * npages))
        if nread:
            # Reader: map, fault, unmap strictly inside (t, t + next epoch length).
            span = float(epoch_len[e + 1]) if e + 1 < n_epochs else float(epoch_len[e])
            pages = np.sort(rng.choice(npages, size=nread, replace=False))
            tr = t + span * (0.05 + 0.8 * np.sort(rng.random(nread)))
            b.op(Op.MMAP, t + span * 0.01, pid=2, cpu=rcpu, file=f, length_bytes=p.db_size)
            b.add(
                fault_rows(
                    pid=2,
                    cpu=rcpu,
                    file=f,
                    offset_bytes=rng.permutation(pages) * PAGE_SIZE,
                    length_bytes=PAGE_SIZE,
                    write=False,
                    pmd=False,
                    pattern=0,
                ),
                tr,
            )
            b.op(Op.MUNMAP, t + span * 0.9, pid=2, cpu=rcpu, file=f)
    stream = b.build(cycles_per_ns)
    names = ["db"] + [f"db.snap{e:04d}" for e in range(n_epochs)]
    return stream, {"file_names": names, "snapshots": snaps, "counts": op_counts(stream)}
