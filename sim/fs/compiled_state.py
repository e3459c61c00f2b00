"""State records of the compiled twins: numba StructRefs of arrays.

Each layer of the engine (filesystem, DAX layer, content model) keeps its state as a handful
of numpy arrays in one record, passed to every compiled function. A numba ``StructRef`` is a
reference: passing it costs one pointer, and numba types it once, where a ``NamedTuple`` of
thirty arrays is a by-value struct whose typing and lowering made every function of the
engine several times slower to compile. From Python a record is built with
:func:`state_class`'s class, its fields given in order, and read as attributes (the arrays
themselves, shared with the compiled code).

numba's on-disk cache of the functions compiled with :func:`sim.jit.njit` is valid for the
sources of the whole ``sim`` package (:func:`sim.jit.package_stamp`): an edit to a compiled
module that others call (``sim/fs/compiled_pages.py``, ``sim/fs/compiled.py``, ...) recompiles
its callers too, rather than leaving them with the old callee.
"""

from __future__ import annotations

from numba import njit
from numba.core import types
from numba.experimental import structref

__all__ = ["StateType", "state_class"]


class StateType(types.StructRef):
    """Base of the numba types of the records. Each record has its own subclass, defined
    at the top level of its module and registered (``structref.register``), so that
    compiled functions taking it can be cached on disk."""

    def preprocess_fields(self, fs):
        """The fields with literal types made plain (a record's field types never vary)."""
        return tuple((n, types.unliteral(t)) for n, t in fs)


def state_class(name: str, fields: tuple[str, ...], typeclass, module: str, doc: str = ""):
    """A record class ``name`` with array ``fields`` (the Python proxy of ``typeclass``).

    Parameters
    ----------
    name : str
        Class name.
    fields : tuple of str
        Field names, in constructor order.
    typeclass : type
        Its registered :class:`StateType` subclass.
    module : str
        Module the class is bound in (its ``__module__``).
    doc : str
        Docstring of the class.

    Returns
    -------
    type
        Call it with one array per field (by position or name); instances read their
        fields as attributes, in Python and in compiled code.
    """
    proxy = type(
        name, (structref.StructRefProxy,), {"__doc__": doc, "__slots__": (), "__module__": module}
    )
    structref.define_proxy(proxy, typeclass, list(fields))
    new = proxy.__new__
    names = tuple(fields)

    def __new__(cls, *args, **kwargs):  # the fields by position or by name
        if kwargs:
            args = args + tuple(kwargs.pop(n) for n in names[len(args) :])
            if kwargs:
                raise TypeError(f"{name}: unknown fields {sorted(kwargs)}")
        if len(args) != len(names):
            raise TypeError(f"{name}: expected {len(names)} fields, got {len(args)}")
        return new(cls, *args)

    proxy.__new__ = __new__
    proxy._fields = names
    for f in names:  # Python reads a field through a compiled getter (made on first use)
        setattr(proxy, f, property(_getter(f), doc=f"The ``{f}`` array."))
    return proxy


def _getter(field: str):
    """``lambda record: record.<field>`` for Python, compiled on its first call."""
    holder: list = []

    def get(self):
        if not holder:
            ns: dict = {}
            exec(f"def get(s):\n    return s.{field}\n", ns)  # noqa: S102 - a field name
            holder.append(njit(ns["get"]))
        return holder[0](self)

    return get
