"""Where a sweep keeps things, and which runs are finished.

::

    <out>/sweep.json                 the expanded plan (written first, atomically)
    <out>/sweep.lock                 held (flock) while a sweep runs in this directory
    <out>/runs/<i:05d>-<slug>/       one finished run: written by the run function, atomically
    <out>/runs/<i:05d>-<slug>.failed.json   the error of a failed run (retried by --resume)
    <out>/sweep.parquet              one row per finished run, assembled from runs/
    <out>/plots/*.png                written at the end of a complete sweep

A run is *done* when its directory exists and holds ``summary.parquet`` (the run function
writes a temporary ``runs/.<name>.tmp-<pid>`` and renames it, so a directory that exists is
complete). Hidden ``runs/.*tmp*`` entries are leftovers of runs that were stopped; they are
removed after an interruption and when a sweep is resumed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from sim.errors import InputError

__all__ = ["SweepLayout", "DONE_FILE"]

#: The file whose presence in a run directory marks it finished.
DONE_FILE = "summary.parquet"


class SweepLayout:
    """Paths of a sweep output directory."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    @property
    def plan_file(self) -> Path:
        """The sweep's plan (``sweep.json``)."""
        return self.root / "sweep.json"

    @property
    def table_file(self) -> Path:
        """The sweep's table of results (``sweep.parquet``)."""
        return self.root / "sweep.parquet"

    @property
    def runs_dir(self) -> Path:
        """The directory of the runs' directories."""
        return self.root / "runs"

    @property
    def plots_dir(self) -> Path:
        """The directory of the sweep's plots."""
        return self.root / "plots"

    @property
    def lock_file(self) -> Path:
        """The lock held while the sweep executes."""
        return self.root / "sweep.lock"

    def run_dir(self, dirname: str) -> Path:
        """The directory of run ``dirname``."""
        return self.runs_dir / dirname

    def failed_file(self, dirname: str) -> Path:
        """The failure record of run ``dirname``."""
        return self.runs_dir / f"{dirname}.failed.json"

    def is_done(self, dirname: str) -> bool:
        """Whether run ``dirname`` finished (its done marker exists)."""
        return (self.run_dir(dirname) / DONE_FILE).is_file()

    def temp_entries(self) -> list[Path]:
        """Hidden temporary files and directories left in ``runs/`` by stopped runs."""
        if not self.runs_dir.is_dir():
            return []
        return sorted(
            p for p in self.runs_dir.iterdir() if p.name.startswith(".") and ".tmp" in p.name
        )

    def remove_temp_entries(self) -> int:
        """Remove what :meth:`temp_entries` lists; returns how many were removed."""
        entries = self.temp_entries()
        for p in entries:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
        return len(entries)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold an exclusive lock on the directory, so two sweeps never share it.

        The lock is released by the kernel if the process dies (even by SIGKILL).
        """
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise InputError(
                    "another sweep is running in this directory", where=str(self.root)
                ) from None
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            yield
        finally:
            os.close(fd)
