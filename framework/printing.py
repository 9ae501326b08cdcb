"""``repr(tensor)`` in PyTorch's style: ``tensor([1.0000, 2.5000], requires_grad=True)``."""

from __future__ import annotations

import numpy as np

from . import dtypes

_OPTIONS = {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80}


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, **_):
    """Set how tensors print (same knobs as torch.set_printoptions)."""
    for k, v in (("precision", precision), ("threshold", threshold),
                 ("edgeitems", edgeitems), ("linewidth", linewidth)):
        if v is not None:
            _OPTIONS[k] = v


def _float_formatter(arr: np.ndarray):
    """PyTorch's number format for a float array: (fmt, width) over the shown values."""
    shown = _shown_values(arr)  # PyTorch decides on the summarized data, as shown
    finite = np.abs(shown[np.isfinite(shown)])
    integral = finite.size == 0 or bool(np.all(finite == np.round(finite)))
    nonzero = finite[finite != 0]
    # PyTorch's rule: scientific notation for a wide range (also of integral values) or
    # very large / (non-integral) very small values
    sci = nonzero.size > 0 and (nonzero.max() > 1e8 or nonzero.max() / nonzero.min() > 1000
                                or (not integral and nonzero.min() < 1e-4))
    p = _OPTIONS["precision"]

    def fmt(x):
        if not np.isfinite(x):
            return "nan" if np.isnan(x) else ("inf" if x > 0 else "-inf")
        if sci:
            return f"{x:.{p}e}"
        if integral:
            return f"{x:.0f}."
        return f"{x:.{p}f}"
    # Every element gets the same width (right-aligned columns), as PyTorch prints.
    width = max((len(fmt(v)) for v in shown), default=0)
    return fmt, width


def _format_float(arr: np.ndarray) -> str:
    fmt, width = _float_formatter(arr)
    return _layout(arr, lambda x: fmt(x).rjust(width), width)


def _format_complex(arr: np.ndarray) -> str:
    """PyTorch's complex format: the real and imaginary parts each formatted as a float
    tensor would be (``1.+2.j``, ``0.5000-1.2500j``)."""
    rfmt, rwidth = _float_formatter(arr.real)
    ifmt, iwidth = _float_formatter(np.abs(arr.imag))

    def fmt(z):
        im = z.imag
        sign = "-" if (im < 0 or (im == 0 and np.signbit(im))) else "+"
        return f"{rfmt(z.real).rjust(rwidth)}{sign}{ifmt(abs(im)).ljust(iwidth)}j"
    return _layout(arr, fmt, rwidth + iwidth + 2)


def _format_plain(arr: np.ndarray) -> str:
    """Integers and bools: ``str`` of each value padded to the widest shown one
    (``[True, True]``, ``[ True, False]``, ``[  1, -10]``)."""
    def text(v):
        return str(bool(v)) if arr.dtype == np.bool_ else str(v)
    width = max((len(text(v)) for v in _shown_values(arr)), default=0)
    return _layout(arr, lambda v: text(v).rjust(width), width)


def _layout(arr: np.ndarray, fmt, width: int, indent: int = len("tensor("),
            summarize: bool | None = None) -> str:
    """PyTorch's layout of the formatted values: ``(linewidth - indent) // (width + 2)``
    values per line, continuation lines under the first value, a blank line between
    blocks of rank >= 3, and the edge items around ``...`` when summarized."""
    if summarize is None:  # decided once, on the whole tensor
        if arr.size == 0:
            return "[]"
        summarize = arr.size > _OPTIONS["threshold"]
    e = _OPTIONS["edgeitems"]
    if arr.ndim == 0:
        return fmt(arr.item() if arr.dtype.kind != "c" else arr[()])
    cut = summarize and arr.shape[0] > 2 * e
    if arr.ndim == 1:
        items = [fmt(v) for v in (np.r_[arr[:e], arr[-e:]] if cut else arr)]
        if cut:
            items[e:e] = [" ..."]
        per_line = max(1, (_OPTIONS["linewidth"] - indent) // (width + 2))
        lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
        return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"
    rows = list(range(e)) + [None] + list(range(len(arr) - e, len(arr))) if cut \
        else range(len(arr))
    parts = ["..." if i is None else _layout(arr[i], fmt, width, indent + 1, summarize)
             for i in rows]
    return "[" + ("," + "\n" * (arr.ndim - 1) + " " * (indent + 1)).join(parts) + "]"


def _shown_values(arr: np.ndarray) -> np.ndarray:
    """The values that will be printed (the corners when the tensor is summarized)."""
    if arr.size <= _OPTIONS["threshold"] or arr.ndim == 0:
        return arr.reshape(-1)
    e = _OPTIONS["edgeitems"]
    for d in range(arr.ndim):
        if arr.shape[d] > 2 * e:
            idx = np.r_[0:e, arr.shape[d] - e:arr.shape[d]]
            arr = np.take(arr, idx, axis=d)
    return arr.reshape(-1)


def tensor_repr(t) -> str:
    """The PyTorch-style representation of a tensor."""
    suffix = []
    if t.device.type != "cpu":
        suffix.append(f"device='{t.device}'")
    if t._data is None or t.device.type == "meta":
        from ._state import tls
        if tls.tracer is not None and t.device.type != "meta":
            tls.tracer.graph_break("print(tensor)")  # a traced value has no data to show
        body = "..."
        suffix.append(f"size={tuple(t.shape)}")  # after device=..., as PyTorch prints
    else:
        from ._state import tls
        tracer, tls.tracer = tls.tracer, None  # printing is not a graph break of its own
        try:
            arr = np.asarray(t._host_array("repr(tensor)"))
        finally:
            tls.tracer = tracer
        if tracer is not None:
            tracer.graph_break("print(tensor)")
        if t.dtype.is_floating_point:
            body = _format_float(arr.astype(np.float64))
        elif t.dtype.is_complex:
            body = _format_complex(arr.astype(np.complex128))
        else:
            body = _format_plain(arr)
        if arr.size == 0 and arr.ndim != 1:  # PyTorch prints a 1-D empty one as tensor([])
            suffix.append(f"size={tuple(t.shape)}")
    default = {dtypes.get_default_dtype(), dtypes.int64, dtypes.bool_}
    if t.dtype.is_complex:
        default.add(dtypes.default_complex_dtype())
    if t.dtype not in default:
        suffix.append(f"dtype=framework.{t.dtype.name}")
    if t.grad_fn is not None:
        suffix.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t.requires_grad:
        suffix.append("requires_grad=True")
    return "tensor(" + ", ".join([body] + suffix) + ")"
