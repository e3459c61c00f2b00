"""Page state read from a kernel (sim.kernel.pagestate, sim.kernel.btf), on synthetic images.

The BTF blobs here are built by a small writer that follows the format of the kernel's
Documentation/bpf/btf.rst, with ``struct page`` / ``struct folio`` shaped as in 6.1 and in
7.3; guest memory is a synthetic physical image behind a fake QEMU monitor that answers
``gva2gpa``, ``x /Ngx``, ``info registers`` and ``pmemsave`` from its own page table.
"""

from __future__ import annotations

import gzip
import lzma
import struct

import numpy as np
import pytest

from sim.kernel import pagestate as ps
from sim.kernel.btf import Btf, BtfError
from sim.xfsio.runner import run_script

# ----------------------------------------------------------------------------- a BTF writer


class BtfWriter:
    """Builds BTF bytes: type ids from 1, in the order added."""

    def __init__(self):
        self.strings = bytearray(b"\0")
        self.types = []

    def _s(self, name):
        if not name:
            return 0
        off = len(self.strings)
        self.strings += name.encode() + b"\0"
        return off

    def _add(self, rec):
        self.types.append(rec)
        return len(self.types)

    def int_(self, name, size):
        return self._add(
            struct.pack("<3I", self._s(name), 1 << 24, size) + struct.pack("<I", size * 8)
        )

    def ptr(self, target=0):
        return self._add(struct.pack("<3I", 0, 2 << 24, target))

    def typedef(self, name, target):
        return self._add(struct.pack("<3I", self._s(name), 8 << 24, target))

    def array(self, elem, index_type, n):
        return self._add(
            struct.pack("<3I", 0, 3 << 24, 0) + struct.pack("<3I", elem, index_type, n)
        )

    def struct(self, name, size, members, union=False, kflag=False):
        """``members``: (name, type id, bit offset[, bitfield size])."""
        info = ((5 if union else 4) << 24) | len(members) | (int(kflag) << 31)
        rec = struct.pack("<3I", self._s(name), info, size)
        for m in members:
            off = m[2] | (m[3] << 24 if kflag and len(m) > 3 else 0)
            rec += struct.pack("<3I", self._s(m[0]), m[1], off)
        return self._add(rec)

    def enum(self, name, values):
        rec = struct.pack("<3I", self._s(name), (6 << 24) | len(values), 4)
        for n, v in values:
            rec += struct.pack("<Ii", self._s(n), v)
        return self._add(rec)

    def func_proto(self, ret, params):
        rec = struct.pack("<3I", 0, (13 << 24) | len(params), ret)
        for n, t in params:
            rec += struct.pack("<2I", self._s(n), t)
        return self._add(rec)

    def bytes(self):
        types = b"".join(self.types)
        hdr = struct.pack("<HBBI", 0xEB9F, 1, 0, 24)
        hdr += struct.pack("<4I", 0, len(types), len(types), len(self.strings))
        return hdr + types + bytes(self.strings)


#: Offsets used by the synthetic kernels (as 6.1's and 7.3's struct page on x86-64, except
#: where moved on purpose to check that nothing is assumed: PG_head, host, i_ino).
PG_HEAD = 6
HOST_OFF = 8
I_INO_OFF = 72


def kernel_btf(era: str) -> bytes:
    """BTF of a synthetic kernel shaped as 6.1 (``page->index``, ``compound_head``,
    ``page->pgmap``, ``folio->_folio_order``) or as 7.3 (``page->__folio_index`` in a union
    with ``share``, ``compound_info``, ``folio->pgmap``, ``folio->share``, the order in
    ``folio->_flags_1``, flags a struct as ``memdesc_flags_t``)."""
    w = BtfWriter()
    ul = w.int_("long unsigned int", 8)
    uc = w.int_("unsigned char", 1)
    ui = w.int_("unsigned int", 4)
    vp = w.ptr(0)
    pgoff = w.typedef("pgoff_t", ul)
    lh = w.struct("list_head", 16, [("next", vp, 0), ("prev", vp, 64)])
    if era == "7.3":
        flags_t = w.typedef("memdesc_flags_t", w.struct("", 8, [("f", ul, 0)]))
        idx = w.struct("", 8, [("__folio_index", pgoff, 0), ("share", ul, 0)], union=True)
        a = w.struct(
            "", 40, [("lru", lh, 0), ("mapping", vp, 128), ("", idx, 192), ("private", ul, 256)]
        )
        dev = w.struct("", 16, [("_unused_pgmap_compound_info", vp, 0), ("zd", vp, 64)])
        comp = w.struct("", 8, [("compound_info", ul, 0)])
    else:
        flags_t = ul
        a = w.struct(
            "",
            40,
            [("lru", lh, 0), ("mapping", vp, 128), ("index", pgoff, 192), ("private", ul, 256)],
        )
        dev = w.struct("", 16, [("pgmap", vp, 0), ("zone_device_data", vp, 64)])
        comp = w.struct("", 8, [("compound_head", ul, 0)])
    u = w.struct("", 40, [("", a, 0), ("", dev, 0), ("", comp, 0)], union=True)
    w.struct(
        "page",
        64,
        [("flags", flags_t, 0), ("", u, 64), ("_mapcount", ui, 384), ("_refcount", ui, 416)],
    )
    if era == "7.3":
        fidx = w.struct("", 8, [("index", pgoff, 0), ("share", ul, 0)], union=True)
        flru = w.struct("", 16, [("lru", lh, 0), ("pgmap", vp, 0)], union=True)
        w.struct(
            "folio",
            128,
            [
                ("flags", flags_t, 0),
                ("", flru, 64),
                ("mapping", vp, 192),
                ("", fidx, 256),
                ("_flags_1", ul, 512),
            ],
        )
    else:
        w.struct(
            "folio",
            112,
            [
                ("flags", flags_t, 0),
                ("mapping", vp, 192),
                ("index", pgoff, 256),
                ("_folio_dtor", uc, 640),
                ("_folio_order", uc, 648),
            ],
        )
    # bitfields before host: a kind_flag struct
    w.struct(
        "address_space",
        64,
        [("a_bits", ui, 0, 3), ("b_bits", ui, 3, 5), ("host", vp, HOST_OFF * 8)],
        kflag=True,
    )
    arr = w.array(ul, ui, 9)
    w.struct("inode", 128, [("i_pad", arr, 0), ("i_ino", ul, I_INO_OFF * 8)])
    w.enum("pageflags", [("PG_locked", 0), ("PG_referenced", 1), ("PG_head", PG_HEAD)])
    w.func_proto(0, [("x", ul)])
    return w.bytes()


# ----------------------------------------------------------------------------- the reader


def test_btf_offsets_through_anonymous_members_and_typedefs():
    b = Btf(kernel_btf("6.1"))
    assert b.offset_of("page", "mapping") == 24
    assert b.offset_of("page", "index") == 32
    assert b.offset_of("page", "pgmap") == 8
    assert b.offset_of("page", "compound_head") == 8
    assert b.offset_of("page", "lru.prev") == 16
    assert b.offset_of("folio", "_folio_order") == 81
    assert b.sizeof("page") == 64 and b.sizeof("folio") == 112 and b.sizeof("inode") == 128
    assert b.member_size("inode", "i_pad") == 72
    assert b.offset_of("address_space", "host") == HOST_OFF
    assert b.enum_value("pageflags", "PG_head") == PG_HEAD
    assert not b.has_member("page", "share")


def test_btf_share_union_of_7_3():
    b = Btf(kernel_btf("7.3"))
    assert b.offset_of("folio", "share") == b.offset_of("folio", "index") == 32
    assert b.offset_of("page", "share") == b.offset_of("page", "__folio_index") == 32
    assert b.offset_of("folio", "pgmap") == 8 and not b.has_member("page", "pgmap")
    assert b.offset_of("page", "compound_info") == 8
    assert b.offset_of("page", "flags.f") == 0


def test_btf_errors():
    data = kernel_btf("6.1")
    with pytest.raises(BtfError, match="magic"):
        Btf(b"\0" * 40)
    with pytest.raises(BtfError, match="beyond"):
        Btf(data[:-10])
    b = Btf(data)
    with pytest.raises(BtfError, match="no member"):
        b.offset_of("page", "nope")
    with pytest.raises(BtfError, match="no struct"):
        b.offset_of("pagex", "flags")
    with pytest.raises(BtfError, match="bitfield"):
        b.offset_of("address_space", "b_bits")
    with pytest.raises(BtfError, match="no enum"):
        b.enum_value("nope", "x")


@pytest.mark.parametrize("era,order_off,word", [("6.1", 81, "index"), ("7.3", 64, "folio->share")])
def test_layout_from_btf(era, order_off, word):
    lay = ps.PageLayout.from_btf(kernel_btf(era))
    assert lay.page_struct_bytes == 64
    assert (lay.flags_off, lay.pgmap_off, lay.mapping_off, lay.index_off) == (0, 8, 24, 32)
    assert lay.compound_off == 8
    assert lay.order_off == order_off and lay.share_word == word
    assert lay.pg_head_bit == PG_HEAD
    assert (lay.host_off, lay.i_ino_off) == (HOST_OFF, I_INO_OFF)


def _elf_with(sections):
    """A minimal little-endian ELF64 holding ``sections`` (name -> bytes)."""
    allsec = {".shstrtab": b"", **sections}
    names = b"\0" + b"".join(n.encode() + b"\0" for n in allsec)
    allsec[".shstrtab"] = names
    body = bytearray(64)
    sh = [bytes(64)]  # the null section
    name_off = 1
    for n, data in allsec.items():
        sh.append(struct.pack("<IIQQQQIIQQ", name_off, 1, 0, 0, len(body), len(data), 0, 0, 1, 0))
        name_off += len(n) + 1
        body += data
    shoff = len(body)
    body += b"".join(sh)
    body[0:16] = b"\x7fELF\x02\x01\x01" + bytes(9)
    struct.pack_into("<Q", body, 0x28, shoff)
    struct.pack_into("<3H", body, 0x3A, 64, len(sh), 1)
    return bytes(body)


def _bzimage(path, payload: bytes) -> None:
    """A bzImage: a setup header (4 setup sectors) whose payload_offset/length locate
    ``payload`` in the protected-mode part (Documentation/arch/x86/boot.rst)."""
    setup = bytearray(5 * 512)
    setup[0x1F1] = 4
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<II", setup, 0x248, 0x40, len(payload))
    path.write_bytes(bytes(setup) + b"\0" * 0x40 + payload + b"\0" * 16)


@pytest.mark.parametrize("compress", [lzma.compress, gzip.compress])
def test_btf_from_vmlinuz(tmp_path, compress):
    btf = kernel_btf("7.3")
    elf = _elf_with({".text": b"\x90" * 100, ".BTF": btf})
    assert ps.elf_section(elf, ".BTF") == btf
    image = tmp_path / "vmlinuz"
    _bzimage(image, compress(elf))
    assert ps.btf_from_vmlinuz(image) == btf
    _bzimage(image, compress(_elf_with({".text": b"\x90"})))
    with pytest.raises(BtfError, match="no .BTF"):
        ps.btf_from_vmlinuz(image)


def test_pmem_range_data_area_and_final_files():
    cmd = "console=ttyS0 memmap=512M!1G rdinit=/init nokaslr"
    assert ps.pmem_range(cmd) == (1 << 30, 512 << 20)
    assert ps.pmem_range("memmap=4G!12g") == (12 << 30, 4 << 30)
    with pytest.raises(ValueError, match="memmap"):
        ps.pmem_range("console=ttyS0 memmap=512M$1G")
    iomem = (
        "40000000-5fffffff : Persistent Memory (legacy)\n"
        "/sys/bus/nd/devices/pfn0.0/resource 0x40a00000\n"
        "/sys/bus/nd/devices/pfn0.0/size 526385152\n"
    )
    assert ps.data_area(iomem) == (0x40A00000, 526385152)
    with pytest.raises(ValueError, match="pfn device"):
        ps.data_area(iomem.splitlines()[0])
    reports = [
        {"op": "pwrite", "line": 3},
        {
            "op": "final",
            "files": [
                {"path": "f1", "size": 8192, "md5": "x", "extents": [[0, 8192, 8192, 1]]},
                {"path": "g", "size": 0, "ino": 7, "extents": []},
            ],
        },
        {"op": "umount"},
    ]
    assert ps.final_files(reports) == {
        "f1": {"ino": None, "extents": [(0, 8192, 8192)]},
        "g": {"ino": 7, "extents": []},
    }
    with pytest.raises(ValueError, match="final"):
        ps.final_files(reports[:1])


# ----------------------------------------------------------------------------- guest memory

PAGE = 4096
GIB = 1 << 30


class FakeMonitor:
    """A guest: 4 KiB pages of physical memory and a kernel page table (va page -> pa page)."""

    def __init__(self, cr4):
        self.cr4 = cr4
        self.phys = {}  # pa page -> bytearray
        self.table = {}  # va page -> pa page
        self.calls = {"gva2gpa": 0, "pmemsave": 0}

    def map(self, va, pa, nbytes):
        for k in range(-(-nbytes // PAGE)):
            self.table[va // PAGE + k] = pa // PAGE + k
            self.phys.setdefault(pa // PAGE + k, bytearray(PAGE))

    def write_virtual(self, va, data):
        for k in range(len(data)):
            a = va + k
            self.phys[self.table[a // PAGE]][a % PAGE] = data[k]

    def read_physical(self, pa, n):
        out = bytearray()
        for a in range(pa, pa + n):
            page = self.phys.get(a // PAGE)
            if page is None:
                raise AssertionError(f"read of unbacked physical {a:#x}")
            out.append(page[a % PAGE])
        return bytes(out)

    def _gpa(self, va):
        p = self.table.get(va // PAGE)
        return None if p is None else p * PAGE + va % PAGE

    def hmp(self, cmd):
        words = cmd.split()
        if cmd == "info registers":
            return f"RIP=ffffffff81000000 RFL=00000246\r\nCR0=80050033 CR4={self.cr4:08x}\r\n"
        if words[0] == "gva2gpa":
            self.calls["gva2gpa"] += 1
            g = self._gpa(int(words[1], 16))
            return "Unmapped\r\n" if g is None else f"gpa: {g:#x}\r\n"
        if words[0] == "x":
            n = int(words[1][1:-2])
            va = int(words[2], 16)
            vals = [
                struct.unpack("<Q", self.read_physical(self._gpa(va + 8 * k), 8))[0]
                for k in range(n)
            ]
            return "".join(
                f"{va + 16 * j:016x}: "
                + " ".join(f"0x{v:016x}" for v in vals[2 * j : 2 * j + 2])
                + "\r\n"
                for j in range(-(-n // 2))
            )
        raise AssertionError(f"unexpected monitor command {cmd!r}")

    def pmemsave(self, addr, size):
        self.calls["pmemsave"] += 1
        return self.read_physical(addr, size)


def test_vmemmap_base_by_paging_mode_or_symbol():
    assert ps.vmemmap_base(FakeMonitor(0x751EF0)) == ps.VMEMMAP_BASE_L5  # LA57 set
    assert ps.vmemmap_base(FakeMonitor(0x750EF0)) == ps.VMEMMAP_BASE_L4
    m = FakeMonitor(0x750EF0)
    m.map(0xFFFFFFFF82415000, 0x2415000, PAGE)
    m.write_virtual(0xFFFFFFFF82415730, struct.pack("<Q", 0xFFFFEA1234000000))
    assert ps.vmemmap_base(m, symbol_address=0xFFFFFFFF82415730) == 0xFFFFEA1234000000


def test_read_virtual_contiguous_split_and_unmapped():
    m = FakeMonitor(0)
    va = 0xFFD4000001000000  # 2 MiB aligned
    # first 2 MiB contiguous; the next 2 MiB: pages scattered, one missing
    m.map(va, 0x7D200000, 2 << 20)
    for k in range(8):
        if k != 5:
            m.map(va + (2 << 20) + k * PAGE, 0x10000000 + (7 - k) * PAGE * 3, PAGE)
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (2 << 20) + 8 * PAGE, dtype=np.uint8).tobytes()
    for k in range(len(img) // PAGE):
        if m._gpa(va + k * PAGE) is not None:
            m.write_virtual(va + k * PAGE, img[k * PAGE : (k + 1) * PAGE])
    start = va + 100
    data, mapped = ps.read_virtual(m, start, len(img) - 200)
    want = bytearray(img[100:-100])
    hole = (2 << 20) + 5 * PAGE - 100
    want[hole : hole + PAGE] = bytes(PAGE)
    assert data == bytes(want)
    assert mapped.tolist() == [True] * 517 + [False] + [True] * 2
    # the contiguous 2 MiB chunk cost one pmemsave
    assert m.calls["pmemsave"] == 1 + 7


# ----------------------------------------------------------------------------- decoding


def _image(layout, pages):
    """Raw struct pages: ``pages`` maps an index to a dict of word name -> value (``order``:
    a head page's folio order, written where the layout keeps it, in the next struct page)."""
    n = max(pages) + 1
    raw = np.zeros((n, layout.page_struct_bytes), dtype=np.uint8)
    off = {
        "flags": layout.flags_off,
        "mapping": layout.mapping_off,
        "index": layout.index_off,
        "pgmap": layout.pgmap_off,
    }
    for k, words in pages.items():
        for name, v in words.items():
            if name == "order":
                page, o = divmod(layout.order_off, layout.page_struct_bytes)
                raw[k + page, o] = v
            else:
                raw[k, off[name] : off[name] + 8] = np.frombuffer(
                    struct.pack("<Q", v & (2**64 - 1)), np.uint8
                )
    return raw


PGMAP = 0xFF1100007D163AB0
AS_F1 = 0xFF11000007C2F2B0


@pytest.mark.parametrize("era", ["6.1", "7.3"])
def test_decode_base_head_and_tail_pages(era):
    lay = ps.PageLayout.from_btf(kernel_btf(era))
    head_flag = 1 << lay.pg_head_bit
    pages = {k: {"pgmap": PGMAP} for k in range(1536)}
    pages[3] = {"pgmap": PGMAP, "mapping": AS_F1, "index": 7}
    pages[4] = {"pgmap": PGMAP, "mapping": 1, "index": 0}  # the seed's residue
    pages[5] = {"pgmap": PGMAP, "index": 5}  # NULL with a word
    head = 512
    pages[head] = {"pgmap": PGMAP, "flags": head_flag | 0x200, "index": 3, "order": 9}
    headva = 0xFFD4000000000000 + (1000 + head) * lay.page_struct_bytes
    for k in range(head + 1, head + 512):
        pages[k]["pgmap"] = headva | 1  # compound_head
    raw = _image(lay, pages)
    present = np.ones(raw.shape[0], bool)
    present[1535] = False
    kp = ps.decode_struct_pages(raw, present, lay, 1000)
    assert kp.pfn[0] == 1000 and kp.pfn.size == 1536
    assert (kp.mapping[3], kp.index[3], kp.order[3], kp.head[3]) == (
        AS_F1 - 2**64,
        7,
        0,
        1003,
    )
    assert (kp.mapping[4], kp.index[4]) == (1, 0)
    assert (kp.mapping[5], kp.index[5]) == (0, 5)
    assert kp.order[head] == 9 and kp.head[head] == 1000 + head
    assert (kp.order[head + 1 : head + 512] == -1).all()
    assert (kp.head[head + 1 : head + 512] == 1000 + head).all()
    assert kp.order[head + 512] == 0 and kp.head[head + 512] == 1000 + head + 512
    assert (kp.pgmap[kp.order >= 0][:-1] == PGMAP - 2**64).all()
    assert kp.owners().tolist() == [AS_F1 - 2**64]
    assert not kp.present[1535] and kp.mapping[1535] == 0


def _guest_with_pages(lay, pfn_first, pages, cr4=0x751EF0):
    """A FakeMonitor whose vmemmap holds ``pages`` (see _image) from ``pfn_first``."""
    m = FakeMonitor(cr4)
    raw = _image(lay, pages)
    base = ps.vmemmap_base(m)
    va = base + pfn_first * lay.page_struct_bytes
    m.map(va - va % PAGE, 0x40000000 + (va % (2 << 20)) - va % PAGE, raw.nbytes + PAGE)
    m.write_virtual(va, raw.tobytes())
    return m


def test_page_capture_reads_decodes_and_resolves_inodes():
    lay = ps.PageLayout.from_btf(kernel_btf("6.1"))
    pfn0 = (1 << 18) + 10
    pages = {k: {"pgmap": PGMAP} for k in range(64)}
    pages[20] = {"pgmap": PGMAP, "mapping": AS_F1, "index": 2}
    pages[21] = {"pgmap": PGMAP, "mapping": 1, "index": 3}
    m = _guest_with_pages(lay, pfn0, pages)
    # the address_space and its inode, in the direct map
    m.map(AS_F1 & ~(PAGE - 1), 0x7C2F000, PAGE)
    inode = 0xFF11000007D00000
    m.map(inode, 0x7D00000, PAGE)
    m.write_virtual(AS_F1 + lay.host_off, struct.pack("<Q", inode))
    m.write_virtual(inode + lay.i_ino_off, struct.pack("<Q", 4101))
    cap = ps.PageCapture(lay, pfn0, 64)
    cap(m, "s1")
    kp = cap.pages["s1"]
    assert kp.pfn[20] == pfn0 + 20
    assert (kp.mapping[20], kp.index[20]) == (AS_F1 - 2**64, 2)
    assert (kp.mapping[21], kp.index[21]) == (1, 3)
    assert kp.ino == {AS_F1 - 2**64: 4101}
    assert kp.present.all()


# ----------------------------------------------------------------------------- comparison

RESIDUE = """@mkfs size=32m
open -f f2
pwrite -S 0x61 -b 64k 0 64k
fsync
open -f f1
reflink f2
close
close
open f2
mmap -w 0 64k
mwrite -S 0x62 0 1
munmap
close
open -f g
pwrite -S 0x63 0 16k
fsync
mmap -r 0 16k
mread 0 16k
munmap
close
"""


def _kernel_side(lay, pages, files, data_pfn, design):
    m = _guest_with_pages(lay, data_pfn, pages)
    for ptr, ino in ((AS_F1, 4101),):
        m.map(ptr & ~(PAGE - 1), 0x7C2F000, PAGE)
        m.map(0xFF11000007D00000, 0x7D00000, PAGE)
        m.write_virtual(ptr + lay.host_off, struct.pack("<Q", 0xFF11000007D00000))
        m.write_virtual(0xFF11000007D00000 + lay.i_ino_off, struct.pack("<Q", ino))
    cap = ps.PageCapture(lay, data_pfn, max(pages) + 1)
    cap(m, "s")
    return ps.kernel_view(cap.pages["s"], design, files, data_pfn * PAGE, (max(pages) + 1) * PAGE)


def test_compare_agrees_with_daxsim_on_what_6_1_does():
    # What 6.1 leaves (fs/dax.c, dax_mapping_set_cow on the CoW block of f2's page 0; g's
    # four read faults associate (g's address_space, 0..3)); another allocator's placement.
    lay = ps.PageLayout.from_btf(kernel_btf("6.1"))
    data_pfn = 264704
    pages = {k: {"pgmap": PGMAP} for k in range(600)}
    pages[536] = {"pgmap": PGMAP, "mapping": 1, "index": 1}
    for k in range(4):
        pages[568 + k] = {"pgmap": PGMAP, "mapping": AS_F1, "index": k}
    files = {
        "f1": {"ino": 4100, "extents": [(0, 520 * PAGE, 65536)]},
        "f2": {"ino": 4099, "extents": [(0, 536 * PAGE, 4096), (4096, 521 * PAGE, 61440)]},
        "g": {"ino": 4101, "extents": [(0, 568 * PAGE, 16384)]},
    }
    kv = _kernel_side(lay, pages, files, data_pfn, "cow-index")
    rows = {
        o: (k, d, a)
        for o, k, d, a in ps.compare_views(
            kv, ps.daxsim_view(run_script(RESIDUE, variant="cow-index").dax)
        )
    }
    assert rows["pages f2:0+4096"] == ("(flag, 1)", "(flag, 1)", True)
    assert rows["pages g:0+16384"] == ("(g, 0..3)", "(g, 0..3)", True)
    assert all(a for _k, _d, a in rows.values())
    assert rows["share_degrees"][0] == "1:1"
    # the same kernel pages against a design that does not flag the CoW block
    rows = ps.compare_views(kv, ps.daxsim_view(run_script(RESIDUE, variant="single-owner").dax))
    bad = [r for r in rows if not r[3]]
    assert ("pages f2:0+4096", "(flag, 1)", "(f2, 0)", False) in bad  # one owner, no flag


def test_residue_on_a_free_block_is_counted():
    lay = ps.PageLayout.from_btf(kernel_btf("6.1"))
    pages = {k: {"pgmap": PGMAP} for k in range(64)}
    pages[40] = {"pgmap": PGMAP, "mapping": 1, "index": 0}
    kv = _kernel_side(lay, pages, {}, 264704, "cow-index")
    assert (kv.residue_pages, kv.blocks, kv.share_degrees) == (1, {}, {0: 1})


def test_folio_views_tell_phantoms_from_shared_folios():
    lay = ps.PageLayout.from_btf(kernel_btf("7.3"))
    pages = {k: {"pgmap": PGMAP} for k in range(1024)}
    pages[10] = {"pgmap": PGMAP, "index": 2}  # Shared(2): a block of f1 and f2
    pages[11] = {"pgmap": PGMAP, "index": 9}  # stale index 9 under NULL: a phantom
    pages[512] = {"pgmap": PGMAP, "flags": 1 << lay.pg_head_bit, "mapping": AS_F1, "order": 9}
    for k in range(513, 1024):
        pages[k]["pgmap"] = 1
    files = {
        "f1": {"ino": 4101, "extents": [(0, 10 * PAGE, 2 * PAGE), (1 << 21, 512 * PAGE, 1 << 21)]},
        "f2": {"ino": 4102, "extents": [(0, 10 * PAGE, PAGE)]},
    }
    kv = _kernel_side(lay, pages, files, 262144, "folio-share-reset")
    assert kv.phantom_pages == 1
    assert kv.share_degrees == {2: 1}
    assert kv.blocks[("f1", 0)] == kv.blocks[("f2", 0)] == ("NULL", 2, 0)
    assert kv.blocks[("f1", 1)] == ("NULL", 9, 0)
    assert kv.blocks[("f1", 512)] == kv.blocks[("f1", 1023)] == ("f1", 0, 9)
    assert len(kv.blocks) == 2 + 1 + 512


def test_compare_groups_runs_and_splits_them_where_a_side_changes():
    def view(blocks):
        return ps.PageView(blocks, 0, 0, {})

    k = view(
        {("f", o): ("f", o, 0) for o in range(4)} | {("g", 0): ("g", 0, 9), ("g", 1): ("g", 0, 9)}
    )
    d = view(
        {("f", 0): ("f", 0, 0), ("f", 1): ("f", 1, 0), ("f", 3): ("f", 3, 0)}
        | {("g", 0): ("g", 0, 0), ("g", 1): ("g", 1, 0)}
    )
    rows = ps.compare_views(k, d)[3:]
    assert rows == [
        ("pages f:0+8192", "(f, 0..1)", "(f, 0..1)", True),
        ("pages f:8192+4096", "(f, 2)", "(NULL, 0)", False),
        ("pages f:12288+4096", "(f, 3)", "(f, 3)", True),
        ("pages g:0+8192", "(g, 0) order 9", "(g, 0..1)", False),
    ]


def test_owner_named_from_fiemap_when_the_agent_gives_no_inode():
    lay = ps.PageLayout.from_btf(kernel_btf("6.1"))
    pages = {k: {"pgmap": PGMAP} for k in range(64)}
    for k in range(3):
        pages[20 + k] = {"pgmap": PGMAP, "mapping": AS_F1, "index": 5 + k}
    # f and its clone h hold blocks 20..22 at offsets 5..7 and 0..2: only f fits the indexes
    files = {
        "f": {"ino": None, "extents": [(5 * PAGE, 20 * PAGE, 3 * PAGE)]},
        "h": {"ino": None, "extents": [(0, 20 * PAGE, 3 * PAGE)]},
    }
    kv = _kernel_side(lay, pages, files, 262144, "cow-index")
    assert kv.blocks[("f", 5)] == kv.blocks[("h", 0)] == ("f", 5, 0)
    # two files that fit alike: the owner stays a number
    files["h"]["extents"] = [(5 * PAGE, 20 * PAGE, 3 * PAGE)]
    kv = _kernel_side(lay, pages, files, 262144, "cow-index")
    assert kv.blocks[("f", 5)][0] == "ino 4101"


def test_pages_an_earlier_script_left_are_not_the_scripts_own():
    lay = ps.PageLayout.from_btf(kernel_btf("6.1"))
    files = {"f": {"ino": 4101, "extents": [(0, 20 * PAGE, 2 * PAGE)]}}
    start = {k: {"pgmap": PGMAP} for k in range(64)}
    start[40] = {"pgmap": PGMAP, "mapping": 1, "index": 0}  # a residue left behind
    start[20] = {"pgmap": PGMAP, "mapping": 1, "index": 0}  # another, on a block f reuses
    end = {k: dict(v) for k, v in start.items()}
    end[20] = {"pgmap": PGMAP, "mapping": AS_F1, "index": 0}  # f's fault overwrote it
    end[21] = {"pgmap": PGMAP, "mapping": AS_F1, "index": 1}

    def capture(pages):
        m = _guest_with_pages(lay, 262144, pages)
        m.map(AS_F1 & ~(PAGE - 1), 0x7C2F000, PAGE)
        m.map(0xFF11000007D00000, 0x7D00000, PAGE)
        m.write_virtual(AS_F1 + lay.host_off, struct.pack("<Q", 0xFF11000007D00000))
        m.write_virtual(0xFF11000007D00000 + lay.i_ino_off, struct.pack("<Q", 4101))
        cap = ps.PageCapture(lay, 262144, 64)
        cap(m, "s")
        return cap.pages["s"]

    before, after = capture(start), capture(end)
    whole = ps.kernel_view(after, "cow-index", files, 262144 * PAGE, 64 * PAGE)
    own = ps.kernel_view(after, "cow-index", files, 262144 * PAGE, 64 * PAGE, before)
    assert whole.residue_pages == 1 and own.residue_pages == 0
    assert own.blocks == whole.blocks == {("f", 0): ("f", 0, 0), ("f", 1): ("f", 1, 0)}


def test_symbol_address_from_a_system_map(tmp_path):
    sm = tmp_path / "System.map"
    sm.write_text(
        "ffffffff82415720 D page_offset_base_x\nffffffff82415730 D vmemmap_base\n"
        "ffffffff82415740 D page_offset_base\n"
    )
    assert ps.symbol_address(sm, "vmemmap_base") == 0xFFFFFFFF82415730
    assert ps.symbol_address(sm, "page_offset_base") == 0xFFFFFFFF82415740
    sm.write_text("ffffffffffffffff B The real System.map is in the linux-image-dbg package\n")
    assert ps.symbol_address(sm, "vmemmap_base") is None
    assert ps.symbol_address(tmp_path / "absent", "vmemmap_base") is None


def test_pages_that_are_not_the_pmems_are_refused():
    lay = ps.PageLayout.from_btf(kernel_btf("6.1"))
    pages = {k: {"pgmap": PGMAP} for k in range(64)}
    raw = _image(lay, pages)
    present = np.ones(64, bool)
    good = ps.decode_struct_pages(raw, present, lay, 262144)
    assert ps.kernel_view(good, "cow-index", {}, 262144 * PAGE, 64 * PAGE).blocks == {}
    # read from a wrong vmemmap_base: no common dev_pagemap, or unmapped struct pages
    pages[7]["pgmap"] = PGMAP + 64
    odd = ps.decode_struct_pages(_image(lay, pages), present, lay, 262144)
    present[3] = False
    hole = ps.decode_struct_pages(raw, present, lay, 262144)
    for kp in (odd, hole):
        with pytest.raises(ValueError, match="not the pmem's"):
            ps.kernel_view(kp, "cow-index", {}, 262144 * PAGE, 64 * PAGE)
