"""The operation stream format: construction, validation, xfs_io conversion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim.errors import InputError
from workloads.ops import (
    ARG_PMD,
    ARG_WHOLE_FILE,
    ARG_WRITABLE,
    OP_DTYPE,
    PMD_SIZE,
    Op,
    concat,
    empty_stream,
    from_xfsio_lines,
    make_ops,
    op_counts,
    sort_by_time,
    to_xfsio_lines,
    validate_stream,
)
from workloads.registry import build_workload, generate

ROOT = Path(__file__).resolve().parents[1]


def test_dtype_is_signed_and_documented():
    for name in OP_DTYPE.names:
        assert OP_DTYPE[name].kind == "i", name  # no unsigned fields
    assert OP_DTYPE["offset_bytes"] == np.int64 and OP_DTYPE["t_cycles"] == np.int64
    assert {o.name for o in Op} >= {
        "CREATE",
        "WRITE",
        "CLONE",
        "DEDUPE",
        "MMAP",
        "MUNMAP",
        "READ_FAULT",
        "WRITE_FAULT",
        "TRUNCATE",
        "PUNCH",
        "ZERO",
        "UNSHARE",
        "UNLINK",
        "FSYNC",
        "POISON",
        "READ",
    }
    assert len({int(o) for o in Op}) == len(Op)


def test_make_ops_broadcasts():
    rows = make_ops(
        Op.READ_FAULT, pid=3, file=1, offset_bytes=np.arange(4) * 4096, length_bytes=4096
    )
    assert len(rows) == 4 and rows.dtype == OP_DTYPE
    assert (rows["pid"] == 3).all() and rows["offset_bytes"].tolist() == [0, 4096, 8192, 12288]
    assert (rows["src"] == -1).all()
    one = make_ops(Op.CREATE, file=7)
    assert len(one) == 1 and one["file"][0] == 7
    with pytest.raises(TypeError):
        make_ops(Op.CREATE, fil=1)
    assert len(concat([])) == 0 and len(empty_stream(3)) == 3
    t = concat(
        [
            make_ops(Op.FSYNC, file=0, t_cycles=5),
            make_ops(Op.FSYNC, file=1, t_cycles=1),
            make_ops(Op.FSYNC, file=2, t_cycles=5),
        ]
    )
    assert sort_by_time(t)["file"].tolist() == [1, 0, 2]  # stable among equal times


def _base():
    return [
        make_ops(Op.CREATE, file=0),
        make_ops(Op.WRITE, file=0, length_bytes=8192, arg=0x61),
        make_ops(Op.CREATE, file=1),
        make_ops(Op.CLONE, file=1, src=0, arg=ARG_WHOLE_FILE),
        make_ops(Op.MMAP, pid=1, file=1, length_bytes=8192, arg=ARG_WRITABLE),
        make_ops(Op.READ_FAULT, pid=1, file=1, offset_bytes=4096, length_bytes=4096),
        make_ops(Op.WRITE_FAULT, pid=1, file=1, offset_bytes=0, length_bytes=4096),
    ]


def test_validator_accepts_a_legal_stream():
    s = concat(_base() + [make_ops(Op.MUNMAP, pid=1, file=1), make_ops(Op.UNLINK, file=1)])
    summary = validate_stream(s)
    assert summary["live_files"] == [0] and summary["sizes_bytes"] == {0: 8192}
    assert summary["counts"] == op_counts(s)


@pytest.mark.parametrize(
    "extra, why",
    [
        (
            [make_ops(Op.READ_FAULT, pid=1, file=1, offset_bytes=8192, length_bytes=4096)],
            "beyond EOF",
        ),
        ([make_ops(Op.READ_FAULT, pid=2, file=1, offset_bytes=0, length_bytes=4096)], "no mapping"),
        (
            [make_ops(Op.READ_FAULT, pid=1, file=1, offset_bytes=100, length_bytes=4096)],
            "page aligned",
        ),
        (
            [
                make_ops(
                    Op.READ_FAULT, pid=1, file=1, offset_bytes=0, length_bytes=PMD_SIZE, arg=ARG_PMD
                )
            ],
            "outside the mapping",
        ),
        (
            [
                make_ops(Op.WRITE, file=1, length_bytes=PMD_SIZE, arg=1),
                make_ops(
                    Op.READ_FAULT, pid=1, file=1, offset_bytes=0, length_bytes=PMD_SIZE, arg=ARG_PMD
                ),
            ],
            "outside the mapping",
        ),
        (
            [
                make_ops(Op.WRITE, file=0, length_bytes=PMD_SIZE, arg=1),
                make_ops(Op.MMAP, pid=5, file=0, length_bytes=PMD_SIZE),
                make_ops(
                    Op.READ_FAULT, pid=5, file=0, offset_bytes=0, length_bytes=PMD_SIZE, arg=ARG_PMD
                ),
            ],
            "not huge-aligned",
        ),
        ([make_ops(Op.UNLINK, file=1)], "still mapped"),
        (
            [
                make_ops(Op.MUNMAP, pid=1, file=1),
                make_ops(Op.UNLINK, file=1),
                make_ops(Op.WRITE, file=1, length_bytes=1, arg=1),
            ],
            "unlinked",
        ),
        ([make_ops(Op.CREATE, file=0)], "new file id"),
        ([make_ops(Op.CLONE, file=0, src=5, arg=ARG_WHOLE_FILE)], "never created"),
        (
            [make_ops(Op.CLONE, file=1, src=0, src_offset_bytes=4096, length_bytes=8192)],
            "beyond source EOF",
        ),
        (
            [make_ops(Op.CLONE, file=1, src=0, src_offset_bytes=100, length_bytes=4096)],
            "block aligned",
        ),
        ([make_ops(Op.DEDUPE, file=1, src=0, offset_bytes=4096, length_bytes=8192)], "beyond EOF"),
        ([make_ops(Op.MMAP, pid=1, file=1, length_bytes=4096)], "already maps"),
        (
            [
                make_ops(Op.MMAP, pid=2, file=0, length_bytes=4096),
                make_ops(Op.WRITE_FAULT, pid=2, file=0, length_bytes=4096),
            ],
            "read-only",
        ),
        ([make_ops(Op.POISON, pid=3, file=0, length_bytes=4096)], "mapping that does not exist"),
        ([make_ops(Op.FSYNC, file=0, t_cycles=-1)], "non-decreasing"),
        ([make_ops(99, file=0)], "unknown op"),
    ],
)
def test_validator_rejects(extra, why):
    s = concat(_base() + extra)
    with pytest.raises(InputError, match=why) as e:
        validate_stream(s)
    assert e.value.where.startswith("stream row ")


def test_validator_time_order():
    s = concat(_base())
    s["t_cycles"] = np.arange(len(s))[::-1]
    with pytest.raises(InputError, match="non-decreasing"):
        validate_stream(s)


def test_xfsio_roundtrip_small_stream():
    sp = build_workload(
        {
            "generator": "vm-clones",
            "clones": 3,
            "image_size": 256 << 10,
            "accesses_per_vm": 40,
            "image_chunk": 64 << 10,
            "write_fraction": 0.4,
            "stop_fraction": 0.67,
        }
    )
    stream, meta = generate(sp, 11, cpus=2)
    lines = to_xfsio_lines(stream, meta["file_names"])
    assert lines[0] == "open -f -t golden.img"
    assert any(x.startswith("mwrite -S 0x") for x in lines)
    assert any(x.startswith("@unlink vm") for x in lines)
    back, names = from_xfsio_lines(lines)
    assert names == meta["file_names"]
    validate_stream(back)
    for f in ("op", "file", "src", "offset_bytes", "length_bytes", "src_offset_bytes", "arg"):
        assert back[f].tolist() == stream[f].tolist(), f


def test_xfsio_shipped_sample_script_parses_to_a_legal_stream():
    lines = (ROOT / "scenarios" / "scripts" / "clone-cow.xfsio").read_text().splitlines()
    s, names = from_xfsio_lines(lines, source="clone-cow.xfsio")
    c = validate_stream(s)["counts"]
    assert names == ["base", "clone1", "clone2"]
    assert c["CLONE"] == 2 and c["WRITE_FAULT"] == 1 and c["UNSHARE"] == 1 and c["UNLINK"] == 1


def test_xfsio_unsupported_command_names_the_line():
    with pytest.raises(InputError) as e:
        from_xfsio_lines(["open -f a", "frobnicate 1 2"], source="x.xfsio")
    assert e.value.where == "x.xfsio:2"
    with pytest.raises(InputError, match="does not exist"):
        from_xfsio_lines(["open a"], source="x.xfsio")
