"""The command line: help lists every subcommand, and python -m sim is the same program."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sim.cli import COMMANDS, _available, main


def test_help_lists_each_available_subcommand_with_its_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps long help lines
    available = _available()
    assert available, "no subcommand module found"
    for name, _module, help_text in available:
        assert name in out
        assert help_text in out


def test_every_listed_subcommand_has_configure_and_main():
    import importlib

    for _name, module, _help in _available():
        mod = importlib.import_module(f"sim.commands.{module}")
        assert callable(mod.configure) and callable(mod.main)


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "commands" in capsys.readouterr().out


def test_python_dash_m_sim_runs_the_cli():
    proc = subprocess.run(
        [sys.executable, "-m", "sim", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0
    assert "daxsim" in proc.stdout


def test_command_table_names_are_unique():
    names = [c[0] for c in COMMANDS]
    assert len(names) == len(set(names))
