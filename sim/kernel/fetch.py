"""``daxsim kernel fetch``: Debian's kernel packages into the cache, with an apt of its own.

apt runs with a sources list, a state directory and a package cache under
``cache_root()/apt`` (``-o Dir::Etc::SourceList=... -o Dir::Etc::SourceParts=...
-o Dir::State=... -o Dir::Cache=...``), so the host's apt configuration and state are never
changed. The sources are bookworm, bookworm-security, trixie and trixie-backports from the
Debian archive, signed by the keyring of the ``debian-archive-keyring`` package; apt checks
the Release signatures and the packages' checksums, and the sha256 of every ``.deb`` is
recorded in ``kernel.json``.

A name is a series (``"6.1"``: the newest package of it in the archive), an upstream version
(``"7.2.12"``) or a release (``"6.1.0-57-amd64"``). Only ``-amd64`` flavours that come with
their modules are used (the guest needs nd_pmem and xfs): ``linux-image-REL-unsigned`` (6.1,
6.12), ``linux-image-REL`` when it holds the modules itself (6.16-6.18), or
``linux-binary-REL`` with ``linux-modules-REL`` and ``linux-base-REL`` (7.2+). Linux 7.0 and
7.1 have no modules package in the archive. Parts of the kernel's source tree (fs/dax.c, ...)
come from ``linux-source-X.Y`` of the same version when the archive has it (6.1, 6.12, 7.2,
7.3), for naming the function that holds a WARN's line.

``dax_folio_reset_order`` (fs/dax.c) first appears in Linux 7.1: the exported symbol is in
7.1.3 (the first 7.1 in trixie-backports) and every later image, and not in 7.0.13. The
folio-share kernel without the reset that has its modules in the archive is 6.18.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from sim.errors import InputError
from sim.kernel.cache import (
    KernelInfo,
    cache_root,
    describe_kernel,
    kernels_dir,
    load_kernel,
    write_json_atomic,
)

__all__ = [
    "DEFAULT_SERIES",
    "SOURCES",
    "KEYRING",
    "AptUnavailable",
    "apt_options",
    "check_apt",
    "update_index",
    "resolve",
    "fetch_kernel",
    "fetch_source",
    "prune_modules",
    "KEPT_MODULE_DIRS",
]

#: The kernels ``fetch --all`` gets: cow-index, page-share, folio-share (no reset),
#: folio-share-reset.
DEFAULT_SERIES = ("6.1", "6.12", "6.18", "7.3")

KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")

#: deb822 sources of fetch's own apt.
SOURCES = f"""\
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm trixie trixie-backports
Components: main
Signed-By: {KEYRING}

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: {KEYRING}
"""

_REL = r"\d+\.\d+[0-9.]*(?:-\d+|\+deb\d+)-amd64"
_PATTERNS = {
    "image-unsigned": re.compile(rf"^linux-image-({_REL})-unsigned$"),
    "image": re.compile(rf"^linux-image-({_REL})$"),
    "binary": re.compile(rf"^linux-binary-({_REL})$"),
    "modules": re.compile(rf"^linux-modules-({_REL})$"),
    "base": re.compile(rf"^linux-base-({_REL})$"),
}

_HOW_BY_HAND = (
    "give a kernel by hand instead: --vmlinuz PATH (a bzImage) --modules DIR "
    "(make modules_install INSTALL_MOD_PATH=DIR)"
)


#: Debian version of the packages of each release resolve() chose (for the source package).
_LAST_DEBIAN_VERSION: dict[str, str] = {}

#: Parts of the kernel tree kept from linux-source-X.Y (for splats: the function holding a
#: line, and the condition it checks).
SOURCE_PATTERNS = (
    "fs/dax.c",
    "fs/xfs/*",
    "mm/*",
    "include/linux/*",
    "drivers/nvdimm/*",
    "drivers/dax/*",
    "fs/iomap/*",
)


#: Module directories kept in the cache (what the guest can load: pmem, DAX, XFS and the
#: other filesystems, block and virtio drivers, crc and crypto helpers); the rest of a
#: distribution kernel's modules (GPU, network, sound, ...) is dropped: 6.1's 391 MB become
#: about 60 MB.
KEPT_MODULE_DIRS = (
    "kernel/fs",
    "kernel/mm",
    "kernel/lib",
    "kernel/crypto",
    "kernel/arch",
    "kernel/drivers/nvdimm",
    "kernel/drivers/dax",
    "kernel/drivers/block",
    "kernel/drivers/virtio",
    "kernel/drivers/acpi",
)


class AptUnavailable(InputError):
    """No apt, or no Debian archive keyring, on this machine."""


def apt_dir() -> Path:
    """``cache_root()/apt``: sources, lists, state and package cache of fetch's apt."""
    return cache_root() / "apt"


def apt_options(root: Path | None = None) -> list[str]:
    """The ``-o`` options that point apt at its own configuration under ``root``."""
    root = apt_dir() if root is None else root
    opts = [
        "-o",
        f"Dir::Etc::SourceList={root / 'sources.list'}",
        "-o",
        f"Dir::Etc::SourceParts={root / 'sources.list.d'}",
        "-o",
        f"Dir::Etc::Preferences={root / 'preferences'}",
        "-o",
        f"Dir::Etc::PreferencesParts={root / 'preferences.d'}",
        "-o",
        f"Dir::State={root / 'state'}",
        "-o",
        f"Dir::State::Lists={root / 'lists'}",
        "-o",
        f"Dir::State::status={root / 'status'}",
        "-o",
        f"Dir::Cache={root / 'cache'}",
        "-o",
        f"Dir::Cache::pkgcache={root / 'cache' / 'pkgcache.bin'}",
        "-o",
        "Dir::Cache::srcpkgcache=",
        "-o",
        "Acquire::Languages=none",
    ]
    if os.geteuid() == 0:
        # apt drops to the _apt user to download, who cannot write under root's cache.
        opts += ["-o", "APT::Sandbox::User=root"]
    return opts


def check_apt() -> None:
    """Raise :class:`AptUnavailable` saying what is missing, if apt cannot be used."""
    missing = [t for t in ("apt-get", "apt-cache", "dpkg-deb") if shutil.which(t) is None]
    if missing:
        raise AptUnavailable(
            f"fetching Debian's kernels needs apt ({', '.join(missing)} not found); " + _HOW_BY_HAND
        )
    if not KEYRING.is_file():
        raise AptUnavailable(
            f"fetching Debian's kernels needs the Debian archive keyring ({KEYRING}, package "
            "debian-archive-keyring); " + _HOW_BY_HAND
        )


def _prepare(root: Path) -> None:
    for sub in ("sources.list.d", "preferences.d", "state", "lists/partial", "cache"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "sources.list").write_text("")
    (root / "preferences").write_text("")
    (root / "status").touch()
    (root / "sources.list.d" / "daxsim.sources").write_text(SOURCES)


def _run(cmd: list[str], what: str, cwd: Path | None = None) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise InputError(f"{what} failed (exit {proc.returncode}): {tail}; " + _HOW_BY_HAND)
    return proc.stdout


def update_index() -> None:
    """``apt-get update`` of fetch's own sources (bookworm, bookworm-security, trixie,
    trixie-backports)."""
    check_apt()
    root = apt_dir()
    _prepare(root)
    _run(["apt-get", *apt_options(root), "-q", "update"], "apt-get update")


def _show(packages: list[str]) -> dict[str, dict[str, str]]:
    """``apt-cache show`` fields (Version, Depends, SHA256) of the candidate of each."""
    out = _run(
        ["apt-cache", *apt_options(), "show", "--no-all-versions", *packages], "apt-cache show"
    )
    fields: dict[str, dict[str, str]] = {}
    for stanza in out.split("\n\n"):
        d = {}
        for line in stanza.splitlines():
            if ":" in line and not line.startswith(" "):
                k, v = line.split(":", 1)
                d[k] = v.strip()
        if "Package" in d:
            fields[d["Package"]] = d
    return fields


def _upstream(debian_version: str) -> str:
    v = debian_version.split(":", 1)[-1].rsplit("-", 1)[0]
    return re.match(r"\d+(?:\.\d+)*", v).group(0)


def _vkey(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.split("."))


def resolve(name: str) -> tuple[str, str, tuple[str, ...]]:
    """The newest release matching ``name`` that has its modules in the archive.

    Returns
    -------
    tuple
        ``(release, version, packages)``, for example ``("7.3.4+deb13-amd64", "7.3.4",
        ("linux-binary-7.3.4+deb13-amd64", "linux-modules-7.3.4+deb13-amd64"))``.

    Raises
    ------
    InputError
        If nothing in the archive matches, or nothing with modules.
    """
    if not re.fullmatch(r"\d+\.\d+(?:\.\d+)?|" + _REL, name):
        raise InputError(
            f"kernel name {name!r}: expected a series (6.1), a version (6.1.192) or a "
            "Debian release (6.1.0-57-amd64)"
        )
    names = _run(["apt-cache", *apt_options(), "pkgnames", "linux-"], "apt-cache pkgnames")
    by_kind: dict[str, set[str]] = {k: set() for k in _PATTERNS}
    for pkg in names.split():
        for kind, pat in _PATTERNS.items():
            m = pat.match(pkg)
            if m:
                by_kind[kind].add(m.group(1))
    releases = set().union(*by_kind.values())
    if name in releases:
        wanted = {name}
    else:
        series = ".".join(name.split(".")[:2])
        wanted = {r for r in releases if re.match(rf"{re.escape(series)}[.+-]", r)}
    if not wanted:
        raise InputError(f"no Debian kernel package of {name} in the archive")
    candidates: dict[str, tuple[str, ...]] = {}
    for rel in wanted:
        if rel in by_kind["modules"] and rel in by_kind["binary"]:
            # linux-base-REL holds modules.builtin (which modules are built in) and config.
            base = (f"linux-base-{rel}",) if rel in by_kind["base"] else ()
            candidates[rel] = (f"linux-binary-{rel}", f"linux-modules-{rel}", *base)
        elif rel in by_kind["image-unsigned"]:
            candidates[rel] = (f"linux-image-{rel}-unsigned",)
        elif rel in by_kind["image"]:
            candidates[rel] = (f"linux-image-{rel}",)
    info = _show(sorted({c[0] for c in candidates.values()}))
    usable: list[tuple[tuple[int, ...], str, str]] = []
    debian_versions: dict[str, str] = {}
    for rel, pkgs in candidates.items():
        d = info.get(pkgs[0])
        if d is None:
            continue
        # A linux-image-REL that depends on linux-binary-REL is a meta-package whose modules
        # package is missing from the archive (7.0, 7.1).
        if pkgs[0] == f"linux-image-{rel}" and f"linux-binary-{rel}" in d.get("Depends", ""):
            continue
        version = _upstream(d["Version"])
        if re.fullmatch(r"\d+\.\d+\.\d+", name) and version != name:
            continue
        debian_versions[rel] = d["Version"]
        usable.append((_vkey(version), rel, version))
    if not usable:
        raise InputError(
            f"no Debian kernel of {name} in the archive comes with its modules (the guest "
            "needs nd_pmem and xfs); " + _HOW_BY_HAND
        )
    _, rel, version = max(usable)
    _LAST_DEBIAN_VERSION[rel] = debian_versions[rel]
    return rel, version, candidates[rel]


def prune_modules(module_dir: Path) -> None:
    """Drop the modules outside :data:`KEPT_MODULE_DIRS` from a ``lib/modules/<release>``
    directory (the ``modules.*`` files stay)."""
    kernel_dir = module_dir / "kernel"
    if not kernel_dir.is_dir():
        return
    keep = [module_dir / k for k in KEPT_MODULE_DIRS]

    def walk(d: Path) -> None:
        for child in d.iterdir():
            if any(child == k for k in keep):
                continue
            if child.is_dir() and any(k.is_relative_to(child) for k in keep):
                walk(child)
            elif child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()

    walk(kernel_dir)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _find_one(root: Path, patterns: list[str]) -> Path | None:
    for pat in patterns:
        hits = sorted(root.glob(pat))
        if hits:
            return hits[0]
    return None


def _refresh_design(kdir: Path) -> None:
    """Derive a cached kernel's design again (the rules may have learnt more since)."""
    meta = kdir / "kernel.json"
    data = json.loads(meta.read_text())
    smap = kdir / "System.map"
    _r, _v, design, evidence = describe_kernel(kdir / "vmlinuz", smap if smap.is_file() else None)
    if (data.get("design"), data.get("design_evidence")) != (design, evidence):
        data.update(design=design, design_evidence=evidence)
        write_json_atomic(meta, data)


def fetch_kernel(name: str, *, update: bool = True, log=print) -> KernelInfo:
    """Fetch the newest Debian kernel of ``name`` into the cache (unless it is already there).

    Parameters
    ----------
    name : str
        Series, version or release (see :func:`resolve`).
    update : bool
        Run ``apt-get update`` of fetch's own sources first.
    log : callable
        Receives one line of progress at a time.

    Returns
    -------
    KernelInfo
        The cached kernel.
    """
    check_apt()
    if update:
        update_index()
    release, version, packages = resolve(name)
    final = kernels_dir() / release
    if (final / "kernel.json").is_file() and (final / "vmlinuz").is_file():
        log(f"{name}: {release} ({version}) already cached")
        _refresh_design(final)
        return load_kernel(release)
    log(f"{name}: downloading {' '.join(packages)}")
    kernels_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=kernels_dir(), prefix=".fetch-") as tmp_s:
        tmp = Path(tmp_s)
        debs_dir = tmp / "debs"
        debs_dir.mkdir()
        _run(
            ["apt-get", *apt_options(), "-q", "download", *packages],
            "apt-get download",
            cwd=debs_dir,
        )
        sums = {}
        tree = tmp / "tree"
        for deb in sorted(debs_dir.glob("*.deb")):
            sums[deb.name] = _sha256(deb)
            _run(["dpkg-deb", "-x", str(deb), str(tree)], f"dpkg-deb -x {deb.name}")
            deb.unlink()
        stage = tmp / "kernel"
        stage.mkdir()
        vmlinuz = _find_one(
            tree,
            [
                f"boot/vmlinuz-{release}",
                f"usr/lib/modules/{release}/vmlinuz",
                f"lib/modules/{release}/vmlinuz",
            ],
        )
        moddir = _find_one(tree, [f"lib/modules/{release}", f"usr/lib/modules/{release}"])
        if vmlinuz is None or moddir is None:
            raise InputError(f"{' '.join(packages)}: no kernel image or no modules in them")
        os.replace(vmlinuz, stage / "vmlinuz")
        smap = _find_one(
            tree, [f"boot/System.map-{release}", f"*/lib/modules/{release}/System.map"]
        )
        if smap is not None and smap.stat().st_size > 4096:  # 7.x ship a one-line placeholder
            os.replace(smap, stage / "System.map")
        (stage / "modules" / "lib" / "modules").mkdir(parents=True)
        os.replace(moddir, stage / "modules" / "lib" / "modules" / release)
        prune_modules(stage / "modules" / "lib" / "modules" / release)
        if shutil.which("depmod") or Path("/sbin/depmod").exists():
            depmod = shutil.which("depmod") or "/sbin/depmod"
            _run([depmod, "-b", str(stage / "modules"), release], "depmod")
        smap_path = stage / "System.map"
        rel2, version2, design, evidence = describe_kernel(
            stage / "vmlinuz", smap_path if smap_path.exists() else None
        )
        if rel2 != release:
            raise InputError(f"{packages[0]}: image says release {rel2}, expected {release}")
        write_json_atomic(
            stage / "kernel.json",
            {
                "name": ".".join(version2.split(".")[:2]),
                "release": release,
                "version": version2,
                "design": design,
                "design_evidence": evidence,
                "packages": list(packages),
                "sha256": sums,
                "debian_version": _LAST_DEBIAN_VERSION.get(release, ""),
            },
        )
        if final.exists():
            shutil.rmtree(final)
        os.replace(stage, final)
    info = load_kernel(release)
    log(f"{name}: {release} ({info.version}), design {info.design}")
    return info


def fetch_source(kernel: KernelInfo, *, log=print) -> Path | None:
    """Extract :data:`SOURCE_PATTERNS` of the kernel's tree from Debian's ``linux-source-X.Y``
    of the same version into ``kernels/<release>/source`` (once).

    Returns
    -------
    Path or None
        The source directory, or None when the archive has no source package of that version
        (splats then report the printed symbol).
    """
    dest = kernel.work_dir / "source"
    if (dest / "fs" / "dax.c").is_file():
        return dest
    series = ".".join(kernel.version.split(".")[:2])
    pkg = f"linux-source-{series}"
    proc = subprocess.run(
        ["apt-cache", *apt_options(), "show", pkg], capture_output=True, text=True, check=False
    )
    versions = re.findall(r"^Version: (\S+)$", proc.stdout, re.M)
    meta = kernel.work_dir / "kernel.json"
    wanted = json.loads(meta.read_text()).get("debian_version", "") if meta.is_file() else ""
    same = [v for v in versions if _upstream(v) == kernel.version]
    if not same:
        log(f"{kernel.name}: no {pkg} {kernel.version} in the archive; splats name symbols")
        return None
    version = wanted if wanted in same else same[0]
    log(f"{kernel.name}: extracting fs/dax.c and friends from {pkg} {version}")
    with tempfile.TemporaryDirectory(dir=kernel.work_dir, prefix=".source-") as tmp_s:
        tmp = Path(tmp_s)
        _run(
            ["apt-get", *apt_options(), "-q", "download", f"{pkg}={version}"],
            "apt-get download",
            cwd=tmp,
        )
        deb = next(tmp.glob("*.deb"))
        tree = tmp / "tree"
        tree.mkdir()
        top = f"{pkg}"
        script = (
            'dpkg-deb --fsys-tarfile "$1" | tar -xO "./usr/src/$2.tar.xz" | '
            'tar -xJ -C "$3" --strip-components=1 --wildcards "${@:4}"'
        )
        args = [f"{top}/{p}" for p in SOURCE_PATTERNS]
        _run(
            ["bash", "-o", "pipefail", "-c", script, "sh", str(deb), top, str(tree), *args],
            f"extracting {pkg}",
        )
        deb.unlink()
        if not (tree / "fs" / "dax.c").is_file():
            raise InputError(f"{pkg} {version}: no fs/dax.c in it")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tree, dest)
    return dest
