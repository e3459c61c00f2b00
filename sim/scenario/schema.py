"""The sections of a scenario: frozen dataclasses whose fields carry help, unit and range.

Sizes (``device.size``, ``workload.image_size``) are int bytes and accept binary-suffixed
strings; durations (``*_ns``) are int ns and accept ``"10ms"``-style strings (see
:mod:`workloads.params`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from sim.constants import BUILTIN_DESIGNS, DEFAULT_SCENARIO_DESIGN, PMD_SIZE
from workloads.params import param

__all__ = [
    "RunConfig",
    "DeviceConfig",
    "HardwareConfig",
    "VariantConfig",
    "OutputConfig",
    "SECTIONS",
    "SECTION_HELP",
    "KNOWN_VARIANTS",
    "KNOWN_PROFILES",
]

#: Fallbacks used only when sim.memmap / sim.timing cannot be imported.
KNOWN_VARIANTS = BUILTIN_DESIGNS
KNOWN_PROFILES = ("optane-gen1", "optane-gen2", "cxl", "dram")


@dataclass(frozen=True)
class RunConfig:
    """``[run]``: how the run is driven."""

    seed: int = param(
        0,
        "entropy of the run's numpy SeedSequence (a sweep's run i uses spawn_key=(i,))",
        min=0,
        max=2**63 - 1,
    )
    mode: str = param(
        "functional",
        "functional: operations applied in order, each priced in "
        "isolation; timing: SimPy engine with CPUs, locks and media queues",
        choices=("functional", "timing"),
    )
    operations: int = param(
        0,
        "stop after this many operations of the stream (0 = the whole stream)",
        unit="count",
        min=0,
    )
    duration_ns: int = param(
        0, 'stop at this simulated time (0 = no limit); accepts "10ms"', kind="duration", min=0
    )
    cpus: int = param(
        4, "simulated CPUs the workload's processes are spread over", unit="count", min=1, max=4096
    )
    allow_errors: bool = param(
        False,
        "the workload means some operations to fail (ENOSPC, EINVAL, ...): report them "
        "without failing the run (otherwise a run with failed operations exits 1)",
    )


@dataclass(frozen=True)
class DeviceConfig:
    """``[device]``: the pmem namespace."""

    size: int = param(
        8 << 30,
        "pmem device size (fs block = page = 4 KiB)",
        kind="size",
        min=16 << 20,
        max=1 << 50,
        align=PMD_SIZE,
    )
    memmap: str = param(
        "pmem",
        "where the struct pages live: pmem (ndctl map=dev, the default "
        "for large namespaces) or dram (map=mem)",
        choices=("dram", "pmem"),
    )
    stripe_unit: int = param(
        0,
        "stripe unit of the filesystem (mkfs.xfs -d su=): allocations at EOF of at least "
        "this size are aligned to it, as XFS does; 0 = none (the real-kernel rig uses 2MiB)",
        kind="size",
        min=0,
        max=1 << 30,
        align=4096,
    )


@dataclass(frozen=True)
class HardwareConfig:
    """``[hardware]``: the hardware profile and per-parameter overrides."""

    profile: str = param("optane-gen1", "hardware profile (daxsim profiles lists them)")
    overrides: dict = dataclasses.field(
        default_factory=dict,
        metadata={
            "help": "profile parameters to override, dotted keys "
            '("media.t_read_ns" = 300); see daxsim show-config --profile',
            "unit": "",
            "kind": "table",
            "min": None,
            "max": None,
            "choices": None,
            "align": None,
        },
    )


@dataclass(frozen=True)
class VariantConfig:
    """``[variant]``: the struct-page association design."""

    name: str = param(
        DEFAULT_SCENARIO_DESIGN,
        "design variant (daxsim variants lists them): "
        "single-owner (<=v5.19), cow-index (v6.0-6.1), page-share (v6.2-6.14), "
        "folio-share (v6.15+), folio-share-reset",
    )


@dataclass(frozen=True)
class OutputConfig:
    """``[output]``: what a run writes besides its tables."""

    plots: bool = param(True, "draw plots/*.png in the results directory")


#: Section name -> dataclass; ``workload`` is built by the generator registry.
SECTIONS: dict[str, type] = {
    "run": RunConfig,
    "device": DeviceConfig,
    "hardware": HardwareConfig,
    "variant": VariantConfig,
    "output": OutputConfig,
}

SECTION_HELP: dict[str, str] = {
    "run": "how the run is driven",
    "device": "the pmem namespace",
    "hardware": "hardware profile and overrides",
    "variant": "struct-page association design",
    "workload": "the workload generator and its parameters",
    "output": "what a run writes",
}
