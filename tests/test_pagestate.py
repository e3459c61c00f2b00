"""``daxsim pagestate`` end to end, ``daxsim variants``, and malformed traces (exit 2, no files)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from sim.cli import main
from sim.memmap import PMD_NPAGES, VARIANTS, MemMap

HEADER = "op,pfn,npages,mapping,index,flag\n"


def _write(tmp_path, rows, name="trace.csv", header=HEADER):
    p = tmp_path / name
    p.write_text(header + "".join(r + "\n" for r in rows))
    return p


def _random_trace(tmp_path, n=3000, npages=4096, seed=1):
    rng = np.random.default_rng(seed)
    npg = np.where(rng.random(n) < 0.1, PMD_NPAGES, 1)
    pfn = np.where(
        npg == PMD_NPAGES,
        PMD_NPAGES * rng.integers(0, npages // PMD_NPAGES, n),
        rng.integers(0, 64, n),
    )
    op = rng.integers(0, 2, n)
    mapping = rng.integers(1, 5, n)
    index = rng.integers(0, 4, n) * PMD_NPAGES
    flag = rng.integers(0, 2, n)
    words = np.array(["associate", "disassociate"])[op]
    rows = [
        f"{w},{a},{b},{c},{d},{e}"
        for w, a, b, c, d, e in zip(words, pfn, npg, mapping, index, flag, strict=True)
    ]
    return _write(tmp_path, rows), np.stack([op, pfn, npg, mapping, index, flag]).astype(np.int64)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_replay_writes_state_and_summary_equal_to_memmap(tmp_path, variant):
    trace, ops = _random_trace(tmp_path)
    state, summ = tmp_path / "state.csv", tmp_path / "summary.json"
    rc = main(
        [
            "pagestate",
            str(trace),
            "--variant",
            variant,
            "--pages",
            "4096",
            "--state-out",
            str(state),
            "--summary-out",
            str(summ),
        ]
    )
    assert rc == 0
    mm = MemMap(4096, variant)
    mm.apply(*ops)
    lines = state.read_text().splitlines()
    assert lines[0] == "pfn,mapping,index"
    got = np.array([[int(x) for x in ln.split(",")] for ln in lines[1:]], dtype=np.int64)
    pfn, m, i = mm.state()
    np.testing.assert_array_equal(got.reshape(-1, 3), np.stack([pfn, m, i], axis=1))
    data = json.loads(summ.read_text())
    assert data == mm.summary()
    assert data["operations"] == 3000 and data["variant"] == variant
    assert set(data["warnings_latched"].values()) <= {0, 1}


def test_known_residue_via_trace(tmp_path):
    rows = [
        "associate,7,1,1,10,1",
        "associate,7,1,2,10,1",
        "disassociate,7,1,1,0,0",
        "disassociate,7,1,2,0,0",
    ]
    trace = _write(tmp_path, rows)
    for variant, want in [("cow-index", "7,-1,0"), ("page-share", None), ("folio-share", None)]:
        out = tmp_path / f"{variant}.csv"
        assert (
            main(
                [
                    "pagestate",
                    str(trace),
                    "--variant",
                    variant,
                    "--pages",
                    "64",
                    "--state-out",
                    str(out),
                ]
            )
            == 0
        )
        body = out.read_text().splitlines()[1:]
        assert body == ([want] if want else [])


def test_summary_printed_without_output_options(tmp_path, capsys):
    trace = _write(tmp_path, ["associate,3,1,1,5,0", "associate,3,1,2,6,0"])
    assert main(["pagestate", str(trace), "--variant", "v6.2", "--pages", "16"]) == 0
    out = capsys.readouterr().out
    assert "page-share" in out and "associate_mapping_set" in out and "1 / 1" in out
    assert "residue" in out and "phantom" in out


BAD = [
    (["associate,1,7,1,0,0"], "trace.csv:2: field 'npages': expected 1 or 512, got 7"),
    (["associate,1,1,1,0,0", "associate,x,1,1,0,0"], "trace.csv:3: field 'pfn'"),
    (["associate,1,1,1,0,0", "associate,1.5,1,1,0,0"], "trace.csv:3: field 'pfn'"),
    (["associate,1,1,1,0,0,9"], "trace.csv:2: expected 6 fields, got 7"),
    (["associate,1,1,1,0"], "trace.csv:2: expected 6 fields, got 5"),
    (["assoc,1,1,1,0,0"], "trace.csv:2: field 'op': expected associate or disassociate"),
    (["associate,1,1,0,0,0"], "trace.csv:2: field 'mapping'"),
    (["associate,1,1,1,0,2"], "trace.csv:2: field 'flag': expected 0 or 1, got 2"),
    (["associate,1,1,1,-3,0"], "trace.csv:2: field 'index'"),
    (["associate,-1,1,1,0,0"], "trace.csv:2: field 'pfn'"),
    (["associate,100,512,1,0,0"], "trace.csv:2: field 'pfn': a 512-page entry must start"),
    (["associate,0,1,1,0,0", "associate,1024,512,1,0,0"], "trace.csv:3: field 'pfn': entry"),
    (["associate,1,1,1,,0"], "trace.csv:2: field 'index': expected an integer, got ''"),
]


@pytest.mark.parametrize("rows,message", BAD)
def test_malformed_row_exits_2_naming_line_and_field_and_writes_nothing(
    tmp_path, capsys, rows, message
):
    trace = _write(tmp_path, rows)
    state, summ = tmp_path / "state.csv", tmp_path / "summary.json"
    rc = main(
        [
            "pagestate",
            str(trace),
            "--variant",
            "page-share",
            "--pages",
            "1024",
            "--state-out",
            str(state),
            "--summary-out",
            str(summ),
        ]
    )
    assert rc == 2
    assert message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trace.csv"]


@pytest.mark.parametrize(
    "header,detail",
    [
        ("op,pfn,npages,mapping,index\n", "missing column(s) flag"),
        ("op,pfn,npages,mapping,index,flag,extra\n", "unexpected column(s) extra"),
        ("pfn,op,npages,mapping,index,flag\n", "out of order"),
    ],
)
def test_bad_header_is_line_1(tmp_path, capsys, header, detail):
    trace = _write(tmp_path, ["associate,1,1,1,0,0"], header=header)
    out = tmp_path / "s.json"
    assert (
        main(
            [
                "pagestate",
                str(trace),
                "--variant",
                "v6.2",
                "--pages",
                "8",
                "--summary-out",
                str(out),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "trace.csv:1:" in err and detail in err
    assert not out.exists()


def test_error_late_in_a_multi_block_trace_names_the_right_line(tmp_path, capsys, monkeypatch):
    import sim.commands.pagestate as ps

    monkeypatch.setattr(ps, "_BLOCK_BYTES", 4096)  # many blocks
    rows = ["associate,1,1,1,0,0"] * 5000 + ["disassociate,1,1,1,0,7"]
    trace = _write(tmp_path, rows)
    assert (
        main(
            [
                "pagestate",
                str(trace),
                "--variant",
                "v6.2",
                "--pages",
                "8",
                "--summary-out",
                str(tmp_path / "s.json"),
            ]
        )
        == 2
    )
    assert "trace.csv:5002: field 'flag'" in capsys.readouterr().err
    rows[2500] = "associate,1,1,1,zz,0"
    trace = _write(tmp_path, rows)
    assert main(["pagestate", str(trace), "--variant", "v6.2", "--pages", "8"]) == 2
    assert "trace.csv:2502: field 'index'" in capsys.readouterr().err


def test_unknown_variant_and_missing_file_exit_2(tmp_path, capsys):
    trace = _write(tmp_path, ["associate,1,1,1,0,0"])
    assert main(["pagestate", str(trace), "--variant", "v9.9", "--pages", "8"]) == 2
    assert "folio-share" in capsys.readouterr().err
    assert main(["pagestate", str(tmp_path / "nope.csv"), "--variant", "v6.2", "--pages", "8"]) == 2


def test_variants_table_lists_every_variant_with_its_kernel_range(capsys):
    assert main(["variants"]) == 0
    out = capsys.readouterr().out
    for v in VARIANTS.values():
        assert v.name in out
        if v.in_kernel:
            assert v.kernels in out
            assert v.kernel_range.evidence in out
        for a in v.aliases:
            assert a in out
    assert "No released kernel has" not in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "6.0\u20136.1" in rows["cow-index"]
    assert "6.2\u20136.14" in rows["page-share"]
    assert "6.15\u20137.0" in rows["folio-share"]
    assert "7.1+" in rows["folio-share-reset"]


def test_pagestate_as_a_subprocess(tmp_path):
    trace = _write(tmp_path, ["associate,1,1,1,0,0", "associate,1,1,2,0,0"])
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sim",
            "pagestate",
            str(trace),
            "--variant",
            "single-owner",
            "--pages",
            "8",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "associate_mapping_set" in proc.stdout
    bad = _write(tmp_path, ["associate,1,7,1,0,0"], name="bad.csv")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sim",
            "pagestate",
            str(bad),
            "--variant",
            "single-owner",
            "--pages",
            "8",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "bad.csv:2: field 'npages'" in proc.stderr
    assert "Traceback" not in proc.stderr
