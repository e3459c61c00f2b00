"""Test configuration shared by the whole suite.

Hypothesis profiles: ``ci`` is derandomized (the examples follow from each test's source, so
a red run reproduces on any machine) and keeps no example database; ``dev`` is Hypothesis's
default (random, with the local database that replays past failures first).  ``CI=true``
selects ``ci``; ``HYPOTHESIS_PROFILE`` names a profile explicitly.  A test's own
``@settings`` still sets its example count and deadline.
"""

import os

import pytest
from hypothesis import settings

# Explicit rather than Hypothesis's own ``ci`` profile (6.135+), which it loads by itself when
# CI is set: the suite behaves the same with the oldest Hypothesis pyproject.toml allows.
_DEFAULT = settings.get_profile("default")
settings.register_profile("ci", _DEFAULT, derandomize=True, database=None, print_blob=True)
settings.register_profile("dev", _DEFAULT)


def hypothesis_profile(environ) -> str:
    """The Hypothesis profile the environment ``environ`` selects."""
    if environ.get("HYPOTHESIS_PROFILE"):
        return environ["HYPOTHESIS_PROFILE"]
    return "ci" if environ.get("CI", "").lower() in ("true", "1") else "dev"


settings.load_profile(hypothesis_profile(os.environ))


def pytest_collection_modifyitems(config, items):
    """Keep every test of the shared kernel boots on one pytest-xdist worker.

    ``make test`` runs two workers (``-n 2 --dist loadgroup``); ``kernel_run`` boots each
    kernel once per worker session, so its tests share one group and one worker, and the
    boots (a single-threaded QEMU each) overlap with the rest of the suite on the other core.
    """
    group = pytest.mark.xdist_group("kernel-boots")
    for item in items:
        if "kernel_run" in getattr(item, "fixturenames", ()):
            item.add_marker(group)


@pytest.fixture(scope="session")
def kernel_run():
    """``kernel_run(series)``: the KernelRun of tests/kernel_suite.py's scripts on that kernel,
    booted once per session (fetched into the cache first when missing)."""
    from kernel_suite import run_suite

    runs = {}

    def get(name: str):
        if name not in runs:
            runs[name] = run_suite(name)
        return runs[name]

    return get
