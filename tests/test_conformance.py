"""The xfstests-derived conformance cases (../shared/conformance/xfstests) replayed.

All cases pass under page-share (content and model-derived checks). Under every other variant
the cases with content checks (``@expect_*`` lines) are replayed too and their content checks
must pass; the model-derived lines describe page-share-like sharing and are not required there.
Cases without any ``@expect_*`` line (generic-175, xfs-265: success-only stress) run under
page-share only: their only check, that no command fails, does not depend on the variant
(they never map a file).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.xfsio.runner import run_script

ROOT = Path(__file__).resolve().parents[1]
CASES_DIR = ROOT.parent / "shared" / "conformance" / "xfstests"
CASES = sorted(CASES_DIR.glob("*.xfsio")) if CASES_DIR.is_dir() else []
_ABSENT = f"{CASES_DIR} is absent (the shared conformance folder is not checked out)"
OTHER_VARIANTS = ["single-owner", "cow-index", "folio-share", "folio-share-reset"]


def _has_content_checks(p: Path) -> bool:
    return any(line.startswith("@expect_") for line in p.read_text().splitlines())


def _ids(paths):
    return [p.stem for p in paths]


@pytest.mark.skipif(not CASES, reason=_ABSENT)
def test_the_folder_has_the_28_cases():
    assert len(CASES) == 28


@pytest.mark.skipif(not CASES, reason=_ABSENT)
@pytest.mark.parametrize("path", CASES, ids=_ids(CASES))
def test_case_passes_under_page_share(path):
    r = run_script(path.read_text(), path.name, "page-share")
    res = r.result
    assert not res.failed, "\n".join(c.describe(path.name) for c in res.failed)
    assert not res.model_failed, "\n".join(c.describe(path.name) for c in res.model_failed)
    if _has_content_checks(path):
        assert res.counts()["checks_passed"] > 0
    # the model reproduces every free-block delta exactly (xfstests allows +-15%)
    assert all(exact for _line, exact in r.exact_free_delta)


_CONTENT = [p for p in CASES if _has_content_checks(p)]
_PARAMS = [pytest.param(p, v, id=f"{p.stem}-{v}") for p in _CONTENT for v in OTHER_VARIANTS]


@pytest.mark.skipif(not CASES, reason=_ABSENT)
@pytest.mark.parametrize("path, variant", _PARAMS)
def test_content_checks_pass_under_every_variant(path, variant):
    r = run_script(path.read_text(), path.name, variant, check_model=False)
    res = r.result
    assert not res.failed, "\n".join(c.describe(path.name) for c in res.failed)
    assert res.counts()["checks_passed"] > 0


@pytest.mark.skipif(not CASES, reason=_ABSENT)
@pytest.mark.parametrize(
    "variant, rmap, owners_ok, sigbus",
    [
        ("page-share", True, True, True),
        ("page-share", False, False, False),
        ("single-owner", False, False, True),
    ],
)
def test_xfs551_poison_owners_rmap_vs_fallback(variant, rmap, owners_ok, sigbus):
    """The rmap path finds both files; the page->mapping fallback finds nothing for a
    SHARED page (no SIGBUS: dax_lock_page gets no mapping) and only the last owner for a
    single-owner page."""
    path = CASES_DIR / "xfs-551.xfsio"
    r = run_script(path.read_text(), path.name, variant, rmap=rmap)
    owners = [c for c in r.result.checks if c.kind == "expect_poison_owners"]
    assert len(owners) == 3 and all(c.ok == owners_ok for c in owners)
    sig = [c for c in r.result.checks if c.kind == "expect_sigbus"]
    assert len(sig) == 2 and all(c.ok == sigbus for c in sig)
    assert r.dax.mm.warnings["associate_mapping_set"] == (0 if variant == "page-share" else 2)
