"""Fuzzing the input languages (xfs_io scripts have their own, tests/test_xfsio_fuzz.py):
scenario TOML, ``--set``, page-trace CSV and sweep files, random and mutated from valid ones,
with non-UTF-8 bytes, huge numbers and long lines. Whatever the input, the command exits 0, 1
or 2, prints no traceback, changes no file (none of these commands is given an output) and
adds at most ``MEMORY_BOUND_BYTES`` to the resident set: a resource limit would also stop the
lazy struct-page arrays, which reserve address space they never touch, so the peak resident
memory of each command is measured instead (see tests/memory_helpers.py)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from memory_helpers import MEMORY_BOUND_BYTES, peak_rss_added

from sim.cli import main
from sim.scenario import scenario_keys

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.toml"))
TINY_SWEEP = (
    (ROOT / "scenarios" / "sweeps" / "tiny.toml")
    .read_bytes()
    .replace(
        b'"../vm-clones.toml"', b'"' + str(ROOT / "scenarios" / "vm-clones.toml").encode() + b'"'
    )
)
KEYS = scenario_keys()

_HUGE = ["0", "-1", str(2**63 - 1), str(2**63), str(2**64), "1e308", "inf", "nan", "-0.0"]
value = st.one_of(
    st.sampled_from(_HUGE),
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(['"1PiB"', '"16EiB"', '"8GB"', '"x"', "true", "[1, 2]", "{a = 1}", '""']),
    st.text(max_size=20).map(lambda t: '"' + t.replace("\\", "").replace('"', "") + '"'),
)
junk = st.one_of(
    st.binary(max_size=40),
    st.sampled_from([b"\xff\xfe", b"\xc3", b"[run", b"= =", b"\x00", b"x" * 3_000_000]),
)
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _status(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        return int(exc.code)


def _check(tmp_path: Path, capsys, argv: list[str]) -> None:
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    status, added_bytes = peak_rss_added(_status, argv)
    assert status in (0, 1, 2)
    assert added_bytes < MEMORY_BOUND_BYTES, f"{argv}: {added_bytes} bytes resident"
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len(err) < 5000  # messages quote a few hundred characters of input at most
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before


def _mutate(data: bytes, at: int, cut: int, insert: bytes) -> bytes:
    at %= len(data) + 1
    return data[:at] + insert + data[at + cut :]


@SETTINGS
@given(
    scenario=st.sampled_from(SCENARIOS),
    at=st.integers(0, 10_000),
    cut=st.integers(0, 20),
    insert=st.one_of(
        junk,
        st.tuples(st.sampled_from(KEYS), value).map(
            lambda kv: f"\n{kv[0].rpartition('.')[2]} = {kv[1]}\n".encode()
        ),
    ),
)
def test_a_mutated_scenario_file(tmp_path, capsys, scenario, at, cut, insert):
    p = tmp_path / "s.toml"
    p.write_bytes(_mutate(scenario.read_bytes(), at, cut, insert))
    _check(tmp_path, capsys, ["show-config", str(p)])


@SETTINGS
@given(sets=st.lists(st.tuples(st.sampled_from(KEYS), value), min_size=1, max_size=3))
def test_random_set_overrides(tmp_path, capsys, sets):
    argv = ["show-config", "default"]
    for k, v in sets:
        argv += ["--set", f"{k}={v}"]
    _check(tmp_path, capsys, argv)


field = st.one_of(st.integers(-5, 70).map(str), st.sampled_from(_HUGE), st.text(max_size=8)).map(
    lambda s: s.replace(",", "").replace("\n", "").replace("\r", "").replace('"', "")
)
row = st.tuples(
    st.sampled_from(["associate", "disassociate", "x", ""]), field, field, field, field, field
).map(lambda r: ",".join(r).encode())


@SETTINGS
@given(rows=st.lists(st.one_of(row, junk), max_size=30))
def test_a_random_page_trace(tmp_path, capsys, rows):
    p = tmp_path / "t.csv"
    p.write_bytes(b"op,pfn,npages,mapping,index,flag\n" + b"\n".join(rows) + b"\n")
    _check(tmp_path, capsys, ["pagestate", str(p), "--variant", "page-share", "--pages", "64"])


@SETTINGS
@given(at=st.integers(0, 2_000), cut=st.integers(0, 20), insert=junk)
def test_a_mutated_sweep_file(tmp_path, capsys, at, cut, insert):
    p = tmp_path / "w.toml"
    p.write_bytes(_mutate(TINY_SWEEP, at, cut, insert))
    _check(tmp_path, capsys, ["sweep", str(p), "--dry-run"])
