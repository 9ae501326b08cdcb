"""Memory layouts, as ``torch.layout``: ``fw.strided`` (every dense tensor), ``fw.sparse_coo``
and ``fw.sparse_csr`` (:class:`framework.sparse.SparseTensor`)."""

from __future__ import annotations


class layout:  # noqa: N801  (named like torch.layout)
    """A tensor memory layout (singletons: compare with ``is`` or ``==``)."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"framework.{self.name}"

    def __reduce__(self):
        return (_by_name, (self.name,))


strided = layout("strided")
sparse_coo = layout("sparse_coo")
sparse_csr = layout("sparse_csr")
_LAYOUTS = {lay.name: lay for lay in (strided, sparse_coo, sparse_csr)}


def _by_name(name: str) -> layout:
    return _LAYOUTS[name]
