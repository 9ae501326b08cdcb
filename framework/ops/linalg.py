"""``matmul`` (NumPy broadcasting semantics, 1-D cases included) and ``einsum``, plus
``bmm``, ``mm``, ``mv``, ``dot``, ``outer`` built on them."""

from __future__ import annotations

import string

from ..errors import ArgumentError, DTypeError, FwTypeError, ShapeError
from ..tensor import Tensor
from .pointwise import _c, promote, sum_to_shape
from .registry import MATMUL, apply, register
from .shapes import broadcast_shapes


def _matmul_meta(a, b):
    if a.dtype is not b.dtype:
        raise DTypeError(f"matmul: expected both operands to share a dtype, got {a.dtype.name} "
                         f"and {b.dtype.name}")
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(f"matmul: both arguments need at least 1 dimension, got shapes "
                         f"{list(a.shape)} and {list(b.shape)}")
    k1 = a.shape[-1]
    k2 = b.shape[-2] if b.ndim > 1 else b.shape[0]
    if isinstance(k1, int) and isinstance(k2, int) and k1 != k2:
        raise ShapeError(f"matmul: shapes {list(a.shape)} and {list(b.shape)} cannot be "
                         f"multiplied ({k1} != {k2} in the contracted dimension)")
    batch = broadcast_shapes(a.shape[:-2], b.shape[:-2], "matmul")
    m = (a.shape[-2],) if a.ndim > 1 else ()
    n = (b.shape[-1],) if b.ndim > 1 else ()
    return batch + m + n, a.dtype


def _matmul_vjp(g, args, out):
    a, b = args
    a2 = a.unsqueeze(0) if a.ndim == 1 else a
    b2 = b.unsqueeze(-1) if b.ndim == 1 else b
    # the gradient in the 2-D (batched) layout of a2 @ b2
    batch = broadcast_shapes(a2.shape[:-2], b2.shape[:-2], "matmul")
    shape2 = batch + (a2.shape[-2], b2.shape[-1])
    g2 = g if g.shape == shape2 else g.reshape(shape2)
    ga = gb = None
    if a.requires_grad:
        ga = g2.matmul(_c(b2).mT)  # conjugated for complex operands
        ga = sum_to_shape(ga, a2.shape) if ga.shape != a2.shape else ga
        ga = ga if ga.shape == a.shape else ga.reshape(a.shape)
    if b.requires_grad:
        gb = _c(a2).mT.matmul(g2)
        gb = sum_to_shape(gb, b2.shape) if gb.shape != b2.shape else gb
        gb = gb if gb.shape == b.shape else gb.reshape(b.shape)
    return ga, gb


MATMUL_OP = register("matmul", MATMUL, _matmul_meta, vjp=_matmul_vjp)


def matmul(input, other) -> Tensor:
    """Matrix product with batch broadcasting (``@``)."""
    if not isinstance(input, Tensor) or not isinstance(other, Tensor):
        if getattr(type(input), "_fw_sparse", False) or getattr(type(other), "_fw_sparse", False):
            from ..sparse.ops import matmul as sparse_matmul  # a sparse operand: fw.sparse
            return sparse_matmul(input, other)
        raise TypeError("matmul: both arguments must be Tensors")
    if input.dtype is not other.dtype:
        input, other, _ = promote(input, other, "matmul")
    return apply(MATMUL_OP, input, other)


def mm(input, mat2) -> Tensor:
    """2-D matrix product."""
    if input.ndim != 2 or mat2.ndim != 2:
        raise ShapeError(f"mm: expected 2-D tensors, got {input.ndim}-D and {mat2.ndim}-D")
    return matmul(input, mat2)


def bmm(input, mat2) -> Tensor:
    """Batched 3-D matrix product (no broadcasting)."""
    if input.ndim != 3 or mat2.ndim != 3:
        raise ShapeError(f"bmm: expected 3-D tensors, got shapes {list(input.shape)} and "
                         f"{list(mat2.shape)}")
    if input.shape[0] != mat2.shape[0]:
        raise ShapeError(f"bmm: batch sizes differ: {input.shape[0]} vs {mat2.shape[0]}")
    return matmul(input, mat2)


def mv(input, vec) -> Tensor:
    """Matrix-vector product."""
    if input.ndim != 2 or vec.ndim != 1:
        raise ShapeError(f"mv: expected a 2-D and a 1-D tensor, got {list(input.shape)} and "
                         f"{list(vec.shape)}")
    return matmul(input, vec)


def dot(input, other) -> Tensor:
    """Inner product of two 1-D tensors."""
    if input.ndim != 1 or other.ndim != 1:
        raise ShapeError(f"dot: 1D tensors expected, but got {input.ndim}D and {other.ndim}D")
    return matmul(input, other)


def outer(input, vec2) -> Tensor:
    """Outer product of two 1-D tensors."""
    return input.reshape(-1, 1) * vec2.reshape(1, -1)


# ---------------------------------------------------------------------------------------
# einsum. The registered op only ever sees letters: ``einsum()`` rewrites '...' into fresh
# letters first (it needs the operand shapes), so backends and the ONNX lowering never do.
# torch's label order, which is also the order of an implicit output: 'A'..'Z', 'a'..'z'.
_LABELS = string.ascii_uppercase + string.ascii_lowercase


def _split_einsum(equation, n):
    """``equation`` -> (operand terms, output term or None when implicit), spaces dropped,
    with the operand count and the characters checked ('.' only as one '...' per term)."""
    if not isinstance(equation, str):
        raise FwTypeError(f"einsum: the equation must be a str, got {type(equation).__name__}")
    eq = equation.replace(" ", "")
    if eq.count("->") > 1:
        raise ArgumentError(f"einsum: equation {equation!r} has more than one '->'")
    lhs, rhs = eq.split("->") if "->" in eq else (eq, None)
    terms = lhs.split(",")
    if len(terms) != n:
        raise ArgumentError(f"einsum: equation {equation!r} has {len(terms)} operands but "
                            f"{n} tensors were given")
    for k, term in enumerate(terms + ([rhs] if rhs is not None else [])):
        where = "the output" if k == len(terms) else f"operand {k}"
        if term.count("...") > 1:
            raise ArgumentError(f"einsum: {where} of {equation!r} has more than one '...'")
        bad = [c for c in term.replace("...", "", 1) if c not in _LABELS]
        if bad:
            raise ArgumentError(f"einsum: invalid subscript {bad[0]!r} for {where} of "
                                f"{equation!r}: subscripts must be letters [a-zA-Z] (and at "
                                f"most one '...')")
    return terms, rhs


def _parse_einsum(equation, n):
    """Letters-only ``equation`` -> (operand terms, explicit output term)."""
    terms, rhs = _split_einsum(equation, n)
    if any("..." in t for t in terms) or (rhs is not None and "..." in rhs):
        raise ArgumentError(f"einsum: {equation!r} still holds '...' (einsum() rewrites it "
                            f"into letters before the op runs)")
    letters = "".join(terms)
    if rhs is None:
        return terms, "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    for c in rhs:
        if c not in letters:
            raise ArgumentError(f"einsum: output subscript {c!r} of {equation!r} does not "
                                f"appear in any operand")
        if rhs.count(c) > 1:
            raise ArgumentError(f"einsum: output subscript {c!r} appears more than once in "
                                f"{equation!r}")
    return terms, rhs


def _ellipsis_to_letters(equation, operands):
    """Rewrite '...' into fresh letters: (letters-only explicit equation, operands).

    The dims each '...' covers are right-aligned and broadcast across operands. A size-1
    ellipsis dim that broadcasts against a larger one is squeezed out of its operand (its
    letter dropped there), so no backend has to broadcast a letter."""
    terms, rhs = _split_einsum(equation, len(operands))
    if not any("..." in t for t in terms) and (rhs is None or "..." not in rhs):
        return equation, operands
    shapes = []  # the dims covered by each operand's '...' (None where it has none)
    for k, (term, t) in enumerate(zip(terms, operands)):
        nlab = len(term.replace("...", ""))
        if "..." not in term:
            shapes.append(None)
        elif nlab > t.ndim:
            raise ShapeError(f"einsum: operand {k} of {equation!r} has {nlab} subscripts "
                             f"besides '...' but only {t.ndim} dims (shape {list(t.shape)})")
        else:
            pos = term.index("...")
            shapes.append(tuple(t.shape[pos:pos + t.ndim - nlab]))
    ell = ()
    for sh in shapes:
        try:
            ell = broadcast_shapes(ell, sh, "einsum") if sh is not None else ell
        except ShapeError:
            listed = "; ".join(f"operand {k} {terms[k]!r} shape {list(t.shape)} "
                               f"('...' covers {list(sh)})"
                               for k, (t, sh) in enumerate(zip(operands, shapes))
                               if sh is not None)
            raise ShapeError(f"einsum: the dims covered by '...' in {equation!r} do not "
                             f"broadcast: {listed}") from None
    used = set(equation)
    fresh = [c for c in string.ascii_lowercase + string.ascii_uppercase if c not in used]
    if len(fresh) < len(ell):
        raise ArgumentError(f"einsum: {equation!r} uses too many letters to name the "
                            f"{len(ell)} dims covered by '...' (52 letters in all)")
    ell_letters = "".join(fresh[:len(ell)])
    new_terms, new_ops = [], []
    for term, t, sh in zip(terms, operands, shapes):
        if sh is None:
            new_terms.append(term)
            new_ops.append(t)
            continue
        pos, k = term.index("..."), len(sh)
        letters = ell_letters[len(ell) - k:]
        full = ell[len(ell) - k:]
        keep = [i for i in range(k) if not (sh[i] == 1 and full[i] != 1)]
        new_terms.append(term[:pos] + "".join(letters[i] for i in keep) + term[pos + 3:])
        if len(keep) < k:
            t = t.reshape(t.shape[:pos] + tuple(sh[i] for i in keep) + t.shape[pos + k:])
        new_ops.append(t)
    if rhs is None:
        letters = "".join(terms).replace("...", "")
        rhs = ell_letters + "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    else:
        # torch: without '...' in an explicit output the ellipsis dims are summed
        rhs = rhs.replace("...", ell_letters)
    return ",".join(new_terms) + "->" + rhs, new_ops


def _einsum_meta(*ops, equation):
    terms, rhs = _parse_einsum(equation, len(ops))
    sizes = {}
    for k, (term, t) in enumerate(zip(terms, ops)):
        if len(term) != t.ndim:
            raise ShapeError(f"einsum: operand {k} with subscripts {term!r} has {t.ndim} dims "
                             f"(shape {list(t.shape)}); give one subscript per dim or use "
                             f"'...'")
        for c in set(term):
            own = {t.shape[p] for p, x in enumerate(term) if x == c}
            if len(own) > 1 and all(isinstance(s, int) for s in own):
                raise ShapeError(f"einsum: subscript {c!r} is repeated in operand {k} "
                                 f"({term!r}, shape {list(t.shape)}) with different sizes")
        for c, s in zip(term, t.shape):
            if c in sizes and sizes[c] != s and 1 not in (s, sizes[c]):
                raise ShapeError(f"einsum: subscript {c!r} has sizes {sizes[c]} and {s} "
                                 f"in {equation!r} (operand {k} has shape {list(t.shape)})")
            sizes[c] = s if c not in sizes or sizes[c] == 1 else sizes[c]
    return tuple(sizes[c] for c in rhs), ops[0].dtype


def _onto_diagonals(gi, term, sizes):
    """``gi`` (one dim per distinct letter of ``term``, in first-seen order) -> a tensor
    laid out as ``term``, zero wherever a repeated letter's indices differ."""
    from .creation_ops import arange
    from .pointwise import cast
    first = {c: term.index(c) for c in term}
    out = gi.reshape(tuple(sizes[c] if first[c] == p else 1 for p, c in enumerate(term)))
    for p, c in enumerate(term):
        if first[c] != p:
            idx = arange(sizes[c], device=gi.device)
            eye = cast(idx.unsqueeze(-1) == idx, gi.dtype)
            shape = [1] * len(term)
            shape[first[c]] = shape[p] = sizes[c]
            out = out * eye.reshape(tuple(shape))
    return out


def _einsum_vjp(g, args, out, equation):
    terms, rhs = _parse_einsum(equation, len(args))
    grads = []
    for i, (term, t) in enumerate(zip(terms, args)):
        if not t.requires_grad:
            grads.append(None)
            continue
        others = [rhs] + [tm for j, tm in enumerate(terms) if j != i]
        available = set("".join(others))
        uniq = "".join(dict.fromkeys(term))
        sizes = {c: t.shape[term.index(c)] for c in uniq}
        kept = "".join(c for c in uniq if c in available)
        gi = einsum(",".join(others) + "->" + kept, g,
                    *[_c(a) for j, a in enumerate(args) if j != i])
        # letter broadcasting (size 1 against a larger size): sum the gradient back where
        # this operand has the 1; expand it where only other operands had one
        target = tuple(sizes[c] for c in kept)
        gi = sum_to_shape(gi, target)
        gi = gi if gi.shape == target else gi.expand(target)
        if kept != uniq:
            # letters only this operand has were summed: the gradient is constant along them
            shape = tuple(sizes[c] if c in kept else 1 for c in uniq)
            gi = gi.reshape(shape).expand(tuple(sizes[c] for c in uniq))
        if uniq != term:
            gi = _onto_diagonals(gi, term, sizes)
        grads.append(gi)
    return tuple(grads)


EINSUM = register("einsum", MATMUL, _einsum_meta, vjp=_einsum_vjp)


def _from_sublists(args):
    """torch's sublist form ``einsum(a, [0, 1], b, [1, 2], [0, 2])`` -> (equation, operands);
    ints 0..51 name the labels ('A'..'Z', 'a'..'z'), ``...`` (Ellipsis) is allowed."""
    def term(sub):
        if not isinstance(sub, (list, tuple)):
            raise FwTypeError(f"einsum: sublist format expects a list of subscripts after "
                              f"each operand, got {type(sub).__name__}")
        out = []
        for s in sub:
            if s is Ellipsis:
                out.append("...")
            elif isinstance(s, int) and not isinstance(s, bool) and 0 <= s < len(_LABELS):
                out.append(_LABELS[s])
            else:
                raise ArgumentError(f"einsum: subscript {s!r} in sublist {list(sub)} must "
                                    f"be an int in [0, 52) or Ellipsis")
        return "".join(out)
    ops, subs = list(args[0::2]), [term(s) for s in args[1::2]]
    rhs = None
    if len(args) % 2:  # a trailing output sublist
        rhs, ops = term(args[-1]), ops[:-1]
    eq = ",".join(subs) + ("->" + rhs if rhs is not None else "")
    return eq, tuple(ops)


def einsum(equation, *operands) -> Tensor:
    """Einstein summation over the operands (``"ij,jk->ik"``), as ``torch.einsum``:
    ``'...'`` stands for the dims no letter names (broadcast across operands), letters
    repeated in one operand take its diagonal, and the sublist form
    ``einsum(a, [0, 1], b, [1, 2], [0, 2])`` is accepted too."""
    if isinstance(equation, Tensor):
        equation, operands = _from_sublists((equation,) + operands)
    elif len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise ArgumentError("einsum: expected at least one operand")
    for k, o in enumerate(operands):
        if not isinstance(o, Tensor):
            raise FwTypeError(f"einsum: operand {k} must be a Tensor, got {type(o).__name__}")
    from .. import dtypes
    from .pointwise import cast
    dt = dtypes.result_type(*[o.dtype for o in operands])
    equation, operands = _ellipsis_to_letters(equation, [cast(o, dt) for o in operands])
    return apply(EINSUM, *operands, equation=equation)
