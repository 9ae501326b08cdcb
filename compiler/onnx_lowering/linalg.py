"""Linear algebra (``fw.linalg``'s registered ops, ``framework/ops/linalg_ops.py``).

``linalg_det`` is ONNX ``Det`` and ``linalg_slogdet`` is ``Sign``/``Log(Abs)`` of that
``Det`` (exact while the determinant fits the dtype's range; LAPACK's ``slogdet`` also
works past it). ONNX has no inverse, solve, Cholesky, QR, symmetric eigen or SVD
operator, so those ops have a rule that refuses the export with
:class:`UnsupportedOnnxOp`, naming the op and the ``fw.linalg`` function. Composites
built on ``matmul`` and reductions (norms other than the nuclear/spectral ones,
``matrix_power`` with ``n >= 0``, ``multi_dot``, ``vecdot``) export through their own ops.
"""

from __future__ import annotations

from framework.errors import GraphBreak

from . import lowering

#: ops without an ONNX form -> the public function that records them
_NO_ONNX = {"linalg_inv": "fw.linalg.inv (also used by matrix_power with n < 0)",
            "linalg_solve": "fw.linalg.solve", "linalg_cholesky": "fw.linalg.cholesky",
            "linalg_qr": "fw.linalg.qr", "linalg_eigh": "fw.linalg.eigh / eigvalsh",
            "linalg_svd": "fw.linalg.svd / svdvals / pinv / lstsq / matrix_rank / "
                          "matrix_norm('nuc', 2, -2)",
            "linalg_solve_triangular": "fw.linalg.solve_triangular / lu_solve",
            "linalg_lu_factor": "fw.linalg.lu_factor / lu_factor_ex / lu",
            "linalg_lu_permutation": "fw.lu_unpack / fw.linalg.lu / lu_solve",
            "linalg_matrix_exp": "fw.linalg.matrix_exp", "linalg_cholesky_ex":
            "fw.linalg.cholesky_ex", "linalg_inv_ex": "fw.linalg.inv_ex / cond",
            "linalg_solve_ex": "fw.linalg.solve_ex"}


class UnsupportedOnnxOp(GraphBreak):  # noqa: N818  (a graph break, as GraphBreak is named)
    """An op the ONNX standard cannot express: the export stops with the op's name (a
    graph break of the ONNX graph, like a data-dependent shape)."""


@lowering("linalg_det")
def _det(ctx, node):
    """``Det`` over the last two dims (batch dims are ONNX's ``*``)."""
    return [ctx.emit("Det", [ctx.name_of(node.inputs[0])])]


@lowering("linalg_slogdet")
def _slogdet(ctx, node):
    """``(Sign(d), Log(Abs(d)))`` with ``d = Det(A)``."""
    d = ctx.emit("Det", [ctx.name_of(node.inputs[0])])
    return [ctx.emit("Sign", [d]), ctx.emit("Log", [ctx.emit("Abs", [d])])]


def _unsupported(ctx, node):
    """Refuse the export, naming the op."""
    raise UnsupportedOnnxOp(
        f"onnx export: op {node.op.name!r} ({_NO_ONNX[node.op.name]}) has no ONNX "
        f"equivalent (the standard has no matrix inverse, solve or factorization operator); "
        f"export the model without it or compute it outside the exported graph")


lowering(*_NO_ONNX)(_unsupported)
