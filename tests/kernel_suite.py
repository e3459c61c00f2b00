"""The scripts every real kernel of the test suite runs, in one boot per kernel.

Booting a kernel under TCG costs 20-40 s, so the whole suite boots each kernel once: every test
that needs a kernel's behaviour adds its scripts to :data:`KERNEL_SUITE` and reads its results
from the session fixture ``kernel_run`` (tests/conftest.py), looked up by script path.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scenarios" / "scripts" / "kernel"

#: The observations of real-kernels.md as scripts (scenarios/scripts/kernel).
RIG_SCRIPTS = [
    SCRIPTS / "two-readers.xfsio",
    SCRIPTS / "folio-order.xfsio",
    SCRIPTS / "refault-punch.xfsio",
    SCRIPTS / "refault-reflink.xfsio",
    SCRIPTS / "residue-visible.xfsio",
]

#: kernel series -> scripts run in its one boot.
KERNEL_SUITE: dict[str, list[Path]] = {
    "6.1": list(RIG_SCRIPTS),
    "7.3": list(RIG_SCRIPTS),
}


def ensure_kernel(name: str):
    """The cached kernel of series ``name``, fetched (with its source files) when missing."""
    from sim.errors import InputError
    from sim.kernel.cache import load_kernel
    from sim.kernel.fetch import fetch_kernel, fetch_source

    try:
        kernel = load_kernel(name)
    except InputError:
        kernel = fetch_kernel(name, log=lambda s: None)
    fetch_source(kernel, log=lambda s: None)
    return kernel


def run_suite(name: str):
    """Boot kernel ``name`` once and run :data:`KERNEL_SUITE` ``[name]`` through the agent.

    Returns
    -------
    sim.kernel.run.KernelRun
        With ``by_path``: script path (str) -> its ScriptResult.
    """
    from sim.kernel.run import run_scripts

    kernel = ensure_kernel(name)
    paths = [str(p) for p in KERNEL_SUITE[name]]
    run = run_scripts(kernel, paths)
    run.by_path = {s.script: s for s in run.scripts}
    return run
