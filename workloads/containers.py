"""``containers``: layered images shared by many containers through clone ranges."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.constants import DEFAULT_CPU_FREQ_GHZ
from workloads.access import StreamBuilder
from workloads.ops import OP_BYTES, PAGE_SIZE, Op, make_ops, op_counts
from workloads.params import ParamError, param
from workloads.registry import register
from workloads.vm_clones import clone_farm, write_image

__all__ = ["ContainersParams", "generate"]


@dataclass(frozen=True)
class ContainersParams:
    """Parameters of ``containers``."""

    layers: int = param(8, "image layers (files written once)", unit="count", min=1, max=100_000)
    layer_size: int = param(
        8 << 20, "size of each layer", kind="size", min=PAGE_SIZE, align=PAGE_SIZE
    )
    images: int = param(
        4,
        "container images, each a file built from FICLONERANGE pieces of layers",
        unit="count",
        min=1,
        max=100_000,
    )
    layers_per_image: int = param(
        3, "distinct layers stacked in each image", unit="count", min=1, max=100_000
    )
    containers: int = param(
        32,
        "containers; each clones an image (FICLONE) and maps it",
        unit="count",
        min=1,
        max=1_000_000,
    )
    accesses_per_container: int = param(
        2048, "page accesses per container (Zipf)", unit="count", min=0, max=100_000_000
    )
    zipf_s: float = param(1.1, "Zipf exponent of page popularity", min=0.0, max=10.0)
    write_fraction: float = param(
        0.05, "fraction of accesses that are stores (CoW)", min=0.0, max=1.0
    )
    pmd_fraction: float = param(
        0.0,
        "fraction of containers whose mapping is huge-aligned (PMD faults in whole 2 MiB regions)",
        min=0.0,
        max=1.0,
    )
    stop_fraction: float = param(
        0.5, "fraction of containers that stop (munmap, unlink)", min=0.0, max=1.0
    )
    start_interval_ns: int = param(
        50_000, "simulated time between container starts", kind="duration", min=0
    )
    access_interval_ns: int = param(
        1_000, "mean time between accesses of one container", kind="duration", min=0
    )

    def check(self) -> None:
        """Cross-field rule: an image cannot stack more layers than exist."""
        if self.layers_per_image > self.layers:
            raise ParamError(
                f"{self.layers_per_image} exceeds layers = {self.layers}; allowed: <= layers",
                key="layers_per_image",
            )

    def written_bytes(self) -> tuple[int, str]:
        """Bytes the workload writes before it shares anything, which the device must hold
        at once, and the keys they come from."""
        return self.layers * self.layer_size, "workload.layers x workload.layer_size"

    def memory_bytes(self) -> tuple[int, str]:
        """Most memory a run of these parameters takes (its operations at ``OP_BYTES`` each,
        and the images x layers draws that pick each image's layers), and the keys it grows
        with."""
        ops = self.containers * (self.accesses_per_container + 8)
        keys = "workload.containers x workload.accesses_per_container, workload.images x layers"
        return ops * OP_BYTES + self.images * self.layers * 16, keys


@register(
    "containers",
    ContainersParams,
    "layered images built by clone ranges, cloned by "
    "many containers: mostly reads, some CoW writes",
)
def generate(
    params: ContainersParams, rng, *, cpus: int = 1, cycles_per_ns: float = DEFAULT_CPU_FREQ_GHZ
):
    """Generate the ``containers`` stream.

    Files ``0 .. layers-1`` are layers (pid 0 writes them at t = 0, 1 MiB chunks); files
    ``layers .. layers+images-1`` are images: each FICLONERANGEs ``layers_per_image``
    distinct random layers to consecutive offsets. Then container ``i`` (pid ``1 + i``,
    file ``layers + images + i``) clones a uniformly chosen image and faults a Zipf working
    set, as in ``vm-clones``.

    Returns
    -------
    stream : ndarray of dtype OP_DTYPE
    meta : dict
        ``file_names``, ``image_layers`` (layer ids per image), ``container_image``,
        ``stopped``, ``counts``.
    """
    rng = np.random.default_rng(rng)
    b = StreamBuilder()
    p = params
    for layer in range(p.layers):
        write_image(
            b,
            file=layer,
            size_bytes=p.layer_size,
            chunk_bytes=min(1 << 20, p.layer_size),
            pattern0=layer * 17,
            t_ns=0.0,
        )
    image_layers = np.argsort(rng.random((p.images, p.layers)), axis=1)[:, : p.layers_per_image]
    img_files = p.layers + np.arange(p.images, dtype=np.int64)
    b.add(make_ops(Op.CREATE, file=img_files), 0.5)
    dst = np.repeat(img_files, p.layers_per_image)
    off = np.tile(np.arange(p.layers_per_image, dtype=np.int64) * p.layer_size, p.images)
    b.add(
        make_ops(
            Op.CLONE,
            file=dst,
            src=image_layers.ravel(),
            offset_bytes=off,
            length_bytes=p.layer_size,
        ),
        0.5,
    )
    choice = rng.integers(0, p.images, size=p.containers)
    info = clone_farm(
        b,
        rng,
        sources=img_files[choice],
        first_file=p.layers + p.images,
        image_size=p.layers_per_image * p.layer_size,
        accesses=p.accesses_per_container,
        zipf_s=p.zipf_s,
        write_fraction=p.write_fraction,
        pmd_fraction=p.pmd_fraction,
        stop_fraction=p.stop_fraction,
        start_interval_ns=p.start_interval_ns,
        access_interval_ns=p.access_interval_ns,
        t0_ns=1.0,
        cpus=cpus,
    )
    stream = b.build(cycles_per_ns)
    names = (
        [f"layer{i:03d}" for i in range(p.layers)]
        + [f"image{i:03d}" for i in range(p.images)]
        + [f"ctr{i:05d}.rootfs" for i in range(p.containers)]
    )
    return stream, {
        "file_names": names,
        "image_layers": image_layers.tolist(),
        "container_image": choice.tolist(),
        "stopped": info["stopped"],
        "counts": op_counts(stream),
    }
