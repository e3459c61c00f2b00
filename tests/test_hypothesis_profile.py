"""CI runs Hypothesis derandomized, so that a red run reproduces."""

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).parent

PROBE = (
    "import sys; sys.path.insert(0, sys.argv[1]); import conftest; "
    "from hypothesis import settings; d = settings.default; "
    "print(d.derandomize, d.database is None)"
)


def _probe(**env_over) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "HYPOTHESIS_PROFILE")}
    env.update(env_over)
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(TESTS)], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_ci_true_selects_the_derandomized_profile():
    assert _probe(CI="true") == ["True", "True"]


def test_without_ci_examples_are_random():
    assert _probe() == ["False", "False"]


def test_profile_named_explicitly_wins():
    assert _probe(CI="true", HYPOTHESIS_PROFILE="dev") == ["False", "False"]
