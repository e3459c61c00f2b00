"""Real kernels in the loop: Debian kernels under QEMU with emulated pmem run xfs_io scripts
next to the simulator (``daxsim kernel``).

Modules: :mod:`sim.kernel.cache` (the cache and :class:`~sim.kernel.cache.KernelInfo`),
:mod:`sim.kernel.fetch` (apt, with a configuration of its own), :mod:`sim.kernel.initramfs`
(the guest's base image), :mod:`sim.kernel.guest` (the QEMU guest and ``run_job``),
:mod:`sim.kernel.splat` (WARN/BUG splats and fs_dax tracepoints).
"""
