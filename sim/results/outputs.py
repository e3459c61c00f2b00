"""Where a command may write: never over what the user owns, never leaving temporaries behind.

Rules every writing command follows:

- An output *directory* may be written when it does not exist or is empty. A directory that
  holds an earlier output of the same kind (it carries the :data:`MARK` file daxsim writes, or
  the files of a results directory written before the mark existed) is replaced only with
  ``--overwrite``, and then only the files daxsim wrote there go; a directory holding
  anything else is refused (:class:`~sim.errors.InputError`, nothing touched).
- An output *file* may be written when it does not exist; one that exists is replaced only
  with ``--overwrite`` and only when it is what the command writes; a directory is refused.
- Temporaries are named ``.<name>.daxsim.tmp-<pid>-<start>[-<random>]`` after the process that made
  them (its pid and its start time in clock ticks since boot, so a reused pid is not mistaken
  for the owner). Whatever writes into a directory first removes the temporaries there whose
  owner is gone (a SIGKILLed command's leftovers) and only those.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from sim.errors import InputError

__all__ = [
    "MARK",
    "check_out_dir",
    "check_out_file",
    "output_dir",
    "output_file",
    "remove_stale_temps",
    "temp_tag",
    "json_with_keys",
    "starts_with",
    "add_to_mark",
    "file_mode",
]

#: The file in every output directory daxsim writes: ``{"kind": ..., "files": [...]}``.
MARK = ".daxsim-output.json"

#: Files of a results directory (run/compare) written before :data:`MARK` existed.
_LEGACY_RESULTS = (
    "summary.parquet",
    "timeseries.parquet",
    "latency.parquet",
    "pages.parquet",
    "memory_failure.parquet",
    "manifest.json",
)

#: A temporary of :func:`output_dir` or :func:`output_file`: ``.<name>.daxsim.tmp-<pid>-<start>``
#: (a file has a random tail ``-<chars>``).
#: Files of a ``kernel compare`` directory written before :data:`MARK` existed.
_LEGACY_KERNEL_COMPARE = ("compare.parquet", "agreement.md")

_TEMP = re.compile(r"^\..+\.daxsim\.tmp-(?P<pid>\d+)-(?P<start>\d+)(?:-[A-Za-z0-9_]+)?$")
#: A results directory's temporary as daxsim named it before (``.<name>.tmp-<pid>``).
_LEGACY_TEMP = re.compile(r"^\..+\.tmp-(?P<pid>\d+)$")

#: Longest output file :func:`json_with_keys` reads to decide whether daxsim wrote it.
_MAX_OWN_FILE_BYTES = 64 << 20


def _start_ticks(pid: int) -> int | None:
    """Start time of process ``pid`` in clock ticks since boot (``/proc/PID/stat`` field 22)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    try:  # the command name (field 2) may hold spaces and parentheses: split after the last ')'
        return int(stat[stat.rindex(b")") + 2 :].split()[19])
    except (ValueError, IndexError):
        return None


def temp_tag() -> str:
    """``<pid>-<start>`` of this process, the owner part of its temporaries' names."""
    pid = os.getpid()
    return f"{pid}-{_start_ticks(pid) or 0}"


def _owner_alive(pid: int, start: int | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        pass
    if start:
        now = _start_ticks(pid)
        return now is None or now == start
    return True


def remove_stale_temps(parent: str | os.PathLike) -> list[Path]:
    """Remove the daxsim temporaries in ``parent`` whose owning process is gone.

    Only entries named like daxsim's temporaries (``.<name>.tmp-<pid>[-<start>]...``) are
    looked at, and only those whose process no longer runs (or whose pid now belongs to a
    process started later) are removed. Returns what was removed.
    """
    parent = Path(parent)
    removed: list[Path] = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for p in entries:
        m = _TEMP.match(p.name)
        if m is None:
            m = _LEGACY_TEMP.match(p.name)
            if m is None or not p.is_dir() or p.is_symlink():
                continue
        pid, start = int(m.group("pid")), m.groupdict().get("start")
        if pid == os.getpid() or _owner_alive(pid, int(start) if start else None):
            continue
        try:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
        except FileNotFoundError:
            continue
        except OSError:
            continue  # not ours to fight over (permissions): leave it
        removed.append(p)
    return removed


def _read_mark(d: Path) -> dict | None:
    try:
        with open(d / MARK, "rb") as fh:
            data = json.loads(fh.read(_MAX_OWN_FILE_BYTES))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("files"), list):
        return None
    return data


def _legacy_kind(d: Path) -> str | None:
    """``results`` for a run/compare directory written before :data:`MARK` existed,
    ``kernel-compare`` for a ``kernel compare`` one."""
    names = {p.name for p in d.iterdir()}
    if names == set(_LEGACY_KERNEL_COMPARE):
        return "kernel-compare"
    try:
        m = json.loads((d / "manifest.json").read_bytes()[:_MAX_OWN_FILE_BYTES])
    except (OSError, ValueError):
        return None
    if isinstance(m, dict) and "daxsim_version" in m and (d / "summary.parquet").is_file():
        return "results"
    return None


def _owned_files(d: Path, mark: dict | None) -> list[Path]:
    """The files of ``d`` that daxsim wrote (from its mark, or the legacy results layout)."""
    if mark is not None:
        names = [str(n) for n in mark["files"]]
    elif _legacy_kind(d) == "kernel-compare":
        names = list(_LEGACY_KERNEL_COMPARE)
    else:
        names = list(_LEGACY_RESULTS)
        plots = d / "plots"
        if plots.is_dir():
            names += [f"plots/{p.name}" for p in plots.iterdir() if p.suffix == ".png"]
    out = []
    root = d.resolve()
    for n in names:
        p = (d / n).resolve()
        if p.parent != root and root not in p.parents:  # never outside the directory
            continue
        out.append(d / n)
    return out


def check_out_dir(path: str | os.PathLike, where: str, *, kind: str, overwrite: bool) -> None:
    """Refuse (InputError, nothing touched) an output directory daxsim may not write.

    Parameters
    ----------
    path : path
        The output directory.
    where : str
        The option that named it (``--out``), for the message.
    kind : str
        What the command writes there (``results``, ``hunt``, ``kernel-compare``, ...).
    overwrite : bool
        Whether ``--overwrite`` was given: an earlier output of the same kind may be replaced.
    """
    p = Path(path)
    if not p.exists():
        if p.is_symlink():
            raise InputError(f"{p} is a dangling symbolic link", where=where)
        return
    if not p.is_dir():
        raise InputError(f"{p} exists and is not a directory", where=where)
    try:
        empty = not any(p.iterdir())
    except OSError as exc:
        raise InputError(f"cannot read {p}: {exc.strerror or exc}", where=where) from None
    if empty:
        return
    mark = _read_mark(p)
    found = mark.get("kind") if mark is not None else _legacy_kind(p)
    if found is None:
        raise InputError(
            f"{p} exists and holds files daxsim did not write; choose another directory "
            "(nothing was changed)",
            where=where,
        )
    if found != kind:
        raise InputError(
            f"{p} holds daxsim {found} output, not {kind}; choose another directory", where=where
        )
    if not overwrite:
        raise InputError(
            f"{p} holds an earlier daxsim {kind} output; give --overwrite to replace it "
            "(only the files daxsim wrote there are replaced)",
            where=where,
        )


def json_with_keys(*keys: str) -> Callable[[Path], bool]:
    """A test of whether a file is a JSON object with ``keys`` (what daxsim writes)."""

    def test(path: Path) -> bool:
        try:
            if path.stat().st_size > _MAX_OWN_FILE_BYTES:
                return False
            data = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return False
        return isinstance(data, dict) and all(k in data for k in keys)

    return test


def starts_with(prefix: bytes) -> Callable[[Path], bool]:
    """A test of whether a file begins with ``prefix`` (a CSV header daxsim writes)."""

    def test(path: Path) -> bool:
        try:
            with open(path, "rb") as fh:
                return fh.read(len(prefix)) == prefix
        except OSError:
            return False

    return test


def check_out_file(
    path: str | os.PathLike,
    where: str,
    *,
    overwrite: bool,
    ours: Callable[[Path], bool],
) -> None:
    """Refuse (InputError, nothing touched) an output file daxsim may not write.

    A directory, or a file under something that is not a directory, is refused; an existing
    file needs ``overwrite`` and must pass ``ours`` (it is what this option writes).
    """
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{p} is a directory; expected a file name", where=where)
    q = p.absolute().parent
    while not q.exists():
        q = q.parent
    if not q.is_dir():
        raise InputError(f"cannot create {p.absolute()}: {q} is not a directory", where=where)
    if p.exists() or p.is_symlink():
        if not p.is_file():
            raise InputError(f"{p} exists and is not a regular file", where=where)
        if not overwrite:
            raise InputError(f"{p} exists; give --overwrite to replace it", where=where)
        if not ours(p):
            raise InputError(
                f"{p} exists and is not a file daxsim wrote; choose another name "
                "(nothing was changed)",
                where=where,
            )
    _probe(q, p.absolute(), where)


def _probe(q: Path, target: Path, where: str) -> None:
    try:
        os.rmdir(tempfile.mkdtemp(prefix=f".probe.daxsim.tmp-{temp_tag()}-", dir=q))
    except OSError as exc:
        raise InputError(
            f"cannot create {target}: {exc.strerror or exc} in {q}", where=where
        ) from None


def output_file(path: str | os.PathLike, write: Callable) -> None:
    """Write ``path`` through ``write(binary file)`` into a temporary beside it, then rename.

    The temporary is named after this process (see :func:`remove_stale_temps`); it is removed
    if writing fails. Stale temporaries of dead processes in the same directory go first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.daxsim.tmp-{temp_tag()}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def file_mode() -> int:
    """The mode a new file gets (``0o666`` less the umask), for temporaries renamed into place."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _files_under(d: Path) -> list[str]:
    out = []
    for root, _dirs, files in os.walk(d):
        for f in files:
            out.append(os.path.relpath(os.path.join(root, f), d))
    return sorted(out)


@contextlib.contextmanager
def output_dir(
    final: str | os.PathLike, *, kind: str, overwrite: bool = False, where: str = "--out"
) -> Iterator[Path]:
    """Yield a temporary directory that becomes ``final`` only when the block completes.

    ``final`` is checked with :func:`check_out_dir` first. The temporary
    (``.<name>.daxsim.tmp-<pid>-<start>`` beside ``final``) is removed if the block raises (or is
    interrupted). On success it is renamed to ``final`` when ``final`` is absent or empty;
    over an earlier output (``overwrite``) only the files that output's mark lists are
    removed and the new files moved in, so anything else in the directory stays.
    """
    final = Path(final)
    check_out_dir(final, where, kind=kind, overwrite=overwrite)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(final.parent)
    tmp = final.parent / f".{final.name}.daxsim.tmp-{temp_tag()}"
    try:  # from its creation on: a signal between mkdir and yield must not leave it
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        yield tmp
        _commit(tmp, final, kind=kind, overwrite=overwrite, where=where)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _commit(tmp: Path, final: Path, *, kind: str, overwrite: bool, where: str) -> None:
    files = _files_under(tmp)
    data = (json.dumps({"kind": kind, "files": files + [MARK]}, indent=1) + "\n").encode()
    with open(tmp / MARK, "wb") as fh:
        fh.write(data)
    check_out_dir(final, where, kind=kind, overwrite=overwrite)  # it may have changed meanwhile
    if not final.exists() or not any(final.iterdir()):
        os.replace(tmp, final)
        return
    old = _owned_files(final, _read_mark(final))
    owned = {p.resolve() for p in old}
    for rel in files:  # a user's file where a new one goes: refuse before removing anything
        dest = final / rel
        if (dest.exists() or dest.is_symlink()) and dest.resolve() not in owned:
            raise InputError(
                f"{dest} exists and is not a file daxsim wrote; nothing was replaced", where=where
            )
    for p in old:
        if p.is_file() or p.is_symlink():
            p.unlink()
    for p in sorted({q.parent for q in old}, key=lambda q: -len(q.parts)):
        if p != final:
            with contextlib.suppress(OSError):
                p.rmdir()  # only when empty: a user's file beside ours keeps it
    for rel in files + [MARK]:
        dest = final / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp / rel, dest)
    shutil.rmtree(tmp, ignore_errors=True)


def add_to_mark(d: str | os.PathLike, files: list[str | os.PathLike]) -> None:
    """Record ``files`` (under ``d``) as daxsim's in ``d``'s mark, when ``d`` has one."""
    d = Path(d)
    mark = _read_mark(d)
    if mark is None:
        return
    names = set(map(str, mark["files"]))
    names.update(os.path.relpath(Path(f).absolute(), d.absolute()) for f in files)
    mark["files"] = sorted(names)
    data = (json.dumps(mark, indent=1) + "\n").encode()
    output_file(d / MARK, lambda fh: fh.write(data))
