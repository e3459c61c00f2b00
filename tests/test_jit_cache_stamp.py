"""numba's on-disk cache is valid only for the sources of the whole package (:mod:`sim.jit`):
a compiled function that reads a constant of another module of its package must not be
loaded from the cache after that module changed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_USES = """
from sim.jit import njit
from pkgx import consts


@njit(cache=True)
def site():
    return consts.SITE
"""

# What the function returns, and how many of its signatures came from the on-disk cache.
_PROG = "from pkgx import uses; print(uses.site(), sum(uses.site.stats.cache_hits.values()))"


def _package(root: Path, site: int) -> Path:
    """A package ``pkgx`` under ``root``: ``uses.site()`` (compiled, cached) returns
    ``consts.SITE``, another module's constant."""
    pkg = root / "pkgx"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "uses.py").write_text(_USES)
    (pkg / "consts.py").write_text(f"SITE = {site}\n")
    return pkg


def _run(root: Path) -> list[str]:
    """``[value, cache hits]`` of ``uses.site()`` in a fresh process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env.update(PYTHONPATH=f"{root}{os.pathsep}{ROOT}", PYTHONDONTWRITEBYTECODE="1")
    out = subprocess.run(
        [sys.executable, "-c", _PROG], cwd=root, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_a_change_to_another_module_of_the_package_recompiles(tmp_path):
    pkg = _package(tmp_path, 7)
    assert _run(tmp_path) == ["7", "0"]
    assert list((pkg / "__pycache__").glob("uses.site-*.nbi"))  # it was cached
    assert _run(tmp_path) == ["7", "1"]  # loaded from the cache
    # uses.py is untouched: numba's own stamp (that file's hash) would load SITE = 7
    (pkg / "consts.py").write_text("SITE = 8\n")
    assert _run(tmp_path) == ["8", "0"]
