"""The search's sessions (``Session(record=False)``: no command objects kept, no timing work
recorded) against recording ones: the same ops give the same errnos, the same runner tables
and the same filesystem, DAX and memmap state, for every design; and the lines a recording
session wrote replay through ``daxsim xfsio``'s parser and runner to the same state."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from sim.hunt import Session
from sim.hunt.search import Draws, generate_op
from sim.hunt.session import OP_KINDS, Op
from sim.xfsio.parse import parse_script
from sim.xfsio.runner import XfsioRunner

VARIANTS = ("single-owner", "cow-index", "page-share", "folio-share", "folio-share-reset")


def _state(s: Session) -> tuple:
    dax = s.dax
    fs = dax.fs
    mp, ix, order = dax.mm.state()
    ents = {k: v.tolist() for k, v in dax.entries().items()}
    files = {
        p: (fs.size(fs.lookup(p)), fs.pread(fs.lookup(p), 0, fs.size(fs.lookup(p))))
        for p in fs.paths()
    }
    marks = {a.ino: dict(a.xa.marks) for a in dax.spaces.values()}
    vmas = {
        vid: (v.ino, v.pgoff, v.npages, dict(v.ptes), dict(v.pmds)) for vid, v in dax.vmas.items()
    }
    return (
        mp.tolist(),
        ix.tolist(),
        order.tolist(),
        dict(dax.mm.warnings),
        ents,
        files,
        marks,
        vmas,
        sorted(dax.hwpoisoned),
        fs.free_blocks(),
    )


def _tables(s: Session) -> tuple:
    r = s.runner
    lp = r.last_poison
    poison = (
        None
        if lp is None
        else (
            lp[0],
            lp[1],
            lp[2].pfns,
            lp[2].rmap_owners,
            lp[2].fallback_owners,
            lp[2].errno,
            lp[2].signalled,
        )
    )
    return (list(r.files), r.cur, list(r.maps), r.curmap, poison)


@pytest.mark.parametrize("variant", VARIANTS)
def test_unrecorded_sessions_match_recorded_ones(variant):
    checked = errnos = 0
    for seed in range(6):
        rng = Draws(np.random.default_rng(seed))
        a = Session(variant, snapshot=False)
        c = Session(variant, snapshot=False, record=False)  # the search's
        teardown = [Op("unlink", f) for f in ("f0", "f1", "f2")]
        for i in range(70 + len(teardown)):
            op = generate_op(rng, a, OP_KINDS, 3) if i < 70 else teardown[i - 70]
            if op is None:
                continue
            ra, rc = a.apply(op), c.apply(op)
            assert ra == rc, op
            assert a.last_errno == c.last_errno, op
            assert _state(a) == _state(c), op
            assert _tables(c) == _tables(a), op
            # c's DaxFS records no timing work (accounting off); what the incremental checks
            # read from the records (struct_page lines, warnings) is the same
            assert not c.dax.accounting and a.dax.accounting
            assert (c.tracker.pages, c.tracker.warnings) == (a.tracker.pages, a.tracker.warnings)
            assert c.dax.stats == a.dax.stats, op
            # the runner keeps no failed-command checks or output lines for c
            assert c.runner.result.checks == [] and c.runner.output == []
            checked += 1
            errnos += a.last_errno is not None
        # the recording session's script replays to the same state through the parser
        r = XfsioRunner(variant, device_bytes=a.nblocks * 4096, check_model=False)
        res = r.run(parse_script("\n".join(a.lines) + "\n", "<hunt>"))
        assert res.failed == []  # every failed command was followed by its @expect_errno
        assert _state(SimpleNamespace(dax=r.dax)) == _state(a)
        with pytest.raises(ValueError, match="record=False"):
            c.lines  # noqa: B018 (a property that refuses)
        assert c.commands == [] and c.op_lines == []
        a.close()
        c.close()
    assert checked > 200
    assert errnos > 0  # failing commands (and their @expect_errno lines) were compared too
