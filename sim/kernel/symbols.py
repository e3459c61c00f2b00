"""What a kernel image says about itself: its release and version, its exported symbols, and
the daxsim design it runs.

A bzImage carries its version string in the setup header (``kernel_version``, boot protocol
2.00+) and the compressed vmlinux as its payload (``payload_offset``/``payload_length``, boot
protocol 2.08+). The vmlinux keeps the names of exported symbols as plain strings in its
``__ksymtab_strings`` section, so an exported function such as ``dax_folio_reset_order``
(``EXPORT_SYMBOL_GPL`` in fs/dax.c, Linux 7.1+) is found without a System.map. Static functions
(``dax_mapping_set_cow``, Linux 6.0-6.1) are found only in a System.map.
"""

from __future__ import annotations

import gzip
import lzma
import re
import shutil
import struct
import subprocess
from pathlib import Path

from sim.constants import COW_INDEX, FOLIO_SHARE, FOLIO_SHARE_RESET, PAGE_SHARE, SINGLE_OWNER
from sim.errors import InputError

__all__ = [
    "bzimage_version_string",
    "parse_version_string",
    "exported_symbols",
    "system_map_symbols",
    "derive_design",
    "vmlinux_of",
    "has_pvh_entry",
]


def bzimage_version_string(vmlinuz: Path) -> str:
    """The version string a bzImage carries in its setup header.

    Parameters
    ----------
    vmlinuz : Path
        An x86 bzImage.

    Returns
    -------
    str
        For example ``"6.1.0-57-amd64 (debian-kernel@lists.debian.org) #1 SMP ... Debian
        6.1.192-3 (2026-11-20)"``.

    Raises
    ------
    InputError
        If the file is not a bzImage.
    """
    with open(vmlinuz, "rb") as f:
        head = f.read(0x10000)
    if len(head) < 0x260 or head[0x202:0x206] != b"HdrS":
        raise InputError("not an x86 bzImage (no HdrS setup header)", str(vmlinuz))
    (ptr,) = struct.unpack_from("<H", head, 0x20E)
    start = ptr + 0x200
    end = head.find(b"\0", start)
    if ptr == 0 or end < 0:
        raise InputError("bzImage without a kernel_version string", str(vmlinuz))
    return head[start:end].decode("ascii", "replace")


def parse_version_string(text: str) -> tuple[str, str]:
    """``(release, version)`` from a bzImage version string or ``/proc/version``.

    ``release`` is the first word (what ``uname -r`` prints). ``version`` is the upstream
    version: Debian's ``Debian X.Y.Z-N`` when present, else the leading ``X.Y[.Z]`` of the
    release.
    """
    words = text.split()
    if words and words[0] == "Linux" and len(words) > 2 and words[1] == "version":
        words = words[2:]
    if not words:
        raise InputError("empty kernel version string")
    release = words[0]
    m = re.search(r"Debian (\d+\.\d+(?:\.\d+)?)", text)
    if m is None:
        m = re.match(r"(\d+\.\d+(?:\.\d+)?)", release)
    if m is None:
        raise InputError(f"kernel version string without a version number: {text!r}")
    return release, m.group(1)


def _payload(vmlinuz: Path) -> bytes:
    data = vmlinuz.read_bytes()
    setup_sects = data[0x1F1] or 4
    off, length = struct.unpack_from("<II", data, 0x248)
    start = (setup_sects + 1) * 512 + off
    blob = data[start : start + length]
    if blob.startswith(b"\x1f\x8b"):
        return gzip.decompress(blob)
    if blob.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(blob)
    if blob.startswith(b"\x5d\x00"):
        return lzma.LZMADecompressor(format=lzma.FORMAT_ALONE).decompress(blob)
    if blob.startswith(b"\x28\xb5\x2f\xfd"):
        if shutil.which("zstd") is None:
            raise InputError("the kernel image is zstd-compressed: install zstd", str(vmlinuz))
        # Linux appends the uncompressed size after the frame; zstd stops at the frame's end.
        out = subprocess.run(["zstd", "-dcq"], input=blob, capture_output=True, check=False).stdout
        if out:
            return out
    raise InputError(
        "kernel payload compressed in a format not read here (gzip, xz, lzma, zstd are)",
        str(vmlinuz),
    )


def exported_symbols(vmlinuz: Path) -> frozenset[str]:
    """Names in the ``__ksymtab_strings`` section of the vmlinux inside a bzImage.

    Returns an empty set if the payload is not an ELF file with that section (the caller
    then derives the design from the version only).
    """
    elf = _payload(vmlinuz)
    if elf[:4] != b"\x7fELF" or elf[4] != 2:
        return frozenset()
    (shoff,) = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)

    def section(i: int) -> tuple[int, int, int]:
        base = shoff + i * shentsize
        name, _type, _flags, _addr, offset, size = struct.unpack_from("<IIQQQQ", elf, base)
        return name, offset, size

    _, str_off, str_size = section(shstrndx)
    names = elf[str_off : str_off + str_size]
    for i in range(shnum):
        name, offset, size = section(i)
        end = names.find(b"\0", name)
        if names[name:end] == b"__ksymtab_strings":
            raw = elf[offset : offset + size]
            return frozenset(s.decode("ascii", "replace") for s in raw.split(b"\0") if s)
    return frozenset()


def system_map_symbols(path: Path) -> frozenset[str]:
    """Symbol names of a System.map (or ``/proc/kallsyms``) file; empty for Debian's
    placeholder System.map of 7.x kernels (one line saying where the real one is)."""
    names = set()
    with open(path, encoding="ascii", errors="replace") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[0] != "ffffffffffffffff":
                names.add(parts[2])
    return frozenset(names)


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version)[:3])


def derive_design(version: str, symbols: frozenset[str]) -> tuple[str, str]:
    """The daxsim design a kernel runs, and the evidence for it.

    Symbols decide where they can: ``dax_folio_reset_order`` (fs/dax.c, exported, Linux 7.1+)
    means folio-share-reset; ``dax_mapping_set_cow`` (fs/dax.c, Linux 6.0-6.1) means cow-index.
    Otherwise the version: before 6.0 single-owner (``dax_associate_entry`` sets one owner),
    6.0-6.1 cow-index (``PAGE_MAPPING_DAX_COW``), 6.2-6.14 page-share (``page->share``,
    ``PAGE_MAPPING_DAX_SHARED``), 6.15+ folio-share (``folio->share``, no flag).

    Returns
    -------
    tuple of str
        ``(design, evidence)``, for example ``("folio-share-reset", "symbol
        dax_folio_reset_order")``.
    """
    if "dax_folio_reset_order" in symbols:
        return FOLIO_SHARE_RESET, "symbol dax_folio_reset_order"
    if "dax_mapping_set_cow" in symbols:
        return COW_INDEX, "symbol dax_mapping_set_cow"
    v = _version_tuple(version)[:2]
    if v < (6, 0):
        design = SINGLE_OWNER
    elif v < (6, 2):
        design = COW_INDEX
    elif v < (6, 15):
        design = PAGE_SHARE
    else:
        design = FOLIO_SHARE
    return design, f"version {version}"


def vmlinux_of(vmlinuz: Path) -> bytes:
    """The vmlinux ELF inside a bzImage (decompressed)."""
    return _payload(vmlinuz)


def has_pvh_entry(elf: bytes) -> bool:
    """Whether a vmlinux has the PVH entry point (``XEN_ELFNOTE_PHYS32_ENTRY``, type 18, in
    a ``"Xen"`` note; ``CONFIG_PVH``), which lets QEMU boot it without the bzImage's
    decompressor."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2:
        return False
    (phoff,) = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    for i in range(phnum):
        p_type, _flags, offset, _va, _pa, filesz = struct.unpack_from(
            "<IIQQQQ", elf, phoff + i * phentsize
        )
        if p_type != 4:  # PT_NOTE
            continue
        pos, end = offset, offset + filesz
        while pos + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", elf, pos)
            name = elf[pos + 12 : pos + 12 + namesz].rstrip(b"\0")
            if name == b"Xen" and ntype == 18:
                return True
            pos += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3)
    return False
