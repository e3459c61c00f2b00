"""Load a design variant by name, alias, ``module:Class`` or ``path/to/file.py:Class``.

The first three forms are :func:`sim.memmap.get_variant`'s (``module:Class`` is also looked
up in the current directory, which the ``daxsim`` console script does not put on
``sys.path``); the file-path form is added here
(the module is imported from the file under a private name, so two designs in files with the
same base name do not collide).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys

from sim.errors import InputError
from sim.memmap import VARIANTS, Variant, get_variant

__all__ = ["load_variant", "builtin_variant_names"]


def builtin_variant_names() -> list[str]:
    """Every registered design, in kernel order."""
    return list(VARIANTS)


def _load_file(path: str, attr: str, spec: str) -> Variant:
    if not os.path.isfile(path):
        raise InputError(f"cannot load variant {spec!r}: no such file {path!r}", where="--variant")
    digest = hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:12]
    modname = f"_daxsim_design_{digest}"
    mod = sys.modules.get(modname)
    if mod is None:
        sp = importlib.util.spec_from_file_location(modname, path)
        if sp is None or sp.loader is None:
            raise InputError(f"cannot load variant {spec!r}: not a Python file", where="--variant")
        mod = importlib.util.module_from_spec(sp)
        sys.modules[modname] = mod
        try:
            sp.loader.exec_module(mod)
        except Exception as exc:  # noqa: BLE001 - the user's code: report, do not crash
            del sys.modules[modname]
            raise InputError(
                f"cannot load variant {spec!r}: {type(exc).__name__}: {exc}", where="--variant"
            ) from None
    obj = getattr(mod, attr, None)
    if isinstance(obj, type) and issubclass(obj, Variant):
        return obj()
    if isinstance(obj, Variant):
        return obj
    raise InputError(f"{spec!r}: {attr!r} is not a sim.memmap.Variant subclass", where="--variant")


def load_variant(spec) -> Variant:
    """Resolve a design.

    Parameters
    ----------
    spec : str or Variant or type
        ``page-share``, ``v6.2``, ``mymodule:MyDesign``, ``path/to/file.py:MyDesign``, a
        :class:`~sim.memmap.Variant` subclass or instance.

    Raises
    ------
    InputError
        Unknown name, unloadable module or file, or not a Variant subclass.
    """
    if isinstance(spec, str) and ":" in spec:
        path, _, attr = spec.rpartition(":")
        if path.endswith(".py") or os.sep in path or "/" in path:
            return _load_file(path, attr, spec)
        try:
            return get_variant(spec)
        except InputError:
            # ``mymodule:MyDesign`` next to the user: the console script's sys.path lacks "."
            cwd = os.getcwd()
            if cwd in sys.path:
                raise
            sys.path.insert(0, cwd)
            try:
                return get_variant(spec)
            finally:
                sys.path.remove(cwd)
    return get_variant(spec)
