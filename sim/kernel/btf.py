"""A small reader of BPF Type Format (BTF): struct member offsets, type sizes, enum values.

The kernel describes its own types in ``/sys/kernel/btf/vmlinux`` (``CONFIG_DEBUG_INFO_BTF``);
the same bytes are the ``.BTF`` section of ``vmlinux``.  The format is documented in the
kernel's ``Documentation/bpf/btf.rst`` (``struct btf_header``, ``struct btf_type`` and the
per-kind records that follow each type).  Only what reading ``struct page`` and
``struct folio`` needs is exposed: :meth:`Btf.offset_of`, :meth:`Btf.sizeof`,
:meth:`Btf.has_member` and :meth:`Btf.enum_value`.
"""

from __future__ import annotations

import struct

__all__ = ["Btf", "BtfError"]

BTF_MAGIC = 0xEB9F

# Kinds (include/uapi/linux/btf.h).
_INT, _PTR, _ARRAY, _STRUCT, _UNION, _ENUM, _FWD, _TYPEDEF = 1, 2, 3, 4, 5, 6, 7, 8
_VOLATILE, _CONST, _RESTRICT, _FUNC, _FUNC_PROTO, _VAR, _DATASEC = 9, 10, 11, 12, 13, 14, 15
_FLOAT, _DECL_TAG, _TYPE_TAG, _ENUM64 = 16, 17, 18, 19

#: Bytes of the records after a ``struct btf_type``: (fixed bytes, bytes per vlen item).
_TRAILER = {
    _INT: (4, 0),
    _PTR: (0, 0),
    _ARRAY: (12, 0),
    _STRUCT: (0, 12),
    _UNION: (0, 12),
    _ENUM: (0, 8),
    _FWD: (0, 0),
    _TYPEDEF: (0, 0),
    _VOLATILE: (0, 0),
    _CONST: (0, 0),
    _RESTRICT: (0, 0),
    _FUNC: (0, 0),
    _FUNC_PROTO: (0, 8),
    _VAR: (4, 0),
    _DATASEC: (0, 12),
    _FLOAT: (0, 0),
    _DECL_TAG: (4, 0),
    _TYPE_TAG: (0, 0),
    _ENUM64: (0, 12),
}
#: Kinds that only qualify or rename another type (their ``type`` field points at it).
_ALIASES = (_TYPEDEF, _VOLATILE, _CONST, _RESTRICT, _TYPE_TAG)


class BtfError(ValueError):
    """The bytes are not BTF, or a type or member asked for is not in it."""


class Btf:
    """The types of one BTF blob (type ids from 1; 0 is ``void``).

    Parameters
    ----------
    data : bytes
        A whole BTF blob (``/sys/kernel/btf/vmlinux`` or a ``vmlinux``'s ``.BTF`` section).

    Raises
    ------
    BtfError
        Bad magic, truncated records or an unknown kind.
    """

    def __init__(self, data: bytes):
        if len(data) < 24:
            raise BtfError("shorter than a BTF header")
        magic = struct.unpack_from("<H", data, 0)[0]
        if magic != BTF_MAGIC:
            raise BtfError(f"bad magic {magic:#x} (expected {BTF_MAGIC:#x}, little-endian)")
        hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from("<5I", data, 4)
        t0 = hdr_len + type_off
        s0 = hdr_len + str_off
        if t0 + type_len > len(data) or s0 + str_len > len(data):
            raise BtfError("type or string section beyond the end of the data")
        self._strings = data[s0 : s0 + str_len]
        # Per type id: (kind, name_off, vlen, kind_flag, size_or_type, trailer offset).
        self._types: list[tuple[int, int, int, int, int, int]] = [(0, 0, 0, 0, 0, 0)]
        self._data = data
        self._by_name: dict[tuple[int, str], int] = {}
        pos, end = t0, t0 + type_len
        unpack = struct.unpack_from
        while pos < end:
            name_off, info, size_or_type = unpack("<3I", data, pos)
            kind = (info >> 24) & 0x1F
            vlen = info & 0xFFFF
            trailer = _TRAILER.get(kind)
            if trailer is None:
                raise BtfError(f"unknown BTF kind {kind} at byte {pos}")
            self._types.append((kind, name_off, vlen, info >> 31, size_or_type, pos + 12))
            if kind in (_STRUCT, _UNION, _ENUM, _ENUM64) and name_off:
                self._by_name.setdefault((kind, self._str(name_off)), len(self._types) - 1)
            pos += 12 + trailer[0] + trailer[1] * vlen
        if pos != end:
            raise BtfError("type section does not end on a record boundary")

    def _str(self, off: int) -> str:
        e = self._strings.index(b"\0", off)
        return self._strings[off:e].decode()

    def _resolve(self, tid: int) -> int:
        while self._types[tid][0] in _ALIASES:
            tid = self._types[tid][4]
        return tid

    def _struct(self, name: str) -> int:
        tid = self._by_name.get((_STRUCT, name)) or self._by_name.get((_UNION, name))
        if tid is None:
            raise BtfError(f"no struct {name} in the BTF")
        return tid

    def _members(self, tid: int):
        """``(name, type id, bit offset)`` of each member of a struct or union."""
        _kind, _n, vlen, kflag, _s, pos = self._types[tid]
        for k in range(vlen):
            name_off, mtype, off = struct.unpack_from("<3I", self._data, pos + 12 * k)
            bit = off & 0xFFFFFF if kflag else off
            yield self._str(name_off), mtype, bit

    def _find(self, tid: int, name: str):
        """Bit offset and type of member ``name``, looking into anonymous members."""
        for mname, mtype, bit in self._members(tid):
            if mname == name:
                return bit, mtype
            if not mname:
                inner = self._resolve(mtype)
                if self._types[inner][0] in (_STRUCT, _UNION):
                    got = self._find(inner, name)
                    if got is not None:
                        return bit + got[0], got[1]
        return None

    def has_member(self, struct_name: str, path: str) -> bool:
        """True when ``struct_name`` has member ``path`` (dotted, e.g. ``"flags.f"``)."""
        try:
            self.offset_of(struct_name, path)
        except BtfError:
            return False
        return True

    def offset_of(self, struct_name: str, path: str) -> int:
        """Byte offset of member ``path`` (dotted through named members) in ``struct_name``.

        Members of anonymous structs and unions are found as C finds them
        (``page->mapping`` lives in an anonymous struct inside an anonymous union).

        Raises
        ------
        BtfError
            No such struct or member, or the member is a bitfield not on a byte boundary.
        """
        tid = self._struct(struct_name)
        bit = 0
        for part in path.split("."):
            if self._types[tid][0] not in (_STRUCT, _UNION):
                raise BtfError(f"{struct_name}.{path}: {part!r} is not inside a struct")
            got = self._find(tid, part)
            if got is None:
                raise BtfError(f"struct {struct_name} has no member {path}")
            bit += got[0]
            tid = self._resolve(got[1])
        if bit % 8:
            raise BtfError(f"{struct_name}.{path} is a bitfield at bit {bit}")
        return bit // 8

    def member_size(self, struct_name: str, path: str) -> int:
        """Byte size of the type of member ``path`` of ``struct_name``."""
        tid = self._struct(struct_name)
        for part in path.split("."):
            got = self._find(tid, part)
            if got is None:
                raise BtfError(f"struct {struct_name} has no member {path}")
            tid = self._resolve(got[1])
        return self._size(tid)

    def _size(self, tid: int) -> int:
        tid = self._resolve(tid)
        kind, _n, _v, _k, size, pos = self._types[tid]
        if kind == _PTR:
            return 8
        if kind == _ARRAY:
            etype, _itype, nelems = struct.unpack_from("<3I", self._data, pos)
            return self._size(etype) * nelems
        if kind in (_INT, _STRUCT, _UNION, _ENUM, _ENUM64, _FLOAT):
            return size
        raise BtfError(f"type {tid} (kind {kind}) has no size")

    def sizeof(self, struct_name: str) -> int:
        """Byte size of ``struct struct_name``."""
        return self._size(self._struct(struct_name))

    def enum_value(self, enum_name: str, member: str) -> int:
        """Value of enumerator ``member`` of ``enum enum_name``."""
        tid = self._by_name.get((_ENUM, enum_name)) or self._by_name.get((_ENUM64, enum_name))
        if tid is None:
            raise BtfError(f"no enum {enum_name} in the BTF")
        kind, _n, vlen, kflag, _s, pos = self._types[tid]
        for k in range(vlen):
            if kind == _ENUM:
                name_off, val = struct.unpack_from(
                    "<I" + ("i" if kflag else "I"), self._data, pos + 8 * k
                )
            else:
                name_off, lo, hi = struct.unpack_from("<3I", self._data, pos + 12 * k)
                val = lo | (hi << 32)
            if self._str(name_off) == member:
                return int(val)
        raise BtfError(f"enum {enum_name} has no {member}")
