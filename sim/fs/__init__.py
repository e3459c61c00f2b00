"""The reflink filesystem: files, extents, refcounts, CoW and exact pattern contents.

Public API::

    from sim.fs import FileSystem, FsError, BLOCK_SIZE, HOLE, UNWRITTEN, WRITTEN, FsChange, Extent

Its compiled twin (numba, the hunt's episodes) is :mod:`sim.fs.compiled`, imported on its own.
"""

from __future__ import annotations

from sim.fs.change import BLOCK_SIZE, HOLE, UNWRITTEN, WRITTEN, Extent, FsChange, FsError
from sim.fs.filesystem import DEDUPE_MAX_BYTES, MAX_FILE_SIZE, FileSystem, Inode

__all__ = [
    "BLOCK_SIZE",
    "DEDUPE_MAX_BYTES",
    "HOLE",
    "MAX_FILE_SIZE",
    "UNWRITTEN",
    "WRITTEN",
    "Extent",
    "FileSystem",
    "FsChange",
    "FsError",
    "Inode",
]
