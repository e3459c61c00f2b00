"""Writing results so that an interrupted run leaves nothing half-written.

Everything goes to a temporary sibling first and is renamed into place: a file with
``os.replace``, a results directory by renaming a ``.<name>.daxsim.tmp-<pid>-<start>``
directory once every file in it is complete (:mod:`sim.results.outputs`).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.results.outputs import output_dir, output_file

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
    output_file(path, lambda fh: fh.write(data))


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
    """Yield a temporary directory that becomes the results directory ``final`` at the end.

    An exception (or KeyboardInterrupt) inside the block removes the temporary directory, so
    no partial results directory is ever visible under ``final``. ``final`` must be absent,
    empty, or (with ``overwrite``) an earlier results directory, of which only daxsim's files
    are replaced (:func:`sim.results.outputs.output_dir`).
    """
    with output_dir(final, kind="results", overwrite=overwrite) as tmp:
        yield tmp


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
