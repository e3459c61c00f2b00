"""numba's on-disk cache of the compiled kernels from an installed copy of the package whose
directories cannot be written (a system-wide, non-editable install), and the notice the
first compilation prints (:func:`sim.jit.compile_notice`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from sim.jit import compile_notice, njit

ROOT = Path(__file__).resolve().parents[1]

# A kernel of the package, compiled through sim.jit.njit(cache=True), in a fresh process.
_PROG = """
import numpy as np
from sim.jit import compile_notice
from sim.memmap import scan
with compile_notice("probe"):
    scan.scan_flag(np.zeros(4, np.int64), np.zeros(4, np.int64))
st = scan._flag_max.stats
print(st.cache_path, sum(st.cache_hits.values()))
"""


def _read_only_install(dst: Path) -> Path:
    """A copy of the ``sim`` package under ``dst`` where no ``__pycache__`` can be made (each
    is a plain file), as numba sees a package directory it may not write to."""
    site = dst / "site"
    shutil.copytree(ROOT / "sim", site / "sim", ignore=shutil.ignore_patterns("__pycache__"))
    for d in [site / "sim", *(p for p in (site / "sim").rglob("*") if p.is_dir())]:
        (d / "__pycache__").write_bytes(b"")
    return site


def _run(site: Path, home: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env.update(PYTHONPATH=str(site), XDG_CACHE_HOME=str(home), PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run(
        [sys.executable, "-c", _PROG], cwd=cwd, env=env, capture_output=True, text=True
    )


def test_cache_of_a_read_only_install_is_user_wide_and_reused(tmp_path):
    site = _read_only_install(tmp_path)
    home = tmp_path / "cache"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    first = _run(site, home, cwd)
    assert first.returncode == 0, first.stderr
    assert "probe: compiling with numba" in first.stderr
    path, hits = first.stdout.split()
    assert Path(path).is_relative_to(home / "numba")
    assert int(hits) == 0
    assert list(Path(path).glob("scan._flag_max-*.nbi"))
    assert not [p for p in site.rglob("*.nb*")]

    second = _run(site, home, cwd)
    assert second.returncode == 0, second.stderr
    assert "compiling" not in second.stderr
    assert second.stdout.split() == [path, "1"]  # loaded from the user-wide cache


def test_plain_args_dispatcher_compiles_once_per_type():
    @njit
    def callee(x, flag):
        return x + 1 if flag else x

    @njit
    def caller(a):
        return callee(a, True) + callee(0, False) + callee(a, False) + callee(7, True)

    assert caller(3) == 4 + 0 + 3 + 8
    assert len(callee.signatures) == 1  # not one per literal 0, 7, True, False


def test_compile_notice_counts_but_does_not_announce_what_no_cache_keeps(capsys):
    """A function numba compiles in every process (no ``cache=True``, e.g. a StructRef's
    constructor) is no "first use": it is timed, not announced."""

    @njit
    def twice(x):
        return 2 * x

    with compile_notice("probe") as compiling:
        assert twice(np.int64(4)) == 8
    assert capsys.readouterr().err == ""
    assert compiling.seconds > 0
