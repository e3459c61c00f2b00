"""A hunt reproducer replays in a fresh ``daxsim xfsio`` process (no in-process registration)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

DESIGN = Path(__file__).resolve().parents[1] / "scenarios" / "designs" / "folio_share_reset_ext.py"

# The shrunk reproducer `daxsim hunt --variant folio-share --seed 0` wrote: a read fault then a
# CoW write fault on a shared extent at a non-zero index leaves an order-0 phantom Shared(2).
PHANTOM = """@mkfs size=33554432
open -f f2
pwrite -S 0x61 0 12288
open -f f1
reflink f2 0 0 0
open f2
mmap -rw 8192 4096
mread 8192 1
mwrite -S 0x62 8192 1
@expect_invariant association_truth violated
"""


@pytest.mark.parametrize(
    "variant, rc", [("folio-share", 0), ("v6.15", 0), ("page-share", 1), ("folio-share-reset", 1)]
)
def test_phantom_reproducer_replays_only_under_folio_share(tmp_path, variant, rc):
    f = tmp_path / "phantom.xfsio"
    f.write_text(PHANTOM)
    p = subprocess.run(
        [sys.executable, "-m", "sim", "xfsio", str(f), "--variant", variant],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == rc, p.stdout + p.stderr
    if rc:
        assert "phantom.xfsio:10: expect_invariant failed" in p.stdout


def test_user_design_from_a_file_replays(tmp_path):
    f = tmp_path / "phantom.xfsio"
    f.write_text(PHANTOM.replace("violated", "holds"))
    p = subprocess.run(
        [sys.executable, "-m", "sim", "xfsio", str(f), "--variant", f"{DESIGN}:FolioShareResetExt"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stdout + p.stderr
