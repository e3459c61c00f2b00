"""``backup``: a tree of files backed up with reflink copies, then the source tree modified."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.constants import DEFAULT_CPU_FREQ_GHZ
from workloads.access import StreamBuilder, fault_rows
from workloads.ops import ARG_WHOLE_FILE, OP_BYTES, PAGE_SIZE, Op, op_counts
from workloads.params import ParamError, param
from workloads.registry import register

__all__ = ["BackupParams", "generate"]


@dataclass(frozen=True)
class BackupParams:
    """Parameters of ``backup``."""

    files: int = param(64, "files in the source tree", unit="count", min=1, max=1_000_000)
    file_size_min: int = param(
        4 << 10,
        "smallest source file (any byte count; partial EOF blocks are cloned too)",
        kind="size",
        min=1,
    )
    file_size_max: int = param(1 << 20, "largest source file", kind="size", min=1)
    rounds: int = param(
        3,
        "backup rounds: reflink-copy the tree, then modify the source",
        unit="count",
        min=1,
        max=10_000,
    )
    keep_backups: int = param(
        2, "backup generations kept; older ones are unlinked", unit="count", min=1
    )
    modify_fraction: float = param(
        0.2,
        "fraction of source files modified per round (overwrite, append, truncate or punch)",
        min=0.0,
        max=1.0,
    )
    delete_fraction: float = param(
        0.05,
        "fraction of source files deleted and replaced by a new file per round",
        min=0.0,
        max=1.0,
    )
    verify_fraction: float = param(
        0.25,
        "fraction of backup files a verifier maps read-only "
        "and reads completely (read faults on shared blocks)",
        min=0.0,
        max=1.0,
    )
    op_interval_ns: int = param(2_000, "simulated time between operations", kind="duration", min=0)

    def check(self) -> None:
        """Cross-field rule: min <= max."""
        if self.file_size_min > self.file_size_max:
            raise ParamError(
                f"{self.file_size_min} exceeds file_size_max = "
                f"{self.file_size_max}; allowed: <= file_size_max",
                key="file_size_min",
            )

    def written_bytes(self) -> tuple[int, str]:
        """Bytes the workload writes before it shares anything, which the device must hold
        at once, and the keys they come from."""
        return self.files * (
            -(-self.file_size_min // PAGE_SIZE) * PAGE_SIZE
        ), "workload.files x workload.file_size_min"

    def memory_bytes(self) -> tuple[int, str]:
        """Most memory a run takes: per round and file a few calls and a read fault per page
        of the largest file, ``OP_BYTES`` each; and the keys it grows with."""
        ops = self.rounds * self.files * (-(-self.file_size_max // PAGE_SIZE) + 8)
        return ops * OP_BYTES, "workload.rounds x workload.files x workload.file_size_max"


@register(
    "backup",
    BackupParams,
    "a file tree copied with reflink (cp --reflink), then the source tree modified; rounds of that",
)
def generate(
    params: BackupParams, rng, *, cpus: int = 1, cycles_per_ns: float = DEFAULT_CPU_FREQ_GHZ
):
    """Generate the ``backup`` stream.

    pid 0 (cpu 0) owns the source tree and the copies; each round it CREATEs and FICLONEs a
    copy of every live source file, then modifies ``modify_fraction`` of the sources (one of:
    pwrite inside the file, append at EOF, truncate down, punch a block-aligned range) and
    replaces ``delete_fraction`` of them by new files. Generations beyond ``keep_backups``
    are unlinked. A verifier (pid 1, cpu ``1 % cpus``) maps ``verify_fraction`` of each new
    generation's files read-only, read-faults every page and unmaps.

    Returns
    -------
    stream : ndarray of dtype OP_DTYPE
    meta : dict
        ``file_names``, ``generations`` (file ids per backup round), ``counts``.
    """
    rng = np.random.default_rng(rng)
    p = params
    dt = float(p.op_interval_ns)
    b = StreamBuilder()
    clock = [0.0]
    names: list[str] = []
    vcpu = 1 % cpus

    def tick() -> float:
        clock[0] += dt
        return clock[0]

    def new_file(name: str) -> int:
        names.append(name)
        return len(names) - 1

    size: dict[int, int] = {}
    src: list[int] = []

    def create_source(slot: int, gen: int) -> None:
        f = new_file(f"src/f{slot:05d}.v{gen}")
        sz = int(rng.integers(p.file_size_min, p.file_size_max + 1))
        b.op(Op.CREATE, tick(), file=f)
        b.op(Op.WRITE, tick(), file=f, length_bytes=sz, arg=int(rng.integers(1, 256)))
        size[f] = sz
        if slot < len(src):
            src[slot] = f
        else:
            src.append(f)

    for slot in range(p.files):
        create_source(slot, 0)
    generations: list[list[int]] = []
    for r in range(p.rounds):
        gen = []
        for slot, f in enumerate(src):
            c = new_file(f"backup{r:04d}/f{slot:05d}")
            b.op(Op.CREATE, tick(), file=c)
            b.op(Op.CLONE, tick(), file=c, src=f, arg=ARG_WHOLE_FILE)
            size[c] = size[f]
            gen.append(c)
        generations.append(gen)
        nver = int(round(p.verify_fraction * len(gen)))
        for c in sorted(rng.choice(gen, size=nver, replace=False).tolist()):
            if size[c] == 0:
                continue
            b.op(Op.MMAP, tick(), pid=1, cpu=vcpu, file=c, length_bytes=size[c])
            pages = np.arange(-(-size[c] // PAGE_SIZE), dtype=np.int64)
            t0 = tick()
            b.add(
                fault_rows(
                    pid=1,
                    cpu=vcpu,
                    file=c,
                    offset_bytes=pages * PAGE_SIZE,
                    length_bytes=PAGE_SIZE,
                    write=False,
                    pmd=False,
                    pattern=0,
                ),
                t0 + dt * pages / max(len(pages), 1),
            )
            b.op(Op.MUNMAP, tick(), pid=1, cpu=vcpu, file=c)
        if len(generations) > p.keep_backups:
            for c in generations[-p.keep_backups - 1]:
                b.op(Op.UNLINK, tick(), file=c)
        # Modify the source tree.
        for slot, f in enumerate(list(src)):
            u = rng.random()
            if u < p.delete_fraction:
                b.op(Op.UNLINK, tick(), file=f)
                del size[f]
                create_source(slot, r + 1)
                continue
            if u >= p.delete_fraction + p.modify_fraction * (1 - p.delete_fraction):
                continue
            kind = int(rng.integers(0, 4))
            sz = size[f]
            if kind == 0 and sz > 0:  # overwrite inside
                off = int(rng.integers(0, sz))
                ln = int(rng.integers(1, min(64 << 10, sz - off) + 1))
                b.op(
                    Op.WRITE,
                    tick(),
                    file=f,
                    offset_bytes=off,
                    length_bytes=ln,
                    arg=int(rng.integers(1, 256)),
                )
            elif kind == 1 or sz == 0:  # append
                ln = int(rng.integers(1, 64 << 10))
                b.op(
                    Op.WRITE,
                    tick(),
                    file=f,
                    offset_bytes=sz,
                    length_bytes=ln,
                    arg=int(rng.integers(1, 256)),
                )
                size[f] = sz + ln
            elif kind == 2:  # truncate down
                new = int(rng.integers(0, sz))
                b.op(Op.TRUNCATE, tick(), file=f, offset_bytes=new)
                size[f] = new
            else:  # punch a block-aligned range inside
                nblk = -(-sz // PAGE_SIZE)
                first = int(rng.integers(0, nblk))
                cnt = int(rng.integers(1, nblk - first + 1))
                b.op(
                    Op.PUNCH,
                    tick(),
                    file=f,
                    offset_bytes=first * PAGE_SIZE,
                    length_bytes=cnt * PAGE_SIZE,
                )
        for f in src:
            b.op(Op.FSYNC, tick(), file=f)
    stream = b.build(cycles_per_ns)
    return stream, {"file_names": names, "generations": generations, "counts": op_counts(stream)}
