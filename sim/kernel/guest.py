r"""The QEMU guest: boot a kernel with emulated pmem, run a job of scripts, bring back results.

One boot runs a job: a list of :class:`GuestScript`. The guest (``/init`` of
:mod:`sim.kernel.initramfs`) loads the pmem and XFS modules, puts the legacy e820 pmem
(``memmap=512M!1G``) in fsdax mode with struct pages on the device (``ndctl create-namespace
--mode=fsdax --map=dev --align=2M``), enables the fs_dax tracepoints, then for each script
gives the pmem fresh struct pages (but before the first: unbinding ``nd_pmem`` from the pfn
device tears down the device's memmap, binding it again re-initialises every struct page in
``memmap_init_zone_device()``, as daxsim starts every script from clean struct pages), clears
the kernel log, re-arms ``WARN_ON_ONCE`` (``/sys/kernel/debug/clear_warn_once``),
clears the trace buffer and runs ``/bin/daxio /job/ID.prog`` (a program that starts with
``#!`` is run itself instead, which is how shell jobs run). Its stdout, exit status, the trace
and the kernel log come back to the host as a tar archive the guest writes on a raw virtio
disk (a file in a private temporary directory), read once QEMU has exited.

The guest has no network (``-nic none``), and QEMU opens only files and unix sockets in a
private temporary directory. A guest that does not finish within ``timeout_s`` is killed and
the result says so (``timed_out``); QEMU is never left running.

The pause hook (for reading page state before the unmount): with ``pause=callback`` the job's
settings say ``DAXSIM_PAUSE=1`` (exported to the agent's environment); the agent then writes
``DAXSIM-PAUSE <name>\n`` on its second serial port (``/dev/ttyS1``, a unix socket on the
host) and blocks reading one byte from it. The host calls ``callback(monitor, name)`` with a
:class:`Monitor` on QEMU's QMP socket, then writes ``"\n"`` to the port.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sim.errors import InputError
from sim.kernel.cache import KernelInfo
from sim.kernel.initramfs import CpioWriter, agent_archive, base_initramfs

__all__ = [
    "GuestScript",
    "GuestOutput",
    "JobResult",
    "Monitor",
    "run_job",
    "save_system_map",
    "qemu_command",
    "boot_image",
    "accelerator",
    "KERNEL_CMDLINE",
    "RESULTS_SLOT_BYTES",
]

KERNEL_CMDLINE = "console=ttyS0 memmap=512M!1G rdinit=/init panic=-1 nokaslr"
#: A kernel oops on the console (the guest's /init looks for the same, INIT's ``OOPS``): a
#: ``BUG_ON`` (``kernel BUG at fs/inode.c:673!``), a bad access, a general protection fault.
OOPS_LINE = re.compile(r"kernel BUG at|Oops:|BUG: unable to handle|general protection fault")
#: Seconds the host waits, after an oops on the console, for the guest to save the script's
#: files (``DAXSIM-CRASH``) before it kills the guest anyway.
CRASH_GRACE_S = 30.0
#: One slot of the raw results disk (a sparse file): slot 0 holds the boot's files, slot k+1
#: script k's, each a tar archive written when the script ends.
RESULTS_SLOT_BYTES = 128 << 20


@dataclass(frozen=True)
class GuestScript:
    """A program for the agent (or a ``#!`` script run as is), named for the results."""

    name: str
    program: bytes


@dataclass(frozen=True)
class GuestOutput:
    """What one script left: the agent's stdout, the kernel log, the fs_dax trace."""

    name: str
    agent_stdout: str
    dmesg: str
    trace: str
    exit_status: int
    stderr: str = ""
    elapsed_s: float | None = None
    #: Seconds the guest spent re-initialising the pmem's struct pages before the script
    #: (unbind and bind of the pfn device); None before the first script of a boot.
    reset_s: float | None = None
    #: Why the struct pages could not be re-initialised (the kernel's message), else None.
    reset_error: str | None = None
    #: The console line of a kernel oops during the script (``kernel BUG at FILE:LINE!``),
    #: else None: the guest was killed after it and later scripts ran in a new boot.
    crash: str | None = None


@dataclass
class JobResult:
    """The outcome of one boot.

    ``scripts`` holds one :class:`GuestOutput` per script that finished (all of them unless
    the guest timed out or crashed). ``boot_log`` is the serial console; ``ready_s`` the time
    from QEMU's start to the guest being ready to run the first script; ``workdir`` the private
    temporary directory QEMU used (removed when ``run_job`` returns).
    """

    kernel: KernelInfo
    scripts: list[GuestOutput]
    boot_log: str
    timed_out: bool
    btf: bytes | None = None
    iomem: str = ""
    kallsyms: str | None = None
    release: str = ""
    ready_s: float | None = None
    total_s: float = 0.0
    files: dict[str, bytes] = field(default_factory=dict)
    workdir: str = ""
    #: Boots the job took: one, plus one more after each script the kernel oopsed in that
    #: had scripts after it.
    boots: int = 1

    @property
    def complete(self) -> bool:
        """Every script ran and the guest shut down cleanly."""
        return not self.timed_out and "DAXSIM-END" in self.boot_log


class Monitor:
    """QEMU's QMP socket, for the pause hook: HMP commands and physical memory reads."""

    def __init__(self, path: Path, tmpdir: Path) -> None:
        self._tmp = tmpdir
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(120)
        self._sock.connect(str(path))
        self._file = self._sock.makefile("rwb")
        self._read()  # greeting
        self._cmd("qmp_capabilities")
        self._n = 0

    def _read(self) -> dict:
        while True:
            line = self._file.readline()
            if not line:
                raise RuntimeError("QMP connection closed")
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def _cmd(self, execute: str, **arguments) -> object:
        req = {"execute": execute}
        if arguments:
            req["arguments"] = arguments
        self._file.write(json.dumps(req).encode() + b"\n")
        self._file.flush()
        reply = self._read()
        if "error" in reply:
            raise RuntimeError(f"QMP {execute}: {reply['error'].get('desc')}")
        return reply.get("return")

    def hmp(self, cmd: str) -> str:
        """Run a human monitor command (``"x /2gx 0xffffffff82000000"``); its output."""
        return str(self._cmd("human-monitor-command", **{"command-line": cmd}))

    def pmemsave(self, addr: int, size: int) -> bytes:
        """``size`` bytes of guest physical memory from ``addr``."""
        self._n += 1
        out = self._tmp / f"pmem-{self._n}.bin"
        self._cmd("pmemsave", val=int(addr), size=int(size), filename=str(out))
        data = out.read_bytes()
        out.unlink()
        return data

    def close(self) -> None:
        """Close the QMP connection."""
        try:
            self._file.close()
            self._sock.close()
        except OSError:
            pass


def accelerator() -> list[str]:
    """``-accel kvm -cpu host`` where KVM can work (``/dev/kvm`` usable and the CPU has VMX or
    SVM), else ``-accel tcg -cpu max``. ``$DAXSIM_ACCEL`` (``kvm`` or ``tcg``) overrides: on
    some VMs ``/dev/kvm`` exists without nested virtualisation and QEMU aborts."""
    choice = os.environ.get("DAXSIM_ACCEL", "")
    if not choice:
        try:
            flags = Path("/proc/cpuinfo").read_text()
        except OSError:
            flags = ""
        usable = os.access("/dev/kvm", os.R_OK | os.W_OK)
        choice = "kvm" if usable and re.search(r"\b(vmx|svm)\b", flags) else "tcg"
    if choice == "kvm":
        return ["-accel", "kvm", "-cpu", "host"]
    if choice == "tcg":
        return ["-accel", "tcg", "-cpu", "max"]
    raise InputError(f"DAXSIM_ACCEL={choice!r}: expected kvm or tcg")


def boot_image(kernel: KernelInfo) -> Path:
    """What QEMU boots: the kernel's vmlinux, decompressed once into the cache, when it has a
    PVH entry point (``CONFIG_PVH``, Debian's kernels have it), else the bzImage. Under TCG
    the bzImage's own decompressor takes 10-13 s of every boot; the ELF vmlinux starts at
    once."""
    from sim.kernel.symbols import has_pvh_entry, vmlinux_of

    with open(kernel.vmlinuz, "rb") as f:
        if f.read(4) == b"\x7fELF":
            return kernel.vmlinuz  # given as a vmlinux: QEMU boots it by PVH itself
    out = kernel.work_dir / "vmlinux"
    none = kernel.work_dir / "vmlinux.none"
    if out.is_file():
        return out
    if none.is_file():
        return kernel.vmlinuz
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        elf = vmlinux_of(kernel.vmlinuz)
    except InputError:
        elf = b""
    if not has_pvh_entry(elf):
        none.write_text("no PVH entry point: the bzImage is booted\n")
        return kernel.vmlinuz
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".vmlinux-")
    with os.fdopen(fd, "wb") as f:
        f.write(elf)
    os.replace(tmp, out)
    return out


def qemu_command(kernel: KernelInfo, initrd: Path, disk: Path, tmp: Path) -> list[str]:
    """The QEMU command line of a job (no network; only files under ``tmp``)."""
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        raise InputError(
            "qemu-system-x86_64 is not installed (Debian: apt-get install --no-install-recommends "
            "qemu-system-x86; `make setup-kernel` does it)"
        )
    return [
        qemu,
        *accelerator(),
        "-machine", "pc",
        "-m", "2G",
        "-smp", "1",
        "-nodefaults",
        "-display", "none",
        "-no-reboot",
        "-nic", "none",
        "-kernel", str(boot_image(kernel)),
        "-initrd", str(initrd),
        "-append", KERNEL_CMDLINE,
        "-serial", "stdio",
        "-chardev", f"socket,id=ctl,path={tmp / 'ctl.sock'},server=on,wait=off",
        "-serial", "chardev:ctl",
        "-qmp", f"unix:{tmp / 'qmp.sock'},server=on,wait=off",
        "-drive", f"file={disk},format=raw,if=virtio,cache=unsafe",
    ]  # fmt: skip


def _job_archive(scripts: list[GuestScript], config: dict[str, str]) -> bytes:
    w = CpioWriter()
    w.directory("job")
    ids = []
    for i, s in enumerate(scripts):
        sid = f"{i:03d}"
        ids.append(sid)
        w.file(f"job/{sid}.prog", s.program, 0o755)
    w.file("job/list", "".join(f"{i}\n" for i in ids).encode())
    w.file("job/config", "".join(f"{k}={v}\n" for k, v in config.items()).encode())
    return w.finish()


def _pause_loop(
    sock_path: Path,
    qmp_path: Path,
    tmp: Path,
    pause: Callable[[Monitor, str], None],
    names: dict[str, str],
    stop: threading.Event,
    errors: list[BaseException],
) -> None:
    """Serve ``DAXSIM-PAUSE <name>`` lines of the guest's ttyS1."""
    ctl = None
    while not stop.is_set() and ctl is None:
        ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            ctl.connect(str(sock_path))
        except OSError:
            ctl.close()
            ctl = None
            time.sleep(0.1)
    if ctl is None:
        return
    ctl.settimeout(0.5)
    monitor = None
    buf = b""
    try:
        while not stop.is_set():
            try:
                chunk = ctl.recv(4096)
            except TimeoutError:
                continue
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                text = line.decode("utf-8", "replace").strip("\r ")
                if not text.startswith("DAXSIM-PAUSE"):
                    continue
                name = text.split(None, 1)[1] if " " in text else ""
                try:
                    if monitor is None:
                        monitor = Monitor(qmp_path, tmp)
                    pause(monitor, names.get(name, name))
                except Exception as exc:  # reported by run_job; the guest goes on
                    errors.append(exc)
                finally:
                    ctl.sendall(b"\n")
    except OSError as exc:  # the port closed under us: reported by run_job
        errors.append(exc)
    finally:
        if monitor is not None:
            monitor.close()
        ctl.close()


def run_job(
    kernel: KernelInfo,
    scripts: list[GuestScript],
    *,
    timeout_s: float | None = None,
    script_timeout_s: float | None = 600.0,
    pause: Callable[[Monitor, str], None] | None = None,
    want_btf: bool = False,
    want_kallsyms: bool = False,
    on_line: Callable[[str], None] | None = None,
    crash_grace_s: float = CRASH_GRACE_S,
) -> JobResult:
    """Boot ``kernel`` and run ``scripts`` in it, in order.

    One boot runs them all, unless the kernel oopses in one (a ``BUG_ON``: clear_inode's at
    an unmount kills the task with the ``i_pages`` lock held, and the guest can no longer
    unmount or sync): the console shows the oops, the guest saves that script's files
    without touching the filesystem and says ``DAXSIM-CRASH``, the host kills it (after
    ``crash_grace_s`` at the latest) and boots again for the scripts after it. The script's
    output has ``crash`` set to the oops line; its kernel log holds the splat.

    Parameters
    ----------
    kernel : KernelInfo
        The kernel to boot (:func:`sim.kernel.cache.load_kernel` or ``local_kernel``).
    scripts : list of GuestScript
        Programs for the agent (``/bin/daxio``), or scripts starting with ``#!``.
    timeout_s : float, optional
        Wall-clock limit of each boot; default 240 s plus 60 s per script it runs (TCG on a
        busy machine). The guest is killed when it is exceeded.
    script_timeout_s : float or None
        Wall-clock limit of one script (from its start on the console to its end; the time
        the host spends in ``pause`` included); the guest is killed when a script exceeds it.
    pause : callable, optional
        ``pause(monitor, script_name)``, called while the agent waits before its unmount.
    want_btf, want_kallsyms : bool
        Copy ``/sys/kernel/btf/vmlinux`` / ``/proc/kallsyms`` of the guest into the result
        (from the first boot).
    on_line : callable, optional
        Receives each line of the serial console as it arrives.
    crash_grace_s : float
        Seconds to wait after an oops for the guest's ``DAXSIM-CRASH``.

    Returns
    -------
    JobResult
        The first boot's, with every boot's script outputs, console (one after the other)
        and time; ``timed_out`` if any boot timed out; ``boots`` the number of boots.
    """
    rest = list(scripts)
    job: JobResult | None = None
    while True:
        one, crashed = _boot(
            kernel,
            rest,
            timeout_s=timeout_s,
            script_timeout_s=script_timeout_s,
            pause=pause,
            want_btf=want_btf and job is None,
            want_kallsyms=want_kallsyms and job is None,
            on_line=on_line,
            crash_grace_s=crash_grace_s,
        )
        if job is None:
            job = one
        else:
            job.scripts += one.scripts
            job.boot_log += "\n" + one.boot_log
            job.timed_out |= one.timed_out
            job.total_s += one.total_s
            job.boots += 1
        if crashed is None or one.timed_out or crashed + 1 >= len(rest):
            return job
        rest = rest[crashed + 1 :]


def _boot(
    kernel: KernelInfo,
    scripts: list[GuestScript],
    *,
    timeout_s: float | None,
    script_timeout_s: float | None,
    pause: Callable[[Monitor, str], None] | None,
    want_btf: bool,
    want_kallsyms: bool,
    on_line: Callable[[str], None] | None,
    crash_grace_s: float,
) -> tuple[JobResult, int | None]:
    """One boot of :func:`run_job`: its result and the index of the script the kernel
    oopsed in (None: no oops), after which the guest was killed.

    Parameters
    ----------
    kernel : KernelInfo
        The kernel to boot (:func:`sim.kernel.cache.load_kernel` or ``local_kernel``).
    scripts : list of GuestScript
        Programs for the agent (``/bin/daxio``), or scripts starting with ``#!``.
    timeout_s : float, optional
        Wall-clock limit of the whole boot; default 240 s plus 60 s per script (TCG on a busy
        machine). The guest is killed when it is exceeded.
    script_timeout_s : float or None
        Wall-clock limit of one script (from its start on the console to its end; the time
        the host spends in ``pause`` included); the guest is killed when a script exceeds it.
    pause : callable, optional
        ``pause(monitor, script_name)``, called while the agent waits before its unmount.
    want_btf, want_kallsyms : bool
        Copy ``/sys/kernel/btf/vmlinux`` / ``/proc/kallsyms`` of the guest into the result.
    on_line : callable, optional
        Receives each line of the serial console as it arrives.

    Returns
    -------
    (JobResult, int or None)
    """
    if timeout_s is None:
        timeout_s = 240.0 + 60.0 * len(scripts)
    names = {f"{i:03d}": s.name for i, s in enumerate(scripts)}
    # Debian's kernels ship no System.map (a placeholder; the real one is in the -dbg
    # package): the first boot of a kernel keeps the guest's /proc/kallsyms instead (the
    # addresses are the System.map's under nokaslr).
    save_symbols = kernel.system_map is None and not (kernel.work_dir / "System.map").exists()
    want_kallsyms = want_kallsyms or save_symbols
    base = base_initramfs(kernel)
    agent = agent_archive()
    config = {
        "DAXSIM_PAUSE": "1" if pause is not None else "0",
        "DAXSIM_BTF": "1" if want_btf else "0",
        "DAXSIM_KALLSYMS": "1" if want_kallsyms else "0",
        "DAXSIM_SLOT_BLOCKS": str(RESULTS_SLOT_BYTES // 65536),
    }
    with tempfile.TemporaryDirectory(prefix="daxsim-guest-") as tmp_s:
        tmp = Path(tmp_s)
        os.chmod(tmp, 0o700)
        initrd = tmp / "initrd.cpio"
        with open(initrd, "wb") as f:
            with open(base, "rb") as b:
                shutil.copyfileobj(b, f)
            f.write(agent.read_bytes())
            f.write(_job_archive(scripts, config))
        disk = tmp / "results.img"
        with open(disk, "wb") as f:
            f.truncate(RESULTS_SLOT_BYTES * (len(scripts) + 1))
        cmd = qemu_command(kernel, initrd, disk, tmp)
        t0 = time.monotonic()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        lines: list[str] = []
        marks: dict[str, float] = {}
        running: list[float | None] = [None]  # when the running script started
        current: list[str | None] = [None]  # id of the script started last
        # an oops during a script: [script id, console line, when]; DAXSIM-CRASH: saved
        crash: list = []
        saved = threading.Event()

        def reader() -> None:
            for raw in iter(proc.stdout.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                lines.append(line)
                m = re.search(r"DAXSIM-(READY|START|DONE|END|CRASH)(?: (\d+))?", line)
                if m:
                    if m.group(1) == "CRASH":
                        saved.set()
                    elif m.group(1) == "START":
                        running[0] = time.monotonic()
                        current[0] = m.group(2)
                    else:
                        running[0] = None
                    marks.setdefault(
                        f"{m.group(1)} {m.group(2) or ''}".strip(), time.monotonic() - t0
                    )
                elif not crash and current[0] is not None and OOPS_LINE.search(line):
                    # the oops from its first word (the log's timestamp left out)
                    text = line[OOPS_LINE.search(line).start() :].strip()
                    crash.extend((current[0], text, time.monotonic()))
                if on_line is not None:
                    on_line(line)

        rt = threading.Thread(target=reader, daemon=True)
        rt.start()
        stop = threading.Event()
        errors: list[BaseException] = []
        pt = None
        if pause is not None:
            pt = threading.Thread(
                target=_pause_loop,
                args=(tmp / "ctl.sock", tmp / "qmp.sock", tmp, pause, names, stop, errors),
                daemon=True,
            )
            pt.start()
        timed_out = False
        try:
            while proc.poll() is None:
                now = time.monotonic()
                started = running[0]
                if crash and (saved.is_set() or now - crash[2] > crash_grace_s):
                    break  # the guest cannot go on after the oops: killed below
                if now - t0 > timeout_s or (
                    script_timeout_s is not None
                    and started is not None
                    and now - started > script_timeout_s
                ):
                    timed_out = True
                    break
                time.sleep(0.2)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            stop.set()
            rt.join(timeout=10)
            proc.stdout.close()
            if pt is not None:
                pt.join(timeout=10)
            proc.stdout.close()
        total_s = time.monotonic() - t0
        if errors:
            raise errors[0]
        files = _read_results(disk, len(scripts) + 1)
    result = _assemble(kernel, scripts, names, files, lines, marks, timed_out, total_s)
    result.workdir = tmp_s
    if save_symbols and result.kallsyms and result.release == kernel.release:
        save_system_map(kernel, result.kallsyms)
    if not crash:
        return result, None
    sid, line = crash[0], crash[1]
    crashed = int(sid)
    outs = result.scripts
    k = next((j for j, o in enumerate(outs) if o.name == names[sid]), None)
    if k is not None:
        outs[k] = dataclasses.replace(outs[k], crash=line)
    else:  # the guest saved nothing: the console from the script's start is its kernel log
        at = max(j for j, t in enumerate(lines) if re.search(rf"DAXSIM-START {sid}\b", t))
        outs.append(
            GuestOutput(
                name=names[sid],
                agent_stdout="",
                dmesg="\n".join(lines[at + 1 :]),
                trace="",
                exit_status=-1,
                crash=line,
            )
        )
    return result, crashed


def save_system_map(kernel: KernelInfo, kallsyms: str) -> Path:
    """Keep a guest's ``/proc/kallsyms`` as the kernel's ``System.map`` in the cache, and
    derive the kernel's design again with the static symbols it adds."""
    from sim.kernel.cache import describe_kernel, write_json_atomic

    out = kernel.work_dir / "System.map"
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".System.map-")
    with os.fdopen(fd, "w") as f:
        f.write(kallsyms)
    os.replace(tmp, out)
    meta = kernel.work_dir / "kernel.json"
    if meta.is_file():
        data = json.loads(meta.read_text())
        _r, _v, design, evidence = describe_kernel(kernel.vmlinuz, out)
        data.update(design=design, design_evidence=evidence, system_map="guest /proc/kallsyms")
        write_json_atomic(meta, data)
    return out


def _read_results(disk: Path, slots: int) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    with open(disk, "rb") as f:
        for slot in range(slots):
            f.seek(slot * RESULTS_SLOT_BYTES)
            head = f.read(512)
            if not head.strip(b"\0"):
                continue
            f.seek(slot * RESULTS_SLOT_BYTES)
            try:
                with tarfile.open(fileobj=f, mode="r:") as tar:
                    for member in tar:
                        if member.isfile():
                            data = tar.extractfile(member).read()
                            files[member.name.removeprefix("./")] = data
            except tarfile.TarError:
                continue  # a slot the guest was writing when it stopped
    return files


def _assemble(kernel, scripts, names, files, lines, marks, timed_out, total_s) -> JobResult:
    def text(key: str) -> str:
        return files.get(key, b"").decode("utf-8", "replace")

    outputs = []
    for sid, name in names.items():
        if f"{sid}/status" not in files:
            continue
        start, done = marks.get(f"START {sid}"), marks.get(f"DONE {sid}")
        reset_s = reset_error = None
        reset = text(f"{sid}/reset").split()
        if len(reset) == 3:
            reset_s = float(reset[2]) - float(reset[1])
            if reset[0] != "ok":
                err = text(f"{sid}/reset.err").strip()
                reset_error = err or "the pfn device did not bind again"
        outputs.append(
            GuestOutput(
                name=name,
                agent_stdout=text(f"{sid}/stdout"),
                dmesg=text(f"{sid}/dmesg"),
                trace=text(f"{sid}/trace"),
                exit_status=int(text(f"{sid}/status").strip() or -1),
                stderr=text(f"{sid}/stderr"),
                elapsed_s=(done - start) if start is not None and done is not None else None,
                reset_s=reset_s,
                reset_error=reset_error,
            )
        )
    iomem = text("iomem")
    if "nd" in files:
        iomem += "\n" + text("nd")
    return JobResult(
        kernel=kernel,
        scripts=outputs,
        boot_log="\n".join(lines),
        timed_out=timed_out,
        btf=files.get("btf"),
        iomem=iomem,
        kallsyms=text("kallsyms") if "kallsyms" in files else None,
        release=text("uname").strip(),
        ready_s=marks.get("READY"),
        total_s=total_s,
        files={k: v for k, v in files.items() if "/" not in k},
    )
