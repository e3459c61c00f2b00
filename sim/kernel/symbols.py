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

from sim.constants import (
    BUILTIN_DESIGNS,
    COW_INDEX,
    FOLIO_SHARE,
    FOLIO_SHARE_RESET,
    PAGE_SHARE,
    SINGLE_OWNER,
)
from sim.errors import InputError

__all__ = [
    "bzimage_version_string",
    "parse_version_string",
    "exported_symbols",
    "system_map_symbols",
    "derive_design",
    "design_of_version",
    "elf_section",
    "kernel_facts",
    "vmlinux_of",
    "has_pvh_entry",
]


def bzimage_version_string(vmlinuz: Path) -> str:
    """The version string a bzImage carries in its setup header (or a vmlinux in its banner).

    Parameters
    ----------
    vmlinuz : Path
        An x86 bzImage, or an uncompressed ELF vmlinux.

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
    if head[:4] == b"\x7fELF":
        # An uncompressed vmlinux (a build tree's top directory): its banner in .rodata.
        banner = elf_section(vmlinuz.read_bytes(), ".rodata") or b""
        i = banner.find(b"Linux version ")
        if i < 0:
            raise InputError("ELF file without a 'Linux version' banner", str(vmlinuz))
        return banner[i + len(b"Linux version ") : banner.index(b"\n", i)].decode(
            "ascii", "replace"
        )
    if len(head) < 0x260 or head[0x202:0x206] != b"HdrS":
        raise InputError("not an x86 bzImage (no HdrS setup header) nor a vmlinux", str(vmlinuz))
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
    m = re.match(r"(\d+\.\d+)(?:\.\d+)?", release)
    if m is None:
        raise InputError(f"kernel version string without a version number: {text!r}")
    # Debian's own version of the kernel ("Debian 6.1.192-3"), not its compiler's
    # ("gcc-12 (Debian 12.2.0-14)", in /proc/version and the vmlinux banner).
    for v in re.findall(r"Debian (\d+\.\d+(?:\.\d+)?)", text):
        if v == m.group(1) or v.startswith(m.group(1) + "."):
            return release, v
    return release, m.group(0)


def _payload(vmlinuz: Path) -> bytes:
    data = vmlinuz.read_bytes()
    if data[:4] == b"\x7fELF":
        return data  # already the vmlinux
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


def elf_section(elf: bytes, wanted: str) -> bytes | None:
    """The bytes of section ``wanted`` of a 64-bit little-endian ELF file, or None."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2:
        return None
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
        if names[name:end] == wanted.encode():
            return elf[offset : offset + size]
    return None


def exported_symbols(vmlinuz: Path) -> frozenset[str]:
    """Names in the ``__ksymtab_strings`` section of the vmlinux inside a bzImage.

    Returns an empty set if the payload is not an ELF file with that section (the caller
    then derives the design from the version only).
    """
    return kernel_facts(vmlinuz)[0]


def kernel_facts(vmlinuz: Path) -> tuple[frozenset[str], frozenset[str] | None]:
    """``(exported symbols, share members)`` of the vmlinux inside a bzImage (members None
    when the kernel has no BTF).

    The share members are those of ``"page.share"`` and ``"folio.share"`` that the kernel's
    own BTF (its ``.BTF`` section, ``CONFIG_DEBUG_INFO_BTF``) declares: ``page->share`` is
    Linux 6.2-6.14's DAX share count, ``folio->share`` Linux 6.15+'s.
    """
    elf = _payload(vmlinuz)
    raw = elf_section(elf, "__ksymtab_strings") or b""
    exported = frozenset(s.decode("ascii", "replace") for s in raw.split(b"\0") if s)
    btf_bytes = elf_section(elf, ".BTF")
    if not btf_bytes:
        return exported, None
    from sim.kernel.btf import Btf, BtfError

    try:
        btf = Btf(btf_bytes)
    except BtfError:
        return exported, None
    members = {f"{n}.share" for n in ("page", "folio") if btf.has_member(n, "share")}
    return exported, frozenset(members)


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


def derive_design(
    version: str, symbols: frozenset[str], members: frozenset[str] | None = None
) -> tuple[str, str]:
    """The daxsim design a kernel runs, and the evidence for it.

    The kernel's own symbols and types decide where they can: ``dax_folio_reset_order``
    (fs/dax.c, exported, Linux 7.1+) means folio-share-reset; ``dax_mapping_set_cow`` (fs/dax.c,
    Linux 6.0-6.1) cow-index; a ``share`` member of ``struct folio`` in the kernel's BTF
    folio-share (Linux 6.15+), of ``struct page`` page-share (Linux 6.2-6.14). Otherwise the
    version, through the designs' kernel ranges (:func:`design_of_version`).

    Parameters
    ----------
    version : str
        Upstream version (``"6.1.192"``).
    symbols : frozenset of str
        Symbol names (exported ones, System.map or kallsyms).
    members : frozenset of str, optional
        ``"page.share"`` / ``"folio.share"`` when the kernel's BTF has them; None when the
        kernel has no BTF.

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
    if members and "folio.share" in members:
        return FOLIO_SHARE, "BTF: struct folio has share"
    if members and "page.share" in members:
        return PAGE_SHARE, "BTF: struct page has share"
    design = design_of_version(version)
    if members is None:
        return design, f"version {version}"
    if _version_tuple(version)[:2] < (6, 2):
        return design, f"version {version}; BTF: no share member in struct page or folio"
    # A 6.2+ kernel whose BTF has no share member: the version is all there is to go on.
    return design, f"version {version} (BTF has no share member: unexpected)"


def design_of_version(version: str) -> str:
    """The built-in design whose kernel range (``Variant.kernel_range``, the one table of
    version to design) holds an upstream version.

    Parameters
    ----------
    version : str
        Upstream version (``"6.12.118"``).

    Returns
    -------
    str
        The design's name; single-owner for a version older than every range.

    Raises
    ------
    InputError
        If no built-in design's range holds the version (a release newer than the table).
    """
    from sim.memmap.variants import VARIANTS

    for name in BUILTIN_DESIGNS:
        rng = VARIANTS[name].kernel_range
        if rng is not None and rng.contains(version):
            return name
    first = VARIANTS[SINGLE_OWNER].kernel_range
    if first is not None and _version_tuple(version)[:2] < _version_tuple(first.first)[:2]:
        return SINGLE_OWNER
    raise InputError(f"no design's kernel range holds version {version!r}")


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
