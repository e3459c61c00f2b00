"""The cache-hierarchy kernel and the RecordBatch conversion equal their reference forms."""

from __future__ import annotations

import numpy as np
import pytest

from sim.errors import InputError
from sim.timing.cache import CacheState, access_lines
from sim.timing.cost import STRUCT_BASE, CostModel, RecordBatch
from sim.timing.profiles import load_profile
from sim.work import STRUCTURES, WorkRecord

SMALL = {
    "cache.l1_bytes": 1024,
    "cache.l2_bytes": 4096,
    "cache.l3_bytes": 8192,
    "rmw.buffer_lines": 8,
    "ait.buffer_entries": 16,
}


def reference_costs(profile, cpus, addr, write, medium, cpu, lat, line_bytes, block_bytes):
    """Set-associative caches with an LRU stamp per way (the kernel's original form)."""
    v = profile.values
    levels = []
    for lvl in ("l1", "l2", "l3"):
        ways = int(v[f"cache.{lvl}_ways"])
        sets = max(1, int(v[f"cache.{lvl}_bytes"]) // (64 * ways))
        rows = cpus if lvl != "l3" else 1
        # per row and set: list of [tag, stamp, dirty]
        levels.append(
            (sets, [[[[-1, 0, 0] for _ in range(ways)] for _ in range(sets)] for _ in range(rows)])
        )
    xpb = [-1] * max(1, int(v["rmw.buffer_lines"]))
    ait = [-1] * max(1, int(v["ait.buffer_entries"]))

    def lookup(level, row, line, clock):
        sets, arr = level
        ways = arr[row][line % sets]
        for w in ways:
            if w[0] == line:
                w[1] = clock
                return w, True
        return min(ways, key=lambda w: w[1]), False  # first way of the smallest stamp

    out = []
    for i, (a, wr, med, k) in enumerate(zip(addr, write, medium, cpu, strict=True)):
        clock = i + 1
        line = a >> 6
        w3 = None
        w1, h1 = lookup(levels[0], k, line, clock)
        if h1:
            cost = lat[0]
        else:
            w2, h2 = lookup(levels[1], k, line, clock)
            if h2:
                cost = lat[1]
            else:
                w3, h3 = lookup(levels[2], 0, line, clock)
                cost = lat[2]
                if not h3:
                    if w3[0] >= 0 and w3[2]:
                        cost += lat[7] if w3[2] == 1 else lat[8]
                    if med == 0:
                        cost += lat[3]
                    else:
                        xl, bl = a // line_bytes, a // block_bytes
                        if xpb[xl % len(xpb)] == xl:
                            cost += lat[5]
                        elif ait[bl % len(ait)] == bl:
                            cost += lat[6]
                        else:
                            cost += lat[4]
                        xpb[xl % len(xpb)] = xl
                        ait[bl % len(ait)] = bl
                    w3[:] = [line, clock, 0]
                w2[:] = [line, clock, 0]
            w1[:] = [line, clock, 0]
        if wr and w1[2] == 0:
            if w3 is None:
                w3, h3 = lookup(levels[2], 0, line, clock)
                if not h3:
                    w3 = None
            if w3 is not None:
                w3[2] = 1 + med
            w1[2] = 1
        out.append(int(cost))
    return out


#: Sizes that are not powers of two: the kernel's division paths instead of masks and shifts.
ODD = {
    "cache.l1_bytes": 3 * 64 * 8,
    "cache.l2_bytes": 5 * 64 * 16,
    "cache.l3_bytes": 8192,
    "rmw.buffer_lines": 6,
    "ait.buffer_entries": 10,
}


@pytest.mark.parametrize(
    ("seed", "sizes", "line_bytes", "block_bytes"),
    [
        (0, SMALL, 256, 4096),
        (1, SMALL, 256, 4096),
        (2, SMALL, 256, 4096),
        (3, ODD, 192, 3072),
        (4, ODD, 256, 4096),
        (5, SMALL, 320, 1000),
    ],
)
def test_recency_ordered_sets_equal_lru_stamps(seed, sizes, line_bytes, block_bytes):
    prof = load_profile("optane-gen1", sizes)
    cpus = 3
    rng = np.random.default_rng(seed)
    n = 4000
    keys = rng.integers(0, 300, n)  # a working set a few times the L3: hits and misses
    hot = rng.random(n) < 0.3
    keys[hot] = rng.integers(0, 12, hot.sum())
    addr = (np.int64(1) << 40) + keys * 64
    write = (rng.random(n) < 0.4).astype(np.int64)
    medium = (rng.random(n) < 0.5).astype(np.int64)
    cpu = rng.integers(0, cpus, n)
    lat = np.array([4, 14, 56, 220, 670, 370, 540, 50, 70], dtype=np.int64)
    state = CacheState(prof, cpus)
    got = np.concatenate(
        [
            access_lines(state, addr[s], write[s], medium[s], cpu[s], lat, line_bytes, block_bytes)
            for s in (slice(0, 1500), slice(1500, n))  # the state carries across calls
        ]
    )
    want = reference_costs(
        prof,
        cpus,
        addr.tolist(),
        write.tolist(),
        medium.tolist(),
        cpu.tolist(),
        lat.tolist(),
        line_bytes,
        block_bytes,
    )
    assert got.tolist() == want
    assert len(set(want)) > 5  # hits at every level, misses and write-backs were exercised


def naive_batch(records):
    """RecordBatch fields built one record and one key at a time."""
    rec, sid, key, wr, prec, psz, pwr = [], [], [], [], [], [], []
    for i, r in enumerate(records):
        for w, d in ((0, r.lines_read), (1, r.lines_written)):
            for s, ks in d.items():
                for k in ks:
                    rec.append(i)
                    sid.append(STRUCTURES.index(s))
                    key.append(k)
                    wr.append(w)
        for w, acc in ((0, r.pmem_read), (1, r.pmem_write)):
            for _, size in acc:
                prec.append(i)
                psz.append(size)
                pwr.append(w)
    return rec, sid, key, wr, prec, psz, pwr


def mixed_records(n, seed):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        r = WorkRecord(["read_fault", "pwrite", "truncate", "noop"][i % 4])
        for _ in range(int(rng.integers(0, 4))):
            s = STRUCTURES[int(rng.integers(0, len(STRUCTURES)))]
            keys = rng.integers(0, 1 << 30, int(rng.integers(1, 4))).tolist()
            (r.read if rng.random() < 0.5 else r.write)(s, *keys)
        for _ in range(int(rng.integers(0, 3))):
            acc = (int(rng.integers(0, 1 << 40)), int(rng.integers(1, 1 << 16)))
            (r.pmem_read if rng.random() < 0.5 else r.pmem_write).append(acc)
        r.faults = int(rng.integers(0, 2))
        r.pages_mapped = int(rng.integers(0, 3))
        r.tlb_shootdowns = int(rng.integers(0, 2))
        r.memcpy_bytes = int(rng.integers(0, 8192))
        r.locks = [("xa_lock", 1)] * int(rng.integers(0, 3))
        out.append(r)
    return out


def test_record_batch_equals_naive_flattening():
    recs = mixed_records(500, 3)
    locks: list = []
    b = RecordBatch.from_records(iter(recs), locks_out=locks)
    rec, sid, key, wr, prec, psz, pwr = naive_batch(recs)
    assert b.n == 500 and b.ops == [r.op for r in recs]
    assert b.line_rec.tolist() == rec and b.line_struct.tolist() == sid
    assert b.line_key.tolist() == key and b.line_write.tolist() == wr
    assert b.pm_rec.tolist() == prec and b.pm_size.tolist() == psz and b.pm_write.tolist() == pwr
    assert b.faults.tolist() == [r.faults for r in recs]
    assert b.pages_mapped.tolist() == [r.pages_mapped for r in recs]
    assert b.tlb_shootdowns.tolist() == [r.tlb_shootdowns for r in recs]
    assert b.memcpy_bytes.tolist() == [r.memcpy_bytes for r in recs]
    assert b.nlocks.tolist() == [len(r.locks) for r in recs]
    assert locks == [r.locks for r in recs]
    for a in (b.faults, b.line_key, b.pm_size, b.nlocks):
        assert a.dtype == np.int64
    empty = RecordBatch.from_records([])
    assert empty.n == 0 and empty.line_key.size == 0 and empty.pm_rec.size == 0


def test_price_many_equals_one_record_at_a_time():
    recs = mixed_records(300, 4)
    cpu = np.arange(300) % 2
    one = CostModel(memmap="pmem", cpus=2)
    a = [one.price(r, cpu=int(c)) for r, c in zip(recs, cpu, strict=True)]
    b = CostModel(memmap="pmem", cpus=2).price_many(recs, cpu=cpu)
    assert b.tolist() == a
    assert STRUCT_BASE["struct_page"] > 0


def test_unknown_structure_names_the_operation():
    recs = mixed_records(10, 5)
    recs[7] = WorkRecord("clone", lines_read={"extent": [1]}, lines_written={"inode": [2]})
    with pytest.raises(InputError) as e:
        RecordBatch.from_records(recs)
    assert "inode" in str(e.value) and "clone" in str(e.value.where)


@pytest.mark.parametrize("sp_medium", [0, 1])
def test_per_record_kernel_equals_per_line_kernel(sp_medium):
    """access_records (one pass, sums per record) == access_lines on the same addresses,
    summed per record."""
    from sim.timing.cache import access_records

    prof = load_profile("optane-gen1", ODD)
    cpus = 2
    rng = np.random.default_rng(7 + sp_medium)
    n, nrec = 5000, 700
    rec = np.sort(rng.integers(0, nrec, n))
    struct = rng.integers(0, len(STRUCTURES), n)
    key = rng.integers(0, 400, n)
    write = (rng.random(n) < 0.4).astype(np.int64)
    cpu_rec = rng.integers(0, cpus, nrec)
    base = np.array([STRUCT_BASE[s] for s in STRUCTURES], dtype=np.int64)
    sp, xa = STRUCTURES.index("struct_page"), STRUCTURES.index("xarray_node")
    lat = np.array([4, 14, 56, 220, 670, 370, 540, 50, 70], dtype=np.int64)
    got_xa, got_other, got_sp = access_records(
        CacheState(prof, cpus),
        nrec,
        rec,
        struct,
        key,
        write,
        cpu_rec,
        base,
        sp,
        xa,
        sp_medium,
        lat,
        256,
        4096,
    )
    cyc = access_lines(
        CacheState(prof, cpus),
        base[struct] + key * 64,
        write,
        ((struct == sp) * sp_medium).astype(np.int64),
        cpu_rec[rec],
        lat,
        256,
        4096,
    )
    want_xa = np.bincount(rec, weights=np.where(struct == xa, cyc, 0), minlength=nrec)
    want_other = np.bincount(rec, weights=np.where(struct == xa, 0, cyc), minlength=nrec)
    want_sp = np.bincount(rec, weights=np.where(struct == sp, cyc, 0), minlength=nrec)
    assert got_xa.tolist() == want_xa.astype(np.int64).tolist()
    assert got_other.tolist() == want_other.astype(np.int64).tolist()
    assert got_sp.tolist() == want_sp.astype(np.int64).tolist()
    assert got_other.sum() > got_sp.sum() > 0 and got_xa.sum() > 0
