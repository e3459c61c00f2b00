"""Workload generators: each makes one operation stream (see :mod:`workloads.ops`)."""
