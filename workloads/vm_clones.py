"""``vm-clones``: a farm of VMs booted from reflinked copies of one golden image."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.constants import DEFAULT_CPU_FREQ_GHZ
from workloads.access import StreamBuilder, fault_rows, instance_faults
from workloads.ops import (
    ARG_PMD,
    ARG_WHOLE_FILE,
    ARG_WRITABLE,
    OP_BYTES,
    PAGE_SIZE,
    Op,
    make_ops,
    op_counts,
)
from workloads.params import param
from workloads.registry import register

__all__ = ["VmClonesParams", "generate", "clone_farm", "write_image"]


@dataclass(frozen=True)
class VmClonesParams:
    """Parameters of ``vm-clones``."""

    clones: int = param(
        16,
        "number of VMs, each booted from its own reflink clone of the golden image",
        unit="count",
        min=1,
        max=1_000_000,
    )
    image_size: int = param(
        64 << 20,
        "size of the golden image, written once",
        kind="size",
        min=PAGE_SIZE,
        align=PAGE_SIZE,
    )
    accesses_per_vm: int = param(
        4096,
        "page accesses each VM makes (Zipf over the image "
        "pages); only first touches and first writes fault",
        unit="count",
        min=0,
        max=100_000_000,
    )
    zipf_s: float = param(1.0, "Zipf exponent of page popularity (0 = uniform)", min=0.0, max=10.0)
    write_fraction: float = param(
        0.2,
        "fraction of accesses that are stores (a store to a shared page is a CoW write fault)",
        min=0.0,
        max=1.0,
    )
    pmd_fraction: float = param(
        0.0,
        "fraction of VMs whose mapping is huge-aligned: their "
        "faults in whole 2 MiB regions are PMD faults",
        min=0.0,
        max=1.0,
    )
    stop_fraction: float = param(
        0.5,
        "fraction of VMs that stop after their accesses: munmap, then their clone is unlinked",
        min=0.0,
        max=1.0,
    )
    start_interval_ns: int = param(
        200_000, "simulated time between two VM starts", kind="duration", min=0
    )
    access_interval_ns: int = param(
        1_000,
        "mean simulated time between two accesses of one VM (exponential gaps)",
        kind="duration",
        min=0,
    )
    image_chunk: int = param(
        2 << 20,
        "the golden image is written in chunks of this size, each with its own pattern byte",
        kind="size",
        min=PAGE_SIZE,
        align=PAGE_SIZE,
    )

    def written_bytes(self) -> tuple[int, str]:
        """Bytes the workload writes before it shares anything, which the device must hold
        at once, and the keys they come from."""
        return self.image_size, "workload.image_size"

    def memory_bytes(self) -> tuple[int, str]:
        """Most memory a run of these parameters takes (its operations at ``OP_BYTES`` each),
        and the keys it grows with."""
        return self.clones * (
            self.accesses_per_vm + 8
        ) * OP_BYTES, "workload.clones x workload.accesses_per_vm"


def write_image(
    b: StreamBuilder,
    *,
    file: int,
    size_bytes: int,
    chunk_bytes: int,
    pattern0: int,
    t_ns: float,
    pid: int = 0,
    cpu: int = 0,
) -> None:
    """CREATE ``file`` and fill it with WRITEs of ``chunk_bytes`` (pattern bytes cycle)."""
    b.op(Op.CREATE, t_ns, pid=pid, cpu=cpu, file=file)
    off = np.arange(0, size_bytes, chunk_bytes, dtype=np.int64)
    ln = np.minimum(chunk_bytes, size_bytes - off)
    pat = (pattern0 + np.arange(len(off), dtype=np.int64)) % 255 + 1
    b.add(
        make_ops(Op.WRITE, pid=pid, cpu=cpu, file=file, offset_bytes=off, length_bytes=ln, arg=pat),
        t_ns,
    )
    b.op(Op.FSYNC, t_ns, pid=pid, cpu=cpu, file=file)


def clone_farm(
    b: StreamBuilder,
    rng: np.random.Generator,
    *,
    sources: np.ndarray,
    first_file: int,
    image_size: int,
    accesses: int,
    zipf_s: float,
    write_fraction: float,
    pmd_fraction: float,
    stop_fraction: float,
    start_interval_ns: float,
    access_interval_ns: float,
    t0_ns: float,
    cpus: int,
    first_pid: int = 1,
) -> dict:
    """Instances that each clone ``sources[i]``, map the clone and fault a Zipf working set.

    Instance ``i`` is pid ``first_pid + i`` on cpu ``i % cpus`` and owns file
    ``first_file + i``. It starts at ``t0_ns + i * start_interval_ns``: CREATE, FICLONE of
    its source, MMAP (writable; huge-aligned with probability ``pmd_fraction``); then its
    faults (see
    :func:`workloads.access.instance_faults`), spaced by exponential gaps; a stopping
    instance then does MUNMAP and UNLINK.

    Returns
    -------
    dict
        ``stopped`` (list of instance numbers), ``end_ns`` (time of the last row).
    """
    k = len(sources)
    npages = -(-image_size // PAGE_SIZE)
    pid = first_pid + np.arange(k, dtype=np.int64)
    cpu = np.arange(k, dtype=np.int64) % cpus
    files = first_file + np.arange(k, dtype=np.int64)
    start = t0_ns + np.arange(k, dtype=np.float64) * start_interval_ns
    f = instance_faults(
        rng,
        n_instances=k,
        image_pages=npages,
        accesses=accesses,
        zipf_s=zipf_s,
        write_fraction=write_fraction,
        pmd_fraction=pmd_fraction,
    )
    mmap_arg = ARG_WRITABLE | np.where(f["huge"], ARG_PMD, 0)
    for op, extra in (
        (Op.CREATE, {}),
        (Op.CLONE, {"src": sources, "arg": ARG_WHOLE_FILE}),
        (Op.MMAP, {"length_bytes": npages * PAGE_SIZE, "arg": mmap_arg}),
    ):
        b.add(make_ops(op, pid=pid, cpu=cpu, file=files, **extra), start)
    gaps = (
        rng.exponential(max(access_interval_ns, 0.0), size=(k, accesses))
        if accesses
        else np.zeros((k, 0))
    )
    t_access = start[:, None] + np.cumsum(gaps, axis=1) + 1.0
    inst = f["instance"]
    b.add(
        fault_rows(
            pid=pid[inst],
            cpu=cpu[inst],
            file=files[inst],
            offset_bytes=f["offset_bytes"],
            length_bytes=f["length_bytes"],
            write=f["write"],
            pmd=f["pmd"],
            pattern=(inst + 1) % 255 + 1,
        ),
        t_access[inst, f["step"]],
    )
    n_stop = int(round(stop_fraction * k))
    stopped = (
        np.sort(rng.choice(k, size=n_stop, replace=False)) if n_stop else np.zeros(0, np.int64)
    )
    t_end = (t_access[:, -1] if accesses else start) + 2.0
    for op in (Op.MUNMAP, Op.UNLINK):
        b.add(make_ops(op, pid=pid[stopped], cpu=cpu[stopped], file=files[stopped]), t_end[stopped])
    return {"stopped": stopped.tolist(), "end_ns": float(t_end.max(initial=t0_ns))}


@register(
    "vm-clones",
    VmClonesParams,
    "a golden VM image reflinked K times; each VM faults a "
    "Zipf working set, CoW on writes; VMs start and stop over time",
)
def generate(
    params: VmClonesParams, rng, *, cpus: int = 1, cycles_per_ns: float = DEFAULT_CPU_FREQ_GHZ
):
    """Generate the ``vm-clones`` stream.

    File 0 is the golden image (pid 0, cpu 0, written at t = 0 in ``image_chunk`` pieces);
    file ``1 + i`` is VM ``i``'s clone (pid ``1 + i``). See :func:`clone_farm`.

    Parameters
    ----------
    params : VmClonesParams
    rng : numpy.random.Generator or seed
    cpus : int
        CPUs to spread the VMs over.
    cycles_per_ns : float
        Core clock, to convert issue times to cycles.

    Returns
    -------
    stream : ndarray of dtype OP_DTYPE
    meta : dict
        ``file_names``, ``stopped`` (VM numbers that stop), ``counts``.
    """
    rng = np.random.default_rng(rng)
    b = StreamBuilder()
    write_image(
        b,
        file=0,
        size_bytes=params.image_size,
        chunk_bytes=params.image_chunk,
        pattern0=0,
        t_ns=0.0,
    )
    info = clone_farm(
        b,
        rng,
        sources=np.zeros(params.clones, np.int64),
        first_file=1,
        image_size=params.image_size,
        accesses=params.accesses_per_vm,
        zipf_s=params.zipf_s,
        write_fraction=params.write_fraction,
        pmd_fraction=params.pmd_fraction,
        stop_fraction=params.stop_fraction,
        start_interval_ns=params.start_interval_ns,
        access_interval_ns=params.access_interval_ns,
        t0_ns=1.0,
        cpus=cpus,
    )
    stream = b.build(cycles_per_ns)
    names = ["golden.img"] + [f"vm{i:04d}.img" for i in range(params.clones)]
    return stream, {"file_names": names, "stopped": info["stopped"], "counts": op_counts(stream)}
