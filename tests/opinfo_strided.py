"""OpInfo record: ``as_strided`` (framework/ops/strided.py) on contiguous inputs, where
PyTorch's storage positions are the input's flat positions. Overlapping windows, a
storage offset, zero strides and an empty view; the reference is NumPy's ``as_strided``
over the flattened input. Views of non-contiguous inputs and of a base's storage:
tests/test_as_strided.py."""

from __future__ import annotations

import numpy as np

from tests.opinfo import OpInfo, Sample, make, register_opinfo, rng


def _ref(x, size, stride, storage_offset=0):
    flat = np.ascontiguousarray(x).reshape(-1)[storage_offset:]
    return np.lib.stride_tricks.as_strided(flat, size, [s * x.itemsize for s in stride]).copy()


def _samples(dt):
    g = rng(211)
    return [Sample((make((12,), dt, g), (3, 4), (4, 1)), name="reshape", grad=True),
            Sample((make((10,), dt, g), (4, 3), (2, 1)), name="overlapping", grad=True),
            Sample((make((3, 4), dt, g), (2, 2), (1, 4), 1), name="offset-transposed",
                   grad=True),
            Sample((make((5,), dt, g), (3, 2), (0, 2)), name="zero-stride", grad=True),
            Sample((make((4,), dt, g), (0, 3), (1, 1)), name="empty")]


register_opinfo(OpInfo("as_strided", lambda x, *a: x.as_strided(*a), _ref, _samples,
                       op="as_strided"))
