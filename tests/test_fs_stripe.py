"""Stripe-unit alignment of the filesystem (``mkfs.xfs -d su=``), as the real-kernel rig
formats it (``su=2m,sw=1``): where XFS puts a file's extents, hence whether a PMD fault can map
them. The rules, the same in 6.1 (``xfs_bmap_btalloc()``), 6.12 and 7.3
(``xfs_bmap_btalloc_best_length()`` / ``xfs_bmap_btalloc_at_eof()``), are checked here on the
reference filesystem; ``scenarios/scripts/kernel/stripe-*.xfsio`` check them on the kernels and
``tests/test_fs_twin.py`` the compiled twin against this one.
"""

from __future__ import annotations

import pytest

from sim.cli import main
from sim.errors import InputError
from sim.fs import FileSystem, FsError
from sim.fs.filesystem import INODE_CHUNK_BLOCKS, metadata_blocks
from sim.xfsio.runner import RIG_STRIPE_UNIT_BYTES, XfsioRunner, run_script

PAGE = 4096
SU = RIG_STRIPE_UNIT_BYTES // PAGE  # 512 blocks
META = SU + INODE_CHUNK_BLOCKS


def _ext(fs, ino):
    """``[(fblock, pblock, nblocks)]`` of the mapped extents."""
    return [(e.fblock, e.pblock, e.nblocks) for e in fs.bmap(ino, 0, 1 << 20) if e.pblock >= 0]


def _fs(nblocks=8 * SU):
    return FileSystem(nblocks, stripe_unit_blocks=SU)


def test_mkfs_keeps_headers_and_root_inode_chunk_before_the_data():
    """xfs_ialloc_calc_rootino() puts the root inode chunk on the first stripe-unit boundary
    after the AG headers: the first data block follows the chunk, unaligned."""
    fs = _fs()
    assert fs.free_blocks() == 8 * SU - META
    f = fs.create("f")
    fs.pwrite(f, 0, PAGE, 0x61)
    assert _ext(fs, f) == [(0, META, 1)]
    assert META % SU != 0
    fs.check_invariants()
    assert FileSystem(64).free_blocks() == 64  # no stripe unit: no metadata modelled
    with pytest.raises(FsError, match="EINVAL"):
        FileSystem(META, stripe_unit_blocks=SU)
    assert metadata_blocks(0) == 0


def test_a_write_of_a_stripe_unit_at_offset_0_is_aligned():
    """aeof at file offset 0 (xfs_bmap_isaeof() on an empty fork, length >= m_dalign):
    args.alignment = stripe_align; the first aligned free block is the second boundary."""
    fs = _fs()
    f = fs.create("f")
    fs.pwrite(f, 0, 2 * SU * PAGE, 0x61)
    assert _ext(fs, f) == [(0, 2 * SU, 2 * SU)]


def test_buffered_writes_shorter_than_the_stripe_unit_are_never_aligned():
    """xfs_io writes in -b buffers, each write(2) allocating on its own: a 4 KiB write is not
    aeof (length < m_dalign), the next ones go right after the previous extent."""
    fs = _fs()
    f = fs.create("f")
    fs.pwrite(f, 0, SU * PAGE, 0x61, buffer_bytes=PAGE)
    assert _ext(fs, f) == [(0, META, SU)]
    g = fs.create("g")
    fs.pwrite(g, 0, SU * PAGE, 0x62, buffer_bytes=SU * PAGE)  # one write(2): aligned
    ((_, p, n),) = _ext(fs, g)
    assert p % SU == 0 and n == SU
    h = fs.create("h")
    fs.pwrite(h, 0, SU * PAGE, 0x61)  # no buffer: one write(2), as before
    assert _ext(fs, h)[0][1] % SU == 0


def test_an_append_goes_right_after_the_previous_extent_else_aligned():
    """Not at offset 0: first the exact block after the previous extent
    (xfs_bmap_adjacent(), XFS_ALLOCTYPE_THIS_BNO / xfs_alloc_vextent_exact_bno()), then an
    aligned extent when that block is taken."""
    fs = _fs()
    a = fs.create("a")
    fs.pwrite(a, 0, SU * PAGE, 0x61)
    ((_, pa, _),) = _ext(fs, a)
    fs.pwrite(a, SU * PAGE, SU * PAGE, 0x61)
    assert _ext(fs, a) == [(0, pa, 2 * SU)]
    b = fs.create("b")
    fs.pwrite(b, 0, SU * PAGE, 0x62)
    ((_, pb, _),) = _ext(fs, b)
    assert pb == pa + 2 * SU  # the next aligned free block
    fs.pwrite(a, 2 * SU * PAGE, SU * PAGE, 0x61)  # the block after a's extent is b's
    (_, p0, n0), (f1, p1, n1) = _ext(fs, a)
    assert (f1, n1) == (2 * SU, SU) and p1 % SU == 0 and p1 not in range(pb, pb + SU)


def test_an_append_past_a_hole_keeps_the_gap():
    """xfs_bmap_adjacent() adds the gap between the previous extent and the offset to the
    exact block: 8 KiB at 0, then a stripe unit at 4 MiB lands 4 MiB - 8 KiB further."""
    fs = _fs()
    f = fs.create("f")
    fs.pwrite(f, 0, 2 * PAGE, 0x61)
    fs.pwrite(f, 2 * SU * PAGE, SU * PAGE, 0x62)
    assert _ext(fs, f) == [(0, META, 2), (2 * SU, META + 2 * SU, SU)]


def test_a_first_extent_past_offset_0_is_aligned():
    """No extent before (7.3: xfs_bmap_adjacent() leaves ap->eof false; 6.1/6.12 try the
    inode's own block first, always taken by its chunk): aligned."""
    fs = _fs()
    f = fs.create("f")
    fs.pwrite(f, SU * PAGE, SU * PAGE, 0x61)
    ((fb, p, n),) = _ext(fs, f)
    assert (fb, n) == (SU, SU) and p % SU == 0


def test_fragmented_free_space_takes_aligned_pieces():
    """No aligned free extent holds the request: minlen = blen - stripe_align
    (xfs_bmap_btalloc(): blen, the longest free extent, within maxlen + alignment) takes the
    longest aligned piece; the rest, not at offset 0, aligned again."""
    fs = FileSystem(8 * SU, stripe_unit_blocks=SU)  # six aligned stripe units after META
    files = []
    for i in range(6):
        f = fs.create(f"f{i}")
        fs.pwrite(f, 0, SU * PAGE, 0x30 + i)
        files.append(f)
    assert fs.free_blocks() == SU - INODE_CHUNK_BLOCKS  # the unaligned head is left
    fs.unlink("f1")
    fs.unlink("f3")
    g = fs.create("g")
    fs.pwrite(g, 0, 2 * SU * PAGE, 0x67)
    ext = _ext(fs, g)
    assert [n for _, _, n in ext] == [SU, SU]
    assert all(p % SU == 0 for _, p, _ in ext)
    fs.check_invariants()


def test_no_aligned_space_falls_back_to_unaligned():
    """Aligned allocation failed (no aligned piece of minlen = min(blen, n) blocks, blen not
    above a stripe unit): args.alignment = 0 (6.1) / 1 (6.3+), near the goal."""
    su = 16
    fs = FileSystem(metadata_blocks(su) + su + 1, stripe_unit_blocks=su)
    pad = fs.create("pad")
    fs.pwrite(pad, 0, PAGE, 0x61)  # the first free block: 16 unaligned blocks are left
    assert fs.free_blocks() == su
    f = fs.create("f")
    fs.fallocate(f, 0, su * PAGE)
    assert _ext(fs, f) == [(0, metadata_blocks(su) + 1, su)]

    # blen = 17 > su: minlen = blen - su = 1, so the aligned piece (9 blocks) is taken
    fs = FileSystem(metadata_blocks(su) + su + 1, stripe_unit_blocks=su)
    f = fs.create("f")
    fs.fallocate(f, 0, su * PAGE)
    ext = _ext(fs, f)
    assert ext[0] == (0, 2 * su, 9) and sum(n for _, _, n in ext) == su


def test_fallocate_and_write_faults_at_eof_are_aligned_holes_inside_are_not():
    """xfs_alloc_file_space() and a PMD write fault (xfs_direct_write_iomap_begin) allocate
    through xfs_bmapi_write() too: aligned at EOF; a hole before the last extent is not aeof."""
    fs = _fs()
    f = fs.create("f")
    fs.truncate(f, 3 * SU * PAGE)
    fs.alloc_blocks(f, SU, SU)  # a PMD write fault at 2 MiB
    ((_, p, _),) = _ext(fs, f)
    assert p % SU == 0
    pad = fs.create("pad")
    fs.pwrite(pad, 0, (SU - INODE_CHUNK_BLOCKS) * PAGE, 0x61)  # fills META..2 * SU
    small = fs.create("small")
    fs.pwrite(small, 0, 9 * PAGE, 0x61)  # right after f's aligned extent
    S, L = (list(x) for x in fs.free.lists()[:2])
    first_fit = next(s for s, n in zip(S, L, strict=True) if n >= SU)
    assert first_fit % SU != 0
    fs.alloc_blocks(f, 0, SU)  # a hole before the last extent: not aeof, first fit
    assert (0, first_fit, SU) in _ext(fs, f)
    g = fs.create("g")
    fs.fallocate(g, 0, SU * PAGE)
    assert _ext(fs, g)[0][1] % SU == 0


def test_runner_writes_in_buffers_on_a_stripe_unit_filesystem():
    """``pwrite`` without -b writes 4 KiB buffers (xfs_io's default), so a 2 MiB file written
    that way is not PMD-mappable on the rig (README reproducer ``readme-3``); ``-b 2m`` is."""
    text = "@mkfs size=32m\nopen -f f\npwrite -S 0x61 {b}0 2m\nmmap -r 0 2m\nmread 0 1\n"
    for b, pmd in (("", 0), ("-b 2m ", 1)):
        r = run_script(text.format(b=b), "t", stripe_unit_bytes=RIG_STRIPE_UNIT_BYTES)
        assert r.result.ok
        assert r.dax.stats["pmd_faults"] == pmd
    r = run_script(text.format(b=""), "t")  # no stripe unit: one write(2), block 0
    assert r.dax.stats["pmd_faults"] == 1


@pytest.mark.parametrize("bad", [-4096, 3000, 4097])
def test_bad_stripe_units_are_input_errors(bad, capsys):
    with pytest.raises(InputError, match="stripe-unit"):
        XfsioRunner(stripe_unit_bytes=bad)
    assert main(["xfsio", "--stripe-unit", str(bad), "-c", "open -f a"]) == 2
    assert "--stripe-unit" in capsys.readouterr().err


def test_devices_too_small_for_the_stripe_unit_are_input_errors(capsys):
    assert main(["xfsio", "--stripe-unit", "2m", "-c", "@mkfs size=1m"]) == 2
    assert "-c:1: @mkfs" in capsys.readouterr().err
    with pytest.raises(InputError, match="pwrite -b 0"):
        run_script("open -f f\npwrite -b 0 0 4k\n", "t", stripe_unit_bytes=RIG_STRIPE_UNIT_BYTES)


def test_a_cow_of_a_stripe_unit_is_aligned():
    """A CoW of at least a stripe unit allocates in the empty CoW fork
    (xfs_reflink_allocate_cow -> xfs_bmapi_write(XFS_BMAPI_COWFORK)): xfs_bmap_isaeof() on
    it sets aeof, so the new blocks are aligned whatever the shared ones were (a PMD write
    fault on a shared extent can then map a PMD: generic/140 on 7.3)."""
    fs = _fs()
    a = fs.create("a")
    fs.pwrite(a, 0, SU * PAGE, 0x61, buffer_bytes=PAGE)  # unaligned
    b = fs.create("b")
    fs.clone(b, a, 0, 0, SU * PAGE)
    fs.cow_blocks(b, 0, SU)  # a PMD write fault
    ((_, p, n),) = _ext(fs, b)
    assert n == SU and p % SU == 0
    c = fs.create("c")
    fs.clone(c, a, 0, 0, SU * PAGE)
    fs.pwrite(c, 0, SU * PAGE, 0x63)  # write(2) of the whole shared range
    ((_, p, n),) = _ext(fs, c)
    assert n == SU and p % SU == 0
    d = fs.create("d")
    fs.clone(d, a, 0, 0, SU * PAGE)
    fs.cow_blocks(d, 0, 16)  # shorter than a stripe unit: first fit, after the chunk
    assert _ext(fs, d)[0][1] % SU != 0
    fs.check_invariants()


def test_scenario_stripe_unit_is_checked(tmp_path, capsys):
    """``device.stripe_unit``: a multiple of the block, leaving data blocks (exit 2 naming
    the key, nothing written)."""
    out = tmp_path / "out"
    base = ["run", "--quiet", "--out", str(out), "--set", "run.operations=10"]
    assert main([*base, "--set", "device.stripe_unit=3000"]) == 2
    assert "device.stripe_unit" in capsys.readouterr().err
    small = ["--set", "device.size=32MiB", "--set", "device.stripe_unit=32MiB"]
    assert main([*base, *small]) == 2
    assert "device.stripe_unit" in capsys.readouterr().err
    assert not out.exists()


def test_a_buffered_write_that_runs_out_of_space_keeps_its_earlier_buffers():
    """xfs_io stops at the write(2) that fails (ENOSPC) and the ones before it stay, as on
    the kernel; the DAX layer sees their effects: the zero-page entry of a hole they filled is
    invalidated (IOMAP_F_NEW), not left to map the zero page over the written block."""
    from sim.dax.fsdax import DAX_ZERO_PAGE

    text = (
        "@mkfs size=8m\nopen -f f\ntruncate 8m\nmmap -r 0 8m\nmread 1m 1\n"
        "pwrite -S 0x61 0 8m\n@expect_errno ENOSPC\n"
    )
    r = run_script(text, "t", "folio-share-reset", stripe_unit_bytes=RIG_STRIPE_UNIT_BYTES)
    assert r.result.ok, [c.describe() for c in r.result.failed]
    fs = r.dax.fs
    ino = fs.lookup("f")
    assert fs.free_blocks() == 0  # every buffer that fitted was written
    n = 2048 - META
    assert fs.pread(ino, n * PAGE - 1, 2) == b"\x61\x00"
    old = r.dax._space(ino).xa.lookup(256)  # noqa: SLF001
    assert old is None or not old[1] & DAX_ZERO_PAGE
