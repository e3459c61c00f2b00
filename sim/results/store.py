"""Writing results so that an interrupted run leaves nothing half-written.

Everything goes to a temporary sibling first and is renamed into place: a file with
``os.replace``, a results directory by renaming a ``.<name>.tmp-<pid>`` directory once every
file in it is complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = [
    "atomic_output_dir",
    "atomic_write_bytes",
    "atomic_write_json",
    "git_revision",
    "manifest",
    "write_parquet",
]


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    atomic_write_bytes(
        path, (json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n").encode()
    )


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):  # numpy scalars
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_parquet(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write a tidy table as Parquet (pyarrow), atomically.

    Unsigned integer columns are refused: results use int64 (see conventions.md).
    """
    for name, dtype in df.dtypes.items():
        if pd.api.types.is_unsigned_integer_dtype(dtype):
            raise TypeError(f"column {name!r} is unsigned ({dtype}); use int64")
    table = pa.Table.from_pandas(df, preserve_index=False)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    atomic_write_bytes(path, sink.getvalue().to_pybytes())


@contextlib.contextmanager
def atomic_output_dir(final: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory that becomes ``final`` only when the block completes.

    An exception (or KeyboardInterrupt) inside the block removes the temporary directory, so
    no partial results directory is ever visible under ``final``.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists() and not overwrite:
        raise FileExistsError(f"{final} already exists")
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)


def git_revision(cwd: str | os.PathLike | None = None) -> str | None:
    """The git revision of the source tree (with ``-dirty``), or None outside a checkout."""
    here = Path(cwd) if cwd else Path(__file__).resolve().parents[2]
    try:
        rev = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return rev or None


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def manifest(*, scenario: dict, seed: int | dict | None, extra: dict | None = None) -> dict:
    """The ``manifest.json`` content: versions, git revision, seed and the full scenario."""
    out = {
        "daxsim_version": _version("daxsim"),
        "git_revision": git_revision(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": {
            p: _version(p) for p in ("numpy", "numba", "pandas", "pyarrow", "simpy", "matplotlib")
        },
        "seed": seed,
        "scenario": scenario,
    }
    if extra:
        out.update(extra)
    return out
