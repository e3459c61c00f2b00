"""Scripts for the real-kernel tests, with expectations computed from facts of the format.

The script of :func:`every_line_script` uses every line type of the conformance format
(shared/conformance/xfstests/README.md); its ``@expect_*`` values are computed here with
hashlib from what the format says the commands write (pwrite ``-S`` byte, mwrite byte,
zeros after fzero/fpunch), never taken from a run.
"""

from __future__ import annotations

import hashlib

KIB = 1024


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def every_line_script(*, poison: bool = True) -> str:
    """A script with every line type (``@hwpoison`` and its checks only when ``poison``)."""
    a0 = b"a" * (64 * KIB) + b"b" * (64 * KIB)  # file a after its two pwrites
    c0 = b"c" * (128 * KIB)
    # a after: truncate 96k, falloc 96k+32k (zeros), fzero 0+4k, fpunch 4k+4k, funshare
    a1 = bytearray(a0[: 96 * KIB] + bytes(32 * KIB))
    a1[0 : 8 * KIB] = bytes(8 * KIB)
    a2 = bytearray(a1)
    a2[0 : 4 * KIB] = b"d" * (4 * KIB)  # mwrite -S 0x64 0 4k
    lines = [
        "# every line type of the conformance format, expectations computed from its README",
        "@scratch_dev_fill 0x58",
        "@mkfs size=32m",
        "open -f a",
        "pwrite -S 0x61 -W 0 64k",
        "pwrite -S 0x62 -w -b 16k 64k 64k",
        "fsync",
        "fdatasync",
        "stat",
        "md5sum",
        "files",
        "open -f b",
        "reflink a",
        "@expect_same_mapping a b",
        "@model_shared_blocks b 32/32",
        f"@expect_md5 b {_md5(a0)}",
        "dedupe a 0 0 64k",
        "open -f c",
        "pwrite -S 0x63 0 128k",
        "dedupe a 0 0 64k",
        "@expect_errno EBADE",
        "file 0",
        "pread -v 0 16",
        "@expect_bytes 0 " + "61" * 16,
        "truncate 96k",
        "falloc 96k 32k",
        "fzero 0 4k",
        "fpunch 4k 4k",
        "funshare 8k 8k",
        f"@expect_range_md5 a 0 8k {_md5(bytes(8 * KIB))}",
        "@expect_range a 16k b 16k 48k same",
        "@expect_cmp a b differ",
        f"@expect_md5 a {_md5(bytes(a1))}",
        "mmap -rw 0 64k",
        "mwrite -S 0x64 0 4k",
        "msync -s 0 4k",
        "mread -v 0 4",
        "@expect_bytes 0 64646464",
        "mmap -r 64k 64k",
        "mread",
        "mmap 0",
        "msync",
        "munmap",
        "munmap",
        "close",
        "close",
        "close",
        f"@expect_md5 a {_md5(bytes(a2))}",
    ]
    if poison:
        # before @cycle_mount (Linux 6.0-6.1 load a reflinked inode without DAX), on a block of
        # b that a no longer shares (a was truncated at 96k), which no mapping of a has touched
        lines += [
            "open b",
            "mmap -r 96k 4k",
            "mread 96k 4k",
            "@hwpoison 96k 4k",
            "@expect_sigbus",
            "@expect_poison_owners 96k b:98304",
            "munmap",
            "close",
        ]
    lines += [
        "@sync",
        "@statfs S1",
        "open -f big",
        "pwrite -b 1m 0 4m",
        "close",
        "@sync",
        "@statfs S2",
        "@expect_free_delta S1 S2 1024 tol=15%",
        "@unlink big",
        "@cycle_mount",
        f"@expect_md5 c {_md5(c0)}",
        "open -r c",
        "mmap -r 0 4k",
        "mread 0 4k",
        "munmap",
        "close",
    ]
    lines += [
        "@expect_invariant no_warnings holds",
        f"@final c size={len(c0)} md5={_md5(c0)}",
    ]
    return "\n".join(lines) + "\n"
