"""daxsim: a cycle-level simulator of Linux fsdax on persistent memory with reflinked files.

Layers, bottom first (README.md "Layout"; tests/test_layering.py holds the imports to it):
``sim.work`` (work records), ``workloads``, ``sim.fs`` (reflink filesystem), ``sim.memmap``
(struct pages), ``sim.dax`` (DAX xarray, faults, memory failure), ``sim.timing`` (media and
pricing), ``sim.engine`` (SimPy), ``sim.results``; the commands on top.  Configuration
(scenario, hardware profiles, designs) and ``sim.constants`` are importable from anywhere.
"""

__version__ = "0.1.0"
