"""Real kernels in the loop: Debian kernels under QEMU with emulated pmem run xfs_io scripts
next to the simulator (``daxsim kernel``)."""
