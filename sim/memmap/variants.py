"""Design variants of the associate/disassociate path: the kernel generations (each with the
releases that run it, :class:`KernelRange`) and user designs.

A :class:`Variant` names a design and carries two implementations of it:

- the per-page **reference** (:meth:`Variant.associate` / :meth:`Variant.disassociate` on a
  :class:`~sim.memmap.reference.PageState`), a readable transcription of ``fs/dax.c``;
- an optional compiled **kernel** (``batch_kernel``, see :mod:`sim.memmap.kernels`), used for
  batches, and an optional single-operation kernel (``op_kernel``, scalar arguments) for
  the per-fault calls (without it, single operations run the batch kernel on one-element
  arrays).  :class:`~sim.memmap.MemMap` uses the kernels when there are, else the reference
  (slower, same results).

A design also holds the rules of the fsdax fault and remap paths around its associate
(``fault_rules``, a :class:`~sim.memmap.fault_rules.FaultRules`: which flag reaches associate,
when an entry is replaced, the DIRTY/TOWRITE marks, the invalidation after CoW), read by the
fsdax layer and its compiled twin.

User designs subclass :class:`Variant`, override ``associate``/``disassociate`` (and set
``batch_kernel`` to a numba function with the built-in signature if they want speed; set
``fault_rules`` when they do not follow the v6.2+ paths), and are named as ``module:Class``
or ``path/to/file.py:Class`` wherever a variant name is accepted, or by name once
:func:`register` has seen them.  :func:`get_variant` is the one loader of every command.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import sys
from dataclasses import dataclass

from sim.constants import COW_INDEX, FOLIO_SHARE, FOLIO_SHARE_RESET, PAGE_SHARE, SINGLE_OWNER
from sim.errors import InputError
from sim.memmap import kernels as _k
from sim.memmap import reference as _ref
from sim.memmap.fault_rules import RULES_5_19, RULES_6_0, RULES_6_2, RULES_6_15, FaultRules
from sim.memmap.layout import COMMON_SITES

__all__ = [
    "KernelRange",
    "Variant",
    "SingleOwner",
    "CowIndex",
    "PageShare",
    "FolioShare",
    "FolioShareReset",
    "VARIANTS",
    "get_variant",
    "register",
    "unregister",
]


@dataclass(frozen=True)
class KernelRange:
    """The upstream kernel releases that run a design, and how that was found.

    Attributes
    ----------
    first : str
        First release (``"6.2"``).
    last : str or None
        Last release (``"6.14"``), or None while the newest release still runs it.
    evidence : str
        How the range was established: the real-kernel rig's checks (symbols, BTF) on the
        releases named, and the sources (``fs/dax.c``).
    """

    first: str
    last: str | None
    evidence: str

    def __str__(self) -> str:
        return f"{self.first}+" if self.last is None else f"{self.first}\u2013{self.last}"

    def contains(self, version: str) -> bool:
        """Whether an upstream version (``"6.12.118"``, ``"7.1"``) is in the range (by
        major.minor)."""
        v = _major_minor(version)
        return _major_minor(self.first) <= v and (self.last is None or v <= _major_minor(self.last))


def _major_minor(version: str) -> tuple[int, int]:
    nums = [int(x) for x in re.findall(r"\d+", version)[:2]]
    if len(nums) < 2:
        raise ValueError(f"not a kernel version: {version!r}")
    return nums[0], nums[1]


class Variant:
    """One design of struct-page association (subclass it for a user-defined design).

    Attributes
    ----------
    name : str
        Registered name (``page-share``).
    aliases : tuple of str
        Other accepted names (``v6.2``).
    kernel_range : KernelRange or None
        The upstream releases that run this design (with how that was found), or None for a
        design no released kernel has.
    kernels : str
        ``kernel_range`` as text (``"6.2\u20136.14"``, ``"7.1+"``), or ``"none"``.
    description : str
        One line.
    in_kernel : bool
        Whether a released kernel runs the design (``kernel_range`` is set).
    folio : bool
        True if state is kept per folio (PMD entries are order-9 compound folios).
    flag_sentinel : bool
        True if the design marks shared pages with a ``mapping`` flag (``-1``).
    extra_sites : tuple of str
        Warning sites beyond :data:`~sim.memmap.layout.COMMON_SITES`.
    sites : tuple of str
        Warning sites the design's code really has (the others always report 0).
    batch_kernel : callable or None
        Compiled kernel (see :mod:`sim.memmap.kernels`), or None to use the reference.
    op_kernel : callable or None
        Compiled single-operation kernel (``*_one`` in :mod:`sim.memmap.kernels`: scalar
        operation arguments, returns -1 for an invalid entry), or None.
    fault_rules : FaultRules
        The fsdax fault and remap paths around associate (default: the v6.2+ rules, which
        proposed designs build on).
    put_refcount_min_order : int or None
        The refcount check of the final put of a folio (``dax_folio_put``, v6.15+: a page
        table entry mapping a page of a refcounted fsdax folio holds a reference on it, and
        the last DAX entry going expects none left): the fsdax layer counts the site
        ``folio_put_refcount`` when a final put leaves a PTE or PMD (of any mapping) on the
        folio and the folio's order is at least this. None: no such check (up to v6.14 fsdax
        PTEs and PMDs are pfn mappings that hold no page reference).
    """

    name: str = "unnamed"
    aliases: tuple[str, ...] = ()
    kernel_range: KernelRange | None = None
    description: str = ""
    folio: bool = False
    flag_sentinel: bool = False
    extra_sites: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    batch_kernel = None
    op_kernel = None
    fault_rules: FaultRules = RULES_6_2
    put_refcount_min_order: int | None = None

    @property
    def kernels(self) -> str:
        """The kernel range as text, or ``"none"``."""
        return "none" if self.kernel_range is None else str(self.kernel_range)

    @property
    def in_kernel(self) -> bool:
        """Whether a released kernel runs this design."""
        return self.kernel_range is not None

    @property
    def warning_sites(self) -> tuple[str, ...]:
        """Sites reported in ``MemMap.warnings``: the common ones, then this design's extras."""
        return COMMON_SITES + tuple(s for s in self.extra_sites if s not in COMMON_SITES)

    def associate(self, state, pfn: int, npages: int, mapping: int, index: int, flag: bool) -> int:
        """Reference ``dax_associate_entry``; returns the struct pages written."""
        raise NotImplementedError

    def disassociate(self, state, pfn: int, npages: int, mapping: int, trunc: bool) -> int:
        """Reference ``dax_disassociate_entry``; returns the struct pages written."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<Variant {self.name}>"


class SingleOwner(Variant):
    """v4.17-v5.19: one owner per page (``dax_associate_entry`` warns on a second)."""

    name = SINGLE_OWNER
    aliases = ("v5.19",)
    kernel_range = KernelRange(
        "4.17",
        "5.19",
        "sources: dax_associate_entry() (fs/dax.c, v4.17) sets one page->mapping and warns on a "
        "second; v6.0 adds dax_mapping_set_cow()",
    )
    description = "one owner per page, no sharing: a second mapper warns and overwrites"
    sites = ("associate_mapping_set", "disassociate_foreign_mapping")
    fault_rules = RULES_5_19
    batch_kernel = staticmethod(_k.single_owner_batch)
    op_kernel = staticmethod(_k.single_owner_one)

    def associate(self, state, pfn, npages, mapping, index, flag):
        """Reference ``dax_associate_entry``; returns the struct pages written."""
        return _ref.single_owner_associate(state, pfn, npages, mapping, index, flag)

    def disassociate(self, state, pfn, npages, mapping, trunc):
        """Reference ``dax_disassociate_entry``; returns the struct pages written."""
        return _ref.single_owner_disassociate(state, pfn, npages, mapping, trunc)


class CowIndex(Variant):
    """v6.0-v6.1: ``PAGE_MAPPING_DAX_COW`` with the share count in ``page->index``."""

    name = COW_INDEX
    aliases = ("v6.0",)
    kernel_range = KernelRange(
        "6.0",
        "6.1",
        "sources: dax_mapping_set_cow() (fs/dax.c) in v6.0 and v6.1, replaced by page->share in "
        "v6.2; rig: 6.1.192 (6.1 LTS) warns at fs/dax.c:380 on the (COW, 0) residue",
    )
    description = (
        "the seed: PAGE_MAPPING_DAX_COW, count in page->index, post-decrement leaves (COW, 0)"
    )
    flag_sentinel = True
    sites = ("associate_mapping_set", "disassociate_foreign_mapping")
    fault_rules = RULES_6_0
    batch_kernel = staticmethod(_k.cow_index_batch)
    op_kernel = staticmethod(_k.cow_index_one)

    def associate(self, state, pfn, npages, mapping, index, flag):
        """Reference ``dax_associate_entry``; returns the struct pages written."""
        return _ref.cow_index_associate(state, pfn, npages, mapping, index, flag)

    def disassociate(self, state, pfn, npages, mapping, trunc):
        """Reference ``dax_disassociate_entry``; returns the struct pages written."""
        return _ref.cow_index_disassociate(state, pfn, npages, mapping, trunc)


class PageShare(Variant):
    """v6.2-v6.14: ``page->share`` with ``PAGE_MAPPING_DAX_SHARED``."""

    name = PAGE_SHARE
    aliases = ("v6.2",)
    kernel_range = KernelRange(
        "6.2",
        "6.14",
        "sources: page->share and PAGE_MAPPING_DAX_SHARED from v6.2 until struct folio gets "
        "share in v6.15; rig: 6.12.118's BTF has page.share",
    )
    description = "page->share with PAGE_MAPPING_DAX_SHARED, pre-decrement: balanced"
    flag_sentinel = True
    sites = ("associate_mapping_set", "disassociate_foreign_mapping")
    fault_rules = RULES_6_2
    batch_kernel = staticmethod(_k.page_share_batch)
    op_kernel = staticmethod(_k.page_share_one)

    def associate(self, state, pfn, npages, mapping, index, flag):
        """Reference ``dax_associate_entry``; returns the struct pages written."""
        return _ref.page_share_associate(state, pfn, npages, mapping, index, flag)

    def disassociate(self, state, pfn, npages, mapping, trunc):
        """Reference ``dax_disassociate_entry``; returns the struct pages written."""
        return _ref.page_share_disassociate(state, pfn, npages, mapping, trunc)


class FolioShare(Variant):
    """v6.15-v7.0: ``folio->share`` on order-9 PMD folios, no flag."""

    name = FOLIO_SHARE
    aliases = ("v6.15",)
    kernel_range = KernelRange(
        "6.15",
        "7.0",
        "rig: 6.18.15's BTF has folio.share and neither 6.18.15 nor 7.0.13 has "
        "dax_folio_reset_order",
    )
    description = (
        "folio->share, no flag, order-9 PMD folios; an order-0 owner put leaves a stale count"
    )
    folio = True
    # pmd_folio_order: vmf_insert_folio_pmd() (mm/huge_memory.c), which the v6.15+ PMD fault
    # calls (FaultRules.pmd_folio_order); counted by the fsdax layer
    extra_sites = (
        "associate_order_mismatch",
        "folio_init_order",
        "folio_put_refcount",
        "pmd_folio_order",
    )
    sites = (
        "associate_mapping_set",
        "associate_share_zero",
        "associate_order_mismatch",
        "folio_init_order",
        "folio_put_refcount",
        "pmd_folio_order",
    )
    fault_rules = RULES_6_15
    #: 6.15-7.0 ``dax_folio_put``: on the final put ``folio->mapping = NULL; order =
    #: folio_order(folio); if (!order) return 0;``, and only then, for each page of the
    #: split folio, ``WARN_ON_ONCE(folio_ref_count(new_folio))``: order-0 folios go unchecked
    #: (Popple's "fs/dax: properly refcount fs dax pages", 38607c62b34b)
    put_refcount_min_order = 1
    batch_kernel = staticmethod(_k.folio_share_batch)
    op_kernel = staticmethod(_k.folio_share_one)
    _reset = False

    def associate(self, state, pfn, npages, mapping, index, flag):
        """Reference ``dax_associate_entry``; returns the struct pages written."""
        return _ref.folio_share_associate(state, pfn, npages, mapping, index, flag)

    def disassociate(self, state, pfn, npages, mapping, trunc):
        """Reference ``dax_disassociate_entry``; returns the struct pages written."""
        return _ref.folio_share_disassociate(state, pfn, npages, mapping, trunc, reset=self._reset)


class FolioShareReset(FolioShare):
    """v7.1+: folio-share with the share count zeroed on every final put
    (``dax_folio_reset_order()``)."""

    name = FOLIO_SHARE_RESET
    aliases = ("v7.1",)
    kernel_range = KernelRange(
        "7.1",
        None,
        "rig: 7.1.3 (the first 7.1 in the Debian archive) and 7.3.4 export "
        "dax_folio_reset_order, 7.0.13 does not; sources: 7.3's fs/dax.c calls it from "
        "dax_folio_put() on every final put",
    )
    description = (
        "folio-share with folio->share zeroed on every final put, order 0 included "
        "(dax_folio_reset_order)"
    )
    batch_kernel = staticmethod(_k.folio_share_reset_batch)
    op_kernel = staticmethod(_k.folio_share_reset_one)
    _reset = True
    #: 7.1+ ``dax_folio_put``: ``order = dax_folio_reset_order(folio)`` (0 for an order-0
    #: folio) then ``for (i = 0; i < (1UL << order); i++)
    #: WARN_ON_ONCE(folio_ref_count((struct folio *)page))`` (7.3.4 fs/dax.c:452): every
    #: final put is checked, order 0 included
    put_refcount_min_order = 0


#: Registered variants by name, in kernel order (then in registration order).
VARIANTS: dict[str, Variant] = {
    v.name: v for v in (SingleOwner(), CowIndex(), PageShare(), FolioShare(), FolioShareReset())
}


def register(design):
    """Register a design so that every command knows it by name (and its aliases).

    A new design is one module: its :class:`Variant` subclass (per-page transcription, kernel
    range, fault rules, optional compiled kernels) decorated with ``@register``; importing
    the module makes it appear in ``daxsim variants`` and be accepted by ``run`` (scenario
    ``variant.name``), ``compare``, ``hunt`` and ``xfsio``.

    Parameters
    ----------
    design : type or Variant
        A :class:`Variant` subclass (instantiated with no argument) or instance.

    Returns
    -------
    type or Variant
        ``design`` itself (so that it can decorate a class).

    Raises
    ------
    ValueError
        If ``design`` is not a Variant, or its name or an alias is taken by another design.
    """
    v = design() if isinstance(design, type) and issubclass(design, Variant) else design
    if not isinstance(v, Variant):
        raise ValueError(f"{design!r} is not a sim.memmap.Variant subclass or instance")
    taken = {n: other for other in VARIANTS.values() for n in (other.name, *other.aliases)}
    for n in (v.name, *v.aliases):
        other = taken.get(n)
        if other is not None and other.name != v.name:
            raise ValueError(f"design name {n!r} is taken by {other.name!r}")
    old = VARIANTS.get(v.name)
    if old is not None and (type(old).__module__, type(old).__qualname__) != (
        type(v).__module__,
        type(v).__qualname__,
    ):
        raise ValueError(f"design name {v.name!r} is taken by {type(old).__qualname__}")
    VARIANTS[v.name] = v
    return design


def unregister(name: str) -> None:
    """Remove a registered design (a no-op when ``name`` is not registered)."""
    VARIANTS.pop(name, None)


def _as_variant(obj, spec: str, attr: str) -> Variant:
    if isinstance(obj, type) and issubclass(obj, Variant):
        return obj()
    if isinstance(obj, Variant):
        return obj
    raise InputError(f"{spec!r}: {attr!r} is not a sim.memmap.Variant subclass", where="--variant")


def _load_file(path: str, attr: str, spec: str) -> Variant:
    """``path/to/file.py:Class``: the module is imported from the file under a private name
    (from the file's absolute path, so two designs in files of the same base name do not
    collide, and a second load of the same file reuses the module)."""
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
    return _as_variant(getattr(mod, attr, None), spec, attr)


def _load_module(module: str, attr: str, spec: str) -> Variant:
    """``module:Class``, importable from ``sys.path`` or else from the current directory
    (which the ``daxsim`` console script does not put on ``sys.path``)."""
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        cwd = os.getcwd()
        if cwd in sys.path:
            raise InputError(f"cannot load variant {spec!r}: {exc}", where="--variant") from None
        sys.path.insert(0, cwd)
        try:
            mod = importlib.import_module(module)
        except ImportError as exc2:
            raise InputError(f"cannot load variant {spec!r}: {exc2}", where="--variant") from None
        finally:
            sys.path.remove(cwd)
    if not hasattr(mod, attr):
        raise InputError(
            f"cannot load variant {spec!r}: module {module!r} has no attribute {attr!r}",
            where="--variant",
        )
    return _as_variant(getattr(mod, attr), spec, attr)


def get_variant(spec) -> Variant:
    """Resolve a design: the one loader every command uses.

    Parameters
    ----------
    spec : str or Variant or type
        A registered name or alias (``page-share``, ``v6.2``), ``module:Class``,
        ``path/to/file.py:Class``, or a :class:`Variant` subclass or instance.

    Returns
    -------
    Variant

    Raises
    ------
    InputError
        If the name is unknown (the message lists the valid ones), the module or file does
        not load, or the object named is not a Variant.
    """
    if isinstance(spec, Variant):
        return spec
    if isinstance(spec, type) and issubclass(spec, Variant):
        return spec()
    name = str(spec)
    if name in VARIANTS:
        return VARIANTS[name]
    for v in VARIANTS.values():
        if name in v.aliases:
            return v
    if ":" in name:
        path, _, attr = name.rpartition(":")
        if path.endswith(".py") or os.sep in path or "/" in path:
            return _load_file(path, attr, name)
        return _load_module(path, attr, name)
    valid = ", ".join(
        f"{v.name} ({', '.join(v.aliases)})" if v.aliases else v.name for v in VARIANTS.values()
    )
    raise InputError(
        f"unknown variant {name!r}; valid: {valid}, module:Class or path/to/file.py:Class",
        where="--variant",
    )
