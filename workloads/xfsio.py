"""``xfsio``: an xfs_io script (shared/conformance format) as a workload."""

from __future__ import annotations

from dataclasses import dataclass

from sim.constants import DEFAULT_CPU_FREQ_GHZ
from workloads.ops import empty_stream
from workloads.params import param
from workloads.registry import register

__all__ = ["XfsioParams", "generate"]


@dataclass(frozen=True)
class XfsioParams:
    """Parameters of ``xfsio``."""

    script: str = param(
        "scripts/clone-cow.xfsio",
        "xfs_io script to run (format of "
        "shared/conformance/xfstests/README.md), relative to the scenario file",
        kind="path",
    )


@register("xfsio", XfsioParams, "any xfs_io script as a workload, run by the xfs_io runner")
def generate(
    params: XfsioParams, rng, *, cpus: int = 1, cycles_per_ns: float = DEFAULT_CPU_FREQ_GHZ
):
    """Return an empty stream and ``meta["xfsio_script"]``: the driver runs the script.

    The script is executed by the project's xfs_io runner (``daxsim xfsio``), which knows
    every command and expectation of the format; ``workloads.ops.from_xfsio_lines`` parses
    only the subset that ``to_xfsio_lines`` writes.

    Returns
    -------
    stream : ndarray of dtype OP_DTYPE, empty
    meta : dict
        ``xfsio_script`` (the path as given), ``file_names`` (empty).
    """
    return empty_stream(0), {"xfsio_script": params.script, "file_names": []}
