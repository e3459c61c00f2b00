"""Page state read from a running kernel: the struct pages of the guest's pmem device.

While the guest is paused (the agent's ``DAXSIM-PAUSE`` hook, after a script and before its
unmount), the host reads, through QEMU's monitor, the ``struct page`` of every pfn of the
emulated pmem and decodes the words the fsdax association keeps there:

``mapping``
    NULL, the design's flag (``PAGE_MAPPING_DAX_COW`` in 6.0-6.1, ``PAGE_MAPPING_DAX_SHARED``
    in 6.2-6.14: both ``(void *)0x1``, set by ``dax_mapping_set_cow()`` /
    ``dax_page_share_get()`` in fs/dax.c), or the owner's ``struct address_space``;
``index`` / ``share``
    the file page offset of the owner, or the share count (``page->index`` in 6.1,
    ``page->share`` in 6.2-6.14, ``folio->share`` from 6.15; the same word);
folio order
    from 6.15 a PMD entry is an order-9 folio (``dax_folio_init()``): ``PG_head`` in the head
    page's flags, the order in the low byte of the second page's ``_flags_1``.

How (no kernel module, no debug package):

1. struct offsets from the kernel's BTF (:mod:`sim.kernel.btf`), taken from the ``.BTF``
   section of the packaged ``vmlinuz`` (:func:`btf_from_vmlinuz`) or from the guest's
   ``/sys/kernel/btf/vmlinux``;
2. ``vmemmap_base``: with ``nokaslr`` it is the fixed ``__VMEMMAP_BASE_L4`` or
   ``__VMEMMAP_BASE_L5`` (arch/x86/include/asm/pgtable_64_types.h), chosen by CR4.LA57
   (``info registers``), or read at the symbol's address when one is known; the pages read
   are checked (every struct page of the device's data area carries the one
   ``dev_pagemap`` pointer of a ZONE_DEVICE page, tail pages excepted);
3. the struct page of pfn ``p`` is at virtual ``vmemmap_base + p * sizeof(struct page)``;
   ``gva2gpa`` translates it (the device's memmap lives on the device itself with
   ``--map=dev``), ``pmemsave`` reads it;
4. the words are decoded with numpy; each owner's ``address_space`` pointer is resolved to
   an inode number through ``mapping->host->i_ino``.

Blocks are matched with daxsim's by file and offset (the agent's FIEMAP of every file, plus
the pfn device's data start), since the two allocators place files differently.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sim.constants import PAGE_SIZE
from sim.kernel.btf import Btf, BtfError
from sim.kernel.program import START_PAUSE_SUFFIX

__all__ = [
    "PAGE_BYTES",
    "PageLayout",
    "KernelPages",
    "PageCapture",
    "btf_from_vmlinuz",
    "elf_section",
    "vmemmap_base",
    "read_virtual",
    "read_struct_pages",
    "decode_struct_pages",
    "resolve_inodes",
    "FLAG_MAPPING",
    "BASELINE_SUFFIX",
    "PageView",
    "pmem_range",
    "symbol_address",
    "data_area",
    "final_files",
    "kernel_view",
    "daxsim_view",
    "compare_views",
    "page_observations",
    "daxsim_before_unmount",
]

#: Suffix of the name of a pause at a script's start (the baseline of its page state).
BASELINE_SUFFIX = START_PAUSE_SUFFIX
#: Bytes of a base page on x86-64.
PAGE_BYTES = PAGE_SIZE
#: ``PAGE_MAPPING_DAX_COW`` (6.0-6.1) and ``PAGE_MAPPING_DAX_SHARED`` (6.2-6.14): ``0x1``.
FLAG_MAPPING = 1
#: ``__VMEMMAP_BASE_L4`` / ``__VMEMMAP_BASE_L5`` (arch/x86/include/asm/pgtable_64_types.h):
#: vmemmap_base when the memory layout is not randomised (``nokaslr``).
VMEMMAP_BASE_L4 = 0xFFFFEA0000000000
VMEMMAP_BASE_L5 = 0xFFD4000000000000
#: CR4.LA57: five-level paging.
_CR4_LA57 = 1 << 12
#: Virtual span translated at once: the vmemmap is mapped with 2 MiB pages where it can be.
_CHUNK_BYTES = 2 << 20
_I64 = np.int64


# ---------------------------------------------------------------------------- BTF of a kernel
def elf_section(elf: bytes, name: str) -> bytes:
    """The bytes of section ``name`` of a little-endian ELF64 image.

    Raises
    ------
    BtfError
        Not an ELF64 little-endian image, or no such section.
    """
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        raise BtfError("not a little-endian ELF64 image")
    shoff = struct.unpack_from("<Q", elf, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<3H", elf, 0x3A)

    def sh(k):
        # sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size
        return struct.unpack_from("<IIQQQQ", elf, shoff + k * shentsize)

    stroff, strsize = sh(shstrndx)[4:6]
    names = elf[stroff : stroff + strsize]
    want = name.encode()
    for k in range(shnum):
        s = sh(k)
        end = names.index(b"\0", s[0])
        if names[s[0] : end] == want:
            return elf[s[4] : s[4] + s[5]]
    raise BtfError(f"no {name} section in the ELF image")


def btf_from_vmlinuz(path: str | Path) -> bytes:
    """The kernel's own BTF: the ``.BTF`` section of the ``vmlinux`` inside a bzImage.

    Raises
    ------
    BtfError
        The payload has no ``.BTF`` section (a kernel built without
        ``CONFIG_DEBUG_INFO_BTF``).
    sim.errors.InputError
        Not a bzImage, or a payload compressed in a format not read here.
    """
    from sim.kernel.symbols import _payload

    return elf_section(_payload(Path(path)), ".BTF")


@dataclass(frozen=True)
class PageLayout:
    """Where the words of ``struct page`` are, for one kernel build (from its BTF).

    Attributes
    ----------
    page_struct_bytes : int
        ``sizeof(struct page)``.
    flags_off, mapping_off, index_off, pgmap_off : int
        Byte offsets in a head ``struct page`` (read through ``struct folio``, which overlays
        it: ``index`` is also ``share`` where that exists; ``pgmap`` moved from the page to the
        folio in 7.x).
    compound_off : int
        ``page->compound_head`` (``compound_info`` in 7.x): bit 0 set on a tail page.
    order_off : int
        Byte offset, from the head page, of the byte holding a large folio's order
        (``folio->_folio_order`` up to 6.5, the low byte of ``folio->_flags_1`` after).
    pg_head_bit : int
        ``PG_head`` in ``enum pageflags``.
    host_off, i_ino_off : int
        ``address_space.host`` and ``inode.i_ino``.
    share_word : str
        What the ``index`` word is called in this kernel: ``index``, ``page->share`` or
        ``folio->share``.
    """

    page_struct_bytes: int
    flags_off: int
    mapping_off: int
    index_off: int
    pgmap_off: int
    compound_off: int
    order_off: int
    pg_head_bit: int
    host_off: int
    i_ino_off: int
    share_word: str

    @classmethod
    def from_btf(cls, btf: Btf | bytes) -> "PageLayout":
        """Build the layout from a kernel's BTF (a :class:`Btf` or its raw bytes)."""
        if not isinstance(btf, Btf):
            btf = Btf(btf)
        if btf.has_member("folio", "_folio_order"):
            order_off = btf.offset_of("folio", "_folio_order")
        else:
            order_off = btf.offset_of("folio", "_flags_1")
        if btf.has_member("folio", "share"):
            share_word = "folio->share"
        elif btf.has_member("page", "share"):
            share_word = "page->share"
        else:
            share_word = "index"

        def first(*where):
            for struct_name, member in where:
                if btf.has_member(struct_name, member):
                    return btf.offset_of(struct_name, member)
            raise BtfError(f"none of {where} in the BTF")

        return cls(
            page_struct_bytes=btf.sizeof("page"),
            flags_off=btf.offset_of("folio", "flags"),
            mapping_off=btf.offset_of("folio", "mapping"),
            index_off=btf.offset_of("folio", "index"),
            pgmap_off=first(("page", "pgmap"), ("folio", "pgmap")),
            compound_off=first(("page", "compound_head"), ("page", "compound_info")),
            order_off=order_off,
            pg_head_bit=btf.enum_value("pageflags", "PG_head"),
            host_off=btf.offset_of("address_space", "host"),
            i_ino_off=btf.offset_of("inode", "i_ino"),
            share_word=share_word,
        )


# ---------------------------------------------------------------------------- guest memory
def _hmp_int(text: str, what: str) -> int:
    m = re.search(r"0x([0-9a-fA-F]+)", text)
    if m is None:
        raise RuntimeError(f"{what}: unexpected monitor answer {text.strip()!r}")
    return int(m.group(1), 16)


def vmemmap_base(monitor, *, symbol_address: int | None = None) -> int:
    """The guest's ``vmemmap_base``.

    Parameters
    ----------
    monitor
        Object with ``hmp(cmd) -> str`` (QEMU's human monitor).
    symbol_address : int, optional
        Address of the ``vmemmap_base`` variable (System.map or /proc/kallsyms); read with
        ``x /gx``.  Without it the guest must run with ``nokaslr``: the value is then
        ``__VMEMMAP_BASE_L5`` when CR4.LA57 is set, else ``__VMEMMAP_BASE_L4``.
    """
    if symbol_address is not None:
        return _read_words(monitor, symbol_address, 1)[0]
    m = re.search(r"CR4=([0-9a-fA-F]+)", monitor.hmp("info registers"))
    if m is None:
        raise RuntimeError("info registers shows no CR4")
    return VMEMMAP_BASE_L5 if int(m.group(1), 16) & _CR4_LA57 else VMEMMAP_BASE_L4


def _gpa(monitor, va: int) -> int | None:
    out = monitor.hmp(f"gva2gpa {va:#x}")
    if "gpa:" not in out:
        return None
    return _hmp_int(out, f"gva2gpa {va:#x}")


def read_virtual(monitor, va: int, nbytes: int) -> tuple[bytes, np.ndarray]:
    """Read ``nbytes`` of guest kernel virtual memory from ``va``.

    Each 2 MiB of virtual span is translated once (``gva2gpa``) and read with one
    ``pmemsave`` when its last 4 KiB page is physically contiguous with its first; otherwise
    it is read page by page.  Unmapped pages read as zeros.

    Returns
    -------
    data : bytes
    mapped : ndarray of bool, one per 4 KiB virtual page touched (from ``va`` rounded down)
    """
    out = bytearray(nbytes)
    first_page = va // PAGE_BYTES
    mapped = np.zeros(-(-(va + nbytes) // PAGE_BYTES) - first_page, dtype=bool)
    pos = va
    end = va + nbytes
    while pos < end:
        stop = min(end, (pos // _CHUNK_BYTES + 1) * _CHUNK_BYTES)
        g0 = _gpa(monitor, pos)
        glast = _gpa(monitor, stop - 1) if g0 is not None else None
        if g0 is not None and glast == g0 + (stop - 1 - pos):
            out[pos - va : stop - va] = monitor.pmemsave(g0, stop - pos)
            mapped[pos // PAGE_BYTES - first_page : (stop - 1) // PAGE_BYTES - first_page + 1] = (
                True
            )
        else:
            p = pos
            while p < stop:
                q = min(stop, (p // PAGE_BYTES + 1) * PAGE_BYTES)
                g = _gpa(monitor, p)
                if g is not None:
                    out[p - va : q - va] = monitor.pmemsave(g, q - p)
                    mapped[p // PAGE_BYTES - first_page] = True
                p = q
        pos = stop
    return bytes(out), mapped


def _read_words(monitor, va: int, n: int) -> list[int]:
    """``n`` 64-bit words of kernel virtual memory at ``va`` (HMP ``x /Ngx``)."""
    text = monitor.hmp(f"x /{n}gx {va:#x}")
    words = []
    for line in text.splitlines():
        if ":" in line:
            words += [int(w, 16) for w in re.findall(r"0x([0-9a-fA-F]+)", line.split(":", 1)[1])]
    if len(words) < n:
        raise RuntimeError(f"x /{n}gx {va:#x}: unexpected monitor answer {text.strip()!r}")
    return words[:n]


def read_struct_pages(monitor, layout: PageLayout, pfn_first: int, npages: int, base: int):
    """Raw struct pages of pfns ``[pfn_first, pfn_first + npages)``.

    Returns
    -------
    raw : ndarray of uint8, shape (npages, page_struct_bytes)
    present : ndarray of bool, shape (npages,)
        False where the vmemmap is not mapped (no struct page).
    """
    sz = layout.page_struct_bytes
    va = base + pfn_first * sz
    data, mapped = read_virtual(monitor, va, npages * sz)
    raw = np.frombuffer(data, dtype=np.uint8).reshape(npages, sz)
    rel = np.arange(npages, dtype=_I64) * sz + va % PAGE_BYTES
    start = rel // PAGE_BYTES
    last = (rel + sz - 1) // PAGE_BYTES
    return raw, mapped[start] & mapped[last]


# ---------------------------------------------------------------------------- decoding
@dataclass
class KernelPages:
    """Decoded struct pages of a pfn range (one entry per pfn; int64 arrays).

    Attributes
    ----------
    pfn : ndarray
        Page frame numbers.
    present : ndarray of bool
        The pfn has a struct page (its vmemmap is mapped).
    mapping : ndarray
        ``page->mapping`` as a signed 64-bit word (kernel pointers are negative).
    index : ndarray
        ``page->index`` / ``share``.
    order : ndarray
        Order of the folio a head page starts (0 for a base page); -1 for a tail page.
    head : ndarray
        pfn of the folio holding the page (itself for base and head pages).
    pgmap : ndarray
        ``pgmap`` of base and head pages (0 on tail pages).
    ino : dict
        Inode number of each ``address_space`` pointer found in ``mapping`` (filled by
        :func:`resolve_inodes`).
    """

    pfn: np.ndarray
    present: np.ndarray
    mapping: np.ndarray
    index: np.ndarray
    order: np.ndarray
    head: np.ndarray
    pgmap: np.ndarray
    ino: dict = field(default_factory=dict)

    def owners(self) -> np.ndarray:
        """Distinct address_space pointers found in ``mapping`` (neither NULL nor the flag)."""
        m = self.mapping[self.present & (self.order >= 0)]
        return np.unique(m[(m != 0) & (m != FLAG_MAPPING)])

    def select(self, pfns) -> "KernelPages":
        """The entries of ``pfns`` (which must lie in the range read)."""
        k = np.asarray(pfns, dtype=_I64) - self.pfn[0]
        if k.size and (k.min() < 0 or k.max() >= self.pfn.size):
            raise ValueError("pfn outside the range read")
        return KernelPages(
            self.pfn[k],
            self.present[k],
            self.mapping[k],
            self.index[k],
            self.order[k],
            self.head[k],
            self.pgmap[k],
            dict(self.ino),
        )


def decode_struct_pages(raw: np.ndarray, present: np.ndarray, layout: PageLayout, pfn_first: int):
    """Decode raw struct pages (:func:`read_struct_pages`) into :class:`KernelPages`.

    A tail page of a large folio has bit 0 set in ``compound_head`` / ``compound_info``
    (include/linux/page-flags.h, ``PageTail``); its folio's state is in the head page, whose
    order is in the byte :attr:`PageLayout.order_off` from the head (in the second struct
    page).
    """
    n, sz = raw.shape
    if sz != layout.page_struct_bytes:
        raise ValueError(f"struct pages of {sz} bytes, layout says {layout.page_struct_bytes}")

    def word(off):
        return raw[:, off : off + 8].copy().view("<i8").reshape(n)

    flags = word(layout.flags_off)
    pgmap = word(layout.pgmap_off)
    pfn = pfn_first + np.arange(n, dtype=_I64)
    tail = present & ((word(layout.compound_off) & 1) == 1)
    is_head = present & ~tail & (((flags >> layout.pg_head_bit) & 1) == 1)
    order = np.zeros(n, dtype=_I64)
    obyte_page, obyte_off = divmod(layout.order_off, sz)
    hk = np.flatnonzero(is_head)
    ok = hk + obyte_page < n
    order[hk[ok]] = raw[hk[ok] + obyte_page, obyte_off].astype(_I64)
    order[tail] = -1
    head = pfn.copy()
    # A tail's head: the nearest head page below it (folios are naturally aligned).
    if tail.any():
        last_head = np.where(is_head, pfn, -1)
        np.maximum.accumulate(last_head, out=last_head)
        head[tail] = last_head[tail]
    return KernelPages(
        pfn=pfn,
        present=present.copy(),
        mapping=np.where(present, word(layout.mapping_off), 0),
        index=np.where(present, word(layout.index_off), 0),
        order=order,
        head=head,
        pgmap=np.where(present & ~tail, pgmap, 0),
    )


def resolve_inodes(monitor, layout: PageLayout, pages: KernelPages) -> dict[int, int]:
    """Inode number of each owner pointer of ``pages`` (``mapping->host->i_ino``)."""
    out = {}
    for ptr in pages.owners().tolist():
        uptr = ptr & 0xFFFFFFFFFFFFFFFF
        host = _read_words(monitor, uptr + layout.host_off, 1)[0]
        out[int(ptr)] = int(_read_words(monitor, host + layout.i_ino_off, 1)[0])
    pages.ino.update(out)
    return out


class PageCapture:
    """Pause callback (``callback(monitor, script_name)``) recording the pmem's struct pages.

    Parameters
    ----------
    layout : PageLayout
        The kernel's struct page layout.
    pfn_first, npages : int
        pfns to read (the emulated pmem: ``memmap=512M!1G`` is pfns 262144..393215).
    vmemmap_symbol : int, optional
        Address of ``vmemmap_base`` (else the ``nokaslr`` value, see :func:`vmemmap_base`).
    keep_raw : bool, default False
        Also keep the raw struct pages (``raw``), 64 bytes per pfn.

    Attributes
    ----------
    pages : dict
        Script name -> :class:`KernelPages` (with ``ino`` resolved).
    raw : dict
        Script name -> ``(raw, present)`` of :func:`read_struct_pages` (with ``keep_raw``).
    errors : dict
        Script name -> what went wrong reading its pages.
    """

    def __init__(
        self,
        layout: PageLayout,
        pfn_first: int,
        npages: int,
        vmemmap_symbol=None,
        *,
        keep_raw: bool = False,
    ):
        self.layout = layout
        self.pfn_first = int(pfn_first)
        self.npages = int(npages)
        self.vmemmap_symbol = vmemmap_symbol
        self.keep_raw = bool(keep_raw)
        self.pages: dict[str, KernelPages] = {}
        self.raw: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.errors: dict[str, str] = {}

    @classmethod
    def for_kernel(cls, kernel, *, cmdline: str | None = None, keep_raw: bool = False):
        """The capture for a :class:`sim.kernel.cache.KernelInfo` booted by the rig's guest.

        The layout comes from the kernel image's BTF, the pfns from the ``memmap=SIZE!START``
        of the guest's command line (``sim.kernel.guest.KERNEL_CMDLINE`` by default), the
        address of ``vmemmap_base`` from the kernel's System.map when it has a real one.
        """
        if cmdline is None:
            from sim.kernel.guest import KERNEL_CMDLINE as cmdline
        start, size = pmem_range(cmdline)
        layout = PageLayout.from_btf(btf_from_vmlinuz(kernel.vmlinuz))
        symbol = symbol_address(kernel.system_map, "vmemmap_base") if kernel.system_map else None
        return cls(layout, start // PAGE_BYTES, size // PAGE_BYTES, symbol, keep_raw=keep_raw)

    def __call__(self, monitor, script_name: str) -> None:
        """Read, decode and keep the struct pages (the guest is paused meanwhile).

        A failure is kept in :attr:`errors` rather than raised, so that the guest goes on
        with its next scripts.
        """
        try:
            base = vmemmap_base(monitor, symbol_address=self.vmemmap_symbol)
            raw, present = read_struct_pages(
                monitor, self.layout, self.pfn_first, self.npages, base
            )
            if self.keep_raw:
                self.raw[script_name] = (raw, present)
            pages = decode_struct_pages(raw, present, self.layout, self.pfn_first)
            resolve_inodes(monitor, self.layout, pages)
        except (RuntimeError, OSError, ValueError) as exc:
            self.errors[script_name] = f"{type(exc).__name__}: {exc}"
            return
        self.pages[script_name] = pages


def symbol_address(system_map: str | Path, name: str) -> int | None:
    """Address of symbol ``name`` in a System.map (or /proc/kallsyms text), None if absent
    (Debian's packages ship a placeholder System.map)."""
    try:
        text = Path(system_map).read_text(errors="replace")
    except OSError:
        return None
    m = re.search(rf"^([0-9a-fA-F]+) \w {re.escape(name)}$", text, re.MULTILINE)
    return int(m.group(1), 16) if m else None


_SIZE_SUFFIX = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def pmem_range(cmdline: str) -> tuple[int, int]:
    """``(start_bytes, size_bytes)`` of the ``memmap=SIZE!START`` (emulated pmem) of a kernel
    command line.

    Raises
    ------
    ValueError
        No ``memmap=SIZE!START`` in ``cmdline``.
    """
    m = re.search(r"memmap=(\d+)([KMGT]?)!(\d+)([KMGT]?)", cmdline, re.IGNORECASE)
    if m is None:
        raise ValueError(f"no memmap=SIZE!START in {cmdline!r}")
    size = int(m.group(1)) * _SIZE_SUFFIX[m.group(2).upper()]
    return int(m.group(3)) * _SIZE_SUFFIX[m.group(4).upper()], size


def data_area(iomem: str) -> tuple[int, int]:
    """``(start_bytes, size_bytes)`` of the pfn device's data area (byte 0 of /dev/pmem0),
    from the rig's ``iomem`` text (lines ``.../pfn0.0/resource 0x...`` and ``.../size N``).

    Raises
    ------
    ValueError
        The text does not give them.
    """
    res = re.search(r"/pfn\d+\.\d+/resource\s+(0x[0-9a-fA-F]+|\d+)", iomem)
    size = re.search(r"/pfn\d+\.\d+/size\s+(0x[0-9a-fA-F]+|\d+)", iomem)
    if res is None or size is None:
        raise ValueError("the guest's iomem report has no pfn device resource and size")
    return int(res.group(1), 0), int(size.group(1), 0)


def final_files(reports: list[dict]) -> dict:
    """``path -> {"ino", "extents"}`` from the agent's ``final`` report (FIEMAP of every file
    at the end; ``ino`` when the agent gives it).

    Raises
    ------
    ValueError
        No ``final`` report.
    """
    for rep in reversed(reports):
        if rep.get("op") == "final" and "files" in rep:
            return {
                f["path"]: {
                    "ino": f.get("ino"),
                    "extents": [(int(e[0]), int(e[1]), int(e[2])) for e in f.get("extents", [])],
                }
                for f in rep["files"]
            }
    raise ValueError("the agent's reports have no final report (FIEMAP of the files)")


# ---------------------------------------------------------------------------- comparison
@dataclass
class PageView:
    """One side's page state of a script's end, keyed by file and offset.

    Attributes
    ----------
    blocks : dict
        ``(path, page offset) -> (owner, word, order)`` of the folio holding each mapped
        block of each file whose state is not ``(NULL, 0)``; the owner is a file name,
        ``NULL`` or ``flag`` (``PAGE_MAPPING_DAX_COW`` / ``PAGE_MAPPING_DAX_SHARED``).
    residue_pages : int
        Pages with the flag and a zero count: the seed's ``(PAGE_MAPPING_DAX_COW, 0)``.
    phantom_pages : int
        Folio designs: order-0 pages that ``dax_folio_is_shared()`` calls shared (mapping
        NULL, share > 0) with a share above the number of file offsets mapping the block,
        which no sequence of associations can give: a stale ``index`` read as ``share``.
    share_degrees : dict
        Pages by share degree (flag designs: the count under the flag; folio designs: the
        share of Shared folios, phantoms excluded).
    """

    blocks: dict
    residue_pages: int
    phantom_pages: int
    share_degrees: dict


def _page_view(design, mapping_name, word, order, files) -> PageView:
    """The :class:`PageView` of per-page words (device-relative block numbers as indices).

    ``mapping_name[b]``: owner of block ``b``'s folio ("NULL", "flag" or a file name);
    ``word[b]``, ``order[b]``: the folio's index/share word and order; ``files``:
    ``path -> (page offsets, blocks)`` of each file's mapped blocks.
    """
    from sim.memmap import get_variant

    v = get_variant(design)
    n = word.shape[0]
    refs = np.zeros(n, dtype=_I64)
    for _off, blk in files.values():
        np.add.at(refs, blk[(blk >= 0) & (blk < n)], 1)
    is_null = mapping_name == "NULL"
    residue = phantom = 0
    degree = np.full(n, -1, dtype=_I64)
    if v.flag_sentinel:
        flag = mapping_name == "flag"
        residue = int(np.count_nonzero(flag & (word == 0)))
        degree[flag] = word[flag]
    elif v.folio:
        shared = is_null & (word > 0)
        ghost = shared & (order == 0) & (word > refs)
        phantom = int(np.count_nonzero(ghost))
        real = shared & ~ghost
        degree[real] = word[real]
    d, c = np.unique(degree[degree >= 0], return_counts=True)
    blocks = {}
    for path, (off, blk) in files.items():
        for o, b in zip(off.tolist(), blk.tolist(), strict=True):
            if not 0 <= b < n or (is_null[b] and word[b] == 0):
                continue
            blocks[(path, o)] = (str(mapping_name[b]), int(word[b]), int(order[b]))
    return PageView(blocks, residue, phantom, dict(zip(d.tolist(), c.tolist(), strict=True)))


def _owner_labels(sel, mapping, heads, files, files_blocks, ino_of) -> dict:
    """A file name for each owner pointer: by inode number when the agent gives inodes, else
    the one file whose FIEMAP puts every page the pointer owns at the page's index."""
    by_ino = {int(f["ino"]): path for path, f in files.items() if f.get("ino") is not None}
    where = {
        path: dict(zip(blk.tolist(), off.tolist(), strict=True))
        for path, (off, blk) in files_blocks.items()
    }
    out = {}
    owned = (mapping != 0) & (mapping != FLAG_MAPPING)
    for ptr in np.unique(mapping[owned]).tolist():
        ino = ino_of.get(int(ptr))
        if ino in by_ino:
            out[ptr] = by_ino[ino]
            continue
        blocks = np.unique(heads[mapping == ptr])
        idx = sel.index[blocks]
        fits = [
            path
            for path, w in where.items()
            if all(w.get(b) == i for b, i in zip(blocks.tolist(), idx.tolist(), strict=True))
        ]
        if len(fits) == 1:
            out[ptr] = fits[0]
        else:
            out[ptr] = f"ino {ino}" if ino is not None else f"{ptr & (2**64 - 1):#x}"
    return out


def _without_carried(sel: KernelPages, base: KernelPages) -> KernelPages:
    """``sel`` with the pages left as they were at the script's start by earlier scripts of
    the boot (not ``(NULL, 0)`` then, unchanged since) read as ``(NULL, 0)``, order 0."""
    carried = (
        base.present
        & ((base.mapping != 0) | (base.index != 0) | (base.order != 0))
        & (sel.mapping == base.mapping)
        & (sel.index == base.index)
        & (sel.order == base.order)
        & (sel.head == base.head)
    )
    if not carried.any():
        return sel
    return KernelPages(
        sel.pfn,
        sel.present,
        np.where(carried, 0, sel.mapping),
        np.where(carried, 0, sel.index),
        np.where(carried, 0, sel.order),
        np.where(carried, sel.pfn, sel.head),
        sel.pgmap,
        dict(sel.ino),
    )


def kernel_view(
    pages: KernelPages,
    design: str,
    files: dict,
    data_start_bytes: int,
    data_bytes: int,
    baseline: KernelPages | None = None,
) -> PageView:
    """The kernel side's :class:`PageView`.

    Parameters
    ----------
    pages : KernelPages
        Struct pages read at the pause (covering the pfn device's data area).
    design : str
        The daxsim design the kernel runs (flag or folio family).
    files : dict
        ``path -> {"ino": int, "extents": [(logical_bytes, physical_bytes, length_bytes)]}``:
        the agent's FIEMAP at the end (physical offsets on the block device) and inode.
    data_start_bytes, data_bytes : int
        Guest physical address and size of the pfn device's data area (its sysfs
        ``resource`` and ``size``): byte 0 of the block device.
    baseline : KernelPages, optional
        The struct pages at the script's start (a pause named ``NAME`` +
        :data:`BASELINE_SUFFIX` before its ``@mkfs``). struct pages outlive a filesystem
        (the seed's residue survives the unmount); the rig's guest re-initialises them
        before each script, so the baseline reads all ``(NULL, 0)``. A guard for a guest
        where that failed (the script's error says so): pages unchanged since the baseline
        are read as ``(NULL, 0)``, so that the view is the script's own, as daxsim's is.

    Raises
    ------
    ValueError
        The pages of the data area do not all point at one ``dev_pagemap`` (not the pmem's
        struct pages), or a folio's head lies before the data area.
    """
    p0 = data_start_bytes // PAGE_BYTES
    n = data_bytes // PAGE_BYTES
    sel = pages.select(np.arange(p0, p0 + n, dtype=_I64))
    pgmaps = np.unique(sel.pgmap[sel.present & (sel.order >= 0)])
    if not sel.present.all() or pgmaps.size != 1 or pgmaps[0] == 0:
        raise ValueError(
            "the struct pages read are not the pmem's (every page of the data area should "
            "point at one dev_pagemap): wrong vmemmap_base or data area?"
        )
    if baseline is not None:
        sel = _without_carried(sel, baseline.select(sel.pfn))
    heads = sel.head - p0
    if heads.min(initial=0) < 0:
        raise ValueError("a folio's head lies before the data area")
    files_blocks = {}
    for path, f in files.items():
        off, blk = [], []
        for logical, physical, length in f["extents"]:
            k = np.arange(length // PAGE_BYTES, dtype=_I64)
            off.append(logical // PAGE_BYTES + k)
            blk.append(physical // PAGE_BYTES + k)
        cat = (np.concatenate(off), np.concatenate(blk)) if off else (np.zeros(0, _I64),) * 2
        files_blocks[path] = cat
    mapping = sel.mapping[heads]
    name = np.full(n, "NULL", dtype=object)
    name[mapping == FLAG_MAPPING] = "flag"
    labels = _owner_labels(sel, mapping, heads, files, files_blocks, pages.ino)
    for ptr, label in labels.items():
        name[mapping == ptr] = label
    order = sel.order[heads]
    return _page_view(design, name, sel.index[heads], order, files_blocks)


def daxsim_view(dax) -> PageView:
    """daxsim's :class:`PageView` of a :class:`sim.dax.DaxFS` (before its unmount)."""
    mm = dax.mm
    fs = dax.fs
    n = mm.mapping.shape[0]
    head = np.arange(n, dtype=_I64)
    order = np.zeros(n, dtype=_I64)
    if mm.variant.folio:
        big = np.flatnonzero(mm.folio_orders > 0).astype(_I64)
        for b in big.tolist():
            h = b * 512
            head[h : h + 512] = h
            order[h : h + 512] = int(mm.folio_orders[b])
    mapping = mm.mapping[head]
    word = mm.index[head].copy()
    name = np.full(n, "NULL", dtype=object)
    name[mapping == -1] = "flag"
    for mid in np.unique(mapping[mapping >= 1]).tolist():
        ino = next((a.ino for a in dax.spaces.values() if a.mid == mid), mid)
        name[mapping == mid] = fs.path_of(ino) or f"ino {ino}"
    files = {}
    for path in fs.paths():
        ino = fs.lookup(path)
        nb = -(-fs.size(ino) // PAGE_BYTES)
        off, blk = [], []
        for e in fs.bmap(ino, 0, nb) if nb else []:
            if e.pblock >= 0:
                off.append(e.fblock + np.arange(e.nblocks, dtype=_I64))
                blk.append(e.pblock + np.arange(e.nblocks, dtype=_I64))
        files[path] = (
            (np.concatenate(off), np.concatenate(blk)) if off else (np.zeros(0, _I64),) * 2
        )
    return _page_view(mm.variant.name, name, word, order, files)


_NULL_BLOCK = ("NULL", 0, 0)


def _render(state, npages: int) -> str:
    owner, word, order = state
    if owner not in ("NULL", "flag") and order == 0 and npages > 1:
        text = f"({owner}, {word}..{word + npages - 1})"
    else:
        text = f"({owner}, {word})"
    return text + (f" order {order}" if order else "")


def _norm(state, off: int):
    """A block's state with an owner's index taken relative to the file offset, so that a
    run of consecutive pages of one owner compares as one."""
    owner, word, order = state
    if owner not in ("NULL", "flag") and order == 0:
        return owner, word - off, order
    return state


def compare_views(kernel: PageView, daxsim: PageView) -> list[tuple[str, str, str, bool]]:
    """Observations ``(observation, kernel_value, daxsim_value, agree)`` of two views.

    One row each for ``residue_pages``, ``phantom_pages`` and ``share_degrees``, then one
    ``pages PATH:OFF+LEN`` row (bytes) per run of consecutive pages of a file whose state is
    not ``(NULL, 0)`` on one side at least and whose states go on alike on each side (the
    same owner with the index advancing by one page per page, or the same folio): values
    read ``(owner, index or share)``, ``(owner, first..last)`` for a run of owned pages,
    with `` order N`` for a large folio.
    """

    def degrees(d):
        return " ".join(f"{k}:{v}" for k, v in sorted(d.items())) or "-"

    rows = [
        ("residue_pages", str(kernel.residue_pages), str(daxsim.residue_pages), None),
        ("phantom_pages", str(kernel.phantom_pages), str(daxsim.phantom_pages), None),
        ("share_degrees", degrees(kernel.share_degrees), degrees(daxsim.share_degrees), None),
    ]
    run = None  # [path, first off, npages, kernel state, daxsim state, norm key]

    def flush():
        if run is not None:
            path, first, npages, ks, ds, _key = run
            rows.append(
                (
                    f"pages {path}:{first * PAGE_BYTES}+{npages * PAGE_BYTES}",
                    _render(ks, npages),
                    _render(ds, npages),
                    _norm(ks, first) == _norm(ds, first),
                )
            )

    for path, off in sorted(set(kernel.blocks) | set(daxsim.blocks)):
        ks = kernel.blocks.get((path, off), _NULL_BLOCK)
        ds = daxsim.blocks.get((path, off), _NULL_BLOCK)
        key = (_norm(ks, off), _norm(ds, off))
        if run is not None and run[0] == path and run[1] + run[2] == off and run[5] == key:
            run[2] += 1
            continue
        flush()
        run = [path, off, 1, ks, ds, key]
    flush()
    return [(o, k, d, k == d if a is None else a) for o, k, d, a in rows]


def page_observations(
    pages: KernelPages,
    reports: list[dict],
    iomem: str,
    design: str,
    dax,
    baseline: KernelPages | None = None,
):
    """Page-state observations of one script: the kernel's struct pages read at the pause
    against daxsim's state of the same script under the kernel's design, before the unmount.

    Parameters
    ----------
    pages : KernelPages
        From :class:`PageCapture` (the script's entry).
    reports : list of dict
        The agent's reports of the script (its ``final`` report gives every file's FIEMAP).
    iomem : str
        The rig's iomem report (the pfn device's data start and size).
    design : str
        The kernel's daxsim design.
    dax : sim.dax.DaxFS
        daxsim's filesystem after the script's commands (not unmounted).
    baseline : KernelPages, optional
        The struct pages at the script's start (see :func:`kernel_view`).

    Returns
    -------
    list of (observation, kernel_value, daxsim_value, agree)
        See :func:`compare_views`.
    """
    start, size = data_area(iomem)
    kv = kernel_view(pages, design, final_files(reports), start, size, baseline)
    return compare_views(kv, daxsim_view(dax))


def daxsim_before_unmount(commands, filename: str, design: str):
    """daxsim's filesystem after a parsed script's commands, before the unmount that ends the
    script on the kernel (the state the pause reads there).

    Returns
    -------
    sim.dax.DaxFS
    """
    from sim.hunt.invariants import runner_invariants
    from sim.xfsio.runner import RIG_STRIPE_UNIT_BYTES, XfsioRunner

    # The hunt's invariants too, so that a hunt reproducer (``@expect_invariant
    # association_truth violated``) runs here as in ``daxsim xfsio``.
    r = XfsioRunner(
        design,
        filename=filename,
        invariants=runner_invariants(),
        stripe_unit_bytes=RIG_STRIPE_UNIT_BYTES,  # the rig's @mkfs: mkfs.xfs -d su=2m,sw=1
    )
    r.run(commands)
    r.close()
    return r.dax
