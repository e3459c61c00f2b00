"""How fetch chooses a Debian kernel package (apt's answers are given here, in the form
``apt-cache pkgnames`` and ``apt-cache show`` print them, so no network is needed)."""

from __future__ import annotations

import pytest

import sim.kernel.fetch as fetch
from sim.errors import InputError

#: package -> Version, Depends (what apt-cache show prints for the candidate).
ARCHIVE = {
    "linux-image-6.1.0-56-amd64-unsigned": ("6.1.190-1", "kmod, linux-base (>= 4.3~)"),
    "linux-image-6.1.0-57-amd64-unsigned": ("6.1.192-3", "kmod, linux-base (>= 4.3~)"),
    "linux-image-6.1.0-57-amd64": ("6.1.192-3", "kmod, linux-base (>= 4.3~)"),
    "linux-image-6.18.15+deb13-amd64": ("6.18.15-1~bpo13+1", "kmod, linux-base-6.18.15"),
    # 7.0: the image is a meta-package over a binary and a modules package; only the binary
    # is in the archive.
    "linux-image-7.0.13+deb13-amd64": (
        "7.0.13-1~bpo13+1",
        "linux-binary-7.0.13+deb13-amd64 (= 7.0.13-1~bpo13+1), linux-modules-7.0.13+deb13-amd64",
    ),
    "linux-binary-7.0.13+deb13-amd64": ("7.0.13-1~bpo13+1", "linux-base-7.0.13+deb13-amd64"),
    "linux-binary-7.3.4+deb13-amd64": ("7.3.4-1~bpo13+1", "linux-base-7.3.4+deb13-amd64"),
    "linux-modules-7.3.4+deb13-amd64": ("7.3.4-1~bpo13+1", "kmod"),
    "linux-base-7.3.4+deb13-amd64": ("7.3.4-1~bpo13+1", ""),
    "linux-binary-7.3.4+deb13-cloud-amd64": ("7.3.4-1~bpo13+1", ""),
    "linux-modules-7.3.4+deb13-cloud-amd64": ("7.3.4-1~bpo13+1", ""),
    "linux-headers-7.3.4+deb13-amd64": ("7.3.4-1~bpo13+1", ""),
}


@pytest.fixture
def apt(monkeypatch, tmp_path):
    monkeypatch.setenv("DAXSIM_CACHE", str(tmp_path))
    calls = []

    def run(cmd, what, cwd=None):
        calls.append(cmd)
        if "pkgnames" in cmd:
            return "\n".join(sorted(ARCHIVE)) + "\n"
        if "show" in cmd:
            stanzas = []
            for pkg in cmd[cmd.index("--no-all-versions") + 1 :]:
                version, depends = ARCHIVE[pkg]
                stanzas.append(f"Package: {pkg}\nVersion: {version}\nDepends: {depends}\n")
            return "\n".join(stanzas)
        raise AssertionError(f"unexpected command {cmd}")

    monkeypatch.setattr(fetch, "_run", run)
    return calls


def test_a_series_means_its_newest_release_with_modules(apt):
    assert fetch.resolve("6.1") == (
        "6.1.0-57-amd64",
        "6.1.192",
        ("linux-image-6.1.0-57-amd64-unsigned",),  # the unsigned image holds the modules
    )
    assert fetch.resolve("7.3") == (
        "7.3.4+deb13-amd64",
        "7.3.4",
        (
            "linux-binary-7.3.4+deb13-amd64",
            "linux-modules-7.3.4+deb13-amd64",
            "linux-base-7.3.4+deb13-amd64",
        ),
    )
    assert fetch.resolve("6.18")[2] == ("linux-image-6.18.15+deb13-amd64",)


def test_a_version_or_a_release_picks_that_one(apt):
    assert fetch.resolve("6.1.190")[0] == "6.1.0-56-amd64"
    assert fetch.resolve("6.1.0-56-amd64")[1] == "6.1.190"
    with pytest.raises(InputError, match="with its modules"):
        fetch.resolve("6.1.191")


def test_a_series_without_a_modules_package_is_refused_with_the_way_out(apt):
    with pytest.raises(InputError, match="--vmlinuz PATH") as exc:
        fetch.resolve("7.0")
    assert "modules" in str(exc.value)
    with pytest.raises(InputError, match="no Debian kernel package of 5.10"):
        fetch.resolve("5.10")
    with pytest.raises(InputError, match="expected a series"):
        fetch.resolve("latest")


def test_apt_is_pointed_at_its_own_configuration_under_the_cache(apt, tmp_path):
    fetch.resolve("6.1")
    for cmd in apt:
        opts = dict(
            cmd[i + 1].split("=", 1) for i, c in enumerate(cmd) if c == "-o" and "Dir" in cmd[i + 1]
        )
        for key in (
            "Dir::Etc::SourceList",
            "Dir::Etc::SourceParts",
            "Dir::State",
            "Dir::State::Lists",
            "Dir::State::status",
            "Dir::Cache",
        ):
            assert opts[key].startswith(str(tmp_path / "apt")), key
