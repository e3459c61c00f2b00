"""``daxsim microbench`` and ``daxsim profiles`` on the command line."""

from __future__ import annotations

import json

import pytest

from sim.cli import main


def run(capsys, *argv):
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_json_has_the_documented_keys(capsys):
    rc, out, _ = run(
        capsys,
        "microbench",
        "--op",
        "load",
        "--pattern",
        "rand",
        "--size",
        "64",
        "--threads",
        "1",
        "--dimms",
        "1",
        "--requests",
        "20000",
        "--json",
    )
    assert rc == 0
    rep = json.loads(out)
    for k in (
        "latency_ns",
        "bandwidth_gbps",
        "write_amplification",
        "p99_ns",
        "p99_99_ns",
        "p99_999_ns",
    ):
        assert isinstance(rep[k], float)
    assert rep["latency_ns"] == pytest.approx(305, rel=0.1)
    assert rep["p99_ns"] <= rep["p99_99_ns"] <= rep["p99_999_ns"]


def test_deterministic_output(capsys):
    args = (
        "microbench",
        "--op",
        "ntstore",
        "--pattern",
        "rand",
        "--size",
        "128",
        "--threads",
        "6",
        "--requests",
        "20000",
        "--json",
    )
    _, a, _ = run(capsys, *args)
    _, b, _ = run(capsys, *args)
    assert a == b


def test_hotspot_region_shows_wear_levelling_tail(capsys):
    rc, out, _ = run(
        capsys,
        "microbench",
        "--op",
        "ntstore",
        "--size",
        "256",
        "--dimms",
        "1",
        "--region",
        "4KiB",
        "--requests",
        "60000",
        "--json",
    )
    rep = json.loads(out)
    assert rc == 0 and rep["migrations"] > 0
    assert rep["p99_999_ns"] > 40_000 > rep["p99_ns"]


def test_text_output(capsys):
    rc, out, _ = run(capsys, "microbench", "--requests", "5000")
    assert rc == 0 and "bandwidth" in out and "idle latency" in out


@pytest.mark.parametrize(
    "argv",
    [
        ("--size", "100"),
        ("--threads", "0"),
        ("--profile", "optane"),
        ("--set", "rmw.bufer_lines=3"),
        ("--set", "nokeyvalue"),
        ("--region", "64", "--threads", "4"),
        ("--dimms", "0"),
    ],
)
def test_bad_input_exits_2_without_traceback(capsys, argv):
    rc, out, err = run(capsys, "microbench", "--requests", "1000", *argv)
    assert rc == 2 and "error" in err and "Traceback" not in err and out == ""


def test_profiles_lists_every_profile(capsys):
    rc, out, _ = run(capsys, "profiles")
    assert rc == 0
    for name in ("optane-gen1", "optane-gen2", "cxl", "dram"):
        assert name in out
    rc, out, _ = run(capsys, "profiles", "--json")
    assert [r["name"] for r in json.loads(out)][0] == "optane-gen1"


def test_published_curves_next_to_the_model(capsys):
    rc, out, _ = run(
        capsys, "microbench", "--published", "6-DIMM clwb", "--requests", "12000", "--json"
    )
    assert rc == 0
    rows = json.loads(out)
    assert {r["curve"] for r in rows} == {"6-DIMM clwb", "6-DIMM clwb by size"}
    assert not any(r["fitted"] for r in rows)  # no six-DIMM point was fitted
    by = {(r["curve"], r["x"]): r for r in rows}
    r = by[("6-DIMM clwb", 8)]
    assert r["published_gbps"] == 9.98
    assert r["error"] == pytest.approx(r["model_gbps"] / 9.98 - 1, abs=1e-3)
    rc, out, _ = run(capsys, "microbench", "--published", "1-DIMM ntstore", "--requests", "8000")
    assert rc == 0 and "fitted" in out and "checked only" in out


def test_published_unknown_curve_exits_2(capsys):
    rc, out, err = run(capsys, "microbench", "--published", "7-DIMM load")
    assert rc == 2 and "6-DIMM load" in err and out == ""
