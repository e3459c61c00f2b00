"""The guest's initramfs: a base image per kernel (cached), the agent, and a job archive.

The base image holds busybox-static, ``mkfs.xfs``, ``xfs_io`` and ``ndctl`` from the host with
the shared libraries ``ldd`` names, the kernel's modules for pmem (nd_e820, nd_pmem), XFS and
the results disk (virtio_blk) with their dependencies (decompressed: Debian ships ``.ko``,
``.ko.xz`` or ``.ko.zst``; they are loaded with ``insmod`` in dependency order), and ``/init``
(:data:`INIT`). The agent ``/bin/daxio`` (``gcc -static -O2`` from ``sim/kernel/agent/daxio.c``)
is a second archive, cached by the hash of its source, and the job (the scripts' programs and
the guest's settings) a third; Linux unpacks concatenated newc archives in order.
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import shutil
import stat
import struct
import subprocess
import tempfile
import time
from pathlib import Path

from sim.errors import InputError
from sim.kernel.cache import KernelInfo, cache_root

__all__ = [
    "HOST_TOOLS",
    "MODULES",
    "INIT",
    "CpioWriter",
    "module_order",
    "base_initramfs",
    "agent_archive",
    "agent_source",
    "missing_host_tools",
]

#: Host programs the guest runs (from busybox-static, xfsprogs, ndctl).
HOST_TOOLS = ("/bin/busybox", "/usr/sbin/mkfs.xfs", "/usr/sbin/xfs_io", "/usr/bin/ndctl")

#: Modules the guest loads (with their dependencies); those built in are skipped.
MODULES = ("nd_e820", "nd_pmem", "xfs", "virtio_pci", "virtio_blk")
#: Loaded when present: the crc32c implementations XFS asks the crypto API for (Linux < 6.14).
OPTIONAL_MODULES = ("crc32c_intel", "crc32c_generic")

#: The guest's /init (busybox sh). The job archive provides /job/config (shell variables),
#: /job/list (one script id a line) and /job/<id>.prog. Results go to /results and, as tar
#: archives, to the raw disk /dev/vda in slots of DAXSIM_SLOT_BLOCKS 64 KiB blocks: slot 0 the
#: boot's files (before the first script), slot k+1 script k's files as soon as it ends (a
#: hang or crash later keeps what finished). Before each script but the first, the pfn
#: device is unbound from nd_pmem and bound again, so that every script starts from freshly
#: initialised struct pages (as each daxsim run does): ``<id>/reset`` says ``ok|failed START
#: END`` (uptime seconds), ``<id>/reset.err`` what the writes to sysfs printed. Console
#: markers: DAXSIM-READY, DAXSIM-START <id>, DAXSIM-DONE <id> <status>, DAXSIM-END, and
#: DAXSIM-CRASH <id> after the files of a script in which the kernel oopsed (a BUG): the guest
#: then waits to be killed (:func:`sim.kernel.guest.run_job` boots again for the rest).
INIT = r"""#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /mnt /results /sbin /usr/bin /usr/sbin /root
/bin/busybox --install -s
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t debugfs debugfs /sys/kernel/debug
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
T=/sys/kernel/tracing
[ -e $T/trace ] || T=/sys/kernel/debug/tracing
set -a
. /job/config
set +a
while read m; do
  t=$(cut -d' ' -f1 /proc/uptime)
  insmod /lib/modules/daxsim/$m.ko || echo "daxsim: insmod $m failed"
  echo "$m $t $(cut -d' ' -f1 /proc/uptime)" >> /results/insmod-times
done < /etc/daxsim/modules
i=0
while [ ! -e /sys/bus/nd/devices/namespace0.0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
ndctl create-namespace -f -e namespace0.0 --mode=fsdax --map=dev --align=2M \
  > /results/namespace.json 2> /results/namespace.err
i=0
while [ ! -b /dev/pmem0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
P=/sys/bus/nd/drivers/nd_pmem
pfn=$(cd $P && ls -d pfn* 2> /dev/null | head -n 1)
echo 16384 > $T/buffer_size_kb
echo 1 > $T/events/fs_dax/enable
uname -r > /results/uname
cat /proc/version > /results/version
cat /proc/iomem > /results/iomem
for f in /sys/bus/nd/devices/pfn*/resource /sys/bus/nd/devices/pfn*/size \
         /sys/bus/nd/devices/pfn*/align /sys/bus/nd/devices/namespace*/resource \
         /sys/bus/nd/devices/namespace*/size; do
  [ -e "$f" ] && echo "$f $(cat $f)" >> /results/nd
done
[ "$DAXSIM_BTF" = 1 ] && cp /sys/kernel/btf/vmlinux /results/btf
[ "$DAXSIM_KALLSYMS" = 1 ] && cat /proc/kallsyms > /results/kallsyms
dmesg > /results/boot-dmesg
OOPS='kernel BUG at|Oops:|BUG: unable to handle|general protection fault'
save() {
  (cd /results && tar -cf - $2) | dd of=/dev/vda bs=64k seek=$(($1 * DAXSIM_SLOT_BLOCKS)) \
    conv=notrunc 2> /dev/null
  sync
}
save 0 "$(cd /results && ls)"
echo DAXSIM-READY
slot=1
while read id; do
  d=/results/$id
  mkdir -p $d
  if [ $slot -gt 1 ]; then
    # fresh struct pages: unbinding nd_pmem from the pfn device tears down its memmap
    # (memunmap_pages), binding it again re-initialises every struct page of the device
    # (memremap_pages -> memmap_init_zone_device); a third of ndctl's disable/enable-namespace
    t0=$(cut -d' ' -f1 /proc/uptime)
    if [ -n "$pfn" ] && echo $pfn 2> $d/reset.err > $P/unbind &&
       echo $pfn 2>> $d/reset.err > $P/bind && [ -e $P/$pfn ]; then
      i=0
      while [ ! -b /dev/pmem0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
      r=ok
    else
      r=failed
    fi
    echo "$r $t0 $(cut -d' ' -f1 /proc/uptime)" > $d/reset
  fi
  dmesg -c > /dev/null
  echo 1 > /sys/kernel/debug/clear_warn_once
  echo > $T/trace
  echo "DAXSIM-START $id"
  p=/job/$id.prog
  if [ "$(head -c 2 $p)" = "#!" ]; then
    chmod +x $p
    $p > $d/stdout 2> $d/stderr < /dev/null
  else
    /bin/daxio $p > $d/stdout 2> $d/stderr < /dev/null
  fi
  s=$?
  echo $s > $d/status
  if dmesg | grep -q -E "$OOPS"; then
    # the kernel oopsed in this script: its task died holding what it held (clear_inode's
    # BUG_ON holds the i_pages lock; an unmount there never returns), so nothing here may
    # wait on the filesystem: no unmount, no sync(2); this script's files go to the results
    # disk with an fsync of the disk alone, and the host kills the guest
    cat $T/trace > $d/trace
    dmesg -c > $d/dmesg
    (cd /results && tar -cf - $id) | dd of=/dev/vda bs=64k \
      seek=$(($slot * DAXSIM_SLOT_BLOCKS)) conv=notrunc,fsync 2> /dev/null
    echo "DAXSIM-DONE $id $s"
    echo "DAXSIM-CRASH $id"
    while :; do sleep 60; done
  fi
  grep ' /dev/pmem' /proc/mounts | while read dev mnt rest; do umount $mnt; done
  cat $T/trace > $d/trace
  dmesg -c > $d/dmesg
  save $slot $id
  slot=$((slot + 1))
  echo "DAXSIM-DONE $id $s"
done < /job/list
echo DAXSIM-END
poweroff -f
"""

#: Stand-in for the agent until ``sim/kernel/agent/daxio.c`` exists: runs the program with sh.
PLACEHOLDER_AGENT = r"""
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc < 2) return 2;
    execl("/bin/sh", "sh", argv[1], (char *)0);
    return 127;
}
"""


class CpioWriter:
    """A newc ("070701") cpio archive, as Linux's initramfs unpacker reads it."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._ino = 1
        self._dirs: set[str] = set()

    def _entry(self, name: str, mode: int, data: bytes) -> None:
        name_b = name.encode() + b"\0"
        fields = (self._ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name_b), 0)
        self._ino += 1
        self._buf += b"070701" + b"".join(f"{v:08x}".encode() for v in fields)
        self._buf += name_b
        self._buf += b"\0" * (-len(self._buf) % 4)
        self._buf += data
        self._buf += b"\0" * (-len(self._buf) % 4)

    def directory(self, path: str) -> None:
        """Add ``path`` and its parents as directories (0755)."""
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d and d not in self._dirs:
                self._dirs.add(d)
                self._entry(d, stat.S_IFDIR | 0o755, b"")

    def file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Add a regular file (its parent directories too)."""
        path = path.strip("/")
        if "/" in path:
            self.directory(path.rsplit("/", 1)[0])
        self._entry(path, stat.S_IFREG | mode, data)

    def symlink(self, path: str, target: str) -> None:
        """Add a symbolic link."""
        path = path.strip("/")
        if "/" in path:
            self.directory(path.rsplit("/", 1)[0])
        self._entry(path, stat.S_IFLNK | 0o777, target.encode())

    def finish(self) -> bytes:
        """The archive with its trailer, padded to 512 bytes so archives can be concatenated."""
        self._entry("TRAILER!!!", 0, b"")
        self._buf += b"\0" * (-len(self._buf) % 512)
        return bytes(self._buf)


def missing_host_tools() -> list[str]:
    """Host programs the guest image needs that are not installed (with the package)."""
    packages = {
        "/bin/busybox": "busybox-static",
        "/usr/sbin/mkfs.xfs": "xfsprogs",
        "/usr/sbin/xfs_io": "xfsprogs",
        "/usr/bin/ndctl": "ndctl",
    }
    out = [f"{p} ({packages[p]})" for p in HOST_TOOLS if not os.path.exists(p)]
    if shutil.which("gcc") is None:
        out.append("gcc (gcc, libc6-dev)")
    if shutil.which("qemu-system-x86_64") is None:
        out.append("qemu-system-x86_64 (qemu-system-x86)")
    return out


def _is_static(path: str) -> bool:
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF":
            return False
        (phoff,) = struct.unpack_from("<Q", head, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
        f.seek(phoff)
        ph = f.read(phentsize * phnum)
    return all(struct.unpack_from("<I", ph, i * phentsize)[0] != 3 for i in range(phnum))


def _libraries(binaries: list[str]) -> list[str]:
    libs: set[str] = set()
    for b in binaries:
        if _is_static(b):
            continue
        out = subprocess.run(["ldd", b], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            parts = line.split()
            if "=>" in parts:
                target = parts[parts.index("=>") + 1]
                if target.startswith("/"):
                    libs.add(target)
            elif parts and parts[0].startswith("/"):
                libs.add(parts[0])  # the dynamic loader
    return sorted(libs)


def _decompress_ko(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".ko.xz"):
        return lzma.decompress(data)
    if path.name.endswith(".ko.gz"):
        return gzip.decompress(data)
    if path.name.endswith(".ko.zst"):
        if shutil.which("zstd") is None:
            raise InputError("the kernel's modules are zstd-compressed: install zstd", str(path))
        return subprocess.run(["zstd", "-dcq"], input=data, capture_output=True, check=True).stdout
    return data


def _modinfo(elf: bytes) -> dict[str, list[str]]:
    (shoff,) = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)

    def section(i: int) -> tuple[int, int, int]:
        name, _t, _f, _a, offset, size = struct.unpack_from("<IIQQQQ", elf, shoff + i * shentsize)
        return name, offset, size

    _, so, ss = section(shstrndx)
    names = elf[so : so + ss]
    info: dict[str, list[str]] = {}
    for i in range(shnum):
        name, offset, size = section(i)
        if names[name : names.find(b"\0", name)] == b".modinfo":
            for item in elf[offset : offset + size].split(b"\0"):
                if b"=" in item:
                    k, v = item.decode("utf-8", "replace").split("=", 1)
                    info.setdefault(k, []).append(v)
    return info


def _strip_debug(ko: bytes) -> bytes:
    """A module without its DWARF (a kernel built by hand often keeps it: xfs.ko grows from
    ~4 MB to ~40 MB), so the guest's image stays small; modules without it are unchanged."""
    from sim.kernel.symbols import elf_section

    if elf_section(ko, ".debug_info") is None or shutil.which("strip") is None:
        return ko
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.ko"
        path.write_bytes(ko)
        proc = subprocess.run(["strip", "--strip-debug", str(path)], capture_output=True)
        return path.read_bytes() if proc.returncode == 0 else ko


def _norm(name: str) -> str:
    return name.replace("-", "_")


def module_order(kernel: KernelInfo) -> list[tuple[str, bytes]]:
    """The modules the guest loads, decompressed, dependencies first: ``[(name, ko_bytes)]``.

    Raises
    ------
    InputError
        If a needed module is neither a module of the kernel nor built in.
    """
    mdir = kernel.module_dir
    if not mdir.is_dir():
        raise InputError("no modules directory for this kernel", str(mdir))
    index: dict[str, Path] = {}
    for p in mdir.rglob("*.ko*"):
        base = p.name.split(".ko", 1)[0]
        index.setdefault(_norm(base), p)
    builtin = set()
    bfile = mdir / "modules.builtin"
    if bfile.is_file():
        for line in bfile.read_text().splitlines():
            builtin.add(_norm(Path(line).name.split(".ko", 1)[0]))
    order: list[tuple[str, bytes]] = []
    seen: set[str] = set()

    def visit(name: str, required: bool) -> None:
        name = _norm(name)
        if name in seen or name in builtin:
            return
        if name not in index:
            if required:
                raise InputError(
                    f"module {name} is neither in the kernel's modules nor built in", str(mdir)
                )
            return
        seen.add(name)
        data = _strip_debug(_decompress_ko(index[name]))
        deps = _modinfo(data).get("depends", [""])[0]
        for dep in filter(None, deps.split(",")):
            visit(dep, True)
        order.append((name, data))

    for m in OPTIONAL_MODULES:
        visit(m, False)
    for m in MODULES:
        visit(m, True)
    return order


def agent_source() -> tuple[str, str]:
    """``(C source, origin)`` of the agent: ``sim/kernel/agent/daxio.c`` or the placeholder."""
    path = Path(__file__).parent / "agent" / "daxio.c"
    if path.is_file():
        return path.read_text(), str(path)
    return PLACEHOLDER_AGENT, "placeholder"


def agent_archive() -> Path:
    """The cpio archive holding ``/bin/daxio``, built with ``gcc -static -O2`` and cached by
    the hash of its source."""
    src, origin = agent_source()
    key = hashlib.sha256(src.encode()).hexdigest()[:16]
    out = cache_root() / "agent" / f"daxio-{key}.cpio"
    if out.is_file():
        return out
    if shutil.which("gcc") is None:
        raise InputError("building the guest agent needs gcc and libc6-dev (static libc)")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        c = Path(tmp) / "daxio.c"
        c.write_text(src)
        binary = Path(tmp) / "daxio"
        proc = subprocess.run(
            ["gcc", "-static", "-O2", "-Wall", "-o", str(binary), str(c)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise InputError(f"gcc -static -O2 failed:\n{proc.stderr.strip()}", origin)
        w = CpioWriter()
        w.file("bin/daxio", binary.read_bytes(), 0o755)
        tmp_out = Path(tmp) / "out.cpio"
        tmp_out.write_bytes(w.finish())
        os.replace(tmp_out, out)
    return out


def _base_key(kernel: KernelInfo) -> str:
    h = hashlib.sha256()
    h.update(INIT.encode())
    h.update(repr((MODULES, OPTIONAL_MODULES, kernel.release)).encode())
    for t in HOST_TOOLS:
        st = os.stat(t)
        h.update(f"{t}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def base_initramfs(kernel: KernelInfo) -> Path:
    """The kernel's base initramfs (built on first use, cached in the kernel's directory).

    Raises
    ------
    InputError
        If a host program or a kernel module it needs is missing.
    """
    missing = [t for t in missing_host_tools() if not t.startswith(("gcc", "qemu"))]
    if missing:
        raise InputError(
            "the guest image needs these host programs: "
            + ", ".join(missing)
            + " (`make setup-kernel` installs them on Debian)"
        )
    if not _is_static("/bin/busybox"):
        raise InputError("/bin/busybox is not statically linked: install busybox-static")
    out = kernel.work_dir / f"initramfs-{_base_key(kernel)}.cpio"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    w = CpioWriter()
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "mnt"):
        w.directory(d)
    binaries = list(HOST_TOOLS)
    for path in binaries + _libraries(binaries[1:]):
        real = os.path.realpath(path)
        mode = os.stat(real).st_mode & 0o777
        w.file(path, Path(real).read_bytes(), mode)
    modules = module_order(kernel)
    for name, data in modules:
        w.file(f"lib/modules/daxsim/{name}.ko", data)
    w.file("etc/daxsim/modules", "".join(f"{n}\n" for n, _ in modules).encode())
    w.file("init", INIT.encode(), 0o755)
    # Images of other versions of /init or the host tools go once they are a day old (another
    # checkout of daxsim sharing the cache may still be booting one now).
    for stale in out.parent.glob("initramfs-*.cpio"):
        try:
            if time.time() - stale.stat().st_mtime > 86400:
                stale.unlink()
        except FileNotFoundError:
            pass
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".initramfs-")
    with os.fdopen(fd, "wb") as f:
        f.write(w.finish())
    os.replace(tmp, out)
    return out
