"""``daxsim pagestate``: replay a page-level associate/disassociate CSV trace.

The trace (header ``op,pfn,npages,mapping,index,flag``) is read with pyarrow's streaming CSV
reader in blocks, each block is validated vectorised and then applied by the compiled batch
engine, so memory stays bounded by the block size plus the memmap (16 bytes per page).
Bad input raises :class:`~sim.errors.InputError` naming ``TRACE.csv:LINE`` and the field;
output files are written to temporary files and renamed only when everything succeeded.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from sim.commands._common import add_overwrite_arg
from sim.errors import MAX_LINE_BYTES, InputError, quote
from sim.memmap import OP_ASSOCIATE, OP_DISASSOCIATE, MemMap, get_variant
from sim.memmap.memmap import find_bad_row

__all__ = ["configure", "main", "replay", "HEADER"]

HEADER = ("op", "pfn", "npages", "mapping", "index", "flag")
_INT_COLUMNS = HEADER[1:]
_BLOCK_BYTES = 8 << 20
#: The most pages ``--state-out`` scans (16 bytes each): 2**30 pages, a 4 TiB device.
STATE_OUT_MAX_PAGES = 1 << 30
_CONVERSION = re.compile(
    r"In CSV column #(\d+): Row #(\d+): CSV conversion error to \w+: "
    r"invalid value '(.*)'",
    re.S,
)
_PARSE = re.compile(r"Row #(\d+): Expected (\d+) columns, got (\d+)")


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``daxsim pagestate`` to ``parser``."""
    parser.add_argument("trace", metavar="TRACE.csv", help="op,pfn,npages,mapping,index,flag")
    parser.add_argument("--variant", required=True, help="design variant (see daxsim variants)")
    parser.add_argument("--pages", required=True, type=int, help="pages of the device (npages)")
    parser.add_argument(
        "--state-out", metavar="F", help="write pfn,mapping,index CSV of pages not at (0, 0)"
    )
    parser.add_argument("--summary-out", metavar="F", help="write a JSON summary")
    add_overwrite_arg(parser, "earlier --state-out and --summary-out files")


def _open(path: Path, use_threads: bool):
    types = {"op": pa.dictionary(pa.int32(), pa.string())}
    types.update({c: pa.int64() for c in _INT_COLUMNS})
    return pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(use_threads=use_threads, block_size=_BLOCK_BYTES),
        parse_options=pacsv.ParseOptions(ignore_empty_lines=False, newlines_in_values=False),
        convert_options=pacsv.ConvertOptions(
            column_types=types,
            null_values=[],
            strings_can_be_null=False,
            include_columns=list(HEADER),
        ),
    )


def _check_header(path: Path) -> None:
    try:
        with open(path, "rb") as f:
            first = f.readline(MAX_LINE_BYTES).decode("utf-8", "replace").rstrip("\r\n")
    except OSError as exc:
        raise InputError(f"cannot read trace: {exc.strerror}", where=str(path)) from None
    got = [c.strip() for c in first.split(",")] if first else []
    if tuple(got) != HEADER:
        missing = [c for c in HEADER if c not in got]
        extra = [c for c in got if c not in HEADER]
        detail = []
        if missing:
            detail.append(f"missing column(s) {', '.join(missing)}")
        if extra:
            detail.append(f"unexpected column(s) {', '.join(extra)}")
        if not detail:
            detail.append("columns out of order")
        raise InputError(
            f"header must be {','.join(HEADER)} ({'; '.join(detail)}), got {quote(first)}",
            where=f"{path}:1",
        )


def _arrow_error(path: Path, exc: Exception) -> InputError:
    """Turn a pyarrow parse/conversion error into ``FILE:LINE: field ...``."""
    msg = str(exc)
    m = _CONVERSION.search(msg)
    if m:
        col, line, value = int(m.group(1)), int(m.group(2)), m.group(3)
        return InputError(
            f"field {HEADER[col]!r}: expected an integer, got {quote(value)}",
            where=f"{path}:{line}",
        )
    m = _PARSE.search(msg)
    if m:
        return InputError(
            f"expected {m.group(2)} fields, got {m.group(3)}", where=f"{path}:{m.group(1)}"
        )
    if "straddl" in msg:  # a row longer than a block: refused, never held whole
        return InputError(
            f"a line longer than {_BLOCK_BYTES:,} bytes; expected {','.join(HEADER)} rows",
            where=str(path),
        )
    return InputError(f"malformed CSV: {msg}", where=str(path))


def _locate_arrow_error(path: Path, exc: Exception) -> InputError:
    """Re-read single-threaded (exact row numbers) to name the line of a pyarrow error."""
    try:
        for _ in _open(path, use_threads=False):
            pass
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc2:
        return _arrow_error(path, exc2)
    return _arrow_error(path, exc)


def _op_codes(column) -> np.ndarray:
    """Dictionary-encoded ``op`` column -> int64 codes; anything else becomes -1."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    words = column.dictionary.to_pylist()
    table = np.array(
        [
            OP_ASSOCIATE if w == "associate" else OP_DISASSOCIATE if w == "disassociate" else -1
            for w in words
        ],
        dtype=np.int64,
    )
    idx = column.indices.to_numpy(zero_copy_only=False)
    return table[idx] if table.size else np.full(idx.shape, -1, np.int64)


def replay(path, variant, npages: int) -> MemMap:
    """Replay a trace file into a new :class:`MemMap`; raise InputError on bad input."""
    path = Path(path)
    mm = MemMap(npages, get_variant(variant))
    _check_header(path)
    rows_done = 0
    try:
        reader = _open(path, use_threads=True)
        for batch in reader:
            n = batch.num_rows
            if n == 0:
                continue
            op = _op_codes(batch.column(0))
            ints = [
                np.ascontiguousarray(batch.column(i).to_numpy(zero_copy_only=False), dtype=np.int64)
                for i in range(1, 6)
            ]
            bad = find_bad_row(op, *ints, npages)
            if bad is not None:
                row, field, msg = bad
                if field == "op":
                    word = batch.column(0)[row].as_py()
                    msg = f"expected associate or disassociate, got {word!r}"
                raise InputError(f"field {field!r}: {msg}", where=f"{path}:{rows_done + row + 2}")
            mm._apply_checked(op, *ints)  # noqa: SLF001 (validated above)
            rows_done += n
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise _locate_arrow_error(path, exc) from None
    except OSError as exc:
        raise InputError(f"cannot read trace: {exc}", where=str(path)) from None
    return mm


def _write_atomic(dest: Path, write) -> Path:
    """Write via ``write(file)`` into a temp file beside ``dest``; return the temp path.

    The temporary is named after this process, so a later command removes it if this one
    is killed before renaming it (:func:`sim.results.outputs.remove_stale_temps`).
    """
    from sim.results.outputs import file_mode, remove_stale_temps, temp_tag

    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(dest.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.daxsim.tmp-{temp_tag()}-", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, file_mode())
    except BaseException:
        os.unlink(tmp)
        raise
    return Path(tmp)


def _write_state(mm: MemMap, f) -> None:
    pfn, mapping, index = mm.state()
    f.write(b"pfn,mapping,index\n")
    table = pa.table({"pfn": pfn, "mapping": mapping, "index": index})
    pacsv.write_csv(table, f, pacsv.WriteOptions(include_header=False))


def format_summary(s: dict) -> str:
    """Readable text of :meth:`MemMap.summary`."""
    lines = [
        f"variant      {s['variant']}",
        f"pages        {s['pages']:,}",
        f"operations   {s['operations']:,}",
        "warnings     (raw / latched)",
    ]
    for site, raw in s["warnings"].items():
        lines.append(f"  {site:<30} {raw:>12,} / {s['warnings_latched'][site]}")
    lines.append("counters")
    for name, value in s["counters"].items():
        lines.append(f"  {name:<30} {value:>12,}")
    lines.append(f"residue pages   {s['residue_pages']:,}  (flag sentinel with count 0)")
    lines.append(f"phantom pages   {s['phantom_pages']:,}  (stale share word, folio-share)")
    lines.append(f"share degree max {s['share_degree_max']:,}")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    """Replay a page trace through one variant's kernels; return the exit status."""
    if args.pages < 1:
        raise InputError(f"expected a page count >= 1, got {args.pages}", where="--pages")
    variant = get_variant(args.variant)
    if args.state_out and args.pages > STATE_OUT_MAX_PAGES:
        raise InputError(
            f"--state-out reads every page's words: {args.pages:,} pages are "
            f"{16 * args.pages / 2**30:,.0f} GiB to scan; the limit is "
            f"{STATE_OUT_MAX_PAGES:,} pages ({16 * STATE_OUT_MAX_PAGES >> 30} GiB)",
            where="--pages",
        )
    from sim.results.outputs import check_out_file, json_with_keys, starts_with

    outs = (
        ("--state-out", args.state_out, starts_with(b"pfn,mapping,index\n")),
        ("--summary-out", args.summary_out, json_with_keys("variant", "pages", "operations")),
    )
    for opt, dest, ours in outs:
        if dest:
            check_out_file(dest, opt, overwrite=args.overwrite, ours=ours)
    if args.state_out and args.summary_out:
        if Path(args.state_out).absolute() == Path(args.summary_out).absolute():
            raise InputError("--state-out and --summary-out name the same file", where=opt)
    mm = replay(args.trace, variant, args.pages)
    summary = mm.summary()
    pending: list[tuple[Path, Path]] = []
    try:
        if args.state_out:
            dest = Path(args.state_out)
            pending.append((_write_atomic(dest, lambda f: _write_state(mm, f)), dest))
        if args.summary_out:
            dest = Path(args.summary_out)
            data = (json.dumps(summary, indent=2) + "\n").encode()
            pending.append((_write_atomic(dest, lambda f: f.write(data)), dest))
    except BaseException:
        for tmp, _ in pending:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, dest in pending:
        os.replace(tmp, dest)
    if not pending:
        print(format_summary(summary))
    return 0
