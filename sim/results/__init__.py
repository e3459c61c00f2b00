"""Results: tidy tables written as Parquet, a manifest, and atomic result directories."""

from sim.results.store import (
    atomic_output_dir,
    atomic_write_bytes,
    atomic_write_json,
    git_revision,
    manifest,
    write_parquet,
)

__all__ = [
    "atomic_output_dir",
    "atomic_write_bytes",
    "atomic_write_json",
    "git_revision",
    "manifest",
    "write_parquet",
]
