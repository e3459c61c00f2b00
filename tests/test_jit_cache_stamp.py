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

_PROG = "from pkgx import uses; print(uses.site())"


def _run(site: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env.update(PYTHONPATH=f"{site}{os.pathsep}{ROOT}", PYTHONDONTWRITEBYTECODE="1")
    out = subprocess.run(
        [sys.executable, "-c", _PROG], cwd=site, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.split()[0]


def test_a_change_to_another_module_of_the_package_recompiles(tmp_path):
    pkg = tmp_path / "pkgx"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "uses.py").write_text(_USES)
    (pkg / "consts.py").write_text("SITE = 7\n")
    assert _run(tmp_path) == "7"
    assert list((pkg / "__pycache__").glob("uses.site-*.nbi"))  # it was cached
    assert _run(tmp_path) == "7"  # loaded from the cache
    # uses.py is untouched: numba's own stamp (that file's hash) would load SITE = 7
    (pkg / "consts.py").write_text("SITE = 8\n")
    assert _run(tmp_path) == "8"


def test_the_cache_is_reused_while_the_package_is_unchanged(tmp_path):
    pkg = tmp_path / "pkgx"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "uses.py").write_text(_USES)
    (pkg / "consts.py").write_text("SITE = 3\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env.update(PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}", PYTHONDONTWRITEBYTECODE="1")
    prog = "from pkgx import uses; uses.site(); print(sum(uses.site.stats.cache_hits.values()))"
    hits = [
        subprocess.run(
            [sys.executable, "-c", prog], cwd=tmp_path, env=env, capture_output=True, text=True
        ).stdout.strip()
        for _ in range(2)
    ]
    assert hits == ["0", "1"]
