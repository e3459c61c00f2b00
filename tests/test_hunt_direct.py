"""The search's direct command path (``Session(direct=True)``: the session's copy of the xfs_io
runner's handlers) against :meth:`XfsioRunner.step`: the same ops give the same lines, the
same errnos, the same runner tables and the same filesystem, DAX and memmap state, for every
design; and the lines a direct session wrote replay through ``daxsim xfsio``'s parser and
runner to the same state."""

from __future__ import annotations

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
def test_direct_commands_match_the_runner(variant):
    checked = errnos = 0
    for seed in range(6):
        rng = Draws(np.random.default_rng(seed))
        a = Session(variant, snapshot=False, direct=True)
        b = Session(variant, snapshot=False)
        c = Session(variant, snapshot=False, direct=True, record=False)  # the search's
        teardown = [Op("unlink", f) for f in ("f0", "f1", "f2")]
        for i in range(70 + len(teardown)):
            op = generate_op(rng, a, OP_KINDS, 3) if i < 70 else teardown[i - 70]
            if op is None:
                continue
            ra, rb, rc = a.apply(op), b.apply(op), c.apply(op)
            assert ra == rb == rc, op
            assert a.last_errno == b.last_errno == c.last_errno, op
            assert a.lines == b.lines, op
            assert _tables(a) == _tables(b), op
            assert _state(a) == _state(b) == _state(c), op
            assert _tables(c) == _tables(a), op
            # c's DaxFS records no timing work (accounting off); what the incremental checks
            # read from the records (struct_page lines, warnings) is the same
            assert not c.dax.accounting and a.dax.accounting
            assert (c.tracker.pages, c.tracker.warnings) == (a.tracker.pages, a.tracker.warnings)
            assert c.dax.stats == a.dax.stats, op
            checked += 1
            errnos += a.last_errno is not None
        # the direct session's script replays to the same state through the parser
        r = XfsioRunner(variant, device_bytes=a.nblocks * 4096, check_model=False)
        r.run(parse_script("\n".join(a.lines) + "\n", "<direct>"))
        assert sorted(r.dax.fs.paths()) == sorted(a.dax.fs.paths())
        assert [x.tolist() for x in r.dax.mm.state()] == [x.tolist() for x in a.dax.mm.state()]
        with pytest.raises(ValueError, match="record=False"):
            c.lines  # noqa: B018 (a property that refuses)
        assert c.commands == [] and c.op_lines == []
        a.close()
        b.close()
        c.close()
    assert checked > 200
    assert errnos > 0  # failing commands (and their @expect_errno lines) were compared too
