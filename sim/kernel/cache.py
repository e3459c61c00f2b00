"""The kernel cache and :class:`KernelInfo`.

Layout under :func:`cache_root`::

    kernels/<release>/vmlinuz
    kernels/<release>/System.map          (when the package has a real one)
    kernels/<release>/modules/lib/modules/<release>/...
    kernels/<release>/kernel.json         (what fetch recorded: name, release, version, design,
                                           packages and their sha256)
    kernels/<release>/initramfs.cpio      (the guest's base image, built on first use)
    apt/                                  (the sources list and state of fetch's own apt)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sim.errors import InputError
from sim.kernel.symbols import (
    bzimage_version_string,
    derive_design,
    kernel_facts,
    parse_version_string,
    system_map_symbols,
)

__all__ = [
    "cache_root",
    "kernels_dir",
    "KernelInfo",
    "load_kernel",
    "local_kernel",
    "cached_kernels",
    "describe_kernel",
    "write_json_atomic",
]


def cache_root() -> Path:
    """``$DAXSIM_CACHE`` if set, else ``$XDG_CACHE_HOME/daxsim``, else ``~/.cache/daxsim``."""
    env = os.environ.get("DAXSIM_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "daxsim"
    return Path.home() / ".cache" / "daxsim"


def kernels_dir() -> Path:
    """Where fetched kernels live: ``cache_root()/kernels``."""
    return cache_root() / "kernels"


@dataclass(frozen=True)
class KernelInfo:
    """A kernel the guest can boot.

    Attributes
    ----------
    name : str
        The series asked for (``"6.1"``) or ``"local"`` for a kernel given by hand.
    release : str
        What ``uname -r`` prints (``"6.1.0-57-amd64"``).
    version : str
        The upstream version (``"6.1.192"``).
    design : str
        The daxsim design variant the kernel runs (see :func:`sim.kernel.symbols.derive_design`).
    vmlinuz : Path
        The bzImage.
    modules : Path
        The directory that holds ``lib/modules/<release>/``.
    system_map : Path or None
        The kernel's System.map, when known.
    packages : tuple of str
        The Debian packages it came from (empty for a local kernel).
    """

    name: str
    release: str
    version: str
    design: str
    vmlinuz: Path
    modules: Path
    system_map: Path | None
    packages: tuple[str, ...]

    @property
    def module_dir(self) -> Path:
        """``modules/lib/modules/<release>``."""
        return self.modules / "lib" / "modules" / self.release

    @property
    def work_dir(self) -> Path:
        """Where derived files of this kernel (its base initramfs) are cached."""
        if self.name == "local":
            st = self.vmlinuz.stat()
            ident = f"{self.vmlinuz}\0{self.modules}\0{st.st_size}\0{st.st_mtime_ns}"
            key = hashlib.sha256(ident.encode()).hexdigest()[:16]
            return cache_root() / "local" / f"{self.release}-{key}"
        return kernels_dir() / self.release


def write_json_atomic(path: Path, data: object) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _info_from_dir(d: Path) -> KernelInfo:
    meta = json.loads((d / "kernel.json").read_text())
    smap = d / "System.map"
    return KernelInfo(
        name=meta["name"],
        release=meta["release"],
        version=meta["version"],
        design=meta["design"],
        vmlinuz=d / "vmlinuz",
        modules=d / "modules",
        system_map=smap if smap.exists() else None,
        packages=tuple(meta.get("packages", ())),
    )


def cached_kernels() -> list[KernelInfo]:
    """Every fetched kernel in the cache, sorted by version."""
    root = kernels_dir()
    out = []
    if root.is_dir():
        for d in sorted(root.iterdir()):
            if (d / "kernel.json").is_file() and (d / "vmlinuz").is_file():
                out.append(_info_from_dir(d))

    def key(k: KernelInfo) -> tuple[int, ...]:
        return tuple(int(x) for x in k.version.split(".") if x.isdigit())

    return sorted(out, key=key)


def load_kernel(name_or_release: str) -> KernelInfo:
    """A cached kernel by series name (``"6.1"``), upstream version (``"6.1.192"``) or release
    (``"6.1.0-57-amd64"``). When several match a series, the newest.

    Raises
    ------
    InputError
        If no cached kernel matches (the message says how to fetch it).
    """
    matches = [
        k
        for k in cached_kernels()
        if name_or_release in (k.name, k.release, k.version)
        or k.version.startswith(name_or_release + ".")
    ]
    if not matches:
        raise InputError(
            f"kernel {name_or_release!r} is not in the cache ({kernels_dir()}); "
            f"run `daxsim kernel fetch {name_or_release}`, or give one with "
            "--vmlinuz PATH --modules DIR"
        )
    return matches[-1]


def describe_kernel(vmlinuz: Path, system_map: Path | None) -> tuple[str, str, str, str]:
    """``(release, version, design, evidence)`` read from the kernel image (and System.map)."""
    release, version = parse_version_string(bzimage_version_string(vmlinuz))
    symbols, members = kernel_facts(vmlinuz)
    if system_map is not None:
        symbols = symbols | system_map_symbols(system_map)
    design, evidence = derive_design(version, symbols, members)
    return release, version, design, evidence


def local_kernel(vmlinuz: Path | str, modules: Path | str) -> KernelInfo:
    """A kernel given by hand: a bzImage and a directory of its modules.

    Parameters
    ----------
    vmlinuz : Path or str
        The bzImage (``arch/x86/boot/bzImage`` of a build tree, or ``/boot/vmlinuz-*``), or the
        build tree's ``vmlinux`` (booted by its PVH entry point, ``CONFIG_PVH``).
    modules : Path or str
        Either a ``make modules_install INSTALL_MOD_PATH=DIR`` directory (holding
        ``lib/modules/<release>``) or a ``lib/modules/<release>`` directory itself.

    Raises
    ------
    InputError
        If either path is missing or is not what is expected.
    """
    vmlinuz = Path(vmlinuz).resolve()
    modules = Path(modules).resolve()
    if not vmlinuz.is_file():
        raise InputError("no such kernel image", str(vmlinuz))
    if not modules.is_dir():
        raise InputError("no such modules directory", str(modules))
    release, _version = parse_version_string(bzimage_version_string(vmlinuz))
    if (modules / "lib" / "modules" / release).is_dir():
        root = modules
    elif (modules / "usr" / "lib" / "modules" / release).is_dir():
        root = modules / "usr"
    elif modules.name == release and modules.parent.name == "modules":
        if modules.parent.parent.name != "lib":
            raise InputError(f"expected .../lib/modules/{release}", str(modules))
        root = modules.parent.parent.parent
    else:
        raise InputError(
            f"expected lib/modules/{release}/ under it (make modules_install "
            "INSTALL_MOD_PATH=DIR) or the lib/modules/{release} directory itself",
            str(modules),
        )
    smap = None
    for cand in (
        vmlinuz.parent / "System.map",
        vmlinuz.parents[3] / "System.map" if len(vmlinuz.parents) > 3 else None,
        root / "lib" / "modules" / release / "System.map",
    ):
        if cand is not None and cand.is_file() and system_map_symbols(cand):
            smap = cand
            break
    info = KernelInfo(
        name="local",
        release=release,
        version=_version,
        design="",
        vmlinuz=vmlinuz,
        modules=root,
        system_map=smap,
        packages=(),
    )
    if smap is None and (info.work_dir / "System.map").is_file():
        smap = info.work_dir / "System.map"  # the guest's kallsyms, kept by a first boot
    release, version, design, _evidence = describe_kernel(vmlinuz, smap)
    return dataclasses.replace(info, version=version, design=design, system_map=smap)
