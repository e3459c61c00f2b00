"""Software prefetch for numba kernels: ``llvm.prefetch`` of an array element.

A prefetch is a hint: it never faults, reads no bounds and changes no result; it only lets a
kernel that walks a big array in a data-dependent order (the memmap words, the cache model's
L3 tags) start the host memory access a few iterations before it is needed.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["prefetch_read", "prefetch_write"]


def _make(rw: int, doc: str):
    def prefetch(typingctx, arr, idx):
        if not isinstance(arr, types.Array) or not isinstance(idx, types.Integer):
            return None
        sig = types.void(arr, idx)

        def codegen(context, builder, signature, args):
            aryty = signature.args[0]
            ary = context.make_array(aryty)(context, builder, args[0])
            ptr = cgutils.get_item_pointer(
                context, builder, aryty, ary, [args[1]], wraparound=False
            )
            i8p = ir.IntType(8).as_pointer()
            i32 = ir.IntType(32)
            fn = cgutils.get_or_insert_function(
                builder.module,
                ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                "llvm.prefetch.p0",
            )
            # (address, rw, locality 3 = keep in all levels, cache type 1 = data)
            builder.call(
                fn,
                [
                    builder.bitcast(ptr, i8p),
                    ir.Constant(i32, rw),
                    ir.Constant(i32, 3),
                    ir.Constant(i32, 1),
                ],
            )
            return context.get_dummy_value()

        return sig, codegen

    prefetch.__doc__ = doc
    return intrinsic(prefetch)


prefetch_read = _make(0, "``__builtin_prefetch(&arr[idx], 0, 3)``: a read prefetch.")
prefetch_write = _make(1, "``__builtin_prefetch(&arr[idx], 1, 3)``: a write prefetch.")
