"""``daxsim show-config`` through the CLI entry point."""

from __future__ import annotations

import tomllib

from sim.cli import main
from sim.scenario import SCENARIO_DIR, load_scenario, scenario_from_dict


def _scenario_part(out: str) -> str:
    return out.split("\n# hardware profile", 1)[0]


def test_show_config_default(capsys):
    assert main(["show-config"]) == 0
    out = capsys.readouterr().out
    for key in (
        "[run]",
        "seed = 20221201",
        "[device]",
        'size = "8GiB"',
        "[workload]",
        'generator = "vm-clones"',
        "clones = 16",
        "zipf_s = 1.0",
        "image_chunk = ",
        "[output]",
        "plots = true",
    ):
        assert key in out, key
    assert "# hardware profile 'optane-gen1'" in out
    assert "media.t_read_ns" in out


def test_show_config_output_is_toml_that_loads_back(capsys, tmp_path):
    for name in ("default", "memory-failure", "xfsio"):
        assert (
            main(
                [
                    "show-config",
                    name,
                    "--set",
                    "hardware.overrides.media.t_read_ns=123",
                    "--set",
                    "run.cpus=3",
                ]
            )
            == 0
        )
        text = _scenario_part(capsys.readouterr().out)
        data = tomllib.loads(text)
        again = scenario_from_dict(data, name=name)
        want = load_scenario(name, ["hardware.overrides.media.t_read_ns=123", "run.cpus=3"])
        assert again.to_dict() == want.to_dict()


def test_show_config_profile_option(capsys):
    assert main(["show-config", str(SCENARIO_DIR / "dedupe.toml"), "--profile", "cxl"]) == 0
    out = capsys.readouterr().out
    assert 'profile = "cxl"' in out and "# hardware profile 'cxl'" in out
    assert 'generator = "dedupe"' in out


def test_show_config_marks_overridden_profile_keys(capsys):
    assert main(["show-config", "--set", "hardware.overrides.media.t_read_ns=111"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("# * media.t_read_ns"))
    assert "111" in line


def test_show_config_bad_scenario_exits_2(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[workload]\ngenerator = "vm-clones"\nclonse = 4\n')
    assert main(["show-config", str(bad)]) == 2
    cap = capsys.readouterr()
    assert cap.out == ""
    assert str(bad) in cap.err and "workload.clonse" in cap.err
    assert "did you mean 'workload.clones'" in cap.err
    assert "Traceback" not in cap.err


def test_show_config_bad_set_exits_2(capsys):
    assert main(["show-config", "--set", "device.size=8GB"]) == 2
    err = capsys.readouterr().err
    assert "--set device.size=8GB" in err and "device.size" in err and "GiB" in err
    assert main(["show-config", "--profile", "optane-gen7"]) == 2
    assert "hardware.profile" in capsys.readouterr().err
