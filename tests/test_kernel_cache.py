"""The kernel cache, version strings, design derivation and the initramfs archive format
(no guest is booted here; tests/test_kernel_rig.py boots real kernels)."""

from __future__ import annotations

import struct
import subprocess

import pytest

from sim.cli import main as cli_main
from sim.errors import InputError
from sim.kernel.cache import cache_root, load_kernel, local_kernel
from sim.kernel.initramfs import CpioWriter
from sim.kernel.symbols import (
    bzimage_version_string,
    derive_design,
    design_of_version,
    parse_version_string,
    system_map_symbols,
)


def fake_bzimage(path, version: bytes) -> None:
    """A file with a bzImage setup header whose kernel_version points at ``version``."""
    data = bytearray(0x1000)
    data[0x1F1] = 4
    data[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", data, 0x20E, 0x600 - 0x200)
    data[0x600 : 0x600 + len(version) + 1] = version + b"\0"
    path.write_bytes(bytes(data))


def test_cache_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DAXSIM_CACHE", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
    monkeypatch.delenv("DAXSIM_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_root() == tmp_path / "x" / "daxsim"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    assert cache_root() == tmp_path / "h" / ".cache" / "daxsim"


def test_version_of_a_debian_kernel_is_the_upstream_one(tmp_path):
    img = tmp_path / "vmlinuz"
    fake_bzimage(
        img,
        b"6.1.0-57-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC "
        b"Debian 6.1.192-3 (2026-11-20)",
    )
    assert parse_version_string(bzimage_version_string(img)) == ("6.1.0-57-amd64", "6.1.192")
    # A build of one's own: the release's leading numbers.
    assert parse_version_string("6.15.0-rc1+ (me@box) #3 SMP") == ("6.15.0-rc1+", "6.15.0")
    # /proc/version and a vmlinux banner name the compiler too.
    banner = (
        "Linux version 7.3.4+deb13-amd64 (debian-kernel@lists.debian.org) "
        "(x86_64-linux-gnu-gcc-14 (Debian 14.2.0-19) 14.2.0) #1 SMP PREEMPT_DYNAMIC "
        "Debian 7.3.4-1~bpo13+1 (2026-11-15)"
    )
    assert parse_version_string(banner) == ("7.3.4+deb13-amd64", "7.3.4")
    assert (
        parse_version_string("Linux version 7.3.4+deb13-amd64 (x) Debian 7.3.4-1~bpo13+1")[1]
        == "7.3.4"
    )


def test_a_file_that_is_not_a_bzimage_is_bad_input(tmp_path):
    img = tmp_path / "zImage"
    img.write_bytes(b"MZ" + b"\0" * 0x1000)
    with pytest.raises(InputError, match="not an x86 bzImage"):
        bzimage_version_string(img)
    elf = tmp_path / "vmlinux"
    elf.write_bytes(b"\x7fELF" + b"\0" * 0x1000)
    with pytest.raises(InputError, match="without a 'Linux version' banner"):
        bzimage_version_string(elf)


@pytest.mark.parametrize(
    ("version", "symbols", "design"),
    [
        ("5.19.17", set(), "single-owner"),
        ("6.1.192", set(), "cow-index"),
        ("6.12.117", set(), "page-share"),
        ("6.18.15", set(), "folio-share"),
        ("7.0.13", set(), "folio-share"),
        ("7.3.4", {"dax_folio_reset_order"}, "folio-share-reset"),
        # A 6.1 with the reset backported: the symbol decides, not the version.
        ("6.1.192", {"dax_folio_reset_order"}, "folio-share-reset"),
        ("6.3.0", {"dax_mapping_set_cow"}, "cow-index"),
    ],
)
def test_design_is_derived_from_symbols_then_version(version, symbols, design):
    assert derive_design(version, frozenset(symbols))[0] == design


@pytest.mark.parametrize(
    ("version", "members", "design"),
    [
        # The kernel's BTF outranks its version: a 6.12 with folio->share runs folio-share.
        ("6.12.118", {"folio.share"}, "folio-share"),
        ("6.18.15", {"page.share", "folio.share"}, "folio-share"),
        ("6.12.118", {"page.share"}, "page-share"),
        ("6.1.192", set(), "cow-index"),
        ("5.19.17", set(), "single-owner"),
    ],
)
def test_share_members_of_the_kernels_btf_decide_the_design(version, members, design):
    got, evidence = derive_design(version, frozenset(), frozenset(members))
    assert got == design
    assert "BTF" in evidence


def test_the_designs_kernel_ranges_tile_the_releases_without_gaps():
    """One table maps version to design (``Variant.kernel_range``): consecutive built-in designs
    meet without a gap or an overlap, and only the newest is open-ended."""
    from sim.constants import KERNEL_DESIGNS
    from sim.memmap import VARIANTS

    ranges = [VARIANTS[n].kernel_range for n in KERNEL_DESIGNS]
    assert all(r is not None and r.evidence for r in ranges)
    assert [r.last is None for r in ranges] == [False] * (len(ranges) - 1) + [True]
    for older, newer in zip(ranges, ranges[1:], strict=False):
        major, minor = (int(x) for x in older.last.split("."))
        assert newer.first in (f"{major}.{minor + 1}", f"{major + 1}.0")
    # The boundaries the kernels were found at.
    assert str(VARIANTS["cow-index"].kernel_range) == "6.0\u20136.1"
    assert str(VARIANTS["page-share"].kernel_range) == "6.2\u20136.14"
    assert str(VARIANTS["folio-share"].kernel_range) == "6.15\u20137.0"
    assert str(VARIANTS["folio-share-reset"].kernel_range) == "7.1+"


@pytest.mark.parametrize(
    ("version", "design"),
    [
        ("4.16.1", "single-owner"),
        ("5.19.17", "single-owner"),
        ("6.0", "cow-index"),
        ("6.1.192", "cow-index"),
        ("6.2.0", "page-share"),
        ("6.14.11", "page-share"),
        ("6.15.1", "folio-share"),
        ("7.0.13", "folio-share"),
        ("7.1.3", "folio-share-reset"),
        ("8.4", "folio-share-reset"),
    ],
)
def test_a_version_alone_gives_the_design_whose_range_holds_it(version, design):
    assert design_of_version(version) == design
    assert derive_design(version, frozenset())[0] == design


def test_cached_kernels_run_the_design_their_version_is_listed_under():
    """The rig's own evidence (symbols, BTF) and the designs' ranges agree on every cached
    kernel: the design derived from the kernel is the one whose range holds its version."""
    from sim.kernel.cache import cached_kernels
    from sim.memmap import get_variant

    kernels = cached_kernels()
    if not kernels:
        pytest.skip("no kernel cached (daxsim kernel fetch)")
    for k in kernels:
        assert get_variant(k.design).kernel_range.contains(k.version), (k.release, k.design)
        assert design_of_version(k.version) == k.design


def test_debian_placeholder_system_map_has_no_symbols(tmp_path):
    placeholder = tmp_path / "System.map"
    placeholder.write_text(
        "ffffffffffffffff B The real System.map is in the linux-image-7.3.4+deb13-amd64-dbg "
        "package\n"
    )
    assert system_map_symbols(placeholder) == frozenset()
    real = tmp_path / "kallsyms"
    real.write_text("ffffffff81000000 T _stext\nffffffff8140a0b0 t dax_mapping_set_cow\n")
    assert system_map_symbols(real) == {"_stext", "dax_mapping_set_cow"}


def test_unknown_kernel_names_say_how_to_get_one(monkeypatch, tmp_path):
    monkeypatch.setenv("DAXSIM_CACHE", str(tmp_path))
    with pytest.raises(InputError, match="daxsim kernel fetch 9.9"):
        load_kernel("9.9")


def test_local_kernel_needs_its_modules_directory(tmp_path, capsys):
    img = tmp_path / "bzImage"
    fake_bzimage(img, b"6.15.0-rc1+ (me@box) #3 SMP")
    (tmp_path / "mods").mkdir()
    with pytest.raises(InputError, match="lib/modules/6.15.0-rc1"):
        local_kernel(img, tmp_path / "mods")
    status = cli_main(["kernel", "list", "--vmlinuz", str(img), "--modules", str(tmp_path)])
    assert status == 2
    assert "lib/modules/6.15.0-rc1+" in capsys.readouterr().err


def test_cpio_archives_concatenate_and_unpack(tmp_path):
    a = CpioWriter()
    a.file("bin/tool", b"#!/bin/sh\necho hi\n", 0o755)
    a.symlink("bin/alias", "tool")
    b = CpioWriter()
    b.file("job/list", b"000\n")
    first_archive = a.finish()
    blob = first_archive + b.finish()
    assert len(blob) % 512 == 0
    out = tmp_path / "root"
    out.mkdir()
    # GNU cpio reads one archive per run, like the kernel reads them in sequence.
    subprocess.run(["cpio", "-idm", "--quiet"], input=blob, cwd=out, check=True)
    assert (out / "bin" / "tool").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert (out / "bin" / "tool").stat().st_mode & 0o777 == 0o755
    assert (out / "bin" / "alias").readlink().as_posix() == "tool"
    rest = blob[len(first_archive) :]
    subprocess.run(["cpio", "-idm", "--quiet"], input=rest, cwd=out, check=True)
    assert (out / "job" / "list").read_bytes() == b"000\n"


def test_fetch_without_apt_says_how_to_give_a_kernel_by_hand(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DAXSIM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no apt-get, apt-cache, dpkg-deb
    assert cli_main(["kernel", "fetch", "6.1"]) == 2
    err = capsys.readouterr().err
    assert "needs apt" in err and "--vmlinuz PATH" in err and "--modules DIR" in err
    assert not (tmp_path / "cache" / "kernels").exists()


def test_accelerator_is_tcg_unless_kvm_can_work(monkeypatch):
    from sim.kernel.guest import accelerator

    monkeypatch.setenv("DAXSIM_ACCEL", "tcg")
    assert accelerator() == ["-accel", "tcg", "-cpu", "max"]
    monkeypatch.setenv("DAXSIM_ACCEL", "kvm")
    assert accelerator() == ["-accel", "kvm", "-cpu", "host"]
    monkeypatch.setenv("DAXSIM_ACCEL", "hvf")
    with pytest.raises(InputError, match="expected kvm or tcg"):
        accelerator()


def test_prune_keeps_the_guest_modules_and_the_index_files(tmp_path):
    from sim.kernel.fetch import prune_modules

    mdir = tmp_path / "lib" / "modules" / "6.1.0-57-amd64"
    files = [
        "kernel/fs/xfs/xfs.ko",
        "kernel/drivers/nvdimm/nd_pmem.ko",
        "kernel/drivers/virtio/virtio_pci.ko",
        "kernel/drivers/gpu/drm/i915/i915.ko",
        "kernel/sound/core/snd.ko",
        "modules.builtin",
    ]
    for f in files:
        (mdir / f).parent.mkdir(parents=True, exist_ok=True)
        (mdir / f).write_bytes(b"x")
    prune_modules(mdir)
    left = sorted(str(p.relative_to(mdir)) for p in mdir.rglob("*") if p.is_file())
    assert left == [
        "kernel/drivers/nvdimm/nd_pmem.ko",
        "kernel/drivers/virtio/virtio_pci.ko",
        "kernel/fs/xfs/xfs.ko",
        "modules.builtin",
    ]


def test_pvh_note_is_found_in_an_elf_program_header():
    from sim.kernel.symbols import has_pvh_entry

    def elf_with_note(name: bytes, ntype: int) -> bytes:
        desc = struct.pack("<I", 0x1000000)
        note = struct.pack("<III", len(name) + 1, len(desc), ntype) + name + b"\0"
        note += b"\0" * (-len(note) % 4) + desc
        phoff, phentsize = 64, 56
        head = bytearray(64)
        head[:5] = b"\x7fELF\x02"
        struct.pack_into("<Q", head, 0x20, phoff)
        struct.pack_into("<HH", head, 0x36, phentsize, 1)
        ph = struct.pack("<IIQQQQQQ", 4, 0, phoff + phentsize, 0, 0, len(note), len(note), 4)
        return bytes(head) + ph + note

    assert has_pvh_entry(elf_with_note(b"Xen", 18))
    assert not has_pvh_entry(elf_with_note(b"Xen", 17))
    assert not has_pvh_entry(elf_with_note(b"GNU", 18))
    assert not has_pvh_entry(b"MZ not an elf")


def test_modules_built_with_debug_info_lose_it_in_the_guest_image(tmp_path):
    from sim.kernel.initramfs import _strip_debug
    from sim.kernel.symbols import elf_section

    src = tmp_path / "m.c"
    src.write_text("int answer(void) { return 42; }\n")
    obj = tmp_path / "m.o"
    subprocess.run(["gcc", "-g", "-c", "-o", str(obj), str(src)], check=True)
    with_debug = obj.read_bytes()
    assert elf_section(with_debug, ".debug_info") is not None
    stripped = _strip_debug(with_debug)
    assert elf_section(stripped, ".debug_info") is None
    assert elf_section(stripped, ".text") == elf_section(with_debug, ".text")
    assert _strip_debug(stripped) == stripped
