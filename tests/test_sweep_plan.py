"""Sweep files and their expansion: order, count, seeds, validation before anything runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sweep_helpers import TINY, write_sweep

from sim.cli import main
from sim.errors import InputError
from sim.sweep import build_plan, load_sweep, parse_sweep, run_slug
from sim.sweep.plan import check_resumable


def test_factors_expand_as_a_product_in_file_order_last_fastest(tmp_path):
    spec = load_sweep(
        write_sweep(
            tmp_path / "s.toml",
            factors={
                "workload.clones": [1, 2, 3],
                "variant.name": ["cow-index", "folio-share"],
                "device.memmap": ["dram", "pmem"],
            },
        )
    )
    plan = build_plan(spec)
    assert len(plan.runs) == 3 * 2 * 2 == spec.nruns
    assert [r.index for r in plan.runs] == list(range(12))
    got = [tuple(r.factors.values()) for r in plan.runs]
    assert got[:5] == [
        (1, "cow-index", "dram"),
        (1, "cow-index", "pmem"),
        (1, "folio-share", "dram"),
        (1, "folio-share", "pmem"),
        (2, "cow-index", "dram"),
    ]
    assert got[-1] == (3, "folio-share", "pmem")
    assert len(set(got)) == 12
    assert plan.factor_keys == ["workload.clones", "variant.name", "device.memmap"]
    # Every run's scenario carries its factors and the [set] values.
    for r in plan.runs:
        d = r.scenario.to_dict()
        assert d["workload"]["clones"] == r.factors["workload.clones"]
        assert d["variant"]["name"] == r.factors["variant.name"]
        assert d["device"]["memmap"] == r.factors["device.memmap"]
    dirs = [r.dirname for r in plan.runs]
    assert len(set(dirs)) == 12 and dirs[0].startswith("00000-") and dirs[11].startswith("00011-")


def test_run_i_is_seeded_with_spawn_key_i(tmp_path):
    plan = build_plan(
        load_sweep(
            write_sweep(tmp_path / "s.toml", factors={"workload.clones": [1, 2, 3]}, entropy=1234)
        )
    )
    assert plan.entropy == 1234
    for i in range(3):
        a = plan.seed_sequence(i).generate_state(4)
        b = np.random.SeedSequence(1234, spawn_key=(i,)).generate_state(4)
        assert np.array_equal(a, b)
    assert not np.array_equal(
        plan.seed_sequence(0).generate_state(4), plan.seed_sequence(1).generate_state(4)
    )


def test_entropy_defaults_to_the_base_scenarios_seed(tmp_path):
    spec = load_sweep(
        write_sweep(tmp_path / "s.toml", factors={"workload.clones": [1]}, entropy=None)
    )
    plan = build_plan(spec)
    assert plan.entropy_source == "run.seed"
    assert plan.entropy == plan.runs[0].scenario.to_dict()["run"]["seed"]


def test_toml_dotted_keys_mean_the_same_as_quoted_keys():
    a = parse_sweep(
        'base = "x.toml"\n[factors]\n"workload.clones" = [1, 2]\n"variant.name" = ["cow-index"]\n'
    )
    b = parse_sweep(
        'base = "x.toml"\n[factors]\nworkload.clones = [1, 2]\nvariant.name = ["cow-index"]\n'
    )
    assert a.factors == b.factors == (("workload.clones", (1, 2)), ("variant.name", ("cow-index",)))


@pytest.mark.parametrize(
    "text, needle",
    [
        ('base = "x.toml"\nfactor = {}\n', "'factor'"),
        ('[factors]\n"workload.clones" = [1]\n', "'base'"),
        ('base = "x.toml"\n[factors]\n"workload.clones" = 4\n', "must be a list"),
        ('base = "x.toml"\n[factors]\n"workload.clones" = []\n', "no values"),
        ('base = "x.toml"\n[factors]\n"workload.clones" = [1, 1]\n', "twice"),
        (
            'base = "x.toml"\n[set]\n"workload.clones" = 2\n[factors]\n"workload.clones" = [1]\n',
            "both",
        ),
        ('base = "x.toml"\nentropy = -1\n', "entropy"),
        ('base = "x.toml"\n[factors\n', "TOML"),
    ],
)
def test_malformed_sweep_files_are_input_errors(text, needle):
    with pytest.raises(InputError) as exc:
        parse_sweep(text)
    assert needle in str(exc.value)


def test_unknown_factor_key_exits_2_names_it_and_writes_nothing(tmp_path, capsys):
    sweep = write_sweep(
        tmp_path / "s.toml", factors={"workload.clones": [1, 2], "workload.clonez": [1]}
    )
    out = tmp_path / "out"
    assert main(["sweep", str(sweep), "--out", str(out), "--workers", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "workload.clonez" in err and "workload.clones" in err  # named, with the suggestion
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base.toml", "s.toml"]


def test_bad_factor_value_exits_2_naming_key_and_value_before_anything_runs(tmp_path, capsys):
    sweep = write_sweep(
        tmp_path / "s.toml",
        factors={"workload.clones": [1, 2], "variant.name": ["cow-index", "no-such-design"]},
    )
    out = tmp_path / "out"
    assert main(["sweep", str(sweep), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "variant.name" in err and "no-such-design" in err
    assert not out.exists()


def test_unknown_key_in_set_exits_2(tmp_path, capsys):
    sweep = write_sweep(
        tmp_path / "s.toml",
        factors={"workload.clones": [1]},
        fixed={"workload.image_sise": "64KiB"},
    )
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert "workload.image_sise" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_missing_base_scenario_exits_2(tmp_path, capsys):
    (tmp_path / "s.toml").write_text('base = "nowhere.toml"\n[factors]\n"workload.clones" = [1]\n')
    assert main(["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert "nowhere.toml" in capsys.readouterr().err


def test_dry_run_lists_the_runs_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", str(TINY), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "8 runs" in out and "00007-" in out
    assert list(tmp_path.iterdir()) == []


def test_sample_sweeps_are_valid():
    farm = build_plan(load_sweep(TINY.parent / "clone-farm.toml"))
    assert len(farm.runs) == 5 * 4 * 2
    assert farm.factor_keys == ["workload.clones", "variant.name", "device.memmap"]
    assert {r.factors["variant.name"] for r in farm.runs} == {
        "single-owner",
        "cow-index",
        "page-share",
        "folio-share",
    }
    assert len(build_plan(load_sweep(TINY)).runs) == 8


def test_resume_refuses_a_changed_sweep_file_saying_what_changed(tmp_path):
    s = write_sweep(tmp_path / "s.toml", factors={"workload.clones": [1, 2]})
    stored = json.loads(json.dumps(build_plan(load_sweep(s)).to_json()))
    check_resumable(stored, build_plan(load_sweep(s)), where="sweep.json")  # same plan: fine
    s2 = write_sweep(tmp_path / "s2.toml", factors={"workload.clones": [1, 3]})
    with pytest.raises(InputError, match="no longer matches.*workload.clones"):
        check_resumable(stored, build_plan(load_sweep(s2)), where="sweep.json")
    s3 = write_sweep(
        tmp_path / "s3.toml",
        factors={"workload.clones": [1, 2]},
        fixed={"workload.image_size": "128KiB", "workload.accesses_per_vm": 64},
    )
    with pytest.raises(InputError, match="no longer matches"):
        check_resumable(stored, build_plan(load_sweep(s3)), where="sweep.json")


def test_resume_needs_out_and_new_sweep_needs_empty_out(tmp_path, capsys):
    s = write_sweep(tmp_path / "s.toml", factors={"workload.clones": [1]})
    assert main(["sweep", str(s), "--resume", "--quiet"]) == 2
    assert "--out" in capsys.readouterr().err
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "something").write_text("x")
    assert main(["sweep", str(s), "--out", str(busy), "--quiet"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["sweep", str(s), "--out", str(tmp_path / "none"), "--resume", "--quiet"]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_bad_workers_and_scheduler_exit_2(tmp_path, capsys):
    s = write_sweep(tmp_path / "s.toml", factors={"workload.clones": [1]})
    assert main(["sweep", str(s), "--out", str(tmp_path / "a"), "--workers", "0"]) == 2
    assert "--workers" in capsys.readouterr().err
    assert main(["sweep", str(s), "--out", str(tmp_path / "b"), "--scheduler", "nonsense"]) == 2
    assert "--scheduler" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_missing_dask_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # import fails
    s = write_sweep(tmp_path / "s.toml", factors={"workload.clones": [1]})
    assert main(["sweep", str(s), "--out", str(tmp_path / "o"), "--scheduler", "local"]) == 2
    assert "pip install 'daxsim[dask]'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_run_slug_is_short_and_safe():
    assert (
        run_slug(12, {"workload.clones": 16, "variant.name": "cow-index", "device.memmap": "pmem"})
        == "00012-clones16-cow-index-pmem"
    )
    assert run_slug(3, {}) == "00003"
    slug = run_slug(7, {"workload.image_size": "a/b c" * 40})
    assert "/" not in slug and " " not in slug and len(slug) <= 66


def test_stream_factors_give_runs_that_agree_on_them_one_seed(tmp_path):
    path = write_sweep(
        tmp_path / "s.toml",
        factors={
            "workload.clones": [1, 2, 3],
            "variant.name": ["cow-index", "folio-share"],
            "device.memmap": ["dram", "pmem"],
        },
        extra='stream_factors = ["workload.clones"]',
    )
    plan = build_plan(load_sweep(path))
    keys = [r.spawn_key for r in plan.runs]
    assert keys == [0] * 4 + [1] * 4 + [2] * 4
    a, b = plan.seed_sequence(0).generate_state(4), plan.seed_sequence(3).generate_state(4)
    assert np.array_equal(a, b)
    assert np.array_equal(a, np.random.SeedSequence(11, spawn_key=(0,)).generate_state(4))
    assert plan.to_json()["stream_factors"] == ["workload.clones"]
    assert [r["spawn_key"] for r in plan.to_json()["runs"]] == keys


def test_stream_factors_must_name_factors():
    with pytest.raises(InputError, match="not a factor.*did you mean 'workload.clones'"):
        parse_sweep(
            'base = "x.toml"\nstream_factors = ["workload.clone"]\n'
            '[factors]\n"workload.clones" = [1, 2]\n'
        )
